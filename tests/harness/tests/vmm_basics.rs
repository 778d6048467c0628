// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The mini VMM's own behaviour, with tiny hand-assembled PVH guests: halt,
//! debug-exit status, timeout, rejection of non-PVH images; and the test
//! firmware under the phys-bits settings of `fw-cfg-vmm`'s flags.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use fw_cfg_device::cmdline::parse_fw_cfg_option;
use fw_cfg_tests::matrix::run_firmware;
use fw_cfg_tests::vmm::devices::SerialSink;
use fw_cfg_tests::vmm::fw_cfg::{FwCfgSetup, PhysBitsSetup};
use fw_cfg_tests::vmm::test_image::pvh_elf;
use fw_cfg_tests::vmm::{Error, ExitReason, Vm, VmConfig};

fn write_elf(name: &str, code: &[u8], pvh: bool) -> PathBuf {
    let path = std::env::temp_dir().join(format!("fw-cfg-tests-{}-{name}.elf", std::process::id()));
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(&pvh_elf(code, pvh)).unwrap();
    path
}

fn boot(name: &str, code: &[u8], timeout: Duration) -> Result<ExitReason, Error> {
    let mut config = VmConfig::new(write_elf(name, code, true));
    config.serial = SerialSink::capture().0;
    let vm = Vm::new(&config)?;
    Ok(vm.run(Some(timeout))?.reason)
}

#[test]
fn halt_ends_the_run() {
    if !common::require_kvm() {
        return;
    }
    let reason = boot("hlt", &[0xf4], Duration::from_secs(30)).unwrap();
    assert_eq!(reason, ExitReason::Halted);
    assert_eq!(reason.status(), Some(0));
}

#[test]
fn debug_exit_status_is_qemus() {
    if !common::require_kvm() {
        return;
    }
    // mov al, 5; out 0xf4, al; hlt
    let reason = boot(
        "exit5",
        &[0xb0, 0x05, 0xe6, 0xf4, 0xf4],
        Duration::from_secs(30),
    )
    .unwrap();
    assert_eq!(reason, ExitReason::DebugExit { value: 5 });
    assert_eq!(reason.status(), Some(11));
}

#[test]
fn a_spinning_guest_is_stopped_by_the_timeout() {
    if !common::require_kvm() {
        return;
    }
    let start = Instant::now();
    // jmp $
    let reason = boot("spin", &[0xeb, 0xfe], Duration::from_millis(300)).unwrap();
    assert_eq!(reason, ExitReason::Timeout);
    assert_eq!(reason.status(), None);
    assert!(start.elapsed() < Duration::from_secs(20));
}

#[test]
fn an_elf_without_pvh_note_is_refused() {
    if !common::require_kvm() {
        return;
    }
    let config = VmConfig::new(write_elf("nopvh", &[0xf4], false));
    assert!(matches!(Vm::new(&config), Err(Error::NotPvh)));
}

#[test]
fn the_firmware_reports_what_the_phys_bits_flags_set() {
    if !common::require_kvm() {
        return;
    }
    // What `fw-cfg-vmm --host-phys-bits --guest-phys-bits 40
    // --phys-bits-hint off --fw-cfg name=opt/hello,string=hi` configures
    // (the command line itself is tested in the fw-cfg-vmm crate).
    let setup = FwCfgSetup {
        options: vec![parse_fw_cfg_option("name=opt/hello,string=hi").unwrap()],
        phys_bits: PhysBitsSetup {
            host_phys_bits: true,
            guest_phys_bits: Some(40),
            hint: false,
            ..PhysBitsSetup::default()
        },
        ..FwCfgSetup::default()
    };
    let run = run_firmware(setup, Duration::from_secs(60)).unwrap();
    // The firmware writes 0 to the debug-exit port: status 1, as in QEMU.
    assert_eq!(run.reason.status(), Some(1));
    let serial = String::from_utf8_lossy(&run.serial).into_owned();
    let report = run.report;
    assert!(report.done);
    assert_eq!(report.other_lines, 0, "{serial}");
    let pio = &report.results[&fw_cfg_protocol::Transport::Pio];
    let file = pio.file.as_ref().unwrap();
    assert_eq!(file.guest_phys_bits, Some(40));
    assert_eq!(file.valid, Some(true));
    let d = pio.decisions.as_ref().unwrap();
    // Hint off, file valid: the file decides, capped at the guest width.
    assert_eq!(
        (d.strict.phys_bits, d.strict.decided_by.as_str()),
        (40, "fw-cfg-file")
    );
    let stats = run.stats.to_string();
    assert!(stats.contains("exits:"), "{stats}");
    assert!(stats.contains("port 0x0511"), "{stats}");
}
