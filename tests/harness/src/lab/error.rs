// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The lab's errors, and the console or log lines they show.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use super::{GuestName, LAB_DIR, build};
use crate::peers::Missing;

/// The last lines of a console or a log, kept for an error message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextTail {
    /// The lines, oldest first, without line ends.
    pub lines: Vec<String>,
}

impl TextTail {
    /// The last `n` non-empty lines of `text`.
    pub fn last(text: &str, n: usize) -> Self {
        let all: Vec<&str> = text
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| !l.trim().is_empty())
            .collect();
        let start = all.len().saturating_sub(n);
        TextTail {
            lines: all[start..].iter().map(|l| l.to_string()).collect(),
        }
    }
}

impl fmt::Display for TextTail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lines.is_empty() {
            return write!(f, "    (nothing)");
        }
        for (i, l) in self.lines.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "    {l}")?;
        }
        Ok(())
    }
}

/// What went wrong in a lab run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LabError {
    /// QEMU, the kernel, a module or busybox is missing on this machine.
    #[error(transparent)]
    Missing(#[from] Missing),
    /// [`Lab::phys_bits`](super::Lab::phys_bits) outside
    /// [`PHYS_BITS_RANGE`](super::PHYS_BITS_RANGE).
    #[error("outer MAXPHYADDR {bits} is outside 36..=52")]
    PhysBits {
        /// The rejected width.
        bits: u8,
    },
    /// A work file or guest name that is absolute, climbs out, is empty
    /// or lies in the lab's own [`LAB_DIR`].
    #[error(
        "{} is not a usable name in the work folder (relative, plain components, not under {LAB_DIR})",
        .name.display()
    )]
    BadName {
        /// The rejected name.
        name: PathBuf,
    },
    /// A file operation on the host failed.
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        /// What was attempted (`create`, `write`, `read`, `copy`, `remove`).
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The outer QEMU could not be started.
    #[error("cannot start {}: {source}", .program.display())]
    Spawn {
        /// The QEMU binary.
        program: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A module did not load in the outer guest.
    #[error("insmod {module}.ko failed in the outer guest; last console lines:\n{tail}")]
    Insmod {
        /// The module.
        module: &'static str,
        /// The end of the outer console.
        tail: TextTail,
    },
    /// A 9p share or a filesystem under `/host` could not be mounted.
    #[error("mounting {what} failed in the outer guest; last console lines:\n{tail}")]
    Mount {
        /// `hostroot`, `chroot filesystems` or `work`.
        what: &'static str,
        /// The end of the outer console.
        tail: TextTail,
    },
    /// `kvm-amd` loaded but there is no `/dev/kvm`: the outer vCPU has no
    /// SVM (it must be AMD with SVM, as TCG's `-cpu max` is).
    #[error(
        "no /dev/kvm in the outer guest: kvm-amd found no usable SVM; the outer guest's \
         svm/kvm kernel messages:\n{dmesg}"
    )]
    NoKvm {
        /// The outer kernel's lines about SVM and KVM.
        dmesg: TextTail,
    },
    /// The outer guest ran past the timeout and was killed.
    #[error(
        "the outer guest did not finish within {} s and was killed; last console lines:\n{tail}",
        .timeout.as_secs()
    )]
    Timeout {
        /// The limit.
        timeout: Duration,
        /// The end of the outer console.
        tail: TextTail,
    },
    /// The outer guest ended without recording the script's status.
    #[error(
        "the outer guest ended ({qemu_status}) without the script's exit status; last console \
         lines:\n{tail}\nQEMU's messages:\n{stderr}"
    )]
    NoStatus {
        /// How the outer QEMU ended.
        qemu_status: ExitStatus,
        /// The end of the outer console.
        tail: TextTail,
        /// The end of QEMU's stderr.
        stderr: TextTail,
    },
    /// A result file the lab writes inside did not parse.
    #[error("{} does not hold a lab status line", .path.display())]
    BadStatus {
        /// The file.
        path: PathBuf,
    },
    /// An inner guest the script should have run left no result (the
    /// script exited before it).
    #[error("inner guest {guest} did not run (the script ended before it)")]
    GuestMissing {
        /// The guest.
        guest: GuestName,
    },
    /// An inner guest ran the PVH test firmware, which did not finish.
    #[error(
        "the PVH test firmware did not finish in inner guest {guest} (status {status}); \
         stdout:\n{stdout}\nstderr:\n{stderr}"
    )]
    Firmware {
        /// The guest.
        guest: GuestName,
        /// Its exit status.
        status: i32,
        /// The end of its stdout.
        stdout: TextTail,
        /// The end of its stderr.
        stderr: TextTail,
    },
    /// A Linux guest did not reach the end of its `/init` report.
    #[error(
        "the Linux guest {guest} did not finish its /init report (status {status}); \
         last console lines:\n{stdout}\nstderr:\n{stderr}"
    )]
    Linux {
        /// The guest.
        guest: GuestName,
        /// Its exit status.
        status: i32,
        /// The end of its console.
        stdout: TextTail,
        /// The end of its stderr.
        stderr: TextTail,
    },
    /// Linux guests need the static probe and ABI check, and
    /// [`build::LabTools`] was built without them.
    #[error(
        "the Linux guests need the static fw-cfg-probe and fw-cfg-abi-check: \
         build LabTools with the probe"
    )]
    NoProbe,
    /// Building what the lab runs failed.
    #[error(transparent)]
    Build(#[from] build::BuildError),
    /// An inner `fw-cfg-vmm` left no readable `--stats-json` report.
    #[error("inner guest {guest}: no readable fw-cfg-vmm run report: {source}")]
    Report {
        /// The guest.
        guest: GuestName,
        /// Why.
        #[source]
        source: crate::vmm::report::ReportError,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::TAIL_LINES;

    #[test]
    fn tail_keeps_the_last_lines() {
        let text = (1..=30)
            .map(|i| format!("line {i}\r\n"))
            .collect::<String>()
            + "\n\n";
        let t = TextTail::last(&text, TAIL_LINES);
        assert_eq!(t.lines.len(), 20);
        assert_eq!(t.lines[0], "line 11");
        assert_eq!(t.lines[19], "line 30");
        assert!(t.to_string().starts_with("    line 11\n    line 12"));
        assert_eq!(TextTail::last("", 5).to_string(), "    (nothing)");
    }
}
