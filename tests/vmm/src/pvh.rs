// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Booting a PVH ELF kernel or firmware: `linux-loader`'s [`Elf`] loader
//! (a `XEN_ELFNOTE_PHYS32_ENTRY` note is required), the command line, the
//! initrd as the first PVH module at the top of low RAM, and
//! `hvm_start_info` with the memory map, written through `linux-loader`'s
//! [`PvhBootConfigurator`].

use std::ffi::CString;

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
use crate::{Error, VmConfig, open_file, read_file};

/// Loads the PVH ELF, the command line and the initrd, and writes the PVH
/// boot data. Returns the entry point.
pub fn load(
    memory: &GuestMemoryMmap,
    config: &VmConfig,
    fw_cfg: &FwCfgHandles,
) -> Result<u64, Error> {
    let mut kernel = open_file(&config.kernel)?;
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
        Some(path) => Some(load_initrd(memory, &read_file(path)?, loaded.kernel_end)?),
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

/// Places the initrd page-aligned at the top of low RAM, above the kernel.
fn load_initrd(
    memory: &GuestMemoryMmap,
    initrd: &[u8],
    kernel_end: u64,
) -> Result<hvm_modlist_entry, Error> {
    let size = initrd.len() as u64;
    let addr = low_ram_end(memory)
        .checked_sub(size)
        .map(|a| a & !0xfff)
        .filter(|&a| a >= kernel_end && a >= HIMEM_START)
        .ok_or(Error::InitrdTooBig(size))?;
    write_at(memory, initrd, addr)?;
    Ok(hvm_modlist_entry {
        paddr: addr,
        size,
        cmdline_paddr: 0,
        reserved: 0,
    })
}
