// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `fw-cfg-vmm --bios`: inputs the firmware path refuses at once (each a
//! one-line error and status 2, before KVM is touched), and SeaBIOS's
//! microvm build from the reset vector to its boot menu, logging to the
//! debug console port.
//!
//! The SeaBIOS test needs Debian's `seabios` package
//! (`/usr/share/seabios/bios-microvm.bin`) and `/dev/kvm`; without either
//! it fails, unless `FW_CFG_ALLOW_SKIP=1` is set.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use fw_cfg_vmm::test_image::pvh_elf;

mod common;
/// SeaBIOS's microvm build, as Debian installs it.
const SEABIOS_MICROVM: &str = "/usr/share/seabios/bios-microvm.bin";

fn temp_path(name: &str) -> PathBuf {
    common::temp("bios", name)
}

fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let p = temp_path(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Runs `fw-cfg-vmm` with `args`; still running after 60 s fails the test.
fn vmm(args: &[&std::ffi::OsStr]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fw-cfg-vmm"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("fw-cfg-vmm {args:?} still running after 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// `out` exited with status 2 and said `needle` on stderr, on one line.
fn assert_refused(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stderr.contains(needle), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

fn os<P: AsRef<std::ffi::OsStr> + ?Sized>(p: &P) -> &std::ffi::OsStr {
    p.as_ref()
}

/// The smallest header `fw-cfg-vmm` takes for a bzImage.
fn bzimage(name: &str) -> PathBuf {
    let mut b = vec![0u8; 3 * 512];
    b[0x1f1] = 1;
    b[0x1fe..0x200].copy_from_slice(&0xaa55u16.to_le_bytes());
    b[0x202..0x206].copy_from_slice(b"HdrS");
    temp_file(name, &b)
}

#[test]
fn bad_firmware_inputs_are_one_line_errors() {
    // A size that is not a multiple of 64 KiB, and an empty file.
    let odd = temp_file("odd.rom", &vec![0u8; (64 << 10) + 512]);
    let out = vmm(&[os("--bios"), os(&odd)]);
    assert_refused(&out, "must be a non-zero multiple of 64 KiB");
    let empty = temp_file("empty.rom", &[]);
    assert_refused(&vmm(&[os("--bios"), os(&empty)]), "has 0 bytes");
    // Too large: a sparse 32 MiB file, refused before it is read.
    let huge = temp_path("huge.rom");
    let f = std::fs::File::create(&huge).unwrap();
    f.set_len(32 << 20).unwrap();
    assert_refused(&vmm(&[os("--bios"), os(&huge)]), "below the APIC pages");
    // A missing ROM.
    let missing = temp_path("no-such.rom");
    assert_refused(&vmm(&[os("--bios"), os(&missing)]), "no-such.rom");

    let rom = temp_file("ok.rom", &vec![0xf4u8; 64 << 10]);
    // A PVH kernel: linuxboot_dma.bin boots only bzImages.
    let pvh = temp_file("pvh.elf", &pvh_elf(&[0xf4], true));
    let out = vmm(&[os("--bios"), os(&rom), os("--kernel"), os(&pvh)]);
    assert_refused(&out, "is not a bzImage");
    // A missing option ROM.
    let bz = bzimage("bz");
    let no_opt = temp_path("no-such-linuxboot_dma.bin");
    let args = [
        os("--bios"),
        os(&rom),
        os("--kernel"),
        os(&bz),
        os("--option-rom"),
        os(&no_opt),
    ];
    assert_refused(&vmm(&args), "cannot use the option ROM");
    // A debug console file that cannot be created.
    let bad_log = Path::new("/nonexistent-dir/debugcon.log");
    let args = [os("--bios"), os(&rom), os("--debugcon"), os(bad_log)];
    assert_refused(&vmm(&args), "cannot create the debug console file");
    for p in [odd, empty, huge, rom, pvh, bz] {
        let _ = std::fs::remove_file(p);
    }
}

/// Whether the SeaBIOS test can run: KVM and the ROM.
fn require_seabios() -> bool {
    let kvm = kvm_ioctls::Kvm::new().is_ok();
    let rom = Path::new(SEABIOS_MICROVM).is_file();
    if kvm && rom {
        return true;
    }
    let missing = if kvm { SEABIOS_MICROVM } else { "/dev/kvm" };
    if std::env::var("FW_CFG_ALLOW_SKIP").as_deref() == Ok("1") {
        eprintln!("{missing} is missing; FW_CFG_ALLOW_SKIP=1 is set, so this test passes");
        return false;
    }
    panic!("{missing} is missing (apt-get install seabios; FW_CFG_ALLOW_SKIP=1 to skip)");
}

#[test]
fn seabios_runs_from_the_reset_vector_and_finds_fw_cfg() {
    if !require_seabios() {
        return;
    }
    let log = temp_path("seabios.log");
    // Without a boot device SeaBIOS retries after etc/boot-fail-wait; the
    // timeout ends the run.
    let out = vmm(&[
        os("--bios"),
        os(SEABIOS_MICROVM),
        os("--debugcon"),
        os(&log),
        os("--timeout"),
        os("15"),
        os("--stats"),
    ]);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(124), "{stderr}\n{text}");
    for line in [
        "SeaBIOS (version",
        "Running on KVM",
        "Found QEMU fw_cfg",
        "QEMU fw_cfg DMA interface supported",
        // etc/e820: QEMU's KVM identity pages, then 128 MiB of RAM.
        "qemu/e820: addr 0x00000000feffc000 len 0x0000000000004000 [reserved]",
        "qemu/e820: addr 0x0000000000000000 len 0x0000000008000000 [RAM]",
        "Detected non-PCI system",
        "e820 map has",
        "enter handle_19:",
    ] {
        assert!(text.contains(line), "no {line:?} in the debug log:\n{text}");
    }
    // The first fw_cfg accesses are port I/O (signature, ID), then DMA.
    assert!(stderr.contains("port 0x0510"), "{stderr}");
    assert!(stderr.contains("port 0x0518"), "{stderr}");
}
