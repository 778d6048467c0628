// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `etc/acpi/tables` and `etc/acpi/rsdp` with their `etc/table-loader`
//! commands, built from a VMM's own ACPI tables (feature `acpi`), the way
//! QEMU's `acpi_build` (hw/i386/acpi-build.c, hw/i386/acpi-microvm.c)
//! lays them out:
//!
//! - `etc/acpi/tables` (ALLOCATE, align 64, HIGH): the DSDT, the FADT, the
//!   other tables in the order given, then an XSDT (built with
//!   `acpi_tables`) listing the FADT and the other tables;
//! - `etc/acpi/rsdp` (ALLOCATE, align 16, FSEG): an ACPI 2.0 RSDP
//!   (revision 2, 36 bytes) pointing to the XSDT;
//! - ADD_POINTER for the FADT's `DSDT` (offset 40, 4 bytes) and, when the
//!   FADT is long enough, `X_DSDT` (offset 140, 8 bytes), each XSDT entry
//!   (8 bytes), and the RSDP's `XsdtAddress` (offset 24, 8 bytes);
//! - ADD_CHECKSUM over each table (byte 9), and the RSDP's checksum (byte
//!   8 over bytes 0..20) and extended checksum (byte 32 over 0..36).
//!
//! Under QEMU microvm this gives the 13 commands (1664 bytes) QEMU serves
//! for a DSDT, FADT and MADT. Pointer fields hold offsets inside
//! `etc/acpi/tables` before the firmware patches them, and checksum bytes
//! are 0, so the VMM's own addresses and checksums in the tables it passes
//! are replaced. The FADT's FACS fields are left as given (hardware-reduced
//! machines, such as microvm, have no FACS; keep them 0).

use acpi_tables::rsdp::Rsdp;
use acpi_tables::xsdt::XSDT;
use acpi_tables::{Aml, AmlSink};

use crate::builder::FwCfgBuilder;
use crate::error::BuildError;
use crate::table_loader::{TableLoader, TableLoaderError, Zone};

/// Name of the file with the ACPI tables.
pub const ACPI_TABLES_FILE_NAME: &str = "etc/acpi/tables";
/// Name of the file with the RSDP.
pub const ACPI_RSDP_FILE_NAME: &str = "etc/acpi/rsdp";
/// Length of an ACPI table header.
pub const HEADER_LEN: usize = 36;
/// Offset of the checksum byte in a table header.
const CHECKSUM_OFFSET: u32 = 9;
/// FADT offsets of the 32-bit `DSDT` and the 64-bit `X_DSDT` fields.
const FADT_DSDT: usize = 40;
const FADT_X_DSDT: usize = 140;
/// RSDP offsets: checksum, `XsdtAddress`, extended checksum.
const RSDP_CHECKSUM: u32 = 8;
const RSDP_XSDT: u32 = 24;
const RSDP_EXT_CHECKSUM: u32 = 32;

/// Why a set of tables cannot be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AcpiLoaderError {
    /// A table shorter than its header (or than the fields used).
    #[error("ACPI table {signature:?} of {len} bytes is too short")]
    TooShort {
        /// Its first four bytes (or fewer).
        signature: Vec<u8>,
        /// Its length.
        len: usize,
    },
    /// The header's length field disagrees with the bytes given.
    #[error("ACPI table {signature:?} says {header} bytes but has {len}")]
    LengthMismatch {
        /// The signature.
        signature: [u8; 4],
        /// The header's length.
        header: u32,
        /// The bytes given.
        len: usize,
    },
    /// The DSDT or FADT slot holds another table, or another table has a
    /// signature this module writes itself.
    #[error("unexpected ACPI table signature {found:?}")]
    WrongSignature {
        /// The signature found.
        found: [u8; 4],
    },
    /// The linker/loader refused a command.
    #[error("table-loader command refused")]
    Loader(#[source] TableLoaderError),
    /// Adding the files failed.
    #[error("cannot add the ACPI files")]
    Build(#[source] BuildError),
}

/// A VMM's ACPI tables, to be installed by firmware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcpiTableSet {
    /// The DSDT (signature `DSDT`).
    pub dsdt: Vec<u8>,
    /// The FADT (signature `FACP`).
    pub fadt: Vec<u8>,
    /// The other tables (MADT, ...), listed in the XSDT in this order.
    pub tables: Vec<Vec<u8>>,
    /// OEM ID of the XSDT and the RSDP.
    pub oem_id: [u8; 6],
    /// OEM table ID of the XSDT.
    pub oem_table_id: [u8; 8],
    /// OEM revision of the XSDT.
    pub oem_revision: u32,
}

/// Checks a table's header; returns its signature.
fn check_table(t: &[u8], min_len: usize) -> Result<[u8; 4], AcpiLoaderError> {
    if t.len() < min_len.max(HEADER_LEN) {
        return Err(AcpiLoaderError::TooShort {
            signature: t[..t.len().min(4)].to_vec(),
            len: t.len(),
        });
    }
    let signature = [t[0], t[1], t[2], t[3]];
    let header = u32::from_le_bytes([t[4], t[5], t[6], t[7]]);
    if header as usize != t.len() {
        return Err(AcpiLoaderError::LengthMismatch {
            signature,
            header,
            len: t.len(),
        });
    }
    Ok(signature)
}

/// The tables blob being laid out, with the commands that refer to it.
struct Blob {
    bytes: Vec<u8>,
    /// `(offset, size)` of each pointer into the blob itself, in order.
    pointers: Vec<(u32, u8)>,
    /// `(start, len)` of each table, checksummed at `start + 9`.
    tables: Vec<(u32, u32)>,
}

impl Blob {
    /// Appends a table with its checksum byte cleared; returns its offset.
    fn push(&mut self, t: &[u8]) -> u32 {
        // The blob stays below 4 GiB: each table's length is a u32 and
        // the builder refuses items over u32::MAX - 1 later.
        let at = self.bytes.len() as u32;
        self.bytes.extend_from_slice(t);
        self.bytes[at as usize + CHECKSUM_OFFSET as usize] = 0;
        self.tables.push((at, t.len() as u32));
        at
    }

    /// Stores `target` at `at` (`size` bytes) and records the pointer.
    fn point(&mut self, at: usize, size: u8, target: u32) {
        let v = u64::from(target).to_le_bytes();
        self.bytes[at..at + usize::from(size)].copy_from_slice(&v[..usize::from(size)]);
        self.pointers.push((at as u32, size));
    }
}

impl AcpiTableSet {
    /// Lays the tables out and builds the loader commands (see the
    /// [module docs](self)).
    pub fn table_loader(&self) -> Result<TableLoader, AcpiLoaderError> {
        if check_table(&self.dsdt, 0)? != *b"DSDT" {
            return Err(AcpiLoaderError::WrongSignature {
                found: check_table(&self.dsdt, 0)?,
            });
        }
        let sig = check_table(&self.fadt, FADT_DSDT + 4)?;
        if sig != *b"FACP" {
            return Err(AcpiLoaderError::WrongSignature { found: sig });
        }
        let mut blob = Blob {
            bytes: Vec::new(),
            pointers: Vec::new(),
            tables: Vec::new(),
        };
        let dsdt = blob.push(&self.dsdt);
        let fadt = blob.push(&self.fadt);
        blob.point(fadt as usize + FADT_DSDT, 4, dsdt);
        if self.fadt.len() >= FADT_X_DSDT + 8 {
            blob.point(fadt as usize + FADT_X_DSDT, 8, dsdt);
        }
        let mut xsdt = XSDT::new(self.oem_id, self.oem_table_id, self.oem_revision);
        let mut entries = vec![fadt];
        for t in &self.tables {
            let sig = check_table(t, 0)?;
            if [*b"DSDT", *b"FACP", *b"XSDT", *b"RSDT", *b"FACS"].contains(&sig) {
                return Err(AcpiLoaderError::WrongSignature { found: sig });
            }
            entries.push(blob.push(t));
        }
        for &e in &entries {
            xsdt.add_entry(u64::from(e));
        }
        let mut xsdt_bytes = Vec::new();
        xsdt.to_aml_bytes(&mut xsdt_bytes as &mut dyn AmlSink);
        let xsdt_at = blob.push(&xsdt_bytes);
        for i in 0..entries.len() {
            let at = xsdt_at as usize + HEADER_LEN + 8 * i;
            blob.pointers.push((at as u32, 8));
        }
        self.commands(blob, xsdt_at)
            .map_err(AcpiLoaderError::Loader)
    }

    fn commands(&self, blob: Blob, xsdt_at: u32) -> Result<TableLoader, TableLoaderError> {
        let mut rsdp = Vec::new();
        Rsdp::new(self.oem_id, u64::from(xsdt_at)).to_aml_bytes(&mut rsdp as &mut dyn AmlSink);
        rsdp[RSDP_CHECKSUM as usize] = 0;
        rsdp[RSDP_EXT_CHECKSUM as usize] = 0;
        let rsdp_len = rsdp.len() as u32;

        let mut l = TableLoader::new();
        let (t, r) = (ACPI_TABLES_FILE_NAME, ACPI_RSDP_FILE_NAME);
        l.allocate(t, blob.bytes, 64, Zone::High)?;
        // Pointers of a table come before its checksum, as in QEMU.
        let mut pointers = blob.pointers.iter().peekable();
        for &(start, len) in &blob.tables {
            while let Some(&&(at, size)) = pointers.peek() {
                if at >= start + len {
                    break;
                }
                l.add_pointer(t, at, size, t)?;
                pointers.next();
            }
            l.add_checksum(t, start + CHECKSUM_OFFSET, start, len)?;
        }
        l.allocate(r, rsdp, 16, Zone::Fseg)?;
        l.add_pointer(r, RSDP_XSDT, 8, t)?;
        l.add_checksum(r, RSDP_CHECKSUM, 0, 20)?;
        l.add_checksum(r, RSDP_EXT_CHECKSUM, 0, rsdp_len)?;
        Ok(l)
    }

    /// Adds `etc/acpi/tables`, `etc/acpi/rsdp` and `etc/table-loader` to
    /// `builder`.
    pub fn add_to(&self, builder: &mut FwCfgBuilder) -> Result<(), AcpiLoaderError> {
        self.table_loader()?
            .add_to(builder)
            .map_err(AcpiLoaderError::Build)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acpi::FwCfgAcpi;
    use crate::table_loader::{Loaded, TABLE_LOADER_FILE_NAME, apply};
    use acpi_tables::sdt::Sdt;

    const OEM: [u8; 6] = *b"FWCFGT";

    fn table(sig: &[u8; 4], rev: u8, body: &[u8]) -> Vec<u8> {
        let mut t = Sdt::new(*sig, HEADER_LEN as u32, rev, OEM, *b"TESTTABL", 1);
        t.append_slice(body);
        t.as_slice().to_vec()
    }

    fn set() -> AcpiTableSet {
        let mut dsdt_body = Vec::new();
        FwCfgAcpi::x86(true).to_aml_bytes(&mut dsdt_body as &mut dyn AmlSink);
        // A FADT of revision 6 (276 bytes) with stale addresses in the
        // DSDT fields and a stale checksum, which the loader replaces.
        let mut fadt = table(b"FACP", 6, &[0; 276 - HEADER_LEN]);
        fadt[FADT_DSDT..FADT_DSDT + 4].copy_from_slice(&0xdead_beefu32.to_le_bytes());
        fadt[9] = 0x5a;
        AcpiTableSet {
            dsdt: table(b"DSDT", 2, &dsdt_body),
            fadt,
            tables: vec![table(b"APIC", 5, &[0xfe, 0xe0, 0, 0, 1, 0, 0, 0])],
            oem_id: OEM,
            oem_table_id: *b"TESTTABL",
            oem_revision: 1,
        }
    }

    fn sum(b: &[u8]) -> u8 {
        b.iter().fold(0u8, |a, &x| a.wrapping_add(x))
    }

    fn u64_at(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }

    /// The table at guest address `addr`, checked: inside one allocated
    /// file, its whole length there, checksum valid.
    fn table_at(loaded: &Loaded, addr: u64) -> &[u8] {
        let (_, data, off) = loaded.at(addr).expect("pointer into an allocated file");
        let len = u32::from_le_bytes(data[off + 4..off + 8].try_into().unwrap()) as usize;
        let t = &data[off..off + len];
        assert_eq!(sum(t), 0, "checksum of {:?}", &t[..4]);
        t
    }

    #[test]
    fn firmware_finds_rsdp_xsdt_facp_dsdt_apic_with_valid_checksums() {
        let l = set().table_loader().unwrap();
        let stream = l.commands_bytes();
        // QEMU microvm: 2 allocations, 5 pointers, 6 checksums.
        assert_eq!(stream.len(), 13 * 128);
        let loaded = apply(&stream, |n| l.file_data(n)).unwrap();

        let (rsdp_addr, rsdp) = &loaded.files[ACPI_RSDP_FILE_NAME];
        assert!((0xe_0000..0x10_0000).contains(rsdp_addr));
        assert_eq!(rsdp_addr % 16, 0);
        assert_eq!(&rsdp[..8], b"RSD PTR ");
        assert_eq!(rsdp[15], 2);
        assert_eq!(sum(&rsdp[..20]), 0);
        assert_eq!(sum(rsdp), 0);
        let xsdt = table_at(&loaded, u64_at(rsdp, 24));
        assert_eq!(&xsdt[..4], b"XSDT");
        let sigs: Vec<[u8; 4]> = (HEADER_LEN..xsdt.len())
            .step_by(8)
            .map(|at| table_at(&loaded, u64_at(xsdt, at))[..4].try_into().unwrap())
            .collect();
        assert_eq!(sigs, [*b"FACP", *b"APIC"]);
        let fadt = table_at(&loaded, u64_at(xsdt, HEADER_LEN));
        let dsdt32 = u32::from_le_bytes(fadt[40..44].try_into().unwrap());
        assert_eq!(u64::from(dsdt32), u64_at(fadt, 140));
        let dsdt = table_at(&loaded, u64_at(fadt, 140));
        assert_eq!(&dsdt[..4], b"DSDT");
        assert!(dsdt.windows(8).any(|w| w == b"QEMU0002"));
        let (tables_addr, _) = loaded.files[ACPI_TABLES_FILE_NAME];
        assert_eq!(tables_addr % 64, 0);
    }

    #[test]
    fn add_to_serves_the_three_files() {
        use vm_memory::{GuestAddress, GuestMemoryMmap};
        let mut b = FwCfgBuilder::new();
        set().add_to(&mut b).unwrap();
        let m = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x1000)]).unwrap();
        let dev = b.build(&m);
        let names: Vec<&str> = dev.files().map(|(n, _, _)| n).collect();
        assert_eq!(
            names,
            [
                ACPI_RSDP_FILE_NAME,
                ACPI_TABLES_FILE_NAME,
                TABLE_LOADER_FILE_NAME
            ]
        );
        let file = |n| dev.item_bytes(dev.file_key(n).unwrap()).unwrap();
        let loaded = apply(file(TABLE_LOADER_FILE_NAME), |n| {
            dev.file_key(n).and_then(|k| dev.item_bytes(k))
        })
        .unwrap();
        assert_eq!(loaded.files.len(), 2);
    }

    #[test]
    fn bad_tables_are_typed_errors() {
        let mut s = set();
        s.dsdt.truncate(20);
        assert!(matches!(
            s.table_loader(),
            Err(AcpiLoaderError::TooShort { len: 20, .. })
        ));
        let mut s = set();
        s.fadt.push(0);
        assert!(matches!(
            s.table_loader(),
            Err(AcpiLoaderError::LengthMismatch { .. })
        ));
        let mut s = set();
        std::mem::swap(&mut s.dsdt, &mut s.fadt);
        assert!(matches!(
            s.table_loader(),
            Err(AcpiLoaderError::WrongSignature { found }) if found == *b"FACP"
        ));
        let mut s = set();
        s.tables.push(table(b"XSDT", 1, &[]));
        assert!(matches!(
            s.table_loader(),
            Err(AcpiLoaderError::WrongSignature { found }) if found == *b"XSDT"
        ));
    }
}
