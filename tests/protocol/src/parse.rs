// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The one parser (host side): a line, and everything the firmware printed.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::lines::{
    BenchLine, BootLine, BulkLine, HashLine, Line, PanicLine, ResultLine, SmpLine, TouchLine,
};
use crate::phase::{Phase, Transport};

/// Where a line's JSON object starts: other firmware may have printed text
/// on the same line before it (QEMU's option ROM prints without a
/// newline).
const LINE_START: &str = "{\"event\":";

/// Why a line is not a protocol line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The text has no `{"event":` object.
    #[error("no protocol object in the line")]
    NotALine,
    /// The object does not parse as any line.
    #[error("the protocol object does not parse")]
    Json(#[source] serde_json::Error),
}

/// Parses one line of serial output: the JSON object from the first
/// `{"event":` on (text before it is ignored).
pub fn parse_line(text: &str) -> Result<Line, ParseError> {
    let start = text.find(LINE_START).ok_or(ParseError::NotALine)?;
    serde_json::from_str(text[start..].trim_end()).map_err(ParseError::Json)
}

/// Everything the firmware printed, by kind.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FirmwareReport {
    /// The `boot` line.
    pub boot: Option<BootLine>,
    /// The `baseline` line's cycles and exit count.
    pub baseline: Option<(u64, u64)>,
    /// `result` lines by transport.
    pub results: BTreeMap<Transport, ResultLine>,
    /// `bulk` lines by transport.
    pub bulk: BTreeMap<Transport, BulkLine>,
    /// `bench` lines, in order.
    pub bench: Vec<BenchLine>,
    /// The `smp` line.
    pub smp: Option<SmpLine>,
    /// The `touch` line.
    pub touch: Option<TouchLine>,
    /// `hash` lines, in order.
    pub hash: Vec<HashLine>,
    /// Whether the `done` line was seen.
    pub done: bool,
    /// The `panic` line, if the firmware panicked.
    pub panic: Option<PanicLine>,
    /// Lines that are not protocol lines (text from other firmware, say)
    /// or do not parse.
    pub other_lines: usize,
}

impl FirmwareReport {
    /// Parses serial output, line by line.
    pub fn parse(serial: &[u8]) -> Self {
        let text = String::from_utf8_lossy(serial);
        let mut r = FirmwareReport::default();
        for text in text.lines() {
            match parse_line(text) {
                Ok(line) => r.add(line),
                Err(ParseError::NotALine) if text.trim().is_empty() => {}
                Err(_) => r.other_lines += 1,
            }
        }
        r
    }

    /// Adds one parsed line.
    pub fn add(&mut self, line: Line) {
        match line {
            Line::Boot(b) => self.boot = Some(b),
            Line::Baseline(b) => self.baseline = Some((b.cycles, b.exits)),
            Line::Result(res) => {
                self.results.insert(res.transport, res);
            }
            Line::Bulk(b) => match b.phase {
                Phase::Bulk(t) => {
                    self.bulk.insert(t, b);
                }
                _ => self.other_lines += 1,
            },
            Line::Bench(b) => self.bench.push(b),
            Line::Smp(l) => self.smp = Some(l),
            Line::Touch(l) => self.touch = Some(l),
            Line::Hash(h) => self.hash.push(h),
            Line::Done => self.done = true,
            Line::Panic(p) => self.panic = Some(p),
        }
    }

    /// The `boot` line's MMIO base.
    pub fn mmio_base(&self) -> Option<u64> {
        self.boot.as_ref().and_then(|b| b.mmio_base)
    }

    /// The `result` line of `transport`.
    pub fn result(&self, transport: Transport) -> Option<&ResultLine> {
        self.results.get(&transport)
    }
}
