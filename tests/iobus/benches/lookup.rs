// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The guest reader opening the device (signature, ID) and finding
//! `etc/phys-bits-valid` in a directory of 1, 32 and 1000 files (the
//! phys-bits file and fillers), through `vm-device`'s `IoManager`, by port
//! I/O, by MMIO, by DMA (one transfer per entry) and by DMA with the
//! buffered lookup (benchmark group `lookup`).
//!
//! Before measuring it prints how many bus accesses (VM exits, under KVM)
//! each lookup makes. Run with e.g.
//! `cargo bench -p fw-cfg-iobus --bench lookup -- --measurement-time 2`.
//! The device-side per-access costs are `fw-cfg-device`'s `access`
//! benchmark.

use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use fw_cfg_device::abi::{
    MMIO_WINDOW_SIZE, PHYS_BITS_FILE_NAME, PIO_SELECTOR_PORT, PIO_WINDOW_SIZE,
};
use fw_cfg_device::phys_bits::PhysBitsConfig;
use fw_cfg_device::{FwCfgBuilder, FwCfgMmio, FwCfgPio};
use fw_cfg_guest::reader::FwCfgReader;
use fw_cfg_guest::transport::{Dma, Mmio, PortIo};
use fw_cfg_iobus::{BusCounters, GuestDma, IoMmio, IoPorts};
use vm_device::bus::{MmioAddress, MmioRange, PioAddress, PioRange};
use vm_device::device_manager::{IoManager, MmioManager, PioManager};
use vm_memory::{GuestAddress, GuestMemoryMmap};

/// Where the MMIO front end sits.
const MMIO_BASE: u64 = 0xd000_0000;
/// Guest-physical address of the DMA descriptor.
const DESC: u64 = 0x1000;
/// Guest-physical address of the DMA data buffer.
const DATA: u64 = 0x10_0000;

/// Guest memory and a bus with both fw_cfg front ends, the phys-bits file
/// and `fillers` more files.
fn machine(fillers: usize) -> (GuestMemoryMmap, IoManager) {
    let mem =
        GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 4 << 20)]).expect("guest memory");
    let shared = Arc::new(mem.clone());
    let mut b = FwCfgBuilder::new();
    b.file_slots(0x400).expect("file slots");
    PhysBitsConfig::host_passthrough(48)
        .add_to(&mut b)
        .expect("phys-bits file");
    for i in 0..fillers {
        b.add_file(&format!("opt/bench/dir/{i:04}"), vec![b'x'])
            .expect("filler");
    }
    let mut io = IoManager::new();
    io.register_pio(
        PioRange::new(PioAddress(PIO_SELECTOR_PORT), PIO_WINDOW_SIZE).expect("range"),
        Arc::new(Mutex::new(FwCfgPio::new(b.build(shared.clone())))),
    )
    .expect("pio");
    io.register_mmio(
        MmioRange::new(MmioAddress(MMIO_BASE), MMIO_WINDOW_SIZE).expect("range"),
        Arc::new(Mutex::new(FwCfgMmio::new(b.build(shared)))),
    )
    .expect("mmio");
    (mem, io)
}

/// The ways the lookup benchmark walks the directory.
#[derive(Clone, Copy, Debug)]
enum Walk {
    Pio,
    Mmio,
    Dma,
    DmaBuffered,
}

impl Walk {
    const ALL: [Walk; 4] = [Walk::Pio, Walk::Mmio, Walk::Dma, Walk::DmaBuffered];

    fn name(self) -> &'static str {
        match self {
            Walk::Pio => "pio",
            Walk::Mmio => "mmio",
            Walk::Dma => "dma",
            Walk::DmaBuffered => "dma-buffered",
        }
    }
}

/// Opens the reader and finds `etc/phys-bits-valid`; returns the bus
/// accesses made.
fn lookup(walk: Walk, mem: &GuestMemoryMmap, io: &IoManager, scratch: &mut [u8]) -> u64 {
    let counters = BusCounters::default();
    let ports = IoPorts::new(io, &counters);
    match walk {
        Walk::Pio => {
            let mut r = FwCfgReader::new(PortIo::with_bus(ports)).expect("device");
            black_box(r.find_file(PHYS_BITS_FILE_NAME).expect("file"));
        }
        Walk::Mmio => {
            let bus = IoMmio::new(io, MMIO_BASE, &counters);
            let mut r = FwCfgReader::new(Mmio::with_bus(bus)).expect("device");
            black_box(r.find_file(PHYS_BITS_FILE_NAME).expect("file"));
        }
        Walk::Dma | Walk::DmaBuffered => {
            let dma = GuestDma::new(mem, DESC, DATA, 64 << 10);
            let mut r = FwCfgReader::new(Dma::new(PortIo::with_bus(ports), dma)).expect("device");
            let e = match walk {
                Walk::Dma => r.find_file(PHYS_BITS_FILE_NAME),
                _ => r.find_file_buffered(PHYS_BITS_FILE_NAME, scratch),
            };
            black_box(e.expect("file"));
        }
    }
    assert_eq!(counters.unassigned(), 0, "every access reaches the device");
    counters.accesses()
}

fn bench(c: &mut Criterion) {
    let mut scratch = vec![0u8; 64 << 10];
    let mut g = c.benchmark_group("lookup");
    for files in [1usize, 32, 1000] {
        let (mem, io) = machine(files - 1);
        for walk in Walk::ALL {
            let accesses = lookup(walk, &mem, &io, &mut scratch);
            eprintln!(
                "lookup/{}/{files}: {accesses} bus accesses (VM exits under KVM)",
                walk.name()
            );
            // Thousands of exits per iteration: fewer samples.
            if files == 1000 && matches!(walk, Walk::Pio) {
                g.sample_size(10);
            } else {
                g.sample_size(30);
            }
            g.bench_with_input(BenchmarkId::new(walk.name(), files), &files, |b, _| {
                b.iter(|| lookup(walk, &mem, &io, &mut scratch))
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    targets = bench
}
criterion_main!(benches);
