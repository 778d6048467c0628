// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `fw-cfg-probe`: reads the CPUID and fw_cfg phys-bits channels inside a
//! Linux guest and prints what every policy mode decides. See the
//! `fw-cfg-probe` library for the options and exit codes.

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn main() {
    std::process::exit(fw_cfg_probe::main_with_args(std::env::args().skip(1)));
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
fn main() {
    eprintln!("fw-cfg-probe: only x86-64 Linux is supported");
    std::process::exit(2);
}
