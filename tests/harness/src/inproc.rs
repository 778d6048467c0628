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
use fw_cfg_guest::abi::DMA_ACCESS_SIZE;
use fw_cfg_guest::cpuid::{CpuidReport, CpuidResult, CpuidSource, read_cpuid_channel};
use fw_cfg_guest::policy::{ChannelInputs, FileState, decide_all};
use fw_cfg_guest::reader::FwCfgReader;
use fw_cfg_guest::transport::{Dma, DmaMemory, FwCfgTransport, Mmio, MmioBus, PortBus, PortIo};
use fw_cfg_protocol::{
    BootLine, CpuidLine, Decisions, FirmwareReport, Line, Name, Phase, ResultLine, Transport,
};
use kvm_bindings::{CpuId, KVM_CPUID_FLAG_SIGNIFCANT_INDEX, kvm_cpuid_entry2};
use vm_device::bus::{MmioAddress, PioAddress};
use vm_device::device_manager::{IoManager, MmioManager, PioManager};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

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
    stats: RefCell<ExitStats>,
    phase: Cell<u32>,
}

impl Machine {
    /// A machine with the device `setup` describes and a host with address
    /// sizes `host` (a bare MAXPHYADDR: no guest width); also returns the
    /// CPUID table the vCPU would get.
    pub fn new(
        setup: &fw_cfg::FwCfgSetup,
        host: impl Into<HostAddressSizes>,
    ) -> Result<(Self, CpuId), Error> {
        let err = |e: &dyn std::fmt::Display| Error::InProcess(e.to_string());
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEM_SIZE)])
            .map_err(|e| err(&e))?;
        let mut cpuid = host_cpuid_table().map_err(|e| err(&e))?;
        let mut io = IoManager::new();
        let mut setup = setup.clone();
        setup.phys_bits.host_override = Some(host.into());
        fw_cfg_setup_without_kvm(&setup, &mut cpuid, &mem, &mut io)?;
        Ok((
            Machine {
                io,
                mem,
                stats: RefCell::new(ExitStats::default()),
                phase: Cell::new(0),
            },
            cpuid,
        ))
    }

    fn count(&self, kind: ExitKind, target: ExitTarget, bytes: usize) {
        self.stats
            .borrow_mut()
            .record(kind, target, bytes, Duration::ZERO, self.phase.get());
    }

    fn set_phase(&self, phase: Phase) {
        self.phase.set(phase.id());
    }

    /// The counters so far.
    pub fn stats(&self) -> ExitStats {
        self.stats.borrow().clone()
    }
}

fn fw_cfg_setup_without_kvm(
    setup: &fw_cfg::FwCfgSetup,
    cpuid: &mut CpuId,
    mem: &GuestMemoryMmap,
    io: &mut IoManager,
) -> Result<(), Error> {
    use fw_cfg_device::abi;
    use fw_cfg_device::{FwCfgMmio, FwCfgPio};
    use std::sync::{Arc, Mutex};
    use vm_device::bus::{MmioRange, PioRange};

    let err = |e: &dyn std::fmt::Display| Error::InProcess(e.to_string());
    let host = setup
        .phys_bits
        .host_override
        .unwrap_or(HostAddressSizes::from(40));
    let config = setup.phys_bits.config(host);
    config.patch_cpuid(cpuid).map_err(|e| err(&e))?;
    let mut b = fw_cfg::builder(setup, mem).map_err(|e| err(&e))?;
    config.add_to(&mut b).map_err(|e| err(&e))?;
    for (name, data) in &setup.raw_files {
        b.add_file(name, data.clone()).map_err(|e| err(&e))?;
    }
    let m = Arc::new(mem.clone());
    let pio = Arc::new(Mutex::new(FwCfgPio::new(b.build(m.clone()))));
    let range = PioRange::new(PioAddress(abi::PIO_SELECTOR_PORT), abi::PIO_WINDOW_SIZE)
        .map_err(|e| err(&e))?;
    io.register_pio(range, pio).map_err(|e| err(&e))?;
    if setup.mmio {
        let mmio = Arc::new(Mutex::new(FwCfgMmio::new(b.build(m))));
        let range = MmioRange::new(MmioAddress(FW_CFG_MMIO_BASE), abi::MMIO_WINDOW_SIZE)
            .map_err(|e| err(&e))?;
        io.register_mmio(range, mmio).map_err(|e| err(&e))?;
    }
    Ok(())
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

/// Port I/O through the machine's `IoManager`.
pub struct Ports<'a>(&'a Machine);

impl PortBus for Ports<'_> {
    fn out16(&mut self, port: u16, value: u16) {
        let _ = self.0.io.pio_write(PioAddress(port), &value.to_le_bytes());
        self.0.count(ExitKind::IoOut, ExitTarget::Port(port), 2);
    }
    fn out32(&mut self, port: u16, value: u32) {
        let _ = self.0.io.pio_write(PioAddress(port), &value.to_le_bytes());
        self.0.count(ExitKind::IoOut, ExitTarget::Port(port), 4);
    }
    fn in8(&mut self, port: u16) -> u8 {
        let mut b = [0xffu8];
        if self.0.io.pio_read(PioAddress(port), &mut b).is_err() {
            b[0] = 0xff;
        }
        self.0.count(ExitKind::IoIn, ExitTarget::Port(port), 1);
        b[0]
    }
}

/// MMIO through the machine's `IoManager`, at [`FW_CFG_MMIO_BASE`].
pub struct MmioWindow<'a>(&'a Machine);

impl MmioWindow<'_> {
    fn read<const N: usize>(&mut self, offset: u64) -> [u8; N] {
        let addr = FW_CFG_MMIO_BASE + offset;
        let mut b = [0u8; N];
        if self.0.io.mmio_read(MmioAddress(addr), &mut b).is_err() {
            b = [0; N];
        }
        self.0.count(ExitKind::MmioRead, ExitTarget::Mmio(addr), N);
        b
    }
    fn write(&mut self, offset: u64, data: &[u8]) {
        let addr = FW_CFG_MMIO_BASE + offset;
        let _ = self.0.io.mmio_write(MmioAddress(addr), data);
        self.0
            .count(ExitKind::MmioWrite, ExitTarget::Mmio(addr), data.len());
    }
}

impl MmioBus for MmioWindow<'_> {
    fn read8(&mut self, offset: u64) -> u8 {
        self.read::<1>(offset)[0]
    }
    fn read16(&mut self, offset: u64) -> u16 {
        u16::from_ne_bytes(self.read(offset))
    }
    fn read32(&mut self, offset: u64) -> u32 {
        u32::from_ne_bytes(self.read(offset))
    }
    fn read64(&mut self, offset: u64) -> u64 {
        u64::from_ne_bytes(self.read(offset))
    }
    fn write16(&mut self, offset: u64, value: u16) {
        self.write(offset, &value.to_ne_bytes());
    }
    fn write64(&mut self, offset: u64, value: u64) {
        self.write(offset, &value.to_ne_bytes());
    }
}

/// DMA memory in the machine's guest memory.
pub struct GuestDma<'a>(&'a Machine);

// SAFETY: the device behind the kick is the simulated one, which reaches
// only the simulated machine's guest memory (a transfer outside it fails).
unsafe impl DmaMemory for GuestDma<'_> {
    fn descriptor_address(&self) -> u64 {
        DMA_DESCRIPTOR
    }
    fn write_descriptor(&mut self, bytes: &[u8; DMA_ACCESS_SIZE]) {
        let _ = self.0.mem.write_slice(bytes, GuestAddress(DMA_DESCRIPTOR));
    }
    fn read_control(&mut self) -> u32 {
        let mut c = [0u8; 4];
        let _ = self.0.mem.read_slice(&mut c, GuestAddress(DMA_DESCRIPTOR));
        u32::from_be_bytes(c)
    }
    fn buffer_address(&self) -> u64 {
        DMA_BUFFER
    }
    fn buffer_len(&self) -> usize {
        DMA_BUFFER_SIZE
    }
    fn read_buffer(&mut self, offset: usize, out: &mut [u8]) {
        let _ = self
            .0
            .mem
            .read_slice(out, GuestAddress(DMA_BUFFER + offset as u64));
    }
}

/// What the firmware's `read_file_via` does, through any transport: the
/// same `result` line, without cycles.
fn read_via<T: FwCfgTransport>(transport: T, cpuid: &CpuidReport, kind: Transport) -> ResultLine {
    let mut line = ResultLine::new(kind);
    let mut reader = FwCfgReader::new(transport);
    let state = line.read_file_channel(reader.as_mut().map_err(|e| *e));
    line.decisions = Some(Decisions::from(&decide_all(&ChannelInputs::new(
        cpuid, state,
    ))));
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
    let d = decide_all(&ChannelInputs::new(&cpuid, FileState::Absent));
    let mut line = ResultLine::new(Transport::Cpuid);
    line.cpuid = Some(CpuidLine::from(&cpuid));
    line.decisions = Some(Decisions::from(&d));
    report.add(Line::Result(line));

    for kind in Transport::FW_CFG {
        if kind.needs_mmio() && !setup.mmio {
            continue;
        }
        machine.set_phase(Phase::Lookup(kind));
        let m = &machine;
        let line = match kind {
            Transport::Pio => read_via(PortIo::with_bus(Ports(m)), &cpuid, kind),
            Transport::PioString => {
                // `rep insb` is one exit per batch under KVM; in process
                // the default per-byte path is what the bus sees.
                let mut t = PortIo::with_bus(Ports(m));
                t.set_string_reads(true);
                read_via(t, &cpuid, kind)
            }
            Transport::Dma => read_via(
                Dma::new(PortIo::with_bus(Ports(m)), GuestDma(m)),
                &cpuid,
                kind,
            ),
            Transport::Mmio => read_via(Mmio::with_bus(MmioWindow(m)), &cpuid, kind),
            _ => read_via(
                Dma::new(Mmio::with_bus(MmioWindow(m)), GuestDma(m)),
                &cpuid,
                kind,
            ),
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
