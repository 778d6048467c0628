// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Guest-side reader for QEMU's fw_cfg interface and for the two
//! "physical address size is valid" channels.
//!
//! The crate is `#![no_std]` and allocation-free in its core so firmware can
//! link it. Modules:
//!
//! - [`abi`]: every constant and wire format of the fw_cfg ABI and of the
//!   `etc/phys-bits-valid` file (the `fw-cfg-abi` crate, shared with the
//!   VMM-side device crate).
//! - [`cpuid`]: the CPUID channel (KVM hint bit, address sizes, vendor).
//! - [`transport`]: port I/O, MMIO and DMA access to the device.
//! - [`reader`]: signature/ID checks, the file directory, items and files.
//! - [`policy`]: the decision, its table, and the conflicts.
//! - [`layout`]: the backed and safe widths, the recommended 64-bit PCI
//!   window and whether BARs fit.
//! - [`peers`]: what OVMF, SeaBIOS and a GuestPhysBits-only reader do
//!   with the same inputs, rule for rule, and their 64-bit PCI windows.
//!
//! # Firmware example
//!
//! ```no_run
//! # #[cfg(target_arch = "x86_64")]
//! # fn main() {
//! use fw_cfg_guest::cpuid::{read_cpuid_channel, HardwareCpuid};
//! use fw_cfg_guest::policy::{decide, read_phys_bits_file, ChannelInputs, FileState, PolicyMode};
//! use fw_cfg_guest::reader::FwCfgReader;
//! use fw_cfg_guest::transport::{Dma, DmaBuffer, PortIo};
//!
//! // Identity-mapped firmware: a pointer's value is its physical address.
//! let mut slot = [0u8; 16];
//! let mut bounce = [0u8; 4096];
//! let (slot_pa, bounce_pa) = (slot.as_ptr() as u64, bounce.as_ptr() as u64);
//! // SAFETY: ring 0, fw_cfg (or nothing) at the standard ports, nobody else
//! // uses them, and the device does DMA only as fw_cfg's DMA interface
//! // defines; the buffers are identity-mapped and reachable by the device.
//! // They are locals: should a transfer time out (`DmaTimeout`), this
//! // firmware must not return from here, as the device may still write them.
//! let transport = unsafe {
//!     Dma::new(PortIo::new(), DmaBuffer::new(&mut slot, slot_pa, &mut bounce, bounce_pa))
//! };
//! // DMA is used only if the ID item advertises it.
//! let file = match FwCfgReader::new(transport) {
//!     Ok(mut fw) => read_phys_bits_file(&mut fw),
//!     Err(_) => FileState::Absent, // no fw_cfg: the channel is silent
//! };
//! let cpuid = read_cpuid_channel(&HardwareCpuid);
//! let decision = decide(&ChannelInputs::new(&cpuid, file), PolicyMode::Combined);
//! let usable_bits = decision.phys_bits;
//! for conflict in decision.conflicts.iter() {
//!     // log `conflict`
//! #   let _ = conflict;
//! }
//! # let _ = usable_bits;
//! # }
//! # #[cfg(not(target_arch = "x86_64"))]
//! # fn main() {}
//! ```

#![no_std]
#![deny(missing_docs)]

/// The fw_cfg ABI constants and wire formats (the `fw-cfg-abi` crate),
/// shared with the VMM-side device.
pub use fw_cfg_abi as abi;
pub mod cpuid;
pub mod layout;
pub mod memmap;
pub mod peers;
pub mod policy;
pub mod reader;
pub mod transport;
