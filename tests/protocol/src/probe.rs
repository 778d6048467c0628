// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The Linux probe's report (`fw-cfg-probe --json`): one JSON document,
//! made of the same values as the firmware's lines ([`CpuidLine`],
//! [`FileLine`], [`Decisions`], [`ErrorKind`]).
//!
//! The probe serializes a [`ProbeReport`] with `serde_json`; the host
//! parses it back with [`ProbeReport::parse`]. The document needs a heap
//! (a directory of any length), so it exists on the host side only.

use serde::{Deserialize, Serialize};

use crate::lines::{CpuidLine, Decisions, ErrorKind, FileLine};
use crate::modes::ModeAnswers;

/// Everything the probe found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// The CPUID channel.
    pub cpuid: CpuidLine,
    /// The fw_cfg device.
    pub fw_cfg: ProbeFwCfg,
    /// The `etc/phys-bits-valid` state (no size, no bytes: those are in
    /// [`ProbeFwCfg::files`]).
    pub phys_bits_file: FileLine,
    /// The memory map's top the decisions used (`/sys/firmware/memmap`;
    /// 0 = unknown). Absent in documents of earlier probes.
    #[serde(default)]
    pub memory_top: u64,
    /// The three modes' decisions.
    pub decisions: Decisions,
    /// Every mode's answer and the strict decision's layout
    /// ([`ModeAnswers::compute`]). Absent in documents of earlier probes.
    #[serde(default)]
    pub modes: Option<ModeAnswers>,
    /// The exit code the probe computed.
    pub exit_code: i32,
}

impl ProbeReport {
    /// Parses the probe's `--json` output.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text.trim())
    }

    /// The JSON document (one line, no newline).
    pub fn to_json(&self) -> String {
        // Every member is a plain value with string keys: serializing into
        // memory cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Whether the probe could use the fw_cfg ports, and what answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceState {
    /// `ioperm` failed.
    NoPermission,
    /// No signature: no device.
    Absent,
    /// A device answered.
    Present,
}

/// The fw_cfg side of the probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeFwCfg {
    /// What answered.
    pub state: DeviceState,
    /// `no-permission`: the OS error text of `ioperm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_error: Option<String>,
    /// `absent`: the four signature bytes read instead of `QEMU`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<[u8; 4]>,
    /// `present`: the ID item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u32>,
    /// `present`: whether the ID advertises DMA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dma: Option<bool>,
    /// `present`: whether the `qemu_fw_cfg` sysfs tree exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sysfs_present: Option<bool>,
    /// `present`: the directory; `None` (written as `null`) when it could
    /// not be read or there is no device.
    #[serde(default)]
    pub files: Option<Vec<ProbeFile>>,
    /// `present`: why the directory could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorKind>,
}

/// One file of the directory as the probe read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeFile {
    /// Name (lossy UTF-8).
    pub name: String,
    /// Size from the directory.
    pub size: u32,
    /// Selector.
    pub select: u16,
    /// The bytes read by port I/O, in hex; `None` when the read failed.
    pub pio_hex: Option<String>,
    /// Whether the bytes stop before `size`.
    #[serde(default)]
    pub truncated: bool,
    /// Whether the total budget cut the file short (or left it unread).
    #[serde(default)]
    pub over_budget: bool,
    /// Why the read failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorKind>,
    /// Whether sysfs agrees; `None` when there is nothing to compare.
    #[serde(default)]
    pub sysfs_equal: Option<bool>,
}

impl ProbeFile {
    /// The bytes read (`None` when the read failed or the hex is broken).
    pub fn bytes(&self) -> Option<Vec<u8>> {
        unhex(self.pio_hex.as_deref()?)
    }
}

/// Lowercase hex of `bytes`, as [`ProbeFile::pio_hex`] holds them.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// Decodes hex (either case, whitespace ignored); `None` on an odd
/// number of digits or a non-hex character.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if digits.len() % 2 != 0 {
        return None;
    }
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(unhex(&hex(&all)), Some(all));
        assert_eq!(unhex("0A0b"), Some(vec![10, 11]));
        assert_eq!(unhex("0a 0b\n"), Some(vec![10, 11]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }
}
