// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! VM-exit counters: per kind, per port or MMIO address, per measurement
//! phase, and the time spent handling them in the VMM.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// Counters for one set of exits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExitCounts {
    /// `in` instructions.
    pub io_in: u64,
    /// `out` instructions.
    pub io_out: u64,
    /// MMIO reads.
    pub mmio_read: u64,
    /// MMIO writes.
    pub mmio_write: u64,
    /// `hlt`.
    pub hlt: u64,
    /// Everything else (shutdown, interrupted runs, ...).
    pub other: u64,
    /// Bytes moved by port I/O and MMIO exits.
    pub bytes: u64,
    /// Time the VMM spent handling these exits, in nanoseconds.
    pub handling_ns: u64,
}

impl ExitCounts {
    /// All exits.
    pub fn total(&self) -> u64 {
        self.io_in + self.io_out + self.mmio_read + self.mmio_write + self.hlt + self.other
    }

    /// Port I/O exits.
    pub fn pio(&self) -> u64 {
        self.io_in + self.io_out
    }

    /// MMIO exits.
    pub fn mmio(&self) -> u64 {
        self.mmio_read + self.mmio_write
    }

    fn add(&mut self, kind: ExitKind, bytes: usize, handling: Duration) {
        match kind {
            ExitKind::IoIn => self.io_in += 1,
            ExitKind::IoOut => self.io_out += 1,
            ExitKind::MmioRead => self.mmio_read += 1,
            ExitKind::MmioWrite => self.mmio_write += 1,
            ExitKind::Hlt => self.hlt += 1,
            ExitKind::Other => self.other += 1,
        }
        self.bytes += bytes as u64;
        self.handling_ns += u64::try_from(handling.as_nanos()).unwrap_or(u64::MAX);
    }
}

/// Kinds of VM exits the counters distinguish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// `in`.
    IoIn,
    /// `out`.
    IoOut,
    /// MMIO read.
    MmioRead,
    /// MMIO write.
    MmioWrite,
    /// `hlt`.
    Hlt,
    /// Anything else.
    Other,
}

/// Where an exit went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum ExitTarget {
    /// An I/O port.
    Port(u16),
    /// A guest-physical MMIO address.
    Mmio(u64),
    /// No address (halt, shutdown, ...).
    None,
}

/// All counters of one run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExitStats {
    /// Every exit of the run.
    pub all: ExitCounts,
    /// Per I/O port.
    pub per_port: BTreeMap<u16, ExitCounts>,
    /// Per MMIO address.
    pub per_mmio: BTreeMap<u64, ExitCounts>,
    /// Per measurement phase (see [`super::layout::MARK_PORT`]).
    pub per_phase: BTreeMap<u32, ExitCounts>,
    /// Wall-clock time of the whole run, in nanoseconds.
    pub run_ns: u64,
}

impl ExitStats {
    /// Records one exit.
    pub fn record(
        &mut self,
        kind: ExitKind,
        target: ExitTarget,
        bytes: usize,
        handling: Duration,
        phase: u32,
    ) {
        self.all.add(kind, bytes, handling);
        match target {
            ExitTarget::Port(p) => self
                .per_port
                .entry(p)
                .or_default()
                .add(kind, bytes, handling),
            ExitTarget::Mmio(a) => self
                .per_mmio
                .entry(a)
                .or_default()
                .add(kind, bytes, handling),
            ExitTarget::None => {}
        }
        if phase != 0 {
            self.per_phase
                .entry(phase)
                .or_default()
                .add(kind, bytes, handling);
        }
    }

    /// Counters of one phase (zero when the phase had no exits).
    pub fn phase(&self, phase: u32) -> ExitCounts {
        self.per_phase.get(&phase).cloned().unwrap_or_default()
    }
}

impl fmt::Display for ExitStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = &self.all;
        writeln!(
            f,
            "exits: {} total (io-in {}, io-out {}, mmio-read {}, mmio-write {}, hlt {}, other {}); \
             handling {:.3} ms of {:.3} ms",
            a.total(),
            a.io_in,
            a.io_out,
            a.mmio_read,
            a.mmio_write,
            a.hlt,
            a.other,
            a.handling_ns as f64 / 1e6,
            self.run_ns as f64 / 1e6
        )?;
        for (port, c) in &self.per_port {
            writeln!(
                f,
                "  port {port:#06x}: in {:>7} out {:>7} bytes {:>9}",
                c.io_in, c.io_out, c.bytes
            )?;
        }
        for (addr, c) in &self.per_mmio {
            writeln!(
                f,
                "  mmio {addr:#012x}: read {:>7} write {:>7} bytes {:>9}",
                c.mmio_read, c.mmio_write, c.bytes
            )?;
        }
        for (phase, c) in &self.per_phase {
            writeln!(
                f,
                "  phase {phase}: {} exits (pio {}, mmio {}), handling {:.3} ms",
                c.total(),
                c.pio(),
                c.mmio(),
                c.handling_ns as f64 / 1e6
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_kind_target_and_phase() {
        let mut s = ExitStats::default();
        let d = Duration::from_micros(2);
        s.record(ExitKind::IoIn, ExitTarget::Port(0x511), 1, d, 3);
        s.record(ExitKind::IoOut, ExitTarget::Port(0x510), 2, d, 3);
        s.record(ExitKind::MmioRead, ExitTarget::Mmio(0xd000_0000), 8, d, 5);
        s.record(ExitKind::Hlt, ExitTarget::None, 0, d, 0);
        assert_eq!(s.all.total(), 4);
        assert_eq!(s.all.bytes, 11);
        assert_eq!(s.per_port[&0x511].io_in, 1);
        assert_eq!(s.per_mmio[&0xd000_0000].mmio_read, 1);
        assert_eq!(s.phase(3).pio(), 2);
        assert_eq!(s.phase(5).mmio(), 1);
        assert_eq!(s.phase(9).total(), 0);
        assert_eq!(s.all.handling_ns, 8000);
        assert!(s.to_string().contains("port 0x0511"));
    }
}
