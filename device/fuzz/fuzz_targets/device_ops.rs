// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Fuzz target: the device driven by an arbitrary guest through the PIO and
//! MMIO access methods, DMA included (see `harness::device_ops`).

#![no_main]

#[allow(dead_code)]
#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::device_ops(data));
