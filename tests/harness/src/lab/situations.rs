// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The situations table's simulated hosts on real KVM hosts: the nested
//! lab's outer `-cpu max,phys-bits=N,host-phys-bits=off` makes the inner
//! KVM report a MAXPHYADDR of N, so a row whose host is N runs there as
//! on such a machine.
//!
//! [`by_width`] groups the rows that [`Situation::lab_host_bits`] places
//! in the lab by that width; [`add`] puts one `fw-cfg-vmm` guest per row
//! into one outer boot of that width, with the row's configuration as
//! flags ([`Situation::lab_setup`] through [`peer_config`] into
//! [`firmware::vmm_args`]) and **no host override**: the VMM asks the
//! lab's KVM for the host, as on a real host. [`collect`] reads each
//! firmware's typed report ([`firmware::report`]) into a [`Reading`] and
//! sets it beside the in-process simulation of the same row
//! ([`situations::run`]); [`run_all`] does every width in turn.
//!
//! What the lab checks, per row ([`Reading`]): CPUID 0x80000008's widths
//! (EAX\[7:0\], \[23:16\]), the hint, the file's eight bytes, and the
//! decisions hint-only (the firmware's CPUID line: strict with no file),
//! strict and combined (its port-I/O line). The other columns, OVMF's,
//! SeaBIOS's and GuestPhysBits-only, and the 64-bit windows, stay with the
//! simulation: the peers' rules read the vendor, and the lab's host is
//! AMD (kvm-amd needs an AMD outer vCPU; `fw-cfg-vmm` passes the host's
//! vendor on), so `qemu-10.1-intel` and the Intel rows are in the lab for
//! the columns above, which [`vendor_free`] shows do not depend on the
//! vendor. The memory top of a lab row is at most
//! [`situations::LAB_MEMORY_TOP`], where the firmware's own RAM gives the
//! same fallback (36).
//!
//! Not in the lab ([`situations::LabLimit`]): rows whose host reports
//! GuestPhysBits (`guest-phys-bits`, `kvm-6.10-host-46`: KVM 6.10 and
//! later, the lab's kernel is older and reports none), TCG (no KVM leaf),
//! SEV (no SEV in the lab's host), the nesting chain (the nesting test of
//! `harness/tests/lab.rs` runs it with the outer VMM's file), RAM above
//! 64 GiB (booted with sparse RAM on this machine's KVM instead) and the
//! migration rows (`migrate-to-39` moves between two lab hosts in
//! [`super::migration`]; `migrate-to-52`'s destination reports
//! GuestPhysBits): those keep the host override here.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use fw_cfg_protocol::Transport;
use serde::Serialize;

use super::build::LabTools;
use super::firmware::{self, FirmwareGuests};
use super::{GuestName, Lab, LabError, LabPeers, LabRun};
use crate::firmware::FirmwareReport;
use crate::matrix::{self, FileCase};
use crate::peers::Missing;
use crate::peers::side_by_side::{PeerConfig, Width};
use crate::situations::{
    self, CpuVendor, LabLimit, Mode, Situation, SituationOutcome, file_cell, hint_name,
};
use crate::vmm::fw_cfg::PhysBitsSetup;

/// Wall-time limit of one outer boot: about 10 to 30 s of TCG and a few
/// seconds per firmware guest, with room for a loaded machine.
pub const OUTER_TIMEOUT: Duration = Duration::from_secs(240);

/// Why the lab's situations could not be checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LabSituationError {
    /// The lab or a guest failed.
    #[error(transparent)]
    Lab(#[from] LabError),
    /// The in-process simulation failed.
    #[error("the in-process simulation failed")]
    Simulation(#[source] matrix::Error),
    /// A row was added to a boot whose host it does not have.
    #[error("situation {name} needs a lab host of {wanted:?}, not {host_bits} bits")]
    WrongHost {
        /// The row.
        name: &'static str,
        /// The boot's host width.
        host_bits: u8,
        /// The row's lab host, or why it has none.
        wanted: Result<u8, LabLimit>,
    },
    /// The firmware finished without a line the reading needs.
    #[error("guest {guest}: the firmware's report has no {what}")]
    Incomplete {
        /// The guest.
        guest: GuestName,
        /// The missing part.
        what: &'static str,
    },
    /// QEMU, the kernel, a module or busybox is missing.
    #[error("{0}")]
    Missing(Missing),
}

/// What the lab checks of one row, as read and decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Reading {
    /// CPUID 0x80000008 EAX\[7:0\] and \[23:16\].
    pub cpuid: (u8, u8),
    /// The hint ([`situations::hint_name`]).
    pub hint: &'static str,
    /// The file's first eight bytes (`None`: absent).
    pub file: Option<[u8; 8]>,
    /// Strict over the hint alone.
    pub hint_only: u8,
    /// Strict over both channels.
    pub strict: u8,
    /// Combined.
    pub combined: u8,
}

impl Reading {
    /// The simulation's reading of a row.
    pub fn simulated(o: &SituationOutcome) -> Option<Reading> {
        let bits = |mode| o.answers.iter().find(|a| a.mode == mode).map(|a| a.bits);
        Some(Reading {
            cpuid: o.cpuid,
            hint: o.hint,
            file: o.file,
            hint_only: bits(Mode::HintOnly)?,
            strict: bits(Mode::Strict)?,
            combined: bits(Mode::Combined)?,
        })
    }

    /// The firmware's reading: its CPUID line (widths, hint, and the
    /// hint-only decision) and its port-I/O line (file, decisions);
    /// `Err` names the missing part.
    pub fn firmware(r: &FirmwareReport) -> Result<Reading, &'static str> {
        let line = |t| r.results.get(&t);
        let cpuid_line = line(Transport::Cpuid).ok_or("CPUID line")?;
        let cpuid = cpuid_line.cpuid.as_ref().ok_or("CPUID object")?;
        let hint_only = cpuid_line.decisions.ok_or("CPUID decisions")?.strict;
        let pio = line(Transport::Pio).ok_or("port-I/O line")?;
        let decisions = pio.decisions.ok_or("port-I/O decisions")?;
        let file = pio.file.as_ref().ok_or("file object")?;
        let bytes = file.bytes.as_slice().get(..8);
        let file = match file.state {
            fw_cfg_protocol::FileStateKind::Absent => None,
            _ => Some(bytes.and_then(|b| b.try_into().ok()).ok_or("file bytes")?),
        };
        Ok(Reading {
            cpuid: (cpuid.phys_bits, cpuid.guest_phys_bits),
            hint: hint_name(cpuid.hint.into()),
            file,
            hint_only: hint_only.phys_bits,
            strict: decisions.strict.phys_bits,
            combined: decisions.combined.phys_bits,
        })
    }

    /// `what: lab a, simulated b` for each value that differs.
    pub fn differences(&self, simulated: &Reading) -> Vec<String> {
        let mut d = Vec::new();
        let mut diff = |what: &str, lab: String, sim: String| {
            if lab != sim {
                d.push(format!("{what}: lab {lab}, simulated {sim}"));
            }
        };
        let (l, s) = (self, simulated);
        diff("cpuid", format!("{:?}", l.cpuid), format!("{:?}", s.cpuid));
        diff("hint", l.hint.into(), s.hint.into());
        diff("file", format!("{:?}", l.file), format!("{:?}", s.file));
        diff(
            "hint-only",
            l.hint_only.to_string(),
            s.hint_only.to_string(),
        );
        diff("strict", l.strict.to_string(), s.strict.to_string());
        diff("combined", l.combined.to_string(), s.combined.to_string());
        d
    }
}

/// The rows the lab shows, by the width of their lab host.
pub fn by_width(rows: &[Situation]) -> BTreeMap<u8, Vec<Situation>> {
    let mut m: BTreeMap<u8, Vec<Situation>> = BTreeMap::new();
    for s in rows {
        if let Ok(bits) = s.lab_host_bits() {
            m.entry(bits).or_default().push(*s);
        }
    }
    m
}

/// Whether the simulation's [`Reading`] of `s` is the same under every
/// vendor (the lab's host shows its own): what lets the lab check a row
/// whose vendor it cannot show.
pub fn vendor_free(s: &Situation) -> Result<bool, LabSituationError> {
    let reading = |vendor| {
        let o =
            situations::run(&Situation { vendor, ..*s }).map_err(LabSituationError::Simulation)?;
        Ok::<_, LabSituationError>(Reading::simulated(&o))
    };
    let own = reading(s.vendor)?;
    for v in [
        CpuVendor::Intel,
        CpuVendor::IntelNoExtSignature,
        CpuVendor::Amd,
    ] {
        if reading(v)? != own {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The lab's form of a row's setup: the configuration `fw-cfg-vmm`'s
/// flags express ([`firmware::vmm_args`]). The host and its guest width
/// are the lab's KVM's (`setup` has no override).
pub fn peer_config(setup: &PhysBitsSetup) -> PeerConfig {
    let width = match (setup.host_phys_bits, setup.phys_bits) {
        (true, _) => Width::Host,
        (false, Some(n)) => Width::Bits(n),
        (false, None) => Width::Legacy,
    };
    let file = if setup.file {
        FileCase::Stated
    } else {
        FileCase::Absent
    };
    PeerConfig {
        guest_phys_bits: setup.guest_phys_bits,
        hint: setup.hint,
        ..PeerConfig::microvm(width, file)
    }
}

/// One row added to a lab boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabRow {
    /// The row.
    pub situation: Situation,
    /// Its `fw-cfg-vmm` guest.
    pub guests: FirmwareGuests,
}

/// Adds `rows` to `lab`, whose outer MAXPHYADDR must be `host_bits`, as
/// one `fw-cfg-vmm` guest each (guest `NAME-vmm`, `NAME` the row's).
pub fn add(
    mut lab: Lab,
    host_bits: u8,
    rows: &[Situation],
    tools: &LabTools,
) -> Result<(Lab, Vec<LabRow>), LabSituationError> {
    let mut added = Vec::new();
    for s in rows {
        let wrong = || LabSituationError::WrongHost {
            name: s.name,
            host_bits,
            wanted: s.lab_host_bits(),
        };
        if s.lab_host_bits() != Ok(host_bits) {
            return Err(wrong());
        }
        let config = peer_config(&s.lab_setup().map_err(|_| wrong())?);
        let (l, guests) = firmware::add(lab, s.name, &config, host_bits, None, tools)?;
        lab = l;
        added.push(LabRow {
            situation: *s,
            guests,
        });
    }
    Ok((lab, added))
}

/// One row as the lab showed it, beside its simulation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabSituation {
    /// The row's name.
    pub name: &'static str,
    /// The lab's inner KVM host width (the outer MAXPHYADDR).
    pub host_bits: u8,
    /// What the firmware read and decided on that host.
    pub lab: Reading,
    /// What the in-process simulation of the row read and decided.
    pub simulated: Reading,
    /// The guest's wall time in the outer guest, in milliseconds.
    pub guest_ms: u64,
}

impl LabSituation {
    /// Where the lab and the simulation differ (empty: confirmed).
    pub fn differences(&self) -> Vec<String> {
        self.lab.differences(&self.simulated)
    }
}

/// Reads the rows [`add`] added out of a finished boot of `host_bits`.
pub fn collect(
    run: &LabRun,
    host_bits: u8,
    rows: &[LabRow],
) -> Result<Vec<LabSituation>, LabSituationError> {
    rows.iter()
        .map(|r| {
            let s = &r.situation;
            let report = firmware::report(run, &r.guests.vmm)?;
            let incomplete = |what| LabSituationError::Incomplete {
                guest: r.guests.vmm.clone(),
                what,
            };
            let lab = Reading::firmware(&report).map_err(incomplete)?;
            let outcome = situations::run(s).map_err(LabSituationError::Simulation)?;
            let simulated = Reading::simulated(&outcome).ok_or(incomplete("simulated answers"))?;
            let guest_ms = run.guest(&r.guests.vmm)?.elapsed.as_millis();
            Ok(LabSituation {
                name: s.name,
                host_bits,
                lab,
                simulated,
                guest_ms: u64::try_from(guest_ms).unwrap_or(u64::MAX),
            })
        })
        .collect()
}

/// Boots the lab once with outer MAXPHYADDR `host_bits` and the `rows` of
/// that width, and reads them.
pub fn run_width(
    peers: &LabPeers,
    tools: &LabTools,
    host_bits: u8,
    rows: &[Situation],
) -> Result<Vec<LabSituation>, LabSituationError> {
    let lab = Lab::new().phys_bits(host_bits).timeout(OUTER_TIMEOUT);
    let (lab, added) = add(lab, host_bits, rows, tools)?;
    let run = lab.run(peers)?;
    eprintln!(
        "lab: {} rows on a {host_bits}-bit host in {:.1} s",
        added.len(),
        run.elapsed.as_secs_f64()
    );
    collect(&run, host_bits, &added)
}

/// Every row the lab shows, one outer boot per host width in turn
/// (progress on stderr), in table order.
pub fn run_all() -> Result<Vec<LabSituation>, LabSituationError> {
    let peers = LabPeers::find().map_err(LabSituationError::Missing)?;
    let tools = LabTools::build(false).map_err(LabError::from)?;
    let all = Situation::all();
    let mut results = Vec::new();
    for (bits, rows) in by_width(&all) {
        results.extend(run_width(&peers, &tools, bits, &rows)?);
    }
    let order = |name| all.iter().position(|s| s.name == name);
    results.sort_by_key(|r| order(r.name));
    Ok(results)
}

/// The lab section of `compare --situations --lab` (within 100 columns):
/// per lab row what the firmware read and decided on the real host and
/// whether that is the simulation's, then the rows left to the host
/// override and why.
pub fn render(results: &[LabSituation]) -> String {
    let mut s = String::from(
        "\nNested KVM lab: the rows on a real KVM host of their width (outer -cpu max,\n\
         phys-bits=N), no host override; vendor-dependent columns stay simulated\n\n",
    );
    let _ = writeln!(
        s,
        "{:<16} {:>4} {:<7} {:<4} {:<6} {:>5} {:>6} {:>5}  lab",
        "situation", "host", "cpuid", "hint", "file", "hint", "strict", "comb"
    );
    for r in results {
        let l = &r.lab;
        let d = r.differences();
        let verdict = if d.is_empty() {
            "= simulated"
        } else {
            "DIFFERS"
        };
        let cpuid = format!("{}/{}", l.cpuid.0, l.cpuid.1);
        let _ = writeln!(
            s,
            "{:<16} {:>4} {:<7} {:<4} {:<6} {:>5} {:>6} {:>5}  {verdict}",
            r.name,
            r.host_bits,
            cpuid,
            l.hint,
            file_cell(l.file),
            l.hint_only,
            l.strict,
            l.combined
        );
        for line in d {
            let _ = writeln!(s, "  {line}");
        }
    }
    let confirmed = results.iter().filter(|r| r.differences().is_empty());
    let _ = writeln!(
        s,
        "\n{}/{} rows confirmed in the lab; by the host override only:",
        confirmed.count(),
        results.len()
    );
    for row in Situation::all() {
        if let Err(why) = row.lab_host_bits() {
            let _ = writeln!(s, "  {:<16} {}", row.name, why.as_str());
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str) -> Situation {
        Situation::named(name).expect("a row")
    }

    fn flags(name: &str) -> String {
        let setup = row(name).lab_setup().expect("a lab row");
        firmware::vmm_args(&peer_config(&setup), "/fw", None, "/bulk").join(" ")
    }

    #[test]
    fn six_hosts_and_the_rows_on_each() {
        let m = by_width(&Situation::all());
        let names: Vec<(u8, Vec<&str>)> = m
            .iter()
            .map(|(b, rows)| (*b, rows.iter().map(|s| s.name).collect()))
            .collect();
        assert_eq!(
            names,
            [
                (36, vec!["host-36", "legacy-40-on-36"]),
                (
                    39,
                    vec![
                        "host-39",
                        "legacy-40-on-39",
                        "phys-bits-above",
                        "qemu-10.1-intel"
                    ]
                ),
                (40, vec!["host-40"]),
                (46, vec!["host-46"]),
                (
                    48,
                    vec![
                        "host-48",
                        "legacy-40-on-48",
                        "phys-bits-below",
                        "large-bars",
                        "silent-vmm"
                    ]
                ),
                (52, vec!["host-52"]),
            ]
        );
    }

    #[test]
    fn the_flags_are_the_rows_configuration_without_a_host() {
        let tail = |name| {
            let f = flags(name);
            let at = f.find("bulk ").expect("the bulk file") + 5;
            f[at..].to_string()
        };
        assert_eq!(
            tail("host-39"),
            "--host-phys-bits --phys-bits-hint on --phys-bits-file on"
        );
        assert_eq!(
            tail("legacy-40-on-48"),
            "--phys-bits-hint on --phys-bits-file on"
        );
        assert_eq!(
            tail("phys-bits-above"),
            "--phys-bits 44 --phys-bits-hint on --phys-bits-file on"
        );
        assert_eq!(
            tail("silent-vmm"),
            "--host-phys-bits --phys-bits-hint off --phys-bits-file off"
        );
        for s in Situation::all() {
            if s.lab_host_bits().is_ok() {
                assert!(!flags(s.name).contains("guest-phys-bits"), "{}", s.name);
            }
        }
    }

    /// Every lab row's checked columns are the same whatever the vendor,
    /// so the lab's AMD host shows the Intel rows too; the OVMF column of
    /// `qemu-10.1-intel` is what depends on it, and stays simulated.
    #[test]
    fn the_checked_columns_do_not_depend_on_the_vendor() {
        for s in Situation::all() {
            if s.lab_host_bits().is_ok() {
                assert!(vendor_free(&s).unwrap(), "{}", s.name);
            }
        }
        let intel = row("qemu-10.1-intel");
        let ovmf = |vendor| {
            let o = situations::run(&Situation { vendor, ..intel }).unwrap();
            o.answers[0].bits
        };
        assert_ne!(ovmf(CpuVendor::IntelNoExtSignature), ovmf(CpuVendor::Intel));
    }

    #[test]
    fn wrong_host_is_refused_and_the_section_fits() {
        let tools = LabTools {
            vmm: "/built/fw-cfg-vmm".into(),
            firmware: "/built/firmware".into(),
            probe: None,
            abi_check: None,
        };
        let err = add(Lab::new(), 39, &[row("host-36")], &tools).unwrap_err();
        assert!(matches!(
            err,
            LabSituationError::WrongHost { wanted: Ok(36), .. }
        ));
        let err = add(Lab::new(), 48, &[row("sev")], &tools).unwrap_err();
        assert!(err.to_string().contains("Sev"), "{err}");
        let (_, added) = add(Lab::new(), 36, &[row("host-36")], &tools).unwrap();
        assert_eq!(added[0].guests.vmm.as_str(), "host-36-vmm");
        let o = situations::run(&row("host-36")).unwrap();
        let sim = Reading::simulated(&o).unwrap();
        let mut lab = sim;
        lab.strict = 40;
        let results = [LabSituation {
            name: "host-36",
            host_bits: 36,
            lab,
            simulated: sim,
            guest_ms: 2500,
        }];
        assert_eq!(results[0].differences(), ["strict: lab 40, simulated 36"]);
        let text = render(&results);
        assert!(text.contains("DIFFERS"), "{text}");
        assert!(text.contains("0/1 rows confirmed"), "{text}");
        assert!(text.contains("  tcg "), "{text}");
        for line in text.lines() {
            assert!(line.chars().count() <= 100, "{line}");
        }
    }
}
