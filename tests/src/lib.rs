// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! KVM harness for the fw_cfg phys-bits project.
//!
//! - [`vmm`]: a mini VMM on kvm-ioctls, vm-memory, vm-device, vm-superio
//!   and linux-loader that boots PVH ELF images and Linux bzImages (with
//!   ACPI tables describing fw_cfg), registers the fw_cfg
//!   device (ports and MMIO) and applies one `PhysBitsConfig` to CPUID and
//!   the `etc/phys-bits-valid` file;
//! - [`firmware`]: the PVH test firmware this crate's build script builds,
//!   and the JSON lines it prints;
//! - [`matrix`]: the configuration matrix, run as KVM guests;
//! - [`inproc`]: the same matrix without KVM;
//! - [`table`]: the comparison table the `compare` command prints;
//! - [`bench`](mod@bench): the guest-measured benchmarks the `bench` command
//!   runs.

#![deny(missing_docs)]

pub mod bench;
pub mod firmware;
pub mod inproc;
pub mod lab;
pub mod matrix;
pub mod peers;
pub mod table;
pub mod vmm;

/// The top-level README's embedding example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
mod readme_example {}
