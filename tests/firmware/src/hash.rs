// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Hash mode: selected by `fw_cfg_tests.hash=SIZE@BASE` on the PVH command
//! line, which hands the firmware a RAM area for two copies of
//! [`HASH_FILE_NAME`]. The snapshot tests use it: a VMM may stop the
//! firmware anywhere in here and resume it in another process, and the
//! hashes must still match what the host put in the file.
//!
//! 1. The file is looked up by port I/O with `rep insb`, in phase
//!    [`Phase::Lookup`] of [`Transport::PioString`], so that a VMM counting
//!    exits per phase knows how many fw_cfg accesses the lookup took.
//! 2. It is read by one DMA descriptor into the second half of the area,
//!    the address written in two halves with a fw_cfg access between
//!    them: the high half to 0x514, then a read of the DMA register (which
//!    starts nothing), then the low half to 0x518, which starts the
//!    transfer. A snapshot taken at the read (the lookup's accesses + 2)
//!    holds the half-written latch. One `hash` line with its CRC-32.
//! 3. It is read whole by port I/O with `rep insb` into the first half
//!    (many exits, each a moment a snapshot can be taken mid-read); one
//!    `hash` line.
//!
//! Then the firmware prints `done` and leaves through the debug-exit port.

use core::sync::atomic::{Ordering, fence};

use fw_cfg_guest::abi::{DMA_CTL_ERROR, DMA_CTL_READ, DMA_CTL_SELECT, DmaAccess};
use fw_cfg_guest::reader::{FileEntry, FwCfgReader};
use fw_cfg_guest::transport::{PortBus, PortIo, X86PortBus};
use fw_cfg_protocol::{ErrorKind, HASH_FILE_NAME, HASH_PARAM, HashLine, Line, Phase, Transport};

use crate::buffers::DmaParts;
use crate::out::emit;
use crate::probes::mark;

/// The DMA address register's high half (its low half is at +4).
const DMA_HIGH_PORT: u16 = 0x514;
/// Control-word polls before the DMA read is declared stuck.
const DMA_POLLS: u32 = 1_000_000;

/// The area from `fw_cfg_tests.hash=SIZE@BASE`: `Some((base, size))` when
/// hash mode is on, with `size` 0 when the value is malformed.
pub fn param(cmdline: &[u8]) -> Option<(u64, u64)> {
    let word = cmdline
        .split(|&b| b == b' ')
        .find_map(|w| w.strip_prefix(HASH_PARAM.as_bytes()))?;
    Some(crate::pvh::parse_size_at_base(word).unwrap_or((0, 0)))
}

fn line(transport: Transport, entry: Option<&FileEntry>, data: &[u8]) -> HashLine {
    HashLine {
        transport,
        size: entry.map_or(0, |e| e.size),
        // At most the file size, a u32.
        read: data.len() as u32,
        crc32: crc32fast::hash(data),
        error: None,
    }
}

fn failed(transport: Transport, error: ErrorKind) {
    let mut l = line(transport, None, &[]);
    l.error = Some(error);
    emit(&Line::Hash(l));
}

/// Runs hash mode over the area `(base, size)`.
pub fn run(area: (u64, u64), dma: &mut DmaParts) {
    // SAFETY: the firmware runs alone in ring 0 with I/O privilege, and
    // the fw_cfg ports belong to the fw_cfg device.
    let mut t = unsafe { PortIo::new() };
    t.set_string_reads(true);
    mark(Phase::Lookup(Transport::PioString));
    let found = FwCfgReader::new(t).map(|mut r| (r.find_file(HASH_FILE_NAME), r));
    mark(Phase::Idle);
    let (entry, mut reader) = match found {
        Ok((Ok(entry), reader)) => (entry, reader),
        Ok((Err(e), _)) => return failed(Transport::PioString, ErrorKind::from(e)),
        Err(_) => return failed(Transport::PioString, ErrorKind::NoDevice),
    };
    let (base, size) = area;
    let len = entry.size as usize;
    if base == 0 || (len as u64).saturating_mul(2) > size {
        return failed(Transport::PioString, ErrorKind::NoArea);
    }
    let addr = base + len as u64;
    // SAFETY: the VMM handed the firmware `size` bytes of RAM at `base` in
    // the identity map (the parameter's contract) and `2 * len <= size`:
    // the second half is the device's until the transfer is over, and no
    // slice of it lives meanwhile.
    let error = unsafe { read_dma_split(dma, &entry, addr) };
    // SAFETY: as above; the transfer is over (or failed).
    let dst = unsafe { core::slice::from_raw_parts(addr as *const u8, len) };
    let mut l = line(Transport::Dma, Some(&entry), dst);
    l.error = error;
    emit(&Line::Hash(l));
    // SAFETY: the first half of the area, as above; nothing else uses it.
    let dst = unsafe { core::slice::from_raw_parts_mut(base as *mut u8, len) };
    let mut l = line(Transport::PioString, Some(&entry), &[]);
    match reader.read_entry_prefix(&entry, dst) {
        Ok(n) => {
            l.read = n as u32;
            l.crc32 = crc32fast::hash(&dst[..n.min(len)]);
        }
        Err(e) => l.error = Some(ErrorKind::from(e)),
    }
    emit(&Line::Hash(l));
}

/// Reads `entry` whole into `addr` with one DMA descriptor whose address
/// is written in two halves, with a read of the DMA register between them.
///
/// # Safety
///
/// `entry.size` bytes at guest-physical `addr` must be identity-mapped
/// RAM handed over to the device: nothing else uses them meanwhile.
unsafe fn read_dma_split(dma: &mut DmaParts, entry: &FileEntry, addr: u64) -> Option<ErrorKind> {
    let desc_addr = dma.descriptor_addr;
    let desc: *mut [u8; 16] = &mut *dma.descriptor;
    let access = DmaAccess {
        control: (u32::from(entry.select) << 16) | DMA_CTL_SELECT | DMA_CTL_READ,
        length: entry.size,
        address: addr,
    };
    // SAFETY: `desc` is the static descriptor slot, borrowed exclusively
    // here; volatile because the device reads and writes it.
    unsafe { desc.write_volatile(access.to_be_bytes()) };
    fence(Ordering::SeqCst);
    // SAFETY: I/O privilege as in `run`.
    let mut bus = unsafe { X86PortBus::new() };
    // The register is big-endian: `out` of the byte-swapped halves.
    // SAFETY: the high half starts nothing; the low half starts the
    // transfer at `desc_addr`, the descriptor just written, which names
    // memory our caller handed over.
    unsafe { bus.out32_dma(DMA_HIGH_PORT, ((desc_addr >> 32) as u32).to_be()) };
    // The access between the halves: the DMA register reads its signature.
    let _ = bus.in32(DMA_HIGH_PORT);
    // SAFETY: as above.
    unsafe { bus.out32_dma(DMA_HIGH_PORT + 4, (desc_addr as u32).to_be()) };
    fence(Ordering::SeqCst);
    // SAFETY: `desc` is the descriptor slot, as above.
    unsafe { poll_dma(desc) }
}

/// Polls the control word of the descriptor at `desc` until the device
/// clears it (`None`) or sets the error bit, at most [`DMA_POLLS`] times.
///
/// # Safety
///
/// `desc` must point to a live descriptor slot the device may write.
pub(crate) unsafe fn poll_dma(desc: *const [u8; 16]) -> Option<ErrorKind> {
    for _ in 0..DMA_POLLS {
        // SAFETY: our caller's contract; volatile because the device
        // writes it; the first four bytes are the control word.
        let c = u32::from_be_bytes(unsafe { desc.cast::<[u8; 4]>().read_volatile() });
        if c == 0 {
            return None;
        }
        if c & DMA_CTL_ERROR != 0 {
            return Some(ErrorKind::DmaError);
        }
    }
    Some(ErrorKind::DmaTimeout)
}
