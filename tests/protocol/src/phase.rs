// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Transports and measurement phases.
//!
//! Every measurement of the firmware runs in a *phase*: it writes the
//! phase id to [`crate::MARK_PORT`] before and 0 after, so a VMM can count
//! the exits in between. The ids are fixed here, once:
//!
//! | phase | id |
//! |---|---|
//! | [`Phase::Idle`] | 0 |
//! | [`Phase::Baseline`] | 1 |
//! | [`Phase::Lookup`] of transport `t` | `2 + t.index()` (CPUID 2, `pio` 3 … `mmio-dma` 7) |
//! | [`Phase::Bulk`] of transport `t` | `9 + t.index()` (`pio` 10 … `mmio-dma` 14) |
//! | [`Phase::Bench`] `n` | [`BENCH_FIRST_PHASE`] ` + n` |

use serde::{Serialize, Serializer};

/// The id of the first benchmark phase.
pub const BENCH_FIRST_PHASE: u32 = 0x100;

const LOOKUP_BASE: u32 = 2;
const BULK_BASE: u32 = 9;

/// How a channel was read: CPUID, or one of the fw_cfg transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[cfg_attr(feature = "host", derive(serde::Deserialize))]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// The CPUID instruction (the CPUID channel).
    Cpuid,
    /// Port I/O, one `in` per byte.
    Pio,
    /// Port I/O with `rep insb`.
    PioString,
    /// DMA kicked through port 0x514.
    Dma,
    /// The MMIO data register.
    Mmio,
    /// DMA kicked through the MMIO DMA register.
    MmioDma,
}

impl Transport {
    /// Every transport, CPUID first, in phase order.
    pub const ALL: [Transport; 6] = [
        Transport::Cpuid,
        Transport::Pio,
        Transport::PioString,
        Transport::Dma,
        Transport::Mmio,
        Transport::MmioDma,
    ];

    /// The fw_cfg transports, in phase order.
    pub const FW_CFG: [Transport; 5] = [
        Transport::Pio,
        Transport::PioString,
        Transport::Dma,
        Transport::Mmio,
        Transport::MmioDma,
    ];

    /// The fw_cfg transports benchmark mode measures (`rep insb` is
    /// measured by the bulk reads, not there).
    pub const BENCH: [Transport; 4] = [
        Transport::Pio,
        Transport::Dma,
        Transport::Mmio,
        Transport::MmioDma,
    ];

    /// Position in [`Transport::ALL`].
    pub const fn index(self) -> u32 {
        self as u32
    }

    /// The printed name (`cpuid`, `pio`, `pio-string`, `dma`, `mmio`,
    /// `mmio-dma`), as serialized.
    pub const fn as_str(self) -> &'static str {
        match self {
            Transport::Cpuid => "cpuid",
            Transport::Pio => "pio",
            Transport::PioString => "pio-string",
            Transport::Dma => "dma",
            Transport::Mmio => "mmio",
            Transport::MmioDma => "mmio-dma",
        }
    }

    /// The transport named `name` ([`Transport::as_str`]).
    pub fn from_name(name: &str) -> Option<Transport> {
        Transport::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The channel this transport reads.
    pub const fn channel(self) -> Channel {
        match self {
            Transport::Cpuid => Channel::Cpuid,
            _ => Channel::FwCfg,
        }
    }

    /// Whether the transport needs the fw_cfg MMIO window.
    pub const fn needs_mmio(self) -> bool {
        matches!(self, Transport::Mmio | Transport::MmioDma)
    }

    /// Whether transfers go through DMA.
    pub const fn is_dma(self) -> bool {
        matches!(self, Transport::Dma | Transport::MmioDma)
    }
}

/// The two channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "host", derive(serde::Deserialize))]
pub enum Channel {
    /// The CPUID hint.
    #[serde(rename = "cpuid")]
    Cpuid,
    /// The fw_cfg file `etc/phys-bits-valid`.
    #[serde(rename = "fw_cfg")]
    FwCfg,
}

/// A measurement phase (see the module documentation for the ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Between measurements.
    Idle,
    /// The null-exit baseline.
    Baseline,
    /// Reading the channel through a transport (lookup, read, decide).
    Lookup(Transport),
    /// The whole read of the bulk file through an fw_cfg transport.
    Bulk(Transport),
    /// The `n`th benchmark phase.
    Bench(u32),
}

impl Phase {
    /// The id written to the marker port.
    pub const fn id(self) -> u32 {
        match self {
            Phase::Idle => 0,
            Phase::Baseline => 1,
            Phase::Lookup(t) => LOOKUP_BASE + t.index(),
            // `Bulk(Cpuid)` (id 9) is a valid id that the firmware never
            // uses: CPUID has no bulk read.
            Phase::Bulk(t) => BULK_BASE + t.index(),
            Phase::Bench(n) => BENCH_FIRST_PHASE.wrapping_add(n),
        }
    }

    /// The phase with id `id`; `None` for an id no phase has.
    pub fn from_id(id: u32) -> Option<Phase> {
        let transport = |base: u32| {
            id.checked_sub(base)
                .and_then(|i| Transport::ALL.get(i as usize).copied())
        };
        match id {
            0 => Some(Phase::Idle),
            1 => Some(Phase::Baseline),
            BENCH_FIRST_PHASE.. => Some(Phase::Bench(id - BENCH_FIRST_PHASE)),
            _ if id < BULK_BASE => transport(LOOKUP_BASE).map(Phase::Lookup),
            _ => transport(BULK_BASE).map(Phase::Bulk),
        }
    }
}

impl From<Phase> for u32 {
    fn from(p: Phase) -> u32 {
        p.id()
    }
}

impl Serialize for Phase {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.id())
    }
}

#[cfg(feature = "host")]
impl<'de> serde::Deserialize<'de> for Phase {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let id = u32::deserialize(d)?;
        Phase::from_id(id).ok_or_else(|| {
            serde::de::Error::invalid_value(
                serde::de::Unexpected::Unsigned(u64::from(id)),
                &"a phase id",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_phase_id_round_trips() {
        let mut phases = vec![
            Phase::Idle,
            Phase::Baseline,
            Phase::Bench(0),
            Phase::Bench(77),
        ];
        for t in Transport::ALL {
            phases.push(Phase::Lookup(t));
            phases.push(Phase::Bulk(t));
        }
        let mut ids = Vec::new();
        for p in phases {
            assert_eq!(Phase::from_id(p.id()), Some(p), "{p:?}");
            ids.push(p.id());
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 16, "two phases share an id");
        for id in [8, 15, 16, 0xff] {
            assert_eq!(Phase::from_id(id), None, "{id}");
        }
    }

    #[test]
    fn ids_are_the_documented_ones() {
        assert_eq!(Phase::Lookup(Transport::Cpuid).id(), 2);
        assert_eq!(Phase::Lookup(Transport::Pio).id(), 3);
        assert_eq!(Phase::Lookup(Transport::MmioDma).id(), 7);
        assert_eq!(Phase::Bulk(Transport::Pio).id(), 10);
        assert_eq!(Phase::Bulk(Transport::Dma).id(), 12);
        assert_eq!(Phase::Bench(1).id(), 0x101);
    }

    #[test]
    fn every_transport_name_round_trips() {
        for t in Transport::ALL {
            assert_eq!(Transport::from_name(t.as_str()), Some(t));
            #[cfg(feature = "host")]
            assert_eq!(
                serde_json::to_string(&t).unwrap(),
                format!("\"{}\"", t.as_str())
            );
        }
        assert_eq!(Transport::from_name("nope"), None);
        assert!(
            Transport::FW_CFG
                .iter()
                .all(|t| t.channel() == Channel::FwCfg)
        );
        assert!(
            Transport::BENCH
                .iter()
                .all(|t| Transport::FW_CFG.contains(t))
        );
    }
}
