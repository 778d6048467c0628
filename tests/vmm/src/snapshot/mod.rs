// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Snapshot and restore of a running PVH guest.
//!
//! [`Vm::snapshot_on`] arms a trigger: after the guest's `N`-th fw_cfg
//! access (a VM exit to the fw_cfg ports or MMIO window; a string
//! instruction's exit counts once), or when the process receives
//! [`SNAPSHOT_SIGNAL`] (SIGUSR1), the run loop completes the pending I/O
//! inside KVM, saves guest memory, the vCPU state ([`vcpu::SAVED_MSRS`]
//! and KVM's register structures), both fw_cfg front ends
//! ([`FwCfgSnapshot`]: registers, configuration digest, writable contents,
//! the vouched width) and COM1 into a file ([`mod@format`]), and stops with
//! [`ExitReason::Snapshot`]. A second VMM built with the same
//! configuration resumes it with [`Vm::restore`], which refuses another
//! memory size, other fw_cfg items, and a host narrower than the width the
//! source vouched for (the migration guard, checked against this VMM's
//! [`PhysBitsConfig`] host, [`PhysBitsSetup::host_override`] included).
//!
//! The vCPU keeps the destination's CPUID (built from its own
//! configuration), as QEMU requires the same `-cpu` on both ends. Linux
//! guests (in-kernel irqchip, PIT, KVM clock) are refused; only the PVH
//! path, which has none of them, is supported.
//!
//! [`ExitReason::Snapshot`]: crate::ExitReason::Snapshot
//! [`FwCfgSnapshot`]: fw_cfg_device::snapshot::FwCfgSnapshot
//! [`PhysBitsConfig`]: fw_cfg_device::phys_bits::PhysBitsConfig
//! [`PhysBitsSetup::host_override`]: crate::fw_cfg::PhysBitsSetup::host_override

pub mod format;
pub mod vcpu;

use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use fw_cfg_device::abi;
use fw_cfg_device::phys_bits::HostAddressSizes;
use fw_cfg_device::snapshot::vouched_bits;
use kvm_ioctls::VcpuFd;
use vm_memory::{
    Address, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion,
};

use crate::devices::SerialDevice;
use crate::fw_cfg::{FwCfgHandles, SharedMmio, SharedPio};
use crate::layout::FW_CFG_MMIO_BASE;
use crate::stats::ExitTarget;
use crate::{Error, Vm};
use format::{FormatError, FwCfgFronts, Limits, SnapshotParts};

/// The signal that asks for a snapshot.
pub const SNAPSHOT_SIGNAL: libc::c_int = libc::SIGUSR1;

/// Most bytes a snapshot holds besides guest memory and writable fw_cfg
/// contents (headers, KVM structures, registers): a generous bound.
const STATE_BYTES_MAX: u64 = 1 << 20;

/// Errors of saving or restoring a snapshot.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Reading or writing the snapshot file failed.
    #[error("cannot access the snapshot {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The snapshot file is refused (not a regular file, unreadable).
    #[error("invalid snapshot file")]
    Input(#[source] fw_cfg_device::cmdline::InputFileError),
    /// The file is larger than any snapshot of this VM can be.
    #[error("the snapshot is {size} bytes, more than this VM's at most {limit}")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The largest snapshot of this configuration.
        limit: u64,
    },
    /// The file is not a valid snapshot.
    #[error("invalid snapshot")]
    Format(#[source] FormatError),
    /// An fw_cfg front end refuses its state.
    #[error("the fw_cfg {front} device refuses the snapshot")]
    Device {
        /// `port I/O` or `MMIO`.
        front: &'static str,
        /// Why.
        #[source]
        source: fw_cfg_device::SnapshotError,
    },
    /// The snapshot and this VM differ in which fw_cfg front ends exist.
    #[error("the snapshot's fw_cfg front ends (port I/O, MMIO) differ from this VM's")]
    FrontEnds,
    /// A KVM ioctl failed.
    #[error("{what} failed")]
    Kvm {
        /// The ioctl.
        what: &'static str,
        /// Why.
        #[source]
        source: kvm_ioctls::Error,
    },
    /// The MSR list does not fit KVM's structure.
    #[error("cannot build the MSR list")]
    MsrList,
    /// KVM refused to set an MSR of the snapshot.
    #[error("KVM refused MSR {index:#x} of the snapshot")]
    MsrRefused {
        /// The first MSR not set.
        index: u32,
    },
    /// COM1 refuses its state.
    #[error("the serial port refuses the snapshot's state")]
    Serial(#[source] vm_superio::serial::Error<std::io::Error>),
    /// Guest memory could not be read or written.
    #[error("cannot copy guest memory")]
    Memory(#[source] vm_memory::GuestMemoryError),
    /// The VM boots Linux (irqchip, PIT, clock), which snapshots do not
    /// support.
    #[error("snapshots support PVH guests only, not Linux bzImages")]
    LinuxGuest,
    /// The VM has several vCPUs; snapshots save one.
    #[error("snapshots support one vCPU, not --cpus above 1")]
    SeveralVcpus,
    /// The snapshot signal's handler cannot be installed.
    #[error("cannot install the snapshot signal handler")]
    Signal(#[source] vmm_sys_util::errno::Error),
    /// A lock of a device was poisoned by a panic.
    #[error("a device lock is poisoned")]
    Poisoned,
}

/// When and where to save a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRequest {
    /// The file to write.
    pub path: PathBuf,
    /// Save after this many fw_cfg accesses (exits); `None`: only at
    /// [`SNAPSHOT_SIGNAL`].
    pub after_accesses: Option<u64>,
}

static SIGNALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    SIGNALLED.store(true, Ordering::SeqCst);
}

/// Changes the calling thread's mask for [`SNAPSHOT_SIGNAL`].
fn mask_signal(how: libc::c_int) {
    // SAFETY: `set` is a local signal set initialised by sigemptyset
    // before use; pthread_sigmask only reads it and changes this thread's
    // mask (a null old-set pointer is allowed).
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, SNAPSHOT_SIGNAL);
        libc::pthread_sigmask(how, &set, std::ptr::null_mut());
    }
}

/// What a snapshot reads from, shared with the VM.
struct Sources {
    memory: GuestMemoryMmap,
    pio: Option<SharedPio>,
    mmio: Option<SharedMmio>,
    serial: Arc<Mutex<SerialDevice>>,
    vouched_bits: u8,
}

/// The armed trigger the run loop consults.
pub(crate) struct Trigger {
    request: SnapshotRequest,
    accesses: u64,
    mmio_window: Option<std::ops::Range<u64>>,
    sources: Sources,
}

impl Trigger {
    /// Called on the vCPU thread before it first runs: the snapshot signal
    /// is delivered there (it interrupts `KVM_RUN`), not to other threads.
    pub(crate) fn on_vcpu_thread(&self) {
        mask_signal(libc::SIG_UNBLOCK);
    }

    fn is_fw_cfg(&self, target: ExitTarget) -> bool {
        let ports = abi::PIO_SELECTOR_PORT..abi::PIO_SELECTOR_PORT + abi::PIO_WINDOW_SIZE;
        match target {
            ExitTarget::Port(p) => ports.contains(&p),
            ExitTarget::Mmio(a) => self.mmio_window.as_ref().is_some_and(|w| w.contains(&a)),
            ExitTarget::None => false,
        }
    }

    /// Counts an exit to `target`; true when a snapshot is due now.
    pub(crate) fn after_exit(&mut self, target: ExitTarget) -> bool {
        if self.is_fw_cfg(target) {
            self.accesses += 1;
        }
        self.request.after_accesses == Some(self.accesses) && self.is_fw_cfg(target)
    }

    /// Whether the snapshot signal arrived (and consumes it).
    pub(crate) fn signalled(&self) -> bool {
        SIGNALLED.swap(false, Ordering::SeqCst)
    }

    /// Saves the snapshot of the VM stopped at this exit.
    pub(crate) fn save(&self, vcpu: &mut VcpuFd) -> Result<(), Error> {
        self.save_inner(vcpu).map_err(Error::Snapshot)
    }

    fn save_inner(&self, vcpu: &mut VcpuFd) -> Result<(), SnapshotError> {
        vcpu::complete_pending_io(vcpu)?;
        let state = vcpu::save(vcpu)?;
        let s = &self.sources;
        let fw_cfg = FwCfgFronts {
            pio: lock_map(s.pio.as_ref(), |d| d.inner().snapshot(s.vouched_bits))?,
            mmio: lock_map(s.mmio.as_ref(), |d| d.inner().snapshot(s.vouched_bits))?,
        };
        let serial = s
            .serial
            .lock()
            .map_err(|_| SnapshotError::Poisoned)?
            .state();
        let regions = regions(&s.memory);
        let parts = SnapshotParts {
            regions: &regions,
            vcpu: &state,
            fw_cfg: &fw_cfg,
            serial: &serial,
        };
        let io = |source| SnapshotError::Io {
            path: self.request.path.clone(),
            source,
        };
        let file = std::fs::File::create(&self.request.path).map_err(io)?;
        let memory = |offset, buf: &mut [u8]| read_memory(&s.memory, &regions, offset, buf);
        let out = format::write(BufWriter::new(file), &parts, memory).map_err(io)?;
        out.into_inner()
            .map_err(|e| io(e.into_error()))?
            .sync_all()
            .map_err(io)
    }
}

/// `f` of the locked device, if there is one.
fn lock_map<D, T>(
    dev: Option<&Arc<Mutex<D>>>,
    f: impl FnOnce(&D) -> T,
) -> Result<Option<T>, SnapshotError> {
    dev.map(|d| d.lock().map(|d| f(&d)).map_err(|_| SnapshotError::Poisoned))
        .transpose()
}

/// The guest memory regions, `(start, length)`, in order.
fn regions(memory: &GuestMemoryMmap) -> Vec<(u64, u64)> {
    memory
        .iter()
        .map(|r| (r.start_addr().raw_value(), r.len()))
        .collect()
}

/// Fills `buf` from offset `offset` of the concatenated `regions`.
fn read_memory(
    memory: &GuestMemoryMmap,
    regions: &[(u64, u64)],
    offset: u64,
    buf: &mut [u8],
) -> std::io::Result<()> {
    let mut done = 0usize;
    let mut base = 0u64;
    for &(start, len) in regions {
        while done < buf.len() && (base..base + len).contains(&(offset + done as u64)) {
            let within = offset + done as u64 - base;
            let n = ((len - within) as usize).min(buf.len() - done);
            memory
                .read_slice(&mut buf[done..done + n], GuestAddress(start + within))
                .map_err(std::io::Error::other)?;
            done += n;
        }
        base += len;
    }
    Ok(())
}

/// The vouched width and destination host of `handles`.
fn phys_bits(handles: &FwCfgHandles) -> (u8, HostAddressSizes) {
    match handles.phys_bits {
        Some(c) => (vouched_bits(&c), c.host()),
        None => (0, HostAddressSizes::from(handles.host_phys_bits)),
    }
}

impl Vm {
    /// Arms a snapshot ([module documentation](self)). Also blocks
    /// [`SNAPSHOT_SIGNAL`] in the calling thread, which must be the one
    /// that calls [`Vm::run`], so that the signal reaches the vCPU thread.
    pub fn snapshot_on(&mut self, request: SnapshotRequest) -> Result<(), Error> {
        let serial = self
            .serial
            .clone()
            .ok_or(Error::Snapshot(SnapshotError::LinuxGuest))?;
        if !self.aps.is_empty() {
            return Err(Error::Snapshot(SnapshotError::SeveralVcpus));
        }
        vmm_sys_util::signal::register_signal_handler(SNAPSHOT_SIGNAL, on_signal)
            .map_err(|e| Error::Snapshot(SnapshotError::Signal(e)))?;
        mask_signal(libc::SIG_BLOCK);
        let mmio_window = self
            .fw_cfg
            .mmio
            .as_ref()
            .map(|_| FW_CFG_MMIO_BASE..FW_CFG_MMIO_BASE + abi::MMIO_WINDOW_SIZE);
        self.snapshot = Some(Trigger {
            request,
            accesses: 0,
            mmio_window,
            sources: Sources {
                memory: self.mappings.memory.clone(),
                pio: self.fw_cfg.pio.clone(),
                mmio: self.fw_cfg.mmio.clone(),
                serial,
                vouched_bits: phys_bits(&self.fw_cfg).0,
            },
        });
        Ok(())
    }

    /// Replaces this freshly built VM's state by the snapshot at `path`
    /// ([module documentation](self)); on error the VM must not be run.
    pub fn restore(&mut self, path: &Path) -> Result<(), Error> {
        self.restore_inner(path).map_err(Error::Snapshot)
    }

    fn restore_inner(&mut self, path: &Path) -> Result<(), SnapshotError> {
        let serial = self.serial.clone().ok_or(SnapshotError::LinuxGuest)?;
        if !self.aps.is_empty() {
            return Err(SnapshotError::SeveralVcpus);
        }
        let limits = Limits {
            regions: regions(&self.mappings.memory),
        };
        let data = read_bounded(path, self.snapshot_size_limit(&limits))?;
        let snap = format::parse(&data, &limits).map_err(SnapshotError::Format)?;
        let (_, host) = phys_bits(&self.fw_cfg);
        restore_front(
            self.fw_cfg.pio.as_ref(),
            snap.fw_cfg.pio.as_ref(),
            host,
            "port I/O",
        )?;
        restore_front(
            self.fw_cfg.mmio.as_ref(),
            snap.fw_cfg.mmio.as_ref(),
            host,
            "MMIO",
        )?;
        let mut rest = snap.memory;
        for &(start, len) in &snap.regions {
            // The parser checked that the regions add up to the memory.
            let (bytes, tail) = usize::try_from(len)
                .ok()
                .and_then(|n| rest.split_at_checked(n))
                .ok_or(SnapshotError::Format(FormatError::MemoryLayout))?;
            self.mappings
                .memory
                .write_slice(bytes, GuestAddress(start))
                .map_err(SnapshotError::Memory)?;
            rest = tail;
        }
        vcpu::restore(&self.vcpu, &snap.vcpu)?;
        serial
            .lock()
            .map_err(|_| SnapshotError::Poisoned)?
            .restore(&snap.serial)
            .map_err(SnapshotError::Serial)
    }

    /// The largest snapshot of this VM: memory, writable fw_cfg contents
    /// of both front ends, and [`STATE_BYTES_MAX`].
    fn snapshot_size_limit(&self, limits: &Limits) -> u64 {
        limits.memory_bytes()
            + writable_total(self.fw_cfg.pio.as_ref())
            + writable_total(self.fw_cfg.mmio.as_ref())
            + STATE_BYTES_MAX
    }
}

/// The bytes of the writable items of a front end (0 without one).
fn writable_total<D: FrontEnd>(dev: Option<&Arc<Mutex<D>>>) -> u64 {
    dev.and_then(|d| {
        let mut dev = d.lock().ok()?;
        Some(dev.core().writable_items().map(|(_, n)| n as u64).sum())
    })
    .unwrap_or(0)
}

/// Restores one front end; both or neither must exist.
fn restore_front<D: FrontEnd>(
    dev: Option<&Arc<Mutex<D>>>,
    snap: Option<&fw_cfg_device::FwCfgSnapshot>,
    host: HostAddressSizes,
    front: &'static str,
) -> Result<(), SnapshotError> {
    match (dev, snap) {
        (None, None) => Ok(()),
        (Some(dev), Some(snap)) => dev
            .lock()
            .map_err(|_| SnapshotError::Poisoned)?
            .core()
            .restore_snapshot(snap, host)
            .map_err(|source| SnapshotError::Device { front, source }),
        _ => Err(SnapshotError::FrontEnds),
    }
}

/// The device core both front-end adapters wrap.
type Core = fw_cfg_device::FwCfg<Arc<vm_memory::GuestMemoryMmap>>;

/// The two front-end adapters, for [`restore_front`] and
/// [`writable_total`]: each hands out the core it wraps.
trait FrontEnd {
    fn core(&mut self) -> &mut Core;
}

impl FrontEnd for crate::fw_cfg::PioDevice {
    fn core(&mut self) -> &mut Core {
        self.inner_mut()
    }
}

impl FrontEnd for crate::fw_cfg::MmioDevice {
    fn core(&mut self) -> &mut Core {
        self.inner_mut()
    }
}

/// Reads the file at `path`, refusing one longer than `limit` bytes
/// before allocating for it.
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, SnapshotError> {
    let io = |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    };
    let (file, size) =
        fw_cfg_device::cmdline::open_regular_file(path).map_err(SnapshotError::Input)?;
    if size > limit {
        return Err(SnapshotError::TooLarge { size, limit });
    }
    let mut data = Vec::with_capacity(size as usize);
    // A file that grows meanwhile is cut at the limit (and then fails the
    // checksum).
    file.take(limit).read_to_end(&mut data).map_err(io)?;
    Ok(data)
}
