// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! QEMU's BIOS linker/loader: the `etc/table-loader` command stream with
//! which firmware (SeaBIOS, OVMF, qboot) installs ACPI tables served as
//! fw_cfg files, as `hw/acpi/bios-linker-loader.c` writes it.
//!
//! Each command is 128 bytes: a LE32 command number, then the fields of
//! that command (names are 56-byte NUL-padded fields, integers
//! little-endian), zeros to the end:
//!
//! | command | fields |
//! |---|---|
//! | 1 ALLOCATE | `file[56]`, LE32 `align`, u8 `zone` (1 HIGH, 2 FSEG) |
//! | 2 ADD_POINTER | `dest_file[56]`, `src_file[56]`, LE32 `offset`, u8 `size` |
//! | 3 ADD_CHECKSUM | `file[56]`, LE32 `offset`, LE32 `start`, LE32 `length` |
//! | 4 WRITE_POINTER | `dest_file[56]`, `src_file[56]`, LE32 `dst_offset`, LE32 `src_offset`, u8 `size` |
//!
//! ALLOCATE loads a file into guest memory (FSEG: the 0xe0000..0x100000
//! BIOS segment, where the RSDP must be; HIGH: anywhere in RAM);
//! ADD_POINTER adds the address of `src_file` to the `size`-byte LE value
//! at `offset` in `dest_file`; ADD_CHECKSUM subtracts the byte sum of
//! `start..start+length` from the byte at `offset` (the ACPI checksum);
//! WRITE_POINTER writes the address of `src_file` + `src_offset` back to
//! the fw_cfg file `dest_file` at `dst_offset` (a writable file, not
//! allocated; QEMU uses it for VM generation ID and GHES).
//!
//! QEMU prepends every ALLOCATE (`g_array_prepend_vals`), so the stream
//! starts with the allocations in the reverse order of the calls, then the
//! other commands in call order; [`TableLoader`] writes the same.
//!
//! The builder refuses what firmware would choke on, as typed
//! [`TableLoaderError`]s: invalid or duplicate names (over 55 bytes, the
//! firmware needs the NUL); pointers to or from files that are not
//! allocated; empty files (SeaBIOS silently skips their allocation);
//! alignments that are not powers of two or above 4096 (OVMF's limit);
//! pointer sizes other than 1, 2, 4 and 8; offsets, sizes and ranges
//! outside a file; and a command that changes bytes covered by an earlier
//! checksum (the firmware applies commands in order, so the earlier
//! checksum would be wrong). [`apply`] runs a stream as SeaBIOS's
//! `romfile_loader_execute` does, on a simple allocator, for tests.

use std::collections::BTreeMap;

use crate::builder::{FwCfgBuilder, ITEM_MAX_LEN, check_file_name};
use crate::error::{BuildError, FileNameError};

/// Name of the command file.
pub const TABLE_LOADER_FILE_NAME: &str = "etc/table-loader";
/// Size of one command.
pub const COMMAND_SIZE: usize = 128;
/// Size of a name field (QEMU's `FW_CFG_MAX_FILE_PATH`).
pub const NAME_FIELD_SIZE: usize = 56;
/// The largest alignment OVMF accepts (`EFI_PAGE_SIZE`).
pub const MAX_ALIGN: u32 = 4096;

const CMD_ALLOCATE: u32 = 1;
const CMD_ADD_POINTER: u32 = 2;
const CMD_ADD_CHECKSUM: u32 = 3;
const CMD_WRITE_POINTER: u32 = 4;

/// Where firmware allocates a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Zone {
    /// Anywhere in RAM (`BIOS_LINKER_LOADER_ALLOC_ZONE_HIGH`, 1).
    High,
    /// The BIOS segment below 1 MiB, for the RSDP
    /// (`BIOS_LINKER_LOADER_ALLOC_ZONE_FSEG`, 2).
    Fseg,
}

impl Zone {
    /// The zone byte on the wire.
    pub fn to_byte(self) -> u8 {
        match self {
            Zone::High => 1,
            Zone::Fseg => 2,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(Zone::High),
            2 => Some(Zone::Fseg),
            _ => None,
        }
    }
}

/// One linker/loader command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Load `file` into guest memory.
    Allocate {
        /// The fw_cfg file.
        file: String,
        /// Minimum alignment (a power of two, or 0 for the firmware's).
        align: u32,
        /// Where to allocate it.
        zone: Zone,
    },
    /// Add the address of `src` to the pointer at `offset` in `dest`.
    AddPointer {
        /// The file holding the pointer.
        dest: String,
        /// The file pointed to.
        src: String,
        /// Offset of the pointer in `dest`.
        offset: u32,
        /// Pointer size: 1, 2, 4 or 8.
        size: u8,
    },
    /// Subtract the byte sum of `start..start+length` from byte `offset`.
    AddChecksum {
        /// The file.
        file: String,
        /// Offset of the checksum byte.
        offset: u32,
        /// Start of the summed range.
        start: u32,
        /// Length of the summed range.
        length: u32,
    },
    /// Write the address of `src` + `src_offset` to fw_cfg file `dest`.
    WritePointer {
        /// The fw_cfg file written back (writable, not allocated).
        dest: String,
        /// The allocated file pointed to.
        src: String,
        /// Offset in `dest`.
        dst_offset: u32,
        /// Offset in `src`.
        src_offset: u32,
        /// Pointer size: 1, 2, 4 or 8.
        size: u8,
    },
}

fn put_name(buf: &mut [u8], at: usize, name: &str) {
    // Names are checked to be at most 55 bytes: the field keeps a NUL.
    buf[at..at + name.len()].copy_from_slice(name.as_bytes());
}

fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn get_u32(buf: &[u8; COMMAND_SIZE], at: usize) -> u32 {
    u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

/// A name field: the bytes before the NUL, None without one (firmware
/// refuses such a command).
fn get_name(buf: &[u8; COMMAND_SIZE], at: usize) -> Option<String> {
    let field = &buf[at..at + NAME_FIELD_SIZE];
    let end = field.iter().position(|&b| b == 0)?;
    std::str::from_utf8(&field[..end]).ok().map(str::to_string)
}

impl Command {
    /// The 128 bytes of the command, as `bios-linker-loader.c` lays them out.
    pub fn to_bytes(&self) -> [u8; COMMAND_SIZE] {
        let mut b = [0u8; COMMAND_SIZE];
        const N: usize = 4 + NAME_FIELD_SIZE;
        const NN: usize = N + NAME_FIELD_SIZE;
        match self {
            Command::Allocate { file, align, zone } => {
                put_u32(&mut b, 0, CMD_ALLOCATE);
                put_name(&mut b, 4, file);
                put_u32(&mut b, N, *align);
                b[N + 4] = zone.to_byte();
            }
            Command::AddPointer {
                dest,
                src,
                offset,
                size,
            } => {
                put_u32(&mut b, 0, CMD_ADD_POINTER);
                put_name(&mut b, 4, dest);
                put_name(&mut b, N, src);
                put_u32(&mut b, NN, *offset);
                b[NN + 4] = *size;
            }
            Command::AddChecksum {
                file,
                offset,
                start,
                length,
            } => {
                put_u32(&mut b, 0, CMD_ADD_CHECKSUM);
                put_name(&mut b, 4, file);
                put_u32(&mut b, N, *offset);
                put_u32(&mut b, N + 4, *start);
                put_u32(&mut b, N + 8, *length);
            }
            Command::WritePointer {
                dest,
                src,
                dst_offset,
                src_offset,
                size,
            } => {
                put_u32(&mut b, 0, CMD_WRITE_POINTER);
                put_name(&mut b, 4, dest);
                put_name(&mut b, N, src);
                put_u32(&mut b, NN, *dst_offset);
                put_u32(&mut b, NN + 4, *src_offset);
                b[NN + 8] = *size;
            }
        }
        b
    }

    /// Decodes one command as firmware does: `Ok(None)` for a command
    /// number firmware skips, an error for a name without NUL or an
    /// unknown zone (which firmware refuses).
    pub fn from_bytes(b: &[u8; COMMAND_SIZE]) -> Result<Option<Self>, ApplyError> {
        const N: usize = 4 + NAME_FIELD_SIZE;
        const NN: usize = N + NAME_FIELD_SIZE;
        let name = |at| get_name(b, at).ok_or(ApplyError::BadName);
        Ok(Some(match get_u32(b, 0) {
            CMD_ALLOCATE => Command::Allocate {
                file: name(4)?,
                align: get_u32(b, N),
                zone: Zone::from_byte(b[N + 4]).ok_or(ApplyError::BadZone { zone: b[N + 4] })?,
            },
            CMD_ADD_POINTER => Command::AddPointer {
                dest: name(4)?,
                src: name(N)?,
                offset: get_u32(b, NN),
                size: b[NN + 4],
            },
            CMD_ADD_CHECKSUM => Command::AddChecksum {
                file: name(4)?,
                offset: get_u32(b, N),
                start: get_u32(b, N + 4),
                length: get_u32(b, N + 8),
            },
            CMD_WRITE_POINTER => Command::WritePointer {
                dest: name(4)?,
                src: name(N)?,
                dst_offset: get_u32(b, NN),
                src_offset: get_u32(b, NN + 4),
                size: b[NN + 8],
            },
            _ => return Ok(None),
        }))
    }
}

/// What the [`TableLoader`] builder refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TableLoaderError {
    /// A name that cannot be a fw_cfg file name.
    #[error("invalid table-loader file name {name:?}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Why.
        #[source]
        source: FileNameError,
    },
    /// A file is allocated twice.
    #[error("table-loader file {name:?} is allocated twice")]
    DuplicateFile {
        /// The name.
        name: String,
    },
    /// An empty file (firmware skips its allocation).
    #[error("table-loader file {name:?} is empty")]
    EmptyFile {
        /// The name.
        name: String,
    },
    /// A file larger than an fw_cfg item can be.
    #[error("table-loader file {name:?} of {len} bytes is too large")]
    FileTooLarge {
        /// The name.
        name: String,
        /// Its length.
        len: usize,
    },
    /// An alignment that is not a power of two, or above 4096.
    #[error("alignment {align} is not a power of two up to 4096")]
    InvalidAlignment {
        /// The alignment.
        align: u32,
    },
    /// A command names a file that is not allocated.
    #[error("table-loader file {name:?} is not allocated")]
    Unallocated {
        /// The name.
        name: String,
    },
    /// A WRITE_POINTER into an allocated file (it writes an fw_cfg file),
    /// or an allocation of a WRITE_POINTER destination.
    #[error("write-pointer destination {name:?} is an allocated file")]
    WritePointerToAllocated {
        /// The name.
        name: String,
    },
    /// A pointer size other than 1, 2, 4 or 8.
    #[error("pointer size {size} is not 1, 2, 4 or 8")]
    InvalidPointerSize {
        /// The size.
        size: u8,
    },
    /// A range that does not lie inside its file.
    #[error("range {offset}+{len} is outside {name:?} of {file_len} bytes")]
    OutOfRange {
        /// The file.
        name: String,
        /// Start of the range.
        offset: u32,
        /// Its length.
        len: u32,
        /// The file's length.
        file_len: u32,
    },
    /// A command changes a byte that an earlier checksum covers.
    #[error("byte {offset} of {name:?} is changed after the checksum at {checksum} covered it")]
    ChecksumInvalidated {
        /// The file.
        name: String,
        /// The byte changed.
        offset: u32,
        /// The offset of the earlier checksum byte.
        checksum: u32,
    },
}

/// Errors of [`apply`]: a stream or a file set firmware would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The stream is not a whole number of commands.
    #[error("table-loader stream of {len} bytes is not a multiple of 128")]
    BadLength {
        /// The length.
        len: usize,
    },
    /// A name field without NUL, or not UTF-8.
    #[error("table-loader name field without a terminating NUL")]
    BadName,
    /// An unknown allocation zone.
    #[error("unknown allocation zone {zone}")]
    BadZone {
        /// The zone byte.
        zone: u8,
    },
    /// A command the builder would refuse.
    #[error("invalid table-loader command")]
    Invalid(#[source] TableLoaderError),
    /// The zone has no room left.
    #[error("no room for {len} bytes in the {zone:?} zone")]
    NoRoom {
        /// The zone.
        zone: Zone,
        /// The file length.
        len: usize,
    },
}

/// One checksum already emitted: its byte and range.
#[derive(Debug, Clone, Copy)]
struct Checksum {
    offset: u32,
    start: u32,
    end: u32,
}

/// An allocated file and the checksums covering it so far.
#[derive(Debug, Clone)]
struct LoaderFile {
    data: Vec<u8>,
    checksums: Vec<Checksum>,
}

/// Builder of an `etc/table-loader` stream and the files it allocates.
///
/// ```
/// use fw_cfg_device::table_loader::{TableLoader, Zone};
///
/// let mut l = TableLoader::new();
/// l.allocate("etc/acpi/tables", vec![0; 64], 64, Zone::High).unwrap();
/// l.allocate("etc/acpi/rsdp", vec![0; 36], 16, Zone::Fseg).unwrap();
/// l.add_pointer("etc/acpi/rsdp", 24, 8, "etc/acpi/tables").unwrap();
/// l.add_checksum("etc/acpi/rsdp", 8, 0, 20).unwrap();
/// assert!(l.add_pointer("etc/acpi/rsdp", 30, 8, "etc/acpi/tables").is_err());
/// assert_eq!(l.commands_bytes().len(), 4 * 128);
/// ```
#[derive(Debug, Clone, Default)]
pub struct TableLoader {
    /// Allocated files by name, with their allocation order.
    files: BTreeMap<String, LoaderFile>,
    /// ALLOCATE commands in call order.
    allocations: Vec<Command>,
    /// The other commands in call order.
    commands: Vec<Command>,
    /// WRITE_POINTER destinations (never allocated: allocations come
    /// first in the stream, so a later one would precede the write).
    write_dests: Vec<String>,
}

fn check_name(name: &str) -> Result<(), TableLoaderError> {
    check_file_name(name).map_err(|source| TableLoaderError::InvalidName {
        name: name.to_string(),
        source,
    })
}

fn check_pointer_size(size: u8) -> Result<(), TableLoaderError> {
    if matches!(size, 1 | 2 | 4 | 8) {
        Ok(())
    } else {
        Err(TableLoaderError::InvalidPointerSize { size })
    }
}

/// `offset..offset+len` lies in a file of `file_len` bytes.
fn check_range(name: &str, offset: u32, len: u32, file_len: usize) -> Result<(), TableLoaderError> {
    let inside = u64::from(offset) + u64::from(len) <= file_len as u64;
    if inside {
        Ok(())
    } else {
        Err(TableLoaderError::OutOfRange {
            name: name.to_string(),
            offset,
            len,
            // Files are at most ITEM_MAX_LEN bytes.
            file_len: file_len as u32,
        })
    }
}

impl LoaderFile {
    /// Refuses a change of `offset..offset+len` under an earlier checksum.
    fn check_unsummed(&self, name: &str, offset: u32, len: u32) -> Result<(), TableLoaderError> {
        let end = u64::from(offset) + u64::from(len);
        match self
            .checksums
            .iter()
            .find(|c| u64::from(c.start) < end && u64::from(offset) < u64::from(c.end))
        {
            Some(c) => Err(TableLoaderError::ChecksumInvalidated {
                name: name.to_string(),
                offset,
                checksum: c.offset,
            }),
            None => Ok(()),
        }
    }
}

impl TableLoader {
    /// An empty stream.
    pub fn new() -> Self {
        Self::default()
    }

    fn file(&self, name: &str) -> Result<&LoaderFile, TableLoaderError> {
        self.files
            .get(name)
            .ok_or_else(|| TableLoaderError::Unallocated {
                name: name.to_string(),
            })
    }

    /// ALLOCATE (QEMU's `bios_linker_loader_alloc`): `data` becomes an
    /// fw_cfg file called `name` that firmware loads into `zone` aligned
    /// to `align` (a power of two up to 4096, or 0 for the firmware's
    /// minimum).
    pub fn allocate(
        &mut self,
        name: &str,
        data: Vec<u8>,
        align: u32,
        zone: Zone,
    ) -> Result<&mut Self, TableLoaderError> {
        check_name(name)?;
        if self.files.contains_key(name) {
            return Err(TableLoaderError::DuplicateFile {
                name: name.to_string(),
            });
        }
        if self.write_dests.iter().any(|d| d == name) {
            return Err(TableLoaderError::WritePointerToAllocated {
                name: name.to_string(),
            });
        }
        if data.is_empty() {
            return Err(TableLoaderError::EmptyFile {
                name: name.to_string(),
            });
        }
        if data.len() as u64 > ITEM_MAX_LEN {
            return Err(TableLoaderError::FileTooLarge {
                name: name.to_string(),
                len: data.len(),
            });
        }
        if align & align.wrapping_sub(1) != 0 || align > MAX_ALIGN {
            return Err(TableLoaderError::InvalidAlignment { align });
        }
        let file = LoaderFile {
            data,
            checksums: Vec::new(),
        };
        self.files.insert(name.to_string(), file);
        self.allocations.push(Command::Allocate {
            file: name.to_string(),
            align,
            zone,
        });
        Ok(self)
    }

    /// ADD_POINTER (QEMU's `bios_linker_loader_add_pointer`): firmware
    /// adds the address of `src` to the `size`-byte value at `offset` in
    /// `dest`. Put the offset of the target inside `src` there first.
    pub fn add_pointer(
        &mut self,
        dest: &str,
        offset: u32,
        size: u8,
        src: &str,
    ) -> Result<&mut Self, TableLoaderError> {
        check_pointer_size(size)?;
        self.file(src)?;
        let d = self.file(dest)?;
        check_range(dest, offset, u32::from(size), d.data.len())?;
        d.check_unsummed(dest, offset, u32::from(size))?;
        self.commands.push(Command::AddPointer {
            dest: dest.to_string(),
            src: src.to_string(),
            offset,
            size,
        });
        Ok(self)
    }

    /// ADD_CHECKSUM (QEMU's `bios_linker_loader_add_checksum`): firmware
    /// subtracts the byte sum of `start..start+length` from the byte at
    /// `offset` (keep it 0 for an ACPI checksum).
    pub fn add_checksum(
        &mut self,
        name: &str,
        offset: u32,
        start: u32,
        length: u32,
    ) -> Result<&mut Self, TableLoaderError> {
        let f = self.file(name)?;
        check_range(name, offset, 1, f.data.len())?;
        check_range(name, start, length, f.data.len())?;
        f.check_unsummed(name, offset, 1)?;
        let end = start + length;
        if let Some(f) = self.files.get_mut(name) {
            f.checksums.push(Checksum { offset, start, end });
        }
        self.commands.push(Command::AddChecksum {
            file: name.to_string(),
            offset,
            start,
            length,
        });
        Ok(self)
    }

    /// WRITE_POINTER (QEMU's `bios_linker_loader_write_pointer`): firmware
    /// writes the address of `src` + `src_offset` to the fw_cfg file
    /// `dest` (of `dest_len` bytes, not allocated; the VMM adds it with
    /// [`FwCfgBuilder::add_writable_file`]) at `dst_offset`.
    pub fn write_pointer(
        &mut self,
        dest: &str,
        dest_len: u32,
        dst_offset: u32,
        size: u8,
        src: &str,
        src_offset: u32,
    ) -> Result<&mut Self, TableLoaderError> {
        check_name(dest)?;
        check_pointer_size(size)?;
        if self.files.contains_key(dest) {
            return Err(TableLoaderError::WritePointerToAllocated {
                name: dest.to_string(),
            });
        }
        check_range(dest, dst_offset, u32::from(size), dest_len as usize)?;
        let s = self.file(src)?;
        check_range(src, src_offset, 1, s.data.len())?;
        if !self.write_dests.iter().any(|d| d == dest) {
            self.write_dests.push(dest.to_string());
        }
        self.commands.push(Command::WritePointer {
            dest: dest.to_string(),
            src: src.to_string(),
            dst_offset,
            src_offset,
            size,
        });
        Ok(self)
    }

    /// The bytes of an allocated file.
    pub fn file_data(&self, name: &str) -> Option<&[u8]> {
        self.files.get(name).map(|f| f.data.as_slice())
    }

    /// The commands in stream order: allocations last-first (QEMU prepends
    /// them), then the others in call order.
    pub fn commands(&self) -> impl Iterator<Item = &Command> {
        self.allocations.iter().rev().chain(&self.commands)
    }

    /// The `etc/table-loader` bytes.
    pub fn commands_bytes(&self) -> Vec<u8> {
        self.commands().flat_map(|c| c.to_bytes()).collect()
    }

    /// Adds every allocated file and `etc/table-loader` to `builder`.
    pub fn add_to(self, builder: &mut FwCfgBuilder) -> Result<(), BuildError> {
        let stream = self.commands_bytes();
        for (name, f) in self.files {
            builder.add_file(&name, f.data)?;
        }
        builder.add_file(TABLE_LOADER_FILE_NAME, stream)?;
        Ok(())
    }
}

/// What [`apply`] produced: each allocated file at its address, patched,
/// and each WRITE_POINTER's bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    /// Allocated files by name: guest address and contents.
    pub files: BTreeMap<String, (u64, Vec<u8>)>,
    /// WRITE_POINTER results: `(dest, dst_offset, bytes)`.
    pub written: Vec<(String, u32, Vec<u8>)>,
}

impl Loaded {
    /// The file allocated at `addr`, and the offset of `addr` in it.
    pub fn at(&self, addr: u64) -> Option<(&str, &[u8], usize)> {
        self.files.iter().find_map(|(n, (a, d))| {
            let off = addr.checked_sub(*a)?;
            (off < d.len() as u64).then_some((n.as_str(), d.as_slice(), off as usize))
        })
    }
}

/// Base of the FSEG zone of [`apply`]'s allocator.
pub const APPLY_FSEG_BASE: u64 = 0xe_0000;
/// End of the FSEG zone.
pub const APPLY_FSEG_END: u64 = 0x10_0000;
/// Base of the HIGH zone of [`apply`]'s allocator.
pub const APPLY_HIGH_BASE: u64 = 0x100_0000;

fn align_up(v: u64, align: u32) -> u64 {
    let a = u64::from(align.max(16));
    v.div_ceil(a) * a
}

/// Runs a command stream as SeaBIOS's `romfile_loader_execute` does, with
/// `file` giving an fw_cfg file's bytes and a bump allocator (FSEG from
/// 0xe0000 to 1 MiB, HIGH from 16 MiB, alignment at least 16 as in
/// SeaBIOS). Unlike SeaBIOS, which warns and goes on, every command the
/// builder would refuse is an error, and so is a checksum invalidated by a
/// later command; unknown command numbers are ignored, as firmware ignores them.
pub fn apply<'a>(
    stream: &[u8],
    mut file: impl FnMut(&str) -> Option<&'a [u8]>,
) -> Result<Loaded, ApplyError> {
    if stream.len() % COMMAND_SIZE != 0 {
        return Err(ApplyError::BadLength { len: stream.len() });
    }
    // Replaying through the builder applies its checks in stream order.
    let mut check = TableLoader::new();
    let mut out = Loaded::default();
    let (mut fseg, mut high) = (APPLY_FSEG_BASE, APPLY_HIGH_BASE);
    for raw in stream.chunks_exact(COMMAND_SIZE) {
        let raw: &[u8; COMMAND_SIZE] = raw.try_into().map_err(|_| ApplyError::BadName)?;
        let Some(cmd) = Command::from_bytes(raw)? else {
            continue;
        };
        apply_one(
            &mut check,
            &mut out,
            &cmd,
            &mut file,
            (&mut fseg, &mut high),
        )?;
    }
    Ok(out)
}

/// Applies an ALLOCATE of `name`: checked as the builder checks it, then
/// placed at the next `align`ed address of `zone`.
fn apply_allocate<'a>(
    check: &mut TableLoader,
    out: &mut Loaded,
    name: &str,
    align: u32,
    zone: Zone,
    file: &mut impl FnMut(&str) -> Option<&'a [u8]>,
    (fseg, high): (&mut u64, &mut u64),
) -> Result<(), ApplyError> {
    let inv = ApplyError::Invalid;
    let data = file(name).ok_or_else(|| {
        inv(TableLoaderError::Unallocated {
            name: name.to_string(),
        })
    })?;
    check
        .allocate(name, data.to_vec(), align, zone)
        .map_err(inv)?;
    let next = match zone {
        Zone::Fseg => fseg,
        Zone::High => high,
    };
    let addr = align_up(*next, align);
    let end = addr + data.len() as u64;
    if zone == Zone::Fseg && end > APPLY_FSEG_END {
        return Err(ApplyError::NoRoom {
            zone,
            len: data.len(),
        });
    }
    *next = end;
    out.files.insert(name.to_string(), (addr, data.to_vec()));
    Ok(())
}

fn apply_one<'a>(
    check: &mut TableLoader,
    out: &mut Loaded,
    cmd: &Command,
    file: &mut impl FnMut(&str) -> Option<&'a [u8]>,
    (fseg, high): (&mut u64, &mut u64),
) -> Result<(), ApplyError> {
    let inv = ApplyError::Invalid;
    match cmd {
        Command::Allocate {
            file: name,
            align,
            zone,
        } => apply_allocate(check, out, name, *align, *zone, file, (fseg, high))?,
        Command::AddPointer {
            dest,
            src,
            offset,
            size,
        } => {
            check.add_pointer(dest, *offset, *size, src).map_err(inv)?;
            let src_addr = out.files.get(src).map_or(0, |f| f.0);
            if let Some((_, d)) = out.files.get_mut(dest) {
                let range = *offset as usize..*offset as usize + usize::from(*size);
                let mut v = [0u8; 8];
                v[..usize::from(*size)].copy_from_slice(&d[range.clone()]);
                let p = u64::from_le_bytes(v).wrapping_add(src_addr);
                d[range].copy_from_slice(&p.to_le_bytes()[..usize::from(*size)]);
            }
        }
        Command::AddChecksum {
            file: name,
            offset,
            start,
            length,
        } => {
            check
                .add_checksum(name, *offset, *start, *length)
                .map_err(inv)?;
            if let Some((_, d)) = out.files.get_mut(name) {
                let sum = d[*start as usize..(*start + *length) as usize]
                    .iter()
                    .fold(0u8, |a, &b| a.wrapping_add(b));
                d[*offset as usize] = d[*offset as usize].wrapping_sub(sum);
            }
        }
        Command::WritePointer {
            dest,
            src,
            dst_offset,
            src_offset,
            size,
        } => {
            let dest_len = file(dest).map_or(0, <[u8]>::len);
            check
                .write_pointer(dest, dest_len as u32, *dst_offset, *size, src, *src_offset)
                .map_err(inv)?;
            let p = out.files.get(src).map_or(0, |f| f.0) + u64::from(*src_offset);
            let bytes = p.to_le_bytes()[..usize::from(*size)].to_vec();
            out.written.push((dest.clone(), *dst_offset, bytes));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loader() -> TableLoader {
        let mut l = TableLoader::new();
        l.allocate("t", vec![0; 100], 64, Zone::High).unwrap();
        l.allocate("r", vec![0; 36], 16, Zone::Fseg).unwrap();
        l
    }

    #[test]
    fn commands_have_qemu_layout_and_order() {
        let mut l = loader();
        l.add_pointer("r", 24, 8, "t").unwrap();
        l.add_checksum("r", 8, 0, 20).unwrap();
        l.write_pointer("w", 8, 0, 8, "t", 4).unwrap();
        let s = l.commands_bytes();
        assert_eq!(s.len(), 5 * 128);
        // The last allocation comes first.
        assert_eq!(&s[..4], &[1, 0, 0, 0]);
        assert_eq!(&s[4..6], b"r\0");
        assert_eq!(&s[60..64], &16u32.to_le_bytes());
        assert_eq!(s[64], 2);
        assert_eq!(&s[128 + 4..128 + 6], b"t\0");
        assert_eq!(s[128 + 64], 1);
        let p = &s[256..384];
        assert_eq!(&p[..4], &[2, 0, 0, 0]);
        assert_eq!(&p[60..62], b"t\0");
        assert_eq!(&p[116..120], &24u32.to_le_bytes());
        assert_eq!(p[120], 8);
        let c = &s[384..512];
        assert_eq!(&c[..4], &[3, 0, 0, 0]);
        assert_eq!(&c[60..72], &[8, 0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0]);
        let w = &s[512..640];
        assert_eq!(&w[..4], &[4, 0, 0, 0]);
        assert_eq!(&w[116..124], &[0, 0, 0, 0, 4, 0, 0, 0]);
        assert_eq!(w[124], 8);
        for (raw, cmd) in s.chunks(128).zip(l.commands()) {
            let raw: &[u8; 128] = raw.try_into().unwrap();
            assert_eq!(Command::from_bytes(raw).unwrap().as_ref(), Some(cmd));
        }
    }

    #[test]
    fn builder_refuses_what_firmware_chokes_on() {
        let mut l = loader();
        let long = "x".repeat(56);
        assert!(matches!(
            l.allocate(&long, vec![1], 1, Zone::High),
            Err(TableLoaderError::InvalidName { .. })
        ));
        assert!(matches!(
            l.allocate("t", vec![1], 1, Zone::High),
            Err(TableLoaderError::DuplicateFile { .. })
        ));
        assert!(matches!(
            l.allocate("e", vec![], 1, Zone::High),
            Err(TableLoaderError::EmptyFile { .. })
        ));
        for align in [3, 8192] {
            assert_eq!(
                l.allocate("a", vec![1], align, Zone::High).unwrap_err(),
                TableLoaderError::InvalidAlignment { align }
            );
        }
        assert!(matches!(
            l.add_pointer("t", 0, 8, "nope"),
            Err(TableLoaderError::Unallocated { .. })
        ));
        assert!(matches!(
            l.add_pointer("nope", 0, 8, "t"),
            Err(TableLoaderError::Unallocated { .. })
        ));
        assert_eq!(
            l.add_pointer("t", 0, 3, "r").unwrap_err(),
            TableLoaderError::InvalidPointerSize { size: 3 }
        );
        assert!(matches!(
            l.add_pointer("r", 32, 8, "t"),
            Err(TableLoaderError::OutOfRange {
                offset: 32,
                len: 8,
                file_len: 36,
                ..
            })
        ));
        assert!(matches!(
            l.add_checksum("r", 36, 0, 1),
            Err(TableLoaderError::OutOfRange { .. })
        ));
        assert!(matches!(
            l.add_checksum("r", 0, u32::MAX, 2),
            Err(TableLoaderError::OutOfRange { .. })
        ));
        assert!(matches!(
            l.write_pointer("t", 8, 0, 8, "r", 0),
            Err(TableLoaderError::WritePointerToAllocated { .. })
        ));
        l.write_pointer("w", 8, 0, 8, "r", 0).unwrap();
        assert!(matches!(
            l.allocate("w", vec![1], 1, Zone::High),
            Err(TableLoaderError::WritePointerToAllocated { .. })
        ));
        assert!(matches!(
            l.write_pointer("w", 4, 0, 8, "r", 0),
            Err(TableLoaderError::OutOfRange { .. })
        ));
        assert!(matches!(
            l.write_pointer("w", 8, 0, 8, "r", 36),
            Err(TableLoaderError::OutOfRange { .. })
        ));
        // The RSDP pattern is fine: checksum, then an extended checksum
        // whose range contains the first.
        l.add_checksum("r", 8, 0, 20).unwrap();
        l.add_checksum("r", 32, 0, 36).unwrap();
        // A later change under an earlier checksum is not.
        assert_eq!(
            l.add_pointer("r", 24, 8, "t").unwrap_err(),
            TableLoaderError::ChecksumInvalidated {
                name: "r".into(),
                offset: 24,
                checksum: 32
            }
        );
        assert!(matches!(
            l.add_checksum("r", 10, 30, 2),
            Err(TableLoaderError::ChecksumInvalidated { .. })
        ));
    }

    #[test]
    fn apply_patches_pointers_and_checksums_as_firmware() {
        let mut l = TableLoader::new();
        let mut t = vec![0u8; 40];
        t[0] = 0x10; // the pointer's initial value: offset 0x10 in r
        t[20] = 7;
        l.allocate("r", vec![5; 32], 16, Zone::Fseg).unwrap();
        l.allocate("t", t, 64, Zone::High).unwrap();
        l.add_pointer("t", 0, 4, "r").unwrap();
        l.add_checksum("t", 39, 0, 40).unwrap();
        l.write_pointer("w", 8, 0, 8, "t", 8).unwrap();
        let stream = l.commands_bytes();
        let w = [0u8; 8];
        let files = |n: &str| match n {
            "w" => Some(&w[..]),
            n => l.file_data(n),
        };
        let out = apply(&stream, files).unwrap();
        let (raddr, _) = out.files["r"];
        let (taddr, t) = &out.files["t"];
        assert_eq!(raddr, APPLY_FSEG_BASE);
        assert_eq!(*taddr, APPLY_HIGH_BASE);
        assert_eq!(&t[..4], &(raddr as u32 + 0x10).to_le_bytes());
        assert_eq!(t.iter().fold(0u8, |a, &b| a.wrapping_add(b)), 0);
        assert_eq!(
            out.written,
            [("w".into(), 0, (taddr + 8).to_le_bytes().to_vec())]
        );
        assert_eq!(out.at(raddr + 3).map(|(n, _, o)| (n, o)), Some(("r", 3)));
        assert_eq!(
            apply(&stream[..100], |_| None),
            Err(ApplyError::BadLength { len: 100 })
        );
        // Unknown command numbers are ignored.
        assert_eq!(apply(&[0u8; 128], |_| None), Ok(Loaded::default()));
    }
}
