// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Regression tests for defects found in other Rust fw_cfg implementations,
//! one test per defect, each named after it.

mod common;

use common::*;
use fw_cfg_device::abi::*;
use fw_cfg_device::{BuildError, FILE_SLOTS_MIN, FwCfgBuilder, FwCfgState, RestoreError};
use vm_device::bus::{MmioAddress, MmioRange};
use vm_device::device_manager::MmioManager;
use vm_memory::{Bytes, GuestAddress};

#[test]
fn id_item_has_wrong_byte_order() {
    let g = PioGuest::new(&FwCfgBuilder::new());
    assert_eq!(g.item(KEY_ID, 4), [0x03, 0, 0, 0]);
    let mut b = FwCfgBuilder::new();
    b.dma(false);
    let g = PioGuest::new(&b);
    assert_eq!(g.item(KEY_ID, 4), [0x01, 0, 0, 0]);
}

#[test]
fn selector_with_bit14_panics() {
    let g = PioGuest::new(&FwCfgBuilder::new());
    for key in [
        0x4000u16, 0x4001, 0x4019, 0x7fff, 0xc000, 0xc003, 0xffff, 0xbfff,
    ] {
        g.select(key);
        g.read(8);
        g.dma(DmaAccess::select(key, DMA_CTL_READ, 8, BUF));
        g.dma(DmaAccess::select(key, DMA_CTL_WRITE, 8, BUF));
    }
    assert_eq!(g.item(KEY_SIGNATURE | KEY_WRITE_CHANNEL, 4), b"QEMU");
    assert_eq!(g.with(|d| d.state().selector), 0x4000);
}

#[test]
fn dma_skip_write_not_recognised_or_select_misread() {
    let mut b = FwCfgBuilder::new();
    b.add_writable_file("etc/w", vec![0; 4], |_| {}).unwrap();
    let g = PioGuest::new(&b);
    // SELECT takes bits 31..16 of the control word.
    assert_eq!(g.dma(DmaAccess::select(KEY_FILE_DIR, 0, 0, 0)), 0);
    assert_eq!(g.with(|d| d.state().selector), KEY_FILE_DIR);
    // SKIP advances.
    assert_eq!(g.dma(DmaAccess::select(0x20, DMA_CTL_SKIP, 3, 0)), 0);
    assert_eq!(g.with(|d| d.state().offset), 3);
    // WRITE writes.
    g.mem.write_slice(&[0x5a], GuestAddress(BUF)).unwrap();
    assert_eq!(
        g.dma(DmaAccess {
            control: DMA_CTL_WRITE,
            length: 1,
            address: BUF
        }),
        0
    );
    assert_eq!(
        g.with(|d| d.item_bytes(0x20).unwrap().to_vec()),
        [0, 0, 0, 0x5a]
    );
}

#[test]
fn mmio_window_registered_too_small_to_reach_dma() {
    assert_eq!(MMIO_WINDOW_SIZE, 0x18);
    let g = MmioGuest::new(&FwCfgBuilder::new());
    g.put_desc(DmaAccess::select(KEY_SIGNATURE, DMA_CTL_READ, 4, BUF));
    g.io.mmio_write(
        MmioAddress(MMIO_BASE + MMIO_DMA_OFFSET + 4),
        &(DESC as u32).to_be_bytes(),
    )
    .unwrap();
    assert_eq!(g.control(), 0);
    // The ranges a VMM registers must cover the DMA register.
    let r = MmioRange::new(MmioAddress(MMIO_BASE), MMIO_WINDOW_SIZE).unwrap();
    assert!(r.last() >= MmioAddress(MMIO_BASE + MMIO_DMA_OFFSET + 7));
}

#[test]
fn dma_read_past_end_not_zero_filled() {
    let g = PioGuest::new(&FwCfgBuilder::new());
    g.mem.write_slice(&[0xcc; 64], GuestAddress(BUF)).unwrap();
    assert_eq!(g.dma(DmaAccess::select(KEY_ID, DMA_CTL_READ, 64, BUF)), 0);
    let v = g.guest_bytes(BUF, 64);
    assert_eq!(&v[..4], &[3, 0, 0, 0]);
    assert!(v[4..].iter().all(|&b| b == 0));
    // An unknown key reads as zeros too.
    g.mem.write_slice(&[0xcc; 64], GuestAddress(BUF)).unwrap();
    assert_eq!(g.dma(DmaAccess::select(0x1f, DMA_CTL_READ, 64, BUF)), 0);
    assert!(g.guest_bytes(BUF, 64).iter().all(|&b| b == 0));
}

#[test]
fn directory_not_sorted() {
    let mut b = FwCfgBuilder::new();
    for n in [
        "opt/b",
        "etc/table-loader",
        "bootorder",
        "etc/acpi/tables",
        "opt/B",
        "opt/a",
    ] {
        b.add_file(n, vec![]).unwrap();
    }
    let g = PioGuest::new(&b);
    let names: Vec<String> = g.directory().into_iter().map(|e| e.0).collect();
    let mut sorted = names.clone();
    sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(names, sorted);
    assert_eq!(names[0], "bootorder");
    assert_eq!(names[3], "opt/B");
}

#[test]
fn no_slot_limit() {
    let mut b = FwCfgBuilder::new();
    b.file_slots(FILE_SLOTS_MIN).unwrap();
    for i in 0..FILE_SLOTS_MIN {
        b.add_file(&format!("opt/{i}"), vec![]).unwrap();
    }
    assert!(matches!(
        b.add_file("opt/overflow", vec![]),
        Err(BuildError::NoFreeSlot { slots: 0x10 })
    ));
    assert!(matches!(
        b.file_slots(FILE_SLOTS_MAX + 1),
        Err(BuildError::InvalidFileSlots { .. })
    ));
}

#[test]
fn no_reset_or_snapshot() {
    let g = PioGuest::new(&FwCfgBuilder::new());
    g.select(KEY_UUID);
    g.read(3);
    let s = g.with(|d| d.state());
    g.with(|d| d.reset());
    assert_eq!(g.with(|d| d.state().selector), KEY_SIGNATURE);
    let other = PioGuest::new(&FwCfgBuilder::new());
    other.with(|d| d.restore(&s)).unwrap();
    assert_eq!(other.with(|d| d.state()), s);
    assert_eq!(
        other
            .with(|d| d.restore(&FwCfgState {
                selector: 0x8000 | 0x1000,
                offset: 0,
                dma_address: 0
            }))
            .map_err(|e| e.to_string()),
        Err("fw_cfg state has an out-of-range selector 0x9000".to_string())
    );
}

#[test]
fn pio_so_slow_that_a_1mib_file_takes_seconds() {
    // The fix for this defect class is DMA: one descriptor moves the whole
    // file in one bulk copy. Speed is measured by `benches/dma.rs`; this test
    // checks that the 1 MiB transfer is complete and exact, and that the
    // byte-wise port path returns the same bytes.
    const SIZE: usize = 1 << 20;
    let content: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    let mut b = FwCfgBuilder::new();
    b.add_file("opt/big", content.clone()).unwrap();
    let g = PioGuest::new(&b);
    assert_eq!(
        g.dma(DmaAccess::select(0x20, DMA_CTL_READ, SIZE as u32, BUF)),
        0
    );
    assert_eq!(g.guest_bytes(BUF, SIZE), content);
    // One descriptor, one transfer: the offset is at the end of the item.
    assert_eq!(g.with(|d| d.state().offset), SIZE as u32);
    g.select(0x20);
    assert_eq!(g.read(64 * 1024), content[..64 * 1024]);
}

/// QEMU's CVE-2016-1714: a migration stream with an out-of-range current
/// entry made `fw_cfg_read` index past the entry table. A hostile snapshot
/// must be rejected with an error and leave the device exactly as it was.
#[test]
fn hostile_snapshot_restore_cve_2016_1714() {
    let mut b = FwCfgBuilder::new();
    b.add_file("opt/a", vec![7; 10]).unwrap();
    b.x86_irq0_override(true);
    let g = PioGuest::new(&b);
    g.select(0x20);
    g.read(3);
    let good = g.with(|d| d.state());
    let hostile = [
        // Selectors beyond the 0x20 file slots, with and without bits 14/15.
        (0x40, 0),
        (0x3fff, 0),
        (0x4000 | 0x40, 0),
        (0x8000 | 0x40, 0),
        (0xc000 | 0x3ffe, 0),
        (0xfffe, 0),
        // Offsets past the end of the selected item.
        (0x20, 11),
        (0x20 | KEY_WRITE_CHANNEL, 11),
        (KEY_SIGNATURE, 5),
        (KEY_X86_IRQ0_OVERRIDE, 5),
        (0x20, u32::MAX),
        // Unknown keys and "nothing selected" only allow offset 0.
        (0x1f, 1),
        (0x21, 1),
        (KEY_INVALID, 1),
        (KEY_INVALID, u32::MAX),
    ];
    for (selector, offset) in hostile {
        let bad = FwCfgState {
            selector,
            offset,
            dma_address: 0xdead_beef,
        };
        let r = g.with(|d| d.restore(&bad));
        assert!(
            matches!(
                r,
                Err(RestoreError::InvalidSelector { .. } | RestoreError::InvalidOffset { .. })
            ),
            "{bad:?} accepted: {r:?}"
        );
        assert_eq!(g.with(|d| d.state()), good, "{bad:?} changed the state");
    }
    // The device carries on where it was.
    assert_eq!(g.read(8), [7, 7, 7, 7, 7, 7, 7, 0]);
    // Edge values that are valid are accepted.
    for (selector, offset) in [(0x20, 10), (0x3f, 0), (KEY_INVALID, 0), (0x1f, 0)] {
        let ok = FwCfgState {
            selector,
            offset,
            dma_address: 0,
        };
        g.with(|d| d.restore(&ok)).unwrap();
        assert_eq!(g.with(|d| d.state()), ok);
        assert_eq!(g.read(1), [0]);
    }
}

/// Firmware such as OVMF polls the DMA control word until it clears; a
/// device that leaves it untouched on an error path hangs the guest. Every
/// outcome, error or not, writes the control word back.
#[test]
fn dma_control_word_not_written_back() {
    let mut b = FwCfgBuilder::new();
    b.add_writable_file("etc/w", vec![0; 4], |_| {}).unwrap();
    let g = PioGuest::new(&b);
    let cases = [
        (DmaAccess::select(KEY_SIGNATURE, DMA_CTL_READ, 4, BUF), 0),
        (
            DmaAccess::select(KEY_SIGNATURE, DMA_CTL_READ, 4, 1 << 40),
            DMA_CTL_ERROR,
        ),
        (
            DmaAccess::select(KEY_SIGNATURE, DMA_CTL_WRITE, 4, BUF),
            DMA_CTL_ERROR,
        ),
        (
            DmaAccess::select(0x20, DMA_CTL_WRITE, 5, BUF),
            DMA_CTL_ERROR,
        ),
        (
            DmaAccess::select(0x1f, DMA_CTL_WRITE, 1, BUF),
            DMA_CTL_ERROR,
        ),
        (DmaAccess::select(0x3000, DMA_CTL_READ, 4, BUF), 0),
        (DmaAccess::select(KEY_ID, 0, 0, 0), 0),
        (DmaAccess::select(KEY_ID, DMA_CTL_SKIP, u32::MAX, 0), 0),
        // Unknown control bits and the ERROR bit itself are ignored.
        (DmaAccess::select(KEY_ID, 0xffe0 | DMA_CTL_ERROR, 0, 0), 0),
    ];
    for (desc, want) in cases {
        assert_eq!(g.dma(desc), want, "{desc:?}");
    }
}
