// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

/// The fw_cfg ABI constants and wire formats (the `fw-cfg-abi` crate),
/// shared with the guest reader.
pub use fw_cfg_abi as abi;

#[cfg(feature = "acpi")]
pub mod acpi;
#[cfg(feature = "acpi")]
pub mod acpi_loader;
#[cfg(feature = "vm-device")]
mod adapter;
pub mod builder;
#[cfg(feature = "cmdline")]
pub mod cmdline;
pub mod device;
pub mod error;
pub mod events;
#[cfg(feature = "fdt")]
pub mod fdt;
#[cfg(all(
    feature = "linux-boot",
    any(target_arch = "x86", target_arch = "x86_64")
))]
pub mod linux_boot;
#[cfg(feature = "vm-device")]
pub mod mmio;
pub mod phys_bits;
#[cfg(feature = "vm-device")]
pub mod pio;
mod regions;
pub mod state;
pub mod table_loader;
pub mod x86;

pub use builder::{
    FILE_SLOTS_DEFAULT, FILE_SLOTS_MIN, FwCfgBuilder, ITEM_MAX_LEN, check_file_name,
};
pub use device::{FwCfg, KEY_INDEX_MASK, ModifyError};
pub use error::{BuildError, FileNameError, PhysBitsError, RestoreError};
pub use events::{FwCfgEvents, NoEvents};
#[cfg(feature = "vm-device")]
pub use mmio::FwCfgMmio;
pub use phys_bits::{HostAddressSizes, PhysBitsConfig};
#[cfg(feature = "vm-device")]
pub use pio::FwCfgPio;
pub use state::FwCfgState;
