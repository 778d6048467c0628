// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The harness's measurement phases: the test firmware writes a phase id
//! (32 bits) to [`MARK_PORT`] to start a phase (0: none), and the mini VMM
//! counts the following exits for that phase too. The marker write itself
//! is not counted. Under QEMU the port is unassigned and writes are
//! ignored.
//!
//! The VMM's run loop knows no such port: the harness installs the VMM's
//! [`PhaseMarker`] exit hook on it ([`run_vm`]).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::vmm::hook::PhaseMarker;
use crate::vmm::stats::{BoundedCounts, ExitCounts, ExitStats};
use crate::vmm::{Error, RunOutcome, Vm, VmConfig};

/// The phase-marker port.
pub const MARK_PORT: u16 = 0x600;

/// Creates the VM for `config`, installs a [`PhaseMarker`] on
/// [`MARK_PORT`], and runs it until it stops or `config.timeout` expires.
pub fn run_vm(config: &VmConfig) -> Result<RunOutcome, Error> {
    let mut vm = Vm::new(config)?;
    vm.set_exit_hook(Box::new(PhaseMarker::new(MARK_PORT)));
    vm.run(config.timeout)
}

/// [`ExitCounts`] as JSON.
#[derive(Serialize)]
struct CountsJson {
    io_in: u64,
    io_out: u64,
    mmio_read: u64,
    mmio_write: u64,
    hlt: u64,
    other: u64,
    bytes: u64,
    handling_ns: u64,
}

impl From<&ExitCounts> for CountsJson {
    fn from(c: &ExitCounts) -> Self {
        CountsJson {
            io_in: c.io_in,
            io_out: c.io_out,
            mmio_read: c.mmio_read,
            mmio_write: c.mmio_write,
            hlt: c.hlt,
            other: c.other,
            bytes: c.bytes,
            handling_ns: c.handling_ns,
        }
    }
}

/// The keys of one table of [`ExitStats`] and their counters.
fn table<K: Ord + Copy>(t: &BoundedCounts<K>) -> BTreeMap<K, CountsJson> {
    t.iter().map(|(k, c)| (*k, c.into())).collect()
}

/// [`ExitStats`] as JSON (the VMM's statistics have no serde of their
/// own): the tables as before the cap, each table's overflow bucket beside
/// it.
#[derive(Serialize)]
struct StatsJson {
    all: CountsJson,
    per_port: BTreeMap<u16, CountsJson>,
    per_mmio: BTreeMap<u64, CountsJson>,
    per_phase: BTreeMap<u32, CountsJson>,
    other_ports: CountsJson,
    other_mmio: CountsJson,
    other_phases: CountsJson,
    run_ns: u64,
}

/// Serializes [`ExitStats`] (for `#[serde(serialize_with)]`).
pub fn serialize_stats<S: serde::Serializer>(stats: &ExitStats, s: S) -> Result<S::Ok, S::Error> {
    StatsJson {
        all: (&stats.all).into(),
        per_port: table(&stats.per_port),
        per_mmio: table(&stats.per_mmio),
        per_phase: table(&stats.per_phase),
        other_ports: stats.per_port.other().into(),
        other_mmio: stats.per_mmio.other().into(),
        other_phases: stats.per_phase.other().into(),
        run_ns: stats.run_ns,
    }
    .serialize(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_serialize_as_before_with_the_overflow_buckets() {
        let mut s = ExitStats::default();
        let d = std::time::Duration::ZERO;
        s.record(
            crate::vmm::stats::ExitKind::IoIn,
            crate::vmm::stats::ExitTarget::Port(0x511),
            1,
            d,
            3,
        );
        let mut out = Vec::new();
        serialize_stats(&s, &mut serde_json::Serializer::new(&mut out)).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["per_port"]["1297"]["io_in"], 1);
        assert_eq!(v["per_phase"]["3"]["io_in"], 1);
        assert_eq!(v["other_mmio"]["mmio_read"], 0);
        assert_eq!(v["all"]["bytes"], 1);
    }
}
