// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! DMA and port-I/O throughput against a plain guest-memory copy.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use fw_cfg_device::FwCfgBuilder;
use fw_cfg_device::abi::{DMA_CTL_READ, DmaAccess, PIO_DATA_OFFSET, PIO_SELECTOR_OFFSET};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const SIZE: usize = 1 << 20;

fn bench(c: &mut Criterion) {
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 4 << 20)]).unwrap();
    let mut b = FwCfgBuilder::new();
    b.add_file("opt/big", vec![0x5a; SIZE]).unwrap();
    let mut dev = b.build(&mem);
    let src = vec![0x5a; SIZE];
    let desc = DmaAccess::select(0x20, DMA_CTL_READ, SIZE as u32, 0x10_0000).to_be_bytes();

    c.bench_function("write_slice 1 MiB", |bch| {
        bch.iter(|| {
            mem.write_slice(black_box(&src), GuestAddress(0x10_0000))
                .unwrap()
        })
    });
    c.bench_function("dma read 1 MiB", |bch| {
        bch.iter(|| {
            mem.write_slice(&desc, GuestAddress(0x1000)).unwrap();
            dev.dma_address_u64(black_box(0x1000));
        })
    });
    // The port window through the core's own access methods (no bus).
    let mut pio = b.build(&mem);
    c.bench_function("pio read 4 KiB", |bch| {
        bch.iter(|| {
            pio.pio_write(PIO_SELECTOR_OFFSET, &0x20u16.to_le_bytes());
            let mut x = [0u8];
            for _ in 0..4096 {
                pio.pio_read(PIO_DATA_OFFSET, &mut x);
            }
            black_box(x)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
