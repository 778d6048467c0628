// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Every access of 1 to 8 bytes at every offset of both register windows
//! (x86 ports and MMIO), DMA on and off, read and write, against a model of
//! QEMU's memory core written from its sources:
//!
//! - `flatview_read_continue`/`flatview_write_continue` (system/physmem.c)
//!   cut an access at region edges, then by `memory_access_size`: at most
//!   the region's `.valid.max_access_size` (4 when unset), at most the
//!   alignment of the offset in the region, rounded down to a power of two;
//! - `memory_region_access_valid` (system/memory.c) rejects an access the
//!   region's `.valid.accepts` refuses, or unaligned, or (when
//!   `.valid.max_access_size` is set) outside the valid sizes; a rejected
//!   read gives 0 (`unassigned_mem_read`), a rejected write does nothing;
//! - `access_with_adjusted_size` cuts an accepted access by the region's
//!   `.impl.max_access_size` (4 when unset);
//! - the regions of hw/nvram/fw_cfg.c: x86 `fw_cfg_comb_mem_ops` (2 ports:
//!   accepts size 1, and size 2 writes; a 1-byte read is a data read, a
//!   2-byte write a little-endian select) and `fw_cfg_dma_mem_ops` at
//!   port +4 (8 bytes; valid max 8, impl max 8; reads always, writes of 4
//!   at 0 or 4 and of 8 at 0); MMIO: the data register at 0 (`data_width`
//!   8: valid 1..=8, accepts offset 0 only, impl max unset), the
//!   big-endian control register at 8 (2 bytes, accepts 2-byte writes),
//!   the DMA register at 16. Unmapped ports read 0xff (`unassigned_io_ops`,
//!   whose valid max is unset), unmapped MMIO reads 0.
//!
//! The model turns each access into the device operations QEMU's callbacks
//! perform; they run on a second device through its primitive methods,
//! and the two devices must agree on the bytes read, the registers, the
//! selections and DMA transfers, and guest memory.

use std::sync::{Arc, Mutex};

use fw_cfg_device::events::DmaOp;
use fw_cfg_device::{FwCfg, FwCfgBuilder, FwCfgEvents};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

type Mem = GuestMemoryMmap<()>;

/// The selections and DMA completions a device reports.
#[derive(Default, Clone)]
struct Log(Arc<Mutex<Vec<String>>>);

impl FwCfgEvents for Log {
    fn selected(&self, key: u16) {
        self.0.lock().unwrap().push(format!("select {key:#x}"));
    }
    fn dma_transfer(&self, op: DmaOp, bytes: u32) {
        self.0.lock().unwrap().push(format!("dma {op:?} {bytes}"));
    }
    fn dma_error(&self) {
        self.0.lock().unwrap().push("dma error".into());
    }
}

/// One QEMU region: where, and its ops.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ops {
    Comb,
    Data,
    Ctl,
    Dma,
}

struct Mr {
    start: u64,
    size: u64,
    ops: Ops,
}

impl Ops {
    /// `.valid.max_access_size` (0: unset).
    fn valid_max(self) -> u64 {
        match self {
            Ops::Comb | Ops::Ctl => 0,
            Ops::Data | Ops::Dma => 8,
        }
    }
    /// `.valid.min_access_size`.
    fn valid_min(self) -> u64 {
        match self {
            Ops::Data => 1,
            _ => 0,
        }
    }
    /// `.impl.max_access_size` (0: unset, which means 4).
    fn impl_max(self) -> u64 {
        match self {
            Ops::Dma => 8,
            _ => 4,
        }
    }
    /// `.valid.accepts`.
    fn accepts(self, addr: u64, size: u64, is_write: bool) -> bool {
        match self {
            Ops::Comb => size == 1 || (is_write && size == 2),
            Ops::Data => addr == 0,
            Ops::Ctl => is_write && size == 2,
            Ops::Dma => {
                !is_write || (size == 4 && (addr == 0 || addr == 4)) || (size == 8 && addr == 0)
            }
        }
    }
}

/// What the device is asked to do.
#[derive(Debug)]
enum Op {
    /// Read `n` data bytes.
    Data(usize),
    /// `n` bytes of the DMA register's signature from `off`.
    Sig(u64, usize),
    /// `n` bytes of `value` (a rejected or unassigned read).
    Fill(u8, usize),
    Select(u16),
    DataWrite(u8),
    DmaHigh(u32),
    DmaLow(u32),
    Dma64(u64),
}

fn memory_access_size(ops: Ops, l: u64, addr: u64) -> u64 {
    let mut max = if ops.valid_max() == 0 {
        4
    } else {
        ops.valid_max()
    };
    let align = addr & addr.wrapping_neg();
    if align != 0 && align < max {
        max = align;
    }
    let l = l.min(max);
    1 << (63 - l.leading_zeros())
}

fn access_valid(ops: Ops, addr: u64, size: u64, is_write: bool) -> bool {
    if !ops.accepts(addr, size, is_write) || addr & (size - 1) != 0 {
        return false;
    }
    ops.valid_max() == 0 || (size <= ops.valid_max() && size >= ops.valid_min())
}

/// The callbacks of one accepted access of `size` at `addr` (already cut
/// by `.impl.max_access_size`).
fn dispatch(ops: Ops, addr: u64, bytes: &[u8], is_write: bool, out: &mut Vec<Op>) {
    let size = bytes.len();
    let be = |b: &[u8]| b.iter().fold(0u64, |v, &x| (v << 8) | u64::from(x));
    match (ops, is_write) {
        (Ops::Comb, false) | (Ops::Data, false) => out.push(Op::Data(size)),
        (Ops::Comb, true) if size == 1 => out.push(Op::DataWrite(bytes[0])),
        (Ops::Comb, true) => out.push(Op::Select(u16::from_le_bytes([bytes[0], bytes[1]]))),
        (Ops::Data, true) => bytes.iter().for_each(|&b| out.push(Op::DataWrite(b))),
        (Ops::Ctl, true) => out.push(Op::Select(be(bytes) as u16)),
        (Ops::Ctl, false) => out.push(Op::Fill(0, size)),
        (Ops::Dma, false) => out.push(Op::Sig(addr, size)),
        (Ops::Dma, true) => match (size, addr) {
            (4, 0) => out.push(Op::DmaHigh(be(bytes) as u32)),
            (4, 4) => out.push(Op::DmaLow(be(bytes) as u32)),
            (8, 0) => out.push(Op::Dma64(be(bytes))),
            _ => {}
        },
    }
}

/// QEMU's handling of an access of `data.len()` bytes at `offset` in a
/// window of `regions` (unassigned reads give `unassigned`).
fn model(regions: &[Mr], unassigned: u8, offset: u64, data: &[u8], is_write: bool) -> Vec<Op> {
    let mut out = Vec::new();
    let mut done = 0usize;
    while done < data.len() {
        let addr = offset + done as u64;
        let rest = (data.len() - done) as u64;
        let Some(mr) = regions
            .iter()
            .find(|r| r.start <= addr && addr < r.start + r.size)
        else {
            // The unassigned background: `unassigned_io_ops` (valid max
            // unset) or unmapped memory; either way every byte reads
            // `unassigned` and writes vanish.
            let next = regions.iter().map(|r| r.start).filter(|&s| s > addr).min();
            let l = next.map_or(rest, |s| rest.min(s - addr)) as usize;
            if !is_write {
                out.push(Op::Fill(unassigned, l));
            }
            done += l;
            continue;
        };
        let addr1 = addr - mr.start;
        let l = memory_access_size(mr.ops, rest.min(mr.size - addr1), addr1);
        let bytes = &data[done..done + l as usize];
        if access_valid(mr.ops, addr1, l, is_write) {
            let step = l.min(mr.ops.impl_max()) as usize;
            for (i, chunk) in bytes.chunks(step).enumerate() {
                dispatch(mr.ops, addr1 + (i * step) as u64, chunk, is_write, &mut out);
            }
        } else if !is_write {
            out.push(Op::Fill(0, l as usize));
        }
        done += l as usize;
    }
    out
}

/// Runs the model's operations on `dev`; returns the bytes read.
fn apply(dev: &mut FwCfg<&Mem, Log>, ops: &[Op]) -> Vec<u8> {
    let mut read = Vec::new();
    for op in ops {
        match *op {
            Op::Data(n) => {
                let mut b = vec![0; n];
                dev.read_data_into(&mut b);
                read.extend(b);
            }
            Op::Sig(off, n) => {
                let mut b = vec![0; n];
                dev.dma_register_read(off, &mut b);
                read.extend(b);
            }
            Op::Fill(v, n) => read.extend(std::iter::repeat_n(v, n)),
            Op::Select(k) => dev.select(k),
            Op::DataWrite(b) => dev.write_data(b),
            Op::DmaHigh(v) => dev.dma_address_high(v),
            Op::DmaLow(v) => dev.dma_address_low(v),
            Op::Dma64(v) => dev.dma_address_u64(v),
        }
    }
    read
}

fn memory() -> Mem {
    let m = Mem::from_ranges(&[(GuestAddress(0), 0x1_0000)]).unwrap();
    // A descriptor at 0x100: READ 4 bytes to 0x200.
    let desc = fw_cfg_device::abi::DmaAccess {
        control: fw_cfg_device::abi::DMA_CTL_READ,
        length: 4,
        address: 0x200,
    };
    m.write_slice(&desc.to_be_bytes(), GuestAddress(0x100))
        .unwrap();
    m
}

fn device(mem: &Mem, dma: bool, log: Log) -> FwCfg<&Mem, Log> {
    let mut b = FwCfgBuilder::new();
    b.dma(dma);
    b.add_file("opt/a", (0..64).collect()).unwrap();
    let mut dev = b.build_with_events(mem, log);
    let key = dev.file_key("opt/a").unwrap();
    dev.select(key);
    let mut one = [0u8];
    dev.read_data_into(&mut one);
    dev
}

#[test]
fn every_odd_access_splits_as_qemu_splits_it() {
    // Written bytes that make the DMA halves point at the descriptor (a
    // transfer then shows in the log and in guest memory) and the selector
    // writes select something.
    const WRITE: [u8; 8] = [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00];
    let mut cases = 0;
    let mut differ = Vec::new();
    for mmio in [false, true] {
        for dma in [false, true] {
            let regions: Vec<Mr> = match (mmio, dma) {
                (false, _) => {
                    let mut r = vec![Mr {
                        start: 0,
                        size: 2,
                        ops: Ops::Comb,
                    }];
                    if dma {
                        r.push(Mr {
                            start: 4,
                            size: 8,
                            ops: Ops::Dma,
                        });
                    }
                    r
                }
                (true, _) => {
                    let mut r = vec![
                        Mr {
                            start: 0,
                            size: 8,
                            ops: Ops::Data,
                        },
                        Mr {
                            start: 8,
                            size: 2,
                            ops: Ops::Ctl,
                        },
                    ];
                    if dma {
                        r.push(Mr {
                            start: 16,
                            size: 8,
                            ops: Ops::Dma,
                        });
                    }
                    r
                }
            };
            let (window, unassigned) = if mmio { (0x18u64, 0u8) } else { (12, 0xff) };
            for is_write in [false, true] {
                for offset in 0..window {
                    for width in 1..=8usize {
                        cases += 1;
                        let (ma, mb) = (memory(), memory());
                        let (la, lb) = (Log::default(), Log::default());
                        let mut a = device(&ma, dma, la.clone());
                        let mut b = device(&mb, dma, lb.clone());
                        let ops = model(&regions, unassigned, offset, &WRITE[..width], is_write);
                        let expected = apply(&mut b, &ops);
                        let mut got = vec![0u8; width];
                        match (mmio, is_write) {
                            (false, false) => a.pio_read(offset as u16, &mut got),
                            (false, true) => a.pio_write(offset as u16, &WRITE[..width]),
                            (true, false) => a.mmio_read(offset, &mut got),
                            (true, true) => a.mmio_write(offset, &WRITE[..width]),
                        }
                        if is_write {
                            got.clear();
                        }
                        let mut mem_a = vec![0u8; 0x400];
                        let mut mem_b = vec![0u8; 0x400];
                        ma.read_slice(&mut mem_a, GuestAddress(0)).unwrap();
                        mb.read_slice(&mut mem_b, GuestAddress(0)).unwrap();
                        let same = got == expected
                            && a.state() == b.state()
                            && *la.0.lock().unwrap() == *lb.0.lock().unwrap()
                            && mem_a == mem_b;
                        if !same {
                            differ.push(format!(
                                "{} dma {dma} {} +{offset:#x} x{width}: got {got:?} {:?}, QEMU {expected:?} {:?} ({ops:?})",
                                if mmio { "mmio" } else { "pio" },
                                if is_write { "write" } else { "read" },
                                a.state(),
                                b.state()
                            ));
                        }
                    }
                }
            }
        }
    }
    assert_eq!(cases, 1152);
    assert!(
        differ.is_empty(),
        "{} of {cases} differ:\n{}",
        differ.len(),
        differ.join("\n")
    );
}
