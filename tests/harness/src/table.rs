// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The comparison table.
//!
//! One row per configuration: what each channel said, each policy mode's
//! decision (width and who decided; `!` marks a decision taken with
//! conflicts listed), whether every fw_cfg transport agreed, then VM exits
//! and guest kilocycles per channel/transport (`cpuid`, `pio`, `pio-string`
//! = `rep insb`, `dma`, `mmio`, `mmio-dma`).

use std::fmt::Write;

use fw_cfg_protocol::{DecidedBy, DecisionLine, FileStateKind, Phase, ResultLine, Transport};

use crate::matrix::{Engine, Outcome};

/// Short names for who decided.
pub(crate) fn by(decided_by: DecidedBy) -> &'static str {
    match decided_by {
        DecidedBy::CpuidHint => "hint",
        DecidedBy::FwCfgFile => "file",
        DecidedBy::BothChannels => "both",
        DecidedBy::Heuristic => "heur",
        DecidedBy::ConservativeDefault => "dflt",
    }
}

fn decision(d: &DecisionLine) -> String {
    format!(
        "{} {}{}",
        d.phys_bits,
        by(d.decided_by),
        if d.conflicts.is_empty() { "" } else { "!" }
    )
}

fn file_said(r: Option<&ResultLine>) -> String {
    let Some(f) = r.and_then(|r| r.file.as_ref()) else {
        return "-".into();
    };
    match f.state {
        FileStateKind::Present => format!(
            "{} {}/{}",
            if f.valid == Some(true) {
                "valid"
            } else {
                "invalid"
            },
            f.phys_bits.unwrap_or(0),
            f.guest_phys_bits.unwrap_or(0)
        ),
        FileStateKind::Corrupt => {
            format!("corrupt ({})", f.error.map_or("?", |e| e.as_str()))
        }
        other => other.to_string(),
    }
}

/// The columns of the cost part, in order.
pub const COST_COLUMNS: [Transport; 6] = Transport::ALL;

/// Renders the table.
pub fn render(outcomes: &[Outcome]) -> String {
    let mut rows: Vec<Vec<String>> = vec![
        [
            "configuration",
            "adv",
            "cpuid hint",
            "cpuid bits",
            "file",
            "strict",
            "heuristic",
            "combined",
            "agree",
            "exits cpuid/pio/rep/dma/mmio/mdma",
            "kcycles cpuid/pio/rep/dma/mmio/mdma",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    ];
    rows.extend(outcomes.iter().map(row));
    align(&rows)
}

/// The exits and kilocycles of each cost column, `-` where the transport
/// did not run.
fn costs(o: &Outcome) -> (Vec<String>, Vec<String>) {
    let mut exits = Vec::new();
    let mut cycles = Vec::new();
    for t in COST_COLUMNS {
        match o.report.results.get(&t).filter(|l| l.available) {
            Some(line) => {
                exits.push(o.stats.phase(Phase::Lookup(t).id()).total().to_string());
                cycles.push(
                    line.cycles
                        .map(|c| format!("{}", c / 1000))
                        .unwrap_or_else(|| "-".into()),
                );
            }
            None => {
                exits.push("-".into());
                cycles.push("-".into());
            }
        }
    }
    (exits, cycles)
}

/// One configuration's row.
fn row(o: &Outcome) -> Vec<String> {
    let r = &o.report.results;
    let cpuid = r.get(&Transport::Cpuid).and_then(|c| c.cpuid.as_ref());
    let pio = r.get(&Transport::Pio);
    let d = pio.and_then(|p| p.decisions.as_ref());
    let agree = Transport::FW_CFG
        .iter()
        .filter_map(|t| r.get(t))
        .filter(|l| l.available)
        .all(|l| l.decisions.as_ref() == d);
    let (exits, cycles) = costs(o);
    vec![
        o.scenario.label(),
        format!(
            "{}{}",
            o.advertised_phys_bits,
            if o.config_valid { "" } else { "*" }
        ),
        cpuid.map_or_else(|| "-".into(), |c| c.hint.to_string()),
        cpuid
            .map(|c| format!("{}/{}", c.phys_bits, c.guest_phys_bits))
            .unwrap_or_else(|| "-".into()),
        file_said(pio),
        d.map(|d| decision(&d.strict)).unwrap_or_default(),
        d.map(|d| decision(&d.heuristic)).unwrap_or_default(),
        d.map(|d| decision(&d.combined)).unwrap_or_default(),
        if agree { "yes" } else { "NO" }.into(),
        exits.join("/"),
        cycles.join("/"),
    ]
}

/// The rows in left-aligned columns, a rule under the first.
fn align(rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (n, row) in rows.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
        if n == 0 {
            let total: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
            let _ = writeln!(out, "{}", "-".repeat(total));
        }
    }
    out
}

/// The legend printed under the table.
pub fn legend(engine: Engine, host_phys_bits: u8) -> String {
    let mut s = format!(
        "host MAXPHYADDR {host_phys_bits}; adv = width advertised in CPUID (* = not backed by the host)\n\
         hpb = host-phys-bits (off: QEMU's legacy 40 bits); file: stated = PhysBitsConfig's own file \
         (valid with hpb=on, invalid with hpb=off), corrupt = malformed bytes, conflicting = \"valid\" with a width CPUID does not show\n\
         decisions: width and who decided (hint, file, both, heur = OVMF/SeaBIOS heuristic, \
         dflt = 36-bit default); ! = conflicts were reported\n\
         agree = every fw_cfg transport read the same file and decided the same\n"
    );
    match engine {
        Engine::Kvm => s.push_str(
            "exits = VM exits the mini VMM handled in that phase (CPUID exits stay in the kernel); \
             kcycles = guest rdtsc deltas / 1000\n",
        ),
        Engine::InProcess => s.push_str(
            "exits = device accesses through the IoManager (one per VM exit a guest would take); \
             no guest cycles in process\n",
        ),
    }
    s
}
