// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The comparison tables, each within 100 columns.
//!
//! The decision table has one row per configuration: what each channel
//! said, each policy mode's decision (width and who decided; `!` marks a
//! decision taken with conflicts listed; `^` a width above the one the host
//! backs, i.e. unsafe; `v` one below it, i.e. wasteful), and whether every
//! fw_cfg transport agreed. The exits and kilocycles tables give the cost
//! per channel/transport (`cpuid`, `pio`, `rep` = `rep insb`, `dma`,
//! `mmio`, `mdma` = DMA through the MMIO registers).

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

/// How a decided width compares with the right answer (`right`: the
/// width the host backs, capped at the guest's CPUID width): `^` above it
/// (unsafe), `v` below it (wasteful), nothing when equal.
pub fn safety_mark(width: u8, right: u8) -> &'static str {
    match width.cmp(&right) {
        std::cmp::Ordering::Greater => "^",
        std::cmp::Ordering::Less => "v",
        std::cmp::Ordering::Equal => "",
    }
}

fn decision(d: &DecisionLine, right: Option<u8>) -> String {
    format!(
        "{} {}{}{}",
        d.phys_bits,
        by(d.decided_by),
        right.map_or("", |r| safety_mark(d.phys_bits, r)),
        if d.conflicts.is_empty() { "" } else { "!" }
    )
}

fn file_said(r: Option<&ResultLine>) -> String {
    let Some(f) = r.and_then(|r| r.file.as_ref()) else {
        return "-".into();
    };
    match f.state {
        FileStateKind::Present => format!(
            "{} {}/{}/{}",
            if f.valid == Some(true) { "ok" } else { "no" },
            f.phys_bits.unwrap_or(0),
            f.guest_phys_bits.unwrap_or(0),
            f.backed_bits.unwrap_or(0)
        ),
        other => other.to_string(),
    }
}

/// The columns of the cost tables, in order.
pub const COST_COLUMNS: [Transport; 6] = Transport::ALL;

/// The three columns naming a configuration.
fn key(o: &Outcome) -> Vec<String> {
    let on = |b: bool| if b { "on" } else { "off" }.to_string();
    vec![
        on(o.scenario.host_phys_bits),
        on(o.scenario.hint),
        o.scenario.file.as_str().to_string(),
    ]
}

fn header(rest: &[&str]) -> Vec<String> {
    ["hpb", "hint", "file"]
        .iter()
        .chain(rest)
        .map(|s| s.to_string())
        .collect()
}

/// Renders the decision table, then the exits and kilocycles tables.
pub fn render(outcomes: &[Outcome]) -> String {
    let mut rows = vec![header(&[
        "adv",
        "cpuid",
        "file said",
        "strict",
        "heuristic",
        "combined",
        "agree",
    ])];
    rows.extend(outcomes.iter().map(row));
    let mut out = align(&rows);
    let names = ["cpuid", "pio", "rep", "dma", "mmio", "mdma"];
    for (title, pick) in [("exits", 0), ("kcycles", 1)] {
        let mut rows = vec![header(&names)];
        rows.extend(outcomes.iter().map(|o| {
            let c = costs(o);
            let mut r = key(o);
            r.extend(if pick == 0 { c.0 } else { c.1 });
            r
        }));
        let _ = writeln!(out, "\n{title} per transport:");
        out.push_str(&align(&rows));
    }
    out
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

/// The right answer for a configuration: the width the host backs, capped
/// at the guest's effective CPUID width.
pub fn right_width(o: &Outcome) -> Option<u8> {
    let c = o.report.results.get(&Transport::Cpuid)?.cpuid.as_ref()?;
    let w = fw_cfg_device::abi::effective_width(c.phys_bits, c.guest_phys_bits);
    Some(w.min(o.backed_bits))
}

/// One configuration's decision row.
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
    let right = right_width(o);
    let hint = |h: &str| match h {
        "set" => "set",
        "clear" => "clr",
        _ => "-",
    };
    let mut v = key(o);
    v.extend([
        format!(
            "{}{}",
            o.advertised_phys_bits,
            if o.config_valid { "" } else { "*" }
        ),
        cpuid
            .map(|c| {
                let h = c.hint.to_string();
                format!("{} {}/{}", hint(&h), c.phys_bits, c.guest_phys_bits)
            })
            .unwrap_or_else(|| "-".into()),
        file_said(pio),
        d.map(|d| decision(&d.strict, right)).unwrap_or_default(),
        d.map(|d| decision(&d.heuristic, right)).unwrap_or_default(),
        d.map(|d| decision(&d.combined, right)).unwrap_or_default(),
        if agree { "yes" } else { "NO" }.into(),
    ]);
    v
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

/// The legend printed under the tables (lines within 100 columns).
pub fn legend(engine: Engine, host_phys_bits: u8) -> String {
    let mut s = format!(
        "host MAXPHYADDR {host_phys_bits}; hpb = host-phys-bits (off: QEMU's legacy 40 bits)\n\
         adv = width advertised in CPUID (* = not every address below 2^W is backed)\n\
         cpuid = hint (set, clr, -: no KVM leaf) and EAX[7:0]/EAX[23:16]\n\
         file: stated = PhysBitsConfig's own file, corrupt = malformed bytes,\n\
         \x20 conflicting = \"valid\" with a width CPUID does not show\n\
         file said: ok|no phys/guest/backed (version 2 byte 4; 0 = not stated)\n\
         decisions: width and who decided (hint, file, both, heur = OVMF heuristic,\n\
         \x20 dflt = fallback: 36 or the memory map's top); ^ = above the width the host\n\
         \x20 backs (unsafe), v = below it (wasteful); ! = conflicts were reported\n\
         agree = every fw_cfg transport read the same file and decided the same\n"
    );
    match engine {
        Engine::Kvm => s.push_str(
            "exits = VM exits the mini VMM handled in that phase (CPUID exits stay in\n\
             \x20 the kernel); kcycles = guest rdtsc deltas / 1000\n",
        ),
        Engine::InProcess => s.push_str(
            "exits = device accesses through the IoManager (one per VM exit a guest\n\
             \x20 would take); no guest cycles in process\n",
        ),
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_and_legend_width() {
        assert_eq!(safety_mark(48, 40), "^");
        assert_eq!(safety_mark(36, 40), "v");
        assert_eq!(safety_mark(40, 40), "");
        for engine in [Engine::Kvm, Engine::InProcess] {
            for line in legend(engine, 48).lines() {
                assert!(line.len() <= 100, "{line}");
            }
        }
    }
}
