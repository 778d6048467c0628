// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! VM-exit counters: per kind, per port or MMIO address, per measurement
//! phase, and the time spent handling them in the VMM.
//!
//! The guest chooses the ports, addresses and phases it touches, so each
//! per-key table is a [`BoundedCounts`]: at most [`MAX_KEYS`] distinct keys,
//! the exits of every further key counted together in its `other` bucket.
//! Whatever the guest does, the statistics stay a few hundred entries.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Index;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Most distinct keys one table of [`ExitStats`] keeps.
pub const MAX_KEYS: usize = 256;

/// Counters for one set of exits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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

    /// Adds every counter of `other` to this one.
    pub fn merge(&mut self, other: &ExitCounts) {
        self.io_in += other.io_in;
        self.io_out += other.io_out;
        self.mmio_read += other.mmio_read;
        self.mmio_write += other.mmio_write;
        self.hlt += other.hlt;
        self.other += other.other;
        self.bytes += other.bytes;
        self.handling_ns += other.handling_ns;
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExitTarget {
    /// An I/O port.
    Port(u16),
    /// A guest-physical MMIO address.
    Mmio(u64),
    /// No address (halt, shutdown, ...).
    None,
}

/// Counters per key, for at most [`MAX_KEYS`] distinct keys; exits of
/// keys beyond those are counted in [`BoundedCounts::other`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundedCounts<K: Ord> {
    keys: BTreeMap<K, ExitCounts>,
    other: ExitCounts,
}

impl<K: Ord> Default for BoundedCounts<K> {
    fn default() -> Self {
        BoundedCounts {
            keys: BTreeMap::new(),
            other: ExitCounts::default(),
        }
    }
}

impl<K: Ord + Copy> BoundedCounts<K> {
    /// The counters of `key`: its own entry while there is room, else
    /// `other`.
    fn slot(&mut self, key: K) -> &mut ExitCounts {
        if self.keys.contains_key(&key) || self.keys.len() < MAX_KEYS {
            self.keys.entry(key).or_default()
        } else {
            &mut self.other
        }
    }

    fn add(&mut self, key: K, kind: ExitKind, bytes: usize, handling: Duration) {
        self.slot(key).add(kind, bytes, handling);
    }

    /// Adds the counters of `other` (another vCPU's), key by key, with the
    /// same cap: a key that finds no room here goes to `other`.
    pub fn merge(&mut self, other: &BoundedCounts<K>) {
        for (key, counts) in &other.keys {
            self.slot(*key).merge(counts);
        }
        self.other.merge(&other.other);
    }

    /// The counters of `key`, if it has its own entry.
    pub fn get(&self, key: &K) -> Option<&ExitCounts> {
        self.keys.get(key)
    }

    /// The keys with their own entry and their counters, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &ExitCounts)> {
        self.keys.iter()
    }

    /// Number of keys with their own entry (at most [`MAX_KEYS`]).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key has an entry.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The exits of every key beyond the first [`MAX_KEYS`].
    pub fn other(&self) -> &ExitCounts {
        &self.other
    }
}

impl<K: Ord> Index<&K> for BoundedCounts<K> {
    type Output = ExitCounts;

    fn index(&self, key: &K) -> &ExitCounts {
        &self.keys[key]
    }
}

/// All counters of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStats {
    /// Every exit of the run.
    pub all: ExitCounts,
    /// Per I/O port.
    pub per_port: BoundedCounts<u16>,
    /// Per MMIO address.
    pub per_mmio: BoundedCounts<u64>,
    /// Per phase: the label an [`ExitHook`](crate::hook::ExitHook) gave the
    /// exit (phase 0, "none", is not recorded).
    pub per_phase: BoundedCounts<u32>,
    /// Wall-clock time of the whole run, in nanoseconds.
    pub run_ns: u64,
}

impl ExitStats {
    /// Adds another vCPU's counters of the same run; the run's time is the
    /// longer of the two.
    pub fn merge(&mut self, other: &ExitStats) {
        self.all.merge(&other.all);
        self.per_port.merge(&other.per_port);
        self.per_mmio.merge(&other.per_mmio);
        self.per_phase.merge(&other.per_phase);
        self.run_ns = self.run_ns.max(other.run_ns);
    }

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
            ExitTarget::Port(p) => self.per_port.add(p, kind, bytes, handling),
            ExitTarget::Mmio(a) => self.per_mmio.add(a, kind, bytes, handling),
            ExitTarget::None => {}
        }
        if phase != 0 {
            self.per_phase.add(phase, kind, bytes, handling);
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
        for (port, c) in self.per_port.iter() {
            writeln!(
                f,
                "  port {port:#06x}: in {:>7} out {:>7} bytes {:>9}",
                c.io_in, c.io_out, c.bytes
            )?;
        }
        for (addr, c) in self.per_mmio.iter() {
            writeln!(
                f,
                "  mmio {addr:#012x}: read {:>7} write {:>7} bytes {:>9}",
                c.mmio_read, c.mmio_write, c.bytes
            )?;
        }
        for (phase, c) in self.per_phase.iter() {
            writeln!(
                f,
                "  phase {phase}: {} exits (pio {}, mmio {}), handling {:.3} ms",
                c.total(),
                c.pio(),
                c.mmio(),
                c.handling_ns as f64 / 1e6
            )?;
        }
        for (what, table) in [
            ("ports", self.per_port.other()),
            ("mmio addresses", self.per_mmio.other()),
            ("phases", self.per_phase.other()),
        ] {
            if table.total() > 0 {
                writeln!(
                    f,
                    "  other {what} (beyond {MAX_KEYS}): {} exits, bytes {}",
                    table.total(),
                    table.bytes
                )?;
            }
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

    #[test]
    fn merging_adds_counts_and_keeps_the_cap() {
        let d = Duration::from_micros(1);
        let mut a = ExitStats::default();
        let mut b = ExitStats::default();
        for i in 0..MAX_KEYS as u64 {
            a.record(ExitKind::MmioRead, ExitTarget::Mmio(i), 4, d, 0);
        }
        b.record(ExitKind::MmioRead, ExitTarget::Mmio(0), 4, d, 0);
        b.record(ExitKind::MmioWrite, ExitTarget::Mmio(1 << 40), 8, d, 2);
        b.record(ExitKind::IoIn, ExitTarget::Port(0x511), 1, d, 2);
        a.run_ns = 5;
        b.run_ns = 9;
        a.merge(&b);
        assert_eq!(a.all.total(), MAX_KEYS as u64 + 3);
        assert_eq!(a.all.bytes, 4 * MAX_KEYS as u64 + 13);
        assert_eq!(a.per_mmio[&0].mmio_read, 2);
        // No room for a new key: counted in `other`.
        assert_eq!(a.per_mmio.len(), MAX_KEYS);
        assert_eq!(a.per_mmio.other().mmio_write, 1);
        assert_eq!(a.per_port[&0x511].io_in, 1);
        assert_eq!(a.phase(2).total(), 2);
        assert_eq!(a.run_ns, 9);
    }

    #[test]
    fn a_million_guest_chosen_keys_stay_within_the_cap() {
        let mut s = ExitStats::default();
        let d = Duration::ZERO;
        for i in 0..1_000_000u64 {
            s.record(
                ExitKind::MmioWrite,
                ExitTarget::Mmio(0x1_0000_0000 + 8 * i),
                8,
                d,
                u32::try_from(i % 100_000).unwrap() + 1,
            );
            s.record(
                ExitKind::IoOut,
                ExitTarget::Port(u16::try_from(i % 65_536).unwrap()),
                1,
                d,
                0,
            );
        }
        assert_eq!(s.per_mmio.len(), MAX_KEYS);
        assert_eq!(s.per_port.len(), MAX_KEYS);
        assert_eq!(s.per_phase.len(), MAX_KEYS);
        // Nothing is lost: what has no entry of its own is in `other`.
        let mmio_kept: u64 = s.per_mmio.iter().map(|(_, c)| c.total()).sum();
        assert_eq!(mmio_kept + s.per_mmio.other().total(), 1_000_000);
        assert_eq!(s.per_mmio.other().mmio_write, 1_000_000 - MAX_KEYS as u64);
        let phases_kept: u64 = s.per_phase.iter().map(|(_, c)| c.total()).sum();
        assert_eq!(phases_kept + s.per_phase.other().total(), 1_000_000);
        // The first keys keep counting after the cap is reached.
        assert_eq!(s.per_mmio[&0x1_0000_0000].mmio_write, 1);
        assert_eq!(s.per_port[&0].io_out, 1_000_000 / 65_536 + 1);
        assert_eq!(s.all.total(), 2_000_000);
        assert!(s.to_string().contains("other mmio addresses"));
    }
}
