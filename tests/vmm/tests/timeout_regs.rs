// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! A run that times out says where each vCPU was (`fw_cfg_vmm::regs`):
//! in the run outcome, on `fw-cfg-vmm`'s stderr (one line) and in its
//! `--stats-json` run report.

use std::process::Command;
use std::time::Duration;

use fw_cfg_vmm::devices::SerialSink;
use fw_cfg_vmm::report::RunReport;
use fw_cfg_vmm::test_image::{LOAD_ADDRESS, pvh_elf};
use fw_cfg_vmm::{ExitReason, Vm, VmConfig};

mod common;

use common::require_kvm;

/// `1: jmp 1b`.
const SPIN: &[u8] = &[0xeb, 0xfe];
/// `out 0xf4, al` with `al` = 0 (`xor eax, eax` first).
const EXIT: &[u8] = &[0x31, 0xc0, 0xe6, 0xf4];

/// Where [`pvh_elf`]'s code starts.
fn entry(code: &[u8]) -> u64 {
    LOAD_ADDRESS + (pvh_elf(code, true).len() - code.len()) as u64
}

#[test]
fn a_timeout_reports_every_vcpus_registers() {
    if !require_kvm() {
        return;
    }
    let mut config = VmConfig::new(common::write_elf("regs", "spin", SPIN));
    config.serial = SerialSink::capture().0;
    config.fw_cfg.cpus = 2;
    let outcome = Vm::new(&config)
        .unwrap()
        .run(Some(Duration::from_secs(1)))
        .unwrap();
    assert_eq!(outcome.reason, ExitReason::Timeout);
    let mut vcpus: Vec<usize> = outcome.stuck.iter().map(|r| r.vcpu).collect();
    vcpus.sort();
    assert_eq!(vcpus, [0, 1]);
    for r in &outcome.stuck {
        // Spinning on the `jmp` in 32-bit protected mode, paging off.
        assert_eq!(r.rip, entry(SPIN), "{r}");
        assert_eq!(r.cr0 & 0x8000_0001, 1, "{r}");
        assert!(!r.halted, "{r}");
    }
}

#[test]
fn a_guest_that_ends_itself_reports_no_registers() {
    if !require_kvm() {
        return;
    }
    let mut config = VmConfig::new(common::write_elf("regs", "exit", EXIT));
    config.serial = SerialSink::capture().0;
    let outcome = Vm::new(&config)
        .unwrap()
        .run(Some(Duration::from_secs(60)))
        .unwrap();
    assert_eq!(outcome.reason, ExitReason::DebugExit { value: 0 });
    assert!(outcome.stuck.is_empty(), "{:?}", outcome.stuck);
}

#[test]
fn fw_cfg_vmm_prints_and_reports_where_the_guest_hung() {
    if !require_kvm() {
        return;
    }
    let elf = common::write_elf("regs", "spin-cli", SPIN);
    let json = common::temp("regs", "stats.json");
    let out = Command::new(env!("CARGO_BIN_EXE_fw-cfg-vmm"))
        .arg("--kernel")
        .arg(&elf)
        .args(["--memory", "16", "--timeout", "1", "--stats-json"])
        .arg(&json)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(124), "{stderr}");
    let line = format!("fw-cfg-vmm: timeout; vcpu0 rip={:#x} ", entry(SPIN));
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("timeout")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with(&line), "{stderr}");
    assert!(lines[0].ends_with(" running"), "{stderr}");
    let report = RunReport::read(&json).unwrap();
    assert_eq!(report.reason, ExitReason::Timeout);
    assert_eq!(report.stuck.len(), 1);
    assert_eq!(report.stuck[0].rip, entry(SPIN));
    std::fs::remove_file(&json).unwrap();
}
