// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The device on MMIO through `IoManager`.

mod common;

use common::*;
use fw_cfg_device::FwCfgBuilder;
use fw_cfg_device::abi::*;
use vm_device::bus::MmioAddress;
use vm_device::device_manager::MmioManager;
use vm_memory::{Bytes, GuestAddress};

#[test]
fn reads_of_1_2_4_8_bytes_in_item_order() {
    let mut b = FwCfgBuilder::new();
    b.add_file("opt/seq", (1u8..=16).collect()).unwrap();
    let g = MmioGuest::new(&b);
    g.select(0x20);
    assert_eq!(g.read(1), [1]);
    assert_eq!(g.read(2), [2, 3]);
    assert_eq!(g.read(4), [4, 5, 6, 7]);
    assert_eq!(g.read(8), [8, 9, 10, 11, 12, 13, 14, 15]);
    assert_eq!(g.read(8), [16, 0, 0, 0, 0, 0, 0, 0]);
    // A little-endian 64-bit load sees the first byte lowest.
    g.select(KEY_SIGNATURE);
    let v = u64::from_le_bytes(g.read(8).try_into().unwrap());
    assert_eq!(v, u64::from_le_bytes(*b"QEMU\0\0\0\0"));
}

#[test]
fn selector_is_big_endian() {
    let g = MmioGuest::new(&FwCfgBuilder::new());
    g.io.mmio_write(MmioAddress(MMIO_BASE + 8), &[0x00, 0x01])
        .unwrap();
    assert_eq!(g.read(4), [3, 0, 0, 0]);
    g.io.mmio_write(MmioAddress(MMIO_BASE + 8), &[0x01, 0x00])
        .unwrap();
    assert_eq!(g.read(4), [0; 4]);
}

#[test]
fn dma_halves_and_64_bit_write() {
    let g = MmioGuest::new(&FwCfgBuilder::new());
    g.put_desc(DmaAccess::select(KEY_ID, DMA_CTL_READ, 4, BUF));
    g.io.mmio_write(MmioAddress(MMIO_BASE + 16), &0u32.to_be_bytes())
        .unwrap();
    assert_ne!(g.control(), 0);
    g.io.mmio_write(MmioAddress(MMIO_BASE + 20), &(DESC as u32).to_be_bytes())
        .unwrap();
    assert_eq!(g.control(), 0);
    let mut b = [0u8; 4];
    g.mem.read_slice(&mut b, GuestAddress(BUF)).unwrap();
    assert_eq!(b, [3, 0, 0, 0]);

    g.put_desc(DmaAccess::select(KEY_SIGNATURE, DMA_CTL_READ, 4, BUF));
    g.io.mmio_write(MmioAddress(MMIO_BASE + 16), &DESC.to_be_bytes())
        .unwrap();
    assert_eq!(g.control(), 0);
    g.mem.read_slice(&mut b, GuestAddress(BUF)).unwrap();
    assert_eq!(&b, b"QEMU");
    let mut sig = [0u8; 8];
    g.io.mmio_read(MmioAddress(MMIO_BASE + 16), &mut sig)
        .unwrap();
    assert_eq!(&sig, b"QEMU CFG");
}

#[test]
fn access_beyond_the_window_is_refused_by_the_bus() {
    let g = MmioGuest::new(&FwCfgBuilder::new());
    let mut b = [0u8; 8];
    assert!(
        g.io.mmio_read(MmioAddress(MMIO_BASE + 0x14), &mut b)
            .is_err()
    );
    assert!(
        g.io.mmio_read(MmioAddress(MMIO_BASE + 0x18), &mut b[..1])
            .is_err()
    );
}
