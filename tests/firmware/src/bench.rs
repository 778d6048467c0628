// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Benchmark mode: selected by `fw_cfg_tests.bench=SIZE@BASE` on the PVH
//! command line, which also hands the firmware a RAM area (`SIZE` bytes at
//! guest-physical `BASE`, inside the identity-mapped 4 GiB) for bulk reads.
//!
//! Each measurement runs in its own phase (a fresh id from [`FIRST_PHASE`]
//! on, written to the harness marker port before and 0 after, so a VMM
//! can count the exits in between) and prints one line:
//!
//! ```text
//! {"event":"bench","phase":P,"name":"dma/dir-bulk","ops":1,"cycles":C,...}
//! ```
//!
//! `ops` is how many operations the phase repeated (the per-operation cost
//! is the phase's cost divided by it). A transport that is not there (no
//! MMIO window announced) gives `"available":false` and no phase.
//!
//! Measured, in order: the null exit (an `in` from an unused port), a
//! `cpuid` of the KVM signature leaf, the CPUID channel's decision, then per
//! fw_cfg transport (`pio`, `dma`, `mmio`, `mmio-dma`) the signature, the
//! ID, opening the reader, three directory lookups of
//! `etc/phys-bits-valid` (streaming full scan, streaming first match, and
//! the buffered lookup), reading the file, and the whole decision from
//! scratch. Last, every file `opt/bench/<transport>/<label>` is read whole
//! into the area with that transport; DMA reads use one descriptor per file
//! straight into the area, as firmware loading a kernel would.

use core::sync::atomic::{Ordering, fence};

use fw_cfg_guest::abi::{
    DMA_CTL_ERROR, DMA_CTL_READ, DMA_CTL_SELECT, DmaAccess, KEY_ID, KEY_SIGNATURE,
    PHYS_BITS_FILE_NAME,
};
use fw_cfg_guest::cpuid::{CpuidSource, HardwareCpuid, read_cpuid_channel};
use fw_cfg_guest::policy::{ChannelInputs, FileState, decide_all};
use fw_cfg_guest::reader::{FileEntry, FwCfgReader, Lookup};
use fw_cfg_guest::transport::{
    Dma, DmaBuffer, DmaKick, FwCfgTransport, Mmio, PortIo, RawMmio, X86PortBus,
};

use crate::out::Line;
use crate::probes::{NULL_PORT, mark, rdtsc};

/// The command-line parameter selecting benchmark mode.
pub const BENCH_PARAM: &[u8] = b"fw_cfg_tests.bench=";
/// The first phase id benchmark mode uses.
pub const FIRST_PHASE: u32 = 0x100;
/// How many times the null exit and the `cpuid` are repeated.
pub const REPEAT: u64 = 64;
/// Files read whole start with this, then `<transport>/`.
pub const BULK_PREFIX: &[u8] = b"opt/bench/";
/// Most bulk files read.
const BULK_FILES_MAX: usize = 32;
/// Control-word polls before a direct DMA read is declared stuck.
const DMA_POLLS: u32 = 1_000_000;

/// The bulk area from `fw_cfg_tests.bench=SIZE@BASE`: `Some((base, size))`
/// when benchmark mode is on, with `size` 0 when the value is malformed.
pub fn param(cmdline: &[u8]) -> Option<(u64, u64)> {
    let word = cmdline
        .split(|&b| b == b' ')
        .find_map(|w| w.strip_prefix(BENCH_PARAM))?;
    Some(crate::pvh::parse_size_at_base(word).unwrap_or((0, 0)))
}

/// The fw_cfg transports benchmark mode measures.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pio,
    Dma,
    Mmio,
    MmioDma,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Pio, Kind::Dma, Kind::Mmio, Kind::MmioDma];

    fn name(self) -> &'static [u8] {
        match self {
            Kind::Pio => b"pio",
            Kind::Dma => b"dma",
            Kind::Mmio => b"mmio",
            Kind::MmioDma => b"mmio-dma",
        }
    }

    fn needs_mmio(self) -> bool {
        matches!(self, Kind::Mmio | Kind::MmioDma)
    }
}

/// A name `a/b` in a fixed buffer (no allocation, no `core::fmt`).
struct Name {
    buf: [u8; 80],
    len: usize,
}

impl Name {
    fn new(parts: &[&[u8]]) -> Self {
        let mut n = Name {
            buf: [0; 80],
            len: 0,
        };
        for (i, p) in parts.iter().enumerate() {
            if i != 0 {
                n.push(b"/");
            }
            n.push(p);
        }
        n
    }

    fn push(&mut self, s: &[u8]) {
        let k = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + k].copy_from_slice(&s[..k]);
        self.len += k;
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Phase bookkeeping.
struct Bench {
    next_phase: u32,
}

/// A running phase.
struct Phase {
    id: u32,
    t0: u64,
}

impl Bench {
    fn begin(&mut self) -> Phase {
        let id = self.next_phase;
        self.next_phase += 1;
        mark(id);
        Phase { id, t0: rdtsc() }
    }

    /// Ends `p` and starts its line; the caller adds fields and ends it.
    fn end(&self, p: Phase, name: &Name, ops: u64) -> Line {
        let t1 = rdtsc();
        mark(0);
        let mut l = Line::new("bench");
        l.u64("phase", u64::from(p.id))
            .str("name", name.as_bytes())
            .u64("ops", ops)
            .u64("cycles", t1.wrapping_sub(p.t0));
        l
    }
}

fn unavailable(name: &Name) {
    let mut l = Line::new("bench");
    l.str("name", name.as_bytes()).bool("available", false);
    l.end();
}

/// Runs every measurement. `area` is `(base, size)` from [`param`];
/// `mmio` the MMIO window, if announced.
pub fn run(area: (u64, u64), mmio: Option<(u64, u64)>) {
    let mut b = Bench {
        next_phase: FIRST_PHASE,
    };

    let p = b.begin();
    let mut acc = 0u8;
    for _ in 0..REPEAT {
        acc ^= crate::serial::inb(NULL_PORT);
    }
    let mut l = b.end(p, &Name::new(&[b"null-exit"]), REPEAT);
    l.u64("value", u64::from(acc));
    l.end();

    let p = b.begin();
    let mut eax = 0u32;
    for _ in 0..REPEAT {
        eax ^= HardwareCpuid.cpuid(0x4000_0000, 0).eax;
    }
    let mut l = b.end(p, &Name::new(&[b"cpuid-kvm-leaf"]), REPEAT);
    l.u64("eax", u64::from(eax));
    l.end();

    let p = b.begin();
    let cpuid = read_cpuid_channel(&HardwareCpuid);
    let decisions = decide_all(&ChannelInputs::new(&cpuid, FileState::Absent));
    let mut l = b.end(p, &Name::new(&[b"cpuid", b"decision"]), 1);
    l.u64("phys_bits", u64::from(decisions[0].phys_bits));
    l.end();

    for kind in Kind::ALL {
        let base = match (kind.needs_mmio(), mmio) {
            (true, None) => {
                unavailable(&Name::new(&[kind.name(), b"decision"]));
                continue;
            }
            (true, Some((base, _))) => base as *mut u8,
            (false, _) => core::ptr::null_mut(),
        };
        // SAFETY (every transport made below): the firmware runs alone in
        // ring 0; the fw_cfg ports and the announced MMIO window belong to
        // the fw_cfg device (or nothing) and lie in the identity map; the
        // device does DMA only when its DMA register is written, into the
        // memory the descriptor names; the DMA buffers are identity-mapped
        // statics, so their addresses are their guest-physical ones, and
        // each borrow ends (the transport is dropped) before the next
        // `buffers::dma()` call.
        match kind {
            // SAFETY: see above.
            Kind::Pio => fw_cfg(&mut b, kind, || unsafe { PortIo::new() }),
            Kind::Mmio => fw_cfg(&mut b, kind, || {
                // SAFETY: see above.
                unsafe { Mmio::new(base) }
            }),
            Kind::Dma => fw_cfg(&mut b, kind, || {
                let (desc, desc_addr, data, data_addr) = crate::buffers::dma();
                // SAFETY: see above.
                let mem = unsafe { DmaBuffer::new(desc, desc_addr, data, data_addr) };
                // SAFETY: see above.
                Dma::new(unsafe { PortIo::new() }, mem)
            }),
            Kind::MmioDma => fw_cfg(&mut b, kind, || {
                let (desc, desc_addr, data, data_addr) = crate::buffers::dma();
                // SAFETY: see above.
                let mem = unsafe { DmaBuffer::new(desc, desc_addr, data, data_addr) };
                // SAFETY: see above.
                Dma::new(unsafe { Mmio::new(base) }, mem)
            }),
        }
    }

    bulk(&mut b, area, mmio);
}

/// The fw_cfg phases of one transport; `make` builds a fresh transport
/// (the previous one is always dropped first).
fn fw_cfg<T: FwCfgTransport>(b: &mut Bench, kind: Kind, make: impl Fn() -> T) {
    let k = kind.name();
    let mut t = make();

    let p = b.begin();
    let mut sig = [0u8; 4];
    t.select(KEY_SIGNATURE);
    let ok = t.read(&mut sig).is_ok();
    let mut l = b.end(p, &Name::new(&[k, b"signature"]), 1);
    l.bool("ok", ok && &sig == b"QEMU");
    l.end();

    let p = b.begin();
    let mut id = [0u8; 4];
    t.select(KEY_ID);
    let _ = t.read(&mut id);
    let mut l = b.end(p, &Name::new(&[k, b"id"]), 1);
    l.u64("id", u64::from(u32::from_le_bytes(id)));
    l.end();

    let p = b.begin();
    let reader = FwCfgReader::new(t);
    let mut l = b.end(p, &Name::new(&[k, b"open"]), 1);
    let Ok(mut reader) = reader else {
        l.bool("available", false);
        l.end();
        return;
    };
    l.bool("dma", reader.uses_dma());
    l.end();

    let count = reader.files().map_or(0, |f| f.declared_count());
    let mut found = None;
    for (what, lookup) in [
        (&b"dir-walk"[..], Lookup::FullScan),
        (&b"dir-first-match"[..], Lookup::FirstMatch),
    ] {
        reader.set_lookup(lookup);
        let p = b.begin();
        let r = reader.find_file(PHYS_BITS_FILE_NAME);
        let mut l = b.end(p, &Name::new(&[k, what]), 1);
        l.u64("dir_count", u64::from(count))
            .bool("found", r.is_ok());
        l.end();
        found = r.ok();
    }
    reader.set_lookup(Lookup::FullScan);

    let scratch = crate::buffers::bulk();
    let p = b.begin();
    let r = reader.find_file_buffered(PHYS_BITS_FILE_NAME, scratch);
    let mut l = b.end(p, &Name::new(&[k, b"dir-bulk"]), 1);
    l.u64("dir_count", u64::from(count))
        .bool("found", r.is_ok());
    l.end();

    if let Some(entry) = found {
        let mut bytes = [0u8; 8];
        let p = b.begin();
        let r = reader.read_entry_prefix(&entry, &mut bytes);
        let mut l = b.end(p, &Name::new(&[k, b"file-read"]), 1);
        let n = r.unwrap_or(0);
        l.bytes("bytes", &bytes[..n]);
        l.end();
    }
    drop(reader);

    // The whole decision from scratch, with the buffered lookup.
    let t = make();
    let scratch = crate::buffers::bulk();
    let p = b.begin();
    let state = match FwCfgReader::new(t) {
        Err(_) => FileState::Absent,
        Ok(mut reader) => {
            let lookup = reader.find_file_buffered(PHYS_BITS_FILE_NAME, scratch);
            let mut bytes = [0u8; 8];
            reader.read_phys_bits_from_lookup(lookup, &mut bytes).state
        }
    };
    let cpuid = read_cpuid_channel(&HardwareCpuid);
    let decisions = decide_all(&ChannelInputs::new(&cpuid, state));
    let mut l = b.end(p, &Name::new(&[k, b"decision"]), 1);
    l.u64("phys_bits", u64::from(decisions[0].phys_bits))
        .bool("file", matches!(state, FileState::Present(_)));
    l.end();
}

/// Reads every `opt/bench/<transport>/<label>` file whole into the area.
fn bulk(b: &mut Bench, area: (u64, u64), mmio: Option<(u64, u64)>) {
    let mut files = [None::<(Kind, FileEntry)>; BULK_FILES_MAX];
    let mut n_files = 0;
    {
        // The listing is not measured; the DMA buffers are free again once
        // it ends.
        let (desc, desc_addr, data, data_addr) = crate::buffers::dma();
        // SAFETY: as in `run`.
        let mem = unsafe { DmaBuffer::new(desc, desc_addr, data, data_addr) };
        // SAFETY: as in `run`.
        let Ok(mut reader) = FwCfgReader::new(Dma::new(unsafe { PortIo::new() }, mem)) else {
            return;
        };
        let Ok(iter) = reader.files() else {
            return;
        };
        for entry in iter {
            let Ok(entry) = entry else {
                break;
            };
            let Some(rest) = entry.name().strip_prefix(BULK_PREFIX) else {
                continue;
            };
            let kind = Kind::ALL.into_iter().find(|k| {
                rest.strip_prefix(k.name())
                    .is_some_and(|r| r.first() == Some(&b'/'))
            });
            if let (Some(kind), Some(slot)) = (kind, files.get_mut(n_files)) {
                *slot = Some((kind, entry));
                n_files += 1;
            }
        }
    }

    let (area_base, area_size) = area;
    for (kind, entry) in files.iter().flatten().copied() {
        let name = Name::new(&[b"read", entry.name()]);
        let Ok(len) = usize::try_from(area_size.min(u64::from(entry.size))) else {
            continue;
        };
        if area_base == 0 || (len == 0 && entry.size != 0) {
            let mut l = Line::new("bench");
            l.str("name", name.as_bytes()).str("error", b"no-area");
            l.end();
            continue;
        }
        let mmio_base = match (kind.needs_mmio(), mmio) {
            (true, None) => {
                unavailable(&name);
                continue;
            }
            (true, Some((base, _))) => base as *mut u8,
            (false, _) => core::ptr::null_mut(),
        };
        // SAFETY: the VMM handed the firmware `area_size` bytes of RAM at
        // `area_base` in the identity map (the benchmark parameter's
        // contract); nothing else uses them and `len <= area_size`.
        let dst = unsafe { core::slice::from_raw_parts_mut(area_base as *mut u8, len) };
        let (phase, error) = match kind {
            // SAFETY: as in `run`.
            Kind::Pio => read_registers(b, unsafe { PortIo::new() }, &entry, dst),
            // SAFETY: as in `run`.
            Kind::Mmio => read_registers(b, unsafe { Mmio::new(mmio_base) }, &entry, dst),
            Kind::Dma => {
                // SAFETY: as in `run`.
                let mut t = unsafe { PortIo::<X86PortBus>::new() };
                // SAFETY: the area, as for `dst` above; `dst` is not
                // accessed until the transfer has ended or timed out.
                unsafe { read_dma(b, &mut t, &entry, area_base, len) }
            }
            Kind::MmioDma => {
                // SAFETY: as in `run`.
                let mut t = unsafe { Mmio::<RawMmio>::new(mmio_base) };
                // SAFETY: as for `Kind::Dma`.
                unsafe { read_dma(b, &mut t, &entry, area_base, len) }
            }
        };
        let mut l = b.end(phase, &name, 1);
        l.u64("size", u64::from(entry.size))
            .u64("read", len as u64)
            .u64("check", sparse_sum(dst));
        if let Some(e) = error {
            l.str("error", e);
        }
        l.end();
    }
}

/// Reads a file through the data register (one access per byte, or per 8
/// bytes with MMIO). The phase covers the select and the data reads.
fn read_registers<T: FwCfgTransport>(
    b: &mut Bench,
    t: T,
    entry: &FileEntry,
    dst: &mut [u8],
) -> (Phase, Option<&'static [u8]>) {
    let Ok(mut reader) = FwCfgReader::new(t) else {
        return (b.begin(), Some(b"no-device"));
    };
    let p = b.begin();
    let r = reader.read_entry_prefix(entry, dst);
    (p, r.err().map(|_| &b"read-error"[..]))
}

/// Reads a file with one DMA descriptor (SELECT | READ) straight into
/// `addr`, then polls the control word.
///
/// # Safety
///
/// `len` bytes at guest-physical `addr` must be identity-mapped RAM handed
/// over to the device: nothing else uses them while the transfer may run.
unsafe fn read_dma<T: DmaKick>(
    b: &mut Bench,
    t: &mut T,
    entry: &FileEntry,
    addr: u64,
    len: usize,
) -> (Phase, Option<&'static [u8]>) {
    let (desc, desc_addr, _, _) = crate::buffers::dma();
    let access = DmaAccess {
        control: (u32::from(entry.select) << 16) | DMA_CTL_SELECT | DMA_CTL_READ,
        // `len` is at most the file size, a u32.
        length: len as u32,
        address: addr,
    };
    let desc: *mut [u8; 16] = desc;
    let p = b.begin();
    // SAFETY: `desc` is the static descriptor slot, borrowed exclusively
    // here; volatile because the device reads and writes it.
    unsafe { desc.write_volatile(access.to_be_bytes()) };
    fence(Ordering::SeqCst);
    // SAFETY: `desc_addr` is the guest-physical address of the static
    // descriptor slot just written, which names `len` bytes at `addr`,
    // memory our caller hands over.
    unsafe { t.kick(desc_addr) };
    fence(Ordering::SeqCst);
    for _ in 0..DMA_POLLS {
        // SAFETY: as above; the first four bytes are the control word.
        let c = u32::from_be_bytes(unsafe { desc.cast::<[u8; 4]>().read_volatile() });
        if c == 0 {
            return (p, None);
        }
        if c & DMA_CTL_ERROR != 0 {
            return (p, Some(b"dma-error"));
        }
    }
    (p, Some(b"dma-timeout"))
}

/// The sum of every 4096th byte and the last one: a cheap check (guest
/// instructions are slow under some engines) that the host recomputes.
pub fn sparse_sum(data: &[u8]) -> u64 {
    let mut sum = 0u64;
    let mut i = 0;
    while i < data.len() {
        sum += u64::from(data[i]);
        i += 4096;
    }
    if let Some(&last) = data.last() {
        sum += u64::from(last);
    }
    sum
}
