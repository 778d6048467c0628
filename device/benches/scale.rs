// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Many VMs per host: the memory of 1000 devices built from one builder
//! holding a 1 MiB file (read-only item bytes are shared, so the goal is
//! about one copy of the item, not 1000), and the cost of building a
//! device with 1000 files.
//!
//! A plain measured program (`harness = false`), printing one line per
//! figure: `cargo bench -p fw-cfg-device --bench scale`. Resident memory
//! is read from `/proc/self/statm` (Linux).

use std::hint::black_box;
use std::time::{Duration, Instant};

use fw_cfg_device::FwCfgBuilder;
use vm_memory::{GuestAddress, GuestMemoryMmap};

const DEVICES: usize = 1000;
const ITEM: usize = 1 << 20;
const FILES: usize = 1000;
const RUNS: usize = 11;

/// Resident set size in bytes, from `/proc/self/statm` (pages).
fn rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // The page size of every Linux target this runs on.
    Some(pages * 4096)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 20)
}

fn main() {
    let mem =
        GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)]).expect("guest memory");

    // 1000 devices sharing one builder's 1 MiB item.
    let before = rss().expect("/proc/self/statm");
    let mut b = FwCfgBuilder::new();
    // Non-zero bytes, so every page of the item is resident.
    b.add_file("opt/item", (0..ITEM).map(|i| i as u8 | 1).collect())
        .expect("add_file");
    let with_item = rss().expect("/proc/self/statm");
    let t0 = Instant::now();
    let devices: Vec<_> = (0..DEVICES).map(|_| b.build(&mem)).collect();
    let built = t0.elapsed();
    let after = rss().expect("/proc/self/statm");
    black_box(&devices);
    let per_device = after.saturating_sub(with_item) / DEVICES as u64;
    println!(
        "1000 devices, one 1 MiB item: builder + item {:.2} MiB, 1000 devices {:.2} MiB more \
         ({per_device} B each), total {:.2} MiB = {:.2} copies of the item; built in {:?}",
        mib(with_item.saturating_sub(before)),
        mib(after.saturating_sub(with_item)),
        mib(after.saturating_sub(before)),
        after.saturating_sub(before) as f64 / ITEM as f64,
        built,
    );
    drop(devices);

    // One device with 1000 files: adding them to a builder, then building.
    let names: Vec<String> = (0..FILES).map(|i| format!("opt/scale/{i:04}")).collect();
    let mut adds = Vec::new();
    let mut builds = Vec::new();
    for _ in 0..RUNS {
        let mut b = FwCfgBuilder::new();
        // 1024 slots, as `-fw_cfg` users with many files set them.
        b.file_slots(1024).expect("file slots");
        let t0 = Instant::now();
        for n in &names {
            b.add_file(n, vec![0x5a; 64]).expect("add_file");
        }
        adds.push(t0.elapsed());
        let t0 = Instant::now();
        black_box(b.build(&mem));
        builds.push(t0.elapsed());
    }
    println!(
        "1000 files of 64 B: add_file x1000 {:?}, build {:?} (median of {RUNS})",
        median(adds),
        median(builds),
    );
}
