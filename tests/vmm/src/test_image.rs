// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Minimal PVH ELF images, for testing a VMM's PVH loader and run loop
//! without a toolchain: one loadable segment at [`LOAD_ADDRESS`] whose
//! 32-bit code starts right after the headers, and optionally the
//! `XEN_ELFNOTE_PHYS32_ENTRY` note (type 18, owner `"Xen"`) that marks the
//! image as PVH.
//!
//! ```
//! use fw_cfg_vmm::test_image::{LOAD_ADDRESS, pvh_elf};
//!
//! let image = pvh_elf(&[0xf4], true); // `hlt`
//! assert_eq!(&image[..4], b"\x7fELF");
//! // The entry point is the code, right after the headers and the note.
//! let entry = u64::from_le_bytes(image[24..32].try_into().unwrap());
//! assert_eq!(entry, LOAD_ADDRESS + image.len() as u64 - 1);
//! ```

/// Where the image's segment is loaded (1 MiB, as PVH kernels are).
pub const LOAD_ADDRESS: u64 = 0x10_0000;

/// Size of the ELF64 file header.
const EHDR: usize = 64;
/// Size of one ELF64 program header.
const PHDR: usize = 56;
/// Size of the PVH entry note: namesz, descsz, type, "Xen\0", the entry.
const NOTE: usize = 20;

/// An ELF64 image loaded at [`LOAD_ADDRESS`] running `code` (32-bit) from
/// its start, with the PVH entry note when `pvh`.
pub fn pvh_elf(code: &[u8], pvh: bool) -> Vec<u8> {
    let phnum = if pvh { 2 } else { 1 };
    let note_off = EHDR + PHDR * phnum;
    let note_len = if pvh { NOTE } else { 0 };
    let code_off = note_off + note_len;
    let entry = LOAD_ADDRESS + code_off as u64;
    let total = code_off + code.len();

    let mut f = Vec::with_capacity(total);
    f.extend_from_slice(b"\x7fELF\x02\x01\x01");
    f.resize(16, 0);
    f.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    f.extend_from_slice(&0x3eu16.to_le_bytes()); // x86-64
    f.extend_from_slice(&1u32.to_le_bytes());
    f.extend_from_slice(&entry.to_le_bytes());
    f.extend_from_slice(&(EHDR as u64).to_le_bytes()); // phoff
    f.extend_from_slice(&0u64.to_le_bytes()); // shoff
    f.extend_from_slice(&0u32.to_le_bytes()); // flags
    f.extend_from_slice(&(EHDR as u16).to_le_bytes());
    f.extend_from_slice(&(PHDR as u16).to_le_bytes());
    f.extend_from_slice(&(phnum as u16).to_le_bytes());
    f.extend_from_slice(&64u16.to_le_bytes()); // shentsize
    f.extend_from_slice(&0u16.to_le_bytes()); // shnum
    f.extend_from_slice(&0u16.to_le_bytes()); // shstrndx
    program_header(&mut f, 1, 0, LOAD_ADDRESS, total as u64, 0x1000);
    if pvh {
        let note_addr = LOAD_ADDRESS + note_off as u64;
        program_header(&mut f, 4, note_off as u64, note_addr, note_len as u64, 4);
        f.extend_from_slice(&4u32.to_le_bytes());
        f.extend_from_slice(&4u32.to_le_bytes());
        f.extend_from_slice(&18u32.to_le_bytes());
        f.extend_from_slice(b"Xen\0");
        // The entry is below 4 GiB: LOAD_ADDRESS plus a few hundred bytes.
        f.extend_from_slice(&(entry as u32).to_le_bytes());
    }
    f.extend_from_slice(code);
    f
}

/// Appends one RWX program header of `kind` mapping `size` bytes at file
/// offset `offset` to physical and virtual address `addr`.
fn program_header(f: &mut Vec<u8>, kind: u32, offset: u64, addr: u64, size: u64, align: u64) {
    f.extend_from_slice(&kind.to_le_bytes());
    f.extend_from_slice(&7u32.to_le_bytes());
    f.extend_from_slice(&offset.to_le_bytes());
    f.extend_from_slice(&addr.to_le_bytes());
    f.extend_from_slice(&addr.to_le_bytes());
    f.extend_from_slice(&size.to_le_bytes());
    f.extend_from_slice(&size.to_le_bytes());
    f.extend_from_slice(&align.to_le_bytes());
}
