// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Fuzz target: QEMU's `-fw_cfg` option parser (see `harness::cmdline`).

#![no_main]

#[allow(dead_code)]
#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::cmdline(data));
