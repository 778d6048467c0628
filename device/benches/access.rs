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
//! - `lookup`: the guest reader opening the device (signature, ID) and
//!   finding `etc/phys-bits-valid` in a directory of 1, 32 and 1000 files
//!   (the phys-bits file and fillers), through the bus, by port I/O, by
//!   MMIO, by DMA (one transfer per entry) and by DMA with the buffered
//!   lookup.
//!
//! Before measuring it prints how many bus accesses (VM exits, under KVM)
//! each lookup makes. Run with e.g.
//! `cargo bench -p fw-cfg-device --features vm-device --bench access -- --measurement-time 2`.

use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fw_cfg_device::abi::{
    DMA_ACCESS_SIZE, DMA_CTL_READ, DmaAccess, MMIO_SELECTOR_OFFSET, MMIO_WINDOW_SIZE,
    PHYS_BITS_FILE_NAME, PIO_DATA_PORT, PIO_DMA_PORT, PIO_SELECTOR_PORT, PIO_WINDOW_SIZE,
};
use fw_cfg_device::phys_bits::PhysBitsConfig;
use fw_cfg_device::{FwCfgBuilder, FwCfgMmio, FwCfgPio};
use fw_cfg_guest::reader::FwCfgReader;
use fw_cfg_guest::transport::{Dma, DmaMemory, Mmio, MmioBus, PortBus, PortIo};
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
/// the phys-bits file, with `bulk` a 1 MiB file (key 0x20, sorts first),
/// and `fillers` more files.
fn machine(bulk: bool, fillers: usize) -> (Mem, IoManager) {
    let mem: Mem = Arc::new(
        GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 4 << 20)]).expect("guest memory"),
    );
    let mut b = FwCfgBuilder::new();
    b.file_slots(0x400).expect("file slots");
    if bulk {
        b.add_file("aaa/bulk", vec![0x5a; BULK]).expect("bulk file");
    }
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

/// The guest reader's port bus, as bus accesses (each one a VM exit under
/// KVM), counted.
struct BusPorts<'a> {
    io: &'a IoManager,
    accesses: u64,
}

impl PortBus for BusPorts<'_> {
    fn out16(&mut self, port: u16, value: u16) {
        self.accesses += 1;
        let _ = self.io.pio_write(PioAddress(port), &value.to_le_bytes());
    }
    fn out32(&mut self, port: u16, value: u32) {
        self.accesses += 1;
        let _ = self.io.pio_write(PioAddress(port), &value.to_le_bytes());
    }
    fn in8(&mut self, port: u16) -> u8 {
        self.accesses += 1;
        let mut b = [0xff];
        let _ = self.io.pio_read(PioAddress(port), &mut b);
        b[0]
    }
}

/// The guest reader's MMIO bus, counted.
struct BusMmio<'a> {
    io: &'a IoManager,
    accesses: u64,
}

impl BusMmio<'_> {
    fn read<const N: usize>(&mut self, offset: u64) -> [u8; N] {
        self.accesses += 1;
        let mut b = [0u8; N];
        let _ = self.io.mmio_read(MmioAddress(MMIO_BASE + offset), &mut b);
        b
    }
    fn write(&mut self, offset: u64, data: &[u8]) {
        self.accesses += 1;
        let _ = self.io.mmio_write(MmioAddress(MMIO_BASE + offset), data);
    }
}

impl MmioBus for BusMmio<'_> {
    fn read8(&mut self, offset: u64) -> u8 {
        u8::from_ne_bytes(self.read(offset))
    }
    fn read16(&mut self, offset: u64) -> u16 {
        u16::from_ne_bytes(self.read(offset))
    }
    fn read32(&mut self, offset: u64) -> u32 {
        u32::from_ne_bytes(self.read(offset))
    }
    fn read64(&mut self, offset: u64) -> u64 {
        u64::from_ne_bytes(self.read(offset))
    }
    fn write16(&mut self, offset: u64, value: u16) {
        self.write(offset, &value.to_ne_bytes());
    }
    fn write64(&mut self, offset: u64, value: u64) {
        self.write(offset, &value.to_ne_bytes());
    }
}

/// DMA memory in guest RAM: the descriptor at [`DESC`], the buffer at
/// [`DATA`].
struct GuestDma<'a> {
    mem: &'a GuestMemoryMmap<()>,
    len: usize,
}

// SAFETY: the device behind the kick is the simulated one, which reaches
// only the benchmark VM's guest memory (a transfer outside it fails).
unsafe impl DmaMemory for GuestDma<'_> {
    fn descriptor_address(&self) -> u64 {
        DESC
    }
    fn write_descriptor(&mut self, bytes: &[u8; DMA_ACCESS_SIZE]) {
        self.mem
            .write_slice(bytes, GuestAddress(DESC))
            .expect("descriptor");
    }
    fn read_control(&mut self) -> u32 {
        let mut c = [0u8; 4];
        self.mem
            .read_slice(&mut c, GuestAddress(DESC))
            .expect("control");
        u32::from_be_bytes(c)
    }
    fn buffer_address(&self) -> u64 {
        DATA
    }
    fn buffer_len(&self) -> usize {
        self.len
    }
    fn read_buffer(&mut self, offset: usize, out: &mut [u8]) {
        self.mem
            .read_slice(out, GuestAddress(DATA + offset as u64))
            .expect("buffer");
    }
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
fn lookup(walk: Walk, mem: &GuestMemoryMmap<()>, io: &IoManager, scratch: &mut [u8]) -> u64 {
    let ports = BusPorts { io, accesses: 0 };
    match walk {
        Walk::Pio => {
            let mut r = FwCfgReader::new(PortIo::with_bus(ports)).expect("device");
            black_box(r.find_file(PHYS_BITS_FILE_NAME).expect("file"));
            r.into_transport().into_bus().accesses
        }
        Walk::Mmio => {
            let mut r =
                FwCfgReader::new(Mmio::with_bus(BusMmio { io, accesses: 0 })).expect("device");
            black_box(r.find_file(PHYS_BITS_FILE_NAME).expect("file"));
            r.into_transport().into_bus().accesses
        }
        Walk::Dma | Walk::DmaBuffered => {
            let dma = GuestDma { mem, len: 64 << 10 };
            let mut r = FwCfgReader::new(Dma::new(PortIo::with_bus(ports), dma)).expect("device");
            let e = match walk {
                Walk::Dma => r.find_file(PHYS_BITS_FILE_NAME),
                _ => r.find_file_buffered(PHYS_BITS_FILE_NAME, scratch),
            };
            black_box(e.expect("file"));
            r.into_transport().into_parts().0.into_bus().accesses
        }
    }
}

fn bench(c: &mut Criterion) {
    let (mem, io) = machine(true, 0);
    bench_pio(c, &io);
    bench_mmio(c, &io);
    bench_dma(c, &mem, &io);
    bench_lookup(c);
}

/// Port I/O through the `IoManager`: the bus floor, a select, a data byte.
fn bench_pio(c: &mut Criterion, io: &IoManager) {
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
}

/// MMIO through the `IoManager`: the bus floor and an 8-byte data read.
fn bench_mmio(c: &mut Criterion, io: &IoManager) {
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
    select(io);
    let mut n = 0u32;
    g.bench_function("data-8", |b| {
        b.iter(|| {
            n += 1;
            if n == RESELECT / 8 {
                n = 0;
                select(io);
            }
            let mut x = [0u8; 8];
            io.mmio_read(MmioAddress(MMIO_BASE), &mut x).expect("data");
            black_box(x)
        })
    });
    g.finish();
}

/// DMA reads of growing size against the `write_slice` floor.
fn bench_dma(c: &mut Criterion, mem: &Mem, io: &IoManager) {
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

/// The guest reader's file lookup with 1, 32 and 1000 files.
fn bench_lookup(c: &mut Criterion) {
    let mut scratch = vec![0u8; 64 << 10];
    let mut g = c.benchmark_group("lookup");
    for files in [1usize, 32, 1000] {
        let (mem, io) = machine(false, files - 1);
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
