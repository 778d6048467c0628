// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Several vCPUs: tiny hand-assembled PVH guests whose BSP and APs (told
//! apart by `%ebx`, see the AP contract in `fw_cfg_vmm::cpu`) end the run
//! in each of the ways a run can end, with exact exit counts; and the
//! `--cpus` limits.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use fw_cfg_vmm::devices::SerialSink;
use fw_cfg_vmm::hook::{ExitHook, HookAction, PhaseMarker};
use fw_cfg_vmm::stats::{ExitStats, ExitTarget};
use fw_cfg_vmm::{Error, ExitReason, Vm, VmConfig};

mod common;

use common::require_kvm;

fn write_elf(name: &str, code: &[u8]) -> PathBuf {
    common::write_elf("smp", name, code)
}

/// Runs `code` on `cpus` vCPUs (with the phase marker on port 0x600);
/// returns why it stopped, its counters and how long it took.
fn run(name: &str, code: &[u8], cpus: u16, timeout: Duration) -> (ExitReason, ExitStats, Duration) {
    let mut config = VmConfig::new(write_elf(name, code));
    config.serial = SerialSink::capture().0;
    config.fw_cfg.cpus = cpus;
    let mut vm = Vm::new(&config).unwrap();
    vm.set_exit_hook(Box::new(PhaseMarker::new(0x600)));
    let t0 = Instant::now();
    let outcome = vm.run(Some(timeout)).unwrap();
    (outcome.reason, outcome.stats, t0.elapsed())
}

/// Every vCPU marks phase 7 (port 0x600), writes port 0x80 once and
/// counts itself in at 0x200000; the APs then halt (parked), and the BSP
/// waits for all four and writes 5 to the debug-exit port:
///
/// ```text
///     mov dx, 0x600; mov eax, 7; out dx, eax; out 0x80, al
///     lock inc dword [0x200000]; test ebx, ebx; jz 2f
/// 1:  cmp dword [0x200000], 4; jne 1b; mov al, 5; out 0xf4, al
/// 2:  hlt
/// ```
const COUNT_IN: &[u8] = &[
    0x66, 0xba, 0x00, 0x06, 0xb8, 0x07, 0x00, 0x00, 0x00, 0xef, 0xe6, 0x80, 0xf0, 0xff, 0x05, 0x00,
    0x00, 0x20, 0x00, 0x85, 0xdb, 0x74, 0x0d, 0x83, 0x3d, 0x00, 0x00, 0x20, 0x00, 0x04, 0x75, 0xf7,
    0xb0, 0x05, 0xe6, 0xf4, 0xf4,
];

/// vCPU 3 (`%edi` = 3) writes its index to the debug-exit port; every
/// other vCPU spins forever:
/// `cmp edi, 3; jne 1f; mov eax, edi; out 0xf4, al; 1: jmp 1b`
const AP3_EXITS: &[u8] = &[
    0x83, 0xff, 0x03, 0x75, 0x04, 0x89, 0xf8, 0xe6, 0xf4, 0xeb, 0xfe,
];

/// `1: jmp 1b` on every vCPU.
const SPIN: &[u8] = &[0xeb, 0xfe];

#[test]
fn aps_park_and_the_bsp_ends_the_run_with_exact_counts() {
    if !require_kvm() {
        return;
    }
    let (reason, stats, _) = run("count-in", COUNT_IN, 4, Duration::from_secs(120));
    assert_eq!(reason, ExitReason::DebugExit { value: 5 });
    // One write of port 0x80 per vCPU, the BSP's debug exit, three APs
    // that end: each parks at its `hlt`, or, when the BSP's exit comes
    // between an AP's count and its `hlt` exit, is kicked out of KVM_RUN
    // (one interrupted run, counted as "other"); exactly one of the two
    // per AP. The hook took every marker write off the bus and the
    // counters.
    assert_eq!(stats.per_port[&0x80].io_out, 4);
    assert_eq!(stats.per_port[&0xf4].io_out, 1);
    assert!(stats.per_port.get(&0x600).is_none());
    assert_eq!(stats.all.hlt + stats.all.other, 3);
    let phase = stats.phase(7);
    assert_eq!((phase.io_out, phase.hlt + phase.other), (5, 3));
    assert_eq!(
        stats.all.total(),
        phase.total(),
        "every exit after the marker"
    );
}

#[test]
fn the_first_vcpu_to_end_the_run_ends_it_for_all() {
    if !require_kvm() {
        return;
    }
    // Three vCPUs spin in guest mode: they must be kicked out of KVM_RUN
    // and joined, well before the timeout.
    let timeout = Duration::from_secs(120);
    let (reason, stats, took) = run("ap3", AP3_EXITS, 4, timeout);
    assert_eq!(reason, ExitReason::DebugExit { value: 3 });
    assert_eq!(stats.per_port[&0xf4].io_out, 1);
    assert!(took < timeout, "took {took:?}");
}

/// The BSP spins; each AP writes port 0x80 once and halts:
/// `test ebx, ebx; jnz 1f; out 0x80, al; hlt; 1: jmp 1b`
const AP_WRITES_0X80: &[u8] = &[0x85, 0xdb, 0x75, 0x03, 0xe6, 0x80, 0xf4, 0xeb, 0xfe];

/// An exit hook that panics on a write of port 0x80.
struct PanicOn0x80;

impl ExitHook for PanicOn0x80 {
    fn on_write(&mut self, target: ExitTarget, _data: &[u8]) -> HookAction {
        assert_ne!(target, ExitTarget::Port(0x80), "the hook panics");
        HookAction::Dispatch
    }
}

#[test]
fn a_panicking_vcpu_thread_fails_the_run_without_hanging_it() {
    if !require_kvm() {
        return;
    }
    let mut config = VmConfig::new(write_elf("panic", AP_WRITES_0X80));
    config.serial = SerialSink::capture().0;
    config.fw_cfg.cpus = 2;
    let mut vm = Vm::new(&config).unwrap();
    vm.set_exit_hook(Box::new(PanicOn0x80));
    let t0 = Instant::now();
    let result = vm.run(Some(Duration::from_secs(120)));
    assert!(matches!(result, Err(Error::ThreadPanicked)), "{result:?}");
    assert!(t0.elapsed() < Duration::from_secs(60), "{:?}", t0.elapsed());
}

#[test]
fn the_timeout_stops_every_vcpu() {
    if !require_kvm() {
        return;
    }
    let (reason, stats, took) = run("spin", SPIN, 4, Duration::from_secs(1));
    assert_eq!(reason, ExitReason::Timeout);
    assert_eq!(stats.all.io_out + stats.all.hlt, 0);
    assert!(took < Duration::from_secs(60), "took {took:?}");
}

#[test]
fn vcpu_counts_outside_the_limit_are_refused() {
    for cpus in [0, fw_cfg_vmm::cpu::MAX_VCPUS + 1] {
        let mut config = VmConfig::new(write_elf("limit", SPIN));
        config.fw_cfg.cpus = cpus;
        assert!(matches!(Vm::new(&config), Err(Error::VcpuCount(n)) if n == cpus));
    }
    for bad in ["0", "65", "100000", "x"] {
        let out = Command::new(env!("CARGO_BIN_EXE_fw-cfg-vmm"))
            .args(["--kernel", "/nonexistent", "--cpus", bad])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--cpus {bad}: {stderr}");
        assert!(stderr.contains("cpus"), "--cpus {bad}: {stderr}");
    }
}
