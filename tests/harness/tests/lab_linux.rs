// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Linux's view of our fw_cfg device is its view of QEMU's, in the nested
//! KVM lab (`fw_cfg_tests::lab::linux`): one outer boot runs the
//! distribution kernel with the same busybox initramfs, command line and
//! fw_cfg items under QEMU microvm (`-accel kvm`) and under the static
//! `fw-cfg-vmm`.
//!
//! - Linux's `qemu_fw_cfg` driver: the same `rev`; for every item both
//!   serve, the same `size`, the same relative `key` order and the same
//!   `raw` (bytes up to 4 KiB, MD5 of the first 4 KiB); the same driver
//!   lines in the kernel log, and no failed second probe;
//! - the probe (`fw-cfg-probe --json`): the same fw_cfg file list for the
//!   shared items, the same `etc/phys-bits-valid` state and decisions
//!   (with both phys-bits channels off under ours: QEMU has neither);
//!   with them on, both channels decide;
//! - userspace's view of the ABI (`fw-cfg-abi-check`: signature, ID, DMA
//!   register, selector rules, directory order, port I/O and DMA reads
//!   past the end, DMA SKIP, a DMA write to a read-only item): the same
//!   bytes under both, with the channels off and on;
//! - under ours, what `/init` writes reaches the console (COM1's
//!   interrupt), `poweroff -f` ends the VMM with status 0 and a plain
//!   `reboot -f` with [`RESET_EXIT_STATUS`], well before the timeout;
//! - the boot log under ours names the CPU model as under QEMU (the brand
//!   string), has the TSC-deadline timer and SMBIOS, and its MTRR, PAT
//!   and PCI lines are QEMU's.
//!
//! The differences that remain (QEMU's extra files, kernel log lines only
//! one VMM produces, sorted by cause: `fw_cfg_tests::lab::boot_log`) are
//! printed with `--nocapture`.
//!
//! Without QEMU, the kernel, its modules or busybox these tests fail,
//! unless `FW_CFG_ALLOW_SKIP=1` is set.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use fw_cfg_protocol::DecidedBy;
use fw_cfg_protocol::probe::ProbeReport;
use fw_cfg_tests::lab::boot_log::{BootLogDiff, DiffLine};
use fw_cfg_tests::lab::build::LabTools;
use fw_cfg_tests::lab::linux::{self, GuestDump, USER_LINE, items};
use fw_cfg_tests::lab::{Lab, LabError, LabPeers};
use fw_cfg_tests::peers::linux::SysfsEntry;
use fw_cfg_tests::peers::require;
use fw_cfg_tests::vmm::RESET_EXIT_STATUS;

/// Limit of the outer boot (about 10 s of TCG plus three Linux guests).
const OUTER_TIMEOUT: Duration = Duration::from_secs(420);

fn ok<T>(r: Result<T, LabError>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// The sysfs entries by name.
fn by_name(d: &GuestDump) -> BTreeMap<&str, (u16, &SysfsEntry)> {
    d.sysfs
        .iter()
        .map(|(k, e)| (e.name.as_str(), (*k, e)))
        .collect()
}

/// Kernel log lines without their timestamps.
fn log_lines(d: &GuestDump) -> BTreeSet<String> {
    d.dmesg
        .iter()
        .map(|l| match l.split_once("] ") {
            Some((stamp, rest)) if stamp.starts_with('[') => rest.to_string(),
            _ => l.clone(),
        })
        .collect()
}

fn driver_lines(d: &GuestDump) -> BTreeSet<String> {
    log_lines(d)
        .into_iter()
        .filter(|l| l.contains("fw_cfg"))
        .collect()
}

fn check_sysfs(qemu: &GuestDump, vmm: &GuestDump) {
    assert_eq!(qemu.insmod_rc, Some(0));
    assert_eq!(vmm.insmod_rc, Some(0));
    assert!(qemu.rev.is_some());
    assert_eq!(qemu.rev, vmm.rev, "the driver's rev");
    let (q, v) = (by_name(qemu), by_name(vmm));
    let mut q_order = Vec::new();
    let mut v_order = Vec::new();
    for (name, _) in items() {
        let (qk, qe) = q
            .get(name.as_str())
            .unwrap_or_else(|| panic!("{name} under QEMU"));
        let (vk, ve) = v
            .get(name.as_str())
            .unwrap_or_else(|| panic!("{name} under ours"));
        assert_eq!(qe.size, ve.size, "{name}: size");
        assert!(qe.md5.is_some(), "{name}: raw digest");
        assert_eq!(qe.md5, ve.md5, "{name}: raw digest");
        assert_eq!(qe.raw, ve.raw, "{name}: raw bytes");
        q_order.push((*qk, name.clone()));
        v_order.push((*vk, name));
    }
    q_order.sort();
    v_order.sort();
    let names = |o: &[(u16, String)]| o.iter().map(|(_, n)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&q_order), names(&v_order), "relative key order");
    let extras: Vec<String> = q
        .iter()
        .filter(|(n, _)| !v.contains_key(*n))
        .map(|(n, (_, e))| format!("{n} ({} bytes)", e.size))
        .collect();
    eprintln!("QEMU's extra files: {}", extras.join(", "));
    let ours: Vec<&&str> = v.keys().filter(|n| !q.contains_key(**n)).collect();
    eprintln!("files only under ours: {ours:?}");
}

fn check_driver_log(qemu: &GuestDump, vmm: &GuestDump) {
    let (q, v) = (driver_lines(qemu), driver_lines(vmm));
    assert_eq!(q, v, "the fw_cfg lines of the kernel log");
    assert!(!v.iter().any(|l| l.contains("failed with error")), "{v:?}");
    let diff = BootLogDiff::new(log_lines(qemu), log_lines(vmm));
    eprintln!("kernel log lines only one VMM printed (q QEMU microvm, o fw-cfg-vmm), by cause:");
    eprint!("{diff}");
    let vl = log_lines(vmm);
    // The CPU's brand string (CPUID 0x80000002..4): the same model line.
    let cpu_line = |d: &DiffLine| d.line.starts_with("smpboot: CPU0:");
    assert!(!diff.lines.iter().any(cpu_line), "{diff}");
    // The TSC-deadline bit (CPUID 1 ECX[24]) with the in-kernel LAPIC.
    assert!(vl.contains("TSC deadline timer available"), "{vl:?}");
    // SMBIOS: tables found (QEMU's SeaBIOS names Bochs, ours itself).
    assert!(vl.contains("SMBIOS 3.0.0 present."), "{vl:?}");
    let dmi = "DMI: fw-cfg fw-cfg-vmm, BIOS ";
    assert!(vl.iter().any(|l| l.starts_with(dmi)), "{vl:?}");
    // SMBIOS's BIOS date keeps Linux's year-based PCI choices QEMU's.
    assert!(
        !diff.lines.iter().any(|d| d.line.starts_with("PCI: ")),
        "{diff}"
    );
    // The MADT's Local APIC NMI entry, as QEMU's.
    assert!(
        vl.contains("ACPI: LAPIC_NMI (acpi_id[0xff] dfl dfl lint[0x1])"),
        "{vl:?}"
    );
    // MTRRs enabled with write-back default: PAT as under QEMU.
    let mtrr = |d: &DiffLine| d.line.contains("MTRR") || d.line.contains("PAT");
    assert!(!diff.lines.iter().any(mtrr), "{diff}");
}

fn probe(d: &GuestDump) -> ProbeReport {
    d.probe
        .clone()
        .unwrap_or_else(|| panic!("no probe report: {:?}", d.probe_unparsed))
}

/// The probe's view of the items both VMMs serve.
fn shared_files(p: &ProbeReport) -> Vec<(String, u32, Option<String>)> {
    let shared: BTreeSet<String> = items().into_iter().map(|(n, _)| n).collect();
    p.fw_cfg
        .files
        .iter()
        .flatten()
        .filter(|f| shared.contains(&f.name))
        .map(|f| (f.name.clone(), f.size, f.pio_hex.clone()))
        .collect()
}

fn check_probe(qemu: &GuestDump, vmm: &GuestDump, vmm_on: &GuestDump) {
    let (q, v, on) = (probe(qemu), probe(vmm), probe(vmm_on));
    assert_eq!(shared_files(&q).len(), items().len(), "{q:?}");
    assert_eq!(shared_files(&q), shared_files(&v), "the probe's files");
    assert_eq!(q.fw_cfg.id, v.fw_cfg.id, "fw_cfg ID");
    assert_eq!(q.phys_bits_file, v.phys_bits_file, "etc/phys-bits-valid");
    assert_eq!(q.cpuid.phys_bits, v.cpuid.phys_bits, "CPUID width");
    assert_eq!(q.decisions, v.decisions, "decisions");
    assert_eq!(q.exit_code, v.exit_code);
    assert_eq!(on.phys_bits_file.state.as_str(), "present", "{on:?}");
    assert_eq!(on.decisions.strict.decided_by, DecidedBy::BothChannels);
    assert_eq!(on.decisions.strict.phys_bits, q.cpuid.phys_bits);
}

/// The value of `fw-cfg-abi-check`'s line `key`.
fn abi_value<'a>(d: &'a GuestDump, key: &str) -> Vec<&'a str> {
    d.abi
        .iter()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
        .collect()
}

fn check_abi(qemu: &GuestDump, vmm: &GuestDump, vmm_on: &GuestDump) {
    for d in [qemu, vmm, vmm_on] {
        assert_eq!(d.abi_rc, Some(0), "fw-cfg-abi-check: {:?}", d.abi);
    }
    assert_eq!(abi_value(qemu, "signature"), ["51454d55"]);
    assert_eq!(abi_value(qemu, "dma-register"), ["51454d5520434647"]);
    assert_eq!(abi_value(qemu, "write-bit-ignored"), ["51454d55"]);
    assert_eq!(abi_value(qemu, "unknown-key"), ["00000000"]);
    assert_eq!(abi_value(qemu, "dir").len(), items().len());
    let writes = abi_value(qemu, "dma-write");
    assert_eq!(writes.len(), items().len());
    for w in writes {
        let control = w.rsplit(' ').next().unwrap_or("");
        let control = u32::from_str_radix(control, 16).unwrap_or(0);
        assert_eq!(control & 1, 1, "a write to a read-only item fails: {w}");
    }
    for (i, (q, v)) in qemu.abi.iter().zip(&vmm.abi).enumerate() {
        assert_eq!(q, v, "fw-cfg-abi-check line {i}");
    }
    assert_eq!(qemu.abi, vmm.abi, "fw-cfg-abi-check's output");
    assert_eq!(
        qemu.abi, vmm_on.abi,
        "fw-cfg-abi-check's output, channels on"
    );
    eprintln!("fw-cfg-abi-check (identical under both):");
    for l in &qemu.abi {
        eprintln!("  {}", l.chars().take(120).collect::<String>());
    }
}

#[test]
fn linux_sees_our_fw_cfg_as_it_sees_qemus() {
    let Some(peers) = require(LabPeers::find()) else {
        return;
    };
    let tools = LabTools::build(true).unwrap_or_else(|e| panic!("{e}"));
    let lab = Lab::new().timeout(OUTER_TIMEOUT);
    let (lab, g) = ok(linux::add(lab, &peers.linux, &peers.qemu, &tools));
    let run = ok(lab.run(&peers));
    for (name, t) in [
        (&g.qemu, "QEMU microvm"),
        (&g.vmm, "fw-cfg-vmm"),
        (&g.vmm_reboot, "fw-cfg-vmm, reboot"),
    ] {
        let gr = ok(run.guest(name));
        eprintln!(
            "{t}: {:.2} s, status {}\n{}",
            gr.elapsed.as_secs_f64(),
            gr.status,
            String::from_utf8_lossy(&gr.stderr)
        );
    }
    let (q, v, r) = (
        ok(linux::dump(&run, &g.qemu)),
        ok(linux::dump(&run, &g.vmm)),
        ok(linux::dump(&run, &g.vmm_reboot)),
    );
    // The serial fix: /init's own line, a tty write.
    assert_eq!(v.user.as_deref(), Some(USER_LINE));
    assert_eq!(q.user.as_deref(), Some(USER_LINE));
    // Power-off and reset end the VMM (not its timeout).
    assert_eq!(run.guests[&g.vmm].status, 0, "poweroff -f under ours");
    assert_eq!(run.guests[&g.qemu].status, 0, "poweroff -f under QEMU");
    check_sysfs(&q, &v);
    check_driver_log(&q, &v);
    check_probe(&q, &v, &r);
    check_abi(&q, &v, &r);
    // A plain `reboot -f` (no `reboot=` parameter: Linux takes its BIOS
    // method and jumps to the reset vector) resets, long before the
    // VMM's timeout and at most about as late as the power-off guest.
    let (reboot, poweroff) = (&run.guests[&g.vmm_reboot], &run.guests[&g.vmm]);
    assert_eq!(
        reboot.status, RESET_EXIT_STATUS as i32,
        "reboot -f under ours"
    );
    assert!(
        reboot.elapsed < linux::VMM_TIMEOUT / 2,
        "{:?}",
        reboot.elapsed
    );
    assert!(
        reboot.elapsed < poweroff.elapsed * 2,
        "{:?}",
        reboot.elapsed
    );
    eprintln!("outer boot: {:.1} s", run.elapsed.as_secs_f64());
}
