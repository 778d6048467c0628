// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! SMBIOS for a Linux guest booted without firmware: a 3.0 entry point at
//! [`SMBIOS_START`] (0xF0000, where Linux scans for `_SM3_` on a machine
//! without EFI) and a structure table with BIOS information (type 0),
//! system information (type 1) and the end-of-table marker (type 127), as
//! Cloud Hypervisor writes them. Linux then logs `SMBIOS 3.0.0 present.`
//! and `DMI: fw-cfg fw-cfg-vmm, BIOS …` and fills `/sys/class/dmi/id`,
//! where it used to log `DMI not present or invalid.` (Under QEMU
//! microvm, SeaBIOS builds its own 2.4 tables.)
//!
//! Formats: DMTF DSP0134 3.0, 5.2.2 (entry point), 7.1 (type 0), 7.2
//! (type 1), 7.46 (type 127).
//!
//! ```
//! use fw_cfg_vmm::smbios::{SMBIOS_START, tables};
//!
//! let (entry, structures) = tables(SMBIOS_START + 0x20);
//! assert_eq!(&entry[..5], b"_SM3_");
//! assert_eq!(entry.iter().fold(0u8, |s, b| s.wrapping_add(*b)), 0);
//! assert_eq!(structures[0], 0); // type 0 first
//! assert!(structures.ends_with(&[127, 4, 2, 0, 0, 0]));
//! ```

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::Error;
use crate::acpi::{ACPI_START, AcpiTables};
use crate::reset_vector::RESET_VECTOR;

/// Where the entry point goes (the start of Linux's scan window).
pub const SMBIOS_START: u64 = 0xf_0000;
/// Where the structure table goes: after the 24-byte entry point, on a
/// 16-byte boundary.
pub const STRUCTURES_START: u64 = SMBIOS_START + 0x20;
/// Manufacturer of the system and vendor of the "BIOS".
pub const VENDOR: &str = "fw-cfg";
/// Product name.
pub const PRODUCT: &str = "fw-cfg-vmm";
/// The BIOS release date (DSP0134 asks for `mm/dd/yyyy`). Linux bases
/// quirks on its year (from 2023 on, `pci_acpi_crs_quirks()` stops
/// clipping PCI host bridge windows with e820 reservations), so this is
/// the date SeaBIOS gives under QEMU: the guest takes the same paths as
/// there, and as with no DMI at all.
pub const RELEASE_DATE: &str = "01/01/2011";

/// BIOS characteristics: bit 3, "BIOS characteristics not supported".
const CHARACTERISTICS_NOT_SUPPORTED: u64 = 1 << 3;
/// Characteristics extension byte 2: bit 4, "virtual machine".
const EXT2_VIRTUAL_MACHINE: u8 = 1 << 4;
/// System wake-up type: power switch.
const WAKE_UP_POWER_SWITCH: u8 = 6;

/// One structure: its formatted area (header included) and its strings.
fn structure(out: &mut Vec<u8>, formatted: &[u8], strings: &[&str]) {
    out.extend_from_slice(formatted);
    for s in strings {
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }
    if strings.is_empty() {
        out.push(0);
    }
    out.push(0);
}

/// The structure table: types 0, 1 and 127, handles 0, 1, 2.
pub fn structures() -> Vec<u8> {
    let mut t = Vec::new();
    let mut bios = vec![0, 0x18, 0, 0, 1, 2];
    bios.extend_from_slice(&0xe800u16.to_le_bytes()); // starting segment
    bios.extend_from_slice(&[3, 0]); // release date string, ROM size
    bios.extend_from_slice(&CHARACTERISTICS_NOT_SUPPORTED.to_le_bytes());
    bios.extend_from_slice(&[0, EXT2_VIRTUAL_MACHINE, 0, 0, 0xff, 0xff]);
    structure(
        &mut t,
        &bios,
        &[VENDOR, env!("CARGO_PKG_VERSION"), RELEASE_DATE],
    );
    let mut system = vec![1, 0x1b, 1, 0, 1, 2, 0, 0];
    system.extend_from_slice(&[0; 16]); // UUID: not set
    system.extend_from_slice(&[WAKE_UP_POWER_SWITCH, 0, 0]);
    structure(&mut t, &system, &[VENDOR, PRODUCT]);
    structure(&mut t, &[127, 4, 2, 0], &[]);
    t
}

/// The 3.0 entry point for a structure table of `len` bytes at
/// `table_addr`.
pub fn entry_point(table_addr: u64, len: u32) -> [u8; 24] {
    let mut e = [0u8; 24];
    e[..5].copy_from_slice(b"_SM3_");
    e[6] = 24; // length
    e[7] = 3; // major
    e[8] = 0; // minor
    e[9] = 0; // docrev
    e[10] = 1; // entry point revision: 3.0
    e[12..16].copy_from_slice(&len.to_le_bytes());
    e[16..24].copy_from_slice(&table_addr.to_le_bytes());
    e[5] = e.iter().fold(0u8, |s, b| s.wrapping_sub(*b));
    e
}

/// The entry point and the structure table placed at `table_addr`.
pub fn tables(table_addr: u64) -> ([u8; 24], Vec<u8>) {
    let t = structures();
    // A few hundred bytes: always fits.
    let len = u32::try_from(t.len()).unwrap_or(u32::MAX);
    (entry_point(table_addr, len), t)
}

/// Writes the entry point at [`SMBIOS_START`] and the table at
/// [`STRUCTURES_START`], checking that they lie between the ACPI tables
/// and the reset vector.
pub fn write(memory: &GuestMemoryMmap, acpi: &AcpiTables) -> Result<(), Error> {
    if acpi.end() > SMBIOS_START {
        return Err(Error::AcpiTooBig(acpi.end() - ACPI_START));
    }
    let (entry, table) = tables(STRUCTURES_START);
    let end = STRUCTURES_START + table.len() as u64;
    if end > RESET_VECTOR {
        return Err(Error::SmbiosTooBig(table.len()));
    }
    for (addr, bytes) in [(SMBIOS_START, &entry[..]), (STRUCTURES_START, &table[..])] {
        memory
            .write_slice(bytes, GuestAddress(addr))
            .map_err(|source| Error::GuestWrite { addr, source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The structures of `t`: (type, formatted length, strings).
    fn parse(t: &[u8]) -> Vec<(u8, u8, Vec<String>)> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < t.len() {
            let (kind, len) = (t[i], t[i + 1]);
            let mut j = i + usize::from(len);
            let mut strings = Vec::new();
            while t[j] != 0 {
                let end = j + t[j..].iter().position(|b| *b == 0).unwrap();
                strings.push(String::from_utf8(t[j..end].to_vec()).unwrap());
                j = end + 1;
            }
            // A structure without strings ends with two NULs.
            j += if strings.is_empty() { 2 } else { 1 };
            out.push((kind, len, strings));
            i = j;
        }
        out
    }

    #[test]
    fn the_table_has_bios_system_and_end_structures() {
        let t = parse(&structures());
        let kinds: Vec<(u8, u8)> = t.iter().map(|(k, l, _)| (*k, *l)).collect();
        assert_eq!(kinds, [(0, 0x18), (1, 0x1b), (127, 4)]);
        assert_eq!(t[0].2[0], VENDOR);
        assert_eq!(t[0].2[2], RELEASE_DATE);
        assert_eq!(t[1].2, [VENDOR, PRODUCT]);
        assert!(t[2].2.is_empty());
        // Release date in mm/dd/yyyy.
        let d: Vec<&str> = RELEASE_DATE.split('/').collect();
        assert_eq!(d.iter().map(|p| p.len()).collect::<Vec<_>>(), [2, 2, 4]);
    }

    #[test]
    fn the_entry_point_sums_to_zero_and_points_at_the_table() {
        let (e, t) = tables(STRUCTURES_START);
        assert_eq!(e.iter().fold(0u8, |s, b| s.wrapping_add(*b)), 0);
        assert_eq!(
            u32::from_le_bytes(e[12..16].try_into().unwrap()) as usize,
            t.len()
        );
        assert_eq!(
            u64::from_le_bytes(e[16..24].try_into().unwrap()),
            STRUCTURES_START
        );
        assert_eq!((e[6], e[7], e[8]), (24, 3, 0));
    }

    #[test]
    fn written_between_the_acpi_tables_and_the_reset_vector() {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 2 << 20)]).unwrap();
        let acpi = crate::acpi::build(&crate::acpi::AcpiConfig {
            fw_cfg_pio: Some(true),
            fw_cfg_mmio: None,
        })
        .unwrap();
        write(&mem, &acpi).unwrap();
        let mut anchor = [0u8; 5];
        mem.read_slice(&mut anchor, GuestAddress(SMBIOS_START))
            .unwrap();
        assert_eq!(&anchor, b"_SM3_");
        let t = structures();
        let mut got = vec![0u8; t.len()];
        mem.read_slice(&mut got, GuestAddress(STRUCTURES_START))
            .unwrap();
        assert_eq!(got, t);
        assert!(STRUCTURES_START + t.len() as u64 <= RESET_VECTOR);
    }
}
