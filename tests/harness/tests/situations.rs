// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Every row of the situations table, every mode: the width and its
//! verdict (blank safe, `!` unsafe, `w` wasteful), and no mode of ours is
//! ever unsafe. In process (the VMM's host override), no KVM needed; the
//! KVM test boots the rows a KVM guest can show, and the TCG row boots
//! under QEMU's TCG.

mod common;

use fw_cfg_protocol::{CpuidLine, DecidedBy, Transport};
use fw_cfg_tests::matrix::{DEFAULT_TIMEOUT, run_firmware_with_memory};
use fw_cfg_tests::situations::{self, MigrationResult, Mode, Situation, Verdict, run_all};

/// This process's peak resident set (`ru_maxrss`, KiB).
fn peak_rss_kib() -> i64 {
    // SAFETY: an all-zero `rusage` is a valid value of the plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a live, writable `rusage` for the whole call.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(rc, 0, "getrusage");
    usage.ru_maxrss
}

/// The CPUID facts the firmware rules read besides the widths.
fn facts(c: &CpuidLine) -> impl PartialEq + std::fmt::Debug {
    (
        c.vendor,
        c.ext_vendor,
        c.gb_pages,
        c.la57,
        c.sev_c_bit,
        c.tdx,
    )
}

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
    // Booted on a 48-bit AMD host with both channels (as host-48), then
    // migrated to a 39-bit host: the source vouched for 48 (valid width
    // 48, the file's backed 48), the destination backs 39, so the
    // migration guard refuses and the guest stays on the source, where
    // R = 48 and every answer is host-48's. Accepted, every 48 would be
    // above the destination's 39 (unsafe).
    ("migrate-to-39", "46w 48 48 48 48 48 48"),
    // `phys-bits=48` (GuestPhysBits none) on a 48-bit Intel host, to a
    // 52-bit host whose KVM reports GuestPhysBits 48: the same command
    // line renders the same CPUID width and the same file there (valid,
    // 48, backed 48), so the destination accepts; it backs 48, so R = 48.
    // OVMF caps at 46 with 4-level paging (w); SeaBIOS trusts 48 (>= 41);
    // GuestPhysBits-only sees 0 and trusts EAX[7:0]: 48; ours read the
    // hint and the file: 48.
    ("migrate-to-52", "46w 48 48 48 48 48 48"),
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

/// The migration rows: each destination's verdict, and the guard refuses
/// exactly where accepting would put one of our answers above the
/// destination's backed width.
#[test]
fn migration_is_refused_where_our_answers_would_be_unsafe() {
    let rows = run_all().expect("situations run in process");
    let migrations: Vec<_> = rows
        .iter()
        .filter_map(|r| Some((r, r.migration?)))
        .collect();
    let results: Vec<_> = migrations
        .iter()
        .map(|(r, m)| (r.name, m.vouched, m.destination_backed, m.result))
        .collect();
    assert_eq!(
        results,
        [
            ("migrate-to-39", 48, 39, MigrationResult::NarrowerHost),
            ("migrate-to-52", 48, 48, MigrationResult::Accepted),
        ]
    );
    for (row, m) in migrations {
        let ours_above = row
            .answers
            .iter()
            .any(|a| a.mode.is_ours() && a.bits > m.destination_backed);
        assert_eq!(ours_above, !m.accepted(), "{}", row.name);
        let end_host = if m.accepted() {
            m.destination_backed
        } else {
            row.host_backed
        };
        assert_eq!(row.right, end_host.min(row.cpuid.0), "{}", row.name);
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
/// override states each simulated host), each with the RAM that puts the
/// memory map's top at the row's (100 GiB and 1.5 TiB included: sparse
/// memory nothing touches): the firmware reports that top, reads the
/// widths, the hint and the file the simulation read, and decides the
/// same in strict mode. Every mode's width and window it reports is what
/// the host computes from what it read, and the simulation's for every
/// mode that does not read the CPU vendor or page sizes (those of this
/// machine's KVM, not the row's), the strict layout included. Rows a real
/// guest here cannot show (TCG, SEV) stay in process; a migration row
/// boots its source.
#[test]
fn situations_under_kvm_read_and_decide_as_simulated() {
    if !common::require_kvm() {
        return;
    }
    let rows = run_all().expect("situations run in process");
    let mut booted = Vec::new();
    let (mut compared, mut recomputed_only, mut on_this_cpu) = (0, 0, 0);
    for (s, row) in Situation::all().iter().zip(&rows) {
        if !s.runs_under_kvm() {
            continue;
        }
        let (setup, _) = s.setup();
        let memory = s.memory_mib().expect("a RAM size for the row's memory top");
        let run = run_firmware_with_memory(setup, memory, DEFAULT_TIMEOUT)
            .unwrap_or_else(|e| panic!("{}: {e}", s.name));
        let cpuid_line = &run.report.results[&Transport::Cpuid];
        assert_eq!(cpuid_line.memory_top, Some(s.memory_top), "{}", s.name);
        let cpuid = cpuid_line.cpuid.expect("a cpuid object");
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
        let guest = pio.modes.expect("the firmware reports every mode");
        // The guest computed what the host computes from what it read ...
        assert_eq!(guest, common::host_modes(cpuid_line, pio), "{}", s.name);
        // ... and that is the simulation's answer wherever the simulated
        // CPUID shows what this machine's KVM shows.
        let same_facts = facts(&cpuid) == facts(&row.cpuid_read);
        let heuristic =
            pio.decisions.expect("decisions").combined.decided_by == DecidedBy::Heuristic;
        let sim = row.modes.as_array();
        for (i, (g, m)) in guest.as_array().into_iter().zip(sim).enumerate() {
            let mode = Mode::ALL[i];
            let independent = match mode {
                Mode::Ovmf | Mode::Seabios => false,
                Mode::Combined => !heuristic,
                _ => true,
            };
            if !(independent || same_facts) {
                recomputed_only += 1;
                continue;
            }
            assert_eq!(g.phys_bits, m.phys_bits, "{}: {}", s.name, mode.as_str());
            // SeaBIOS places the row's BARs in the simulation, none here.
            if mode != Mode::Seabios || s.bars.is_empty() {
                assert_eq!(g.mmio64, m.mmio64, "{}: {} window", s.name, mode.as_str());
            }
            compared += 1;
        }
        assert_eq!(guest.layout, row.modes.layout, "{}: layout", s.name);
        // Every mode, against the row simulated with this machine's CPU
        // (its vendor and 1 GiB pages) instead of the row's.
        if let Some(here) = s.with_cpu_of(&cpuid) {
            let sim = situations::run(&here).unwrap_or_else(|e| panic!("{}: {e}", s.name));
            assert_eq!(facts(&sim.cpuid_read), facts(&cpuid), "{}", s.name);
            for (i, (g, m)) in guest
                .as_array()
                .into_iter()
                .zip(sim.modes.as_array())
                .enumerate()
            {
                let mode = Mode::ALL[i].as_str();
                assert_eq!(g.phys_bits, m.phys_bits, "{} on this CPU: {mode}", s.name);
                if Mode::ALL[i] != Mode::Seabios || s.bars.is_empty() {
                    assert_eq!(g.mmio64, m.mmio64, "{} on this CPU: {mode} window", s.name);
                }
            }
            assert_eq!(
                guest.layout, sim.modes.layout,
                "{} on this CPU: layout",
                s.name
            );
            on_this_cpu += 1;
        }
        booted.push(s.name);
    }
    eprintln!(
        "{on_this_cpu} rows: every mode equals the row simulated with this machine's CPU \
         (0: a vendor or 5-level paging the table cannot show)"
    );
    eprintln!(
        "{compared} mode answers equal the simulation's; {recomputed_only} (OVMF, SeaBIOS and a \
         heuristic combined answer, whose vendor or 1 GiB pages differ from the row's here) equal \
         the host's recomputation"
    );
    assert!(compared >= booted.len() * 4, "most answers compare");
    // The CPU is the machine's, the same for every row: an AMD or Intel
    // one without 5-level paging gives every row, another none.
    assert!(
        on_this_cpu == booted.len() || on_this_cpu == 0,
        "{on_this_cpu} of {} rows compared on this machine's CPU",
        booted.len()
    );
    eprintln!("{} situations booted under KVM", booted.len());
    assert!(booted.len() >= 20, "most rows run under KVM: {booted:?}");
    for name in ["ram-above-64g", "ram-above-1t", "migrate-to-39"] {
        assert!(booted.contains(&name), "{name} runs under KVM");
    }
    // The guests ran in this process: had the VMM, KVM or the firmware
    // touched even a thousandth of the 1535 GiB guest's RAM, the peak
    // resident set would be above 1.5 GiB.
    eprintln!("peak RSS of the test process: {} KiB", peak_rss_kib());
    assert!(
        peak_rss_kib() < 256 << 10,
        "peak RSS {} KiB: guest RAM was touched",
        peak_rss_kib()
    );
}

/// The `tcg` row for real: the test firmware under QEMU's TCG (`-M pc
/// -accel tcg -cpu qemu64`: QEMU's legacy 40 bits, no KVM leaf), with
/// `etc/phys-bits-valid` as the row's VMM renders it given by `-fw_cfg`.
/// The firmware sees no hint, reads the row's file, decides as the
/// simulation, and every mode it reports equals the row simulated with
/// the CPU TCG shows (its vendor and 1 GiB pages) and the guest's memory
/// top.
#[test]
fn the_tcg_row_under_qemu_tcg() {
    use fw_cfg_protocol::HintState;
    use fw_cfg_tests::matrix::FileCase;
    use fw_cfg_tests::peers::{qemu::Qemu, require};

    let Some(qemu) = require(Qemu::find()) else {
        return;
    };
    let s = Situation::named("tcg").expect("the tcg row");
    let row = situations::run(&s).expect("the row in process");
    let dir = fw_cfg_tests::peers::linux::scratch_dir("tcg").expect("a scratch folder");
    let file = dir.join("phys-bits-valid");
    let bytes = FileCase::Stated
        .file_bytes(&s.config())
        .expect("a stated file");
    std::fs::write(&file, &bytes).expect("write the file");
    let mut args = fw_cfg_tests::peers::qemu::firmware_base_args("pc");
    let accel = args.iter().position(|a| a == "kvm").expect("-accel kvm");
    args[accel] = "tcg".into();
    let firmware = fw_cfg_tests::firmware::path();
    args.extend(["-cpu", "qemu64", "-m", "2048", "-kernel"].map(String::from));
    args.push(firmware.display().to_string());
    args.push("-fw_cfg".into());
    args.push(format!("name=etc/phys-bits-valid,file={}", file.display()));
    let out = qemu.run(&args, DEFAULT_TIMEOUT).expect("QEMU runs");
    let _ = std::fs::remove_dir_all(&dir);
    let report = fw_cfg_tests::firmware::FirmwareReport::parse(&out.stdout);
    assert!(
        report.done && out.code() == Some(1),
        "{}",
        out.describe(3000)
    );

    let cpuid_line = &report.results[&Transport::Cpuid];
    let cpuid = cpuid_line.cpuid.expect("a cpuid object");
    assert_eq!(cpuid.hint, HintState::NoKvmLeaf, "TCG shows no KVM leaf");
    assert_eq!((cpuid.phys_bits, cpuid.guest_phys_bits), row.cpuid);
    let pio = &report.results[&Transport::Pio];
    let file_line = pio.file.as_ref().expect("the file was read");
    assert_eq!(
        Some(file_line.bytes.as_slice()),
        row.file.as_ref().map(|b| &b[..])
    );
    let strict = pio.decisions.expect("decisions").strict;
    let simulated = row.answers.iter().find(|a| a.mode == Mode::Strict);
    assert_eq!(Some(strict.phys_bits), simulated.map(|a| a.bits), "strict");

    let guest = pio.modes.expect("the firmware reports every mode");
    assert_eq!(guest, common::host_modes(cpuid_line, pio));
    let here = Situation {
        memory_top: cpuid_line.memory_top.expect("a memory top"),
        ..s.with_cpu_of(&cpuid)
            .expect("TCG's qemu64 is a CPU the table shows")
    };
    let sim = situations::run(&here).expect("the row on TCG's CPU");
    assert_eq!(guest.as_array(), sim.modes.as_array(), "every mode");
    assert_eq!(guest.layout, sim.modes.layout, "layout");
}
