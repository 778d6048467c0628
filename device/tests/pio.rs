// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The device on x86 ports through `IoManager`: QEMU's qtest checks, the
//! directory, DMA, reset and snapshots.

mod common;

use common::*;
use fw_cfg_device::abi::*;
use fw_cfg_device::{FwCfgBuilder, FwCfgState, PhysBitsConfig, RestoreError};
use vm_device::bus::PioAddress;
use vm_device::device_manager::PioManager;
use vm_memory::{Bytes, GuestAddress};

fn qtest_builder() -> FwCfgBuilder {
    let mut b = FwCfgBuilder::new();
    b.uuid([
        0x46, 0x00, 0xcb, 0x32, 0x38, 0xec, 0x4b, 0x2f, 0x8a, 0xcb, 0x81, 0xc6, 0xea, 0x54, 0xf2,
        0xd8,
    ])
    .ram_size(128 << 20)
    .nb_cpus(1)
    .max_cpus(4)
    .boot_menu(true);
    b.numa(&[0; 4], &[]).unwrap();
    b
}

fn le64(v: &[u8]) -> u64 {
    u64::from_le_bytes(v.try_into().unwrap())
}

#[test]
fn qtest_signature_and_id() {
    let g = PioGuest::new(&qtest_builder());
    assert_eq!(g.item(KEY_SIGNATURE, 4), b"QEMU");
    let id = u32::from_le_bytes(g.item(KEY_ID, 4).try_into().unwrap());
    assert_eq!(id, ID_TRADITIONAL | ID_DMA);
}

#[test]
fn qtest_uuid_ram_cpus_numa_boot_menu() {
    let g = PioGuest::new(&qtest_builder());
    assert_eq!(
        g.item(KEY_UUID, 16),
        [
            0x46, 0x00, 0xcb, 0x32, 0x38, 0xec, 0x4b, 0x2f, 0x8a, 0xcb, 0x81, 0xc6, 0xea, 0x54,
            0xf2, 0xd8
        ]
    );
    assert_eq!(le64(&g.item(KEY_RAM_SIZE, 8)), 128 << 20);
    assert_eq!(g.item(KEY_NB_CPUS, 2), [1, 0]);
    assert_eq!(g.item(KEY_MAX_CPUS, 2), [4, 0]);
    assert_eq!(le64(&g.item(KEY_NUMA, 8)), 0);
    assert_eq!(g.item(KEY_BOOT_MENU, 2), [1, 0]);
    assert_eq!(g.item(KEY_NOGRAPHIC, 2), [0, 0]);
}

#[test]
fn directory_through_ports_and_files_by_key() {
    let mut b = FwCfgBuilder::new();
    b.add_file("opt/z", b"zz".to_vec()).unwrap();
    b.add_file("etc/x", b"xxx".to_vec()).unwrap();
    PhysBitsConfig::host_passthrough(39).add_to(&mut b).unwrap();
    let g = PioGuest::new(&b);
    let dir = g.directory();
    assert_eq!(
        dir,
        vec![
            ("etc/phys-bits-valid".to_string(), 0x20, 8),
            ("etc/x".to_string(), 0x21, 3),
            ("opt/z".to_string(), 0x22, 2),
        ]
    );
    assert_eq!(g.item(0x20, 8), [2, 1, 39, 0, 39, 0, 0, 0]);
    assert_eq!(g.item(0x22, 3), [b'z', b'z', 0]);
    // Bytes past the listed entries are zero, up to 4 + 64 * slots.
    g.select(KEY_FILE_DIR);
    g.read(4 + 64 * 3);
    assert!(g.read(64 * 0x1d).iter().all(|&b| b == 0));
    assert_eq!(g.with(|d| d.state().offset), 4 + 64 * 0x20);
    assert_eq!(g.read(1), [0]);
}

#[test]
fn dma_register_reads_qemu_cfg() {
    let g = PioGuest::new(&FwCfgBuilder::new());
    let mut b = [0u8; 4];
    g.io.pio_read(PioAddress(PIO_DMA_PORT), &mut b).unwrap();
    assert_eq!(&b, b"QEMU");
    g.io.pio_read(PioAddress(PIO_DMA_PORT + 4), &mut b).unwrap();
    assert_eq!(&b, b" CFG");
    let mut w = [0u8; 2];
    g.io.pio_read(PioAddress(PIO_DMA_PORT + 2), &mut w).unwrap();
    assert_eq!(&w, b"MU");
}

#[test]
fn dma_read_with_select_and_status() {
    let g = PioGuest::new(&FwCfgBuilder::new());
    g.mem.write_slice(&[0xee; 8], GuestAddress(BUF)).unwrap();
    let st = g.dma(DmaAccess::select(KEY_SIGNATURE, DMA_CTL_READ, 8, BUF));
    assert_eq!(st, 0);
    assert_eq!(g.guest_bytes(BUF, 8), b"QEMU\0\0\0\0");
    // Offset stayed at the end: data port reads zero.
    assert_eq!(g.inb(PIO_DATA_PORT), 0);
}

#[test]
fn dma_skip_then_read_without_select() {
    let g = PioGuest::new(&FwCfgBuilder::new());
    assert_eq!(
        g.dma(DmaAccess::select(KEY_SIGNATURE, DMA_CTL_SKIP, 2, 0)),
        0
    );
    let st = g.dma(DmaAccess {
        control: DMA_CTL_READ,
        length: 2,
        address: BUF,
    });
    assert_eq!(st, 0);
    assert_eq!(g.guest_bytes(BUF, 2), b"MU");
}

#[test]
fn dma_write_and_callback_then_read_back() {
    let (tx, rx) = std::sync::mpsc::channel();
    let mut b = FwCfgBuilder::new();
    b.add_writable_file("etc/vmcoreinfo", vec![0; 16], move |d: &[u8]| {
        tx.send(d.to_vec()).unwrap();
    })
    .unwrap();
    let g = PioGuest::new(&b);
    g.mem.write_slice(&[7; 16], GuestAddress(BUF)).unwrap();
    assert_eq!(g.dma(DmaAccess::select(0x20, DMA_CTL_WRITE, 16, BUF)), 0);
    assert_eq!(rx.try_recv().unwrap(), vec![7; 16]);
    assert_eq!(g.item(0x20, 16), vec![7; 16]);
    // The write channel bit in the selector is fine too.
    assert_eq!(
        g.dma(DmaAccess::select(
            0x20 | KEY_WRITE_CHANNEL,
            DMA_CTL_WRITE,
            17,
            BUF
        )),
        DMA_CTL_ERROR
    );
    assert!(rx.try_recv().is_err());
}

#[test]
fn dma_guest_memory_faults_set_error() {
    let g = PioGuest::new(&FwCfgBuilder::new());
    let beyond = MEM_SIZE as u64 - 2;
    assert_eq!(
        g.dma(DmaAccess::select(KEY_SIGNATURE, DMA_CTL_READ, 4, beyond)),
        DMA_CTL_ERROR
    );
    // Zero-fill that runs off the end of memory.
    assert_eq!(
        g.dma(DmaAccess::select(
            KEY_SIGNATURE,
            DMA_CTL_READ,
            64,
            beyond - 8
        )),
        DMA_CTL_ERROR
    );
    // Descriptor outside memory: nothing to write back, no panic.
    g.outl(PIO_DMA_PORT, 0x10u32.to_be_bytes());
    g.outl(PIO_DMA_PORT + 4, 0u32.to_be_bytes());
    assert_eq!(g.with(|d| d.state().dma_address), 0);
}

#[test]
fn dma_high_half_alone_does_not_start_and_8_byte_write_does() {
    let g = PioGuest::new(&FwCfgBuilder::new());
    g.mem
        .write_slice(
            &DmaAccess::select(KEY_SIGNATURE, DMA_CTL_READ, 4, BUF).to_be_bytes(),
            GuestAddress(DESC),
        )
        .unwrap();
    g.outl(PIO_DMA_PORT, 0u32.to_be_bytes());
    assert_eq!(
        g.control(),
        DMA_CTL_SELECT | DMA_CTL_READ | ((KEY_SIGNATURE as u32) << 16)
    );
    g.io.pio_write(PioAddress(PIO_DMA_PORT), &DESC.to_be_bytes())
        .unwrap();
    assert_eq!(g.control(), 0);
    assert_eq!(g.guest_bytes(BUF, 4), b"QEMU");
}

#[test]
fn reset_and_snapshot_through_the_adapter() {
    let g = PioGuest::new(&FwCfgBuilder::new());
    g.select(KEY_ID);
    g.read(1);
    let s = g.with(|d| d.state());
    assert_eq!(
        s,
        FwCfgState {
            selector: KEY_ID,
            offset: 1,
            dma_address: 0
        }
    );
    g.with(|d| d.reset());
    assert_eq!(g.read(4), b"QEMU");
    g.with(|d| d.restore(&s)).unwrap();
    assert_eq!(g.read(3), [0, 0, 0]);
    let hostile = FwCfgState {
        selector: 0x0100,
        offset: 0,
        dma_address: 0,
    };
    assert!(matches!(
        g.with(|d| d.restore(&hostile)),
        Err(RestoreError::InvalidSelector { selector: 0x100 })
    ));
    let hostile = FwCfgState {
        selector: KEY_ID,
        offset: 5,
        dma_address: 0,
    };
    assert!(g.with(|d| d.restore(&hostile)).is_err());
}
