// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! A small VMM in the shape of rust-vmm's vmm-reference.
//!
//! Boot path: guest memory from `vm-memory` ([`layout::ram_ranges`]) ->
//! `linux-loader`'s [`Elf`] loader (PVH entry required) -> PVH
//! `hvm_start_info`, memory map, command line and initrd module ->
//! one vCPU in 32-bit protected mode at the PVH entry ([`cpu`]). Devices sit
//! on a `vm-device` [`IoManager`]: COM1 (vm-superio), `isa-debug-exit`, and
//! the fw_cfg device on ports 0x510..0x51c and at
//! [`layout::FW_CFG_MMIO_BASE`] ([`fw_cfg`]). Every vCPU gets the host's
//! supported CPUID with [`PhysBitsConfig`] applied.
//!
//! The run loop dispatches port and MMIO exits to the `IoManager` and counts
//! every exit ([`stats`]). It ends when the guest writes the debug-exit port,
//! halts (there is no interrupt controller, so `hlt` always exits), shuts
//! down, or the timeout expires (a watchdog kicks the vCPU thread out of
//! `KVM_RUN` with a signal).
//!
//! A Linux bzImage boots instead through the second loader branch
//! ([`linux`]: [`Vm::new`] dispatches on the image kind): the 64-bit boot
//! protocol with a zero page, an e820 map and ACPI tables ([`acpi`]) that
//! describe the fw_cfg device as QEMU does, plus KVM's in-kernel irqchip
//! and an interrupt-driven COM1. The run loop is the same.
//!
//! [`PhysBitsConfig`]: fw_cfg_device::phys_bits::PhysBitsConfig

pub mod acpi;
pub mod cpu;
pub mod devices;
pub mod fw_cfg;
pub mod layout;
pub mod linux;
pub mod stats;

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, Once};
use std::thread;
use std::time::{Duration, Instant};

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd, VmFd};
use linux_loader::cmdline::Cmdline;
use linux_loader::configurator::pvh::PvhBootConfigurator;
use linux_loader::configurator::{BootConfigurator, BootParams};
use linux_loader::loader::KernelLoader;
use linux_loader::loader::elf::start_info::{
    hvm_memmap_table_entry, hvm_modlist_entry, hvm_start_info,
};
use linux_loader::loader::elf::{Elf, PvhBootCapability};
use vm_device::bus::{MmioAddress, PioAddress, PioRange};
use vm_device::device_manager::{IoManager, MmioManager, PioManager};
use vm_memory::{
    Address, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion,
    MemoryRegionAddress,
};
use vmm_sys_util::signal::{Killable, SIGRTMIN, register_signal_handler};

use devices::{DebugExit, DebugExitFlag, SerialDevice, SerialSink};
use layout::*;
use stats::{ExitKind, ExitStats, ExitTarget};

pub use fw_cfg::FwCfgSetup;

/// Errors of the mini VMM.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `/dev/kvm` cannot be opened.
    #[error("cannot open /dev/kvm: {0}")]
    Kvm(#[source] kvm_ioctls::Error),
    /// Creating the VM failed.
    #[error("cannot create the VM: {0}")]
    CreateVm(#[source] kvm_ioctls::Error),
    /// A VM-level ioctl failed.
    #[error("VM setup failed: {0}")]
    Vm(#[source] kvm_ioctls::Error),
    /// A vCPU ioctl failed.
    #[error("vCPU setup or run failed: {0}")]
    Vcpu(#[source] kvm_ioctls::Error),
    /// `KVM_GET_SUPPORTED_CPUID` failed.
    #[error("cannot get the supported CPUID: {0}")]
    Cpuid(#[source] kvm_ioctls::Error),
    /// No room for another CPUID entry.
    #[error("the CPUID table is full")]
    CpuidFull,
    /// The memory size is zero, too small or too large.
    #[error("invalid memory size {0} MiB")]
    MemorySize(u64),
    /// Allocating guest memory failed.
    #[error("cannot allocate guest memory: {0}")]
    Memory(#[source] vm_memory::mmap::FromRangesError),
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The kernel image is not a loadable ELF.
    #[error("cannot load the kernel: {0}")]
    Load(#[source] linux_loader::loader::Error),
    /// The ELF has no PVH entry note.
    #[error(
        "the kernel has no XEN_ELFNOTE_PHYS32_ENTRY note; only PVH ELF images and bzImages are supported"
    )]
    NotPvh,
    /// The bzImage cannot be booted with the 64-bit boot protocol.
    #[error("cannot boot the bzImage: {0}")]
    BzImage(String),
    /// The command line is invalid.
    #[error("invalid kernel command line: {0}")]
    Cmdline(#[source] linux_loader::cmdline::Error),
    /// Writing boot data into guest memory failed.
    #[error("cannot write boot data into guest memory: {0}")]
    BootData(String),
    /// The initrd does not fit in guest memory.
    #[error("the initrd ({0} bytes) does not fit in guest memory")]
    InitrdTooBig(u64),
    /// Registering a device on the I/O bus failed.
    #[error("cannot register a device: {0}")]
    Bus(#[source] vm_device::bus::Error),
    /// Building the fw_cfg device failed.
    #[error("fw_cfg setup failed: {0}")]
    FwCfg(#[source] fw_cfg_device::BuildError),
    /// A `-fw_cfg` option could not be added.
    #[error("fw_cfg setup failed: {0}")]
    FwCfgOption(#[source] fw_cfg_device::cmdline::CmdlineError),
    /// Querying the host or applying the phys-bits statement failed.
    #[error("fw_cfg setup failed: {0}")]
    PhysBits(#[source] fw_cfg_device::PhysBitsError),
    /// The vCPU thread could not be started or did not report back.
    #[error("vCPU thread failed: {0}")]
    Thread(String),
    /// KVM reported an internal error or failed entry.
    #[error("KVM could not run the guest: {0}")]
    GuestFailed(String),
}

/// What the mini VMM runs.
#[derive(Debug, Clone)]
pub struct VmConfig {
    /// PVH ELF kernel or firmware.
    pub kernel: PathBuf,
    /// Optional initrd, passed as the first PVH module.
    pub initrd: Option<PathBuf>,
    /// Kernel command line.
    pub cmdline: String,
    /// Guest memory in MiB.
    pub memory_mib: u64,
    /// The fw_cfg device and the phys-bits channels.
    pub fw_cfg: FwCfgSetup,
    /// Where COM1's output goes.
    pub serial: SerialSink,
    /// Stop the guest after this long.
    pub timeout: Option<Duration>,
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
        }
    }
}

/// Why the guest stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// The guest wrote `value` to the debug-exit port.
    DebugExit {
        /// What the guest wrote.
        value: u32,
    },
    /// The guest executed `hlt` (there are no interrupts to wake it).
    Halted,
    /// Triple fault or a shutdown/reset request.
    Shutdown,
    /// The timeout expired.
    Timeout,
}

impl ExitReason {
    /// The process exit status QEMU would give (`(value << 1) | 1` for the
    /// debug-exit port, 0 for halt and shutdown); `None` for a timeout.
    pub fn status(&self) -> Option<u32> {
        match self {
            ExitReason::DebugExit { value } => Some(devices::debug_exit_status(*value)),
            ExitReason::Halted | ExitReason::Shutdown => Some(0),
            ExitReason::Timeout => None,
        }
    }
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// Why the guest stopped.
    pub reason: ExitReason,
    /// Exit counters.
    pub stats: ExitStats,
}

/// A configured, ready-to-run VM with one vCPU.
pub struct Vm {
    // Field order is drop order: the vCPU before the VM, the VM before the
    // memory it maps.
    vcpu: VcpuFd,
    _vm: VmFd,
    _kvm: Kvm,
    memory: GuestMemoryMmap,
    io: Arc<IoManager>,
    debug_exit: DebugExitFlag,
    /// The fw_cfg device's handles, kept for inspection after the run.
    pub fw_cfg: fw_cfg::FwCfgHandles,
}

impl Vm {
    /// Creates the VM: memory, devices, kernel, boot data and vCPU state.
    pub fn new(config: &VmConfig) -> Result<Self, Error> {
        let kvm = Kvm::new().map_err(Error::Kvm)?;
        let vm = kvm.create_vm().map_err(Error::CreateVm)?;
        // Needed by Intel VMX for real-mode emulation; harmless otherwise.
        vm.set_tss_address(0xfffb_d000).map_err(Error::Vm)?;
        let kind = linux::KernelKind::detect(&config.kernel)?;
        if kind == linux::KernelKind::BzImage {
            linux::create_irqchip(&vm)?;
        }

        let memory = create_memory(config.memory_mib)?;
        advise_huge_pages(&memory);
        register_memory(&vm, &memory)?;

        let mut io = IoManager::new();
        let serial: Arc<dyn vm_device::DevicePio + Send + Sync> = match kind {
            linux::KernelKind::Pvh => {
                Arc::new(Mutex::new(SerialDevice::new(config.serial.clone())))
            }
            linux::KernelKind::BzImage => linux::IrqSerial::shared(&vm, config.serial.clone())?,
        };
        let (sink_dev, debug_exit) = DebugExit::new();
        io.register_pio(
            PioRange::new(PioAddress(SERIAL_PORT), SERIAL_PORT_SIZE).map_err(Error::Bus)?,
            serial,
        )
        .map_err(Error::Bus)?;
        io.register_pio(
            PioRange::new(PioAddress(DEBUG_EXIT_PORT), DEBUG_EXIT_PORT_SIZE).map_err(Error::Bus)?,
            Arc::new(Mutex::new(sink_dev)),
        )
        .map_err(Error::Bus)?;

        let mut cpuid = cpu::base_cpuid(&kvm)?;
        let fw_cfg = fw_cfg::setup(&config.fw_cfg, &kvm, &mut cpuid, &memory, &mut io)?;

        let vcpu = vm.create_vcpu(0).map_err(Error::Vcpu)?;
        vcpu.set_cpuid2(&cpuid).map_err(Error::Vcpu)?;
        match kind {
            linux::KernelKind::Pvh => {
                let entry = load_pvh_kernel(&memory, config, &fw_cfg)?;
                cpu::setup_pvh_vcpu(&vcpu, entry, PVH_START_INFO)?;
            }
            linux::KernelKind::BzImage => {
                let boot = linux::load(&memory, config, &fw_cfg)?;
                linux::setup_vcpu(&vcpu, &boot)?;
            }
        }

        Ok(Vm {
            vcpu,
            _vm: vm,
            _kvm: kvm,
            memory,
            io: Arc::new(io),
            debug_exit,
            fw_cfg,
        })
    }

    /// Guest memory (for inspection).
    pub fn memory(&self) -> &GuestMemoryMmap {
        &self.memory
    }

    /// Runs the guest until it exits, halts, shuts down or `timeout`
    /// expires.
    pub fn run(self, timeout: Option<Duration>) -> Result<RunOutcome, Error> {
        static HANDLER: Once = Once::new();
        let mut handler_result = Ok(());
        HANDLER.call_once(|| {
            handler_result = register_signal_handler(SIGRTMIN(), kick_handler)
                .map_err(|e| Error::Thread(format!("cannot install the kick signal: {e}")));
        });
        handler_result?;

        let Vm {
            vcpu,
            _vm,
            _kvm,
            memory,
            io,
            debug_exit,
            fw_cfg,
        } = self;
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let thread_stop = stop.clone();
        let handle = thread::Builder::new()
            .name("vcpu0".into())
            .spawn(move || {
                let mut vcpu = vcpu;
                let result = run_vcpu(&mut vcpu, &io, &debug_exit, &thread_stop);
                // The receiver lives until it got this message.
                let _ = tx.send(());
                (result, vcpu)
            })
            .map_err(|e| Error::Thread(e.to_string()))?;

        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let wait = match deadline {
                Some(d) => d
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(10)),
                None => Duration::from_secs(3600),
            };
            match rx.recv_timeout(wait) {
                Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        stop.store(true, Ordering::SeqCst);
                        // Repeated until the thread answers: a kick that
                        // lands just before KVM_RUN is lost.
                        let _ = handle.kill(SIGRTMIN());
                    }
                }
            }
        }
        let (result, vcpu) = handle
            .join()
            .map_err(|_| Error::Thread("the vCPU thread panicked".into()))?;
        drop(vcpu);
        drop(memory);
        drop(fw_cfg);
        result
    }
}

extern "C" fn kick_handler(
    _num: libc::c_int,
    _info: *mut libc::siginfo_t,
    _unused: *mut libc::c_void,
) {
}

fn create_memory(memory_mib: u64) -> Result<GuestMemoryMmap, Error> {
    let size = memory_mib
        .checked_mul(1 << 20)
        .filter(|s| (4 << 20..=1 << 40).contains(s))
        .ok_or(Error::MemorySize(memory_mib))?;
    let ranges: Vec<(GuestAddress, usize)> = layout::ram_ranges(size)
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
            .map_err(|e| Error::BootData(e.to_string()))?;
        let region_info = kvm_userspace_memory_region {
            slot: u32::try_from(slot).map_err(|_| Error::MemorySize(0))?,
            flags: 0,
            guest_phys_addr: region.start_addr().raw_value(),
            memory_size: region.len(),
            userspace_addr: host as u64,
        };
        // SAFETY: the region is a live mmap owned by `memory`, which the
        // `Vm` keeps (and drops after the vCPU and VM file descriptors), so
        // the host range stays valid as long as KVM may access it.
        unsafe { vm.set_user_memory_region(region_info) }.map_err(Error::Vm)?;
    }
    Ok(())
}

fn read_file(path: &PathBuf) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::File {
        path: path.clone(),
        source,
    })
}

/// Loads the PVH ELF, the command line and the initrd, and writes the PVH
/// boot data. Returns the entry point.
fn load_pvh_kernel(
    memory: &GuestMemoryMmap,
    config: &VmConfig,
    fw_cfg: &fw_cfg::FwCfgHandles,
) -> Result<u64, Error> {
    let mut kernel = File::open(&config.kernel).map_err(|source| Error::File {
        path: config.kernel.clone(),
        source,
    })?;
    let loaded = Elf::load(memory, None, &mut kernel, Some(GuestAddress(HIMEM_START)))
        .map_err(Error::Load)?;
    let entry = match loaded.pvh_boot_cap {
        PvhBootCapability::PvhEntryPresent(addr) => addr.raw_value(),
        _ => return Err(Error::NotPvh),
    };

    let mut cmdline = Cmdline::new(CMDLINE_MAX_SIZE).map_err(Error::Cmdline)?;
    if !config.cmdline.is_empty() {
        cmdline
            .insert_str(&config.cmdline)
            .map_err(Error::Cmdline)?;
    }
    if let Some(extra) = fw_cfg.cmdline_param() {
        cmdline.insert_str(extra).map_err(Error::Cmdline)?;
    }
    let cmdline = cmdline.as_cstring().map_err(Error::Cmdline)?;
    memory
        .write_slice(cmdline.as_bytes_with_nul(), GuestAddress(CMDLINE_START))
        .map_err(|e| Error::BootData(e.to_string()))?;

    let low_ram_end = memory
        .iter()
        .next()
        .map(|r| r.start_addr().raw_value() + r.len())
        .unwrap_or(0);
    let mut start_info = hvm_start_info {
        magic: XEN_HVM_START_MAGIC_VALUE,
        version: 1,
        cmdline_paddr: CMDLINE_START,
        memmap_paddr: PVH_MEMMAP,
        ..Default::default()
    };
    let memmap: Vec<hvm_memmap_table_entry> = memory
        .iter()
        .map(|r| hvm_memmap_table_entry {
            addr: r.start_addr().raw_value(),
            size: r.len(),
            type_: E820_RAM,
            reserved: 0,
        })
        .collect();
    start_info.memmap_entries = u32::try_from(memmap.len()).unwrap_or(u32::MAX);

    let mut module = None;
    if let Some(path) = &config.initrd {
        let initrd = read_file(path)?;
        let size = initrd.len() as u64;
        let kernel_end = loaded.kernel_end;
        let addr = low_ram_end
            .checked_sub(size)
            .map(|a| a & !0xfff)
            .filter(|&a| a >= kernel_end && a >= HIMEM_START)
            .ok_or(Error::InitrdTooBig(size))?;
        memory
            .write_slice(&initrd, GuestAddress(addr))
            .map_err(|e| Error::BootData(e.to_string()))?;
        module = Some(hvm_modlist_entry {
            paddr: addr,
            size,
            cmdline_paddr: 0,
            reserved: 0,
        });
        start_info.nr_modules = 1;
        start_info.modlist_paddr = PVH_MODLIST;
    }

    let mut params = BootParams::new::<hvm_start_info>(&start_info, GuestAddress(PVH_START_INFO));
    params.set_sections::<hvm_memmap_table_entry>(&memmap, GuestAddress(PVH_MEMMAP));
    if let Some(m) = module {
        params.set_modules::<hvm_modlist_entry>(&[m], GuestAddress(PVH_MODLIST));
    }
    PvhBootConfigurator::write_bootparams::<GuestMemoryMmap>(&params, memory)
        .map_err(|e| Error::BootData(e.to_string()))?;
    Ok(entry)
}

enum IoResult {
    /// A write to the phase-marker port (not counted).
    Marker,
    /// An access dispatched to the bus.
    Done {
        kind: ExitKind,
        port: u16,
        bytes: usize,
    },
}

/// Dispatches the pending port I/O exit. A string instruction (`rep insb`,
/// `rep outsb`) arrives as one exit with `count` accesses of `size` bytes;
/// each access goes to the device separately, as on real hardware.
fn handle_io(vcpu: &mut VcpuFd, io: &IoManager, phase: &mut u32) -> IoResult {
    let run = vcpu.get_kvm_run();
    // SAFETY: the last KVM_RUN returned KVM_EXIT_IO, so `io` is the union
    // member the kernel filled in.
    let info = unsafe { run.__bindgen_anon_1.io };
    let size = usize::from(info.size);
    let count = info.count as usize;
    let port = info.port;
    let is_in = u32::from(info.direction) == kvm_bindings::KVM_EXIT_IO_IN;
    let Ok(offset) = usize::try_from(info.data_offset) else {
        return IoResult::Marker;
    };
    let base = (run as *mut kvm_bindings::kvm_run).cast::<u8>();
    // SAFETY: for KVM_EXIT_IO the kernel places `size * count` bytes of data
    // at `data_offset` inside this vCPU's kvm_run mapping, which lives as
    // long as `vcpu` (kvm-ioctls builds the same slice for
    // `VcpuExit::IoIn`/`IoOut`); nothing else touches it before the next
    // KVM_RUN.
    let data = unsafe { std::slice::from_raw_parts_mut(base.add(offset), size * count) };
    if !is_in && port == MARK_PORT {
        let mut v = [0u8; 4];
        let n = data.len().min(4);
        v[..n].copy_from_slice(&data[..n]);
        *phase = u32::from_le_bytes(v);
        return IoResult::Marker;
    }
    for access in data.chunks_mut(size.max(1)) {
        if is_in {
            if io.pio_read(PioAddress(port), access).is_err() {
                // Unassigned ports float high.
                access.fill(0xff);
            }
        } else {
            // Writes to unassigned ports are ignored, as on real buses.
            let _ = io.pio_write(PioAddress(port), access);
        }
    }
    IoResult::Done {
        kind: if is_in {
            ExitKind::IoIn
        } else {
            ExitKind::IoOut
        },
        port,
        bytes: size * count,
    }
}

fn run_vcpu(
    vcpu: &mut VcpuFd,
    io: &IoManager,
    debug_exit: &DebugExitFlag,
    stop: &AtomicBool,
) -> Result<RunOutcome, Error> {
    let mut stats = ExitStats::default();
    let mut phase = 0u32;
    let start = Instant::now();
    let finish = |mut stats: ExitStats, reason| {
        stats.run_ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        Ok(RunOutcome { reason, stats })
    };
    loop {
        if stop.load(Ordering::SeqCst) {
            return finish(stats, ExitReason::Timeout);
        }
        let exit = match vcpu.run() {
            Ok(exit) => exit,
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                stats.record(ExitKind::Other, ExitTarget::None, 0, Duration::ZERO, phase);
                continue;
            }
            Err(e) => return Err(Error::Vcpu(e)),
        };
        let t0 = Instant::now();
        match exit {
            VcpuExit::IoOut(..) | VcpuExit::IoIn(..) => {
                // Handled below, once the exit's borrow of the vCPU ends:
                // string instructions need the access size and count, which
                // `VcpuExit` does not carry.
                match handle_io(vcpu, io, &mut phase) {
                    IoResult::Marker => {}
                    IoResult::Done { kind, port, bytes } => {
                        stats.record(kind, ExitTarget::Port(port), bytes, t0.elapsed(), phase);
                        if let Some(value) = debug_exit.value() {
                            return finish(stats, ExitReason::DebugExit { value });
                        }
                    }
                }
            }
            VcpuExit::MmioRead(addr, data) => {
                if io.mmio_read(MmioAddress(addr), data).is_err() {
                    data.fill(0);
                }
                let n = data.len();
                stats.record(
                    ExitKind::MmioRead,
                    ExitTarget::Mmio(addr),
                    n,
                    t0.elapsed(),
                    phase,
                );
            }
            VcpuExit::MmioWrite(addr, data) => {
                let _ = io.mmio_write(MmioAddress(addr), data);
                let n = data.len();
                stats.record(
                    ExitKind::MmioWrite,
                    ExitTarget::Mmio(addr),
                    n,
                    t0.elapsed(),
                    phase,
                );
            }
            VcpuExit::Hlt => {
                stats.record(ExitKind::Hlt, ExitTarget::None, 0, t0.elapsed(), phase);
                return finish(stats, ExitReason::Halted);
            }
            VcpuExit::Shutdown | VcpuExit::SystemEvent(..) => {
                stats.record(ExitKind::Other, ExitTarget::None, 0, t0.elapsed(), phase);
                return finish(stats, ExitReason::Shutdown);
            }
            VcpuExit::InternalError => {
                return Err(Error::GuestFailed(
                    "KVM internal error (emulation failure)".into(),
                ));
            }
            VcpuExit::FailEntry(reason, cpu) => {
                return Err(Error::GuestFailed(format!(
                    "entry failed: hardware reason {reason:#x} on CPU {cpu}"
                )));
            }
            other => {
                let _ = other;
                stats.record(ExitKind::Other, ExitTarget::None, 0, t0.elapsed(), phase);
            }
        }
    }
}
