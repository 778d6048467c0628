// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Fuzz target: the `etc/phys-bits-valid` parser (see
//! `harness::phys_bits_file`).

#![no_main]

#[allow(dead_code)]
#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::phys_bits_file(data));
