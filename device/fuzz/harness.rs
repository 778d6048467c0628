// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Fuzz harnesses of the device crate, shared by the cargo-fuzz targets in
//! `fuzz/fuzz_targets/` and by the corpus replay test `tests/fuzz_corpus.rs`
//! (both include this file with `#[path]`), so the committed corpora run
//! under a plain `cargo test` with exactly the code the fuzzer ran.
//!
//! The input is decoded by hand from raw bytes (no `arbitrary` dependency):
//! every byte string is a valid program, and a short input simply ends.

use std::cell::RefCell;

// Shared with `tests/split.rs`, which uses parts this file does not.
#[allow(dead_code)]
#[path = "qemu_model.rs"]
mod qemu_model;

use fw_cfg_device::abi::*;
use fw_cfg_device::cmdline::{FwCfgContent, parse_fw_cfg_option};
use fw_cfg_device::{
    FILE_SLOTS_MIN, FwCfg, FwCfgBuilder, FwCfgState, KEY_INDEX_MASK, PhysBitsConfig,
};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Guest memory with a hole: `[0, REGION)` and `[HOLE_END, HOLE_END +
/// REGION)`; nothing is mapped in between or above.
pub const REGION: u64 = 0x1000;
/// Start of the second region (end of the hole).
pub const HOLE_END: u64 = 0x2000;
/// At most this many operations run per input.
pub const MAX_OPS: usize = 256;
/// Size of the file that spans more than one region.
const BIG_FILE: usize = 0x1800;

/// Reads the input as a stream of little-endian integers; zeros once it
/// runs out.
pub struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    /// A stream over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Input { data, pos: 0 }
    }

    /// Whether every byte was consumed.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// The next byte (0 past the end).
    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    /// The next `N` bytes.
    pub fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for b in &mut out {
            *b = self.u8();
        }
        out
    }

    /// The next little-endian u16.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.array())
    }

    /// The next little-endian u32.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }

    /// The next little-endian u64.
    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.array())
    }

    /// The next `n` bytes (fewer at the end of the input).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        let end = start.saturating_add(n).min(self.data.len());
        self.pos = self.pos.saturating_add(n);
        &self.data[start..end]
    }
}

/// Selectors worth trying often: every kind of key the device decodes.
const KEYS: [u16; 24] = [
    KEY_SIGNATURE,
    KEY_ID,
    KEY_UUID,
    KEY_RAM_SIZE,
    KEY_FILE_DIR,
    0x1f,
    0x20,
    0x21,
    0x22,
    0x23,
    0x24,
    0x25,
    0x2f,
    0x30,
    0x3fff,
    KEY_WRITE_CHANNEL,
    KEY_WRITE_CHANNEL | 0x20,
    KEY_WRITE_CHANNEL | 0x23,
    KEY_ARCH_LOCAL,
    KEY_X86_IRQ0_OVERRIDE,
    KEY_ARCH_LOCAL | KEY_WRITE_CHANNEL | 2,
    0x7fff,
    0xbfff,
    KEY_INVALID,
];

fn key(input: &mut Input<'_>) -> u16 {
    let b = input.u8();
    if b < 0xc0 {
        KEYS[usize::from(b) % KEYS.len()]
    } else {
        input.u16()
    }
}

/// An address inside, around or far from the two regions.
fn addr(input: &mut Input<'_>) -> u64 {
    match input.u8() % 6 {
        0 => u64::from(input.u16()) % REGION,
        1 => REGION - 32 + u64::from(input.u8() % 64),
        2 => HOLE_END + u64::from(input.u16()) % REGION,
        3 => HOLE_END - 32 + u64::from(input.u8() % 64),
        4 => HOLE_END + REGION - 32 + u64::from(input.u8() % 64),
        _ => input.u64(),
    }
}

/// A DMA length: small, medium, `0xffffffff` or anything.
fn length(input: &mut Input<'_>) -> u32 {
    match input.u8() % 4 {
        0 => u32::from(input.u8()),
        1 => u32::from(input.u16()),
        2 => u32::MAX,
        _ => input.u32(),
    }
}

/// An access width: the architectural ones most of the time.
fn width(input: &mut Input<'_>) -> usize {
    match input.u8() % 8 {
        0 | 1 => 1,
        2 => 2,
        3 => 4,
        4 => 8,
        _ => usize::from(input.u8() % 20),
    }
}

fn builder(config: u8) -> FwCfgBuilder {
    let mut b = FwCfgBuilder::new();
    b.dma(config & 1 == 0);
    b.ram_size(HOLE_END + REGION).nb_cpus(2);
    b.add_file("opt/a", (0..100u8).collect()).unwrap();
    b.add_file(
        "opt/big",
        (0..BIG_FILE).map(|i| (i % 251) as u8 + 1).collect(),
    )
    .unwrap();
    b.add_writable_file_ranged("etc/w", vec![0; 16], |offset, len, item| {
        // The device promises the written range lies inside the item.
        assert!(u64::from(offset) + u64::from(len) <= item.len() as u64);
        assert_eq!(item.len(), 16);
    })
    .unwrap();
    b.add_file("empty", Vec::new()).unwrap();
    b.x86_irq0_override(true);
    PhysBitsConfig::host_passthrough(46).add_to(&mut b).unwrap();
    if config & 2 != 0 {
        b.file_slots(FILE_SLOTS_MIN).unwrap();
    }
    b
}

/// Length of the selected item as the ABI sees it (0 for none).
fn item_len<M: vm_memory::GuestAddressSpace>(dev: &FwCfg<M>, selector: u16) -> u32 {
    dev.item_bytes(selector).map_or(0, |d| d.len() as u32)
}

/// What reading `n` data bytes at the device's current position must
/// return, and the offset afterwards: item bytes, then zeros without
/// advancing.
fn expected_read<M: vm_memory::GuestAddressSpace>(dev: &FwCfg<M>, n: usize) -> (Vec<u8>, u32) {
    let s = dev.state();
    let item = dev.item_bytes(s.selector).unwrap_or(&[]);
    let avail = item.get(s.offset as usize..).unwrap_or(&[]);
    let copied = avail.len().min(n);
    let mut out = avail[..copied].to_vec();
    out.resize(n, 0);
    (out, s.offset + copied as u32)
}

/// Invariants that hold after every step, for any device.
fn check_invariants<M: vm_memory::GuestAddressSpace>(dev: &FwCfg<M>, twin: &mut FwCfg<M>) {
    let s = dev.state();
    let len = item_len(dev, s.selector);
    assert!(s.offset <= len, "offset past the end: {s:?}, item of {len}");
    // A selector the device reached is in range or "none".
    assert!(
        s.selector == KEY_INVALID
            || u32::from(s.selector & KEY_INDEX_MASK)
                < u32::from(KEY_FILE_FIRST) + u32::from(dev.file_slots())
    );
    // Every state a guest can reach restores on a same-config device.
    if let Err(e) = twin.restore(&s) {
        panic!("reachable state {s:?} does not restore: {e}");
    }
    assert_eq!(twin.state(), s);
}

thread_local! {
    static MEM: GuestMemoryMmap<()> = GuestMemoryMmap::from_ranges(&[
        (GuestAddress(0), REGION as usize),
        (GuestAddress(HOLE_END), REGION as usize),
    ])
    .unwrap();
    static BUILDERS: RefCell<Vec<Option<FwCfgBuilder>>> = RefCell::new((0..4).map(|_| None).collect());
}

/// Target `device_ops`: an arbitrary sequence of PIO and MMIO accesses of
/// any width and offset through `FwCfg::pio_*`/`mmio_*` (what the
/// `vm-device` adapters forward to), DMA kicks with
/// arbitrary descriptors into guest memory with a hole, guest memory
/// pokes, resets and arbitrary snapshot restores.
///
/// Checked after every step: nothing panics; data reads return the item's
/// bytes and then zeros without advancing; the offset never passes the end
/// of the item; every reachable state restores on a twin; a kicked
/// descriptor in mapped memory gets its control word written back as 0 or
/// `DMA_CTL_ERROR`; a rejected restore leaves the device unchanged.
pub fn device_ops(data: &[u8]) {
    let mut input = Input::new(data);
    let config = input.u8() & 3;
    let b = BUILDERS.with(|bs| {
        let mut bs = bs.borrow_mut();
        let slot = &mut bs[usize::from(config)];
        // Builders are immutable once made; clones share the item bytes.
        slot.get_or_insert_with(|| builder(config)).clone()
    });
    MEM.with(|mem| {
        // Fresh guest memory for each input.
        let zeros = [0u8; REGION as usize];
        mem.write_slice(&zeros, GuestAddress(0)).unwrap();
        mem.write_slice(&zeros, GuestAddress(HOLE_END)).unwrap();
        run_ops(&b, mem, &mut input);
    });
}

fn run_ops(b: &FwCfgBuilder, mem: &GuestMemoryMmap<()>, input: &mut Input<'_>) {
    // One device driven through the port window, one through the MMIO
    // window, both with the inherent access methods any bus calls.
    let mut pio = b.build(mem);
    let mut mmio = b.build(mem);
    let mut twin = b.build(mem);
    let dma = pio.dma_enabled();

    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        match input.u8() % 12 {
            0 => {
                // PIO read, any offset in and around the window.
                let offset = u16::from(input.u8() % 16);
                let n = width(input);
                let expect = (n == 1 && offset < 2).then(|| expected_read(&pio, 1));
                let mut buf = vec![0xa5; n];
                pio.pio_read(offset, &mut buf);
                if let Some((bytes, off)) = expect {
                    assert_eq!(buf, bytes, "PIO data read");
                    assert_eq!(pio.state().offset, off);
                }
            }
            1 => {
                let offset = u16::from(input.u8() % 16);
                let n = width(input);
                let d = input.bytes(n).to_vec();
                pio.pio_write(offset, &d);
            }
            2 => {
                let offset = u64::from(input.u8() % 0x20);
                let n = width(input);
                // QEMU's memory core cuts a data read to a power of two;
                // the rest of the access reads 0 (see `qemu_model.rs`).
                let expect = (offset == 0 && (1..=8).contains(&n)).then(|| {
                    let (mut bytes, off) = expected_read(&mmio, 1 << n.ilog2());
                    bytes.resize(n, 0);
                    (bytes, off)
                });
                let mut buf = vec![0xa5; n];
                mmio.mmio_read(offset, &mut buf);
                if let Some((bytes, off)) = expect {
                    assert_eq!(buf, bytes, "MMIO data read");
                    assert_eq!(mmio.state().offset, off);
                }
            }
            3 => {
                let offset = u64::from(input.u8() % 0x20);
                let n = width(input);
                let d = input.bytes(n).to_vec();
                mmio.mmio_write(offset, &d);
            }
            4..=6 => dma_kick(input, mem, &mut pio, &mut mmio, dma),
            7 => {
                // The guest scribbles on its memory (descriptors, buffers).
                let at = addr(input);
                let n = usize::from(input.u8() % 32);
                let d = input.bytes(n).to_vec();
                let _ = mem.write_slice(&d, GuestAddress(at));
            }
            8..=9 => restore_anything(input, &mut pio, &mut mmio),
            10 => {
                pio.reset();
                mmio.reset();
                assert_eq!(pio.state().selector, KEY_SIGNATURE);
                assert_eq!(pio.state().offset, 0);
            }
            _ => select_and_read(input, &mut mmio),
        }
        check_invariants(&pio, &mut twin);
        check_invariants(&mmio, &mut twin);
    }
}

/// The device type the harness drives.
type Dev<'a> = FwCfg<&'a GuestMemoryMmap<()>>;

/// A DMA kick: place a descriptor, then write its address through one of
/// the four ways a guest can.
fn dma_kick(
    input: &mut Input<'_>,
    mem: &GuestMemoryMmap<()>,
    pio: &mut Dev<'_>,
    mmio: &mut Dev<'_>,
    dma: bool,
) {
    let at = addr(input);
    let op = input.u8();
    let control = if op & 0x80 != 0 {
        input.u32()
    } else {
        (u32::from(key(input)) << 16) | u32::from(op & 0x1f)
    };
    let desc = DmaAccess {
        control,
        length: length(input),
        address: addr(input),
    };
    let placed = mem
        .write_slice(&desc.to_be_bytes(), GuestAddress(at))
        .is_ok();
    let (high, low) = ((at >> 32) as u32, at as u32);
    let kicked = match input.u8() % 4 {
        0 => {
            pio.pio_write(PIO_DMA_OFFSET, &high.to_be_bytes());
            pio.pio_write(PIO_DMA_OFFSET + 4, &low.to_be_bytes());
            &*pio
        }
        1 => {
            pio.pio_write(PIO_DMA_OFFSET, &at.to_be_bytes());
            &*pio
        }
        2 => {
            mmio.mmio_write(MMIO_DMA_OFFSET, &at.to_be_bytes());
            &*mmio
        }
        _ => {
            mmio.mmio_write(MMIO_DMA_OFFSET, &high.to_be_bytes());
            mmio.mmio_write(MMIO_DMA_OFFSET + 4, &low.to_be_bytes());
            &*mmio
        }
    };
    // The latch is consumed by the kick.
    assert!(!dma || kicked.state().dma_address == 0);
    if placed && dma {
        // Completion is synchronous: the guest never polls a
        // control word that stays busy (OVMF would hang).
        let mut c = [0u8; 4];
        mem.read_slice(&mut c, GuestAddress(at)).unwrap();
        let c = u32::from_be_bytes(c);
        assert!(c == 0 || c == DMA_CTL_ERROR, "control word {c:#x}");
    }
}

/// Direct core calls (the VMM's view), e.g. a 16-bit select followed by
/// a wide read.
fn select_and_read(input: &mut Input<'_>, dev: &mut Dev<'_>) {
    let k = key(input);
    let n = width(input);
    dev.select(k);
    let (bytes, off) = expected_read(dev, n);
    let mut buf = vec![0xa5; n];
    dev.read_data_into(&mut buf);
    assert_eq!(buf, bytes);
    assert_eq!(dev.state().offset, off);
}

/// A snapshot from anywhere (a hostile migration stream), restored into
/// one of the devices: applied exactly, or rejected without a change.
fn restore_anything<'m>(input: &mut Input<'_>, pio: &mut Dev<'m>, mmio: &mut Dev<'m>) {
    let s = FwCfgState {
        selector: key(input),
        offset: match input.u8() % 3 {
            0 => u32::from(input.u8()),
            1 => u32::from(input.u16()),
            _ => input.u32(),
        },
        dma_address: input.u64(),
    };
    let dev = if input.u8() & 1 == 0 { pio } else { mmio };
    let before = dev.state();
    match dev.restore(&s) {
        Ok(()) => assert_eq!(dev.state(), s),
        Err(_) => assert_eq!(dev.state(), before, "failed restore changed state"),
    }
}

/// Target `cmdline`: QEMU's `-fw_cfg` option parser on arbitrary text.
///
/// Checked: no panic; an accepted option has a name of 1..=55 bytes
/// without NUL and exactly one non-empty source; a `string=` option is
/// accepted by the builder as a file.
pub fn cmdline(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(option) = parse_fw_cfg_option(s) else {
        return;
    };
    assert!(!option.name.is_empty() && option.name.len() <= FILE_NAME_MAX_LEN);
    assert!(!option.name.contains('\0'));
    let warnings = option.warnings();
    assert_eq!(warnings.is_empty(), option.name.starts_with("opt/"));
    match &option.content {
        FwCfgContent::String(v) => {
            assert!(!v.is_empty());
            let mut b = FwCfgBuilder::new();
            b.add_option(&option).unwrap();
            assert_eq!(b.file_count(), 1);
        }
        FwCfgContent::File(p) => assert!(!p.as_os_str().is_empty()),
    }
}

/// Written values that make accesses do something: the DMA register
/// pointing at the model's descriptor (as one 64-bit write, or as high and
/// low halves), selections of the file and of well-known keys, or any
/// bytes.
fn access_value(input: &mut Input<'_>, width: usize) -> [u8; 8] {
    let desc = qemu_model::DESCRIPTOR_ADDR as u32;
    let mut v = [0u8; 8];
    match input.u8() % 5 {
        0 => v[4..].copy_from_slice(&desc.to_be_bytes()),
        1 => v[..4].copy_from_slice(&desc.to_be_bytes()),
        2 => v[..2].copy_from_slice(&key(input).to_le_bytes()),
        3 => v[..2].copy_from_slice(&key(input).to_be_bytes()),
        _ => v[..width].copy_from_slice(&input.array::<8>()[..width]),
    }
    v
}

/// Target `access_split`: random sequences of accesses (x86 ports or
/// MMIO, read or write, any offset of the window, 1 to 8 bytes, chosen or
/// arbitrary values) on a device with DMA on or off, and the same accesses
/// turned into device operations by the model of QEMU's memory core
/// (`qemu_model.rs`, which `tests/split.rs` checks exhaustively for one
/// access from a fixed state) and run on a twin device. Now and then the
/// DMA descriptor in guest memory is rewritten (fuzzer-chosen selector,
/// operation bits and length).
///
/// Checked after every access: both devices return the same bytes, have
/// the same registers, reported the same selections and DMA transfers,
/// and left guest memory the same.
pub fn access_split(data: &[u8]) {
    let mut input = Input::new(data);
    let dma = input.u8() & 1 == 0;
    SPLIT.with(|(ma, mb, builders)| {
        qemu_model::reset_memory(ma);
        qemu_model::reset_memory(mb);
        access_sequence(&mut input, ma, mb, &builders[usize::from(dma)]);
    });
}

thread_local! {
    /// The two guest memories of `access_split` and its builders (DMA
    /// off, on), made once.
    static SPLIT: (qemu_model::Mem, qemu_model::Mem, [FwCfgBuilder; 2]) = (
        qemu_model::memory(),
        qemu_model::memory(),
        [qemu_model::builder(false), qemu_model::builder(true)],
    );
}

fn access_sequence(
    input: &mut Input<'_>,
    ma: &qemu_model::Mem,
    mb: &qemu_model::Mem,
    builder: &FwCfgBuilder,
) {
    let (la, lb) = (qemu_model::Log::default(), qemu_model::Log::default());
    let mut a = qemu_model::device_from(builder, ma, la.clone());
    let mut b = qemu_model::device_from(builder, mb, lb.clone());
    let dma = a.dma_enabled();
    let regions = [
        qemu_model::regions(false, dma),
        qemu_model::regions(true, dma),
    ];
    for step in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        let op = input.u8();
        if op & 0xf0 == 0xf0 {
            let control = (u32::from(key(input)) << 16) | u32::from(input.u8() & 0x1f);
            let length = u32::from(input.u8());
            let address = 0x200 + u64::from(input.u8());
            for mem in [ma, mb] {
                qemu_model::place_descriptor(mem, control, length, address);
            }
            continue;
        }
        let (mmio, is_write) = (op & 1 != 0, op & 2 != 0);
        let (window, unassigned) = qemu_model::window(mmio);
        let offset = u64::from(input.u8()) % window;
        let width = 1 + usize::from(input.u8() % 8);
        let value = access_value(input, width);
        let value = &value[..width];
        let ops = qemu_model::model(
            &regions[usize::from(mmio)],
            unassigned,
            offset,
            value,
            is_write,
        );
        let expected = qemu_model::apply(&mut b, &ops);
        let mut got = vec![0u8; width];
        match (mmio, is_write) {
            (false, false) => a.pio_read(offset as u16, &mut got),
            (false, true) => a.pio_write(offset as u16, value),
            (true, false) => a.mmio_read(offset, &mut got),
            (true, true) => a.mmio_write(offset, value),
        }
        if is_write {
            got.clear();
        }
        let what = || {
            let bus = if mmio { "mmio" } else { "pio" };
            let dir = if is_write { "write" } else { "read" };
            format!("step {step}: {bus} {dir} +{offset:#x} {value:02x?} ({ops:?})")
        };
        assert_eq!(got, expected, "bytes read, {}", what());
        assert_eq!(a.state(), b.state(), "registers, {}", what());
        assert_eq!(la.take(), lb.take(), "events, {}", what());
        assert!(
            qemu_model::memory_bytes(ma) == qemu_model::memory_bytes(mb),
            "guest memory, {}",
            what()
        );
    }
}

/// File names the `table_loader` program picks from: short, nested, the
/// longest valid (55 bytes), one too long, empty and with a NUL.
const LOADER_NAMES: [&str; 7] = [
    "etc/acpi/tables",
    "etc/acpi/rsdp",
    "a",
    "etc/w",
    "0123456789012345678901234567890123456789012345678901234",
    "01234567890123456789012345678901234567890123456789012345",
    "",
];

/// The table-loader builder: up to [`MAX_OPS`] ALLOCATE / ADD_POINTER /
/// ADD_CHECKSUM / WRITE_POINTER calls with fuzzer-chosen names, data,
/// alignments, zones, offsets and sizes, then the stream applied as
/// firmware does; the rest of the input is applied as a raw stream.
///
/// Invariants: no panic; every command round-trips through its 128 bytes;
/// a stream the builder accepted always applies, and after it every
/// checksum whose range covers its own byte sums to 0; raw streams give an
/// error or a result, never a panic.
pub fn table_loader(data: &[u8]) {
    use fw_cfg_device::table_loader::{Command, Loaded, TableLoader, Zone, apply};

    let mut input = Input::new(data);
    let mut l = TableLoader::new();
    let mut writable: Vec<(String, Vec<u8>)> = Vec::new();
    let ops = usize::from(input.u8() % 32);
    for _ in 0..ops {
        let op = input.u8();
        let name = |i: &mut Input| LOADER_NAMES[usize::from(i.u8()) % LOADER_NAMES.len()];
        let small = |i: &mut Input| u32::from(i.u8());
        let _ = match op % 4 {
            0 => {
                let n = name(&mut input);
                let len = usize::from(input.u8());
                let bytes = input.bytes(len).to_vec();
                let align = [0, 1, 3, 16, 64, 4096, 8192][usize::from(input.u8()) % 7];
                let zone = if input.u8() & 1 == 0 {
                    Zone::High
                } else {
                    Zone::Fseg
                };
                l.allocate(n, bytes, align, zone).map(|_| ())
            }
            1 => {
                let (d, s) = (name(&mut input), name(&mut input));
                let (off, size) = (small(&mut input), input.u8() % 10);
                l.add_pointer(d, off, size, s).map(|_| ())
            }
            2 => {
                let n = name(&mut input);
                let (off, start, len) = (small(&mut input), small(&mut input), small(&mut input));
                l.add_checksum(n, off, start, len).map(|_| ())
            }
            _ => {
                let (d, s) = (name(&mut input), name(&mut input));
                let dest_len = small(&mut input) % 16;
                let (off, size, soff) = (small(&mut input), input.u8() % 10, small(&mut input));
                let r = l.write_pointer(d, dest_len, off, size, s, soff);
                if r.is_ok() {
                    // A destination's length is the largest one declared.
                    match writable.iter_mut().find(|(n, _)| n == d) {
                        Some((_, v)) if v.len() < dest_len as usize => {
                            v.resize(dest_len as usize, 0)
                        }
                        Some(_) => {}
                        None => writable.push((d.to_string(), vec![0; dest_len as usize])),
                    }
                }
                r.map(|_| ())
            }
        };
        if input.is_empty() {
            break;
        }
    }
    for c in l.commands() {
        assert_eq!(
            Command::from_bytes(&c.to_bytes()).unwrap().as_ref(),
            Some(c)
        );
    }
    let files = |n: &str| {
        l.file_data(n).or_else(|| {
            writable
                .iter()
                .find(|(w, _)| w == n)
                .map(|(_, v)| v.as_slice())
        })
    };
    let loaded: Loaded = apply(&l.commands_bytes(), files).expect("accepted streams apply");
    for c in l.commands() {
        if let Command::AddChecksum {
            file,
            offset,
            start,
            length,
        } = c
        {
            if (*start..start + length).contains(offset) {
                let d = &loaded.files[file].1;
                let sum = d[*start as usize..(start + length) as usize]
                    .iter()
                    .fold(0u8, |a, &b| a.wrapping_add(b));
                assert_eq!(sum, 0, "checksum at {offset} of {file}");
            }
        }
    }
    let rest = input.bytes(usize::MAX);
    let _ = apply(rest, files);
}
