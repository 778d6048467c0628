// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The matrix without KVM: the guest reader (`fw-cfg-guest`, the code the
//! firmware links) talks to the device through a `vm-device` `IoManager`
//! in this process, and the CPUID channel reads the table the VMM would
//! have given the vCPU.
//!
//! Every bus access is counted where a guest would take a VM exit, per
//! phase, so the exit columns stay comparable; there are no guest cycles.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use fw_cfg_device::phys_bits::HostAddressSizes;
use fw_cfg_guest::cpuid::{CpuidReport, CpuidResult, CpuidSource, read_cpuid_channel};
use fw_cfg_guest::peers::SeabiosCpu;
use fw_cfg_guest::policy::{ChannelInputs, FileState, decide_all};
use fw_cfg_guest::reader::FwCfgReader;
use fw_cfg_guest::transport::{Dma, FwCfgTransport, Mmio, PortIo};
use fw_cfg_iobus::{AccessKind, AccessObserver, BusAccess, GuestDma, IoMmio, IoPorts};
use fw_cfg_protocol::modes::ModeAnswers;
use fw_cfg_protocol::{
    BootLine, CpuidLine, Decisions, FirmwareReport, Line, Name, Phase, ResultLine, Transport,
};
use kvm_bindings::{CpuId, KVM_CPUID_FLAG_SIGNIFCANT_INDEX, kvm_cpuid_entry2};
use vm_device::device_manager::IoManager;
use vm_memory::{GuestAddress, GuestMemoryMmap};

use crate::matrix::{Engine, Error, Outcome, Scenario};
use crate::vmm::cpu;
use crate::vmm::fw_cfg;
use crate::vmm::layout::FW_CFG_MMIO_BASE;
use crate::vmm::stats::{ExitKind, ExitStats, ExitTarget};

/// Guest memory of the in-process machine.
const MEM_SIZE: usize = 4 << 20;
/// Where the DMA descriptor sits.
const DMA_DESCRIPTOR: u64 = 0x1000;
/// Where the DMA data buffer sits.
const DMA_BUFFER: u64 = 0x2000;
/// Size of the DMA data buffer.
const DMA_BUFFER_SIZE: usize = 64 * 1024;

/// The device side: an `IoManager` with the fw_cfg front ends, guest memory
/// for DMA, and the access counters.
pub struct Machine {
    io: IoManager,
    mem: GuestMemoryMmap,
    counter: PhaseCounter,
}

/// Counts each bus access as the VM exit a guest would take, in the
/// current phase.
#[derive(Default)]
struct PhaseCounter {
    stats: RefCell<ExitStats>,
    phase: Cell<u32>,
}

impl AccessObserver for PhaseCounter {
    fn access(&self, access: BusAccess) {
        // Port numbers fit 16 bits: the adapters take a u16 port.
        let port = || ExitTarget::Port(access.addr as u16);
        let (kind, target) = match access.kind {
            AccessKind::PortRead => (ExitKind::IoIn, port()),
            AccessKind::PortWrite => (ExitKind::IoOut, port()),
            AccessKind::MmioRead => (ExitKind::MmioRead, ExitTarget::Mmio(access.addr)),
            AccessKind::MmioWrite => (ExitKind::MmioWrite, ExitTarget::Mmio(access.addr)),
        };
        self.stats.borrow_mut().record(
            kind,
            target,
            access.bytes,
            Duration::ZERO,
            self.phase.get(),
        );
    }
}

impl Machine {
    /// A machine with the device `setup` describes and a host with address
    /// sizes `host` (a bare MAXPHYADDR: no guest width); also returns the
    /// CPUID table the vCPU would get.
    pub fn new(
        setup: &fw_cfg::FwCfgSetup,
        host: impl Into<HostAddressSizes>,
    ) -> Result<(Self, CpuId), Error> {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEM_SIZE)])
            .map_err(|e| Error::Vmm(crate::vmm::Error::Memory(e)))?;
        let mut cpuid = host_cpuid_table()?;
        let mut io = IoManager::new();
        fw_cfg::setup_for_host(setup, host.into(), &mut cpuid, &mem, &mut io)?;
        let counter = PhaseCounter::default();
        Ok((Machine { io, mem, counter }, cpuid))
    }

    fn set_phase(&self, phase: Phase) {
        self.counter.phase.set(phase.id());
    }

    /// The counters so far.
    pub fn stats(&self) -> ExitStats {
        self.counter.stats.borrow().clone()
    }

    fn ports(&self) -> IoPorts<'_, PhaseCounter> {
        IoPorts::new(&self.io, &self.counter)
    }

    fn mmio(&self) -> IoMmio<'_, PhaseCounter> {
        IoMmio::new(&self.io, FW_CFG_MMIO_BASE, &self.counter)
    }

    fn dma(&self) -> GuestDma<&GuestMemoryMmap> {
        GuestDma::new(&self.mem, DMA_DESCRIPTOR, DMA_BUFFER, DMA_BUFFER_SIZE)
    }
}

/// The CPUID leaves the channel reads, from this CPU, with KVM's leaves
/// added: what a VMM would start from.
fn host_cpuid_table() -> Result<CpuId, crate::vmm::Error> {
    let mut cpuid = CpuId::new(0).map_err(|_| crate::vmm::Error::CpuidFull)?;
    let leaves = [
        (0u32, 0u32),
        (1, 0),
        (7, 0),
        (0x8000_0000, 0),
        (0x8000_0001, 0),
        (0x8000_0008, 0),
    ];
    for (function, index) in leaves {
        #[allow(unused_unsafe)]
        // SAFETY: CPUID exists on every x86-64 CPU and has no side effects;
        // leaves above the maximum return unspecified but harmless values.
        let r = unsafe { core::arch::x86_64::__cpuid_count(function, index) };
        cpuid
            .push(kvm_cpuid_entry2 {
                function,
                index,
                flags: if function == 7 {
                    KVM_CPUID_FLAG_SIGNIFCANT_INDEX
                } else {
                    0
                },
                eax: r.eax,
                ebx: r.ebx,
                ecx: r.ecx | if function == 1 { 1 << 31 } else { 0 },
                edx: r.edx,
                ..Default::default()
            })
            .map_err(|_| crate::vmm::Error::CpuidFull)?;
    }
    cpu::ensure_kvm_leaves(&mut cpuid)?;
    cpu::copy_vendor_to_extended_leaf(&mut cpuid);
    Ok(cpuid)
}

/// A CPUID table as a [`CpuidSource`]: what `KVM_SET_CPUID2` would make
/// the guest's `cpuid` return (missing leaves read as zeros).
pub struct CpuidTable<'a>(pub &'a CpuId);

impl CpuidSource for CpuidTable<'_> {
    fn cpuid(&self, leaf: u32, subleaf: u32) -> CpuidResult {
        self.0
            .as_slice()
            .iter()
            .find(|e| {
                e.function == leaf
                    && (e.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX == 0 || e.index == subleaf)
            })
            .map(|e| CpuidResult {
                eax: e.eax,
                ebx: e.ebx,
                ecx: e.ecx,
                edx: e.edx,
            })
            .unwrap_or_default()
    }
}

/// Every mode's answer, as the firmware computes it from what it read
/// (the port-I/O line only, as the firmware).
fn modes(inputs: &ChannelInputs, cpuid: &CpuidReport) -> ModeAnswers {
    ModeAnswers::compute(inputs, &SeabiosCpu::from_report(cpuid), &mut [])
}

/// What the firmware's `read_file_via` does, through any transport: the
/// same `result` line, without cycles.
fn read_via<T: FwCfgTransport>(
    machine: &Machine,
    transport: T,
    cpuid: &CpuidReport,
    kind: Transport,
) -> ResultLine {
    let mut line = ResultLine::new(kind);
    machine.set_phase(Phase::Lookup(kind));
    let mut reader = FwCfgReader::new(transport);
    let state = line.read_file_channel(reader.as_mut().map_err(|e| *e));
    let inputs = ChannelInputs::new(cpuid, state);
    line.decisions = Some(Decisions::from(&decide_all(&inputs)));
    if kind == Transport::Pio {
        line.modes = Some(modes(&inputs, cpuid));
    }
    machine.set_phase(Phase::Idle);
    if let Ok(reader) = reader.as_mut() {
        line.read_id_after_decision(reader);
    }
    line
}

/// Runs one configuration in process.
pub fn run_in_process(
    scenario: &Scenario,
    host: impl Into<HostAddressSizes>,
) -> Result<Outcome, Error> {
    let host = host.into();
    let setup = scenario.setup(host);
    let (machine, cpuid_table) = Machine::new(&setup, host)?;
    let mut report = FirmwareReport::default();
    report.add(Line::Boot(BootLine {
        firmware: Name::new("fw-cfg-tests in process"),
        version: Name::new(env!("CARGO_PKG_VERSION")),
        start_info: 0,
        cmdline: Name::empty(),
        mmio_base: setup.mmio.then_some(FW_CFG_MMIO_BASE),
    }));

    machine.set_phase(Phase::Lookup(Transport::Cpuid));
    let cpuid = read_cpuid_channel(&CpuidTable(&cpuid_table));
    let inputs = ChannelInputs::new(&cpuid, FileState::Absent);
    let mut line = ResultLine::new(Transport::Cpuid);
    line.cpuid = Some(CpuidLine::from(&cpuid));
    line.decisions = Some(Decisions::from(&decide_all(&inputs)));
    report.add(Line::Result(line));

    for kind in Transport::FW_CFG {
        if kind.needs_mmio() && !setup.mmio {
            continue;
        }
        let m = &machine;
        let line = match kind {
            Transport::Pio => read_via(m, PortIo::with_bus(m.ports()), &cpuid, kind),
            Transport::PioString => {
                // `rep insb` is one exit per batch under KVM; in process
                // the default per-byte path is what the bus sees.
                let mut t = PortIo::with_bus(m.ports());
                t.set_string_reads(true);
                read_via(m, t, &cpuid, kind)
            }
            Transport::Dma => read_via(
                m,
                Dma::new(PortIo::with_bus(m.ports()), m.dma()),
                &cpuid,
                kind,
            ),
            Transport::Mmio => read_via(m, Mmio::with_bus(m.mmio()), &cpuid, kind),
            _ => read_via(m, Dma::new(Mmio::with_bus(m.mmio()), m.dma()), &cpuid, kind),
        };
        report.add(Line::Result(line));
    }
    machine.set_phase(Phase::Idle);
    report.add(Line::Done);

    let config = scenario.phys_bits_config(host);
    Ok(Outcome {
        scenario: *scenario,
        engine: Engine::InProcess,
        host_phys_bits: host.phys_bits,
        advertised_phys_bits: config.phys_bits(),
        config_valid: config.valid(),
        backed_bits: config.backed_bits(),
        report,
        stats: machine.stats(),
        reason: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::FileCase;
    use fw_cfg_protocol::{FileStateKind, line_to_string, parse_line};

    #[test]
    fn in_process_matrix_reads_every_transport() {
        for s in Scenario::all() {
            let o = run_in_process(&s, 46).unwrap();
            assert_eq!(o.report.results.len(), 6, "{}", s.label());
            let pio = &o.report.results[&Transport::Pio];
            let state = pio.file.as_ref().unwrap().state;
            let expected = match s.file {
                FileCase::Absent => FileStateKind::Absent,
                FileCase::Stated | FileCase::Conflicting => FileStateKind::Present,
                FileCase::Corrupt => FileStateKind::Corrupt,
            };
            assert_eq!(state, expected, "{}", s.label());
            // Every transport reads the same file and decides the same.
            for t in Transport::FW_CFG {
                assert_eq!(
                    o.report.results[&t].decisions,
                    pio.decisions,
                    "{} via {t:?}",
                    s.label()
                );
            }
            // DMA needs far fewer bus accesses than byte-wise port I/O.
            let pio_exits = o.stats.phase(Phase::Lookup(Transport::Pio).id()).total();
            let dma_exits = o.stats.phase(Phase::Lookup(Transport::Dma).id()).total();
            assert!(dma_exits < pio_exits, "{}", s.label());
        }
    }

    #[test]
    fn in_process_lines_go_through_the_one_parser() {
        for s in Scenario::all() {
            let o = run_in_process(&s, 46).unwrap();
            let mut serial = Vec::new();
            for line in o.report.results.values() {
                let text = line_to_string(&Line::Result(*line)).unwrap();
                assert_eq!(parse_line(&text).unwrap(), Line::Result(*line), "{text}");
                serial.extend_from_slice(text.as_bytes());
            }
            serial.extend_from_slice(line_to_string(&Line::Done).unwrap().as_bytes());
            let parsed = FirmwareReport::parse(&serial);
            assert_eq!(parsed.other_lines, 0, "{}", s.label());
            assert!(parsed.done);
            assert_eq!(parsed.results, o.report.results, "{}", s.label());
        }
    }
}
