// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The PVH test firmware in the lab: one [`PeerConfig`] as an inner guest
//! under QEMU microvm (`-accel kvm`, the arguments of
//! [`qemu_args`]) and
//! under the static `fw-cfg-vmm` ([`vmm_args`], the same configuration in
//! its flags), in one outer boot.
//!
//! Both VMMs get the same files: the bulk file, and for configurations
//! that have one, `etc/phys-bits-valid` with the bytes
//! [`PeerConfig::file_bytes`] gives for the inner host's width (the outer
//! vCPU's MAXPHYADDR). `fw-cfg-vmm` renders a stated file itself, as it
//! would for a user; the malformed and conflicting ones are passed raw.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fw_cfg_device::abi::PHYS_BITS_FILE_NAME;

use super::build::LabTools;
use super::{GuestName, Lab, LabError, LabRun, TAIL_LINES, TextTail, inner_path};
use crate::firmware::{BULK_FILE_NAME, FirmwareReport};
use crate::matrix::FileCase;
use crate::peers::qemu::Qemu;
use crate::peers::side_by_side::{PeerConfig, Width, bulk_contents, qemu_args};
use crate::phase::MARK_PORT;
use crate::vmm::report::RunReport;

/// The static `fw-cfg-vmm` in the work folder.
pub const VMM_FILE: &str = "bin/fw-cfg-vmm";
/// The test firmware in the work folder.
pub const FIRMWARE_FILE: &str = "bin/fw-cfg-test-firmware";
/// Wall-time limit of one firmware guest.
pub const GUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Exit status of both VMMs after the firmware's debug-exit write of 0.
pub const FIRMWARE_DONE_STATUS: i32 = 1;

/// `fw-cfg-vmm`'s arguments for `config` (paths as the guest sees them):
/// the firmware, the bulk file, the width (`--host-phys-bits`,
/// `--phys-bits N`, or neither for QEMU's legacy default), the guest
/// width, the hint, and the file (rendered by the VMM when stated, `file`
/// passed raw otherwise).
pub fn vmm_args(
    config: &PeerConfig,
    firmware: &str,
    file: Option<&str>,
    bulk: &str,
) -> Vec<String> {
    let mut args = vec![
        "--kernel".to_string(),
        firmware.to_string(),
        "--timeout".into(),
        GUEST_TIMEOUT.as_secs().to_string(),
        "--fw-cfg".into(),
        format!("name={BULK_FILE_NAME},file={bulk}"),
    ];
    match config.width {
        Width::Host => args.push("--host-phys-bits".into()),
        Width::Bits(n) => args.extend(["--phys-bits".into(), n.to_string()]),
        Width::Legacy => {}
    }
    if let Some(g) = config.guest_phys_bits {
        args.extend(["--guest-phys-bits".into(), g.to_string()]);
    }
    let on_off = |on: bool| if on { "on" } else { "off" }.to_string();
    args.extend(["--phys-bits-hint".into(), on_off(config.hint)]);
    let stated = config.file == FileCase::Stated;
    args.extend(["--phys-bits-file".into(), on_off(stated)]);
    if let (Some(f), true) = (file, config.file.is_raw()) {
        args.extend([
            "--fw-cfg".into(),
            format!("name={PHYS_BITS_FILE_NAME},file={f}"),
        ]);
    }
    args
}

/// The inner guests [`add`] added for one configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwareGuests {
    /// Under QEMU microvm; `None` when QEMU was not asked for or cannot
    /// express the configuration.
    pub qemu: Option<GuestName>,
    /// Under the static `fw-cfg-vmm`.
    pub vmm: GuestName,
    /// The work-folder file where that `fw-cfg-vmm` writes its run report
    /// (`--stats-json`, exits counted per phase with `--phase-port`
    /// [`MARK_PORT`]); fetched after the run ([`run_report`]).
    pub stats_file: PathBuf,
}

/// Adds `config` to `lab` as guests `TAG-qemu` (when `qemu` is given and
/// can express it) and `TAG-vmm`, for an inner host of `host_bits`
/// (the outer MAXPHYADDR), with the tools and the configuration's files in
/// the work folder. The `fw-cfg-vmm` guest counts exits per phase and
/// leaves its run report in [`FirmwareGuests::stats_file`].
pub fn add(
    lab: Lab,
    tag: &str,
    config: &PeerConfig,
    host_bits: u8,
    qemu: Option<&Qemu>,
    tools: &LabTools,
) -> Result<(Lab, FirmwareGuests), LabError> {
    let bulk_name = format!("{tag}/bulk");
    let file_name = format!("{tag}/phys-bits-valid");
    let mut lab = lab
        .copy(VMM_FILE, &tools.vmm)?
        .copy(FIRMWARE_FILE, &tools.firmware)?
        .file(&bulk_name, bulk_contents(), false)?;
    let file = match config.file_bytes(host_bits) {
        Some(bytes) => {
            lab = lab.file(&file_name, bytes, false)?;
            Some(inner_path(&file_name))
        }
        None => None,
    };
    let (firmware, bulk) = (inner_path(FIRMWARE_FILE), inner_path(&bulk_name));
    let qemu_guest = match qemu.map(|q| {
        let args = qemu_args(
            config,
            Path::new(&firmware),
            file.as_deref().map(Path::new),
            Path::new(&bulk),
        );
        (q, args)
    }) {
        Some((q, Ok(args))) => {
            let name = GuestName::new(&format!("{tag}-qemu"))?;
            let argv = std::iter::once(q.path.display().to_string()).chain(args);
            lab = lab.guest(name.as_str(), argv, GUEST_TIMEOUT)?;
            Some(name)
        }
        _ => None,
    };
    let vmm = GuestName::new(&format!("{tag}-vmm"))?;
    let stats_file = PathBuf::from(format!("{tag}/stats.json"));
    let argv = std::iter::once(inner_path(VMM_FILE))
        .chain(vmm_args(config, &firmware, file.as_deref(), &bulk))
        .chain([
            "--phase-port".into(),
            format!("{MARK_PORT:#x}"),
            "--stats-json".into(),
            inner_path(&stats_file),
        ]);
    lab = lab
        .guest(vmm.as_str(), argv, GUEST_TIMEOUT)?
        .fetch(&stats_file)?;
    Ok((
        lab,
        FirmwareGuests {
            qemu: qemu_guest,
            vmm,
            stats_file,
        },
    ))
}

/// Adds guest `TAG-smp` to `lab`: the static `fw-cfg-vmm` with `cpus`
/// vCPUs running the firmware's SMP stress mode for `iterations` on the
/// stress files ([`crate::firmware::stress_files`], placed in the work
/// folder). Its [`report`] has the `smp` line.
pub fn add_smp(
    lab: Lab,
    tag: &str,
    cpus: u16,
    iterations: u32,
    tools: &LabTools,
) -> Result<(Lab, GuestName), LabError> {
    let mut lab = lab
        .copy(VMM_FILE, &tools.vmm)?
        .copy(FIRMWARE_FILE, &tools.firmware)?;
    let mut argv = vec![
        inner_path(VMM_FILE),
        "--kernel".into(),
        inner_path(FIRMWARE_FILE),
        "--timeout".into(),
        GUEST_TIMEOUT.as_secs().to_string(),
        "--cpus".into(),
        cpus.to_string(),
        "--cmdline".into(),
        format!("{}{iterations}", fw_cfg_protocol::SMP_PARAM),
    ];
    for (i, (name, bytes)) in crate::firmware::stress_files().into_iter().enumerate() {
        let file = format!("{tag}/stress-{i}");
        lab = lab.file(&file, bytes, false)?;
        argv.extend([
            "--fw-cfg".into(),
            format!("name={name},file={}", inner_path(&file)),
        ]);
    }
    let name = GuestName::new(&format!("{tag}-smp"))?;
    lab = lab.guest(name.as_str(), argv, GUEST_TIMEOUT)?;
    Ok((lab, name))
}

/// The run report the `fw-cfg-vmm` guest of `guests` wrote.
pub fn run_report(run: &LabRun, guests: &FirmwareGuests) -> Result<RunReport, LabError> {
    report_file(run, &guests.vmm, &guests.stats_file)
}

/// The run report guest `guest` wrote to work-folder file `file` (which
/// the lab fetched).
pub fn report_file(run: &LabRun, guest: &GuestName, file: &Path) -> Result<RunReport, LabError> {
    let err = |source| LabError::Report {
        guest: guest.clone(),
        source,
    };
    let json = run.files.get(file).ok_or_else(|| {
        err(crate::vmm::report::ReportError::Io {
            action: "read",
            path: file.to_path_buf(),
            source: std::io::ErrorKind::NotFound.into(),
        })
    })?;
    RunReport::from_json(json).map_err(err)
}

/// What the firmware printed in guest `name`; an error unless it finished
/// (its `done` line, and the VMM's status [`FIRMWARE_DONE_STATUS`]).
pub fn report(run: &LabRun, name: &GuestName) -> Result<FirmwareReport, LabError> {
    let g = run.guest(name)?;
    let report = FirmwareReport::parse(&g.stdout);
    if report.done && g.status == FIRMWARE_DONE_STATUS {
        return Ok(report);
    }
    Err(LabError::Firmware {
        guest: name.clone(),
        status: g.status,
        stdout: TextTail::last(&String::from_utf8_lossy(&g.stdout), TAIL_LINES),
        stderr: TextTail::last(&String::from_utf8_lossy(&g.stderr), TAIL_LINES),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmm_flags_express_each_configuration() {
        let host = PeerConfig::microvm(Width::Host, FileCase::Stated);
        assert_eq!(
            vmm_args(&host, "/w/fw", Some("/w/pbv"), "/w/bulk").join(" "),
            "--kernel /w/fw --timeout 60 --fw-cfg name=opt/fw-cfg-tests/bulk,file=/w/bulk \
             --host-phys-bits --phys-bits-hint off --phys-bits-file on"
        );
        let bits = PeerConfig::microvm(Width::Bits(39), FileCase::Absent)
            .with_guest_phys_bits(37)
            .with_hint();
        let a = vmm_args(&bits, "/w/fw", None, "/w/bulk").join(" ");
        assert!(
            a.ends_with(
                "--phys-bits 39 --guest-phys-bits 37 --phys-bits-hint on --phys-bits-file off"
            ),
            "{a}"
        );
        let corrupt = PeerConfig::microvm(Width::Legacy, FileCase::Corrupt).on_pc();
        let a = vmm_args(&corrupt, "/w/fw", Some("/w/pbv"), "/w/bulk").join(" ");
        assert!(
            a.ends_with("--phys-bits-hint off --phys-bits-file off --fw-cfg name=etc/phys-bits-valid,file=/w/pbv"),
            "{a}"
        );
        assert!(!a.contains("phys-bits "));
    }

    #[test]
    fn add_puts_both_vmms_in_the_script() {
        let tools = LabTools {
            vmm: "/built/fw-cfg-vmm".into(),
            firmware: "/built/firmware".into(),
            probe: None,
            abi_check: None,
        };
        let qemu = Qemu {
            path: "/usr/bin/qemu-system-x86_64".into(),
            version: (10, 0, 2),
        };
        let config = PeerConfig::microvm(Width::Host, FileCase::Stated);
        let (lab, guests) = add(Lab::new(), "hs", &config, 46, Some(&qemu), &tools).unwrap();
        assert_eq!(guests.qemu.as_ref().map(GuestName::as_str), Some("hs-qemu"));
        assert_eq!(guests.vmm.as_str(), "hs-vmm");
        let script = super::super::script::render(&lab.steps);
        assert!(script.contains(
            "lab_guest hs-qemu 60 '/usr/bin/qemu-system-x86_64' '-M' 'microvm' '-accel' 'kvm'"
        ));
        assert!(
            script
                .contains("'-fw_cfg' 'name=etc/phys-bits-valid,file=/tmp/work/hs/phys-bits-valid'")
        );
        assert!(script.contains("lab_guest hs-vmm 60 '/tmp/work/bin/fw-cfg-vmm' '--kernel' '/tmp/work/bin/fw-cfg-test-firmware'"));
        assert!(script.contains("'--phase-port' '0x600' '--stats-json' '/tmp/work/hs/stats.json'"));
        assert_eq!(guests.stats_file, Path::new("hs/stats.json"));
        assert!(lab.fetch.contains(&guests.stats_file));
        assert!(lab.files.contains_key(Path::new("hs/phys-bits-valid")));
        let hint = PeerConfig::microvm(Width::Host, FileCase::Absent).with_hint();
        let (lab, guests) = add(lab, "hint", &hint, 46, Some(&qemu), &tools).unwrap();
        assert_eq!(guests.qemu, None, "QEMU cannot set the hint bit");
        assert!(!lab.files.contains_key(Path::new("hint/phys-bits-valid")));
    }
}
