// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Linux's boot log under QEMU microvm and under `fw-cfg-vmm`, same kernel
//! and command line: the lines only one of them printed, each sorted into
//! the [`Difference`] that explains it.
//!
//! ```
//! use fw_cfg_tests::lab::boot_log::{BootLogDiff, Difference};
//!
//! let qemu = ["DMI: Bochs Bochs, BIOS Bochs 01/01/2011", "Run /init as init process"];
//! let ours = ["DMI not present or invalid.", "Run /init as init process"];
//! let diff = BootLogDiff::new(qemu.map(String::from), ours.map(String::from));
//! assert_eq!(diff.lines.len(), 2);
//! assert!(diff.lines.iter().all(|l| l.kind == Difference::Smbios));
//! assert!(diff.lines_of(Difference::Other).next().is_none());
//! ```

use std::collections::BTreeSet;
use std::fmt;

/// Why a line appears under one VMM only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Difference {
    /// The memory map and what follows from it (zones, free memory, the
    /// initrd's place): QEMU's firmware reserves the EBDA, its ROM, the
    /// last RAM page and KVM's identity-map pages; ours reserves the ACPI
    /// area 0xE0000..0x100000 only.
    MemoryMap,
    /// SMBIOS/DMI: under QEMU microvm SeaBIOS builds 2.4 tables naming
    /// Bochs; ours are 3.0 tables naming `fw-cfg-vmm`.
    Smbios,
    /// ACPI tables' addresses, OEM IDs and revisions: the firmware places
    /// QEMU's at the top of RAM, ours sit in the BIOS area.
    AcpiTables,
    /// Interrupt controllers: QEMU microvm has two userspace IO-APICs
    /// (version 0x20), ours KVM's in-kernel IO-APIC (version 0x11); so
    /// Linux numbers COM1's interrupt differently.
    Interrupts,
    /// The MP table SeaBIOS writes (ours describes the CPU in ACPI only).
    MpTable,
    /// The text console: SeaBIOS reports a CGA text mode in the boot
    /// parameters, ours reports no video (there is no VGA device).
    Console,
    /// The CMOS RTC: QEMU has one (and Linux finds it broken under
    /// microvm's hardware-reduced ACPI); ours has none.
    Rtc,
    /// Times and counters that differ from run to run.
    Timing,
    /// Anything else: not explained.
    Other,
}

/// Line prefixes (after the timestamp) of each explained difference.
const PREFIXES: &[(Difference, &[&str])] = &[
    (
        Difference::MemoryMap,
        &[
            "BIOS-e820:",
            "e820:",
            "last_pfn",
            "Faking a node",
            "NODE_DATA",
            "  DMA32",
            "  node   0:",
            "Initmem setup",
            "On node 0, zone",
            "[mem ",
            "Built 1 zonelists",
            "Memory:",
            "RAMDISK:",
        ],
    ),
    (Difference::Smbios, &["SMBIOS", "DMI:", "DMI not present"]),
    (
        Difference::AcpiTables,
        &[
            "ACPI: RSDP",
            "ACPI: XSDT",
            "ACPI: FACP",
            "ACPI: DSDT",
            "ACPI: APIC",
            "ACPI: Reserving",
        ],
    ),
    (
        Difference::Interrupts,
        &[
            "IOAPIC[",
            "ACPI: LAPIC_NMI",
            "00:00: ttyS0 at I/O 0x3f8 (irq",
        ],
    ),
    (Difference::MpTable, &["found SMP MP-table"]),
    (Difference::Console, &["Console: colour"]),
    (Difference::Rtc, &["rtc_cmos", "platform rtc_cmos"]),
    (
        Difference::Timing,
        &[
            "kvm-clock: using sched offset",
            "audit: type=2000",
            "sched_clock: Marking stable",
            "hrtimer: interrupt took",
            "tsc: ",
            "clocksource: ",
            "Calibrating delay",
            "Freeing unused",
            "random: crng",
        ],
    ),
];

impl Difference {
    /// The difference that explains `line` (a log line without its
    /// timestamp).
    pub fn of(line: &str) -> Difference {
        PREFIXES
            .iter()
            .find(|(_, prefixes)| prefixes.iter().any(|p| line.starts_with(p)))
            .map_or(Difference::Other, |(d, _)| *d)
    }
}

/// Which VMM printed a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Vmm {
    /// QEMU microvm.
    Qemu,
    /// `fw-cfg-vmm`.
    Ours,
}

/// A line only one VMM's guest printed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DiffLine {
    /// Why.
    pub kind: Difference,
    /// Under which VMM.
    pub vmm: Vmm,
    /// The line, without its timestamp.
    pub line: String,
}

/// The boot-log lines only one VMM's guest printed, sorted by
/// [`Difference`], then VMM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootLogDiff {
    /// The lines.
    pub lines: Vec<DiffLine>,
}

impl BootLogDiff {
    /// The difference of two logs (lines without timestamps).
    pub fn new(
        qemu: impl IntoIterator<Item = String>,
        ours: impl IntoIterator<Item = String>,
    ) -> BootLogDiff {
        let (q, o): (BTreeSet<String>, BTreeSet<String>) =
            (qemu.into_iter().collect(), ours.into_iter().collect());
        let side = |a: &BTreeSet<String>, b: &BTreeSet<String>, vmm| {
            a.difference(b)
                .map(|l| DiffLine {
                    kind: Difference::of(l),
                    vmm,
                    line: l.clone(),
                })
                .collect::<Vec<_>>()
        };
        let mut lines = side(&q, &o, Vmm::Qemu);
        lines.extend(side(&o, &q, Vmm::Ours));
        lines.sort();
        BootLogDiff { lines }
    }

    /// The lines of one kind.
    pub fn lines_of(&self, kind: Difference) -> impl Iterator<Item = &DiffLine> {
        self.lines.iter().filter(move |l| l.kind == kind)
    }

    /// The kinds present, in order.
    pub fn kinds(&self) -> BTreeSet<Difference> {
        self.lines.iter().map(|l| l.kind).collect()
    }
}

impl fmt::Display for BootLogDiff {
    /// One header per kind, then its lines (`q` QEMU, `o` ours), cut to
    /// 100 columns.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut current = None;
        for l in &self.lines {
            if current != Some(l.kind) {
                writeln!(f, "{:?}:", l.kind)?;
                current = Some(l.kind);
            }
            let tag = match l.vmm {
                Vmm::Qemu => 'q',
                Vmm::Ours => 'o',
            };
            let text: String = l.line.chars().take(94).collect();
            writeln!(f, "  {tag} {text}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_sorted_into_their_kind() {
        for (line, kind) in [
            ("BIOS-e820: [mem 0x0-0x9fbff] usable", Difference::MemoryMap),
            (
                "[mem 0x10000000-0xfeffbfff] available for PCI devices",
                Difference::MemoryMap,
            ),
            ("IOAPIC[1]: apic_id 1, version 32", Difference::Interrupts),
            (
                "ACPI: FACP 0x00000000000E00D0 000114",
                Difference::AcpiTables,
            ),
            ("Console: colour dummy device 80x25", Difference::Console),
            ("hrtimer: interrupt took 15439217 ns", Difference::Timing),
            ("smpboot: CPU0: AMD 06/06 (family: 0x6)", Difference::Other),
            ("x86/PAT: MTRRs disabled, skipping PAT", Difference::Other),
            ("TSC deadline timer available", Difference::Other),
        ] {
            assert_eq!(Difference::of(line), kind, "{line}");
        }
    }

    #[test]
    fn only_lines_of_one_side_are_listed_and_printed_narrow() {
        let q = ["same", "Console: colour *CGA 80x25"].map(String::from);
        let o = ["same".to_string(), format!("x{}", "y".repeat(200))];
        let d = BootLogDiff::new(q, o);
        assert_eq!(d.lines.len(), 2);
        assert_eq!(d.kinds(), [Difference::Console, Difference::Other].into());
        let text = d.to_string();
        assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
        assert!(text.starts_with("Console:\n  q Console: colour *CGA 80x25\nOther:\n  o xyy"));
    }
}
