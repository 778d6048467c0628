// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The top of the guest's memory map: the policy never falls back below it
//! ([`ChannelInputs::memory_top`](crate::policy::ChannelInputs::memory_top)).
//!
//! A memory map is a list of `(base, size, type)` ranges with E820 types,
//! as the PVH `hvm_memmap_table_entry` array, QEMU's `etc/e820` fw_cfg file
//! and Linux's `/sys/firmware/memmap` (type names) carry them. Ranges that
//! hold memory count: RAM, ACPI tables, ACPI NVS and persistent memory.
//! Reserved ranges do not: they describe holes and MMIO (QEMU reserves the
//! AMD HyperTransport window below 1 TiB, which is no RAM).
//!
//! ```
//! use fw_cfg_guest::memmap::{memory_top, E820_RAM, E820_RESERVED};
//!
//! let map = [(0, 0x8000_0000, E820_RAM), (0x1_0000_0000, 96 << 30, E820_RAM),
//!            (0xfd_0000_0000, 0x3_0000_0000, E820_RESERVED)];
//! assert_eq!(memory_top(map), 0x1_0000_0000 + (96 << 30));
//! ```

/// E820 type 1: usable RAM.
pub const E820_RAM: u32 = 1;
/// E820 type 2: reserved.
pub const E820_RESERVED: u32 = 2;
/// E820 type 3: ACPI tables (reclaimable RAM).
pub const E820_ACPI: u32 = 3;
/// E820 type 4: ACPI non-volatile storage.
pub const E820_NVS: u32 = 4;
/// E820 type 7: persistent memory.
pub const E820_PMEM: u32 = 7;
/// E820 type 12: legacy persistent memory.
pub const E820_PRAM: u32 = 12;

/// Whether a range of E820 type `kind` holds memory (module docs).
pub const fn holds_memory(kind: u32) -> bool {
    matches!(
        kind,
        E820_RAM | E820_ACPI | E820_NVS | E820_PMEM | E820_PRAM
    )
}

/// The exclusive end of the highest range that holds memory; 0 for a map
/// without one. Saturates at `u64::MAX` for a range that wraps.
pub fn memory_top<I: IntoIterator<Item = (u64, u64, u32)>>(ranges: I) -> u64 {
    ranges
        .into_iter()
        .filter(|&(_, size, kind)| size != 0 && holds_memory(kind))
        .map(|(base, size, _)| base.saturating_add(size))
        .max()
        .unwrap_or(0)
}

/// The E820 type of one of Linux's `/sys/firmware/memmap/N/type` names
/// (`e820_type_to_string`); `None` for a name it does not know.
pub fn e820_type_from_linux_name(name: &str) -> Option<u32> {
    Some(match name.trim() {
        "System RAM" => E820_RAM,
        "Reserved" | "Soft Reserved" | "Unusable memory" => E820_RESERVED,
        "ACPI Tables" => E820_ACPI,
        "ACPI Non-volatile Storage" => E820_NVS,
        "Persistent Memory" => E820_PMEM,
        "Persistent Memory (legacy)" => E820_PRAM,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_counts_memory_ranges_only() {
        assert_eq!(memory_top([]), 0);
        assert_eq!(memory_top([(0x1000, 0, E820_RAM)]), 0);
        assert_eq!(
            memory_top([(0, 1 << 30, E820_RAM), (1 << 40, 1 << 30, E820_RESERVED)]),
            1 << 30
        );
        assert_eq!(
            memory_top([(1 << 36, 1 << 20, E820_PMEM)]),
            (1 << 36) + (1 << 20)
        );
        assert_eq!(memory_top([(u64::MAX - 1, 4, E820_RAM)]), u64::MAX);
    }

    #[test]
    fn linux_type_names() {
        assert_eq!(e820_type_from_linux_name("System RAM\n"), Some(E820_RAM));
        assert_eq!(e820_type_from_linux_name("Reserved"), Some(E820_RESERVED));
        assert_eq!(e820_type_from_linux_name("ACPI Tables"), Some(E820_ACPI));
        assert_eq!(e820_type_from_linux_name("bogus"), None);
    }
}
