// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Link arguments for the freestanding PVH firmware: no C start files, a
//! static non-PIE image laid out by `linker.ld` at 1 MiB.

use std::path::PathBuf;

fn main() {
    let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from) else {
        panic!("cargo sets CARGO_MANIFEST_DIR for build scripts");
    };
    let script = dir.join("linker.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    for arg in ["-nostartfiles", "-static", "-no-pie", "-Wl,--build-id=none"] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", script.display());
}
