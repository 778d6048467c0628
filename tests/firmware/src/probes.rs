// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The measurements: one per channel and transport, each printed as one
//! JSON line.
//!
//! Every measurement is bracketed by a write of its phase id to the
//! harness's marker port, so the mini VMM can attribute VM exits to it (see
//! `fw_cfg_tests::vmm::layout::MARK_PORT`); under QEMU the port is
//! unassigned and the write is ignored. Cycles are `rdtsc` deltas around the
//! measured code only.

use core::arch::asm;

use fw_cfg_guest::abi::PhysBitsFileError;
use fw_cfg_guest::cpuid::{CpuidReport, HardwareCpuid, HintState, read_cpuid_channel};
use fw_cfg_guest::policy::{
    ChannelInputs, Decision, FileState, PHYS_BITS_FILE_READ_MAX, Rule, decide_all,
};
use fw_cfg_guest::reader::{FwCfgReader, ReadError};
use fw_cfg_guest::transport::{Dma, DmaBuffer, FwCfgTransport, Mmio, PortIo, TransportError};

use crate::out::Line;
use crate::serial::{inb, outl};

/// Harness port: a 32-bit write of a phase id starts that phase.
pub const MARK_PORT: u16 = 0x600;
/// An unassigned port, for the null-exit baseline.
pub const NULL_PORT: u16 = 0x601;
/// How many null exits the baseline takes.
pub const NULL_EXITS: u64 = 16;
/// Name of the optional bulk file each transport reads whole.
pub const BULK_FILE_NAME: &str = "opt/fw-cfg-tests/bulk";
/// Largest bulk file read.
pub const BULK_MAX: usize = 64 * 1024;
/// Size of the DMA bounce buffer.
pub const DMA_BUFFER_SIZE: usize = 64 * 1024;

/// Phase ids (also printed in each line).
pub mod phase {
    /// Null-exit baseline.
    pub const BASELINE: u32 = 1;
    /// CPUID channel.
    pub const CPUID: u32 = 2;
    /// First fw_cfg transport; transport `i` (see [`super::Transport`]) has
    /// phase `FW_CFG + i`.
    pub const FW_CFG: u32 = 3;
    /// First bulk-read phase; transport `i` has `BULK + i`.
    pub const BULK: u32 = 10;
}

/// The fw_cfg transports measured.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Port I/O, one `in` per byte.
    Pio = 0,
    /// Port I/O with `rep insb`.
    PioString = 1,
    /// DMA kicked through port 0x514.
    Dma = 2,
    /// MMIO data register (8-byte reads).
    Mmio = 3,
    /// DMA kicked through the MMIO DMA register.
    MmioDma = 4,
}

impl Transport {
    /// All transports, in phase order.
    pub const ALL: [Transport; 5] = [
        Transport::Pio,
        Transport::PioString,
        Transport::Dma,
        Transport::Mmio,
        Transport::MmioDma,
    ];

    fn name(self) -> &'static str {
        match self {
            Transport::Pio => "pio",
            Transport::PioString => "pio-string",
            Transport::Dma => "dma",
            Transport::Mmio => "mmio",
            Transport::MmioDma => "mmio-dma",
        }
    }

    fn needs_mmio(self) -> bool {
        matches!(self, Transport::Mmio | Transport::MmioDma)
    }
}

pub(crate) fn mark(phase: u32) {
    outl(MARK_PORT, phase);
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
    let mut l = Line::new("boot");
    l.str("firmware", b"fw-cfg-test-firmware")
        .str("version", env!("CARGO_PKG_VERSION").as_bytes())
        .u64("start_info", start_info)
        .str("cmdline", cmdline)
        .opt_u64("mmio_base", mmio.map(|m| m.0));
    l.end();
}

/// The null-exit baseline: `NULL_EXITS` reads of an unassigned port.
pub fn baseline() {
    mark(phase::BASELINE);
    let t0 = rdtsc();
    let mut acc = 0u8;
    for _ in 0..NULL_EXITS {
        acc ^= inb(NULL_PORT);
    }
    let t1 = rdtsc();
    mark(0);
    let mut l = Line::new("baseline");
    l.u64("phase", u64::from(phase::BASELINE))
        .u64("exits", NULL_EXITS)
        .u64("cycles", t1 - t0)
        .u64("value", u64::from(acc));
    l.end();
}

/// The CPUID channel alone; returns its report for the fw_cfg phases.
pub fn cpuid() -> CpuidReport {
    mark(phase::CPUID);
    let t0 = rdtsc();
    let report = read_cpuid_channel(&HardwareCpuid);
    let decisions = decide_all(&ChannelInputs::new(&report, FileState::Absent));
    let t1 = rdtsc();
    mark(0);
    let mut l = Line::new("result");
    l.u64("phase", u64::from(phase::CPUID))
        .str("channel", b"cpuid")
        .str("transport", b"cpuid")
        .u64("cycles", t1 - t0);
    cpuid_fields(&mut l, &report);
    decision_fields(&mut l, &decisions);
    l.end();
    report
}

fn cpuid_fields(l: &mut Line, r: &CpuidReport) {
    l.open("cpuid")
        .bool("hypervisor", r.hypervisor_present)
        .opt_u64("kvm_base", r.kvm_base.map(u64::from))
        .opt_u64("kvm_features_edx", r.kvm_features_edx.map(u64::from))
        .str(
            "hint",
            match r.hint {
                HintState::NoKvmLeaf => b"no-kvm-leaf",
                HintState::Clear => b"clear",
                HintState::Set => b"set",
            },
        )
        .bool("has_address_sizes", r.has_address_sizes)
        .u64("address_sizes_eax", u64::from(r.address_sizes_eax))
        .u64("phys_bits", u64::from(r.phys_bits))
        .u64("guest_phys_bits", u64::from(r.guest_phys_bits))
        .str("vendor", r.vendor.as_str().as_bytes());
    match r.ext_vendor {
        Some(v) => l.str("ext_vendor", v.as_str().as_bytes()),
        None => l.null("ext_vendor"),
    };
    l.bool("gb_pages", r.gb_pages).close();
}

fn rule_name(r: Rule) -> &'static [u8] {
    match r {
        Rule::Distrusted => b"distrusted",
        Rule::ExplicitInvalid => b"explicit-invalid",
        Rule::ExplicitValid => b"explicit-valid",
        Rule::NoInformation => b"no-information",
        Rule::HeuristicValid => b"heuristic-valid",
        Rule::HeuristicInvalid => b"heuristic-invalid",
    }
}

fn decision_fields(l: &mut Line, decisions: &[Decision; 3]) {
    l.open("decisions");
    for d in decisions {
        l.open(d.mode.as_str())
            .u64("phys_bits", u64::from(d.phys_bits))
            .str("decided_by", d.decided_by.as_str().as_bytes())
            .str("rule", rule_name(d.rule));
        l.array_open("conflicts");
        for c in d.conflicts.iter() {
            l.array_str(c.as_str().as_bytes());
        }
        l.array_close();
        l.close();
    }
    l.close();
}

fn transport_error_name(e: TransportError) -> &'static [u8] {
    match e {
        TransportError::DmaError { .. } => b"dma-error",
        TransportError::DmaTimeout { .. } => b"dma-timeout",
        TransportError::DmaPoisoned => b"dma-poisoned",
    }
}

fn read_error_name(e: ReadError) -> &'static [u8] {
    match e {
        ReadError::NoSignature { .. } => b"no-signature",
        ReadError::BadDirectoryCount { .. } => b"bad-directory-count",
        ReadError::DirectoryTruncated { .. } => b"directory-truncated",
        ReadError::UnterminatedName { .. } => b"unterminated-name",
        ReadError::EmptyName { .. } => b"empty-name",
        ReadError::BadSelector { .. } => b"bad-selector",
        ReadError::DuplicateFile { .. } => b"duplicate-file",
        ReadError::NotFound => b"not-found",
        ReadError::InvalidName => b"invalid-name",
        ReadError::FileTooLarge { .. } => b"file-too-large",
        ReadError::Transport(t) => transport_error_name(t),
    }
}

fn file_error_name(e: PhysBitsFileError) -> &'static [u8] {
    match e {
        PhysBitsFileError::TooShort(_) => b"too-short",
        PhysBitsFileError::BadVersion(_) => b"bad-version",
        PhysBitsFileError::BadValidFlag(_) => b"bad-valid-flag",
        PhysBitsFileError::BadPhysBits(_) => b"bad-phys-bits",
        PhysBitsFileError::BadGuestPhysBits(_) => b"bad-guest-phys-bits",
        PhysBitsFileError::ReservedNotZero => b"reserved-not-zero",
    }
}

/// What one transport found.
struct FileRead {
    /// Device ID item, when the signature was found.
    id: Option<u32>,
    /// Whether transfers used DMA.
    dma: bool,
    /// The channel's state.
    state: FileState,
    /// The raw bytes read (a prefix of the file).
    bytes: [u8; PHYS_BITS_FILE_READ_MAX],
    /// How many of `bytes` are valid.
    len: usize,
    /// Size in the directory.
    size: Option<u32>,
    /// Why the device could not be used, if it could not.
    device_error: Option<ReadError>,
    /// The three decisions.
    decisions: [Decision; 3],
    /// Cycles of the measured phase.
    cycles: u64,
}

/// The measured phase (lookup, read, decide) through `transport`, then the
/// bulk read (its own phase) with the same reader.
fn read_file_via<T: FwCfgTransport>(
    transport: T,
    cpuid: &CpuidReport,
    phase: u32,
    bulk_phase: u32,
) -> FileRead {
    let mut bytes = [0u8; PHYS_BITS_FILE_READ_MAX];
    let mut len = 0;
    let mut size = None;
    let mut id = None;
    let mut dma = false;
    let mut device_error = None;

    mark(phase);
    let t0 = rdtsc();
    let mut reader = match FwCfgReader::new(transport) {
        Ok(reader) => Some(reader),
        Err(e) => {
            // No device: the channel is silent.
            device_error = Some(e);
            None
        }
    };
    let state = match reader.as_mut() {
        None => FileState::Absent,
        Some(reader) => {
            id = Some(reader.id());
            dma = reader.uses_dma();
            let read = reader.read_phys_bits_file(&mut bytes);
            size = read.entry.map(|e| e.size);
            len = read.raw.len();
            read.state
        }
    };
    let decisions = decide_all(&ChannelInputs::new(cpuid, state));
    let t1 = rdtsc();
    mark(0);

    if let Some(reader) = reader.as_mut() {
        read_bulk(reader, bulk_phase);
    }
    FileRead {
        id,
        dma,
        state,
        bytes,
        len,
        size,
        device_error,
        decisions,
        cycles: t1 - t0,
    }
}

/// Reads the bulk file whole in its own phase and prints a line.
fn read_bulk<T: FwCfgTransport>(reader: &mut FwCfgReader<T>, bulk_phase: u32) {
    // The lookup is not part of the bulk phase: only the data transfer is.
    let Ok(entry) = reader.find_file(BULK_FILE_NAME) else {
        return;
    };
    let buf = crate::buffers::bulk();
    let n = (entry.size as usize).min(buf.len());
    mark(bulk_phase);
    let t0 = rdtsc();
    let result = reader.read_entry_prefix(&entry, &mut buf[..n]);
    let t1 = rdtsc();
    mark(0);
    let mut sum = 0u64;
    for &b in &buf[..n] {
        sum = sum.wrapping_add(u64::from(b));
    }
    let mut l = Line::new("bulk");
    l.u64("phase", u64::from(bulk_phase))
        .u64("size", u64::from(entry.size))
        .u64("read", n as u64)
        .u64("sum", sum)
        .u64("cycles", t1 - t0);
    if let Err(e) = result {
        l.str("error", read_error_name(e));
    }
    l.end();
}

/// One fw_cfg transport: find and read `etc/phys-bits-valid`, decide, print.
/// `mmio` is the MMIO window, if the platform announced one.
pub fn fw_cfg(transport: Transport, cpuid: &CpuidReport, mmio: Option<(u64, u64)>) {
    let phase = phase::FW_CFG + transport as u32;
    let bulk_phase = phase::BULK + transport as u32;
    let mmio_base = match (transport.needs_mmio(), mmio) {
        (true, None) => {
            let mut l = Line::new("result");
            l.u64("phase", u64::from(phase))
                .str("channel", b"fw_cfg")
                .str("transport", transport.name().as_bytes())
                .bool("available", false);
            l.end();
            return;
        }
        (true, Some((base, _))) => base as *mut u8,
        (false, _) => core::ptr::null_mut(),
    };

    // SAFETY (every `unsafe` below): the firmware runs alone in ring 0 with
    // I/O privilege; the fw_cfg ports and the announced MMIO window belong
    // to the fw_cfg device (or to nothing), which does DMA only when its DMA
    // register is written, into the memory the descriptor names; the MMIO
    // window lies in the identity-mapped first 4 GiB; the DMA buffers are
    // identity-mapped statics reserved for fw_cfg DMA, so their addresses
    // are their guest-physical addresses.
    let read = match transport {
        // SAFETY: see above.
        Transport::Pio => read_file_via(unsafe { PortIo::new() }, cpuid, phase, bulk_phase),
        Transport::PioString => {
            // SAFETY: see above.
            let mut t = unsafe { PortIo::new() };
            t.set_string_reads(true);
            read_file_via(t, cpuid, phase, bulk_phase)
        }
        Transport::Dma => {
            let (desc, desc_addr, data, data_addr) = crate::buffers::dma();
            // SAFETY: see above.
            let mem = unsafe { DmaBuffer::new(desc, desc_addr, data, data_addr) };
            // SAFETY: see above.
            let t = Dma::new(unsafe { PortIo::new() }, mem);
            read_file_via(t, cpuid, phase, bulk_phase)
        }
        Transport::Mmio => {
            // SAFETY: see above.
            read_file_via(unsafe { Mmio::new(mmio_base) }, cpuid, phase, bulk_phase)
        }
        Transport::MmioDma => {
            let (desc, desc_addr, data, data_addr) = crate::buffers::dma();
            // SAFETY: see above.
            let mem = unsafe { DmaBuffer::new(desc, desc_addr, data, data_addr) };
            // SAFETY: see above.
            let t = Dma::new(unsafe { Mmio::new(mmio_base) }, mem);
            read_file_via(t, cpuid, phase, bulk_phase)
        }
    };

    let mut l = Line::new("result");
    l.u64("phase", u64::from(phase))
        .str("channel", b"fw_cfg")
        .str("transport", transport.name().as_bytes())
        .bool("available", read.device_error.is_none())
        .u64("cycles", read.cycles)
        .opt_u64("id", read.id.map(u64::from))
        .bool("dma", read.dma);
    if let Some(e) = read.device_error {
        l.str("device_error", read_error_name(e));
    }
    l.open("file");
    match read.state {
        FileState::Absent => {
            l.str("state", b"absent");
        }
        FileState::Present(f) => {
            l.str("state", b"present")
                .u64("version", u64::from(f.version))
                .bool("valid", f.valid)
                .u64("phys_bits", u64::from(f.phys_bits))
                .u64("guest_phys_bits", u64::from(f.guest_phys_bits));
        }
        FileState::Corrupt(e) => {
            l.str("state", b"corrupt").str("error", file_error_name(e));
        }
        FileState::Unreadable(e) => {
            l.str("state", b"unreadable")
                .str("error", read_error_name(e));
        }
    }
    l.opt_u64("size", read.size.map(u64::from))
        .bytes("bytes", &read.bytes[..read.len])
        .close();
    decision_fields(&mut l, &read.decisions);
    l.end();
}
