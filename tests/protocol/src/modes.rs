// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Every mode's answer from one set of inputs: the firmware rules
//! (OVMF, SeaBIOS, GuestPhysBits-only), this project's strict policy over
//! each channel alone and over both, its combined policy, and the layout
//! (backed and safe width, the 64-bit window) of the strict decision.
//!
//! [`ModeAnswers::compute`] is the one computation: the test firmware and
//! the Linux probe report it from the values they already read (no
//! further CPUID or fw_cfg access), and the harness's situations table
//! computes the same for its simulated hosts, so the two compare as
//! values.

#[cfg(feature = "host")]
use serde::Deserialize;
use serde::Serialize;

use fw_cfg_guest::cpuid::HintState;
use fw_cfg_guest::layout::{self, LayoutOptions};
use fw_cfg_guest::peers::{
    self, OvmfPlatform, OvmfSetup, SeabiosCpu, Window, ovmf_mmio_window, seabios_mmio_window,
    seabios_phys_bits,
};
use fw_cfg_guest::policy::{ChannelInputs, FileState, PolicyMode, bits_to_reach, decide};

/// The lowest width SeaBIOS's layout is reported with when it has none.
const SEABIOS_FLOOR_BITS: u8 = 36;

/// A 64-bit MMIO window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "host", derive(Deserialize))]
pub struct WindowLine {
    /// First address.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
}

impl From<Window> for WindowLine {
    fn from(w: Window) -> Self {
        WindowLine {
            base: w.base,
            size: w.size,
        }
    }
}

impl From<WindowLine> for Window {
    fn from(w: WindowLine) -> Self {
        Window {
            base: w.base,
            size: w.size,
        }
    }
}

/// One mode's width and the 64-bit window it lays out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "host", derive(Deserialize))]
pub struct ModeAnswer {
    /// The width.
    pub phys_bits: u8,
    /// The window (`None`: no window).
    pub mmio64: Option<WindowLine>,
}

/// Why the safe width is what it is ([`layout::SafeReason`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "host", derive(Deserialize))]
#[serde(rename_all = "kebab-case")]
pub enum SafeReason {
    /// Nothing lowers the usable width.
    Usable,
    /// 4-level paging: at most 46.
    #[serde(rename = "4-level-paging")]
    FourLevelPaging,
    /// Old kernels: 44.
    OldKernels,
    /// Raised to reach the memory map's top.
    MemoryTop,
}

impl From<layout::SafeReason> for SafeReason {
    fn from(r: layout::SafeReason) -> Self {
        match r {
            layout::SafeReason::Usable => SafeReason::Usable,
            layout::SafeReason::FourLevelPaging => SafeReason::FourLevelPaging,
            layout::SafeReason::OldKernels => SafeReason::OldKernels,
            layout::SafeReason::MemoryTop => SafeReason::MemoryTop,
        }
    }
}

/// The strict decision's layout ([`layout::AddressLayout`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "host", derive(Deserialize))]
pub struct LayoutLine {
    /// The width the channels say the host backs.
    pub backed_bits: Option<u8>,
    /// The width safe to map.
    pub safe_bits: u8,
    /// Why.
    pub safe_reason: SafeReason,
    /// The recommended 64-bit window.
    pub mmio64: Option<WindowLine>,
}

/// Every mode's answer (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "host", derive(Deserialize))]
pub struct ModeAnswers {
    /// OVMF on QEMU's PC/Q35 ([`peers::ovmf`]).
    pub ovmf: ModeAnswer,
    /// SeaBIOS ([`seabios_phys_bits`], [`seabios_mmio_window`]).
    pub seabios: ModeAnswer,
    /// GuestPhysBits alone, with OVMF's window for its width.
    pub guest_phys_bits: ModeAnswer,
    /// Strict over the hint alone (the file hidden).
    pub hint_only: ModeAnswer,
    /// Strict over the file alone (the hint hidden).
    pub file_only: ModeAnswer,
    /// Strict over both channels.
    pub strict: ModeAnswer,
    /// Combined.
    pub combined: ModeAnswer,
    /// The strict decision's layout.
    pub layout: LayoutLine,
}

/// Our policy in `mode` over `inputs`, with its layout.
fn ours(inputs: &ChannelInputs, mode: PolicyMode) -> (ModeAnswer, layout::AddressLayout) {
    let d = decide(inputs, mode);
    let l = layout::layout(inputs, &d, &LayoutOptions::default());
    let answer = ModeAnswer {
        phys_bits: d.phys_bits,
        mmio64: l.mmio64.map(WindowLine::from),
    };
    (answer, l)
}

/// SeaBIOS's width and the window it lays out for `bars` (sorted).
/// Without a width it lays out what RAM and the BARs need.
fn seabios(inputs: &ChannelInputs, cpu: &SeabiosCpu, bars: &mut [u64]) -> ModeAnswer {
    let top = inputs.memory_top;
    let bits = seabios_phys_bits(cpu);
    let above_4g = top.saturating_sub(1 << 32);
    let w = seabios_mmio_window(bits, above_4g, 0, bars);
    let used = bits_to_reach(top.max(w.end())).max(SEABIOS_FLOOR_BITS);
    ModeAnswer {
        phys_bits: bits.unwrap_or(used),
        mmio64: Some(w.into()),
    }
}

impl ModeAnswers {
    /// Every mode over `inputs` (the memory top included), SeaBIOS reading
    /// `cpu`; `bars` are the 64-bit BARs SeaBIOS places (empty for none;
    /// sorted on return).
    pub fn compute(inputs: &ChannelInputs, cpu: &SeabiosCpu, bars: &mut [u64]) -> Self {
        let qemu = OvmfSetup::new(OvmfPlatform::Qemu);
        let o = peers::ovmf(inputs, &qemu);
        let (g, _) = peers::guest_phys_bits_only(inputs);
        let hidden_file = ChannelInputs {
            file: FileState::Absent,
            ..*inputs
        };
        let hidden_hint = ChannelInputs {
            hint: HintState::NoKvmLeaf,
            ..*inputs
        };
        let (strict, l) = ours(inputs, PolicyMode::Strict);
        ModeAnswers {
            ovmf: ModeAnswer {
                phys_bits: o.phys_bits,
                mmio64: o.mmio64.map(WindowLine::from),
            },
            seabios: seabios(inputs, cpu, bars),
            guest_phys_bits: ModeAnswer {
                phys_bits: g,
                mmio64: ovmf_mmio_window(g, inputs.memory_top, &qemu).map(WindowLine::from),
            },
            hint_only: ours(&hidden_file, PolicyMode::Strict).0,
            file_only: ours(&hidden_hint, PolicyMode::Strict).0,
            strict,
            combined: ours(inputs, PolicyMode::Combined).0,
            layout: LayoutLine {
                backed_bits: l.backed_bits,
                safe_bits: l.safe_bits,
                safe_reason: l.safe_reason.into(),
                mmio64: l.mmio64.map(WindowLine::from),
            },
        }
    }

    /// The answers in the order ovmf, seabios, guest-phys-bits, hint-only,
    /// file-only, strict, combined.
    pub fn as_array(&self) -> [&ModeAnswer; 7] {
        [
            &self.ovmf,
            &self.seabios,
            &self.guest_phys_bits,
            &self.hint_only,
            &self.file_only,
            &self.strict,
            &self.combined,
        ]
    }
}

impl crate::CpuidLine {
    /// SeaBIOS's CPU facts from this report, read by 64-bit code (so long
    /// mode and PAE are there): what [`ModeAnswers::compute`] is given by
    /// the firmware and the probe ([`SeabiosCpu::from_report`]).
    pub fn seabios_cpu(&self) -> SeabiosCpu {
        SeabiosCpu {
            vendor: self.vendor.to_guest(),
            pae: true,
            long_mode: true,
            has_address_sizes: self.has_address_sizes,
            phys_bits: self.phys_bits,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fw_cfg_guest::abi::PhysBitsFile;
    use fw_cfg_guest::cpuid::Vendor;

    fn inputs(hint: HintState, file: FileState) -> ChannelInputs {
        ChannelInputs {
            hint,
            has_address_sizes: true,
            phys_bits: 48,
            guest_phys_bits: 0,
            ext_vendor: Some(Vendor::Amd),
            file,
            five_level_paging: false,
            gb_pages: true,
            memory_top: 8 << 30,
            sev_c_bit: None,
            tdx: false,
        }
    }

    fn cpu() -> SeabiosCpu {
        SeabiosCpu {
            vendor: Vendor::Amd,
            pae: true,
            long_mode: true,
            has_address_sizes: true,
            phys_bits: 48,
        }
    }

    /// Each channel alone: hint-only follows the hint, file-only the file;
    /// the layout is strict's.
    #[test]
    fn each_channel_alone() {
        let file = FileState::Present(PhysBitsFile::new(true, 48, 0));
        let a = ModeAnswers::compute(&inputs(HintState::Clear, file), &cpu(), &mut []);
        assert_eq!(a.file_only.phys_bits, 48);
        assert_eq!(a.strict.phys_bits, 48);
        assert_ne!(a.hint_only.phys_bits, 48);
        assert_eq!(a.layout.mmio64, a.strict.mmio64);
        assert_eq!(a.layout.safe_reason, SafeReason::FourLevelPaging);
        let b = ModeAnswers::compute(&inputs(HintState::Set, FileState::Absent), &cpu(), &mut []);
        assert_eq!((b.hint_only.phys_bits, b.file_only.phys_bits), (48, 36));
        // SeaBIOS trusts 48 bits (>= 41) and ignores both channels.
        assert_eq!(a.seabios, b.seabios);
        assert_eq!(a.seabios.phys_bits, 48);
    }
}
