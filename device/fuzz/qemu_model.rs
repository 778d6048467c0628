// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! A model of how QEMU's memory core splits an access to the fw_cfg
//! register windows, written from QEMU's sources, shared by the exhaustive
//! test `tests/split.rs` and the fuzz harness `access_split` (both include
//! this file with `#[path]`):
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
//! perform ([`model`]); [`apply`] runs them on a second device through its
//! primitive methods, and the two devices must agree on the bytes read,
//! the registers, the selections and DMA transfers ([`Log`]), and guest
//! memory.

use std::sync::{Arc, Mutex};

use fw_cfg_device::events::DmaOp;
use fw_cfg_device::{FwCfg, FwCfgBuilder, FwCfgEvents};
use vm_memory::{Bytes, GuestAddress, GuestAddressSpace, GuestMemoryMmap};

/// Guest memory of the model's devices.
pub type Mem = GuestMemoryMmap<()>;

/// Where [`memory`] places its DMA descriptor.
pub const DESCRIPTOR_ADDR: u64 = 0x100;
/// Size of [`memory`].
pub const MEMORY_SIZE: usize = 0x400;

/// One thing a device reports through its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A selector write.
    Selected(u16),
    /// A DMA transfer of this kind and length completed.
    Dma(DmaOp, u32),
    /// A DMA transfer failed.
    DmaError,
}

/// The selections and DMA completions a device reports.
#[derive(Debug, Default, Clone)]
pub struct Log(pub Arc<Mutex<Vec<Event>>>);

impl Log {
    /// What was reported so far.
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }

    /// What was reported since the last call, which forgets it.
    pub fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl FwCfgEvents for Log {
    fn selected(&self, key: u16) {
        self.0.lock().unwrap().push(Event::Selected(key));
    }
    fn dma_transfer(&self, op: DmaOp, bytes: u32) {
        self.0.lock().unwrap().push(Event::Dma(op, bytes));
    }
    fn dma_error(&self) {
        self.0.lock().unwrap().push(Event::DmaError);
    }
}

/// The ops of one QEMU region.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Ops {
    /// x86 selector/data ports (`fw_cfg_comb_mem_ops`).
    Comb,
    /// MMIO data register.
    Data,
    /// MMIO selector (control) register.
    Ctl,
    /// DMA address register.
    Dma,
}

/// One QEMU region of a window: where, and its ops.
#[derive(Debug)]
pub struct Mr {
    /// Offset in the window.
    pub start: u64,
    /// Size in bytes.
    pub size: u64,
    /// What handles it.
    pub ops: Ops,
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

/// The regions of the x86 port window (`mmio == false`) or of the MMIO
/// window, with or without DMA.
pub fn regions(mmio: bool, dma: bool) -> Vec<Mr> {
    let mr = |start, size, ops| Mr { start, size, ops };
    let mut r = if mmio {
        vec![mr(0, 8, Ops::Data), mr(8, 2, Ops::Ctl)]
    } else {
        vec![mr(0, 2, Ops::Comb)]
    };
    if dma {
        r.push(if mmio {
            mr(16, 8, Ops::Dma)
        } else {
            mr(4, 8, Ops::Dma)
        });
    }
    r
}

/// The size of a window and what its unassigned bytes read as.
pub fn window(mmio: bool) -> (u64, u8) {
    if mmio { (0x18, 0) } else { (12, 0xff) }
}

/// What the device is asked to do.
#[derive(Debug)]
pub enum Op {
    /// Read `n` data bytes.
    Data(usize),
    /// `n` bytes of the DMA register's signature from `off`.
    Sig(u64, usize),
    /// `n` bytes of `value` (a rejected or unassigned read).
    Fill(u8, usize),
    /// A selector write.
    Select(u16),
    /// A data-register write.
    DataWrite(u8),
    /// A 32-bit write of the DMA address's high half.
    DmaHigh(u32),
    /// A 32-bit write of the low half (starts a transfer).
    DmaLow(u32),
    /// A 64-bit write of the DMA address (starts a transfer).
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
pub fn model(regions: &[Mr], unassigned: u8, offset: u64, data: &[u8], is_write: bool) -> Vec<Op> {
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
pub fn apply<M: GuestAddressSpace>(dev: &mut FwCfg<M, Log>, ops: &[Op]) -> Vec<u8> {
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

/// Places a DMA descriptor at [`DESCRIPTOR_ADDR`].
pub fn place_descriptor(mem: &Mem, control: u32, length: u32, address: u64) {
    let desc = fw_cfg_device::abi::DmaAccess {
        control,
        length,
        address,
    };
    mem.write_slice(&desc.to_be_bytes(), GuestAddress(DESCRIPTOR_ADDR))
        .unwrap();
}

/// Fresh guest memory of [`MEMORY_SIZE`] bytes with a descriptor at
/// [`DESCRIPTOR_ADDR`]: READ 4 bytes to 0x200.
pub fn memory() -> Mem {
    let m = Mem::from_ranges(&[(GuestAddress(0), MEMORY_SIZE)]).unwrap();
    reset_memory(&m);
    m
}

/// Zeroes `mem` and places [`memory`]'s descriptor again.
pub fn reset_memory(mem: &Mem) {
    mem.write_slice(&[0u8; MEMORY_SIZE], GuestAddress(0))
        .unwrap();
    place_descriptor(mem, fw_cfg_device::abi::DMA_CTL_READ, 4, 0x200);
}

/// All of `mem`.
pub fn memory_bytes(mem: &Mem) -> Vec<u8> {
    let mut out = vec![0u8; MEMORY_SIZE];
    mem.read_slice(&mut out, GuestAddress(0)).unwrap();
    out
}

/// The builder of [`device`].
pub fn builder(dma: bool) -> FwCfgBuilder {
    let mut b = FwCfgBuilder::new();
    b.dma(dma);
    b.add_file("opt/a", (0..64).collect()).unwrap();
    b
}

/// A device with one 64-byte file `opt/a` (bytes 0..64), selected, one
/// byte read.
pub fn device<M: GuestAddressSpace>(mem: M, dma: bool, log: Log) -> FwCfg<M, Log> {
    device_from(&builder(dma), mem, log)
}

/// [`device`] from a builder made by [`builder`].
pub fn device_from<M: GuestAddressSpace>(b: &FwCfgBuilder, mem: M, log: Log) -> FwCfg<M, Log> {
    let mut dev = b.build_with_events(mem, log);
    let key = dev.file_key("opt/a").unwrap();
    dev.select(key);
    let mut one = [0u8];
    dev.read_data_into(&mut one);
    dev
}
