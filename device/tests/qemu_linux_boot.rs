// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The Linux boot items and x86 defaults against QEMU itself: QEMU
//! (`-M microvm -qtest stdio`, no guest code runs) is started with the
//! machine's Debian kernel, its initrd and a command line; the test reads
//! every fw_cfg item QEMU serves through qtest's port and memory commands
//! (DMA for the large ones) and compares it byte for byte with what
//! `LinuxBoot::from_bzimage` + `x86_qemu_defaults` + `option_rom` give for
//! the same inputs.
//!
//! Needs `qemu-system-x86_64`, a kernel (`FW_CFG_TEST_KERNEL`, else the
//! newest `/boot/vmlinuz-*`), its initrd (`FW_CFG_TEST_INITRD`, else the
//! matching `/boot/initrd.img-*`) and QEMU's `linuxboot_dma.bin`; without
//! them the test fails, unless `FW_CFG_ALLOW_SKIP=1`.

#![cfg(all(feature = "linux-boot", target_arch = "x86_64"))]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use fw_cfg_device::abi::*;
use fw_cfg_device::builder::E820Entry;
use fw_cfg_device::linux_boot::{LINUXBOOT_DMA_ROM, LinuxBoot, LinuxBootMemory};
use fw_cfg_device::x86::{E820_RAM, X86Machine, option_rom_boot_path};
use fw_cfg_device::{FwCfg, FwCfgBuilder};
use vm_memory::{GuestAddress, GuestMemoryMmap};

const RAM: u64 = 256 << 20;
const CMDLINE: &str = "console=ttyS0 vga=0x317 quiet";
const ROM: &str = "/usr/share/qemu/linuxboot_dma.bin";
/// Guest addresses of the DMA descriptor and buffer.
const DESC: u64 = 0x1000;
const BUF: u64 = 0x10_0000;

/// The inputs, or None when missing and FW_CFG_ALLOW_SKIP=1 opts out.
fn inputs() -> Option<(PathBuf, PathBuf)> {
    let kernel = std::env::var_os("FW_CFG_TEST_KERNEL")
        .map(PathBuf::from)
        .or_else(|| newest("/boot", "vmlinuz-"));
    let initrd = std::env::var_os("FW_CFG_TEST_INITRD")
        .map(PathBuf::from)
        .or_else(|| {
            let k = kernel.as_ref()?.file_name()?.to_str()?.to_string();
            let i = Path::new("/boot").join(k.replacen("vmlinuz-", "initrd.img-", 1));
            i.exists().then_some(i)
        });
    let qemu = Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    match (kernel, initrd) {
        (Some(k), Some(i)) if qemu && Path::new(ROM).exists() => Some((k, i)),
        _ if std::env::var("FW_CFG_ALLOW_SKIP").as_deref() == Ok("1") => {
            eprintln!(
                "qemu-system-x86_64, a kernel with its initrd or {ROM} is missing: not run (FW_CFG_ALLOW_SKIP=1)"
            );
            None
        }
        _ => panic!(
            "this test needs qemu-system-x86_64, {ROM}, a kernel and its initrd \
             (FW_CFG_TEST_KERNEL/FW_CFG_TEST_INITRD or /boot); set FW_CFG_ALLOW_SKIP=1 to skip"
        ),
    }
}

fn newest(dir: &str, prefix: &str) -> Option<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    v.sort();
    v.pop()
}

/// QEMU under qtest: one command per line, one `OK ...` answer per line.
struct Qtest {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Qtest {
    fn start(kernel: &Path, initrd: &Path) -> Self {
        let mut child = Command::new("qemu-system-x86_64")
            .args(["-M", "microvm", "-qtest", "stdio", "-display", "none"])
            .args(["-nodefaults", "-m", &format!("{}M", RAM >> 20)])
            .arg("-kernel")
            .arg(kernel)
            .arg("-initrd")
            .arg(initrd)
            .args(["-append", CMDLINE])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start qemu-system-x86_64");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Qtest {
            child,
            stdin,
            stdout,
        }
    }

    fn cmd(&mut self, line: &str) -> String {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
        loop {
            let mut answer = String::new();
            assert!(
                self.stdout.read_line(&mut answer).unwrap() > 0,
                "qemu exited"
            );
            // Asynchronous events (IRQ lines) start with "IRQ".
            if let Some(rest) = answer.strip_prefix("OK") {
                return rest.trim().to_string();
            }
            assert!(answer.starts_with("IRQ"), "qtest answered {answer:?}");
        }
    }

    /// Reads `len` bytes of item `key` by one DMA transfer.
    fn item(&mut self, key: u16, len: u32) -> Vec<u8> {
        let desc = DmaAccess::select(key, DMA_CTL_READ, len, BUF).to_be_bytes();
        let hex: String = desc.iter().map(|b| format!("{b:02x}")).collect();
        self.cmd(&format!("write {DESC:#x} {} 0x{hex}", desc.len()));
        // The DMA register is big-endian; qtest's outl writes little-endian.
        self.cmd(&format!("outl {PIO_DMA_PORT:#x} 0"));
        self.cmd(&format!(
            "outl {:#x} {:#x}",
            PIO_DMA_PORT + 4,
            (DESC as u32).swap_bytes()
        ));
        assert_eq!(self.cmd(&format!("read {DESC:#x} 4")), "0x00000000");
        if len == 0 {
            return Vec::new();
        }
        let hex = self.cmd(&format!("read {BUF:#x} {len}"));
        let hex = hex.strip_prefix("0x").unwrap();
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    fn u32_item(&mut self, key: u16) -> u32 {
        u32::from_le_bytes(self.item(key, 4).try_into().unwrap())
    }
}

impl Drop for Qtest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Our device, built for the same kernel, initrd and command line.
fn ours<'m>(
    kernel: &Path,
    initrd: &Path,
    mem: &'m GuestMemoryMmap<()>,
) -> FwCfg<&'m GuestMemoryMmap<()>> {
    let mut b = FwCfgBuilder::new();
    b.x86_qemu_defaults(&X86Machine {
        cpus: 1,
        max_cpus: 1,
        ram_size: RAM,
        e820: vec![E820Entry {
            address: 0,
            length: RAM,
            kind: E820_RAM,
        }],
        boot_order: vec![option_rom_boot_path(LINUXBOOT_DMA_ROM)],
        reboot_timeout_ms: None,
    })
    .unwrap();
    b.option_rom(LINUXBOOT_DMA_ROM, std::fs::read(ROM).unwrap())
        .unwrap();
    let memory = LinuxBootMemory {
        below_4g: RAM,
        acpi_data_size: 0,
    };
    LinuxBoot::from_bzimage(
        std::fs::read(kernel).unwrap(),
        Some(std::fs::read(initrd).unwrap()),
        CMDLINE,
        memory,
    )
    .unwrap()
    .add_to(&mut b)
    .unwrap();
    b.build(mem)
}

#[test]
fn linux_boot_items_and_defaults_match_qemu_microvm() {
    let Some((kernel, initrd)) = inputs() else {
        return;
    };
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x1000)]).unwrap();
    let dev = ours(&kernel, &initrd, &mem);
    let mut q = Qtest::start(&kernel, &initrd);

    // Every Linux boot item, byte for byte.
    for key in [
        KEY_SETUP_ADDR,
        KEY_SETUP_SIZE,
        KEY_SETUP_DATA,
        KEY_KERNEL_ADDR,
        KEY_KERNEL_SIZE,
        KEY_KERNEL_DATA,
        KEY_INITRD_ADDR,
        KEY_INITRD_SIZE,
        KEY_INITRD_DATA,
        KEY_CMDLINE_ADDR,
        KEY_CMDLINE_SIZE,
        KEY_CMDLINE_DATA,
        KEY_NB_CPUS,
        KEY_MAX_CPUS,
        KEY_RAM_SIZE,
        KEY_X86_IRQ0_OVERRIDE,
    ] {
        let want = dev.item_bytes(key).unwrap();
        let len = u32::try_from(want.len()).unwrap();
        // One byte more than ours: QEMU's item must end where ours does.
        let got = q.item(key, len + 1);
        assert_eq!(&got[..want.len()], want, "item {key:#06x}");
        assert_eq!(got[want.len()], 0, "item {key:#06x} is longer in QEMU");
    }
    assert_eq!(q.u32_item(KEY_SETUP_ADDR), 0x10000);

    // QEMU's files: each of ours is there with the same bytes, except
    // etc/e820 (the memory map is the VMM's). QEMU adds etc/acpi/*,
    // etc/table-loader and etc/fdt, which this test does not build.
    let count = u32::from_be_bytes(q.item(KEY_FILE_DIR, 4).try_into().unwrap());
    let dir = q.item(KEY_FILE_DIR, 4 + 64 * count);
    let qemu_files: Vec<FileDirEntry> = dir[4..]
        .chunks(64)
        .map(|c| FileDirEntry::from_be_bytes(c.try_into().unwrap()))
        .collect();
    for (name, _, size) in dev.files() {
        let entry = qemu_files
            .iter()
            .find(|e| e.name_bytes() == Some(name.as_bytes()))
            .unwrap_or_else(|| panic!("QEMU serves no {name}"));
        if name == "etc/e820" {
            continue;
        }
        assert_eq!(entry.size, size, "{name}");
        let want = dev.item_bytes(dev.file_key(name).unwrap()).unwrap();
        assert_eq!(q.item(entry.select, size), want, "{name}");
    }
}
