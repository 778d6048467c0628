// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The situations users have hit, one row each, with every firmware rule
//! and every policy mode side by side.
//!
//! Each row is a host (its MAXPHYADDR and KVM's guest width), a VMM
//! configuration in QEMU's terms, a CPU vendor, a memory top, and extras
//! (SEV's C-bit, no KVM leaf under TCG, a BAR request, an outer VM's
//! statement for the nesting chain). [`run`] builds the vCPU's CPUID and
//! the fw_cfg device with the mini VMM's own code for that host (the
//! VMM's host override, so the table runs anywhere in well under a
//! second), reads both channels with the guest reader (CPUID from the
//! table, the file over port I/O through the `IoManager`), and answers
//! in each [`Mode`] with the computation the test firmware and the Linux
//! probe report ([`ModeAnswers::compute`]).
//! The memory top is an input of the decision here; no guest memory is
//! allocated, so rows above 1 TiB cost nothing. Under KVM the same rows
//! boot with the RAM that puts the firmware's memory top there
//! ([`Situation::memory_mib`]: sparse guest memory the guest never
//! touches).
//!
//! A migration row ([`Situation::migrate_to`]) then moves the guest to
//! another host the way the mini VMM's snapshot does: the source device's
//! [`FwCfgSnapshot`](fw_cfg_device::snapshot::FwCfgSnapshot) with the
//! width it vouched for, restored into a device built from the same
//! configuration on the destination host, which refuses a host narrower
//! than that width (`NarrowerHost`) or a statement that would change
//! under the guest (other items). The guest decided on the source and
//! keeps its answers; they are judged against the host it ends up on:
//! the destination's when the restore is accepted, the source's when it
//! is refused. `crate::lab::migration` makes the same move for real,
//! with `fw-cfg-vmm`'s snapshot file, between two lab hosts.
//!
//! Where a real host is needed, [`Situation::lab_host_bits`] names the
//! nested lab's KVM host that shows the row without the host override
//! (`crate::lab::situations` boots them); the other rows keep the
//! override, for the reason [`LabLimit`] gives.
//!
//! Each answer is judged against the right one, `R`: the width the host
//! backs (MAXPHYADDR capped by KVM's non-zero guest width; under nesting,
//! the outermost host's), capped at the guest's CPUID width `W` (with
//! SEV's C-bit): above `R` is [`Verdict::Unsafe`]; below `R`, or a BAR
//! request that does not fit the mode's 64-bit window, is
//! [`Verdict::Wasteful`]; otherwise [`Verdict::Safe`].

use std::fmt::Write as _;

use fw_cfg_device::nested::{OuterStatement, nested_config};
use fw_cfg_device::phys_bits::{HostAddressSizes, PhysBitsConfig};
use fw_cfg_device::snapshot::{SnapshotError, vouched_bits};
use fw_cfg_guest::cpuid::{HintState, read_cpuid_channel};
use fw_cfg_guest::peers::{SeabiosCpu, Window};
use fw_cfg_guest::policy::{ChannelInputs, FileState};
use fw_cfg_guest::reader::FwCfgReader;
use fw_cfg_guest::transport::PortIo;
use fw_cfg_iobus::{BusCounters, IoPorts};
use fw_cfg_protocol::CpuidLine;
use fw_cfg_protocol::modes::ModeAnswers;
use kvm_bindings::{CpuId, kvm_cpuid_entry2};
use serde::Serialize;
use vm_device::device_manager::IoManager;
use vm_memory::{GuestAddress, GuestMemoryMmap};

use crate::inproc::CpuidTable;
use crate::matrix::Error;
use crate::vmm::cpu;
use crate::vmm::fw_cfg::{FwCfgHandles, FwCfgSetup, PhysBitsSetup};

const GIB: u64 = 1 << 30;

/// Four 128 GiB BARs: a large-BAR GPU passthrough request.
pub const LARGE_BARS: [u64; 4] = [128 * GIB; 4];

/// Who answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// OVMF on QEMU's PC/Q35 ([`fw_cfg_guest::peers::ovmf`]).
    Ovmf,
    /// SeaBIOS ([`fw_cfg_guest::peers::seabios_phys_bits`]).
    Seabios,
    /// GuestPhysBits alone ([`fw_cfg_guest::peers::guest_phys_bits_only`]).
    GuestPhysBits,
    /// Our strict policy over the hint alone (the file hidden).
    HintOnly,
    /// Our strict policy over the file alone (the hint hidden).
    FileOnly,
    /// Our strict policy over both channels.
    Strict,
    /// Our combined policy.
    Combined,
}

impl Mode {
    /// Every mode, in column order.
    pub const ALL: [Mode; 7] = [
        Mode::Ovmf,
        Mode::Seabios,
        Mode::GuestPhysBits,
        Mode::HintOnly,
        Mode::FileOnly,
        Mode::Strict,
        Mode::Combined,
    ];

    /// Whether this project's policy answers in this mode.
    pub fn is_ours(&self) -> bool {
        !matches!(self, Mode::Ovmf | Mode::Seabios | Mode::GuestPhysBits)
    }

    /// Lowercase name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Mode::Ovmf => "ovmf",
            Mode::Seabios => "seabios",
            Mode::GuestPhysBits => "guest-phys-bits",
            Mode::HintOnly => "hint-only",
            Mode::FileOnly => "file-only",
            Mode::Strict => "strict",
            Mode::Combined => "combined",
        }
    }

    /// Column heading (at most 6 characters).
    pub fn heading(&self) -> &'static str {
        match self {
            Mode::Seabios => "sbios",
            Mode::GuestPhysBits => "gpb",
            Mode::HintOnly => "hint",
            Mode::FileOnly => "file",
            Mode::Combined => "comb",
            _ => self.as_str(),
        }
    }
}

/// How an answer compares with the right one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The right width, and a requested BAR set fits.
    Safe,
    /// Above what the host backs: the guest will touch unbacked addresses.
    Unsafe,
    /// Below what the host backs, or a requested BAR set does not fit.
    Wasteful,
}

impl Verdict {
    /// One character for the table: blank, `!` or `w`.
    pub fn mark(&self) -> char {
        match self {
            Verdict::Safe => ' ',
            Verdict::Unsafe => '!',
            Verdict::Wasteful => 'w',
        }
    }
}

/// The CPU vendor the VMM shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CpuVendor {
    /// `GenuineIntel`, repeated in 0x80000000 as QEMU does.
    Intel,
    /// `GenuineIntel` with an empty 0x80000000 signature (QEMU 10.1).
    IntelNoExtSignature,
    /// `AuthenticAMD`.
    Amd,
}

/// How the VMM chooses the advertised width (QEMU's `-cpu` properties).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VmmWidth {
    /// `host-phys-bits=on`.
    Host,
    /// QEMU's legacy default, 40.
    Legacy,
    /// `phys-bits=N`.
    Explicit(u8),
}

/// The outer VM of the nesting chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outer {
    /// What the VM's KVM reports (derived from the VM's CPUID).
    pub l1: HostAddressSizes,
    /// The outer VMM's `etc/phys-bits-valid`, as the VM reads it.
    pub statement: OuterStatement,
}

/// Why the nested lab cannot show a row on a real KVM host (its rows
/// then keep the VMM's host override).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LabLimit {
    /// The host (or a migration row's destination) reports
    /// GuestPhysBits: KVM 6.10 or later; the lab's
    /// kernel (the machine's distribution kernel, 6.1) reports none.
    GuestPhysBits,
    /// No KVM leaf: a TCG guest, which the lab's VMMs do not run; the
    /// situations test boots it under QEMU's TCG on this machine instead.
    Tcg,
    /// SEV's 0x8000001F: the lab's inner KVM host has no SEV.
    Sev,
    /// The nesting chain: the lab's nesting test
    /// (`harness/tests/lab_nesting`) boots it with the outer VMM's file.
    Nesting,
    /// A memory top above 64 GiB: the lab's firmware guests have the
    /// default RAM. These rows boot with sparse RAM of their size on this
    /// machine's KVM instead (the situations test), whose host is real.
    MemoryTop,
    /// A migration row between two lab hosts: the lab's migration test
    /// (`harness/tests/lab_migration.rs`) moves `fw-cfg-vmm`'s snapshot
    /// from a real host of the source's width to one of the
    /// destination's, and the refusal is the simulation's. Its decisions
    /// are checked there, on the source host, not in the per-width boots.
    Migration,
}

impl LabLimit {
    /// Why, in a few words.
    pub fn as_str(&self) -> &'static str {
        match self {
            LabLimit::GuestPhysBits => "host GuestPhysBits needs KVM >= 6.10, the lab's is older",
            LabLimit::Tcg => "no KVM leaf: booted under QEMU's TCG on this machine",
            LabLimit::Sev => "the lab's KVM host has no SEV",
            LabLimit::Nesting => "the nesting chain has its own lab test",
            LabLimit::MemoryTop => "RAM above 64 GiB: sparse RAM on this machine's KVM",
            LabLimit::Migration => "the move: confirmed across two lab hosts by its own test",
        }
    }
}

/// The memory top up to which the firmware's own (small) RAM gives the
/// same fallback as the row's: every width below 2^36 falls back to 36.
pub const LAB_MEMORY_TOP: u64 = 64 * GIB;

/// One row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Situation {
    /// Short name.
    pub name: &'static str,
    /// Who hit it, in a few words.
    pub what: &'static str,
    /// The (outermost) host.
    pub host: HostAddressSizes,
    /// The VMM's width.
    pub vmm: VmmWidth,
    /// The vendor.
    pub vendor: CpuVendor,
    /// The memory map's top.
    pub memory_top: u64,
    /// SEV's C-bit position, when the VMM shows 0x8000001F.
    pub sev_c_bit: Option<u8>,
    /// Whether the VMM shows KVM's leaves (false: TCG); the hint needs
    /// them.
    pub kvm_leaf: bool,
    /// Whether the hint and the file are offered.
    pub channels: bool,
    /// BARs to place in the 64-bit window.
    pub bars: &'static [u64],
    /// The nesting chain (the VMM runs inside this VM).
    pub outer: Option<Outer>,
    /// After the guest decided, migrate it to a host with these address
    /// sizes (the VMM there started with the same configuration).
    pub migrate_to: Option<HostAddressSizes>,
    /// Whether the CPU shows 1 GiB pages (OVMF caps at 40 without them).
    pub gb_pages: bool,
}

const fn row(name: &'static str, what: &'static str, host: u8, vmm: VmmWidth) -> Situation {
    Situation {
        name,
        what,
        host: HostAddressSizes::new(host, 0),
        vmm,
        vendor: CpuVendor::Intel,
        memory_top: 2 * GIB,
        sev_c_bit: None,
        kvm_leaf: true,
        channels: true,
        bars: &[],
        outer: None,
        migrate_to: None,
        gb_pages: true,
    }
}

impl Situation {
    /// Every row, in table order.
    pub fn all() -> Vec<Situation> {
        use VmmWidth::{Explicit, Host, Legacy};
        let amd = |s: Situation| Situation {
            vendor: CpuVendor::Amd,
            ..s
        };
        let legacy_outer = |statement| Outer {
            l1: HostAddressSizes::new(40, 0),
            statement,
        };
        let legacy_on_39 = fw_cfg_guest::abi::PhysBitsFile::new(false, 40, 0).with_backed_bits(39);
        let mut rows = vec![
            row("host-36", "small Intel host", 36, Host),
            row("host-39", "desktop Intel host", 39, Host),
            amd(row("host-40", "older AMD host", 40, Host)),
            row("host-46", "Intel server", 46, Host),
            amd(row("host-48", "AMD server", 48, Host)),
            row("host-52", "5-level host, KVM < 6.10", 52, Host),
            Situation {
                host: HostAddressSizes::new(52, 48),
                ..row("guest-phys-bits", "52-bit host, 4-level EPT", 52, Host)
            },
            Situation {
                host: HostAddressSizes::new(46, 46),
                ..row("kvm-6.10-host-46", "KVM reports GuestPhysBits", 46, Host)
            },
            row("legacy-40-on-36", "QEMU default, small host", 36, Legacy),
            row("legacy-40-on-39", "QEMU default, desktop", 39, Legacy),
            row("legacy-40-on-48", "QEMU default, server", 48, Legacy),
            row("phys-bits-above", "phys-bits=44 on 39", 39, Explicit(44)),
            amd(row(
                "phys-bits-below",
                "phys-bits=40 on 48",
                48,
                Explicit(40),
            )),
            Situation {
                vendor: CpuVendor::IntelNoExtSignature,
                ..row("qemu-10.1-intel", "empty 0x80000000 vendor", 39, Host)
            },
            Situation {
                memory_top: 100 * GIB,
                ..row("ram-above-64g", "100 GiB guest, default", 48, Legacy)
            },
            Situation {
                memory_top: 1536 * GIB,
                ..amd(row("ram-above-1t", "1.5 TiB guest", 48, Host))
            },
            Situation {
                bars: &LARGE_BARS,
                memory_top: 8 * GIB,
                ..amd(row("large-bars", "4 x 128 GiB GPU BARs", 48, Host))
            },
            Situation {
                sev_c_bit: Some(47),
                ..amd(row("sev", "SEV guest, C-bit 47", 48, Host))
            },
            Situation {
                outer: Some(legacy_outer(OuterStatement::Present(legacy_on_39))),
                ..row("nested-chain", "L1 legacy 40 on 39", 39, Host)
            },
            Situation {
                outer: Some(legacy_outer(OuterStatement::Absent)),
                ..row("nested-silent", "L1 says nothing", 39, Host)
            },
            Situation {
                kvm_leaf: false,
                host: HostAddressSizes::new(52, 0),
                ..row("tcg", "TCG: no KVM leaf", 52, Legacy)
            },
            Situation {
                channels: false,
                ..row("silent-vmm", "VMM without channels", 48, Host)
            },
        ];
        rows.extend(Situation::migrations());
        rows
    }

    /// The row called `name`, if the table has one.
    pub fn named(name: &str) -> Option<Situation> {
        Situation::all().into_iter().find(|s| s.name == name)
    }

    /// The migration rows (the end of [`Situation::all`]).
    fn migrations() -> [Situation; 2] {
        [
            Situation {
                migrate_to: Some(HostAddressSizes::new(39, 0)),
                vendor: CpuVendor::Amd,
                ..row("migrate-to-39", "48-bit host to 39", 48, VmmWidth::Host)
            },
            Situation {
                migrate_to: Some(HostAddressSizes::new(52, 48)),
                ..row(
                    "migrate-to-52",
                    "phys-bits=48, to 52/48",
                    48,
                    VmmWidth::Explicit(48),
                )
            },
        ]
    }

    /// The host the VMM states (the VM's, capped by the chain) and its
    /// configuration.
    pub fn config(&self) -> PhysBitsConfig {
        let vmm = self.vmm;
        let config_for = move |host: HostAddressSizes| {
            let c = match vmm {
                VmmWidth::Host => PhysBitsConfig::host_passthrough(host),
                VmmWidth::Legacy => PhysBitsConfig::legacy_default(host),
                VmmWidth::Explicit(n) => PhysBitsConfig::explicit(host, n),
            };
            c.with_host_guest_phys_bits(host.guest_phys_bits)
        };
        let c = match self.outer {
            Some(o) => nested_config(config_for, o.l1, o.l1, &o.statement),
            None => config_for(self.host),
        };
        let on = self.channels;
        c.with_cpuid_hint(on && self.kvm_leaf && c.cpuid_hint())
            .with_fw_cfg_file(on && c.fw_cfg_file())
    }

    /// Whether a KVM guest under the mini VMM shows this row as the
    /// simulation does: the VMM always shows KVM's leaves and the host's
    /// other leaves, and the firmware's memory top is its own RAM's
    /// ([`Situation::memory_mib`]). The host is then stated by the
    /// override; [`Situation::lab_host_bits`] says which rows the nested
    /// lab shows on a real host instead.
    pub fn runs_under_kvm(&self) -> bool {
        self.kvm_leaf && self.sev_c_bit.is_none() && self.memory_mib().is_some()
    }

    /// This row as a CPU that shows what `cpuid` (a real guest's report)
    /// shows besides the widths: its vendor and 1 GiB pages; `None` when
    /// the table cannot show it (another vendor, 5-level paging).
    pub fn with_cpu_of(&self, cpuid: &CpuidLine) -> Option<Situation> {
        use fw_cfg_protocol::Vendor;
        let vendor = match (cpuid.vendor, cpuid.ext_vendor) {
            (Vendor::Amd, Some(Vendor::Amd)) => CpuVendor::Amd,
            (Vendor::Intel, Some(Vendor::Intel)) => CpuVendor::Intel,
            (Vendor::Intel, None) => CpuVendor::IntelNoExtSignature,
            _ => return None,
        };
        (!cpuid.la57).then_some(Situation {
            vendor,
            gb_pages: cpuid.gb_pages,
            ..*self
        })
    }

    /// The mini VMM's `--memory` (MiB) whose memory map ends at
    /// [`Situation::memory_top`]: RAM above 3 GiB moves to 4 GiB
    /// ([`crate::vmm::layout::ram_ranges`]), so a top above 4 GiB needs
    /// 1 GiB less RAM; `None` for a top no RAM size gives (inside the
    /// 32-bit gap, not a whole MiB, or below the VMM's 4 MiB minimum).
    pub fn memory_mib(&self) -> Option<u64> {
        use crate::vmm::layout::{HIGH_RAM_START, MMIO_GAP_START};
        let top = self.memory_top;
        let ram = if top <= MMIO_GAP_START {
            top
        } else if top >= HIGH_RAM_START {
            top - (HIGH_RAM_START - MMIO_GAP_START)
        } else {
            return None;
        };
        (ram % (1 << 20) == 0 && ram >= 4 << 20).then_some(ram >> 20)
    }

    /// The MAXPHYADDR of the nested lab's KVM host that shows this row for
    /// real (the outer `-cpu max,phys-bits=N,host-phys-bits=off`; the
    /// inner KVM reports N and no GuestPhysBits), or why the lab cannot.
    /// A row's vendor is not the lab's (its host is AMD, and `fw-cfg-vmm`
    /// passes the host's vendor on): the lab checks only what does not
    /// depend on it, see `crate::lab::situations`.
    pub fn lab_host_bits(&self) -> Result<u8, LabLimit> {
        if !self.kvm_leaf {
            Err(LabLimit::Tcg)
        } else if self.sev_c_bit.is_some() {
            Err(LabLimit::Sev)
        } else if self.outer.is_some() {
            Err(LabLimit::Nesting)
        } else if self.host.guest_phys_bits != 0 {
            Err(LabLimit::GuestPhysBits)
        } else if self.memory_top > LAB_MEMORY_TOP {
            Err(LabLimit::MemoryTop)
        } else if self.migrate_to.is_some_and(|d| d.guest_phys_bits != 0) {
            Err(LabLimit::GuestPhysBits)
        } else if self.migrate_to.is_some() {
            Err(LabLimit::Migration)
        } else {
            Ok(self.host.phys_bits)
        }
    }

    /// The row's VMM setup on a real host ([`Situation::lab_host_bits`]):
    /// [`Situation::setup`] without the host override, the guest width
    /// left to the host's KVM (none, as the row's host reports none).
    pub fn lab_setup(&self) -> Result<PhysBitsSetup, LabLimit> {
        self.lab_host_bits()?;
        Ok(PhysBitsSetup {
            guest_phys_bits: None,
            host_override: None,
            ..self.setup().0.phys_bits
        })
    }

    /// The VMM's setup for the mini VMM: the same configuration through
    /// its own code path, and the host it states.
    pub fn setup(&self) -> (FwCfgSetup, HostAddressSizes) {
        let c = self.config();
        let host = c.host();
        let phys = PhysBitsSetup {
            host_phys_bits: matches!(self.vmm, VmmWidth::Host),
            phys_bits: match self.vmm {
                VmmWidth::Explicit(n) => Some(n),
                _ => None,
            },
            guest_phys_bits: Some(c.guest_phys_bits()),
            hint: c.cpuid_hint(),
            file: c.fw_cfg_file(),
            host_override: Some(host),
        };
        let setup = FwCfgSetup {
            mmio: false,
            phys_bits: phys,
            ..FwCfgSetup::default()
        };
        (setup, host)
    }
}

/// One mode's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Answer {
    /// Who.
    pub mode: Mode,
    /// The width.
    pub bits: u8,
    /// The 64-bit window (base, size) the mode lays out.
    pub window: Option<(u64, u64)>,
    /// Whether the requested BARs fit (true without a request).
    pub bars_fit: bool,
    /// Against the right width.
    pub verdict: Verdict,
}

/// What the destination of a migration row did with the device state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MigrationResult {
    /// Restored: the guest now runs on the destination.
    Accepted,
    /// Refused by the migration guard: the destination backs fewer bits
    /// than the source vouched for.
    NarrowerHost,
    /// Refused: the destination's items differ (its statement would
    /// change under the guest).
    OtherItems,
}

/// A migration row's restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Migration {
    /// The destination host's backed width.
    pub destination_backed: u8,
    /// The width the source vouched for in its snapshot.
    pub vouched: u8,
    /// What the destination did.
    pub result: MigrationResult,
}

impl MigrationResult {
    /// Lowercase name.
    pub fn as_str(&self) -> &'static str {
        match self {
            MigrationResult::Accepted => "accepted",
            MigrationResult::NarrowerHost => "refused (narrower host)",
            MigrationResult::OtherItems => "refused (other items)",
        }
    }
}

impl Migration {
    /// Whether the guest ended up on the destination.
    pub fn accepted(&self) -> bool {
        self.result == MigrationResult::Accepted
    }
}

/// A finished row.
#[derive(Debug, Clone, Serialize)]
pub struct SituationOutcome {
    /// The row's name.
    pub name: &'static str,
    /// Who hit it.
    pub what: &'static str,
    /// The host's backed width (the outermost host's under nesting; a
    /// migration row's source).
    pub host_backed: u8,
    /// CPUID's widths as the guest read them (EAX\[7:0\], \[23:16\]).
    pub cpuid: (u8, u8),
    /// Everything the guest read from CPUID (vendor, page sizes, SEV...).
    pub cpuid_read: CpuidLine,
    /// The hint as the guest read it.
    pub hint: &'static str,
    /// The file's bytes as the guest read them (`None`: absent).
    pub file: Option<[u8; 8]>,
    /// The right width `R` (on the host the guest ends up on).
    pub right: u8,
    /// The answers, in [`Mode::ALL`] order.
    pub answers: Vec<Answer>,
    /// The same answers as the protocol carries them, with the strict
    /// decision's layout: what a real guest of this row reports.
    pub modes: ModeAnswers,
    /// A migration row's restore on the destination.
    pub migration: Option<Migration>,
}

/// The base CPUID table the VMM patches: vendor, PAE, long mode, 1 GiB
/// pages (unless the row says none), the hypervisor bit, KVM's leaves
/// and, for SEV, 0x8000001F.
fn base_cpuid(s: &Situation) -> Result<CpuId, Error> {
    let (ebx, ecx, edx) = match s.vendor {
        CpuVendor::Amd => (0x6874_7541, 0x444d_4163, 0x6974_6e65),
        _ => (0x756e_6547, 0x6c65_746e, 0x4965_6e69),
    };
    let ext = s.vendor != CpuVendor::IntelNoExtSignature;
    let max_ext = if s.sev_c_bit.is_some() {
        0x8000_001f
    } else {
        0x8000_0008
    };
    let e = |function, eax, ebx, ecx, edx| kvm_cpuid_entry2 {
        function,
        eax,
        ebx,
        ecx,
        edx,
        ..Default::default()
    };
    let mut entries = vec![
        e(0, 0xd, ebx, ecx, edx),
        e(1, 0, 0, 1 << 31, 1 << 6),
        e(0x8000_0000, max_ext, 0, 0, 0),
        e(
            0x8000_0001,
            0,
            0,
            0,
            (1 << 29) | (u32::from(s.gb_pages) << 26),
        ),
        e(0x8000_0008, u32::from(s.host.phys_bits), 0, 0, 0),
    ];
    if let Some(c) = s.sev_c_bit {
        entries.push(e(0x8000_001f, 0b11, u32::from(c), 0, 0));
    }
    let mut cpuid = CpuId::from_entries(&entries).map_err(|_| crate::vmm::Error::CpuidFull)?;
    cpu::ensure_kvm_leaves(&mut cpuid)?;
    if ext {
        cpu::copy_vendor_to_extended_leaf(&mut cpuid);
    }
    Ok(cpuid)
}

/// Drops KVM's leaves (a TCG guest has none).
fn without_kvm_leaves(cpuid: &CpuId) -> Result<CpuId, Error> {
    let kept: Vec<_> = cpuid
        .as_slice()
        .iter()
        .filter(|e| !(0x4000_0000..0x4001_0000).contains(&e.function))
        .copied()
        .collect();
    CpuId::from_entries(&kept).map_err(|_| Error::Vmm(crate::vmm::Error::CpuidFull))
}

fn judge(bits: u8, window: Option<Window>, right: u8, s: &Situation) -> (bool, Verdict) {
    let fits = s.bars.is_empty() || window.is_some_and(|w| w.fits(&mut s.bars.to_vec()));
    let reach = window.map_or(0, |w| w.end());
    let beyond = !s.bars.is_empty() && right < 64 && reach > (1u64 << right);
    let verdict = if bits > right || beyond {
        Verdict::Unsafe
    } else if bits < right || !fits {
        Verdict::Wasteful
    } else {
        Verdict::Safe
    };
    (fits, verdict)
}

/// The VMM's view of a row on `host`: its CPUID and the fw_cfg device on
/// a bus, built by the mini VMM's own code.
fn build_vmm(
    s: &Situation,
    setup: &FwCfgSetup,
    host: HostAddressSizes,
    io: &mut IoManager,
) -> Result<(CpuId, FwCfgHandles), Error> {
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)])
        .map_err(|e| Error::Vmm(crate::vmm::Error::Memory(e)))?;
    let mut cpuid = base_cpuid(s)?;
    let handles = crate::vmm::fw_cfg::setup_for_host(setup, host, &mut cpuid, &mem, io)?;
    Ok((cpuid, handles))
}

/// Migrates the source's device to `destination`: its snapshot with the
/// width it vouched for, restored into the device the same configuration
/// builds on the destination host (module docs).
fn migrate(
    s: &Situation,
    setup: &FwCfgSetup,
    source: &FwCfgHandles,
    destination: HostAddressSizes,
) -> Result<Migration, Error> {
    let destination_backed = destination.backed_bits();
    let vouched = source.phys_bits.as_ref().map_or(0, vouched_bits);
    let Some(pio) = source.pio.as_ref() else {
        // No device, no snapshot of it: nothing guards the move.
        return Ok(Migration {
            destination_backed,
            vouched: 0,
            result: MigrationResult::Accepted,
        });
    };
    let snap = lock(pio).inner().snapshot(vouched);
    let dest_setup = FwCfgSetup {
        phys_bits: PhysBitsSetup {
            host_override: Some(destination),
            ..setup.phys_bits.clone()
        },
        ..setup.clone()
    };
    let mut io = IoManager::new();
    let (_, dest) = build_vmm(s, &dest_setup, destination, &mut io)?;
    let restored = match dest.pio.as_ref() {
        Some(p) => lock(p).inner_mut().restore_snapshot(&snap, destination),
        None => Err(SnapshotError::ConfigMismatch),
    };
    let result = match restored {
        Ok(()) => MigrationResult::Accepted,
        Err(SnapshotError::NarrowerHost { .. }) => MigrationResult::NarrowerHost,
        Err(_) => MigrationResult::OtherItems,
    };
    Ok(Migration {
        destination_backed,
        vouched,
        result,
    })
}

/// Locks a device no other thread holds (a poisoned lock still guards a
/// whole device: its state changes only inside its own methods).
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs one row (module docs).
pub fn run(s: &Situation) -> Result<SituationOutcome, Error> {
    let (setup, host) = s.setup();
    let mut io = IoManager::new();
    let (mut cpuid, handles) = build_vmm(s, &setup, host, &mut io)?;
    if !s.kvm_leaf {
        cpuid = without_kvm_leaves(&cpuid)?;
    }
    let report = read_cpuid_channel(&CpuidTable(&cpuid));
    let counters = BusCounters::default();
    let mut bytes = [0u8; fw_cfg_guest::policy::PHYS_BITS_FILE_READ_MAX];
    let (file, raw) = match FwCfgReader::new(PortIo::with_bus(IoPorts::new(&io, &counters))) {
        Ok(mut r) => {
            let read = r.read_phys_bits_file(&mut bytes);
            let raw = read.raw.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok());
            (read.state, raw)
        }
        Err(_) => (FileState::Absent, None),
    };
    let inputs = ChannelInputs::new(&report, file).with_memory_top(s.memory_top);
    let migration = match s.migrate_to {
        Some(dest) => Some(migrate(s, &setup, &handles, dest)?),
        None => None,
    };
    let final_backed = match migration {
        Some(m) if m.accepted() => m.destination_backed,
        _ => s.host.backed_bits(),
    };
    let right = final_backed.min(inputs.cpuid_width());
    let seabios = SeabiosCpu::from_report(&report);
    let modes = ModeAnswers::compute(&inputs, &seabios, &mut s.bars.to_vec());
    let answers = Mode::ALL
        .iter()
        .zip(modes.as_array())
        .map(|(&mode, a)| {
            let window = a.mmio64.map(Window::from);
            let (bars_fit, verdict) = judge(a.phys_bits, window, right, s);
            Answer {
                mode,
                bits: a.phys_bits,
                window: window.map(|w| (w.base, w.size)),
                bars_fit,
                verdict,
            }
        })
        .collect();
    Ok(SituationOutcome {
        name: s.name,
        what: s.what,
        host_backed: s.host.backed_bits(),
        cpuid: (report.phys_bits, report.guest_phys_bits),
        cpuid_read: CpuidLine::from(&report),
        hint: hint_name(report.hint),
        file: raw,
        right,
        answers,
        modes,
        migration,
    })
}

/// The hint as the table names it.
pub fn hint_name(hint: HintState) -> &'static str {
    match hint {
        HintState::NoKvmLeaf => "none",
        HintState::Clear => "clr",
        HintState::Set => "set",
    }
}

/// The file as the table shows it: `-` when absent, else the valid flag
/// and the backed width (byte 4).
pub fn file_cell(file: Option<[u8; 8]>) -> String {
    match file {
        Some(b) => format!("{}/{}", if b[1] == 1 { "ok" } else { "no" }, b[4]),
        None => "-".to_string(),
    }
}

/// Runs every row.
pub fn run_all() -> Result<Vec<SituationOutcome>, Error> {
    Situation::all().iter().map(run).collect()
}

/// The table (within 100 columns): per row the host's backed width,
/// CPUID, the hint, the file's valid flag and backed width, `R`, and each
/// mode's width with its mark; `wide` adds each row's users and windows.
pub fn render(outcomes: &[SituationOutcome], wide: bool) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "{:<16} {:>6} {:<7} {:<4} {:<6} {:>2} |",
        "situation", "host", "cpuid", "hint", "file", "R"
    );
    for m in Mode::ALL {
        let _ = write!(out, " {:>6}", m.heading());
    }
    out.push('\n');
    let width = out.trim_end().chars().count();
    out.push_str(&"-".repeat(width));
    out.push('\n');
    for o in outcomes {
        let file = file_cell(o.file);
        let cpuid = format!("{}/{}", o.cpuid.0, o.cpuid.1);
        let host = match o.migration {
            Some(m) => format!(
                "{}>{}{}",
                o.host_backed,
                m.destination_backed,
                if m.accepted() { "" } else { "x" }
            ),
            None => o.host_backed.to_string(),
        };
        let _ = write!(
            out,
            "{:<16} {:>6} {:<7} {:<4} {:<6} {:>2} |",
            o.name, host, cpuid, o.hint, file, o.right
        );
        for a in &o.answers {
            let _ = write!(out, " {:>5}{}", a.bits, a.verdict.mark());
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
    }
    out.push_str(
        "\nR = what the host backs, capped at CPUID's width; file = valid flag/backed width\n\
         ! = above R (unsafe); w = below R, or the BARs do not fit (wasteful)\n\
         host a>b = migrated from a host backing a to one backing b (x: refused, stays on a)\n",
    );
    if wide {
        render_wide(&mut out, outcomes);
    }
    out
}

/// `render`'s wide part: per row its users, a migration's result, and
/// each mode's window.
fn render_wide(out: &mut String, outcomes: &[SituationOutcome]) {
    out.push('\n');
    for o in outcomes {
        let _ = writeln!(out, "{} ({}):", o.name, o.what);
        if let Some(m) = o.migration {
            let _ = writeln!(
                out,
                "  migration: vouched {}, destination backs {}: {}",
                m.vouched,
                m.destination_backed,
                m.result.as_str()
            );
        }
        for a in &o.answers {
            let window = a.window.map_or("none".to_string(), |(b, s)| {
                format!("{} GiB + {} GiB", b >> 30, s >> 30)
            });
            let _ = writeln!(
                out,
                "  {:<16} {:>2} window {:<28} bars fit {}",
                a.mode.as_str(),
                a.bits,
                window,
                a.bars_fit
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mini VMM's setup states exactly the row's configuration.
    #[test]
    fn setup_is_the_rows_configuration() {
        for s in Situation::all() {
            let (setup, host) = s.setup();
            assert_eq!(setup.phys_bits.config(host), s.config(), "{}", s.name);
        }
        let names: std::collections::BTreeSet<_> =
            Situation::all().iter().map(|s| s.name).collect();
        assert_eq!(names.len(), Situation::all().len());
    }

    /// On the lab's host (a bare MAXPHYADDR), the lab's setup states
    /// exactly the row's configuration.
    #[test]
    fn lab_setup_is_the_rows_configuration_on_the_lab_host() {
        let mut shown = 0;
        for s in Situation::all() {
            match (s.lab_host_bits(), s.lab_setup()) {
                (Ok(bits), Ok(setup)) => {
                    assert_eq!(setup.host_override, None, "{}", s.name);
                    let host = HostAddressSizes::new(bits, 0);
                    assert_eq!(setup.config(host), s.config(), "{}", s.name);
                    shown += 1;
                }
                (Err(a), Err(b)) => assert_eq!(a, b, "{}", s.name),
                other => panic!("{}: {other:?}", s.name),
            }
        }
        assert_eq!(shown, 14);
        let limit = |name| Situation::named(name).map(|s| s.lab_host_bits());
        assert_eq!(limit("guest-phys-bits"), Some(Err(LabLimit::GuestPhysBits)));
        assert_eq!(
            limit("kvm-6.10-host-46"),
            Some(Err(LabLimit::GuestPhysBits))
        );
        assert_eq!(limit("tcg"), Some(Err(LabLimit::Tcg)));
        assert_eq!(limit("sev"), Some(Err(LabLimit::Sev)));
        assert_eq!(limit("nested-chain"), Some(Err(LabLimit::Nesting)));
        assert_eq!(limit("ram-above-64g"), Some(Err(LabLimit::MemoryTop)));
        assert_eq!(limit("migrate-to-39"), Some(Err(LabLimit::Migration)));
        assert_eq!(limit("migrate-to-52"), Some(Err(LabLimit::GuestPhysBits)));
        assert_eq!(limit("large-bars"), Some(Ok(48)));
    }

    /// Beyond the table's pair: a statement that would change under the
    /// guest is refused, and a VMM that offers neither channel still
    /// vouches for the valid width its CPUID states, so its guest (whose
    /// combined heuristic trusted 46) is not moved to a 39-bit host.
    #[test]
    fn other_items_are_refused_and_silence_is_guarded_too() {
        let find = |name| Situation::named(name).unwrap();
        let wider = Situation {
            migrate_to: Some(HostAddressSizes::new(52, 0)),
            ..find("host-48")
        };
        let m = run(&wider).unwrap().migration.unwrap();
        assert_eq!((m.vouched, m.result), (48, MigrationResult::OtherItems));
        let silent = Situation {
            migrate_to: Some(HostAddressSizes::new(39, 0)),
            ..find("silent-vmm")
        };
        let o = run(&silent).unwrap();
        let m = o.migration.unwrap();
        assert_eq!((m.vouched, m.result), (48, MigrationResult::NarrowerHost));
        let combined = o.answers.iter().find(|a| a.mode == Mode::Combined).unwrap();
        assert_eq!((combined.bits, o.right), (46, 48));
        assert_ne!(combined.verdict, Verdict::Unsafe);
    }

    #[test]
    fn table_fits_100_columns() {
        let text = render(&run_all().unwrap(), false);
        for line in text.lines() {
            assert!(line.chars().count() <= 100, "{line}");
        }
    }
}
