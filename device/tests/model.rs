// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Model-based test: a small reference model of fw_cfg, written from QEMU's
//! `docs/specs/fw_cfg.rst` (and, where the spec is silent, from QEMU's
//! `fw_cfg_select` and `fw_cfg_dma_transfer`), runs next to the real device
//! on random access sequences; after every step the registers, the guest
//! memory and the writable item must agree.
//!
//! The model's rules, one per line:
//!
//! - writing the selector selects the item, sets the offset to 0, keeps the
//!   value as written (bit 14 included) but looks the item up without bit
//!   14; an index beyond the file slots selects nothing (`0xffff`);
//! - an unknown key is an empty item;
//! - a data read returns the byte at the offset and advances it; past the
//!   end it returns 0 and does not advance;
//! - data-register writes are ignored;
//! - reset selects the signature;
//! - DMA: the descriptor `{BE32 control, BE32 length, BE64 address}` is read
//!   at the address written to the DMA register; SELECT (bits 31..16) is
//!   applied first; then READ over WRITE over SKIP; a zero length or no
//!   operation succeeds; READ copies item bytes then zeros, SKIP advances,
//!   WRITE replaces bytes of a writable item only when all of them fit and
//!   all of guest memory is readable; the part inside the item advances the
//!   offset even when the guest memory faults; the control word is written
//!   back as 0 or 1 (error) before the kick returns;
//! - guest memory faults where nothing is mapped (the model has a hole);
//!   a faulting copy writes the mapped prefix, then reports the error.
//!
//! The item table is the device's configuration, not its semantics, so the
//! model copies it from the device at the start (and checks the signature
//! and ID items against the spec).

use std::collections::BTreeMap;
use std::sync::Arc;

use fw_cfg_device::abi::*;
use fw_cfg_device::{
    FILE_SLOTS_MIN, FwCfg, FwCfgBuilder, FwCfgMmio, FwCfgPio, FwCfgState, KEY_INDEX_MASK,
};
use proptest::prelude::*;
use vm_device::bus::{MmioAddress, PioAddress};
use vm_device::{MutDeviceMmio, MutDevicePio};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

type Mem = Arc<GuestMemoryMmap<()>>;

/// Guest memory: `[0, LOW_END)` and `[HIGH_START, HIGH_END)`.
const LOW_END: u64 = 0x2000;
const HIGH_START: u64 = 0x3000;
const HIGH_END: u64 = 0x4000;
const PIO: PioAddress = PioAddress(PIO_SELECTOR_PORT);
const MMIO: MmioAddress = MmioAddress(MMIO_BASE_ARM_VIRT);

/// How many bytes starting at `addr` are mapped without a gap.
fn mapped_run(addr: u64) -> u64 {
    if addr < LOW_END {
        LOW_END - addr
    } else if (HIGH_START..HIGH_END).contains(&addr) {
        HIGH_END - addr
    } else {
        0
    }
}

/// The reference model.
#[derive(Debug, Clone)]
struct Model {
    /// Items by `(arch-local bit, index)`.
    items: BTreeMap<(bool, u16), Vec<u8>>,
    writable: (bool, u16),
    max_entry: u16,
    selector: u16,
    offset: u32,
    dma_latch: u64,
    /// Shadow of guest memory, indexed by guest address (the hole unused).
    mem: Vec<u8>,
}

impl Model {
    fn lookup_key(key: u16) -> (bool, u16) {
        (key & KEY_ARCH_LOCAL != 0, key & KEY_INDEX_MASK)
    }

    fn item(&self) -> &[u8] {
        if self.selector == KEY_INVALID {
            return &[];
        }
        self.items
            .get(&Self::lookup_key(self.selector))
            .map_or(&[], |v| v.as_slice())
    }

    fn select(&mut self, key: u16) {
        self.offset = 0;
        self.selector = if key & KEY_INDEX_MASK >= self.max_entry {
            KEY_INVALID
        } else {
            key
        };
    }

    fn read_byte(&mut self) -> u8 {
        match self.item().get(self.offset as usize).copied() {
            Some(b) => {
                self.offset += 1;
                b
            }
            None => 0,
        }
    }

    fn mem_readable(&self, addr: u64, len: u64) -> bool {
        len == 0 || mapped_run(addr) >= len
    }

    fn mem_read(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
        if len == 0 {
            return Some(Vec::new());
        }
        self.mem_readable(addr, len as u64)
            .then(|| self.mem[addr as usize..addr as usize + len].to_vec())
    }

    /// Writes the mapped prefix of `data`; false when not all of it fit.
    fn mem_write(&mut self, addr: u64, data: &[u8]) -> bool {
        let n = (mapped_run(addr) as usize).min(data.len());
        if n > 0 {
            self.mem[addr as usize..addr as usize + n].copy_from_slice(&data[..n]);
        }
        n == data.len()
    }

    /// The transfer described at `desc_at`.
    fn dma(&mut self, desc_at: u64) {
        self.dma_latch = 0;
        let Some(raw) = self.mem_read(desc_at, DMA_ACCESS_SIZE) else {
            self.mem_write(desc_at, &DMA_CTL_ERROR.to_be_bytes());
            return;
        };
        let desc = DmaAccess::from_be_bytes(&raw.try_into().unwrap());
        if desc.control & DMA_CTL_SELECT != 0 {
            self.select(desc.selector());
        }
        let ok = if desc.control & DMA_CTL_READ != 0 {
            self.dma_read(desc.length, desc.address)
        } else if desc.control & DMA_CTL_WRITE != 0 {
            self.dma_write(desc.length, desc.address)
        } else if desc.control & DMA_CTL_SKIP != 0 {
            self.offset += self.in_item(desc.length);
            true
        } else {
            true
        };
        let status = if ok { 0 } else { DMA_CTL_ERROR };
        self.mem_write(desc_at, &status.to_be_bytes());
    }

    /// How many of `length` bytes lie inside the selected item.
    fn in_item(&self, length: u32) -> u32 {
        let len = self.item().len() as u32;
        length.min(len.saturating_sub(self.offset))
    }

    fn dma_read(&mut self, length: u32, address: u64) -> bool {
        let n = self.in_item(length);
        let start = self.offset as usize;
        let bytes = self.item()[start..start + n as usize].to_vec();
        let ok = self.mem_write(address, &bytes);
        self.offset += n;
        if !ok {
            return false;
        }
        // Zeros for the rest, up to the first unmapped byte.
        let rest = u64::from(length - n);
        let Some(at) = address.checked_add(u64::from(n)) else {
            return rest == 0;
        };
        let fill = rest.min(mapped_run(at));
        self.mem_write(at, &vec![0; fill as usize]);
        fill == rest
    }

    fn dma_write(&mut self, length: u32, address: u64) -> bool {
        if length == 0 {
            return true;
        }
        let n = self.in_item(length);
        let writable =
            Self::lookup_key(self.selector) == self.writable && self.selector != KEY_INVALID;
        let data = self.mem_read(address, n as usize);
        let start = self.offset as usize;
        self.offset += n;
        match data {
            Some(data) if writable && n == length => {
                let item = self.items.get_mut(&self.writable).unwrap();
                item[start..start + data.len()].copy_from_slice(&data);
                true
            }
            _ => false,
        }
    }

    fn state(&self) -> FwCfgState {
        FwCfgState {
            selector: self.selector,
            offset: self.offset,
            dma_address: self.dma_latch,
        }
    }

    fn restore(&mut self, s: &FwCfgState) -> bool {
        let selector_ok = s.selector == KEY_INVALID || s.selector & KEY_INDEX_MASK < self.max_entry;
        if !selector_ok {
            return false;
        }
        let saved = (self.selector, self.offset);
        self.selector = s.selector;
        if s.offset as usize > self.item().len() {
            self.selector = saved.0;
            return false;
        }
        self.offset = s.offset;
        self.dma_latch = s.dma_address;
        true
    }
}

/// The device behind whichever front end the last step used; the core
/// moves between the adapters, so one device sees both buses.
enum Front {
    Pio(FwCfgPio<Mem>),
    Mmio(FwCfgMmio<Mem>),
}

impl Front {
    fn core(&self) -> &FwCfg<Mem> {
        match self {
            Front::Pio(p) => p.inner(),
            Front::Mmio(m) => m.inner(),
        }
    }

    fn core_mut(&mut self) -> &mut FwCfg<Mem> {
        match self {
            Front::Pio(p) => p.inner_mut(),
            Front::Mmio(m) => m.inner_mut(),
        }
    }

    fn pio(&mut self) -> &mut FwCfgPio<Mem> {
        if let Front::Mmio(_) = self {
            let Front::Mmio(m) = std::mem::replace(self, Front::Pio(placeholder())) else {
                unreachable!()
            };
            *self = Front::Pio(FwCfgPio::new(m.into_inner()));
        }
        match self {
            Front::Pio(p) => p,
            Front::Mmio(_) => unreachable!(),
        }
    }

    fn mmio(&mut self) -> &mut FwCfgMmio<Mem> {
        if let Front::Pio(_) = self {
            let Front::Pio(p) = std::mem::replace(self, Front::Pio(placeholder())) else {
                unreachable!()
            };
            *self = Front::Mmio(FwCfgMmio::new(p.into_inner()));
        }
        match self {
            Front::Mmio(m) => m,
            Front::Pio(_) => unreachable!(),
        }
    }
}

/// A throwaway device used while the real core changes adapters.
fn placeholder() -> FwCfgPio<Mem> {
    thread_local! {
        static EMPTY: Mem = Arc::new(GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x1000)]).unwrap());
    }
    FwCfgPio::new(FwCfgBuilder::new().build(EMPTY.with(Arc::clone)))
}

#[derive(Debug, Clone)]
enum Op {
    SelectPio(u16),
    SelectMmio(u16),
    /// `n` one-byte reads of port 0x511.
    ReadPio(usize),
    /// One MMIO data read of 1, 2, 4 or 8 bytes.
    ReadMmio(usize),
    WriteDataPio(u8),
    WriteDataMmio(Vec<u8>),
    Reset,
    /// A descriptor at `at`, kicked through PIO (two halves) or MMIO (one
    /// 64-bit write).
    Dma {
        at: u64,
        select: Option<u16>,
        ops: u32,
        length: u32,
        address: u64,
        via_mmio: bool,
    },
    Poke(u64, Vec<u8>),
    Restore(u16, u32, u64),
}

fn key() -> impl Strategy<Value = u16> {
    prop_oneof![
        4 => 0u16..0x28,
        1 => Just(KEY_WRITE_CHANNEL | 0x20),
        1 => Just(KEY_WRITE_CHANNEL | 0x22),
        1 => Just(KEY_X86_IRQ0_OVERRIDE),
        1 => Just(KEY_X86_IRQ0_OVERRIDE | KEY_WRITE_CHANNEL),
        1 => Just(0x8005u16),
        1 => Just(KEY_INVALID),
        1 => any::<u16>(),
    ]
}

fn address() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0x1000u64..0x1100,
        1 => (LOW_END - 24)..(LOW_END + 8),
        1 => (HIGH_START - 8)..(HIGH_START + 8),
        1 => (HIGH_END - 24)..(HIGH_END + 8),
        1 => Just(u64::MAX - 3),
        1 => any::<u64>(),
    ]
}

fn length() -> impl Strategy<Value = u32> {
    prop_oneof![
        4 => 0u32..48,
        1 => 0u32..0x2100,
        1 => Just(u32::MAX),
        1 => any::<u32>(),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => key().prop_map(Op::SelectPio),
        3 => key().prop_map(Op::SelectMmio),
        3 => (1usize..24).prop_map(Op::ReadPio),
        3 => prop_oneof![Just(1usize), Just(2), Just(4), Just(8)].prop_map(Op::ReadMmio),
        1 => any::<u8>().prop_map(Op::WriteDataPio),
        1 => prop::collection::vec(any::<u8>(), 1..9).prop_map(Op::WriteDataMmio),
        1 => Just(Op::Reset),
        6 => (
            prop_oneof![4 => Just(0x800u64), 1 => address()],
            prop::option::of(key()),
            0u32..0x20,
            length(),
            address(),
            any::<bool>(),
        )
            .prop_map(|(at, select, ops, length, address, via_mmio)| Op::Dma {
                at,
                select,
                ops,
                length,
                address,
                via_mmio,
            }),
        1 => (address(), prop::collection::vec(any::<u8>(), 1..24)).prop_map(|(a, d)| Op::Poke(a, d)),
        1 => (key(), prop_oneof![0u32..40, any::<u32>()], any::<u64>())
            .prop_map(|(s, o, d)| Op::Restore(s, o, d)),
    ]
}

struct Setup {
    mem: Mem,
    front: Front,
    model: Model,
    writable_key: u16,
}

fn setup(dma: bool) -> Setup {
    let mem: Mem = Arc::new(
        GuestMemoryMmap::from_ranges(&[
            (GuestAddress(0), LOW_END as usize),
            (GuestAddress(HIGH_START), (HIGH_END - HIGH_START) as usize),
        ])
        .unwrap(),
    );
    let mut b = FwCfgBuilder::new();
    b.dma(dma);
    b.file_slots(FILE_SLOTS_MIN).unwrap();
    b.ram_size(HIGH_END).nb_cpus(1);
    b.add_file("opt/a", (1..=37u8).collect()).unwrap();
    b.add_file("opt/b", Vec::new()).unwrap();
    b.add_file("opt/big", (0..0x1100).map(|i| (i % 253) as u8).collect())
        .unwrap();
    b.add_writable_file("etc/w", vec![0; 16], |_| {}).unwrap();
    b.x86_irq0_override(true);
    let dev = b.build(mem.clone());
    let writable_key = dev.file_key("etc/w").unwrap();

    let max_entry = KEY_FILE_FIRST + dev.file_slots();
    let mut items = BTreeMap::new();
    for arch in [false, true] {
        for index in 0..max_entry {
            let key = index | if arch { KEY_ARCH_LOCAL } else { 0 };
            if let Some(bytes) = dev.item_bytes(key) {
                items.insert((arch, index), bytes.to_vec());
            }
        }
    }
    // What the spec fixes, independent of configuration.
    assert_eq!(items[&(false, KEY_SIGNATURE)], b"QEMU");
    let id = if dma { 3u32 } else { 1 };
    assert_eq!(items[&(false, KEY_ID)], id.to_le_bytes());
    let model = Model {
        items,
        writable: Model::lookup_key(writable_key),
        max_entry,
        selector: KEY_SIGNATURE,
        offset: 0,
        dma_latch: 0,
        mem: vec![0; HIGH_END as usize],
    };
    Setup {
        mem,
        front: Front::Pio(FwCfgPio::new(dev)),
        model,
        writable_key,
    }
}

fn guest_memory(mem: &Mem) -> Vec<u8> {
    let mut v = vec![0u8; HIGH_END as usize];
    mem.read_slice(&mut v[..LOW_END as usize], GuestAddress(0))
        .unwrap();
    mem.read_slice(&mut v[HIGH_START as usize..], GuestAddress(HIGH_START))
        .unwrap();
    v
}

/// Runs one step on both; returns what the guest observed from each.
fn step(s: &mut Setup, op: &Op, dma: bool) -> Result<(), TestCaseError> {
    let m = &mut s.model;
    match op.clone() {
        Op::SelectPio(k) => {
            s.front.pio().pio_write(PIO, 0, &k.to_le_bytes());
            m.select(k);
        }
        Op::SelectMmio(k) => {
            s.front
                .mmio()
                .mmio_write(MMIO, MMIO_SELECTOR_OFFSET, &k.to_be_bytes());
            m.select(k);
        }
        Op::ReadPio(n) => {
            let p = s.front.pio();
            for _ in 0..n {
                let mut b = [0xa5u8];
                p.pio_read(PIO, PIO_DATA_OFFSET, &mut b);
                prop_assert_eq!(b[0], m.read_byte());
            }
        }
        Op::ReadMmio(n) => {
            let mut buf = vec![0xa5u8; n];
            s.front.mmio().mmio_read(MMIO, MMIO_DATA_OFFSET, &mut buf);
            let want: Vec<u8> = (0..n).map(|_| m.read_byte()).collect();
            prop_assert_eq!(buf, want);
        }
        Op::WriteDataPio(b) => s.front.pio().pio_write(PIO, PIO_DATA_OFFSET, &[b]),
        Op::WriteDataMmio(d) => s.front.mmio().mmio_write(MMIO, MMIO_DATA_OFFSET, &d),
        Op::Reset => {
            s.front.core_mut().reset();
            m.select(KEY_SIGNATURE);
        }
        Op::Dma {
            at,
            select,
            ops,
            length,
            address,
            via_mmio,
        } => {
            let control = match select {
                Some(k) => (u32::from(k) << 16) | DMA_CTL_SELECT | (ops & !DMA_CTL_SELECT),
                None => ops & !DMA_CTL_SELECT,
            };
            let desc = DmaAccess {
                control,
                length,
                address,
            };
            let bytes = desc.to_be_bytes();
            let _ = s.mem.write_slice(&bytes, GuestAddress(at));
            m.mem_write(at, &bytes);
            if via_mmio {
                s.front
                    .mmio()
                    .mmio_write(MMIO, MMIO_DMA_OFFSET, &at.to_be_bytes());
            } else {
                let p = s.front.pio();
                p.pio_write(PIO, PIO_DMA_OFFSET, &((at >> 32) as u32).to_be_bytes());
                p.pio_write(PIO, PIO_DMA_OFFSET + 4, &(at as u32).to_be_bytes());
            }
            if dma {
                m.dma(at);
            }
        }
        Op::Poke(a, d) => {
            let _ = s.mem.write_slice(&d, GuestAddress(a));
            m.mem_write(a, &d);
        }
        Op::Restore(selector, offset, dma_address) => {
            let st = FwCfgState {
                selector,
                offset,
                dma_address,
            };
            let dev_ok = s.front.core_mut().restore(&st).is_ok();
            prop_assert_eq!(dev_ok, m.restore(&st));
        }
    }
    Ok(())
}

fn compare(s: &Setup) -> Result<(), TestCaseError> {
    let dev = s.front.core();
    prop_assert_eq!(dev.state(), s.model.state());
    prop_assert_eq!(
        dev.item_bytes(s.writable_key).unwrap(),
        &s.model.items[&s.model.writable][..]
    );
    // Only compare memory where it is mapped (the model's hole stays 0).
    prop_assert!(guest_memory(&s.mem) == s.model.mem, "guest memory differs");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    /// The device and the model agree after every step of a random
    /// sequence of PIO, MMIO and DMA accesses, resets and restores.
    #[test]
    fn device_matches_model(dma in any::<bool>(), ops in prop::collection::vec(op(), 1..48)) {
        let mut s = setup(dma);
        compare(&s)?;
        for op in &ops {
            step(&mut s, op, dma)?;
            compare(&s)?;
        }
    }
}

/// The model itself on the spec's examples, so a wrong model cannot pass
/// by agreeing with a wrong device.
#[test]
fn model_follows_the_spec() {
    let mut s = setup(true);
    let m = &mut s.model;
    // Signature after reset; past the end: 0, no advance.
    let sig: Vec<u8> = (0..6).map(|_| m.read_byte()).collect();
    assert_eq!(sig, b"QEMU\0\0");
    assert_eq!(m.offset, 4);
    // Bit 14 is kept but ignored for lookup.
    m.select(KEY_ID | KEY_WRITE_CHANNEL);
    assert_eq!(m.selector, KEY_ID | KEY_WRITE_CHANNEL);
    assert_eq!(m.read_byte(), 3);
    // Unknown key: empty.
    m.select(0x1f);
    assert_eq!(m.read_byte(), 0);
    assert_eq!(m.offset, 0);
    // DMA READ of the signature with SELECT, then zeros; status 0.
    let desc = DmaAccess::select(KEY_SIGNATURE, DMA_CTL_READ, 8, 0x1000);
    m.mem_write(0x800, &desc.to_be_bytes());
    m.mem[0x1000..0x1008].fill(0xff);
    m.dma(0x800);
    assert_eq!(&m.mem[0x1000..0x1008], b"QEMU\0\0\0\0");
    assert_eq!(&m.mem[0x800..0x804], &[0; 4]);
    assert_eq!(m.offset, 4);
    // WRITE to a read-only item: error.
    let desc = DmaAccess::select(KEY_SIGNATURE, DMA_CTL_WRITE, 4, 0x1000);
    m.mem_write(0x800, &desc.to_be_bytes());
    m.dma(0x800);
    assert_eq!(&m.mem[0x800..0x804], &DMA_CTL_ERROR.to_be_bytes());
    // READ into the hole: the mapped prefix, then the error.
    let desc = DmaAccess::select(KEY_SIGNATURE, DMA_CTL_READ, 4, LOW_END - 2);
    m.mem_write(0x800, &desc.to_be_bytes());
    m.dma(0x800);
    assert_eq!(&m.mem[LOW_END as usize - 2..LOW_END as usize], b"QE");
    assert_eq!(&m.mem[0x800..0x804], &DMA_CTL_ERROR.to_be_bytes());
    assert_eq!(m.offset, 4);
}
