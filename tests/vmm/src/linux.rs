// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Booting a Linux bzImage with the 64-bit boot protocol
//! (Documentation/arch/x86/boot.rst), as rust-vmm's vmm-reference and
//! Firecracker do.
//!
//! [`load`] loads the protected-mode kernel with `linux-loader`'s
//! [`BzImage`] loader at its `code32_start` (1 MiB), writes the command line,
//! places the initrd at the top of RAM below 3 GiB (and above what the
//! decompressor needs, `pref_address + init_size`), writes the ACPI tables
//! ([`super::acpi`]), and fills the zero page (`boot_params`, with the
//! image's own setup header, an e820 map and `acpi_rsdp_addr`) through
//! `linux-loader`'s [`LinuxBootConfigurator`]. It also writes what the
//! 64-bit entry needs: a GDT with the protocol's `__BOOT_CS` (0x10) and
//! `__BOOT_DS` (0x18), an empty IDT, and page tables identity-mapping the
//! first 4 GiB with 2 MiB pages. [`setup_vcpu`] then starts the vCPU in
//! long mode at `startup_64` (load address + 0x200) with `%rsi` pointing
//! to the zero page.
//!
//! Unlike the PVH test firmware, Linux needs interrupts: [`create_irqchip`]
//! gives the VM KVM's in-kernel irqchip (local APIC, IO-APIC, PIC), and
//! [`irq_serial`] raises COM1's IRQ 4 through an irqfd so that the 8250
//! driver's interrupt-driven output (everything userspace writes to the
//! console) works; the DSDT's `COM1` node gives the driver that GSI. The
//! ACPI tables describe a hardware-reduced platform, so Linux uses neither
//! the PIC nor a PIT. With the in-kernel local APIC, `hlt` no longer exits
//! to the VMM: a Linux run ends with a power-off or a reset through the
//! ACPI power registers ([`crate::devices::AcpiPower`]: `poweroff -f`,
//! `reboot -f`, `panic=-1`), a triple fault (which KVM reports as a
//! shutdown), a write to the debug-exit port, or the timeout.
//!
//! Guest-physical layout below 1 MiB:
//!
//! ```text
//! 0x0500  GDT (null, null, 64-bit code 0x10, data 0x18)
//! 0x0520  IDT (one empty gate)
//! 0x7000  zero page (boot_params)
//! 0x8ff0  initial stack pointer
//! 0x9000  PML4, 0xa000 PDPT, 0xb000..0xf000 four page directories
//! 0x2_0000  command line
//! 0xe_0000  ACPI tables (RSDP first), reserved in the e820 map
//! 0xf_0000  SMBIOS entry point and tables (crate::smbios), reserved too
//! 0xf_fff0  the reset-vector stub (crate::reset_vector), reserved too
//! 0x10_0000 the protected-mode kernel
//! ```

use std::ffi::CString;
use std::io::{self, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};

use kvm_bindings::{kvm_regs, kvm_segment};
use kvm_ioctls::{VcpuFd, VmFd};
use linux_loader::configurator::linux::LinuxBootConfigurator;
use linux_loader::configurator::{BootConfigurator, BootParams};
use linux_loader::loader::KernelLoader;
use linux_loader::loader::bootparam::{boot_e820_entry, boot_params, setup_header};
use linux_loader::loader::bzimage::BzImage;
use vm_memory::{
    Address, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion,
};
use vm_superio::Trigger;
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};

use crate::acpi::{self, ACPI_END, ACPI_START, AcpiConfig, AcpiTables};
use crate::devices::{SerialDevice, SerialSink};
use crate::fw_cfg::FwCfgHandles;
use crate::layout::{
    CMDLINE_MAX_SIZE, CMDLINE_START, E820_RAM, FW_CFG_MMIO_BASE, HIMEM_START, MMIO_GAP_START,
};
use crate::pvh::{low_ram_end, write_cmdline};
use crate::{Error, VmConfig, open_file, read_into_guest};

/// Guest-physical address of the GDT.
pub const BOOT_GDT: u64 = 0x500;
/// Guest-physical address of the IDT.
pub const BOOT_IDT: u64 = 0x520;
/// Guest-physical address of the zero page (`boot_params`).
pub const ZERO_PAGE: u64 = 0x7000;
/// Initial `%rsp` (the kernel switches to its own stack at once).
pub const BOOT_STACK: u64 = 0x8ff0;
/// Guest-physical address of the PML4.
pub const PML4: u64 = 0x9000;
/// Guest-physical address of the page-directory-pointer table.
pub const PDPT: u64 = 0xa000;
/// Guest-physical address of the first of four page directories.
pub const PD: u64 = 0xb000;
/// Start of the extended BIOS data area: conventional RAM ends here.
pub const EBDA_START: u64 = 0x9_fc00;
/// e820 type: reserved.
pub const E820_RESERVED: u32 = 2;
/// `__BOOT_CS` of the 64-bit boot protocol.
pub const BOOT_CS: u16 = 0x10;
/// `__BOOT_DS` of the 64-bit boot protocol.
pub const BOOT_DS: u16 = 0x18;
/// Offset of `startup_64` from the protected-mode kernel's load address.
pub const STARTUP_64_OFFSET: u64 = 0x200;
/// COM1's ISA IRQ (and GSI: the MADT maps ISA IRQs one to one).
pub const SERIAL_IRQ: u32 = 4;

/// `boot_flag` of a bootable image.
const BOOT_FLAG_MAGIC: u16 = 0xaa55;
/// `header`: "HdrS".
const HDR_MAGIC: u32 = 0x5372_6448;
/// `type_of_loader`: undefined boot loader.
const LOADER_OTHER: u8 = 0xff;
/// `xloadflags` bit 0: the kernel has the 64-bit entry at +0x200.
const XLF_KERNEL_64: u16 = 1;
/// First boot protocol with `xloadflags` (2.12).
const PROTOCOL_XLOADFLAGS: u16 = 0x020c;
/// 64-bit code segment: present, DPL 0, execute/read, accessed, L, G.
const GDT_CODE64: u64 = 0x00af_9b00_0000_ffff;
/// Data segment: present, DPL 0, read/write, accessed, D/B, G.
const GDT_DATA: u64 = 0x00cf_9300_0000_ffff;

/// The kind of kernel image, told apart by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelKind {
    /// Anything that is not a bzImage: loaded as a PVH ELF.
    Pvh,
    /// A bzImage (boot sector signature 0xAA55 and "HdrS" at 0x202).
    BzImage,
}

impl KernelKind {
    /// The kind of the image in `bytes` (its first 0x206 bytes suffice).
    pub fn of(bytes: &[u8]) -> KernelKind {
        let boot_flag = bytes.get(0x1fe..0x200) == Some(&BOOT_FLAG_MAGIC.to_le_bytes()[..]);
        let header = bytes.get(0x202..0x206) == Some(&HDR_MAGIC.to_le_bytes()[..]);
        if boot_flag && header {
            KernelKind::BzImage
        } else {
            KernelKind::Pvh
        }
    }

    /// The kind of the image at `path`.
    pub fn detect(path: &Path) -> Result<KernelKind, Error> {
        let file_error = |source| Error::File {
            path: path.to_path_buf(),
            source,
        };
        let mut head = Vec::with_capacity(0x206);
        let (file, _) = open_file(path)?;
        file.take(0x206)
            .read_to_end(&mut head)
            .map_err(file_error)?;
        Ok(KernelKind::of(&head))
    }
}

/// What [`load`] put in guest memory for a bzImage boot.
#[derive(Debug, Clone)]
pub struct BzImageBoot {
    /// The 64-bit entry point (`startup_64`).
    pub entry: u64,
    /// The zero page as written.
    pub params: boot_params,
    /// The ACPI tables as written.
    pub acpi: AcpiTables,
    /// The initrd's address and size.
    pub initrd: Option<(u64, u64)>,
    /// The command line as written (without the NUL).
    pub cmdline: String,
}

/// The e820 map: conventional RAM below the EBDA, the ACPI area
/// (reserved), and the rest of RAM from 1 MiB (and above 4 GiB).
pub fn e820_map(memory: &GuestMemoryMmap) -> Vec<boot_e820_entry> {
    let entry = |addr, size, type_| boot_e820_entry {
        addr,
        size,
        r#type: type_,
    };
    let mut map = vec![
        entry(0, EBDA_START, E820_RAM),
        entry(ACPI_START, ACPI_END - ACPI_START, E820_RESERVED),
    ];
    for r in memory.iter() {
        let start = r.start_addr().raw_value().max(HIMEM_START);
        let end = r.start_addr().raw_value() + r.len();
        if end > start {
            map.push(entry(start, end - start, E820_RAM));
        }
    }
    map
}

/// The GDT: null, null, 64-bit code at [`BOOT_CS`], data at [`BOOT_DS`].
pub fn gdt() -> [u64; 4] {
    [0, 0, GDT_CODE64, GDT_DATA]
}

/// Loads the bzImage, command line, initrd, ACPI tables, zero page, GDT,
/// IDT and page tables into `memory`.
pub fn load(
    memory: &GuestMemoryMmap,
    config: &VmConfig,
    fw_cfg: &FwCfgHandles,
) -> Result<BzImageBoot, Error> {
    let (mut kernel, _) = open_file(&config.kernel)?;
    let loaded = BzImage::load(memory, None, &mut kernel, Some(GuestAddress(HIMEM_START)))
        .map_err(Error::Load)?;
    let hdr = loaded.setup_header.ok_or(Error::NoSetupHeader)?;
    let (version, xloadflags) = (hdr.version, hdr.xloadflags);
    if version < PROTOCOL_XLOADFLAGS || xloadflags & XLF_KERNEL_64 == 0 {
        return Err(Error::No64BitEntry {
            version,
            xloadflags,
        });
    }
    let kernel_load = loaded.kernel_load.raw_value();
    let cmdline = write_kernel_cmdline(memory, &config.cmdline, hdr.cmdline_size)?;

    let acpi = acpi::build(&AcpiConfig {
        fw_cfg_pio: fw_cfg.pio.is_some().then_some(config.fw_cfg.dma),
        fw_cfg_mmio: fw_cfg
            .mmio
            .is_some()
            .then(|| u32::try_from(FW_CFG_MMIO_BASE))
            .transpose()
            .map_err(|_| Error::MmioAbove4G(FW_CFG_MMIO_BASE))?,
    })?;
    acpi.write_to(memory)?;
    // Linux's BIOS reboot method jumps here (see the module).
    crate::reset_vector::write(memory, &acpi)?;
    crate::smbios::write(memory, &acpi)?;

    let initrd = match &config.initrd {
        Some(path) => {
            // The decompressor works from max(load address, pref_address)
            // up to init_size bytes on; the initrd must stay clear of that.
            let floor = decompression_end(memory, &hdr, kernel_load)?.max(loaded.kernel_end);
            let top = u64::from(hdr.initrd_addr_max) + 1;
            Some(load_initrd(memory, path, floor, top)?)
        }
        None => None,
    };
    let params = zero_page(memory, hdr, cmdline.as_bytes().len(), initrd, &acpi)?;
    let boot = BootParams::new::<boot_params>(&params, GuestAddress(ZERO_PAGE));
    LinuxBootConfigurator::write_bootparams::<GuestMemoryMmap>(&boot, memory)
        .map_err(Error::BootParams)?;
    write_cpu_tables(memory)?;

    Ok(BzImageBoot {
        entry: kernel_load + STARTUP_64_OFFSET,
        params,
        acpi,
        initrd,
        cmdline: String::from_utf8_lossy(cmdline.as_bytes()).into_owned(),
    })
}

/// Writes the command line, as given: the ACPI tables describe fw_cfg, so
/// the `qemu_fw_cfg.mmio=` parameter of the PVH path is not added (with
/// CONFIG_FW_CFG_SYSFS_CMDLINE it would register a second device).
/// `kernel_max` is the setup header's `cmdline_size`.
fn write_kernel_cmdline(
    memory: &GuestMemoryMmap,
    cmdline: &str,
    kernel_max: u32,
) -> Result<CString, Error> {
    let max = usize::try_from(kernel_max)
        .unwrap_or(usize::MAX)
        .min(CMDLINE_MAX_SIZE - 1);
    if cmdline.len() > max {
        return Err(Error::CmdlineTooLong {
            len: cmdline.len(),
            max,
        });
    }
    write_cmdline(memory, cmdline, None)
}

/// The end of what the decompressor uses, `max(load address,
/// pref_address) + init_size`, checked against overflow and guest RAM.
pub fn decompression_end(
    memory: &GuestMemoryMmap,
    hdr: &setup_header,
    kernel_load: u64,
) -> Result<u64, Error> {
    let (pref_address, init_size) = (hdr.pref_address, hdr.init_size);
    let start = kernel_load.max(pref_address);
    let end = start
        .checked_add(u64::from(init_size))
        .ok_or(Error::DecompressorOverflow {
            pref_address,
            init_size,
        })?;
    let ram_end = low_ram_end(memory).min(MMIO_GAP_START);
    if end > ram_end {
        return Err(Error::KernelOutsideRam {
            start,
            end,
            ram_end,
        });
    }
    Ok(end)
}

/// Places the initrd at `path` page-aligned at the top of RAM below `top`
/// and the MMIO gap, at or above `floor`, reading it straight into guest
/// memory once its size is known to fit; returns its address and size.
fn load_initrd(
    memory: &GuestMemoryMmap,
    path: &Path,
    floor: u64,
    top: u64,
) -> Result<(u64, u64), Error> {
    let (mut file, size) = open_file(path)?;
    let top = low_ram_end(memory).min(MMIO_GAP_START).min(top);
    let addr = top
        .checked_sub(size)
        .map(|a| a & !0xfff)
        .filter(|&a| a >= floor)
        .ok_or(Error::InitrdTooBig(size))?;
    read_into_guest(memory, &mut file, path, addr, size)?;
    Ok((addr, size))
}

/// The zero page: the image's setup header completed by the loader, the
/// e820 map and the RSDP address.
fn zero_page(
    memory: &GuestMemoryMmap,
    mut hdr: setup_header,
    cmdline_len: usize,
    initrd: Option<(u64, u64)>,
    acpi: &AcpiTables,
) -> Result<boot_params, Error> {
    hdr.type_of_loader = LOADER_OTHER;
    hdr.boot_flag = BOOT_FLAG_MAGIC;
    hdr.header = HDR_MAGIC;
    hdr.cmd_line_ptr = CMDLINE_START as u32;
    hdr.cmdline_size = u32::try_from(cmdline_len).unwrap_or(u32::MAX);
    if let Some((addr, size)) = initrd {
        // Both below 4 GiB (under the MMIO gap), so the 32-bit fields hold
        // them whole.
        hdr.ramdisk_image = u32::try_from(addr).unwrap_or(0);
        hdr.ramdisk_size = u32::try_from(size).unwrap_or(0);
    }
    let mut params = boot_params {
        hdr,
        acpi_rsdp_addr: acpi.rsdp_addr(),
        ..Default::default()
    };
    let map = e820_map(memory);
    if map.len() > params.e820_table.len() {
        return Err(Error::TooManyE820Entries(map.len()));
    }
    for (slot, e) in params.e820_table.iter_mut().zip(&map) {
        *slot = *e;
    }
    params.e820_entries = map.len() as u8;
    Ok(params)
}

/// Writes the GDT, the IDT and the identity-mapping page tables.
fn write_cpu_tables(memory: &GuestMemoryMmap) -> Result<(), Error> {
    let w = |addr: u64, value: u64| {
        memory
            .write_obj(value, GuestAddress(addr))
            .map_err(|source| Error::GuestWrite { addr, source })
    };
    for (i, d) in gdt().iter().enumerate() {
        w(BOOT_GDT + 8 * i as u64, *d)?;
    }
    w(BOOT_IDT, 0)?;
    // Present | writable (0x3) for table entries; | page size (0x83) for
    // 2 MiB pages.
    w(PML4, PDPT | 0x3)?;
    for gib in 0..4u64 {
        let pd = PD + gib * 0x1000;
        w(PDPT + 8 * gib, pd | 0x3)?;
        for i in 0..512u64 {
            w(pd + 8 * i, ((gib << 30) | (i << 21)) | 0x83)?;
        }
    }
    Ok(())
}

fn segment(selector: u16, descriptor: u64) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_: ((descriptor >> 40) & 0xf) as u8,
        present: ((descriptor >> 47) & 1) as u8,
        dpl: ((descriptor >> 45) & 3) as u8,
        db: ((descriptor >> 54) & 1) as u8,
        s: ((descriptor >> 44) & 1) as u8,
        l: ((descriptor >> 53) & 1) as u8,
        g: ((descriptor >> 55) & 1) as u8,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

/// Gives the VM KVM's in-kernel irqchip. Must come before the vCPU is
/// created.
pub fn create_irqchip(vm: &VmFd) -> Result<(), Error> {
    vm.create_irq_chip().map_err(Error::Vm)
}

/// Puts the vCPU in the state of the 64-bit boot protocol: long mode with
/// the identity map, `__BOOT_CS`/`__BOOT_DS`, interrupts off, `%rsi` =
/// zero page, `%rip` = `startup_64`; and sets the local APIC's LINT0 to
/// ExtINT and LINT1 to NMI, as a PC BIOS leaves them.
pub fn setup_vcpu(vcpu: &VcpuFd, boot: &BzImageBoot) -> Result<(), Error> {
    let mut sregs = vcpu.get_sregs().map_err(Error::Vcpu)?;
    let gdt = gdt();
    sregs.cs = segment(BOOT_CS, gdt[usize::from(BOOT_CS / 8)]);
    let data = segment(BOOT_DS, gdt[usize::from(BOOT_DS / 8)]);
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.gdt.base = BOOT_GDT;
    sregs.gdt.limit = (8 * gdt.len() - 1) as u16;
    sregs.idt.base = BOOT_IDT;
    sregs.idt.limit = 7;
    sregs.cr3 = PML4;
    sregs.cr4 = 0x20; // PAE
    sregs.cr0 = 0x8000_0011; // PG | ET | PE
    sregs.efer = 0x500; // LMA | LME
    vcpu.set_sregs(&sregs).map_err(Error::Vcpu)?;

    let regs = kvm_regs {
        rip: boot.entry,
        rsi: ZERO_PAGE,
        rsp: BOOT_STACK,
        rbp: BOOT_STACK,
        rflags: 0x2,
        ..Default::default()
    };
    vcpu.set_regs(&regs).map_err(Error::Vcpu)?;
    super::cpu::reset_fpu(vcpu)?;

    let mut lapic = vcpu.get_lapic().map_err(Error::Vcpu)?;
    for (reg, mode) in [(0x350usize, 7u32), (0x360, 4)] {
        let mut v = [0u8; 4];
        for (b, r) in v.iter_mut().zip(&lapic.regs[reg..reg + 4]) {
            *b = *r as u8;
        }
        let value = (u32::from_le_bytes(v) & !0x700) | (mode << 8);
        for (r, b) in lapic.regs[reg..reg + 4].iter_mut().zip(value.to_le_bytes()) {
            *r = b as _;
        }
    }
    vcpu.set_lapic(&lapic).map_err(Error::Vcpu)?;
    // MTRRs enabled, write-back by default (no firmware programs them).
    crate::guest_cpu::set_boot_msrs(vcpu)
}

/// An interrupt line: an irqfd registered for one GSI.
pub struct IrqLine(EventFd);

impl Trigger for IrqLine {
    type E = io::Error;

    fn trigger(&self) -> io::Result<()> {
        self.0.write(1)
    }
}

/// COM1 with its interrupt wired to IRQ 4 of the in-kernel irqchip.
pub type IrqSerial = SerialDevice<IrqLine>;

/// A UART writing to `sink` and raising [`SERIAL_IRQ`] in `vm` (which needs
/// an irqchip), ready for the I/O bus.
pub fn irq_serial(vm: &VmFd, sink: SerialSink) -> Result<Arc<Mutex<IrqSerial>>, Error> {
    let fd = EventFd::new(EFD_NONBLOCK).map_err(Error::Irqfd)?;
    vm.register_irqfd(&fd, SERIAL_IRQ).map_err(Error::Vm)?;
    Ok(Arc::new(Mutex::new(SerialDevice::with_trigger(
        IrqLine(fd),
        sink,
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_told_apart_by_the_header() {
        let mut b = vec![0u8; 0x300];
        assert_eq!(KernelKind::of(&b), KernelKind::Pvh);
        b[0x1fe] = 0x55;
        b[0x1ff] = 0xaa;
        assert_eq!(KernelKind::of(&b), KernelKind::Pvh);
        b[0x202..0x206].copy_from_slice(b"HdrS");
        assert_eq!(KernelKind::of(&b), KernelKind::BzImage);
        assert_eq!(KernelKind::of(&b[..0x205]), KernelKind::Pvh);
        assert_eq!(KernelKind::of(b"\x7fELF"), KernelKind::Pvh);
    }

    #[test]
    fn gdt_segments_are_the_boot_protocols() {
        let cs = segment(BOOT_CS, GDT_CODE64);
        assert_eq!(
            (cs.type_, cs.present, cs.s, cs.l, cs.db, cs.g),
            (0xb, 1, 1, 1, 0, 1)
        );
        let ds = segment(BOOT_DS, GDT_DATA);
        assert_eq!(
            (ds.type_, ds.present, ds.s, ds.l, ds.db, ds.g),
            (0x3, 1, 1, 0, 1, 1)
        );
        assert_eq!(gdt()[usize::from(BOOT_CS / 8)], GDT_CODE64);
        assert_eq!(gdt()[usize::from(BOOT_DS / 8)], GDT_DATA);
    }

    #[test]
    fn e820_reserves_the_acpi_area_and_skips_the_gap() {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 64 << 20)]).unwrap();
        let map = e820_map(&mem);
        let m: Vec<(u64, u64, u32)> = map.iter().map(|e| (e.addr, e.size, e.r#type)).collect();
        assert_eq!(
            m,
            [
                (0, EBDA_START, E820_RAM),
                (ACPI_START, ACPI_END - ACPI_START, E820_RESERVED),
                (HIMEM_START, (64 << 20) - HIMEM_START, E820_RAM),
            ]
        );
    }
}
