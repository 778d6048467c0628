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
use fw_cfg_guest::abi::{DMA_ACCESS_SIZE, PHYS_BITS_FILE_NAME, PhysBitsFileError};
use fw_cfg_guest::cpuid::{CpuidReport, CpuidResult, CpuidSource, HintState, read_cpuid_channel};
use fw_cfg_guest::policy::{
    ChannelInputs, Decision, FileState, PHYS_BITS_FILE_READ_MAX, Rule, decide_all,
};
use fw_cfg_guest::reader::{FwCfgReader, ReadError};
use fw_cfg_guest::transport::{
    Dma, DmaMemory, FwCfgTransport, Mmio, MmioBus, PortBus, PortIo, TransportError,
};
use kvm_bindings::{CpuId, KVM_CPUID_FLAG_SIGNIFCANT_INDEX, kvm_cpuid_entry2};
use vm_device::bus::{MmioAddress, PioAddress};
use vm_device::device_manager::{IoManager, MmioManager, PioManager};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::firmware::{
    self, CpuidLine, DecisionLine, Decisions, FileLine, FirmwareReport, ResultLine,
};
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

    fn set_phase(&self, phase: u32) {
        self.phase.set(phase);
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

impl DmaMemory for GuestDma<'_> {
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

fn rule_name(r: Rule) -> &'static str {
    match r {
        Rule::Distrusted => "distrusted",
        Rule::ExplicitInvalid => "explicit-invalid",
        Rule::ExplicitValid => "explicit-valid",
        Rule::NoInformation => "no-information",
        Rule::HeuristicValid => "heuristic-valid",
        Rule::HeuristicInvalid => "heuristic-invalid",
    }
}

fn decision_line(d: &Decision) -> DecisionLine {
    DecisionLine {
        phys_bits: d.phys_bits,
        decided_by: d.decided_by.as_str().to_string(),
        rule: rule_name(d.rule).to_string(),
        conflicts: d.conflicts.iter().map(|c| c.as_str().to_string()).collect(),
    }
}

/// The firmware's JSON shape for three decisions.
pub fn decisions(d: &[Decision; 3]) -> Decisions {
    Decisions {
        strict: decision_line(&d[0]),
        heuristic: decision_line(&d[1]),
        combined: decision_line(&d[2]),
    }
}

fn cpuid_line(r: &CpuidReport) -> CpuidLine {
    CpuidLine {
        hypervisor: r.hypervisor_present,
        kvm_base: r.kvm_base,
        kvm_features_edx: r.kvm_features_edx,
        hint: match r.hint {
            HintState::NoKvmLeaf => "no-kvm-leaf",
            HintState::Clear => "clear",
            HintState::Set => "set",
        }
        .to_string(),
        has_address_sizes: r.has_address_sizes,
        address_sizes_eax: r.address_sizes_eax,
        phys_bits: r.phys_bits,
        guest_phys_bits: r.guest_phys_bits,
        vendor: r.vendor.as_str().to_string(),
        ext_vendor: r.ext_vendor.map(|v| v.as_str().to_string()),
        gb_pages: r.gb_pages,
    }
}

fn transport_error_name(e: TransportError) -> &'static str {
    match e {
        TransportError::DmaError { .. } => "dma-error",
        TransportError::DmaTimeout { .. } => "dma-timeout",
        TransportError::DmaPoisoned => "dma-poisoned",
    }
}

fn read_error_name(e: ReadError) -> &'static str {
    match e {
        ReadError::NoSignature { .. } => "no-signature",
        ReadError::BadDirectoryCount { .. } => "bad-directory-count",
        ReadError::DirectoryTruncated { .. } => "directory-truncated",
        ReadError::UnterminatedName { .. } => "unterminated-name",
        ReadError::EmptyName { .. } => "empty-name",
        ReadError::BadSelector { .. } => "bad-selector",
        ReadError::DuplicateFile { .. } => "duplicate-file",
        ReadError::NotFound => "not-found",
        ReadError::InvalidName => "invalid-name",
        ReadError::FileTooLarge { .. } => "file-too-large",
        ReadError::Transport(t) => transport_error_name(t),
    }
}

fn file_error_name(e: PhysBitsFileError) -> &'static str {
    match e {
        PhysBitsFileError::TooShort(_) => "too-short",
        PhysBitsFileError::BadVersion(_) => "bad-version",
        PhysBitsFileError::BadValidFlag(_) => "bad-valid-flag",
        PhysBitsFileError::BadPhysBits(_) => "bad-phys-bits",
        PhysBitsFileError::BadGuestPhysBits(_) => "bad-guest-phys-bits",
        PhysBitsFileError::ReservedNotZero => "reserved-not-zero",
    }
}

/// What the firmware's `read_file_via` does, through any transport.
fn read_via<T: FwCfgTransport>(
    transport: T,
    cpuid: &CpuidReport,
    name: &str,
    phase: u32,
) -> ResultLine {
    let mut line = ResultLine {
        phase,
        channel: "fw_cfg".into(),
        transport: name.into(),
        available: true,
        cycles: None,
        id: None,
        dma: false,
        device_error: None,
        cpuid: None,
        file: None,
        decisions: None,
    };
    let mut file = FileLine {
        state: "absent".into(),
        valid: None,
        phys_bits: None,
        guest_phys_bits: None,
        error: None,
        size: None,
        bytes: Vec::new(),
    };
    let state = match FwCfgReader::new(transport) {
        Err(e) => {
            line.available = false;
            line.device_error = Some(read_error_name(e).into());
            FileState::Absent
        }
        Ok(mut reader) => {
            line.id = Some(reader.id());
            line.dma = reader.uses_dma();
            match reader.find_file(PHYS_BITS_FILE_NAME) {
                Ok(entry) => {
                    file.size = Some(entry.size);
                    let mut buf = [0u8; PHYS_BITS_FILE_READ_MAX];
                    match reader.read_entry_prefix(&entry, &mut buf) {
                        Ok(n) => {
                            file.bytes = buf[..n].to_vec();
                            FileState::from_bytes(&buf[..n])
                        }
                        Err(e) => FileState::Unreadable(e),
                    }
                }
                Err(ReadError::NotFound) => FileState::Absent,
                Err(e) => FileState::Unreadable(e),
            }
        }
    };
    match state {
        FileState::Absent => {}
        FileState::Present(f) => {
            file.state = "present".into();
            file.valid = Some(f.valid);
            file.phys_bits = Some(f.phys_bits);
            file.guest_phys_bits = Some(f.guest_phys_bits);
        }
        FileState::Corrupt(e) => {
            file.state = "corrupt".into();
            file.error = Some(file_error_name(e).into());
        }
        FileState::Unreadable(e) => {
            file.state = "unreadable".into();
            file.error = Some(read_error_name(e).into());
        }
    }
    line.file = Some(file);
    line.decisions = Some(decisions(&decide_all(&ChannelInputs::new(cpuid, state))));
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
    let mut report = FirmwareReport {
        mmio_base: setup.mmio.then_some(FW_CFG_MMIO_BASE),
        ..Default::default()
    };

    machine.set_phase(firmware::phase::CPUID);
    let cpuid = read_cpuid_channel(&CpuidTable(&cpuid_table));
    let d = decide_all(&ChannelInputs::new(&cpuid, FileState::Absent));
    report.results.insert(
        "cpuid".into(),
        ResultLine {
            phase: firmware::phase::CPUID,
            channel: "cpuid".into(),
            transport: "cpuid".into(),
            available: true,
            cycles: None,
            id: None,
            dma: false,
            device_error: None,
            cpuid: Some(cpuid_line(&cpuid)),
            file: None,
            decisions: Some(decisions(&d)),
        },
    );

    for name in firmware::TRANSPORTS {
        let phase = firmware::transport_phase(name).unwrap_or(0);
        let mmio = name.starts_with("mmio");
        if mmio && !setup.mmio {
            continue;
        }
        machine.set_phase(phase);
        let m = &machine;
        let line = match name {
            "pio" => read_via(PortIo::with_bus(Ports(m)), &cpuid, name, phase),
            "pio-string" => {
                // `rep insb` is one exit per batch under KVM; in process
                // the default per-byte path is what the bus sees.
                let mut t = PortIo::with_bus(Ports(m));
                t.set_string_reads(true);
                read_via(t, &cpuid, name, phase)
            }
            "dma" => read_via(
                Dma::new(PortIo::with_bus(Ports(m)), GuestDma(m)),
                &cpuid,
                name,
                phase,
            ),
            "mmio" => read_via(Mmio::with_bus(MmioWindow(m)), &cpuid, name, phase),
            _ => read_via(
                Dma::new(Mmio::with_bus(MmioWindow(m)), GuestDma(m)),
                &cpuid,
                name,
                phase,
            ),
        };
        report.results.insert(name.to_string(), line);
    }
    machine.set_phase(0);
    report.done = true;

    let config = scenario.phys_bits_config(host);
    Ok(Outcome {
        scenario: *scenario,
        engine: Engine::InProcess,
        host_phys_bits: host.phys_bits,
        advertised_phys_bits: config.phys_bits(),
        config_valid: config.valid(),
        report,
        stats: machine.stats(),
        reason: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::FileCase;

    #[test]
    fn in_process_matrix_reads_every_transport() {
        for s in Scenario::all() {
            let o = run_in_process(&s, 46).unwrap();
            assert_eq!(o.report.results.len(), 6, "{}", s.label());
            let pio = &o.report.results["pio"];
            let state = &pio.file.as_ref().unwrap().state;
            let expected = match s.file {
                FileCase::Absent => "absent",
                FileCase::Stated | FileCase::Conflicting => "present",
                FileCase::Corrupt => "corrupt",
            };
            assert_eq!(state, expected, "{}", s.label());
            // Every transport reads the same file and decides the same.
            for t in firmware::TRANSPORTS {
                assert_eq!(
                    o.report.results[t].decisions,
                    pio.decisions,
                    "{} via {t}",
                    s.label()
                );
            }
            // DMA needs far fewer bus accesses than byte-wise port I/O.
            let pio_exits = o.stats.phase(firmware::phase::FW_CFG).total();
            let dma_exits = o.stats.phase(firmware::phase::FW_CFG + 2).total();
            assert!(dma_exits < pio_exits, "{}", s.label());
        }
    }
}
