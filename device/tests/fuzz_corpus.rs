// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the
//! same harness functions the cargo-fuzz targets run, so a plain
//! `cargo test` keeps every input that once reached new coverage passing.
//! A missing or empty corpus directory fails the test.

#[path = "../fuzz/harness.rs"]
mod harness;

use std::path::PathBuf;

/// Runs `f` on every file of `fuzz/corpus/<target>/`; returns how many.
fn replay(target: &str, f: fn(&[u8])) -> usize {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join("corpus")
        .join(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} is missing: {e}", dir.display()));
    let mut n = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_file() {
            let data = std::fs::read(&path).unwrap();
            let result = std::panic::catch_unwind(|| f(&data));
            assert!(result.is_ok(), "corpus input {} fails", path.display());
            n += 1;
        }
    }
    assert!(n > 0, "corpus {} is empty", dir.display());
    n
}

#[test]
fn device_ops_corpus_replays() {
    let n = replay("device_ops", harness::device_ops);
    println!("device_ops: {n} inputs");
}

#[test]
fn cmdline_corpus_replays() {
    let n = replay("cmdline", harness::cmdline);
    println!("cmdline: {n} inputs");
}

#[test]
fn access_split_corpus_replays() {
    let n = replay("access_split", harness::access_split);
    println!("access_split: {n} inputs");
}

#[test]
fn table_loader_corpus_replays() {
    let n = replay("table_loader", harness::table_loader);
    println!("table_loader: {n} inputs");
}

#[test]
fn harness_input_decoding() {
    // The decoder the harnesses share: little-endian, zeros past the end.
    let mut input = harness::Input::new(&[1, 2, 3]);
    assert_eq!(input.u16(), 0x0201);
    assert!(!input.is_empty());
    assert_eq!(input.u32(), 3);
    assert!(input.is_empty());
    assert_eq!(input.u64(), 0);
    assert_eq!(input.bytes(4), &[] as &[u8]);
    // An empty input is a valid (empty) program.
    harness::device_ops(&[]);
    harness::cmdline(&[]);
    harness::access_split(&[]);
    harness::table_loader(&[]);
}
