// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The PVH test firmware: where its ELF is, and what it prints.
//!
//! The firmware (package `fw-cfg-test-firmware`) prints one JSON object per
//! line on COM1, each with an `"event"` member:
//!
//! - `boot`: firmware name and version, PVH start info address, command
//!   line, MMIO window base (or `null`);
//! - `baseline`: `exits` reads of an unassigned port and their cycles;
//! - `result`: one channel through one transport (`transport` is `cpuid`,
//!   `pio`, `pio-string`, `dma`, `mmio` or `mmio-dma`): cycles, what the
//!   channel said (`cpuid` object or `file` object with the raw bytes) and
//!   the decision of each policy mode;
//! - `bulk`: a whole read of the optional file `opt/fw-cfg-tests/bulk`
//!   through one transport (size, byte sum, cycles);
//! - `done`, or `panic` with a message.
//!
//! Each measurement runs in a *phase* (the `phase` member): the firmware
//! writes the phase id to the harness port before and 0 after, and the mini
//! VMM counts exits per phase.

use std::collections::BTreeMap;
use std::path::PathBuf;

use fw_cfg_guest::cpuid::{HintState, Vendor};
use serde::{Deserialize, Serialize};

/// Path of the test firmware ELF, built by this crate's build script.
pub fn path() -> PathBuf {
    PathBuf::from(env!("FW_CFG_TEST_FIRMWARE"))
}

/// Name of the optional file every transport reads whole.
pub const BULK_FILE_NAME: &str = "opt/fw-cfg-tests/bulk";
/// Largest bulk file the firmware reads.
pub const BULK_MAX: usize = 64 * 1024;

/// Phase ids the firmware uses.
pub mod phase {
    /// Null-exit baseline.
    pub const BASELINE: u32 = 1;
    /// CPUID channel.
    pub const CPUID: u32 = 2;
    /// fw_cfg transport `i` of [`super::TRANSPORTS`] has phase `FW_CFG + i`.
    pub const FW_CFG: u32 = 3;
    /// The bulk read through transport `i` has phase `BULK + i`.
    pub const BULK: u32 = 10;
}

/// The fw_cfg transports, in the firmware's phase order.
pub const TRANSPORTS: [&str; 5] = ["pio", "pio-string", "dma", "mmio", "mmio-dma"];

/// The hint state from its printed name (`set`, `clear`, anything else:
/// no KVM leaf), as the firmware and the probe print it.
pub fn parse_hint(name: &str) -> HintState {
    match name {
        "set" => HintState::Set,
        "clear" => HintState::Clear,
        _ => HintState::NoKvmLeaf,
    }
}

/// A vendor from its printed name (`intel`, `amd`, else the signature's
/// text), as the firmware and the probe print it.
pub fn parse_vendor(name: &str) -> Vendor {
    match name {
        "intel" => Vendor::Intel,
        "amd" => Vendor::Amd,
        other => {
            let mut v = [0u8; 12];
            for (d, s) in v.iter_mut().zip(other.bytes()) {
                *d = s;
            }
            Vendor::Other(v)
        }
    }
}

/// The phase of a transport's lookup.
pub fn transport_phase(transport: &str) -> Option<u32> {
    if transport == "cpuid" {
        return Some(phase::CPUID);
    }
    TRANSPORTS
        .iter()
        .position(|t| *t == transport)
        .map(|i| phase::FW_CFG + i as u32)
}

/// The phase of a transport's bulk read.
pub fn bulk_phase(transport: &str) -> Option<u32> {
    TRANSPORTS
        .iter()
        .position(|t| *t == transport)
        .map(|i| phase::BULK + i as u32)
}

/// One policy mode's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionLine {
    /// The usable width.
    pub phys_bits: u8,
    /// Who decided (`cpuid-hint`, `fw-cfg-file`, `both-channels`,
    /// `heuristic`, `conservative-default`).
    pub decided_by: String,
    /// The policy row (`explicit-valid`, `distrusted`, ...).
    pub rule: String,
    /// Every conflict seen.
    #[serde(default)]
    pub conflicts: Vec<String>,
}

/// The three modes' answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decisions {
    /// Only explicit statements count.
    pub strict: DecisionLine,
    /// The OVMF/SeaBIOS heuristic.
    pub heuristic: DecisionLine,
    /// Explicit first, heuristic when both channels are silent.
    pub combined: DecisionLine,
}

/// What the CPUID channel said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuidLine {
    /// CPUID.1:ECX\[31\].
    pub hypervisor: bool,
    /// The KVM base leaf.
    pub kvm_base: Option<u32>,
    /// EDX of the KVM features leaf.
    pub kvm_features_edx: Option<u32>,
    /// `no-kvm-leaf`, `clear` or `set`.
    pub hint: String,
    /// Whether CPUID 0x80000008 exists.
    pub has_address_sizes: bool,
    /// Raw CPUID 0x80000008 EAX.
    pub address_sizes_eax: u32,
    /// EAX\[7:0\].
    pub phys_bits: u8,
    /// EAX\[23:16\].
    pub guest_phys_bits: u8,
    /// `intel`, `amd` or `other` (leaf 0).
    pub vendor: String,
    /// The signature of CPUID 0x80000000, which the heuristic compares:
    /// `intel`, `amd`, `other`, or `None` when empty.
    pub ext_vendor: Option<String>,
    /// 1 GiB pages.
    pub gb_pages: bool,
}

/// What the fw_cfg channel said through one transport.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileLine {
    /// `absent`, `present`, `corrupt` or `unreadable`.
    pub state: String,
    /// For `present`: the valid flag.
    #[serde(default)]
    pub valid: Option<bool>,
    /// For `present`: the width the file states.
    #[serde(default)]
    pub phys_bits: Option<u8>,
    /// For `present`: the guest width the file states.
    #[serde(default)]
    pub guest_phys_bits: Option<u8>,
    /// For `corrupt`/`unreadable`: why.
    #[serde(default)]
    pub error: Option<String>,
    /// Size in the directory.
    #[serde(default)]
    pub size: Option<u32>,
    /// The bytes read.
    #[serde(default)]
    pub bytes: Vec<u8>,
}

/// One `result` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultLine {
    /// Phase id.
    pub phase: u32,
    /// `cpuid` or `fw_cfg`.
    pub channel: String,
    /// `cpuid`, `pio`, `pio-string`, `dma`, `mmio`, `mmio-dma`.
    pub transport: String,
    /// Whether the transport found a device (always true for CPUID).
    #[serde(default = "yes")]
    pub available: bool,
    /// Guest TSC cycles of the measured phase.
    #[serde(default)]
    pub cycles: Option<u64>,
    /// The fw_cfg ID item.
    #[serde(default)]
    pub id: Option<u32>,
    /// Whether DMA was used.
    #[serde(default)]
    pub dma: bool,
    /// Why the device was not usable.
    #[serde(default)]
    pub device_error: Option<String>,
    /// The CPUID report (CPUID channel only).
    #[serde(default)]
    pub cpuid: Option<CpuidLine>,
    /// The file (fw_cfg channel only).
    #[serde(default)]
    pub file: Option<FileLine>,
    /// The decisions (absent when the transport is unavailable).
    #[serde(default)]
    pub decisions: Option<Decisions>,
}

fn yes() -> bool {
    true
}

/// One `bulk` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkLine {
    /// Phase id.
    pub phase: u32,
    /// File size.
    pub size: u32,
    /// Bytes read.
    pub read: u32,
    /// Sum of the bytes read.
    pub sum: u64,
    /// Guest TSC cycles.
    pub cycles: u64,
    /// Read error, if any.
    #[serde(default)]
    pub error: Option<String>,
}

/// Everything the firmware printed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FirmwareReport {
    /// The `boot` line's MMIO base.
    pub mmio_base: Option<u64>,
    /// Cycles of the null-exit baseline and its exit count.
    pub baseline: Option<(u64, u64)>,
    /// `result` lines by transport.
    pub results: BTreeMap<String, ResultLine>,
    /// `bulk` lines by phase.
    pub bulk: BTreeMap<u32, BulkLine>,
    /// Whether the `done` line was seen.
    pub done: bool,
    /// The panic message, if the firmware panicked.
    pub panic: Option<String>,
    /// Lines that did not parse (text from other firmware, say).
    pub other_lines: usize,
}

impl FirmwareReport {
    /// Parses serial output. JSON objects may follow other text on a line
    /// (QEMU's option ROM prints without a newline).
    pub fn parse(serial: &[u8]) -> Self {
        let text = String::from_utf8_lossy(serial);
        let mut r = FirmwareReport::default();
        for line in text.lines() {
            let Some(start) = line.find("{\"event\":") else {
                if !line.trim().is_empty() {
                    r.other_lines += 1;
                }
                continue;
            };
            let json = &line[start..];
            let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else {
                r.other_lines += 1;
                continue;
            };
            match v.get("event").and_then(|e| e.as_str()) {
                Some("boot") => r.mmio_base = v.get("mmio_base").and_then(|b| b.as_u64()),
                Some("baseline") => {
                    let cycles = v.get("cycles").and_then(|c| c.as_u64()).unwrap_or(0);
                    let exits = v.get("exits").and_then(|c| c.as_u64()).unwrap_or(0);
                    r.baseline = Some((cycles, exits));
                }
                Some("result") => match serde_json::from_value::<ResultLine>(v) {
                    Ok(res) => {
                        r.results.insert(res.transport.clone(), res);
                    }
                    Err(_) => r.other_lines += 1,
                },
                Some("bulk") => match serde_json::from_value::<BulkLine>(v) {
                    Ok(b) => {
                        r.bulk.insert(b.phase, b);
                    }
                    Err(_) => r.other_lines += 1,
                },
                Some("done") => r.done = true,
                Some("panic") => {
                    r.panic = Some(
                        v.get("message")
                            .and_then(|m| m.as_str())
                            .unwrap_or("?")
                            .to_string(),
                    )
                }
                _ => r.other_lines += 1,
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_firmware_lines_after_foreign_text() {
        let out = br#"SeaBIOS Booting from ROM..
{"event":"boot","firmware":"fw-cfg-test-firmware","version":"0.1.0","start_info":24576,"cmdline":"","mmio_base":null}
{"event":"baseline","phase":1,"exits":16,"cycles":500,"value":0}
{"event":"result","phase":6,"channel":"fw_cfg","transport":"mmio","available":false}
{"event":"result","phase":3,"channel":"fw_cfg","transport":"pio","available":true,"cycles":5,"id":3,"dma":false,"file":{"state":"present","version":1,"valid":false,"phys_bits":40,"guest_phys_bits":0,"size":8,"bytes":[1,0,40,0,0,0,0,0]},"decisions":{"strict":{"phys_bits":36,"decided_by":"fw-cfg-file","rule":"explicit-invalid","conflicts":[]},"heuristic":{"phys_bits":40,"decided_by":"heuristic","rule":"heuristic-valid","conflicts":[]},"combined":{"phys_bits":36,"decided_by":"fw-cfg-file","rule":"explicit-invalid","conflicts":["x"]}}}
{"event":"done"}"#;
        let r = FirmwareReport::parse(out);
        assert!(r.done);
        assert_eq!(r.baseline, Some((500, 16)));
        assert_eq!(r.other_lines, 1);
        assert!(!r.results["mmio"].available);
        let pio = &r.results["pio"];
        assert_eq!(
            pio.file.as_ref().unwrap().bytes,
            vec![1, 0, 40, 0, 0, 0, 0, 0]
        );
        let d = pio.decisions.as_ref().unwrap();
        assert_eq!(d.strict.phys_bits, 36);
        assert_eq!(d.combined.conflicts, vec!["x".to_string()]);
    }

    #[test]
    fn phases_match_the_firmware() {
        assert_eq!(transport_phase("cpuid"), Some(2));
        assert_eq!(transport_phase("pio"), Some(3));
        assert_eq!(transport_phase("mmio-dma"), Some(7));
        assert_eq!(bulk_phase("dma"), Some(12));
        assert_eq!(transport_phase("nope"), None);
    }
}
