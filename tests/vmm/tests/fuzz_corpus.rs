// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Replays the committed fuzz corpus (`fuzz/corpus/snapshot/`) through the
//! harness the cargo-fuzz target runs, so a plain `cargo test` keeps every
//! input that once reached new coverage passing. A missing or empty corpus
//! fails the test, and so does a corpus without one valid snapshot.

#[path = "../fuzz/harness.rs"]
mod harness;

use std::path::PathBuf;

#[test]
fn snapshot_corpus_replays() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/snapshot");
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} is missing: {e}", dir.display()));
    let (mut n, mut valid) = (0, 0);
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_file() {
            let data = std::fs::read(&path).unwrap();
            let result = std::panic::catch_unwind(|| harness::snapshot(&data));
            assert!(result.is_ok(), "corpus input {} fails", path.display());
            n += 1;
            valid += usize::from(harness::parses(&data));
        }
    }
    assert!(n > 0, "corpus {} is empty", dir.display());
    assert!(valid > 0, "no valid snapshot in {}", dir.display());
    println!("snapshot: {n} inputs, {valid} valid");
}
