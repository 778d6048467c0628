// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Booting a PVH ELF kernel or firmware: `linux-loader`'s [`Elf`] loader
//! (a `XEN_ELFNOTE_PHYS32_ENTRY` note is required), the command line, the
//! initrd as the first PVH module at the top of low RAM, and
//! `hvm_start_info` with the memory map, written through `linux-loader`'s
//! [`PvhBootConfigurator`].

use std::ffi::CString;
use std::fs::File;
use std::os::unix::fs::FileExt;

use linux_loader::cmdline::Cmdline;
use linux_loader::configurator::pvh::PvhBootConfigurator;
use linux_loader::configurator::{BootConfigurator, BootParams};
use linux_loader::loader::KernelLoader;
use linux_loader::loader::elf::start_info::{
    hvm_memmap_table_entry, hvm_modlist_entry, hvm_start_info,
};
use linux_loader::loader::elf::{Elf, PvhBootCapability};
use vm_memory::{
    Address, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion,
};

use crate::fw_cfg::FwCfgHandles;
use crate::layout::{
    CMDLINE_MAX_SIZE, CMDLINE_START, E820_RAM, HIMEM_START, PVH_MEMMAP, PVH_MODLIST,
    PVH_START_INFO, XEN_HVM_START_MAGIC_VALUE,
};
use crate::{Error, VmConfig, open_file, read_into_guest};

/// Loads the PVH ELF, the command line and the initrd, and writes the PVH
/// boot data. Returns the entry point.
pub fn load(
    memory: &GuestMemoryMmap,
    config: &VmConfig,
    fw_cfg: &FwCfgHandles,
) -> Result<u64, Error> {
    let (mut kernel, _) = open_file(&config.kernel)?;
    for segment in load_segments(&kernel)? {
        check_segment(memory, segment)?;
    }
    let loaded = Elf::load(memory, None, &mut kernel, Some(GuestAddress(HIMEM_START)))
        .map_err(Error::Load)?;
    let entry = match loaded.pvh_boot_cap {
        PvhBootCapability::PvhEntryPresent(addr) => addr.raw_value(),
        _ => return Err(Error::NotPvh),
    };
    write_cmdline(memory, &config.cmdline, fw_cfg.cmdline_param())?;

    let mut start_info = hvm_start_info {
        magic: XEN_HVM_START_MAGIC_VALUE,
        version: 1,
        cmdline_paddr: CMDLINE_START,
        memmap_paddr: PVH_MEMMAP,
        ..Default::default()
    };
    let memmap = memory_map(memory);
    start_info.memmap_entries = u32::try_from(memmap.len()).unwrap_or(u32::MAX);
    let module = match &config.initrd {
        Some(path) => Some(load_initrd(memory, path, loaded.kernel_end)?),
        None => None,
    };
    if module.is_some() {
        start_info.nr_modules = 1;
        start_info.modlist_paddr = PVH_MODLIST;
    }

    let mut params = BootParams::new::<hvm_start_info>(&start_info, GuestAddress(PVH_START_INFO));
    params.set_sections::<hvm_memmap_table_entry>(&memmap, GuestAddress(PVH_MEMMAP));
    if let Some(m) = module {
        params.set_modules::<hvm_modlist_entry>(&[m], GuestAddress(PVH_MODLIST));
    }
    PvhBootConfigurator::write_bootparams::<GuestMemoryMmap>(&params, memory)
        .map_err(Error::BootParams)?;
    Ok(entry)
}

/// Writes `cmdline` (plus `extra`, if any) NUL-terminated at
/// [`CMDLINE_START`]; returns it as written.
pub fn write_cmdline(
    memory: &GuestMemoryMmap,
    cmdline: &str,
    extra: Option<&str>,
) -> Result<CString, Error> {
    let mut line = Cmdline::new(CMDLINE_MAX_SIZE).map_err(Error::Cmdline)?;
    for part in std::iter::once(cmdline).chain(extra) {
        if !part.is_empty() {
            line.insert_str(part).map_err(Error::Cmdline)?;
        }
    }
    let line = line.as_cstring().map_err(Error::Cmdline)?;
    write_at(memory, line.as_bytes_with_nul(), CMDLINE_START)?;
    Ok(line)
}

/// Writes `bytes` at guest-physical `addr`.
pub fn write_at(memory: &GuestMemoryMmap, bytes: &[u8], addr: u64) -> Result<(), Error> {
    memory
        .write_slice(bytes, GuestAddress(addr))
        .map_err(|source| Error::GuestWrite { addr, source })
}

/// End of the first RAM region (RAM below the MMIO gap).
pub fn low_ram_end(memory: &GuestMemoryMmap) -> u64 {
    memory
        .iter()
        .next()
        .map(|r| r.start_addr().raw_value() + r.len())
        .unwrap_or(0)
}

/// The PVH memory map: every RAM region.
fn memory_map(memory: &GuestMemoryMmap) -> Vec<hvm_memmap_table_entry> {
    memory
        .iter()
        .map(|r| hvm_memmap_table_entry {
            addr: r.start_addr().raw_value(),
            size: r.len(),
            type_: E820_RAM,
            reserved: 0,
        })
        .collect()
}

/// Places the initrd page-aligned at the top of low RAM, above the kernel,
/// reading it straight into guest memory once its size is known to fit.
fn load_initrd(
    memory: &GuestMemoryMmap,
    path: &std::path::Path,
    kernel_end: u64,
) -> Result<hvm_modlist_entry, Error> {
    let (mut file, size) = open_file(path)?;
    let addr = low_ram_end(memory)
        .checked_sub(size)
        .map(|a| a & !0xfff)
        .filter(|&a| a >= kernel_end && a >= HIMEM_START)
        .ok_or(Error::InitrdTooBig(size))?;
    read_into_guest(memory, &mut file, path, addr, size)?;
    Ok(hvm_modlist_entry {
        paddr: addr,
        size,
        cmdline_paddr: 0,
        reserved: 0,
    })
}

/// What the VMM writes below the kernel for a PVH boot: a kernel segment
/// must not overlap any of it.
pub const PVH_BOOT_DATA: [(&str, u64, u64); 2] = [
    (
        "PVH boot data (start info, memory map, module list)",
        PVH_START_INFO,
        PVH_MODLIST + 0x1000,
    ),
    (
        "kernel command line",
        CMDLINE_START,
        CMDLINE_START + CMDLINE_MAX_SIZE as u64,
    ),
];

/// `p_type` of a loadable segment.
const PT_LOAD: u32 = 1;
/// Size of an ELF64 program header.
const PHDR_SIZE: u64 = 56;

/// The guest-physical ranges (`p_paddr .. p_paddr + p_memsz`) of the
/// ELF64 image's loadable segments, read with positioned reads (the file
/// offset stays where the loader expects it).
pub fn load_segments(file: &File) -> Result<Vec<(u64, u64)>, Error> {
    let mut ehdr = [0u8; 64];
    file.read_exact_at(&mut ehdr, 0)
        .map_err(|_| Error::ElfHeaders)?;
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let u64_at = |b: &[u8], o: usize| {
        let mut v = [0u8; 8];
        v.copy_from_slice(&b[o..o + 8]);
        u64::from_le_bytes(v)
    };
    let phoff = u64_at(&ehdr, 0x20);
    let phnum = u64::from(u16_at(&ehdr, 0x38));
    let mut segments = Vec::new();
    for i in 0..phnum {
        let mut phdr = [0u8; PHDR_SIZE as usize];
        let at = phoff.checked_add(i * PHDR_SIZE).ok_or(Error::ElfHeaders)?;
        file.read_exact_at(&mut phdr, at)
            .map_err(|_| Error::ElfHeaders)?;
        let kind = u32::from_le_bytes([phdr[0], phdr[1], phdr[2], phdr[3]]);
        let (paddr, filesz, memsz) = (
            u64_at(&phdr, 0x18),
            u64_at(&phdr, 0x20),
            u64_at(&phdr, 0x28),
        );
        // The loader skips segments with nothing in the file.
        if kind != PT_LOAD || filesz == 0 {
            continue;
        }
        let end = paddr
            .checked_add(memsz.max(filesz))
            .ok_or(Error::ElfHeaders)?;
        segments.push((paddr, end));
    }
    Ok(segments)
}

/// Refuses a segment `start..end` outside low RAM or overlapping
/// [`PVH_BOOT_DATA`].
pub fn check_segment(memory: &GuestMemoryMmap, (start, end): (u64, u64)) -> Result<(), Error> {
    let ram_end = low_ram_end(memory);
    if end > ram_end {
        return Err(Error::KernelOutsideRam {
            start,
            end,
            ram_end,
        });
    }
    for (what, data_start, data_end) in PVH_BOOT_DATA {
        if start < data_end && data_start < end {
            return Err(Error::KernelOverlapsBootData {
                start,
                end,
                what,
                data_start,
                data_end,
            });
        }
    }
    Ok(())
}
