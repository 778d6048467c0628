// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The CPUID channel: the KVM hint bit and the address sizes leaf.
//!
//! [`read_cpuid_channel`] gathers everything the decision policy needs from
//! CPUID, through the [`CpuidSource`] trait so tests can feed any values:
//!
//! 1. CPUID.1:ECX\[31\] says whether a hypervisor is present. Only then are
//!    the hypervisor leaves scanned (on bare metal, leaves 0x4000_0000+ return
//!    unrelated data), as Linux does.
//! 2. Leaves `0x4000_0000..0x4001_0000` are scanned in steps of 0x100 for the
//!    `KVMKVMKVM\0\0\0` signature in EBX, ECX, EDX. The base leaf's EAX is the
//!    highest hypervisor leaf; 0 means "base + 1" (old KVM). The features
//!    leaf (`base + 1`) is read only when it is within that maximum, and its
//!    EDX bit 1 is the proposed `KVM_HINTS_PHYS_ADDRESS_SIZE_DATA_VALID`.
//! 3. CPUID 0x8000_0008 EAX\[7:0\] (physical width) and EAX\[23:16\]
//!    (guest-physical width, 0 = none) are read when CPUID 0x8000_0000 says
//!    the leaf exists. When it does not, both widths are reported as 0 and
//!    [`CpuidReport::has_address_sizes`] is false: the architectural answer
//!    is then 36 bits, which the policy applies.
//! 4. SEV's C-bit (CPUID 0x8000_001F EBX\[5:0\], when EAX bit 1 says SEV)
//!    and TDX (leaf 0x21 says `IntelTDX    `): both shrink the usable
//!    width ([`CpuidReport::sev_c_bit`], [`CpuidReport::tdx`]).
//! 5. The vendor signatures of leaf 0 ([`CpuidReport::vendor`]) and of leaf
//!    0x8000_0000 ([`CpuidReport::ext_vendor`]), 1 GiB page support
//!    (0x8000_0001 EDX\[26\]) and LA57 support (leaf 7 ECX\[16\]) feed the
//!    OVMF-style heuristic. OVMF compares the signature of leaf 0x8000_0000,
//!    not leaf 0's: QEMU copies the vendor there, but Intel CPUs leave those
//!    registers 0, so a VMM that passes KVM's supported CPUID through on an
//!    Intel host shows no extended signature.
//!
//! ```
//! use fw_cfg_guest::cpuid::{read_cpuid_channel, CpuidResult, CpuidSource, HintState, Vendor};
//!
//! // A fake CPU: KVM at 0x40000000 with the hint set, 39/37 address bits.
//! struct Fake;
//! impl CpuidSource for Fake {
//!     fn cpuid(&self, leaf: u32, _subleaf: u32) -> CpuidResult {
//!         let r = |eax, ebx, ecx, edx| CpuidResult { eax, ebx, ecx, edx };
//!         match leaf {
//!             0 => r(7, 0x756e_6547, 0x6c65_746e, 0x4965_6e69), // GenuineIntel
//!             1 => r(0, 0, 1 << 31, 0),
//!             0x4000_0000 => r(0x4000_0001, 0x4b4d_564b, 0x564b_4d56, 0x4d),
//!             0x4000_0001 => r(0, 0, 0, 1 << 1),
//!             // QEMU copies the vendor into 0x8000_0000 too.
//!             0x8000_0000 => r(0x8000_0008, 0x756e_6547, 0x6c65_746e, 0x4965_6e69),
//!             0x8000_0008 => r(0x0025_3027, 0, 0, 0),
//!             _ => r(0, 0, 0, 0),
//!         }
//!     }
//! }
//!
//! let report = read_cpuid_channel(&Fake);
//! assert_eq!(report.kvm_base, Some(0x4000_0000));
//! assert_eq!(report.hint, HintState::Set);
//! assert_eq!((report.phys_bits, report.guest_phys_bits), (39, 37));
//! assert_eq!(report.ext_vendor, Some(Vendor::Intel));
//! ```

use crate::abi::{
    CPUID_1_ECX_HYPERVISOR, CPUID_ADDRESS_SIZES_LEAF, CPUID_HYPERVISOR_BASE, CPUID_HYPERVISOR_END,
    CPUID_HYPERVISOR_STEP, CPUID_SEV_EAX_SEV, CPUID_SEV_EBX_C_BIT_MASK, CPUID_SEV_LEAF,
    CPUID_TDX_LEAF, KVM_FEATURES_LEAF_OFFSET, KVM_HINTS_PHYS_ADDRESS_SIZE_DATA_VALID,
    KVM_SIGNATURE, TDX_SIGNATURE, cpuid_guest_phys_bits, cpuid_phys_bits,
    hypervisor_signature_from_regs, vendor_signature_from_regs,
};

/// Highest extended leaf, in EAX of this leaf.
const EXT_MAX_LEAF: u32 = 0x8000_0000;
/// Extended features leaf (EDX bit 26: 1 GiB pages).
const EXT_FEATURES_LEAF: u32 = 0x8000_0001;
/// 0x8000_0001 EDX bit 26: 1 GiB pages.
const EXT_EDX_PAGE1GB: u32 = 1 << 26;
/// Structured extended features leaf (ECX bit 16: LA57).
const STRUCT_FEATURES_LEAF: u32 = 7;
/// Leaf 7 ECX bit 16: 57-bit linear addresses (5-level paging).
const STRUCT_ECX_LA57: u32 = 1 << 16;

/// The four registers one `cpuid` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuidResult {
    /// EAX.
    pub eax: u32,
    /// EBX.
    pub ebx: u32,
    /// ECX.
    pub ecx: u32,
    /// EDX.
    pub edx: u32,
}

/// Anything that answers CPUID queries: the instruction, or a test fake.
///
/// Under SEV-ES and SEV-SNP the `cpuid` instruction traps (#VC) and its
/// answer comes from the hypervisor; a source used there must answer from
/// the firmware-validated SNP CPUID page instead of executing the
/// instruction ([`HardwareCpuid`] does not).
pub trait CpuidSource {
    /// Executes CPUID with EAX = `leaf` and ECX = `subleaf`.
    fn cpuid(&self, leaf: u32, subleaf: u32) -> CpuidResult;
}

impl<S: CpuidSource + ?Sized> CpuidSource for &S {
    fn cpuid(&self, leaf: u32, subleaf: u32) -> CpuidResult {
        (**self).cpuid(leaf, subleaf)
    }
}

/// A [`CpuidSource`] that counts the leaves asked of the one it wraps: the
/// cost of a CPUID reader is the number of `cpuid` instructions it
/// executes (each a VM exit into the hypervisor's kernel under hardware
/// virtualization, none to the VMM under KVM).
#[derive(Debug, Default)]
pub struct CountingCpuid<S> {
    inner: S,
    leaves: core::cell::Cell<u32>,
}

impl<S: CpuidSource> CountingCpuid<S> {
    /// Counts the queries made of `inner`, from 0.
    pub fn new(inner: S) -> Self {
        CountingCpuid {
            inner,
            leaves: core::cell::Cell::new(0),
        }
    }

    /// How many queries were made so far.
    pub fn leaves(&self) -> u32 {
        self.leaves.get()
    }
}

impl<S: CpuidSource> CpuidSource for CountingCpuid<S> {
    fn cpuid(&self, leaf: u32, subleaf: u32) -> CpuidResult {
        self.leaves.set(self.leaves.get().saturating_add(1));
        self.inner.cpuid(leaf, subleaf)
    }
}

/// The `cpuid` instruction of the CPU this code runs on.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy, Default)]
pub struct HardwareCpuid;

#[cfg(target_arch = "x86_64")]
impl CpuidSource for HardwareCpuid {
    #[allow(unused_unsafe)]
    fn cpuid(&self, leaf: u32, subleaf: u32) -> CpuidResult {
        // SAFETY: `cpuid` exists on every x86-64 CPU, has no side effects
        // beyond writing the four result registers, and touches no memory.
        let r = unsafe { core::arch::x86_64::__cpuid_count(leaf, subleaf) };
        CpuidResult {
            eax: r.eax,
            ebx: r.ebx,
            ecx: r.ecx,
            edx: r.edx,
        }
    }
}

/// What the KVM features leaf says about the phys-bits hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HintState {
    /// No hypervisor, no KVM signature, or no features leaf within the
    /// hypervisor's maximum leaf: the channel is silent.
    NoKvmLeaf,
    /// The features leaf exists and bit 1 of EDX is clear. This is *not*
    /// "invalid": every KVM before the proposal reports it so.
    Clear,
    /// The features leaf exists and bit 1 of EDX is set: the host vouches
    /// for CPUID 0x8000_0008's width.
    Set,
}

/// The CPU vendor, as far as the heuristic cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    /// `GenuineIntel`.
    Intel,
    /// `AuthenticAMD`.
    Amd,
    /// Any other vendor string (raw 12 bytes, EBX EDX ECX order).
    Other([u8; 12]),
}

impl Vendor {
    /// Decodes leaf 0's EBX, EDX, ECX.
    pub fn from_leaf0(r: &CpuidResult) -> Self {
        let s = vendor_signature_from_regs(r.ebx, r.ecx, r.edx);
        match &s {
            b"GenuineIntel" => Vendor::Intel,
            b"AuthenticAMD" => Vendor::Amd,
            _ => Vendor::Other(s),
        }
    }

    /// Decodes the signature in leaf 0x8000_0000's EBX, EDX, ECX (same
    /// layout as leaf 0). `None` when all twelve bytes are 0: Intel CPUs
    /// reserve these registers, AMD CPUs and QEMU's vCPUs fill them.
    pub fn from_ext_leaf(r: &CpuidResult) -> Option<Self> {
        if r.ebx == 0 && r.edx == 0 && r.ecx == 0 {
            None
        } else {
            Some(Self::from_leaf0(r))
        }
    }

    /// A short lowercase name: `intel`, `amd` or `other`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Vendor::Intel => "intel",
            Vendor::Amd => "amd",
            Vendor::Other(_) => "other",
        }
    }
}

/// Everything the CPUID channel said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuidReport {
    /// CPUID.1:ECX\[31\].
    pub hypervisor_present: bool,
    /// The leaf where the KVM signature was found.
    pub kvm_base: Option<u32>,
    /// The highest hypervisor leaf as the KVM base leaf reported it, with
    /// 0 already replaced by `base + 1`.
    pub kvm_max_leaf: Option<u32>,
    /// EDX of the KVM features leaf, when it exists.
    pub kvm_features_edx: Option<u32>,
    /// The phys-bits hint.
    pub hint: HintState,
    /// CPUID 0x8000_0000 EAX: the highest extended leaf.
    pub max_ext_leaf: u32,
    /// Whether CPUID 0x8000_0008 exists; when false both widths are 0.
    pub has_address_sizes: bool,
    /// Raw CPUID 0x8000_0008 EAX (0 when the leaf is missing).
    pub address_sizes_eax: u32,
    /// CPUID 0x8000_0008 EAX\[7:0\], 0 when the leaf is missing.
    pub phys_bits: u8,
    /// CPUID 0x8000_0008 EAX\[23:16\], 0 for "none" or a missing leaf.
    pub guest_phys_bits: u8,
    /// The CPU vendor (leaf 0's signature).
    pub vendor: Vendor,
    /// The signature of leaf 0x8000_0000, which OVMF's heuristic compares
    /// (see [`crate::policy`]); `None` when those registers are all 0 or the
    /// extended range is missing (maximum below 0x8000_0000 or outside the
    /// 0x8000_xxxx block).
    pub ext_vendor: Option<Vendor>,
    /// 1 GiB pages (CPUID 0x8000_0001 EDX\[26\]).
    pub gb_pages: bool,
    /// LA57, 5-level paging (CPUID 7.0 ECX\[16\]); support, not use.
    pub la57: bool,
    /// SEV's C-bit position (CPUID 0x8000001F EBX\[5:0\]) when that leaf
    /// reports SEV (EAX bit 1). QEMU exposes the leaf only to SEV guests;
    /// a VMM that passes KVM's supported CPUID through on an SEV-capable
    /// host shows it to every guest, so the cap it implies is conservative.
    pub sev_c_bit: Option<u8>,
    /// Leaf 0x21 carries `IntelTDX    `: a TDX guest, whose shared bit is
    /// GPAW - 1 (GPAW being the width in 0x80000008).
    pub tdx: bool,
}

/// Finds the KVM base leaf: `KVMKVMKVM\0\0\0` in EBX, ECX, EDX of one of
/// the leaves `0x4000_0000..0x4001_0000` (step 0x100). Returns the base leaf
/// and its EAX. Does not check CPUID.1:ECX\[31\]; the caller does.
pub fn find_kvm_base(src: &impl CpuidSource) -> Option<(u32, u32)> {
    let mut leaf = CPUID_HYPERVISOR_BASE;
    while leaf < CPUID_HYPERVISOR_END {
        let r = src.cpuid(leaf, 0);
        if hypervisor_signature_from_regs(r.ebx, r.ecx, r.edx) == KVM_SIGNATURE {
            return Some((leaf, r.eax));
        }
        leaf += CPUID_HYPERVISOR_STEP;
    }
    None
}

/// Reads the CPUID channel. Never fails: every missing piece is reported
/// as such (see the module documentation).
pub fn read_cpuid_channel(src: &impl CpuidSource) -> CpuidReport {
    let leaf0 = src.cpuid(0, 0);
    let max_basic = leaf0.eax;
    let vendor = Vendor::from_leaf0(&leaf0);
    let hypervisor_present = max_basic >= 1 && src.cpuid(1, 0).ecx & CPUID_1_ECX_HYPERVISOR != 0;
    let la57 = max_basic >= STRUCT_FEATURES_LEAF
        && src.cpuid(STRUCT_FEATURES_LEAF, 0).ecx & STRUCT_ECX_LA57 != 0;

    let mut kvm_base = None;
    let mut kvm_max_leaf = None;
    let mut kvm_features_edx = None;
    let mut hint = HintState::NoKvmLeaf;
    if hypervisor_present {
        if let Some((base, eax)) = find_kvm_base(src) {
            let features = base + KVM_FEATURES_LEAF_OFFSET;
            // Old KVM leaves EAX at 0, meaning "the features leaf exists".
            let max = if eax == 0 { features } else { eax };
            kvm_base = Some(base);
            kvm_max_leaf = Some(max);
            // `max` is hypervisor-controlled: it may be below the base or
            // point outside the block; read only a leaf within it.
            if max >= features {
                let edx = src.cpuid(features, 0).edx;
                kvm_features_edx = Some(edx);
                hint = if edx & KVM_HINTS_PHYS_ADDRESS_SIZE_DATA_VALID != 0 {
                    HintState::Set
                } else {
                    HintState::Clear
                };
            }
        }
    }

    let ext_max = src.cpuid(EXT_MAX_LEAF, 0);
    let max_ext_leaf = ext_max.eax;
    // A sane maximum is within the 0x8000_xxxx block.
    let ext_ok = |leaf: u32| max_ext_leaf >= leaf && max_ext_leaf < EXT_MAX_LEAF + 0x1_0000;
    let ext_vendor = if ext_ok(EXT_MAX_LEAF) {
        Vendor::from_ext_leaf(&ext_max)
    } else {
        None
    };
    let gb_pages =
        ext_ok(EXT_FEATURES_LEAF) && src.cpuid(EXT_FEATURES_LEAF, 0).edx & EXT_EDX_PAGE1GB != 0;
    let has_address_sizes = ext_ok(CPUID_ADDRESS_SIZES_LEAF);
    let address_sizes_eax = if has_address_sizes {
        src.cpuid(CPUID_ADDRESS_SIZES_LEAF, 0).eax
    } else {
        0
    };
    let sev_c_bit = ext_ok(CPUID_SEV_LEAF)
        .then(|| src.cpuid(CPUID_SEV_LEAF, 0))
        .filter(|r| r.eax & CPUID_SEV_EAX_SEV != 0)
        .map(|r| (r.ebx & CPUID_SEV_EBX_C_BIT_MASK) as u8);
    let tdx = max_basic >= CPUID_TDX_LEAF && {
        let r = src.cpuid(CPUID_TDX_LEAF, 0);
        vendor_signature_from_regs(r.ebx, r.ecx, r.edx) == TDX_SIGNATURE
    };

    CpuidReport {
        hypervisor_present,
        kvm_base,
        kvm_max_leaf,
        kvm_features_edx,
        hint,
        max_ext_leaf,
        has_address_sizes,
        address_sizes_eax,
        phys_bits: cpuid_phys_bits(address_sizes_eax),
        guest_phys_bits: cpuid_guest_phys_bits(address_sizes_eax),
        vendor,
        ext_vendor,
        gb_pages,
        la57,
        sev_c_bit,
        tdx,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{KVM_HINTS_REALTIME, KVM_SIGNATURE_REGS};

    /// A table-driven fake: a short list of (leaf, result); everything else
    /// reads as zeros.
    struct Table<'a>(&'a [(u32, CpuidResult)]);

    impl CpuidSource for Table<'_> {
        fn cpuid(&self, leaf: u32, _subleaf: u32) -> CpuidResult {
            self.0
                .iter()
                .find(|(l, _)| *l == leaf)
                .map(|(_, r)| *r)
                .unwrap_or_default()
        }
    }

    const fn r(eax: u32, ebx: u32, ecx: u32, edx: u32) -> CpuidResult {
        CpuidResult { eax, ebx, ecx, edx }
    }

    const INTEL: CpuidResult = r(0xd, 0x756e_6547, 0x6c65_746e, 0x4965_6e69);
    const AMD: CpuidResult = r(0xd, 0x6874_7541, 0x444d_4163, 0x6974_6e65);
    const HV: CpuidResult = r(0, 0, 1 << 31, 0);
    fn kvm_at(eax: u32) -> CpuidResult {
        let [ebx, ecx, edx] = KVM_SIGNATURE_REGS;
        r(eax, ebx, ecx, edx)
    }

    #[test]
    fn full_kvm_report() {
        let t = Table(&[
            (0, INTEL),
            (1, HV),
            (7, r(0, 0, 1 << 16, 0)),
            (0x4000_0000, kvm_at(0x4000_0001)),
            (
                0x4000_0001,
                r(0, 0, 0, KVM_HINTS_PHYS_ADDRESS_SIZE_DATA_VALID),
            ),
            (0x8000_0000, r(0x8000_0008, 0, 0, 0)),
            (0x8000_0001, r(0, 0, 0, 1 << 26)),
            (0x8000_0008, r(0x0025_3027, 0, 0, 0)),
        ]);
        let rep = read_cpuid_channel(&t);
        assert!(rep.hypervisor_present);
        assert_eq!(rep.kvm_base, Some(0x4000_0000));
        assert_eq!(rep.hint, HintState::Set);
        assert_eq!(rep.vendor, Vendor::Intel);
        // Intel hardware leaves 0x8000_0000's signature registers 0.
        assert_eq!(rep.ext_vendor, None);
        assert!(rep.has_address_sizes && rep.gb_pages && rep.la57);
        assert_eq!((rep.phys_bits, rep.guest_phys_bits), (39, 37));
    }

    /// The leaves a decision needs under KVM on AMD (the KVM leaf at the
    /// first base, the SEV leaf in range): one each, no scan beyond the
    /// KVM signature; without the hypervisor bit, no hypervisor leaf.
    #[test]
    fn leaves_read_for_a_decision() {
        let amd_kvm = [
            (0, AMD),
            (1, HV),
            (0x4000_0000, kvm_at(0x4000_0001)),
            (0x4000_0001, r(0, 0, 0, 0)),
            (
                0x8000_0000,
                r(0x8000_0021, 0x6874_7541, 0x444d_4163, 0x6974_6e65),
            ),
            (0x8000_0008, r(0x3030, 0, 0, 0)),
        ];
        let c = CountingCpuid::new(Table(&amd_kvm));
        let rep = read_cpuid_channel(&c);
        assert_eq!(rep.kvm_base, Some(0x4000_0000));
        // 0, 1, 7, 0x4000_0000, 0x4000_0001, 0x8000_0000, 0x8000_0001,
        // 0x8000_0008, 0x8000_001f.
        assert_eq!(c.leaves(), 9);
        let c = CountingCpuid::new(Table(&amd_kvm[..1]));
        read_cpuid_channel(&c);
        // 0, 1 (no hypervisor bit: no scan), 7, 0x8000_0000 (0: nothing
        // beyond).
        assert_eq!(c.leaves(), 4);
    }

    #[test]
    fn kvm_behind_another_hypervisor_and_zero_max() {
        // Hyper-V style leaves at 0x40000000, KVM at 0x40000100 with EAX 0.
        let t = Table(&[
            (0, AMD),
            (1, HV),
            (
                0x4000_0000,
                r(0x4000_000b, 0x7263_694d, 0x666f_736f, 0x7648_2074),
            ),
            (0x4000_0100, kvm_at(0)),
            (0x4000_0101, r(0, 0, 0, KVM_HINTS_REALTIME)),
            (0x8000_0000, r(0x8000_0008, 0, 0, 0)),
            (0x8000_0008, r(0x3030, 0, 0, 0)),
        ]);
        let rep = read_cpuid_channel(&t);
        assert_eq!(rep.kvm_base, Some(0x4000_0100));
        assert_eq!(rep.kvm_max_leaf, Some(0x4000_0101));
        assert_eq!(rep.hint, HintState::Clear);
        assert_eq!(rep.vendor, Vendor::Amd);
        assert_eq!((rep.phys_bits, rep.guest_phys_bits), (48, 0));
    }

    #[test]
    fn sev_and_tdx_leaves() {
        let sev = Table(&[
            (0, AMD),
            (0x8000_0000, r(0x8000_001f, 0, 0, 0)),
            (0x8000_0008, r(0x3030, 0, 0, 0)),
            (0x8000_001f, r(0b11, 47 | (5 << 6), 0, 0)),
        ]);
        let rep = read_cpuid_channel(&sev);
        assert_eq!((rep.sev_c_bit, rep.tdx), (Some(47), false));
        // SME alone (EAX bit 0) is not SEV; a maximum below the leaf hides it.
        let sme = Table(&[
            (0x8000_0000, r(0x8000_001f, 0, 0, 0)),
            (0x8000_001f, r(0b01, 47, 0, 0)),
        ]);
        assert_eq!(read_cpuid_channel(&sme).sev_c_bit, None);
        let low = Table(&[
            (0x8000_0000, r(0x8000_0008, 0, 0, 0)),
            (0x8000_001f, r(0b11, 47, 0, 0)),
        ]);
        assert_eq!(read_cpuid_channel(&low).sev_c_bit, None);
        let [ebx, ecx, edx] = [
            u32::from_le_bytes(*b"Inte"),
            u32::from_le_bytes(*b"    "),
            u32::from_le_bytes(*b"lTDX"),
        ];
        let tdx = Table(&[(0, r(0x21, 0, 0, 0)), (0x21, r(0, ebx, ecx, edx))]);
        assert!(read_cpuid_channel(&tdx).tdx);
        let below = Table(&[(0, r(0x20, 0, 0, 0)), (0x21, r(0, ebx, ecx, edx))]);
        assert!(!read_cpuid_channel(&below).tdx);
    }

    #[test]
    fn features_leaf_beyond_max_is_not_read() {
        let t = Table(&[
            (0, INTEL),
            (1, HV),
            // Max leaf below the features leaf: the hint must be ignored.
            (0x4000_0000, kvm_at(0x4000_0000)),
            (
                0x4000_0001,
                r(0, 0, 0, KVM_HINTS_PHYS_ADDRESS_SIZE_DATA_VALID),
            ),
        ]);
        let rep = read_cpuid_channel(&t);
        assert_eq!(rep.kvm_base, Some(0x4000_0000));
        assert_eq!(rep.hint, HintState::NoKvmLeaf);
        assert_eq!(rep.kvm_features_edx, None);
    }

    #[test]
    fn no_hypervisor_bit_means_no_scan() {
        let t = Table(&[
            (0, INTEL),
            (0x4000_0000, kvm_at(0x4000_0001)),
            (
                0x4000_0001,
                r(0, 0, 0, KVM_HINTS_PHYS_ADDRESS_SIZE_DATA_VALID),
            ),
        ]);
        let rep = read_cpuid_channel(&t);
        assert!(!rep.hypervisor_present);
        assert_eq!(rep.kvm_base, None);
        assert_eq!(rep.hint, HintState::NoKvmLeaf);
    }

    #[test]
    fn missing_address_sizes_leaf_reports_zero() {
        let t = Table(&[
            (0, INTEL),
            (0x8000_0000, r(0x8000_0004, 0, 0, 0)),
            (0x8000_0008, r(0x3028, 0, 0, 0)),
        ]);
        let rep = read_cpuid_channel(&t);
        assert!(!rep.has_address_sizes);
        assert_eq!((rep.phys_bits, rep.guest_phys_bits), (0, 0));
        // A garbage maximum outside the extended block is not trusted.
        let t = Table(&[(0x8000_0000, r(0xffff_ffff, 0, 0, 0))]);
        assert!(!read_cpuid_channel(&t).has_address_sizes);
    }

    #[test]
    fn ext_vendor_comes_from_leaf_0x8000_0000() {
        let sig = |v: &CpuidResult| r(0x8000_0008, v.ebx, v.ecx, v.edx);
        // QEMU: the vendor in both leaves.
        let t = Table(&[(0, INTEL), (0x8000_0000, sig(&INTEL))]);
        let rep = read_cpuid_channel(&t);
        assert_eq!(
            (rep.vendor, rep.ext_vendor),
            (Vendor::Intel, Some(Vendor::Intel))
        );
        // KVM's supported CPUID passed through on an Intel host: no signature.
        let t = Table(&[(0, INTEL), (0x8000_0000, r(0x8000_0008, 0, 0, 0))]);
        let rep = read_cpuid_channel(&t);
        assert_eq!((rep.vendor, rep.ext_vendor), (Vendor::Intel, None));
        // AMD hardware fills it; the two leaves may also disagree.
        let t = Table(&[(0, INTEL), (0x8000_0000, sig(&AMD))]);
        assert_eq!(read_cpuid_channel(&t).ext_vendor, Some(Vendor::Amd));
        // No extended range, or a garbage maximum: not read.
        let t = Table(&[
            (0, AMD),
            (0x8000_0000, r(0x7fff_ffff, AMD.ebx, AMD.ecx, AMD.edx)),
        ]);
        assert_eq!(read_cpuid_channel(&t).ext_vendor, None);
        let t = Table(&[
            (0, AMD),
            (0x8000_0000, r(0xffff_ffff, AMD.ebx, AMD.ecx, AMD.edx)),
        ]);
        assert_eq!(read_cpuid_channel(&t).ext_vendor, None);
        // A partial signature is some other vendor, not none.
        assert_eq!(
            Vendor::from_ext_leaf(&r(0, 0, 0, 1)),
            Some(Vendor::Other([0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]))
        );
    }

    #[test]
    fn vendor_other_keeps_the_string() {
        let v = Vendor::from_leaf0(&r(0, 0x6f67_7948, 0x656e_6975, 0x6e65_476e));
        assert_eq!(v, Vendor::Other(*b"HygonGenuine"));
        assert_eq!(v.as_str(), "other");
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn hardware_cpuid_runs() {
        let rep = read_cpuid_channel(&HardwareCpuid);
        // Long mode is reported in 0x8000_0001, so a CPU running this
        // 64-bit code has at least that extended leaf.
        assert!(rep.max_ext_leaf >= EXT_FEATURES_LEAF, "{rep:?}");
        // Vendor strings are printable ASCII ("  Shanghai  " has spaces).
        if let Vendor::Other(s) = rep.vendor {
            assert!(
                s.iter().all(|b| b.is_ascii_graphic() || *b == b' '),
                "{s:?}"
            );
        }
        // Every x86-64 CPU reports 36..=52 bits when it has the leaf.
        if rep.has_address_sizes {
            assert!((36..=52).contains(&rep.phys_bits), "{rep:?}");
        }
        // A hint is only ever read from a KVM leaf found behind the
        // hypervisor bit.
        if rep.hint != HintState::NoKvmLeaf {
            assert!(rep.hypervisor_present && rep.kvm_base.is_some());
        }
    }

    proptest::proptest! {
        #[test]
        fn random_cpuid_never_panics(seed in proptest::prelude::any::<[u32; 64]>()) {
            struct Rand([u32; 64]);
            impl CpuidSource for Rand {
                fn cpuid(&self, leaf: u32, sub: u32) -> CpuidResult {
                    let i = (leaf.wrapping_mul(31) ^ sub) as usize;
                    let g = |k: usize| self.0[(i + k) % 64];
                    CpuidResult { eax: g(0), ebx: g(1), ecx: g(2), edx: g(3) }
                }
            }
            let rep = read_cpuid_channel(&Rand(seed));
            if rep.hint != HintState::NoKvmLeaf {
                proptest::prop_assert!(rep.kvm_base.is_some());
            }
        }
    }
}
