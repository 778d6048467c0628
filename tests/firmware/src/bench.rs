// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Benchmark mode: selected by `fw_cfg_tests.bench=SIZE@BASE` on the PVH
//! command line, which also hands the firmware a RAM area (`SIZE` bytes at
//! guest-physical `BASE`, inside the identity-mapped 4 GiB) for bulk reads.
//!
//! Each measurement runs in its own phase (a fresh id from [`fw_cfg_protocol::BENCH_FIRST_PHASE`]
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
//! `cpuid` of the KVM signature leaf, the CPUID channel's decision, its
//! reads alone (`cpuid/channel`, `ops` = the leaves it asked), then per
//! fw_cfg transport (`pio`, `dma`, `mmio`, `mmio-dma`) the signature, the
//! ID, opening the reader, three directory lookups of
//! `etc/phys-bits-valid` (streaming full scan, streaming first match, and
//! the buffered lookup), reading the file, and the whole decision from
//! scratch. Last, every file `opt/bench/<transport>/<label>` is read whole
//! into the area with that transport; DMA reads use one descriptor per file
//! straight into the area, as firmware loading a kernel would.

use core::sync::atomic::{Ordering, fence};

use fw_cfg_guest::abi::{
    DMA_CTL_READ, DMA_CTL_SELECT, DMA_SIGNATURE, DmaAccess, KEY_ID, KEY_SIGNATURE,
    PHYS_BITS_FILE_NAME,
};
use fw_cfg_guest::cpuid::{CountingCpuid, CpuidSource, HardwareCpuid, read_cpuid_channel};
use fw_cfg_guest::policy::{ChannelInputs, FileState, decide_all};
use fw_cfg_guest::reader::{FileEntry, FwCfgReader, Lookup, ReadError};
use fw_cfg_guest::transport::{DmaKick, FwCfgTransport, Mmio, PortIo, RawMmio, X86PortBus};
use fw_cfg_protocol::{
    BENCH_FILE_PREFIX, BENCH_PARAM, BENCH_REPEAT, BenchLine, BenchName, Bytes, ErrorKind, Line,
    NULL_PORT, Phase, Transport,
};

use crate::buffers::{Buffers, DmaParts};
use crate::out::emit;
use crate::probes::{mark, rdtsc};
use crate::transports::with_transport;

/// Most bulk files read.
const BULK_FILES_MAX: usize = 32;

/// The bulk area from `fw_cfg_tests.bench=SIZE@BASE`: `Some((base, size))`
/// when benchmark mode is on, with `size` 0 when the value is malformed.
pub fn param(cmdline: &[u8]) -> Option<(u64, u64)> {
    let word = cmdline
        .split(|&b| b == b' ')
        .find_map(|w| w.strip_prefix(BENCH_PARAM.as_bytes()))?;
    Some(crate::pvh::parse_size_at_base(word).unwrap_or((0, 0)))
}

/// `transport/what`.
fn name(transport: Transport, what: &[u8]) -> BenchName {
    BenchName::joined(&[transport.as_str().as_bytes(), what])
}

/// Phase bookkeeping.
struct Bench {
    next: u32,
}

/// A running phase.
struct Running {
    phase: Phase,
    t0: u64,
}

impl Bench {
    fn begin(&mut self) -> Running {
        let phase = Phase::Bench(self.next);
        self.next += 1;
        mark(phase);
        Running { phase, t0: rdtsc() }
    }

    /// Ends `p` and starts its line; the caller adds fields and emits it.
    fn end(&self, p: Running, name: BenchName, ops: u64) -> BenchLine {
        let t1 = rdtsc();
        mark(Phase::Idle);
        let mut l = BenchLine::new(name);
        l.phase = Some(p.phase);
        l.ops = ops;
        l.cycles = t1.wrapping_sub(p.t0);
        l
    }
}

fn unavailable(name: BenchName) {
    let mut l = BenchLine::new(name);
    l.available = false;
    emit(&Line::Bench(l));
}

/// Runs every measurement. `area` is `(base, size)` from [`param`];
/// `mmio` the MMIO window, if announced.
pub fn run(area: (u64, u64), mmio: Option<(u64, u64)>, bufs: &mut Buffers) {
    let mut b = Bench { next: 0 };

    let p = b.begin();
    let mut acc = 0u8;
    for _ in 0..BENCH_REPEAT {
        acc ^= crate::serial::inb(NULL_PORT);
    }
    let mut l = b.end(p, BenchName::new("null-exit"), BENCH_REPEAT);
    l.value = Some(acc);
    emit(&Line::Bench(l));

    let p = b.begin();
    let mut eax = 0u32;
    for _ in 0..BENCH_REPEAT {
        eax ^= HardwareCpuid.cpuid(0x4000_0000, 0).eax;
    }
    let mut l = b.end(p, BenchName::new("cpuid-kvm-leaf"), BENCH_REPEAT);
    l.eax = Some(eax);
    emit(&Line::Bench(l));

    let p = b.begin();
    let cpuid = read_cpuid_channel(&HardwareCpuid);
    let decisions = decide_all(&ChannelInputs::new(&cpuid, FileState::Absent));
    let mut l = b.end(p, BenchName::new("cpuid/decision"), 1);
    l.phys_bits = Some(decisions[0].phys_bits);
    emit(&Line::Bench(l));

    // The channel's reads alone; `ops` is the number of leaves it asked.
    let counted = CountingCpuid::new(HardwareCpuid);
    let p = b.begin();
    let cpuid = read_cpuid_channel(&counted);
    let mut l = b.end(
        p,
        BenchName::new("cpuid/channel"),
        u64::from(counted.leaves()),
    );
    l.phys_bits = Some(cpuid.phys_bits);
    emit(&Line::Bench(l));

    for kind in Transport::BENCH {
        // Each transport is made fresh for the steps and again for the
        // decision from scratch; the first is dropped before the second is
        // made.
        let opened = with_transport!(kind, mmio, bufs.dma, |t| {
            steps(&mut b, kind, t, &mut bufs.bulk[..])
        });
        match opened {
            None => unavailable(name(kind, b"decision")),
            Some(false) => {}
            Some(true) => {
                let _ = with_transport!(kind, mmio, bufs.dma, |t| {
                    decision(&mut b, kind, t, &mut bufs.bulk[..])
                });
            }
        }
    }

    bulk(&mut b, area, mmio, bufs);
}

/// The fw_cfg phases of one transport up to the file read; returns whether
/// a reader could be opened.
fn steps<T: FwCfgTransport>(b: &mut Bench, kind: Transport, mut t: T, scratch: &mut [u8]) -> bool {
    // The signature as the reader checks it: a DMA transport reads the
    // DMA register's signature (and opens with nothing more when it is
    // there); the others (and a DMA transport without it) the signature
    // item. The ID phase reads the ID item as `FwCfgReader::read_id`
    // does, by DMA when the register is there: a cost of its own, which
    // the decision does not pay.
    let p = b.begin();
    let dma_sig = t.dma_signature() == Some(DMA_SIGNATURE);
    let ok = dma_sig || {
        let mut sig = [0u8; 4];
        t.select(KEY_SIGNATURE);
        t.read(&mut sig).is_ok() && &sig == b"QEMU"
    };
    let mut l = b.end(p, name(kind, b"signature"), 1);
    l.ok = Some(ok);
    emit(&Line::Bench(l));

    let p = b.begin();
    let mut id = [0u8; 4];
    let by_dma = dma_sig && t.set_dma(true);
    t.select(KEY_ID);
    let _ = t.read(&mut id);
    if by_dma {
        // The reader opened next starts from DMA off, as always.
        t.set_dma(false);
    }
    let mut l = b.end(p, name(kind, b"id"), 1);
    l.id = Some(u32::from_le_bytes(id));
    emit(&Line::Bench(l));

    let p = b.begin();
    let reader = FwCfgReader::new(t);
    let mut l = b.end(p, name(kind, b"open"), 1);
    let Ok(mut reader) = reader else {
        l.available = false;
        emit(&Line::Bench(l));
        return false;
    };
    l.dma = Some(reader.uses_dma());
    emit(&Line::Bench(l));

    let count = reader.files().map_or(0, |f| f.declared_count());
    let mut found = None;
    for (what, lookup) in [
        (&b"dir-walk"[..], Lookup::FullScan),
        (&b"dir-first-match"[..], Lookup::FirstMatch),
    ] {
        reader.set_lookup(lookup);
        let p = b.begin();
        let r = reader.find_file(PHYS_BITS_FILE_NAME);
        let mut l = b.end(p, name(kind, what), 1);
        l.dir_count = Some(count);
        l.found = Some(r.is_ok());
        emit(&Line::Bench(l));
        found = r.ok();
    }
    reader.set_lookup(Lookup::FullScan);

    let p = b.begin();
    let r = reader.find_file_buffered(PHYS_BITS_FILE_NAME, scratch);
    let mut l = b.end(p, name(kind, b"dir-bulk"), 1);
    l.dir_count = Some(count);
    l.found = Some(r.is_ok());
    emit(&Line::Bench(l));

    if let Some(entry) = found {
        let mut bytes = [0u8; 8];
        let p = b.begin();
        let r = reader.read_entry_prefix(&entry, &mut bytes);
        let mut l = b.end(p, name(kind, b"file-read"), 1);
        l.bytes = Some(Bytes::new(&bytes[..r.unwrap_or(0)]));
        emit(&Line::Bench(l));
    }
    true
}

/// The whole decision from scratch through a fresh transport, with the
/// buffered lookup.
fn decision<T: FwCfgTransport>(b: &mut Bench, kind: Transport, t: T, scratch: &mut [u8]) {
    let p = b.begin();
    let state = match FwCfgReader::new(t) {
        Err(_) => FileState::Absent,
        Ok(mut reader) => match reader.find_file_buffered(PHYS_BITS_FILE_NAME, scratch) {
            Ok(entry) => {
                let mut bytes = [0u8; 8];
                match reader.read_entry_prefix(&entry, &mut bytes) {
                    Ok(n) => FileState::from_bytes(&bytes[..n]),
                    Err(e) => FileState::Unreadable(e),
                }
            }
            Err(ReadError::NotFound) => FileState::Absent,
            Err(e) => FileState::Unreadable(e),
        },
    };
    let cpuid = read_cpuid_channel(&HardwareCpuid);
    let decisions = decide_all(&ChannelInputs::new(&cpuid, state));
    let mut l = b.end(p, name(kind, b"decision"), 1);
    l.phys_bits = Some(decisions[0].phys_bits);
    l.file = Some(matches!(state, FileState::Present(_)));
    emit(&Line::Bench(l));
}

/// Lists the files `opt/bench/<transport>/<label>` (not measured).
fn bench_files(dma: &mut DmaParts, files: &mut [Option<(Transport, FileEntry)>]) -> usize {
    let mut n = 0;
    // SAFETY: as for the `Pio` transport of `with_transport!`: ring 0,
    // ports of the fw_cfg device or of nothing.
    let t = fw_cfg_guest::transport::Dma::new(unsafe { PortIo::new() }, dma.buffer());
    let Ok(mut reader) = FwCfgReader::new(t) else {
        return 0;
    };
    let Ok(iter) = reader.files() else {
        return 0;
    };
    for entry in iter {
        let Ok(entry) = entry else {
            break;
        };
        let Some(rest) = entry.name().strip_prefix(BENCH_FILE_PREFIX.as_bytes()) else {
            continue;
        };
        let kind = Transport::BENCH.into_iter().find(|k| {
            rest.strip_prefix(k.as_str().as_bytes())
                .is_some_and(|r| r.first() == Some(&b'/'))
        });
        if let (Some(kind), Some(slot)) = (kind, files.get_mut(n)) {
            *slot = Some((kind, entry));
            n += 1;
        }
    }
    n
}

/// Reads every `opt/bench/<transport>/<label>` file whole into the area.
fn bulk(b: &mut Bench, area: (u64, u64), mmio: Option<(u64, u64)>, bufs: &mut Buffers) {
    let mut files = [None::<(Transport, FileEntry)>; BULK_FILES_MAX];
    if bench_files(&mut bufs.dma, &mut files) == 0 {
        return;
    }
    let (area_base, area_size) = area;
    for (kind, entry) in files.iter().flatten().copied() {
        let name = BenchName::joined(&[b"read", entry.name()]);
        let Ok(len) = usize::try_from(area_size.min(u64::from(entry.size))) else {
            continue;
        };
        if area_base == 0 || (len == 0 && entry.size != 0) {
            let mut l = BenchLine::new(name);
            l.error = Some(ErrorKind::NoArea);
            emit(&Line::Bench(l));
            continue;
        }
        let mmio_base = match (kind.needs_mmio(), mmio) {
            (true, None) => {
                unavailable(name);
                continue;
            }
            (true, Some((base, _))) => base as *mut u8,
            (false, _) => core::ptr::null_mut(),
        };
        // The area as a slice, made only while no DMA transfer runs into it.
        let area_slice = || {
            // SAFETY: the VMM handed the firmware `area_size` bytes of RAM at
            // `area_base` in the identity map (the benchmark parameter's
            // contract); nothing else uses them, `len <= area_size`, and each
            // slice made here is dropped before the next one is made or a
            // transfer is started.
            unsafe { core::slice::from_raw_parts_mut(area_base as *mut u8, len) }
        };
        let (phase, error) = match kind {
            // SAFETY: as for the `Pio` transport of `with_transport!`.
            Transport::Pio => read_registers(b, unsafe { PortIo::new() }, &entry, area_slice()),
            Transport::Mmio => {
                // SAFETY: as for the `Mmio` transport of `with_transport!`.
                read_registers(b, unsafe { Mmio::new(mmio_base) }, &entry, area_slice())
            }
            Transport::Dma => {
                // SAFETY: as for the `Pio` transport of `with_transport!`.
                let mut t = unsafe { PortIo::<X86PortBus>::new() };
                // SAFETY: the area, as for `area_slice`: no slice of it is
                // alive while the transfer may run.
                unsafe { read_dma(b, &mut t, &mut bufs.dma, &entry, area_base, len) }
            }
            _ => {
                // SAFETY: as for the `Mmio` transport of `with_transport!`.
                let mut t = unsafe { Mmio::<RawMmio>::new(mmio_base) };
                // SAFETY: as for `Transport::Dma`.
                unsafe { read_dma(b, &mut t, &mut bufs.dma, &entry, area_base, len) }
            }
        };
        let dst = area_slice();
        let mut l = b.end(phase, name, 1);
        l.size = Some(entry.size);
        // At most the file size, a u32.
        l.read = Some(len as u32);
        l.check = Some(sparse_sum(dst));
        l.error = error;
        emit(&Line::Bench(l));
    }
}

/// Reads a file through the data register (one access per byte, or per 8
/// bytes with MMIO). The phase covers the select and the data reads.
fn read_registers<T: FwCfgTransport>(
    b: &mut Bench,
    t: T,
    entry: &FileEntry,
    dst: &mut [u8],
) -> (Running, Option<ErrorKind>) {
    let Ok(mut reader) = FwCfgReader::new(t) else {
        return (b.begin(), Some(ErrorKind::NoDevice));
    };
    let p = b.begin();
    let r = reader.read_entry_prefix(entry, dst);
    (p, r.err().map(ErrorKind::from))
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
    dma: &mut DmaParts,
    entry: &FileEntry,
    addr: u64,
    len: usize,
) -> (Running, Option<ErrorKind>) {
    let desc_addr = dma.descriptor_addr;
    let desc: *mut [u8; 16] = &mut *dma.descriptor;
    let access = DmaAccess {
        control: (u32::from(entry.select) << 16) | DMA_CTL_SELECT | DMA_CTL_READ,
        // `len` is at most the file size, a u32.
        length: len as u32,
        address: addr,
    };
    let p = b.begin();
    // SAFETY: `desc` is the static descriptor slot, borrowed exclusively
    // here; volatile because the device reads and writes it.
    unsafe { desc.write_volatile(access.to_be_bytes()) };
    fence(Ordering::SeqCst);
    // SAFETY: `desc_addr` is the guest-physical address of the static
    // descriptor slot just written, which names `len` bytes at `addr`,
    // memory our caller hands over. Below 4 GiB (the firmware's image
    // is) only the low half is written: the latch's high half is 0 at
    // startup and after every transfer (the device clears it when the low
    // half starts one), and this firmware never writes a high half alone.
    unsafe {
        match u32::try_from(desc_addr) {
            Ok(low) => t.kick_low(low),
            Err(_) => t.kick(desc_addr),
        }
    }
    fence(Ordering::SeqCst);
    // SAFETY: `desc` is the descriptor slot, as above.
    (p, unsafe { crate::hash::poll_dma(desc) })
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
