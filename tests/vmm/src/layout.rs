// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Guest-physical and port layout of the mini VMM.
//!
//! ```text
//! 0x0000_0000  RAM ------------------------------------------------+
//!   0x6000       hvm_start_info (PVH)                              |
//!   0x7000       PVH memory map                                    |
//!   0x8000       PVH module list (the initrd)                      |
//!   0x2_0000     kernel command line                               |
//!   0x10_0000    kernel / firmware ELF (loaded at its own address) |
//!   ...          initrd, page aligned at the top of low RAM        |
//! 0xc000_0000  32-bit MMIO gap (RAM above it moves to 4 GiB) ------+
//!   0xd000_0000  fw_cfg MMIO window (0x18 bytes)
//! 0x1_0000_0000 RAM above 3 GiB, if any
//! ```
//!
//! Ports: COM1 at 0x3f8, fw_cfg at 0x510..0x51c (selector, data, DMA),
//! the `isa-debug-exit` port at 0xf4 and, for Linux guests, the ACPI
//! sleep control, sleep status and reset registers at 0x3c0..0x3c3.
//! Everything else is free for devices the embedder registers.

/// Guest-physical address of the PVH `hvm_start_info` structure.
pub const PVH_START_INFO: u64 = 0x6000;
/// Guest-physical address of the PVH memory map.
pub const PVH_MEMMAP: u64 = 0x7000;
/// Guest-physical address of the PVH module list.
pub const PVH_MODLIST: u64 = 0x8000;
/// Guest-physical address of the kernel command line.
pub const CMDLINE_START: u64 = 0x2_0000;
/// Largest command line, NUL included.
pub const CMDLINE_MAX_SIZE: usize = 0x1_0000;
/// Lowest address a kernel may be loaded at (1 MiB, as in PVH).
pub const HIMEM_START: u64 = 0x10_0000;
/// Start of the 32-bit MMIO gap; RAM beyond it is placed at 4 GiB.
pub const MMIO_GAP_START: u64 = 0xc000_0000;
/// First address above 4 GiB.
pub const HIGH_RAM_START: u64 = 0x1_0000_0000;
/// Base of the fw_cfg MMIO window (inside the MMIO gap, below 4 GiB so a
/// firmware with a 4 GiB identity map reaches it).
pub const FW_CFG_MMIO_BASE: u64 = 0xd000_0000;
/// COM1.
pub const SERIAL_PORT: u16 = 0x3f8;
/// Number of UART registers.
pub const SERIAL_PORT_SIZE: u16 = 8;
/// QEMU's `isa-debug-exit` default port.
pub const DEBUG_EXIT_PORT: u16 = 0xf4;
/// Size of the debug-exit port window (QEMU's `iosize=4`).
pub const DEBUG_EXIT_PORT_SIZE: u16 = 4;
/// The ACPI power registers (hardware-reduced sleep control, sleep
/// status, reset), one byte each, in this order.
pub const ACPI_POWER_PORT: u16 = 0x3c0;
/// Number of ACPI power registers.
pub const ACPI_POWER_PORT_SIZE: u16 = 3;
/// Default guest memory size in MiB.
pub const DEFAULT_MEMORY_MIB: u64 = 128;
/// PVH `hvm_start_info` magic.
pub const XEN_HVM_START_MAGIC_VALUE: u32 = 0x336e_c578;
/// E820 / PVH memory map type: usable RAM.
pub const E820_RAM: u32 = 1;

/// The RAM ranges for `mem_size` bytes of memory: below the MMIO gap, and
/// what does not fit there at 4 GiB.
pub fn ram_ranges(mem_size: u64) -> Vec<(u64, u64)> {
    if mem_size <= MMIO_GAP_START {
        vec![(0, mem_size)]
    } else {
        vec![
            (0, MMIO_GAP_START),
            (HIGH_RAM_START, mem_size - MMIO_GAP_START),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ram_skips_the_mmio_gap() {
        assert_eq!(ram_ranges(128 << 20), vec![(0, 128 << 20)]);
        assert_eq!(
            ram_ranges(4 << 30),
            vec![
                (0, MMIO_GAP_START),
                (HIGH_RAM_START, (4 << 30) - MMIO_GAP_START)
            ]
        );
        for (start, len) in ram_ranges(8 << 30) {
            let end = start + len;
            assert!(end <= FW_CFG_MMIO_BASE || start >= FW_CFG_MMIO_BASE + 0x18);
        }
    }
}
