// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! A migration row of the situations table across real KVM hosts of two
//! widths: the device state moves in `fw-cfg-vmm`'s snapshot file, from
//! one outer boot of the lab to the next, with no host override anywhere.
//!
//! [`run`] takes the row's source configuration through the conversion
//! [`super::situations`] uses ([`Situation::lab_setup`] of the row without
//! its move, then [`peer_config`] into [`firmware::vmm_args`]), adds
//! `--memory` [`MEMORY_MIB`] (a small snapshot file; the firmware's
//! fallback is the same below 64 GiB), and then:
//!
//! 1. finds how many fw_cfg accesses the firmware's first fw_cfg phase
//!    (the port-I/O lookup, [`Phase::Lookup`] of [`Transport::Pio`]) makes,
//!    by running the same `fw-cfg-vmm` and firmware once on this machine's
//!    KVM with phase marks ([`lookup_accesses`]); the firmware makes none
//!    before it (its CPUID decision comes first), so stopping after half
//!    of them stops it after the CPUID decision, inside the fw_cfg phases;
//! 2. boots the lab on the row's source host: an uninterrupted run (the
//!    reference, which also counts that phase on the real host), the run
//!    that saves the snapshot after those accesses (status
//!    [`SNAPSHOT_EXIT_STATUS`]), and a restore of it on the same host,
//!    whose firmware finishes; the snapshot comes back to this machine
//!    ([`Lab::fetch`]);
//! 3. boots the lab once per destination width, places the snapshot there
//!    ([`Lab::file`]) and restores it with the same flags: each result is
//!    read from the VMM's status and its one-line error
//!    ([`Destination::result`], [`classify`]), to be compared with the
//!    in-process simulation of the same move ([`simulated`]).
//!
//! Only a row whose source and destination the lab can show is taken:
//! `migrate-to-39` (48 to 39 bits); `migrate-to-52`'s destination reports
//! GuestPhysBits, which the lab's KVM does not ([`LabLimit::GuestPhysBits`]).
//!
//! [`LabLimit::GuestPhysBits`]: crate::situations::LabLimit::GuestPhysBits

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use fw_cfg_protocol::{FirmwareReport, Phase, ResultLine, Transport};
use serde::Serialize;

use super::build::LabTools;
use super::firmware::{self, FIRMWARE_DONE_STATUS, FIRMWARE_FILE, VMM_FILE};
use super::situations::{Reading, peer_config};
use super::{GuestName, GuestRun, Lab, LabError, LabPeers, LabRun, TAIL_LINES, TextTail};
use super::{PHYS_BITS_RANGE, inner_path};
use crate::matrix;
use crate::peers::side_by_side::{PeerConfig, bulk_contents};
use crate::phase::MARK_PORT;
use crate::situations::{self, Migration, MigrationResult, Situation};
use crate::vmm::layout::ram_ranges;
use crate::vmm::report::{ReportError, RunReport};
use crate::vmm::snapshot::SnapshotError;
use crate::vmm::snapshot::format::{FormatError, Limits, parse};
use crate::vmm::{SNAPSHOT_EXIT_STATUS, error_chain};

/// Guest memory of every run here, in MiB: the snapshot holds all of it.
pub const MEMORY_MIB: u64 = 32;
/// The snapshot in the work folder.
pub const SNAPSHOT_FILE: &str = "migration/snapshot";
/// The bulk file in the work folder.
const BULK_FILE: &str = "migration/bulk";
/// The reference run's report in the work folder.
const REFERENCE_STATS: &str = "migration/reference.json";
/// `fw-cfg-vmm`'s status for an error before or instead of the run.
pub const ERROR_STATUS: i32 = 2;
/// What `fw-cfg-vmm` puts before its one-line error.
pub const ERROR_PREFIX: &str = "fw-cfg-vmm: ";
/// Wall-time limit of one outer boot.
pub const OUTER_TIMEOUT: Duration = Duration::from_secs(240);
/// The reference, the snapshot and the restore on the source host.
const SOURCE_GUESTS: [&str; 3] = ["migration-reference", "migration-save", "migration-resume"];

/// Why a migration could not be shown in the lab.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LabMigrationError {
    /// The lab or a guest failed.
    #[error(transparent)]
    Lab(#[from] LabError),
    /// The row has no move, or the lab cannot show its source or
    /// destination.
    #[error("situation {name} is not a migration the lab can show")]
    NotInLab {
        /// The row.
        name: &'static str,
    },
    /// Running `fw-cfg-vmm` on this machine failed.
    #[error("cannot run {program} on this machine")]
    Spawn {
        /// The program.
        program: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A scratch file on this machine could not be written.
    #[error("cannot write {path}")]
    Scratch {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The firmware did not finish under `fw-cfg-vmm` on this machine.
    #[error("fw-cfg-vmm on this machine exited with {status:?}; its stderr:\n{stderr}")]
    LocalRun {
        /// Its exit status (`None`: a signal).
        status: Option<i32>,
        /// Its last lines of stderr.
        stderr: TextTail,
    },
    /// A run report could not be read.
    #[error("invalid run report")]
    Report(#[source] ReportError),
    /// The port-I/O lookup made too few accesses to stop it inside.
    #[error("the port-I/O lookup made {accesses} fw_cfg accesses, too few to stop it inside")]
    ShortLookup {
        /// Its accesses.
        accesses: u64,
    },
    /// The source did not stop with a snapshot.
    #[error(
        "guest {guest} exited with {status}, not {SNAPSHOT_EXIT_STATUS}; its stderr:\n{stderr}"
    )]
    NoSnapshot {
        /// The guest.
        guest: GuestName,
        /// Its status.
        status: i32,
        /// Its last lines of stderr.
        stderr: TextTail,
    },
    /// The snapshot file did not come back from the source boot.
    #[error("the source boot left no snapshot file")]
    SnapshotMissing,
    /// The snapshot does not parse.
    #[error("invalid snapshot")]
    Snapshot(#[source] FormatError),
    /// The snapshot has no port-I/O fw_cfg device.
    #[error("the snapshot has no port-I/O fw_cfg device")]
    NoDevice,
    /// A destination neither ran the firmware to its end nor gave one of
    /// the errors [`classify`] knows.
    #[error("guest {guest} exited with {status} and an unexpected error; its stderr:\n{stderr}")]
    Unclassified {
        /// The guest.
        guest: GuestName,
        /// Its status.
        status: i32,
        /// Its last lines of stderr.
        stderr: TextTail,
    },
    /// The firmware finished without a line the reading needs.
    #[error("guest {guest}: the firmware's report has no {what}")]
    Incomplete {
        /// The guest.
        guest: GuestName,
        /// The missing part.
        what: &'static str,
    },
    /// The in-process simulation failed.
    #[error("the in-process simulation failed")]
    Simulation(#[source] matrix::Error),
}

/// One destination's restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Destination {
    /// The destination host's width (the outer MAXPHYADDR).
    pub host_bits: u8,
    /// What its `fw-cfg-vmm` did with the snapshot ([`classify`]).
    pub result: MigrationResult,
    /// Its exit status.
    pub status: i32,
    /// Its stderr (the one-line error of a refusal).
    pub stderr: String,
    /// Wall time of that outer boot, in milliseconds.
    pub boot_ms: u64,
}

/// A migration row as the lab showed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabMigration {
    /// The row's name.
    pub name: &'static str,
    /// The source host's width.
    pub source_bits: u8,
    /// The port-I/O lookup's fw_cfg accesses on this machine's KVM.
    pub lookup_accesses: u64,
    /// The same phase's fw_cfg accesses in the lab's reference run.
    pub lab_lookup_accesses: u64,
    /// The snapshot was taken after this many fw_cfg accesses.
    pub after_accesses: u64,
    /// The width the snapshot vouches for.
    pub vouched: u8,
    /// The uninterrupted run's reading.
    pub reference: Reading,
    /// The reading of the run saved and resumed on the source host.
    pub resumed: Reading,
    /// The transports whose result line (availability, file, decisions,
    /// every mode's answer) differs between the two runs (empty: the
    /// same decisions).
    pub differing: Vec<Transport>,
    /// The result lines the saving run printed before it stopped.
    pub before_snapshot: Vec<Transport>,
    /// The result lines the resumed run printed itself.
    pub after_restore: Vec<Transport>,
    /// Wall time of the source boot, in milliseconds.
    pub source_boot_ms: u64,
    /// Each destination's restore, in the order asked for.
    pub destinations: Vec<Destination>,
}

/// The source host's width and the `fw-cfg-vmm` configuration of a
/// migration row the lab can show (module docs).
pub fn source(s: &Situation) -> Result<(u8, PeerConfig), LabMigrationError> {
    let not = || LabMigrationError::NotInLab { name: s.name };
    let dest = s.migrate_to.ok_or_else(not)?;
    if dest.guest_phys_bits != 0 || !PHYS_BITS_RANGE.contains(&dest.phys_bits) {
        return Err(not());
    }
    let unmoved = Situation {
        migrate_to: None,
        ..*s
    };
    let bits = unmoved.lab_host_bits().map_err(|_| not())?;
    let setup = unmoved.lab_setup().map_err(|_| not())?;
    Ok((bits, peer_config(&setup)))
}

/// The in-process simulation of moving row `s` to a host of `bits` (no
/// GuestPhysBits), as the situations table runs it.
pub fn simulated(s: &Situation, bits: u8) -> Result<Option<Migration>, LabMigrationError> {
    let moved = Situation {
        migrate_to: Some(fw_cfg_device::phys_bits::HostAddressSizes::new(bits, 0)),
        ..*s
    };
    let o = situations::run(&moved).map_err(LabMigrationError::Simulation)?;
    Ok(o.migration)
}

/// The line `fw-cfg-vmm` prints when the port-I/O device refuses a
/// snapshot with `source`.
pub fn refusal_line(source: fw_cfg_device::SnapshotError) -> String {
    let e = crate::vmm::Error::Snapshot(SnapshotError::Device {
        front: "port I/O",
        source,
    });
    format!("{ERROR_PREFIX}{}", error_chain(&e))
}

/// What a destination did, from its status and stderr: the firmware ran
/// to its end (accepted), or one of the migration guard's refusals of a
/// snapshot vouching for `vouched` on a host backing `backed`, exactly
/// as `fw-cfg-vmm` prints it; `None` for anything else.
pub fn classify(g: &GuestRun, vouched: u8, backed: u8) -> Option<MigrationResult> {
    if g.status == FIRMWARE_DONE_STATUS && FirmwareReport::parse(&g.stdout).done {
        return Some(MigrationResult::Accepted);
    }
    let stderr = String::from_utf8_lossy(&g.stderr);
    if g.status != ERROR_STATUS || stderr.lines().count() != 1 {
        return None;
    }
    use fw_cfg_device::SnapshotError as Refused;
    let line = stderr.trim_end();
    if line == refusal_line(Refused::NarrowerHost { vouched, backed }) {
        Some(MigrationResult::NarrowerHost)
    } else if line == refusal_line(Refused::ConfigMismatch) {
        Some(MigrationResult::OtherItems)
    } else {
        None
    }
}

/// `fw-cfg-vmm` with `config`'s flags, the firmware and the bulk file at
/// their work-folder paths, and [`MEMORY_MIB`].
fn argv(config: &PeerConfig, extra: &[String]) -> Vec<String> {
    let firmware = inner_path(FIRMWARE_FILE);
    let bulk = inner_path(BULK_FILE);
    std::iter::once(inner_path(VMM_FILE))
        .chain(firmware::vmm_args(config, &firmware, None, &bulk))
        .chain(["--memory".into(), MEMORY_MIB.to_string()])
        .chain(extra.iter().cloned())
        .collect()
}

/// A boot of `bits` with the tools and the bulk file in its work folder.
fn boot(bits: u8, tools: &LabTools) -> Result<Lab, LabError> {
    Lab::new()
        .phys_bits(bits)
        .timeout(OUTER_TIMEOUT)
        .copy(VMM_FILE, &tools.vmm)?
        .copy(FIRMWARE_FILE, &tools.firmware)?
        .file(BULK_FILE, bulk_contents(), false)
}

/// The fw_cfg accesses of the firmware's port-I/O lookup under `config`,
/// counted by `fw-cfg-vmm` with phase marks on this machine's KVM.
pub fn lookup_accesses(tools: &LabTools, config: &PeerConfig) -> Result<u64, LabMigrationError> {
    let dir = std::env::temp_dir().join(format!("fw-cfg-lab-migration-{}", std::process::id()));
    let result = lookup_accesses_in(&dir, tools, config);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn lookup_accesses_in(
    dir: &std::path::Path,
    tools: &LabTools,
    config: &PeerConfig,
) -> Result<u64, LabMigrationError> {
    let (bulk, stats) = (dir.join("bulk"), dir.join("stats.json"));
    let scratch = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| LabMigrationError::Scratch { path, source }
    };
    std::fs::create_dir_all(dir).map_err(scratch(dir))?;
    std::fs::write(&bulk, bulk_contents()).map_err(scratch(&bulk))?;
    let firmware = tools.firmware.display().to_string();
    let out = Command::new(&tools.vmm)
        .args(firmware::vmm_args(
            config,
            &firmware,
            None,
            &bulk.display().to_string(),
        ))
        .args(["--memory".into(), MEMORY_MIB.to_string()])
        .args([
            "--phase-port".into(),
            format!("{MARK_PORT:#x}"),
            "--stats-json".into(),
        ])
        .arg(&stats)
        .output()
        .map_err(|source| LabMigrationError::Spawn {
            program: tools.vmm.clone(),
            source,
        })?;
    if out.status.code() != Some(FIRMWARE_DONE_STATUS) {
        return Err(LabMigrationError::LocalRun {
            status: out.status.code(),
            stderr: TextTail::last(&String::from_utf8_lossy(&out.stderr), TAIL_LINES),
        });
    }
    let json = std::fs::read(&stats).map_err(|source| {
        LabMigrationError::Report(ReportError::Io {
            action: "read",
            path: stats.clone(),
            source,
        })
    })?;
    let report = RunReport::from_json(&json).map_err(LabMigrationError::Report)?;
    Ok(pio_lookup(&report))
}

/// The port-I/O lookup's port-I/O exits in `report` (its phase marks are
/// the hook's, not counted: they are all fw_cfg accesses).
fn pio_lookup(report: &RunReport) -> u64 {
    report.stats.phase(Phase::Lookup(Transport::Pio).id()).pio()
}

/// The transports whose result lines tell `a` and `b` apart.
fn differing(a: &FirmwareReport, b: &FirmwareReport) -> Vec<Transport> {
    let key = |l: &ResultLine| (l.available, l.file, l.decisions, l.modes);
    let transports: std::collections::BTreeSet<_> =
        a.results.keys().chain(b.results.keys()).collect();
    transports
        .into_iter()
        .filter(|t| a.results.get(t).map(key) != b.results.get(t).map(key))
        .copied()
        .collect()
}

/// The reading of a finished run, or which part is missing.
fn reading(report: &FirmwareReport, guest: &GuestName) -> Result<Reading, LabMigrationError> {
    Reading::firmware(report).map_err(|what| LabMigrationError::Incomplete {
        guest: guest.clone(),
        what,
    })
}

/// The source boot's three guests (module docs) and what they read.
struct SourceRun {
    run: LabRun,
    snapshot: Vec<u8>,
    vouched: u8,
}

fn source_boot(
    peers: &LabPeers,
    tools: &LabTools,
    bits: u8,
    config: &PeerConfig,
    after: u64,
) -> Result<SourceRun, LabMigrationError> {
    let snap = inner_path(SNAPSHOT_FILE);
    let [reference, save, resume] = SOURCE_GUESTS;
    let ref_extra = [
        "--phase-port".into(),
        format!("{MARK_PORT:#x}"),
        "--stats-json".into(),
        inner_path(REFERENCE_STATS),
    ];
    let save_extra = [
        "--snapshot".into(),
        snap.clone(),
        "--snapshot-after-accesses".into(),
        after.to_string(),
    ];
    let timeout = firmware::GUEST_TIMEOUT;
    let run = boot(bits, tools)?
        .guest(reference, argv(config, &ref_extra), timeout)?
        .guest(save, argv(config, &save_extra), timeout)?
        .guest(resume, argv(config, &["--restore".into(), snap]), timeout)?
        .fetch(REFERENCE_STATS)?
        .fetch(SNAPSHOT_FILE)?
        .run(peers)?;
    let g = run.guest(&GuestName::new(save)?)?;
    if g.status != SNAPSHOT_EXIT_STATUS as i32 {
        return Err(LabMigrationError::NoSnapshot {
            guest: GuestName::new(save)?,
            status: g.status,
            stderr: TextTail::last(&String::from_utf8_lossy(&g.stderr), TAIL_LINES),
        });
    }
    let snapshot = run
        .files
        .get(std::path::Path::new(SNAPSHOT_FILE))
        .ok_or(LabMigrationError::SnapshotMissing)?
        .clone();
    let limits = Limits {
        regions: ram_ranges(MEMORY_MIB << 20),
    };
    let parsed = parse(&snapshot, &limits).map_err(LabMigrationError::Snapshot)?;
    let vouched = parsed
        .fw_cfg
        .pio
        .as_ref()
        .ok_or(LabMigrationError::NoDevice)?
        .vouched_bits;
    Ok(SourceRun {
        run,
        snapshot,
        vouched,
    })
}

/// Restores `snapshot` with `config` on a host of `bits`.
fn destination_boot(
    peers: &LabPeers,
    tools: &LabTools,
    bits: u8,
    config: &PeerConfig,
    source: &SourceRun,
) -> Result<Destination, LabMigrationError> {
    let name = GuestName::new(&format!("migration-to-{bits}"))?;
    let restore = ["--restore".into(), inner_path(SNAPSHOT_FILE)];
    let run = boot(bits, tools)?
        .file(SNAPSHOT_FILE, source.snapshot.clone(), false)?
        .guest(
            name.as_str(),
            argv(config, &restore),
            firmware::GUEST_TIMEOUT,
        )?
        .run(peers)?;
    let g = run.guest(&name)?;
    let stderr = String::from_utf8_lossy(&g.stderr).into_owned();
    let result =
        classify(g, source.vouched, bits).ok_or_else(|| LabMigrationError::Unclassified {
            guest: name.clone(),
            status: g.status,
            stderr: TextTail::last(&stderr, TAIL_LINES),
        })?;
    Ok(Destination {
        host_bits: bits,
        result,
        status: g.status,
        stderr,
        boot_ms: millis(run.elapsed),
    })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Shows migration row `s` in the lab (module docs): its source boot,
/// then one boot per width of `destinations`, in turn.
pub fn run(
    peers: &LabPeers,
    tools: &LabTools,
    s: &Situation,
    destinations: &[u8],
) -> Result<LabMigration, LabMigrationError> {
    let (bits, config) = source(s)?;
    let lookup = lookup_accesses(tools, &config)?;
    if lookup < 2 {
        return Err(LabMigrationError::ShortLookup { accesses: lookup });
    }
    let after = lookup / 2;
    let source = source_boot(peers, tools, bits, &config, after)?;
    let guest = |i: usize| GuestName::new(SOURCE_GUESTS[i]);
    let (ref_name, save_name, resume_name) = (guest(0)?, guest(1)?, guest(2)?);
    let reference = firmware::report(&source.run, &ref_name)?;
    let resumed_run = firmware::report(&source.run, &resume_name)?;
    let saved = &source.run.guest(&save_name)?.stdout;
    let mut joined = saved.clone();
    joined.extend_from_slice(&source.run.guest(&resume_name)?.stdout);
    let resumed = FirmwareReport::parse(&joined);
    let stats = firmware::report_file(
        &source.run,
        &ref_name,
        std::path::Path::new(REFERENCE_STATS),
    )?;
    let mut moved = Vec::new();
    for &b in destinations {
        moved.push(destination_boot(peers, tools, b, &config, &source)?);
    }
    Ok(LabMigration {
        name: s.name,
        source_bits: bits,
        lookup_accesses: lookup,
        lab_lookup_accesses: pio_lookup(&stats),
        after_accesses: after,
        vouched: source.vouched,
        reference: reading(&reference, &ref_name)?,
        resumed: reading(&resumed, &resume_name)?,
        differing: differing(&reference, &resumed),
        before_snapshot: FirmwareReport::parse(saved).results.into_keys().collect(),
        after_restore: resumed_run.results.into_keys().collect(),
        source_boot_ms: millis(source.run.elapsed),
        destinations: moved,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str) -> Situation {
        Situation::named(name).expect("a row")
    }

    fn guest(status: i32, stdout: &[u8], stderr: String) -> GuestRun {
        GuestRun {
            status,
            stdout: stdout.to_vec(),
            stderr: stderr.into_bytes(),
            elapsed: Duration::from_secs(1),
        }
    }

    #[test]
    fn only_a_move_between_lab_hosts_is_taken() {
        let (bits, config) = source(&row("migrate-to-39")).unwrap();
        assert_eq!(bits, 48);
        let flags = firmware::vmm_args(&config, "/fw", None, "/bulk").join(" ");
        assert!(
            flags.ends_with("--host-phys-bits --phys-bits-hint on --phys-bits-file on"),
            "{flags}"
        );
        let a = argv(&config, &["--restore".into(), "s".into()]).join(" ");
        assert!(a.ends_with(" --memory 32 --restore s"), "{a}");
        for name in ["migrate-to-52", "host-48", "tcg"] {
            assert!(
                matches!(source(&row(name)), Err(LabMigrationError::NotInLab { .. })),
                "{name}"
            );
        }
    }

    #[test]
    fn the_vmms_refusals_are_told_apart() {
        use fw_cfg_device::SnapshotError as Refused;
        let narrower = refusal_line(Refused::NarrowerHost {
            vouched: 48,
            backed: 39,
        });
        assert_eq!(
            narrower,
            "fw-cfg-vmm: snapshot failed: the fw_cfg port I/O device refuses the snapshot: \
             the source vouched for 48 physical address bits, this host backs only 39"
        );
        let g = guest(ERROR_STATUS, b"", format!("{narrower}\n"));
        assert_eq!(classify(&g, 48, 39), Some(MigrationResult::NarrowerHost));
        assert_eq!(classify(&g, 48, 36), None, "another width");
        let other = refusal_line(Refused::ConfigMismatch);
        let g = guest(ERROR_STATUS, b"", format!("{other}\n"));
        assert_eq!(classify(&g, 48, 52), Some(MigrationResult::OtherItems));
        let g = guest(ERROR_STATUS, b"", format!("{other}\nmore\n"));
        assert_eq!(classify(&g, 48, 52), None, "one line only");
        let g = guest(1, b"", format!("{other}\n"));
        assert_eq!(classify(&g, 48, 52), None, "status 1 without the done line");
        let done = fw_cfg_protocol::line_to_string(&fw_cfg_protocol::Line::Done).unwrap();
        let g = guest(FIRMWARE_DONE_STATUS, done.as_bytes(), String::new());
        assert_eq!(classify(&g, 48, 52), Some(MigrationResult::Accepted));
    }

    #[test]
    fn the_simulation_refuses_both_destinations() {
        let s = row("migrate-to-39");
        let m = simulated(&s, 39).unwrap().unwrap();
        assert_eq!((m.vouched, m.result), (48, MigrationResult::NarrowerHost));
        let m = simulated(&s, 52).unwrap().unwrap();
        assert_eq!((m.vouched, m.result), (48, MigrationResult::OtherItems));
    }
}
