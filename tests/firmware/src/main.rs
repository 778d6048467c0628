// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! PVH-bootable test firmware for the fw_cfg phys-bits channels.
//!
//! Booted by the mini VMM of `fw-cfg-tests` or by
//! `qemu-system-x86_64 -M microvm -kernel`, it switches to long mode
//! (module `boot`), then measures every channel and transport ([`probes`]):
//! a null-exit baseline, the CPUID channel, and `etc/phys-bits-valid`
//! through fw_cfg port I/O, port I/O with `rep insb`, DMA, MMIO and MMIO
//! DMA (the MMIO ones when the command line announces a window with
//! `qemu_fw_cfg.mmio=SIZE@BASE`). Each prints one JSON object per line on
//! COM1; then the firmware leaves through the debug-exit port with value 0
//! (QEMU exit status 1).
//!
//! With `fw_cfg_tests.bench=SIZE@BASE` on the command line it runs the
//! benchmark phases of [`mod@bench`] instead (one `bench` line each).

#![cfg_attr(not(fw_hosted), no_std)]
#![cfg_attr(not(fw_hosted), no_main)]
// The hosted stub (feature `std`) compiles every module but runs none.
#![cfg_attr(fw_hosted, allow(dead_code))]

mod bench;
#[cfg(not(fw_hosted))]
mod boot;
mod buffers;
#[cfg(not(fw_hosted))]
mod mem;
mod out;
mod probes;
mod pvh;
mod serial;

#[cfg(not(fw_hosted))]
use out::Line;

/// The hosted stub's entry (feature `std`, see Cargo.toml).
#[cfg(fw_hosted)]
fn main() {
    eprintln!("fw-cfg-test-firmware was built with the `std` feature: this is not the firmware");
    std::process::exit(1);
}

/// Rust entry, called by the boot stub in 64-bit mode with the physical
/// address of the PVH `hvm_start_info`.
#[cfg(not(fw_hosted))]
#[unsafe(no_mangle)]
extern "C" fn fw_main(start_info: u64) -> ! {
    // A fresh line: firmware before us (QEMU's option ROM) may have left
    // text on the console.
    serial::Serial.write_bytes(b"\n");
    let cmdline = pvh::cmdline(start_info);
    let mmio = pvh::mmio_window(cmdline);
    probes::boot(start_info, cmdline, mmio);
    if let Some(area) = bench::param(cmdline) {
        bench::run(area, mmio);
        Line::new("done").end();
        serial::exit(0)
    }
    probes::baseline();
    let cpuid = probes::cpuid();
    for t in probes::Transport::ALL {
        probes::fw_cfg(t, &cpuid, mmio);
    }
    Line::new("done").end();
    serial::exit(0)
}

#[cfg(not(fw_hosted))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut l = Line::new("panic");
    l.str(
        "message",
        info.message().as_str().unwrap_or("(formatted)").as_bytes(),
    );
    if let Some(loc) = info.location() {
        l.str("file", loc.file().as_bytes());
        l.u64("line", u64::from(loc.line()));
    }
    l.end();
    serial::exit(0x7f)
}
