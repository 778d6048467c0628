// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The measurements: one per channel and transport, each printed as one
//! protocol line.
//!
//! Every measurement is bracketed by a write of its phase id to the
//! harness's marker port ([`fw_cfg_protocol::MARK_PORT`]), so the mini VMM
//! can attribute VM exits to it; under QEMU the port is unassigned and the
//! write is ignored. Cycles are `rdtsc` deltas around the measured code
//! only.

use core::arch::asm;

use fw_cfg_guest::cpuid::{CpuidReport, HardwareCpuid, read_cpuid_channel};
use fw_cfg_guest::peers::SeabiosCpu;
use fw_cfg_guest::policy::{ChannelInputs, FileState, decide_all};
use fw_cfg_guest::reader::FwCfgReader;
use fw_cfg_guest::transport::FwCfgTransport;
use fw_cfg_protocol::modes::ModeAnswers;
use fw_cfg_protocol::{
    BULK_FILE_NAME, BaselineLine, BootLine, BulkLine, CpuidLine, Decisions, ErrorKind, Line,
    MARK_PORT, NULL_EXITS, NULL_PORT, Name, Phase, ResultLine, Transport,
};

use crate::buffers::Buffers;
use crate::out::emit;
use crate::serial::{inb, outl};
use crate::transports::with_transport;

/// Starts `phase` (or ends the current one with [`Phase::Idle`]).
pub(crate) fn mark(phase: Phase) {
    outl(MARK_PORT, phase.id());
}

pub(crate) fn rdtsc() -> u64 {
    let lo: u32;
    let hi: u32;
    // SAFETY: `rdtsc` only writes EDX:EAX.
    unsafe {
        asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags))
    };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Prints the boot line.
pub fn boot(start_info: u64, cmdline: &[u8], mmio: Option<(u64, u64)>) {
    emit(&Line::Boot(BootLine {
        firmware: Name::new("fw-cfg-test-firmware"),
        version: Name::new(env!("CARGO_PKG_VERSION")),
        start_info,
        cmdline: Name::from_bytes(cmdline),
        mmio_base: mmio.map(|m| m.0),
    }));
}

/// The null-exit baseline: `NULL_EXITS` reads of an unassigned port.
pub fn baseline() {
    mark(Phase::Baseline);
    let t0 = rdtsc();
    let mut acc = 0u8;
    for _ in 0..NULL_EXITS {
        acc ^= inb(NULL_PORT);
    }
    let t1 = rdtsc();
    mark(Phase::Idle);
    emit(&Line::Baseline(BaselineLine {
        phase: Phase::Baseline,
        exits: NULL_EXITS,
        cycles: t1 - t0,
        value: acc,
    }));
}

/// The CPUID channel alone; returns its report for the fw_cfg phases.
pub fn cpuid() -> CpuidReport {
    let phase = Phase::Lookup(Transport::Cpuid);
    mark(phase);
    let t0 = rdtsc();
    let report = read_cpuid_channel(&HardwareCpuid);
    let memory_top = crate::pvh::memory_top();
    let inputs = ChannelInputs::new(&report, FileState::Absent).with_memory_top(memory_top);
    let decisions = decide_all(&inputs);
    let t1 = rdtsc();
    mark(Phase::Idle);
    let mut l = ResultLine::new(Transport::Cpuid);
    l.cycles = Some(t1 - t0);
    l.cpuid = Some(CpuidLine::from(&report));
    l.memory_top = Some(memory_top);
    l.decisions = Some(Decisions::from(&decisions));
    emit(&Line::Result(l));
    report
}

/// The measured phase (lookup, read, decide) through `transport`, then the
/// bulk read (its own phase) with the same reader into `bulk`.
fn read_file_via<T: FwCfgTransport>(
    transport: T,
    kind: Transport,
    cpuid: &CpuidReport,
    bulk: &mut [u8],
) -> ResultLine {
    let mut line = ResultLine::new(kind);
    mark(line.phase);
    let t0 = rdtsc();
    let mut reader = FwCfgReader::new(transport);
    let state = line.read_file_channel(reader.as_mut().map_err(|e| *e));
    let inputs = ChannelInputs::new(cpuid, state).with_memory_top(crate::pvh::memory_top());
    let decisions = decide_all(&inputs);
    let t1 = rdtsc();
    mark(Phase::Idle);

    if let Ok(reader) = reader.as_mut() {
        // Outside the measured phase: a reader opened by the DMA register
        // has not needed the ID (one more transfer here).
        line.read_id_after_decision(reader);
        read_bulk(reader, Phase::Bulk(kind), bulk);
    }
    line.cycles = Some(t1 - t0);
    line.decisions = Some(Decisions::from(&decisions));
    if kind == Transport::Pio {
        line.modes = Some(modes(&inputs, cpuid));
    }
    line
}

/// Every mode's answer from the values already read (outside the measured
/// phase; no CPUID or fw_cfg access, so no exit): SeaBIOS's CPU facts
/// from the report (64-bit code: long mode and PAE), no BARs. Only the
/// port-I/O line carries it (the other transports read the same file,
/// and each answer costs some 700 bytes of serial output, an exit each).
fn modes(inputs: &ChannelInputs, report: &CpuidReport) -> ModeAnswers {
    ModeAnswers::compute(inputs, &SeabiosCpu::from_report(report), &mut [])
}

/// Reads the bulk file whole in its own phase and prints a line.
fn read_bulk<T: FwCfgTransport>(reader: &mut FwCfgReader<T>, phase: Phase, buf: &mut [u8]) {
    // The lookup is not part of the bulk phase: only the data transfer is.
    let Ok(entry) = reader.find_file(BULK_FILE_NAME) else {
        return;
    };
    let n = (entry.size as usize).min(buf.len());
    mark(phase);
    let t0 = rdtsc();
    let result = reader.read_entry_prefix(&entry, &mut buf[..n]);
    let t1 = rdtsc();
    mark(Phase::Idle);
    let mut sum = 0u64;
    for &b in &buf[..n] {
        sum = sum.wrapping_add(u64::from(b));
    }
    emit(&Line::Bulk(BulkLine {
        phase,
        size: entry.size,
        // At most the file size, a u32.
        read: n as u32,
        sum,
        cycles: t1 - t0,
        error: result.err().map(ErrorKind::from),
    }));
}

/// One fw_cfg transport: find and read `etc/phys-bits-valid`, decide, print.
/// `mmio` is the MMIO window, if the platform announced one.
pub fn fw_cfg(
    transport: Transport,
    cpuid: &CpuidReport,
    mmio: Option<(u64, u64)>,
    bufs: &mut Buffers,
) {
    let read = with_transport!(transport, mmio, bufs.dma, |t| {
        read_file_via(t, transport, cpuid, &mut bufs.bulk[..])
    });
    let line = read.unwrap_or_else(|| {
        let mut l = ResultLine::new(transport);
        l.available = false;
        l
    });
    emit(&Line::Result(line));
}
