// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The nested KVM lab: real KVM, with real AMD SVM and nested paging,
//! inside QEMU's TCG, for machines whose own KVM cannot boot Linux.
//!
//! QEMU's TCG with `-cpu max` emulates AMD SVM with nested paging, so the
//! installed distribution kernel booted under it loads `kvm.ko` and
//! `kvm-amd.ko` and has a working `/dev/kvm` ("SVM: kvm: Nested Paging
//! enabled"). The machine's root directory is shared read-only with the
//! outer guest over 9p, so every program of the machine (QEMU, cargo's
//! outputs, busybox) runs inside with real KVM; a fresh per-run work folder
//! is shared read-write.
//!
//! A [`Lab`] describes one outer boot: the outer vCPU's MAXPHYADDR
//! ([`Lab::phys_bits`], `-cpu max,phys-bits=N,host-phys-bits=off`, so
//! hosts of 36..=52 bits can be simulated; the inner KVM host reports it),
//! memory, a timeout, files placed in the work folder, and the shell
//! script run inside, in which [`Lab::guest`] adds inner guests (any
//! command, usually a VMM with `-accel kvm`) whose stdout, stderr, exit
//! status and wall time come back one by one in [`LabRun::guests`]. One
//! outer boot can run many inner guests.
//!
//! [`Lab::run`] creates the run folder under the system temporary
//! directory (the initramfs, and `work/`, the folder the guest sees),
//! writes nothing outside it, boots the outer QEMU, kills it at the
//! timeout, reads the results and removes the folder (unless
//! [`Lab::keep`]). The outer guest's `/init` (busybox, from an initramfs
//! built by [`init`]) loads the virtio, 9p and KVM modules, mounts the
//! machine's root on `/host` with `proc`, `sys`, `dev` and a `tmpfs` on
//! `/tmp` under it, the work folder on `/host/tmp/work`, checks
//! `/dev/kvm`, and runs the script with `chroot /host` in `/tmp/work`.
//! The machine's own `/tmp` is therefore hidden inside: give the guests
//! their files with [`Lab::file`] and [`Lab::copy`] (paths inside are
//! [`inner_path`]).
//!
//! Every way this can go wrong is a [`LabError`] that says what happened;
//! nothing passes silently. Missing peers (QEMU, the kernel, a module,
//! busybox) are [`Missing`] from [`LabPeers::find`],
//! so tests can use [`crate::peers::require`].
//!
//! [`build`] builds what the guests need: a statically linked
//! `fw-cfg-vmm` (its own target directory, `lab/` in cargo's), the static
//! probe and the PVH test firmware ([`build::LabTools`]); [`firmware`]
//! runs that firmware under QEMU microvm and under `fw-cfg-vmm` in one
//! boot, [`linux`] the distribution kernel with Linux's `qemu_fw_cfg`
//! driver and the probe; [`matrix`] runs `compare`'s whole configuration
//! matrix to compare with this machine's KVM; [`measure`] measures the
//! firmware's phases and Linux's boot under both VMMs on real SVM;
//! [`compare`] is `compare --lab`; [`situations`] runs the situations
//! table's rows on real KVM hosts of their widths; [`migration`] moves a
//! migration row's guest between two of them in `fw-cfg-vmm`'s snapshot.
//!
//! ```no_run
//! use std::time::Duration;
//! use fw_cfg_tests::lab::{Lab, LabPeers};
//!
//! let peers = LabPeers::find()?;
//! let run = Lab::new()
//!     .phys_bits(39)
//!     .timeout(Duration::from_secs(120))
//!     .script("grep -m1 'address sizes' /proc/cpuinfo")
//!     .guest("kvm-ok", ["/bin/sh", "-c", "test -c /dev/kvm"], Duration::from_secs(5))?
//!     .run(&peers)?;
//! assert_eq!(run.status, 0);
//! assert!(run.output.contains("39 bits physical"));
//! assert_eq!(run.guests["kvm-ok"].status, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Run the lab's tests with `cargo test -p fw-cfg-tests --test lab --
//! --nocapture`. Measured on a 2-core machine: an outer boot that only runs
//! a shell script takes 9 to 11 s; the PVH test firmware as an inner guest
//! takes 4 to 8 s under QEMU microvm and about 2.5 s under `fw-cfg-vmm`;
//! the whole test file (four outer boots, in parallel) about 45 s, plus
//! about 50 s once for the first static `fw-cfg-vmm` build.

pub mod bios;
pub mod boot_log;
pub mod build;
pub mod compare;
mod error;
pub mod firmware;
pub mod init;
pub mod linux;
pub mod matrix;
pub mod measure;
pub mod migration;
mod script;
pub mod situations;

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

pub use error::{LabError, TextTail};
pub use script::inner_path;

use crate::peers::Missing;
use crate::peers::linux::LinuxPeer;
use crate::peers::qemu::{Qemu, QemuOutput};

/// Where the work folder is inside the outer guest (after `chroot`).
pub const INNER_WORK: &str = "/tmp/work";
/// The work folder's subdirectory the lab keeps for itself (the script,
/// its output and status, the inner guests' results).
pub const LAB_DIR: &str = ".lab";
/// Prefix of the lines the outer guest's `/init` prints for the runner.
pub const MARKER: &str = "@@LAB ";
/// Outer MAXPHYADDR values [`Lab::phys_bits`] accepts.
pub const PHYS_BITS_RANGE: std::ops::RangeInclusive<u8> = 36..=52;
/// Default outer guest memory (MiB): the KVM host and its guests share it.
pub const DEFAULT_MEMORY_MIB: u32 = 3072;
/// Default wall-time limit of one outer boot.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(180);
/// Console lines an error shows.
pub const TAIL_LINES: usize = 20;
/// The outer kernel's command line.
pub const CMDLINE: &str = "console=ttyS0 quiet panic=-1";

/// The name of an inner guest: one plain path component (letters, digits,
/// `-`, `_`, `.`), used for its result files.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GuestName(String);

impl GuestName {
    /// Checks `name`.
    pub fn new(name: &str) -> Result<Self, LabError> {
        let ok = !name.is_empty()
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if ok {
            Ok(GuestName(name.to_string()))
        } else {
            Err(LabError::BadName { name: name.into() })
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GuestName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::borrow::Borrow<str> for GuestName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// QEMU, the kernel, its modules and busybox: what [`Lab::run`] needs from
/// this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabPeers {
    /// The QEMU that runs the outer guest (the guests may use it too).
    pub qemu: Qemu,
    /// The kernel (also the outer guest's) and busybox.
    pub linux: LinuxPeer,
    /// The modules the outer `/init` loads, in [`init::MODULES`] order.
    pub modules: Vec<PathBuf>,
}

impl LabPeers {
    /// Finds QEMU ([`Qemu::find`]), the kernel and busybox
    /// ([`LinuxPeer::find`]) and the modules of [`init::MODULES`] in the
    /// kernel's modules directory (uncompressed).
    pub fn find() -> Result<LabPeers, Missing> {
        let qemu = Qemu::find()?;
        let linux = LinuxPeer::find()?;
        let modules = init::find_modules(Path::new("/lib/modules").join(&linux.release))?;
        Ok(LabPeers {
            qemu,
            linux,
            modules,
        })
    }
}

/// A file placed in the work folder before the boot.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Bytes(Vec<u8>, u32),
    Copy(PathBuf),
}

/// One step of the script.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Shell(String),
    Guest {
        name: GuestName,
        argv: Vec<String>,
        timeout: Duration,
    },
}

/// One outer boot: its settings, the work folder's files and the script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lab {
    phys_bits: Option<u8>,
    memory_mib: u32,
    timeout: Duration,
    keep: bool,
    files: BTreeMap<PathBuf, Source>,
    steps: Vec<Step>,
    /// `-fw_cfg` items of the outer QEMU: name and work-folder file.
    outer_fw_cfg: Vec<(String, PathBuf)>,
    fetch: Vec<PathBuf>,
}

impl Default for Lab {
    fn default() -> Self {
        Lab::new()
    }
}

/// One inner guest's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestRun {
    /// Exit status (124 when the guest's timeout ended it, 137 when it
    /// then had to be killed).
    pub status: i32,
    /// Its stdout (a VMM's serial console).
    pub stdout: Vec<u8>,
    /// Its stderr.
    pub stderr: Vec<u8>,
    /// Wall time, as measured inside the outer guest.
    pub elapsed: Duration,
}

impl GuestRun {
    /// Whether the guest's timeout ended it.
    pub fn timed_out(&self) -> bool {
        matches!(self.status, 124 | 137)
    }
}

/// A finished outer boot.
#[derive(Debug, Clone)]
pub struct LabRun {
    /// The script's exit status.
    pub status: i32,
    /// The script's stdout and stderr.
    pub output: String,
    /// The outer guest's console.
    pub console: String,
    /// The inner guests' results, by name.
    pub guests: BTreeMap<GuestName, GuestRun>,
    /// The work-folder files [`Lab::fetch`] asked for that the script
    /// left, by name.
    pub files: BTreeMap<PathBuf, Vec<u8>>,
    /// Wall time of the outer boot, QEMU start to exit.
    pub elapsed: Duration,
    /// The run folder, when [`Lab::keep`] kept it.
    pub kept: Option<PathBuf>,
}

impl LabRun {
    /// The result of guest `name`, or [`LabError::GuestMissing`].
    pub fn guest(&self, name: &GuestName) -> Result<&GuestRun, LabError> {
        self.guests.get(name).ok_or_else(|| LabError::GuestMissing {
            guest: name.clone(),
        })
    }
}

/// Checks a work-folder name: relative, plain components, not in
/// [`LAB_DIR`].
fn check_name(name: &Path) -> Result<(), LabError> {
    let mut components = name.components().peekable();
    let first_ok = matches!(components.peek(), Some(Component::Normal(c)) if *c != LAB_DIR);
    if first_ok && components.all(|c| matches!(c, Component::Normal(_))) {
        Ok(())
    } else {
        Err(LabError::BadName { name: name.into() })
    }
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> LabError + use<> {
    let path = path.to_path_buf();
    move |source| LabError::Io {
        action,
        path,
        source,
    }
}

impl Lab {
    /// A boot with the TCG default MAXPHYADDR, [`DEFAULT_MEMORY_MIB`],
    /// [`DEFAULT_TIMEOUT`], no files and an empty script.
    pub fn new() -> Self {
        Lab {
            phys_bits: None,
            memory_mib: DEFAULT_MEMORY_MIB,
            timeout: DEFAULT_TIMEOUT,
            keep: false,
            files: BTreeMap::new(),
            steps: Vec::new(),
            outer_fw_cfg: Vec::new(),
            fetch: Vec::new(),
        }
    }

    /// Gives the outer QEMU the fw_cfg file `name` with `data` (`-fw_cfg
    /// name=...,file=...`), e.g. `etc/phys-bits-valid`: the outer Linux
    /// exposes it under `/sys/firmware/qemu_fw_cfg/by_name/`.
    pub fn outer_fw_cfg(mut self, name: &str, data: impl Into<Vec<u8>>) -> Result<Self, LabError> {
        let file = PathBuf::from(format!("outer-fw-cfg/{}", self.outer_fw_cfg.len()));
        self = self.file(&file, data, false)?;
        self.outer_fw_cfg.push((name.to_string(), file));
        Ok(self)
    }

    /// The outer vCPU's MAXPHYADDR (`-cpu max,phys-bits=N,host-phys-bits=off`),
    /// in [`PHYS_BITS_RANGE`]; the inner KVM host reports it.
    pub fn phys_bits(mut self, bits: u8) -> Self {
        self.phys_bits = Some(bits);
        self
    }

    /// The outer guest's memory in MiB.
    pub fn memory_mib(mut self, mib: u32) -> Self {
        self.memory_mib = mib;
        self
    }

    /// The wall-time limit of the outer boot; the outer QEMU is killed then.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Keeps the run folder after the run ([`LabRun::kept`]).
    pub fn keep(mut self, keep: bool) -> Self {
        self.keep = keep;
        self
    }

    /// Places `data` at `name` in the work folder (mode 0644, or 0755 when
    /// `executable`).
    pub fn file(
        mut self,
        name: impl AsRef<Path>,
        data: impl Into<Vec<u8>>,
        executable: bool,
    ) -> Result<Self, LabError> {
        let name = name.as_ref();
        check_name(name)?;
        let mode = if executable { 0o755 } else { 0o644 };
        self.files
            .insert(name.into(), Source::Bytes(data.into(), mode));
        Ok(self)
    }

    /// Copies the machine's file `from` to `name` in the work folder (with
    /// its permissions) when the run starts.
    pub fn copy(
        mut self,
        name: impl AsRef<Path>,
        from: impl Into<PathBuf>,
    ) -> Result<Self, LabError> {
        let name = name.as_ref();
        check_name(name)?;
        self.files.insert(name.into(), Source::Copy(from.into()));
        Ok(self)
    }

    /// Reads work-folder file `name` back after the run (e.g. what a guest
    /// wrote there) into [`LabRun::files`], when the script left it.
    pub fn fetch(mut self, name: impl AsRef<Path>) -> Result<Self, LabError> {
        let name = name.as_ref();
        check_name(name)?;
        self.fetch.push(name.into());
        Ok(self)
    }

    /// Appends shell commands to the script (run by `/bin/sh` in
    /// [`INNER_WORK`]; its last command's status is [`LabRun::status`]).
    pub fn script(mut self, commands: impl Into<String>) -> Self {
        self.steps.push(Step::Shell(commands.into()));
        self
    }

    /// Appends an inner guest to the script: `argv` runs with stdin closed,
    /// ended by `timeout` (coreutils' `timeout`, then `SIGKILL` 5 s later);
    /// its result is [`LabRun::guests`]`[name]`.
    pub fn guest<I, S>(mut self, name: &str, argv: I, timeout: Duration) -> Result<Self, LabError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let name = GuestName::new(name)?;
        let argv = argv.into_iter().map(Into::into).collect();
        self.steps.push(Step::Guest {
            name,
            argv,
            timeout,
        });
        Ok(self)
    }

    /// The outer `-cpu` value.
    pub fn outer_cpu(&self) -> Result<String, LabError> {
        match self.phys_bits {
            None => Ok("max".into()),
            Some(bits) if PHYS_BITS_RANGE.contains(&bits) => {
                Ok(format!("max,phys-bits={bits},host-phys-bits=off"))
            }
            Some(bits) => Err(LabError::PhysBits { bits }),
        }
    }

    /// The outer QEMU's arguments for `kernel`, `initrd` and the work folder.
    pub fn outer_args(
        &self,
        kernel: &Path,
        initrd: &Path,
        work: &Path,
    ) -> Result<Vec<String>, LabError> {
        let mut args: Vec<String> = ["-accel", "tcg", "-cpu"].map(String::from).to_vec();
        args.push(self.outer_cpu()?);
        args.extend(["-m".into(), self.memory_mib.to_string()]);
        args.extend(
            [
                "-smp",
                "1",
                "-nodefaults",
                "-nographic",
                "-serial",
                "stdio",
                "-no-reboot",
            ]
            .map(String::from),
        );
        args.extend(["-kernel".into(), kernel.display().to_string()]);
        args.extend(["-initrd".into(), initrd.display().to_string()]);
        args.extend(["-append".into(), CMDLINE.into()]);
        for (name, file) in &self.outer_fw_cfg {
            let path = work.join(file);
            args.extend([
                "-fw_cfg".into(),
                format!("name={name},file={}", path.display()),
            ]);
        }
        args.extend([
            "-virtfs".into(),
            "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
                .into(),
            "-virtfs".into(),
            format!(
                "local,path={},mount_tag=work,security_model=none,multidevs=remap",
                work.display()
            ),
        ]);
        Ok(args)
    }

    /// Boots the outer guest, runs the script and returns what it did.
    pub fn run(&self, peers: &LabPeers) -> Result<LabRun, LabError> {
        let cpu = self.outer_cpu()?;
        let dir = run_dir()?;
        let result = self.run_in(peers, &dir, &cpu);
        let kept = if self.keep {
            eprintln!("lab: kept the run folder {}", dir.display());
            Some(dir)
        } else {
            let _ = std::fs::remove_dir_all(&dir);
            None
        };
        result.map(|mut run| {
            run.kept = kept;
            run
        })
    }

    fn run_in(&self, peers: &LabPeers, dir: &Path, cpu: &str) -> Result<LabRun, LabError> {
        let work = dir.join("work");
        self.populate(&work)?;
        let initrd = dir.join("initrd.cpio");
        let image = init::initramfs(&peers.linux.busybox, &peers.modules)?;
        std::fs::write(&initrd, image).map_err(io_error("write", &initrd))?;
        let args = self.outer_args(&peers.linux.kernel, &initrd, &work)?;
        eprintln!(
            "lab: booting outer guest (TCG, -cpu {cpu}, {} MiB, {} s limit)…",
            self.memory_mib,
            self.timeout.as_secs()
        );
        let output = peers
            .qemu
            .run(&args, self.timeout)
            .map_err(|source| LabError::Spawn {
                program: peers.qemu.path.clone(),
                source,
            })?;
        let run = self.collect(&work, &output);
        match &run {
            Ok(r) => eprintln!(
                "lab: outer guest done in {:.1} s (script status {})",
                output.elapsed.as_secs_f64(),
                r.status
            ),
            Err(_) => eprintln!(
                "lab: outer guest failed after {:.1} s",
                output.elapsed.as_secs_f64()
            ),
        }
        run
    }

    /// Creates the work folder with the files, the script and the lab's
    /// result directories.
    fn populate(&self, work: &Path) -> Result<(), LabError> {
        let guests = work.join(LAB_DIR).join("guests");
        std::fs::create_dir_all(&guests).map_err(io_error("create", &guests))?;
        for (name, source) in &self.files {
            let path = work.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io_error("create", parent))?;
            }
            match source {
                Source::Bytes(data, mode) => {
                    std::fs::write(&path, data).map_err(io_error("write", &path))?;
                    set_mode(&path, *mode)?;
                }
                Source::Copy(from) => {
                    std::fs::copy(from, &path).map_err(io_error("copy", from))?;
                }
            }
        }
        let script = work.join(LAB_DIR).join("run.sh");
        std::fs::write(&script, script::render(&self.steps)).map_err(io_error("write", &script))
    }

    /// Reads the results out of the work folder after the outer QEMU ended.
    fn collect(&self, work: &Path, output: &QemuOutput) -> Result<LabRun, LabError> {
        let console = output.stdout_text();
        let tail = || TextTail::last(&console, TAIL_LINES);
        init::check_console(&console)?;
        let Some(qemu_status) = output.status else {
            return Err(LabError::Timeout {
                timeout: self.timeout,
                tail: tail(),
            });
        };
        let lab = work.join(LAB_DIR);
        let status_path = lab.join("status");
        let status = match std::fs::read_to_string(&status_path) {
            Ok(text) => text
                .trim()
                .parse::<i32>()
                .map_err(|_| LabError::BadStatus { path: status_path })?,
            Err(_) => {
                return Err(LabError::NoStatus {
                    qemu_status,
                    tail: tail(),
                    stderr: TextTail::last(&output.stderr_text(), TAIL_LINES),
                });
            }
        };
        let output_path = lab.join("output");
        let out = std::fs::read(&output_path).map_err(io_error("read", &output_path))?;
        let mut guests = BTreeMap::new();
        for step in &self.steps {
            if let Step::Guest { name, .. } = step {
                if let Some(g) = script::read_guest(&lab.join("guests"), name)? {
                    guests.insert(name.clone(), g);
                }
            }
        }
        let mut files = BTreeMap::new();
        for name in &self.fetch {
            let path = work.join(name);
            if path.is_file() {
                let data = std::fs::read(&path).map_err(io_error("read", &path))?;
                files.insert(name.clone(), data);
            }
        }
        Ok(LabRun {
            status,
            output: String::from_utf8_lossy(&out).into_owned(),
            console,
            guests,
            files,
            elapsed: output.elapsed,
            kept: None,
        })
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), LabError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io_error("set permissions of", path))
}

/// A fresh run folder under the system temporary directory.
fn run_dir() -> Result<PathBuf, LabError> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("fw-cfg-lab-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(io_error("create", &dir))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outer_cpu_and_arguments() {
        let lab = Lab::new();
        assert_eq!(lab.outer_cpu().unwrap(), "max");
        let lab = lab.phys_bits(39).memory_mib(2048);
        assert_eq!(
            lab.outer_cpu().unwrap(),
            "max,phys-bits=39,host-phys-bits=off"
        );
        let args = lab
            .outer_args(Path::new("/k"), Path::new("/i"), Path::new("/w"))
            .unwrap();
        let joined = args.join(" ");
        assert!(joined.starts_with("-accel tcg -cpu max,phys-bits=39,host-phys-bits=off -m 2048 "));
        assert!(joined.contains(" -kernel /k -initrd /i -append "));
        assert!(joined.contains("path=/,mount_tag=hostroot,security_model=none,readonly=on"));
        assert!(joined.contains("path=/w,mount_tag=work,security_model=none"));
        assert!(!joined.contains("path=/w,mount_tag=work,security_model=none,readonly"));
        for bits in [35, 53, 0] {
            assert!(matches!(
                Lab::new().phys_bits(bits).outer_cpu(),
                Err(LabError::PhysBits { bits: b }) if b == bits
            ));
        }
        assert!(Lab::new().phys_bits(36).outer_cpu().is_ok());
        assert!(Lab::new().phys_bits(52).outer_cpu().is_ok());
    }

    #[test]
    fn names_stay_inside_the_work_folder() {
        for good in ["a", "bin/fw-cfg-vmm", "x.json"] {
            assert!(check_name(Path::new(good)).is_ok(), "{good}");
        }
        for bad in ["", "/etc/passwd", "../x", "a/../../x", ".lab/status", "./a"] {
            assert!(
                matches!(check_name(Path::new(bad)), Err(LabError::BadName { .. })),
                "{bad}"
            );
        }
        assert!(Lab::new().file("../x", b"".to_vec(), false).is_err());
        assert!(Lab::new().copy(".lab/run.sh", "/bin/sh").is_err());
        assert!(Lab::new().fetch(".lab/status").is_err());
        assert!(Lab::new().fetch("/etc/passwd").is_err());
        assert!(Lab::new().fetch("g/stats.json").is_ok());
        assert!(GuestName::new("qemu-host_1.x").is_ok());
        for bad in ["", ".x", "a/b", "a b", "a'b"] {
            assert!(GuestName::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn populate_writes_only_the_work_folder() {
        let dir = run_dir().unwrap();
        let work = dir.join("work");
        let lab = Lab::new()
            .file("a/b.txt", b"hi".to_vec(), false)
            .unwrap()
            .file("run-me", b"#!/bin/sh\n".to_vec(), true)
            .unwrap()
            .script("echo one")
            .guest("g", ["/bin/true"], Duration::from_secs(3))
            .unwrap();
        lab.populate(&work).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::read(work.join("a/b.txt")).unwrap(), b"hi");
        let mode = std::fs::metadata(work.join("run-me"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        let script = std::fs::read_to_string(work.join(".lab/run.sh")).unwrap();
        assert!(script.contains("echo one\n"));
        assert!(work.join(".lab/guests").is_dir());
        let mut top: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        top.sort();
        assert_eq!(top, ["work"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
