// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

/// The fw_cfg ABI constants and wire formats (the `fw-cfg-abi` crate),
/// shared with the guest reader.
pub use fw_cfg_abi as abi;

#[cfg(feature = "acpi")]
pub mod acpi;
pub mod builder;
pub mod cmdline;
pub mod device;
pub mod error;
pub mod events;
#[cfg(feature = "fdt")]
pub mod fdt;
pub mod mmio;
pub mod phys_bits;
pub mod pio;
mod regions;
pub mod state;

pub use builder::FwCfgBuilder;
pub use device::FwCfg;
pub use error::{Error, Result};
pub use events::{FwCfgEvents, NoEvents};
pub use mmio::FwCfgMmio;
pub use phys_bits::PhysBitsConfig;
pub use pio::FwCfgPio;
pub use state::FwCfgState;
