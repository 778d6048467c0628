// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The PVH test firmware: where its ELF is, and what it prints.
//!
//! The firmware (package `fw-cfg-test-firmware`) prints one
//! `fw-cfg-protocol` line per measurement on COM1 (`boot`, `baseline`,
//! `result` per transport, `bulk`, `done` or `panic`; `bench` lines in
//! benchmark mode) and writes each measurement's [`Phase`] id to the
//! harness's marker port before and 0 after, so the mini VMM counts exits
//! per phase. The line types, the phase ids and the one parser
//! ([`FirmwareReport::parse`]) are `fw-cfg-protocol`'s, re-exported here.
//!
//! [`Phase`]: fw_cfg_protocol::Phase

use std::path::PathBuf;

pub use fw_cfg_protocol::{
    BULK_FILE_NAME, BULK_MAX, BulkLine, CpuidLine, DecisionLine, Decisions, FileLine,
    FirmwareReport, ResultLine,
};

/// The files the firmware's SMP stress mode reads
/// (`fw_cfg_protocol::SMP_PARAM`): `opt/stress/K` with the bytes
/// [`fw_cfg_protocol::stress_byte`] gives, as (name, bytes).
pub fn stress_files() -> Vec<(String, Vec<u8>)> {
    use fw_cfg_protocol::{STRESS_FILE_PREFIX, STRESS_ITEMS, stress_byte, stress_size};
    (0..STRESS_ITEMS)
        .map(|k| {
            let bytes = (0..stress_size(k)).map(|o| stress_byte(k, o)).collect();
            (format!("{STRESS_FILE_PREFIX}{k}"), bytes)
        })
        .collect()
}

/// Path of the test firmware ELF, built by this crate's build script.
pub fn path() -> PathBuf {
    PathBuf::from(env!("FW_CFG_TEST_FIRMWARE"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use fw_cfg_protocol::{DecidedBy, FileStateKind, Rule, Transport};

    #[test]
    fn parses_firmware_lines_after_foreign_text() {
        let out = br#"SeaBIOS Booting from ROM..
{"event":"boot","firmware":"fw-cfg-test-firmware","version":"0.1.0","start_info":24576,"cmdline":"","mmio_base":null}
{"event":"baseline","phase":1,"exits":16,"cycles":500,"value":0}
{"event":"result","phase":6,"channel":"fw_cfg","transport":"mmio","available":false}
{"event":"result","phase":3,"channel":"fw_cfg","transport":"pio","available":true,"cycles":5,"id":3,"dma":false,"file":{"state":"present","version":1,"valid":false,"phys_bits":40,"guest_phys_bits":0,"size":8,"bytes":[1,0,40,0,0,0,0,0]},"decisions":{"strict":{"phys_bits":36,"decided_by":"fw-cfg-file","rule":"explicit-invalid","conflicts":[]},"heuristic":{"phys_bits":40,"decided_by":"heuristic","rule":"heuristic-valid","conflicts":[]},"combined":{"phys_bits":36,"decided_by":"fw-cfg-file","rule":"explicit-invalid","conflicts":["corrupt-file"]}}}
{"event":"done"}"#;
        let r = FirmwareReport::parse(out);
        assert!(r.done);
        assert_eq!(r.baseline, Some((500, 16)));
        assert_eq!(r.other_lines, 1);
        assert!(!r.results[&Transport::Mmio].available);
        let pio = &r.results[&Transport::Pio];
        let file = pio.file.as_ref().unwrap();
        assert_eq!(file.state, FileStateKind::Present);
        assert_eq!(file.bytes.as_slice(), [1, 0, 40, 0, 0, 0, 0, 0]);
        let d = pio.decisions.as_ref().unwrap();
        assert_eq!(d.strict.phys_bits, 36);
        assert_eq!(d.strict.decided_by, DecidedBy::FwCfgFile);
        assert_eq!(d.strict.rule, Rule::ExplicitInvalid);
        assert_eq!(
            d.combined.conflicts.iter().collect::<Vec<_>>(),
            [fw_cfg_protocol::Conflict::CorruptFile]
        );
    }
}
