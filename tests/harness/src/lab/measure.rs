// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Measured on real SVM: the PVH test firmware in benchmark mode and the
//! distribution kernel, each under the static `fw-cfg-vmm` and under QEMU
//! microvm (`-accel kvm`) in one outer boot, the two VMMs alternated run
//! by run ([`add`], [`collect`]).
//!
//! - The firmware: `bench`'s `main` workload ([`Workload::main`], same
//!   ELF, command line and files under both), so [`bench::rows`] gives
//!   the same per-phase table as on this machine: exits from
//!   `fw-cfg-vmm`'s run report (`--stats-json`) and from a traced QEMU
//!   run ([`bench::exits_from_trace`]), guest cycles from the untraced
//!   runs (medians).
//! - Linux: the kernel with [`INIT`] as `/init`, which prints a stamp line
//!   on reaching `/init` and around `fw-cfg-probe --json`, and marks the
//!   probe's exits as phase [`PROBE_PHASE`] (a one-byte write to the
//!   phase port through `/dev/port`). Every guest runs under [`STAMPER`],
//!   which writes, for each stamp line, the time since the VMM was
//!   started ([`Stamps`]). Both VMMs serve the same
//!   `etc/phys-bits-valid`. Exits: `fw-cfg-vmm`'s counters and a traced
//!   QEMU run ([`linux_exits_from_trace`]): all of them, those that touch
//!   fw_cfg outside the probe (boot), and the probe's.
//!
//! Times are wall times inside the outer guest, which QEMU's TCG
//! emulates: they compare only between the two VMMs of one run, as
//! ratios. Exits are exact.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fw_cfg_protocol::probe::ProbeReport;
use fw_cfg_protocol::{DecisionLine, Decisions};
use serde::Serialize;

use super::build::LabTools;
use super::firmware::{FIRMWARE_DONE_STATUS, FIRMWARE_FILE, VMM_FILE, report_file};
use super::{GuestName, Lab, LabError, LabPeers, LabRun, TAIL_LINES, TextTail, inner_path};
use crate::bench::{self, BootResult, Row, Workload};
use crate::firmware::FirmwareReport;
use crate::phase::MARK_PORT;
use crate::vmm::fw_cfg::PhysBitsSetup;
use crate::vmm::stats::ExitStats;

/// Prefix of the lines [`STAMPER`] time-stamps.
pub const STAMP: &str = "@@FWCFG-T ";
/// Prefix of `/init`'s line with the probe's exit code and JSON report.
pub const PROBE_LINE: &str = "@@FWCFG-PROBE ";
/// The phase the probe's exits are counted in.
pub const PROBE_PHASE: u32 = 1;
/// The Linux guests' command line.
pub const CMDLINE: &str = "console=ttyS0 loglevel=4 panic=-1";
/// Wall-time limit of one guest.
pub const GUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(240);
/// The fw_cfg ports (selector, data, DMA address).
pub const FW_CFG_PORTS: std::ops::RangeInclusive<u16> = 0x510..=0x51b;

/// The Linux guests' `/init` (`@PORT@`: the phase port, decimal).
pub const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev
echo "@@FWCFG-T init"
mark() { printf "$1" | dd of=/dev/port bs=1 seek=@PORT@ count=1 2>/dev/null; }
echo "@@FWCFG-T probe-start"
mark '\001'
/bin/fw-cfg-probe --json --sysfs-root /nonexistent --max-file-bytes 0 > /tmp/probe.json
rc=$?
mark '\000'
echo "@@FWCFG-T probe-end"
printf '@@FWCFG-PROBE %s ' "$rc"; cat /tmp/probe.json; echo
poweroff -f
"#;

/// Runs a guest (`sh -c STAMPER sh STAMPS ARGV...`): its console passes
/// through unchanged, and each console line starting with [`STAMP`]
/// appends `NAME NANOSECONDS` (since the guest's start) to `STAMPS`; the
/// status is the guest's.
pub const STAMPER: &str = r#"t=$1; shift
s=$(date +%s%N)
cr=$(printf '\r')
{ "$@"; echo $? > "$t.rc"; } | while IFS= read -r l; do
  printf '%s\n' "$l"
  l=${l%"$cr"}
  case $l in "@@FWCFG-T "*) echo "${l#"@@FWCFG-T "} $(( $(date +%s%N) - s ))" >> "$t";; esac
done
exit "$(cat "$t.rc")"
"#;

/// [`INIT`] for [`MARK_PORT`].
pub fn init_script() -> String {
    INIT.replace("@PORT@", &MARK_PORT.to_string())
}

/// The two VMMs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LabVmm {
    /// The static `fw-cfg-vmm`.
    FwCfgVmm,
    /// QEMU `-M microvm -accel kvm`.
    QemuMicrovm,
}

impl LabVmm {
    /// Both, ours first.
    pub const BOTH: [LabVmm; 2] = [LabVmm::FwCfgVmm, LabVmm::QemuMicrovm];

    /// Name in tables.
    pub fn as_str(&self) -> &'static str {
        match self {
            LabVmm::FwCfgVmm => "fw-cfg-vmm",
            LabVmm::QemuMicrovm => "QEMU microvm",
        }
    }

    fn tag(&self) -> &'static str {
        match self {
            LabVmm::FwCfgVmm => "ours",
            LabVmm::QemuMicrovm => "qemu",
        }
    }
}

/// What one outer boot measures.
#[derive(Debug, Clone)]
pub struct MeasureSetup {
    /// Untraced runs per VMM (alternated), at least 1.
    pub repeat: usize,
    /// The inner host's MAXPHYADDR (the outer `phys-bits`).
    pub host_bits: u8,
    /// The firmware workload, if any.
    pub firmware: Option<Workload>,
    /// Whether to boot Linux.
    pub linux: bool,
    /// Whether QEMU also boots untraced, for its times (off: QEMU boots
    /// once, traced, for its exits; the times of ours then have no ratio).
    pub timed_qemu: bool,
}

impl MeasureSetup {
    /// The guests to run, in order: per repetition ours then (when timed)
    /// QEMU, then QEMU traced; as `(vmm, repetition, traced)`.
    fn runs(&self) -> Vec<(LabVmm, usize, bool)> {
        let mut v = Vec::new();
        for r in 0..self.repeat.max(1) {
            v.push((LabVmm::FwCfgVmm, r, false));
            if self.timed_qemu {
                v.push((LabVmm::QemuMicrovm, r, false));
            }
        }
        v.push((LabVmm::QemuMicrovm, 0, true));
        v
    }
}

/// One measured guest and where its results land.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measured {
    /// Which VMM.
    pub vmm: LabVmm,
    /// The guest.
    pub name: GuestName,
    /// Whether QEMU ran traced (for its exits; its times are not used).
    pub traced: bool,
    /// The work-folder file with the exits: `fw-cfg-vmm`'s run report or
    /// QEMU's trace (traced runs only).
    pub exits_file: Option<PathBuf>,
    /// The work-folder file of [`STAMPER`]'s stamps (Linux guests).
    pub stamps_file: Option<PathBuf>,
}

/// The guests [`add`] added.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The inner host's MAXPHYADDR.
    pub host_bits: u8,
    /// The firmware workload and its guests.
    pub firmware: Option<(Workload, Vec<Measured>)>,
    /// The Linux guests.
    pub linux: Vec<Measured>,
}

/// QEMU's trace options writing to work-folder file `file`.
fn trace_args(file: &Path, events: &[&str]) -> Vec<String> {
    let mut v = Vec::new();
    for e in events {
        v.extend(["-trace".to_string(), e.to_string()]);
    }
    v.extend(["-D".to_string(), inner_path(file)]);
    v
}

/// Files the firmware guests read, placed in the work folder once.
fn place_bench_files(
    lab: Lab,
    w: &Workload,
    host_bits: u8,
) -> Result<(Lab, Vec<String>, Vec<String>), LabError> {
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut place = |name: &str, data: &[u8]| {
        let work = format!("bench/{name}");
        let path = inner_path(&work);
        files.insert(work, data.to_vec());
        Ok::<String, std::convert::Infallible>(path)
    };
    let firmware = PathBuf::from(inner_path(FIRMWARE_FILE));
    let Ok(qemu) = bench::qemu_args_with(w, host_bits, &firmware, &mut place);
    let Ok(ours) = bench::file_options(w, "--fw-cfg", &mut place);
    let mut lab = lab;
    for (name, data) in files {
        lab = lab.file(name, data, false)?;
    }
    Ok((lab, qemu, ours))
}

/// Adds the firmware guests ([`MeasureSetup::runs`]).
fn add_firmware(
    mut lab: Lab,
    peers: &LabPeers,
    w: &Workload,
    setup: &MeasureSetup,
) -> Result<(Lab, Vec<Measured>), LabError> {
    let (l, qemu_args, ours_files) = place_bench_files(lab, w, setup.host_bits)?;
    lab = l;
    let mut guests = Vec::new();
    for (vmm, r, traced) in setup.runs() {
        let suffix = if traced {
            "traced".into()
        } else {
            r.to_string()
        };
        let name = GuestName::new(&format!("fw-{}-{suffix}", vmm.tag()))?;
        let exits_file = PathBuf::from(format!("bench/{name}.exits"));
        let argv: Vec<String> = match vmm {
            LabVmm::FwCfgVmm => {
                let mut v = vec![inner_path(VMM_FILE), "--kernel".into()];
                v.extend([
                    inner_path(FIRMWARE_FILE),
                    "--cmdline".into(),
                    bench::cmdline(),
                ]);
                v.extend(["--memory".into(), bench::MEMORY_MIB.to_string()]);
                v.extend(["--phase-port".into(), format!("{MARK_PORT:#x}")]);
                v.extend(["--stats-json".into(), inner_path(&exits_file)]);
                v.extend(ours_files.iter().cloned());
                v
            }
            LabVmm::QemuMicrovm => {
                let mut v = vec![peers.qemu.path.display().to_string()];
                v.extend(qemu_args.iter().cloned());
                if traced {
                    let events = ["kvm_run_exit", "memory_region_ops_write"];
                    v.extend(trace_args(&exits_file, &events));
                }
                v
            }
        };
        let has_exits = traced || vmm == LabVmm::FwCfgVmm;
        lab = lab.guest(name.as_str(), argv, GUEST_TIMEOUT)?;
        if has_exits {
            lab = lab.fetch(&exits_file)?;
        }
        guests.push(Measured {
            vmm,
            name,
            traced,
            exits_file: has_exits.then_some(exits_file),
            stamps_file: None,
        });
    }
    Ok((lab, guests))
}

/// The command line after the stamper for one measured Linux guest under
/// `vmm` (`traced`: QEMU with its exit trace into `exits_file`).
fn linux_vmm_args(
    peers: &LabPeers,
    vmm: LabVmm,
    traced: bool,
    kernel: &str,
    initrd: &str,
    exits_file: &Path,
) -> Vec<String> {
    let mut argv: Vec<String> = Vec::new();
    match vmm {
        LabVmm::FwCfgVmm => {
            argv.extend(super::linux::vmm_args(kernel, initrd));
            argv.extend([
                "--cmdline".into(),
                CMDLINE.into(),
                "--host-phys-bits".into(),
            ]);
            argv.extend(["--phase-port".into(), format!("{MARK_PORT:#x}")]);
            argv.extend(["--stats-json".into(), inner_path(exits_file)]);
        }
        LabVmm::QemuMicrovm => {
            argv.push(peers.qemu.path.display().to_string());
            argv.extend(super::linux::qemu_args(kernel, initrd, CMDLINE));
            argv.push("-fw_cfg".into());
            argv.push(format!(
                "name={},file={}",
                fw_cfg_device::abi::PHYS_BITS_FILE_NAME,
                inner_path("measure/phys-bits-valid")
            ));
            if traced {
                let events = [
                    "kvm_run_exit",
                    "memory_region_ops_read",
                    "memory_region_ops_write",
                ];
                argv.extend(trace_args(exits_file, &events));
            }
        }
    }
    argv
}

/// Adds the Linux guests ([`MeasureSetup::runs`]).
fn add_linux(
    mut lab: Lab,
    peers: &LabPeers,
    tools: &LabTools,
    setup: &MeasureSetup,
) -> Result<(Lab, Vec<Measured>), LabError> {
    let probe = tools.probe.as_ref().ok_or(LabError::NoProbe)?;
    let initrd = peers
        .linux
        .initramfs(probe, &init_script())
        .map_err(|source| LabError::Io {
            action: "build the measured Linux guests' initramfs",
            path: probe.clone(),
            source,
        })?;
    let file = PhysBitsSetup {
        host_phys_bits: true,
        ..PhysBitsSetup::default()
    }
    .config(setup.host_bits)
    .file_bytes();
    lab = lab
        .copy(VMM_FILE, &tools.vmm)?
        .file("measure/initrd.cpio", initrd, false)?
        .file("measure/phys-bits-valid", file.to_vec(), false)?;
    let kernel = peers.linux.kernel.display().to_string();
    let initrd = inner_path("measure/initrd.cpio");
    let mut guests = Vec::new();
    for (vmm, r, traced) in setup.runs() {
        let suffix = if traced {
            "traced".into()
        } else {
            r.to_string()
        };
        let name = GuestName::new(&format!("linux-{}-{suffix}", vmm.tag()))?;
        let exits_file = PathBuf::from(format!("measure/{name}.exits"));
        let stamps_file = PathBuf::from(format!("measure/{name}.stamps"));
        let mut argv: Vec<String> = ["/bin/sh", "-c", STAMPER, "sh"].map(String::from).to_vec();
        argv.push(inner_path(&stamps_file));
        argv.extend(linux_vmm_args(
            peers,
            vmm,
            traced,
            &kernel,
            &initrd,
            &exits_file,
        ));
        let has_exits = traced || vmm == LabVmm::FwCfgVmm;
        lab = lab
            .guest(name.as_str(), argv, GUEST_TIMEOUT)?
            .fetch(&stamps_file)?;
        if has_exits {
            lab = lab.fetch(&exits_file)?;
        }
        guests.push(Measured {
            vmm,
            name,
            traced,
            exits_file: has_exits.then_some(exits_file),
            stamps_file: Some(stamps_file),
        });
    }
    Ok((lab, guests))
}

/// Adds what `setup` measures to `lab` (the tools, the files, the guests).
pub fn add(
    lab: Lab,
    peers: &LabPeers,
    tools: &LabTools,
    setup: &MeasureSetup,
) -> Result<(Lab, Plan), LabError> {
    let mut lab = lab
        .copy(VMM_FILE, &tools.vmm)?
        .copy(FIRMWARE_FILE, &tools.firmware)?;
    let firmware = match &setup.firmware {
        Some(w) => {
            let (l, g) = add_firmware(lab, peers, w, setup)?;
            lab = l;
            Some((w.clone(), g))
        }
        None => None,
    };
    let linux = if setup.linux {
        let (l, g) = add_linux(lab, peers, tools, setup)?;
        lab = l;
        g
    } else {
        Vec::new()
    };
    Ok((
        lab,
        Plan {
            host_bits: setup.host_bits,
            firmware,
            linux,
        },
    ))
}

/// Why a measured guest's results are unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MeasureError {
    /// The lab or a guest failed.
    #[error(transparent)]
    Lab(#[from] LabError),
    /// A firmware read returned wrong data.
    #[error(transparent)]
    Bench(#[from] bench::Error),
    /// QEMU, the kernel, a module or busybox is missing.
    #[error("{0}")]
    Missing(crate::peers::Missing),
}

/// Finds the peers, builds the tools (with the probe when Linux is
/// measured), boots the outer guest once with `setup`'s guests (limit
/// `timeout`) and collects the results.
pub fn run(
    setup: &MeasureSetup,
    timeout: std::time::Duration,
) -> Result<Measurement, MeasureError> {
    let peers = LabPeers::find().map_err(MeasureError::Missing)?;
    let tools = LabTools::build(setup.linux).map_err(LabError::from)?;
    let lab = Lab::new().phys_bits(setup.host_bits).timeout(timeout);
    let (lab, plan) = add(lab, &peers, &tools, setup)?;
    let run = lab.run(&peers)?;
    collect(&run, &plan)
}

/// A generous outer-boot limit for `setup`: the boot, and every guest at
/// its usual time several times over.
pub fn timeout_for(setup: &MeasureSetup) -> std::time::Duration {
    let guests = setup.runs().len() as u64;
    let per = 60 * u64::from(setup.firmware.is_some()) + 180 * u64::from(setup.linux);
    std::time::Duration::from_secs(180 + guests * per)
}

/// The exits of a firmware guest per phase.
fn firmware_exits(run: &LabRun, g: &Measured) -> Result<BTreeMap<u32, u64>, LabError> {
    let Some(file) = &g.exits_file else {
        return Ok(BTreeMap::new());
    };
    match g.vmm {
        LabVmm::FwCfgVmm => {
            let stats = report_file(run, &g.name, file)?.stats;
            Ok(stats
                .per_phase
                .iter()
                .map(|(&p, c)| (p, c.total()))
                .collect())
        }
        LabVmm::QemuMicrovm => Ok(bench::exits_from_trace(&fetched_text(run, &g.name, file)?)),
    }
}

/// Work-folder file `file` the lab fetched for guest `guest`, as text.
fn fetched_text(run: &LabRun, guest: &GuestName, file: &Path) -> Result<String, LabError> {
    match run.files.get(file) {
        Some(bytes) => Ok(String::from_utf8_lossy(bytes).into_owned()),
        None => Err(LabError::Io {
            action: "read the fetched",
            path: file.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("guest {guest} left no such file"),
            ),
        }),
    }
}

/// One firmware guest's boot, checked like `bench`'s.
fn firmware_boot(run: &LabRun, w: &Workload, g: &Measured) -> Result<BootResult, MeasureError> {
    let guest = run.guest(&g.name)?;
    let report = FirmwareReport::parse(&guest.stdout);
    if !report.done || guest.status != FIRMWARE_DONE_STATUS {
        return Err(LabError::Firmware {
            guest: g.name.clone(),
            status: guest.status,
            stdout: TextTail::last(&String::from_utf8_lossy(&guest.stdout), TAIL_LINES),
            stderr: TextTail::last(&String::from_utf8_lossy(&guest.stderr), TAIL_LINES),
        }
        .into());
    }
    let who = match g.vmm {
        LabVmm::FwCfgVmm => "fw-cfg-vmm (lab)",
        LabVmm::QemuMicrovm => "QEMU microvm (lab)",
    };
    bench::check_reads(who, w, &report.bench)?;
    Ok(BootResult {
        lines: report.bench,
        exits: firmware_exits(run, g)?,
        wall_ms: guest.elapsed.as_secs_f64() * 1e3,
    })
}

/// The exits of a Linux guest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LinuxExits {
    /// Every exit to the VMM (phase markers not counted).
    pub total: u64,
    /// Exits that touch fw_cfg outside the probe's phase: the boot (under
    /// QEMU its firmware loads the kernel through fw_cfg) and power-off.
    pub boot_fw_cfg: u64,
    /// Exits in the probe's phase.
    pub probe: u64,
}

impl LinuxExits {
    /// From `fw-cfg-vmm`'s counters: the fw_cfg ports' exits minus the
    /// probe phase's port I/O (the probe only touches fw_cfg).
    pub fn from_stats(stats: &ExitStats) -> Self {
        let probe = stats.phase(PROBE_PHASE);
        let fw_cfg: u64 = FW_CFG_PORTS
            .filter_map(|p| stats.per_port.get(&p))
            .map(|c| c.total())
            .sum();
        LinuxExits {
            total: stats.all.total(),
            boot_fw_cfg: fw_cfg.saturating_sub(probe.pio()),
            probe: probe.total(),
        }
    }
}

/// Exits of a traced QEMU run (`kvm_run_exit`, `memory_region_ops_read`
/// and `_write`): each `KVM_RUN` return is one exit, which touches fw_cfg
/// when an access it dispatches is to a `fwcfg` region; a write to the
/// phase port switches the phase, and its own exit is not counted.
pub fn linux_exits_from_trace(trace: &str) -> LinuxExits {
    let mut e = LinuxExits::default();
    let (mut phase, mut touched) = (0u32, false);
    let port = u64::from(MARK_PORT);
    for line in trace.lines() {
        if line.starts_with("kvm_run_exit ") {
            e.total += 1;
            touched = false;
            if phase == PROBE_PHASE {
                e.probe += 1;
            }
            continue;
        }
        let access = line.starts_with("memory_region_ops_read ")
            || line.starts_with("memory_region_ops_write ");
        if !access {
            continue;
        }
        if line.contains("name 'io'") && bench::trace_field(line, "addr") == Some(port) {
            e.total = e.total.saturating_sub(1);
            if phase == PROBE_PHASE {
                e.probe = e.probe.saturating_sub(1);
            }
            phase = bench::trace_field(line, "value")
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(0);
        } else if line.contains("name 'fwcfg") && !touched {
            touched = true;
            if phase != PROBE_PHASE {
                e.boot_fw_cfg += 1;
            }
        }
    }
    e
}

/// [`STAMPER`]'s stamps: nanoseconds since the guest's start, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stamps(pub BTreeMap<String, u64>);

impl Stamps {
    /// Parses `NAME NANOSECONDS` lines (the first stamp of a name counts).
    pub fn parse(text: &str) -> Self {
        let mut m = BTreeMap::new();
        for line in text.lines() {
            let mut w = line.split_whitespace();
            if let (Some(name), Some(Ok(ns)), None) = (w.next(), w.next().map(str::parse), w.next())
            {
                m.entry(name.to_string()).or_insert(ns);
            }
        }
        Stamps(m)
    }

    /// Milliseconds from `from` (or the start, with `None`) to `to`.
    pub fn ms(&self, from: Option<&str>, to: &str) -> Option<f64> {
        let start = match from {
            Some(f) => *self.0.get(f)?,
            None => 0,
        };
        let end = *self.0.get(to)?;
        Some(end.checked_sub(start)? as f64 / 1e6)
    }
}

/// One Linux guest's results.
#[derive(Debug, Clone, Serialize)]
pub struct LinuxRun {
    /// Which VMM.
    pub vmm: LabVmm,
    /// Whether QEMU ran traced.
    pub traced: bool,
    /// Exit status (0: `poweroff -f` ended it).
    pub status: i32,
    /// Wall time, VMM start to exit.
    pub wall_ms: f64,
    /// VMM start to `/init`'s first line.
    pub to_init_ms: Option<f64>,
    /// The probe's stamps, start to end (two one-byte `/dev/port`
    /// writes included).
    pub probe_ms: Option<f64>,
    /// The probe's exit code.
    pub probe_rc: Option<i32>,
    /// The probe's report.
    pub probe: Option<ProbeReport>,
    /// Exits (ours and traced QEMU runs).
    pub exits: Option<LinuxExits>,
}

/// The probe line of a console: exit code and report.
fn probe_line(console: &str) -> Option<(i32, Option<ProbeReport>)> {
    let line = console
        .lines()
        .find_map(|l| l.trim_end().strip_prefix(PROBE_LINE))?;
    let (rc, json) = line.split_once(' ')?;
    Some((rc.parse().ok()?, serde_json::from_str(json).ok()))
}

fn linux_run(run: &LabRun, g: &Measured) -> Result<LinuxRun, LabError> {
    let guest = run.guest(&g.name)?;
    let console = String::from_utf8_lossy(&guest.stdout);
    let Some((rc, probe)) = probe_line(&console) else {
        return Err(LabError::Linux {
            guest: g.name.clone(),
            status: guest.status,
            stdout: TextTail::last(&console, TAIL_LINES),
            stderr: TextTail::last(&String::from_utf8_lossy(&guest.stderr), TAIL_LINES),
        });
    };
    let stamps = match &g.stamps_file {
        Some(f) => Stamps::parse(&fetched_text(run, &g.name, f)?),
        None => Stamps::default(),
    };
    let exits = match (&g.exits_file, g.vmm) {
        (None, _) => None,
        (Some(f), LabVmm::FwCfgVmm) => {
            Some(LinuxExits::from_stats(&report_file(run, &g.name, f)?.stats))
        }
        (Some(f), LabVmm::QemuMicrovm) => {
            Some(linux_exits_from_trace(&fetched_text(run, &g.name, f)?))
        }
    };
    Ok(LinuxRun {
        vmm: g.vmm,
        traced: g.traced,
        status: guest.status,
        wall_ms: guest.elapsed.as_secs_f64() * 1e3,
        to_init_ms: stamps.ms(None, "init"),
        probe_ms: stamps.ms(Some("probe-start"), "probe-end"),
        probe_rc: Some(rc),
        probe,
        exits,
    })
}

/// The median of `v` (the lower middle for an even count).
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    v.get(v.len().saturating_sub(1) / 2).copied()
}

/// One VMM's Linux figures.
#[derive(Debug, Clone, Serialize)]
pub struct LinuxSummary {
    /// Which VMM.
    pub vmm: LabVmm,
    /// Untraced boots.
    pub boots: usize,
    /// Median VMM start to `/init`.
    pub to_init_ms: Option<f64>,
    /// [`LinuxSummary::to_init_ms`] over QEMU's.
    pub to_init_ratio: Option<f64>,
    /// Median probe time.
    pub probe_ms: Option<f64>,
    /// [`LinuxSummary::probe_ms`] over QEMU's.
    pub probe_ratio: Option<f64>,
    /// Exits (ours: every boot has them; QEMU: the traced boot).
    pub exits: Option<LinuxExits>,
    /// The probe's decisions (first boot).
    pub decisions: Option<Decisions>,
}

fn summarize(runs: &[LinuxRun]) -> Vec<LinuxSummary> {
    let mut out: Vec<LinuxSummary> = LabVmm::BOTH
        .iter()
        .map(|&vmm| {
            let timed: Vec<&LinuxRun> = runs.iter().filter(|r| r.vmm == vmm && !r.traced).collect();
            let med = |f: fn(&LinuxRun) -> Option<f64>| {
                median(timed.iter().filter_map(|r| f(r)).collect())
            };
            LinuxSummary {
                vmm,
                boots: timed.len(),
                to_init_ms: med(|r| r.to_init_ms),
                to_init_ratio: None,
                probe_ms: med(|r| r.probe_ms),
                probe_ratio: None,
                exits: runs.iter().filter(|r| r.vmm == vmm).find_map(|r| r.exits),
                decisions: timed
                    .first()
                    .and_then(|r| r.probe.as_ref())
                    .map(|p| p.decisions),
            }
        })
        .collect();
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    let (q_init, q_probe) = (out[1].to_init_ms, out[1].probe_ms);
    for s in &mut out {
        s.to_init_ratio = ratio(s.to_init_ms, q_init);
        s.probe_ratio = ratio(s.probe_ms, q_probe);
    }
    out
}

/// What one measuring boot gave.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    /// The inner host's MAXPHYADDR.
    pub host_bits: u8,
    /// `bench`'s rows for the firmware workload (exits: ours and traced
    /// QEMU; cycles: medians of the untraced boots).
    pub firmware_rows: Vec<Row>,
    /// Every Linux guest.
    pub linux_runs: Vec<LinuxRun>,
    /// Per VMM.
    pub linux: Vec<LinuxSummary>,
}

/// Reads the results of `plan` out of `run`.
pub fn collect(run: &LabRun, plan: &Plan) -> Result<Measurement, MeasureError> {
    let mut firmware_rows = Vec::new();
    if let Some((w, guests)) = &plan.firmware {
        let boots = |vmm: LabVmm, traced: bool| -> Result<Vec<BootResult>, MeasureError> {
            guests
                .iter()
                .filter(|g| g.vmm == vmm && g.traced == traced)
                .map(|g| firmware_boot(run, w, g))
                .collect()
        };
        let ours = bench::merge_median(boots(LabVmm::FwCfgVmm, false)?).map(|(b, _)| b);
        let qemu = bench::merge_median(boots(LabVmm::QemuMicrovm, false)?).map(|(b, _)| b);
        let traced = boots(LabVmm::QemuMicrovm, true)?.into_iter().next();
        if let Some(ours) = &ours {
            firmware_rows = bench::rows(w, ours, traced.as_ref(), qemu.as_ref());
        }
    }
    let linux_runs = plan
        .linux
        .iter()
        .map(|g| linux_run(run, g))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Measurement {
        host_bits: plan.host_bits,
        firmware_rows,
        linux: summarize(&linux_runs),
        linux_runs,
    })
}

fn decision_text(d: &DecisionLine) -> String {
    let mark = if d.conflicts.is_empty() { "" } else { "!" };
    format!("{} {}{mark}", d.phys_bits, crate::table::by(d.decided_by))
}

fn cell(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"))
}

/// The Linux table, within 100 columns: per VMM, median time to `/init`
/// and its ratio to QEMU, the fw_cfg exits of the boot, the probe's exits,
/// time and ratio, and the probe's strict / heuristic / combined decision.
pub fn render_linux(summaries: &[LinuxSummary]) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<13} {:>5} {:>9} {:>6} {:>8} {:>8} {:>9} {:>6}  probe decision s/h/c",
        "Linux guest", "boots", "to /init", "ratio", "boot fwc", "probe ex", "probe", "ratio",
    );
    for l in summaries {
        let exits =
            |f: fn(&LinuxExits) -> u64| l.exits.as_ref().map_or("-".into(), |e| f(e).to_string());
        let decision = l.decisions.as_ref().map_or("-".into(), |d| {
            [&d.strict, &d.heuristic, &d.combined]
                .map(decision_text)
                .join(" ")
        });
        let _ = writeln!(
            s,
            "{:<13} {:>5} {:>9} {:>6} {:>8} {:>8} {:>9} {:>6}  {}",
            l.vmm.as_str(),
            l.boots,
            cell(l.to_init_ms, 0) + if l.to_init_ms.is_some() { " ms" } else { "" },
            cell(l.to_init_ratio, 2),
            exits(|e| e.boot_fw_cfg),
            exits(|e| e.probe),
            cell(l.probe_ms, 1) + if l.probe_ms.is_some() { " ms" } else { "" },
            cell(l.probe_ratio, 2),
            decision
        );
    }
    s.push_str(
        "to /init: VMM start to /init's first line (median); boot fwc: exits touching fw_cfg\n\
         outside the probe; probe ex/probe: fw-cfg-probe --json's exits and wall time; ratio:\n\
         over QEMU microvm's, same outer boot. QEMU's exits come from a traced boot.\n",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_and_medians() {
        let s =
            Stamps::parse("init 2000000\nprobe-start 3000000\nprobe-end 4500000\ninit 9\nbad\n");
        assert_eq!(s.ms(None, "init"), Some(2.0));
        assert_eq!(s.ms(Some("probe-start"), "probe-end"), Some(1.5));
        assert_eq!(s.ms(Some("probe-end"), "probe-start"), None);
        assert_eq!(s.ms(None, "none"), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0]), Some(1.0));
        assert_eq!(median(Vec::new()), None);
    }

    #[test]
    fn the_stamper_stamps_marked_lines_and_keeps_the_status() {
        let dir = std::env::temp_dir().join(format!("fw-cfg-measure-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let stamps = dir.join("s");
        let out = std::process::Command::new("/bin/sh")
            .args(["-c", STAMPER, "sh"])
            .arg(&stamps)
            .args([
                "/bin/sh",
                "-c",
                "printf 'a\\r\\n@@FWCFG-T init\\r\\nb\\n'; exit 3",
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"a\r\n@@FWCFG-T init\r\nb\n");
        let s = Stamps::parse(&std::fs::read_to_string(&stamps).unwrap());
        assert_eq!(s.0.keys().collect::<Vec<_>>(), ["init"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn trace_exits_split_boot_and_probe() {
        let trace = "\
kvm_run_exit cpu_index 0, reason 2
memory_region_ops_write cpu 0 mr 0x1 addr 0x0 value 0x19 size 2 name 'fwcfg'
kvm_run_exit cpu_index 0, reason 2
memory_region_ops_read cpu 0 mr 0x1 addr 0x1 value 0x51 size 1 name 'fwcfg'
memory_region_ops_read cpu 0 mr 0x1 addr 0x1 value 0x45 size 1 name 'fwcfg'
kvm_run_exit cpu_index 0, reason 2
memory_region_ops_write cpu 0 mr 0x2 addr 0x3f8 value 0x41 size 1 name 'serial'
kvm_run_exit cpu_index 0, reason 2
memory_region_ops_write cpu 0 mr 0x3 addr 0x600 value 0x1 size 1 name 'io'
kvm_run_exit cpu_index 0, reason 2
memory_region_ops_read cpu 0 mr 0x1 addr 0x1 value 0x51 size 1 name 'fwcfg'
kvm_run_exit cpu_index 0, reason 2
memory_region_ops_write cpu 0 mr 0x4 addr 0x4 value 0x1000 size 4 name 'fwcfg.dma'
kvm_run_exit cpu_index 0, reason 2
memory_region_ops_write cpu 0 mr 0x3 addr 0x600 value 0x0 size 1 name 'io'
kvm_run_exit cpu_index 0, reason 2
memory_region_ops_write cpu 0 mr 0x1 addr 0x0 value 0x0 size 2 name 'fwcfg'
";
        let e = linux_exits_from_trace(trace);
        assert_eq!(
            e,
            LinuxExits {
                total: 6,
                boot_fw_cfg: 3,
                probe: 2
            }
        );
    }

    #[test]
    fn our_counters_give_the_same_split() {
        use crate::vmm::stats::{ExitKind, ExitTarget};
        let mut s = ExitStats::default();
        let d = std::time::Duration::ZERO;
        s.record(ExitKind::IoOut, ExitTarget::Port(0x3f8), 1, d, 0);
        s.record(ExitKind::IoIn, ExitTarget::Port(0x511), 1, d, PROBE_PHASE);
        s.record(ExitKind::IoOut, ExitTarget::Port(0x518), 4, d, PROBE_PHASE);
        s.record(ExitKind::IoOut, ExitTarget::Port(0x510), 2, d, 0);
        let e = LinuxExits::from_stats(&s);
        assert_eq!(
            e,
            LinuxExits {
                total: 4,
                boot_fw_cfg: 1,
                probe: 2
            }
        );
    }

    #[test]
    fn the_linux_table_fits_100_columns() {
        let runs = vec![
            LinuxRun {
                vmm: LabVmm::FwCfgVmm,
                traced: false,
                status: 0,
                wall_ms: 9000.0,
                to_init_ms: Some(1000.0),
                probe_ms: Some(20.0),
                probe_rc: Some(0),
                probe: None,
                exits: Some(LinuxExits {
                    total: 5000,
                    boot_fw_cfg: 0,
                    probe: 120,
                }),
            },
            LinuxRun {
                vmm: LabVmm::QemuMicrovm,
                traced: false,
                status: 0,
                wall_ms: 12000.0,
                to_init_ms: Some(4000.0),
                probe_ms: Some(25.0),
                probe_rc: Some(0),
                probe: None,
                exits: None,
            },
        ];
        let mut s = summarize(&runs);
        // The widest decisions: conflicts everywhere.
        let line = br#"{"event":"result","phase":2,"channel":"cpuid","transport":"cpuid","cpuid":{"hypervisor_present":true,"kvm_base":1073741824,"kvm_max_leaf":1073741825,"kvm_features_edx":0,"hint":"clear","max_ext_leaf":2147483656,"has_address_sizes":true,"address_sizes_eax":12336,"phys_bits":48,"guest_phys_bits":0,"vendor":"amd","ext_vendor":"amd","gb_pages":false,"la57":false}}"#;
        let report = FirmwareReport::parse(line);
        let cpuid = &report.results[&fw_cfg_protocol::Transport::Cpuid];
        let mut d = super::super::matrix::model_decisions(cpuid, cpuid).unwrap();
        for l in [&mut d.strict, &mut d.heuristic, &mut d.combined] {
            l.phys_bits = 52;
            l.decided_by = fw_cfg_protocol::DecidedBy::ConservativeDefault;
        }
        for l in [&mut d.strict, &mut d.heuristic, &mut d.combined] {
            l.conflicts
                .0
                .insert(fw_cfg_guest::policy::Conflict::HintSetButFileInvalid);
        }
        s[1].decisions = Some(d);
        assert_eq!(s[0].to_init_ratio, Some(0.25));
        assert_eq!(s[1].to_init_ratio, Some(1.0));
        assert_eq!(s[0].probe_ratio, Some(0.8));
        let text = render_linux(&s);
        for line in text.lines() {
            assert!(line.chars().count() <= 100, "{line}");
        }
        assert!(text.contains("fw-cfg-vmm"), "{text}");
        assert!(init_script().contains("seek=1536 count=1"));
    }
}
