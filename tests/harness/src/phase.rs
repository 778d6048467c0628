// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The harness's measurement phases: the test firmware writes a phase id
//! (32 bits) to [`MARK_PORT`] to start a phase (0: none), and the mini VMM
//! counts the following exits for that phase too. The marker write itself
//! is not counted. Under QEMU the port is unassigned and writes are
//! ignored.
//!
//! The VMM knows no such port: [`PhaseMarker`] is an exit hook the harness
//! installs ([`run_vm`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use serde::Serialize;

use crate::vmm::hook::{ExitHook, HookAction};
use crate::vmm::stats::{BoundedCounts, ExitCounts, ExitStats, ExitTarget};
use crate::vmm::{Error, RunOutcome, Vm, VmConfig};

/// The phase-marker port.
pub const MARK_PORT: u16 = 0x600;

/// The exit hook behind [`MARK_PORT`]: takes the marker writes off the bus
/// and names the current phase.
#[derive(Debug, Default, Clone)]
pub struct PhaseMarker {
    phase: Arc<AtomicU32>,
}

impl PhaseMarker {
    /// The phase the guest last started (0: none).
    pub fn current(&self) -> u32 {
        self.phase.load(Ordering::Relaxed)
    }
}

impl ExitHook for PhaseMarker {
    fn on_write(&mut self, target: ExitTarget, data: &[u8]) -> HookAction {
        if target != ExitTarget::Port(MARK_PORT) {
            return HookAction::Dispatch;
        }
        let mut v = [0u8; 4];
        let n = data.len().min(4);
        v[..n].copy_from_slice(&data[..n]);
        self.phase.store(u32::from_le_bytes(v), Ordering::Relaxed);
        HookAction::Consume
    }

    fn phase(&self) -> u32 {
        self.current()
    }
}

/// Creates the VM for `config`, installs the [`PhaseMarker`], and runs it
/// until it stops or `config.timeout` expires.
pub fn run_vm(config: &VmConfig) -> Result<RunOutcome, Error> {
    let mut vm = Vm::new(config)?;
    vm.set_exit_hook(Box::new(PhaseMarker::default()));
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

/// One table of [`ExitStats`] as JSON: the keys, then the overflow bucket.
#[derive(Serialize)]
struct TableJson<K: Ord> {
    keys: std::collections::BTreeMap<K, CountsJson>,
    other: CountsJson,
}

impl<K: Ord + Copy> From<&BoundedCounts<K>> for TableJson<K> {
    fn from(t: &BoundedCounts<K>) -> Self {
        TableJson {
            keys: t.iter().map(|(k, c)| (*k, c.into())).collect(),
            other: t.other().into(),
        }
    }
}

/// [`ExitStats`] as JSON (the VMM's statistics have no serde of their own).
#[derive(Serialize)]
struct StatsJson {
    all: CountsJson,
    per_port: TableJson<u16>,
    per_mmio: TableJson<u64>,
    per_phase: TableJson<u32>,
    run_ns: u64,
}

/// Serializes [`ExitStats`] (for `#[serde(serialize_with)]`).
pub fn serialize_stats<S: serde::Serializer>(stats: &ExitStats, s: S) -> Result<S::Ok, S::Error> {
    StatsJson {
        all: (&stats.all).into(),
        per_port: (&stats.per_port).into(),
        per_mmio: (&stats.per_mmio).into(),
        per_phase: (&stats.per_phase).into(),
        run_ns: stats.run_ns,
    }
    .serialize(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_takes_its_port_and_names_the_phase() {
        let mut m = PhaseMarker::default();
        assert_eq!(m.phase(), 0);
        assert_eq!(
            m.on_write(ExitTarget::Port(0x510), &[1, 0]),
            HookAction::Dispatch
        );
        assert_eq!(
            m.on_write(ExitTarget::Port(MARK_PORT), &[0x10, 1, 0, 0]),
            HookAction::Consume
        );
        assert_eq!(m.phase(), 0x110);
        assert_eq!(
            m.on_write(ExitTarget::Mmio(u64::from(MARK_PORT)), &[1]),
            HookAction::Dispatch
        );
        assert_eq!(m.current(), 0x110);
    }

    #[test]
    fn stats_serialize_with_their_overflow_buckets() {
        let mut s = ExitStats::default();
        let d = std::time::Duration::ZERO;
        s.record(
            crate::vmm::stats::ExitKind::IoIn,
            ExitTarget::Port(0x511),
            1,
            d,
            3,
        );
        let mut out = Vec::new();
        serialize_stats(&s, &mut serde_json::Serializer::new(&mut out)).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["per_port"]["keys"]["1297"]["io_in"], 1);
        assert_eq!(v["per_phase"]["keys"]["3"]["io_in"], 1);
        assert_eq!(v["per_mmio"]["other"]["mmio_read"], 0);
        assert_eq!(v["all"]["bytes"], 1);
    }
}
