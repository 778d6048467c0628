// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Every row of the situations table, every mode: the width and its
//! verdict (blank safe, `!` unsafe, `w` wasteful), and no mode of ours is
//! ever unsafe. In process (the VMM's host override), no KVM needed; the
//! last test boots the rows a KVM guest can show.

mod common;

use fw_cfg_protocol::Transport;
use fw_cfg_tests::matrix::DEFAULT_TIMEOUT;
use fw_cfg_tests::situations::{Mode, Situation, Verdict, run_all};

/// Per row: the answers in `Mode::ALL` order (ovmf, seabios,
/// guest-phys-bits, hint-only, file-only, strict, combined).
const EXPECTED: &[(&str, &str)] = &[
    ("host-36", "36 36 36 36 36 36 36"),
    ("host-39", "39 39 39 39 39 39 39"),
    ("host-40", "40 40 40 40 40 40 40"),
    ("host-46", "46 46 46 46 46 46 46"),
    ("host-48", "46w 48 48 48 48 48 48"),
    ("host-52", "46w 52 52 52 52 52 52"),
    ("guest-phys-bits", "46w 52! 48 48 48 48 48"),
    ("kvm-6.10-host-46", "46 46 46 46 46 46 46"),
    ("legacy-40-on-36", "36 36 40! 36 36 36 36"),
    ("legacy-40-on-39", "36w 36w 40! 36w 39 39 39"),
    ("legacy-40-on-48", "36w 36w 40 40 40 40 40"),
    ("phys-bits-above", "44! 44! 44! 36w 39 39 39"),
    ("phys-bits-below", "40 40 40 40 40 40 40"),
    ("qemu-10.1-intel", "36w 39 39 39 39 39 39"),
    ("ram-above-64g", "38w 37w 40 40 40 40 40"),
    ("ram-above-1t", "46w 48 48 48 48 48 48"),
    ("large-bars", "46w 48 48 48 48 48 48"),
    ("sev", "46w 48! 48! 47 47 47 47"),
    ("nested-chain", "39 39 39 39 39 39 39"),
    ("nested-silent", "36w 36w 40! 36w 36w 36w 36w"),
    ("tcg", "36w 36w 40 36w 40 40 40"),
    ("silent-vmm", "46w 48 48 36w 36w 36w 46w"),
];

#[test]
fn every_situation_every_mode() {
    let rows = run_all().expect("situations run in process");
    let names: Vec<_> = rows.iter().map(|r| r.name).collect();
    let want: Vec<_> = EXPECTED.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, want, "rows");
    for (row, (name, expected)) in rows.iter().zip(EXPECTED) {
        let got: Vec<String> = row
            .answers
            .iter()
            .map(|a| format!("{}{}", a.bits, a.verdict.mark()).trim().to_string())
            .collect();
        assert_eq!(got.join(" "), *expected, "{name}");
        for a in &row.answers {
            if a.mode.is_ours() {
                assert_ne!(a.verdict, Verdict::Unsafe, "{name}: {:?}", a.mode);
            }
        }
        assert_eq!(row.answers.len(), Mode::ALL.len());
    }
}

/// The large-BAR row: four 128 GiB BARs fit the window of every mode, each
/// of which knows the 48-bit width here (GuestPhysBits-only by trusting
/// EAX\[7:0\]).
#[test]
fn large_bars_fit_where_the_width_is_known() {
    let rows = run_all().expect("situations run in process");
    let row = rows.iter().find(|r| r.name == "large-bars").expect("row");
    let fits: Vec<bool> = row.answers.iter().map(|a| a.bars_fit).collect();
    assert_eq!(fits, [true; 7]);
}

/// The same rows booted as KVM guests under the mini VMM (the host
/// override states each simulated host): the firmware reads the widths,
/// the hint and the file the simulation read, and decides the same in
/// strict mode. Rows a real guest here cannot show (TCG, SEV, a memory
/// top above its RAM) stay in process.
#[test]
fn situations_under_kvm_read_and_decide_as_simulated() {
    if !common::require_kvm() {
        return;
    }
    let rows = run_all().expect("situations run in process");
    let mut booted = 0;
    for (s, row) in Situation::all().iter().zip(&rows) {
        if !s.runs_under_kvm() {
            continue;
        }
        let (setup, _) = s.setup();
        let run = fw_cfg_tests::matrix::run_firmware(setup, DEFAULT_TIMEOUT)
            .unwrap_or_else(|e| panic!("{}: {e}", s.name));
        let cpuid = run.report.results[&Transport::Cpuid]
            .cpuid
            .expect("a cpuid object");
        assert_eq!(
            (cpuid.phys_bits, cpuid.guest_phys_bits),
            row.cpuid,
            "{}",
            s.name
        );
        let pio = &run.report.results[&Transport::Pio];
        let strict = pio.decisions.expect("decisions").strict;
        let simulated = row
            .answers
            .iter()
            .find(|a| a.mode == Mode::Strict)
            .expect("a strict answer");
        assert_eq!(strict.phys_bits, simulated.bits, "{}: strict", s.name);
        booted += 1;
    }
    eprintln!("{booted} situations booted under KVM");
    assert!(booted >= 15, "most rows run under KVM");
}
