// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Link arguments for the freestanding PVH firmware: no C start files, a
//! static non-PIE image laid out by `linker.ld` at 1 MiB.

use std::path::PathBuf;

fn main() {
    println!("cargo:rustc-check-cfg=cfg(fw_hosted)");
    if std::env::var_os("CARGO_FEATURE_STD").is_some() {
        // The hosted stub (see Cargo.toml): a normal program, normal link.
        println!("cargo:rustc-cfg=fw_hosted");
        return;
    }
    let dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let script = dir.join("linker.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    for arg in ["-nostartfiles", "-static", "-no-pie", "-Wl,--build-id=none"] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", script.display());
}
