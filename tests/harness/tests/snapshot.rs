// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Snapshot and restore on this machine's KVM: the test firmware's hash
//! mode reads a 1 MiB fw_cfg file by DMA and by port I/O. One chain of
//! processes: `fw-cfg-vmm` saves the VM between the two halves of the DMA
//! address write; a second one resumes it (the DMA hash matches) and saves
//! it again mid-way through the port-I/O read; a third resumes that (the
//! port-I/O hash matches). The port-I/O read, about 10 µs per byte on this
//! machine's engine, runs once. A restore with other items, and one
//! on a host narrower than the width the source vouched for, are refused.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fw_cfg_device::cmdline::parse_fw_cfg_option;
use fw_cfg_device::phys_bits::HostAddressSizes;
use fw_cfg_device::state::FwCfgState;
use fw_cfg_protocol::{FirmwareReport, HASH_FILE_NAME, HASH_PARAM, MARK_PORT, Phase, Transport};
use fw_cfg_tests::lab::build::cargo_target_dir;
use fw_cfg_tests::vmm::devices::SerialSink;
use fw_cfg_tests::vmm::fw_cfg::{FwCfgSetup, PhysBitsSetup};
use fw_cfg_tests::vmm::hook::PhaseMarker;
use fw_cfg_tests::vmm::layout::ram_ranges;
use fw_cfg_tests::vmm::snapshot::SnapshotError;
use fw_cfg_tests::vmm::snapshot::format::{Limits, parse};
use fw_cfg_tests::vmm::{Error, ExitReason, SNAPSHOT_EXIT_STATUS, Vm, VmConfig};

/// The hashed file's size.
const HASH_SIZE: usize = 1 << 20;
/// Guest memory.
const MEMORY_MIB: u64 = 32;
/// The firmware's area for its two copies: 2 MiB at 16 MiB.
const AREA: (u64, u64) = (16 << 20, 2 << 20);
/// QEMU's status for the firmware's debug-exit write of 0.
const FIRMWARE_DONE: i32 = 1;

/// A scratch directory for test `name` of this process (each test
/// removes its own at the end: snapshots are as large as guest memory).
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fw-cfg-snapshot-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// 1 MiB of xorshift bytes (no run of equal bytes a lost chunk could hide).
fn blob() -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..HASH_SIZE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn cmdline() -> String {
    format!("{HASH_PARAM}{:#x}@{:#x}", AREA.1, AREA.0)
}

fn item(blob: &Path) -> String {
    format!("name={HASH_FILE_NAME},file={}", blob.display())
}

/// `fw-cfg-vmm`, built by cargo for this test's profile.
fn vmm_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test>
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "build",
            "--locked",
            "-p",
            "fw-cfg-vmm",
            "--bin",
            "fw-cfg-vmm",
        ])
        .env("CARGO_TARGET_DIR", cargo_target_dir().unwrap());
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().unwrap();
    assert!(status.success(), "cargo build -p fw-cfg-vmm failed");
    profile_dir.join("fw-cfg-vmm")
}

/// Runs `fw-cfg-vmm` on the firmware in hash mode with `extra` flags.
fn vmm(bin: &Path, blob: &Path, extra: &[&str]) -> Output {
    let firmware = fw_cfg_tests::firmware::path();
    let memory = MEMORY_MIB.to_string();
    let item = item(blob);
    let cmdline = cmdline();
    let mut args = vec![
        "--kernel",
        firmware.to_str().unwrap(),
        "--memory",
        &memory,
        "--cmdline",
        &cmdline,
        "--fw-cfg",
        &item,
        "--timeout",
        "120",
    ];
    args.extend_from_slice(extra);
    Command::new(bin).args(&args).output().unwrap()
}

/// The library configuration equal to [`vmm`]'s flags.
fn config(blob: &Path) -> VmConfig {
    let mut c = VmConfig::new(fw_cfg_tests::firmware::path());
    c.memory_mib = MEMORY_MIB;
    c.cmdline = cmdline();
    c.serial = SerialSink::capture().0;
    c.fw_cfg = FwCfgSetup {
        options: vec![parse_fw_cfg_option(&item(blob)).unwrap()],
        ..FwCfgSetup::default()
    };
    c
}

/// The fw_cfg accesses of hash mode's lookup, counted in this process
/// with the firmware's phase marks (with a small file: the lookup does
/// not depend on its size).
fn lookup_accesses(dir: &Path) -> u64 {
    let small = dir.join("blob-small");
    std::fs::write(&small, [7u8; 4096]).unwrap();
    let config = config(&small);
    let mut vm = Vm::new(&config).unwrap();
    vm.set_exit_hook(Box::new(PhaseMarker::new(MARK_PORT)));
    let outcome = vm.run(config.timeout).unwrap();
    assert_eq!(outcome.reason, ExitReason::DebugExit { value: 0 });
    let lookup = outcome
        .stats
        .phase(Phase::Lookup(Transport::PioString).id());
    assert_eq!(lookup.total(), lookup.pio(), "only port I/O in the lookup");
    lookup.pio()
}

/// The port-I/O front end's registers in the snapshot at `path`.
fn pio_registers(path: &Path) -> FwCfgState {
    let limits = Limits {
        regions: ram_ranges(MEMORY_MIB << 20),
    };
    let bytes = std::fs::read(path).unwrap();
    parse(&bytes, &limits)
        .unwrap()
        .fw_cfg
        .pio
        .unwrap()
        .registers
}

#[test]
fn snapshots_between_dma_halves_and_mid_read_restore_in_new_processes() {
    if !common::require_kvm() {
        return;
    }
    let bin = vmm_binary();
    let data = blob();
    let dir = scratch("chain");
    let blob_path = dir.join("blob");
    std::fs::write(&blob_path, &data).unwrap();
    let lookup = lookup_accesses(&dir);
    let want = crc32fast::hash(&data);

    // A: stops between the DMA address halves (the lookup, the high half,
    // the DMA register read).
    let split = dir.join("split");
    let n = (lookup + 2).to_string();
    let a = vmm(
        &bin,
        &blob_path,
        &[
            "--snapshot",
            split.to_str().unwrap(),
            "--snapshot-after-accesses",
            &n,
        ],
    );
    assert_eq!(a.status.code(), Some(SNAPSHOT_EXIT_STATUS as i32), "{a:?}");
    assert!(FirmwareReport::parse(&a.stdout).hash.is_empty());

    // B: resumes A, finishes the DMA read (its hash matches), and stops
    // 100 accesses into the port-I/O read.
    let mid = dir.join("mid");
    let b = vmm(
        &bin,
        &blob_path,
        &[
            "--restore",
            split.to_str().unwrap(),
            "--snapshot",
            mid.to_str().unwrap(),
            "--snapshot-after-accesses",
            "102",
        ],
    );
    assert_eq!(b.status.code(), Some(SNAPSHOT_EXIT_STATUS as i32), "{b:?}");
    let report = FirmwareReport::parse(&b.stdout);
    let dma: Vec<_> = report
        .hash
        .iter()
        .map(|h| (h.transport, h.read, h.crc32, h.error))
        .collect();
    assert_eq!(dma, [(Transport::Dma, HASH_SIZE as u32, want, None)]);
    let regs = pio_registers(&mid);
    assert!(
        regs.offset > 0 && (regs.offset as usize) < HASH_SIZE,
        "not mid-read: {regs:?}"
    );

    // C: resumes B mid-read; the port-I/O hash matches.
    let c = vmm(&bin, &blob_path, &["--restore", mid.to_str().unwrap()]);
    let report = FirmwareReport::parse(&c.stdout);
    assert!(report.done, "{c:?}");
    assert_eq!(c.status.code(), Some(FIRMWARE_DONE), "{c:?}");
    let pio: Vec<_> = report
        .hash
        .iter()
        .map(|h| (h.transport, h.read, h.crc32, h.error))
        .collect();
    assert_eq!(pio, [(Transport::PioString, HASH_SIZE as u32, want, None)]);

    // Other items: refused before the guest runs, one line, status 2.
    let extra = [
        "--restore",
        mid.to_str().unwrap(),
        "--fw-cfg",
        "name=opt/other,string=x",
    ];
    let out = vmm(&bin, &blob_path, &extra);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("other fw_cfg items"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn restore_on_a_narrower_host_is_refused() {
    if !common::require_kvm() {
        return;
    }
    let bin = vmm_binary();
    let dir = scratch("guard");
    let blob_path = dir.join("blob");
    std::fs::write(&blob_path, blob()).unwrap();
    // The source vouches for the host's width; stop it at its first access.
    let path = dir.join("guard");
    let args = [
        "--host-phys-bits",
        "--snapshot",
        path.to_str().unwrap(),
        "--snapshot-after-accesses",
        "1",
    ];
    let out = vmm(&bin, &blob_path, &args);
    assert_eq!(
        out.status.code(),
        Some(SNAPSHOT_EXIT_STATUS as i32),
        "{out:?}"
    );
    let limits = Limits {
        regions: ram_ranges(MEMORY_MIB << 20),
    };
    let bytes = std::fs::read(&path).unwrap();
    let vouched = parse(&bytes, &limits)
        .unwrap()
        .fw_cfg
        .pio
        .unwrap()
        .vouched_bits;
    assert!(vouched > 36, "the source vouched for {vouched} bits");

    // The destination's host is a 36-bit one.
    let mut config = config(&blob_path);
    config.fw_cfg.phys_bits = PhysBitsSetup {
        host_phys_bits: true,
        host_override: Some(HostAddressSizes::new(36, 0)),
        ..PhysBitsSetup::default()
    };
    let mut vm = Vm::new(&config).unwrap();
    match vm.restore(&path) {
        Err(Error::Snapshot(SnapshotError::Device { source, .. })) => assert_eq!(
            source,
            fw_cfg_device::SnapshotError::NarrowerHost {
                vouched,
                backed: 36
            }
        ),
        other => panic!("expected the migration guard, got {other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
