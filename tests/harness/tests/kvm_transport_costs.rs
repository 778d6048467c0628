// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! What each transport costs in VM exits as the amount of data grows:
//! every transport reads a bulk file whole, at two sizes.

mod common;

use fw_cfg_protocol::{BULK_FILE_NAME, Phase, Transport};
use fw_cfg_tests::matrix::{DEFAULT_TIMEOUT, run_firmware};
use fw_cfg_tests::vmm::fw_cfg::FwCfgSetup;
use fw_cfg_tests::vmm::stats::ExitCounts;

fn bulk(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 7 + 3) as u8).collect()
}

fn run(size: usize) -> Vec<(&'static str, ExitCounts, u64)> {
    let data = bulk(size);
    let sum: u64 = data.iter().map(|&b| u64::from(b)).sum();
    let setup = FwCfgSetup {
        raw_files: vec![(BULK_FILE_NAME.to_string(), data)],
        ..FwCfgSetup::default()
    };
    let run = run_firmware(setup, DEFAULT_TIMEOUT).expect("firmware run");
    Transport::FW_CFG
        .iter()
        .map(|&kind| {
            let t = kind.as_str();
            let phase = Phase::Bulk(kind).id();
            let line = run
                .report
                .bulk
                .get(&kind)
                .unwrap_or_else(|| panic!("no bulk line for {t}"));
            assert_eq!(line.size as usize, size, "{t}");
            assert_eq!(line.read as usize, size, "{t}");
            assert_eq!(line.sum, sum, "{t}: data corrupted");
            assert_eq!(line.error, None, "{t}");
            (t, run.stats.phase(phase), line.cycles)
        })
        .collect()
}

#[test]
fn dma_costs_a_constant_number_of_exits_and_pio_one_per_byte() {
    if !common::require_kvm() {
        return;
    }
    let small = run(1024);
    let large = run(8192);
    for ((t, s, _), (_, l, _)) in small.iter().zip(&large) {
        match *t {
            // One select, then one `in` per byte.
            "pio" => {
                assert_eq!(s.total(), 1 + 1024, "{t}");
                assert_eq!(l.total(), 1 + 8192, "{t}");
                assert_eq!(l.io_in, 8192, "{t}");
            }
            // One transfer: one 32-bit write of the low half of the
            // descriptor address (the high half is 0 at startup and after
            // every transfer), whatever the size.
            "dma" => {
                assert_eq!(s.total(), 1, "{t}");
                assert_eq!(l.total(), 1, "{t}");
                assert_eq!(l.io_out, 1, "{t}");
            }
            // One select write, then 8-byte reads.
            "mmio" => {
                assert_eq!(s.total(), 1 + 1024 / 8, "{t}");
                assert_eq!(l.total(), 1 + 8192 / 8, "{t}");
            }
            // One 64-bit write of the descriptor address.
            "mmio-dma" => {
                assert_eq!(s.total(), 1, "{t}");
                assert_eq!(l.total(), 1, "{t}");
            }
            // `rep insb`: at most one exit per byte; batched by engines
            // that support it.
            "pio-string" => {
                assert!(s.total() <= 1 + 1024, "{t}");
                assert!(l.total() <= 1 + 8192, "{t}");
            }
            other => panic!("unknown transport {other}"),
        }
    }
}
