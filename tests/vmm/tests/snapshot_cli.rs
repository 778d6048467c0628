// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `fw-cfg-vmm --snapshot` / `--restore` with tiny hand-assembled PVH
//! guests: a snapshot after N fw_cfg accesses carries the device's read
//! offset to the new process, one at SIGUSR1 stops a spinning guest, and
//! broken snapshot files are refused with one line and status 2.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use fw_cfg_vmm::SNAPSHOT_EXIT_STATUS;

mod common;

use common::require_kvm;

fn temp(name: &str) -> PathBuf {
    common::temp("snap", name)
}

fn write_elf(name: &str, code: &[u8]) -> PathBuf {
    common::write_elf("snap", name, code)
}

fn command_with_memory(kernel: &Path, memory_mib: u32, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fw-cfg-vmm"));
    c.arg("--kernel")
        .arg(kernel)
        .args(["--memory", &memory_mib.to_string()])
        .args(args);
    c
}

fn command(kernel: &Path, args: &[&str]) -> Command {
    command_with_memory(kernel, 16, args)
}

fn vmm(kernel: &Path, args: &[&str]) -> Output {
    command(kernel, args)
        .args(["--timeout", "60"])
        .output()
        .unwrap()
}

/// Selects the signature, reads two bytes from the data port and writes
/// the second to the debug-exit port: mov dx, 0x510; xor eax, eax;
/// out dx, ax; mov dx, 0x511; in al, dx; in al, dx; out 0xf4, al; hlt
const TWO_BYTES: &[u8] = &[
    0x66, 0xba, 0x10, 0x05, 0x31, 0xc0, 0x66, 0xef, 0x66, 0xba, 0x11, 0x05, 0xec, 0xec, 0xe6, 0xf4,
    0xf4,
];
/// jmp $
const SPIN: &[u8] = &[0xeb, 0xfe];

fn status(value: u8) -> i32 {
    i32::from((value << 1) | 1)
}

fn snapshot_code() -> i32 {
    SNAPSHOT_EXIT_STATUS as i32
}

fn assert_refused(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
}

#[test]
fn the_read_offset_travels_to_the_new_process() {
    if !require_kvm() {
        return;
    }
    let elf = write_elf("two.elf", TWO_BYTES);
    // Without a snapshot the guest reports 'E', the signature's second byte.
    assert_eq!(vmm(&elf, &[]).status.code(), Some(status(b'E')));
    let snap = temp("two.snap");
    let s = snap.to_str().unwrap();
    // Stopped after the selector write and the first data read.
    let out = vmm(&elf, &["--snapshot", s, "--snapshot-after-accesses", "2"]);
    assert_eq!(out.status.code(), Some(snapshot_code()), "{out:?}");
    // A fresh device would answer 'Q'; the restored one is at offset 1.
    let out = vmm(&elf, &["--restore", s]);
    assert_eq!(out.status.code(), Some(status(b'E')), "{out:?}");
    // A count the guest never reaches (it makes three accesses): no
    // snapshot, the guest ends.
    let out = vmm(&elf, &["--snapshot", s, "--snapshot-after-accesses", "4"]);
    assert_eq!(out.status.code(), Some(status(b'E')), "{out:?}");
    std::fs::remove_file(&snap).unwrap();
}

#[test]
fn sigusr1_saves_a_spinning_guest() {
    if !require_kvm() {
        return;
    }
    let elf = write_elf("spin.elf", SPIN);
    let snap = temp("spin.snap");
    let s = snap.to_str().unwrap();
    let mut child = command(&elf, &["--snapshot", s, "--timeout", "60"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: `kill` only sends a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGUSR1) }, 0);
    let code = child.wait().unwrap().code();
    assert_eq!(code, Some(snapshot_code()));
    // Restored, it spins on until its timeout (status 124).
    let out = command(&elf, &["--restore", s, "--timeout", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(124), "{out:?}");
    std::fs::remove_file(&snap).unwrap();
}

#[test]
fn broken_snapshots_are_refused_with_one_line() {
    if !require_kvm() {
        return;
    }
    let elf = write_elf("refuse.elf", TWO_BYTES);
    let snap = temp("good.snap");
    let s = snap.to_str().unwrap();
    let out = vmm(&elf, &["--snapshot", s, "--snapshot-after-accesses", "1"]);
    assert_eq!(out.status.code(), Some(snapshot_code()), "{out:?}");
    let good = std::fs::read(&snap).unwrap();

    let bad = temp("bad.snap");
    let b = bad.to_str().unwrap();
    std::fs::write(&bad, b"not a snapshot at all").unwrap();
    assert_refused(&vmm(&elf, &["--restore", b]), "bad magic");
    std::fs::write(&bad, &good[..good.len() / 2]).unwrap();
    assert_refused(&vmm(&elf, &["--restore", b]), "corrupted");
    let mut flipped = good.clone();
    flipped[good.len() / 3] ^= 1;
    std::fs::write(&bad, &flipped).unwrap();
    assert_refused(&vmm(&elf, &["--restore", b]), "corrupted");
    // Another memory size: refused before the file is even read whole.
    let out = command_with_memory(&elf, 8, &["--restore", s])
        .output()
        .unwrap();
    assert_refused(&out, "more than this VM's at most");
    let out = command_with_memory(&elf, 32, &["--restore", s])
        .output()
        .unwrap();
    assert_refused(&out, "memory layout");
    assert_refused(
        &vmm(&elf, &["--restore", "/dev/zero"]),
        "invalid snapshot file",
    );
    let missing = temp("missing.snap");
    assert_refused(
        &vmm(&elf, &["--restore", missing.to_str().unwrap()]),
        "invalid snapshot file",
    );
    // The count needs a file.
    let out = vmm(&elf, &["--snapshot-after-accesses", "1"]);
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_file(&snap).unwrap();
    std::fs::remove_file(&bad).unwrap();
}
