// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Booting firmware from the x86 reset vector, as QEMU's `-bios` does on
//! its `microvm` machine.
//!
//! QEMU's `x86_bios_rom_init` (hw/i386/x86-common.c) takes a ROM file whose
//! size is a non-zero multiple of 64 KiB, maps all of it at the top of the
//! 32-bit address space (`4 GiB - size`), and aliases its last 128 KiB (or
//! all of it, if smaller) below 1 MiB (`x86_isa_bios_init`), where real-mode
//! code at `F000:xxxx` finds it. `microvm` passes `isapc_ram_fw = true`:
//! both windows are RAM holding the image, so the firmware may write its own
//! data segment (SeaBIOS keeps variables there and cannot unlock shadow RAM
//! on a machine without a PCI host bridge; qboot writes its globals after
//! its jump to the F segment).
//!
//! Here ([`Firmware::map`]) the window below 1 MiB is the VM's own RAM at
//! `1 MiB - 128 KiB`, written with the ROM's tail before the vCPU starts,
//! so that DMA by the fw_cfg device into the F segment (SeaBIOS allocates
//! the RSDP there) lands where the firmware reads it. The top-of-4-GiB
//! window is a second KVM slot over the same host memory (so both show the
//! same bytes, as QEMU's alias does) plus, for ROMs over 128 KiB, a slot
//! over a private copy of the head. Both top slots are read-only
//! (`KVM_MEM_READONLY`: writes become MMIO exits that the bus ignores) when
//! KVM offers it — a real flash ROM, and a difference from `microvm`,
//! whose top window is writable RAM; no firmware writes there.
//!
//! The vCPU keeps KVM's reset state: real mode, `CS` selector 0xf000 with
//! base 0xffff0000, `IP` 0xfff0, so the first instruction is the ROM's last
//! 16 bytes. KVM's in-kernel irqchip (PIC, IO-APIC, local APIC with LINT0
//! in ExtINT mode for the boot CPU) and PIT ([`create_platform`]) give the
//! firmware its timer: SeaBIOS calibrates with PIT channel 2 (port 0x61)
//! and waits with `sti; hlt` for IRQ 0. A CMOS RTC ([`crate::cmos`]) gives
//! the time and QEMU microvm's memory-size bytes. PCI configuration ports
//! float high (no host bridge: both firmwares then take their microvm
//! paths), and port 0x92 is absent (KVM never gates A20).
//!
//! With [`BiosSetup::load_kernel`], the kernel must be a bzImage (the option
//! ROM `linuxboot_dma.bin` runs the real-mode setup); the firmware finds the
//! option ROM as `genroms/linuxboot_dma.bin` ([`OPTION_ROM_FILE`]).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use kvm_bindings::kvm_userspace_memory_region;
use kvm_bindings::{KVM_MEM_READONLY, KVM_PIT_SPEAKER_DUMMY, kvm_pit_config};
use kvm_ioctls::{Cap, Kvm, VmFd};
use vm_device::bus::{PioAddress, PioRange};
use vm_device::device_manager::{IoManager, PioManager};
use vm_memory::{
    Address, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion,
    MmapRegion, VolatileMemory,
};

use fw_cfg_device::FwCfgBuilder;
use fw_cfg_device::acpi_loader::AcpiTableSet;
use fw_cfg_device::builder::E820Entry;
use fw_cfg_device::linux_boot::{LINUXBOOT_DMA_ROM, LinuxBoot, LinuxBootMemory};
use fw_cfg_device::x86::{E820_RAM, E820_RESERVED, X86Machine, option_rom_boot_path};

use crate::acpi::AcpiConfig;
use crate::cmos::{CMOS_PORT, CMOS_PORT_SIZE, Cmos};
use crate::fw_cfg::FwCfgSetup;
use crate::layout::FW_CFG_MMIO_BASE;
use crate::linux::KernelKind;
use crate::{Error, VmConfig, open_file};

/// Granularity of a ROM's size (QEMU refuses other sizes).
pub const ROM_SIZE_UNIT: u64 = 64 << 10;
/// Largest ROM: mapped at `4 GiB - size`, it must stay above the local
/// APIC's page (0xfee00000) and the IO-APIC (0xfec00000).
pub const ROM_MAX_SIZE: u64 = 16 << 20;
/// Size of the alias below 1 MiB (`x86_isa_bios_init`'s 128 KiB).
pub const ISA_BIOS_MAX: u64 = 128 << 10;
/// End of the alias below 1 MiB.
pub const ISA_BIOS_END: u64 = 1 << 20;
/// First address above the 32-bit space.
pub const FOUR_GIB: u64 = 1 << 32;
/// Where Debian's `qemu-system-data` package installs the option ROM that
/// QEMU gives firmware for `-kernel` (`linuxboot_dma.bin`).
pub const DEFAULT_OPTION_ROM: &str = "/usr/share/qemu/linuxboot_dma.bin";
/// The fw_cfg file the firmware runs the option ROM from (QEMU's
/// `rom_add_option` puts option ROMs in `genroms/`).
pub const OPTION_ROM_FILE: &str = "genroms/linuxboot_dma.bin";
/// Largest option ROM: an option ROM's size byte counts 512-byte blocks.
pub const OPTION_ROM_MAX_SIZE: u64 = 255 * 512;

/// What `--bios` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BiosSetup {
    /// The firmware ROM image.
    pub rom: PathBuf,
    /// The option ROM that loads a bzImage from fw_cfg
    /// ([`DEFAULT_OPTION_ROM`] by default).
    pub option_rom: PathBuf,
    /// Whether the configuration's kernel (with its initrd and command
    /// line) goes to the firmware through fw_cfg; without it the firmware
    /// runs alone, as under QEMU's `-bios` without `-kernel`.
    pub load_kernel: bool,
}

impl BiosSetup {
    /// Boots `rom` with the default option ROM and the kernel.
    pub fn new(rom: impl Into<PathBuf>) -> Self {
        BiosSetup {
            rom: rom.into(),
            option_rom: PathBuf::from(DEFAULT_OPTION_ROM),
            load_kernel: true,
        }
    }
}

/// A checked firmware ROM and the fw_cfg items it reads.
#[derive(Debug, Clone)]
pub struct Firmware {
    /// The ROM's bytes (a multiple of [`ROM_SIZE_UNIT`]).
    pub rom: Vec<u8>,
    /// What the device serves the firmware on top of the configuration's
    /// items.
    pub items: Arc<FirmwareItems>,
}

/// The fw_cfg items of a firmware boot, as QEMU microvm serves them:
/// QEMU's x86 defaults ([`FwCfgBuilder::x86_qemu_defaults`]: CPU and RAM
/// items, `etc/e820`, `etc/boot-fail-wait`, `bootorder`, `bios-geometry`)
/// and, with a kernel, `x86_load_linux`'s items ([`LinuxBoot`]) and the
/// option ROM as [`OPTION_ROM_FILE`], first in `bootorder`.
#[derive(Debug, Clone)]
pub struct FirmwareItems {
    /// The machine as QEMU's x86 fw_cfg setup describes it.
    pub machine: X86Machine,
    /// The option ROM's bytes, with a kernel.
    pub option_rom: Option<Vec<u8>>,
    /// The kernel, initrd and command line, with a kernel.
    pub linux: Option<LinuxBoot>,
    /// The VMM's ACPI tables ([`crate::acpi`]), installed by the firmware
    /// through `etc/table-loader`.
    pub acpi: AcpiTableSet,
}

impl FirmwareItems {
    /// Adds the items to `b`.
    pub fn add_to(&self, b: &mut FwCfgBuilder) -> Result<(), Error> {
        b.x86_qemu_defaults(&self.machine).map_err(Error::FwCfg)?;
        if let Some(rom) = &self.option_rom {
            b.option_rom(LINUXBOOT_DMA_ROM, rom.clone())
                .map_err(Error::FwCfg)?;
        }
        if let Some(linux) = &self.linux {
            linux.clone().add_to(b).map_err(Error::FwCfg)?;
        }
        self.acpi.add_to(b).map_err(Error::AcpiLoader)
    }
}

/// QEMU's KVM identity-map page, followed by the three pages of the TSS
/// that Intel VMX needs for real mode (`kvm_arch_init` in
/// target/i386/kvm/kvm.c), reserved in the e820 map.
pub const KVM_IDENTITY_BASE: u64 = 0xfeff_c000;
/// Size of that reservation.
pub const KVM_IDENTITY_SIZE: u64 = 0x4000;

/// QEMU microvm's e820 map for `memory_mib` MiB: the KVM identity pages
/// (reserved first, at accelerator setup), RAM below the 32-bit gap and
/// the rest at 4 GiB (`microvm_memory_init`).
pub fn e820_map(memory_mib: u64) -> Result<Vec<E820Entry>, Error> {
    let size = memory_mib
        .checked_mul(1 << 20)
        .ok_or(Error::MemorySize(memory_mib))?;
    let mut map = vec![E820Entry {
        address: KVM_IDENTITY_BASE,
        length: KVM_IDENTITY_SIZE,
        kind: E820_RESERVED,
    }];
    for (address, length) in crate::layout::ram_ranges(size) {
        map.push(E820Entry {
            address,
            length,
            kind: E820_RAM,
        });
    }
    Ok(map)
}

/// Reads a kernel or initrd for the firmware, refusing one larger than
/// guest RAM before reading it.
fn read_boot_file(path: &Path, ram: u64) -> Result<Vec<u8>, Error> {
    let (file, size) = open_file(path)?;
    if size > ram {
        return Err(Error::BootFileTooBig {
            path: path.to_path_buf(),
            size,
            ram,
        });
    }
    read_up_to(file, path, size)
}

/// The kernel items for `config`, in a machine with `ram` bytes.
fn linux_items(config: &VmConfig, ram: u64) -> Result<LinuxBoot, Error> {
    let image = read_boot_file(&config.kernel, ram)?;
    let initrd = match &config.initrd {
        Some(p) => Some(read_boot_file(p, ram)?),
        None => None,
    };
    let mem = LinuxBootMemory {
        below_4g: ram.min(crate::layout::MMIO_GAP_START),
        // QEMU microvm keeps nothing free for ACPI (`x86_load_linux(.., 0, ..)`).
        acpi_data_size: 0,
    };
    LinuxBoot::from_bzimage(image, initrd, &config.cmdline, mem).map_err(Error::LinuxBoot)
}

/// The items for `config` with `option_rom` (with a kernel).
fn firmware_items(config: &VmConfig, option_rom: Option<Vec<u8>>) -> Result<FirmwareItems, Error> {
    let e820 = e820_map(config.memory_mib)?;
    let ram: u64 = e820
        .iter()
        .filter(|e| e.kind == E820_RAM)
        .map(|e| e.length)
        .sum();
    let (linux, boot_order) = match &option_rom {
        Some(_) => (
            Some(linux_items(config, ram)?),
            vec![option_rom_boot_path(LINUXBOOT_DMA_ROM)],
        ),
        None => (None, Vec::new()),
    };
    let fw = &config.fw_cfg;
    let tables = AcpiConfig {
        fw_cfg_pio: fw.enabled.then_some(fw.dma),
        fw_cfg_mmio: (fw.enabled && fw.mmio)
            .then(|| u32::try_from(FW_CFG_MMIO_BASE))
            .transpose()
            .map_err(|_| Error::MmioAbove4G(FW_CFG_MMIO_BASE))?,
    };
    let acpi = AcpiTableSet {
        dsdt: crate::acpi::dsdt(&tables)?,
        // The firmware patches the DSDT pointers.
        fadt: crate::acpi::fadt(0),
        tables: vec![crate::acpi::madt()],
        oem_id: crate::acpi::OEM_ID,
        oem_table_id: *b"FWCFGXSD",
        oem_revision: crate::acpi::OEM_REVISION,
    };
    Ok(FirmwareItems {
        acpi,
        machine: X86Machine {
            cpus: 1,
            max_cpus: 1,
            ram_size: ram,
            e820,
            boot_order,
            reboot_timeout_ms: None,
        },
        option_rom,
        linux,
    })
}

/// The host memory behind the top-of-4-GiB window that is not guest RAM:
/// kept alive as long as KVM maps it.
#[derive(Debug)]
pub struct RomMapping {
    _head: Option<MmapRegion>,
}

/// Refuses a ROM size QEMU refuses (zero, not a multiple of 64 KiB) or one
/// that would reach the APIC pages.
pub fn check_rom_size(path: &Path, size: u64) -> Result<(), Error> {
    if size == 0 || size % ROM_SIZE_UNIT != 0 {
        return Err(Error::RomSize {
            path: path.to_path_buf(),
            size,
        });
    }
    if size > ROM_MAX_SIZE {
        return Err(Error::RomTooBig {
            path: path.to_path_buf(),
            size,
            max: ROM_MAX_SIZE,
        });
    }
    Ok(())
}

/// Reads at most `max` bytes of `file` (opened from `path`).
fn read_up_to(file: std::fs::File, path: &Path, max: u64) -> Result<Vec<u8>, Error> {
    let mut bytes = Vec::new();
    file.take(max)
        .read_to_end(&mut bytes)
        .map_err(|source| Error::File {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(bytes)
}

impl Firmware {
    /// Checks and reads what `setup` names for `config`: the ROM's size,
    /// the option ROM (when the kernel goes to the firmware) and the
    /// kernel's kind (a bzImage). Touches neither KVM nor guest memory.
    pub fn load(setup: &BiosSetup, config: &VmConfig) -> Result<Firmware, Error> {
        let (file, size) = open_file(&setup.rom)?;
        check_rom_size(&setup.rom, size)?;
        let rom = read_up_to(file, &setup.rom, size)?;
        if rom.len() as u64 != size {
            return Err(Error::RomSize {
                path: setup.rom.clone(),
                size: rom.len() as u64,
            });
        }
        let option_rom = if setup.load_kernel {
            if KernelKind::detect(&config.kernel)? != KernelKind::BzImage {
                return Err(Error::BiosNeedsBzImage(config.kernel.clone()));
            }
            let (bytes, size) = read_option_rom(&setup.option_rom)?;
            if size > OPTION_ROM_MAX_SIZE {
                return Err(Error::OptionRomTooBig {
                    path: setup.option_rom.clone(),
                    size,
                    max: OPTION_ROM_MAX_SIZE,
                });
            }
            Some(bytes)
        } else {
            None
        };
        let items = Arc::new(firmware_items(config, option_rom)?);
        Ok(Firmware { rom, items })
    }

    /// Size of the ROM.
    pub fn size(&self) -> u64 {
        self.rom.len() as u64
    }

    /// Guest-physical base of the whole ROM (`4 GiB - size`).
    pub fn base(&self) -> u64 {
        FOUR_GIB - self.size()
    }

    /// Size of the alias below 1 MiB.
    pub fn isa_size(&self) -> u64 {
        self.size().min(ISA_BIOS_MAX)
    }

    /// Guest-physical base of the alias below 1 MiB.
    pub fn isa_base(&self) -> u64 {
        ISA_BIOS_END - self.isa_size()
    }

    /// Writes the ROM's tail into RAM below 1 MiB and maps the
    /// top-of-4-GiB window into `vm` from KVM slot `first_slot` on (see
    /// the module documentation); returns the host memory to keep.
    pub fn map(
        &self,
        kvm: &Kvm,
        vm: &VmFd,
        memory: &GuestMemoryMmap,
        first_slot: u32,
    ) -> Result<RomMapping, Error> {
        let isa_base = self.isa_base();
        let head_len = self.size() - self.isa_size();
        let tail = &self.rom[head_len as usize..];
        memory
            .write_slice(tail, GuestAddress(isa_base))
            .map_err(|source| Error::GuestWrite {
                addr: isa_base,
                source,
            })?;
        let flags = if kvm.check_extension(Cap::ReadonlyMem) {
            KVM_MEM_READONLY
        } else {
            0
        };
        let tail_host = memory
            .get_host_address(GuestAddress(isa_base))
            .map_err(Error::HostAddress)?;
        let top = FOUR_GIB - self.isa_size();
        // SAFETY: `tail_host` points into `memory`'s RAM mapping, which
        // covers `isa_base..1 MiB` (written just above); the caller keeps
        // `memory` alive as long as `vm` (see `Mappings`).
        unsafe {
            set_slot(
                vm,
                first_slot,
                flags,
                top,
                self.isa_size(),
                tail_host as u64,
            )
        }?;
        if head_len == 0 {
            return Ok(RomMapping { _head: None });
        }
        let head = MmapRegion::<()>::new(head_len as usize).map_err(Error::RomMemory)?;
        head.as_volatile_slice()
            .copy_from(&self.rom[..head_len as usize]);
        // SAFETY: `head` is a live anonymous mapping of `head_len` bytes,
        // returned to the caller, which keeps it alive as long as `vm`.
        unsafe {
            set_slot(
                vm,
                first_slot + 1,
                flags,
                self.base(),
                head_len,
                head.as_ptr() as u64,
            )
        }?;
        Ok(RomMapping { _head: Some(head) })
    }
}

impl Firmware {
    /// Registers the CMOS RTC ([`crate::cmos`]) with the memory sizes of
    /// `memory`.
    pub fn register_devices(
        &self,
        io: &mut IoManager,
        memory: &GuestMemoryMmap,
    ) -> Result<(), Error> {
        let (mut below, mut above) = (0, 0);
        for r in memory.iter() {
            if r.start_addr().raw_value() < FOUR_GIB {
                below += r.len();
            } else {
                above += r.len();
            }
        }
        let range = PioRange::new(PioAddress(CMOS_PORT), CMOS_PORT_SIZE).map_err(Error::Bus)?;
        io.register_pio(range, Arc::new(Mutex::new(Cmos::new(below, above))))
            .map_err(Error::Bus)
    }

    /// The fw_cfg setup for the firmware: `config`'s, with
    /// [`FirmwareItems`].
    pub fn fw_cfg_setup(&self, config: &VmConfig) -> FwCfgSetup {
        FwCfgSetup {
            firmware: Some(self.items.clone()),
            ..config.fw_cfg.clone()
        }
    }
}

/// The option ROM's bytes; a missing or unreadable file is
/// [`Error::OptionRom`].
fn read_option_rom(path: &Path) -> Result<(Vec<u8>, u64), Error> {
    let (file, size) = fw_cfg_device::cmdline::open_regular_file(path).map_err(Error::OptionRom)?;
    Ok((read_up_to(file, path, OPTION_ROM_MAX_SIZE)?, size))
}

/// Registers KVM memory slot `slot`.
///
/// # Safety
///
/// `host..host + size` must be mapped for as long as `vm` exists.
unsafe fn set_slot(
    vm: &VmFd,
    slot: u32,
    flags: u32,
    guest: u64,
    size: u64,
    host: u64,
) -> Result<(), Error> {
    let region = kvm_userspace_memory_region {
        slot,
        flags,
        guest_phys_addr: guest,
        memory_size: size,
        userspace_addr: host,
    };
    // SAFETY: the caller guarantees the host range outlives the VM.
    unsafe { vm.set_user_memory_region(region) }.map_err(Error::Vm)
}

/// Puts KVM's identity-map page and real-mode TSS where QEMU puts them
/// ([`KVM_IDENTITY_BASE`], reserved in [`e820_map`]). Must come before the
/// vCPU is created.
pub fn set_identity_pages(vm: &VmFd) -> Result<(), Error> {
    vm.set_identity_map_address(KVM_IDENTITY_BASE)
        .map_err(Error::Vm)?;
    let tss = usize::try_from(KVM_IDENTITY_BASE + 0x1000).map_err(|_| Error::MemorySize(0))?;
    vm.set_tss_address(tss).map_err(Error::Vm)
}

/// Gives the VM what firmware expects of a PC besides RAM and the ROM:
/// KVM's in-kernel irqchip and its PIT (with the dummy speaker port 0x61
/// that PIT channel 2 calibration reads). Must come before the vCPU is
/// created.
pub fn create_platform(vm: &VmFd) -> Result<(), Error> {
    vm.create_irq_chip().map_err(Error::Vm)?;
    let pit = kvm_pit_config {
        flags: KVM_PIT_SPEAKER_DUMMY,
        ..Default::default()
    };
    vm.create_pit2(pit).map_err(Error::Vm)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, bytes: &[u8]) -> PathBuf {
        let p = std::env::temp_dir().join(format!("fw-cfg-vmm-bios-{}-{name}", std::process::id()));
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn rom_sizes_follow_qemu() {
        let p = Path::new("rom");
        for good in [64 << 10, 128 << 10, 256 << 10, ROM_MAX_SIZE] {
            assert!(check_rom_size(p, good).is_ok(), "{good}");
        }
        for bad in [0, 1, 512, (64 << 10) + 1, (128 << 10) - 4096] {
            assert!(
                matches!(check_rom_size(p, bad), Err(Error::RomSize { size, .. }) if size == bad)
            );
        }
        assert!(matches!(
            check_rom_size(p, ROM_MAX_SIZE + ROM_SIZE_UNIT),
            Err(Error::RomTooBig { .. })
        ));
    }

    #[test]
    fn e820_and_option_rom_are_qemu_microvms() {
        let map = e820_map(128).unwrap();
        let m: Vec<(u64, u64, u32)> = map.iter().map(|e| (e.address, e.length, e.kind)).collect();
        assert_eq!(
            m,
            [
                (0xfeff_c000, 0x4000, E820_RESERVED),
                (0, 128 << 20, E820_RAM)
            ]
        );
        let big = e820_map(4096).unwrap();
        assert_eq!((big[2].address, big[2].length), (1 << 32, 1 << 30));
        assert_eq!(
            OPTION_ROM_FILE,
            format!("{}{LINUXBOOT_DMA_ROM}", fw_cfg_device::x86::OPTION_ROM_DIR)
        );
    }

    #[test]
    fn windows_are_qemus() {
        let items = Arc::new(firmware_items(&VmConfig::new(""), None).unwrap());
        let small = Firmware {
            rom: vec![0; 64 << 10],
            items: items.clone(),
        };
        assert_eq!(small.base(), 0xffff_0000);
        assert_eq!((small.isa_base(), small.isa_size()), (0xf_0000, 64 << 10));
        let big = Firmware {
            rom: vec![0; 256 << 10],
            items,
        };
        assert_eq!(big.base(), 0xfffc_0000);
        assert_eq!((big.isa_base(), big.isa_size()), (0xe_0000, 128 << 10));
    }

    #[test]
    fn bad_inputs_are_refused_before_kvm() {
        let rom = temp("rom", &vec![0xf4; 64 << 10]);
        let odd = temp("odd", &[0; 1000]);
        let elf = temp("elf", b"\x7fELF not a bzImage");
        let mut config = VmConfig::new(&elf);
        let mut setup = BiosSetup::new(&odd);
        setup.load_kernel = false;
        assert!(matches!(
            Firmware::load(&setup, &config),
            Err(Error::RomSize { size: 1000, .. })
        ));
        setup.rom = rom.clone();
        let fw = Firmware::load(&setup, &config).unwrap();
        assert_eq!(fw.size(), 64 << 10);
        assert!(fw.items.option_rom.is_none() && fw.items.linux.is_none());
        setup.load_kernel = true;
        assert!(matches!(
            Firmware::load(&setup, &config),
            Err(Error::BiosNeedsBzImage(_))
        ));
        let mut bz = vec![0u8; 0x400];
        bz[0x1fe..0x200].copy_from_slice(&[0x55, 0xaa]);
        bz[0x202..0x206].copy_from_slice(b"HdrS");
        bz[0x1f1] = 1; // setup_sects
        bz[0x206..0x208].copy_from_slice(&0x020cu16.to_le_bytes());
        bz[0x211] = 1; // LOADED_HIGH
        config.kernel = temp("bz", &bz);
        setup.option_rom = std::env::temp_dir().join("fw-cfg-vmm-no-such-option-rom");
        assert!(matches!(
            Firmware::load(&setup, &config),
            Err(Error::OptionRom(_))
        ));
        setup.option_rom = temp("optrom", &[0x55, 0xaa, 1]);
        let fw = Firmware::load(&setup, &config).unwrap();
        assert_eq!(fw.items.option_rom.as_deref(), Some(&[0x55, 0xaa, 1][..]));
        assert!(fw.items.linux.is_some());
        assert_eq!(
            fw.items.machine.boot_order,
            ["/rom@genroms/linuxboot_dma.bin"]
        );
        for p in [rom, odd, elf, config.kernel, setup.option_rom] {
            let _ = std::fs::remove_file(p);
        }
    }
}
