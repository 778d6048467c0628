// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Real firmware against our device, in the nested KVM lab
//! (`fw_cfg_tests::lab::bios`): one outer boot runs SeaBIOS's microvm build
//! (Debian's `/usr/share/seabios/bios-microvm.bin`, QEMU's default
//! `-M microvm` firmware) from the reset vector under QEMU microvm
//! (`-accel kvm -bios`) and under `fw-cfg-vmm --bios`, each logging to its
//! debug console port 0x402.
//!
//! Under both, SeaBIOS runs on KVM, finds fw_cfg with its DMA interface,
//! sizes RAM, takes the non-PCI path and reaches its boot menu
//! (`handle_19`); the lines of the two logs are compared and the ones only
//! one VMM produces are printed. Under ours, the fw_cfg exits are counted.
//!
//! In the same outer boot, SeaBIOS and qboot each boot the distribution
//! kernel with the lab's busybox initramfs and items (`lab::linux`) handed
//! to them through fw_cfg, under QEMU microvm (`-bios ROM -kernel ...`) and
//! `fw-cfg-vmm --bios ROM --kernel ...`: both reach userspace; Linux's e820
//! map (its `BIOS-e820:` lines), its ACPI table list, the
//! `/sys/firmware/qemu_fw_cfg` entries of the shared items and
//! `fw-cfg-abi-check`'s output are compared, the differences printed; the
//! time from the VMM's start to Linux's start is printed for both.
//!
//! Without QEMU, the kernel, its modules, busybox or the ROM these tests
//! fail, unless `FW_CFG_ALLOW_SKIP=1` is set.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use fw_cfg_tests::lab::bios::{self, FirmwareLog, QBOOT, SEABIOS_MICROVM};
use fw_cfg_tests::lab::build::LabTools;
use fw_cfg_tests::lab::linux::{self, GuestDump, USER_LINE, items};
use fw_cfg_tests::lab::{GuestName, Lab, LabError, LabPeers, LabRun};
use fw_cfg_tests::peers::{Missing, require};

/// Limit of the outer boot (about 10 s of TCG, two 12 s guests and four
/// Linux guests; 540 to 600 s on a loaded 2-core machine).
const OUTER_TIMEOUT: Duration = Duration::from_secs(1200);

/// What SeaBIOS logs under both VMMs in its first steps: its fw_cfg
/// detection and the e820 map it reads. Both firmware-alone guests run a
/// fixed time, and on a loaded machine QEMU's may not get further.
const EARLY_MILESTONES: &[&str] = &[
    "SeaBIOS (version",
    "Running on KVM",
    "Found QEMU fw_cfg",
    "QEMU fw_cfg DMA interface supported",
    "qemu/e820: addr 0x00000000feffc000 len 0x0000000000004000 [reserved]",
    "qemu/e820: addr 0x0000000000000000 len 0x0000000008000000 [RAM]",
];

/// What SeaBIOS logs under `fw-cfg-vmm` on the way to the kernel (its
/// debug log on the SeaBIOS Linux guest's stderr).
const BOOT_MILESTONES: &[&str] = &[
    "Detected non-PCI system",
    "table(50434146)=",
    "Running option rom at",
    "Searching bootorder for: /rom@genroms/linuxboot_dma.bin",
    "enter handle_19:",
    "Booting from ROM...",
];

fn ok<T>(r: Result<T, LabError>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn roms() -> Result<(), Missing> {
    for (rom, package) in [(SEABIOS_MICROVM, "seabios"), (QBOOT, "qemu-system-data")] {
        if !Path::new(rom).is_file() {
            return Err(Missing::new(rom, format!("apt-get install {package}")));
        }
    }
    Ok(())
}

fn set(log: &FirmwareLog) -> BTreeSet<&str> {
    log.lines.iter().map(String::as_str).collect()
}

#[test]
fn seabios_finds_our_fw_cfg_as_it_finds_qemus() {
    let Some(peers) = require(LabPeers::find()) else {
        return;
    };
    if require(roms()).is_none() {
        return;
    }
    let tools = LabTools::build(true).unwrap_or_else(|e| panic!("{e}"));
    // FW_CFG_LAB_KEEP=1 keeps the run folder (the guests' output files).
    let keep = std::env::var("FW_CFG_LAB_KEEP").as_deref() == Ok("1");
    let lab = Lab::new().timeout(OUTER_TIMEOUT).keep(keep);
    let (lab, g) = ok(bios::add(
        lab,
        "seabios",
        SEABIOS_MICROVM,
        &peers.qemu,
        &tools,
    ));
    let (lab, sea) = ok(bios::add_linux(
        lab,
        "linux-seabios",
        SEABIOS_MICROVM,
        &peers.linux,
        &peers.qemu,
        &tools,
    ));
    let (lab, qb) = ok(bios::add_linux(
        lab,
        "linux-qboot",
        QBOOT,
        &peers.linux,
        &peers.qemu,
        &tools,
    ));
    let run = ok(lab.run(&peers));
    for (name, gr) in &run.guests {
        eprintln!(
            "{name}: {:.2} s, status {}",
            gr.elapsed.as_secs_f64(),
            gr.status
        );
    }
    check_linux(&run, &sea, "SeaBIOS");
    check_linux(&run, &qb, "qboot");
    let q = ok(bios::log(&run, &g.qemu, false));
    let v = ok(bios::log(&run, &g.vmm, true));
    for m in EARLY_MILESTONES {
        assert!(q.has(m), "QEMU: no {m:?}:\n{}", q.lines.join("\n"));
        assert!(v.has(m), "fw-cfg-vmm: no {m:?}:\n{}", v.lines.join("\n"));
    }
    let boot = ok(bios::log_of_run(&run, &sea.vmm));
    for m in BOOT_MILESTONES {
        assert!(
            boot.has(m),
            "fw-cfg-vmm: no {m:?}:\n{}",
            boot.lines.join("\n")
        );
    }
    let (qs, vs) = (set(&q), set(&v));
    eprintln!("SeaBIOS log lines only under QEMU microvm:");
    for l in qs.difference(&vs) {
        eprintln!("  {l}");
    }
    eprintln!("SeaBIOS log lines only under fw-cfg-vmm:");
    for l in vs.difference(&qs) {
        eprintln!("  {l}");
    }
    eprintln!("fw-cfg-vmm's exits:\n{}", v.stats);
    assert!(v.stats.contains("port 0x0510"), "{}", v.stats);
    eprintln!("outer boot: {:.1} s", run.elapsed.as_secs_f64());
}

/// Lines of the kernel log that start with `prefix` (after the timestamp).
fn log_lines<'a>(d: &'a GuestDump, prefix: &str) -> BTreeSet<&'a str> {
    d.dmesg
        .iter()
        .map(|l| match l.split_once("] ") {
            Some((stamp, rest)) if stamp.starts_with('[') => rest,
            _ => l.as_str(),
        })
        .filter(|l| l.starts_with(prefix))
        .collect()
}

/// The table signatures of Linux's `ACPI: SIG 0x...` lines.
fn signatures(lines: &BTreeSet<&str>) -> Vec<String> {
    let mut s: Vec<String> = lines
        .iter()
        .filter_map(|l| {
            let rest = l.strip_prefix("ACPI: ")?;
            let (sig, addr) = rest.split_once(' ')?;
            (sig.len() == 4 && addr.starts_with("0x")).then(|| sig.to_string())
        })
        .collect();
    s.sort();
    s.dedup();
    s
}

/// Prints what only one side has.
fn differences(what: &str, q: &BTreeSet<&str>, v: &BTreeSet<&str>) {
    eprintln!("{what}: only under QEMU microvm:");
    for l in q.difference(v) {
        eprintln!("  {l}");
    }
    eprintln!("{what}: only under fw-cfg-vmm:");
    for l in v.difference(q) {
        eprintln!("  {l}");
    }
}

fn check_linux(run: &LabRun, g: &bios::LinuxBiosGuests, firmware: &str) {
    let show = |n: &GuestName| {
        let gr = &run.guests[n];
        let err = String::from_utf8_lossy(&gr.stderr);
        let tail: Vec<&str> = err.lines().rev().take(40).collect();
        format!(
            "{n}: status {}\n{}",
            gr.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    };
    let q = linux::dump(run, &g.qemu).unwrap_or_else(|e| panic!("{e}\n{}", show(&g.qemu)));
    let v = linux::dump(run, &g.vmm).unwrap_or_else(|e| panic!("{e}\n{}", show(&g.vmm)));
    assert_eq!(q.user.as_deref(), Some(USER_LINE), "{firmware}, QEMU");
    assert_eq!(v.user.as_deref(), Some(USER_LINE), "{firmware}, fw-cfg-vmm");
    let what = |w: &str| format!("{firmware}: {w}");
    // The firmware's e820 map as Linux received it: the same.
    let (qe, ve) = (log_lines(&q, "BIOS-e820:"), log_lines(&v, "BIOS-e820:"));
    assert!(!ve.is_empty(), "{firmware}: no e820 map under ours");
    assert_eq!(qe, ve, "{firmware}: Linux's e820 map");
    // The same tables, installed by the firmware through the
    // table-loader; their contents differ (QEMU's own DSDT, FADT and MADT
    // against the VMM's), so do their sizes and OEM fields.
    let (qa, va) = (log_lines(&q, "ACPI: "), log_lines(&v, "ACPI: "));
    assert_eq!(signatures(&qa), signatures(&va), "{firmware}: ACPI tables");
    assert_eq!(signatures(&va), ["APIC", "DSDT", "FACP", "RSDP", "XSDT"]);
    differences(&what("ACPI lines"), &qa, &va);
    // /sys/firmware/qemu_fw_cfg: the shared items, byte for byte.
    assert_eq!(q.insmod_rc, Some(0));
    assert_eq!(v.insmod_rc, Some(0), "{firmware}: qemu_fw_cfg under ours");
    let by_name =
        |d: &GuestDump| -> std::collections::BTreeMap<String, (u64, Option<(u64, String)>)> {
            d.sysfs
                .values()
                .map(|e| (e.name.clone(), (e.size, e.md5.clone())))
                .collect()
        };
    let (qs, vs) = (by_name(&q), by_name(&v));
    for (name, _) in items() {
        assert_eq!(qs.get(&name), vs.get(&name), "{firmware}: sysfs {name}");
        assert!(qs.contains_key(&name), "{firmware}: {name} under QEMU");
    }
    let qn: BTreeSet<&str> = qs.keys().map(String::as_str).collect();
    let vn: BTreeSet<&str> = vs.keys().map(String::as_str).collect();
    differences(&what("fw_cfg files in sysfs"), &qn, &vn);
    // QEMU microvm's device tree, which neither firmware reads, is the
    // only file ours lacks; ours has none QEMU lacks.
    let missing: Vec<&&str> = qn.difference(&vn).collect();
    assert_eq!(missing, [&"etc/fdt"], "{firmware}: files only under QEMU");
    assert!(vn.is_subset(&qn), "{firmware}: files only under ours");
    assert_eq!(q.abi_rc, Some(0));
    assert_eq!(q.abi, v.abi, "{firmware}: fw-cfg-abi-check's output");
    let phase = |n| ok(bios::firmware_phase(run, n));
    let (qt, vt) = (phase(&g.qemu), phase(&g.vmm));
    eprintln!(
        "{firmware}: VMM start to Linux's start (wall time less the kernel's uptime at \
         power-off): QEMU {qt:?}, fw-cfg-vmm {vt:?}"
    );
    let err = String::from_utf8_lossy(&run.guests[&g.vmm].stderr).into_owned();
    let stats = FirmwareLog::parse(&err).stats;
    eprintln!("{firmware} under fw-cfg-vmm, exits:\n{stats}");
}
