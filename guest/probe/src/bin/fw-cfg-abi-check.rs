// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `fw-cfg-abi-check NAME...`: exercises the fw_cfg ABI from Linux
//! userspace (root) and prints one `key value` line per result, so that
//! two VMMs' outputs can be compared byte for byte.
//!
//! Port I/O goes through `ioperm(0x510, 12)`; DMA through one locked page
//! whose physical address comes from `/proc/self/pagemap`. Only the files
//! named on the command line are reported (in directory order, then one
//! block per name in argument order), so files only one VMM serves do not
//! change the output. Lines:
//!
//! - `signature`, `id`: the first 4 bytes of keys 0 and 1 (port I/O);
//! - `dma-register`: the 8 bytes of the DMA address register (`QEMU CFG`);
//! - `write-bit-ignored`: key 0 with bit 14 set, 4 bytes;
//! - `unknown-key`: key 0x3ffe (unused), 4 bytes, by port I/O and by DMA
//!   (with the control word read back);
//! - `dir NAME SIZE`: the named files in directory order;
//! - `pio NAME HEX`: up to 300 bytes of the file and 8 past its end;
//! - `dma NAME FNV HEX`: FNV-1a 64 of the whole file plus 16 bytes past
//!   its end, read by DMA in pieces, and the hex of its last 24 bytes;
//! - `dma-skip NAME HEX`: 8 bytes read by DMA after a DMA SKIP of 100;
//! - `dma-write NAME CONTROL`: the control word after a DMA write of one
//!   byte to the (read-only) file.
//!
//! Exit codes: 0 done, 2 usage or no privilege (`ioperm`, `pagemap`),
//! 3 no fw_cfg signature, a missing name, or a DMA transfer that did not
//! complete.

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn main() {
    std::process::exit(abi::run(std::env::args().skip(1).collect()));
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
fn main() {
    eprintln!("fw-cfg-abi-check: only x86-64 Linux is supported");
    std::process::exit(2);
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod abi {
    use std::fmt::Write as _;
    use std::io::{Read as _, Seek as _, SeekFrom};
    use std::ptr::NonNull;

    use fw_cfg_guest::abi::{
        DMA_ACCESS_SIZE, DMA_CTL_ERROR, DMA_CTL_READ, DMA_CTL_SKIP, DMA_CTL_WRITE, DmaAccess,
        FILE_DIR_ENTRY_SIZE, FileDirEntry, KEY_FILE_DIR, KEY_ID, KEY_SIGNATURE, KEY_WRITE_CHANNEL,
        PIO_SELECTOR_PORT, PIO_WINDOW_SIZE, SIGNATURE,
    };
    use fw_cfg_guest::transport::{DmaKick, FwCfgTransport, PortIo, X86PortBus};

    /// The page size this program assumes (x86-64).
    const PAGE: usize = 4096;
    /// Where the data starts in the page (after the descriptor).
    const DATA_OFFSET: usize = 64;
    /// The largest piece one DMA transfer moves.
    const PIECE: usize = PAGE - DATA_OFFSET;
    /// A key no VMM in the comparison serves.
    const UNKNOWN_KEY: u16 = 0x3ffe;
    /// Bytes of each file read by port I/O.
    const PIO_BYTES: u32 = 300;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    /// Why the check stopped.
    #[derive(Debug, thiserror::Error)]
    enum CheckError {
        #[error("ioperm(0x510, 12) failed: {0} (needs root)")]
        Ioperm(#[source] std::io::Error),
        #[error("cannot lock a page for DMA: {0}")]
        Page(#[source] std::io::Error),
        #[error("cannot read /proc/self/pagemap: {0}")]
        Pagemap(#[source] std::io::Error),
        #[error("the page's frame is not visible in /proc/self/pagemap (needs root)")]
        NoFrame,
        #[error("no fw_cfg signature at port 0x510")]
        NoSignature,
        #[error("no fw_cfg file {0:?}")]
        NoFile(String),
        #[error("a DMA transfer did not complete (control word {0:#010x})")]
        DmaIncomplete(u32),
    }

    impl CheckError {
        fn exit_code(&self) -> i32 {
            match self {
                CheckError::Ioperm(_)
                | CheckError::Page(_)
                | CheckError::Pagemap(_)
                | CheckError::NoFrame => 2,
                _ => 3,
            }
        }
    }

    /// One locked, zeroed page and its physical address.
    struct Page {
        ptr: NonNull<u8>,
        phys: u64,
    }

    impl Page {
        fn new() -> Result<Page, CheckError> {
            // SAFETY: an anonymous private mapping of one page; no existing
            // memory is affected.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    PAGE,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                return Err(CheckError::Page(std::io::Error::last_os_error()));
            }
            // SAFETY: `p` is the page just mapped; locking keeps its frame.
            if unsafe { libc::mlock(p, PAGE) } != 0 {
                return Err(CheckError::Page(std::io::Error::last_os_error()));
            }
            let ptr = NonNull::new(p.cast::<u8>()).ok_or(CheckError::NoFrame)?;
            // SAFETY: the page is mapped writable and owned by this value;
            // the write makes the kernel give it its own frame.
            unsafe { ptr.as_ptr().write_volatile(0) };
            let phys = frame_of(ptr.as_ptr() as u64)? * PAGE as u64;
            Ok(Page { ptr, phys })
        }

        /// Runs `d` (its address relative to the page's data) and returns
        /// the control word read back and the page's data bytes.
        fn transfer(
            &mut self,
            io: &mut PortIo<X86PortBus>,
            d: DmaAccess,
        ) -> Result<(u32, Vec<u8>), CheckError> {
            let len = (d.length as usize).min(PIECE);
            let desc = DmaAccess {
                length: len as u32,
                address: self.phys + DATA_OFFSET as u64,
                ..d
            };
            let bytes = desc.to_be_bytes();
            let base = self.ptr.as_ptr();
            // SAFETY: the page is ours, mapped, locked and `PAGE` bytes
            // long; the descriptor and the data area fit in it. No
            // reference to it exists.
            unsafe {
                std::ptr::write_bytes(base.add(DATA_OFFSET), 0xa5, PIECE);
                for (i, b) in bytes.iter().enumerate() {
                    base.add(i).write_volatile(*b);
                }
                // The descriptor is at the page's start, the data after
                // it, both inside the locked page: the memory `kick`
                // hands over. The transfer completes during the port
                // write (the device is synchronous).
                io.kick(self.phys);
            }
            let mut back = [0u8; DMA_ACCESS_SIZE];
            let mut data = vec![0u8; len];
            // SAFETY: as above; the device is done once `kick` returned.
            unsafe {
                for (i, b) in back.iter_mut().enumerate() {
                    *b = base.add(i).read_volatile();
                }
                for (i, b) in data.iter_mut().enumerate() {
                    *b = base.add(DATA_OFFSET + i).read_volatile();
                }
            }
            Ok((DmaAccess::from_be_bytes(&back).control, data))
        }
    }

    /// The page frame number of virtual address `va`.
    fn frame_of(va: u64) -> Result<u64, CheckError> {
        let mut f = std::fs::File::open("/proc/self/pagemap").map_err(CheckError::Pagemap)?;
        f.seek(SeekFrom::Start(va / PAGE as u64 * 8))
            .map_err(CheckError::Pagemap)?;
        let mut e = [0u8; 8];
        f.read_exact(&mut e).map_err(CheckError::Pagemap)?;
        let e = u64::from_le_bytes(e);
        let pfn = e & ((1 << 55) - 1);
        if e >> 63 == 0 || pfn == 0 {
            return Err(CheckError::NoFrame);
        }
        Ok(pfn)
    }

    fn pio(io: &mut PortIo<X86PortBus>, key: u16, n: usize) -> Vec<u8> {
        let mut b = vec![0u8; n];
        io.select(key);
        // Port reads cannot fail.
        let _ = io.read(&mut b);
        b
    }

    /// The directory by port I/O: (name, size, key).
    fn directory(io: &mut PortIo<X86PortBus>) -> Vec<(String, u32, u16)> {
        let count = u32::from_be_bytes(pio(io, KEY_FILE_DIR, 4).try_into().unwrap_or([0; 4]));
        let mut out = Vec::new();
        for _ in 0..count.min(0x3fe0) {
            let mut e = [0u8; FILE_DIR_ENTRY_SIZE];
            let _ = io.read(&mut e);
            let e = FileDirEntry::from_be_bytes(&e);
            let name = String::from_utf8_lossy(e.name_bytes().unwrap_or(b"")).into_owned();
            out.push((name, e.size, e.select));
        }
        out
    }

    /// Checks a DMA control word: complete (0) or failed (ERROR only).
    fn completed(control: u32) -> Result<u32, CheckError> {
        if control & !DMA_CTL_ERROR != 0 {
            return Err(CheckError::DmaIncomplete(control));
        }
        Ok(control)
    }

    /// FNV-1a 64 of `len` bytes of `key` read by DMA, and the last 24.
    fn dma_file(
        io: &mut PortIo<X86PortBus>,
        page: &mut Page,
        key: u16,
        len: u64,
    ) -> Result<String, CheckError> {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut tail = Vec::new();
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(PIECE as u64) as u32;
            let d = if done == 0 {
                DmaAccess::select(key, DMA_CTL_READ, n, 0)
            } else {
                DmaAccess {
                    control: DMA_CTL_READ,
                    length: n,
                    address: 0,
                }
            };
            let (c, data) = page.transfer(io, d)?;
            completed(c)?;
            for b in &data {
                h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
            }
            tail.extend_from_slice(&data);
            let keep = tail.len().saturating_sub(24);
            tail.drain(..keep);
            done += u64::from(n);
        }
        Ok(format!("{h:016x} {}", hex(&tail)))
    }

    fn file_lines(
        io: &mut PortIo<X86PortBus>,
        page: &mut Page,
        name: &str,
        size: u32,
        key: u16,
    ) -> Result<String, CheckError> {
        let mut o = String::new();
        let n = size.min(PIO_BYTES) as usize + 8;
        let _ = writeln!(o, "pio {name} {}", hex(&pio(io, key, n)));
        let dma = dma_file(io, page, key, u64::from(size) + 16)?;
        let _ = writeln!(o, "dma {name} {dma}");
        completed(
            page.transfer(io, DmaAccess::select(key, DMA_CTL_SKIP, 100, 0))?
                .0,
        )?;
        let read = DmaAccess {
            control: DMA_CTL_READ,
            length: 8,
            address: 0,
        };
        let (c, data) = page.transfer(io, read)?;
        let _ = writeln!(o, "dma-skip {name} {:08x} {}", completed(c)?, hex(&data));
        let (c, _) = page.transfer(io, DmaAccess::select(key, DMA_CTL_WRITE, 1, 0))?;
        let _ = writeln!(o, "dma-write {name} {:08x}", completed(c)?);
        Ok(o)
    }

    fn check(names: &[String]) -> Result<String, CheckError> {
        // SAFETY: `ioperm` only changes this process's I/O permission bitmap.
        let rc = unsafe {
            libc::ioperm(
                libc::c_ulong::from(PIO_SELECTOR_PORT),
                libc::c_ulong::from(PIO_WINDOW_SIZE),
                1,
            )
        };
        if rc != 0 {
            return Err(CheckError::Ioperm(std::io::Error::last_os_error()));
        }
        let mut page = Page::new()?;
        // SAFETY: `ioperm` granted the window; this program is the only
        // user of the ports (run it without the kernel driver reading),
        // and DMA is kicked only with `page`, which is locked and ours.
        let mut io = unsafe { PortIo::new() };
        let mut o = String::new();
        let sig = pio(&mut io, KEY_SIGNATURE, 4);
        if sig != SIGNATURE {
            return Err(CheckError::NoSignature);
        }
        let _ = writeln!(o, "signature {}", hex(&sig));
        let _ = writeln!(o, "id {}", hex(&pio(&mut io, KEY_ID, 4)));
        let _ = writeln!(o, "dma-register {:016x}", io.read_dma_signature());
        let bit14 = pio(&mut io, KEY_SIGNATURE | KEY_WRITE_CHANNEL, 4);
        let _ = writeln!(o, "write-bit-ignored {}", hex(&bit14));
        let _ = writeln!(o, "unknown-key {}", hex(&pio(&mut io, UNKNOWN_KEY, 4)));
        let d = DmaAccess::select(UNKNOWN_KEY, DMA_CTL_READ, 4, 0);
        let (c, data) = page.transfer(&mut io, d)?;
        let _ = writeln!(o, "unknown-key-dma {:08x} {}", completed(c)?, hex(&data));
        let dir = directory(&mut io);
        for (name, size, _) in dir.iter().filter(|(n, _, _)| names.contains(n)) {
            let _ = writeln!(o, "dir {name} {size}");
        }
        for name in names {
            let (_, size, key) = dir
                .iter()
                .find(|(n, _, _)| n == name)
                .ok_or_else(|| CheckError::NoFile(name.clone()))?;
            o.push_str(&file_lines(&mut io, &mut page, name, *size, *key)?);
        }
        Ok(o)
    }

    /// Runs the check on `names`; prints the lines, or one error line.
    pub fn run(names: Vec<String>) -> i32 {
        if names.is_empty() || names.iter().any(|n| n.starts_with('-')) {
            eprintln!("usage: fw-cfg-abi-check NAME... (fw_cfg file names; run as root)");
            return 2;
        }
        match check(&names) {
            Ok(o) => {
                print!("{o}");
                0
            }
            Err(e) => {
                eprintln!("fw-cfg-abi-check: {e}");
                e.exit_code()
            }
        }
    }
}
