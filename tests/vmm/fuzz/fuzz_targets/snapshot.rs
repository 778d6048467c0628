// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Fuzz target: the snapshot file reader (see `harness::snapshot`).

#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::snapshot(data));
