// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! What real firmware does with the CPUID width, rule for rule: OVMF,
//! SeaBIOS and a GuestPhysBits-only reader. These are peers to compare the
//! two proposed channels with, not policies this crate recommends
//! ([`crate::policy`] holds ours).
//!
//! # OVMF (edk2 `OvmfPkg/Library/PlatformInitLib/MemDetect.c`)
//!
//! `PlatformAddressWidthInitialization` computes `FirstNonAddress`, the
//! end of what firmware may use: the top of RAM (at least 4 GiB), raised
//! to the declared hotplug end, then the classic 64-bit PCI aperture
//! (default 32 GiB, or `opt/ovmf/X-PciMmio64Mb` MiB up to 16 TiB) placed
//! above it, 1 GiB aligned and naturally aligned to its size
//! ([`ovmf_classic_window`]). `PlatformAddressWidthFromCpuid(QemuQuirk)`
//! then reads CPUID ([`ovmf_cpuid_width`]):
//!
//! | step | rule |
//! |---|---|
//! | inputs | signature of leaf 0x8000_0000 (not leaf 0); 1 GiB pages from 0x8000_0001 EDX\[26\]; `P` = 0x8000_0008 EAX\[7:0\] and `G` = EAX\[23:16\], or 36/0 without the leaf |
//! | valid | no QEMU quirk (microvm, Cloud Hypervisor), or `G` ≠ 0, or `P` ≥ 41, or Intel with `P` ∈ {36, 39}, or AMD with `P` = 40 |
//! | cap | `P` at `G` when `G` ≠ 0 and smaller (before the validity matters) |
//! | paging | LA57 in use: 48 when `P` > 48 and `G` = 0; 4-level: 46 when `P` > 46 |
//! | 1 GiB | 40 without 1 GiB pages (and without `PcdUse1GPageTable`, set in the stock builds) |
//!
//! On QEMU's machines a valid non-zero width makes the 64-bit window the
//! top eighth of the address space (`PlatformDynamicMmioWindow`), unless
//! the override is given or the classic window is already larger
//! ([`ovmf_mmio_window`]). An unknown width (invalid, or 0) is the
//! smallest power of two covering `FirstNonAddress`, never below 36; a TDX
//! guest gets 48 when its shared bit is bit 47, else 52. microvm trusts
//! CPUID and computes no window; Cloud Hypervisor trusts CPUID and spans
//! the window from the RAM top to 2^W. Not modelled: the e820 reservation
//! check that may move the dynamic window down
//! (`PlatformReservationConflictCB`) and the host-provided
//! `etc/hardware-info` end.
//!
//! # SeaBIOS (`src/fw/paravirt.c` `physbits()`, `src/fw/pciinit.c`)
//!
//! Runs only on QEMU's PC and Q35 machines (a host bridge at 00:00.0; not
//! on microvm). Vendor from leaf 0; needs PAE (leaf 1 EDX\[6\]), long mode
//! (0x8000_0001 EDX\[29\]) and the 0x8000_0008 leaf, else the width is 36
//! with PAE or 32, called valid. Otherwise valid when `P` ≥ 41, Intel 36/39
//! or AMD 40; GuestPhysBits is never read ([`seabios_phys_bits`]). The top
//! of the 64-bit window is 2^W, or 2^44 when `W` > 44 and the RAM above
//! 4 GiB is smaller than 1 TiB (old kernels); without a valid width the
//! window sits right above RAM ([`seabios_mmio_window`]).
//!
//! # GuestPhysBits only
//!
//! Firmware that trusts CPUID 0x8000_0008 EAX\[23:16\] and nothing else,
//! as the two Rust readers that do so are written: virtfw-libhw 0.5's
//! `cpu_phys_bits` and Oak stage0's `Platform::guest_phys_addr_size`. A
//! non-zero `G` is the answer as it stands (neither caps it by `P`;
//! QEMU never sets `G > P`); `G = 0` means "same as `P`", so the answer
//! is EAX\[7:0\], trusted as it stands, which is exactly QEMU's legacy
//! problem. Without the 0x8000_0008 leaf virtfw-libhw answers 36 (Oak
//! reads the leaf unconditionally; 36 is the architectural default it
//! would be given here). The memory map is never consulted
//! ([`guest_phys_bits_only`]).
//!
//! ```
//! use fw_cfg_guest::cpuid::{HintState, Vendor};
//! use fw_cfg_guest::peers::{ovmf, OvmfPlatform, OvmfSetup, WidthSource};
//! use fw_cfg_guest::policy::{ChannelInputs, FileState};
//!
//! let inputs = ChannelInputs {
//!     hint: HintState::NoKvmLeaf, has_address_sizes: true, phys_bits: 48, guest_phys_bits: 0,
//!     ext_vendor: Some(Vendor::Amd), file: FileState::Absent, five_level_paging: false,
//!     gb_pages: true, memory_top: 8 << 30, sev_c_bit: None, tdx: false,
//! };
//! let a = ovmf(&inputs, &OvmfSetup::new(OvmfPlatform::Qemu));
//! assert_eq!((a.phys_bits, a.source), (46, WidthSource::Cpuid));
//! // The top eighth of 2^46: 8 TiB at 56 TiB.
//! let w = a.mmio64.unwrap();
//! assert_eq!((w.base >> 40, w.size >> 40), (56, 8));
//! ```

use crate::abi::CONSERVATIVE_PHYS_BITS;
use crate::cpuid::{CpuidReport, CpuidSource, Vendor};
use crate::policy::{
    ChannelInputs, HEURISTIC_CAP_4LEVEL, HEURISTIC_CAP_5LEVEL_NO_GUEST_BITS,
    HEURISTIC_CAP_NO_GB_PAGES, bits_to_reach,
};

/// 1 GiB.
const GIB: u64 = 1 << 30;
/// 4 GiB: OVMF's and SeaBIOS's lowest `FirstNonAddress` / 64-bit base.
const BASE_4GB: u64 = 1 << 32;
/// OVMF's default 64-bit PCI aperture (`PcdPciMmio64Size`, 32 GiB).
pub const OVMF_DEFAULT_PCI_MMIO64_SIZE: u64 = 32 << 30;
/// The largest `opt/ovmf/X-PciMmio64Mb` OVMF accepts (16 TiB in MiB).
pub const OVMF_PCI_MMIO64_MB_MAX: u32 = 0x100_0000;
/// The fw_cfg file through which the user sets OVMF's aperture in MiB.
pub const OVMF_PCI_MMIO64_MB_FILE: &str = "opt/ovmf/X-PciMmio64Mb";
/// SeaBIOS caps the 64-bit window's top at 2^44 for old kernels.
pub const SEABIOS_WINDOW_CAP_BITS: u8 = 44;
/// SeaBIOS lifts that cap when RAM above 4 GiB reaches 1 TiB.
pub const SEABIOS_HUGE_GUEST_RAM: u64 = 1 << 40;

/// Leaf 1 EDX bit 6: PAE.
const CPUID_1_EDX_PAE: u32 = 1 << 6;
/// 0x8000_0001 EDX bit 29: long mode.
const CPUID_EXT_EDX_LM: u32 = 1 << 29;

/// A range of guest-physical addresses for 64-bit PCI BARs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First address.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
}

impl Window {
    /// The exclusive end (saturating).
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }

    /// Whether BARs of these sizes fit, each naturally aligned (a size is
    /// rounded up to a power of two, as a BAR's is), placed largest first
    /// as PCI resource allocators do. Sorts `bars`.
    ///
    /// ```
    /// use fw_cfg_guest::peers::Window;
    /// let w = Window { base: 7 << 40, size: 1 << 40 };
    /// assert!(w.fits(&mut [128 << 30; 4]));
    /// let small = Window { base: 32 << 30, size: 32 << 30 };
    /// assert!(!small.fits(&mut [128 << 30]));
    /// ```
    pub fn fits(&self, bars: &mut [u64]) -> bool {
        bars.sort_unstable_by(|a, b| b.cmp(a));
        let mut next = self.base;
        for &bar in bars.iter() {
            let Some(size) = bar.max(1).checked_next_power_of_two() else {
                return false;
            };
            let Some(end) = align_up(next, size).and_then(|b| b.checked_add(size)) else {
                return false;
            };
            next = end;
        }
        next <= self.end()
    }
}

/// `v` rounded up to a multiple of the power of two `align` (`None` on
/// overflow); an `align` of 0 or 1 leaves `v`.
fn align_up(v: u64, align: u64) -> Option<u64> {
    if align <= 1 {
        return Some(v);
    }
    v.checked_add(align - 1).map(|x| x & !(align - 1))
}

/// The largest power of two not above `v` (0 for 0): edk2's
/// `GetPowerOfTwo64`.
fn power_of_two_floor(v: u64) -> u64 {
    if v == 0 {
        0
    } else {
        1 << (63 - v.leading_zeros())
    }
}

/// The largest `opt/ovmf/X-PciMmio64Mb` file OVMF reads: a UINT64 in
/// decimal (20 digits) or hex with `0x` (18), a NUL and `\r\n`.
const OVMF_UINT_FILE_MAX: usize = 23;

/// Parses `opt/ovmf/X-PciMmio64Mb` as OVMF's `QemuFwCfgParseUint32`
/// (decimal) does: at most 23 bytes, up to a NUL (one is appended when
/// missing and there is room), one trailing `\n` or `\r\n` dropped, leading
/// blanks passed over, then decimal digits only, within `u32`. `None`: OVMF
/// ignores the file.
///
/// ```
/// use fw_cfg_guest::peers::parse_pci_mmio64_mb;
/// assert_eq!(parse_pci_mmio64_mb(b"65536\n"), Some(65536));
/// assert_eq!(parse_pci_mmio64_mb(b"0x10000"), None);
/// ```
pub fn parse_pci_mmio64_mb(bytes: &[u8]) -> Option<u32> {
    if bytes.len() > OVMF_UINT_FILE_MAX {
        return None;
    }
    let s = match bytes.split_last() {
        Some((0, rest)) => rest,
        _ if bytes.len() == OVMF_UINT_FILE_MAX => return None,
        _ => bytes,
    };
    let s = s
        .strip_suffix(b"\r\n")
        .or_else(|| s.strip_suffix(b"\n"))
        .unwrap_or(s);
    let s = s.split(|&b| b == 0).next().unwrap_or(&[]);
    let start = s
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(s.len());
    let digits = &s[start..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u32, |v, &d| {
        v.checked_mul(10)?.checked_add(u32::from(d - b'0'))
    })
}

/// Reads and parses [`OVMF_PCI_MMIO64_MB_FILE`] ([`parse_pci_mmio64_mb`]);
/// `None` when it is absent, unreadable or malformed, as OVMF ignores it.
pub fn read_pci_mmio64_mb<T: crate::transport::FwCfgTransport>(
    reader: &mut crate::reader::FwCfgReader<T>,
) -> Option<u32> {
    let mut buf = [0u8; OVMF_UINT_FILE_MAX];
    let n = reader.read_file(OVMF_PCI_MMIO64_MB_FILE, &mut buf).ok()?;
    parse_pci_mmio64_mb(&buf[..n])
}

/// Which OVMF platform path runs (the host bridge OVMF finds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OvmfPlatform {
    /// QEMU's PC or Q35: the vendor quirk applies.
    Qemu,
    /// QEMU's microvm (no host bridge): CPUID is trusted, no window.
    Microvm,
    /// Cloud Hypervisor: CPUID is trusted, window from the RAM top to 2^W.
    CloudHypervisor,
}

/// What OVMF reads besides CPUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OvmfSetup {
    /// The platform path.
    pub platform: OvmfPlatform,
    /// `opt/ovmf/X-PciMmio64Mb` as parsed (`None`: absent). Values above
    /// [`OVMF_PCI_MMIO64_MB_MAX`] are ignored, as OVMF does.
    pub pci_mmio64_mb: Option<u32>,
}

impl OvmfSetup {
    /// The platform with no override.
    pub const fn new(platform: OvmfPlatform) -> Self {
        OvmfSetup {
            platform,
            pci_mmio64_mb: None,
        }
    }

    /// The aperture size and whether the user set it.
    fn aperture(&self) -> (u64, bool) {
        match self.pci_mmio64_mb {
            Some(mb) if mb <= OVMF_PCI_MMIO64_MB_MAX => (u64::from(mb) << 20, true),
            _ => (OVMF_DEFAULT_PCI_MMIO64_SIZE, false),
        }
    }
}

/// Where OVMF's width came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WidthSource {
    /// CPUID, accepted by `PlatformAddressWidthFromCpuid`.
    Cpuid,
    /// The smallest power of two covering `FirstNonAddress` (at least 36).
    MemoryMap,
    /// A TDX guest's width from its shared bit (48 or 52).
    Tdx,
}

/// OVMF's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OvmfAnswer {
    /// `PhysMemAddressWidth`.
    pub phys_bits: u8,
    /// Where it came from.
    pub source: WidthSource,
    /// The 64-bit PCI window (`None` on microvm, or with a 0 aperture).
    pub mmio64: Option<Window>,
}

/// OVMF's `PlatformAddressWidthFromCpuid`: `Some(width)` when it accepts
/// CPUID (the width may be 0, which the QEMU path then treats as unknown).
/// `quirk` is `QemuQuirk` (true on QEMU's PC/Q35).
pub fn ovmf_cpuid_width(inputs: &ChannelInputs, quirk: bool) -> Option<u8> {
    let (mut p, g) = if inputs.has_address_sizes {
        (inputs.phys_bits, inputs.guest_phys_bits)
    } else {
        (CONSERVATIVE_PHYS_BITS, 0)
    };
    let vendor = inputs.ext_vendor;
    let valid = !quirk
        || g != 0
        || p >= 41
        || (vendor == Some(Vendor::Intel) && (p == 36 || p == 39))
        || (vendor == Some(Vendor::Amd) && p == 40);
    if g != 0 && p > g {
        p = g;
    }
    if !valid {
        return None;
    }
    if inputs.five_level_paging {
        if p > HEURISTIC_CAP_5LEVEL_NO_GUEST_BITS && g == 0 {
            p = HEURISTIC_CAP_5LEVEL_NO_GUEST_BITS;
        }
    } else {
        p = p.min(HEURISTIC_CAP_4LEVEL);
    }
    if !inputs.gb_pages {
        p = p.min(HEURISTIC_CAP_NO_GB_PAGES);
    }
    Some(p)
}

/// OVMF's classic 64-bit aperture (`PlatformGetFirstNonAddress`): above
/// the RAM top (at least 4 GiB) or hotplug end, 1 GiB aligned, naturally
/// aligned to its size. `None` for a 0 size.
pub fn ovmf_classic_window(memory_top: u64, setup: &OvmfSetup) -> Option<Window> {
    let (size, _) = setup.aperture();
    let size = align_up(size, GIB)?;
    if size == 0 {
        return None;
    }
    let base = align_up(memory_top.max(BASE_4GB), GIB)?;
    let base = align_up(base, power_of_two_floor(size))?;
    Some(Window { base, size })
}

/// The 64-bit window OVMF uses on QEMU's machines for a known width
/// `bits` (`PlatformDynamicMmioWindow`): the top eighth of 2^bits when
/// that is larger than the classic window and lies above it, unless the
/// user set the aperture size.
pub fn ovmf_mmio_window(bits: u8, memory_top: u64, setup: &OvmfSetup) -> Option<Window> {
    let classic = ovmf_classic_window(memory_top, setup);
    let (_, overridden) = setup.aperture();
    if overridden || !(3..64).contains(&bits) {
        return classic;
    }
    let space = 1u64 << bits;
    let mmio = 1u64 << (bits - 3);
    let (base, size) = classic.map_or((0, 0), |w| (w.base, w.size));
    if size < mmio && base.saturating_add(mmio) < space {
        Some(Window {
            base: space - mmio,
            size: mmio,
        })
    } else {
        classic
    }
}

/// OVMF's width and window (module docs), from the channel inputs (the
/// vendor, widths, paging facts, memory top and TDX flag; the channels
/// themselves are ignored).
pub fn ovmf(inputs: &ChannelInputs, setup: &OvmfSetup) -> OvmfAnswer {
    let top = inputs.memory_top;
    match setup.platform {
        OvmfPlatform::Microvm => OvmfAnswer {
            phys_bits: ovmf_cpuid_width(inputs, false).unwrap_or(0),
            source: WidthSource::Cpuid,
            mmio64: None,
        },
        OvmfPlatform::CloudHypervisor => {
            let bits = ovmf_cpuid_width(inputs, false).unwrap_or(0);
            let base = top.max(BASE_4GB);
            let end = if bits == 0 { 1 } else { 1u64 << bits.min(63) };
            OvmfAnswer {
                phys_bits: bits,
                source: WidthSource::Cpuid,
                mmio64: Some(Window {
                    base,
                    size: end.wrapping_sub(base),
                }),
            }
        }
        OvmfPlatform::Qemu => match ovmf_cpuid_width(inputs, true).filter(|&w| w != 0) {
            Some(bits) => OvmfAnswer {
                phys_bits: bits,
                source: WidthSource::Cpuid,
                mmio64: ovmf_mmio_window(bits, top, setup),
            },
            None => {
                let classic = ovmf_classic_window(top, setup);
                let first_non_address = classic.map_or(top.max(BASE_4GB), |w| w.end());
                let (phys_bits, source) = if inputs.tdx {
                    // TdSharedPageMask is 1 << (GPAW - 1).
                    let bits = if inputs.phys_bits == 48 { 48 } else { 52 };
                    (bits, WidthSource::Tdx)
                } else {
                    let bits = bits_to_reach(first_non_address).max(CONSERVATIVE_PHYS_BITS);
                    (bits, WidthSource::MemoryMap)
                };
                OvmfAnswer {
                    phys_bits,
                    source,
                    mmio64: classic,
                }
            }
        },
    }
}

/// The CPUID facts SeaBIOS's `physbits()` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeabiosCpu {
    /// Leaf 0's vendor.
    pub vendor: Vendor,
    /// Leaf 1 EDX\[6\].
    pub pae: bool,
    /// 0x8000_0001 EDX\[29\].
    pub long_mode: bool,
    /// Whether 0x8000_0008 exists.
    pub has_address_sizes: bool,
    /// 0x8000_0008 EAX\[7:0\].
    pub phys_bits: u8,
}

impl SeabiosCpu {
    /// Reads the leaves as SeaBIOS does.
    pub fn read(src: &impl CpuidSource) -> Self {
        let leaf0 = src.cpuid(0, 0);
        let pae = leaf0.eax >= 1 && src.cpuid(1, 0).edx & CPUID_1_EDX_PAE != 0;
        let max = src.cpuid(0x8000_0000, 0).eax;
        let long_mode = max >= 0x8000_0001 && src.cpuid(0x8000_0001, 0).edx & CPUID_EXT_EDX_LM != 0;
        let has_address_sizes = max >= 0x8000_0008;
        let phys_bits = if has_address_sizes {
            src.cpuid(0x8000_0008, 0).eax as u8
        } else {
            0
        };
        SeabiosCpu {
            vendor: Vendor::from_leaf0(&leaf0),
            pae,
            long_mode,
            has_address_sizes,
            phys_bits,
        }
    }

    /// From a report read by 64-bit code: such a CPU has long mode and so
    /// PAE.
    pub fn from_report(report: &CpuidReport) -> Self {
        SeabiosCpu {
            vendor: report.vendor,
            pae: true,
            long_mode: true,
            has_address_sizes: report.has_address_sizes,
            phys_bits: report.phys_bits,
        }
    }
}

/// SeaBIOS's `CPUPhysBits`: `Some(width)` when `physbits()` calls it valid
/// (module docs).
pub fn seabios_phys_bits(cpu: &SeabiosCpu) -> Option<u8> {
    if !(cpu.pae && cpu.long_mode && cpu.has_address_sizes) {
        return Some(if cpu.pae { 36 } else { 32 });
    }
    let p = cpu.phys_bits;
    let valid = p >= 41
        || (cpu.vendor == Vendor::Intel && (p == 36 || p == 39))
        || (cpu.vendor == Vendor::Amd && p == 40);
    valid.then_some(p)
}

/// SeaBIOS's `pci_mem64_top`: 2^W, capped at 2^44 when `W` > 44 and the
/// RAM above 4 GiB is below 1 TiB; `None` without a valid width.
pub fn seabios_mem64_top(bits: Option<u8>, ram_above_4g: u64) -> Option<u64> {
    let bits = bits.filter(|&b| b < 64)?;
    if bits > SEABIOS_WINDOW_CAP_BITS && ram_above_4g < SEABIOS_HUGE_GUEST_RAM {
        Some(1 << SEABIOS_WINDOW_CAP_BITS)
    } else {
        Some(1 << bits)
    }
}

/// The 64-bit window SeaBIOS's `pci_bios_map_devices` lays out for
/// prefetchable 64-bit BARs of `bars` bytes, padded to an eighth of the
/// top when RAM lies above 4 GiB (the default of `opt/org.seabios/pci64`),
/// placed at the top when the width is valid, else right above RAM (or
/// the hotplug end). The e820 collision check is not modelled. Sorts
/// `bars`.
pub fn seabios_mmio_window(
    bits: Option<u8>,
    ram_above_4g: u64,
    reserved_memory_end: u64,
    bars: &mut [u64],
) -> Window {
    bars.sort_unstable_by(|a, b| b.cmp(a));
    let sum: u64 = bars.iter().fold(0u64, |s, b| s.saturating_add(*b));
    let align = bars.first().copied().unwrap_or(1).max(1);
    let top = seabios_mem64_top(bits, ram_above_4g);
    let mut size = align_up(sum, GIB).unwrap_or(u64::MAX);
    let pad = ram_above_4g != 0;
    let mut base = reserved_memory_end.max(BASE_4GB.saturating_add(ram_above_4g));
    if let Some(top) = top {
        if pad {
            size = align_up(size, top >> 3).unwrap_or(u64::MAX);
        }
        // The C code computes `top - size` in u64 arithmetic.
        if base < top.wrapping_sub(size) {
            base = top.wrapping_sub(size);
        }
    }
    let base = align_up(base, GIB).unwrap_or(base);
    let pref = align_up(base, align)
        .and_then(|b| align_up(b, GIB))
        .unwrap_or(base);
    let end = align_up(pref.saturating_add(sum), GIB).unwrap_or(u64::MAX);
    Window {
        base,
        size: end - base,
    }
}

/// The GuestPhysBits-only rule (module docs): a non-zero `G`, else `P`,
/// else (no 0x8000_0008 leaf) 36; and whether `G` decided.
pub fn guest_phys_bits_only(inputs: &ChannelInputs) -> (u8, bool) {
    let g = inputs.guest_phys_bits;
    if !inputs.has_address_sizes {
        (CONSERVATIVE_PHYS_BITS, false)
    } else if g != 0 {
        (g, true)
    } else {
        (inputs.phys_bits, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpuid::{CpuidResult, HintState};
    use crate::policy::FileState;

    const TIB: u64 = 1 << 40;

    fn cpu(vendor: Option<Vendor>, phys: u8, guest: u8) -> ChannelInputs {
        ChannelInputs {
            hint: HintState::NoKvmLeaf,
            has_address_sizes: true,
            phys_bits: phys,
            guest_phys_bits: guest,
            ext_vendor: vendor,
            file: FileState::Absent,
            five_level_paging: false,
            gb_pages: true,
            memory_top: 2 * GIB,
            sev_c_bit: None,
            tdx: false,
        }
    }

    const I: Option<Vendor> = Some(Vendor::Intel);
    const A: Option<Vendor> = Some(Vendor::Amd);

    /// Every rule of `PlatformAddressWidthFromCpuid`, one row each.
    #[test]
    fn ovmf_cpuid_rules() {
        let la57 = |i: ChannelInputs| ChannelInputs {
            five_level_paging: true,
            ..i
        };
        let no_gb = |i: ChannelInputs| ChannelInputs {
            gb_pages: false,
            ..i
        };
        let no_leaf = ChannelInputs {
            has_address_sizes: false,
            ..cpu(I, 0, 0)
        };
        // (row, inputs, quirk, answer)
        let rows: &[(&str, ChannelInputs, bool, Option<u8>)] = &[
            ("intel 36", cpu(I, 36, 0), true, Some(36)),
            ("intel 39", cpu(I, 39, 0), true, Some(39)),
            ("intel 40 (QEMU's legacy)", cpu(I, 40, 0), true, None),
            ("amd 40", cpu(A, 40, 0), true, Some(40)),
            ("amd 39", cpu(A, 39, 0), true, None),
            (
                "empty signature 39 (QEMU 10.1)",
                cpu(None, 39, 0),
                true,
                None,
            ),
            ("41 is always valid", cpu(None, 41, 0), true, Some(41)),
            ("48: 4-level caps at 46", cpu(None, 48, 0), true, Some(46)),
            ("GuestPhysBits validates 40", cpu(I, 40, 39), true, Some(39)),
            ("no quirk: any width", cpu(None, 38, 0), false, Some(38)),
            (
                "no quirk: 52 still capped",
                cpu(None, 52, 0),
                false,
                Some(46),
            ),
            ("no leaf: 36, Intel valid", no_leaf, true, Some(36)),
            ("la57 52, no G: 48", la57(cpu(I, 52, 0)), true, Some(48)),
            ("la57 52/52: 52", la57(cpu(I, 52, 52)), true, Some(52)),
            (
                "la57 57/57: no 52 cap",
                la57(cpu(I, 57, 57)),
                true,
                Some(57),
            ),
            ("la57 46: kept", la57(cpu(I, 46, 0)), true, Some(46)),
            ("no 1 GiB pages: 40", no_gb(cpu(I, 48, 0)), true, Some(40)),
            (
                "leaf says 0, G 40: valid, width 0",
                cpu(I, 0, 40),
                true,
                Some(0),
            ),
        ];
        for (name, i, quirk, want) in rows {
            assert_eq!(ovmf_cpuid_width(i, *quirk), *want, "{name}");
        }
    }

    #[test]
    fn ovmf_unknown_width_follows_first_non_address() {
        let q = OvmfSetup::new(OvmfPlatform::Qemu);
        // 2 GiB of RAM: FirstNonAddress = 32 GiB + 32 GiB = 2^36.
        let a = ovmf(&cpu(I, 40, 0), &q);
        assert_eq!((a.phys_bits, a.source), (36, WidthSource::MemoryMap));
        assert_eq!(
            a.mmio64,
            Some(Window {
                base: 32 * GIB,
                size: 32 * GIB
            })
        );
        // RAM to 100 GiB: aperture at 128 GiB, end 160 GiB: 38 bits.
        let big = ChannelInputs {
            memory_top: 100 * GIB,
            ..cpu(I, 40, 0)
        };
        assert_eq!(ovmf(&big, &q).phys_bits, 38);
        // RAM to 2 TiB + 1: 2 TiB + 1 GiB base rounded to 32 GiB.
        let huge = ChannelInputs {
            memory_top: 2 * TIB + 1,
            ..cpu(I, 40, 0)
        };
        let a = ovmf(&huge, &q);
        assert_eq!(a.mmio64.map(|w| w.base), Some(2 * TIB + 32 * GIB));
        assert_eq!(a.phys_bits, 42);
        // The override sets the size; 0 disables the aperture.
        let o = OvmfSetup {
            pci_mmio64_mb: Some(512 * 1024),
            ..q
        };
        let a = ovmf(&cpu(I, 40, 0), &o);
        assert_eq!(
            a.mmio64,
            Some(Window {
                base: 512 * GIB,
                size: 512 * GIB
            })
        );
        assert_eq!(a.phys_bits, 40);
        let off = OvmfSetup {
            pci_mmio64_mb: Some(0),
            ..q
        };
        assert_eq!(ovmf(&cpu(I, 40, 0), &off).mmio64, None);
        assert_eq!(ovmf(&cpu(I, 40, 0), &off).phys_bits, 36);
        // Too large an override is ignored.
        let bad = OvmfSetup {
            pci_mmio64_mb: Some(OVMF_PCI_MMIO64_MB_MAX + 1),
            ..q
        };
        assert_eq!(ovmf(&cpu(I, 40, 0), &bad), ovmf(&cpu(I, 40, 0), &q));
    }

    #[test]
    fn ovmf_tdx_and_platform_paths() {
        let q = OvmfSetup::new(OvmfPlatform::Qemu);
        let tdx = |p| ChannelInputs {
            tdx: true,
            ..cpu(I, p, 0)
        };
        // TDX's CPUID width is valid (>= 41) and capped like any other.
        assert_eq!(ovmf(&tdx(52), &q).phys_bits, 46);
        // Unknown (Intel 40) under TDX: the shared bit (GPAW 40: not bit
        // 47) gives 52.
        let a = ovmf(&tdx(40), &q);
        assert_eq!((a.phys_bits, a.source), (52, WidthSource::Tdx));
        // microvm: no quirk, QEMU's legacy 40 is trusted, no window.
        let m = ovmf(&cpu(I, 40, 0), &OvmfSetup::new(OvmfPlatform::Microvm));
        assert_eq!((m.phys_bits, m.mmio64), (40, None));
        // Cloud Hypervisor: window from the RAM top (at least 4 GiB) to 2^W.
        let ch = ovmf(
            &cpu(None, 46, 46),
            &OvmfSetup::new(OvmfPlatform::CloudHypervisor),
        );
        assert_eq!(ch.phys_bits, 46);
        assert_eq!(
            ch.mmio64,
            Some(Window {
                base: BASE_4GB,
                size: (1 << 46) - BASE_4GB
            })
        );
    }

    #[test]
    fn ovmf_dynamic_window() {
        let q = OvmfSetup::new(OvmfPlatform::Qemu);
        // 40 bits: the top eighth is 128 GiB at 896 GiB.
        assert_eq!(
            ovmf_mmio_window(40, 2 * GIB, &q),
            Some(Window {
                base: 896 * GIB,
                size: 128 * GIB
            })
        );
        // 36 bits: the eighth (8 GiB) is smaller than 32 GiB: classic.
        assert_eq!(
            ovmf_mmio_window(36, 2 * GIB, &q),
            ovmf_classic_window(2 * GIB, &q)
        );
        // The override keeps the classic window whatever the width.
        let o = OvmfSetup {
            pci_mmio64_mb: Some(1024),
            ..q
        };
        assert_eq!(
            ovmf_mmio_window(46, 2 * GIB, &o),
            Some(Window {
                base: 4 * GIB,
                size: GIB
            })
        );
        // RAM reaching into the top eighth: classic above the RAM.
        let w = ovmf_mmio_window(40, 900 * GIB, &q).unwrap();
        assert_eq!(w.base, 928 * GIB);
    }

    struct Regs {
        leaf0: CpuidResult,
        edx1: u32,
        max_ext: u32,
        edx_ext1: u32,
        sizes: u32,
    }
    impl CpuidSource for Regs {
        fn cpuid(&self, leaf: u32, _: u32) -> CpuidResult {
            let r = |eax, edx| CpuidResult {
                eax,
                ebx: 0,
                ecx: 0,
                edx,
            };
            match leaf {
                0 => self.leaf0,
                1 => r(0, self.edx1),
                0x8000_0000 => r(self.max_ext, 0),
                0x8000_0001 => r(0, self.edx_ext1),
                0x8000_0008 => r(self.sizes, 0),
                _ => CpuidResult::default(),
            }
        }
    }
    const INTEL0: CpuidResult = CpuidResult {
        eax: 0xd,
        ebx: 0x756e_6547,
        ecx: 0x6c65_746e,
        edx: 0x4965_6e69,
    };
    const AMD0: CpuidResult = CpuidResult {
        eax: 0xd,
        ebx: 0x6874_7541,
        ecx: 0x444d_4163,
        edx: 0x6974_6e65,
    };

    /// Every rule of `physbits()`, from raw CPUID.
    #[test]
    fn seabios_physbits_rules() {
        let full = |leaf0, sizes| Regs {
            leaf0,
            edx1: CPUID_1_EDX_PAE,
            max_ext: 0x8000_0008,
            edx_ext1: CPUID_EXT_EDX_LM,
            sizes,
        };
        // (row, CPU, CPUPhysBits)
        let rows: &[(&str, Regs, Option<u8>)] = &[
            ("intel 39 (leaf 0 vendor)", full(INTEL0, 39), Some(39)),
            ("intel 36", full(INTEL0, 36), Some(36)),
            ("intel 40: invalid", full(INTEL0, 40), None),
            ("amd 40", full(AMD0, 40), Some(40)),
            ("amd 39: invalid", full(AMD0, 39), None),
            ("48", full(AMD0, 48), Some(48)),
            (
                "GuestPhysBits ignored: 40/39 intel invalid",
                full(INTEL0, 0x27_0028),
                None,
            ),
            (
                "no long mode: 36 (PAE), valid",
                Regs {
                    edx_ext1: 0,
                    ..full(INTEL0, 40)
                },
                Some(36),
            ),
            (
                "no PAE: 32",
                Regs {
                    edx1: 0,
                    ..full(INTEL0, 40)
                },
                Some(32),
            ),
            (
                "no 0x80000008: 36",
                Regs {
                    max_ext: 0x8000_0001,
                    ..full(AMD0, 40)
                },
                Some(36),
            ),
        ];
        for (name, regs, want) in rows {
            assert_eq!(seabios_phys_bits(&SeabiosCpu::read(regs)), *want, "{name}");
        }
    }

    #[test]
    fn seabios_window_rules() {
        // 46 bits, 4 GiB above 4 GiB: top capped at 2^44.
        assert_eq!(seabios_mem64_top(Some(46), 4 * GIB), Some(1 << 44));
        // 1 TiB above 4 GiB: no cap.
        assert_eq!(seabios_mem64_top(Some(46), TIB), Some(1 << 46));
        assert_eq!(seabios_mem64_top(Some(44), 0), Some(1 << 44));
        assert_eq!(seabios_mem64_top(None, 0), None);
        // Placed as if padded to 2 TiB (2^44 / 8) below the top, sized
        // to the BARs: [14 TiB, 14.5 TiB).
        let w = seabios_mmio_window(Some(46), 4 * GIB, 0, &mut [128 * GIB; 4]);
        assert_eq!(
            w,
            Window {
                base: 14 * TIB,
                size: 512 * GIB
            }
        );
        // Unknown width: right above RAM, sized to the BARs.
        let w = seabios_mmio_window(None, 4 * GIB, 0, &mut [128 * GIB; 4]);
        assert_eq!(
            w,
            Window {
                base: 8 * GIB,
                size: 632 * GIB
            }
        );
        // No RAM above 4 GiB: no padding, at the top of 2^40.
        let w = seabios_mmio_window(Some(40), 0, 0, &mut [GIB]);
        assert_eq!(
            w,
            Window {
                base: TIB - GIB,
                size: GIB
            }
        );
    }

    #[test]
    fn pci_mmio64_mb_parsing() {
        // (bytes, value): QemuFwCfgParseUint32's decimal rules.
        let rows: &[(&[u8], Option<u32>)] = &[
            (b"65536", Some(65536)),
            (b"65536\n", Some(65536)),
            (b"65536\r\n", Some(65536)),
            (b"65536\0", Some(65536)),
            (b"  0042", Some(42)),
            (b"0", Some(0)),
            (b"", None),
            (b"\n", None),
            (b"12a", None),
            (b"0x100", None),
            (b"+5", None),
            (b"65536\n\n", None),
            (b"4294967295", Some(u32::MAX)),
            (b"4294967296", None),
            (b"00000000000000000000001", None),
            (b"0000000000000000000001\0", Some(1)),
        ];
        for (bytes, want) in rows {
            assert_eq!(parse_pci_mmio64_mb(bytes), *want, "{bytes:?}");
        }
    }

    #[test]
    fn pci_mmio64_mb_from_fw_cfg() {
        use crate::reader::tests::{MemDev, dir, entry};
        let name = OVMF_PCI_MMIO64_MB_FILE.as_bytes();
        let d: [u8; 4 + 64] = dir(1, &[entry(6, 0x20, name)]);
        let files: &[(u16, &[u8])] = &[(0x20, b"65536\n")];
        let mut r = crate::reader::FwCfgReader::new(MemDev::new(&d, files)).unwrap();
        assert_eq!(read_pci_mmio64_mb(&mut r), Some(65536));
        let d: [u8; 4 + 64] = dir(1, &[entry(64, 0x20, name)]);
        let mut r = crate::reader::FwCfgReader::new(MemDev::new(&d, files)).unwrap();
        assert_eq!(read_pci_mmio64_mb(&mut r), None, "too long for OVMF");
    }

    #[test]
    fn guest_phys_bits_only_rule() {
        assert_eq!(guest_phys_bits_only(&cpu(I, 48, 46)), (46, true));
        // G = 0: EAX[7:0] as it stands, QEMU's legacy 40 included.
        assert_eq!(guest_phys_bits_only(&cpu(I, 40, 0)), (40, false));
        // The memory map plays no part.
        let big = ChannelInputs {
            memory_top: 100 * GIB,
            ..cpu(I, 36, 0)
        };
        assert_eq!(guest_phys_bits_only(&big), (36, false));
        // G is not capped by P.
        assert_eq!(guest_phys_bits_only(&cpu(I, 39, 48)), (48, true));
        let no_leaf = ChannelInputs {
            has_address_sizes: false,
            ..cpu(I, 48, 46)
        };
        assert_eq!(guest_phys_bits_only(&no_leaf), (36, false));
    }

    #[test]
    fn bars_fit_naturally_aligned() {
        let w = Window {
            base: 64 * GIB,
            size: 512 * GIB,
        };
        // Four 128 GiB BARs need a 128 GiB aligned start: 128..640 > 576.
        assert!(!w.fits(&mut [128 * GIB; 4]));
        assert!(w.fits(&mut [128 * GIB; 3]));
        assert!(w.fits(&mut []));
        assert!(!w.fits(&mut [u64::MAX]));
        // Sizes round up to a power of two.
        assert!(!Window { base: 0, size: 96 }.fits(&mut [65]));
    }
}
