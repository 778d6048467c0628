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
//! Without QEMU, the kernel, its modules, busybox or the ROM these tests
//! fail, unless `FW_CFG_ALLOW_SKIP=1` is set.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use fw_cfg_tests::lab::bios::{self, FirmwareLog, SEABIOS_MICROVM};
use fw_cfg_tests::lab::build::LabTools;
use fw_cfg_tests::lab::{Lab, LabError, LabPeers};
use fw_cfg_tests::peers::{Missing, require};

/// Limit of the outer boot (about 10 s of TCG plus two 12 s guests).
const OUTER_TIMEOUT: Duration = Duration::from_secs(240);

/// What SeaBIOS logs under both VMMs on the way to its boot menu.
const MILESTONES: &[&str] = &[
    "SeaBIOS (version",
    "Running on KVM",
    "Found QEMU fw_cfg",
    "QEMU fw_cfg DMA interface supported",
    "Relocating init from",
    "Detected non-PCI system",
    "Found 1 cpu(s) max supported 1 cpu(s)",
    "e820 map has",
    "enter handle_19:",
];

fn ok<T>(r: Result<T, LabError>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn rom() -> Result<(), Missing> {
    if Path::new(SEABIOS_MICROVM).is_file() {
        Ok(())
    } else {
        Err(Missing::new(SEABIOS_MICROVM, "apt-get install seabios"))
    }
}

fn set(log: &FirmwareLog) -> BTreeSet<&str> {
    log.lines.iter().map(String::as_str).collect()
}

#[test]
fn seabios_finds_our_fw_cfg_as_it_finds_qemus() {
    let Some(peers) = require(LabPeers::find()) else {
        return;
    };
    if require(rom()).is_none() {
        return;
    }
    let tools = LabTools::build(false).unwrap_or_else(|e| panic!("{e}"));
    let lab = Lab::new().timeout(OUTER_TIMEOUT);
    let (lab, g) = ok(bios::add(
        lab,
        "seabios",
        SEABIOS_MICROVM,
        &peers.qemu,
        &tools,
    ));
    let run = ok(lab.run(&peers));
    let q = ok(bios::log(&run, &g.qemu, false));
    let v = ok(bios::log(&run, &g.vmm, true));
    for m in MILESTONES {
        assert!(q.has(m), "QEMU: no {m:?}:\n{}", q.lines.join("\n"));
        assert!(v.has(m), "fw-cfg-vmm: no {m:?}:\n{}", v.lines.join("\n"));
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
