// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Fuzz harness of the snapshot reader, shared by the cargo-fuzz target in
//! `fuzz/fuzz_targets/` and by the corpus replay test
//! `tests/fuzz_corpus.rs` (both include this file with `#[path]`).

use fw_cfg_vmm::snapshot::format::{Limits, SnapshotParts, fix_checksum, parse, write};

/// The memory the fuzzed snapshots must describe: one 4 KiB region.
pub fn limits() -> Limits {
    Limits {
        regions: vec![(0, 0x1000)],
    }
}

/// Re-encodes a parsed snapshot with the writer.
fn encode(data: &[u8], limits: &Limits) -> Option<Vec<u8>> {
    let s = parse(data, limits).ok()?;
    let parts = SnapshotParts {
        regions: &s.regions,
        vcpu: &s.vcpu,
        fw_cfg: &s.fw_cfg,
        serial: &s.serial,
    };
    let memory = |offset: u64, buf: &mut [u8]| {
        let start = offset as usize;
        buf.copy_from_slice(&s.memory[start..start + buf.len()]);
        Ok(())
    };
    Some(write(Vec::new(), &parts, memory).expect("writing to a Vec cannot fail"))
}

/// Parses `data` as it is, then with its checksum fixed (so mutations
/// reach the section parsers): never a panic, and whatever parses
/// re-encodes to a file that parses to the same encoding.
pub fn snapshot(data: &[u8]) {
    let limits = limits();
    let _ = parse(data, &limits);
    let mut fixed = data.to_vec();
    fix_checksum(&mut fixed);
    if let Some(once) = encode(&fixed, &limits) {
        let twice = encode(&once, &limits).expect("a written snapshot parses");
        assert_eq!(once, twice, "re-encoding changed the snapshot");
    }
}

/// Whether `data` is a valid snapshot for [`limits`].
pub fn parses(data: &[u8]) -> bool {
    parse(data, &limits()).is_ok()
}
