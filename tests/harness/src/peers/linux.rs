// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Linux's `qemu_fw_cfg` driver against QEMU's fw_cfg device, with the
//! project's `fw-cfg-probe` beside it.
//!
//! [`LinuxPeer::find`] picks an installed distribution kernel
//! (`/boot/vmlinuz-<release>`) whose modules directory has
//! `kernel/drivers/firmware/qemu_fw_cfg.ko`, and a static busybox.
//! [`build_probe`] builds the static `fw-cfg-probe` with a nested cargo.
//! [`LinuxPeer::boot`] writes an initramfs (busybox, the module, the probe
//! and [`INIT_SCRIPT`]), boots the kernel under QEMU's TCG (Linux does not
//! boot under the nested KVM engines of the project's machines) with the
//! requested `-cpu` and `-fw_cfg` items, and parses what `/init` printed
//! into a [`GuestDump`].
//!
//! What `/init` does, in this order, each result on a line starting with
//! [`MARKER`]:
//!
//! 1. `address sizes` from `/proc/cpuinfo`;
//! 2. runs the probe with `--json --max-file-bytes 4096` and with
//!    `--max-file-bytes 1048576`, stores each output and prints it whole
//!    (the `fw-cfg-protocol` `ProbeReport` document: every file's name,
//!    size, selector and bytes read by port I/O, the CPUID report, the
//!    `etc/phys-bits-valid` state, the decisions and the exit code). The
//!    host parses both with that type, and computes from the second the MD5
//!    of each file's bytes (whole up to 1 MiB, the first 64 KiB of larger
//!    files). The probe runs before the driver is loaded, so nothing else
//!    uses the ports, and with `--sysfs-root` pointing nowhere, so the
//!    comparison with sysfs is made by the test, not by the probe;
//! 3. loads `qemu_fw_cfg.ko` and prints, for every
//!    `/sys/firmware/qemu_fw_cfg/by_key/*`, its key, size and name, the raw
//!    bytes in hex up to 4 KiB, and the MD5 of the same prefix as above;
//! 4. prints `/sys/firmware/acpi/tables/DSDT` in hex.
//!
//! The driver reads `raw` a page per `read()` and re-selects and skips to
//! the offset each time, so reading a file through sysfs costs time
//! quadratic in its size (about 8 s for 1 MiB under TCG here, minutes for
//! QEMU's 8 MiB `etc/boot/kernel`); hence the prefix of large files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use fw_cfg_guest::policy::{ChannelInputs, FileState, decide_all};
use fw_cfg_protocol::modes::ModeAnswers;
use fw_cfg_protocol::probe::ProbeReport;
use fw_cfg_protocol::{CpuidLine, Decisions};
use md5::{Digest, Md5};

use super::kernels::{BOOT_DIR, installed_kernels, kernel_release};
use super::qemu::{Qemu, QemuOutput};
use super::{Missing, cpio, unhex};

/// Prefix of every line `/init` prints for the test.
pub const MARKER: &str = "@@FWCFG ";
/// Files up to this size are compared byte for byte (hex on the console).
pub const HEX_LIMIT: u64 = 4096;
/// Files up to this size are compared whole by MD5; larger ones by the MD5
/// of their first [`LARGE_PREFIX`] bytes.
pub const MD5_LIMIT: u64 = 1 << 20;
/// Compared prefix of files larger than [`MD5_LIMIT`].
pub const LARGE_PREFIX: u64 = 64 << 10;
/// Path of the module inside a kernel's modules directory.
pub const MODULE_SUBPATH: &str = "kernel/drivers/firmware/qemu_fw_cfg.ko";
/// Environment variable naming the kernel image to boot.
pub const KERNEL_ENV: &str = "FW_CFG_KERNEL";
/// Environment variable naming the static busybox.
pub const BUSYBOX_ENV: &str = "FW_CFG_BUSYBOX";
/// Kernel command line of the boots.
pub const CMDLINE: &str = "console=ttyS0 quiet loglevel=1 panic=-1";

/// The guest's `/init`.
pub const INIT_SCRIPT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
M="@@FWCFG"
echo "$M begin"
echo "$M cpuinfo $(grep -m1 'address sizes' /proc/cpuinfo | sed 's/.*: //')"
/bin/fw-cfg-probe --json --sysfs-root /nonexistent --max-file-bytes 4096 > /tmp/probe.json
echo "$M probe-rc $?"
/bin/fw-cfg-probe --json --sysfs-root /nonexistent --max-file-bytes 1048576 > /tmp/full.json
echo "$M probe-full-rc $?"
printf '%s probe-json ' "$M"; cat /tmp/probe.json; echo
printf '%s probe-full-json ' "$M"; cat /tmp/full.json; echo
insmod /qemu_fw_cfg.ko
echo "$M insmod-rc $?"
for d in /sys/firmware/qemu_fw_cfg/by_key/*; do
  [ -d "$d" ] || continue
  k=$(cat $d/key); z=$(cat $d/size)
  echo "$M sysfs $k $z $(cat $d/name)"
  if [ "$z" -le 4096 ]; then echo "$M sysfs-hex $k $(xxd -p $d/raw | tr -d '\n')"; fi
  if [ "$z" -le 1048576 ]; then c=256; n=$z; else c=16; n=65536; fi
  echo "$M sysfs-md5 $k $n $(dd if=$d/raw bs=4096 count=$c 2>/dev/null | md5sum | cut -d' ' -f1)"
done
if [ -r /sys/firmware/acpi/tables/DSDT ]; then
  echo "$M dsdt $(xxd -p /sys/firmware/acpi/tables/DSDT | tr -d '\n')"
fi
echo "$M end"
poweroff -f
"#;

/// The installed kernel, its `qemu_fw_cfg` module and busybox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinuxPeer {
    /// The bzImage.
    pub kernel: PathBuf,
    /// Its release (`6.1.0-26-amd64`).
    pub release: String,
    /// `qemu_fw_cfg.ko` of that release (uncompressed).
    pub module: PathBuf,
    /// A statically linked busybox.
    pub busybox: PathBuf,
}

/// Whether an ELF file has no `PT_INTERP` program header (is static).
/// `None` if it is not a 64-bit little-endian ELF.
pub fn elf_is_static(bytes: &[u8]) -> Option<bool> {
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 || bytes[5] != 1 {
        return None;
    }
    let u16_at = |o: usize| Some(u16::from_le_bytes(bytes.get(o..o + 2)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(bytes.get(o..o + 8)?.try_into().ok()?));
    let phoff = u64_at(0x20)? as usize;
    let phentsize = u16_at(0x36)? as usize;
    let phnum = u16_at(0x38)? as usize;
    for i in 0..phnum {
        let p_type = u32::from_le_bytes(
            bytes
                .get(phoff + i * phentsize..phoff + i * phentsize + 4)?
                .try_into()
                .ok()?,
        );
        if p_type == 3 {
            return Some(false);
        }
    }
    Some(true)
}

fn module_for(release: &str) -> PathBuf {
    Path::new("/lib/modules").join(release).join(MODULE_SUBPATH)
}

fn find_busybox() -> Result<PathBuf, Missing> {
    let hint = "install Debian's busybox-static, or set FW_CFG_BUSYBOX to a static busybox";
    let candidates: Vec<PathBuf> = match std::env::var_os(BUSYBOX_ENV) {
        Some(p) => vec![PathBuf::from(p)],
        None => ["/bin/busybox", "/usr/bin/busybox"]
            .iter()
            .map(PathBuf::from)
            .collect(),
    };
    let mut dynamic = None;
    for c in candidates {
        let Ok(bytes) = std::fs::read(&c) else {
            continue;
        };
        match elf_is_static(&bytes) {
            Some(true) => return Ok(c),
            _ => dynamic = Some(c),
        }
    }
    Err(match dynamic {
        Some(d) => Missing::new(
            "a static busybox",
            format!("{} is not a static x86-64 ELF; {hint}", d.display()),
        ),
        None => Missing::new("busybox", hint),
    })
}

impl LinuxPeer {
    /// Finds the kernel (`FW_CFG_KERNEL`, else the newest
    /// `/boot/vmlinuz-*` that has an uncompressed `qemu_fw_cfg.ko`) and a
    /// static busybox.
    pub fn find() -> Result<LinuxPeer, Missing> {
        if !cfg!(target_arch = "x86_64") {
            return Err(Missing::new(
                "an x86-64 host",
                "the Linux peer test boots an x86-64 kernel with a probe built for the host",
            ));
        }
        let hint = "install Debian's linux-image-amd64 (it ships qemu_fw_cfg.ko), \
                    or set FW_CFG_KERNEL to /boot/vmlinuz-<release>";
        let kernels: Vec<PathBuf> = match std::env::var_os(KERNEL_ENV) {
            Some(p) => vec![PathBuf::from(p)],
            None => installed_kernels(Path::new(BOOT_DIR))
                .map_err(|e| Missing::new(BOOT_DIR, format!("cannot list it: {e}; {hint}")))?,
        };
        let mut reasons = Vec::new();
        let mut chosen = None;
        for k in kernels {
            let Some(release) = kernel_release(&k) else {
                reasons.push(format!("{}: name is not vmlinuz-<release>", k.display()));
                continue;
            };
            let module = module_for(&release);
            if std::fs::metadata(&k).is_err() {
                reasons.push(format!("{} is not readable", k.display()));
            } else if module.is_file() {
                chosen = Some(LinuxPeer {
                    kernel: k,
                    release,
                    module,
                    busybox: PathBuf::new(),
                });
                break;
            } else {
                reasons.push(format!(
                    "{} has no {} (a compressed .ko.xz/.ko.zst is not supported)",
                    k.display(),
                    module.display()
                ));
            }
        }
        let mut peer = chosen.ok_or_else(|| {
            Missing::new(
                "a kernel image with qemu_fw_cfg.ko",
                format!("{hint}; looked at: [{}]", reasons.join("; ")),
            )
        })?;
        peer.busybox = find_busybox()?;
        Ok(peer)
    }

    /// The initramfs: busybox, the module, the probe and `init`.
    pub fn initramfs(&self, probe: &Path, init: &str) -> std::io::Result<Vec<u8>> {
        self.initramfs_with(probe, &[], init)
    }

    /// [`initramfs`](Self::initramfs) with more executables: each
    /// `(name, path)` becomes `bin/<name>`.
    pub fn initramfs_with(
        &self,
        probe: &Path,
        extra: &[(&str, &Path)],
        init: &str,
    ) -> std::io::Result<Vec<u8>> {
        let mut a = cpio::Archive::new();
        for d in ["bin", "dev", "proc", "sys", "tmp"] {
            a.dir(d, 0o755);
        }
        a.char_device("dev/console", 0o600, 5, 1);
        a.file("bin/busybox", 0o755, std::fs::read(&self.busybox)?);
        a.symlink("bin/sh", "busybox");
        a.file("bin/fw-cfg-probe", 0o755, std::fs::read(probe)?);
        for (name, path) in extra {
            a.file(&format!("bin/{name}"), 0o755, std::fs::read(path)?);
        }
        a.file("qemu_fw_cfg.ko", 0o644, std::fs::read(&self.module)?);
        a.file("init", 0o755, init.as_bytes().to_vec());
        Ok(a.finish())
    }

    /// Boots the kernel under QEMU's TCG with `config`, and parses what
    /// `/init` printed.
    pub fn boot(&self, qemu: &Qemu, probe: &Path, config: &LinuxBoot) -> Result<LinuxRun, String> {
        let dir = scratch_dir("linux").map_err(|e| format!("cannot create a scratch dir: {e}"))?;
        let initrd = dir.join("initrd.cpio");
        let image = self
            .initramfs(probe, INIT_SCRIPT)
            .map_err(|e| format!("cannot build the initramfs: {e}"))?;
        std::fs::write(&initrd, image).map_err(|e| format!("cannot write the initrd: {e}"))?;
        let mut args: Vec<String> = [
            "-M",
            &config.machine,
            "-accel",
            "tcg",
            "-cpu",
            &config.cpu,
            "-m",
            "256",
            "-nodefaults",
            "-nographic",
            "-serial",
            "stdio",
            "-no-reboot",
            "-kernel",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(self.kernel.display().to_string());
        args.push("-initrd".into());
        args.push(initrd.display().to_string());
        args.push("-append".into());
        args.push(CMDLINE.into());
        for (i, (name, data)) in config.files.iter().enumerate() {
            let path = dir.join(format!("item{i}"));
            std::fs::write(&path, data).map_err(|e| format!("cannot write {name}: {e}"))?;
            args.push("-fw_cfg".into());
            args.push(format!("name={name},file={}", path.display()));
        }
        let output = qemu
            .run(&args, config.timeout)
            .map_err(|e| format!("cannot run QEMU: {e}"))?;
        let _ = std::fs::remove_dir_all(&dir);
        let dump = GuestDump::parse(&output.stdout_text());
        Ok(LinuxRun { output, dump })
    }
}

/// A fresh directory under the system temporary directory.
pub fn scratch_dir(tag: &str) -> std::io::Result<PathBuf> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("fw-cfg-peers-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// One Linux boot.
#[derive(Debug, Clone)]
pub struct LinuxBoot {
    /// Machine type (`pc`: ACPI with the `QEMU0002` device).
    pub machine: String,
    /// `-cpu` value, e.g. `qemu64,phys-bits=40`.
    pub cpu: String,
    /// `-fw_cfg name=...,file=...` items (name, contents).
    pub files: Vec<(String, Vec<u8>)>,
    /// Wall-time limit.
    pub timeout: Duration,
}

impl LinuxBoot {
    /// A `-M pc` boot with `cpu` and no extra items, 240 s limit.
    pub fn new(cpu: impl Into<String>) -> Self {
        LinuxBoot {
            machine: "pc".into(),
            cpu: cpu.into(),
            files: Vec::new(),
            timeout: Duration::from_secs(240),
        }
    }

    /// Adds an item.
    pub fn file(mut self, name: impl Into<String>, data: Vec<u8>) -> Self {
        self.files.push((name.into(), data));
        self
    }
}

/// A finished boot.
#[derive(Debug, Clone)]
pub struct LinuxRun {
    /// What QEMU printed.
    pub output: QemuOutput,
    /// What `/init` reported.
    pub dump: GuestDump,
}

/// One `by_key` entry of the driver's sysfs tree.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SysfsEntry {
    /// `name`.
    pub name: String,
    /// `size`.
    pub size: u64,
    /// `raw`, for files up to [`HEX_LIMIT`] bytes.
    pub raw: Option<Vec<u8>>,
    /// Length hashed and MD5 (hex) of `raw`'s prefix.
    pub md5: Option<(u64, String)>,
}

/// Everything `/init` printed, parsed.
#[derive(Debug, Clone, Default)]
pub struct GuestDump {
    /// `address sizes` of `/proc/cpuinfo`.
    pub cpuinfo: Option<String>,
    /// Exit code of the printed probe run.
    pub probe_rc: Option<i32>,
    /// The probe's report (the 4 KiB run).
    pub probe: Option<ProbeReport>,
    /// Why a probe report did not parse, and its start.
    pub probe_unparsed: Option<String>,
    /// Exit code of the 1 MiB probe run.
    pub probe_full_rc: Option<i32>,
    /// The 1 MiB run's report.
    pub probe_full: Option<ProbeReport>,
    /// Selector -> (length hashed, MD5) of the 1 MiB run's bytes: the first
    /// [`LARGE_PREFIX`] of files larger than [`MD5_LIMIT`], else all.
    pub probe_md5: BTreeMap<u16, (u64, String)>,
    /// Exit code of `insmod qemu_fw_cfg.ko`.
    pub insmod_rc: Option<i32>,
    /// Key -> sysfs entry.
    pub sysfs: BTreeMap<u16, SysfsEntry>,
    /// QEMU's DSDT.
    pub dsdt: Option<Vec<u8>>,
    /// The `user` line `/init` printed (the lab's init script).
    pub user: Option<String>,
    /// `fw-cfg-abi-check`'s exit status (the lab's init script).
    pub abi_rc: Option<i32>,
    /// `fw-cfg-abi-check`'s output lines (the lab's init script).
    pub abi: Vec<String>,
    /// `/sys/firmware/qemu_fw_cfg/rev` (the lab's init script).
    pub rev: Option<String>,
    /// The kernel log, line by line (the lab's init script).
    pub dmesg: Vec<String>,
    /// Whether the `begin` and `end` lines were seen.
    pub complete: bool,
}

impl GuestDump {
    /// Parses one printed probe report with the protocol's type; keeps the
    /// error and the text's start when it does not parse.
    fn parse_probe(&mut self, text: &str) -> Option<ProbeReport> {
        match ProbeReport::parse(text) {
            Ok(p) => Some(p),
            Err(e) => {
                let start: String = text.chars().take(2000).collect();
                self.probe_unparsed = Some(format!("{e}: {start}"));
                None
            }
        }
    }

    /// Parses the serial console.
    pub fn parse(console: &str) -> GuestDump {
        let mut d = GuestDump::default();
        let mut begun = false;
        for line in console.lines() {
            let Some(i) = line.find(MARKER) else { continue };
            let rest = line[i + MARKER.len()..].trim_end_matches('\r');
            let (tag, value) = rest.split_once(' ').unwrap_or((rest, ""));
            let mut words = value.split(' ');
            match tag {
                "begin" => begun = true,
                "end" => d.complete = begun,
                "cpuinfo" => d.cpuinfo = Some(value.to_string()),
                "probe-rc" => d.probe_rc = value.trim().parse().ok(),
                "probe-full-rc" => d.probe_full_rc = value.trim().parse().ok(),
                "insmod-rc" => d.insmod_rc = value.trim().parse().ok(),
                "probe-json" => d.probe = d.parse_probe(value),
                "probe-full-json" => {
                    d.probe_full = d.parse_probe(value);
                    if let Some(p) = &d.probe_full {
                        d.probe_md5 = probe_md5(p);
                    }
                }
                "sysfs" => {
                    if let (Some(Ok(k)), Some(Ok(z))) = (
                        words.next().map(str::parse::<u16>),
                        words.next().map(str::parse::<u64>),
                    ) {
                        let name = words.collect::<Vec<_>>().join(" ");
                        let e = d.sysfs.entry(k).or_default();
                        e.name = name;
                        e.size = z;
                    }
                }
                "sysfs-hex" => {
                    if let Some(Ok(k)) = words.next().map(str::parse::<u16>) {
                        let raw = unhex(words.next().unwrap_or(""));
                        d.sysfs.entry(k).or_default().raw = raw;
                    }
                }
                "sysfs-md5" => {
                    if let (Some(Ok(k)), Some(Ok(n)), Some(m)) = (
                        words.next().map(str::parse::<u16>),
                        words.next().map(str::parse::<u64>),
                        words.next(),
                    ) {
                        d.sysfs.entry(k).or_default().md5 = Some((n, m.to_string()));
                    }
                }
                "dsdt" => d.dsdt = unhex(value),
                "user" => d.user = Some(value.to_string()),
                "abi-rc" => d.abi_rc = value.trim().parse().ok(),
                "abi" => d.abi.push(value.to_string()),
                "rev" => d.rev = Some(value.trim().to_string()),
                "dmesg" => d.dmesg.push(value.to_string()),
                _ => {}
            }
        }
        d
    }
}

/// Selector -> (length hashed, MD5 in hex) of the bytes each file of `p`
/// was read with: the first [`LARGE_PREFIX`] bytes of files larger than
/// [`MD5_LIMIT`], else all of them.
pub fn probe_md5(p: &ProbeReport) -> BTreeMap<u16, (u64, String)> {
    let mut out = BTreeMap::new();
    for f in p.fw_cfg.files.iter().flatten() {
        let Some(bytes) = f.bytes() else { continue };
        let size = u64::from(f.size);
        let n = if size <= MD5_LIMIT {
            size
        } else {
            LARGE_PREFIX
        };
        let hashed = &bytes[..bytes.len().min(usize::try_from(n).unwrap_or(usize::MAX))];
        out.insert(f.select, (n, md5_hex(hashed)));
    }
    out
}

/// MD5 of `bytes`, lowercase hex (as `md5sum` prints it).
pub fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The decisions the policy code makes for the CPUID values the probe saw,
/// the file bytes the test gave QEMU (`None`: no file) and the memory map
/// top the probe read.
pub fn expected_decisions(cpuid: &CpuidLine, file: Option<&[u8]>, memory_top: u64) -> Decisions {
    Decisions::from(&decide_all(&probe_inputs(cpuid, file, memory_top)))
}

/// Every mode's answer ([`ModeAnswers::compute`]) for the same inputs as
/// [`expected_decisions`].
pub fn expected_modes(cpuid: &CpuidLine, file: Option<&[u8]>, memory_top: u64) -> ModeAnswers {
    let inputs = probe_inputs(cpuid, file, memory_top);
    ModeAnswers::compute(&inputs, &cpuid.seabios_cpu(), &mut [])
}

fn probe_inputs(cpuid: &CpuidLine, file: Option<&[u8]>, memory_top: u64) -> ChannelInputs {
    let file = file.map_or(FileState::Absent, FileState::from_bytes);
    cpuid.inputs(file).with_memory_top(memory_top)
}

static PROBE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
static PROBE_LOCK: Mutex<()> = Mutex::new(());

/// Builds the static `fw-cfg-probe` once per process (release, host
/// target, `+crt-static`, own target directory inside this crate's build
/// output so the outer cargo's lock is not needed) and returns its path.
pub fn build_probe() -> Result<PathBuf, String> {
    let _guard = PROBE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    PROBE.get_or_init(build_probe_uncached).clone()
}

fn build_probe_uncached() -> Result<PathBuf, String> {
    build_probe_bin("fw-cfg-probe")
}

/// Builds `bin` of the probe package, static, into the probe's target
/// directory.
fn build_probe_bin(bin: &'static str) -> Result<PathBuf, String> {
    let target_dir = Path::new(env!("OUT_DIR")).join("peers-probe-target");
    crate::lab::build::build_static("fw-cfg-probe", bin, &target_dir)
        .map_err(|e| fw_cfg_vmm::error_chain(&e))
}

static ABI_CHECK: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// Builds the static `fw-cfg-abi-check` (the probe package's second
/// binary) once per process, as [`build_probe`] builds the probe.
pub fn build_abi_check() -> Result<PathBuf, String> {
    let _guard = PROBE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    ABI_CHECK
        .get_or_init(|| build_probe_bin("fw-cfg-abi-check"))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_elf_detection() {
        let mut elf = vec![0u8; 64 + 56];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        elf[64..68].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        assert_eq!(elf_is_static(&elf), Some(true));
        elf[64..68].copy_from_slice(&3u32.to_le_bytes()); // PT_INTERP
        assert_eq!(elf_is_static(&elf), Some(false));
        assert_eq!(elf_is_static(b"#!/bin/sh"), None);
    }

    #[test]
    fn console_parsing() {
        let console = "\x1b[2JSeaBIOS\n\
            @@FWCFG begin\n\
            [    1.0] some kernel line\n\
            @@FWCFG cpuinfo 40 bits physical, 48 bits virtual\n\
            @@FWCFG probe-rc 0\n\
            @@FWCFG probe-full-rc 0\n\
            @@FWCFG probe-json {PROBE}\r\n\
            @@FWCFG probe-full-json {PROBE}\n\
            @@FWCFG sysfs 32 2 opt/a b\n\
            @@FWCFG sysfs-hex 32 0102\n\
            @@FWCFG sysfs-md5 32 2 abcd\n\
            @@FWCFG dsdt 4453445400\n\
            @@FWCFG end\n";
        let probe = r#"{"cpuid":{"hypervisor_present":true,"kvm_base":null,"kvm_max_leaf":null,"kvm_features_edx":null,"hint":"no-kvm-leaf","max_ext_leaf":2147483656,"has_address_sizes":true,"address_sizes_eax":12328,"phys_bits":40,"guest_phys_bits":0,"vendor":"amd","ext_vendor":"amd","gb_pages":false,"la57":false},"fw_cfg":{"state":"present","id":3,"dma":true,"sysfs_present":false,"files":[{"name":"opt/a b","size":2,"select":32,"pio_hex":"0102","truncated":false,"over_budget":false,"sysfs_equal":null}]},"phys_bits_file":{"state":"absent","bytes":[]},"decisions":{"strict":{"phys_bits":36,"decided_by":"conservative-default","rule":"no-information","conflicts":[]},"heuristic":{"phys_bits":40,"decided_by":"heuristic","rule":"heuristic-valid","conflicts":[]},"combined":{"phys_bits":40,"decided_by":"heuristic","rule":"heuristic-valid","conflicts":[]}},"exit_code":0}"#;
        let console = console.replace("{PROBE}", probe);
        let d = GuestDump::parse(&console);
        assert_eq!(d.probe_unparsed, None);
        assert!(d.complete);
        assert_eq!(
            d.cpuinfo.as_deref(),
            Some("40 bits physical, 48 bits virtual")
        );
        assert_eq!(d.probe_rc, Some(0));
        let p = d.probe.expect("probe JSON parses");
        assert_eq!(p.cpuid.phys_bits, 40);
        assert_eq!(
            p.decisions,
            expected_decisions(&p.cpuid, None, p.memory_top)
        );
        assert_eq!(d.probe_full.as_ref(), Some(&p));
        assert_eq!(d.probe_full_rc, Some(0));
        let files = p.fw_cfg.files.unwrap();
        assert_eq!(files[0].name, "opt/a b");
        assert_eq!(files[0].bytes(), Some(vec![1, 2]));
        assert_eq!(d.probe_md5[&32], (2, md5_hex(&[1, 2])));
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        let s = &d.sysfs[&32];
        assert_eq!(s.name, "opt/a b");
        assert_eq!(s.raw.as_deref(), Some(&[1u8, 2][..]));
        assert_eq!(s.md5, Some((2, "abcd".to_string())));
        assert_eq!(d.dsdt.as_deref(), Some(&b"DSDT\0"[..]));
    }

    #[test]
    fn init_script_is_a_busybox_script() {
        assert!(INIT_SCRIPT.starts_with("#!/bin/busybox sh\n"));
        assert!(INIT_SCRIPT.contains("insmod /qemu_fw_cfg.ko"));
        assert!(INIT_SCRIPT.trim_end().ends_with("poweroff -f"));
    }
}
