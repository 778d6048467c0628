// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Builds the PVH test firmware (`fw-cfg-test-firmware`) for the host target
//! and exports its path as `FW_CFG_TEST_FIRMWARE`.
//!
//! The firmware is a workspace of its own (excluded from the main one): it
//! is `no_std` with its own link arguments, it must not see features that
//! members of the main workspace enable on shared dependencies, and it is
//! compiled without SSE (`-Ctarget-feature=-sse,-sse2`), because some
//! nested KVM engines cannot execute SSE instructions. A nested `cargo
//! build --manifest-path ... --locked` with its own target directory inside
//! `OUT_DIR` does all of that without another toolchain and without waiting
//! on the outer build's lock.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Rust flags of the nested build, as `CARGO_ENCODED_RUSTFLAGS` (0x1f
/// separated). Disabling SSE makes rustc warn that the float ABI needs it;
/// the firmware has no floating point.
const FIRMWARE_RUSTFLAGS: &str = "-Ctarget-feature=-sse,-sse2,-avx,-avx2";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let host = env::var("HOST").expect("set by cargo");

    // The harness is tests/harness; the firmware is its sibling
    // tests/firmware, two levels below the workspace root.
    let tests_dir = manifest_dir
        .parent()
        .expect("the harness sits in tests/")
        .to_path_buf();
    let firmware_dir = tests_dir.join("firmware");
    let workspace_dir = tests_dir
        .parent()
        .expect("tests/ sits inside the workspace")
        .to_path_buf();
    for path in [
        firmware_dir.join("src"),
        firmware_dir.join("Cargo.toml"),
        firmware_dir.join("Cargo.lock"),
        firmware_dir.join("build.rs"),
        firmware_dir.join("linker.ld"),
        tests_dir.join("protocol").join("src"),
        tests_dir.join("protocol").join("Cargo.toml"),
        workspace_dir.join("guest").join("src"),
        workspace_dir.join("guest").join("abi"),
        workspace_dir.join("guest").join("Cargo.toml"),
    ] {
        println!("cargo:rerun-if-changed={}", path.display());
    }

    let target_dir = out_dir.join("firmware-target");
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(&firmware_dir)
        .arg("build")
        .arg("--manifest-path")
        .arg(firmware_dir.join("Cargo.toml"))
        .arg("--locked")
        .args(["--release", "--target", &host])
        .arg("--target-dir")
        .arg(&target_dir)
        .env("CARGO_ENCODED_RUSTFLAGS", FIRMWARE_RUSTFLAGS)
        // The outer build may run under clippy, a coverage tool or custom
        // flags; none of that applies to the firmware.
        .env_remove("RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_BUILD_RUSTFLAGS");
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {:?} to build the test firmware: {e}", cargo));
    if !output.status.success() {
        panic!(
            "building the test firmware failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let built = target_dir
        .join(&host)
        .join("release")
        .join("fw-cfg-test-firmware");
    let dest = out_dir.join("fw-cfg-test-firmware.elf");
    copy(&built, &dest);
    println!("cargo:rustc-env=FW_CFG_TEST_FIRMWARE={}", dest.display());
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap_or_else(|e| {
        panic!(
            "cannot copy the test firmware from {} to {}: {e}",
            from.display(),
            to.display()
        )
    });
}
