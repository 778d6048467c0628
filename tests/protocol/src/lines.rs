// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The lines, and the values in them.
//!
//! Every enum is serialized in kebab-case (one spelling for each value,
//! whoever prints it); the conversions from the guest reader's types are
//! here too, so a producer never spells a value itself.

use serde::{Serialize, Serializer};

use fw_cfg_guest::abi::PhysBitsFileError;
use fw_cfg_guest::cpuid::{self, CpuidReport};
use fw_cfg_guest::policy::{self, ChannelInputs, Decision, FileState};
use fw_cfg_guest::reader::{FwCfgReader, ReadError};
use fw_cfg_guest::transport::{FwCfgTransport, TransportError};

use crate::modes::ModeAnswers;
use crate::name::{Bytes, Name};
use crate::phase::{Channel, Phase, Transport};

/// Most bytes of `etc/phys-bits-valid` a line carries (the reader's
/// prefix, [`policy::PHYS_BITS_FILE_READ_MAX`]).
pub const FILE_BYTES_MAX: usize = policy::PHYS_BITS_FILE_READ_MAX;

/// Derives shared by every line type: `Serialize` always, `Deserialize` on
/// the host.
macro_rules! wire {
    ($(#[$m:meta])* $vis:vis $kind:ident $name:ident $($rest:tt)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
        #[cfg_attr(feature = "host", derive(serde::Deserialize))]
        $(#[$m])*
        $vis $kind $name $($rest)*
    };
}

/// Copies between a guest enum and its wire twin of the same variants.
macro_rules! same_variants {
    ($wire:ident, $guest:path, $($v:ident),+ $(,)?) => {
        impl From<$guest> for $wire {
            fn from(v: $guest) -> Self {
                use $guest as G;
                match v { $(G::$v => $wire::$v),+ }
            }
        }
        impl From<$wire> for $guest {
            fn from(v: $wire) -> Self {
                use $guest as G;
                match v { $($wire::$v => G::$v),+ }
            }
        }
    };
}

/// `ALL`, `as_str` (the serialized name) and `Display` of a unit-only
/// wire enum; a test checks every name against the serialized form.
macro_rules! names {
    ($wire:ident { $($v:ident => $name:literal),+ $(,)? }) => {
        impl $wire {
            /// Every value.
            pub const ALL: &'static [$wire] = &[$($wire::$v),+];

            /// The serialized name.
            pub const fn as_str(self) -> &'static str {
                match self { $($wire::$v => $name),+ }
            }
        }

        impl core::fmt::Display for $wire {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire! {
    /// What the KVM features leaf says about the phys-bits hint
    /// (`no-kvm-leaf`, `clear`, `set`).
    #[serde(rename_all = "kebab-case")]
    pub enum HintState {
        /// No KVM features leaf: the channel is silent.
        NoKvmLeaf,
        /// The hint bit is clear.
        Clear,
        /// The hint bit is set.
        Set,
    }
}
same_variants!(HintState, cpuid::HintState, NoKvmLeaf, Clear, Set);
names!(HintState { NoKvmLeaf => "no-kvm-leaf", Clear => "clear", Set => "set" });

wire! {
    /// A CPU vendor signature, as far as the heuristic cares (`intel`,
    /// `amd`, `other`).
    #[serde(rename_all = "kebab-case")]
    pub enum Vendor {
        /// `GenuineIntel`.
        Intel,
        /// `AuthenticAMD`.
        Amd,
        /// Any other signature (its text is not carried: the heuristic
        /// treats every other vendor alike).
        Other,
    }
}

names!(Vendor { Intel => "intel", Amd => "amd", Other => "other" });

impl From<cpuid::Vendor> for Vendor {
    fn from(v: cpuid::Vendor) -> Self {
        match v {
            cpuid::Vendor::Intel => Vendor::Intel,
            cpuid::Vendor::Amd => Vendor::Amd,
            cpuid::Vendor::Other(_) => Vendor::Other,
        }
    }
}

impl Vendor {
    /// The guest reader's vendor for the policy; [`Vendor::Other`] becomes
    /// an all-zero signature, which the policy treats as any other vendor.
    pub fn to_guest(self) -> cpuid::Vendor {
        match self {
            Vendor::Intel => cpuid::Vendor::Intel,
            Vendor::Amd => cpuid::Vendor::Amd,
            Vendor::Other => cpuid::Vendor::Other([0; 12]),
        }
    }
}

wire! {
    /// Who decided (`cpuid-hint`, `fw-cfg-file`, `both-channels`,
    /// `heuristic`, `conservative-default`).
    #[serde(rename_all = "kebab-case")]
    pub enum DecidedBy {
        /// The CPUID hint alone.
        CpuidHint,
        /// The fw_cfg file alone.
        FwCfgFile,
        /// Both channels, agreeing.
        BothChannels,
        /// The OVMF-style heuristic.
        Heuristic,
        /// Nobody: the 36-bit default.
        ConservativeDefault,
    }
}
same_variants!(
    DecidedBy,
    policy::DecidedBy,
    CpuidHint,
    FwCfgFile,
    BothChannels,
    Heuristic,
    ConservativeDefault
);
names!(DecidedBy {
    CpuidHint => "cpuid-hint",
    FwCfgFile => "fw-cfg-file",
    BothChannels => "both-channels",
    Heuristic => "heuristic",
    ConservativeDefault => "conservative-default",
});

wire! {
    /// Which row of the policy table fired (`distrusted`,
    /// `explicit-invalid`, `explicit-valid`, `no-information`,
    /// `heuristic-valid`, `heuristic-invalid`, `backed-width`).
    #[serde(rename_all = "kebab-case")]
    pub enum Rule {
        /// A hard conflict: distrust.
        Distrusted,
        /// The file says invalid.
        ExplicitInvalid,
        /// An explicit valid.
        ExplicitValid,
        /// Neither channel said anything.
        NoInformation,
        /// The heuristic accepted the width.
        HeuristicValid,
        /// The heuristic rejected the width.
        HeuristicInvalid,
        /// The file says not backed and states the backed width.
        BackedWidth,
    }
}
same_variants!(
    Rule,
    policy::Rule,
    Distrusted,
    ExplicitInvalid,
    ExplicitValid,
    NoInformation,
    HeuristicValid,
    HeuristicInvalid,
    BackedWidth
);
names!(Rule {
    Distrusted => "distrusted",
    ExplicitInvalid => "explicit-invalid",
    ExplicitValid => "explicit-valid",
    NoInformation => "no-information",
    HeuristicValid => "heuristic-valid",
    HeuristicInvalid => "heuristic-invalid",
    BackedWidth => "backed-width",
});

wire! {
    /// A disagreement between or inside the channels (the guest's
    /// [`policy::Conflict`], kebab-case).
    #[serde(rename_all = "kebab-case")]
    pub enum Conflict {
        /// The file's width differs from CPUID's.
        FilePhysBitsDiffersFromCpuid,
        /// The file's guest width differs from CPUID's.
        FileGuestPhysBitsDiffers,
        /// The hint says valid, the file invalid.
        HintSetButFileInvalid,
        /// The file does not parse.
        CorruptFile,
        /// Valid without the address sizes leaf.
        ValidWithoutAddressSizes,
        /// A CPUID width outside 32..=52.
        WidthOutOfRange,
        /// The hint bit is clear while the file says valid.
        HintClearButFileValid,
        /// The file could not be read.
        FileUnreadable,
        /// The guest width is above the width.
        GuestPhysBitsAbovePhysBits,
        /// The memory map reaches above a stated width.
        MemoryAboveWidth,
        /// A version-2 file's flag contradicts its backed width.
        FileBackedContradictsFlag,
    }
}
same_variants!(
    Conflict,
    policy::Conflict,
    FilePhysBitsDiffersFromCpuid,
    FileGuestPhysBitsDiffers,
    HintSetButFileInvalid,
    CorruptFile,
    ValidWithoutAddressSizes,
    WidthOutOfRange,
    HintClearButFileValid,
    FileUnreadable,
    GuestPhysBitsAbovePhysBits,
    MemoryAboveWidth,
    FileBackedContradictsFlag
);
names!(Conflict {
    FilePhysBitsDiffersFromCpuid => "file-phys-bits-differs-from-cpuid",
    FileGuestPhysBitsDiffers => "file-guest-phys-bits-differs",
    HintSetButFileInvalid => "hint-set-but-file-invalid",
    CorruptFile => "corrupt-file",
    ValidWithoutAddressSizes => "valid-without-address-sizes",
    WidthOutOfRange => "width-out-of-range",
    HintClearButFileValid => "hint-clear-but-file-valid",
    FileUnreadable => "file-unreadable",
    GuestPhysBitsAbovePhysBits => "guest-phys-bits-above-phys-bits",
    MemoryAboveWidth => "memory-above-width",
    FileBackedContradictsFlag => "file-backed-contradicts-flag",
});

/// A set of conflicts (the guest's bit set), serialized as an array of
/// [`Conflict`] names in bit order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Conflicts(pub policy::Conflicts);

impl Conflicts {
    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The conflicts, in bit order.
    pub fn iter(&self) -> impl Iterator<Item = Conflict> + '_ {
        self.0.iter().map(Conflict::from)
    }
}

impl Serialize for Conflicts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

#[cfg(feature = "host")]
impl<'de> serde::Deserialize<'de> for Conflicts {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut set = policy::Conflicts::empty();
        for c in Vec::<Conflict>::deserialize(d)? {
            set.insert(c.into());
        }
        Ok(Conflicts(set))
    }
}

wire! {
    /// Why something could not be read or parsed: one name for every
    /// failure a line reports (the file format's, the reader's, the DMA
    /// transport's and the benchmark's own).
    #[serde(rename_all = "kebab-case")]
    #[non_exhaustive]
    pub enum ErrorKind {
        /// `etc/phys-bits-valid` is shorter than its version needs.
        TooShort,
        /// Version 0.
        BadVersion,
        /// The valid flag is neither 0 nor 1.
        BadValidFlag,
        /// The width is 0 or above 64.
        BadPhysBits,
        /// The guest width is above 64.
        BadGuestPhysBits,
        /// Reserved bytes are not zero.
        ReservedNotZero,
        /// The backed width is above 64.
        BadBackedBits,
        /// No fw_cfg signature.
        NoSignature,
        /// The directory count is impossible.
        BadDirectoryCount,
        /// The directory ends early.
        DirectoryTruncated,
        /// A file name has no NUL.
        UnterminatedName,
        /// A file name is empty.
        EmptyName,
        /// A selector outside the file range.
        BadSelector,
        /// A name listed twice.
        DuplicateFile,
        /// No such file.
        NotFound,
        /// The name asked for is not valid.
        InvalidName,
        /// The file is larger than the buffer.
        FileTooLarge,
        /// The device set the DMA error bit.
        DmaError,
        /// A DMA transfer did not finish.
        DmaTimeout,
        /// DMA is unusable after an earlier timeout.
        DmaPoisoned,
        /// Benchmark mode: no RAM area for bulk reads.
        NoArea,
        /// Benchmark mode: no fw_cfg device through this transport.
        NoDevice,
        /// An error of a newer reader this protocol has no name for yet.
        Other,
    }
}

names!(ErrorKind {
    TooShort => "too-short",
    BadVersion => "bad-version",
    BadValidFlag => "bad-valid-flag",
    BadPhysBits => "bad-phys-bits",
    BadGuestPhysBits => "bad-guest-phys-bits",
    ReservedNotZero => "reserved-not-zero",
    BadBackedBits => "bad-backed-bits",
    NoSignature => "no-signature",
    BadDirectoryCount => "bad-directory-count",
    DirectoryTruncated => "directory-truncated",
    UnterminatedName => "unterminated-name",
    EmptyName => "empty-name",
    BadSelector => "bad-selector",
    DuplicateFile => "duplicate-file",
    NotFound => "not-found",
    InvalidName => "invalid-name",
    FileTooLarge => "file-too-large",
    DmaError => "dma-error",
    DmaTimeout => "dma-timeout",
    DmaPoisoned => "dma-poisoned",
    NoArea => "no-area",
    NoDevice => "no-device",
    Other => "other",
});

impl From<PhysBitsFileError> for ErrorKind {
    fn from(e: PhysBitsFileError) -> Self {
        match e {
            PhysBitsFileError::TooShort(_) => ErrorKind::TooShort,
            PhysBitsFileError::BadVersion(_) => ErrorKind::BadVersion,
            PhysBitsFileError::BadValidFlag(_) => ErrorKind::BadValidFlag,
            PhysBitsFileError::BadPhysBits(_) => ErrorKind::BadPhysBits,
            PhysBitsFileError::BadGuestPhysBits(_) => ErrorKind::BadGuestPhysBits,
            PhysBitsFileError::ReservedNotZero => ErrorKind::ReservedNotZero,
            PhysBitsFileError::BadBackedBits(_) => ErrorKind::BadBackedBits,
            _ => ErrorKind::Other,
        }
    }
}

impl From<TransportError> for ErrorKind {
    fn from(e: TransportError) -> Self {
        match e {
            TransportError::DmaError { .. } => ErrorKind::DmaError,
            TransportError::DmaTimeout { .. } => ErrorKind::DmaTimeout,
            TransportError::DmaPoisoned => ErrorKind::DmaPoisoned,
            _ => ErrorKind::Other,
        }
    }
}

impl From<ReadError> for ErrorKind {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::NoSignature { .. } => ErrorKind::NoSignature,
            ReadError::BadDirectoryCount { .. } => ErrorKind::BadDirectoryCount,
            ReadError::DirectoryTruncated { .. } => ErrorKind::DirectoryTruncated,
            ReadError::UnterminatedName { .. } => ErrorKind::UnterminatedName,
            ReadError::EmptyName { .. } => ErrorKind::EmptyName,
            ReadError::BadSelector { .. } => ErrorKind::BadSelector,
            ReadError::DuplicateFile { .. } => ErrorKind::DuplicateFile,
            ReadError::NotFound => ErrorKind::NotFound,
            ReadError::InvalidName => ErrorKind::InvalidName,
            ReadError::FileTooLarge { .. } => ErrorKind::FileTooLarge,
            ReadError::Transport(t) => t.into(),
            _ => ErrorKind::Other,
        }
    }
}

wire! {
    /// One policy mode's answer.
    pub struct DecisionLine {
        /// The usable width.
        pub phys_bits: u8,
        /// Who decided.
        pub decided_by: DecidedBy,
        /// The policy row.
        pub rule: Rule,
        /// Every conflict seen.
        #[serde(default)]
        pub conflicts: Conflicts,
    }
}

impl From<&Decision> for DecisionLine {
    fn from(d: &Decision) -> Self {
        DecisionLine {
            phys_bits: d.phys_bits,
            decided_by: d.decided_by.into(),
            rule: d.rule.into(),
            conflicts: Conflicts(d.conflicts),
        }
    }
}

wire! {
    /// The three modes' answers.
    pub struct Decisions {
        /// Only explicit statements count.
        pub strict: DecisionLine,
        /// The OVMF/SeaBIOS heuristic.
        pub heuristic: DecisionLine,
        /// Explicit first, heuristic when both channels are silent.
        pub combined: DecisionLine,
    }
}

impl From<&[Decision; 3]> for Decisions {
    /// From [`policy::decide_all`]'s answers (strict, heuristic,
    /// combined).
    fn from(d: &[Decision; 3]) -> Self {
        Decisions {
            strict: (&d[0]).into(),
            heuristic: (&d[1]).into(),
            combined: (&d[2]).into(),
        }
    }
}

impl Decisions {
    /// The answers in [`policy::PolicyMode::ALL`] order.
    pub fn as_array(&self) -> [&DecisionLine; 3] {
        [&self.strict, &self.heuristic, &self.combined]
    }
}

wire! {
    /// What the CPUID channel said (the guest's [`CpuidReport`]).
    pub struct CpuidLine {
        /// CPUID.1:ECX\[31\].
        pub hypervisor_present: bool,
        /// The KVM base leaf.
        pub kvm_base: Option<u32>,
        /// The highest hypervisor leaf.
        pub kvm_max_leaf: Option<u32>,
        /// EDX of the KVM features leaf.
        pub kvm_features_edx: Option<u32>,
        /// The hint.
        pub hint: HintState,
        /// The highest extended leaf.
        pub max_ext_leaf: u32,
        /// Whether CPUID 0x80000008 exists.
        pub has_address_sizes: bool,
        /// Raw CPUID 0x80000008 EAX.
        pub address_sizes_eax: u32,
        /// EAX\[7:0\].
        pub phys_bits: u8,
        /// EAX\[23:16\].
        pub guest_phys_bits: u8,
        /// Leaf 0's vendor.
        pub vendor: Vendor,
        /// Leaf 0x80000000's signature, which the heuristic compares;
        /// `None` when empty.
        pub ext_vendor: Option<Vendor>,
        /// 1 GiB pages.
        pub gb_pages: bool,
        /// 5-level paging supported.
        pub la57: bool,
        /// SEV's C-bit position, when CPUID 0x8000001F reports SEV.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub sev_c_bit: Option<u8>,
        /// Leaf 0x21 says TDX.
        #[serde(default)]
        pub tdx: bool,
    }
}

impl From<&CpuidReport> for CpuidLine {
    fn from(r: &CpuidReport) -> Self {
        CpuidLine {
            hypervisor_present: r.hypervisor_present,
            kvm_base: r.kvm_base,
            kvm_max_leaf: r.kvm_max_leaf,
            kvm_features_edx: r.kvm_features_edx,
            hint: r.hint.into(),
            max_ext_leaf: r.max_ext_leaf,
            has_address_sizes: r.has_address_sizes,
            address_sizes_eax: r.address_sizes_eax,
            phys_bits: r.phys_bits,
            guest_phys_bits: r.guest_phys_bits,
            vendor: r.vendor.into(),
            ext_vendor: r.ext_vendor.map(Vendor::from),
            gb_pages: r.gb_pages,
            la57: r.la57,
            sev_c_bit: r.sev_c_bit,
            tdx: r.tdx,
        }
    }
}

impl CpuidLine {
    /// The policy inputs this report and `file` give (4-level paging), so
    /// the host can recompute a guest's decisions.
    pub fn inputs(&self, file: FileState) -> ChannelInputs {
        ChannelInputs {
            hint: self.hint.into(),
            has_address_sizes: self.has_address_sizes,
            phys_bits: self.phys_bits,
            guest_phys_bits: self.guest_phys_bits,
            ext_vendor: self.ext_vendor.map(Vendor::to_guest),
            file,
            five_level_paging: false,
            gb_pages: self.gb_pages,
            memory_top: 0,
            sev_c_bit: self.sev_c_bit,
            tdx: self.tdx,
        }
    }
}

wire! {
    /// The fw_cfg channel's state (`absent`, `present`, `corrupt`,
    /// `unreadable`).
    #[serde(rename_all = "kebab-case")]
    pub enum FileStateKind {
        /// No device or no file.
        Absent,
        /// The file parsed.
        Present,
        /// The file does not parse.
        Corrupt,
        /// The file could not be read.
        Unreadable,
    }
}

names!(FileStateKind {
    Absent => "absent",
    Present => "present",
    Corrupt => "corrupt",
    Unreadable => "unreadable",
});

wire! {
    /// What the fw_cfg channel said.
    pub struct FileLine {
        /// The state.
        pub state: FileStateKind,
        /// For `present`: the format version.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub version: Option<u8>,
        /// For `present`: the valid flag.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub valid: Option<bool>,
        /// For `present`: the width the file states.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub phys_bits: Option<u8>,
        /// For `present`: the guest width the file states.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub guest_phys_bits: Option<u8>,
        /// For `present`: the backed width the file states (version 2
        /// byte 4; 0 = not stated).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub backed_bits: Option<u8>,
        /// For `corrupt` and `unreadable`: why.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub error: Option<ErrorKind>,
        /// The size in the directory, when the file was found.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub size: Option<u32>,
        /// The bytes read (a prefix of the file).
        #[serde(default)]
        pub bytes: Bytes<FILE_BYTES_MAX>,
    }
}

impl From<&FileState> for FileLine {
    /// The state alone (no size, no bytes).
    fn from(s: &FileState) -> Self {
        let mut l = FileLine {
            state: FileStateKind::Absent,
            version: None,
            valid: None,
            phys_bits: None,
            guest_phys_bits: None,
            backed_bits: None,
            error: None,
            size: None,
            bytes: Bytes::empty(),
        };
        match *s {
            FileState::Absent => {}
            FileState::Present(f) => {
                l.state = FileStateKind::Present;
                l.version = Some(f.version);
                l.valid = Some(f.valid);
                l.phys_bits = Some(f.phys_bits);
                l.guest_phys_bits = Some(f.guest_phys_bits);
                l.backed_bits = Some(f.backed_bits);
            }
            FileState::Corrupt(e) => {
                l.state = FileStateKind::Corrupt;
                l.error = Some(e.into());
            }
            FileState::Unreadable(e) => {
                l.state = FileStateKind::Unreadable;
                l.error = Some(e.into());
            }
        }
        l
    }
}

impl FileLine {
    /// The state as the guest's policy sees it, rebuilt from the bytes
    /// read: `None` for `unreadable` (the bytes do not say why).
    pub fn state_from_bytes(&self) -> Option<FileState> {
        match self.state {
            FileStateKind::Absent => Some(FileState::Absent),
            FileStateKind::Present | FileStateKind::Corrupt => {
                Some(FileState::from_bytes(self.bytes.as_slice()))
            }
            FileStateKind::Unreadable => None,
        }
    }
}

/// The firmware's name in the `boot` line.
pub type FirmwareName = Name<32>;
/// The PVH command line as the `boot` line carries it.
pub type CmdlineText = Name<512>;

wire! {
    /// The `boot` line.
    pub struct BootLine {
        /// `fw-cfg-test-firmware`.
        pub firmware: FirmwareName,
        /// The firmware's version.
        pub version: Name<16>,
        /// Physical address of the PVH start info.
        pub start_info: u64,
        /// The command line (printable ASCII; other bytes as `?`).
        pub cmdline: CmdlineText,
        /// The MMIO window's base, when announced.
        pub mmio_base: Option<u64>,
    }
}

wire! {
    /// The `baseline` line: `exits` reads of an unassigned port.
    pub struct BaselineLine {
        /// [`Phase::Baseline`].
        pub phase: Phase,
        /// How many exits.
        pub exits: u64,
        /// Their guest TSC cycles.
        pub cycles: u64,
        /// The XOR of the bytes read.
        pub value: u8,
    }
}

wire! {
    /// A `result` line: one channel through one transport.
    pub struct ResultLine {
        /// [`Phase::Lookup`] of `transport`.
        pub phase: Phase,
        /// The channel.
        pub channel: Channel,
        /// The transport.
        pub transport: Transport,
        /// Whether the transport found a device (always true for CPUID).
        #[serde(default = "yes")]
        pub available: bool,
        /// Guest TSC cycles of the phase (none in process).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub cycles: Option<u64>,
        /// The fw_cfg ID item.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub id: Option<u32>,
        /// Whether DMA was used.
        #[serde(default)]
        pub dma: bool,
        /// Why the device was not usable.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub device_error: Option<ErrorKind>,
        /// The CPUID report (CPUID channel only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub cpuid: Option<CpuidLine>,
        /// The memory map's top the decisions used (CPUID channel only;
        /// the firmware: its PVH memory map; 0 = unknown).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub memory_top: Option<u64>,
        /// The file (fw_cfg channel only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub file: Option<FileLine>,
        /// The decisions (none when the transport is unavailable).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub decisions: Option<Decisions>,
        /// Every mode's answer and the strict decision's layout from the
        /// same inputs ([`ModeAnswers::compute`]; the test firmware puts
        /// it on its port-I/O line only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub modes: Option<ModeAnswers>,
    }
}

#[cfg(feature = "host")]
fn yes() -> bool {
    true
}

impl ResultLine {
    /// Reads the fw_cfg channel the way every producer does, and records
    /// it in this line: the device (`available`, `id`, `dma`, or
    /// `device_error` when `reader` is the error opening it), then the
    /// lookup of `etc/phys-bits-valid` and the read of its first
    /// [`FILE_BYTES_MAX`] bytes (`file`). Returns the file channel's state
    /// for the decision; a missing device is a silent channel.
    pub fn read_file_channel<T: FwCfgTransport>(
        &mut self,
        reader: Result<&mut FwCfgReader<T>, ReadError>,
    ) -> FileState {
        let mut buf = [0u8; FILE_BYTES_MAX];
        let (state, file) = match reader {
            Err(e) => {
                self.available = false;
                self.device_error = Some(e.into());
                (FileState::Absent, FileLine::from(&FileState::Absent))
            }
            Ok(reader) => {
                self.id = reader.id();
                self.dma = reader.uses_dma();
                let read = reader.read_phys_bits_file(&mut buf);
                let mut file = FileLine::from(&read.state);
                file.size = read.entry.map(|e| e.size);
                file.bytes = Bytes::new(read.raw);
                (read.state, file)
            }
        };
        self.file = Some(file);
        state
    }

    /// Reads the ID item if the decision did not need it (a reader that
    /// the DMA register opened, see `FwCfgReader::new`) and records it;
    /// a failure is recorded as the line's device error. Call it after the
    /// measured phase: with DMA it costs one transfer.
    pub fn read_id_after_decision<T: FwCfgTransport>(&mut self, reader: &mut FwCfgReader<T>) {
        match reader.read_id() {
            Ok(id) => self.id = Some(id),
            Err(e) => self.device_error = Some(e.into()),
        }
    }

    /// An empty line for `transport`: its phase and channel, available,
    /// nothing measured yet.
    pub fn new(transport: Transport) -> Self {
        ResultLine {
            phase: Phase::Lookup(transport),
            channel: transport.channel(),
            transport,
            available: true,
            cycles: None,
            id: None,
            dma: false,
            device_error: None,
            cpuid: None,
            memory_top: None,
            file: None,
            decisions: None,
            modes: None,
        }
    }
}

wire! {
    /// A `bulk` line: the bulk file read whole through one transport.
    pub struct BulkLine {
        /// [`Phase::Bulk`] of the transport.
        pub phase: Phase,
        /// File size.
        pub size: u32,
        /// Bytes read.
        pub read: u32,
        /// Sum of the bytes read.
        pub sum: u64,
        /// Guest TSC cycles.
        pub cycles: u64,
        /// The read error, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub error: Option<ErrorKind>,
    }
}

wire! {
    /// An `smp` line: the firmware's SMP stress mode
    /// (`fw_cfg_tests.smp=ITERATIONS`), where every vCPU selects, reads
    /// and starts DMA transfers on the fw_cfg device at once, and every
    /// read is checked against what some serial order of the accesses
    /// could return.
    pub struct SmpLine {
        /// vCPUs NB_CPUS announced.
        pub announced: u32,
        /// vCPUs that took part (the BSP included).
        pub cpus: u32,
        /// Iterations each vCPU ran.
        pub iterations: u32,
        /// Port-I/O select-and-read operations, over all vCPUs.
        pub pio_reads: u64,
        /// Of those, reads another vCPU's access came between: their bytes
        /// are not the item's from offset 0 (evidence of concurrency, not
        /// an error).
        pub pio_interleaved: u64,
        /// DMA transfers with SELECT and READ.
        pub dma_select_reads: u64,
        /// DMA READ transfers from wherever the item offset was.
        pub dma_reads: u64,
        /// MMIO select-and-read operations.
        pub mmio_reads: u64,
        /// Reads no serial order of the accesses could have returned.
        pub inconsistent: u64,
        /// DMA transfers whose control word came back with the error bit.
        pub dma_errors: u64,
        /// Whether the single-vCPU read of every stress item afterwards
        /// was exact, through every transport.
        pub final_ok: bool,
    }
}

wire! {
    /// A `touch` line: the firmware read `count` distinct guest-physical
    /// addresses `stride` bytes apart from `base`
    /// (`fw_cfg_tests.touch=COUNT@BASE`), each one MMIO exit where
    /// nothing is mapped.
    pub struct TouchLine {
        /// First address.
        pub base: u64,
        /// Addresses read.
        pub count: u64,
        /// Distance between two addresses.
        pub stride: u64,
    }
}

wire! {
    /// A `hash` line: [`HASH_FILE_NAME`](crate::HASH_FILE_NAME) read whole
    /// through one transport, and the CRC-32 (IEEE) of the bytes read.
    pub struct HashLine {
        /// How it was read ([`Transport::PioString`] or [`Transport::Dma`]).
        pub transport: Transport,
        /// File size.
        pub size: u32,
        /// Bytes read.
        pub read: u32,
        /// CRC-32 of the bytes read.
        pub crc32: u32,
        /// The read error, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub error: Option<ErrorKind>,
    }
}

/// A benchmark name (`null-exit`, `pio/dir-walk`, `read/opt/bench/dma/1m`).
pub type BenchName = Name<80>;

wire! {
    /// A `bench` line: one benchmark phase. The measurement-specific
    /// members are present only where the measurement has them.
    pub struct BenchLine {
        /// The phase (none for an unavailable transport or a failure before
        /// the phase).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub phase: Option<Phase>,
        /// What was measured.
        pub name: BenchName,
        /// Repetitions in the phase.
        #[serde(default)]
        pub ops: u64,
        /// Guest TSC cycles of the phase.
        #[serde(default)]
        pub cycles: u64,
        /// Whether the transport was there.
        #[serde(default = "yes")]
        pub available: bool,
        /// Null exit: XOR of the bytes read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub value: Option<u8>,
        /// KVM leaf: XOR of the EAX values.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub eax: Option<u32>,
        /// Decisions: the strict width.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub phys_bits: Option<u8>,
        /// Decisions: whether the file was present.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub file: Option<bool>,
        /// Signature: whether it was `QEMU`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ok: Option<bool>,
        /// ID: the ID item.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub id: Option<u32>,
        /// Opening the reader: whether it uses DMA.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub dma: Option<bool>,
        /// Lookups: the directory's declared count.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub dir_count: Option<u32>,
        /// Lookups: whether the file was found.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub found: Option<bool>,
        /// File read: the bytes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub bytes: Option<Bytes<8>>,
        /// Bulk read: the file size.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub size: Option<u32>,
        /// Bulk read: bytes read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub read: Option<u32>,
        /// Bulk read: the sparse sum of what was read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub check: Option<u64>,
        /// Why the measurement failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub error: Option<ErrorKind>,
    }
}

impl BenchLine {
    /// A line named `name` with nothing measured: no phase, available.
    pub fn new(name: BenchName) -> Self {
        BenchLine {
            phase: None,
            name,
            ops: 0,
            cycles: 0,
            available: true,
            value: None,
            eax: None,
            phys_bits: None,
            file: None,
            ok: None,
            id: None,
            dma: None,
            dir_count: None,
            found: None,
            bytes: None,
            size: None,
            read: None,
            check: None,
            error: None,
        }
    }
}

wire! {
    /// A `panic` line.
    pub struct PanicLine {
        /// The message, when it is a plain string.
        pub message: Name<160>,
        /// Source file.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub file: Option<Name<96>>,
        /// Source line.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub line: Option<u32>,
    }
}

/// One line: a JSON object whose `"event"` member says which.
///
/// The variants differ in size (a `boot` line carries its command line
/// inline); boxing them would need a heap, which the firmware has not, and
/// it builds one line at a time.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "host", derive(serde::Deserialize))]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Line {
    /// The firmware started.
    Boot(BootLine),
    /// The null-exit baseline.
    Baseline(BaselineLine),
    /// A channel through a transport.
    Result(ResultLine),
    /// A bulk read.
    Bulk(BulkLine),
    /// A benchmark phase.
    Bench(BenchLine),
    /// The SMP stress run.
    Smp(SmpLine),
    /// The MMIO address sweep.
    Touch(TouchLine),
    /// A hash-mode read.
    Hash(HashLine),
    /// Everything was measured.
    Done,
    /// The firmware panicked.
    Panic(PanicLine),
}

#[cfg(all(test, feature = "host"))]
mod tests {
    use super::*;

    fn check<T: Serialize + Copy + core::fmt::Display>(all: &[T], as_str: fn(T) -> &'static str) {
        for &v in all {
            let json = serde_json::to_string(&v).unwrap();
            assert_eq!(json, format!("\"{}\"", as_str(v)));
            assert_eq!(v.to_string(), as_str(v));
        }
    }

    #[test]
    fn every_name_is_the_serialized_one() {
        check(HintState::ALL, HintState::as_str);
        check(Vendor::ALL, Vendor::as_str);
        check(DecidedBy::ALL, DecidedBy::as_str);
        check(Rule::ALL, Rule::as_str);
        check(Conflict::ALL, Conflict::as_str);
        check(ErrorKind::ALL, ErrorKind::as_str);
        check(FileStateKind::ALL, FileStateKind::as_str);
        // Every guest conflict has its wire twin, in the same order.
        let guest: Vec<Conflict> = policy::Conflict::ALL
            .into_iter()
            .map(Conflict::from)
            .collect();
        assert_eq!(guest, Conflict::ALL);
    }
}
