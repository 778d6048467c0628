// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The nested KVM lab (`fw_cfg_tests::lab`): QEMU's TCG with `-cpu max`
//! boots this machine's kernel, which loads `kvm-amd` on the emulated SVM
//! and runs inner guests with real KVM.
//!
//! - the lab has real KVM: `/dev/kvm` and nested paging, and the script's
//!   exit status comes back;
//! - one outer boot runs `compare`'s whole configuration matrix with the
//!   PVH test firmware under the static `fw-cfg-vmm` and, where QEMU
//!   microvm expresses it, under QEMU (`-accel kvm`): each configuration
//!   reads, decides and exits (per phase, by kind) in the lab exactly as
//!   the same configuration on this machine's KVM, run in the same test,
//!   and decides the same under QEMU;
//! - the outer vCPU's MAXPHYADDR (39) is the inner KVM host's: the
//!   firmware under `fw-cfg-vmm --host-phys-bits` sees 39 bits in CPUID;
//!   in the same boot, the nesting chain (`lab_nesting`), and four vCPUs of the firmware's SMP stress mode under
//!   `fw-cfg-vmm --cpus 4` start on real KVM and read consistently.
//!
//! Without QEMU, the kernel, its modules or busybox these tests fail,
//! unless `FW_CFG_ALLOW_SKIP=1` is set. A lab that boots but has no KVM
//! inside is always a failure.

mod lab_nesting;

use std::time::Duration;

use fw_cfg_protocol::{DecidedBy, Transport};
use fw_cfg_tests::bench::{self, Workload};
use fw_cfg_tests::firmware::FirmwareReport;
use fw_cfg_tests::lab::build::LabTools;
use fw_cfg_tests::lab::matrix as lab_matrix;
use fw_cfg_tests::lab::measure;
use fw_cfg_tests::lab::{Lab, LabError, LabPeers, LabRun, firmware};
use fw_cfg_tests::matrix::FileCase;
use fw_cfg_tests::peers::require;
use fw_cfg_tests::peers::side_by_side::{PeerConfig, SHARED_TRANSPORTS, Width, compare};

/// Limit of one outer boot (about 10 s of TCG plus the inner guests).
const OUTER_TIMEOUT: Duration = Duration::from_secs(150);

fn ok<T>(r: Result<T, LabError>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn peers_and_tools() -> Option<(LabPeers, LabTools)> {
    let peers = require(LabPeers::find())?;
    let tools = LabTools::build(false).unwrap_or_else(|e| panic!("{e}"));
    Some((peers, tools))
}

fn describe(run: &LabRun) -> String {
    format!(
        "script status {}\nscript output:\n{}\nouter console:\n{}",
        run.status, run.output, run.console
    )
}

#[test]
fn the_lab_has_real_kvm_with_nested_paging() {
    let Some(peers) = require(LabPeers::find()) else {
        return;
    };
    let run = ok(Lab::new()
        .timeout(OUTER_TIMEOUT)
        .script(
            "if [ -c /dev/kvm ]; then echo 'dev-kvm: character device'; fi\n\
             dmesg | grep -i 'nested paging'\n\
             exit 7",
        )
        .run(&peers));
    eprintln!("outer boot: {:.1} s", run.elapsed.as_secs_f64());
    assert_eq!(
        run.status,
        7,
        "the script's status comes back\n{}",
        describe(&run)
    );
    assert!(
        run.output.lines().any(|l| l == "dev-kvm: character device"),
        "{}",
        describe(&run)
    );
    assert!(
        run.output
            .lines()
            .any(|l| l.contains("SVM") && l.contains("Nested Paging enabled")),
        "{}",
        describe(&run)
    );
}

/// The decisions of each channel and shared transport, as values.
fn assert_same_decisions(tag: &str, qemu: &FirmwareReport, vmm: &FirmwareReport) {
    for t in std::iter::once(Transport::Cpuid).chain(SHARED_TRANSPORTS) {
        let name = t.as_str();
        let q = qemu
            .results
            .get(&t)
            .unwrap_or_else(|| panic!("{tag}: no {name} line under QEMU"));
        let v = vmm
            .results
            .get(&t)
            .unwrap_or_else(|| panic!("{tag}: no {name} line under fw-cfg-vmm"));
        assert!(q.available && v.available, "{tag} {name}: {q:?} {v:?}");
        assert!(q.decisions.is_some(), "{tag} {name}: no decisions: {q:?}");
        assert_eq!(q.decisions, v.decisions, "{tag} {name}: QEMU vs fw-cfg-vmm");
        assert_eq!(q.file, v.file, "{tag} {name}: the file each read");
    }
}

/// Limit of the matrix boot: sixteen firmware guests under `fw-cfg-vmm`
/// and four under QEMU microvm, then the measurement guests (the firmware
/// in benchmark mode and Linux, under both, QEMU once more traced).
const MATRIX_TIMEOUT: Duration = Duration::from_secs(1200);

/// The measurement in the matrix boot ran, and its exits are as expected:
/// the firmware's phases under `fw-cfg-vmm` cost exactly what they cost on
/// this machine's KVM, QEMU's traced run has exits for each decision;
/// Linux reaches `/init` and powers off under both, the probe decides
/// from the file under both, and only QEMU's boot touches fw_cfg (its
/// firmware loads the kernel through it; ours loads it directly).
/// Benchmark phases whose exits do not depend on the directory's size
/// (up to 32 files for the buffered DMA lookup).
const SIZE_FREE: [&str; 7] = [
    "pio/signature",
    "pio/id",
    "dma/signature",
    "dma/id",
    "dma/dir-bulk",
    "dma/file-read",
    "dma/decision",
];

fn check_measurement(m: &measure::Measurement, w: &Workload) {
    let machine = bench::run_ours(w, Duration::from_secs(300))
        .unwrap_or_else(|e| panic!("bench on this machine: {e}"));
    let machine_rows = bench::rows(w, &machine, None, None);
    assert_eq!(m.firmware_rows.len(), machine_rows.len());
    for (lab, here) in m.firmware_rows.iter().zip(&machine_rows) {
        assert_eq!(lab.name, here.name);
        assert_eq!(lab.ours_exits, here.ours_exits, "{}: exits", lab.name);
        let fw_cfg_decision = lab.name.ends_with("/decision")
            && lab.ours_exits.is_some()
            && !lab.name.starts_with("mmio")
            && !lab.name.starts_with("cpuid");
        if fw_cfg_decision {
            assert!(
                lab.qemu_exits.is_some_and(|e| e > 0),
                "{}: {lab:?}",
                lab.name
            );
        }
        // What does not depend on the directory's size (QEMU serves more
        // files) costs QEMU the same exits as ours.
        if SIZE_FREE.contains(&lab.name.as_str()) {
            assert_eq!(lab.qemu_exits, lab.ours_exits, "{}: QEMU", lab.name);
        }
    }
    for r in &m.linux_runs {
        let who = format!("{:?} (traced {})", r.vmm, r.traced);
        assert_eq!(r.status, 0, "{who}: poweroff -f");
        assert!(
            r.to_init_ms.is_some() && r.probe_ms.is_some(),
            "{who}: {r:?}"
        );
        let p = r
            .probe
            .as_ref()
            .unwrap_or_else(|| panic!("{who}: no probe report"));
        assert_eq!(p.phys_bits_file.state.as_str(), "present", "{who}");
        assert_eq!(p.decisions.strict.phys_bits, 46, "{who}");
    }
    let exits = |vmm| {
        m.linux
            .iter()
            .find(|s| s.vmm == vmm)
            .and_then(|s| s.exits)
            .expect("exits")
    };
    let (ours, qemu) = (
        exits(measure::LabVmm::FwCfgVmm),
        exits(measure::LabVmm::QemuMicrovm),
    );
    assert_eq!(ours.boot_fw_cfg, 0, "{ours:?}");
    assert!(qemu.boot_fw_cfg > 0, "{qemu:?}");
    assert!(ours.probe > 0 && qemu.probe > 0, "{ours:?} {qemu:?}");
    eprint!("{}", measure::render_linux(&m.linux));
}

#[test]
fn the_matrix_decides_and_exits_in_the_lab_as_on_this_machine_and_under_qemu() {
    let Some(peers) = require(LabPeers::find()) else {
        return;
    };
    let tools = LabTools::build(true).unwrap_or_else(|e| panic!("{e}"));
    const HOST_BITS: u8 = 46;
    let lab = Lab::new().phys_bits(HOST_BITS).timeout(MATRIX_TIMEOUT);
    let (lab, added) = ok(lab_matrix::add(lab, HOST_BITS, Some(&peers.qemu), &tools));
    let setup = measure::MeasureSetup {
        repeat: 1,
        host_bits: HOST_BITS,
        firmware: Some(Workload::main(4096)),
        linux: true,
        timed_qemu: false,
    };
    let (lab, plan) = ok(measure::add(lab, &peers, &tools, &setup));
    let run = ok(lab.run(&peers));
    let mut failures = Vec::new();
    for a in &added {
        let tag = a.scenario.tag();
        let v = ok(firmware::report(&run, &a.guests.vmm));
        let stats = ok(firmware::run_report(&run, &a.guests)).stats;
        let machine = lab_matrix::machine_run(&a.config, HOST_BITS, Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{tag} on this machine: {e}"));
        let cpuid = v.results[&Transport::Cpuid]
            .cpuid
            .as_ref()
            .expect("a cpuid object");
        let want = if a.scenario.host_phys_bits {
            HOST_BITS
        } else {
            40
        };
        assert_eq!(cpuid.phys_bits, want, "{tag}: the advertised width");
        assert!(stats.phase(v.results[&Transport::Dma].phase.id()).total() > 0);
        if a.scenario == added[0].scenario {
            let features = lab_matrix::cpuid_feature_differences(&machine.report, &v);
            eprintln!("CPUID features, this machine vs the lab: {features:?}");
        }
        let d = lab_matrix::differences((&machine.report, &machine.stats), (&v, &stats));
        failures.extend(d.into_iter().map(|d| format!("{tag}, machine vs lab: {d}")));
        let Some(qemu_name) = &a.guests.qemu else {
            continue;
        };
        let q = ok(firmware::report(&run, qemu_name));
        let times = [qemu_name, &a.guests.vmm].map(|n| run.guests[n].elapsed.as_secs_f64());
        eprintln!(
            "{tag}: QEMU microvm {:.2} s, fw-cfg-vmm {:.2} s",
            times[0], times[1]
        );
        assert_same_decisions(&tag, &q, &v);
        // Everything else the firmware read (vendor, 1 GiB pages, the hint
        // state, the bulk file through each transport) agrees too.
        let differences = compare(&q, &v);
        failures.extend(
            differences
                .into_iter()
                .map(|d| format!("{tag}, QEMU vs ours: {d}")),
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let strict = |tag: &str| {
        let a = added
            .iter()
            .find(|a| a.scenario.tag() == tag)
            .expect("configured");
        let v = ok(firmware::report(&run, &a.guests.vmm));
        v.results[&Transport::Pio]
            .decisions
            .expect("decisions")
            .strict
    };
    // The file decides when stated; without it the strict mode falls back.
    let stated = strict("hpb-on.hint-off.stated");
    assert_eq!(stated.decided_by, DecidedBy::FwCfgFile);
    assert_eq!(stated.phys_bits, HOST_BITS);
    assert_ne!(
        strict("hpb-on.hint-off.absent").decided_by,
        DecidedBy::FwCfgFile
    );
    let m = measure::collect(&run, &plan).unwrap_or_else(|e| panic!("{e}"));
    check_measurement(&m, setup.firmware.as_ref().expect("a workload"));
    eprintln!(
        "outer boot with {} inner guests: {:.1} s",
        run.guests.len(),
        run.elapsed.as_secs_f64()
    );
}

#[test]
fn the_outer_maxphyaddr_is_the_inner_kvm_hosts() {
    let Some((peers, tools)) = peers_and_tools() else {
        return;
    };
    let config = PeerConfig::microvm(Width::Host, FileCase::Stated);
    let lab = Lab::new()
        .phys_bits(39)
        .timeout(OUTER_TIMEOUT)
        .script("grep -m1 'address sizes' /proc/cpuinfo");
    let (lab, g) = ok(firmware::add(lab, "host39", &config, 39, None, &tools));
    assert_eq!(g.qemu, None);
    // The nesting chain and the SMP stress guest ride on this boot.
    let lab = ok(lab_nesting::add(lab, &tools));
    let (lab, smp_guest) = ok(firmware::add_smp(lab, "host39", 4, 500, &tools));
    let run = ok(lab.run(&peers));
    lab_nesting::check(&run);
    let smp = ok(firmware::report(&run, &smp_guest))
        .smp
        .expect("an smp line");
    eprintln!(
        "smp under real KVM: {smp:?} in {:.2} s",
        run.guests[&smp_guest].elapsed.as_secs_f64()
    );
    assert_eq!((smp.announced, smp.cpus), (4, 4), "{smp:?}");
    assert_eq!((smp.inconsistent, smp.dma_errors), (0, 0), "{smp:?}");
    assert!(smp.final_ok, "{smp:?}");
    assert!(
        run.output.contains("39 bits physical"),
        "{}",
        describe(&run)
    );
    let v = ok(firmware::report(&run, &g.vmm));
    let cpuid = v.results[&Transport::Cpuid]
        .cpuid
        .as_ref()
        .expect("a cpuid object");
    assert_eq!(
        cpuid.phys_bits, 39,
        "fw-cfg-vmm --host-phys-bits passes the inner host's width"
    );
    let file = v.results[&Transport::Pio]
        .file
        .as_ref()
        .expect("a file object");
    assert_eq!(
        (file.state.as_str(), file.phys_bits, file.valid),
        ("present", Some(39), Some(true))
    );
}

#[test]
fn a_hanging_outer_guest_ends_at_the_timeout() {
    let Some(peers) = require(LabPeers::find()) else {
        return;
    };
    let limit = Duration::from_secs(20);
    let start = std::time::Instant::now();
    let err = Lab::new()
        .timeout(limit)
        .script("sleep 600")
        .run(&peers)
        .expect_err("the script sleeps past the limit");
    let took = start.elapsed();
    eprintln!("{err}");
    match &err {
        LabError::Timeout { timeout, .. } => assert_eq!(*timeout, limit),
        other => panic!("expected a timeout, got {other}"),
    }
    assert!(took < limit + Duration::from_secs(15), "took {took:?}");
    assert!(err.to_string().contains("last console lines"));
}
