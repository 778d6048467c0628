// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The top of the guest's memory map: the policy never falls back below it
//! ([`ChannelInputs::memory_top`](crate::policy::ChannelInputs::memory_top)).
//!
//! A memory map is a list of `(base, size, type)` ranges with E820 types,
//! as the PVH `hvm_memmap_table_entry` array, QEMU's `etc/e820` fw_cfg file
//! and Linux's `/sys/firmware/memmap` (type names) carry them. Ranges that
//! hold memory count: RAM, ACPI tables, ACPI NVS and persistent memory.
//! Reserved ranges do not: they describe holes and MMIO (QEMU reserves the
//! AMD HyperTransport window below 1 TiB, which is no RAM).
//!
//! ```
//! use fw_cfg_guest::memmap::{memory_top, E820_RAM, E820_RESERVED};
//!
//! let map = [(0, 0x8000_0000, E820_RAM), (0x1_0000_0000, 96 << 30, E820_RAM),
//!            (0xfd_0000_0000, 0x3_0000_0000, E820_RESERVED)];
//! assert_eq!(memory_top(map), 0x1_0000_0000 + (96 << 30));
//! ```

use crate::reader::{FwCfgReader, ReadError};
use crate::transport::FwCfgTransport;

/// E820 type 1: usable RAM.
pub const E820_RAM: u32 = 1;
/// E820 type 2: reserved.
pub const E820_RESERVED: u32 = 2;
/// E820 type 3: ACPI tables (reclaimable RAM).
pub const E820_ACPI: u32 = 3;
/// E820 type 4: ACPI non-volatile storage.
pub const E820_NVS: u32 = 4;
/// E820 type 7: persistent memory.
pub const E820_PMEM: u32 = 7;
/// E820 type 12: legacy persistent memory.
pub const E820_PRAM: u32 = 12;

/// Whether a range of E820 type `kind` holds memory (module docs).
pub const fn holds_memory(kind: u32) -> bool {
    matches!(
        kind,
        E820_RAM | E820_ACPI | E820_NVS | E820_PMEM | E820_PRAM
    )
}

/// The exclusive end of the highest range that holds memory; 0 for a map
/// without one. Saturates at `u64::MAX` for a range that wraps.
pub fn memory_top<I: IntoIterator<Item = (u64, u64, u32)>>(ranges: I) -> u64 {
    ranges
        .into_iter()
        .filter(|&(_, size, kind)| size != 0 && holds_memory(kind))
        .map(|(base, size, _)| base.saturating_add(size))
        .max()
        .unwrap_or(0)
}

/// The E820 type of one of Linux's `/sys/firmware/memmap/N/type` names
/// (`e820_type_to_string`); `None` for a name it does not know.
pub fn e820_type_from_linux_name(name: &str) -> Option<u32> {
    Some(match name.trim() {
        "System RAM" => E820_RAM,
        "Reserved" | "Soft Reserved" | "Unusable memory" => E820_RESERVED,
        "ACPI Tables" => E820_ACPI,
        "ACPI Non-volatile Storage" => E820_NVS,
        "Persistent Memory" => E820_PMEM,
        "Persistent Memory (legacy)" => E820_PRAM,
        _ => return None,
    })
}

/// QEMU's fw_cfg file with the memory map (x86).
pub const E820_FILE_NAME: &str = "etc/e820";
/// One entry of `etc/e820`: LE64 address, LE64 length, LE32 type, packed
/// (QEMU's `struct e820_entry`).
pub const E820_ENTRY_SIZE: usize = 20;
/// The most entries the reader accepts: the file is host-controlled, and
/// a real map has a handful (QEMU's `-M pc` gives 2 to 5).
pub const E820_MAX_ENTRIES: usize = 128;
/// The buffer [`read_e820_top`] reads into.
pub const E820_READ_MAX: usize = E820_ENTRY_SIZE * E820_MAX_ENTRIES;

/// Why `etc/e820` is not a usable memory map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum E820Error {
    /// The size is not a whole number of entries (a short file).
    #[error("etc/e820 has {len} bytes, not a multiple of the 20-byte entry")]
    PartialEntry {
        /// The file's size.
        len: usize,
    },
    /// More entries than [`E820_MAX_ENTRIES`].
    #[error("etc/e820 has {count} entries, more than the {max} accepted")]
    TooManyEntries {
        /// Entries in the file.
        count: usize,
        /// The bound.
        max: usize,
    },
    /// Reading the file failed.
    #[error("cannot read etc/e820")]
    Read(#[source] ReadError),
}

/// The entries of an `etc/e820` file as `(base, size, type)`.
#[derive(Debug, Clone)]
pub struct E820Entries<'a>(core::slice::ChunksExact<'a, u8>);

impl Iterator for E820Entries<'_> {
    type Item = (u64, u64, u32);

    fn next(&mut self) -> Option<Self::Item> {
        let e = self.0.next()?;
        let u64_at = |o: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&e[o..o + 8]);
            u64::from_le_bytes(b)
        };
        let mut t = [0u8; 4];
        t.copy_from_slice(&e[16..20]);
        Some((u64_at(0), u64_at(8), u32::from_le_bytes(t)))
    }
}

/// Checks the size of an `etc/e820` file of `len` bytes.
fn check_e820_len(len: usize) -> Result<(), E820Error> {
    if len % E820_ENTRY_SIZE != 0 {
        return Err(E820Error::PartialEntry { len });
    }
    let count = len / E820_ENTRY_SIZE;
    if count > E820_MAX_ENTRIES {
        return Err(E820Error::TooManyEntries {
            count,
            max: E820_MAX_ENTRIES,
        });
    }
    Ok(())
}

/// Parses `etc/e820` (untrusted: whole entries only, at most
/// [`E820_MAX_ENTRIES`]).
///
/// ```
/// use fw_cfg_guest::memmap::{memory_top, parse_e820, E820_RAM};
///
/// let mut file = Vec::new();
/// for (base, size) in [(0u64, 0x8000_0000u64), (1 << 32, 96 << 30)] {
///     file.extend_from_slice(&base.to_le_bytes());
///     file.extend_from_slice(&size.to_le_bytes());
///     file.extend_from_slice(&E820_RAM.to_le_bytes());
/// }
/// assert_eq!(memory_top(parse_e820(&file).unwrap()), (1 << 32) + (96 << 30));
/// assert!(parse_e820(&file[..30]).is_err());
/// ```
pub fn parse_e820(bytes: &[u8]) -> Result<E820Entries<'_>, E820Error> {
    check_e820_len(bytes.len())?;
    Ok(E820Entries(bytes.chunks_exact(E820_ENTRY_SIZE)))
}

/// The memory top of the fw_cfg `etc/e820` file (firmware's input when
/// there is no PVH memory map): `Ok(None)` without the file. The size is
/// checked before anything is read.
pub fn read_e820_top<T: FwCfgTransport>(
    reader: &mut FwCfgReader<T>,
) -> Result<Option<u64>, E820Error> {
    let entry = match reader.find_file(E820_FILE_NAME) {
        Ok(e) => e,
        Err(ReadError::NotFound) => return Ok(None),
        Err(e) => return Err(E820Error::Read(e)),
    };
    check_e820_len(entry.size as usize)?;
    let mut buf = [0u8; E820_READ_MAX];
    let n = reader
        .read_entry(&entry, &mut buf)
        .map_err(E820Error::Read)?;
    Ok(Some(memory_top(parse_e820(&buf[..n])?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::tests::{MemDev, dir, entry};

    fn e820(entries: &[(u64, u64, u32)]) -> ([u8; E820_READ_MAX + 20], usize) {
        let mut b = [0u8; E820_READ_MAX + 20];
        for (i, (base, size, kind)) in entries.iter().enumerate() {
            let o = i * E820_ENTRY_SIZE;
            b[o..o + 8].copy_from_slice(&base.to_le_bytes());
            b[o + 8..o + 16].copy_from_slice(&size.to_le_bytes());
            b[o + 16..o + 20].copy_from_slice(&kind.to_le_bytes());
        }
        (b, entries.len() * E820_ENTRY_SIZE)
    }

    #[test]
    fn e820_parsing_is_bounded() {
        // QEMU's -M pc with 100 GiB: low RAM, reserved, high RAM.
        let (b, n) = e820(&[
            (0, 0x9fc00, E820_RAM),
            (0xfeff_c000, 0x4000, E820_RESERVED),
            (0x1_0000_0000, 98 << 30, E820_RAM),
        ]);
        assert_eq!(
            parse_e820(&b[..n]).unwrap().nth(2),
            Some((0x1_0000_0000, 98 << 30, E820_RAM))
        );
        assert_eq!(
            memory_top(parse_e820(&b[..n]).unwrap()),
            (1 << 32) + (98 << 30)
        );
        assert_eq!(parse_e820(&[]).unwrap().count(), 0);
        assert_eq!(
            parse_e820(&b[..n - 1]).unwrap_err(),
            E820Error::PartialEntry { len: n - 1 }
        );
        assert_eq!(
            parse_e820(&b[..E820_READ_MAX + 20]).unwrap_err(),
            E820Error::TooManyEntries {
                count: E820_MAX_ENTRIES + 1,
                max: E820_MAX_ENTRIES
            }
        );
        assert!(parse_e820(&b[..E820_READ_MAX]).is_ok());
    }

    #[test]
    fn e820_from_fw_cfg() {
        let (b, n) = e820(&[(0, 1 << 30, E820_RAM), (1 << 32, 1 << 36, E820_RAM)]);
        let d: [u8; 4 + 64] = dir(1, &[entry(n as u32, 0x20, E820_FILE_NAME.as_bytes())]);
        let files: &[(u16, &[u8])] = &[(0x20, &b[..n])];
        let mut r = FwCfgReader::new(MemDev::new(&d, files)).unwrap();
        assert_eq!(read_e820_top(&mut r), Ok(Some((1 << 32) + (1 << 36))));
        // A short file is refused before it is read.
        let d: [u8; 4 + 64] = dir(1, &[entry(30, 0x20, E820_FILE_NAME.as_bytes())]);
        let mut r = FwCfgReader::new(MemDev::new(&d, files)).unwrap();
        assert_eq!(
            read_e820_top(&mut r),
            Err(E820Error::PartialEntry { len: 30 })
        );
        // A huge one too.
        let d: [u8; 4 + 64] = dir(1, &[entry(20 * 1000, 0x20, E820_FILE_NAME.as_bytes())]);
        let mut r = FwCfgReader::new(MemDev::new(&d, files)).unwrap();
        assert!(matches!(
            read_e820_top(&mut r),
            Err(E820Error::TooManyEntries { count: 1000, .. })
        ));
        // No file: no answer.
        let d: [u8; 4 + 64] = dir(1, &[entry(8, 0x20, b"other")]);
        let mut r = FwCfgReader::new(MemDev::new(&d, &[])).unwrap();
        assert_eq!(read_e820_top(&mut r), Ok(None));
    }

    #[test]
    fn top_counts_memory_ranges_only() {
        assert_eq!(memory_top([]), 0);
        assert_eq!(memory_top([(0x1000, 0, E820_RAM)]), 0);
        assert_eq!(
            memory_top([(0, 1 << 30, E820_RAM), (1 << 40, 1 << 30, E820_RESERVED)]),
            1 << 30
        );
        assert_eq!(
            memory_top([(1 << 36, 1 << 20, E820_PMEM)]),
            (1 << 36) + (1 << 20)
        );
        assert_eq!(memory_top([(u64::MAX - 1, 4, E820_RAM)]), u64::MAX);
    }

    #[test]
    fn linux_type_names() {
        assert_eq!(e820_type_from_linux_name("System RAM\n"), Some(E820_RAM));
        assert_eq!(e820_type_from_linux_name("Reserved"), Some(E820_RESERVED));
        assert_eq!(e820_type_from_linux_name("ACPI Tables"), Some(E820_ACPI));
        assert_eq!(e820_type_from_linux_name("bogus"), None);
    }
}
