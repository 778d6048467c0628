// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The configuration matrix and how one configuration is run: booted as a
//! KVM guest with the test firmware ([`run_kvm`]), or, where `/dev/kvm` is
//! missing, with the guest reader talking to the device through the same
//! `IoManager` in this process ([`crate::inproc::run_in_process`]).

use std::time::Duration;

use fw_cfg_device::abi::{PHYS_BITS_FILE_NAME, PhysBitsFile};
use fw_cfg_device::phys_bits::{HostAddressSizes, PhysBitsConfig};
use kvm_ioctls::Kvm;
use serde::Serialize;

use crate::firmware::{self, FirmwareReport};
use crate::peers::side_by_side::{PeerConfig, Width};
use crate::vmm::devices::SerialSink;
use crate::vmm::fw_cfg::{FwCfgSetup, PhysBitsSetup};
use crate::vmm::stats::ExitStats;
use crate::vmm::{self, ExitReason, VmConfig};

/// Default per-guest timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The state of `etc/phys-bits-valid` in a configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileCase {
    /// No file (the channel is silent).
    Absent,
    /// The well-formed file `PhysBitsConfig` renders: the VMM's honest
    /// statement, whose valid flag says whether the width is backed (so
    /// "valid" with host-phys-bits on, "invalid" with QEMU's legacy 40).
    Stated,
    /// Malformed bytes (valid flag 2): the reader must call it corrupt.
    Corrupt,
    /// A well-formed file claiming "valid" for a width different from the
    /// one in CPUID, added raw (bypassing `PhysBitsConfig`).
    Conflicting,
}

impl FileCase {
    /// All cases, in table order.
    pub const ALL: [FileCase; 4] = [
        FileCase::Absent,
        FileCase::Stated,
        FileCase::Corrupt,
        FileCase::Conflicting,
    ];

    /// The bytes of `etc/phys-bits-valid` in this case when `config` is the
    /// VMM's configuration (`None`: no file).
    pub fn file_bytes(&self, config: &PhysBitsConfig) -> Option<Vec<u8>> {
        let advertised = config.phys_bits();
        match self {
            FileCase::Absent => None,
            FileCase::Stated => Some(config.file_bytes().to_vec()),
            FileCase::Corrupt => Some(vec![1, 2, advertised, 0, 0, 0, 0, 0]),
            FileCase::Conflicting => {
                let other = if advertised > 36 {
                    advertised - 1
                } else {
                    advertised + 1
                };
                Some(PhysBitsFile::new(true, other, 0).to_bytes().to_vec())
            }
        }
    }

    /// Whether the file is added raw, bypassing `PhysBitsConfig` (the
    /// corrupt and conflicting cases).
    pub fn is_raw(&self) -> bool {
        matches!(self, FileCase::Corrupt | FileCase::Conflicting)
    }

    /// Lowercase name.
    pub fn as_str(&self) -> &'static str {
        match self {
            FileCase::Absent => "absent",
            FileCase::Stated => "stated",
            FileCase::Corrupt => "corrupt",
            FileCase::Conflicting => "conflicting",
        }
    }
}

/// One configuration of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Scenario {
    /// `host-phys-bits=on` (else QEMU's legacy 40 bits).
    pub host_phys_bits: bool,
    /// The CPUID hint channel.
    pub hint: bool,
    /// The file channel.
    pub file: FileCase,
}

impl Scenario {
    /// The whole matrix: host-phys-bits on/off x hint on/off x file
    /// absent/stated/corrupt/conflicting.
    pub fn all() -> Vec<Scenario> {
        let mut v = Vec::new();
        for host_phys_bits in [true, false] {
            for hint in [true, false] {
                for file in FileCase::ALL {
                    v.push(Scenario {
                        host_phys_bits,
                        hint,
                        file,
                    });
                }
            }
        }
        v
    }

    /// A short label, e.g. `hpb=on hint=off file=stated`.
    pub fn label(&self) -> String {
        let on = |b: bool| if b { "on" } else { "off" };
        format!(
            "hpb={} hint={} file={}",
            on(self.host_phys_bits),
            on(self.hint),
            self.file.as_str()
        )
    }

    /// The same configuration as a [`PeerConfig`]: how it is written as
    /// VMM flags and QEMU options. The machine's KVM run
    /// ([`PeerConfig::vmm_setup`]) and the nested lab's `fw-cfg-vmm` run
    /// ([`crate::lab::firmware::vmm_args`]) both start from it. QEMU
    /// microvm cannot express the legacy width or the hint.
    pub fn peer_config(&self) -> PeerConfig {
        let width = if self.host_phys_bits {
            Width::Host
        } else {
            Width::Legacy
        };
        let config = PeerConfig::microvm(width, self.file);
        if self.hint {
            config.with_hint()
        } else {
            config
        }
    }

    /// A short name usable as a file name, e.g. `hpb-on.hint-off.stated`.
    pub fn tag(&self) -> String {
        let on = |b: bool| if b { "on" } else { "off" };
        format!(
            "hpb-{}.hint-{}.{}",
            on(self.host_phys_bits),
            on(self.hint),
            self.file.as_str()
        )
    }

    /// The phys-bits configuration for a host with address sizes `host`
    /// (a bare MAXPHYADDR: no guest width).
    pub fn phys_bits_config(&self, host: impl Into<HostAddressSizes>) -> PhysBitsConfig {
        let host = host.into();
        self.phys_bits_setup(host).config(host)
    }

    fn phys_bits_setup(&self, host: HostAddressSizes) -> PhysBitsSetup {
        PhysBitsSetup {
            host_phys_bits: self.host_phys_bits,
            phys_bits: None,
            guest_phys_bits: None,
            hint: self.hint,
            file: self.file == FileCase::Stated,
            host_override: Some(host),
        }
    }

    /// The fw_cfg setup for a host with address sizes `host` (a bare
    /// MAXPHYADDR: no guest width).
    pub fn setup(&self, host: impl Into<HostAddressSizes>) -> FwCfgSetup {
        let host = host.into();
        let phys = self.phys_bits_setup(host);
        let raw = if self.file.is_raw() {
            self.file.file_bytes(&phys.config(host))
        } else {
            None
        };
        FwCfgSetup {
            raw_files: raw
                .map(|b| vec![(PHYS_BITS_FILE_NAME.to_string(), b)])
                .unwrap_or_default(),
            phys_bits: phys,
            ..FwCfgSetup::default()
        }
    }
}

/// Where a configuration ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    /// A KVM guest booting the test firmware.
    Kvm,
    /// The guest reader against the device in this process.
    InProcess,
}

/// The result of one configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The configuration.
    pub scenario: Scenario,
    /// Where it ran.
    pub engine: Engine,
    /// Host MAXPHYADDR used.
    pub host_phys_bits: u8,
    /// Width advertised in CPUID.
    pub advertised_phys_bits: u8,
    /// Whether `PhysBitsConfig` called the width valid.
    pub config_valid: bool,
    /// The width the host backs (`PhysBitsConfig::backed_bits`): the
    /// right answer is this, capped at the guest's effective CPUID width.
    pub backed_bits: u8,
    /// What the guest printed (or, in process, computed).
    pub report: FirmwareReport,
    /// Exits (KVM) or device accesses (in process), per phase.
    #[serde(serialize_with = "crate::phase::serialize_stats")]
    pub stats: ExitStats,
    /// How the guest stopped (KVM only).
    #[serde(skip)]
    pub reason: Option<ExitReason>,
}

/// Errors of the harness.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The VMM failed.
    #[error(transparent)]
    Vmm(#[from] vmm::Error),
    /// The firmware did not finish.
    #[error("the firmware did not finish ({reason:?}); serial output:\n{serial}")]
    Incomplete {
        /// How the guest stopped.
        reason: ExitReason,
        /// What it printed.
        serial: String,
    },
}

/// Whether `/dev/kvm` can be used.
pub fn kvm_available() -> bool {
    Kvm::new().is_ok()
}

/// The host's address sizes: KVM's MAXPHYADDR and guest-physical width,
/// else the CPUID instruction's MAXPHYADDR (no guest width), else 40.
pub fn host_address_sizes() -> HostAddressSizes {
    if let Ok(kvm) = Kvm::new() {
        if let Ok(host) = HostAddressSizes::from_kvm(&kvm) {
            return host;
        }
    }
    HostAddressSizes::from_cpuid_instruction().unwrap_or(HostAddressSizes::from(40))
}

/// The host MAXPHYADDR: KVM's, else the CPUID instruction's, else 40.
pub fn host_phys_bits() -> u8 {
    host_address_sizes().phys_bits
}

/// A finished firmware run under the mini VMM.
#[derive(Debug, Clone)]
pub struct FirmwareRun {
    /// The parsed output.
    pub report: FirmwareReport,
    /// Exit counters.
    pub stats: ExitStats,
    /// How the guest stopped.
    pub reason: ExitReason,
    /// Raw serial output.
    pub serial: Vec<u8>,
}

/// Boots the test firmware under the mini VMM with `setup` and waits for
/// it to finish.
pub fn run_firmware(setup: FwCfgSetup, timeout: Duration) -> Result<FirmwareRun, Error> {
    run_firmware_with_memory(setup, vmm::layout::DEFAULT_MEMORY_MIB, timeout)
}

/// [`run_firmware`] with `memory_mib` MiB of guest RAM (sparse: what the
/// firmware does not touch costs nothing).
pub fn run_firmware_with_memory(
    setup: FwCfgSetup,
    memory_mib: u64,
    timeout: Duration,
) -> Result<FirmwareRun, Error> {
    let (sink, buf) = SerialSink::capture();
    let mut config = VmConfig::new(firmware::path());
    config.serial = sink;
    config.fw_cfg = setup;
    config.memory_mib = memory_mib;
    config.timeout = Some(timeout);
    let outcome = crate::phase::run_vm(&config)?;
    let serial = buf.lock().map(|b| b.clone()).unwrap_or_default();
    let report = FirmwareReport::parse(&serial);
    if !report.done || outcome.reason != (ExitReason::DebugExit { value: 0 }) {
        return Err(Error::Incomplete {
            reason: outcome.reason,
            serial: String::from_utf8_lossy(&serial).into_owned(),
        });
    }
    Ok(FirmwareRun {
        report,
        stats: outcome.stats,
        reason: outcome.reason,
        serial,
    })
}

/// Runs one configuration as a KVM guest on a host with address sizes
/// `host` (a bare MAXPHYADDR: no guest width).
pub fn run_kvm(
    scenario: &Scenario,
    host: impl Into<HostAddressSizes>,
    timeout: Duration,
) -> Result<Outcome, Error> {
    let host = host.into();
    let run = run_firmware(scenario.setup(host), timeout)?;
    let config = scenario.phys_bits_config(host);
    Ok(Outcome {
        scenario: *scenario,
        engine: Engine::Kvm,
        host_phys_bits: host.phys_bits,
        advertised_phys_bits: config.phys_bits(),
        config_valid: config.valid(),
        backed_bits: config.backed_bits(),
        report: run.report,
        stats: run.stats,
        reason: Some(run.reason),
    })
}

/// Runs the whole matrix with `engine`.
pub fn run_matrix(engine: Engine, timeout: Duration) -> Result<Vec<Outcome>, Error> {
    let host = host_address_sizes();
    Scenario::all()
        .iter()
        .map(|s| match engine {
            Engine::Kvm => run_kvm(s, host, timeout),
            Engine::InProcess => crate::inproc::run_in_process(s, host),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_has_sixteen_distinct_configurations() {
        let all = Scenario::all();
        assert_eq!(all.len(), 16);
        let labels: std::collections::BTreeSet<String> = all.iter().map(|s| s.label()).collect();
        assert_eq!(labels.len(), 16);
    }

    #[test]
    fn file_cases_render_the_intended_bytes() {
        let s = |file| Scenario {
            host_phys_bits: true,
            hint: true,
            file,
        };
        assert!(s(FileCase::Absent).setup(48).raw_files.is_empty());
        assert!(!s(FileCase::Absent).setup(48).phys_bits.file);
        assert!(s(FileCase::Stated).setup(48).phys_bits.file);
        let invalid = s(FileCase::Corrupt).setup(48);
        assert!(!invalid.phys_bits.file);
        assert_eq!(invalid.raw_files[0].1, vec![1, 2, 48, 0, 0, 0, 0, 0]);
        let conflicting = s(FileCase::Conflicting).setup(48);
        assert_eq!(conflicting.raw_files[0].1, vec![2, 1, 47, 0, 0, 0, 0, 0]);
        // Legacy default: the file carries 40, the conflict 39.
        let legacy = Scenario {
            host_phys_bits: false,
            ..s(FileCase::Conflicting)
        };
        assert_eq!(legacy.setup(48).raw_files[0].1[2], 39);
    }

    #[test]
    fn peer_configs_set_up_the_same_channels() {
        for s in Scenario::all() {
            let peer = s.peer_config();
            let (ours, theirs) = (s.setup(46), peer.vmm_setup(46));
            assert_eq!(ours.phys_bits, theirs.phys_bits, "{}", s.label());
            // The peer setup adds the bulk file before the raw statement.
            assert_eq!(&theirs.raw_files[1..], &ours.raw_files[..], "{}", s.label());
            assert_eq!(peer.qemu_cpu().is_ok(), s.host_phys_bits && !s.hint);
        }
        let tags: std::collections::BTreeSet<String> =
            Scenario::all().iter().map(Scenario::tag).collect();
        assert_eq!(tags.len(), 16);
        assert!(tags.contains("hpb-off.hint-on.corrupt"));
    }

    #[test]
    fn scenarios_pass_the_host_guest_width_as_qemu_does() {
        let host = HostAddressSizes {
            phys_bits: 52,
            guest_phys_bits: 48,
        };
        let s = |host_phys_bits| Scenario {
            host_phys_bits,
            hint: true,
            file: FileCase::Stated,
        };
        assert_eq!(s(true).phys_bits_config(host).guest_phys_bits(), 48);
        assert_eq!(s(true).phys_bits_config(52).guest_phys_bits(), 0);
        // Legacy default: QEMU passes none.
        assert_eq!(s(false).phys_bits_config(host).guest_phys_bits(), 0);
        let setup = s(true).setup(host);
        assert_eq!(setup.phys_bits.host_override, Some(host));
        assert_eq!(setup.phys_bits.config(host).file_bytes()[3], 48);
    }
}
