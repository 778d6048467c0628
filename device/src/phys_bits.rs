// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! One configuration for both "the physical address size is valid"
//! channels.
//!
//! A [`PhysBitsConfig`] holds the host's MAXPHYADDR, the width advertised to
//! the guest in CPUID 0x80000008 EAX\[7:0\], an optional guest-physical width
//! for EAX\[23:16\], and whether the advertised width is valid (backed by the
//! host). From that one value it
//!
//! 1. patches a `kvm_bindings::CpuId` (`PhysBitsConfig::patch_cpuid`,
//!    feature `kvm`, x86-64 only): the KVM features leaf's EDX bit 1
//!    (`KVM_HINTS_PHYS_ADDRESS_SIZE_DATA_VALID`) and 0x80000008 EAX; and
//! 2. renders the `etc/phys-bits-valid` fw_cfg file
//!    ([`PhysBitsConfig::file_bytes`], [`PhysBitsConfig::add_to`]).
//!
//! Each channel can be switched off on its own, but both always carry the
//! same width and the same verdict: there is no way to give them different
//! values.
//!
//! # Validity
//!
//! One sentence, the same on both sides: the advertised width is *valid*
//! when every guest-physical address below 2^W is backed, W being the
//! effective width the guest sees (EAX\[7:0\] capped by a non-zero
//! EAX\[23:16\], [`effective_width`]). The VMM
//! decides it from what it knows of the host in every mode: the host backs
//! its own effective width ([`PhysBitsConfig::backed_bits`]: KVM's
//! MAXPHYADDR capped by KVM's non-zero guest width), so the configuration
//! is valid iff `32 <= W`, the advertised widths are within QEMU's range
//! 32..=52 (the guest-physical width 0 or at most the physical one), and
//! `W <= backed`. The modes mirror QEMU's x86 CPU options:
//!
//! - [`host_passthrough`](PhysBitsConfig::host_passthrough)
//!   (`host-phys-bits=on`): the guest sees the host's width; valid.
//! - [`legacy_default`](PhysBitsConfig::legacy_default) (QEMU's historical
//!   default without `host-phys-bits`): the guest sees 40 bits whatever the
//!   host has; valid when the host backs at least 40 (a 48-bit host backs
//!   every address below 2^40), not valid on a 39-bit host.
//! - [`explicit`](PhysBitsConfig::explicit) (`phys-bits=N`): valid when the
//!   resulting W is backed. `phys-bits=42` on a 39-bit host whose KVM
//!   reports a guest width of 39 gives W = 39 (QEMU 9.1 caps the guest
//!   width at KVM's): valid at 39. Without KVM's guest width, W = 42 is not
//!   backed.
//!
//! The file also states the backed width itself (version 2, byte 4), so a
//! guest of a misconfigured VMM (legacy 40 on a 39-bit host) can use 39
//! instead of a blind fallback.
//!
//! # Guest-physical width
//!
//! CPUID 0x80000008 EAX\[23:16\] tells the guest the widest guest-physical
//! address the hypervisor can map; 0 means "as wide as EAX\[7:0\]". KVM
//! (Linux 6.10 and later) reports it in `KVM_GET_SUPPORTED_CPUID`: with
//! two-dimensional paging it is the host's MAXPHYADDR, capped at 48 when
//! EPT/NPT has only four levels (so a 52-bit host gives 48); older
//! kernels, and hosts without EPT/NPT, report 0. [`HostAddressSizes`] holds
//! both of KVM's widths; `HostAddressSizes::from_kvm` (feature `kvm`,
//! x86-64) is the way to obtain them, [`HostAddressSizes::new`] states them
//! by hand, and a bare `u8` converts into a host that reports no guest
//! width.
//!
//! QEMU 9.1 and later (machine types 9.1+; older ones pin
//! `guest-phys-bits=0`) with KVM and a 64-bit CPU model, when the user does
//! not set `guest-phys-bits`, takes KVM's guest width and caps it at the
//! advertised width as it stands when KVM's CPU code runs. Every
//! constructor applies that rule to the host it is given (as does
//! [`with_host_guest_phys_bits`](PhysBitsConfig::with_host_guest_phys_bits)),
//! which gives, per mode:
//!
//! - `host-phys-bits=on`: KVM's guest width, capped at the host's width
//!   (and at `host-phys-bits-limit`, which this crate does not model);
//! - `phys-bits=N`: `min(KVM's guest width, N)`;
//! - legacy default: none (0). The advertised width is still 0 ("not
//!   chosen yet") when QEMU caps the guest width, so the cap erases it
//!   before the 40-bit default is filled in.
//!
//! KVM reporting 0 leaves the guest width at 0 in every mode. A width the
//! user gives with `guest-phys-bits=N`
//! ([`with_guest_phys_bits`](PhysBitsConfig::with_guest_phys_bits)) always
//! wins over KVM's. QEMU rejects it unless `32 <= N <= phys-bits` (or 0);
//! here a width above the advertised one makes the configuration invalid.

use crate::abi::{
    MAX_PHYS_BITS, MIN_PHYS_BITS, PHYS_BITS_FILE_NAME, PHYS_BITS_FILE_V2_SIZE, PhysBitsFile,
    effective_width,
};
use crate::builder::FwCfgBuilder;
use crate::error::PhysBitsError;

/// Result of this module's fallible functions.
pub type Result<T> = std::result::Result<T, PhysBitsError>;

/// The width QEMU advertised by default before `host-phys-bits`.
pub const LEGACY_DEFAULT_PHYS_BITS: u8 = 40;
/// The smallest width QEMU accepts for `phys-bits`.
pub const MIN_EXPLICIT_PHYS_BITS: u8 = MIN_PHYS_BITS;

/// The host's address sizes as KVM reports them in CPUID 0x80000008 EAX.
///
/// ```
/// use fw_cfg_device::phys_bits::{HostAddressSizes, PhysBitsConfig};
///
/// // A 52-bit host with 4-level EPT/NPT: KVM says 52 and 48.
/// let host = HostAddressSizes::from_cpuid_eax(0x0030_3034);
/// assert_eq!(host, HostAddressSizes::new(52, 48));
/// let c = PhysBitsConfig::host_passthrough(host);
/// assert_eq!((c.phys_bits(), c.guest_phys_bits()), (52, 48));
/// assert_eq!(c.file_bytes(), [2, 1, 52, 48, 48, 0, 0, 0]);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostAddressSizes {
    /// MAXPHYADDR (EAX\[7:0\]).
    pub phys_bits: u8,
    /// The widest guest-physical address KVM can map (EAX\[23:16\]); 0 when
    /// KVM does not say.
    pub guest_phys_bits: u8,
}

impl HostAddressSizes {
    /// A host with MAXPHYADDR `phys_bits` whose KVM reports
    /// `guest_phys_bits` (0: none).
    pub const fn new(phys_bits: u8, guest_phys_bits: u8) -> Self {
        HostAddressSizes {
            phys_bits,
            guest_phys_bits,
        }
    }

    /// Both widths from a CPUID 0x80000008 EAX value.
    pub const fn from_cpuid_eax(eax: u32) -> Self {
        HostAddressSizes {
            phys_bits: crate::abi::cpuid_phys_bits(eax),
            guest_phys_bits: crate::abi::cpuid_guest_phys_bits(eax),
        }
    }

    /// The width this host backs for a guest: MAXPHYADDR capped by KVM's
    /// non-zero guest width.
    pub const fn backed_bits(&self) -> u8 {
        effective_width(self.phys_bits, self.guest_phys_bits)
    }
}

impl From<u8> for HostAddressSizes {
    /// A host of `phys_bits` bits whose guest width is not reported.
    fn from(phys_bits: u8) -> Self {
        HostAddressSizes {
            phys_bits,
            guest_phys_bits: 0,
        }
    }
}

/// How the advertised width was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhysBitsMode {
    /// The host's own width.
    HostPhysBits,
    /// QEMU's historical fixed 40 bits.
    LegacyDefault,
    /// A width chosen by the user.
    Explicit,
}

/// The phys-bits statement for both channels. See the [module
/// documentation](self).
///
/// ```
/// use fw_cfg_device::phys_bits::PhysBitsConfig;
///
/// let c = PhysBitsConfig::host_passthrough(39).with_guest_phys_bits(37);
/// assert!(c.valid());
/// assert_eq!(c.file_bytes(), [2, 1, 39, 37, 39, 0, 0, 0]);
/// // QEMU's legacy 40 is backed on a 46-bit host, not on a 39-bit one.
/// assert!(PhysBitsConfig::legacy_default(46).valid());
/// assert!(!PhysBitsConfig::legacy_default(39).valid());
/// assert!(PhysBitsConfig::explicit(46, 40).valid());
/// assert!(!PhysBitsConfig::explicit(39, 40).valid());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhysBitsConfig {
    mode: PhysBitsMode,
    host: HostAddressSizes,
    phys_bits: u8,
    guest_phys_bits: u8,
    cpuid_hint: bool,
    fw_cfg_file: bool,
}

impl PhysBitsConfig {
    fn new(mode: PhysBitsMode, host: HostAddressSizes, phys_bits: u8) -> Self {
        PhysBitsConfig {
            mode,
            host,
            phys_bits,
            guest_phys_bits: 0,
            cpuid_hint: true,
            fw_cfg_file: true,
        }
    }

    /// QEMU's `host-phys-bits=on`: advertise the host's width (valid)
    /// and its guest-physical width as QEMU 9.1+ passes KVM's on (capped
    /// at the advertised width; see the [module documentation](self)).
    /// Both channels on.
    pub fn host_passthrough(host: impl Into<HostAddressSizes>) -> Self {
        let host = host.into();
        Self::new(PhysBitsMode::HostPhysBits, host, host.phys_bits)
            .with_host_guest_phys_bits(host.guest_phys_bits)
    }

    /// QEMU's historical default without `host-phys-bits`: advertise 40
    /// bits (valid iff the host backs at least 40) and no guest-physical
    /// width. Both channels on.
    pub fn legacy_default(host: impl Into<HostAddressSizes>) -> Self {
        let host = host.into();
        Self::new(PhysBitsMode::LegacyDefault, host, LEGACY_DEFAULT_PHYS_BITS)
            .with_host_guest_phys_bits(host.guest_phys_bits)
    }

    /// QEMU's `phys-bits=N`: advertise `phys_bits` and the host's
    /// guest-physical width capped at `phys_bits`; valid iff the resulting
    /// effective width is backed (module documentation). Both channels on.
    pub fn explicit(host: impl Into<HostAddressSizes>, phys_bits: u8) -> Self {
        let host = host.into();
        Self::new(PhysBitsMode::Explicit, host, phys_bits)
            .with_host_guest_phys_bits(host.guest_phys_bits)
    }

    /// Also advertise a guest-physical width (CPUID 0x80000008 EAX\[23:16\]
    /// and byte 3 of the file); 0 for none.
    pub fn with_guest_phys_bits(mut self, guest_phys_bits: u8) -> Self {
        self.guest_phys_bits = guest_phys_bits;
        self
    }

    /// Sets the guest-physical width from the one the host (KVM) reports,
    /// as QEMU 9.1+ does when `guest-phys-bits` is not given (and as the
    /// constructors do): none in the legacy-default mode, otherwise
    /// `host_guest_phys_bits` capped at the advertised width (0 stays 0).
    /// See the [module documentation](self). Replaces any earlier guest
    /// width; call
    /// [`with_guest_phys_bits`](Self::with_guest_phys_bits) afterwards for
    /// a width the user chose.
    pub fn with_host_guest_phys_bits(self, host_guest_phys_bits: u8) -> Self {
        let g = match self.mode {
            PhysBitsMode::LegacyDefault => 0,
            PhysBitsMode::HostPhysBits | PhysBitsMode::Explicit => {
                host_guest_phys_bits.min(self.phys_bits)
            }
        };
        self.with_guest_phys_bits(g)
    }

    /// Switches the CPUID hint channel on or off. Off, the hint bit is
    /// cleared; the widths in 0x80000008 are still written.
    pub fn with_cpuid_hint(mut self, on: bool) -> Self {
        self.cpuid_hint = on;
        self
    }

    /// Switches the `etc/phys-bits-valid` file channel on or off.
    pub fn with_fw_cfg_file(mut self, on: bool) -> Self {
        self.fw_cfg_file = on;
        self
    }

    /// The mode the configuration was made in.
    pub fn mode(&self) -> PhysBitsMode {
        self.mode
    }

    /// The host's MAXPHYADDR.
    pub fn host_bits(&self) -> u8 {
        self.host.phys_bits
    }

    /// The host's address sizes the configuration was made for.
    pub fn host(&self) -> HostAddressSizes {
        self.host
    }

    /// The widest effective width the host backs
    /// ([`HostAddressSizes::backed_bits`]); byte 4 of the file.
    pub fn backed_bits(&self) -> u8 {
        self.host.backed_bits()
    }

    /// The effective width W the guest sees: the advertised width capped
    /// by a non-zero advertised guest-physical width.
    pub fn width(&self) -> u8 {
        effective_width(self.phys_bits, self.guest_phys_bits)
    }

    /// The width advertised to the guest.
    pub fn phys_bits(&self) -> u8 {
        self.phys_bits
    }

    /// The guest-physical width advertised (0 for none).
    pub fn guest_phys_bits(&self) -> u8 {
        self.guest_phys_bits
    }

    /// Whether the CPUID hint channel is on.
    pub fn cpuid_hint(&self) -> bool {
        self.cpuid_hint
    }

    /// Whether the fw_cfg file channel is on.
    pub fn fw_cfg_file(&self) -> bool {
        self.fw_cfg_file
    }

    fn widths_in_range(&self) -> bool {
        let range = MIN_PHYS_BITS..=MAX_PHYS_BITS;
        range.contains(&self.phys_bits)
            && (self.guest_phys_bits == 0
                || (range.contains(&self.guest_phys_bits)
                    && self.guest_phys_bits <= self.phys_bits))
    }

    /// Whether every guest-physical address below 2^[`width`](Self::width)
    /// is backed by the host, the same rule in every mode (module
    /// documentation).
    pub fn valid(&self) -> bool {
        self.widths_in_range() && self.width() <= self.backed_bits()
    }

    /// The statement the file channel carries (version 2, with the backed
    /// width).
    pub fn file(&self) -> PhysBitsFile {
        PhysBitsFile::new(self.valid(), self.phys_bits, self.guest_phys_bits)
            .with_backed_bits(self.backed_bits().min(64))
    }

    /// The bytes of `etc/phys-bits-valid`.
    pub fn file_bytes(&self) -> [u8; PHYS_BITS_FILE_V2_SIZE] {
        self.file().to_bytes()
    }

    /// Rejects widths neither channel can carry.
    fn check_encodable(&self) -> Result<()> {
        if !(1..=64).contains(&self.phys_bits) {
            return Err(PhysBitsError::InvalidWidth {
                bits: self.phys_bits,
            });
        }
        if self.guest_phys_bits > 64 {
            return Err(PhysBitsError::InvalidWidth {
                bits: self.guest_phys_bits,
            });
        }
        Ok(())
    }

    /// Adds `etc/phys-bits-valid` to `builder` when the file channel is on.
    pub fn add_to(&self, builder: &mut FwCfgBuilder) -> Result<()> {
        if self.fw_cfg_file {
            self.check_encodable()?;
            builder
                .add_file(PHYS_BITS_FILE_NAME, self.file_bytes().to_vec())
                .map_err(PhysBitsError::AddFile)?;
        }
        Ok(())
    }
}

#[cfg(all(feature = "kvm", target_arch = "x86_64"))]
mod cpuid {
    use super::*;
    use crate::abi::{
        CPUID_ADDRESS_SIZES_LEAF, CPUID_HYPERVISOR_BASE, CPUID_HYPERVISOR_END,
        CPUID_HYPERVISOR_STEP, KVM_FEATURES_LEAF_OFFSET, KVM_HINTS_PHYS_ADDRESS_SIZE_DATA_VALID,
        KVM_SIGNATURE, cpuid_phys_bits, hypervisor_signature_from_regs,
    };
    use kvm_bindings::{CpuId, KVM_MAX_CPUID_ENTRIES, kvm_cpuid_entry2};
    use kvm_ioctls::Kvm;

    fn is_kvm_signature(e: &kvm_cpuid_entry2) -> bool {
        hypervisor_signature_from_regs(e.ebx, e.ecx, e.edx) == KVM_SIGNATURE
    }

    /// The KVM base leaf: the lowest of 0x40000000, 0x40000100, ...
    /// carrying `KVMKVMKVM\0\0\0`, as the guest's scan finds it.
    pub(super) fn kvm_base(entries: &[kvm_cpuid_entry2]) -> Option<u32> {
        (CPUID_HYPERVISOR_BASE..CPUID_HYPERVISOR_END)
            .step_by(CPUID_HYPERVISOR_STEP as usize)
            .find(|&base| {
                entries
                    .iter()
                    .any(|e| e.function == base && is_kvm_signature(e))
            })
    }

    /// The host's MAXPHYADDR from the CPUID instruction, if the CPU has
    /// leaf 0x80000008.
    fn phys_bits_from_cpuid_instruction() -> Option<u8> {
        address_sizes_eax_from_cpuid_instruction()
            .map(cpuid_phys_bits)
            .filter(|&b| b != 0)
    }

    /// CPUID 0x80000008 EAX from the instruction, if the CPU has the leaf.
    fn address_sizes_eax_from_cpuid_instruction() -> Option<u32> {
        #[allow(unused_unsafe)]
        // SAFETY: CPUID is available on every x86-64 CPU, and leaf
        // 0x80000000 is valid on all of them.
        let max = unsafe { core::arch::x86_64::__cpuid(0x8000_0000) }.eax;
        if max < CPUID_ADDRESS_SIZES_LEAF {
            return None;
        }
        #[allow(unused_unsafe)]
        // SAFETY: as above; the leaf exists, as checked against the maximum.
        Some(unsafe { core::arch::x86_64::__cpuid(CPUID_ADDRESS_SIZES_LEAF) }.eax)
    }

    /// Both widths from a `KVM_GET_SUPPORTED_CPUID` answer (leaf
    /// 0x80000008 EAX); `None` when the leaf is missing or its MAXPHYADDR
    /// is 0.
    pub(super) fn from_supported_cpuid(cpuid: &CpuId) -> Option<HostAddressSizes> {
        cpuid
            .as_slice()
            .iter()
            .find(|e| e.function == CPUID_ADDRESS_SIZES_LEAF)
            .map(|e| HostAddressSizes::from_cpuid_eax(e.eax))
            .filter(|h| h.phys_bits != 0)
    }

    impl HostAddressSizes {
        /// The host's address sizes as KVM reports them
        /// (`KVM_GET_SUPPORTED_CPUID` leaf 0x80000008: EAX\[7:0\] and
        /// EAX\[23:16\]): the way to obtain the host for the constructors
        /// of [`PhysBitsConfig`]. When KVM's answer lacks the leaf or the
        /// ioctl fails, MAXPHYADDR comes from the CPUID instruction and the
        /// guest width is 0: like QEMU, only KVM is asked for the guest
        /// width.
        pub fn from_kvm(kvm: &Kvm) -> Result<Self> {
            let from_kvm = kvm
                .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
                .map_err(PhysBitsError::Kvm)
                .map(|c| from_supported_cpuid(&c));
            match from_kvm {
                Ok(Some(host)) => Ok(host),
                Ok(None) => Self::from_cpuid_instruction().ok_or(PhysBitsError::MissingCpuidLeaf {
                    leaf: CPUID_ADDRESS_SIZES_LEAF,
                }),
                Err(e) => Self::from_cpuid_instruction().ok_or(e),
            }
        }

        /// The host's MAXPHYADDR from the CPUID instruction, with no guest
        /// width: what [`from_kvm`](Self::from_kvm) falls back to, for a
        /// host without `/dev/kvm`. `None` when the CPU lacks leaf
        /// 0x80000008.
        pub fn from_cpuid_instruction() -> Option<Self> {
            phys_bits_from_cpuid_instruction().map(Self::from)
        }

        /// Both widths of this machine's own CPUID 0x80000008 (inside a
        /// VM: what the outer VMM advertised, which its
        /// `etc/phys-bits-valid` repeats; see [`crate::nested`]). `None`
        /// without the leaf.
        pub fn own_cpuid() -> Option<Self> {
            address_sizes_eax_from_cpuid_instruction().map(Self::from_cpuid_eax)
        }
    }

    impl PhysBitsConfig {
        /// Patches `cpuid` for the CPUID channel: the KVM features leaf
        /// (base + 1, the base found by scanning for the KVM signature) gets
        /// EDX bit 1 set iff the configuration is valid and the hint channel
        /// is on, cleared otherwise; leaf 0x80000008 gets EAX\[7:0\] = the
        /// advertised width and EAX\[23:16\] = the guest-physical width (other
        /// bits kept). Fails, changing nothing, when a leaf is missing or a
        /// width cannot be encoded.
        pub fn patch_cpuid(&self, cpuid: &mut CpuId) -> Result<()> {
            self.check_encodable()?;
            let entries = cpuid.as_mut_slice();
            let base = kvm_base(entries).ok_or(PhysBitsError::NoKvmSignature)?;
            let features = base + KVM_FEATURES_LEAF_OFFSET;
            for leaf in [features, CPUID_ADDRESS_SIZES_LEAF] {
                if !entries.iter().any(|e| e.function == leaf) {
                    return Err(PhysBitsError::MissingCpuidLeaf { leaf });
                }
            }
            let hint = self.valid() && self.cpuid_hint;
            for e in entries.iter_mut() {
                if e.function == features {
                    if hint {
                        e.edx |= KVM_HINTS_PHYS_ADDRESS_SIZE_DATA_VALID;
                    } else {
                        e.edx &= !KVM_HINTS_PHYS_ADDRESS_SIZE_DATA_VALID;
                    }
                } else if e.function == CPUID_ADDRESS_SIZES_LEAF {
                    e.eax = (e.eax & !0x00ff_00ff)
                        | u32::from(self.phys_bits)
                        | (u32::from(self.guest_phys_bits) << 16);
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_validity() {
        assert!(PhysBitsConfig::host_passthrough(39).valid());
        assert!(PhysBitsConfig::host_passthrough(52).valid());
        assert!(PhysBitsConfig::legacy_default(40).valid());
        assert!(!PhysBitsConfig::legacy_default(39).valid());
        // Every address below 2^40 is backed on a 46- or 48-bit host.
        assert!(PhysBitsConfig::legacy_default(46).valid());
        assert!(PhysBitsConfig::legacy_default(HostAddressSizes::new(52, 48)).valid());
        // ... but not when KVM maps only 39 bits of guest-physical space.
        assert!(!PhysBitsConfig::legacy_default(HostAddressSizes::new(46, 39)).valid());
        assert_eq!(PhysBitsConfig::legacy_default(46).phys_bits(), 40);
        assert!(PhysBitsConfig::explicit(46, 46).valid());
        assert!(PhysBitsConfig::explicit(46, 36).valid());
        // QEMU's whole range, 32..=52, on both sides.
        for n in 32..=35 {
            assert!(PhysBitsConfig::explicit(46, n).valid(), "{n}");
        }
        assert!(!PhysBitsConfig::explicit(39, 40).valid());
        assert!(!PhysBitsConfig::explicit(46, 31).valid());
        assert!(!PhysBitsConfig::explicit(52, 53).valid());
        // phys-bits=42 on a 39-bit host whose KVM maps 39: W = 39, backed.
        let c = PhysBitsConfig::explicit(HostAddressSizes::new(39, 39), 42);
        assert_eq!(
            (c.phys_bits(), c.guest_phys_bits(), c.width()),
            (42, 39, 39)
        );
        assert!(c.valid());
        // Without KVM's guest width W = 42 is not backed.
        assert!(!PhysBitsConfig::explicit(39, 42).valid());
        assert!(!PhysBitsConfig::explicit(46, 0).valid());
        assert!(!PhysBitsConfig::host_passthrough(0).valid());
        assert!(!PhysBitsConfig::host_passthrough(65).valid());
        assert!(
            !PhysBitsConfig::host_passthrough(39)
                .with_guest_phys_bits(40)
                .valid()
        );
        assert!(
            PhysBitsConfig::host_passthrough(52)
                .with_guest_phys_bits(48)
                .valid()
        );
        let c = PhysBitsConfig::explicit(46, 40)
            .with_cpuid_hint(false)
            .with_fw_cfg_file(false);
        assert_eq!(c.mode(), PhysBitsMode::Explicit);
        assert_eq!(
            (c.host_bits(), c.cpuid_hint(), c.fw_cfg_file()),
            (46, false, false)
        );
    }

    #[test]
    fn host_guest_width_follows_qemu_per_mode() {
        let host = HostAddressSizes::from_cpuid_eax(0x0030_3034);
        assert_eq!(
            host,
            HostAddressSizes {
                phys_bits: 52,
                guest_phys_bits: 48
            }
        );
        assert_eq!(
            HostAddressSizes::from(46),
            HostAddressSizes::from_cpuid_eax(46)
        );
        let g = |c: PhysBitsConfig| c.with_host_guest_phys_bits(48).guest_phys_bits();
        // host-phys-bits=on: KVM's, capped at the advertised width.
        assert_eq!(PhysBitsConfig::host_passthrough(host).guest_phys_bits(), 48);
        assert_eq!(g(PhysBitsConfig::host_passthrough(46)), 46);
        // phys-bits=N: min(KVM's, N).
        assert_eq!(g(PhysBitsConfig::explicit(52, 44)), 44);
        assert_eq!(g(PhysBitsConfig::explicit(52, 50)), 48);
        // Legacy default: none.
        assert_eq!(g(PhysBitsConfig::legacy_default(52)), 0);
        // KVM saying nothing leaves nothing, and replaces an earlier width.
        let c = PhysBitsConfig::host_passthrough(52)
            .with_guest_phys_bits(40)
            .with_host_guest_phys_bits(0);
        assert_eq!(c.guest_phys_bits(), 0);
        // A width the user gives afterwards wins; every default is valid.
        let c = PhysBitsConfig::host_passthrough(host).with_guest_phys_bits(40);
        assert_eq!(c.guest_phys_bits(), 40);
        assert!(c.valid());
        // A guest width above the host's guest width is not backed.
        assert!(
            !PhysBitsConfig::host_passthrough(host)
                .with_guest_phys_bits(50)
                .valid()
        );
        for c in [
            PhysBitsConfig::host_passthrough(host),
            PhysBitsConfig::explicit(52, 44).with_host_guest_phys_bits(48),
            PhysBitsConfig::legacy_default(40).with_host_guest_phys_bits(48),
        ] {
            assert!(c.valid(), "{c:?}");
        }
    }

    #[test]
    fn file_bytes() {
        assert_eq!(
            PhysBitsConfig::host_passthrough(39)
                .with_guest_phys_bits(37)
                .file_bytes(),
            [2, 1, 39, 37, 39, 0, 0, 0]
        );
        assert_eq!(
            PhysBitsConfig::legacy_default(46).file_bytes(),
            [2, 1, 40, 0, 46, 0, 0, 0]
        );
        // Legacy 40 on a 39-bit host: not backed, but 39 is.
        assert_eq!(
            PhysBitsConfig::legacy_default(39).file_bytes(),
            [2, 0, 40, 0, 39, 0, 0, 0]
        );
        let f = PhysBitsConfig::explicit(46, 44).file();
        assert_eq!(PhysBitsFile::parse(&f.to_bytes()), Ok(f));
    }

    #[test]
    fn add_to_builder() {
        use vm_memory::{GuestAddress, GuestMemoryMmap};
        let m = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x1000)]).unwrap();
        let mut b = FwCfgBuilder::new();
        PhysBitsConfig::host_passthrough(46).add_to(&mut b).unwrap();
        let dev = b.build(&m);
        let key = dev.file_key(PHYS_BITS_FILE_NAME).unwrap();
        assert_eq!(dev.item_bytes(key).unwrap(), [2, 1, 46, 0, 46, 0, 0, 0]);

        let mut b = FwCfgBuilder::new();
        PhysBitsConfig::host_passthrough(46)
            .with_fw_cfg_file(false)
            .add_to(&mut b)
            .unwrap();
        assert_eq!(b.file_count(), 0);
        assert!(matches!(
            PhysBitsConfig::explicit(46, 0).add_to(&mut b),
            Err(PhysBitsError::InvalidWidth { bits: 0 })
        ));
        // Twice is a duplicate.
        PhysBitsConfig::host_passthrough(46).add_to(&mut b).unwrap();
        assert!(matches!(
            PhysBitsConfig::host_passthrough(46).add_to(&mut b),
            Err(PhysBitsError::AddFile(
                crate::error::BuildError::DuplicateName { .. }
            ))
        ));
    }

    #[cfg(all(feature = "kvm", target_arch = "x86_64"))]
    mod cpuid {
        use super::super::*;
        use crate::abi::*;
        use kvm_bindings::{CpuId, kvm_cpuid_entry2};

        fn entry(function: u32, eax: u32, ebx: u32, ecx: u32, edx: u32) -> kvm_cpuid_entry2 {
            kvm_cpuid_entry2 {
                function,
                eax,
                ebx,
                ecx,
                edx,
                ..Default::default()
            }
        }

        fn sig_entry(base: u32) -> kvm_cpuid_entry2 {
            let [ebx, ecx, edx] = KVM_SIGNATURE_REGS;
            entry(base, base + 1, ebx, ecx, edx)
        }

        fn cpuid(base: u32) -> CpuId {
            CpuId::from_entries(&[
                entry(0, 0xd, 0, 0, 0),
                sig_entry(base),
                entry(base + 1, 0x1234, 0, 0, KVM_HINTS_REALTIME),
                entry(0x8000_0008, 0x0100_3030, 0, 0, 0),
            ])
            .unwrap()
        }

        fn leaf(c: &CpuId, f: u32) -> kvm_cpuid_entry2 {
            *c.as_slice().iter().find(|e| e.function == f).unwrap()
        }

        #[test]
        fn valid_sets_hint_and_widths() {
            let mut c = cpuid(CPUID_HYPERVISOR_BASE);
            PhysBitsConfig::host_passthrough(39)
                .with_guest_phys_bits(37)
                .patch_cpuid(&mut c)
                .unwrap();
            let f = leaf(&c, 0x4000_0001);
            assert_eq!(
                f.edx,
                KVM_HINTS_REALTIME | KVM_HINTS_PHYS_ADDRESS_SIZE_DATA_VALID
            );
            assert_eq!(f.eax, 0x1234);
            // Bits 15:8 and 31:24 are kept.
            assert_eq!(leaf(&c, 0x8000_0008).eax, 0x0125_3027);
        }

        #[test]
        fn invalid_or_hint_off_clears_the_bit() {
            let mut c = cpuid(CPUID_HYPERVISOR_BASE);
            PhysBitsConfig::host_passthrough(46)
                .patch_cpuid(&mut c)
                .unwrap();
            PhysBitsConfig::legacy_default(39)
                .patch_cpuid(&mut c)
                .unwrap();
            assert_eq!(leaf(&c, 0x4000_0001).edx, KVM_HINTS_REALTIME);
            assert_eq!(cpuid_phys_bits(leaf(&c, 0x8000_0008).eax), 40);
            PhysBitsConfig::host_passthrough(46)
                .patch_cpuid(&mut c)
                .unwrap();
            PhysBitsConfig::host_passthrough(46)
                .with_cpuid_hint(false)
                .patch_cpuid(&mut c)
                .unwrap();
            assert_eq!(leaf(&c, 0x4000_0001).edx, KVM_HINTS_REALTIME);
            assert_eq!(cpuid_phys_bits(leaf(&c, 0x8000_0008).eax), 46);
        }

        #[test]
        fn kvm_base_found_by_scan() {
            // Hyper-V style: something else at 0x40000000, KVM at 0x40000100.
            let mut c = CpuId::from_entries(&[
                entry(0x4000_0000, 0x4000_0005, 0x7263_694d, 0, 0),
                entry(0x4000_0001, 0, 0, 0, 0),
                sig_entry(0x4000_0100),
                entry(0x4000_0101, 0, 0, 0, 0),
                entry(0x8000_0008, 0x3030, 0, 0, 0),
            ])
            .unwrap();
            PhysBitsConfig::host_passthrough(48)
                .patch_cpuid(&mut c)
                .unwrap();
            assert_eq!(
                leaf(&c, 0x4000_0101).edx,
                KVM_HINTS_PHYS_ADDRESS_SIZE_DATA_VALID
            );
            assert_eq!(leaf(&c, 0x4000_0001).edx, 0);
        }

        #[test]
        fn missing_leaves_are_errors_and_change_nothing() {
            let mut c = CpuId::from_entries(&[entry(0x8000_0008, 0x3030, 0, 0, 0)]).unwrap();
            assert!(matches!(
                PhysBitsConfig::host_passthrough(39).patch_cpuid(&mut c),
                Err(PhysBitsError::NoKvmSignature)
            ));
            let mut c = CpuId::from_entries(&[
                sig_entry(CPUID_HYPERVISOR_BASE),
                entry(0x8000_0008, 0x3030, 0, 0, 0),
            ])
            .unwrap();
            assert!(matches!(
                PhysBitsConfig::host_passthrough(39).patch_cpuid(&mut c),
                Err(PhysBitsError::MissingCpuidLeaf { leaf: 0x4000_0001 })
            ));
            let mut c = CpuId::from_entries(&[
                sig_entry(CPUID_HYPERVISOR_BASE),
                entry(0x4000_0001, 0, 0, 0, 0),
            ])
            .unwrap();
            assert!(matches!(
                PhysBitsConfig::host_passthrough(39).patch_cpuid(&mut c),
                Err(PhysBitsError::MissingCpuidLeaf { leaf: 0x8000_0008 })
            ));
            let mut c = cpuid(CPUID_HYPERVISOR_BASE);
            let before = c.clone();
            assert!(PhysBitsConfig::explicit(46, 0).patch_cpuid(&mut c).is_err());
            assert_eq!(c, before);
        }

        #[test]
        fn channels_agree() {
            for cfg in [
                PhysBitsConfig::host_passthrough(39).with_guest_phys_bits(37),
                PhysBitsConfig::legacy_default(46),
                PhysBitsConfig::legacy_default(40),
                PhysBitsConfig::explicit(46, 44),
                PhysBitsConfig::explicit(39, 40),
            ] {
                let mut c = cpuid(CPUID_HYPERVISOR_BASE);
                cfg.patch_cpuid(&mut c).unwrap();
                let file = PhysBitsFile::parse(&cfg.file_bytes()).unwrap();
                let eax = leaf(&c, CPUID_ADDRESS_SIZES_LEAF).eax;
                assert_eq!(file.phys_bits, cpuid_phys_bits(eax));
                assert_eq!(file.guest_phys_bits, cpuid_guest_phys_bits(eax));
                let hint = leaf(&c, 0x4000_0001).edx & KVM_HINTS_PHYS_ADDRESS_SIZE_DATA_VALID != 0;
                assert_eq!(file.valid, hint);
            }
        }

        /// A KVM answer on a 52-bit host with 4-level EPT/NPT (Linux
        /// 6.10+): MAXPHYADDR 52, guest width 48.
        fn supported_with_guest_width() -> CpuId {
            CpuId::from_entries(&[
                entry(0, 0xd, 0, 0, 0),
                sig_entry(CPUID_HYPERVISOR_BASE),
                entry(CPUID_HYPERVISOR_BASE + 1, 0, 0, 0, 0),
                entry(CPUID_ADDRESS_SIZES_LEAF, 0x0030_3034, 0, 0, 0),
            ])
            .unwrap()
        }

        #[test]
        fn kvm_guest_width_reaches_both_channels() {
            let mut c = supported_with_guest_width();
            let host = super::super::cpuid::from_supported_cpuid(&c).unwrap();
            assert_eq!((host.phys_bits, host.guest_phys_bits), (52, 48));
            let cfg = PhysBitsConfig::host_passthrough(host);
            assert_eq!((cfg.phys_bits(), cfg.guest_phys_bits()), (52, 48));
            assert!(cfg.valid());
            cfg.patch_cpuid(&mut c).unwrap();
            // KVM's EAX survives the patch unchanged.
            let eax = leaf(&c, CPUID_ADDRESS_SIZES_LEAF).eax;
            assert_eq!(eax, 0x0030_3034);
            assert_eq!(cpuid_guest_phys_bits(eax), 48);
            assert_eq!(cfg.file_bytes()[3], 48);
            assert_eq!(cfg.file_bytes(), [2, 1, 52, 48, 48, 0, 0, 0]);
            assert_ne!(
                leaf(&c, CPUID_HYPERVISOR_BASE + 1).edx & KVM_HINTS_PHYS_ADDRESS_SIZE_DATA_VALID,
                0
            );
        }

        #[test]
        fn explicit_guest_width_overrides_kvms() {
            let host = super::super::cpuid::from_supported_cpuid(&supported_with_guest_width());
            for (g, eax) in [(40, 0x0028_3034), (0, 0x0000_3034)] {
                let mut c = supported_with_guest_width();
                let cfg = PhysBitsConfig::host_passthrough(host.unwrap()).with_guest_phys_bits(g);
                cfg.patch_cpuid(&mut c).unwrap();
                assert_eq!(leaf(&c, CPUID_ADDRESS_SIZES_LEAF).eax, eax);
                assert_eq!(cfg.file_bytes()[3], g);
            }
        }

        #[test]
        fn supported_cpuid_without_the_leaf_gives_no_sizes() {
            let c = CpuId::from_entries(&[entry(0, 0xd, 0, 0, 0)]).unwrap();
            assert_eq!(super::super::cpuid::from_supported_cpuid(&c), None);
            let c = CpuId::from_entries(&[entry(CPUID_ADDRESS_SIZES_LEAF, 0x0030_3000, 0, 0, 0)])
                .unwrap();
            assert_eq!(super::super::cpuid::from_supported_cpuid(&c), None);
        }

        #[test]
        fn host_query_falls_back_to_the_instruction() {
            // Whatever the machine, the instruction answer is plausible.
            let instruction = HostAddressSizes::from_cpuid_instruction();
            if let Some(host) = instruction {
                assert!((32..=64).contains(&host.phys_bits));
                assert_eq!(host.guest_phys_bits, 0);
            }
            if let Ok(kvm) = kvm_ioctls::Kvm::new() {
                let host = HostAddressSizes::from_kvm(&kvm).unwrap();
                assert!((32..=64).contains(&host.phys_bits));
                assert!(host.guest_phys_bits <= host.phys_bits);
                let cfg = PhysBitsConfig::host_passthrough(host);
                assert_eq!(cfg.phys_bits(), host.phys_bits);
                assert!(cfg.valid());
            }
        }
    }
}
