// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Real firmware as an inner guest: the same ROM from the reset vector
//! under QEMU microvm (`-accel kvm -bios ROM`, its debug console on port
//! 0x402 as `-debugcon stdio -global isa-debugcon.iobase=0x402`) and under
//! the static `fw-cfg-vmm --bios ROM --debugcon stderr`, in one outer
//! boot. Without a kernel, SeaBIOS finds no boot device and retries until
//! the guest's time runs out ([`RUN_TIME`], under both VMMs), so both
//! guests end with status 124 and the debug log holds everything SeaBIOS
//! did before its boot menu ([`FirmwareLog`]).

use std::time::Duration;

use super::build::LabTools;
use super::{GuestName, Lab, LabError, LabRun, TAIL_LINES, TextTail, inner_path};
use crate::peers::linux::{LinuxPeer, MARKER};
use crate::peers::qemu::Qemu;

/// SeaBIOS's microvm build, QEMU's default `-M microvm` firmware, as
/// Debian's `seabios` package installs it.
pub const SEABIOS_MICROVM: &str = "/usr/share/seabios/bios-microvm.bin";
/// SeaBIOS's debug output port.
pub const DEBUG_PORT: &str = "0x402";
/// How long each firmware runs (`fw-cfg-vmm --timeout`; QEMU is ended by
/// the lab at the same time).
pub const RUN_TIME: Duration = Duration::from_secs(12);
/// Guest memory (MiB) under both VMMs.
pub const MEMORY_MIB: u32 = 128;
/// Exit status of both guests when [`RUN_TIME`] ends them.
pub const TIMEOUT_STATUS: i32 = 124;
/// What `fw-cfg-vmm --stats` prints before its exit reason
/// (`fw-cfg-vmm: Timeout`, `fw-cfg-vmm: PowerOff`, ...), which separates
/// the debug log from the counters on its stderr.
pub const VMM_STATS_START: &str = "fw-cfg-vmm: ";
/// The line of `--stats` that follows the exit reason.
pub const VMM_STATS_EXITS: &str = "exits: ";

/// The inner guests [`add`] added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BiosGuests {
    /// Under QEMU microvm.
    pub qemu: GuestName,
    /// Under the static `fw-cfg-vmm`.
    pub vmm: GuestName,
}

/// QEMU's arguments (after the program) for `rom`.
pub fn qemu_args(rom: &str) -> Vec<String> {
    let mut q = super::linux::microvm_args(MEMORY_MIB);
    q.extend([
        "-debugcon".into(),
        "stdio".into(),
        "-global".into(),
        format!("isa-debugcon.iobase={DEBUG_PORT}"),
        "-bios".into(),
        rom.into(),
    ]);
    q
}

/// `fw-cfg-vmm`'s arguments for `rom`.
pub fn vmm_args(rom: &str) -> Vec<String> {
    let mut v: Vec<String> = ["--bios", rom, "--debugcon", "stderr", "--debugcon-port"]
        .map(String::from)
        .to_vec();
    v.push(DEBUG_PORT.into());
    v.extend(["--memory".into(), MEMORY_MIB.to_string(), "--stats".into()]);
    v.extend(["--timeout".into(), RUN_TIME.as_secs().to_string()]);
    v
}

/// Adds guests `TAG-qemu` and `TAG-vmm` running `rom` (a path on this
/// machine, which the outer guest shares) to `lab`.
pub fn add(
    lab: Lab,
    tag: &str,
    rom: &str,
    qemu: &Qemu,
    tools: &LabTools,
) -> Result<(Lab, BiosGuests), LabError> {
    let mut lab = lab.copy(super::firmware::VMM_FILE, &tools.vmm)?;
    let names = BiosGuests {
        qemu: GuestName::new(&format!("{tag}-qemu"))?,
        vmm: GuestName::new(&format!("{tag}-vmm"))?,
    };
    let q = std::iter::once(qemu.path.display().to_string()).chain(qemu_args(rom));
    lab = lab.guest(names.qemu.as_str(), q, RUN_TIME)?;
    let v = std::iter::once(inner_path(super::firmware::VMM_FILE)).chain(vmm_args(rom));
    // Its own timeout ends it; the lab's limit only backs that up.
    lab = lab.guest(names.vmm.as_str(), v, RUN_TIME * 2)?;
    Ok((lab, names))
}

/// qboot, QEMU microvm's firmware with `acpi=off`, as Debian's
/// `qemu-system-data` installs it.
pub const QBOOT: &str = "/usr/share/qemu/qboot.rom";
/// Wall-time limit of one Linux guest booted through a firmware (the
/// firmware's loading adds to [`super::linux::GUEST_TIMEOUT`]'s boot).
pub const LINUX_GUEST_TIMEOUT: Duration = Duration::from_secs(240);
/// `fw-cfg-vmm`'s own `--timeout` for those guests, inside
/// [`LINUX_GUEST_TIMEOUT`], so that a hang ends with its exit counters.
pub const LINUX_VMM_TIMEOUT: Duration = Duration::from_secs(200);

/// The Linux guests [`add_linux`] added for one firmware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinuxBiosGuests {
    /// Under QEMU microvm with `-bios`.
    pub qemu: GuestName,
    /// Under `fw-cfg-vmm --bios`, both phys-bits channels off (what QEMU
    /// offers).
    pub vmm: GuestName,
}

/// Adds guests `TAG-qemu` and `TAG-vmm` to `lab`: `linux`'s kernel with
/// the lab's initramfs, command line and items ([`super::linux`]) handed
/// to firmware `rom` through fw_cfg, under QEMU microvm (`-bios ROM
/// -kernel ...`) and `fw-cfg-vmm --bios ROM --kernel ...` (debug console
/// on stderr).
pub fn add_linux(
    lab: Lab,
    tag: &str,
    rom: &str,
    linux: &LinuxPeer,
    qemu: &Qemu,
    tools: &LabTools,
) -> Result<(Lab, LinuxBiosGuests), LabError> {
    let (mut lab, specs) = super::linux::prepare(lab, linux, tools)?;
    let names = LinuxBiosGuests {
        qemu: GuestName::new(&format!("{tag}-qemu"))?,
        vmm: GuestName::new(&format!("{tag}-vmm"))?,
    };
    let (kernel, initrd) = (
        linux.kernel.display().to_string(),
        inner_path(super::linux::INITRD_FILE),
    );
    let mem = super::linux::MEMORY_MIB.to_string();
    let mut q = vec![qemu.path.display().to_string()];
    q.extend(
        [
            "-M",
            "microvm",
            "-accel",
            "kvm",
            "-cpu",
            "host",
            "-nodefaults",
        ]
        .map(String::from),
    );
    q.extend(["-display", "none", "-serial", "stdio", "-no-reboot"].map(String::from));
    q.extend(["-m".into(), mem.clone(), "-bios".into(), rom.into()]);
    q.extend([
        "-kernel".into(),
        kernel.clone(),
        "-initrd".into(),
        initrd.clone(),
    ]);
    q.extend(["-append".into(), super::linux::CMDLINE.into()]);
    let mut v = vec![
        inner_path(super::firmware::VMM_FILE),
        "--bios".into(),
        rom.into(),
    ];
    v.extend(["--kernel".into(), kernel, "--initrd".into(), initrd]);
    v.extend(["--cmdline".into(), super::linux::CMDLINE.into()]);
    v.extend(["--memory".into(), mem, "--stats".into()]);
    v.extend(
        [
            "--debugcon",
            "stderr",
            "--phys-bits-hint",
            "off",
            "--phys-bits-file",
            "off",
        ]
        .map(String::from),
    );
    v.extend(["--timeout".into(), LINUX_VMM_TIMEOUT.as_secs().to_string()]);
    for spec in &specs {
        q.extend(["-fw_cfg".into(), spec.clone()]);
        v.extend(["--fw-cfg".into(), spec.clone()]);
    }
    lab = lab.guest(names.qemu.as_str(), q, LINUX_GUEST_TIMEOUT)?;
    lab = lab.guest(names.vmm.as_str(), v, LINUX_GUEST_TIMEOUT)?;
    Ok((lab, names))
}

/// The kernel's uptime at the last console line with a timestamp
/// (`[ seconds] ...`, also inside `/init`'s `dmesg` lines): under the
/// lab's `/init`, the kernel's `reboot: Power down`.
pub fn kernel_uptime(console: &str) -> Option<Duration> {
    console
        .lines()
        .filter_map(|l| {
            let l = l
                .strip_prefix(MARKER)
                .map_or(l, |rest| rest.strip_prefix("dmesg ").unwrap_or(rest));
            let stamp = l.strip_prefix('[')?.split_once(']')?.0.trim();
            stamp.parse::<f64>().ok()
        })
        .fold(None, |max: Option<f64>, t| {
            Some(max.map_or(t, |m| m.max(t)))
        })
        .map(Duration::from_secs_f64)
}

/// How long the VMM ran before Linux started, estimated as the guest's
/// wall time (VMM start to exit) less the kernel's uptime at power-off:
/// the VMM's own start-up (reading the kernel and initrd), the firmware,
/// and the option ROM's loading of the kernel.
pub fn firmware_phase(run: &LabRun, name: &GuestName) -> Result<Option<Duration>, LabError> {
    let g = run.guest(name)?;
    let console = String::from_utf8_lossy(&g.stdout);
    Ok(kernel_uptime(&console).and_then(|up| g.elapsed.checked_sub(up)))
}

/// What a firmware wrote to the debug console, and `fw-cfg-vmm`'s exit
/// counters when it ran there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwareLog {
    /// The log's lines, carriage returns removed.
    pub lines: Vec<String>,
    /// `fw-cfg-vmm --stats`'s output (empty under QEMU).
    pub stats: String,
}

impl FirmwareLog {
    /// Splits a guest's debug console text: under `fw-cfg-vmm` the
    /// counters start at the last [`VMM_STATS_START`] before the last
    /// [`VMM_STATS_EXITS`].
    pub fn parse(text: &str) -> FirmwareLog {
        let start = text
            .rfind(VMM_STATS_EXITS)
            .and_then(|e| text[..e].rfind(VMM_STATS_START));
        let (log, stats) = match start {
            Some(at) => (&text[..at], &text[at..]),
            None => (text, ""),
        };
        FirmwareLog {
            lines: log.lines().map(|l| l.replace('\r', "")).collect(),
            stats: stats.to_string(),
        }
    }

    /// Whether a line contains `needle`.
    pub fn has(&self, needle: &str) -> bool {
        self.lines.iter().any(|l| l.contains(needle))
    }
}

/// The debug log of guest `name` (QEMU's stdout, `fw-cfg-vmm`'s stderr);
/// an error with the guest's output unless it ran until [`RUN_TIME`]
/// ended it.
pub fn log(run: &LabRun, name: &GuestName, under_vmm: bool) -> Result<FirmwareLog, LabError> {
    let g = run.guest(name)?;
    let text = String::from_utf8_lossy(if under_vmm { &g.stderr } else { &g.stdout });
    if g.status == TIMEOUT_STATUS {
        return Ok(FirmwareLog::parse(&text));
    }
    Err(LabError::Firmware {
        guest: name.clone(),
        status: g.status,
        stdout: TextTail::last(&String::from_utf8_lossy(&g.stdout), TAIL_LINES),
        stderr: TextTail::last(&String::from_utf8_lossy(&g.stderr), TAIL_LINES),
    })
}

/// The debug log `fw-cfg-vmm` wrote to stderr in guest `name`, whatever
/// ended the run.
pub fn log_of_run(run: &LabRun, name: &GuestName) -> Result<FirmwareLog, LabError> {
    let g = run.guest(name)?;
    Ok(FirmwareLog::parse(&String::from_utf8_lossy(&g.stderr)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_vmms_get_the_rom_and_the_debug_port() {
        let q = qemu_args("/r.bin").join(" ");
        assert!(q.contains("-M microvm -accel kvm -cpu host "), "{q}");
        assert!(q.contains("-debugcon stdio -global isa-debugcon.iobase=0x402"));
        assert!(q.contains(" -m 128 "), "{q}");
        assert!(q.ends_with(" -bios /r.bin"), "{q}");
        let v = vmm_args("/r.bin").join(" ");
        assert_eq!(
            v,
            "--bios /r.bin --debugcon stderr --debugcon-port 0x402 --memory 128 --stats --timeout 12"
        );
    }

    #[test]
    fn the_kernel_uptime_is_the_last_stamp() {
        let console = "SeaBIOS\n@@FWCFG dmesg [    6.744840] Run /init\n\
                       @@FWCFG end\n[   46.284950] reboot: Power down\n";
        assert_eq!(
            kernel_uptime(console),
            Some(Duration::from_secs_f64(46.28495))
        );
        assert_eq!(kernel_uptime("no stamps\n[x] y\n"), None);
    }

    #[test]
    fn the_log_is_split_from_the_counters() {
        let l = FirmwareLog::parse("a\r\nb\nBoot failedfw-cfg-vmm: Timeout\nexits: 3 total\n");
        assert_eq!(l.lines, ["a", "b", "Boot failed"]);
        assert!(l.stats.starts_with(VMM_STATS_START));
        assert!(l.has("Boot"));
        let p = FirmwareLog::parse("Booting\nfw-cfg-vmm: PowerOff\nexits: 9 total\n");
        assert_eq!(p.lines, ["Booting"]);
        assert!(p.stats.starts_with("fw-cfg-vmm: PowerOff\nexits: 9"));
        let q = FirmwareLog::parse("x\n");
        assert_eq!((q.lines.len(), q.stats.as_str()), (1, ""));
    }
}
