// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! KVM harness for the fw_cfg phys-bits project.
//!
//! - [`vmm`]: the mini VMM (the `fw-cfg-vmm` crate, re-exported);
//! - [`phase`]: the firmware's measurement phases, counted by the VMM's
//!   phase-marker exit hook on [`phase::MARK_PORT`];
//! - [`firmware`]: the PVH test firmware this crate's build script builds,
//!   and the JSON lines it prints;
//! - [`matrix`]: the configuration matrix, run as KVM guests;
//! - [`inproc`]: the same matrix without KVM;
//! - [`table`]: the comparison table the `compare` command prints;
//! - [`situations`]: the situations users have hit, every firmware rule
//!   and policy mode side by side (`compare --situations`);
//! - [`bench`](mod@bench): the guest-measured benchmarks the `bench` command
//!   runs.

#![deny(missing_docs)]

pub mod bench;
pub mod firmware;
pub mod inproc;
pub mod lab;
pub mod matrix;
pub mod peers;
pub mod phase;
pub mod situations;
pub mod table;

pub use fw_cfg_vmm as vmm;

/// The top-level README's embedding example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
mod readme_example {}

/// This crate's README example, compiled as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod harness_readme_example {}
