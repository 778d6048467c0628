// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Fuzz target: the table-loader builder and `apply` (see
//! `harness::table_loader`).

#![no_main]

#[allow(dead_code)]
#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::table_loader(data));
