// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Guest-side reader for QEMU's fw_cfg interface and for the two
//! "physical address size is valid" channels.
//!
//! The crate is `#![no_std]` and allocation-free in its core so firmware can
//! link it. The [`abi`] module holds every constant and wire format of the
//! fw_cfg ABI and of the `etc/phys-bits-valid` file; the VMM-side device
//! crate uses the same module, so both ends agree on every byte.

#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]

pub mod abi;
