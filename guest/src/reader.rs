// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The fw_cfg reader: signature and ID checks, the file directory, items and
//! files, without a heap.
//!
//! # Hostile input
//!
//! The host controls every byte this module reads. Each malformed input
//! gives a [`ReadError`] and every loop is bounded:
//!
//! | input | result |
//! |---|---|
//! | signature is not `"QEMU"` | [`ReadError::NoSignature`] |
//! | directory count above `abi::FILE_SLOTS_MAX` (0x3fe0), e.g. 0xffffffff | [`ReadError::BadDirectoryCount`]; at most 0x3fe0 entries are ever read |
//! | count larger than the real directory: reads past the end are zeros | [`ReadError::DirectoryTruncated`] at the first all-zero entry |
//! | name without a NUL in its 56 bytes | [`ReadError::UnterminatedName`] |
//! | empty name | [`ReadError::EmptyName`] |
//! | select outside the file range `0x20..0x4000` (0, a well-known key, the write bit, arch-local) | [`ReadError::BadSelector`] |
//! | the same name twice | [`ReadError::DuplicateFile`] (see below) |
//! | file larger than the caller's buffer | [`ReadError::FileTooLarge`], nothing is read |
//! | DMA error, or a control word that never clears | [`ReadError::Transport`] |
//!
//! Duplicates: [`FwCfgReader::find_file`] with [`Lookup::FullScan`] (the
//! default) reads the whole directory and rejects a second entry with the
//! wanted name wherever it is; [`Files`] rejects an entry equal to the one
//! before it, which catches every duplicate in a sorted directory (QEMU
//! sorts by name). Any malformed entry fails the whole lookup, even when it
//! is not the wanted one: a directory that breaks the ABI is not trusted.
//!
//! Short reads do not exist at this level: the device returns zeros past
//! the end of an item, so a short item shows up as zeros (hence
//! [`ReadError::DirectoryTruncated`], and `TooShort` for the phys-bits file).
//!
//! ```
//! # use fw_cfg_guest::transport::{FwCfgTransport, TransportError};
//! # use fw_cfg_guest::reader::FwCfgReader;
//! # struct Sig(usize, u16);
//! # impl FwCfgTransport for Sig {
//! #     fn select(&mut self, key: u16) { self.0 = 0; self.1 = key; }
//! #     fn read(&mut self, buf: &mut [u8]) -> Result<(), TransportError> {
//! #         let item: &[u8] = match self.1 { 0 => b"QEMU", 1 => &[1, 0, 0, 0], _ => &[] };
//! #         for b in buf { *b = item.get(self.0).copied().unwrap_or(0); self.0 += 1; }
//! #         Ok(())
//! #     }
//! # }
//! # let transport = Sig(0, 0);
//! // `transport` is a `PortIo`, `Mmio` or `Dma` in real firmware.
//! let mut fw = FwCfgReader::new(transport)?;
//! assert!(!fw.has_dma());
//! let mut buf = [0u8; 64];
//! match fw.read_file("etc/phys-bits-valid", &mut buf) {
//!     Ok(n) => { /* buf[..n] */ }
//!     Err(fw_cfg_guest::reader::ReadError::NotFound) => { /* the VMM says nothing */ }
//!     Err(e) => return Err(e),
//! }
//! # Ok::<(), fw_cfg_guest::reader::ReadError>(())
//! ```

use crate::abi::{
    DMA_SIGNATURE, FILE_DIR_ENTRY_SIZE, FILE_NAME_SIZE, FILE_SLOTS_MAX, FileDirEntry, ID_DMA,
    KEY_FILE_DIR, KEY_FILE_FIRST, KEY_ID, KEY_SIGNATURE, KEY_WRITE_CHANNEL, PHYS_BITS_FILE_NAME,
    SIGNATURE, check_file_name,
};
use crate::policy::FileState;
use crate::transport::{FwCfgTransport, STRING_READ_BATCH, TransportError};

/// A buffer size for [`FwCfgReader::read_phys_bits_file`]: version 1 of
/// `etc/phys-bits-valid` needs 8 bytes; longer (future) files are read up
/// to this prefix.
pub const PHYS_BITS_FILE_READ_MAX: usize = 64;

/// How many directory entries [`FwCfgReader::find_file_buffered`] reads
/// together with the count in its first read when DMA is on: 32, QEMU's
/// default number of file slots (`FW_CFG_FILE_SLOTS_DFLT`), so that read
/// is 2052 bytes. A larger first read would cost the device zero-filling,
/// and the guest copying, the rest for the usual directory of a few dozen
/// files; a directory with more entries takes one more read for the rest.
pub const DIRECTORY_HEAD_ENTRIES: usize = 32;

/// Why a read failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The signature item is not `"QEMU"`: no fw_cfg device here.
    #[error("no fw_cfg device: signature is {found:02x?}, not \"QEMU\"")]
    NoSignature {
        /// The four bytes read.
        found: [u8; 4],
    },
    /// The directory claims more files than selectors exist.
    #[error("fw_cfg directory claims {count} files, at most 16352 are possible")]
    BadDirectoryCount {
        /// The count read.
        count: u32,
    },
    /// An entry is all zeros: the directory ended before its count.
    #[error("fw_cfg directory entry {index} is empty: the directory is shorter than its count")]
    DirectoryTruncated {
        /// Index of the entry.
        index: u32,
    },
    /// A name fills its 56 bytes without a NUL.
    #[error("fw_cfg directory entry {index} has a name without NUL")]
    UnterminatedName {
        /// Index of the entry.
        index: u32,
    },
    /// A name is empty.
    #[error("fw_cfg directory entry {index} has an empty name")]
    EmptyName {
        /// Index of the entry.
        index: u32,
    },
    /// A selector outside the file range `0x20..0x4000`.
    #[error("fw_cfg directory entry {index} has selector {select:#06x}, outside 0x20..0x4000")]
    BadSelector {
        /// Index of the entry.
        index: u32,
        /// The selector.
        select: u16,
    },
    /// A name appears twice.
    #[error("fw_cfg directory entry {index} repeats an earlier name")]
    DuplicateFile {
        /// Index of the second entry.
        index: u32,
    },
    /// No file with that name.
    #[error("fw_cfg file not found")]
    NotFound,
    /// The name asked for cannot be in a directory: empty, longer than 55
    /// bytes, or containing NUL.
    #[error("not a valid fw_cfg file name")]
    InvalidName,
    /// The file does not fit the caller's buffer.
    #[error("fw_cfg file has {size} bytes, the buffer {buf}")]
    FileTooLarge {
        /// Size of the file.
        size: u32,
        /// Size of the buffer.
        buf: usize,
    },
    /// The transport failed (DMA).
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// A validated directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileEntry {
    /// Size in bytes.
    pub size: u32,
    /// Selector key, in `0x20..0x4000`.
    pub select: u16,
    /// Position in the directory.
    pub index: u32,
    name: [u8; FILE_NAME_SIZE],
    name_len: u8,
}

impl FileEntry {
    /// Validates a raw entry found at `index`.
    pub fn from_raw(index: u32, raw: &FileDirEntry) -> Result<Self, ReadError> {
        if raw.size == 0 && raw.select == 0 && raw.name[0] == 0 {
            return Err(ReadError::DirectoryTruncated { index });
        }
        let name = raw
            .name_bytes()
            .ok_or(ReadError::UnterminatedName { index })?;
        if name.is_empty() {
            return Err(ReadError::EmptyName { index });
        }
        if !(KEY_FILE_FIRST..KEY_WRITE_CHANNEL).contains(&raw.select) {
            return Err(ReadError::BadSelector {
                index,
                select: raw.select,
            });
        }
        let mut out = [0u8; FILE_NAME_SIZE];
        out[..name.len()].copy_from_slice(name);
        Ok(FileEntry {
            size: raw.size,
            select: raw.select,
            index,
            name: out,
            // `name_bytes` found a NUL, so the length is at most 55.
            name_len: name.len() as u8,
        })
    }

    /// The name, without the NUL.
    pub fn name(&self) -> &[u8] {
        &self.name[..usize::from(self.name_len)]
    }

    /// The name as UTF-8, when it is.
    pub fn name_str(&self) -> Option<&str> {
        core::str::from_utf8(self.name()).ok()
    }
}

/// What [`FwCfgReader::read_phys_bits_file`] found: the state of the fw_cfg
/// channel and the bytes it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhysBitsRead<'b> {
    /// The file's directory entry; `None` when there is no such file or the
    /// directory could not be read.
    pub entry: Option<FileEntry>,
    /// The bytes read: the first `min(size, buf.len())` bytes of the file,
    /// in the caller's buffer; empty when nothing was read.
    pub raw: &'b [u8],
    /// What the channel said: [`FileState::Absent`] without the file,
    /// [`FileState::Unreadable`] when the directory or the file could not
    /// be read, else `raw` parsed ([`FileState::from_bytes`]).
    pub state: FileState,
}

/// How [`FwCfgReader::find_file`] walks the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lookup {
    /// Read every entry: validate all of them and reject duplicates of the
    /// wanted name anywhere. Costs the whole directory.
    #[default]
    FullScan,
    /// Stop at the first entry with the wanted name (entries before it are
    /// still validated). Cheaper with port I/O, where every byte is a VM exit.
    FirstMatch,
}

/// Reads fw_cfg through a transport.
#[derive(Debug)]
pub struct FwCfgReader<T> {
    transport: T,
    /// The ID item, once read (the DMA register's signature opens the
    /// reader without it).
    id: Option<u32>,
    lookup: Lookup,
    /// DMA was turned on by the DMA register's signature and no transfer
    /// has completed yet: the first failure falls back to the registers.
    dma_unconfirmed: bool,
}

/// Checks the `"QEMU"` signature item and reads the ID item through the
/// registers (DMA off), then tells the transport whether the ID advertises
/// DMA; returns the ID.
fn open_by_registers<T: FwCfgTransport>(transport: &mut T) -> Result<u32, ReadError> {
    transport.set_dma(false);
    let mut sig = [0u8; 4];
    transport.select(KEY_SIGNATURE);
    transport.read(&mut sig)?;
    if sig != SIGNATURE {
        return Err(ReadError::NoSignature { found: sig });
    }
    let mut id = [0u8; 4];
    transport.select(KEY_ID);
    transport.read(&mut id)?;
    let id = u32::from_le_bytes(id);
    transport.set_dma(id & ID_DMA != 0);
    Ok(id)
}

impl<T: FwCfgTransport> FwCfgReader<T> {
    /// Opens the device: makes sure it is fw_cfg and whether it does DMA.
    ///
    /// A transport that can do DMA first reads the DMA address register
    /// ([`FwCfgTransport::dma_signature`]). When it holds `"QEMU CFG"`,
    /// the device has the DMA interface (QEMU maps that register exactly
    /// when it sets the ID item's DMA bit, from the same `dma_enabled`
    /// flag; `docs/specs/fw_cfg.rst`: "If the DMA interface is available,
    /// then reading the DMA Address Register returns 0x51454d5520434647"),
    /// DMA is turned on and nothing else is read: the ID item is not
    /// needed to decide how to read, and [`read_id`](Self::read_id) reads
    /// it when asked. The first transfer then proves the capability: if it
    /// fails (an ERROR completion, or a control word that never clears
    /// within the poll limit), the reader falls back to the registers as
    /// below and retries that read once. Whenever the register holds
    /// anything else, the reader checks the `"QEMU"` signature item and
    /// reads the ID through the registers, and uses DMA only when the ID
    /// advertises it.
    ///
    /// Cost in VM exits: the DMA register's signature is one register read
    /// per 32-bit half by port I/O and one 64-bit read by MMIO; the
    /// signature item and the ID through the registers are 10 exits by
    /// port I/O and 4 by MMIO.
    pub fn new(mut transport: T) -> Result<Self, ReadError> {
        if transport.dma_signature() == Some(DMA_SIGNATURE) && transport.set_dma(true) {
            return Ok(FwCfgReader {
                transport,
                id: None,
                lookup: Lookup::default(),
                dma_unconfirmed: true,
            });
        }
        let id = open_by_registers(&mut transport)?;
        Ok(FwCfgReader {
            transport,
            id: Some(id),
            lookup: Lookup::default(),
            dma_unconfirmed: false,
        })
    }

    /// The ID item, when it has been read: always after opening through
    /// the registers, after [`read_id`](Self::read_id) when the DMA
    /// register opened the reader.
    pub fn id(&self) -> Option<u32> {
        self.id
    }

    /// Reads the ID item (once; later calls return the value read) and
    /// checks it against the transport: when DMA is in use and the ID does
    /// not advertise it, the reader goes back to the registers (signature
    /// item, ID, DMA off), as it does when the DMA register is missing.
    /// With DMA that is one transfer; call it right after
    /// [`new`](Self::new) to have the ID checked before any other read.
    pub fn read_id(&mut self) -> Result<u32, ReadError> {
        if let Some(id) = self.id {
            return Ok(id);
        }
        let mut id = [0u8; 4];
        self.read_item(KEY_ID, &mut id)?;
        // A fallback inside `read_item` read the ID by the registers.
        if let Some(id) = self.id {
            return Ok(id);
        }
        let id = u32::from_le_bytes(id);
        if self.transport.uses_dma() && id & ID_DMA == 0 {
            let id = open_by_registers(&mut self.transport)?;
            self.id = Some(id);
            return Ok(id);
        }
        self.id = Some(id);
        Ok(id)
    }

    /// Whether the device advertises DMA: the ID item's DMA bit, or, while
    /// the ID has not been read, the DMA register's signature that opened
    /// the reader.
    pub fn has_dma(&self) -> bool {
        self.id.is_none_or(|id| id & ID_DMA != 0)
    }

    /// Whether reads go through DMA (advertised *and* the transport can).
    pub fn uses_dma(&self) -> bool {
        self.transport.uses_dma()
    }

    /// Sets how [`find_file`](Self::find_file) walks the directory.
    pub fn set_lookup(&mut self, lookup: Lookup) {
        self.lookup = lookup;
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The transport, mutably.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Gives the transport back.
    pub fn into_transport(self) -> T {
        self.transport
    }

    /// Selects `key` and reads `buf.len()` bytes of it (zeros past its end).
    ///
    /// The first read of a reader that the DMA register opened is the
    /// first transfer: when it fails, the reader opens the device through
    /// the registers (see [`new`](Self::new)) and reads once more.
    pub fn read_item(&mut self, key: u16, buf: &mut [u8]) -> Result<(), ReadError> {
        self.transport.select(key);
        match self.transport.read(buf) {
            Ok(()) => {
                self.dma_unconfirmed = false;
                Ok(())
            }
            Err(_) if self.dma_unconfirmed => {
                self.dma_unconfirmed = false;
                self.id = Some(open_by_registers(&mut self.transport)?);
                self.transport.select(key);
                self.transport.read(buf)?;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Starts walking the directory: reads its count. The iterator yields
    /// each validated entry, stops at the count, and stops for good after
    /// the first error.
    pub fn files(&mut self) -> Result<Files<'_, T>, ReadError> {
        let count = self.read_directory_count()?;
        Ok(Files {
            reader: self,
            count,
            index: 0,
            done: false,
            prev: None,
        })
    }

    /// Selects the directory and reads its count, which must be at most
    /// `abi::FILE_SLOTS_MAX`.
    fn read_directory_count(&mut self) -> Result<u32, ReadError> {
        let mut count = [0u8; 4];
        self.read_item(KEY_FILE_DIR, &mut count)?;
        let count = u32::from_be_bytes(count);
        if count > u32::from(FILE_SLOTS_MAX) {
            return Err(ReadError::BadDirectoryCount { count });
        }
        Ok(count)
    }

    /// Finds a file by name (see [`Lookup`] and the module docs).
    pub fn find_file(&mut self, name: &str) -> Result<FileEntry, ReadError> {
        let name = wanted_name(name)?;
        let lookup = self.lookup;
        let mut found: Option<FileEntry> = None;
        for entry in self.files()? {
            let entry = entry?;
            if entry.name() == name {
                if found.is_some() {
                    return Err(ReadError::DuplicateFile { index: entry.index });
                }
                found = Some(entry);
                if lookup == Lookup::FirstMatch {
                    break;
                }
            }
        }
        found.ok_or(ReadError::NotFound)
    }

    /// Finds a file like [`find_file`](Self::find_file) (same validation,
    /// same [`Lookup`] rules, same errors), but reads the directory in
    /// chunks of as many whole entries as fit in `scratch` instead of one
    /// 64-byte entry at a time.
    ///
    /// The first read selects the directory and takes its count together
    /// with as many entries as one read moves for the cost of one
    /// ([`FwCfgTransport::read_batch`]) and `scratch` holds, at most
    /// [`DIRECTORY_HEAD_ENTRIES`]: 32 with DMA, 15 by `rep insb` (1024
    /// bytes), none with register reads, where the first read is the count
    /// alone. Only a directory larger than that (the count is never trusted
    /// to size a read) takes more reads, of whole entries, continuing where
    /// the first stopped.
    ///
    /// Port I/O and MMIO move the same bytes either way. With DMA every
    /// read is a transfer (one VM exit: the low half of the descriptor
    /// address, see [`DmaKick::kick_low`](crate::transport::DmaKick::kick_low)),
    /// so the streaming walk costs one transfer per entry, while this costs
    /// `1 + ceil((count - first) / (scratch.len() / 64))` transfers (just 1
    /// when `count <= first`), where `first = min(32, (scratch.len() - 4) /
    /// 64)` entries come with the count. With a scratch buffer (and a DMA
    /// buffer) of 64 KiB that is 1 transfer for any directory of up to 32
    /// files and 2 up to 1056; with 1 MiB, at most 2 for every possible
    /// directory. A scratch buffer shorter than the count and one entry
    /// falls back to the streaming walk.
    pub fn find_file_buffered(
        &mut self,
        name: &str,
        scratch: &mut [u8],
    ) -> Result<FileEntry, ReadError> {
        if scratch.len() < 4 + FILE_DIR_ENTRY_SIZE {
            return self.find_file(name);
        }
        // The first read takes the count and as many entries as one read
        // moves at the cost of one (`read_batch`): with register reads,
        // where every byte costs, the count alone, and the rest exactly the
        // entries it declares.
        let batch = self.transport.read_batch().min(scratch.len());
        let first = (batch.saturating_sub(4) / FILE_DIR_ENTRY_SIZE).min(DIRECTORY_HEAD_ENTRIES);
        let name = wanted_name(name)?;
        let head = &mut scratch[..4 + first * FILE_DIR_ENTRY_SIZE];
        self.read_item(KEY_FILE_DIR, head)?;
        let count = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        if count > u32::from(FILE_SLOTS_MAX) {
            return Err(ReadError::BadDirectoryCount { count });
        }
        let mut scan = Scan::new(name, self.lookup);
        // `first` entries fit in `scratch`, so the minimum fits in a usize.
        let in_head = count.min(u32::try_from(first).unwrap_or(u32::MAX)) as usize;
        if let Some(done) = scan.entries(&head[4..4 + in_head * FILE_DIR_ENTRY_SIZE])? {
            return Ok(done);
        }
        let per_chunk = scratch.len() / FILE_DIR_ENTRY_SIZE;
        while scan.index < count {
            // `per_chunk` entries fit in `scratch`, so this fits in a usize.
            let n = (count - scan.index).min(u32::try_from(per_chunk).unwrap_or(u32::MAX));
            let chunk = &mut scratch[..n as usize * FILE_DIR_ENTRY_SIZE];
            self.transport.read(chunk)?;
            if let Some(done) = scan.entries(chunk)? {
                return Ok(done);
            }
        }
        scan.found.ok_or(ReadError::NotFound)
    }

    /// Reads a whole file into `buf`; returns its size.
    pub fn read_entry(&mut self, entry: &FileEntry, buf: &mut [u8]) -> Result<usize, ReadError> {
        let size = entry.size as usize;
        if size > buf.len() {
            return Err(ReadError::FileTooLarge {
                size: entry.size,
                buf: buf.len(),
            });
        }
        self.read_item(entry.select, &mut buf[..size])?;
        Ok(size)
    }

    /// Reads the first `min(size, buf.len())` bytes of a file; returns how
    /// many.
    pub fn read_entry_prefix(
        &mut self,
        entry: &FileEntry,
        buf: &mut [u8],
    ) -> Result<usize, ReadError> {
        let n = buf.len().min(entry.size as usize);
        self.read_item(entry.select, &mut buf[..n])?;
        Ok(n)
    }

    /// Finds a file and reads it whole into `buf`; returns its size.
    pub fn read_file(&mut self, name: &str, buf: &mut [u8]) -> Result<usize, ReadError> {
        let entry = self.find_file(name)?;
        self.read_entry(&entry, buf)
    }

    /// Reads the fw_cfg channel: finds `etc/phys-bits-valid` (with the
    /// [`Lookup`] set; when one read carries more than the count, as with
    /// DMA or `rep insb`, by [`find_file_buffered`](Self::find_file_buffered)
    /// over a 3 KiB scratch buffer on the stack), reads its first
    /// `min(size, buf.len())` bytes into `buf` and parses them. Never fails and never allocates: a missing
    /// file is [`FileState::Absent`], any other failure
    /// [`FileState::Unreadable`]. A buffer of [`PHYS_BITS_FILE_READ_MAX`]
    /// bytes holds every version's fields.
    ///
    /// ```
    /// # use fw_cfg_guest::transport::{FwCfgTransport, TransportError};
    /// # struct NoFiles(u16, usize);
    /// # impl FwCfgTransport for NoFiles {
    /// #     fn select(&mut self, key: u16) { (self.0, self.1) = (key, 0); }
    /// #     fn read(&mut self, buf: &mut [u8]) -> Result<(), TransportError> {
    /// #         let item: &[u8] = match self.0 { 0 => b"QEMU", 1 => &[1, 0, 0, 0], _ => &[] };
    /// #         for b in buf { *b = item.get(self.1).copied().unwrap_or(0); self.1 += 1; }
    /// #         Ok(())
    /// #     }
    /// # }
    /// use fw_cfg_guest::policy::FileState;
    /// use fw_cfg_guest::reader::{FwCfgReader, PHYS_BITS_FILE_READ_MAX};
    ///
    /// let mut fw = FwCfgReader::new(NoFiles(0, 0))?;
    /// let mut buf = [0u8; PHYS_BITS_FILE_READ_MAX];
    /// let read = fw.read_phys_bits_file(&mut buf);
    /// assert_eq!((read.state, read.raw, read.entry), (FileState::Absent, &[][..], None));
    /// # Ok::<(), fw_cfg_guest::reader::ReadError>(())
    /// ```
    pub fn read_phys_bits_file<'b>(&mut self, buf: &'b mut [u8]) -> PhysBitsRead<'b> {
        let lookup = if self.transport.read_batch() > 4 {
            // One transfer (or one `rep insb`) for the count and up to 32
            // entries (15 by `rep insb`), instead of one read per entry;
            // 3 KiB of stack, aligned so that a string read of up to
            // 1 KiB at its start stays inside one page.
            let mut scratch = Scratch([0u8; 4 + DIRECTORY_HEAD_ENTRIES * FILE_DIR_ENTRY_SIZE]);
            self.find_file_buffered(PHYS_BITS_FILE_NAME, &mut scratch.0)
        } else {
            self.find_file(PHYS_BITS_FILE_NAME)
        };
        self.read_phys_bits_from_lookup(lookup, buf)
    }

    /// The second half of
    /// [`read_phys_bits_file`](Self::read_phys_bits_file), for a caller
    /// that looked `etc/phys-bits-valid` up itself (with
    /// [`find_file_buffered`](Self::find_file_buffered), say): turns the
    /// lookup's result into the channel's state, reading the file into
    /// `buf` when it was found.
    pub fn read_phys_bits_from_lookup<'b>(
        &mut self,
        lookup: Result<FileEntry, ReadError>,
        buf: &'b mut [u8],
    ) -> PhysBitsRead<'b> {
        let unread = |entry, state| PhysBitsRead {
            entry,
            raw: &[],
            state,
        };
        let entry = match lookup {
            Ok(e) => e,
            Err(ReadError::NotFound) => return unread(None, FileState::Absent),
            Err(e) => return unread(None, FileState::Unreadable(e)),
        };
        match self.read_entry_prefix(&entry, buf) {
            Ok(n) => {
                let raw = &buf[..n];
                PhysBitsRead {
                    entry: Some(entry),
                    raw,
                    state: FileState::from_bytes(raw),
                }
            }
            Err(e) => unread(Some(entry), FileState::Unreadable(e)),
        }
    }
}

/// The stack buffer of [`FwCfgReader::read_phys_bits_file`]'s buffered
/// lookup, aligned to [`STRING_READ_BATCH`] so that a string read of up to
/// that many bytes at its start never crosses a page.
#[repr(C, align(1024))]
struct Scratch([u8; 4 + DIRECTORY_HEAD_ENTRIES * FILE_DIR_ENTRY_SIZE]);

const _: () = assert!(core::mem::align_of::<Scratch>() == STRING_READ_BATCH);

/// The state of a buffered directory walk: validates entries in order,
/// rejects duplicates, remembers the wanted one.
struct Scan<'n> {
    name: &'n [u8],
    lookup: Lookup,
    index: u32,
    prev: Option<FileEntry>,
    found: Option<FileEntry>,
}

impl<'n> Scan<'n> {
    fn new(name: &'n [u8], lookup: Lookup) -> Self {
        Scan {
            name,
            lookup,
            index: 0,
            prev: None,
            found: None,
        }
    }

    /// Validates the whole entries in `raw`, the next ones of the
    /// directory; `Some` when [`Lookup::FirstMatch`] found the name.
    fn entries(&mut self, raw: &[u8]) -> Result<Option<FileEntry>, ReadError> {
        for raw in raw.chunks_exact(FILE_DIR_ENTRY_SIZE) {
            let index = self.index;
            let mut bytes = [0u8; FILE_DIR_ENTRY_SIZE];
            bytes.copy_from_slice(raw);
            let entry = FileEntry::from_raw(index, &FileDirEntry::from_be_bytes(&bytes))?;
            if self.prev.is_some_and(|p| p.name() == entry.name()) {
                return Err(ReadError::DuplicateFile { index });
            }
            if entry.name() == self.name {
                if self.found.is_some() {
                    return Err(ReadError::DuplicateFile { index });
                }
                self.found = Some(entry);
                if self.lookup == Lookup::FirstMatch {
                    return Ok(Some(entry));
                }
            }
            self.prev = Some(entry);
            self.index += 1;
        }
        Ok(None)
    }
}

/// The bytes of a name asked for, if a directory can hold it: not empty, at
/// most [`FILE_NAME_MAX_LEN`] bytes, no NUL.
fn wanted_name(name: &str) -> Result<&[u8], ReadError> {
    let name = name.as_bytes();
    match check_file_name(name) {
        Ok(()) => Ok(name),
        Err(_) => Err(ReadError::InvalidName),
    }
}

/// Iterator over the file directory, streaming one 64-byte entry at a time.
#[derive(Debug)]
pub struct Files<'r, T> {
    reader: &'r mut FwCfgReader<T>,
    count: u32,
    index: u32,
    done: bool,
    prev: Option<([u8; FILE_NAME_SIZE], u8)>,
}

impl<T> Files<'_, T> {
    /// The count the directory declared (at most `abi::FILE_SLOTS_MAX`).
    pub fn declared_count(&self) -> u32 {
        self.count
    }
}

impl<T: FwCfgTransport> Iterator for Files<'_, T> {
    type Item = Result<FileEntry, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.index >= self.count {
            return None;
        }
        let index = self.index;
        self.index += 1;
        let mut raw = [0u8; FILE_DIR_ENTRY_SIZE];
        let result = self
            .reader
            .transport
            .read(&mut raw)
            .map_err(ReadError::from)
            .and_then(|()| FileEntry::from_raw(index, &FileDirEntry::from_be_bytes(&raw)))
            .and_then(|e| {
                if self
                    .prev
                    .is_some_and(|(n, l)| &n[..usize::from(l)] == e.name())
                {
                    Err(ReadError::DuplicateFile { index })
                } else {
                    Ok(e)
                }
            });
        match &result {
            Ok(e) => self.prev = Some((e.name, e.name_len)),
            Err(_) => self.done = true,
        }
        Some(result)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.done {
            (0, Some(0))
        } else {
            (0, Some((self.count - self.index) as usize))
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::abi::KEY_ARCH_LOCAL;

    /// An in-memory device: items are byte slices; the directory is built
    /// from `files` (or replaced by `raw_dir`).
    pub(crate) struct MemDev<'a> {
        pub sig: [u8; 4],
        pub id: u32,
        pub dir: &'a [u8],
        pub files: &'a [(u16, &'a [u8])],
        pub cur: u16,
        pub off: usize,
        pub bytes_read: usize,
    }

    impl<'a> MemDev<'a> {
        pub fn new(dir: &'a [u8], files: &'a [(u16, &'a [u8])]) -> Self {
            MemDev {
                sig: SIGNATURE,
                id: 1,
                dir,
                files,
                cur: 0,
                off: 0,
                bytes_read: 0,
            }
        }
    }

    impl FwCfgTransport for MemDev<'_> {
        fn select(&mut self, key: u16) {
            self.cur = key;
            self.off = 0;
        }
        fn read(&mut self, buf: &mut [u8]) -> Result<(), TransportError> {
            let id = self.id.to_le_bytes();
            let item: &[u8] = match self.cur {
                0 => &self.sig,
                1 => &id,
                0x19 => self.dir,
                k => self
                    .files
                    .iter()
                    .find(|(s, _)| *s == k)
                    .map(|(_, b)| *b)
                    .unwrap_or(&[]),
            };
            for b in buf {
                *b = item.get(self.off).copied().unwrap_or(0);
                self.off += 1;
                self.bytes_read += 1;
            }
            Ok(())
        }
    }

    pub(crate) fn entry(size: u32, select: u16, name: &[u8]) -> [u8; 64] {
        let mut n = [0u8; FILE_NAME_SIZE];
        n[..name.len()].copy_from_slice(name);
        FileDirEntry {
            size,
            select,
            reserved: 0,
            name: n,
        }
        .to_be_bytes()
    }

    /// Builds a directory with `count` in the header and the given entries.
    pub(crate) fn dir<const N: usize>(count: u32, entries: &[[u8; 64]]) -> [u8; N] {
        let mut d = [0u8; N];
        d[..4].copy_from_slice(&count.to_be_bytes());
        for (i, e) in entries.iter().enumerate() {
            d[4 + i * 64..4 + (i + 1) * 64].copy_from_slice(e);
        }
        d
    }

    const PB: &[u8] = &[1, 1, 39, 37, 0, 0, 0, 0];

    #[test]
    fn finds_and_reads_files() {
        let d: [u8; 4 + 3 * 64] = dir(
            3,
            &[
                entry(3, 0x20, b"bootorder"),
                entry(8, 0x21, PHYS_BITS_FILE_NAME.as_bytes()),
                entry(2, 0x22, b"etc/smbios"),
            ],
        );
        let files: &[(u16, &[u8])] = &[(0x20, b"a\nb"), (0x21, PB), (0x22, b"xy")];
        let mut r = FwCfgReader::new(MemDev::new(&d, files)).unwrap();
        assert_eq!(r.id(), Some(1));
        assert!(!r.has_dma() && !r.uses_dma());
        let mut buf = [0u8; 16];
        assert_eq!(r.read_file(PHYS_BITS_FILE_NAME, &mut buf), Ok(8));
        assert_eq!(&buf[..8], PB);
        let e = r.find_file("bootorder").unwrap();
        assert_eq!((e.size, e.select, e.index), (3, 0x20, 0));
        assert_eq!(e.name_str(), Some("bootorder"));
        assert_eq!(r.find_file("nope"), Err(ReadError::NotFound));
        let mut small = [0u8; 4];
        assert_eq!(
            r.read_file(PHYS_BITS_FILE_NAME, &mut small),
            Err(ReadError::FileTooLarge { size: 8, buf: 4 })
        );
        let e = r.find_file(PHYS_BITS_FILE_NAME).unwrap();
        assert_eq!(r.read_entry_prefix(&e, &mut small), Ok(4));
        assert_eq!(small, [1, 1, 39, 37]);
        let names: usize = r.files().unwrap().filter(|e| e.is_ok()).count();
        assert_eq!(names, 3);
    }

    #[test]
    fn buffered_lookup_matches_the_streaming_one() {
        let d: [u8; 4 + 3 * 64] = dir(
            3,
            &[
                entry(3, 0x20, b"bootorder"),
                entry(8, 0x21, PHYS_BITS_FILE_NAME.as_bytes()),
                entry(2, 0x22, b"etc/smbios"),
            ],
        );
        let files: &[(u16, &[u8])] = &[(0x20, b"a\nb"), (0x21, PB), (0x22, b"xy")];
        // Chunks of 0 (streaming fallback), 1, 2 and more entries.
        for scratch_len in [10usize, 64, 130, 4096] {
            let mut scratch = [0u8; 4096];
            let scratch = &mut scratch[..scratch_len];
            for lookup in [Lookup::FullScan, Lookup::FirstMatch] {
                let mut r = FwCfgReader::new(MemDev::new(&d, files)).unwrap();
                r.set_lookup(lookup);
                for name in ["bootorder", PHYS_BITS_FILE_NAME, "etc/smbios", "nope", ""] {
                    let want = r.find_file(name);
                    assert_eq!(r.find_file_buffered(name, scratch), want, "{name}");
                }
            }
        }
        // Errors are the streaming walk's.
        let dup: [u8; 4 + 2 * 64] = dir(2, &[entry(1, 0x20, b"a"), entry(1, 0x21, b"a")]);
        let mut r = FwCfgReader::new(MemDev::new(&dup, &[])).unwrap();
        let mut scratch = [0u8; 256];
        assert_eq!(
            r.find_file_buffered("a", &mut scratch),
            Err(ReadError::DuplicateFile { index: 1 })
        );
        let short: [u8; 4 + 64] = dir(2, &[entry(1, 0x20, b"a")]);
        let mut r = FwCfgReader::new(MemDev::new(&short, &[])).unwrap();
        assert_eq!(
            r.find_file_buffered("b", &mut scratch),
            Err(ReadError::DirectoryTruncated { index: 1 })
        );
        let mut huge = [0u8; 4];
        huge.copy_from_slice(&u32::MAX.to_be_bytes());
        let mut r = FwCfgReader::new(MemDev::new(&huge, &[])).unwrap();
        assert_eq!(
            r.find_file_buffered("b", &mut scratch),
            Err(ReadError::BadDirectoryCount { count: u32::MAX })
        );
    }

    #[test]
    fn buffered_lookup_reads_the_directory_in_few_reads() {
        // 40 entries: with DMA the count and 16 entries, then 2 reads of
        // 16; without, the count, then 3 reads.
        let mut d = [0u8; 4 + 40 * 64];
        d[..4].copy_from_slice(&40u32.to_be_bytes());
        let mut names = [[0u8; 8]; 40];
        for (i, n) in names.iter_mut().enumerate() {
            *n = *b"file-000";
            n[5] = b'0' + (i / 100) as u8;
            n[6] = b'0' + (i / 10 % 10) as u8;
            n[7] = b'0' + (i % 10) as u8;
            d[4 + i * 64..4 + (i + 1) * 64].copy_from_slice(&entry(1, 0x20 + i as u16, n));
        }
        // Counts reads; `.2` says whether it is "DMA" (reads of any size
        // cost the same).
        struct Counting<'a>(MemDev<'a>, usize, usize);
        impl FwCfgTransport for Counting<'_> {
            fn select(&mut self, key: u16) {
                self.0.select(key)
            }
            fn read(&mut self, buf: &mut [u8]) -> Result<(), TransportError> {
                self.1 += 1;
                self.0.read(buf)
            }
            fn uses_dma(&self) -> bool {
                self.2 == usize::MAX
            }
            fn read_batch(&self) -> usize {
                self.2
            }
        }
        // (read batch, reads with a 16-entry scratch, reads with one for
        // all 40): DMA's first read takes `DIRECTORY_HEAD_ENTRIES` (32),
        // the second the other 8; `rep insb`'s first the count and 15
        // entries (1024 bytes at most); register reads the count alone.
        for (batch, chunked, whole) in [(usize::MAX, 3, 2), (STRING_READ_BATCH, 3, 2), (1, 4, 2)] {
            let mut r = FwCfgReader::new(Counting(MemDev::new(&d, &[]), 0, batch)).unwrap();
            let before = r.transport().1;
            let mut scratch = [0u8; 16 * 64 + 10];
            let e = r.find_file_buffered("file-039", &mut scratch).unwrap();
            assert_eq!((e.index, e.select), (39, 0x20 + 39));
            assert_eq!(r.transport().1 - before, chunked, "batch {batch}");
            // A buffer that holds it all: the bytes of the directory, no
            // more.
            let before = r.transport().1;
            let before_bytes = r.transport().0.bytes_read;
            let mut scratch = [0u8; 4 + 40 * 64];
            let e = r.find_file_buffered("file-000", &mut scratch).unwrap();
            assert_eq!(e.index, 0);
            assert_eq!(r.transport().1 - before, whole, "batch {batch}");
            assert_eq!(r.transport().0.bytes_read - before_bytes, 4 + 40 * 64);
        }
    }

    #[test]
    fn first_match_reads_less() {
        let d: [u8; 4 + 3 * 64] = dir(
            3,
            &[
                entry(3, 0x20, b"a"),
                entry(8, 0x21, b"b"),
                entry(2, 0x22, b"c"),
            ],
        );
        let mut r = FwCfgReader::new(MemDev::new(&d, &[])).unwrap();
        let before = r.transport().bytes_read;
        r.find_file("a").unwrap();
        let full = r.transport().bytes_read - before;
        r.set_lookup(Lookup::FirstMatch);
        let before = r.transport().bytes_read;
        r.find_file("a").unwrap();
        let first = r.transport().bytes_read - before;
        assert_eq!(full, 4 + 3 * 64);
        assert_eq!(first, 4 + 64);
    }

    #[test]
    fn signature_and_names_are_checked() {
        let mut dev = MemDev::new(&[0, 0, 0, 0], &[]);
        dev.sig = *b"QEMV";
        assert_eq!(
            FwCfgReader::new(dev).err(),
            Some(ReadError::NoSignature { found: *b"QEMV" })
        );
        let mut r = FwCfgReader::new(MemDev::new(&[0, 0, 0, 0], &[])).unwrap();
        assert_eq!(r.find_file(""), Err(ReadError::InvalidName));
        assert_eq!(r.find_file("a\0b"), Err(ReadError::InvalidName));
        let long = core::str::from_utf8(&[b'x'; 56]).unwrap();
        assert_eq!(r.find_file(long), Err(ReadError::InvalidName));
        assert_eq!(r.find_file(&long[..55]), Err(ReadError::NotFound));
    }

    #[test]
    fn hostile_directories() {
        let cases: &[(u32, &[[u8; 64]], ReadError)] = &[
            (
                0xffff_ffff,
                &[],
                ReadError::BadDirectoryCount { count: 0xffff_ffff },
            ),
            (
                u32::from(FILE_SLOTS_MAX) + 1,
                &[],
                ReadError::BadDirectoryCount { count: 0x3fe1 },
            ),
            (
                2,
                &[entry(1, 0x20, b"z")],
                ReadError::DirectoryTruncated { index: 1 },
            ),
            (
                1,
                &[entry(1, 0x20, &[b'n'; 56])],
                ReadError::UnterminatedName { index: 0 },
            ),
            (1, &[entry(1, 0x20, b"")], ReadError::EmptyName { index: 0 }),
            (
                1,
                &[entry(1, 0, b"x")],
                ReadError::BadSelector {
                    index: 0,
                    select: 0,
                },
            ),
            (
                1,
                &[entry(1, 0x19, b"x")],
                ReadError::BadSelector {
                    index: 0,
                    select: 0x19,
                },
            ),
            (
                1,
                &[entry(1, 0x4000, b"x")],
                ReadError::BadSelector {
                    index: 0,
                    select: 0x4000,
                },
            ),
            (
                1,
                &[entry(1, KEY_ARCH_LOCAL, b"x")],
                ReadError::BadSelector {
                    index: 0,
                    select: 0x8000,
                },
            ),
            (
                2,
                &[entry(1, 0x20, b"x"), entry(1, 0x21, b"x")],
                ReadError::DuplicateFile { index: 1 },
            ),
            (
                3,
                &[
                    entry(1, 0x20, b"x"),
                    entry(1, 0x21, b"y"),
                    entry(1, 0x22, b"x"),
                ],
                ReadError::DuplicateFile { index: 2 },
            ),
        ];
        for (count, entries, want) in cases {
            let d: [u8; 4 + 4 * 64] = dir(*count, entries);
            let mut r = FwCfgReader::new(MemDev::new(&d, &[])).unwrap();
            assert_eq!(r.find_file("x"), Err(*want), "count {count}");
        }
    }

    #[test]
    fn phys_bits_file_raw_bytes_and_state() {
        use crate::abi::{PhysBitsFile, PhysBitsFileError};
        let pb = PhysBitsFile::new(true, 39, 0).to_bytes();
        let long = [2, 0, 40, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        let short = [1, 1, 39];
        let v2 = PhysBitsFile {
            version: 2,
            valid: false,
            phys_bits: 40,
            guest_phys_bits: 0,
            backed_bits: 0,
        };
        // (file bytes, buffer size, bytes read, state)
        let cases: &[(&[u8], usize, usize, FileState)] = &[
            (
                &pb,
                64,
                8,
                FileState::Present(PhysBitsFile::new(true, 39, 0)),
            ),
            (&long, 64, 18, FileState::Present(v2)),
            // A buffer shorter than the file: its prefix is parsed.
            (&long, 8, 8, FileState::Present(v2)),
            (
                &pb,
                5,
                5,
                FileState::Corrupt(PhysBitsFileError::TooShort(5)),
            ),
            (
                &short,
                64,
                3,
                FileState::Corrupt(PhysBitsFileError::TooShort(3)),
            ),
        ];
        for (bytes, buf_len, n, want) in cases {
            let d: [u8; 4 + 64] = dir(
                1,
                &[entry(
                    bytes.len() as u32,
                    0x20,
                    PHYS_BITS_FILE_NAME.as_bytes(),
                )],
            );
            let files: &[(u16, &[u8])] = &[(0x20, bytes)];
            let mut r = FwCfgReader::new(MemDev::new(&d, files)).unwrap();
            let mut buf = [0xeeu8; 64];
            let got = r.read_phys_bits_file(&mut buf[..*buf_len]);
            assert_eq!(got.state, *want, "{bytes:?} into {buf_len}");
            assert_eq!(got.raw, &bytes[..*n]);
            let e = got.entry.expect("entry");
            assert_eq!((e.size, e.select), (bytes.len() as u32, 0x20));
            assert_eq!(buf[*n..], [0xee; 64][*n..], "nothing past the bytes read");
        }
        let d: [u8; 4 + 64] = dir(1, &[entry(8, 0x20, b"other")]);
        let mut r = FwCfgReader::new(MemDev::new(&d, &[])).unwrap();
        let mut buf = [0u8; PHYS_BITS_FILE_READ_MAX];
        let got = r.read_phys_bits_file(&mut buf);
        assert_eq!(
            (got.state, got.raw, got.entry),
            (FileState::Absent, &[][..], None)
        );
        let d: [u8; 4 + 64] = dir(2, &[entry(8, 0x20, b"other")]);
        let mut r = FwCfgReader::new(MemDev::new(&d, &[])).unwrap();
        let got = r.read_phys_bits_file(&mut buf);
        assert_eq!(
            got.state,
            FileState::Unreadable(ReadError::DirectoryTruncated { index: 1 })
        );
        assert_eq!((got.raw, got.entry), (&[][..], None));
        // The buffered lookup's result gives the same as the streaming one.
        let d: [u8; 4 + 64] = dir(1, &[entry(8, 0x20, PHYS_BITS_FILE_NAME.as_bytes())]);
        let pb = PhysBitsFile::new(true, 39, 0).to_bytes();
        let files: &[(u16, &[u8])] = &[(0x20, &pb)];
        let mut r = FwCfgReader::new(MemDev::new(&d, files)).unwrap();
        let mut scratch = [0u8; 256];
        let lookup = r.find_file_buffered(PHYS_BITS_FILE_NAME, &mut scratch);
        let mut buf2 = [0u8; PHYS_BITS_FILE_READ_MAX];
        let buffered = r.read_phys_bits_from_lookup(lookup, &mut buf2);
        assert_eq!(buffered, r.read_phys_bits_file(&mut buf));
        assert_eq!(buffered.raw, &pb);
        // Found, but the read fails: the entry is known, no bytes are.
        struct FailFile<'a>(MemDev<'a>);
        impl FwCfgTransport for FailFile<'_> {
            fn select(&mut self, key: u16) {
                self.0.select(key)
            }
            fn read(&mut self, buf: &mut [u8]) -> Result<(), TransportError> {
                if self.0.cur == 0x20 {
                    return Err(TransportError::DmaPoisoned);
                }
                self.0.read(buf)
            }
        }
        let d: [u8; 4 + 64] = dir(1, &[entry(8, 0x20, PHYS_BITS_FILE_NAME.as_bytes())]);
        let mut r = FwCfgReader::new(FailFile(MemDev::new(&d, &[]))).unwrap();
        let got = r.read_phys_bits_file(&mut buf);
        assert_eq!(
            got.state,
            FileState::Unreadable(ReadError::Transport(TransportError::DmaPoisoned))
        );
        assert_eq!(got.raw, &[][..]);
        assert_eq!(got.entry.map(|e| (e.size, e.select)), Some((8, 0x20)));
    }

    /// [`MemDev`] behind a DMA register: reads while DMA is on are
    /// "transfers", the first `fail` of which fail.
    struct DmaDev<'a> {
        dev: MemDev<'a>,
        on: bool,
        fail: u32,
        transfers: u32,
        register_reads: u32,
    }

    impl<'a> DmaDev<'a> {
        fn new(dev: MemDev<'a>, fail: u32) -> Self {
            DmaDev {
                dev,
                on: false,
                fail,
                transfers: 0,
                register_reads: 0,
            }
        }
    }

    impl FwCfgTransport for DmaDev<'_> {
        fn select(&mut self, key: u16) {
            self.dev.select(key)
        }
        fn read(&mut self, buf: &mut [u8]) -> Result<(), TransportError> {
            if self.on {
                self.transfers += 1;
                if self.fail > 0 {
                    self.fail -= 1;
                    return Err(TransportError::DmaError {
                        control: crate::abi::DMA_CTL_ERROR,
                    });
                }
            } else {
                self.register_reads += 1;
            }
            self.dev.read(buf)
        }
        fn set_dma(&mut self, on: bool) -> bool {
            self.on = on;
            on
        }
        fn uses_dma(&self) -> bool {
            self.on
        }
        fn read_batch(&self) -> usize {
            if self.on { usize::MAX } else { 1 }
        }
        fn dma_signature(&mut self) -> Option<u64> {
            Some(DMA_SIGNATURE)
        }
    }

    #[test]
    fn dma_register_opens_without_the_id_and_the_first_transfer_confirms() {
        let d: [u8; 4 + 64] = dir(1, &[entry(8, 0x20, PHYS_BITS_FILE_NAME.as_bytes())]);
        let files: &[(u16, &[u8])] = &[(0x20, PB)];
        let with_id = |id| {
            let mut m = MemDev::new(&d, files);
            m.id = id;
            m
        };
        // Open: nothing read; the decision is the directory and the file.
        let mut r = FwCfgReader::new(DmaDev::new(with_id(3), 0)).unwrap();
        assert_eq!((r.id(), r.has_dma(), r.uses_dma()), (None, true, true));
        assert_eq!(r.transport().transfers, 0);
        let mut buf = [0u8; PHYS_BITS_FILE_READ_MAX];
        assert_eq!(r.read_phys_bits_file(&mut buf).raw, PB);
        assert_eq!(r.transport().transfers, 2);
        // The ID when asked: one transfer, then cached.
        assert_eq!(r.read_id(), Ok(3));
        assert_eq!(r.read_id(), Ok(3));
        assert_eq!(
            (r.transport().transfers, r.transport().register_reads),
            (3, 0)
        );

        // The first transfer fails: signature and ID by the registers, then
        // the read again (by DMA: the ID advertises it).
        let mut r = FwCfgReader::new(DmaDev::new(with_id(3), 1)).unwrap();
        assert_eq!(r.read_phys_bits_file(&mut buf).raw, PB);
        assert_eq!(r.id(), Some(3));
        let t = r.transport();
        assert_eq!((t.transfers, t.register_reads, t.on), (3, 2, true));
        // A later failure is reported, not retried.
        let mut r = FwCfgReader::new(DmaDev::new(with_id(3), 0)).unwrap();
        r.read_id().unwrap();
        r.transport_mut().fail = 1;
        assert_eq!(
            r.read_phys_bits_file(&mut buf).state,
            FileState::Unreadable(ReadError::Transport(TransportError::DmaError {
                control: crate::abi::DMA_CTL_ERROR
            }))
        );
        // A failed first transfer and no signature item: no device.
        let mut m = with_id(3);
        m.sig = *b"QEMV";
        let mut r = FwCfgReader::new(DmaDev::new(m, 1)).unwrap();
        assert_eq!(
            r.find_file_buffered(PHYS_BITS_FILE_NAME, &mut [0u8; 256]),
            Err(ReadError::NoSignature { found: *b"QEMV" })
        );

        // A DMA register with an ID that denies DMA: back to the registers.
        let mut r = FwCfgReader::new(DmaDev::new(with_id(1), 0)).unwrap();
        assert_eq!(r.read_id(), Ok(1));
        assert_eq!((r.has_dma(), r.uses_dma()), (false, false));
        let before = r.transport().transfers;
        assert_eq!(r.read_phys_bits_file(&mut buf).raw, PB);
        assert_eq!(r.transport().transfers, before);
    }

    #[test]
    fn iterator_stops_after_error() {
        let d: [u8; 4 + 3 * 64] = dir(3, &[entry(1, 0x20, b"a"), entry(1, 0, b"b")]);
        let mut r = FwCfgReader::new(MemDev::new(&d, &[])).unwrap();
        let mut it = r.files().unwrap();
        assert_eq!(it.declared_count(), 3);
        assert!(it.next().unwrap().is_ok());
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
    }
}
