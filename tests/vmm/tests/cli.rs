// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The `fw-cfg-vmm` command line, with tiny hand-assembled PVH guests that
//! report what they see (CPUID, the fw_cfg signature) through the
//! debug-exit status.

use std::path::PathBuf;
use std::process::{Command, Output};

/// Whether KVM can be used; without it the test fails, unless
/// `FW_CFG_ALLOW_SKIP=1` says the caller accepts that it proves nothing.
fn require_kvm() -> bool {
    if kvm_ioctls::Kvm::new().is_ok() {
        return true;
    }
    if std::env::var("FW_CFG_ALLOW_SKIP").as_deref() == Ok("1") {
        eprintln!("/dev/kvm is not usable; FW_CFG_ALLOW_SKIP=1 is set, so this test passes");
        return false;
    }
    panic!("/dev/kvm is not usable: this test boots a KVM guest (FW_CFG_ALLOW_SKIP=1 to skip)");
}

const LOAD: u64 = 0x10_0000;

/// A minimal ELF64 image loaded at 1 MiB running `code` (32-bit) from its
/// start, with a PVH note when `pvh`.
fn elf(code: &[u8], pvh: bool) -> Vec<u8> {
    const EHDR: usize = 64;
    const PHDR: usize = 56;
    let phnum = if pvh { 2 } else { 1 };
    let note_off = EHDR + PHDR * phnum;
    let note_len = if pvh { 20 } else { 0 };
    let code_off = note_off + note_len;
    let entry = LOAD + code_off as u64;
    let total = code_off + code.len();

    let mut f = Vec::new();
    f.extend_from_slice(b"\x7fELF\x02\x01\x01");
    f.resize(16, 0);
    f.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    f.extend_from_slice(&0x3eu16.to_le_bytes()); // x86-64
    f.extend_from_slice(&1u32.to_le_bytes());
    f.extend_from_slice(&entry.to_le_bytes());
    f.extend_from_slice(&(EHDR as u64).to_le_bytes()); // phoff
    f.extend_from_slice(&0u64.to_le_bytes()); // shoff
    f.extend_from_slice(&0u32.to_le_bytes()); // flags
    f.extend_from_slice(&(EHDR as u16).to_le_bytes());
    f.extend_from_slice(&(PHDR as u16).to_le_bytes());
    f.extend_from_slice(&(phnum as u16).to_le_bytes());
    f.extend_from_slice(&64u16.to_le_bytes()); // shentsize
    f.extend_from_slice(&0u16.to_le_bytes()); // shnum
    f.extend_from_slice(&0u16.to_le_bytes()); // shstrndx
    let phdr = |f: &mut Vec<u8>, kind: u32, off: u64, addr: u64, size: u64, align: u64| {
        f.extend_from_slice(&kind.to_le_bytes());
        f.extend_from_slice(&7u32.to_le_bytes());
        f.extend_from_slice(&off.to_le_bytes());
        f.extend_from_slice(&addr.to_le_bytes());
        f.extend_from_slice(&addr.to_le_bytes());
        f.extend_from_slice(&size.to_le_bytes());
        f.extend_from_slice(&size.to_le_bytes());
        f.extend_from_slice(&align.to_le_bytes());
    };
    phdr(&mut f, 1, 0, LOAD, total as u64, 0x1000);
    if pvh {
        phdr(
            &mut f,
            4,
            note_off as u64,
            LOAD + note_off as u64,
            note_len as u64,
            4,
        );
        f.extend_from_slice(&4u32.to_le_bytes());
        f.extend_from_slice(&4u32.to_le_bytes());
        f.extend_from_slice(&18u32.to_le_bytes());
        f.extend_from_slice(b"Xen\0");
        f.extend_from_slice(&(entry as u32).to_le_bytes());
    }
    f.extend_from_slice(code);
    f
}

fn write_elf(name: &str, code: &[u8]) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("fw-cfg-vmm-cli-{}-{name}.elf", std::process::id()));
    std::fs::write(&path, elf(code, true)).unwrap();
    path
}

fn vmm(kernel: &PathBuf, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fw-cfg-vmm"))
        .arg("--kernel")
        .arg(kernel)
        .args(args)
        .args(["--timeout", "60"])
        .output()
        .unwrap()
}

/// mov eax, 0x80000008; cpuid; shr eax, 16; out 0xf4, al; hlt
const GUEST_PHYS_BITS: &[u8] = &[
    0xb8, 0x08, 0x00, 0x00, 0x80, 0x0f, 0xa2, 0xc1, 0xe8, 0x10, 0xe6, 0xf4, 0xf4,
];
/// mov eax, 0x40000001; cpuid; mov eax, edx; and al, 2; out 0xf4, al; hlt
const HINT_BIT: &[u8] = &[
    0xb8, 0x01, 0x00, 0x00, 0x40, 0x0f, 0xa2, 0x89, 0xd0, 0x24, 0x02, 0xe6, 0xf4, 0xf4,
];
/// Selects the signature, reads its first byte from the data port and
/// writes it to the debug-exit port:
/// mov dx, 0x510; xor eax, eax; out dx, ax; mov dx, 0x511; in al, dx;
/// out 0xf4, al; hlt
const SIGNATURE: &[u8] = &[
    0x66, 0xba, 0x10, 0x05, 0x31, 0xc0, 0x66, 0xef, 0x66, 0xba, 0x11, 0x05, 0xec, 0xe6, 0xf4, 0xf4,
];

/// QEMU's status for a debug-exit write of `value`, as a process sees it.
fn status(value: u8) -> i32 {
    i32::from((value << 1) | 1)
}

#[test]
fn flags_reach_the_guests_cpuid() {
    if !require_kvm() {
        return;
    }
    let k = write_elf("gpb", GUEST_PHYS_BITS);
    let out = vmm(&k, &["--host-phys-bits", "--guest-phys-bits", "40"]);
    assert_eq!(out.status.code(), Some(status(40)), "{out:?}");

    let k = write_elf("hint", HINT_BIT);
    let on = vmm(&k, &["--host-phys-bits"]);
    assert_eq!(on.status.code(), Some(status(2)), "{on:?}");
    let off = vmm(&k, &["--host-phys-bits", "--phys-bits-hint", "off"]);
    assert_eq!(off.status.code(), Some(status(0)), "{off:?}");
}

#[test]
fn the_guest_reads_fw_cfg_and_the_stats_count_it() {
    if !require_kvm() {
        return;
    }
    let k = write_elf("sig", SIGNATURE);
    let out = vmm(&k, &["--fw-cfg", "name=opt/hello,string=hi", "--stats"]);
    assert_eq!(out.status.code(), Some(status(b'Q')), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("exits:"), "{stderr}");
    assert!(stderr.contains("port 0x0511"), "{stderr}");
}

#[test]
fn a_phase_port_labels_exits_and_takes_its_writes() {
    if !require_kvm() {
        return;
    }
    // mov dx, 0x600; mov eax, 5; out dx, eax; then SIGNATURE.
    let mut code = vec![0x66, 0xba, 0x00, 0x06, 0xb8, 0x05, 0x00, 0x00, 0x00, 0xef];
    code.extend_from_slice(SIGNATURE);
    let k = write_elf("phase", &code);
    let out = vmm(&k, &["--phase-port", "0x600", "--stats"]);
    assert_eq!(out.status.code(), Some(status(b'Q')), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The selector write, the data read and the debug-exit write.
    assert!(
        stderr.contains("phase 5: 3 exits (pio 3, mmio 0)"),
        "{stderr}"
    );
    assert!(!stderr.contains("port 0x0600"), "{stderr}");
    // Without the flag the marker is an ordinary (unassigned) port.
    let plain = vmm(&k, &["--stats"]);
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert!(
        stderr.contains("port 0x0600: in       0 out       1"),
        "{stderr}"
    );
    assert!(!stderr.contains("phase 5"), "{stderr}");
}

#[test]
fn usage_errors_exit_with_status_2() {
    let k = write_elf("none", &[0xf4]);
    // A malformed -fw_cfg option.
    let bad = vmm(&k, &["--fw-cfg", "name=opt/x"]);
    assert_eq!(bad.status.code(), Some(2));
    // No kernel at all.
    let none = Command::new(env!("CARGO_BIN_EXE_fw-cfg-vmm"))
        .env_remove("FW_CFG_TEST_FIRMWARE")
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("--kernel"));
}
