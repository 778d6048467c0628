// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The same test firmware under QEMU (`-M microvm -accel kvm`, and `-M pc`)
//! and under the mini VMM, configuration by configuration: the reader's
//! bytes and decisions must be equal (see `fw_cfg_tests::peers::side_by_side`).
//! Configurations with the hint bit run under the mini VMM only; their row
//! says "not expressible in QEMU".
//!
//! Without QEMU or `/dev/kvm` these tests fail, unless
//! `FW_CFG_ALLOW_SKIP=1` is set.

use std::time::Duration;

use fw_cfg_protocol::Transport;
use fw_cfg_tests::matrix::FileCase;
use fw_cfg_tests::peers::qemu::Qemu;
use fw_cfg_tests::peers::side_by_side::{
    NOT_EXPRESSIBLE, PeerConfig, PeerRow, Width, render_peer_table, run_peer_matrix,
};
use fw_cfg_tests::peers::{kvm_device, require};

const TIMEOUT: Duration = Duration::from_secs(120);

fn run(configs: &[PeerConfig]) -> Option<Vec<PeerRow>> {
    require(kvm_device())?;
    let qemu = require(Qemu::find())?;
    assert!(
        qemu.has_guest_phys_bits(),
        "QEMU {} predates guest-phys-bits (9.1); install QEMU 10 from bookworm-backports",
        qemu.version_string()
    );
    let rows = run_peer_matrix(Some(&qemu), configs, TIMEOUT);
    eprintln!("{}", render_peer_table(&rows));
    Some(rows)
}

/// Both ran, and every byte and decision is equal.
fn assert_same(rows: &[PeerRow]) {
    for r in rows {
        let q = r
            .qemu
            .as_ref()
            .unwrap_or_else(|e| panic!("{}: QEMU: {e}", r.label));
        let v = r
            .vmm
            .as_ref()
            .unwrap_or_else(|e| panic!("{}: mini VMM: {e}", r.label));
        assert!(
            r.differences.is_empty(),
            "{}: QEMU and the mini VMM differ:\n  {}",
            r.label,
            r.differences.join("\n  ")
        );
        // QEMU applied the width we asked for.
        let cpuid = q.report.results[&Transport::Cpuid].cpuid.as_ref().unwrap();
        let expected = match r.config.width {
            Width::Host => r.host_phys_bits,
            Width::Bits(n) => n.min(r.host_phys_bits),
            Width::Legacy => 40,
        };
        assert_eq!(cpuid.phys_bits, expected, "{}: CPUID width", r.label);
        assert_eq!(
            cpuid.guest_phys_bits,
            r.config.guest_phys_bits.unwrap_or(0),
            "{}",
            r.label
        );
        assert_eq!(
            cpuid.hint.as_str(),
            "clear",
            "{}: QEMU's KVM leaf without the hint",
            r.label
        );
        // The file reached the firmware through every shared transport.
        for t in ["pio", "pio-string", "dma"] {
            let line = &q.report.results[&Transport::from_name(t).unwrap()];
            assert!(line.available, "{}: {t}", r.label);
            let state = line.file.as_ref().unwrap().state.as_str();
            let want = match r.config.file {
                FileCase::Absent => "absent",
                FileCase::Stated | FileCase::Conflicting => "present",
                FileCase::Corrupt => "corrupt",
            };
            assert_eq!(state, want, "{}: {t}", r.label);
        }
        assert!(
            q.report.results[&Transport::Dma].dma,
            "{}: QEMU offers DMA",
            r.label
        );
        assert!(v.report.done);
    }
}

#[test]
fn microvm_host_width_with_every_file_state() {
    let configs: Vec<PeerConfig> = FileCase::ALL
        .iter()
        .map(|f| PeerConfig::microvm(Width::Host, *f))
        .collect();
    let Some(rows) = run(&configs) else { return };
    assert_same(&rows);
}

#[test]
fn microvm_limited_and_guest_phys_widths() {
    let configs = [
        PeerConfig::microvm(Width::Bits(39), FileCase::Stated),
        PeerConfig::microvm(Width::Bits(39), FileCase::Absent),
        PeerConfig::microvm(Width::Host, FileCase::Stated).with_guest_phys_bits(40),
    ];
    let Some(rows) = run(&configs) else { return };
    assert_same(&rows);
}

#[test]
fn pc_machine_with_explicit_and_legacy_widths() {
    let configs = [
        PeerConfig::microvm(Width::Bits(39), FileCase::Stated).on_pc(),
        PeerConfig::microvm(Width::Legacy, FileCase::Stated).on_pc(),
    ];
    let Some(rows) = run(&configs) else { return };
    assert_same(&rows);
    // The legacy 40 bits are backed on a host of at least 40 bits (every
    // address below 2^40 is), not on a narrower one; the file says so and
    // states the host's width.
    let legacy = &rows[1];
    let file = legacy.vmm.as_ref().unwrap().report.results[&Transport::Pio]
        .file
        .unwrap();
    assert_eq!(
        file.valid,
        Some(legacy.host_phys_bits >= 40),
        "{}",
        legacy.label
    );
    assert_eq!(
        file.backed_bits,
        Some(legacy.host_phys_bits),
        "{}",
        legacy.label
    );
}

#[test]
fn hint_configurations_are_marked_not_expressible() {
    let configs = [
        PeerConfig::microvm(Width::Host, FileCase::Stated).with_hint(),
        PeerConfig::microvm(Width::Legacy, FileCase::Absent),
    ];
    let Some(rows) = run(&configs) else { return };
    for r in &rows {
        assert!(
            r.not_expressible(),
            "{}: {:?}",
            r.label,
            r.qemu.as_ref().err()
        );
        assert!(r.vmm.is_ok(), "{}: the mini VMM still runs it", r.label);
    }
    let table = render_peer_table(&rows);
    assert_eq!(table.matches(NOT_EXPRESSIBLE).count(), 2, "{table}");
    let hint = rows[0].vmm.as_ref().unwrap().report.results[&Transport::Cpuid]
        .cpuid
        .unwrap();
    assert_eq!(hint.hint.as_str(), "set");
}
