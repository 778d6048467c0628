// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Per-access costs of the fw_cfg device through `vm-device`'s `IoManager`
//! (the path a VMM's exit handler takes), against floors measured in the
//! same run:
//!
//! - `pio`: a selector write and a one-byte data read, against a no-op
//!   `MutDevicePio` on the same bus (the floor of any port access);
//! - `mmio`: an 8-byte data read, against a no-op `MutDeviceMmio`;
//! - `dma`: a whole transfer (descriptor write, the two 32-bit register
//!   writes, the copy) of 64 B, 4 KiB and 1 MiB, against a plain
//!   `write_slice` of the same bytes into the same guest memory;
//!
//! The guest reader's directory lookup over the same bus is measured by
//! `fw-cfg-iobus`'s `lookup` benchmark. Run with e.g.
//! `cargo bench -p fw-cfg-device --features vm-device --bench access -- --measurement-time 2`.

use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fw_cfg_device::abi::{
    DMA_CTL_READ, DmaAccess, MMIO_SELECTOR_OFFSET, MMIO_WINDOW_SIZE, PIO_DATA_PORT, PIO_DMA_PORT,
    PIO_SELECTOR_PORT, PIO_WINDOW_SIZE,
};
use fw_cfg_device::phys_bits::PhysBitsConfig;
use fw_cfg_device::{FwCfgBuilder, FwCfgMmio, FwCfgPio};
use vm_device::bus::{MmioAddress, MmioRange, PioAddress, PioAddressOffset, PioRange};
use vm_device::device_manager::{IoManager, MmioManager, PioManager};
use vm_device::{MutDeviceMmio, MutDevicePio};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

type Mem = Arc<GuestMemoryMmap<()>>;

/// An unused port with a device that does nothing.
const NOOP_PORT: u16 = 0x600;
/// Where the MMIO front end sits.
const MMIO_BASE: u64 = 0xd000_0000;
/// Where the no-op MMIO device sits.
const NOOP_MMIO: u64 = 0xd000_1000;
/// Guest-physical address of the DMA descriptor.
const DESC: u64 = 0x1000;
/// Guest-physical address of the DMA data buffer.
const DATA: u64 = 0x10_0000;
/// The bulk file's size (largest transfer measured).
const BULK: usize = 1 << 20;
/// Data reads between two re-selections (keeps reads inside the item).
const RESELECT: u32 = 1 << 19;

struct NoopPio;

impl MutDevicePio for NoopPio {
    fn pio_read(&mut self, _base: PioAddress, _offset: PioAddressOffset, _data: &mut [u8]) {}
    fn pio_write(&mut self, _base: PioAddress, _offset: PioAddressOffset, _data: &[u8]) {}
}

struct NoopMmio;

impl MutDeviceMmio for NoopMmio {
    fn mmio_read(&mut self, _base: MmioAddress, _offset: u64, _data: &mut [u8]) {}
    fn mmio_write(&mut self, _base: MmioAddress, _offset: u64, _data: &[u8]) {}
}

/// Guest memory and a bus with both fw_cfg front ends, the no-op devices,
/// the phys-bits file and a 1 MiB file (key 0x20, sorts first).
fn machine() -> (Mem, IoManager) {
    let mem: Mem = Arc::new(
        GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 4 << 20)]).expect("guest memory"),
    );
    let mut b = FwCfgBuilder::new();
    b.add_file("aaa/bulk", vec![0x5a; BULK]).expect("bulk file");
    PhysBitsConfig::host_passthrough(48)
        .add_to(&mut b)
        .expect("phys-bits file");
    let mut io = IoManager::new();
    io.register_pio(
        PioRange::new(PioAddress(PIO_SELECTOR_PORT), PIO_WINDOW_SIZE).expect("range"),
        Arc::new(Mutex::new(FwCfgPio::new(b.build(mem.clone())))),
    )
    .expect("pio");
    io.register_pio(
        PioRange::new(PioAddress(NOOP_PORT), 1).expect("range"),
        Arc::new(Mutex::new(NoopPio)),
    )
    .expect("noop pio");
    io.register_mmio(
        MmioRange::new(MmioAddress(MMIO_BASE), MMIO_WINDOW_SIZE).expect("range"),
        Arc::new(Mutex::new(FwCfgMmio::new(b.build(mem.clone())))),
    )
    .expect("mmio");
    io.register_mmio(
        MmioRange::new(MmioAddress(NOOP_MMIO), 8).expect("range"),
        Arc::new(Mutex::new(NoopMmio)),
    )
    .expect("noop mmio");
    (mem, io)
}

fn bench(c: &mut Criterion) {
    let (mem, io) = machine();

    let mut g = c.benchmark_group("pio");
    g.bench_function("noop-floor", |b| {
        b.iter(|| {
            let mut x = [0u8];
            io.pio_read(PioAddress(NOOP_PORT), &mut x).expect("noop");
            black_box(x)
        })
    });
    g.bench_function("select", |b| {
        b.iter(|| {
            io.pio_write(
                PioAddress(PIO_SELECTOR_PORT),
                &black_box(0x20u16).to_le_bytes(),
            )
            .expect("select")
        })
    });
    io.pio_write(PioAddress(PIO_SELECTOR_PORT), &0x20u16.to_le_bytes())
        .expect("select");
    let mut n = 0u32;
    g.bench_function("data-byte", |b| {
        b.iter(|| {
            n += 1;
            if n == RESELECT {
                n = 0;
                io.pio_write(PioAddress(PIO_SELECTOR_PORT), &0x20u16.to_le_bytes())
                    .expect("select");
            }
            let mut x = [0u8];
            io.pio_read(PioAddress(PIO_DATA_PORT), &mut x)
                .expect("data");
            black_box(x)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("mmio");
    g.bench_function("noop-floor-8", |b| {
        b.iter(|| {
            let mut x = [0u8; 8];
            io.mmio_read(MmioAddress(NOOP_MMIO), &mut x).expect("noop");
            black_box(x)
        })
    });
    let select = |io: &IoManager| {
        io.mmio_write(
            MmioAddress(MMIO_BASE + MMIO_SELECTOR_OFFSET),
            &0x20u16.to_be_bytes(),
        )
        .expect("select")
    };
    select(&io);
    let mut n = 0u32;
    g.bench_function("data-8", |b| {
        b.iter(|| {
            n += 1;
            if n == RESELECT / 8 {
                n = 0;
                select(&io);
            }
            let mut x = [0u8; 8];
            io.mmio_read(MmioAddress(MMIO_BASE), &mut x).expect("data");
            black_box(x)
        })
    });
    g.finish();

    let src = vec![0x5au8; BULK];
    let mut g = c.benchmark_group("dma");
    for size in [64usize, 4 << 10, BULK] {
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(
            BenchmarkId::new("write_slice-floor", size),
            &size,
            |b, &size| {
                b.iter(|| {
                    mem.write_slice(black_box(&src[..size]), GuestAddress(DATA))
                        .expect("write")
                })
            },
        );
        let desc = DmaAccess::select(0x20, DMA_CTL_READ, size as u32, DATA).to_be_bytes();
        g.bench_with_input(BenchmarkId::new("transfer", size), &size, |b, _| {
            b.iter(|| {
                mem.write_slice(&desc, GuestAddress(DESC)).expect("desc");
                io.pio_write(PioAddress(PIO_DMA_PORT), &0u32.to_be_bytes())
                    .expect("high");
                io.pio_write(PioAddress(PIO_DMA_PORT + 4), &(DESC as u32).to_be_bytes())
                    .expect("low");
            })
        });
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
