// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Errors of the fw_cfg device crate, one enum per concern.
//!
//! Only the VMM can cause these: building the device ([`BuildError`],
//! [`FileNameError`]), restoring a snapshot ([`RestoreError`]) or stating
//! the physical address width ([`PhysBitsError`]). The command line and
//! ACPI have their own errors in their modules (`cmdline::CmdlineError`,
//! `acpi::AcpiNameError`). Nothing the guest does returns an error; guest
//! mistakes are answered on the wire as QEMU answers them (zeros, ignored
//! writes, or the DMA error bit).

/// Why a file name cannot go into the fw_cfg directory (shared with the
/// guest reader through `fw-cfg-abi`).
pub use fw_cfg_abi::FileNameError;

/// Errors of [`FwCfgBuilder`](crate::builder::FwCfgBuilder): QEMU's limits
/// on names, keys, slots and sizes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A file name is not valid in the directory.
    #[error("invalid fw_cfg file name {name:?}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        #[source]
        source: FileNameError,
    },
    /// A file with this name already exists.
    #[error("duplicate fw_cfg file name {name:?}")]
    DuplicateName {
        /// The name as given.
        name: String,
    },
    /// Every file slot is taken.
    #[error("no free fw_cfg file slot: all {slots} slots are in use")]
    NoFreeSlot {
        /// The configured number of slots.
        slots: u16,
    },
    /// The key cannot be set with `add_bytes` (reserved, a file slot, or out
    /// of range).
    #[error("fw_cfg key {key:#06x} cannot be set directly")]
    InvalidKey {
        /// The key.
        key: u16,
    },
    /// The number of file slots is outside `0x10..=0x3fe0`, below the number
    /// of files already added, or too small for an arch-local key in use.
    #[error("invalid number of fw_cfg file slots: {slots:#x}")]
    InvalidFileSlots {
        /// The requested number.
        slots: u16,
    },
    /// An item is too large for the 32-bit size fields of the ABI.
    #[error("fw_cfg item of {len} bytes is too large")]
    ItemTooLarge {
        /// Its length in bytes.
        len: usize,
    },
    /// A string item contains a NUL byte.
    #[error("fw_cfg string item contains a NUL byte")]
    StringContainsNul,
    /// A reboot timeout QEMU refuses: above 65535 ms and not `u32::MAX`
    /// ("never").
    #[error("boot-fail-wait of {ms} ms is outside 0..=65535 (or u32::MAX for never)")]
    InvalidBootFailWait {
        /// The timeout given.
        ms: u32,
    },
    /// A `bootorder` path contains a NUL or a newline.
    #[error("boot order path {path:?} contains a NUL or a newline")]
    InvalidBootPath {
        /// The path as given.
        path: String,
    },
}

/// Errors of [`FwCfg::restore`](crate::device::FwCfg::restore): a snapshot
/// that does not fit the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// The snapshot names a selector the device does not have.
    #[error("fw_cfg state has an out-of-range selector {selector:#06x}")]
    InvalidSelector {
        /// The selector of the snapshot.
        selector: u16,
    },
    /// The snapshot's offset lies beyond the end of the selected item.
    #[error("fw_cfg state offset {offset} is beyond item {selector:#06x} of {len} bytes")]
    InvalidOffset {
        /// The selector of the snapshot.
        selector: u16,
        /// The offset of the snapshot.
        offset: u32,
        /// The length of the selected item.
        len: u32,
    },
}

/// Errors of [`PhysBitsConfig`](crate::phys_bits::PhysBitsConfig) and of
/// the host query: a width a channel cannot carry, CPUID entries the
/// patcher cannot use, or KVM failing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PhysBitsError {
    /// A width is outside what the CPUID field or the file can carry.
    #[error("invalid physical address width {bits}")]
    InvalidWidth {
        /// The width.
        bits: u8,
    },
    /// Adding `etc/phys-bits-valid` to the builder failed.
    #[error("cannot add the phys-bits file")]
    AddFile(#[source] BuildError),
    /// A CPUID leaf the patcher or the host query needs is missing.
    #[cfg(feature = "kvm")]
    #[error("CPUID leaf {leaf:#010x} is missing")]
    MissingCpuidLeaf {
        /// The leaf.
        leaf: u32,
    },
    /// No KVM signature leaf was found in the CPUID entries.
    #[cfg(feature = "kvm")]
    #[error("no KVM signature leaf found in the CPUID entries")]
    NoKvmSignature,
    /// A KVM ioctl failed.
    #[cfg(feature = "kvm")]
    #[error("KVM_GET_SUPPORTED_CPUID failed")]
    Kvm(#[source] kvm_ioctls::Error),
}
