// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! SeaBIOS's microvm build under the mini VMM (`--bios`) hands the
//! distribution kernel and a 30 MiB initrd to `linuxboot_dma.bin`, which
//! loads them by fw_cfg DMA: a handful of exits per transfer, not one per
//! byte. The run is stopped after the kernel's real-mode setup has printed
//! (this machine's KVM may not run the rest of Linux; the nested lab test
//! `lab_bios` boots it to userspace).
//!
//! Needs `/dev/kvm`, Debian's `seabios` and `qemu-system-data` (the option
//! ROM) and the kernel; without them it fails, unless `FW_CFG_ALLOW_SKIP=1`
//! is set.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fw_cfg_tests::peers::linux::LinuxPeer;
use fw_cfg_tests::peers::{Missing, require};
use fw_cfg_tests::vmm::bios::{BiosSetup, DEFAULT_OPTION_ROM};
use fw_cfg_tests::vmm::debugcon::{DebugconSetup, DebugconSink, SEABIOS_DEBUG_PORT};
use fw_cfg_tests::vmm::devices::SerialSink;
use fw_cfg_tests::vmm::{Vm, VmConfig};

const SEABIOS_MICROVM: &str = "/usr/share/seabios/bios-microvm.bin";
/// The initrd's size.
const INITRD_BYTES: usize = 30 << 20;
/// The fw_cfg DMA address port whose write starts a transfer.
const DMA_KICK_PORT: u16 = 0x518;
/// The fw_cfg selector port.
const SELECTOR_PORT: u16 = 0x510;
/// The fw_cfg data port (one exit per byte read by port I/O).
const DATA_PORT: u16 = 0x511;

fn roms() -> Result<(), Missing> {
    for (rom, package) in [
        (SEABIOS_MICROVM, "seabios"),
        (DEFAULT_OPTION_ROM, "qemu-system-data"),
    ] {
        if !Path::new(rom).is_file() {
            return Err(Missing::new(rom, format!("apt-get install {package}")));
        }
    }
    Ok(())
}

#[test]
fn a_kernel_and_a_30_mib_initrd_load_by_dma_through_seabios() {
    if !common::require_kvm() {
        return;
    }
    let (Some(linux), Some(())) = (require(LinuxPeer::find()), require(roms())) else {
        return;
    };
    let initrd = std::env::temp_dir().join(format!("fw-cfg-bios-dma-{}.img", std::process::id()));
    let pattern: Vec<u8> = (0..INITRD_BYTES)
        .map(|i| (i * 13 + i / 4099) as u8)
        .collect();
    std::fs::write(&initrd, &pattern).unwrap();
    let (serial, out) = SerialSink::capture();
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut config = VmConfig::new(&linux.kernel);
    config.initrd = Some(initrd.clone());
    config.cmdline = "console=ttyS0".into();
    config.memory_mib = 256;
    config.serial = serial;
    config.bios = Some(BiosSetup::new(SEABIOS_MICROVM));
    config.debugcon = Some(DebugconSetup {
        port: SEABIOS_DEBUG_PORT,
        sink: DebugconSink::Buffer(log.clone()),
    });
    let vm = Vm::new(&config).unwrap();
    let outcome = vm.run(Some(Duration::from_secs(40))).unwrap();
    let _ = std::fs::remove_file(&initrd);
    let log = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    let serial = String::from_utf8_lossy(&out.lock().unwrap()).into_owned();
    for line in [
        "Running option rom at",
        "Searching bootorder for: /rom@genroms/linuxboot_dma.bin",
        "Booting from ROM...",
    ] {
        assert!(log.contains(line), "no {line:?} in SeaBIOS's log:\n{log}");
    }
    // The kernel's real-mode setup ran: linuxboot_dma.bin loaded it.
    assert!(serial.contains("Probing EDD"), "{serial}");
    let port = |p| outcome.stats.per_port.get(&p).cloned().unwrap_or_default();
    let (kicks, data, sel) = (port(DMA_KICK_PORT), port(DATA_PORT), port(SELECTOR_PORT));
    eprintln!(
        "fw_cfg exits with a {} MiB initrd: {} selector writes, {} data-port reads, \
         {} DMA kicks; {} exits in all",
        INITRD_BYTES >> 20,
        sel.io_out,
        data.io_in,
        kicks.io_out,
        outcome.stats.all.total()
    );
    // SeaBIOS's own reads plus the option ROM's: a few per item, whatever
    // the size.
    assert!(kicks.io_out <= 64, "{}", outcome.stats);
    assert!(data.io_in <= 16, "{}", outcome.stats);
}
