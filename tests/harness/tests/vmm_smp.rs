// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Several vCPUs on one fw_cfg device, and the VMM's memory under a guest
//! that touches many MMIO addresses, both with the test firmware on KVM:
//!
//! - with four vCPUs and no stress mode the APs park and the usual
//!   probes run;
//! - four vCPUs select, read (port I/O, MMIO) and start DMA transfers at
//!   once (the firmware's SMP stress mode, `fw_cfg_tests.smp=N`): no
//!   panic, no deadlock, every read one that some serial order of the
//!   accesses could give (the firmware's `smp` module says what that
//!   means for each kind of read), and exact single-vCPU reads afterwards;
//!   a corrupted item makes the same checks fail;
//! - the VMM's peak RSS (the child process's `ru_maxrss`) for a guest
//!   reading 100 000 distinct unmapped addresses stays within a fixed
//!   bound of the peak for 1 000 (`fw_cfg_tests.touch=COUNT@BASE`).

mod common;

use std::process::Command;
use std::time::Duration;

use fw_cfg_protocol::{FirmwareReport, SMP_PARAM, SmpLine, TOUCH_PARAM};
use fw_cfg_tests::firmware;
use fw_cfg_tests::phase::run_vm;
use fw_cfg_tests::vmm::devices::SerialSink;
use fw_cfg_tests::vmm::fw_cfg::FwCfgSetup;
use fw_cfg_tests::vmm::{ExitReason, VmConfig};

/// Iterations of each vCPU in the stress run.
const ITERATIONS: u32 = 500;
/// vCPUs of the stress run.
const CPUS: u16 = 4;
/// Where the MMIO sweep reads: the 32-bit MMIO gap, clear of the fw_cfg
/// window at 0xd0000000.
const TOUCH_BASE: u64 = 0xe000_0000;
/// Bound on the growth of the VMM's peak RSS from 1 000 to 100 000
/// touched addresses.
const RSS_GROWTH_MAX_KIB: i64 = 4 * 1024;
/// Set in the child process of the RSS test: the sweep's address count.
const TOUCH_CHILD_ENV: &str = "FW_CFG_TESTS_TOUCH_COUNT";

/// The stress files, with byte `flip` (item, offset) of one of them wrong.
fn stress_files(flip: Option<(usize, usize)>) -> Vec<(String, Vec<u8>)> {
    let mut files = firmware::stress_files();
    if let Some((k, offset)) = flip {
        files[k].1[offset] ^= 0x01;
    }
    files
}

/// Boots the firmware with `cmdline` on `cpus` vCPUs; returns the report.
fn boot(cmdline: String, cpus: u16, raw_files: Vec<(String, Vec<u8>)>) -> FirmwareReport {
    let (sink, buf) = SerialSink::capture();
    let mut config = VmConfig::new(firmware::path());
    config.serial = sink;
    config.cmdline = cmdline;
    config.timeout = Some(Duration::from_secs(300));
    config.fw_cfg = FwCfgSetup {
        cpus,
        raw_files,
        ..FwCfgSetup::default()
    };
    let outcome = run_vm(&config).unwrap();
    let serial = buf.lock().unwrap().clone();
    let text = String::from_utf8_lossy(&serial);
    assert_eq!(outcome.reason, ExitReason::DebugExit { value: 0 }, "{text}");
    let report = FirmwareReport::parse(&serial);
    assert!(report.done && report.panic.is_none(), "{text}");
    report
}

fn stress(flip: Option<(usize, usize)>) -> SmpLine {
    let report = boot(format!("{SMP_PARAM}{ITERATIONS}"), CPUS, stress_files(flip));
    let smp = report.smp.expect("an smp line");
    println!("{smp:?}");
    assert_eq!(
        (smp.announced, smp.cpus),
        (u32::from(CPUS), u32::from(CPUS))
    );
    assert_eq!(smp.iterations, ITERATIONS);
    // With an MMIO window every operation is one of the four kinds.
    let ops = smp.pio_reads + smp.dma_select_reads + smp.dma_reads + smp.mmio_reads;
    assert_eq!(ops, u64::from(CPUS) * u64::from(ITERATIONS));
    for kind in [
        smp.pio_reads,
        smp.dma_select_reads,
        smp.dma_reads,
        smp.mmio_reads,
    ] {
        assert!(kind > 0, "{smp:?}");
    }
    smp
}

#[test]
fn four_vcpus_on_one_device_read_what_some_serial_order_gives() {
    if !common::require_kvm() {
        return;
    }
    let smp = stress(None);
    assert_eq!((smp.inconsistent, smp.dma_errors), (0, 0), "{smp:?}");
    assert!(smp.final_ok, "{smp:?}");
}

#[test]
fn the_stress_checks_catch_a_wrong_byte() {
    if !common::require_kvm() {
        return;
    }
    // Item 2's byte 3 is wrong: DMA select reads of item 2 and the final
    // check must see it.
    let smp = stress(Some((2, 3)));
    assert!(smp.inconsistent > 0, "{smp:?}");
    assert!(!smp.final_ok, "{smp:?}");
}

#[test]
fn the_probes_run_as_usual_with_parked_aps() {
    if !common::require_kvm() {
        return;
    }
    // Three APs start, see no stress mode and halt (parked); the BSP's
    // run is the usual one.
    let report = boot(String::new(), CPUS, Vec::new());
    assert_eq!(
        report.results.len(),
        fw_cfg_protocol::Transport::FW_CFG.len() + 1
    );
    assert!(report.smp.is_none());
}

/// Runs the sweep of `count` addresses in a child process (this test
/// binary, running only the RSS test); returns its peak RSS in KiB.
// The child is reaped by `wait4`, which also gives its resource usage.
#[allow(clippy::zombie_processes)]
fn child_peak_rss_kib(count: u64) -> i64 {
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "the_vmm_peak_rss_is_flat_over_100000_mmio_addresses",
            "--test-threads=1",
        ])
        .env(TOUCH_CHILD_ENV, count.to_string())
        .spawn()
        .unwrap();
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    let mut status = 0;
    // SAFETY: an all-zero `rusage` is a valid value of the plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not yet reaped (`child` is never waited
    // for), and both pointers are to live locals.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child for {count} addresses failed: {status:#x}"
    );
    usage.ru_maxrss
}

/// The child's part: the sweep, checked.
fn touch(count: u64) {
    let report = boot(
        format!("{TOUCH_PARAM}{count}@{TOUCH_BASE:#x}"),
        1,
        Vec::new(),
    );
    let line = report.touch.expect("a touch line");
    assert_eq!((line.base, line.count), (TOUCH_BASE, count));
}

#[test]
fn the_vmm_peak_rss_is_flat_over_100000_mmio_addresses() {
    if let Ok(count) = std::env::var(TOUCH_CHILD_ENV) {
        touch(count.parse().unwrap());
        return;
    }
    if !common::require_kvm() {
        return;
    }
    let small = child_peak_rss_kib(1_000);
    let large = child_peak_rss_kib(100_000);
    println!("peak RSS: {small} KiB for 1000 addresses, {large} KiB for 100000");
    assert!(
        large - small <= RSS_GROWTH_MAX_KIB,
        "peak RSS grew by {} KiB from 1000 to 100000 addresses",
        large - small
    );
}
