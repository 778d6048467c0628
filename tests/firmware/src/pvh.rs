// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The PVH `hvm_start_info` the loader left, and the one command-line
//! parameter the firmware understands.

/// `hvm_start_info.magic`.
const XEN_HVM_START_MAGIC_VALUE: u32 = 0x336e_c578;
/// Longest command line read.
const CMDLINE_MAX: usize = 4096;
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
fn parse_u64(s: &[u8]) -> Option<u64> {
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
