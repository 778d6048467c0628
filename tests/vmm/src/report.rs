// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The machine-readable end of a run: why the guest stopped and every exit
//! counter, as one serde type that `fw-cfg-vmm --stats-json FILE` writes
//! and a harness reads back ([`RunReport::read`]), so a run in another
//! process (or another machine) gives the same values an in-process
//! [`RunOutcome`] does.
//!
//! ```
//! use fw_cfg_vmm::report::RunReport;
//! use fw_cfg_vmm::stats::{ExitKind, ExitStats, ExitTarget};
//! use fw_cfg_vmm::ExitReason;
//!
//! let mut stats = ExitStats::default();
//! stats.record(ExitKind::IoIn, ExitTarget::Port(0x511), 1, Default::default(), 3);
//! let report = RunReport { reason: ExitReason::DebugExit { value: 0 }, stats, stuck: vec![] };
//! let json = report.to_json()?;
//! assert_eq!(RunReport::from_json(&json)?, report);
//! # Ok::<(), fw_cfg_vmm::report::ReportError>(())
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::regs::VcpuRegisters;
use crate::run::{ExitReason, RunOutcome};
use crate::stats::ExitStats;

/// Why a run report could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The file could not be written or read.
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        /// `write` or `read`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The JSON could not be produced or parsed.
    #[error("run report JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// One finished run: how it ended and its exit counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReport {
    /// Why the guest stopped.
    pub reason: ExitReason,
    /// Every exit, per kind, port, MMIO address and phase.
    pub stats: ExitStats,
    /// After a timeout, where each vCPU still in the guest was.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stuck: Vec<VcpuRegisters>,
}

impl From<&RunOutcome> for RunReport {
    fn from(outcome: &RunOutcome) -> Self {
        RunReport {
            reason: outcome.reason,
            stats: outcome.stats.clone(),
            stuck: outcome.stuck.clone(),
        }
    }
}

impl RunReport {
    /// The report as JSON.
    pub fn to_json(&self) -> Result<Vec<u8>, ReportError> {
        Ok(serde_json::to_vec(self)?)
    }

    /// Parses [`RunReport::to_json`]'s output.
    pub fn from_json(json: &[u8]) -> Result<RunReport, ReportError> {
        Ok(serde_json::from_slice(json)?)
    }

    /// Writes the report to `path`.
    pub fn write(&self, path: &Path) -> Result<(), ReportError> {
        std::fs::write(path, self.to_json()?).map_err(|source| ReportError::Io {
            action: "write",
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads a report [`RunReport::write`] wrote.
    pub fn read(path: &Path) -> Result<RunReport, ReportError> {
        let json = std::fs::read(path).map_err(|source| ReportError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{ExitKind, ExitTarget, MAX_KEYS};
    use std::time::Duration;

    #[test]
    fn every_counter_survives_the_round_trip() {
        let mut stats = ExitStats::default();
        let d = Duration::from_nanos(1500);
        for i in 0..(MAX_KEYS as u64 + 10) {
            stats.record(ExitKind::MmioWrite, ExitTarget::Mmio(0x1000 + i), 4, d, 7);
        }
        stats.record(ExitKind::IoOut, ExitTarget::Port(0x514), 4, d, 0x100);
        stats.record(ExitKind::Hlt, ExitTarget::None, 0, d, 0);
        stats.run_ns = 123_456;
        for reason in [
            ExitReason::DebugExit { value: 3 },
            ExitReason::Timeout,
            ExitReason::Reset,
        ] {
            // Only a timeout carries registers.
            let stuck = (reason == ExitReason::Timeout)
                .then_some(VcpuRegisters {
                    vcpu: 0,
                    rip: 0xffff_ffff_8100_1234,
                    rsp: 0x9000,
                    rflags: 0x46,
                    cr0: 0x8005_0033,
                    cr3: 0x1000,
                    cr4: 0x20,
                    halted: true,
                })
                .into_iter()
                .collect();
            let report = RunReport {
                reason,
                stats: stats.clone(),
                stuck,
            };
            let back = RunReport::from_json(&report.to_json().unwrap()).unwrap();
            assert_eq!(back, report);
            assert_eq!(back.stats.per_mmio.other().mmio_write, 10);
            assert_eq!(back.stats.phase(0x100).io_out, 1);
            assert_eq!(back.stuck.len(), usize::from(reason == ExitReason::Timeout));
        }
        assert!(matches!(
            RunReport::from_json(b"{\"reason\":\"halted\"}"),
            Err(ReportError::Json(_))
        ));
    }

    #[test]
    fn files_are_written_and_read() {
        let dir = std::env::temp_dir().join(format!("fw-cfg-vmm-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("stats.json");
        let report = RunReport {
            reason: ExitReason::PowerOff,
            stats: ExitStats::default(),
            stuck: Vec::new(),
        };
        report.write(&path).unwrap();
        assert_eq!(RunReport::read(&path).unwrap(), report);
        let missing = RunReport::read(&dir.join("none")).unwrap_err();
        assert!(missing.to_string().starts_with("cannot read "), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
