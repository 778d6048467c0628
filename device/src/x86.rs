// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! What QEMU's x86 machines always serve, so firmware written for QEMU
//! (SeaBIOS, qboot) behaves as under QEMU.
//!
//! [`FwCfgBuilder::x86_qemu_defaults`] adds, from one [`X86Machine`], the
//! items QEMU's `microvm_memory_init` (hw/i386/microvm.c) and the generic
//! device (`fw_cfg_common_realize`, `fw_cfg_reboot` and
//! `fw_cfg_machine_ready` in hw/nvram/fw_cfg.c) add on every x86 boot:
//!
//! | item | bytes | QEMU |
//! |---|---|---|
//! | `NB_CPUS` (0x05) | LE16 boot CPUs | `fw_cfg_add_i16(.., FW_CFG_NB_CPUS, smp.cpus)` |
//! | `MAX_CPUS` (0x0f) | LE16 | `smp.max_cpus` (microvm; `-M pc` stores the APIC ID limit) |
//! | `RAM_SIZE` (0x03) | LE64 | `machine->ram_size` |
//! | `IRQ0_OVERRIDE` (0x8002) | LE32 1 | always 1 |
//! | `etc/e820` | packed 20-byte entries | `e820_table` (hw/i386/e820_memory_layout.c) |
//! | `etc/boot-fail-wait` | LE32 ms, `u32::MAX` = never | `fw_cfg_reboot` (`-boot reboot-timeout=`, default -1) |
//! | `bootorder` | paths joined by `\n`, NUL-terminated; empty when none | `get_boot_devices_list` |
//! | `bios-geometry` | empty | `get_boot_devices_lchs_list` without devices |
//!
//! The signature, ID, UUID, NOGRAPHIC, BOOT_MENU and the directory come
//! from [`FwCfgBuilder::new`] as before. QEMU's option ROMs appear as
//! `genroms/NAME` files ([`FwCfgBuilder::option_rom`], QEMU's
//! `rom_add_option`) and in `bootorder` as `/rom@genroms/NAME`
//! ([`option_rom_boot_path`]).
//!
//! ```
//! use fw_cfg_device::builder::{E820Entry, FwCfgBuilder};
//! use fw_cfg_device::x86::{X86Machine, E820_RAM};
//!
//! let ram = 256 << 20;
//! let machine = X86Machine {
//!     cpus: 1,
//!     max_cpus: 1,
//!     ram_size: ram,
//!     e820: vec![E820Entry { address: 0, length: ram, kind: E820_RAM }],
//!     boot_order: vec![],
//!     reboot_timeout_ms: None,
//! };
//! let mut b = FwCfgBuilder::new();
//! b.x86_qemu_defaults(&machine).unwrap();
//! assert_eq!(b.file_count(), 4); // bios-geometry, bootorder, etc/boot-fail-wait, etc/e820
//! ```

use crate::abi::{KEY_MAX_CPUS, KEY_NB_CPUS, KEY_RAM_SIZE};
use crate::builder::{E820Entry, FwCfgBuilder, Result};
use crate::error::BuildError;

/// E820 type of usable RAM.
pub const E820_RAM: u32 = 1;
/// E820 type of reserved memory.
pub const E820_RESERVED: u32 = 2;
/// E820 type of ACPI reclaimable memory.
pub const E820_ACPI: u32 = 3;
/// E820 type of ACPI NVS memory.
pub const E820_NVS: u32 = 4;
/// E820 type of unusable memory.
pub const E820_UNUSABLE: u32 = 5;

/// Name of the file with the boot order.
pub const BOOTORDER_FILE_NAME: &str = "bootorder";
/// Name of the file with the disks' logical CHS geometry.
pub const BIOS_GEOMETRY_FILE_NAME: &str = "bios-geometry";
/// The directory of option ROMs in fw_cfg (QEMU's `rom_add_option`).
pub const OPTION_ROM_DIR: &str = "genroms/";
/// The largest reboot timeout QEMU accepts (`-boot reboot-timeout=`).
pub const REBOOT_TIMEOUT_MAX_MS: u32 = 0xffff;

/// The machine as QEMU's x86 `fw_cfg` setup sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct X86Machine {
    /// Boot CPUs (`-smp cpus=`).
    pub cpus: u16,
    /// Maximum CPUs (`-smp maxcpus=`).
    pub max_cpus: u16,
    /// RAM in bytes (`-m`).
    pub ram_size: u64,
    /// The memory map firmware reports to the OS.
    pub e820: Vec<E820Entry>,
    /// Open Firmware device paths in boot order (e.g. from
    /// [`option_rom_boot_path`]); empty gives an empty `bootorder` file.
    pub boot_order: Vec<String>,
    /// `-boot reboot-timeout=`: milliseconds to wait before rebooting
    /// after a failed boot, at most [`REBOOT_TIMEOUT_MAX_MS`]; `None` is
    /// QEMU's default -1 (never reboot).
    pub reboot_timeout_ms: Option<u32>,
}

/// The `bootorder` path of an option ROM added as `genroms/NAME`
/// (`/rom@genroms/NAME`, as QEMU's `rom_add_option` registers it).
///
/// ```
/// assert_eq!(
///     fw_cfg_device::x86::option_rom_boot_path("linuxboot_dma.bin"),
///     "/rom@genroms/linuxboot_dma.bin"
/// );
/// ```
pub fn option_rom_boot_path(name: &str) -> String {
    format!("/rom@{OPTION_ROM_DIR}{name}")
}

/// The bytes of a `bootorder` file: each path followed by `\n`, the last
/// one by a NUL instead; with `strict` (`-boot strict=on`) `HALT` follows
/// as a last line. No paths give no bytes, as in QEMU.
pub fn bootorder_bytes(paths: &[&str], strict: bool) -> std::result::Result<Vec<u8>, BuildError> {
    let mut v = Vec::new();
    for p in paths {
        if p.as_bytes().iter().any(|&b| b == 0 || b == b'\n') {
            return Err(BuildError::InvalidBootPath {
                path: (*p).to_string(),
            });
        }
        v.extend_from_slice(p.as_bytes());
        v.push(b'\n');
    }
    if v.is_empty() {
        return Ok(v);
    }
    if strict {
        v.extend_from_slice(b"HALT\n");
    }
    // The last separator is the terminating NUL.
    if let Some(last) = v.last_mut() {
        *last = 0;
    }
    Ok(v)
}

impl FwCfgBuilder {
    /// Adds what QEMU's x86 machines always serve (see the [module
    /// docs](crate::x86) for the list and the QEMU function behind each
    /// item). Fails if one of the files exists already, or if the reboot
    /// timeout is above [`REBOOT_TIMEOUT_MAX_MS`].
    pub fn x86_qemu_defaults(&mut self, machine: &X86Machine) -> Result<&mut Self> {
        self.add_bytes(KEY_NB_CPUS, machine.cpus.to_le_bytes().to_vec())?;
        self.add_bytes(KEY_MAX_CPUS, machine.max_cpus.to_le_bytes().to_vec())?;
        self.add_bytes(KEY_RAM_SIZE, machine.ram_size.to_le_bytes().to_vec())?;
        self.x86_irq0_override(true);
        self.x86_e820(&machine.e820)?;
        self.boot_fail_wait(machine.reboot_timeout_ms.unwrap_or(u32::MAX))?;
        let paths: Vec<&str> = machine.boot_order.iter().map(String::as_str).collect();
        self.bootorder(&paths, false)?;
        self.add_file(BIOS_GEOMETRY_FILE_NAME, Vec::new())
    }

    /// Adds the `bootorder` file (see [`bootorder_bytes`]). SeaBIOS reads
    /// it to order its boot entries; a path may not contain NUL or `\n`.
    pub fn bootorder(&mut self, paths: &[&str], strict: bool) -> Result<&mut Self> {
        let bytes = bootorder_bytes(paths, strict)?;
        self.add_file(BOOTORDER_FILE_NAME, bytes)
    }

    /// Adds an option ROM as `genroms/NAME` (QEMU's `rom_add_option`); the
    /// bytes are served as given. Put [`option_rom_boot_path`] in the boot
    /// order for the firmware to run it.
    pub fn option_rom(&mut self, name: &str, data: Vec<u8>) -> Result<&mut Self> {
        self.add_file(&format!("{OPTION_ROM_DIR}{name}"), data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::KEY_X86_IRQ0_OVERRIDE;
    use crate::builder::BOOT_FAIL_WAIT_FILE_NAME;
    use vm_memory::{GuestAddress, GuestMemoryMmap};

    fn machine() -> X86Machine {
        X86Machine {
            cpus: 2,
            max_cpus: 4,
            ram_size: 0x1_4000_0000,
            e820: vec![
                E820Entry {
                    address: 0,
                    length: 0xc000_0000,
                    kind: E820_RAM,
                },
                E820Entry {
                    address: 0x1_0000_0000,
                    length: 0x8000_0000,
                    kind: E820_RAM,
                },
            ],
            boot_order: vec![option_rom_boot_path("linuxboot_dma.bin")],
            reboot_timeout_ms: None,
        }
    }

    fn file<'a>(dev: &'a crate::FwCfg<&GuestMemoryMmap<()>>, name: &str) -> &'a [u8] {
        let key = dev.file_key(name).unwrap();
        dev.item_bytes(key).unwrap()
    }

    #[test]
    fn defaults_are_the_items_qemu_microvm_serves() {
        let mut b = FwCfgBuilder::new();
        b.x86_qemu_defaults(&machine()).unwrap();
        b.option_rom("linuxboot_dma.bin", vec![0x55, 0xaa]).unwrap();
        let m = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x1000)]).unwrap();
        let dev = b.build(&m);
        let names: Vec<&str> = dev.files().map(|(n, _, _)| n).collect();
        assert_eq!(
            names,
            [
                "bios-geometry",
                "bootorder",
                "etc/boot-fail-wait",
                "etc/e820",
                "genroms/linuxboot_dma.bin"
            ]
        );
        assert_eq!(dev.item_bytes(KEY_NB_CPUS).unwrap(), [2, 0]);
        assert_eq!(dev.item_bytes(KEY_MAX_CPUS).unwrap(), [4, 0]);
        assert_eq!(
            dev.item_bytes(KEY_RAM_SIZE).unwrap(),
            0x1_4000_0000u64.to_le_bytes()
        );
        assert_eq!(dev.item_bytes(KEY_X86_IRQ0_OVERRIDE).unwrap(), [1, 0, 0, 0]);
        assert_eq!(file(&dev, BIOS_GEOMETRY_FILE_NAME), b"");
        // 31 bytes, as the lab saw QEMU serve with -kernel.
        assert_eq!(
            file(&dev, BOOTORDER_FILE_NAME),
            b"/rom@genroms/linuxboot_dma.bin\0"
        );
        assert_eq!(file(&dev, BOOT_FAIL_WAIT_FILE_NAME), [0xff; 4]);
        let e820 = file(&dev, "etc/e820");
        assert_eq!(e820.len(), 40);
        assert_eq!(&e820[20..28], &0x1_0000_0000u64.to_le_bytes());
        assert_eq!(&e820[28..36], &0x8000_0000u64.to_le_bytes());
        assert_eq!(&e820[36..40], &E820_RAM.to_le_bytes());
        assert_eq!(file(&dev, "genroms/linuxboot_dma.bin"), [0x55, 0xaa]);
    }

    #[test]
    fn bootorder_format_follows_get_boot_devices_list() {
        assert_eq!(bootorder_bytes(&[], false).unwrap(), b"");
        assert_eq!(bootorder_bytes(&[], true).unwrap(), b"");
        assert_eq!(bootorder_bytes(&["/a", "/b"], false).unwrap(), b"/a\n/b\0");
        assert_eq!(
            bootorder_bytes(&["/a"], true).unwrap(),
            b"/a\nHALT\0".to_vec()
        );
        assert!(matches!(
            bootorder_bytes(&["/a\n/b"], false),
            Err(BuildError::InvalidBootPath { .. })
        ));
    }

    #[test]
    fn reboot_timeout_is_milliseconds_within_qemu_range() {
        let mut m = machine();
        m.reboot_timeout_ms = Some(5000);
        let mut b = FwCfgBuilder::new();
        b.x86_qemu_defaults(&m).unwrap();
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x1000)]).unwrap();
        let dev = b.build(&mem);
        assert_eq!(file(&dev, BOOT_FAIL_WAIT_FILE_NAME), 5000u32.to_le_bytes());
        m.reboot_timeout_ms = Some(0x1_0000);
        assert!(matches!(
            FwCfgBuilder::new().x86_qemu_defaults(&m),
            Err(BuildError::InvalidBootFailWait { ms: 0x1_0000 })
        ));
        // Twice is a duplicate file.
        let mut b = FwCfgBuilder::new();
        b.x86_qemu_defaults(&machine()).unwrap();
        assert!(matches!(
            b.x86_qemu_defaults(&machine()),
            Err(BuildError::DuplicateName { .. })
        ));
    }
}
