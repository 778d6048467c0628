// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `compare`'s configuration matrix in the nested lab, against the same
//! matrix on this machine's own KVM.
//!
//! Every [`Scenario`] goes through one mapping, [`Scenario::peer_config`]:
//! this machine runs it with [`PeerConfig::vmm_setup`] ([`machine_run`]),
//! the lab with the same configuration as `fw-cfg-vmm` flags
//! ([`super::firmware::vmm_args`]) and, where QEMU microvm can express it
//! (host width, no hint), under QEMU too ([`add`]). Both runs state the
//! same inner host width (the lab's outer MAXPHYADDR), so the firmware
//! must read the same values, decide the same way and cost the same exits
//! in every phase; [`differences`] lists what does not, comparing values
//! and formatting only a difference.

use std::collections::BTreeSet;
use std::time::Duration;

use fw_cfg_guest::policy::{FileState, decide_all};
use fw_cfg_protocol::{Decisions, ResultLine, Transport};

use super::build::LabTools;
use super::firmware::{self, FirmwareGuests};
use super::{Lab, LabError};
use crate::firmware::FirmwareReport;
use crate::matrix::{self, FirmwareRun, Scenario};
use crate::peers::qemu::Qemu;
use crate::peers::side_by_side::PeerConfig;
use crate::vmm::stats::{ExitCounts, ExitStats};

/// One scenario added to a lab boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabScenario {
    /// The scenario.
    pub scenario: Scenario,
    /// Its [`Scenario::peer_config`].
    pub config: PeerConfig,
    /// Its inner guests.
    pub guests: FirmwareGuests,
}

/// Adds every scenario of [`Scenario::all`] to `lab` for an inner host of
/// `host_bits` (the outer MAXPHYADDR): under `fw-cfg-vmm`, and under
/// `qemu` where QEMU microvm expresses it.
pub fn add(
    mut lab: Lab,
    host_bits: u8,
    qemu: Option<&Qemu>,
    tools: &LabTools,
) -> Result<(Lab, Vec<LabScenario>), LabError> {
    let mut added = Vec::new();
    for scenario in Scenario::all() {
        let config = scenario.peer_config();
        let (l, guests) = firmware::add(lab, &scenario.tag(), &config, host_bits, qemu, tools)?;
        lab = l;
        added.push(LabScenario {
            scenario,
            config,
            guests,
        });
    }
    Ok((lab, added))
}

/// Runs `config` on this machine's KVM, stating a host of `host_bits`
/// (no guest width), as the lab's `fw-cfg-vmm` runs it.
pub fn machine_run(
    config: &PeerConfig,
    host_bits: u8,
    timeout: Duration,
) -> Result<FirmwareRun, matrix::Error> {
    matrix::run_firmware(config.vmm_setup(host_bits), timeout)
}

/// The exit counts compared per phase: by kind, without bytes or times.
fn kinds(c: &ExitCounts) -> [u64; 5] {
    [c.io_in, c.io_out, c.mmio_read, c.mmio_write, c.hlt]
}

/// Adds `what: machine a, lab b` to `d` when the values differ.
fn diff<T: PartialEq + std::fmt::Debug>(d: &mut Vec<String>, what: &str, machine: &T, lab: &T) {
    if machine != lab {
        d.push(format!("{what}: machine {machine:?}, lab {lab:?}"));
    }
}

/// The decisions the policy makes for the inputs `line` reports (its
/// file, with the CPUID values and memory top of `cpuid`): what the
/// firmware must have decided. `None` without a CPUID object or with a
/// file state the bytes do not give.
pub fn model_decisions(cpuid: &ResultLine, line: &ResultLine) -> Option<Decisions> {
    let c = cpuid.cpuid.as_ref()?;
    let file = match &line.file {
        Some(f) => f.state_from_bytes()?,
        None => FileState::Absent,
    };
    let top = cpuid.memory_top.unwrap_or(0);
    Some(Decisions::from(&decide_all(
        &c.inputs(file).with_memory_top(top),
    )))
}

/// The CPUID values the firmware read on both sides that differ (the two
/// KVM hosts' own features: vendor, 1 GiB pages, LA57), as
/// `name: machine a, lab b`; the decisions may then differ too, as the
/// policy says.
pub fn cpuid_feature_differences(machine: &FirmwareReport, lab: &FirmwareReport) -> Vec<String> {
    let mut d = Vec::new();
    let cpuid = |r: &FirmwareReport| r.result(Transport::Cpuid).and_then(|l| l.cpuid);
    if let (Some(m), Some(l)) = (cpuid(machine), cpuid(lab)) {
        diff(&mut d, "vendor", &m.vendor, &l.vendor);
        diff(&mut d, "ext_vendor", &m.ext_vendor, &l.ext_vendor);
        diff(&mut d, "gb_pages", &m.gb_pages, &l.gb_pages);
        diff(&mut d, "la57", &m.la57, &l.la57);
    }
    d
}

/// Every difference between a run on this machine and one in the lab:
/// per transport the availability and the file read; the CPUID widths;
/// the decisions, which must be equal where the CPUID features are
/// ([`cpuid_feature_differences`]) and otherwise be the policy's answer
/// for the lab's inputs ([`model_decisions`]); per phase the exits by kind
/// (`in`, `out`, MMIO read and write, `hlt`). Empty when the two agree.
pub fn differences(
    machine: (&FirmwareReport, &ExitStats),
    lab: (&FirmwareReport, &ExitStats),
) -> Vec<String> {
    let ((mr, ms), (lr, ls)) = (machine, lab);
    let mut d = Vec::new();
    let same_features = cpuid_feature_differences(mr, lr).is_empty();
    let lab_cpuid = lr.result(Transport::Cpuid);
    let transports: BTreeSet<Transport> = mr
        .results
        .keys()
        .chain(lr.results.keys())
        .copied()
        .collect();
    for t in transports {
        let name = t.as_str();
        let (Some(m), Some(l)) = (mr.results.get(&t), lr.results.get(&t)) else {
            d.push(format!("{name}: result line only on one side"));
            continue;
        };
        diff(
            &mut d,
            &format!("{name} available"),
            &m.available,
            &l.available,
        );
        diff(&mut d, &format!("{name} file"), &m.file, &l.file);
        if same_features {
            diff(
                &mut d,
                &format!("{name} decisions"),
                &m.decisions,
                &l.decisions,
            );
        } else {
            let model = lab_cpuid.and_then(|c| model_decisions(c, l));
            let what = format!("{name} decisions (model for the lab's inputs)");
            diff(&mut d, &what, &model, &l.decisions);
        }
        let widths = |r: &fw_cfg_protocol::ResultLine| {
            r.cpuid.as_ref().map(|c| (c.phys_bits, c.guest_phys_bits))
        };
        diff(
            &mut d,
            &format!("{name} cpuid widths"),
            &widths(m),
            &widths(l),
        );
    }
    let phases: BTreeSet<u32> = ms
        .per_phase
        .iter()
        .chain(ls.per_phase.iter())
        .map(|(p, _)| *p)
        .collect();
    for p in phases {
        let what = format!("phase {p:#x} exits [in, out, mmio-r, mmio-w, hlt]");
        diff(&mut d, &what, &kinds(&ms.phase(p)), &kinds(&ls.phase(p)));
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vmm::stats::{ExitKind, ExitTarget};

    #[test]
    fn add_runs_the_whole_matrix_and_qemu_where_it_can() {
        let tools = LabTools {
            vmm: "/built/fw-cfg-vmm".into(),
            firmware: "/built/firmware".into(),
            probe: None,
            abi_check: None,
        };
        let qemu = Qemu {
            path: "/usr/bin/qemu-system-x86_64".into(),
            version: (10, 0, 2),
        };
        let (_, added) = add(Lab::new(), 48, Some(&qemu), &tools).unwrap();
        assert_eq!(added.len(), 16);
        let with_qemu: Vec<String> = added
            .iter()
            .filter(|a| a.guests.qemu.is_some())
            .map(|a| a.scenario.tag())
            .collect();
        assert_eq!(
            with_qemu,
            [
                "hpb-on.hint-off.absent",
                "hpb-on.hint-off.stated",
                "hpb-on.hint-off.corrupt",
                "hpb-on.hint-off.conflicting"
            ]
        );
    }

    #[test]
    fn differences_name_what_differs() {
        let mut a = ExitStats::default();
        let d0 = Duration::ZERO;
        a.record(ExitKind::IoIn, ExitTarget::Port(0x511), 1, d0, 0x10);
        let mut b = a.clone();
        let empty = FirmwareReport::default();
        assert!(differences((&empty, &a), (&empty, &b)).is_empty());
        b.record(ExitKind::IoOut, ExitTarget::Port(0x510), 2, d0, 0x10);
        // Time and bytes are not compared.
        a.record(
            ExitKind::Hlt,
            ExitTarget::None,
            0,
            Duration::from_secs(1),
            0x11,
        );
        b.record(ExitKind::Hlt, ExitTarget::None, 9, d0, 0x11);
        let d = differences((&empty, &a), (&empty, &b));
        assert_eq!(
            d,
            [
                "phase 0x10 exits [in, out, mmio-r, mmio-w, hlt]: machine [1, 0, 0, 0, 0], \
              lab [1, 1, 0, 0, 0]"
            ]
        );
        let line = br#"{"event":"result","phase":2,"channel":"cpuid","transport":"cpuid","available":true}"#;
        let one = FirmwareReport::parse(line);
        let d = differences((&one, &a), (&empty, &a));
        assert_eq!(d, ["cpuid: result line only on one side"]);
    }
}
