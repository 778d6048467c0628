// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! What the lab's guests run, built on this machine: a statically linked
//! `fw-cfg-vmm` ([`static_vmm`]), the static probe
//! ([`build_probe`]) and the PVH test
//! firmware ([`crate::firmware::path`]).
//!
//! The static `fw-cfg-vmm` comes from a nested `cargo build --release
//! --bin fw-cfg-vmm -p` [`VMM_PACKAGE`] for the host target with
//! `-C target-feature=+crt-static`, in its own target directory
//! ([`LAB_TARGET_SUBDIR`] inside cargo's target directory), so the outer
//! build's flags and artifacts stay untouched. The result must be a static
//! ELF: the outer guest's root is this machine's, but a static binary also
//! runs from the work folder without its libraries.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::Mutex;

use super::TextTail;
use crate::peers::linux::{build_abi_check, build_probe, elf_is_static};

/// The package that holds the `fw-cfg-vmm` binary.
pub const VMM_PACKAGE: &str = "fw-cfg-vmm";
/// The binary.
pub const VMM_BIN: &str = "fw-cfg-vmm";
/// The nested build's target directory, inside cargo's.
pub const LAB_TARGET_SUBDIR: &str = "lab";
/// The target triple of the static builds.
pub const STATIC_TARGET: &str = "x86_64-unknown-linux-gnu";
/// Lines of a failed build's log an error shows.
pub const LOG_LINES: usize = 40;

/// Environment of the outer cargo that must not reach the nested build
/// (wrappers, coverage, flags and target settings of the outer build).
const OUTER_ENV: [&str; 10] = [
    "RUSTFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CLIPPY_ARGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_LLVM_COV",
    "LLVM_PROFILE_FILE",
];

/// Why a lab artifact could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// No cargo target directory above the running executable.
    #[error(
        "no cargo target directory (one with CACHEDIR.TAG) above {}",
        .exe.display()
    )]
    NoTargetDir {
        /// The running executable.
        exe: PathBuf,
    },
    /// cargo could not be started.
    #[error("cannot run {}: {source}", .program.display())]
    Spawn {
        /// The cargo binary.
        program: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The nested build failed.
    #[error("`cargo build --release -p {package} --bin {bin}` (static) failed ({status}):\n{log}")]
    Cargo {
        /// The package.
        package: &'static str,
        /// The binary.
        bin: &'static str,
        /// cargo's exit status.
        status: ExitStatus,
        /// The end of its output.
        log: TextTail,
    },
    /// The built binary could not be read.
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        /// The binary.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The built binary is dynamically linked (or not an x86-64 ELF).
    #[error("{} is not a static x86-64 ELF", .path.display())]
    NotStatic {
        /// The binary.
        path: PathBuf,
    },
    /// The static probe could not be built.
    #[error("building the static fw-cfg-probe failed:\n{log}")]
    Probe {
        /// The end of the build's message.
        log: TextTail,
    },
}

/// The first ancestor of `start` that is a cargo target directory (holds
/// `CACHEDIR.TAG`).
pub fn target_dir_above(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|d| d.join("CACHEDIR.TAG").is_file())
        .map(Path::to_path_buf)
}

/// Cargo's target directory of the running program (a test or a binary
/// cargo built).
pub fn cargo_target_dir() -> Result<PathBuf, BuildError> {
    let exe = std::env::current_exe().unwrap_or_default();
    target_dir_above(&exe).ok_or(BuildError::NoTargetDir { exe })
}

/// Builds `bin` of `package` (release, [`STATIC_TARGET`], `+crt-static`)
/// into `target_dir` and checks that it is static.
pub fn build_static(
    package: &'static str,
    bin: &'static str,
    target_dir: &Path,
) -> Result<PathBuf, BuildError> {
    let cargo = PathBuf::from(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    let mut cmd = Command::new(&cargo);
    // Any directory of the workspace: cargo finds its root from there.
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            package,
            "--bin",
            bin,
        ])
        .args(["--target", STATIC_TARGET])
        .arg("--target-dir")
        .arg(target_dir);
    for var in OUTER_ENV {
        cmd.env_remove(var);
    }
    cmd.env("CARGO_ENCODED_RUSTFLAGS", "-Ctarget-feature=+crt-static");
    let out = cmd.output().map_err(|source| BuildError::Spawn {
        program: cargo.clone(),
        source,
    })?;
    if !out.status.success() {
        return Err(BuildError::Cargo {
            package,
            bin,
            status: out.status,
            log: TextTail::last(&String::from_utf8_lossy(&out.stderr), LOG_LINES),
        });
    }
    let path = target_dir.join(STATIC_TARGET).join("release").join(bin);
    let bytes = std::fs::read(&path).map_err(|source| BuildError::Read {
        path: path.clone(),
        source,
    })?;
    match elf_is_static(&bytes) {
        Some(true) => Ok(path),
        _ => Err(BuildError::NotStatic { path }),
    }
}

/// The static `fw-cfg-vmm`, built once per process into
/// `<cargo target dir>/`[`LAB_TARGET_SUBDIR`].
pub fn static_vmm() -> Result<PathBuf, BuildError> {
    static BUILT: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.as_ref() {
        return Ok(p.clone());
    }
    let target_dir = cargo_target_dir()?.join(LAB_TARGET_SUBDIR);
    eprintln!(
        "lab: building a static {VMM_BIN} (cargo build --release -p {VMM_PACKAGE}, +crt-static, \
         target dir {})…",
        target_dir.display()
    );
    let path = build_static(VMM_PACKAGE, VMM_BIN, &target_dir)?;
    *built = Some(path.clone());
    Ok(path)
}

/// What the lab's guests run, as paths on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabTools {
    /// The static `fw-cfg-vmm`.
    pub vmm: PathBuf,
    /// The PVH test firmware ELF.
    pub firmware: PathBuf,
    /// The static `fw-cfg-probe`, when asked for.
    pub probe: Option<PathBuf>,
    /// The static `fw-cfg-abi-check`, built with the probe.
    pub abi_check: Option<PathBuf>,
}

impl LabTools {
    /// Builds the static `fw-cfg-vmm` and, with `probe`, the static probe;
    /// the firmware is this crate's build output.
    pub fn build(probe: bool) -> Result<LabTools, BuildError> {
        let vmm = static_vmm()?;
        let (probe, abi_check) = if probe {
            eprintln!("lab: building the static fw-cfg-probe and fw-cfg-abi-check…");
            let err = |e: String| BuildError::Probe {
                log: TextTail::last(&e, LOG_LINES),
            };
            (
                Some(build_probe().map_err(err)?),
                Some(build_abi_check().map_err(err)?),
            )
        } else {
            (None, None)
        };
        Ok(LabTools {
            vmm,
            firmware: crate::firmware::path(),
            probe,
            abi_check,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_dir_is_found_above_the_executable() {
        let dir = std::env::temp_dir().join(format!("fw-cfg-lab-target-{}", std::process::id()));
        let deps = dir.join("debug").join("deps");
        std::fs::create_dir_all(&deps).unwrap();
        assert_eq!(target_dir_above(&deps.join("lab-0123")), None);
        std::fs::write(
            dir.join("CACHEDIR.TAG"),
            "Signature: 8a477f597d28d172789f06886806bc55",
        )
        .unwrap();
        assert_eq!(target_dir_above(&deps.join("lab-0123")), Some(dir.clone()));
        std::fs::remove_dir_all(&dir).unwrap();
        // This test runs from cargo's target directory.
        let t = cargo_target_dir().unwrap();
        assert!(std::env::current_exe().unwrap().starts_with(&t));
    }
}
