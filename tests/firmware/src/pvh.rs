// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The PVH `hvm_start_info` the loader left (its command line and memory
//! map), and the one command-line parameter the firmware understands.

use core::sync::atomic::{AtomicU64, Ordering};

use fw_cfg_guest::memmap;

/// `hvm_start_info.magic`.
const XEN_HVM_START_MAGIC_VALUE: u32 = 0x336e_c578;
/// Longest command line read.
const CMDLINE_MAX: usize = 4096;
/// Most memory map entries read.
const MEMMAP_MAX_ENTRIES: u32 = 128;
/// Size of one `hvm_memmap_table_entry` (addr, size, type, reserved).
const MEMMAP_ENTRY_SIZE: u64 = 24;
/// The memory map's top, recorded once at entry ([`record_memory_top`]).
static MEMORY_TOP: AtomicU64 = AtomicU64::new(0);

/// The parameter announcing the fw_cfg MMIO window, in Linux's syntax
/// (`qemu_fw_cfg.mmio=SIZE@BASE[:...]`).
const MMIO_PARAM: &[u8] = b"qemu_fw_cfg.mmio=";

/// The command line from the start info, if there is one. Everything the
/// loader passes lies in the identity-mapped first 4 GiB.
pub fn cmdline(start_info: u64) -> &'static [u8] {
    if start_info == 0 || start_info >= 1 << 32 || start_info % 8 != 0 {
        return &[];
    }
    let p = start_info as *const u32;
    // SAFETY: the PVH loader put `hvm_start_info` (at least 48 bytes) at
    // this address, which is inside the 4 GiB identity map; only plain
    // reads follow, and the magic is checked before anything else is used.
    let magic = unsafe { p.read_volatile() };
    if magic != XEN_HVM_START_MAGIC_VALUE {
        return &[];
    }
    // SAFETY: as above; `cmdline_paddr` is the u64 at offset 24.
    let cmdline = unsafe {
        (start_info as *const u8)
            .add(24)
            .cast::<u64>()
            .read_volatile()
    };
    if cmdline == 0 || cmdline >= (1 << 32) - CMDLINE_MAX as u64 {
        return &[];
    }
    let base = cmdline as *const u8;
    let mut len = 0;
    // SAFETY: the loader stored a NUL-terminated string there; the scan
    // stops at the NUL or after CMDLINE_MAX bytes, all inside the identity
    // map.
    while len < CMDLINE_MAX && unsafe { base.add(len).read_volatile() } != 0 {
        len += 1;
    }
    // SAFETY: the `len` bytes just scanned are readable and nobody writes
    // them while the firmware runs.
    unsafe { core::slice::from_raw_parts(base, len) }
}

/// The fw_cfg MMIO window from `qemu_fw_cfg.mmio=SIZE@BASE`: `(base, size)`.
pub fn mmio_window(cmdline: &[u8]) -> Option<(u64, u64)> {
    for word in cmdline.split(|&b| b == b' ') {
        if let Some(value) = word.strip_prefix(MMIO_PARAM) {
            let value = value.split(|&b| b == b':').next()?;
            return parse_size_at_base(value);
        }
    }
    None
}

/// `SIZE@BASE` (each decimal or `0x` hexadecimal): `(base, size)`.
pub fn parse_size_at_base(value: &[u8]) -> Option<(u64, u64)> {
    let at = value.iter().position(|&b| b == b'@')?;
    let size = parse_u64(&value[..at])?;
    let base = parse_u64(&value[at + 1..])?;
    Some((base, size))
}

/// Decimal, or hexadecimal with `0x`.
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    let (digits, radix) = match s.strip_prefix(b"0x") {
        Some(rest) => (rest, 16),
        None => (s, 10),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        if u32::from(d) >= radix {
            return None;
        }
        v = v.checked_mul(u64::from(radix))?.checked_add(u64::from(d))?;
    }
    Some(v)
}

/// Reads the top of the PVH memory map (start info version >= 1:
/// `memmap_paddr` at offset 40, `memmap_entries` at 48) as
/// [`memmap::memory_top`] counts it, and records it for
/// [`memory_top`]. 0 when there is no map or it lies outside the 4 GiB
/// identity map.
pub fn record_memory_top(start_info: u64) {
    if start_info == 0 || start_info >= 1 << 32 || start_info % 8 != 0 {
        return;
    }
    let base = start_info as *const u8;
    // SAFETY: as in `cmdline`: the start info (at least 56 bytes in
    // version 1) is inside the identity map; only plain reads.
    let (magic, version, paddr, entries) = unsafe {
        (
            base.cast::<u32>().read_volatile(),
            base.add(4).cast::<u32>().read_volatile(),
            base.add(40).cast::<u64>().read_volatile(),
            base.add(48).cast::<u32>().read_volatile(),
        )
    };
    let entries = entries.min(MEMMAP_MAX_ENTRIES);
    let end = paddr.saturating_add(u64::from(entries) * MEMMAP_ENTRY_SIZE);
    if magic != XEN_HVM_START_MAGIC_VALUE || version < 1 || paddr % 8 != 0 || end > 1 << 32 {
        return;
    }
    let entry = |i: u32| {
        let e = (paddr + u64::from(i) * MEMMAP_ENTRY_SIZE) as *const u8;
        // SAFETY: entry `i` < `entries` lies within [paddr, end), checked
        // to be inside the identity map and 8-byte aligned; plain reads.
        unsafe {
            (
                e.cast::<u64>().read_volatile(),
                e.add(8).cast::<u64>().read_volatile(),
                e.add(16).cast::<u32>().read_volatile(),
            )
        }
    };
    MEMORY_TOP.store(
        memmap::memory_top((0..entries).map(entry)),
        Ordering::Relaxed,
    );
}

/// The memory map's top [`record_memory_top`] found (0 = unknown).
pub fn memory_top() -> u64 {
    MEMORY_TOP.load(Ordering::Relaxed)
}
