// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Linux's `qemu_fw_cfg` driver against QEMU's fw_cfg device, with our
//! `fw-cfg-probe` beside it: the Debian kernel boots under QEMU's TCG with
//! an initramfs of busybox, the kernel's own `qemu_fw_cfg.ko` and the
//! static probe (see `fw_cfg_tests::peers::linux`).
//!
//! For every file QEMU exposes, the probe's name, size, selector and bytes
//! (port I/O) must equal `/sys/firmware/qemu_fw_cfg/by_key/*`; the items
//! the test added must equal what it gave QEMU; the probe's decisions must
//! be the policy's for the CPUID values QEMU set and the file the test
//! gave. Under TCG there is no KVM leaf, so the hint channel is silent and
//! `host-phys-bits` has no effect (TCG has no host width to pass through).
//!
//! QEMU's DSDT (dumped by the guest) must carry the same `Device (FWCF)`
//! as the device crate's `acpi` module generates, byte for byte and as
//! ACPICA's `iasl` disassembles it.
//!
//! Without QEMU, the kernel, busybox or `iasl` these tests fail, unless
//! `FW_CFG_ALLOW_SKIP=1` is set.

use std::sync::OnceLock;

use fw_cfg_device::acpi::{self, FwCfgAcpi};
use fw_cfg_guest::abi::{PHYS_BITS_FILE_NAME, PhysBitsFile};
use fw_cfg_guest::policy::Rule;
use fw_cfg_protocol::probe::{DeviceState, ProbeReport};
use fw_cfg_tests::peers::linux::{
    GuestDump, HEX_LIMIT, LARGE_PREFIX, LinuxBoot, LinuxPeer, LinuxRun, MD5_LIMIT, build_probe,
    expected_decisions, expected_modes, md5_hex,
};
use fw_cfg_tests::peers::qemu::Qemu;
use fw_cfg_tests::peers::{hex, iasl, require};

/// A 55-byte name, the longest fw_cfg allows.
const LONG_NAME: &str = "opt/org.fw-cfg-tests/a-name-of-exactly-fifty-five-bytes";
/// The 1 MiB item.
const BIG_NAME: &str = "opt/fw-cfg-tests/one-mebibyte";
/// A small item.
const SMALL_NAME: &str = "opt/fw-cfg-tests/small";

fn big_contents() -> Vec<u8> {
    // xorshift: deterministic, incompressible, position-dependent.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Boots `config`, or returns `None` when a peer is missing and FW_CFG_ALLOW_SKIP
/// is set. Panics with QEMU's output when the guest did not finish.
fn boot(config: &LinuxBoot) -> Option<LinuxRun> {
    let qemu = require(Qemu::find())?;
    let peer = require(LinuxPeer::find())?;
    let probe = build_probe().unwrap_or_else(|e| panic!("{e}"));
    let run = peer
        .boot(&qemu, &probe, config)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        run.dump.complete,
        "the guest did not finish its /init script:\n{}",
        run.output.describe(4000)
    );
    eprintln!(
        "{} under QEMU {} TCG, -cpu {}: {:.1} s",
        peer.kernel.display(),
        qemu.version_string(),
        config.cpu,
        run.output.elapsed.as_secs_f64()
    );
    Some(run)
}

fn probe(d: &GuestDump) -> &ProbeReport {
    d.probe.as_ref().unwrap_or_else(|| {
        panic!(
            "the probe's JSON did not parse: {:?}",
            d.probe_unparsed.as_deref().map(|s| &s[..s.len().min(2000)])
        )
    })
}

/// The decisions and exit code of one configuration.
fn check_decisions<'a>(run: &'a LinuxRun, file: Option<&[u8]>, phys_bits: u8) -> &'a ProbeReport {
    let d = &run.dump;
    let p = probe(d);
    assert_eq!(p.cpuid.phys_bits, phys_bits, "CPUID 0x80000008 EAX[7:0]");
    assert_eq!(
        d.cpuinfo
            .as_deref()
            .map(|c| c.starts_with(&format!("{phys_bits} bits physical"))),
        Some(true),
        "Linux's /proc/cpuinfo: {:?}",
        d.cpuinfo
    );
    assert_eq!(p.cpuid.hint.as_str(), "no-kvm-leaf", "TCG has no KVM leaf");
    assert_eq!(p.fw_cfg.state, DeviceState::Present);
    assert_eq!(
        p.fw_cfg.id,
        Some(3),
        "QEMU's -M pc offers traditional + DMA"
    );
    match file {
        None => assert_eq!(p.phys_bits_file.state.as_str(), "absent"),
        Some(b) => match PhysBitsFile::parse(b) {
            Ok(f) => {
                assert_eq!(p.phys_bits_file.state.as_str(), "present");
                assert_eq!(p.phys_bits_file.valid, Some(f.valid));
                assert_eq!(p.phys_bits_file.phys_bits, Some(f.phys_bits));
            }
            Err(_) => assert_eq!(p.phys_bits_file.state.as_str(), "corrupt"),
        },
    }
    let expected = expected_decisions(&p.cpuid, file, p.memory_top);
    assert_eq!(p.decisions, expected, "probe decisions vs the policy");
    assert_eq!(
        p.modes,
        Some(expected_modes(&p.cpuid, file, p.memory_top)),
        "every mode's answer and the layout vs the same code"
    );
    let code = if expected.as_array().iter().any(|d| !d.conflicts.is_empty()) {
        1
    } else {
        0
    };
    assert_eq!(p.exit_code, code, "exit code in the JSON");
    assert_eq!(d.probe_rc, Some(code), "probe exit status");
    assert_eq!(d.probe_full_rc, Some(code), "exit status of the 1 MiB run");
    p
}

fn full_run() -> Option<&'static LinuxRun> {
    static RUN: OnceLock<Option<LinuxRun>> = OnceLock::new();
    RUN.get_or_init(|| {
        let config = LinuxBoot::new("qemu64,phys-bits=39")
            .file(BIG_NAME, big_contents())
            .file(LONG_NAME, b"fifty-five".to_vec())
            .file(SMALL_NAME, (0u8..=255).collect())
            .file(
                PHYS_BITS_FILE_NAME,
                PhysBitsFile::new(true, 39, 0).to_bytes().to_vec(),
            );
        boot(&config)
    })
    .as_ref()
}

#[test]
fn linux_driver_and_probe_see_the_same_files_and_bytes() {
    let Some(run) = full_run() else { return };
    let d = &run.dump;
    assert_eq!(d.insmod_rc, Some(0), "insmod qemu_fw_cfg.ko");
    let p = probe(d);
    let files = p
        .fw_cfg
        .files
        .as_ref()
        .expect("the probe read the directory");

    // The same directory: names, sizes and selectors.
    let probe_dir: Vec<(u16, &str, u64)> = files
        .iter()
        .map(|f| (f.select, f.name.as_str(), u64::from(f.size)))
        .collect();
    let sysfs_dir: Vec<(u16, &str, u64)> = d
        .sysfs
        .iter()
        .map(|(k, e)| (*k, e.name.as_str(), e.size))
        .collect();
    assert_eq!(probe_dir, sysfs_dir, "directory: probe (port I/O) vs sysfs");
    assert!(
        files.len() >= 10,
        "QEMU's own files are there: {probe_dir:?}"
    );
    for name in [
        "etc/acpi/tables",
        "etc/acpi/rsdp",
        "etc/table-loader",
        BIG_NAME,
        LONG_NAME,
        PHYS_BITS_FILE_NAME,
    ] {
        assert!(
            files.iter().any(|f| f.name == name),
            "{name} missing from {probe_dir:?}"
        );
    }
    assert_eq!(LONG_NAME.len(), 55);

    // The same bytes.
    for f in files {
        let s = &d.sysfs[&f.select];
        let bytes = f
            .bytes()
            .unwrap_or_else(|| panic!("{}: the probe could not read it: {:?}", f.name, f.error));
        assert_eq!(
            bytes.len() as u64,
            u64::from(f.size).min(HEX_LIMIT),
            "{}: printed prefix",
            f.name
        );
        if u64::from(f.size) <= HEX_LIMIT {
            assert!(!f.truncated);
            assert_eq!(
                s.raw.as_deref(),
                Some(&bytes[..]),
                "{}: probe bytes vs sysfs raw",
                f.name
            );
        }
        let n = if u64::from(f.size) <= MD5_LIMIT {
            u64::from(f.size)
        } else {
            LARGE_PREFIX
        };
        let probe_md5 = d.probe_md5.get(&f.select);
        assert_eq!(
            probe_md5.map(|m| m.0),
            Some(n),
            "{}: probe MD5 length",
            f.name
        );
        assert_eq!(
            probe_md5,
            s.md5.as_ref(),
            "{}: MD5 of the probe's bytes vs sysfs raw",
            f.name
        );
        if u64::from(f.size) <= HEX_LIMIT {
            assert_eq!(probe_md5.unwrap().1, md5_hex(&bytes), "{}", f.name);
        }
    }

    // Our items are what we gave QEMU.
    let by_name = |n: &str| files.iter().find(|f| f.name == n).unwrap();
    let big = by_name(BIG_NAME);
    assert_eq!(big.size, 1 << 20);
    assert_eq!(
        d.sysfs[&big.select].md5,
        Some((1 << 20, md5_hex(&big_contents()))),
        "1 MiB item through Linux's driver"
    );
    assert_eq!(
        d.probe_md5[&big.select],
        (1 << 20, md5_hex(&big_contents())),
        "1 MiB item through the probe"
    );
    assert_eq!(by_name(LONG_NAME).bytes().unwrap(), b"fifty-five");
    assert_eq!(
        by_name(SMALL_NAME).bytes().unwrap(),
        (0u8..=255).collect::<Vec<_>>()
    );
    assert_eq!(
        by_name(PHYS_BITS_FILE_NAME).bytes().unwrap(),
        PhysBitsFile::new(true, 39, 0).to_bytes()
    );
}

#[test]
fn probe_trusts_a_valid_file_where_the_heuristic_does_not() {
    let Some(run) = full_run() else { return };
    let file = PhysBitsFile::new(true, 39, 0).to_bytes();
    let p = check_decisions(run, Some(&file), 39);
    // qemu64 says AuthenticAMD; OVMF's rule distrusts 39 bits on AMD.
    assert_eq!(p.cpuid.vendor.as_str(), "amd");
    let strict = &p.decisions.strict;
    assert_eq!(
        (strict.phys_bits, strict.decided_by.as_str()),
        (39, "fw-cfg-file")
    );
    let heuristic = &p.decisions.heuristic;
    assert_eq!(heuristic.phys_bits, 36);
}

#[test]
fn probe_with_an_invalid_file_on_qemus_default_width() {
    // QEMU's legacy default: 40 bits; the file says "not backed".
    let file = PhysBitsFile::new(false, 40, 0).to_bytes();
    let Some(run) = boot(&LinuxBoot::new("qemu64").file(PHYS_BITS_FILE_NAME, file.to_vec())) else {
        return;
    };
    let p = check_decisions(&run, Some(&file), 40);
    let strict = &p.decisions.strict;
    assert_eq!(strict.phys_bits, 36);
    assert_eq!(strict.rule, Rule::ExplicitInvalid.into());
    assert_eq!(strict.decided_by.as_str(), "fw-cfg-file");
    // The heuristic (AMD with 40) would have used 40.
    assert_eq!(p.decisions.heuristic.phys_bits, 40);
}

#[test]
fn probe_without_the_file_on_qemus_default_width() {
    let Some(run) = boot(&LinuxBoot::new("qemu64")) else {
        return;
    };
    let p = check_decisions(&run, None, 40);
    assert_eq!(p.decisions.strict.phys_bits, 36);
    assert_eq!(
        p.decisions.strict.decided_by.as_str(),
        "conservative-default"
    );
    // Combined falls back to the heuristic when both channels are silent.
    assert_eq!(p.decisions.combined.phys_bits, 40);
    assert_eq!(p.decisions.combined.decided_by.as_str(), "heuristic");
}

#[test]
fn probe_reports_a_corrupt_file_as_a_conflict() {
    let file = [1u8, 2, 40, 0, 0, 0, 0, 0];
    let Some(run) = boot(&LinuxBoot::new("qemu64").file(PHYS_BITS_FILE_NAME, file.to_vec())) else {
        return;
    };
    let p = check_decisions(&run, Some(&file), 40);
    assert_eq!(p.exit_code, 1);
    assert!(
        p.decisions
            .strict
            .conflicts
            .iter()
            .any(|c| c.as_str() == "corrupt-file")
    );
    assert_eq!(p.decisions.strict.phys_bits, 36);
}

#[test]
fn probe_reports_a_file_that_contradicts_cpuid() {
    let file = PhysBitsFile::new(true, 44, 0).to_bytes();
    let Some(run) =
        boot(&LinuxBoot::new("max,phys-bits=46").file(PHYS_BITS_FILE_NAME, file.to_vec()))
    else {
        return;
    };
    let p = check_decisions(&run, Some(&file), 46);
    assert_eq!(p.exit_code, 1);
    assert!(
        p.decisions
            .strict
            .conflicts
            .iter()
            .any(|c| c.as_str() == "file-phys-bits-differs-from-cpuid")
    );
    assert_eq!(p.decisions.strict.phys_bits, 36);
}

#[test]
fn qemu_dsdt_carries_the_same_fw_cfg_node_as_ours() {
    let Some(iasl) = require(iasl::find()) else {
        return;
    };
    let Some(run) = full_run() else { return };
    let dsdt = run
        .dump
        .dsdt
        .as_ref()
        .expect("the guest printed /sys/firmware/acpi/tables/DSDT");
    assert_eq!(&dsdt[..4], b"DSDT");
    // QEMU's -M pc offers DMA, so its node covers 12 ports.
    let ours = FwCfgAcpi::x86(true);
    let qemu_node =
        acpi::find_device(dsdt, acpi::DEVICE_NAME).expect("QEMU's DSDT has Device (FWCF)");
    assert_eq!(
        hex(qemu_node),
        hex(&ours.to_bytes()),
        "AML of Device (FWCF): QEMU's vs ours"
    );

    // ACPICA reads both the same way.
    let qemu_asl = iasl::disassemble(&iasl, dsdt).unwrap_or_else(|e| panic!("{e}"));
    let our_table = acpi::dsdt(&ours, *b"FWCFGT", *b"FWCFGTST");
    let our_asl = iasl::disassemble(&iasl, &our_table).unwrap_or_else(|e| panic!("{e}"));
    let qemu_block = iasl::device_block(&qemu_asl, "FWCF").expect("FWCF in QEMU's ASL");
    let our_block = iasl::device_block(&our_asl, "FWCF").expect("FWCF in our ASL");
    assert_eq!(qemu_block, our_block);
    for line in [
        "Name (_HID, \"QEMU0002\")",
        "Name (_STA, 0x0B)",
        "IO (Decode16,",
        "0x0510,",
        "0x0C,",
    ] {
        assert!(
            our_block.iter().any(|l| l == line),
            "{line} in {our_block:#?}"
        );
    }
    assert!(qemu_asl.contains("Scope (_SB.PCI0)") || qemu_asl.contains("Scope (\\_SB.PCI0)"));
}
