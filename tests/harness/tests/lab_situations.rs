// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The situations table's simulated hosts on real KVM hosts, in the
//! nested lab (`fw_cfg_tests::lab::situations`): one outer boot per host
//! width (`-cpu max,phys-bits=N,host-phys-bits=off`, N = 36, 39, 40, 46,
//! 48, 52), in it one `fw-cfg-vmm` guest per row of that width with the
//! row's configuration as flags and no host override. Per row, the PVH
//! test firmware reads the CPUID widths, the hint and the file's bytes,
//! and decides (hint-only, strict, combined) exactly as the in-process
//! simulation of the same row; the `host-N` row under
//! `--host-phys-bits` sees N, so the inner host really is N.
//!
//! Without QEMU, the kernel, its modules or busybox these tests fail,
//! unless `FW_CFG_ALLOW_SKIP=1` is set.

use fw_cfg_tests::lab::LabPeers;
use fw_cfg_tests::lab::build::LabTools;
use fw_cfg_tests::lab::situations::{by_width, run_width};
use fw_cfg_tests::peers::require;
use fw_cfg_tests::situations::{Situation, VmmWidth};

/// The widths the boots below cover: every lab row's host.
const WIDTHS: [u8; 6] = [36, 39, 40, 46, 48, 52];

#[test]
fn every_lab_row_has_a_boot_here() {
    let widths: Vec<u8> = by_width(&Situation::all()).into_keys().collect();
    assert_eq!(widths, WIDTHS);
}

/// Boots the rows of host width `bits` and checks each against its
/// simulation.
fn rows_on_a_real_host(bits: u8) {
    let Some(peers) = require(LabPeers::find()) else {
        return;
    };
    let tools = LabTools::build(false).unwrap_or_else(|e| panic!("{e}"));
    let rows = by_width(&Situation::all())
        .remove(&bits)
        .unwrap_or_default();
    assert!(!rows.is_empty(), "no rows of {bits} bits");
    let results = run_width(&peers, &tools, bits, &rows).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(results.len(), rows.len());
    let mut failures = Vec::new();
    for (s, r) in rows.iter().zip(&results) {
        assert_eq!(s.name, r.name);
        eprintln!("{bits} bits: {} in {} ms: {:?}", r.name, r.guest_ms, r.lab);
        if s.vmm == VmmWidth::Host {
            assert_eq!(
                r.lab.cpuid.0, bits,
                "{}: the inner KVM host reports the outer MAXPHYADDR",
                r.name
            );
        }
        failures.extend(
            r.differences()
                .into_iter()
                .map(|d| format!("{}: {d}", r.name)),
        );
    }
    assert!(
        rows.iter().any(|s| s.vmm == VmmWidth::Host),
        "a host-phys-bits row shows the host"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn host_of_36_bits() {
    rows_on_a_real_host(36);
}

#[test]
fn host_of_39_bits() {
    rows_on_a_real_host(39);
}

#[test]
fn host_of_40_bits() {
    rows_on_a_real_host(40);
}

#[test]
fn host_of_46_bits() {
    rows_on_a_real_host(46);
}

#[test]
fn host_of_48_bits() {
    rows_on_a_real_host(48);
}

#[test]
fn host_of_52_bits() {
    rows_on_a_real_host(52);
}
