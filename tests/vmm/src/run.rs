// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The vCPU run loop: a thread per vCPU, a watchdog that kicks them out
//! of `KVM_RUN` when the run ends or times out, and the dispatch of port
//! and MMIO exits to the bus (shared by all vCPUs; each device serializes
//! its own accesses behind its mutex, as QEMU's big lock does), counted in
//! [`ExitStats`] and shown to the [`ExitHook`] first.
//!
//! With several vCPUs the first one to end the run (debug exit, power-off,
//! reset, shutdown, the BSP's halt, an error) ends it for all: the others
//! are kicked until every thread has stopped and joined. An application
//! processor that halts is only parked (see [`crate::cpu`]). The
//! statistics are the sum over the vCPUs.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use kvm_ioctls::{VcpuExit, VcpuFd};
use vm_device::bus::{MmioAddress, PioAddress};
use vm_device::device_manager::{IoManager, MmioManager, PioManager};
use vmm_sys_util::signal::{Killable, SIGRTMIN, register_signal_handler};

use crate::Error;
use crate::devices::{self, DebugExitFlag, PowerFlag, PowerRequest};
use crate::hook::{ExitHook, HookAction};
use crate::regs::VcpuRegisters;
use crate::stats::{ExitKind, ExitStats, ExitTarget};

/// Why the guest stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExitReason {
    /// The guest wrote `value` to the debug-exit port.
    DebugExit {
        /// What the guest wrote.
        value: u32,
    },
    /// The guest executed `hlt` (there are no interrupts to wake it).
    Halted,
    /// A triple fault, or a shutdown or reset the VMM did not ask for
    /// (KVM's `KVM_EXIT_SHUTDOWN` and system events): a failure, with
    /// status [`UNREQUESTED_SHUTDOWN_STATUS`].
    Shutdown,
    /// The timeout expired.
    Timeout,
    /// The guest entered S5 through the ACPI sleep control register
    /// (Linux's `poweroff`).
    PowerOff,
    /// The guest wrote the ACPI reset register (Linux's `reboot`); the VMM
    /// does not restart it.
    Reset,
    /// The VMM saved a snapshot ([`crate::snapshot`]) and stopped the
    /// guest, with status [`SNAPSHOT_EXIT_STATUS`].
    Snapshot,
}

/// The exit status of a triple fault or of a shutdown the VMM did not ask
/// for: even, so never a debug-exit status (`(value << 1) | 1` is odd),
/// and neither 0 (success), 2 (a VMM error) nor 124 (timeout).
pub const UNREQUESTED_SHUTDOWN_STATUS: u32 = 4;

/// Exit status of a run stopped after saving a snapshot: even, so no
/// debug-exit write gives it, and none of the others.
pub const SNAPSHOT_EXIT_STATUS: u32 = 32;

/// Exit status of a run the guest ended with a reset: even, so no
/// debug-exit write (`(value << 1) | 1`) gives it.
pub const RESET_EXIT_STATUS: u32 = 64;

impl ExitReason {
    /// The process exit status: QEMU's `(value << 1) | 1` for the
    /// debug-exit port, 0 for halt and power-off,
    /// [`UNREQUESTED_SHUTDOWN_STATUS`] for a triple fault or unrequested
    /// shutdown, [`RESET_EXIT_STATUS`] for a reset, [`SNAPSHOT_EXIT_STATUS`]
    /// after a snapshot; `None` for a timeout.
    pub fn status(&self) -> Option<u32> {
        match self {
            ExitReason::DebugExit { value } => Some(devices::debug_exit_status(*value)),
            ExitReason::Halted | ExitReason::PowerOff => Some(0),
            ExitReason::Shutdown => Some(UNREQUESTED_SHUTDOWN_STATUS),
            ExitReason::Reset => Some(RESET_EXIT_STATUS),
            ExitReason::Snapshot => Some(SNAPSHOT_EXIT_STATUS),
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
    /// After a timeout, where each vCPU still in the guest was
    /// ([`crate::regs`]); empty otherwise.
    pub stuck: Vec<VcpuRegisters>,
}

/// Installs the (empty) handler of the signal that kicks the vCPU thread
/// out of `KVM_RUN`. Installed once per process; a failure is stored and
/// reported by every call.
pub(crate) fn install_kick_handler() -> Result<(), Error> {
    static HANDLER: OnceLock<Result<(), vmm_sys_util::errno::Error>> = OnceLock::new();
    (*HANDLER.get_or_init(|| register_signal_handler(SIGRTMIN(), kick_handler)))
        .map_err(Error::KickSignal)
}

extern "C" fn kick_handler(
    _num: libc::c_int,
    _info: *mut libc::siginfo_t,
    _unused: *mut libc::c_void,
) {
}

/// The exit hook, shared by the vCPU threads of a run.
pub(crate) type SharedHook = Arc<Mutex<Box<dyn ExitHook>>>;

/// What a vCPU thread needs besides the vCPU (each thread has a clone).
#[derive(Clone)]
pub(crate) struct RunLoop {
    pub(crate) io: Arc<IoManager>,
    pub(crate) debug_exit: DebugExitFlag,
    pub(crate) power: PowerFlag,
    pub(crate) hook: SharedHook,
    /// The armed snapshot trigger: only vCPU 0's loop keeps it (snapshots
    /// are refused with several vCPUs).
    pub(crate) snapshot: Option<Arc<Mutex<crate::snapshot::Trigger>>>,
}

/// What the vCPU threads of one run share.
#[derive(Default)]
struct RunShared {
    /// Set when the run ends: every thread leaves its loop.
    stop: AtomicBool,
    /// Why the run ended, set by the first vCPU that ended it.
    reason: OnceLock<ExitReason>,
}

/// A vCPU thread's last word to the watchdog.
struct Finished {
    /// The vCPU.
    index: usize,
    /// Whether it ended the run (or failed), rather than parked.
    ends_run: bool,
}

/// The result of one vCPU thread: whether it ended the run, its counters,
/// and its registers when the run was stopped from outside.
type ThreadResult = Result<(bool, ExitStats, Option<VcpuRegisters>), Error>;

/// Sends a vCPU thread's [`Finished`] when dropped, so that a thread that
/// panics (a panicking exit hook, say) still reports, as ending the run,
/// instead of leaving the watchdog waiting for it.
struct Report {
    tx: mpsc::Sender<Finished>,
    index: usize,
    ends_run: bool,
}

impl Drop for Report {
    fn drop(&mut self) {
        // The receiver lives until every thread reported.
        let _ = self.tx.send(Finished {
            index: self.index,
            ends_run: self.ends_run,
        });
    }
}

/// Runs each of `vcpus` on a thread of its own until the guest stops or
/// `timeout` expires; vCPU 0 is the BSP. Every vCPU is dropped before
/// this returns.
pub(crate) fn run_on_threads(
    vcpus: Vec<VcpuFd>,
    state: RunLoop,
    timeout: Option<Duration>,
) -> Result<RunOutcome, Error> {
    let shared = Arc::new(RunShared::default());
    let (tx, rx) = mpsc::channel();
    let mut handles = Vec::with_capacity(vcpus.len());
    let mut spawn_error = None;
    for (index, vcpu) in vcpus.into_iter().enumerate() {
        let (tx, shared, mut state) = (tx.clone(), shared.clone(), state.clone());
        let spawned = thread::Builder::new()
            .name(format!("vcpu{index}"))
            .spawn(move || {
                let mut report = Report {
                    tx,
                    index,
                    ends_run: true,
                };
                let mut vcpu = vcpu;
                let result = state.run(&mut vcpu, index, &shared);
                drop(vcpu);
                report.ends_run = result.as_ref().map_or(true, |(ends, ..)| *ends);
                result
            });
        match spawned {
            Ok(handle) => handles.push(handle),
            Err(e) => {
                spawn_error = Some(Error::SpawnThread(e));
                break;
            }
        }
    }
    drop(tx);
    let stop_now = spawn_error.is_some();
    watch(&rx, handles.len(), stop_now, timeout, |running| {
        shared.stop.store(true, Ordering::SeqCst);
        // Repeated until each thread answers: a kick that lands just
        // before KVM_RUN is lost.
        for (handle, _) in handles.iter().zip(running).filter(|(_, r)| **r) {
            let _ = handle.kill(SIGRTMIN());
        }
    });
    let results: Vec<thread::Result<ThreadResult>> =
        handles.into_iter().map(|h| h.join()).collect();
    if let Some(e) = spawn_error {
        return Err(e);
    }
    let mut stats = ExitStats::default();
    let mut stuck = Vec::new();
    for result in results {
        let (_, thread_stats, regs) = result.map_err(|_| Error::ThreadPanicked)??;
        stats.merge(&thread_stats);
        stuck.extend(regs);
    }
    let reason = shared.reason.get().copied().unwrap_or(ExitReason::Timeout);
    if reason != ExitReason::Timeout {
        stuck.clear();
    }
    Ok(RunOutcome {
        reason,
        stats,
        stuck,
    })
}

/// Waits until all `threads` vCPU threads reported. Once one ended the
/// run, or `stop_now`, or past the deadline, calls `kick` with the threads
/// still running, then every 10 ms until they all reported.
fn watch(
    rx: &mpsc::Receiver<Finished>,
    threads: usize,
    stop_now: bool,
    timeout: Option<Duration>,
    mut kick: impl FnMut(&[bool]),
) {
    // A deadline past what `Instant` represents is no deadline.
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let mut running = vec![true; threads];
    let mut left = threads;
    let mut stopping = stop_now;
    while left > 0 {
        if stopping {
            kick(&running);
        }
        let wait = match (stopping, deadline) {
            (true, _) => Duration::from_millis(10),
            (false, Some(d)) => d
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(10)),
            (false, None) => Duration::from_secs(3600),
        };
        match rx.recv_timeout(wait) {
            Ok(done) => {
                if let Some(r) = running.get_mut(done.index).filter(|r| **r) {
                    *r = false;
                    left -= 1;
                }
                stopping |= done.ends_run;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                stopping |= deadline.is_some_and(|d| Instant::now() >= d);
            }
        }
    }
}

/// A port-I/O exit as `KVM_EXIT_IO` describes it.
struct PortExit<'a> {
    port: u16,
    is_in: bool,
    size: usize,
    data: &'a mut [u8],
}

/// The pending port I/O exit of `vcpu`. A string instruction (`rep insb`,
/// `rep outsb`) arrives as one exit with `count` accesses of `size` bytes.
fn port_exit(vcpu: &mut VcpuFd) -> Option<PortExit<'_>> {
    let run = vcpu.get_kvm_run();
    // SAFETY: the last KVM_RUN returned KVM_EXIT_IO, so `io` is the union
    // member the kernel filled in.
    let info = unsafe { run.__bindgen_anon_1.io };
    let size = usize::from(info.size);
    let count = info.count as usize;
    let offset = usize::try_from(info.data_offset).ok()?;
    let base = (run as *mut kvm_bindings::kvm_run).cast::<u8>();
    // SAFETY: for KVM_EXIT_IO the kernel places `size * count` bytes of data
    // at `data_offset` inside this vCPU's kvm_run mapping, which lives as
    // long as `vcpu` (kvm-ioctls builds the same slice for
    // `VcpuExit::IoIn`/`IoOut`); nothing else touches it before the next
    // KVM_RUN, and the returned borrow of `vcpu` ends before that.
    let data = unsafe { std::slice::from_raw_parts_mut(base.add(offset), size * count) };
    Some(PortExit {
        port: info.port,
        is_in: u32::from(info.direction) == kvm_bindings::KVM_EXIT_IO_IN,
        size,
        data,
    })
}

/// How one exit ended.
enum Step {
    /// Keep running.
    Continue,
    /// The guest stopped.
    Stop(ExitReason),
}

impl RunLoop {
    /// The exit hook, locked (a hook that panicked on another vCPU's
    /// thread leaves it usable).
    fn hook(&self) -> MutexGuard<'_, Box<dyn ExitHook>> {
        self.hook.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Dispatches the pending port I/O exit, each access of a string
    /// instruction separately, as on real hardware.
    fn port_io(&mut self, vcpu: &mut VcpuFd, stats: &mut ExitStats, t0: Instant) {
        let Some(exit) = port_exit(vcpu) else {
            return;
        };
        let target = ExitTarget::Port(exit.port);
        if !exit.is_in && self.hook().on_write(target, exit.data) == HookAction::Consume {
            return;
        }
        for access in exit.data.chunks_mut(exit.size.max(1)) {
            if exit.is_in {
                if self.io.pio_read(PioAddress(exit.port), access).is_err() {
                    // Unassigned ports float high.
                    access.fill(0xff);
                }
            } else {
                // Writes to unassigned ports are ignored, as on real buses.
                let _ = self.io.pio_write(PioAddress(exit.port), access);
            }
        }
        let kind = if exit.is_in {
            ExitKind::IoIn
        } else {
            ExitKind::IoOut
        };
        let bytes = exit.data.len();
        stats.record(kind, target, bytes, t0.elapsed(), self.hook().phase());
    }

    /// Dispatches an MMIO exit.
    fn mmio(&mut self, exit: VcpuExit<'_>, stats: &mut ExitStats, t0: Instant) {
        let (kind, addr, bytes) = match exit {
            VcpuExit::MmioRead(addr, data) => {
                if self.io.mmio_read(MmioAddress(addr), data).is_err() {
                    data.fill(0);
                }
                (ExitKind::MmioRead, addr, data.len())
            }
            VcpuExit::MmioWrite(addr, data) => {
                let target = ExitTarget::Mmio(addr);
                if self.hook().on_write(target, data) == HookAction::Consume {
                    return;
                }
                let _ = self.io.mmio_write(MmioAddress(addr), data);
                (ExitKind::MmioWrite, addr, data.len())
            }
            _ => return,
        };
        let phase = self.hook().phase();
        stats.record(kind, ExitTarget::Mmio(addr), bytes, t0.elapsed(), phase);
    }

    /// Handles one exit.
    fn step(&mut self, vcpu: &mut VcpuFd, stats: &mut ExitStats) -> Result<Step, Error> {
        let exit = match vcpu.run() {
            Ok(exit) => exit,
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                let phase = self.hook().phase();
                stats.record(ExitKind::Other, ExitTarget::None, 0, Duration::ZERO, phase);
                return Ok(Step::Continue);
            }
            Err(e) => return Err(Error::Vcpu(e)),
        };
        let t0 = Instant::now();
        let target = match &exit {
            VcpuExit::IoOut(port, _) | VcpuExit::IoIn(port, _) => ExitTarget::Port(*port),
            VcpuExit::MmioRead(addr, _) | VcpuExit::MmioWrite(addr, _) => ExitTarget::Mmio(*addr),
            _ => ExitTarget::None,
        };
        let other = |stats: &mut ExitStats, kind, phase| {
            stats.record(kind, ExitTarget::None, 0, t0.elapsed(), phase);
        };
        match exit {
            VcpuExit::IoOut(..) | VcpuExit::IoIn(..) => {
                // Handled once the exit's borrow of the vCPU ends: string
                // instructions need the access size and count, which
                // `VcpuExit` does not carry.
                self.port_io(vcpu, stats, t0);
                if let Some(value) = self.debug_exit.value() {
                    return Ok(Step::Stop(ExitReason::DebugExit { value }));
                }
                match self.power.request() {
                    Some(PowerRequest::PowerOff) => return Ok(Step::Stop(ExitReason::PowerOff)),
                    Some(PowerRequest::Reset) => return Ok(Step::Stop(ExitReason::Reset)),
                    None => {}
                }
            }
            e @ (VcpuExit::MmioRead(..) | VcpuExit::MmioWrite(..)) => self.mmio(e, stats, t0),
            VcpuExit::Hlt => {
                other(stats, ExitKind::Hlt, self.hook().phase());
                return Ok(Step::Stop(ExitReason::Halted));
            }
            VcpuExit::Shutdown | VcpuExit::SystemEvent(..) => {
                other(stats, ExitKind::Other, self.hook().phase());
                return Ok(Step::Stop(ExitReason::Shutdown));
            }
            VcpuExit::InternalError => return Err(Error::InternalError),
            VcpuExit::FailEntry(reason, cpu) => return Err(Error::FailEntry { reason, cpu }),
            _ => other(stats, ExitKind::Other, self.hook().phase()),
        }
        if let Some(t) = &self.snapshot {
            let mut t = t.lock().map_err(|_| Error::ThreadPanicked)?;
            if t.after_exit(target) {
                t.save(vcpu)?;
                return Ok(Step::Stop(ExitReason::Snapshot));
            }
        }
        Ok(Step::Continue)
    }

    /// Runs vCPU `index` until the guest stops or the run is stopped.
    /// Returns whether this vCPU ended the run (an AP's halt only parks
    /// it), with its counters.
    fn run(&mut self, vcpu: &mut VcpuFd, index: usize, shared: &RunShared) -> ThreadResult {
        let mut stats = ExitStats::default();
        let start = Instant::now();
        if index > 0 {
            self.snapshot = None;
        }
        if let Some(t) = &self.snapshot {
            t.lock()
                .map_err(|_| Error::ThreadPanicked)?
                .on_vcpu_thread();
        }
        let mut stopped_at = None;
        let ends_run = loop {
            if shared.stop.load(Ordering::SeqCst) {
                // Kicked out of KVM_RUN: where the guest was (kept only
                // when the run timed out).
                stopped_at = VcpuRegisters::read(vcpu, index).ok();
                break false;
            }
            if let Some(t) = &self.snapshot {
                let t = t.lock().map_err(|_| Error::ThreadPanicked)?;
                if t.signalled() {
                    t.save(vcpu)?;
                    let _ = shared.reason.set(ExitReason::Snapshot);
                    break true;
                }
            }
            if let Step::Stop(reason) = self.step(vcpu, &mut stats)? {
                if index > 0 && reason == ExitReason::Halted {
                    break false;
                }
                // Only the first vCPU to end the run names the reason.
                let _ = shared.reason.set(reason);
                break true;
            }
        };
        stats.run_ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        Ok((ends_run, stats, stopped_at))
    }
}
