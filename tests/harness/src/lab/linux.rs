// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The distribution kernel as an inner guest: the same bzImage, busybox
//! initramfs and command line under QEMU microvm (`-accel kvm`) and under
//! the static `fw-cfg-vmm`, with the same fw_cfg items ([`items`]), in one
//! outer boot.
//!
//! The initramfs is the Linux peer's ([`LinuxPeer::initramfs`]: busybox,
//! `qemu_fw_cfg.ko`, the static probe) with [`INIT_SCRIPT`] as `/init`,
//! which prints, on lines starting with [`MARKER`] that
//! [`GuestDump::parse`] reads:
//!
//! 1. [`USER_LINE`], written by `/init` itself (a tty write: it needs the
//!    UART's transmitter interrupt, unlike kernel messages);
//! 2. the probe's `--json` report (files read up to 4 KiB by port I/O);
//! 3. `fw-cfg-abi-check`'s lines for the [`items`] (ABI_NAMES in the
//!    script: port I/O and DMA from userspace, see [`init_script`]);
//! 4. after `insmod qemu_fw_cfg.ko`: `rev`, and for every `by_key` entry
//!    its key, size and name, the hex of files up to 4 KiB and the MD5 of
//!    the first 4 KiB of `raw` (the driver re-reads and skips to the offset
//!    on every page, so larger prefixes cost quadratic port exits);
//! 5. every line of the kernel log (`dmesg`);
//!
//! then powers off (`poweroff -f`), or resets (`reboot -f`) when the
//! command line has [`REBOOT_PARAM`].

use std::time::Duration;

use super::build::LabTools;
use super::{GuestName, Lab, LabError, LabRun, TAIL_LINES, TextTail, inner_path};
use crate::peers::linux::LinuxPeer;
use crate::peers::qemu::Qemu;

pub use crate::peers::linux::{GuestDump, MARKER};

/// What `/init` prints itself, before anything else.
pub const USER_LINE: &str = "hello from the init process";
/// Kernel parameter (ignored by the kernel) that makes `/init` reset
/// instead of powering off.
pub const REBOOT_PARAM: &str = "lab_reboot";
/// What the reset guest's command line adds: [`REBOOT_PARAM`] only. No
/// `reboot=` parameter: Linux 6.1 then picks its EFI reboot method on a
/// hardware-reduced ACPI platform, falls back to the BIOS one and jumps to
/// the real-mode reset vector, where `fw-cfg-vmm` has a stub that writes
/// the ACPI reset register (`fw_cfg_vmm::reset_vector`).
pub const REBOOT_CMDLINE: &str = REBOOT_PARAM;
/// The command line of both VMMs' guests.
pub const CMDLINE: &str = "console=ttyS0 loglevel=4 panic=-1";
/// Guest memory (MiB) under both VMMs.
pub const MEMORY_MIB: u32 = 256;
/// Wall-time limit of one Linux guest.
pub const GUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// `fw-cfg-vmm`'s own `--timeout`, inside [`GUEST_TIMEOUT`], so that a
/// hanging guest ends with the VMM's exit counters on its stderr.
pub const VMM_TIMEOUT: Duration = Duration::from_secs(100);
/// The initramfs in the work folder.
pub const INITRD_FILE: &str = "linux/initrd.cpio";

/// The guest's `/init`, with `ABI_NAMES` for the names of the file items
/// (see [`init_script`]).
pub const INIT_SCRIPT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
M="@@FWCFG"
echo "$M begin"
echo "$M user hello from the init process"
/bin/fw-cfg-probe --json --sysfs-root /nonexistent --max-file-bytes 4096 > /tmp/probe.json
echo "$M probe-rc $?"
printf '%s probe-json ' "$M"; cat /tmp/probe.json; echo
/bin/fw-cfg-abi-check ABI_NAMES > /tmp/abi.txt
echo "$M abi-rc $?"
while IFS= read -r l; do echo "$M abi $l"; done < /tmp/abi.txt
insmod /qemu_fw_cfg.ko
echo "$M insmod-rc $?"
echo "$M rev $(cat /sys/firmware/qemu_fw_cfg/rev)"
for d in /sys/firmware/qemu_fw_cfg/by_key/*; do
  [ -d "$d" ] || continue
  k=$(cat $d/key); z=$(cat $d/size)
  echo "$M sysfs $k $z $(cat $d/name)"
  if [ "$z" -le 4096 ]; then echo "$M sysfs-hex $k $(xxd -p $d/raw | tr -d '\n')"; n=$z; else n=4096; fi
  echo "$M sysfs-md5 $k $n $(dd if=$d/raw bs=4096 count=1 2>/dev/null | md5sum | cut -d' ' -f1)"
done
dmesg | while IFS= read -r l; do echo "$M dmesg $l"; done
echo "$M end"
if grep -q lab_reboot /proc/cmdline; then reboot -f; else poweroff -f; fi
"#;

/// [`INIT_SCRIPT`] with the names of [`items`] (they hold no blanks or
/// shell characters) as `fw-cfg-abi-check`'s arguments.
pub fn init_script() -> String {
    let names: Vec<String> = items().into_iter().map(|(n, _)| n).collect();
    INIT_SCRIPT.replace("ABI_NAMES", &names.join(" "))
}

/// One fw_cfg item both VMMs serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemData {
    /// `name=NAME,file=PATH`, with these bytes in the file.
    File(Vec<u8>),
    /// `name=NAME,string=STR`.
    String(String),
}

/// The items: files of 0, 3, 300 bytes and 1 MiB, one with a 55-byte
/// name, and a string item.
pub fn items() -> Vec<(String, ItemData)> {
    let pattern = |n: usize| (0..n).map(|i| (i * 7 + i / 251) as u8).collect::<Vec<u8>>();
    let long = format!("opt/lab/{}", "n".repeat(55 - "opt/lab/".len()));
    vec![
        ("opt/lab/empty".into(), ItemData::File(Vec::new())),
        ("opt/lab/three".into(), ItemData::File(b"abc".to_vec())),
        ("opt/lab/three-hundred".into(), ItemData::File(pattern(300))),
        ("opt/lab/one-mib".into(), ItemData::File(pattern(1 << 20))),
        (long, ItemData::File(b"a 55-byte name".to_vec())),
        (
            "opt/lab/string".into(),
            ItemData::String("a string item".into()),
        ),
    ]
}

/// The guests [`add`] added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinuxGuests {
    /// Under QEMU microvm (`-cpu host`).
    pub qemu: GuestName,
    /// Under `fw-cfg-vmm --host-phys-bits` with both phys-bits channels
    /// off (what QEMU offers), powering off.
    pub vmm: GuestName,
    /// Under `fw-cfg-vmm --host-phys-bits` with both channels on,
    /// resetting.
    pub vmm_reboot: GuestName,
}

/// The `-fw_cfg` / `--fw-cfg` values of [`items`], with the files placed
/// in `lab`.
fn item_specs(mut lab: Lab) -> Result<(Lab, Vec<String>), LabError> {
    let mut specs = Vec::new();
    for (i, (name, data)) in items().into_iter().enumerate() {
        match data {
            ItemData::File(bytes) => {
                let file = format!("linux/item{i}");
                lab = lab.file(&file, bytes, false)?;
                specs.push(format!("name={name},file={}", inner_path(&file)));
            }
            ItemData::String(s) => specs.push(format!("name={name},string={s}")),
        }
    }
    Ok((lab, specs))
}

/// Puts what every Linux guest needs in `lab`'s work folder: the static
/// `fw-cfg-vmm` of `tools` (which must have the probe), the initramfs
/// ([`INITRD_FILE`]) and the files of [`items`]; returns the items'
/// `-fw_cfg` values.
pub fn prepare(
    lab: Lab,
    linux: &LinuxPeer,
    tools: &LabTools,
) -> Result<(Lab, Vec<String>), LabError> {
    let probe = tools.probe.as_ref().ok_or(LabError::NoProbe)?;
    let abi_check = tools.abi_check.as_ref().ok_or(LabError::NoProbe)?;
    let initrd = linux
        .initramfs_with(probe, &[("fw-cfg-abi-check", abi_check)], &init_script())
        .map_err(|source| LabError::Io {
            action: "build the Linux guests' initramfs",
            path: probe.clone(),
            source,
        })?;
    let lab = lab
        .copy(super::firmware::VMM_FILE, &tools.vmm)?
        .file(INITRD_FILE, initrd, false)?;
    item_specs(lab)
}

/// Adds guests `linux-qemu`, `linux-vmm` and `linux-vmm-reboot` to `lab`:
/// `linux`'s kernel with [`init_script`] under QEMU microvm and (twice)
/// under the static `fw-cfg-vmm` of `tools` (which must have the probe).
pub fn add(
    lab: Lab,
    linux: &LinuxPeer,
    qemu: &Qemu,
    tools: &LabTools,
) -> Result<(Lab, LinuxGuests), LabError> {
    let (mut lab, specs) = prepare(lab, linux, tools)?;
    let (kernel, initrd) = (linux.kernel.display().to_string(), inner_path(INITRD_FILE));
    let mut q = qemu_args(&kernel, &initrd, CMDLINE);
    let mut v = vmm_args(&kernel, &initrd);
    v.extend(["--stats".into(), "--host-phys-bits".into()]);
    for s in &specs {
        q.extend(["-fw_cfg".into(), s.clone()]);
        v.extend(["--fw-cfg".into(), s.clone()]);
    }
    // The reboot guest keeps both phys-bits channels on; the power-off
    // guest turns them off, so that it offers what QEMU does.
    let mut reboot = v.clone();
    v.extend(["--cmdline".into(), CMDLINE.into()]);
    v.extend(["--phys-bits-hint", "off", "--phys-bits-file", "off"].map(String::from));
    reboot.extend(["--cmdline".into(), format!("{CMDLINE} {REBOOT_CMDLINE}")]);
    let qemu_argv = std::iter::once(qemu.path.display().to_string()).chain(q);
    lab = lab.guest("linux-qemu", qemu_argv, GUEST_TIMEOUT)?;
    lab = lab.guest("linux-vmm", v, GUEST_TIMEOUT)?;
    lab = lab.guest("linux-vmm-reboot", reboot, GUEST_TIMEOUT)?;
    Ok((
        lab,
        LinuxGuests {
            qemu: GuestName::new("linux-qemu")?,
            vmm: GuestName::new("linux-vmm")?,
            vmm_reboot: GuestName::new("linux-vmm-reboot")?,
        },
    ))
}

/// QEMU microvm's arguments (after the program) that boot `kernel` with
/// `initrd` and `cmdline` as a KVM guest (`-cpu host`, [`MEMORY_MIB`],
/// the console on stdout, no reboot).
pub fn qemu_args(kernel: &str, initrd: &str, cmdline: &str) -> Vec<String> {
    let mut q = microvm_args(MEMORY_MIB);
    q.extend(["-serial".into(), "stdio".into()]);
    q.extend([
        "-kernel".into(),
        kernel.into(),
        "-initrd".into(),
        initrd.into(),
    ]);
    q.extend(["-append".into(), cmdline.into()]);
    q
}

/// The QEMU microvm machine every lab guest under QEMU runs on: KVM,
/// `-cpu host`, no default devices or display, no reboot, `memory_mib`.
pub fn microvm_args(memory_mib: u32) -> Vec<String> {
    [
        "-M",
        "microvm",
        "-accel",
        "kvm",
        "-cpu",
        "host",
        "-nodefaults",
        "-display",
        "none",
        "-no-reboot",
        "-m",
    ]
    .map(String::from)
    .into_iter()
    .chain([memory_mib.to_string()])
    .collect()
}

/// The static `fw-cfg-vmm`'s argv (program included) that boots `kernel`
/// with `initrd` in [`MEMORY_MIB`], ended by [`VMM_TIMEOUT`]; the caller
/// adds the command line and the channels.
pub fn vmm_args(kernel: &str, initrd: &str) -> Vec<String> {
    let mut v: Vec<String> = vec![inner_path(super::firmware::VMM_FILE)];
    v.extend([
        "--kernel".into(),
        kernel.into(),
        "--initrd".into(),
        initrd.into(),
    ]);
    v.extend(["--memory".into(), MEMORY_MIB.to_string()]);
    v.extend(["--timeout".into(), VMM_TIMEOUT.as_secs().to_string()]);
    v
}

/// What `/init` printed in guest `name`; an error with its last console
/// lines unless the report is complete.
pub fn dump(run: &LabRun, name: &GuestName) -> Result<GuestDump, LabError> {
    let g = run.guest(name)?;
    let console = String::from_utf8_lossy(&g.stdout);
    let dump = GuestDump::parse(&console);
    if dump.complete {
        return Ok(dump);
    }
    Err(LabError::Linux {
        guest: name.clone(),
        status: g.status,
        stdout: TextTail::last(&console, TAIL_LINES),
        stderr: TextTail::last(&String::from_utf8_lossy(&g.stderr), TAIL_LINES),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_abi_check_gets_every_item_name() {
        let s = init_script();
        assert!(!s.contains("ABI_NAMES"));
        let line = s
            .lines()
            .find(|l| l.starts_with("/bin/fw-cfg-abi-check "))
            .unwrap();
        let args: Vec<&str> = line.split(' ').skip(1).take_while(|w| *w != ">").collect();
        let names: Vec<String> = items().into_iter().map(|(n, _)| n).collect();
        assert_eq!(args, names);
    }
}
