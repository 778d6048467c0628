// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! What firmware needs beyond a width: the width the host backs, a width
//! that is safe to map with its reason, the recommended 64-bit PCI MMIO
//! window and whether a set of BARs fits in it.
//!
//! [`layout`] takes the policy's [`Decision`] (the usable width) and:
//!
//! | output | rule |
//! |---|---|
//! | backed | a version-2 file's backed width; else, with an explicit "valid" and no hard conflict, `W`; else unknown |
//! | safe | the usable width, capped at 46 with 4-level paging (OVMF: a 47-bit identity map, and older Linux kernels mishandle more than 46), then at 44 for old kernels when the RAM above 4 GiB is below 1 TiB (SeaBIOS's rule: i386 kernels and an old virtio-pci driver), never below the memory map's need (up to the usable width) |
//! | window | OVMF's placement for the safe width ([`ovmf_mmio_window`]): the top eighth of 2^safe when that beats the classic 32 GiB above RAM; an `opt/ovmf/X-PciMmio64Mb`-style size keeps the classic placement with that size |
//!
//! ```
//! use fw_cfg_guest::abi::PhysBitsFile;
//! use fw_cfg_guest::cpuid::{HintState, Vendor};
//! use fw_cfg_guest::layout::{layout, LayoutOptions, SafeReason};
//! use fw_cfg_guest::policy::{decide, ChannelInputs, FileState, PolicyMode};
//!
//! let inputs = ChannelInputs {
//!     hint: HintState::Set, has_address_sizes: true, phys_bits: 48, guest_phys_bits: 0,
//!     ext_vendor: Some(Vendor::Amd), file: FileState::Present(PhysBitsFile::new(true, 48, 0)),
//!     five_level_paging: false, gb_pages: true, memory_top: 8 << 30, sev_c_bit: None, tdx: false,
//! };
//! let d = decide(&inputs, PolicyMode::Strict);
//! let l = layout(&inputs, &d, &LayoutOptions::default());
//! assert_eq!((l.backed_bits, l.usable_bits, l.safe_bits), (Some(48), 48, 46));
//! assert_eq!(l.safe_reason, SafeReason::FourLevelPaging);
//! // Four 128 GiB BARs (GPU passthrough) fit in the top eighth of 2^46.
//! assert!(l.bars_fit(&mut [128 << 30; 4]));
//! ```

use core::fmt;

use crate::abi::{MAX_PHYS_BITS, MIN_PHYS_BITS};
use crate::cpuid::HintState;
use crate::peers::{
    OvmfPlatform, OvmfSetup, SEABIOS_HUGE_GUEST_RAM, SEABIOS_WINDOW_CAP_BITS, Window,
    ovmf_mmio_window,
};
use crate::policy::{ChannelInputs, Decision, FileState, HEURISTIC_CAP_4LEVEL};

/// 4 GiB.
const BASE_4GB: u64 = 1 << 32;

/// What the consumer of the width can handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LayoutOptions {
    /// The guest may run an old kernel (SeaBIOS's 2^44 rule applies).
    pub old_kernels: bool,
    /// An `opt/ovmf/X-PciMmio64Mb`-style window size in MiB (`None`: the
    /// default placement).
    pub pci_mmio64_mb: Option<u32>,
}

/// Why the safe width is what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SafeReason {
    /// Nothing lowers the usable width.
    Usable,
    /// 4-level paging: at most 46 (OVMF's cap).
    FourLevelPaging,
    /// Old kernels and less than 1 TiB above 4 GiB: 44 (SeaBIOS's rule).
    OldKernels,
    /// A cap would go below the memory map's top: raised to reach it.
    MemoryTop,
}

impl SafeReason {
    /// Kebab-case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            SafeReason::Usable => "usable",
            SafeReason::FourLevelPaging => "4-level-paging",
            SafeReason::OldKernels => "old-kernels",
            SafeReason::MemoryTop => "memory-top",
        }
    }
}

impl fmt::Display for SafeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outputs (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressLayout {
    /// The width the host says it backs; `None` when no channel says.
    pub backed_bits: Option<u8>,
    /// The decision's width.
    pub usable_bits: u8,
    /// The width safe to map.
    pub safe_bits: u8,
    /// Why.
    pub safe_reason: SafeReason,
    /// The recommended 64-bit PCI MMIO window (`None` for a 0 size).
    pub mmio64: Option<Window>,
}

impl AddressLayout {
    /// Whether BARs of these sizes fit in the window ([`Window::fits`]);
    /// false without a window unless `bars` is empty.
    pub fn bars_fit(&self, bars: &mut [u64]) -> bool {
        match self.mmio64 {
            Some(w) => w.fits(bars),
            None => bars.is_empty(),
        }
    }
}

/// The width the channels say the host backs (module docs).
pub fn backed_bits(inputs: &ChannelInputs, decision: &Decision) -> Option<u8> {
    let plausible = |w: u8| (MIN_PHYS_BITS..=MAX_PHYS_BITS).contains(&w);
    if let FileState::Present(f) = inputs.file {
        if plausible(f.backed_bits) {
            return Some(f.backed_bits.min(inputs.cpuid_width().max(MIN_PHYS_BITS)));
        }
    }
    let file_valid = matches!(inputs.file, FileState::Present(f) if f.valid);
    let explicit = file_valid || inputs.hint == HintState::Set;
    let w = inputs.cpuid_width();
    (explicit && !decision.conflicts.has_hard() && plausible(w)).then_some(w)
}

/// The safe width and its reason (module docs).
pub fn safe_bits(inputs: &ChannelInputs, usable: u8, opts: &LayoutOptions) -> (u8, SafeReason) {
    let mut safe = usable;
    let mut reason = SafeReason::Usable;
    if !inputs.five_level_paging && safe > HEURISTIC_CAP_4LEVEL {
        safe = HEURISTIC_CAP_4LEVEL;
        reason = SafeReason::FourLevelPaging;
    }
    let above_4g = inputs.memory_top.saturating_sub(BASE_4GB);
    if opts.old_kernels && safe > SEABIOS_WINDOW_CAP_BITS && above_4g < SEABIOS_HUGE_GUEST_RAM {
        safe = SEABIOS_WINDOW_CAP_BITS;
        reason = SafeReason::OldKernels;
    }
    let need = inputs.memory_bits().min(usable);
    if need > safe {
        safe = need;
        reason = SafeReason::MemoryTop;
    }
    (safe, reason)
}

/// The layout for `decision` (module docs).
pub fn layout(inputs: &ChannelInputs, decision: &Decision, opts: &LayoutOptions) -> AddressLayout {
    let (safe, safe_reason) = safe_bits(inputs, decision.phys_bits, opts);
    let setup = OvmfSetup {
        platform: OvmfPlatform::Qemu,
        pci_mmio64_mb: opts.pci_mmio64_mb,
    };
    AddressLayout {
        backed_bits: backed_bits(inputs, decision),
        usable_bits: decision.phys_bits,
        safe_bits: safe,
        safe_reason,
        mmio64: ovmf_mmio_window(safe, inputs.memory_top, &setup),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::PhysBitsFile;
    use crate::cpuid::Vendor;
    use crate::policy::{PolicyMode, decide};

    const GIB: u64 = 1 << 30;
    const TIB: u64 = 1 << 40;

    fn inputs(hint: HintState, phys: u8, file: FileState, top: u64) -> ChannelInputs {
        ChannelInputs {
            hint,
            has_address_sizes: true,
            phys_bits: phys,
            guest_phys_bits: 0,
            ext_vendor: Some(Vendor::Intel),
            file,
            five_level_paging: false,
            gb_pages: true,
            memory_top: top,
            sev_c_bit: None,
            tdx: false,
        }
    }

    fn run(i: &ChannelInputs, opts: &LayoutOptions) -> AddressLayout {
        layout(i, &decide(i, PolicyMode::Combined), opts)
    }

    const OLD: LayoutOptions = LayoutOptions {
        old_kernels: true,
        pci_mmio64_mb: None,
    };

    #[test]
    fn layout_rows() {
        let valid = |p| FileState::Present(PhysBitsFile::new(true, p, 0));
        let legacy = FileState::Present(PhysBitsFile::new(false, 40, 0).with_backed_bits(39));
        let none = LayoutOptions::default();
        let la57 = |i: ChannelInputs| ChannelInputs {
            five_level_paging: true,
            ..i
        };
        // (row, inputs, options, backed, usable, safe, reason, window)
        type Row = (
            &'static str,
            ChannelInputs,
            LayoutOptions,
            Option<u8>,
            u8,
            u8,
            SafeReason,
            Option<Window>,
        );
        let w = |base, size| Some(Window { base, size });
        let rows: &[Row] = &[
            (
                "valid 39: top eighth of 2^39",
                inputs(HintState::Set, 39, valid(39), 2 * GIB),
                none,
                Some(39),
                39,
                39,
                SafeReason::Usable,
                w(448 * GIB, 64 * GIB),
            ),
            (
                "legacy 40 on a 39-bit host: backed 39",
                inputs(HintState::Clear, 40, legacy, 2 * GIB),
                none,
                Some(39),
                39,
                39,
                SafeReason::Usable,
                w(448 * GIB, 64 * GIB),
            ),
            (
                "valid 52, 4-level: 46",
                inputs(HintState::Set, 52, valid(52), 2 * GIB),
                none,
                Some(52),
                52,
                46,
                SafeReason::FourLevelPaging,
                w(56 * TIB, 8 * TIB),
            ),
            (
                "valid 52, LA57: 52",
                la57(inputs(HintState::Set, 52, valid(52), 2 * GIB)),
                none,
                Some(52),
                52,
                52,
                SafeReason::Usable,
                w((1 << 52) - (1 << 49), 1 << 49),
            ),
            (
                "old kernels: 44",
                inputs(HintState::Set, 48, valid(48), 16 * GIB),
                OLD,
                Some(48),
                48,
                44,
                SafeReason::OldKernels,
                w(14 * TIB, 2 * TIB),
            ),
            (
                "old kernels, 2 TiB of RAM: SeaBIOS lifts the cap",
                inputs(HintState::Set, 48, valid(48), 2 * TIB),
                OLD,
                Some(48),
                48,
                46,
                SafeReason::FourLevelPaging,
                w(56 * TIB, 8 * TIB),
            ),
            (
                "4-level, RAM to 100 TiB: raised to the RAM",
                inputs(HintState::Set, 48, valid(48), 100 * TIB),
                OLD,
                Some(48),
                48,
                47,
                SafeReason::MemoryTop,
                w(112 * TIB, 16 * TIB),
            ),
            (
                "silent: the heuristic's 46, nothing backed",
                inputs(HintState::Clear, 48, FileState::Absent, 2 * GIB),
                none,
                None,
                46,
                46,
                SafeReason::Usable,
                w(56 * TIB, 8 * TIB),
            ),
            (
                "override: 1 TiB above RAM",
                inputs(HintState::Set, 46, valid(46), 2 * GIB),
                LayoutOptions {
                    old_kernels: false,
                    pci_mmio64_mb: Some(1 << 20),
                },
                Some(46),
                46,
                46,
                SafeReason::Usable,
                w(TIB, TIB),
            ),
        ];
        for (name, i, opts, backed, usable, safe, reason, window) in rows {
            let l = run(i, opts);
            assert_eq!(
                (l.backed_bits, l.usable_bits, l.safe_bits, l.safe_reason),
                (*backed, *usable, *safe, *reason),
                "{name}"
            );
            assert_eq!(l.mmio64, *window, "{name}: window");
        }
    }

    #[test]
    fn large_bars() {
        let valid = |p| FileState::Present(PhysBitsFile::new(true, p, 0));
        let four = [128 * GIB; 4];
        // 40 bits: the top eighth is 128 GiB: one BAR fits, four do not.
        let l = run(&inputs(HintState::Set, 40, valid(40), 2 * GIB), &OLD);
        assert!(l.bars_fit(&mut [128 * GIB]));
        assert!(!l.bars_fit(&mut four.clone()));
        // 36 bits (silent, conservative): the classic 32 GiB window.
        let l = run(
            &inputs(HintState::Clear, 40, FileState::Absent, 2 * GIB),
            &OLD,
        );
        assert_eq!(l.safe_bits, 36);
        assert!(!l.bars_fit(&mut [128 * GIB]));
        // 44 bits: 2 TiB window holds four.
        let l = run(&inputs(HintState::Set, 44, valid(44), 2 * GIB), &OLD);
        assert!(l.bars_fit(&mut four.clone()));
        // A 0 size disables the window.
        let off = LayoutOptions {
            old_kernels: false,
            pci_mmio64_mb: Some(0),
        };
        let l = run(&inputs(HintState::Set, 44, valid(44), 2 * GIB), &off);
        assert_eq!(l.mmio64, None);
        assert!(!l.bars_fit(&mut [GIB]) && l.bars_fit(&mut []));
    }

    #[test]
    fn backed_width_needs_a_statement_and_no_hard_conflict() {
        let valid = |p| FileState::Present(PhysBitsFile::new(true, p, 0));
        let conflicting = inputs(HintState::Set, 48, valid(47), 2 * GIB);
        assert_eq!(run(&conflicting, &OLD).backed_bits, None);
        let hint_only = inputs(HintState::Set, 46, FileState::Absent, 2 * GIB);
        assert_eq!(run(&hint_only, &OLD).backed_bits, Some(46));
    }
}
