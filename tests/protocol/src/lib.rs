// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

#![doc = include_str!("../README.md")]
#![cfg_attr(not(any(test, feature = "host")), no_std)]
#![deny(missing_docs)]

mod json;
mod lines;
pub mod modes;
mod name;
mod phase;

#[cfg(feature = "host")]
mod parse;
#[cfg(feature = "host")]
pub mod probe;

pub use json::{Sink, WriteError, Writer, to_sink};
pub use lines::{
    BaselineLine, BenchLine, BenchName, BootLine, BulkLine, CmdlineText, Conflict, Conflicts,
    CpuidLine, DecidedBy, DecisionLine, Decisions, ErrorKind, FILE_BYTES_MAX, FileLine,
    FileStateKind, FirmwareName, HashLine, HintState, Line, PanicLine, ResultLine, Rule, SmpLine,
    TouchLine, Vendor,
};
pub use name::{Bytes, Name};
#[cfg(feature = "host")]
pub use parse::{FirmwareReport, ParseError, parse_line};
pub use phase::{BENCH_FIRST_PHASE, Channel, Phase, Transport};

/// The harness's phase-marker port: a 32-bit write of a [`Phase`] id
/// starts that phase (see [`Phase`]). Under QEMU the port is unassigned and
/// the write is ignored.
pub const MARK_PORT: u16 = 0x600;
/// An unassigned port, read by the null-exit baseline.
pub const NULL_PORT: u16 = 0x601;
/// How many null exits the baseline takes.
pub const NULL_EXITS: u64 = 16;
/// How many times benchmark mode repeats the null exit and the KVM leaf
/// `cpuid`.
pub const BENCH_REPEAT: u64 = 64;
/// Name of the optional file every fw_cfg transport reads whole.
pub const BULK_FILE_NAME: &str = "opt/fw-cfg-tests/bulk";
/// Largest bulk file the firmware reads.
pub const BULK_MAX: usize = 64 * 1024;
/// The command-line parameter selecting benchmark mode
/// (`fw_cfg_tests.bench=SIZE@BASE`).
pub const BENCH_PARAM: &str = "fw_cfg_tests.bench=";
/// Benchmark files are named `opt/bench/<transport>/<label>`.
pub const BENCH_FILE_PREFIX: &str = "opt/bench/";
/// The command-line parameter selecting the SMP stress mode
/// (`fw_cfg_tests.smp=ITERATIONS`; see [`SmpLine`]).
pub const SMP_PARAM: &str = "fw_cfg_tests.smp=";
/// The command-line parameter selecting the MMIO address sweep
/// (`fw_cfg_tests.touch=COUNT@BASE`; see [`TouchLine`]).
pub const TOUCH_PARAM: &str = "fw_cfg_tests.touch=";
/// Distance between two addresses of the MMIO sweep.
pub const TOUCH_STRIDE: u64 = 8;
/// Stress files are named `opt/stress/<k>`, `k` below [`STRESS_ITEMS`].
pub const STRESS_FILE_PREFIX: &str = "opt/stress/";
/// How many stress files the SMP stress mode reads.
pub const STRESS_ITEMS: usize = 4;

/// Size of stress file `k`: 32, 24, 16, 8 bytes.
pub const fn stress_size(k: usize) -> usize {
    32 - 8 * k
}

/// Byte `offset` of stress file `k`: `0x80 | k << 5 | offset`, so every
/// byte names its file and offset and none is 0.
pub const fn stress_byte(k: usize, offset: usize) -> u8 {
    0x80 | (((k & 3) as u8) << 5) | (offset & 0x1f) as u8
}
/// The command-line parameter selecting hash mode
/// (`fw_cfg_tests.hash=SIZE@BASE`: a RAM area of `SIZE` bytes at `BASE`
/// for two copies of [`HASH_FILE_NAME`]).
pub const HASH_PARAM: &str = "fw_cfg_tests.hash=";
/// The file hash mode reads whole, by port I/O and by DMA.
pub const HASH_FILE_NAME: &str = "opt/fw-cfg-tests/hash";

/// Writes `line` as one JSON object and a newline.
///
/// No allocation and no `core::fmt`; fails only if a value cannot be
/// written ([`WriteError`]), which no line type contains.
pub fn write_line<S: Sink>(mut sink: S, line: &Line) -> Result<(), WriteError> {
    to_sink(&mut sink, line)?;
    sink.write(b"\n");
    Ok(())
}

/// `line` as a JSON text with its newline (host side).
#[cfg(feature = "host")]
pub fn line_to_string(line: &Line) -> Result<String, WriteError> {
    let mut out = Vec::new();
    write_line(&mut out, line)?;
    // The writer emits only the UTF-8 of `&str`s and ASCII.
    String::from_utf8(out).map_err(|_| WriteError::Custom)
}
