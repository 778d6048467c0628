// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The decision: which physical address width the guest may use, which
//! channel said so, and every disagreement between the channels.
//!
//! Inputs ([`ChannelInputs`]) are what the two channels said: the CPUID hint
//! ([`HintState`]) with CPUID 0x8000_0008's widths and the vendor, the
//! state of the `etc/phys-bits-valid` file ([`FileState`]), and the top of
//! the memory map ([`ChannelInputs::memory_top`]). The paging facts the
//! heuristic needs (5-level paging in use, 1 GiB pages) are inputs too.
//! [`decide`] is a pure function of them.
//!
//! # Terms
//!
//! - *Valid*, on both sides, in one sentence: every guest-physical address
//!   below 2^W is backed, `W` being the effective CPUID width.
//! - *CPUID width* `W`: `phys_bits` (0x8000_0008 EAX\[7:0\]), capped by
//!   `guest_phys_bits` (EAX\[23:16\]) when that is non-zero, then at SEV's
//!   C-bit position and below TDX's shared bit (phys_bits - 1).
//! - *Explicit valid*: the hint bit is set, or the file is present with
//!   valid = 1. *Explicit invalid*: the file is present with valid = 0.
//!   A clear hint bit is **not** "invalid" (every KVM before the proposal
//!   clears it), and a missing file means "unknown": a VMM that says nothing
//!   is never called invalid.
//! - *Backed width* `B`: byte 4 of a version-2 file, the widest width the
//!   VMM knows its host backs (0 = not stated).
//! - *Ceiling* ([`ChannelInputs::ceiling`]): the smallest of `W`, a valid
//!   file's `W` and `B` (each counted when within 32..=52). No answer of
//!   the strict and combined modes exceeds it: the guest cannot use
//!   addresses above its MAXPHYADDR, nor ones a channel says are unbacked.
//! - *Memory bits* `M`: the smallest `n` with 2^n >= the memory map's top
//!   (RAM and declared hotplug; 0 when unknown).
//! - *Fallback* ([`ChannelInputs::fallback`]): `max(36, M)` capped at the
//!   ceiling (at 52 when there is none). Never below the RAM top unless a
//!   statement forbids it, and then [`Conflict::MemoryAboveWidth`] says the
//!   host contradicts itself.
//! - *Hard conflict*: a disagreement that makes both channels suspect (see
//!   [`Conflict::is_hard`]). Soft conflicts are listed but change nothing.
//!
//! # Conflicts (listed in every mode)
//!
//! | conflict | when | hard |
//! |---|---|---|
//! | [`FilePhysBitsDiffersFromCpuid`](Conflict::FilePhysBitsDiffersFromCpuid) | file present, its byte 2 ≠ CPUID phys_bits | yes |
//! | [`FileGuestPhysBitsDiffers`](Conflict::FileGuestPhysBitsDiffers) | file present, its byte 3 ≠ CPUID guest_phys_bits | yes |
//! | [`HintSetButFileInvalid`](Conflict::HintSetButFileInvalid) | hint set, file says invalid | yes |
//! | [`CorruptFile`](Conflict::CorruptFile) | file present but unparsable | yes |
//! | [`ValidWithoutAddressSizes`](Conflict::ValidWithoutAddressSizes) | explicit valid, but CPUID has no 0x8000_0008 (or it reports 0 bits) | yes |
//! | [`WidthOutOfRange`](Conflict::WidthOutOfRange) | phys_bits, or a non-zero guest_phys_bits, outside QEMU's 32..=52 | yes |
//! | [`MemoryAboveWidth`](Conflict::MemoryAboveWidth) | `M` above the ceiling (or above 52) | yes |
//! | [`FileBackedContradictsFlag`](Conflict::FileBackedContradictsFlag) | `B` ≠ 0 and the valid flag ≠ (file's `W` ≤ `B`) | yes |
//! | [`HintClearButFileValid`](Conflict::HintClearButFileValid) | KVM features leaf present with the bit clear, file says valid | no |
//! | [`FileUnreadable`](Conflict::FileUnreadable) | the file exists but could not be read (directory broken, DMA error) | no |
//! | [`GuestPhysBitsAbovePhysBits`](Conflict::GuestPhysBitsAbovePhysBits) | guest_phys_bits > phys_bits | no |
//!
//! # Policy table
//!
//! Strict (the thread's rule: trust only an explicit "valid"):
//!
//! | # | condition (first match wins) | width | decided by |
//! |---|---|---|---|
//! | S1 | any hard conflict | fallback | `ConservativeDefault` (rule `Distrusted`) |
//! | S2b | file says invalid and states `B` ≥ 32 | `min(B, W)` | `FwCfgFile` (rule `BackedWidth`) |
//! | S2 | file says invalid, no `B` (version 1) | fallback | `FwCfgFile` (rule `ExplicitInvalid`) |
//! | S3 | hint set and file valid | `W` | `BothChannels` |
//! | S4 | hint set, file absent/unreadable | `W` | `CpuidHint` |
//! | S5 | file valid, hint clear or no KVM leaf | `W` | `FwCfgFile` |
//! | S6 | neither channel says anything | fallback | `ConservativeDefault` (rule `NoInformation`) |
//!
//! Heuristic (OVMF on QEMU's PC/Q35, `MemDetect.c`; ignores both
//! channels; [`peers::ovmf`] is the rule for rule reproduction, with the
//! microvm and Cloud Hypervisor paths and the 64-bit window):
//!
//! | # | condition | width | decided by |
//! |---|---|---|---|
//! | H1 | `P` = phys_bits (36 if the leaf is missing), capped at a smaller non-zero guest_phys_bits; valid if guest_phys_bits ≠ 0, or `P` ≥ 41, or vendor Intel with `P` ∈ {36, 39}, or vendor AMD with `P` = 40, the vendor being the signature of CPUID 0x80000000 as OVMF reads it; a width of 0 counts as unknown | `P`, then at 46 with 4-level paging (with 5-level: at 48 when `P` > 48 and guest_phys_bits = 0), then at 40 without 1 GiB pages | `Heuristic` |
//! | H2 | otherwise (e.g. QEMU's old default 40 on Intel) | the smallest power of two covering `FirstNonAddress` (the RAM top, at least 4 GiB, plus the 32 GiB 64-bit aperture above it, aligned), at least 36; a TDX guest 48 or 52 from its shared bit | `ConservativeDefault` |
//!
//! SeaBIOS's `physbits()` is a different rule (vendor from leaf 0, a
//! PAE/long-mode precondition, no GuestPhysBits): [`peers::seabios_phys_bits`].

//! The vendor's source matters. QEMU copies the vendor signature into
//! CPUID 0x80000000 EBX/EDX/ECX, but Intel CPUs leave those registers 0
//! (and QEMU 10.1 machine types zero them for Intel vCPUs), so OVMF sees
//! no vendor there and rejects 36 and 39 (H2), while SeaBIOS, which
//! compares leaf 0's signature, accepts them. This crate follows OVMF
//! ([`ChannelInputs::ext_vendor`]).
//!
//! An 0x80000008 leaf that exists but reports 0 bits is not a missing leaf:
//! OVMF takes 0 as the width, which no vendor rule accepts, and a width of 0
//! that guest_phys_bits ≠ 0 lets through counts as unknown, so H2 applies.
//!
//! Combined (explicit channels first, heuristic when both are silent):
//!
//! | # | condition | result |
//! |---|---|---|
//! | C1 | any hard conflict | as S1 |
//! | C2 | an explicit statement (hint set, or file present) | as S2–S5 |
//! | C3 | neither channel says anything | H1's width raised to the fallback, or H2 with the fallback (capped) |
//!
//! The width from an explicit "valid" is not capped by paging limits: the
//! channels state what the platform backs; how much of it a consumer maps
//! is the consumer's business. The heuristic applies OVMF's caps because it
//! reproduces OVMF.
//!
//! On conflict the answer is the fallback and the conflicts are listed: a
//! host whose statements disagree is not believed beyond the smallest width
//! any of them states, and the RAM it gave the guest is still addressed. A
//! malicious host can always force this outcome (it can also simply clear
//! the hint and delete the file), but it cannot make the guest use a width
//! that one of its own channels contradicts.
//!
//! ```
//! use fw_cfg_guest::abi::PhysBitsFile;
//! use fw_cfg_guest::cpuid::{HintState, Vendor};
//! use fw_cfg_guest::policy::{decide, ChannelInputs, DecidedBy, FileState, PolicyMode};
//!
//! let inputs = ChannelInputs {
//!     hint: HintState::Set,
//!     has_address_sizes: true,
//!     phys_bits: 39,
//!     guest_phys_bits: 0,
//!     ext_vendor: Some(Vendor::Intel),
//!     file: FileState::Present(PhysBitsFile::new(true, 39, 0)),
//!     five_level_paging: false,
//!     gb_pages: true,
//!     memory_top: 0,
//!     sev_c_bit: None,
//!     tdx: false,
//! };
//! let d = decide(&inputs, PolicyMode::Strict);
//! assert_eq!((d.phys_bits, d.decided_by), (39, DecidedBy::BothChannels));
//! assert!(d.conflicts.is_empty());
//!
//! // QEMU's legacy 40 on a 39-bit host: the file says "not backed" and
//! // states the backed 39, which the guest uses instead of 36.
//! let file = PhysBitsFile::new(false, 40, 0).with_backed_bits(39);
//! let inputs = ChannelInputs { phys_bits: 40, hint: HintState::Clear, file: FileState::Present(file), ..inputs };
//! assert_eq!(decide(&inputs, PolicyMode::Strict).phys_bits, 39);
//! ```

use core::fmt;

pub use crate::abi::MAX_PHYS_BITS;
use crate::abi::{
    CONSERVATIVE_PHYS_BITS, MIN_PHYS_BITS, PhysBitsFile, PhysBitsFileError, effective_width,
};
use crate::cpuid::{CpuidReport, HintState, Vendor};
use crate::peers::{self, OvmfPlatform, OvmfSetup};
use crate::reader::{FwCfgReader, ReadError};
use crate::transport::FwCfgTransport;

/// OVMF's cap with 4-level paging.
pub const HEURISTIC_CAP_4LEVEL: u8 = 46;
/// OVMF's cap with 5-level paging when CPUID has no guest-physical width.
pub const HEURISTIC_CAP_5LEVEL_NO_GUEST_BITS: u8 = 48;
/// OVMF's cap without 1 GiB pages.
pub const HEURISTIC_CAP_NO_GB_PAGES: u8 = 40;

/// What the fw_cfg channel said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    /// No fw_cfg device, or no `etc/phys-bits-valid` file: silent.
    Absent,
    /// The file parsed.
    Present(PhysBitsFile),
    /// The file exists but does not parse.
    Corrupt(PhysBitsFileError),
    /// The file could not be read (broken directory, DMA failure).
    Unreadable(ReadError),
}

impl FileState {
    /// Parses file contents.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        match PhysBitsFile::parse(bytes) {
            Ok(f) => FileState::Present(f),
            Err(e) => FileState::Corrupt(e),
        }
    }
}

pub use crate::reader::PHYS_BITS_FILE_READ_MAX;

/// Reads the fw_cfg channel's state: [`FwCfgReader::read_phys_bits_file`]
/// with a [`PHYS_BITS_FILE_READ_MAX`]-byte buffer, for callers that do not
/// keep the bytes. Never fails; failures become [`FileState::Unreadable`].
pub fn read_phys_bits_file<T: FwCfgTransport>(reader: &mut FwCfgReader<T>) -> FileState {
    let mut buf = [0u8; PHYS_BITS_FILE_READ_MAX];
    reader.read_phys_bits_file(&mut buf).state
}

/// Everything the policy looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelInputs {
    /// The CPUID hint.
    pub hint: HintState,
    /// Whether CPUID 0x8000_0008 exists. The heuristic assumes 36 bits when
    /// it does not, but takes an existing leaf's 0 as it is (module docs).
    pub has_address_sizes: bool,
    /// CPUID 0x8000_0008 EAX\[7:0\]; 0 when the leaf is missing.
    pub phys_bits: u8,
    /// CPUID 0x8000_0008 EAX\[23:16\]; 0 for none.
    pub guest_phys_bits: u8,
    /// The vendor signature of CPUID 0x8000_0000 (heuristic only; `None`
    /// when empty), which OVMF compares, not leaf 0's
    /// ([`CpuidReport::ext_vendor`]).
    pub ext_vendor: Option<Vendor>,
    /// The fw_cfg file.
    pub file: FileState,
    /// Whether the consumer uses 5-level paging (heuristic only).
    pub five_level_paging: bool,
    /// Whether 1 GiB pages are available (heuristic only).
    pub gb_pages: bool,
    /// The exclusive end of the highest guest RAM range or declared hotplug
    /// area in the memory map (firmware: the PVH memory map; Linux:
    /// `/sys/firmware/memmap`); 0 when unknown. No fallback goes below it.
    pub memory_top: u64,
    /// SEV's C-bit position ([`CpuidReport::sev_c_bit`]): `W` stays below
    /// it.
    pub sev_c_bit: Option<u8>,
    /// A TDX guest ([`CpuidReport::tdx`]): `W` stays below the shared bit,
    /// phys_bits - 1.
    pub tdx: bool,
}

impl ChannelInputs {
    /// Inputs from a CPUID report and a file state, assuming 4-level
    /// paging (set `five_level_paging` if the consumer uses LA57).
    pub fn new(cpuid: &CpuidReport, file: FileState) -> Self {
        ChannelInputs {
            hint: cpuid.hint,
            has_address_sizes: cpuid.has_address_sizes,
            phys_bits: cpuid.phys_bits,
            guest_phys_bits: cpuid.guest_phys_bits,
            ext_vendor: cpuid.ext_vendor,
            file,
            five_level_paging: false,
            gb_pages: cpuid.gb_pages,
            memory_top: 0,
            sev_c_bit: cpuid.sev_c_bit,
            tdx: cpuid.tdx,
        }
    }

    /// The same inputs with the memory map's top (exclusive end of the
    /// highest RAM or hotplug range; 0 = unknown).
    pub fn with_memory_top(mut self, memory_top: u64) -> Self {
        self.memory_top = memory_top;
        self
    }

    /// `W`: phys_bits capped by a non-zero guest_phys_bits, then below
    /// SEV's C-bit (at most its position) and TDX's shared bit (at most
    /// phys_bits - 1): addresses with those bits set are not private
    /// memory.
    pub fn cpuid_width(&self) -> u8 {
        let mut w = effective_width(self.phys_bits, self.guest_phys_bits);
        if let Some(c) = self.sev_c_bit.filter(|&c| c != 0) {
            w = w.min(c);
        }
        if self.tdx {
            w = w.min(self.phys_bits.saturating_sub(1));
        }
        w
    }

    /// The width the memory map needs: the smallest `n` with
    /// `2^n >= memory_top` (0 when the top is unknown).
    pub fn memory_bits(&self) -> u8 {
        bits_to_reach(self.memory_top)
    }

    /// The smallest width any statement bounds the answer by: CPUID's `W`
    /// (the guest cannot use addresses above its MAXPHYADDR), a valid
    /// file's `W`, and a version-2 file's backed width. Widths outside
    /// 32..=52 are ignored (they are [`Conflict::WidthOutOfRange`] or
    /// beyond x86-64); `None` when nothing states a width.
    pub fn ceiling(&self) -> Option<u8> {
        let plausible = |w: u8| (w >= MIN_PHYS_BITS).then_some(w.min(MAX_PHYS_BITS));
        let cpuid = (self.has_address_sizes && self.phys_bits != 0)
            .then(|| plausible(self.cpuid_width()))
            .flatten();
        let (file_width, file_backed) = match self.file {
            FileState::Present(f) => (
                f.valid.then(|| plausible(f.width())).flatten(),
                plausible(f.backed_bits),
            ),
            _ => (None, None),
        };
        [cpuid, file_width, file_backed].into_iter().flatten().min()
    }

    /// The fallback width: 36 or the memory map's need, whichever is
    /// larger, capped at [`ceiling`](Self::ceiling) (52 when nothing states
    /// a width): never above a stated width, never below the RAM top unless
    /// a statement forbids it (then [`Conflict::MemoryAboveWidth`] is
    /// listed).
    pub fn fallback(&self) -> u8 {
        CONSERVATIVE_PHYS_BITS
            .max(self.memory_bits())
            .min(self.ceiling().unwrap_or(MAX_PHYS_BITS))
    }
}

/// The smallest `n` with `2^n >= top` (0 for a top of 0 or 1).
pub const fn bits_to_reach(top: u64) -> u8 {
    if top <= 1 {
        0
    } else {
        (64 - (top - 1).leading_zeros()) as u8
    }
}

/// Which rule set [`decide`] applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyMode {
    /// Trust only an explicit "valid", else 36.
    Strict,
    /// OVMF/SeaBIOS CPUID heuristic, no channel needed.
    Heuristic,
    /// Explicit channels first, heuristic when both are silent.
    Combined,
}

impl PolicyMode {
    /// All modes, in table order.
    pub const ALL: [PolicyMode; 3] = [
        PolicyMode::Strict,
        PolicyMode::Heuristic,
        PolicyMode::Combined,
    ];

    /// Lowercase name.
    pub fn as_str(&self) -> &'static str {
        match self {
            PolicyMode::Strict => "strict",
            PolicyMode::Heuristic => "heuristic",
            PolicyMode::Combined => "combined",
        }
    }
}

/// Who decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecidedBy {
    /// The CPUID hint alone.
    CpuidHint,
    /// The fw_cfg file alone (valid or invalid).
    FwCfgFile,
    /// Both channels, agreeing.
    BothChannels,
    /// The OVMF-style heuristic accepted the CPUID width.
    Heuristic,
    /// Nobody: the 36-bit default (no information, heuristic rejection, or
    /// distrust after a hard conflict).
    ConservativeDefault,
}

impl DecidedBy {
    /// Lowercase name.
    pub fn as_str(&self) -> &'static str {
        match self {
            DecidedBy::CpuidHint => "cpuid-hint",
            DecidedBy::FwCfgFile => "fw-cfg-file",
            DecidedBy::BothChannels => "both-channels",
            DecidedBy::Heuristic => "heuristic",
            DecidedBy::ConservativeDefault => "conservative-default",
        }
    }
}

/// Which row of the policy table fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// A hard conflict: distrust, 36 (S1/C1).
    Distrusted,
    /// The file says invalid (S2).
    ExplicitInvalid,
    /// An explicit valid (S3–S5).
    ExplicitValid,
    /// Neither channel said anything (S6).
    NoInformation,
    /// The heuristic accepted the width (H1).
    HeuristicValid,
    /// The heuristic rejected the width (H2).
    HeuristicInvalid,
    /// The file says the CPUID width is not backed and states the width
    /// that is (version 2): that width (S2b).
    BackedWidth,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rule::Distrusted => "channels conflict: distrusted, fallback width",
            Rule::ExplicitInvalid => {
                "fw_cfg file says the CPUID width is not backed: fallback width"
            }
            Rule::ExplicitValid => "explicitly valid: CPUID width",
            Rule::NoInformation => "no channel says anything: fallback width",
            Rule::HeuristicValid => "heuristic accepts the CPUID width",
            Rule::HeuristicInvalid => "heuristic rejects the CPUID width: memory-map fallback",
            Rule::BackedWidth => "fw_cfg file says the CPUID width is not backed: backed width",
        })
    }
}

/// A disagreement between or inside the channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Conflict {
    /// The file's physical width differs from CPUID's.
    FilePhysBitsDiffersFromCpuid = 0,
    /// The file's guest-physical width differs from CPUID's.
    FileGuestPhysBitsDiffers = 1,
    /// The hint says valid, the file says invalid.
    HintSetButFileInvalid = 2,
    /// The file does not parse.
    CorruptFile = 3,
    /// A channel says valid but CPUID has no address sizes leaf.
    ValidWithoutAddressSizes = 4,
    /// A CPUID width outside QEMU's 32..=52.
    WidthOutOfRange = 5,
    /// The KVM leaf has the bit clear while the file says valid.
    HintClearButFileValid = 6,
    /// The file exists but could not be read.
    FileUnreadable = 7,
    /// guest_phys_bits above phys_bits.
    GuestPhysBitsAbovePhysBits = 8,
    /// The memory map reaches above a width a statement bounds the answer
    /// by ([`ChannelInputs::ceiling`]), or above 2^52: the host contradicts
    /// itself.
    MemoryAboveWidth = 9,
    /// A version-2 file's valid flag disagrees with its own backed width
    /// (valid with `W` above it, or invalid with `W` within it).
    FileBackedContradictsFlag = 10,
}

impl Conflict {
    /// Every conflict, in bit order.
    pub const ALL: [Conflict; 11] = [
        Conflict::FilePhysBitsDiffersFromCpuid,
        Conflict::FileGuestPhysBitsDiffers,
        Conflict::HintSetButFileInvalid,
        Conflict::CorruptFile,
        Conflict::ValidWithoutAddressSizes,
        Conflict::WidthOutOfRange,
        Conflict::HintClearButFileValid,
        Conflict::FileUnreadable,
        Conflict::GuestPhysBitsAbovePhysBits,
        Conflict::MemoryAboveWidth,
        Conflict::FileBackedContradictsFlag,
    ];

    /// Whether the conflict makes the explicit modes distrust both channels.
    pub fn is_hard(&self) -> bool {
        !matches!(
            self,
            Conflict::HintClearButFileValid
                | Conflict::FileUnreadable
                | Conflict::GuestPhysBitsAbovePhysBits
        )
    }

    /// Kebab-case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Conflict::FilePhysBitsDiffersFromCpuid => "file-phys-bits-differs-from-cpuid",
            Conflict::FileGuestPhysBitsDiffers => "file-guest-phys-bits-differs",
            Conflict::HintSetButFileInvalid => "hint-set-but-file-invalid",
            Conflict::CorruptFile => "corrupt-file",
            Conflict::ValidWithoutAddressSizes => "valid-without-address-sizes",
            Conflict::WidthOutOfRange => "width-out-of-range",
            Conflict::HintClearButFileValid => "hint-clear-but-file-valid",
            Conflict::FileUnreadable => "file-unreadable",
            Conflict::GuestPhysBitsAbovePhysBits => "guest-phys-bits-above-phys-bits",
            Conflict::MemoryAboveWidth => "memory-above-width",
            Conflict::FileBackedContradictsFlag => "file-backed-contradicts-flag",
        }
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of [`Conflict`]s, without a heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Conflicts(u16);

impl Conflicts {
    /// The empty set.
    pub const fn empty() -> Self {
        Conflicts(0)
    }

    /// Adds one.
    pub fn insert(&mut self, c: Conflict) {
        self.0 |= 1 << (c as u8);
    }

    /// Whether `c` is in the set.
    pub fn contains(&self, c: Conflict) -> bool {
        self.0 & (1 << (c as u8)) != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether any is hard.
    pub fn has_hard(&self) -> bool {
        self.iter().any(|c| c.is_hard())
    }

    /// The raw bits (bit `n` is the conflict with discriminant `n`).
    pub fn bits(&self) -> u16 {
        self.0
    }

    /// The conflicts, in bit order.
    pub fn iter(&self) -> impl Iterator<Item = Conflict> + '_ {
        Conflict::ALL.into_iter().filter(|c| self.contains(*c))
    }
}

impl<const N: usize> From<[Conflict; N]> for Conflicts {
    fn from(list: [Conflict; N]) -> Self {
        let mut s = Conflicts::empty();
        for c in list {
            s.insert(c);
        }
        s
    }
}

/// The answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Usable physical address width.
    pub phys_bits: u8,
    /// Who decided.
    pub decided_by: DecidedBy,
    /// Which table row fired.
    pub rule: Rule,
    /// The mode applied.
    pub mode: PolicyMode,
    /// Every disagreement seen, whatever the mode.
    pub conflicts: Conflicts,
}

/// Lists every conflict in `inputs` (see the module table).
pub fn conflicts(inputs: &ChannelInputs) -> Conflicts {
    let mut c = Conflicts::empty();
    let file_valid = matches!(inputs.file, FileState::Present(f) if f.valid);
    match inputs.file {
        FileState::Present(f) => {
            if f.phys_bits != inputs.phys_bits {
                c.insert(Conflict::FilePhysBitsDiffersFromCpuid);
            }
            if f.guest_phys_bits != inputs.guest_phys_bits {
                c.insert(Conflict::FileGuestPhysBitsDiffers);
            }
            if !f.valid && inputs.hint == HintState::Set {
                c.insert(Conflict::HintSetButFileInvalid);
            }
            if f.valid && inputs.hint == HintState::Clear {
                c.insert(Conflict::HintClearButFileValid);
            }
            if f.backed_bits != 0 && f.valid != (f.width() <= f.backed_bits) {
                c.insert(Conflict::FileBackedContradictsFlag);
            }
        }
        FileState::Corrupt(_) => c.insert(Conflict::CorruptFile),
        FileState::Unreadable(_) => c.insert(Conflict::FileUnreadable),
        FileState::Absent => {}
    }
    if (file_valid || inputs.hint == HintState::Set) && inputs.phys_bits == 0 {
        c.insert(Conflict::ValidWithoutAddressSizes);
    }
    let range = MIN_PHYS_BITS..=MAX_PHYS_BITS;
    if (inputs.phys_bits != 0 && !range.contains(&inputs.phys_bits))
        || (inputs.guest_phys_bits != 0 && !range.contains(&inputs.guest_phys_bits))
    {
        c.insert(Conflict::WidthOutOfRange);
    }
    if inputs.phys_bits != 0 && inputs.guest_phys_bits > inputs.phys_bits {
        c.insert(Conflict::GuestPhysBitsAbovePhysBits);
    }
    if inputs.memory_bits() > inputs.ceiling().unwrap_or(MAX_PHYS_BITS) {
        c.insert(Conflict::MemoryAboveWidth);
    }
    c
}

/// OVMF's rule (row H1 of the module docs): `Some(width)` when it
/// accepts CPUID's width ([`peers::ovmf_cpuid_width`] on QEMU's machines;
/// a width of 0 counts as unknown, as in OVMF). The vendor is
/// [`ChannelInputs::ext_vendor`], the signature of CPUID 0x8000_0000.
pub fn heuristic_width(inputs: &ChannelInputs) -> Option<u8> {
    peers::ovmf_cpuid_width(inputs, true).filter(|&w| w != 0)
}

/// Applies the policy table (module docs) in `mode`.
pub fn decide(inputs: &ChannelInputs, mode: PolicyMode) -> Decision {
    let conflicts = conflicts(inputs);
    let make = |phys_bits, decided_by, rule| Decision {
        phys_bits,
        decided_by,
        rule,
        mode,
        conflicts,
    };
    // Rejected, OVMF falls back to the memory map's need, never below 36,
    // uncapped, and keeps an accepted width as it is (heuristic mode
    // reproduces that); combined mode raises both to its capped fallback.
    let heuristic = |fallback: u8, raise: bool| match heuristic_width(inputs) {
        Some(w) if raise => make(w.max(fallback), DecidedBy::Heuristic, Rule::HeuristicValid),
        Some(w) => make(w, DecidedBy::Heuristic, Rule::HeuristicValid),
        None => make(
            fallback,
            DecidedBy::ConservativeDefault,
            Rule::HeuristicInvalid,
        ),
    };
    if mode == PolicyMode::Heuristic {
        // OVMF on QEMU's machines, memory-map and TDX fallbacks included.
        let ovmf = peers::ovmf(inputs, &OvmfSetup::new(OvmfPlatform::Qemu));
        return heuristic(ovmf.phys_bits, false);
    }
    let fallback = inputs.fallback();
    if conflicts.has_hard() {
        return make(fallback, DecidedBy::ConservativeDefault, Rule::Distrusted);
    }
    let hint = inputs.hint == HintState::Set;
    let file = match inputs.file {
        FileState::Present(f) => Some(f),
        _ => None,
    };
    let width = inputs.cpuid_width();
    match (hint, file.map(|f| f.valid)) {
        (_, Some(false)) => match file.map(|f| f.backed_bits) {
            Some(b) if b >= MIN_PHYS_BITS => make(
                b.min(width).min(MAX_PHYS_BITS),
                DecidedBy::FwCfgFile,
                Rule::BackedWidth,
            ),
            _ => make(fallback, DecidedBy::FwCfgFile, Rule::ExplicitInvalid),
        },
        (true, Some(true)) => make(width, DecidedBy::BothChannels, Rule::ExplicitValid),
        (true, None) => make(width, DecidedBy::CpuidHint, Rule::ExplicitValid),
        (false, Some(true)) => make(width, DecidedBy::FwCfgFile, Rule::ExplicitValid),
        (false, None) => match mode {
            PolicyMode::Combined => heuristic(fallback, true),
            _ => make(
                fallback,
                DecidedBy::ConservativeDefault,
                Rule::NoInformation,
            ),
        },
    }
}

/// [`decide`] in all three modes, in [`PolicyMode::ALL`] order.
pub fn decide_all(inputs: &ChannelInputs) -> [Decision; 3] {
    PolicyMode::ALL.map(|m| decide(inputs, m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::TransportError;
    use Conflict as C;
    use DecidedBy as By;
    use FileState as F;
    use HintState as Hs;
    use PolicyMode as M;

    fn inputs(hint: HintState, phys: u8, guest: u8, file: FileState) -> ChannelInputs {
        ChannelInputs {
            hint,
            // The leaf is missing exactly when these tables say 0 bits.
            has_address_sizes: phys != 0,
            phys_bits: phys,
            guest_phys_bits: guest,
            ext_vendor: Some(Vendor::Intel),
            file,
            five_level_paging: false,
            gb_pages: true,
            memory_top: 0,
            sev_c_bit: None,
            tdx: false,
        }
    }

    /// `i` with an empty CPUID 0x8000_0000 signature (KVM's supported CPUID
    /// passed through on an Intel host).
    fn no_ext_vendor(i: ChannelInputs) -> ChannelInputs {
        ChannelInputs {
            ext_vendor: None,
            ..i
        }
    }

    /// `i` with an 0x8000_0008 leaf that exists (reporting `i`'s widths).
    fn zero_leaf(i: ChannelInputs) -> ChannelInputs {
        ChannelInputs {
            has_address_sizes: true,
            ..i
        }
    }

    const fn valid(p: u8, g: u8) -> FileState {
        F::Present(PhysBitsFile::new(true, p, g))
    }
    const fn invalid(p: u8, g: u8) -> FileState {
        F::Present(PhysBitsFile::new(false, p, g))
    }
    const CORRUPT: FileState = F::Corrupt(PhysBitsFileError::BadValidFlag(7));
    const UNREADABLE: FileState = F::Unreadable(ReadError::Transport(TransportError::DmaError {
        control: 1,
    }));

    /// (row, inputs, mode, width, decided by, rule, conflicts)
    type Row = (
        &'static str,
        ChannelInputs,
        PolicyMode,
        u8,
        DecidedBy,
        Rule,
        &'static [Conflict],
    );

    #[test]
    fn policy_table() {
        let rows: &[Row] = &[
            // Strict.
            (
                "S1 phys differs",
                inputs(Hs::Set, 39, 0, valid(40, 0)),
                M::Strict,
                36,
                By::ConservativeDefault,
                Rule::Distrusted,
                &[C::FilePhysBitsDiffersFromCpuid],
            ),
            (
                "S1 guest differs",
                inputs(Hs::Set, 46, 40, valid(46, 0)),
                M::Strict,
                36,
                By::ConservativeDefault,
                Rule::Distrusted,
                &[C::FileGuestPhysBitsDiffers],
            ),
            (
                "S1 hint set, file invalid",
                inputs(Hs::Set, 40, 0, invalid(40, 0)),
                M::Strict,
                36,
                By::ConservativeDefault,
                Rule::Distrusted,
                &[C::HintSetButFileInvalid],
            ),
            (
                "S1 corrupt, hint set",
                inputs(Hs::Set, 39, 0, CORRUPT),
                M::Strict,
                36,
                By::ConservativeDefault,
                Rule::Distrusted,
                &[C::CorruptFile],
            ),
            (
                "S1 corrupt, no hint",
                inputs(Hs::Clear, 39, 0, CORRUPT),
                M::Strict,
                36,
                By::ConservativeDefault,
                Rule::Distrusted,
                &[C::CorruptFile],
            ),
            (
                "S1 valid without leaf",
                inputs(Hs::Set, 0, 0, F::Absent),
                M::Strict,
                36,
                By::ConservativeDefault,
                Rule::Distrusted,
                &[C::ValidWithoutAddressSizes],
            ),
            (
                "S1 width 64",
                inputs(Hs::Set, 64, 0, F::Absent),
                M::Strict,
                36,
                By::ConservativeDefault,
                Rule::Distrusted,
                &[C::WidthOutOfRange],
            ),
            (
                "S1 guest width 20",
                inputs(Hs::Set, 40, 20, F::Absent),
                M::Strict,
                36,
                By::ConservativeDefault,
                Rule::Distrusted,
                &[C::WidthOutOfRange],
            ),
            (
                "S2 file invalid, hint clear",
                inputs(Hs::Clear, 40, 0, invalid(40, 0)),
                M::Strict,
                36,
                By::FwCfgFile,
                Rule::ExplicitInvalid,
                &[],
            ),
            (
                "S2 file invalid, no kvm",
                inputs(Hs::NoKvmLeaf, 40, 0, invalid(40, 0)),
                M::Strict,
                36,
                By::FwCfgFile,
                Rule::ExplicitInvalid,
                &[],
            ),
            (
                "S3 both valid",
                inputs(Hs::Set, 39, 0, valid(39, 0)),
                M::Strict,
                39,
                By::BothChannels,
                Rule::ExplicitValid,
                &[],
            ),
            (
                "S3 both valid, guest cap",
                inputs(Hs::Set, 48, 40, valid(48, 40)),
                M::Strict,
                40,
                By::BothChannels,
                Rule::ExplicitValid,
                &[],
            ),
            (
                "S4 hint only",
                inputs(Hs::Set, 40, 0, F::Absent),
                M::Strict,
                40,
                By::CpuidHint,
                Rule::ExplicitValid,
                &[],
            ),
            (
                "S4 hint, file unreadable",
                inputs(Hs::Set, 40, 0, UNREADABLE),
                M::Strict,
                40,
                By::CpuidHint,
                Rule::ExplicitValid,
                &[C::FileUnreadable],
            ),
            (
                "S4 hint, guest above phys",
                inputs(Hs::Set, 40, 44, F::Absent),
                M::Strict,
                40,
                By::CpuidHint,
                Rule::ExplicitValid,
                &[C::GuestPhysBitsAbovePhysBits],
            ),
            (
                "S5 file only, no kvm",
                inputs(Hs::NoKvmLeaf, 52, 0, valid(52, 0)),
                M::Strict,
                52,
                By::FwCfgFile,
                Rule::ExplicitValid,
                &[],
            ),
            (
                "S5 file valid, hint clear",
                inputs(Hs::Clear, 43, 0, valid(43, 0)),
                M::Strict,
                43,
                By::FwCfgFile,
                Rule::ExplicitValid,
                &[C::HintClearButFileValid],
            ),
            (
                "S6 nothing, clear",
                inputs(Hs::Clear, 48, 0, F::Absent),
                M::Strict,
                36,
                By::ConservativeDefault,
                Rule::NoInformation,
                &[],
            ),
            (
                "S6 nothing, no kvm",
                inputs(Hs::NoKvmLeaf, 48, 0, F::Absent),
                M::Strict,
                36,
                By::ConservativeDefault,
                Rule::NoInformation,
                &[],
            ),
            (
                "S6 unreadable",
                inputs(Hs::Clear, 48, 0, UNREADABLE),
                M::Strict,
                36,
                By::ConservativeDefault,
                Rule::NoInformation,
                &[C::FileUnreadable],
            ),
            // Heuristic: the channels do not matter, conflicts are still listed.
            (
                "H1 guest phys",
                inputs(Hs::NoKvmLeaf, 40, 39, F::Absent),
                M::Heuristic,
                39,
                By::Heuristic,
                Rule::HeuristicValid,
                &[],
            ),
            (
                "H1 >= 41",
                inputs(Hs::NoKvmLeaf, 43, 0, F::Absent),
                M::Heuristic,
                43,
                By::Heuristic,
                Rule::HeuristicValid,
                &[],
            ),
            (
                "H1 cap 46",
                inputs(Hs::NoKvmLeaf, 52, 0, F::Absent),
                M::Heuristic,
                46,
                By::Heuristic,
                Rule::HeuristicValid,
                &[],
            ),
            (
                "H1 intel 39",
                inputs(Hs::NoKvmLeaf, 39, 0, F::Absent),
                M::Heuristic,
                39,
                By::Heuristic,
                Rule::HeuristicValid,
                &[],
            ),
            (
                "H1 intel 36",
                inputs(Hs::NoKvmLeaf, 36, 0, F::Absent),
                M::Heuristic,
                36,
                By::Heuristic,
                Rule::HeuristicValid,
                &[],
            ),
            (
                "H1 no leaf = 36 on intel",
                inputs(Hs::NoKvmLeaf, 0, 0, F::Absent),
                M::Heuristic,
                36,
                By::Heuristic,
                Rule::HeuristicValid,
                &[],
            ),
            (
                "H1 ignores conflicts",
                inputs(Hs::Set, 43, 0, invalid(40, 0)),
                M::Heuristic,
                43,
                By::Heuristic,
                Rule::HeuristicValid,
                &[C::FilePhysBitsDiffersFromCpuid, C::HintSetButFileInvalid],
            ),
            (
                "H2 intel 40",
                inputs(Hs::Set, 40, 0, valid(40, 0)),
                M::Heuristic,
                36,
                By::ConservativeDefault,
                Rule::HeuristicInvalid,
                &[],
            ),
            (
                "H2 intel 39, empty 0x80000000 signature",
                no_ext_vendor(inputs(Hs::NoKvmLeaf, 39, 0, F::Absent)),
                M::Heuristic,
                36,
                By::ConservativeDefault,
                Rule::HeuristicInvalid,
                &[],
            ),
            (
                "H2 leaf reports 0 bits",
                zero_leaf(inputs(Hs::NoKvmLeaf, 0, 0, F::Absent)),
                M::Heuristic,
                36,
                By::ConservativeDefault,
                Rule::HeuristicInvalid,
                &[],
            ),
            (
                "H2 leaf reports 0 bits, guest phys set",
                zero_leaf(inputs(Hs::NoKvmLeaf, 0, 40, F::Absent)),
                M::Heuristic,
                36,
                By::ConservativeDefault,
                Rule::HeuristicInvalid,
                &[],
            ),
            // Combined.
            (
                "C1 conflict",
                inputs(Hs::Set, 39, 0, valid(40, 0)),
                M::Combined,
                36,
                By::ConservativeDefault,
                Rule::Distrusted,
                &[C::FilePhysBitsDiffersFromCpuid],
            ),
            (
                "C1 corrupt beats heuristic",
                inputs(Hs::Clear, 48, 0, CORRUPT),
                M::Combined,
                36,
                By::ConservativeDefault,
                Rule::Distrusted,
                &[C::CorruptFile],
            ),
            (
                "C2 invalid beats heuristic",
                inputs(Hs::Clear, 48, 0, invalid(48, 0)),
                M::Combined,
                36,
                By::FwCfgFile,
                Rule::ExplicitInvalid,
                &[],
            ),
            (
                "C2 hint beats heuristic",
                inputs(Hs::Set, 40, 0, F::Absent),
                M::Combined,
                40,
                By::CpuidHint,
                Rule::ExplicitValid,
                &[],
            ),
            (
                "C2 both, no paging cap",
                inputs(Hs::Set, 52, 0, valid(52, 0)),
                M::Combined,
                52,
                By::BothChannels,
                Rule::ExplicitValid,
                &[],
            ),
            (
                "C2 file only",
                inputs(Hs::NoKvmLeaf, 40, 0, valid(40, 0)),
                M::Combined,
                40,
                By::FwCfgFile,
                Rule::ExplicitValid,
                &[],
            ),
            (
                "C3 silent, heuristic yes",
                inputs(Hs::Clear, 48, 0, F::Absent),
                M::Combined,
                46,
                By::Heuristic,
                Rule::HeuristicValid,
                &[],
            ),
            (
                "C3 silent, empty 0x80000000 signature",
                no_ext_vendor(inputs(Hs::Clear, 36, 0, F::Absent)),
                M::Combined,
                36,
                By::ConservativeDefault,
                Rule::HeuristicInvalid,
                &[],
            ),
            (
                "C1 hint set, leaf reports 0 bits",
                zero_leaf(inputs(Hs::Set, 0, 0, F::Absent)),
                M::Combined,
                36,
                By::ConservativeDefault,
                Rule::Distrusted,
                &[C::ValidWithoutAddressSizes],
            ),
            (
                "C3 silent, heuristic no",
                inputs(Hs::NoKvmLeaf, 40, 0, UNREADABLE),
                M::Combined,
                36,
                By::ConservativeDefault,
                Rule::HeuristicInvalid,
                &[C::FileUnreadable],
            ),
        ];
        for (name, inp, mode, width, by, rule, confl) in rows {
            let d = decide(inp, *mode);
            assert_eq!(d.phys_bits, *width, "{name}: width");
            assert_eq!(d.decided_by, *by, "{name}: decided by");
            assert_eq!(d.rule, *rule, "{name}: rule");
            assert_eq!(d.mode, *mode, "{name}: mode");
            let mut want = Conflicts::empty();
            for c in *confl {
                want.insert(*c);
            }
            assert_eq!(d.conflicts, want, "{name}: conflicts");
        }
    }

    /// Issue 14's semantics: valid means every address below 2^W is
    /// backed; QEMU's range; never above a stated width; never below the
    /// RAM top, a collision being a conflict.
    #[test]
    fn effective_width_backed_width_and_memory_top() {
        const GIB: u64 = 1 << 30;
        let backed = |p, g, b| F::Present(PhysBitsFile::new(false, p, g).with_backed_bits(b));
        // (row, inputs, mode, width, decided by, rule, conflicts)
        type Row<'a> = (
            &'a str,
            ChannelInputs,
            PolicyMode,
            u8,
            DecidedBy,
            Rule,
            &'a [Conflict],
        );
        let rows: &[Row] = &[
            (
                "phys-bits=34, valid: 34, not 36",
                inputs(Hs::Set, 34, 0, valid(34, 0)),
                M::Strict,
                34,
                By::BothChannels,
                Rule::ExplicitValid,
                &[],
            ),
            (
                "phys-bits=42 on a 39-bit host: W = 39, backed",
                inputs(Hs::Set, 42, 39, valid(42, 39)),
                M::Strict,
                39,
                By::BothChannels,
                Rule::ExplicitValid,
                &[],
            ),
            (
                "legacy 40 on a 39-bit host: the backed 39",
                inputs(Hs::Clear, 40, 0, backed(40, 0, 39)),
                M::Strict,
                39,
                By::FwCfgFile,
                Rule::BackedWidth,
                &[],
            ),
            (
                "invalid v1, RAM to 320 GiB: 39, not 36",
                inputs(Hs::Clear, 40, 0, invalid(40, 0)).with_memory_top(320 * GIB),
                M::Combined,
                39,
                By::FwCfgFile,
                Rule::ExplicitInvalid,
                &[],
            ),
            (
                "silent, RAM to 100 GiB: 37",
                inputs(Hs::Clear, 48, 0, F::Absent).with_memory_top(100 * GIB),
                M::Strict,
                37,
                By::ConservativeDefault,
                Rule::NoInformation,
                &[],
            ),
            (
                "heuristic caps at 40 (no 1 GiB pages), RAM to 4 TiB: combined raises to 42",
                ChannelInputs {
                    gb_pages: false,
                    ..inputs(Hs::NoKvmLeaf, 48, 0, F::Absent)
                }
                .with_memory_top(4096 * GIB),
                M::Combined,
                42,
                By::Heuristic,
                Rule::HeuristicValid,
                &[],
            ),
            (
                "OVMF's fallback covers the RAM top and its 32 GiB aperture, uncapped",
                inputs(Hs::NoKvmLeaf, 40, 0, F::Absent).with_memory_top(1 << 41),
                M::Heuristic,
                42,
                By::ConservativeDefault,
                Rule::HeuristicInvalid,
                &[C::MemoryAboveWidth],
            ),
            (
                "valid 39 but RAM above 2^39: a conflict, never above 39",
                inputs(Hs::Set, 39, 0, valid(39, 0)).with_memory_top(768 * GIB),
                M::Strict,
                39,
                By::ConservativeDefault,
                Rule::Distrusted,
                &[C::MemoryAboveWidth],
            ),
            (
                "backed 39 but RAM above 2^39: 39 and a conflict",
                inputs(Hs::Clear, 40, 0, backed(40, 0, 39)).with_memory_top(768 * GIB),
                M::Combined,
                39,
                By::ConservativeDefault,
                Rule::Distrusted,
                &[C::MemoryAboveWidth],
            ),
            (
                "valid flag against its own backed width",
                inputs(Hs::Clear, 40, 0, backed(40, 0, 46)),
                M::Strict,
                36,
                By::ConservativeDefault,
                Rule::Distrusted,
                &[C::FileBackedContradictsFlag],
            ),
            (
                "a distrusted 34 stays at 34",
                inputs(Hs::Set, 34, 0, valid(36, 0)),
                M::Strict,
                34,
                By::ConservativeDefault,
                Rule::Distrusted,
                &[C::FilePhysBitsDiffersFromCpuid],
            ),
            (
                "SEV: W stays below the C-bit",
                ChannelInputs {
                    sev_c_bit: Some(47),
                    ..inputs(Hs::Set, 48, 0, valid(48, 0))
                },
                M::Strict,
                47,
                By::BothChannels,
                Rule::ExplicitValid,
                &[],
            ),
            (
                "TDX: W stays below the shared bit",
                ChannelInputs {
                    tdx: true,
                    ..inputs(Hs::Set, 52, 0, F::Absent)
                },
                M::Combined,
                51,
                By::CpuidHint,
                Rule::ExplicitValid,
                &[],
            ),
            (
                "31 is out of QEMU's range",
                inputs(Hs::Set, 31, 0, F::Absent),
                M::Combined,
                36,
                By::ConservativeDefault,
                Rule::Distrusted,
                &[C::WidthOutOfRange],
            ),
        ];
        for (name, inp, mode, width, by, rule, confl) in rows {
            let d = decide(inp, *mode);
            assert_eq!(
                (d.phys_bits, d.decided_by, d.rule),
                (*width, *by, *rule),
                "{name}"
            );
            let mut want = Conflicts::empty();
            for c in *confl {
                want.insert(*c);
            }
            assert_eq!(d.conflicts, want, "{name}: conflicts");
        }
        assert_eq!(bits_to_reach(0), 0);
        assert_eq!(bits_to_reach(1 << 36), 36);
        assert_eq!(bits_to_reach((1 << 36) + 1), 37);
        assert_eq!(bits_to_reach(u64::MAX), 64);
    }

    #[test]
    fn heuristic_vendor_and_paging_rows() {
        let mut i = inputs(Hs::NoKvmLeaf, 40, 0, F::Absent);
        i.ext_vendor = Some(Vendor::Amd);
        assert_eq!(heuristic_width(&i), Some(40));
        i.phys_bits = 39;
        assert_eq!(heuristic_width(&i), None, "AMD 39 is not known-good");
        i.ext_vendor = Some(Vendor::Other(*b"HygonGenuine"));
        i.phys_bits = 40;
        assert_eq!(heuristic_width(&i), None);
        i.phys_bits = 48;
        assert_eq!(heuristic_width(&i), Some(46));
        i.five_level_paging = true;
        assert_eq!(heuristic_width(&i), Some(48));
        i.phys_bits = 52;
        assert_eq!(heuristic_width(&i), Some(48), "5-level, no GuestPhysBits");
        i.guest_phys_bits = 52;
        assert_eq!(heuristic_width(&i), Some(52), "5-level, GuestPhysBits 52");
        i.phys_bits = 57;
        i.guest_phys_bits = 57;
        assert_eq!(heuristic_width(&i), Some(57), "OVMF has no 52 cap");
        i.guest_phys_bits = 0;
        i.gb_pages = false;
        assert_eq!(heuristic_width(&i), Some(40));
    }

    #[test]
    fn conflict_set_and_names() {
        let s = Conflicts::from([C::CorruptFile, C::FileUnreadable]);
        assert_eq!(s.len(), 2);
        assert!(s.has_hard());
        assert!(!Conflicts::from([C::FileUnreadable]).has_hard());
        let v: [Option<Conflict>; 2] = {
            let mut it = s.iter();
            [it.next(), it.next()]
        };
        assert_eq!(v, [Some(C::CorruptFile), Some(C::FileUnreadable)]);
        assert_eq!(C::CorruptFile.as_str(), "corrupt-file");
        for (i, c) in Conflict::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i);
        }
    }

    /// The wrapper gives the reader's state (the cases are the reader's
    /// `phys_bits_file_raw_bytes_and_state`).
    #[test]
    fn read_phys_bits_file_is_the_readers_state() {
        use crate::abi::PHYS_BITS_FILE_NAME;
        use crate::reader::tests::{MemDev, dir, entry};
        let pb = PhysBitsFile::new(false, 40, 0).to_bytes();
        let d: [u8; 4 + 64] = dir(1, &[entry(8, 0x20, PHYS_BITS_FILE_NAME.as_bytes())]);
        let files: &[(u16, &[u8])] = &[(0x20, &pb)];
        let mut r = FwCfgReader::new(MemDev::new(&d, files)).unwrap();
        assert_eq!(read_phys_bits_file(&mut r), invalid(40, 0));
        let d: [u8; 4 + 64] = dir(2, &[entry(8, 0x20, b"other")]);
        let mut r = FwCfgReader::new(MemDev::new(&d, &[])).unwrap();
        assert_eq!(
            read_phys_bits_file(&mut r),
            F::Unreadable(ReadError::DirectoryTruncated { index: 1 })
        );
    }

    /// From CPUID registers to the heuristic: the vendor that counts is the
    /// signature of leaf 0x8000_0000 (OVMF), whatever leaf 0 says.
    #[test]
    fn heuristic_vendor_from_cpuid_leaves() {
        use crate::cpuid::{CpuidResult, CpuidSource, read_cpuid_channel};

        const fn r(eax: u32, ebx: u32, ecx: u32, edx: u32) -> CpuidResult {
            CpuidResult { eax, ebx, ecx, edx }
        }
        // (EBX, ECX, EDX) of the vendor signatures; NONE = all zero.
        const INTEL: (u32, u32, u32) = (0x756e_6547, 0x6c65_746e, 0x4965_6e69);
        const AMD: (u32, u32, u32) = (0x6874_7541, 0x444d_4163, 0x6974_6e65);
        const NONE: (u32, u32, u32) = (0, 0, 0);

        /// Leaf 0, leaf 0x8000_0000's signature, 0x8000_0008 EAX (`None`:
        /// the maximum extended leaf is 0x8000_0001).
        struct Cpu((u32, u32, u32), (u32, u32, u32), Option<u32>);
        impl CpuidSource for Cpu {
            fn cpuid(&self, leaf: u32, _subleaf: u32) -> CpuidResult {
                let Cpu(l0, ext, sizes) = *self;
                let max_ext = if sizes.is_some() {
                    0x8000_0008
                } else {
                    0x8000_0001
                };
                match leaf {
                    0 => r(0xd, l0.0, l0.1, l0.2),
                    0x8000_0000 => r(max_ext, ext.0, ext.1, ext.2),
                    0x8000_0001 => r(0, 0, 0, 1 << 26),
                    0x8000_0008 => r(sizes.unwrap_or(0), 0, 0, 0),
                    _ => CpuidResult::default(),
                }
            }
        }

        // (row, CPU, heuristic width, whether the heuristic accepts)
        let rows: &[(&str, Cpu, u8, bool)] = &[
            (
                "intel 36, QEMU signature",
                Cpu(INTEL, INTEL, Some(36)),
                36,
                true,
            ),
            (
                "intel 39, QEMU signature",
                Cpu(INTEL, INTEL, Some(39)),
                39,
                true,
            ),
            (
                "intel 36, empty signature",
                Cpu(INTEL, NONE, Some(36)),
                36,
                false,
            ),
            (
                "intel 39, empty signature",
                Cpu(INTEL, NONE, Some(39)),
                36,
                false,
            ),
            (
                "intel 40, QEMU signature",
                Cpu(INTEL, INTEL, Some(40)),
                36,
                false,
            ),
            (
                "intel 46, empty signature",
                Cpu(INTEL, NONE, Some(46)),
                46,
                true,
            ),
            (
                "intel 39/39, empty signature",
                Cpu(INTEL, NONE, Some(0x27_0027)),
                39,
                true,
            ),
            ("amd 40", Cpu(AMD, AMD, Some(40)), 40, true),
            (
                "amd 40, empty signature",
                Cpu(AMD, NONE, Some(40)),
                36,
                false,
            ),
            (
                "leaf 0 amd, extended intel",
                Cpu(AMD, INTEL, Some(39)),
                39,
                true,
            ),
            (
                "no leaf, intel signature",
                Cpu(INTEL, INTEL, None),
                36,
                true,
            ),
            (
                "no leaf, empty signature",
                Cpu(INTEL, NONE, None),
                36,
                false,
            ),
            ("leaf reports 0 bits", Cpu(INTEL, INTEL, Some(0)), 36, false),
        ];
        for (name, cpu, width, accepts) in rows {
            let inputs = ChannelInputs::new(&read_cpuid_channel(cpu), F::Absent);
            let rule = if *accepts {
                Rule::HeuristicValid
            } else {
                Rule::HeuristicInvalid
            };
            for mode in [M::Heuristic, M::Combined] {
                let d = decide(&inputs, mode);
                assert_eq!((d.phys_bits, d.rule), (*width, rule), "{name}: {mode:?}");
            }
        }
    }

    #[test]
    fn decide_all_orders_modes() {
        let d = decide_all(&inputs(Hs::Clear, 48, 0, F::Absent));
        assert_eq!(d.map(|d| d.mode), PolicyMode::ALL);
        assert_eq!(d.map(|d| d.phys_bits), [36, 46, 46]);
    }

    proptest::proptest! {
        #[test]
        fn decide_is_total(hint in 0u8..3, phys in proptest::prelude::any::<u8>(), guest in proptest::prelude::any::<u8>(),
                           bytes in proptest::prelude::any::<[u8; 8]>(), present in proptest::prelude::any::<bool>(),
                           top_bits in 0u32..64) {
            let hint = [Hs::NoKvmLeaf, Hs::Clear, Hs::Set][hint as usize];
            let file = if present { FileState::from_bytes(&bytes) } else { F::Absent };
            let i = inputs(hint, phys, guest, file).with_memory_top(1u64 << top_bits);
            for d in decide_all(&i) {
                if d.mode == M::Heuristic {
                    // Exactly OVMF on QEMU's machines.
                    let ovmf = peers::ovmf(&i, &OvmfSetup::new(OvmfPlatform::Qemu));
                    proptest::prop_assert_eq!(d.phys_bits, ovmf.phys_bits);
                    continue;
                }
                // Never above a stated width, within QEMU's range.
                if let Some(c) = i.ceiling() {
                    proptest::prop_assert!(d.phys_bits <= c);
                }
                proptest::prop_assert!((32..=52).contains(&d.phys_bits));
                if d.conflicts.has_hard() {
                    proptest::prop_assert_eq!(d.phys_bits, i.fallback());
                }
                // Never below the RAM top unless that is a listed conflict.
                if i.memory_bits() > d.phys_bits {
                    proptest::prop_assert!(d.conflicts.contains(C::MemoryAboveWidth));
                }
            }
        }
    }
}
