// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Fuzz target: random access sequences on the device and on the model of
//! QEMU's memory core must agree (see `harness::access_split`).

#![no_main]

#[allow(dead_code)]
#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::access_split(data));
