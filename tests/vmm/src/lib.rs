// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! A small VMM in the shape of rust-vmm's vmm-reference.
//!
//! Boot path: guest memory from `vm-memory` ([`layout::ram_ranges`]) ->
//! `linux-loader`'s ELF loader (PVH entry required, [`pvh`]) -> PVH
//! `hvm_start_info`, memory map, command line and initrd module ->
//! the vCPUs in 32-bit protected mode at the PVH entry ([`cpu`]; vCPUs
//! after the first follow the AP contract described there, each on a
//! thread of its own). Devices sit
//! on a `vm-device` [`IoManager`]: COM1 (vm-superio), `isa-debug-exit`, and
//! the fw_cfg device on ports 0x510..0x51c and at
//! [`layout::FW_CFG_MMIO_BASE`] ([`fw_cfg`]). Every vCPU gets the host's
//! supported CPUID with [`PhysBitsConfig`] applied.
//!
//! The run loop ([`run`]) dispatches port and MMIO exits to the `IoManager`
//! and counts every exit ([`stats`], bounded whatever the guest does). The
//! embedder can put more devices on the bus ([`Vm::register_pio`],
//! [`Vm::register_mmio`]) and install an exit hook ([`hook`]) that sees the
//! guest's writes first and labels exits with a phase. The run ends when the
//! guest writes the debug-exit port, powers off or resets through the ACPI
//! power registers (Linux guests, [`devices::AcpiPower`]), halts (there is
//! no interrupt controller for PVH, so `hlt` always exits), shuts down, or
//! the timeout expires (a
//! watchdog kicks the vCPU thread out of `KVM_RUN` with a signal).
//!
//! A Linux bzImage boots instead through the second loader branch
//! ([`linux`]: [`Vm::new`] dispatches on the image kind): the 64-bit boot
//! protocol with a zero page, an e820 map and ACPI tables ([`acpi`]) that
//! describe the fw_cfg device as QEMU does, plus KVM's in-kernel irqchip
//! and an interrupt-driven COM1. The run loop is the same.
//!
//! With [`VmConfig::bios`] the vCPU starts at the reset vector of a
//! firmware ROM instead (QEMU's `-bios`, [`bios`]), with KVM's irqchip and
//! PIT, a CMOS RTC ([`cmos`]) and the kernel handed to the firmware
//! through fw_cfg. Any boot can have a debug console port
//! ([`VmConfig::debugcon`], [`debugcon`]).
//!
//! ```no_run
//! use fw_cfg_vmm::{Vm, VmConfig};
//!
//! let config = VmConfig::new("/path/to/pvh-kernel.elf");
//! let vm = Vm::new(&config)?;
//! let outcome = vm.run(config.timeout)?;
//! println!("{:?}\n{}", outcome.reason, outcome.stats);
//! # Ok::<(), fw_cfg_vmm::Error>(())
//! ```
//!
//! [`PhysBitsConfig`]: fw_cfg_device::phys_bits::PhysBitsConfig

#![deny(missing_docs)]

pub mod acpi;
pub mod bios;
pub mod cmos;
pub mod cpu;
pub mod debugcon;
pub mod devices;
mod error;
pub mod fw_cfg;
pub mod guest_cpu;
pub mod hook;
pub mod layout;
pub mod linux;
pub mod nesting;
pub mod pvh;
pub mod regs;
pub mod report;
pub mod reset_vector;
pub mod run;
pub mod smbios;
pub mod snapshot;
pub mod stats;
pub mod test_image;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kvm_bindings::{CpuId, kvm_userspace_memory_region};
use kvm_ioctls::{Kvm, VcpuFd, VmFd};
use vm_device::bus::{MmioRange, PioAddress, PioRange};
use vm_device::device_manager::{IoManager, MmioManager, PioManager};
use vm_device::{DeviceMmio, DevicePio};
use vm_memory::{
    Address, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion,
    MemoryRegionAddress,
};

use devices::{AcpiPower, DebugExit, DebugExitFlag, PowerFlag, SerialDevice, SerialSink};
use hook::{ExitHook, NoHook};
use layout::*;

pub use error::{Error, error_chain};
pub use fw_cfg::FwCfgSetup;
pub use run::{ExitReason, RESET_EXIT_STATUS, RunOutcome, SNAPSHOT_EXIT_STATUS};

/// What the mini VMM runs.
#[derive(Debug, Clone)]
pub struct VmConfig {
    /// PVH ELF kernel or firmware, or a Linux bzImage (ignored with a
    /// [`bios`](Self::bios) that does not load a kernel).
    pub kernel: PathBuf,
    /// Optional initrd (the first PVH module, or the bzImage's initramfs).
    pub initrd: Option<PathBuf>,
    /// Kernel command line.
    pub cmdline: String,
    /// Guest memory in MiB: at least 4, and its top (RAM above 3 GiB
    /// moves to 4 GiB) within the width the vCPU's CPUID states
    /// ([`Error::MemoryBeyondWidth`]).
    pub memory_mib: u64,
    /// The fw_cfg device and the phys-bits channels.
    pub fw_cfg: FwCfgSetup,
    /// Where COM1's output goes.
    pub serial: SerialSink,
    /// Stop the guest after this long.
    pub timeout: Option<Duration>,
    /// Boot this firmware from the reset vector (`--bios`).
    pub bios: Option<bios::BiosSetup>,
    /// A debug console port (`--debugcon`).
    pub debugcon: Option<debugcon::DebugconSetup>,
}

impl VmConfig {
    /// A configuration booting `kernel` with defaults for everything else.
    pub fn new(kernel: impl Into<PathBuf>) -> Self {
        VmConfig {
            kernel: kernel.into(),
            initrd: None,
            cmdline: String::new(),
            memory_mib: DEFAULT_MEMORY_MIB,
            fw_cfg: FwCfgSetup::default(),
            serial: SerialSink::Stdout,
            timeout: None,
            bios: None,
            debugcon: None,
        }
    }
}

/// A PVH guest's COM1 as registered on the bus.
type SharedSerial = Arc<Mutex<SerialDevice>>;

/// The KVM objects and the guest memory they map, in the order they must
/// be dropped: the VM file descriptor (whose memory slots point into
/// `memory`), then the KVM handle, then the memory. Field order is drop
/// order; every vCPU of the VM is dropped before this (see [`Vm`]).
struct Mappings {
    vm: VmFd,
    _kvm: Kvm,
    memory: GuestMemoryMmap,
    _rom: Option<bios::RomMapping>,
}

/// A configured, ready-to-run VM.
pub struct Vm {
    // Field order is drop order: the vCPUs before the VM and its memory
    // (`Mappings` drops the VM before the memory it maps).
    vcpu: VcpuFd,
    /// The application processors (vCPUs 1..), see [`cpu`].
    aps: Vec<VcpuFd>,
    mappings: Mappings,
    io: IoManager,
    debug_exit: DebugExitFlag,
    power: PowerFlag,
    hook: Box<dyn ExitHook>,
    /// COM1 of a PVH guest (what snapshots save; `None` for Linux).
    serial: Option<SharedSerial>,
    snapshot: Option<snapshot::Trigger>,
    /// The fw_cfg device's handles, kept for inspection after the run.
    pub fw_cfg: fw_cfg::FwCfgHandles,
}

impl Vm {
    /// Creates the VM: memory, devices, kernel, boot data and vCPU state.
    pub fn new(config: &VmConfig) -> Result<Self, Error> {
        let cpus = config.fw_cfg.cpus;
        let Platform {
            kvm,
            vm,
            firmware,
            debugcon,
            kind,
        } = Platform::create(config)?;
        let host = fw_cfg::host_sizes(&config.fw_cfg.phys_bits, &kvm)?;
        let width = config.fw_cfg.phys_bits.config(host).phys_bits();
        let memory = create_memory(config.memory_mib, width)?;
        advise_huge_pages(&memory);
        let mut mappings = Mappings {
            vm,
            _kvm: kvm,
            memory,
            _rom: None,
        };
        register_memory(&mappings.vm, &mappings.memory)?;
        if let Some(f) = &firmware {
            let first_slot = u32::try_from(mappings.memory.num_regions()).unwrap_or(u32::MAX);
            let m = &mappings;
            mappings._rom = Some(f.map(&m._kvm, &m.vm, &m.memory, first_slot)?);
        }

        let mut io = IoManager::new();
        let interrupts = kind != Some(linux::KernelKind::Pvh);
        let (debug_exit, power, serial) =
            register_legacy_devices(&mut io, &mappings.vm, interrupts, config, debugcon)?;
        let mut cpuid = cpu::base_cpuid(&mappings._kvm)?;
        let tsc_deadline = interrupts && guest_cpu::kvm_has_tsc_deadline(&mappings._kvm);
        guest_cpu::set_tsc_deadline(&mut cpuid, tsc_deadline);
        let fw_cfg_setup = match &firmware {
            Some(f) => {
                f.register_devices(&mut io, &mappings.memory)?;
                f.fw_cfg_setup(config)
            }
            None => config.fw_cfg.clone(),
        };
        let fw_cfg = fw_cfg::setup(
            &fw_cfg_setup,
            &mappings._kvm,
            &mut cpuid,
            &mappings.memory,
            &mut io,
        )?;

        let vcpu = mappings.vm.create_vcpu(0).map_err(Error::Vcpu)?;
        vcpu.set_cpuid2(&cpuid).map_err(Error::Vcpu)?;
        // A firmware starts from KVM's reset state (the reset vector).
        let aps = match kind {
            Some(kind) => {
                let entry = boot_vcpu(&vcpu, &mappings.memory, kind, config, &fw_cfg)?;
                create_aps(&mappings.vm, &cpuid, entry, cpus)?
            }
            None => Vec::new(),
        };

        Ok(Vm {
            vcpu,
            aps,
            mappings,
            io,
            debug_exit,
            power,
            hook: Box::new(NoHook),
            serial,
            snapshot: None,
            fw_cfg,
        })
    }

    /// Guest memory (for inspection).
    pub fn memory(&self) -> &GuestMemoryMmap {
        &self.mappings.memory
    }

    /// Registers another port-I/O device on the VM's bus.
    pub fn register_pio(
        &mut self,
        range: PioRange,
        device: Arc<dyn DevicePio + Send + Sync>,
    ) -> Result<(), Error> {
        self.io.register_pio(range, device).map_err(Error::Bus)
    }

    /// Registers another MMIO device on the VM's bus.
    pub fn register_mmio(
        &mut self,
        range: MmioRange,
        device: Arc<dyn DeviceMmio + Send + Sync>,
    ) -> Result<(), Error> {
        self.io.register_mmio(range, device).map_err(Error::Bus)
    }

    /// Installs the exit hook the run loop consults (replacing the previous
    /// one; the default dispatches everything).
    pub fn set_exit_hook(&mut self, hook: Box<dyn ExitHook>) {
        self.hook = hook;
    }

    /// Runs the guest until it exits, halts, shuts down or `timeout`
    /// expires.
    pub fn run(self, timeout: Option<Duration>) -> Result<RunOutcome, Error> {
        run::install_kick_handler()?;
        let Vm {
            vcpu,
            aps,
            mappings,
            io,
            debug_exit,
            power,
            hook,
            serial: _,
            snapshot,
            fw_cfg,
        } = self;
        let loop_state = run::RunLoop {
            io: Arc::new(io),
            debug_exit,
            power,
            hook: Arc::new(Mutex::new(hook)),
            snapshot: snapshot.map(|t| Arc::new(Mutex::new(t))),
        };
        let vcpus = std::iter::once(vcpu).chain(aps).collect();
        let result = run::run_on_threads(vcpus, loop_state, timeout);
        // The vCPUs are gone (dropped on their threads or by
        // `run_on_threads`): now the VM, then the memory it mapped.
        drop(mappings);
        drop(fw_cfg);
        result
    }
}

/// What [`Vm::new`] sets up before guest memory: the checked firmware and
/// debug console, KVM's VM with the platform devices its guest needs, and
/// the kernel's kind (`None` when a firmware starts at the reset vector).
struct Platform {
    kvm: Kvm,
    vm: VmFd,
    firmware: Option<bios::Firmware>,
    debugcon: Option<(u16, debugcon::Debugcon)>,
    kind: Option<linux::KernelKind>,
}

impl Platform {
    fn create(config: &VmConfig) -> Result<Self, Error> {
        let cpus = config.fw_cfg.cpus;
        if !(1..=cpu::MAX_VCPUS).contains(&cpus) {
            return Err(Error::VcpuCount(cpus));
        }
        // Firmware inputs are checked before anything is created.
        let firmware = match &config.bios {
            Some(b) => Some(bios::Firmware::load(b, config)?),
            None => None,
        };
        let debugcon = match &config.debugcon {
            Some(d) => Some((d.port, debugcon::Debugcon::new(&d.sink)?)),
            None => None,
        };
        let kvm = Kvm::new().map_err(Error::Kvm)?;
        let vm = kvm.create_vm().map_err(Error::CreateVm)?;
        // Needed by Intel VMX for real-mode emulation; harmless otherwise.
        // A firmware gets QEMU's addresses, which its e820 map reserves.
        if firmware.is_some() {
            bios::set_identity_pages(&vm)?;
        } else {
            vm.set_tss_address(0xfffb_d000).map_err(Error::Vm)?;
        }
        let kind = match firmware {
            Some(_) => None,
            None => Some(linux::KernelKind::detect(&config.kernel)?),
        };
        if cpus > 1 && kind != Some(linux::KernelKind::Pvh) {
            return Err(Error::SmpNeedsPvh(cpus));
        }
        if firmware.is_some() {
            bios::create_platform(&vm)?;
        } else if kind == Some(linux::KernelKind::BzImage) {
            linux::create_irqchip(&vm)?;
        }
        Ok(Platform {
            kvm,
            vm,
            firmware,
            debugcon,
            kind,
        })
    }
}

/// Registers COM1 (polled for PVH, on IRQ 4 with `interrupts`: Linux and
/// firmware), the debug-exit port, the debug console if configured and,
/// with `interrupts`, the ACPI power registers; returns the flags the run
/// loop polls and the PVH guest's COM1.
fn register_legacy_devices(
    io: &mut IoManager,
    vm: &VmFd,
    interrupts: bool,
    config: &VmConfig,
    debugcon: Option<(u16, debugcon::Debugcon)>,
) -> Result<(DebugExitFlag, PowerFlag, Option<SharedSerial>), Error> {
    let (serial, pvh_serial): (Arc<dyn DevicePio + Send + Sync>, _) = if interrupts {
        (linux::irq_serial(vm, config.serial.clone())?, None)
    } else {
        let s = Arc::new(Mutex::new(SerialDevice::new(config.serial.clone())));
        (s.clone(), Some(s))
    };
    let (sink_dev, debug_exit) = DebugExit::new();
    let pio = |port, size| PioRange::new(PioAddress(port), size).map_err(Error::Bus);
    io.register_pio(pio(SERIAL_PORT, SERIAL_PORT_SIZE)?, serial)
        .map_err(Error::Bus)?;
    io.register_pio(
        pio(DEBUG_EXIT_PORT, DEBUG_EXIT_PORT_SIZE)?,
        Arc::new(Mutex::new(sink_dev)),
    )
    .map_err(Error::Bus)?;
    if let Some((port, dev)) = debugcon {
        io.register_pio(pio(port, 1)?, Arc::new(Mutex::new(dev)))
            .map_err(Error::Bus)?;
    }
    let (power_dev, power) = AcpiPower::new();
    if interrupts {
        io.register_pio(
            pio(ACPI_POWER_PORT, ACPI_POWER_PORT_SIZE)?,
            Arc::new(Mutex::new(power_dev)),
        )
        .map_err(Error::Bus)?;
    }
    Ok((debug_exit, power, pvh_serial))
}

/// Creates vCPUs 1 to `cpus - 1`, each started at the PVH `entry` as
/// [`cpu::setup_pvh_ap`] documents.
fn create_aps(vm: &VmFd, cpuid: &CpuId, entry: u64, cpus: u16) -> Result<Vec<VcpuFd>, Error> {
    (1..cpus)
        .map(|index| {
            let ap = vm.create_vcpu(u64::from(index)).map_err(Error::Vcpu)?;
            ap.set_cpuid2(&cpu::cpuid_for_vcpu(cpuid, index)?)
                .map_err(Error::Vcpu)?;
            cpu::setup_pvh_ap(&ap, entry, index)?;
            Ok(ap)
        })
        .collect()
}

/// Loads the kernel and boot data of `kind` and puts the vCPU at its
/// entry; returns the entry.
fn boot_vcpu(
    vcpu: &VcpuFd,
    memory: &GuestMemoryMmap,
    kind: linux::KernelKind,
    config: &VmConfig,
    fw_cfg: &fw_cfg::FwCfgHandles,
) -> Result<u64, Error> {
    match kind {
        linux::KernelKind::Pvh => {
            let entry = pvh::load(memory, config, fw_cfg)?;
            cpu::setup_pvh_vcpu(vcpu, entry, PVH_START_INFO)?;
            Ok(entry)
        }
        linux::KernelKind::BzImage => {
            let boot = linux::load(memory, config, fw_cfg)?;
            linux::setup_vcpu(vcpu, &boot)?;
            Ok(boot.entry)
        }
    }
}

/// Guest RAM of `memory_mib` MiB laid out by [`layout::ram_ranges`], whose
/// top must lie within the `width` bits the vCPU's CPUID states (QEMU's
/// `pc_memory_init` refuses the same with "phys-bits too low"); there is
/// no other upper bound, so the host's KVM decides what it can map.
///
/// Nothing is touched: vm-memory 0.18's `MmapRegion::new` (behind
/// `GuestMemoryMmap::from_ranges`) maps anonymous memory with
/// `MAP_ANONYMOUS | MAP_NORESERVE | MAP_PRIVATE` and no dirty bitmap for
/// `()`, so a terabyte of guest RAM costs address space, not memory, until
/// the guest writes it.
fn create_memory(memory_mib: u64, width: u8) -> Result<GuestMemoryMmap, Error> {
    let size = memory_mib
        .checked_mul(1 << 20)
        .filter(|s| *s >= 4 << 20)
        .ok_or(Error::MemorySize(memory_mib))?;
    let ram = layout::ram_ranges(size);
    let top = ram.last().map_or(0, |(start, len)| start + len);
    if u32::from(width) < u64::BITS && top > 1 << width {
        return Err(Error::MemoryBeyondWidth { top, bits: width });
    }
    let ranges: Vec<(GuestAddress, usize)> = ram
        .into_iter()
        .map(|(start, len)| {
            usize::try_from(len)
                .map(|len| (GuestAddress(start), len))
                .map_err(|_| Error::MemorySize(memory_mib))
        })
        .collect::<Result<_, _>>()?;
    GuestMemoryMmap::<()>::from_ranges(&ranges).map_err(Error::Memory)
}

/// Asks for transparent huge pages on guest RAM, as QEMU does: fewer TLB
/// misses and page faults when devices copy bulk data (DMA) into it. Only
/// advice: failure (THP disabled) changes nothing.
fn advise_huge_pages(memory: &GuestMemoryMmap) {
    for region in memory.iter() {
        let Ok(host) = region.get_host_address(MemoryRegionAddress(0)) else {
            continue;
        };
        let Ok(len) = usize::try_from(region.len()) else {
            continue;
        };
        // SAFETY: `host..host + len` is one live anonymous mapping owned by
        // `memory`; MADV_HUGEPAGE only changes how the kernel backs it and
        // never its contents.
        unsafe { libc::madvise(host.cast(), len, libc::MADV_HUGEPAGE) };
    }
}

fn register_memory(vm: &VmFd, memory: &GuestMemoryMmap) -> Result<(), Error> {
    for (slot, region) in memory.iter().enumerate() {
        let host = region
            .get_host_address(MemoryRegionAddress(0))
            .map_err(Error::HostAddress)?;
        let region_info = kvm_userspace_memory_region {
            slot: u32::try_from(slot).map_err(|_| Error::MemorySize(0))?,
            flags: 0,
            guest_phys_addr: region.start_addr().raw_value(),
            memory_size: region.len(),
            userspace_addr: host as u64,
        };
        // SAFETY: the region is a live mmap owned by `memory`. The caller
        // (`Vm::new`) keeps `vm` and `memory` together in `Mappings`, whose
        // field order drops the VM file descriptor before the memory, and
        // `Vm` drops (or `Vm::run` joins and drops) its vCPU before
        // `Mappings`; so the host range stays valid as long as KVM may
        // access it.
        unsafe { vm.set_user_memory_region(region_info) }.map_err(Error::Vm)?;
    }
    Ok(())
}

/// Opens a regular file (never a FIFO or a device, which could block or
/// never end) and returns it with its size; see
/// [`fw_cfg_device::cmdline::open_regular_file`].
pub(crate) fn open_file(path: &Path) -> Result<(std::fs::File, u64), Error> {
    fw_cfg_device::cmdline::open_regular_file(path).map_err(Error::Input)
}

/// Reads `len` bytes of `file` (the initrd at `path`) straight into guest
/// memory at `addr`: nothing larger than the destination is ever buffered.
pub(crate) fn read_into_guest(
    memory: &GuestMemoryMmap,
    file: &mut std::fs::File,
    path: &Path,
    addr: u64,
    len: u64,
) -> Result<(), Error> {
    let count = usize::try_from(len).map_err(|_| Error::InitrdTooBig(len))?;
    memory
        .read_exact_volatile_from(GuestAddress(addr), file, count)
        .map_err(|source| match source {
            vm_memory::GuestMemoryError::IOError(source) => Error::File {
                path: path.to_path_buf(),
                source,
            },
            source => Error::GuestWrite { addr, source },
        })
}

/// The README's usage example, compiled as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_example {}
