// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Finding and running `qemu-system-x86_64`.
//!
//! [`Qemu::find`] looks at `FW_CFG_QEMU`, then `PATH`. [`Qemu::run`] starts
//! it with the serial console on stdout (`-serial stdio`), no stdin, and a
//! timeout after which the process is killed; it returns everything printed
//! and how long the run took.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::Missing;

/// Environment variable naming the QEMU binary to use.
pub const QEMU_ENV: &str = "FW_CFG_QEMU";
/// The binary looked up in `PATH`.
pub const QEMU_BINARY: &str = "qemu-system-x86_64";

/// A QEMU binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qemu {
    /// Path of the binary.
    pub path: PathBuf,
    /// `major.minor.patch` from `--version`.
    pub version: (u32, u32, u32),
}

/// What one QEMU run printed.
#[derive(Debug, Clone)]
pub struct QemuOutput {
    /// The command line (for messages).
    pub command: String,
    /// Serial console and monitor output (stdout).
    pub stdout: Vec<u8>,
    /// QEMU's own messages.
    pub stderr: Vec<u8>,
    /// Exit status; `None` when the timeout killed it.
    pub status: Option<ExitStatus>,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl QemuOutput {
    /// Stdout as text (lossy).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Stderr as text (lossy).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Whether the timeout ended the run.
    pub fn timed_out(&self) -> bool {
        self.status.is_none()
    }

    /// The exit code, if QEMU exited by itself.
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    /// A multi-line description for failure messages: command, status,
    /// time, stderr and the last `tail` bytes of stdout.
    pub fn describe(&self, tail: usize) -> String {
        let out = self.stdout_text();
        let start = out.len().saturating_sub(tail);
        let start = (start..out.len())
            .find(|i| out.is_char_boundary(*i))
            .unwrap_or(out.len());
        format!(
            "command: {}\nstatus: {}\ntime: {:.1} s\nstderr:\n{}\nstdout (last {} bytes):\n{}",
            self.command,
            match self.status {
                Some(s) => s.to_string(),
                None => "killed after the timeout".to_string(),
            },
            self.elapsed.as_secs_f64(),
            self.stderr_text(),
            tail,
            &out[start..]
        )
    }
}

fn search_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The arguments every boot of the test firmware under QEMU shares: the
/// machine, KVM, no default devices or display, COM1 on stdout, and the
/// isa-debug-exit port at 0xf4 that ends the run.
pub fn firmware_base_args(machine: &str) -> Vec<String> {
    [
        "-M",
        machine,
        "-accel",
        "kvm",
        "-nodefaults",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-no-reboot",
        "-device",
        "isa-debug-exit,iobase=0xf4,iosize=4",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Parses `QEMU emulator version 10.0.2 (...)`.
pub fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let rest = text.split("version ").nth(1)?;
    let v: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut it = v.split('.').map(|n| n.parse::<u32>().ok());
    Some((
        it.next()??,
        it.next().flatten().unwrap_or(0),
        it.next().flatten().unwrap_or(0),
    ))
}

/// Runs `path --version` and parses the version it prints.
pub fn version_of(path: &Path) -> Result<(u32, u32, u32), Missing> {
    let out = Command::new(path)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| Missing::new(path.display().to_string(), format!("cannot run: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    match parse_version(&text) {
        Some(v) if out.status.success() => Ok(v),
        _ => Err(Missing::new(
            path.display().to_string(),
            format!("unexpected --version output {text:?}"),
        )),
    }
}

impl Qemu {
    /// Finds QEMU (`FW_CFG_QEMU`, else `qemu-system-x86_64` in `PATH`) and
    /// reads its version.
    pub fn find() -> Result<Qemu, Missing> {
        let hint = "install Debian's qemu-system-x86 (QEMU 9.1 or later, e.g. from \
                    bookworm-backports), or set FW_CFG_QEMU to the binary";
        let path = match std::env::var_os(QEMU_ENV) {
            Some(p) => PathBuf::from(p),
            None => search_path(QEMU_BINARY).ok_or_else(|| Missing::new(QEMU_BINARY, hint))?,
        };
        let version = version_of(&path)?;
        Ok(Qemu { path, version })
    }

    /// Whether this QEMU knows `-cpu ...,guest-phys-bits=` (9.1 and later).
    pub fn has_guest_phys_bits(&self) -> bool {
        self.version >= (9, 1, 0)
    }

    /// The version as text.
    pub fn version_string(&self) -> String {
        let (a, b, c) = self.version;
        format!("{a}.{b}.{c}")
    }

    /// Runs QEMU with `args`, killing it after `timeout`.
    pub fn run(&self, args: &[String], timeout: Duration) -> std::io::Result<QemuOutput> {
        run_with_timeout(&self.path, args, timeout)
    }
}

/// Runs `program` with `args`, stdin closed, stdout and stderr captured,
/// killing it after `timeout`.
pub fn run_with_timeout(
    program: &Path,
    args: &[String],
    timeout: Duration,
) -> std::io::Result<QemuOutput> {
    let command = std::iter::once(program.display().to_string())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let start = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out_thread = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout.read_to_end(&mut v);
        v
    });
    let err_thread = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stderr.read_to_end(&mut v);
        v
    });
    let deadline = start + timeout;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break Some(s);
        }
        if Instant::now() >= deadline {
            // Only this child, by its id.
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let elapsed = start.elapsed();
    Ok(QemuOutput {
        command,
        stdout: out_thread.join().unwrap_or_default(),
        stderr: err_thread.join().unwrap_or_default(),
        status,
        elapsed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_parsing() {
        assert_eq!(
            parse_version("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-1~bpo12+1)\n"),
            Some((10, 0, 2))
        );
        assert_eq!(
            parse_version("QEMU emulator version 7.2.0"),
            Some((7, 2, 0))
        );
        assert_eq!(parse_version("nothing"), None);
        let q = Qemu {
            path: "q".into(),
            version: (9, 0, 5),
        };
        assert!(!q.has_guest_phys_bits());
        assert_eq!(q.version_string(), "9.0.5");
    }

    #[test]
    fn timeout_kills_the_child() {
        let out = run_with_timeout(
            Path::new("/bin/sh"),
            &["-c".into(), "echo hi; exec sleep 30".into()],
            Duration::from_millis(300),
        )
        .unwrap();
        assert!(out.timed_out());
        assert_eq!(out.stdout_text(), "hi\n");
        assert!(out.elapsed < Duration::from_secs(10));
        assert!(out.describe(10).contains("killed after the timeout"));
    }
}
