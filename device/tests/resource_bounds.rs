// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Resource bounds: a guest cannot make the device allocate or loop without
//! bound. DMA descriptors of length `0xffffffff` (READ, SKIP and WRITE)
//! against 1 MiB items and a small guest memory complete, leave the device
//! consistent, and do not grow the process's peak memory.
//!
//! This file holds a single test so the process's peak RSS (`VmHWM`) is not
//! disturbed by other tests running in parallel threads. Run it with
//! `--nocapture` to see the measured time and memory; timing is printed,
//! never asserted.

use std::sync::Arc;
use std::time::Instant;

use fw_cfg_device::abi::*;
use fw_cfg_device::{FwCfg, FwCfgBuilder};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

type Mem = Arc<GuestMemoryMmap<()>>;

const MIB: usize = 1 << 20;
/// Guest memory: 2 MiB, a 1 MiB hole, 1 MiB.
const LOW: usize = 2 * MIB;
const HIGH_START: u64 = 3 * MIB as u64;
const HIGH: usize = MIB;
const DESC: u64 = 0x1000;
const BUF: u64 = 0x2000;

/// The peak resident set size of this process, in KiB (Linux), if known.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn dma_of_length_0xffffffff_is_bounded() {
    let mem: Mem = Arc::new(
        GuestMemoryMmap::<()>::from_ranges(&[
            (GuestAddress(0), LOW),
            (GuestAddress(HIGH_START), HIGH),
        ])
        .unwrap(),
    );
    let content: Vec<u8> = (0..MIB).map(|i| (i % 251) as u8).collect();
    let mut b = FwCfgBuilder::new();
    b.add_file("opt/big", content.clone()).unwrap();
    b.add_writable_file("opt/big-w", vec![0; MIB], |_| {})
        .unwrap();
    let mut dev = b.build(mem.clone());
    let ro = dev.file_key("opt/big").unwrap();
    let rw = dev.file_key("opt/big-w").unwrap();

    // Touch all of guest memory first, so its pages count before the
    // baseline: the device must add nothing that scales with the length.
    mem.write_slice(&vec![0xcc; LOW], GuestAddress(0)).unwrap();
    mem.write_slice(&vec![0xcc; HIGH], GuestAddress(HIGH_START))
        .unwrap();
    let before = peak_rss_kib();

    let mut report = Vec::new();
    // READ: 1 MiB of item, then zeros up to the end of the low region,
    // where the fault stops it with the error bit.
    let (st, t) = kick(
        &mem,
        &mut dev,
        DmaAccess::select(ro, DMA_CTL_READ, u32::MAX, BUF),
        DESC,
    );
    assert_eq!(st, DMA_CTL_ERROR);
    report.push(("READ  0xffffffff from 1 MiB item", t));
    let mut head = vec![0u8; 16];
    mem.read_slice(&mut head, GuestAddress(BUF)).unwrap();
    assert_eq!(head, content[..16]);
    let mut tail = [0xffu8; 16];
    mem.read_slice(&mut tail, GuestAddress(LOW as u64 - 16))
        .unwrap();
    assert_eq!(tail, [0; 16]);
    // READ into the high region, which ends the address space: the same.
    let (st, t) = kick(
        &mem,
        &mut dev,
        DmaAccess::select(ro, DMA_CTL_READ, u32::MAX, HIGH_START),
        DESC,
    );
    assert_eq!(st, DMA_CTL_ERROR);
    report.push(("READ  0xffffffff into last region", t));
    // READ at an unmapped address: fails at once.
    let (st, t) = kick(
        &mem,
        &mut dev,
        DmaAccess::select(ro, DMA_CTL_READ, u32::MAX, 1 << 40),
        DESC,
    );
    assert_eq!(st, DMA_CTL_ERROR);
    report.push(("READ  0xffffffff to unmapped", t));
    // SKIP: the offset stops at the end of the item.
    let (st, t) = kick(
        &mem,
        &mut dev,
        DmaAccess::select(ro, DMA_CTL_SKIP, u32::MAX, 0),
        DESC,
    );
    assert_eq!(st, 0);
    assert_eq!(dev.state().offset, MIB as u32);
    report.push(("SKIP  0xffffffff over 1 MiB item", t));
    // WRITE of more than the item: rejected whole, nothing copied.
    let (st, t) = kick(
        &mem,
        &mut dev,
        DmaAccess::select(rw, DMA_CTL_WRITE, u32::MAX, 0),
        DESC,
    );
    assert_eq!(st, DMA_CTL_ERROR);
    assert!(dev.item_bytes(rw).unwrap().iter().all(|&b| b == 0));
    report.push(("WRITE 0xffffffff to 1 MiB item", t));
    // WRITE to a read-only item.
    let (st, t) = kick(
        &mem,
        &mut dev,
        DmaAccess::select(ro, DMA_CTL_WRITE, u32::MAX, 0),
        DESC,
    );
    assert_eq!(st, DMA_CTL_ERROR);
    report.push(("WRITE 0xffffffff to read-only item", t));
    // A full 1 MiB WRITE that fits: copied once.
    let (st, t) = kick(
        &mem,
        &mut dev,
        DmaAccess::select(rw, DMA_CTL_WRITE, MIB as u32, BUF),
        DESC,
    );
    assert_eq!(st, 0);
    report.push(("WRITE 1 MiB (fits)", t));

    let after = peak_rss_kib();
    for (what, secs) in &report {
        println!("{what:36} {:9.3} ms", secs * 1e3);
    }
    if let (Some(before), Some(after)) = (before, after) {
        println!("peak RSS: {before} KiB before, {after} KiB after the transfers");
        // Nothing proportional to the 4 GiB length, nor even to the 1 MiB
        // item: the transfers copy between item and guest memory directly.
        assert!(
            after - before < 1024,
            "peak RSS grew by {} KiB",
            after - before
        );
    }
}

/// Places `desc` at `at`, kicks it, and returns the control word written
/// back and the seconds the kick took.
fn kick(mem: &Mem, dev: &mut FwCfg<Mem>, desc: DmaAccess, at: u64) -> (u32, f64) {
    mem.write_slice(&desc.to_be_bytes(), GuestAddress(at))
        .unwrap();
    let t = Instant::now();
    dev.dma_address_u64(at);
    let secs = t.elapsed().as_secs_f64();
    let mut c = [0u8; 4];
    mem.read_slice(&mut c, GuestAddress(at)).unwrap();
    (u32::from_be_bytes(c), secs)
}
