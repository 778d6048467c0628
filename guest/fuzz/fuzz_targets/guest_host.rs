// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Fuzz target: the guest reader and policy against a hostile host that
//! answers every register read and DMA completion (see
//! `harness::guest_host`).

#![no_main]

#[allow(dead_code)]
#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::guest_host(data));
