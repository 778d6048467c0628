// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Errors of the fw_cfg device crate.
//!
//! Only the VMM can cause these: building the device, restoring a snapshot,
//! parsing a command line or querying the host. Nothing the guest does
//! returns an error; guest mistakes are answered on the wire as QEMU answers
//! them (zeros, ignored writes, or the DMA error bit).

use std::path::PathBuf;

/// Errors returned by this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file name is longer than the 55 bytes the directory can hold.
    #[error("fw_cfg file name {name:?} is {len} bytes long, at most 55 are allowed")]
    NameTooLong {
        /// The offending name.
        name: String,
        /// Its length in bytes.
        len: usize,
    },
    /// A file name is empty or contains a NUL byte.
    #[error("fw_cfg file name {0:?} is empty or contains a NUL byte")]
    InvalidName(String),
    /// A file with this name already exists.
    #[error("duplicate fw_cfg file name: {0}")]
    DuplicateName(String),
    /// Every file slot is taken.
    #[error("no free fw_cfg file slot: all {slots} slots are in use")]
    NoFreeSlot {
        /// The configured number of slots.
        slots: u16,
    },
    /// The key cannot be set with `add_bytes` (reserved, a file slot, or out
    /// of range).
    #[error("fw_cfg key {0:#06x} cannot be set directly")]
    InvalidKey(u16),
    /// The number of file slots is outside `0x10..=0x3fe0`, below the number
    /// of files already added, or too small for an arch-local key in use.
    #[error("invalid number of fw_cfg file slots: {0:#x}")]
    InvalidFileSlots(u16),
    /// An item is too large for the 32-bit size fields of the ABI.
    #[error("fw_cfg item of {0} bytes is too large")]
    ItemTooLarge(usize),
    /// A string item contains a NUL byte.
    #[error("fw_cfg string item contains a NUL byte")]
    StringContainsNul,
    /// A snapshot names a selector the device does not have.
    #[error("fw_cfg state has an out-of-range selector {0:#06x}")]
    InvalidStateSelector(u16),
    /// A snapshot's offset lies beyond the end of the selected item.
    #[error("fw_cfg state offset {offset} is beyond item {selector:#06x} of {len} bytes")]
    InvalidStateOffset {
        /// The selector of the snapshot.
        selector: u16,
        /// The offset of the snapshot.
        offset: u32,
        /// The length of the selected item.
        len: u32,
    },
    /// A `-fw_cfg` option could not be parsed.
    #[error("invalid -fw_cfg option: {0}")]
    Cmdline(String),
    /// A file named on the command line could not be read.
    #[error("can't load {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A phys-bits width is outside what the CPUID field or the file can
    /// carry.
    #[error("invalid physical address width {0}")]
    InvalidPhysBits(u8),
    /// A CPUID leaf the phys-bits patcher needs is missing.
    #[error("CPUID leaf {0:#010x} is missing")]
    MissingCpuidLeaf(u32),
    /// No KVM signature leaf was found in the CPUID entries.
    #[error("no KVM signature leaf found in the CPUID entries")]
    NoKvmSignature,
    /// A KVM ioctl failed.
    #[cfg(feature = "kvm")]
    #[error("KVM error: {0}")]
    Kvm(#[from] kvm_ioctls::Error),
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;
