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
//! benchmark phases of [`mod@bench`] instead (one `bench` line each); with
//! `fw_cfg_tests.smp=ITERATIONS` the SMP stress run of [`smp`] on every
//! vCPU (one `smp` line), with `fw_cfg_tests.touch=COUNT@BASE` the MMIO
//! address sweep of [`touch`] (one `touch` line). In every other mode the
//! application processors, if any, are parked. With
//! `fw_cfg_tests.hash=SIZE@BASE` the reads of [`hash`] (snapshot tests).

#![no_std]
#![no_main]

mod bench;
mod boot;
mod buffers;
mod hash;
mod mem;
mod out;
mod probes;
mod pvh;
mod serial;
mod smp;
mod touch;
mod transports;

use fw_cfg_protocol::{Line, Name, PanicLine, Transport};

use out::emit;

/// Rust entry, called by the boot stub in 64-bit mode with the physical
/// address of the PVH `hvm_start_info`.
#[unsafe(no_mangle)]
extern "C" fn fw_main(start_info: u64) -> ! {
    // A fresh line: firmware before us (QEMU's option ROM) may have left
    // text on the console.
    serial::Serial.write_bytes(b"\n");
    let Some(mut bufs) = buffers::take() else {
        // Unreachable: this is the only call, and it runs once.
        serial::exit(0x7e)
    };
    let cmdline = pvh::cmdline(start_info);
    pvh::record_memory_top(start_info);
    let mmio = pvh::mmio_window(cmdline);
    if let Some(iterations) = smp::param(cmdline) {
        probes::boot(start_info, cmdline, mmio);
        smp::run(iterations, mmio);
        emit(&Line::Done);
        serial::exit(0)
    }
    smp::park_aps();
    probes::boot(start_info, cmdline, mmio);
    if let Some((base, count)) = touch::param(cmdline) {
        touch::run(base, count);
        emit(&Line::Done);
        serial::exit(0)
    }
    if let Some(area) = hash::param(cmdline) {
        hash::run(area, &mut bufs.dma);
        emit(&Line::Done);
        serial::exit(0)
    }
    if let Some(area) = bench::param(cmdline) {
        bench::run(area, mmio, &mut bufs);
        emit(&Line::Done);
        serial::exit(0)
    }
    probes::baseline();
    let cpuid = probes::cpuid();
    for t in Transport::FW_CFG {
        probes::fw_cfg(t, &cpuid, mmio, &mut bufs);
    }
    emit(&Line::Done);
    serial::exit(0)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let loc = info.location();
    emit(&Line::Panic(PanicLine {
        message: Name::new(info.message().as_str().unwrap_or("(formatted)")),
        file: loc.map(|l| Name::new(l.file())),
        line: loc.map(|l| l.line()),
    }));
    serial::exit(0x7f)
}
