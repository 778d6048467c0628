// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! A QEMU-compatible fw_cfg device for rust-vmm VMMs.

#![deny(missing_docs)]

/// The fw_cfg ABI constants and wire formats, shared with the guest reader.
pub use fw_cfg_guest::abi;
