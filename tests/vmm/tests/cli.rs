// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The `fw-cfg-vmm` command line, with tiny hand-assembled PVH guests that
//! report what they see (CPUID, the fw_cfg signature) through the
//! debug-exit status.

use fw_cfg_vmm::test_image::{LOAD_ADDRESS, pvh_elf};
use std::path::PathBuf;
use std::process::{Command, Output};

mod common;

use common::require_kvm;

fn write_elf(name: &str, code: &[u8]) -> PathBuf {
    common::write_elf("cli", name, code)
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
fn stats_json_holds_the_same_counters_as_the_text() {
    if !require_kvm() {
        return;
    }
    // mov dx, 0x600; mov eax, 5; out dx, eax; then SIGNATURE.
    let mut code = vec![0x66, 0xba, 0x00, 0x06, 0xb8, 0x05, 0x00, 0x00, 0x00, 0xef];
    code.extend_from_slice(SIGNATURE);
    let k = write_elf("json", &code);
    let json = k.with_extension("json");
    let path = json.display().to_string();
    let out = vmm(&k, &["--phase-port", "0x600", "--stats-json", &path]);
    assert_eq!(out.status.code(), Some(status(b'Q')), "{out:?}");
    let report = fw_cfg_vmm::report::RunReport::read(&json).unwrap();
    assert_eq!(
        report.reason,
        fw_cfg_vmm::ExitReason::DebugExit {
            value: u32::from(b'Q')
        }
    );
    let phase = report.stats.phase(5);
    assert_eq!((phase.io_in, phase.io_out, phase.total()), (1, 2, 3));
    assert_eq!(report.stats.per_port[&0x511].io_in, 1);
    assert!(report.stats.per_port.get(&0x600).is_none());
    // An unwritable file is a VMM error after the run.
    let bad = vmm(&k, &["--stats-json", "/nonexistent/dir/stats.json"]);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    let _ = std::fs::remove_file(&json);
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

/// Runs `fw-cfg-vmm` with exactly `args`; a run still going after 60 s is
/// killed and fails the test (the inputs below must be refused at once).
fn vmm_bounded(args: &[&std::ffi::OsStr]) -> Output {
    use std::time::{Duration, Instant};
    let mut child = Command::new(env!("CARGO_BIN_EXE_fw-cfg-vmm"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
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

/// `out` exited with `code` and said `needle` on stderr, on one line.
fn assert_refused(out: &Output, code: i32, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{out:?}");
    assert!(stderr.contains(needle), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

fn temp_path(name: &str) -> PathBuf {
    common::temp("cli", name)
}

fn fifo(name: &str) -> PathBuf {
    let path = temp_path(name);
    let _ = std::fs::remove_file(&path);
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a NUL-terminated path that lives across the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    path
}

#[test]
fn the_largest_timeout_does_not_overflow() {
    if !require_kvm() {
        return;
    }
    let k = write_elf("maxtimeout", &[0xf4]);
    let out = vmm_bounded(&[
        os("--kernel"),
        k.as_os_str(),
        os("--timeout"),
        os("18446744073709551615"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn phys_bits_outside_qemus_range_are_refused() {
    let k = write_elf("physbits", &[0xf4]);
    for (args, needle) in [
        (&["--phys-bits", "31"][..], "between 32 and 52 (but is 31)"),
        (&["--phys-bits", "53"], "between 32 and 52 (but is 53)"),
        (&["--phys-bits", "64"], "between 32 and 52 (but is 64)"),
        (
            &["--phys-bits", "40", "--guest-phys-bits", "41"],
            "guest-phys-bits should be between 32 and 40 (but is 41)",
        ),
        (
            &["--guest-phys-bits", "31"],
            "guest-phys-bits should be between 32 and 40 (but is 31)",
        ),
    ] {
        let mut all = vec![os("--kernel"), k.as_os_str()];
        all.extend(args.iter().map(|a| os(a)));
        let out = vmm_bounded(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

#[test]
fn a_triple_fault_is_a_failure() {
    if !require_kvm() {
        return;
    }
    // ud2 with the IDT the vCPU starts with (nothing but zeros at address
    // 0): #UD through a not-present gate, #NP, #DF, triple fault.
    let code = [0x0f, 0x0b];
    let k = write_elf("triple", &code);
    let out = vmm_bounded(&[os("--kernel"), k.as_os_str(), os("--timeout"), os("60")]);
    assert_refused(&out, 4, "triple-faulted");
}

#[test]
fn fifos_and_devices_are_refused_at_once() {
    if !require_kvm() {
        return;
    }
    let k = write_elf("fifo-host", &[0xf4]);
    let f = fifo("fifo");
    let fw_cfg = format!("name=opt/f,file={}", f.display());
    for args in [
        vec![os("--kernel"), f.as_os_str()],
        vec![os("--kernel"), k.as_os_str(), os("--initrd"), f.as_os_str()],
        vec![os("--kernel"), k.as_os_str(), os("--fw-cfg"), os(&fw_cfg)],
    ] {
        assert_refused(&vmm_bounded(&args), 2, "is not a regular file (a FIFO)");
    }
    for args in [
        vec![
            os("--kernel"),
            k.as_os_str(),
            os("--initrd"),
            os("/dev/zero"),
        ],
        vec![
            os("--kernel"),
            k.as_os_str(),
            os("--fw-cfg"),
            os("name=opt/z,file=/dev/zero"),
        ],
    ] {
        assert_refused(&vmm_bounded(&args), 2, "(a character device)");
    }
    std::fs::remove_file(&f).unwrap();
}

#[test]
fn huge_sparse_files_are_refused_before_reading() {
    if !require_kvm() {
        return;
    }
    let k = write_elf("sparse-host", &[0xf4]);
    let big = temp_path("sparse");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(8 << 30)
        .unwrap();
    let fw_cfg = format!("name=opt/big,file={}", big.display());
    let out = vmm_bounded(&[os("--kernel"), k.as_os_str(), os("--fw-cfg"), os(&fw_cfg)]);
    assert_refused(&out, 2, "has 8589934592 bytes, more than the 4294967294");
    let out = vmm_bounded(&[
        os("--kernel"),
        k.as_os_str(),
        os("--initrd"),
        big.as_os_str(),
    ]);
    assert_refused(&out, 2, "the initrd (8589934592 bytes) does not fit");
    std::fs::remove_file(&big).unwrap();
}

/// A PVH ELF whose one loadable segment is moved to `paddr` and sized
/// `memsz`.
fn elf_segment(name: &str, paddr: u64, memsz: Option<u64>) -> PathBuf {
    let mut f = pvh_elf(&[0xf4], true);
    let phdr = 64;
    f[phdr + 0x18..phdr + 0x20].copy_from_slice(&paddr.to_le_bytes());
    if let Some(m) = memsz {
        f[phdr + 0x28..phdr + 0x30].copy_from_slice(&m.to_le_bytes());
    }
    let path = temp_path(name);
    std::fs::write(&path, f).unwrap();
    path
}

#[test]
fn kernel_segments_must_fit_ram_and_miss_the_boot_data() {
    if !require_kvm() {
        return;
    }
    let past = elf_segment("past-ram", LOAD_ADDRESS, Some(256 << 20));
    let out = vmm_bounded(&[os("--kernel"), past.as_os_str(), os("--memory"), os("128")]);
    assert_refused(
        &out,
        2,
        "segment 0x100000..0x10100000 lies outside guest RAM (RAM ends at 0x8000000)",
    );
    let low = elf_segment("boot-data", 0x5f80, None);
    let out = vmm_bounded(&[os("--kernel"), low.as_os_str()]);
    assert_refused(
        &out,
        2,
        "overlaps the PVH boot data (start info, memory map, module list) at 0x6000..0x9000",
    );
    let cmdline = elf_segment("cmdline", 0x2_8000, None);
    let out = vmm_bounded(&[os("--kernel"), cmdline.as_os_str()]);
    assert_refused(
        &out,
        2,
        "overlaps the kernel command line at 0x20000..0x30000",
    );
}

/// A bzImage header (boot protocol 2.12, 64-bit entry, loaded high) with
/// `pref_address` and `init_size`, and one sector of kernel.
fn bzimage(name: &str, pref_address: u64, init_size: u32) -> PathBuf {
    let mut b = vec![0u8; 3 * 512];
    b[0x1f1] = 1; // setup_sects
    b[0x1fe..0x200].copy_from_slice(&0xaa55u16.to_le_bytes());
    b[0x202..0x206].copy_from_slice(b"HdrS");
    b[0x206..0x208].copy_from_slice(&0x020cu16.to_le_bytes());
    b[0x211] = 1; // loadflags: LOADED_HIGH
    b[0x214..0x218].copy_from_slice(&0x10_0000u32.to_le_bytes());
    b[0x22c..0x230].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    b[0x236..0x238].copy_from_slice(&1u16.to_le_bytes()); // XLF_KERNEL_64
    b[0x238..0x23c].copy_from_slice(&2048u32.to_le_bytes());
    b[0x258..0x260].copy_from_slice(&pref_address.to_le_bytes());
    b[0x260..0x264].copy_from_slice(&init_size.to_le_bytes());
    let path = temp_path(name);
    std::fs::write(&path, b).unwrap();
    path
}

#[test]
fn a_bzimage_decompression_area_is_checked() {
    if !require_kvm() {
        return;
    }
    let initrd = temp_path("small-initrd");
    std::fs::write(&initrd, [0u8; 4096]).unwrap();
    let k = bzimage("bz-overflow", u64::MAX - 0xfff, 0x10_0000);
    let out = vmm_bounded(&[
        os("--kernel"),
        k.as_os_str(),
        os("--initrd"),
        initrd.as_os_str(),
    ]);
    assert_refused(&out, 2, "overflows the address space");
    let k = bzimage("bz-past-ram", 0x100_0000, 0x1000_0000);
    let out = vmm_bounded(&[
        os("--kernel"),
        k.as_os_str(),
        os("--initrd"),
        initrd.as_os_str(),
        os("--memory"),
        os("128"),
    ]);
    assert_refused(
        &out,
        2,
        "segment 0x1000000..0x11000000 lies outside guest RAM (RAM ends at 0x8000000)",
    );
}

/// Guest RAM may reach the width the vCPU's CPUID states and no further
/// (QEMU's "phys-bits too low"): with QEMU's legacy 40 bits, 1 TiB - 1 GiB
/// of RAM ends exactly at 2^40 (RAM above 3 GiB starts at 4 GiB) and
/// boots; 1 MiB more, or 4 GiB with `--phys-bits 32`, is refused with one
/// line. The accepted guest's terabyte is sparse: nothing touches it.
#[test]
fn memory_beyond_the_stated_width_is_refused() {
    if !require_kvm() {
        return;
    }
    let k = write_elf("memwidth", &[0xf4]);
    let run = |memory: &str, extra: &[&str]| {
        let mut all = vec![os("--kernel"), k.as_os_str(), os("--memory"), os(memory)];
        all.extend(extra.iter().map(|a| os(a)));
        vmm_bounded(&all)
    };
    let out = run("1047552", &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_refused(
        &run("1047553", &[]),
        2,
        "guest memory would end at 0x10000100000, above the 40-bit physical address width",
    );
    assert_refused(
        &run("4096", &["--phys-bits", "32"]),
        2,
        "guest memory would end at 0x140000000, above the 32-bit physical address width",
    );
}
