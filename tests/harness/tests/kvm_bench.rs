// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The benchmark mode of the test firmware under the mini VMM: every
//! measurement reports, and the exit counts (exact, never times) have the
//! shapes `spec/performance.md` states: DMA transfers cost a constant
//! number of exits whatever the size, the buffered DMA lookup a constant
//! number whatever the directory size, port I/O one exit per byte.

mod common;

use std::collections::BTreeMap;

use fw_cfg_tests::bench::{self, BootResult, Workload};
use fw_cfg_tests::matrix::DEFAULT_TIMEOUT;

/// Exits per measurement name.
fn exits(r: &BootResult) -> BTreeMap<String, u64> {
    r.lines
        .iter()
        .filter_map(|l| {
            let p = l.phase?;
            Some((
                l.name.to_string(),
                r.exits.get(&p.id()).copied().unwrap_or(0),
            ))
        })
        .collect()
}

fn dir_count(r: &BootResult, name: &str) -> u64 {
    r.lines
        .iter()
        .find(|l| l.name.as_str() == name)
        .and_then(|l| l.dir_count)
        .map(u64::from)
        .unwrap_or_else(|| panic!("{name}: no dir_count"))
}

#[test]
fn bench_mode_exit_counts() {
    if !common::require_kvm() {
        return;
    }
    let pio_bytes = 4096;
    let main = bench::run_ours(&Workload::main(pio_bytes), DEFAULT_TIMEOUT).expect("main run");
    let e = exits(&main);
    assert_eq!(e["null-exit"], fw_cfg_protocol::BENCH_REPEAT);
    // A cpuid is handled inside KVM: no exit to the VMM.
    assert_eq!(e["cpuid-kvm-leaf"], 0);
    assert_eq!(e["cpuid/decision"], 0);
    assert_eq!(e["cpuid/channel"], 0);
    // The leaves the channel asked, as the host's CPUID answers them.
    let leaves = main
        .lines
        .iter()
        .find(|l| l.name.as_str() == "cpuid/channel")
        .map(|l| l.ops);
    assert!(leaves.is_some_and(|n| (4..=12).contains(&n)), "{leaves:?}");
    // Port I/O: one 16-bit select, four 1-byte reads.
    assert_eq!(e["pio/signature"], 5);
    assert_eq!(e["pio/id"], 5);
    // MMIO: one select, one 4-byte read.
    assert_eq!(e["mmio/signature"], 2);
    assert_eq!(e["mmio/id"], 2);
    // DMA: the DMA register's "QEMU CFG" (one 32-bit `in` per half, or one
    // 64-bit MMIO read); the ID by one transfer (one exit: the low half of
    // the descriptor address). Opening is the signature alone: the
    // register is the DMA evidence, the ID is read only when asked.
    assert_eq!(e["dma/signature"], 2);
    assert_eq!(e["mmio-dma/signature"], 1);
    assert_eq!(e["dma/id"], 1);
    assert_eq!(e["mmio-dma/id"], 1);
    assert_eq!(e["dma/open"], 2);
    assert_eq!(e["mmio-dma/open"], 1);
    // Port I/O: the count (4 bytes) and 64 bytes per entry, plus a select.
    let count = dir_count(&main, "pio/dir-walk");
    assert_eq!(e["pio/dir-walk"], 1 + 4 + 64 * count);
    assert_eq!(e["mmio/dir-walk"], 1 + 1 + 8 * count);
    // Streaming DMA: one transfer (one exit) for the count, one per entry.
    assert_eq!(e["dma/dir-walk"], 1 + count);
    assert_eq!(e["mmio-dma/dir-walk"], 1 + count);
    // Buffered DMA: the count and the whole directory in one transfer.
    assert!(count <= 32, "{count} files");
    assert_eq!(e["dma/dir-bulk"], 1);
    assert_eq!(e["mmio-dma/dir-bulk"], 1);
    // The whole decision: signature 2 (1), directory 1, file 1.
    assert_eq!(e["dma/decision"], 4);
    assert_eq!(e["mmio-dma/decision"], 3);
    // Bulk reads: one descriptor per file whatever its size.
    for &size in &bench::DMA_SIZES {
        let name = format!("read/opt/bench/dma/{}", bench::size_label(size));
        assert_eq!(e[&name], 1, "{name}");
    }
    assert_eq!(e["read/opt/bench/mmio-dma/1m"], 1);
    assert_eq!(e["read/opt/bench/mmio/1m"], 1 + (1 << 20) / 8);
    assert_eq!(e["read/opt/bench/pio/4k"], 1 + 4096);

    // Directory growth: the buffered DMA lookup stays at the same exits.
    let small = bench::run_ours(&Workload::directory(1), DEFAULT_TIMEOUT).expect("dir-1 run");
    let large = bench::run_ours(&Workload::directory(300), DEFAULT_TIMEOUT).expect("dir-300 run");
    let (s, l) = (exits(&small), exits(&large));
    assert_eq!(dir_count(&small, "dma/dir-bulk"), 1);
    assert_eq!(dir_count(&large, "dma/dir-bulk"), 300);
    // Up to 32 entries come with the count; 300 take one more transfer.
    for name in [
        "dma/dir-bulk",
        "mmio-dma/dir-bulk",
        "dma/decision",
        "mmio-dma/decision",
    ] {
        assert_eq!(s[name] + 1, l[name], "{name}");
    }
    assert_eq!(s["dma/dir-bulk"], 1);
    assert_eq!(l["dma/dir-walk"] - s["dma/dir-walk"], 299);
    assert_eq!(l["pio/dir-walk"] - s["pio/dir-walk"], 64 * 299);
}
