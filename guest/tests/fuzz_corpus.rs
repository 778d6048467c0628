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
fn guest_host_corpus_replays() {
    let n = replay("guest_host", harness::guest_host);
    println!("guest_host: {n} inputs");
}

#[test]
fn phys_bits_file_corpus_replays() {
    let n = replay("phys_bits_file", harness::phys_bits_file);
    println!("phys_bits_file: {n} inputs");
}

#[test]
fn harness_host_decoding() {
    // The host answers from the input, then with zeros.
    let mut host = harness::Host::new(&[1, 2, 3, 4, 5]);
    assert_eq!(host.u8(), 1);
    assert_eq!(host.u32(), 0x0504_0302);
    assert_eq!(host.u8(), 0);
    // An empty input is a host that answers zeros: no signature.
    harness::guest_host(&[]);
    harness::phys_bits_file(&[]);
}
