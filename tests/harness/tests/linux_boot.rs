// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Linux bzImage boot in the mini VMM, and the ACPI tables that describe
//! fw_cfg to the guest.
//!
//! - Loading (no KVM needed): the Debian kernel's bzImage is loaded with
//!   `linux-loader`, and everything the 64-bit boot protocol hands over is
//!   read back from guest memory: the zero page (the image's setup header,
//!   loader type, command line pointer, initrd, e820 map,
//!   `acpi_rsdp_addr`), the protected-mode kernel bytes, the GDT and the
//!   identity map.
//! - ACPI: the tables are found in guest memory the way Linux finds them
//!   (RSDP at `acpi_rsdp_addr`, XSDT, FADT, DSDT, MADT), checked for
//!   checksums and lengths, disassembled by ACPICA's `iasl` without
//!   errors, and the DSDT's `Device (FWCF)` is read back from the
//!   disassembly (`_HID "QEMU0002"`, the I/O ports; the only fw_cfg node,
//!   the MMIO window is not described), with `Device (COM1)` and `_S5`.
//! - Entry path under KVM: a tiny hand-made bzImage whose 64-bit entry
//!   prints the command line it finds through `%rsi` and exits through the
//!   debug-exit port with a value only 64-bit code computes; and the Debian
//!   kernel itself, whose decompressor (the first code after `startup_64`)
//!   must configure COM1 from `earlyprintk=` and print its `nokaslr`
//!   notice within 60 seconds. The nested KVM engine of the project's
//!   machines is too slow for Linux to get further (decompressing the
//!   8 MB xz payload alone takes many minutes); if the banner does come,
//!   the test checks it too.
//!
//! Missing `/dev/kvm`, kernel or `iasl` fail the tests, unless
//! `FW_CFG_ALLOW_SKIP=1` is set.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fw_cfg_device::{FwCfgBuilder, FwCfgMmio, FwCfgPio};
use fw_cfg_tests::peers::kernels::{BOOT_DIR, installed_kernels};
use fw_cfg_tests::peers::{Missing, iasl, require};
use fw_cfg_tests::vmm::acpi::{ACPI_END, ACPI_START, IOAPIC_ADDRESS};
use fw_cfg_tests::vmm::devices::SerialSink;
use fw_cfg_tests::vmm::fw_cfg::FwCfgHandles;
use fw_cfg_tests::vmm::layout::{CMDLINE_START, FW_CFG_MMIO_BASE, HIMEM_START, ram_ranges};
use fw_cfg_tests::vmm::linux::{
    self, BOOT_GDT, E820_RESERVED, KernelKind, PD, PDPT, PML4, STARTUP_64_OFFSET, ZERO_PAGE,
};
use fw_cfg_tests::vmm::{Error, ExitReason, Vm, VmConfig};
use linux_loader::loader::bootparam::boot_params;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Environment variable naming the bzImage to boot.
const KERNEL_ENV: &str = "FW_CFG_KERNEL";

fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "fw-cfg-tests-linux-boot-{}-{name}",
        std::process::id()
    ))
}

/// The bzImage: `FW_CFG_KERNEL`, else the newest `/boot/vmlinuz-*` (by
/// version) that is a bzImage.
fn find_kernel() -> Result<PathBuf, Missing> {
    let hint = "install Debian's linux-image-amd64, or set FW_CFG_KERNEL to a bzImage";
    let candidates: Vec<PathBuf> = match std::env::var_os(KERNEL_ENV) {
        Some(p) => vec![PathBuf::from(p)],
        None => installed_kernels(Path::new(BOOT_DIR)).unwrap_or_default(),
    };
    candidates
        .into_iter()
        .find(|p| KernelKind::detect(p).ok() == Some(KernelKind::BzImage))
        .ok_or_else(|| Missing::new("a Linux bzImage", hint))
}

fn memory(mib: u64) -> GuestMemoryMmap {
    let ranges: Vec<(GuestAddress, usize)> = ram_ranges(mib << 20)
        .into_iter()
        .map(|(s, l)| (GuestAddress(s), l as usize))
        .collect();
    GuestMemoryMmap::<()>::from_ranges(&ranges).unwrap()
}

/// Both fw_cfg front ends, as `fw_cfg::setup` registers them.
fn handles(mem: &GuestMemoryMmap) -> FwCfgHandles {
    let mem = Arc::new(mem.clone());
    let b = FwCfgBuilder::new();
    let mut h = FwCfgHandles::default();
    h.pio = Some(Arc::new(Mutex::new(FwCfgPio::new(b.build(mem.clone())))));
    h.mmio = Some(Arc::new(Mutex::new(FwCfgMmio::new(b.build(mem)))));
    h
}

/// A minimal bzImage: one setup sector with a 2.15 header, then the
/// protected-mode kernel: 0x200 bytes of padding (where `startup_32`
/// would be) and `code64` at `startup_64`.
fn tiny_bzimage(version: u16, xloadflags: u16, code64: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 1024];
    f[0x1f1] = 1; // setup_sects
    f[0x1fe..0x200].copy_from_slice(&[0x55, 0xaa]);
    f[0x202..0x206].copy_from_slice(b"HdrS");
    f[0x206..0x208].copy_from_slice(&version.to_le_bytes());
    f[0x211] = 0x01; // loadflags: LOADED_HIGH
    f[0x214..0x218].copy_from_slice(&0x10_0000u32.to_le_bytes()); // code32_start
    f[0x22c..0x230].copy_from_slice(&0x7fff_ffffu32.to_le_bytes()); // initrd_addr_max
    f[0x230..0x234].copy_from_slice(&0x20_0000u32.to_le_bytes()); // kernel_alignment
    f[0x234] = 1; // relocatable
    f[0x236..0x238].copy_from_slice(&xloadflags.to_le_bytes());
    f[0x238..0x23c].copy_from_slice(&2047u32.to_le_bytes()); // cmdline_size
    f[0x258..0x260].copy_from_slice(&0x100_0000u64.to_le_bytes()); // pref_address
    f[0x260..0x264].copy_from_slice(&0x10_0000u32.to_le_bytes()); // init_size
    f.resize(1024 + STARTUP_64_OFFSET as usize, 0xcc);
    f.extend_from_slice(code64);
    f
}

/// 64-bit code: prints the NUL-terminated string at
/// `boot_params.hdr.cmd_line_ptr` on COM1, then writes
/// `(acpi_rsdp_addr << 28) >> 32` (0xE000 for 0xE0000) to the debug-exit
/// port. In 32-bit mode the shifts give 0 and `inc rcx` is two other
/// instructions, so the value proves long mode and `%rsi`.
#[rustfmt::skip]
const ENTRY64_PROBE: &[u8] = &[
    0x8b, 0x8e, 0x28, 0x02, 0x00, 0x00, // mov ecx, [rsi+0x228]  (cmd_line_ptr)
    0xba, 0xf8, 0x03, 0x00, 0x00,       // mov edx, 0x3f8
    0x8a, 0x01,                         // 1: mov al, [rcx]
    0x84, 0xc0,                         //    test al, al
    0x74, 0x06,                         //    jz 2f
    0xee,                               //    out dx, al
    0x48, 0xff, 0xc1,                   //    inc rcx
    0xeb, 0xf4,                         //    jmp 1b
    0x48, 0x8b, 0x46, 0x70,             // 2: mov rax, [rsi+0x70]  (acpi_rsdp_addr)
    0x48, 0xc1, 0xe0, 0x1c,             //    shl rax, 28
    0x48, 0xc1, 0xe8, 0x20,             //    shr rax, 32
    0xba, 0xf4, 0x00, 0x00, 0x00,       //    mov edx, 0xf4
    0xef,                               //    out dx, eax
    0xeb, 0xfe,                         //    jmp .
];

fn write_file(name: &str, bytes: &[u8]) -> PathBuf {
    let p = scratch(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn read_u32(mem: &GuestMemoryMmap, addr: u64) -> u32 {
    mem.read_obj(GuestAddress(addr)).unwrap()
}

fn read_u64(mem: &GuestMemoryMmap, addr: u64) -> u64 {
    mem.read_obj(GuestAddress(addr)).unwrap()
}

fn read_vec(mem: &GuestMemoryMmap, addr: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    mem.read_slice(&mut v, GuestAddress(addr)).unwrap();
    v
}

/// An ACPI table found in guest memory: (signature, bytes).
type Table = ([u8; 4], Vec<u8>);

/// The ACPI table at `addr`, as long as its header says.
fn sdt_at(mem: &GuestMemoryMmap, addr: u64) -> Table {
    let len = read_u32(mem, addr + 4) as usize;
    assert!(
        (36..=0x1_0000).contains(&len),
        "table at {addr:#x}: length {len}"
    );
    let bytes = read_vec(mem, addr, len);
    let mut sig = [0u8; 4];
    sig.copy_from_slice(&bytes[..4]);
    (sig, bytes)
}

fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b))
}

/// Walks RSDP -> XSDT -> (FADT -> DSDT, MADT) from `rsdp_addr`, checking
/// every checksum and that each table lies in the reserved ACPI area.
/// Returns the RSDP and the tables by signature.
fn acpi_from_memory(mem: &GuestMemoryMmap, rsdp_addr: u64) -> (Vec<u8>, Vec<Table>) {
    let rsdp = read_vec(mem, rsdp_addr, 36);
    assert_eq!(&rsdp[..8], b"RSD PTR ");
    assert_eq!(rsdp[15], 2, "ACPI 2.0+ RSDP");
    assert_eq!(checksum(&rsdp[..20]), 0, "RSDP checksum");
    assert_eq!(checksum(&rsdp), 0, "RSDP extended checksum");
    let in_area = |addr: u64, len: usize| {
        assert!(
            addr >= ACPI_START && addr + len as u64 <= ACPI_END,
            "table at {addr:#x}+{len:#x} outside the reserved ACPI area"
        );
    };
    let xsdt_addr = u64::from_le_bytes(rsdp[24..32].try_into().unwrap());
    let (sig, xsdt) = sdt_at(mem, xsdt_addr);
    assert_eq!(&sig, b"XSDT");
    in_area(xsdt_addr, xsdt.len());
    let mut tables = vec![(sig, xsdt.clone())];
    for entry in xsdt[36..].chunks(8) {
        let addr = u64::from_le_bytes(entry.try_into().unwrap());
        let (sig, bytes) = sdt_at(mem, addr);
        in_area(addr, bytes.len());
        if &sig == b"FACP" {
            let dsdt_addr = u64::from_le_bytes(bytes[140..148].try_into().unwrap());
            let (dsig, dsdt) = sdt_at(mem, dsdt_addr);
            assert_eq!(&dsig, b"DSDT");
            in_area(dsdt_addr, dsdt.len());
            tables.push((dsig, dsdt));
        }
        tables.push((sig, bytes));
    }
    for (sig, bytes) in &tables {
        assert_eq!(
            checksum(bytes),
            0,
            "{} checksum",
            String::from_utf8_lossy(sig)
        );
    }
    let mut sigs: Vec<[u8; 4]> = tables.iter().map(|t| t.0).collect();
    sigs.sort();
    assert_eq!(sigs, [*b"APIC", *b"DSDT", *b"FACP", *b"XSDT"]);
    (rsdp, tables)
}

fn table<'a>(tables: &'a [Table], sig: &[u8; 4]) -> &'a [u8] {
    &tables.iter().find(|t| &t.0 == sig).unwrap().1
}

#[test]
fn the_debian_bzimage_is_loaded_with_the_64_bit_boot_protocol() {
    let Some(kernel) = require(find_kernel()) else {
        return;
    };
    let image = std::fs::read(&kernel).unwrap();
    let initrd: Vec<u8> = (0..(3 << 20) + 123).map(|i| (i % 251) as u8).collect();
    let mut config = VmConfig::new(&kernel);
    config.initrd = Some(write_file("initrd", &initrd));
    config.cmdline = "console=ttyS0 earlyprintk=serial,ttyS0,115200 panic=-1".into();
    let mem = memory(256);
    let boot = linux::load(&mem, &config, &handles(&mem)).unwrap();
    let _ = std::fs::remove_file(config.initrd.as_ref().unwrap());

    // The zero page in memory is what `load` reports, and it carries the
    // image's own setup header with the loader's fields filled in.
    let zp: boot_params = mem.read_obj(GuestAddress(ZERO_PAGE)).unwrap();
    assert_eq!(zp, boot.params);
    let hdr = zp.hdr;
    let image_hdr = &image[0x1f1..0x1f1 + 0x7b];
    assert_eq!(
        read_vec(&mem, ZERO_PAGE + 0x1f1, 0x0f),
        image_hdr[..0x0f],
        "setup_sects .. boot_flag copied from the image"
    );
    assert_eq!({ hdr.boot_flag }, 0xaa55);
    assert_eq!({ hdr.header }, 0x5372_6448);
    assert!({ hdr.version } >= 0x020c);
    assert_ne!({ hdr.xloadflags } & 1, 0, "XLF_KERNEL_64");
    assert_eq!({ hdr.type_of_loader }, 0xff);
    assert_eq!({ hdr.code32_start }, HIMEM_START as u32);

    // Command line.
    assert_eq!({ hdr.cmd_line_ptr }, CMDLINE_START as u32);
    let cmdline = read_vec(&mem, CMDLINE_START, config.cmdline.len() + 1);
    assert_eq!(&cmdline[..config.cmdline.len()], config.cmdline.as_bytes());
    assert_eq!(cmdline[config.cmdline.len()], 0);
    assert_eq!({ hdr.cmdline_size } as usize, config.cmdline.len());

    // The protected-mode kernel at 1 MiB, entry at startup_64.
    let setup_sects = match image[0x1f1] {
        0 => 4,
        n => usize::from(n),
    };
    let setup = (setup_sects + 1) * 512;
    assert_eq!(
        read_vec(&mem, HIMEM_START, 4096),
        image[setup..setup + 4096]
    );
    assert_eq!(boot.entry, HIMEM_START + STARTUP_64_OFFSET);

    // The initrd: whole, page aligned, below initrd_addr_max, clear of
    // what the decompressor uses.
    let (addr, size) = boot.initrd.unwrap();
    assert_eq!(
        ({ hdr.ramdisk_image }, { hdr.ramdisk_size }),
        (addr as u32, size as u32)
    );
    assert_eq!(size as usize, initrd.len());
    assert_eq!(addr % 4096, 0);
    assert!(addr + size <= u64::from(hdr.initrd_addr_max) + 1);
    assert!(addr >= { hdr.pref_address }.max(HIMEM_START) + u64::from(hdr.init_size));
    assert_eq!(read_vec(&mem, addr, initrd.len()), initrd);

    // e820: RAM below the EBDA, the ACPI area reserved, RAM from 1 MiB to
    // the end; nothing overlaps.
    let n = usize::from(zp.e820_entries);
    let map: Vec<(u64, u64, u32)> = zp.e820_table[..n]
        .iter()
        .map(|e| ({ e.addr }, { e.size }, { e.r#type }))
        .collect();
    assert_eq!(
        map,
        [
            (0, 0x9_fc00, 1),
            (ACPI_START, ACPI_END - ACPI_START, E820_RESERVED),
            (HIMEM_START, (256 << 20) - HIMEM_START, 1),
        ]
    );
    assert!(addr + size <= 256 << 20);

    // ACPI: the RSDP where boot_params says, in the scanned BIOS area.
    assert_eq!({ zp.acpi_rsdp_addr }, ACPI_START);
    assert_eq!(read_vec(&mem, 0xe_0000, 8), b"RSD PTR ");
    acpi_from_memory(&mem, ACPI_START);

    // Long-mode scaffolding: GDT with __BOOT_CS/__BOOT_DS, identity map.
    assert_eq!(read_u64(&mem, BOOT_GDT + 0x10), 0x00af_9b00_0000_ffff);
    assert_eq!(read_u64(&mem, BOOT_GDT + 0x18), 0x00cf_9300_0000_ffff);
    assert_eq!(read_u64(&mem, PML4), PDPT | 3);
    for gib in 0..4 {
        let pd = read_u64(&mem, PDPT + 8 * gib) & !0xfff;
        assert_eq!(pd, PD + gib * 0x1000);
        for i in [0u64, 8, 511] {
            assert_eq!(read_u64(&mem, pd + 8 * i), (gib << 30) | (i << 21) | 0x83);
        }
    }
}

#[test]
fn bad_images_and_initrds_are_refused() {
    let mem = memory(64);
    let old = write_file("old.bzimage", &tiny_bzimage(0x020b, 0, &[0xf4]));
    let no64 = write_file("no64.bzimage", &tiny_bzimage(0x020f, 0, &[0xf4]));
    let good = write_file("good.bzimage", &tiny_bzimage(0x020f, 1, &[0xf4]));
    for p in [&old, &no64] {
        assert_eq!(KernelKind::detect(p).unwrap(), KernelKind::BzImage);
        let err = linux::load(&mem, &VmConfig::new(p), &handles(&mem)).unwrap_err();
        assert!(
            matches!(&err, Error::No64BitEntry { .. }) && err.to_string().contains("64-bit entry"),
            "{err}"
        );
    }
    // 64 MiB RAM, the decompressor owns up to 17 MiB: a 60 MiB initrd
    // cannot be placed.
    let mut config = VmConfig::new(&good);
    config.initrd = Some(write_file("big.initrd", &vec![0u8; 60 << 20]));
    let err = linux::load(&mem, &config, &handles(&mem)).unwrap_err();
    assert!(matches!(err, Error::InitrdTooBig(_)), "{err}");
    config.initrd = None;
    config.cmdline = "x".repeat(2048);
    let err = linux::load(&mem, &config, &handles(&mem)).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::CmdlineTooLong {
                len: 2048,
                max: 2047
            }
        ),
        "{err}"
    );
    for p in [old, no64, good, scratch("big.initrd")] {
        let _ = std::fs::remove_file(p);
    }
}

/// ACPICA's disassembly of one table, which must report no error.
fn disassemble_clean(iasl: &Path, sig: &[u8; 4], bytes: &[u8]) -> String {
    let asl = iasl::disassemble(iasl, bytes).unwrap_or_else(|e| panic!("{e}"));
    let name = String::from_utf8_lossy(sig);
    for bad in ["Incorrect", "Invalid", "Error", "error", "**** "] {
        assert!(!asl.contains(bad), "{name}: iasl reports {bad:?}:\n{asl}");
    }
    asl
}

#[test]
fn acpica_disassembles_every_table_the_guest_gets() {
    let Some(iasl) = require(iasl::find()) else {
        return;
    };
    let mem = memory(64);
    let image = write_file("acpi.bzimage", &tiny_bzimage(0x020f, 1, &[0xf4]));
    let boot = linux::load(&mem, &VmConfig::new(&image), &handles(&mem)).unwrap();
    let _ = std::fs::remove_file(&image);
    // The RSDP has no standard table header; ACPICA 20200925 (Debian
    // bookworm's) does not disassemble it alone, so `acpi_from_memory`
    // checks it: signature, revision, both checksums, the XSDT pointer.
    let (_rsdp, tables) = acpi_from_memory(&mem, boot.params.acpi_rsdp_addr);
    for t in &boot.acpi.tables {
        assert_eq!(read_vec(&mem, t.addr, t.bytes.len()), t.bytes);
    }

    let fadt = disassemble_clean(&iasl, b"FACP", table(&tables, b"FACP"));
    assert!(
        fadt.lines()
            .any(|l| l.contains("Hardware Reduced (V5)") && l.trim_end().ends_with(": 1")),
        "{fadt}"
    );

    let madt = disassemble_clean(&iasl, b"APIC", table(&tables, b"APIC"));
    assert_eq!(madt.matches("[Processor Local APIC]").count(), 1, "{madt}");
    assert!(madt.contains("[I/O APIC]"), "{madt}");
    assert!(madt.contains("[Local APIC NMI]"), "{madt}");
    assert!(
        madt.contains(&format!("{IOAPIC_ADDRESS:08X}")),
        "IO-APIC address in\n{madt}"
    );

    let xsdt = disassemble_clean(&iasl, b"XSDT", table(&tables, b"XSDT"));
    assert_eq!(xsdt.matches("ACPI Table Address").count(), 2, "{xsdt}");

    let dsdt = disassemble_clean(&iasl, b"DSDT", table(&tables, b"DSDT"));
    assert!(dsdt.contains("Scope (\\_SB)"), "{dsdt}");
    let fwcf = iasl::device_block(&dsdt, "FWCF")
        .unwrap_or_else(|| panic!("no Device (FWCF) in\n{dsdt}"))
        .join("\n");
    for s in [
        "Name (_HID, \"QEMU0002\")",
        "Name (_STA, 0x0B)",
        "IO (Decode16,\n0x0510,\n0x0510,\n0x01,\n0x0C,\n)",
    ] {
        assert!(fwcf.contains(s), "{s:?} in\n{fwcf}");
    }
    // One fw_cfg node, as QEMU's x86 machines: the MMIO window is not
    // described. COM1 with its interrupt, and the soft-off sleep type.
    assert_eq!(dsdt.matches("\"QEMU0002\"").count(), 1, "{dsdt}");
    assert!(
        !dsdt.contains(&format!("0x{FW_CFG_MMIO_BASE:08X}")),
        "{dsdt}"
    );
    let com1 = iasl::device_block(&dsdt, "COM1")
        .unwrap_or_else(|| panic!("no Device (COM1) in\n{dsdt}"))
        .join("\n");
    for s in [
        "Name (_HID, EisaId (\"PNP0501\")",
        "IO (Decode16,\n0x03F8,\n0x03F8,\n0x01,\n0x08,\n)",
        "Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, )\n{\n0x00000004,\n}",
    ] {
        assert!(com1.contains(s), "{s:?} in\n{com1}");
    }
    assert!(dsdt.contains("Name (_S5, Package"), "{dsdt}");

    // Without the MMIO window only FWCF is described, and without DMA its
    // I/O range shrinks to the two control ports.
    let mut config = VmConfig::new(write_file(
        "acpi2.bzimage",
        &tiny_bzimage(0x020f, 1, &[0xf4]),
    ));
    config.fw_cfg.dma = false;
    let mut only_pio = handles(&mem);
    only_pio.mmio = None;
    let boot = linux::load(&mem, &config, &only_pio).unwrap();
    let _ = std::fs::remove_file(&config.kernel);
    let dsdt = disassemble_clean(&iasl, b"DSDT", &boot.acpi.get(b"DSDT").unwrap().bytes);
    let fwcf = iasl::device_block(&dsdt, "FWCF").unwrap().join("\n");
    assert!(fwcf.contains("0x01,\n0x02,\n)"), "{fwcf}");
}

#[test]
fn a_tiny_bzimage_runs_its_64_bit_entry_with_the_zero_page() {
    if !common::require_kvm() {
        return;
    }
    let image = write_file("probe.bzimage", &tiny_bzimage(0x020f, 1, ENTRY64_PROBE));
    let mut config = VmConfig::new(&image);
    config.cmdline = "hello from the zero page".into();
    let (sink, out) = SerialSink::capture();
    config.serial = sink;
    let vm = Vm::new(&config).unwrap();
    let outcome = vm.run(Some(Duration::from_secs(60))).unwrap();
    let _ = std::fs::remove_file(&image);
    let printed = String::from_utf8_lossy(&out.lock().unwrap()).into_owned();
    assert_eq!(printed, config.cmdline);
    assert_eq!(
        outcome.reason,
        ExitReason::DebugExit {
            value: (ACPI_START >> 4) as u32
        }
    );
}

#[test]
fn the_debian_kernel_starts_under_kvm() {
    if !common::require_kvm() {
        return;
    }
    let Some(kernel) = require(find_kernel()) else {
        return;
    };
    let mut config = VmConfig::new(&kernel);
    config.cmdline = "earlyprintk=serial,ttyS0,115200 console=ttyS0 nokaslr".into();
    config.memory_mib = 512;
    let (sink, out) = SerialSink::capture();
    config.serial = sink;
    let vm = Vm::new(&config).unwrap();
    let mem = vm.memory().clone();
    let outcome = vm.run(Some(Duration::from_secs(60))).unwrap();
    let printed = String::from_utf8_lossy(&out.lock().unwrap()).into_owned();

    // The decompressor, the C code right after startup_64 (and, on 6.1,
    // after a round trip through its 32-bit trampoline), found the command
    // line through the zero page, set COM1 up from `earlyprintk=` (LCR,
    // IER, FCR, MCR, then the divisor latch) and printed its notice.
    assert!(
        printed.contains("KASLR disabled: 'nokaslr' on cmdline."),
        "serial output: {printed:?}; {}",
        outcome.stats
    );
    let writes = |port: u16| outcome.stats.per_port.get(&port).map_or(0, |c| c.io_out);
    assert!(
        writes(0x3fb) >= 3,
        "LCR set, DLAB on, DLAB off: {}",
        outcome.stats
    );
    assert!(
        writes(0x3f8) >= 1 && writes(0x3f9) >= 2,
        "{}",
        outcome.stats
    );
    // It decompresses into LOAD_PHYSICAL_ADDR (16 MiB with nokaslr):
    // first the vmlinux ELF header, later the kernel's own code.
    let out16 = read_vec(&mem, 0x100_0000, 4096);
    assert!(
        out16.iter().any(|&b| b != 0),
        "nothing decompressed at 16 MiB after 60 s; serial: {printed:?}"
    );
    // Progress: non-zero pages in the first 48 MiB of the output (the
    // compressed payload sits at the end of the init_size area, above).
    let pages = (0..48u64 << 8)
        .filter(|page| {
            read_vec(&mem, 0x100_0000 + (page << 12), 4096)
                .iter()
                .any(|&b| b != 0)
        })
        .count();
    eprintln!(
        "after {:.0} s: {} KiB decompressed at 16 MiB; serial: {printed:?}",
        outcome.stats.run_ns as f64 / 1e9,
        pages * 4
    );
    if printed.contains("Linux version") {
        assert!(
            printed.contains("Command line: earlyprintk=serial"),
            "{printed}"
        );
    } else {
        // Still decompressing: the output starts with vmlinux's ELF header
        // (parse_elf() moves the segments over it once it is done).
        assert_eq!(&out16[..4], b"\x7fELF", "at 16 MiB: {:02x?}", &out16[..16]);
        assert!(
            matches!(outcome.reason, ExitReason::Timeout),
            "the kernel stopped early ({:?}); serial: {printed:?}",
            outcome.reason
        );
    }
}
