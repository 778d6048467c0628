// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Fuzz harnesses of the guest crate, shared by the cargo-fuzz targets in
//! `fuzz/fuzz_targets/` and by the corpus replay test `tests/fuzz_corpus.rs`
//! (both include this file with `#[path]`), so the committed corpora run
//! under a plain `cargo test` with exactly the code the fuzzer ran.

use std::cell::RefCell;
use std::rc::Rc;

use fw_cfg_guest::abi::{
    DMA_ACCESS_SIZE, DMA_CTL_ERROR, FILE_DIR_ENTRY_SIZE, FILE_DIR_HEADER_SIZE, FILE_NAME_MAX_LEN,
    FILE_SLOTS_MAX, PHYS_BITS_FILE_NAME, PHYS_BITS_FILE_V1_SIZE, PhysBitsFile,
};
use fw_cfg_guest::cpuid::{CpuidResult, CpuidSource, read_cpuid_channel};
use fw_cfg_guest::policy::{ChannelInputs, FileState, PolicyMode, decide};
use fw_cfg_guest::reader::{FileEntry, FwCfgReader, Lookup, PHYS_BITS_FILE_READ_MAX, ReadError};
use fw_cfg_guest::transport::{
    Dma, DmaKick, DmaMemory, FwCfgTransport, Mmio, MmioBus, PortBus, PortIo, TransportError,
};

/// Most bytes one directory walk may read: the count and 0x3fe0 entries.
pub const MAX_WALK: u64 =
    FILE_DIR_HEADER_SIZE as u64 + FILE_SLOTS_MAX as u64 * FILE_DIR_ENTRY_SIZE as u64;
/// Largest read buffer the harness hands to `read_file`.
const MAX_BUF: usize = 512;

/// The hostile host: every byte the guest reads (register reads, DMA
/// control words, DMA buffer contents) is the next byte of the input; zeros
/// once it runs out.
pub struct Host<'a> {
    data: &'a [u8],
    pos: usize,
    /// Bytes handed to the guest so far.
    pub delivered: u64,
    /// DMA control words read so far.
    pub polls: u64,
    /// DMA kicks so far.
    pub kicks: u64,
}

impl<'a> Host<'a> {
    /// A host answering from `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Host {
            data,
            pos: 0,
            delivered: 0,
            polls: 0,
            kicks: 0,
        }
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

    /// The next little-endian u32.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }

    fn deliver<const N: usize>(&mut self) -> [u8; N] {
        self.delivered += N as u64;
        self.array()
    }
}

type Shared<'a> = Rc<RefCell<Host<'a>>>;

/// x86 ports answered by the host.
struct Ports<'a>(Shared<'a>);

impl PortBus for Ports<'_> {
    fn out16(&mut self, _port: u16, _value: u16) {}
    fn out32(&mut self, _port: u16, _value: u32) {
        self.0.borrow_mut().kicks += 1;
    }
    fn in8(&mut self, _port: u16) -> u8 {
        self.0.borrow_mut().deliver::<1>()[0]
    }
}

/// An MMIO window answered by the host.
struct Window<'a>(Shared<'a>);

impl MmioBus for Window<'_> {
    fn read8(&mut self, _offset: u64) -> u8 {
        self.0.borrow_mut().deliver::<1>()[0]
    }
    fn read16(&mut self, _offset: u64) -> u16 {
        u16::from_ne_bytes(self.0.borrow_mut().deliver())
    }
    fn read32(&mut self, _offset: u64) -> u32 {
        u32::from_ne_bytes(self.0.borrow_mut().deliver())
    }
    fn read64(&mut self, _offset: u64) -> u64 {
        u64::from_ne_bytes(self.0.borrow_mut().deliver())
    }
    fn write16(&mut self, _offset: u64, _value: u16) {}
    fn write64(&mut self, _offset: u64, _value: u64) {
        self.0.borrow_mut().kicks += 1;
    }
}

/// DMA memory whose control word and buffer the host fills at will.
struct HostDmaMemory<'a> {
    host: Shared<'a>,
    len: usize,
    descriptor: [u8; DMA_ACCESS_SIZE],
}

// SAFETY: the "device" is the fuzzer's host, which touches no memory: it
// answers control words and buffer contents from the input.
unsafe impl DmaMemory for HostDmaMemory<'_> {
    fn descriptor_address(&self) -> u64 {
        0x1000
    }
    fn write_descriptor(&mut self, bytes: &[u8; DMA_ACCESS_SIZE]) {
        self.descriptor = *bytes;
    }
    fn read_control(&mut self) -> u32 {
        let mut h = self.host.borrow_mut();
        h.polls += 1;
        // Mostly plausible completions, sometimes anything.
        match h.u8() {
            0..=0x9f => 0,
            0xa0..=0xbf => DMA_CTL_ERROR,
            0xc0..=0xdf => u32::from_be_bytes([
                self.descriptor[0],
                self.descriptor[1],
                self.descriptor[2],
                self.descriptor[3],
            ]),
            _ => h.u32(),
        }
    }
    fn buffer_address(&self) -> u64 {
        0x2000
    }
    fn buffer_len(&self) -> usize {
        self.len
    }
    fn read_buffer(&mut self, offset: usize, out: &mut [u8]) {
        assert!(offset + out.len() <= self.len, "read past the DMA buffer");
        let mut h = self.host.borrow_mut();
        for b in out {
            *b = h.deliver::<1>()[0];
        }
    }
}

/// Register transports that can kick DMA, answered by the host.
enum Regs<'a> {
    Ports(PortIo<Ports<'a>>),
    Mmio(Mmio<Window<'a>>),
}

impl FwCfgTransport for Regs<'_> {
    fn select(&mut self, key: u16) {
        match self {
            Regs::Ports(t) => t.select(key),
            Regs::Mmio(t) => t.select(key),
        }
    }
    fn read(&mut self, buf: &mut [u8]) -> Result<(), TransportError> {
        match self {
            Regs::Ports(t) => t.read(buf),
            Regs::Mmio(t) => t.read(buf),
        }
    }
}

impl DmaKick for Regs<'_> {
    unsafe fn kick(&mut self, descriptor_address: u64) {
        // SAFETY: forwarded to our caller's promise (and the buses behind
        // these transports only count the write).
        unsafe {
            match self {
                Regs::Ports(t) => t.kick(descriptor_address),
                Regs::Mmio(t) => t.kick(descriptor_address),
            }
        }
    }
}

/// CPUID answered from a table the host chose.
struct HostCpuid(Vec<(u32, CpuidResult)>);

impl CpuidSource for HostCpuid {
    fn cpuid(&self, leaf: u32, _subleaf: u32) -> CpuidResult {
        self.0
            .iter()
            .find(|(l, _)| *l == leaf)
            .map(|(_, r)| *r)
            .unwrap_or_default()
    }
}

const LEAVES: [u32; 10] = [
    0,
    1,
    7,
    0x4000_0000,
    0x4000_0001,
    0x4000_0100,
    0x4000_0101,
    0x8000_0000,
    0x8000_0001,
    0x8000_0008,
];

fn host_cpuid(host: &mut Host<'_>) -> HostCpuid {
    let n = host.u8() % 8;
    let mut table = Vec::new();
    for _ in 0..n {
        let sel = host.u8();
        let leaf = if sel < 0xf0 {
            LEAVES[usize::from(sel) % LEAVES.len()]
        } else {
            host.u32()
        };
        let r = CpuidResult {
            eax: host.u32(),
            ebx: host.u32(),
            ecx: host.u32(),
            edx: host.u32(),
        };
        table.push((leaf, r));
    }
    HostCpuid(table)
}

/// Target `guest_host`: the whole guest flow against a hostile host.
///
/// The first input bytes choose the transport (port I/O, port I/O with
/// string reads, MMIO, DMA over ports or over MMIO with a buffer size and a
/// poll limit), a CPUID table and a name to look up; every later byte is
/// what the host answers. Runs `FwCfgReader::new`, a `files()` walk,
/// `find_file` with both lookups, `read_file`, `read_entry_prefix`,
/// `FwCfgReader::read_phys_bits_file` and `decide` in every mode.
///
/// Checked: nothing panics; every walk yields at most the declared count
/// (itself at most 0x3fe0) of validated entries; no read overruns the
/// caller's or the DMA buffer; the bytes read stay within the ABI's bound;
/// each DMA transfer polls at most its limit; strict decisions stay within 36..=52 and any hard conflict gives 36.
pub fn guest_host(data: &[u8]) {
    let host = Rc::new(RefCell::new(Host::new(data)));
    let (mode, buf_len, max_polls, cpuid, name) = {
        let mut h = host.borrow_mut();
        let mode = h.u8();
        let buf_len = usize::from(h.u8()) * 4;
        let max_polls = u32::from(h.u8() % 8) + 1;
        let cpuid = host_cpuid(&mut h);
        let name_len = usize::from(h.u8() % 64);
        let name: Vec<u8> = (0..name_len).map(|_| h.u8()).collect();
        (mode, buf_len, max_polls, cpuid, name)
    };
    let name = String::from_utf8_lossy(&name).into_owned();
    let ports = || PortIo::with_bus(Ports(host.clone()));
    let file = match mode % 6 {
        0 => flow(ports(), &host, &name, None),
        1 => {
            let mut t = ports();
            t.set_string_reads(true);
            flow(t, &host, &name, None)
        }
        2 => flow(Mmio::with_bus(Window(host.clone())), &host, &name, None),
        m => {
            let regs = if m == 3 {
                Regs::Ports(ports())
            } else {
                Regs::Mmio(Mmio::with_bus(Window(host.clone())))
            };
            let mem = HostDmaMemory {
                host: host.clone(),
                len: buf_len,
                descriptor: [0; DMA_ACCESS_SIZE],
            };
            let mut t = Dma::new(regs, mem);
            t.set_max_polls(max_polls);
            flow(t, &host, &name, Some(max_polls))
        }
    };
    let report = read_cpuid_channel(&cpuid);
    let mut inputs = ChannelInputs::new(&report, file);
    for five_level in [false, true] {
        inputs.five_level_paging = five_level;
        check_decisions(&inputs);
    }
}

fn check_decisions(inputs: &ChannelInputs) {
    for mode in PolicyMode::ALL {
        let d = decide(inputs, mode);
        assert_eq!(d, decide(inputs, mode), "decide is not a function");
        assert_eq!(d.mode, mode);
        if mode != PolicyMode::Heuristic && d.conflicts.has_hard() {
            assert_eq!(
                d.phys_bits,
                inputs.fallback(),
                "hard conflict, not the fallback: {d:?}"
            );
        }
        if mode != PolicyMode::Heuristic {
            assert!((32..=52).contains(&d.phys_bits), "{mode:?} width {d:?}");
            if let Some(c) = inputs.ceiling() {
                assert!(d.phys_bits <= c, "above a stated width: {d:?}");
            }
        }
    }
}

/// The reader flow over one transport; returns what the file channel said.
fn flow<T: FwCfgTransport>(
    t: T,
    host: &Shared<'_>,
    name: &str,
    max_polls: Option<u32>,
) -> FileState {
    let kicks_before = host.borrow().kicks;
    let polls_before = host.borrow().polls;
    let mut reader = match FwCfgReader::new(t) {
        Ok(r) => r,
        Err(ReadError::NoSignature { found }) => {
            assert_ne!(found, *b"QEMU");
            return FileState::Absent;
        }
        Err(e) => panic!("FwCfgReader::new: unexpected {e:?}"),
    };
    let mut walks = 0u64;
    let mut file_bytes = 0u64;

    check_walk(&mut reader);
    walks += 1;

    for lookup in [Lookup::FullScan, Lookup::FirstMatch] {
        reader.set_lookup(lookup);
        for wanted in [PHYS_BITS_FILE_NAME, name] {
            // The streaming and the chunked lookup.
            walks += 2;
            file_bytes += check_lookup(&mut reader, wanted);
        }
    }

    let mut buf = [0u8; 64];
    walks += 1;
    file_bytes += 64;
    match reader.read_file(PHYS_BITS_FILE_NAME, &mut buf) {
        Ok(n) => assert!(n <= buf.len()),
        Err(ReadError::FileTooLarge { size, buf: b }) => assert!(size as usize > b),
        Err(_) => {}
    }

    walks += 1;
    file_bytes += PHYS_BITS_FILE_READ_MAX as u64;
    let file = check_phys_bits_read(&mut reader);

    // Bounded work: the signature and ID, each walk at most the ABI's
    // maximum, and the file reads.
    let h = host.borrow();
    assert!(h.delivered <= 8 + walks * MAX_WALK + file_bytes);
    if let Some(max_polls) = max_polls {
        let kicks = h.kicks - kicks_before;
        let polls = h.polls - polls_before;
        // Each DMA transfer is one kick (two port writes, or one MMIO
        // write) and at most `max_polls` polls.
        assert!(polls <= kicks * u64::from(max_polls));
    }
    file
}

/// A `files()` walk yields at most the declared count (itself at most
/// 0x3fe0) of validated entries.
fn check_walk<T: FwCfgTransport>(reader: &mut FwCfgReader<T>) {
    let Ok(files) = reader.files() else {
        return;
    };
    let declared = files.declared_count();
    assert!(declared <= u32::from(FILE_SLOTS_MAX));
    let mut n = 0u32;
    for e in files {
        n += 1;
        if let Ok(e) = e {
            assert!((0x20..0x4000).contains(&e.select));
            assert!(!e.name().is_empty() && e.name().len() <= FILE_NAME_MAX_LEN);
            assert!(!e.name().contains(&0));
            assert_eq!(e.index, n - 1);
        }
    }
    assert!(n <= declared);
}

/// `find_file` (then `read_entry` and `read_entry_prefix` of what it found)
/// and `find_file_buffered` for `wanted`; returns the most file bytes the
/// reads may have taken.
fn check_lookup<T: FwCfgTransport>(reader: &mut FwCfgReader<T>, wanted: &str) -> u64 {
    let invalid = |w: &[u8]| w.is_empty() || w.len() > FILE_NAME_MAX_LEN || w.contains(&0);
    let mut file_bytes = 0;
    match reader.find_file(wanted) {
        Ok(e) => {
            assert_eq!(e.name(), wanted.as_bytes());
            check_entry_reads(reader, &e);
            file_bytes += 2 * MAX_BUF as u64;
        }
        Err(ReadError::InvalidName) => assert!(invalid(wanted.as_bytes())),
        Err(ReadError::FileTooLarge { .. }) => panic!("find_file reads no file"),
        Err(_) => {}
    }
    // The chunked lookup must hold to the same rules; a 200-byte scratch
    // buffer holds three entries, so chunks end mid-directory.
    let mut scratch = [0u8; 200];
    match reader.find_file_buffered(wanted, &mut scratch) {
        Ok(e) => {
            assert_eq!(e.name(), wanted.as_bytes());
            assert!((0x20..0x4000).contains(&e.select));
        }
        Err(ReadError::InvalidName) => assert!(invalid(wanted.as_bytes())),
        Err(ReadError::FileTooLarge { .. }) => {
            panic!("find_file_buffered reads no file")
        }
        Err(_) => {}
    }
    file_bytes
}

/// `read_entry` and `read_entry_prefix` of a found file stay within the
/// caller's buffer and the file.
fn check_entry_reads<T: FwCfgTransport>(reader: &mut FwCfgReader<T>, e: &FileEntry) {
    let mut buf = [0u8; MAX_BUF];
    let cap = (e.size as usize).min(MAX_BUF);
    match reader.read_entry(e, &mut buf[..cap]) {
        Ok(n) => assert_eq!(n, e.size as usize),
        Err(ReadError::FileTooLarge { size, buf }) => {
            assert!(size as usize > buf && buf == MAX_BUF)
        }
        Err(ReadError::Transport(_)) => {}
        Err(other) => panic!("read_entry: unexpected {other:?}"),
    }
    match reader.read_entry_prefix(e, &mut buf[..16]) {
        Ok(n) => assert!(n <= 16 && n <= e.size as usize),
        Err(ReadError::Transport(_)) => {}
        Err(other) => panic!("read_entry_prefix: unexpected {other:?}"),
    }
}

/// `read_phys_bits_file`: a parsed file is plausible, and the entry, the
/// bytes and the state agree; returns the state.
fn check_phys_bits_read<T: FwCfgTransport>(reader: &mut FwCfgReader<T>) -> FileState {
    let mut buf = [0u8; PHYS_BITS_FILE_READ_MAX];
    let read = reader.read_phys_bits_file(&mut buf);
    let file = read.state;
    if let FileState::Present(f) = file {
        assert!(f.version >= 1 && (1..=64).contains(&f.phys_bits));
    }
    match (read.entry, file) {
        (None, FileState::Absent | FileState::Unreadable(_)) => assert!(read.raw.is_empty()),
        (None, other) => panic!("no entry but {other:?}"),
        (Some(_), FileState::Unreadable(_)) => assert!(read.raw.is_empty()),
        (Some(e), state) => {
            assert_eq!(
                read.raw.len(),
                (e.size as usize).min(PHYS_BITS_FILE_READ_MAX)
            );
            assert_eq!(state, FileState::from_bytes(read.raw));
        }
    }
    file
}

/// Target `phys_bits_file`: the `etc/phys-bits-valid` parser on arbitrary
/// bytes.
///
/// Checked: no panic; a parsed file has a version >= 1, a width of
/// 1..=64, guest and backed widths of at most 64; version-1 and -2 files round-trip through
/// `to_bytes`; shorter than 8 bytes is always `TooShort`; the parse only
/// depends on the first 8 bytes for version 1.
pub fn phys_bits_file(data: &[u8]) {
    let parsed = PhysBitsFile::parse(data);
    if data.len() < PHYS_BITS_FILE_V1_SIZE {
        assert!(parsed.is_err());
    }
    match FileState::from_bytes(data) {
        FileState::Present(f) => assert_eq!(Ok(f), parsed),
        FileState::Corrupt(e) => assert_eq!(Err(e), parsed),
        other => panic!("from_bytes gave {other:?}"),
    }
    if let Ok(f) = parsed {
        assert!(f.version >= 1);
        assert!((1..=64).contains(&f.phys_bits));
        assert!(f.guest_phys_bits <= 64 && f.backed_bits <= 64);
        if f.version <= 2 {
            // Version 1 renders as version 2 with no backed width.
            assert_eq!(&f.to_bytes()[1..], &data[1..PHYS_BITS_FILE_V1_SIZE]);
            assert_eq!(PhysBitsFile::parse(&data[..PHYS_BITS_FILE_V1_SIZE]), Ok(f));
        }
        // Longer files are tolerated: the prefix decides.
        let mut longer = data.to_vec();
        longer.extend_from_slice(&[0xff; 8]);
        assert_eq!(PhysBitsFile::parse(&longer), Ok(f));
    }
}
