// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The real cost of the worst single DMA transfer: a READ of `0xffffffff`
//! bytes, which the device satisfies from the item and then zero-fills up
//! to the first guest address that is not RAM (QEMU does the same). For
//! each guest RAM size the transfer runs twice: into untouched memory
//! (every page is committed by the transfer) and into memory already
//! committed. Prints wall time, time per GiB and the resident-set growth;
//! asserts nothing about time.
//!
//! `cargo bench -p fw-cfg-device --bench dma_bound` (sizes in MiB from
//! `FW_CFG_DMA_BOUND_MIB`, comma-separated; default 256,1024).

use std::time::{Duration, Instant};

use fw_cfg_device::FwCfgBuilder;
use fw_cfg_device::abi::{DMA_CTL_ERROR, DMA_CTL_READ, DmaAccess};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Where the descriptor lives.
const DESC: u64 = 0x1000;
/// Where the data goes.
const BUF: u64 = 0x2000;

/// `VmRSS` in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// One READ of `0xffffffff` bytes to [`BUF`]; its time and status.
fn kick(
    mem: &GuestMemoryMmap,
    dev: &mut fw_cfg_device::FwCfg<&GuestMemoryMmap>,
) -> (Duration, u32) {
    let desc = DmaAccess::select(0x20, DMA_CTL_READ, u32::MAX, BUF).to_be_bytes();
    mem.write_slice(&desc, GuestAddress(DESC)).unwrap();
    let t = Instant::now();
    dev.dma_address_u64(DESC);
    let elapsed = t.elapsed();
    let mut st = [0u8; 4];
    mem.read_slice(&mut st, GuestAddress(DESC)).unwrap();
    (elapsed, u32::from_be_bytes(st))
}

fn main() {
    let sizes = std::env::var("FW_CFG_DMA_BOUND_MIB").unwrap_or_else(|_| "256,1024".into());
    println!("guest RAM | pass        | time      | per GiB   | RSS growth");
    for mib in sizes
        .split(',')
        .filter_map(|s| s.trim().parse::<u64>().ok())
    {
        let len = usize::try_from(mib << 20).unwrap();
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), len)]).unwrap();
        let mut b = FwCfgBuilder::new();
        b.add_file("opt/item", vec![0x5a; 4096]).unwrap();
        let mut dev = b.build(&mem);
        // The bytes zero-filled: from BUF to the end of RAM (at most
        // 0xffffffff).
        let filled = (mib << 20).saturating_sub(BUF).min(u64::from(u32::MAX));
        let gib = filled as f64 / f64::from(1u32 << 30);
        for pass in ["untouched", "committed"] {
            let before = rss_kib();
            let (t, st) = kick(&mem, &mut dev);
            // The error bit when RAM ends before the length does.
            let short = (mib << 20) - BUF < u64::from(u32::MAX) - 4096;
            assert_eq!(st, if short { DMA_CTL_ERROR } else { 0 });
            let grown = rss_kib().saturating_sub(before);
            println!(
                "{mib:>5} MiB | {pass:<11} | {:>7.1} ms | {:>6.1} ms | {grown} KiB",
                t.as_secs_f64() * 1e3,
                t.as_secs_f64() * 1e3 / gib
            );
        }
    }
}
