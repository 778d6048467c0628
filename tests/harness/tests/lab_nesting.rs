// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The nesting chain in the lab: the outer QEMU serves
//! `etc/phys-bits-valid` stating QEMU's legacy 40 on a 39-bit host (not
//! backed, 39 is), its Linux exposes it in sysfs, and `fw-cfg-vmm
//! --host-phys-bits --phys-bits-from-outer` inside states only what the
//! outer VMM vouched for. One outer boot, three inner guests: the sysfs
//! file (invalid, backed 39), a valid statement of 40, and none.
//!
//! Without QEMU, the kernel, its modules or busybox this test fails,
//! unless `FW_CFG_ALLOW_SKIP=1` is set.

use std::time::Duration;

use fw_cfg_device::abi::{PHYS_BITS_FILE_NAME, PhysBitsFile};
use fw_cfg_protocol::{DecidedBy, Transport};
use fw_cfg_tests::lab::build::LabTools;
use fw_cfg_tests::lab::firmware::{self, FIRMWARE_FILE, GUEST_TIMEOUT, VMM_FILE, vmm_args};
use fw_cfg_tests::lab::{Lab, LabPeers, inner_path};
use fw_cfg_tests::matrix::FileCase;
use fw_cfg_tests::peers::require;
use fw_cfg_tests::peers::side_by_side::{PeerConfig, Width, bulk_contents};

/// Limit of the outer boot.
const OUTER_TIMEOUT: Duration = Duration::from_secs(180);

#[test]
fn the_inner_vmm_vouches_only_for_what_the_outer_vmm_vouched() {
    let Some(peers) = require(LabPeers::find()) else {
        return;
    };
    let tools = LabTools::build(false).unwrap_or_else(|e| panic!("{e}"));
    let outer = PhysBitsFile::new(false, 40, 0)
        .with_backed_bits(39)
        .to_bytes();
    let valid = PhysBitsFile::new(true, 40, 0).to_bytes();
    let mut lab = Lab::new()
        .phys_bits(40)
        .timeout(OUTER_TIMEOUT)
        .outer_fw_cfg(PHYS_BITS_FILE_NAME, outer.to_vec())
        .and_then(|l| l.file("nest/valid", valid.to_vec(), false))
        .and_then(|l| l.file("nest/bulk", bulk_contents(), false))
        .and_then(|l| l.copy(VMM_FILE, &tools.vmm))
        .and_then(|l| l.copy(FIRMWARE_FILE, &tools.firmware))
        .unwrap_or_else(|e| panic!("{e}"))
        .script("od -An -tx1 /sys/firmware/qemu_fw_cfg/by_name/etc/phys-bits-valid/raw");
    // The file channel only (QEMU's microvm configuration: no hint).
    let config = PeerConfig::microvm(Width::Host, FileCase::Stated);
    let base = vmm_args(
        &config,
        &inner_path(FIRMWARE_FILE),
        None,
        &inner_path("nest/bulk"),
    );
    let cases: [(&str, Option<String>); 3] = [
        ("sysfs", None),
        ("valid", Some(inner_path("nest/valid"))),
        ("absent", Some(inner_path("nest/none"))),
    ];
    for (name, path) in &cases {
        let argv = std::iter::once(inner_path(VMM_FILE))
            .chain(base.iter().cloned())
            .chain(std::iter::once("--phys-bits-from-outer".to_string()))
            .chain(path.iter().cloned());
        lab = lab
            .guest(name, argv, GUEST_TIMEOUT)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let run = lab.run(&peers).unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "outer boot with three inner guests: {:.1} s",
        run.elapsed.as_secs_f64()
    );
    assert!(
        run.output.contains("02 00 28 00 27 00 00 00"),
        "the outer file in sysfs\n{}\n{}",
        run.output,
        run.console
    );
    // (guest, CPUID width, strict width, strict decided by)
    let want = [
        ("sysfs", 39, 39, DecidedBy::FwCfgFile),
        ("valid", 40, 40, DecidedBy::FwCfgFile),
        ("absent", 40, 36, DecidedBy::ConservativeDefault),
    ];
    for (name, cpuid_bits, width, by) in want {
        let g = run
            .guests
            .keys()
            .find(|n| n.as_str() == name)
            .unwrap_or_else(|| panic!("no guest {name}"));
        let report = firmware::report(&run, g).unwrap_or_else(|e| panic!("{name}: {e}"));
        let cpuid = report.results[&Transport::Cpuid]
            .cpuid
            .as_ref()
            .expect("a cpuid object");
        assert_eq!(cpuid.phys_bits, cpuid_bits, "{name}: advertised width");
        let strict = report.results[&Transport::Pio]
            .decisions
            .expect("decisions")
            .strict;
        assert_eq!((strict.phys_bits, strict.decided_by), (width, by), "{name}");
    }
}
