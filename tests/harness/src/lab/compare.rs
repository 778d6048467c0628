// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `compare --lab`: in one outer boot, `compare`'s configuration matrix
//! under `fw-cfg-vmm` (and QEMU microvm where it is expressible), checked
//! against the same scenarios on this machine's KVM ([`super::matrix`]),
//! and Linux under both VMMs ([`super::measure`]): boot to `/init` (time,
//! as a ratio to QEMU), fw_cfg exits during the boot, the probe's
//! decision.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::build::LabTools;
use super::firmware;
use super::matrix as lab_matrix;
use super::measure::{self, LinuxRun, LinuxSummary, MeasureError, MeasureSetup};
use super::{Lab, LabError, LabPeers};
use crate::peers::side_by_side;

/// Per-guest limit of the machine's runs.
const MACHINE_TIMEOUT: Duration = Duration::from_secs(60);

/// One configuration of the matrix in the lab.
#[derive(Debug, Clone, Serialize)]
pub struct LabScenarioResult {
    /// [`crate::matrix::Scenario::tag`].
    pub tag: String,
    /// Differences from the same scenario on this machine (empty: the
    /// same reads, decisions and exits per phase).
    pub machine_vs_lab: Vec<String>,
    /// Differences between QEMU microvm and `fw-cfg-vmm` in the lab;
    /// `None` where QEMU cannot express the configuration.
    pub qemu_vs_lab: Option<Vec<String>>,
}

/// What `compare --lab` found.
#[derive(Debug, Clone, Serialize)]
pub struct LabReport {
    /// The inner KVM host's MAXPHYADDR.
    pub host_bits: u8,
    /// The CPUID features of the lab's KVM host that differ from this
    /// machine's (the decisions follow the policy for each).
    pub cpuid_features: Vec<String>,
    /// The matrix, per configuration.
    pub scenarios: Vec<LabScenarioResult>,
    /// Linux, per VMM.
    pub linux: Vec<LinuxSummary>,
    /// Every Linux guest.
    pub linux_runs: Vec<LinuxRun>,
}

impl LabReport {
    /// Whether every configuration agreed with this machine and QEMU.
    pub fn agrees(&self) -> bool {
        self.scenarios.iter().all(|s| {
            s.machine_vs_lab.is_empty() && s.qemu_vs_lab.as_ref().is_none_or(|d| d.is_empty())
        })
    }
}

/// Runs the lab part of `compare --lab`: one outer boot of `host_bits`
/// with the matrix and `repeat` Linux boots per VMM (limit `timeout`),
/// then the same matrix on this machine. Progress goes to stderr.
pub fn run(host_bits: u8, repeat: usize, timeout: Duration) -> Result<LabReport, MeasureError> {
    let peers = LabPeers::find().map_err(MeasureError::Missing)?;
    let tools = LabTools::build(true).map_err(LabError::from)?;
    let lab = Lab::new().phys_bits(host_bits).timeout(timeout);
    let (lab, added) = lab_matrix::add(lab, host_bits, Some(&peers.qemu), &tools)?;
    let setup = MeasureSetup {
        repeat,
        host_bits,
        firmware: None,
        linux: true,
        timed_qemu: true,
    };
    let (lab, plan) = measure::add(lab, &peers, &tools, &setup)?;
    let run = lab.run(&peers)?;
    let mut scenarios = Vec::new();
    let mut cpuid_features = Vec::new();
    for a in &added {
        let v = firmware::report(&run, &a.guests.vmm)?;
        let stats = firmware::run_report(&run, &a.guests)?.stats;
        eprintln!("compare: {} on this machine's KVM", a.scenario.tag());
        let here = lab_matrix::machine_run(&a.config, host_bits, MACHINE_TIMEOUT);
        let machine_vs_lab = match here {
            Ok(m) => {
                if cpuid_features.is_empty() {
                    cpuid_features = lab_matrix::cpuid_feature_differences(&m.report, &v);
                }
                lab_matrix::differences((&m.report, &m.stats), (&v, &stats))
            }
            Err(e) => vec![format!("no run on this machine: {e}")],
        };
        let qemu_vs_lab = match &a.guests.qemu {
            Some(q) => Some(side_by_side::compare(&firmware::report(&run, q)?, &v)),
            None => None,
        };
        scenarios.push(LabScenarioResult {
            tag: a.scenario.tag(),
            machine_vs_lab,
            qemu_vs_lab,
        });
    }
    let m = measure::collect(&run, &plan)?;
    Ok(LabReport {
        host_bits,
        cpuid_features,
        scenarios,
        linux: m.linux,
        linux_runs: m.linux_runs,
    })
}

/// The lab section of `compare`'s output, within 100 columns.
pub fn render(r: &LabReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Nested KVM lab (real SVM inside QEMU's TCG), inner KVM host of {} bits:",
        r.host_bits
    );
    let same = r
        .scenarios
        .iter()
        .filter(|s| s.machine_vs_lab.is_empty())
        .count();
    let with_qemu: Vec<&LabScenarioResult> = r
        .scenarios
        .iter()
        .filter(|s| s.qemu_vs_lab.is_some())
        .collect();
    let qemu_same = with_qemu
        .iter()
        .filter(|s| s.qemu_vs_lab.as_ref().is_some_and(|d| d.is_empty()))
        .count();
    let _ = writeln!(
        s,
        "firmware matrix: {same}/{} configurations read, decide and exit (per phase) as on\n\
         this machine's KVM; {qemu_same}/{} decide and read as under QEMU microvm in the lab",
        r.scenarios.len(),
        with_qemu.len()
    );
    if !r.cpuid_features.is_empty() {
        let _ = writeln!(
            s,
            "lab CPUID differs from this machine's (decisions follow the policy for each):\n  {}",
            r.cpuid_features.join("; ")
        );
    }
    for sc in &r.scenarios {
        for d in &sc.machine_vs_lab {
            let _ = writeln!(s, "  {}: machine vs lab: {d}", sc.tag);
        }
        for d in sc.qemu_vs_lab.iter().flatten() {
            let _ = writeln!(s, "  {}: QEMU vs ours: {d}", sc.tag);
        }
    }
    s.push('\n');
    s.push_str(&measure::render_linux(&r.linux));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_counts_agreements_within_100_columns() {
        let r = LabReport {
            host_bits: 48,
            cpuid_features: vec!["gb_pages: machine false, lab true".into()],
            scenarios: vec![
                LabScenarioResult {
                    tag: "hpb-on.hint-off.stated".into(),
                    machine_vs_lab: Vec::new(),
                    qemu_vs_lab: Some(Vec::new()),
                },
                LabScenarioResult {
                    tag: "hpb-on.hint-on.stated".into(),
                    machine_vs_lab: vec!["phase 0x10 exits".into()],
                    qemu_vs_lab: None,
                },
            ],
            linux: Vec::new(),
            linux_runs: Vec::new(),
        };
        assert!(!r.agrees());
        let text = render(&r);
        assert!(text.contains("1/2 configurations"), "{text}");
        assert!(text.contains("1/1 decide"), "{text}");
        assert!(text.contains("hpb-on.hint-on.stated: machine vs lab: phase 0x10"));
        for line in text.lines() {
            assert!(line.chars().count() <= 100, "{line}");
        }
    }
}
