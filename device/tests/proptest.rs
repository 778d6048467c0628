// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Whatever a guest does, the device does not panic, keeps its invariants
//! and answers within bounded time.

use std::sync::Arc;

use fw_cfg_device::abi::*;
use fw_cfg_device::{FwCfgBuilder, FwCfgMmio, FwCfgPio, FwCfgState, PhysBitsConfig};
use proptest::prelude::*;
use vm_device::bus::{MmioAddress, PioAddress};
use vm_device::{MutDeviceMmio, MutDevicePio};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const MEM: usize = 0x2_0000;

#[derive(Debug, Clone)]
enum Op {
    PioRead(u16, usize),
    PioWrite(u16, Vec<u8>),
    MmioRead(u64, usize),
    MmioWrite(u64, Vec<u8>),
    /// Places a descriptor in guest memory, then kicks it.
    Dma {
        at: u64,
        control: u32,
        length: u32,
        address: u64,
    },
    Poke(u64, Vec<u8>),
    Restore(u16, u32, u64),
    Reset,
}

fn size() -> impl Strategy<Value = usize> {
    prop_oneof![Just(1usize), Just(2), Just(4), Just(8), 0usize..12]
}

fn key() -> impl Strategy<Value = u16> {
    prop_oneof![
        0u16..0x30,
        Just(0x4000),
        Just(0x4020),
        Just(0x8003),
        any::<u16>()
    ]
}

fn addr() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..MEM as u64,
        (MEM as u64 - 32)..(MEM as u64 + 32),
        any::<u64>()
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u16..14, size()).prop_map(|(o, n)| Op::PioRead(o, n)),
        (0u16..14, prop::collection::vec(any::<u8>(), 0..9)).prop_map(|(o, d)| Op::PioWrite(o, d)),
        (0u64..0x1a, size()).prop_map(|(o, n)| Op::MmioRead(o, n)),
        (0u64..0x1a, prop::collection::vec(any::<u8>(), 0..9))
            .prop_map(|(o, d)| Op::MmioWrite(o, d)),
        (
            addr(),
            key(),
            any::<u16>(),
            prop_oneof![0u32..64, Just(u32::MAX), any::<u32>()],
            addr()
        )
            .prop_map(|(at, k, ctl, length, address)| Op::Dma {
                at,
                control: (u32::from(k) << 16) | u32::from(ctl & 0x1f),
                length,
                address
            }),
        (addr(), prop::collection::vec(any::<u8>(), 0..32)).prop_map(|(a, d)| Op::Poke(a, d)),
        (key(), any::<u32>(), any::<u64>()).prop_map(|(s, o, d)| Op::Restore(s, o, d)),
        Just(Op::Reset),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn never_panics_on_any_access_sequence(ops in prop::collection::vec(op(), 1..64)) {
        let mem = Arc::new(GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEM)]).unwrap());
        let mut b = FwCfgBuilder::new();
        b.add_file("opt/a", vec![1; 100]).unwrap();
        b.add_writable_file("etc/w", vec![0; 16], |_| {}).unwrap();
        b.add_file("empty", vec![]).unwrap();
        b.x86_irq0_override(true);
        PhysBitsConfig::host_passthrough(46).add_to(&mut b).unwrap();
        let mut pio = FwCfgPio::new(b.build(mem.clone()));
        let mut mmio = FwCfgMmio::new(b.build(mem.clone()));
        let mut twin = b.build(mem.clone());
        for op in ops {
            match op {
                Op::PioRead(o, n) => {
                    let mut buf = vec![0u8; n];
                    pio.pio_read(PioAddress(PIO_SELECTOR_PORT), o, &mut buf);
                }
                Op::PioWrite(o, d) => pio.pio_write(PioAddress(PIO_SELECTOR_PORT), o, &d),
                Op::MmioRead(o, n) => {
                    let mut buf = vec![0u8; n];
                    mmio.mmio_read(MmioAddress(MMIO_BASE_ARM_VIRT), o, &mut buf);
                }
                Op::MmioWrite(o, d) => mmio.mmio_write(MmioAddress(MMIO_BASE_ARM_VIRT), o, &d),
                Op::Dma { at, control, length, address } => {
                    let d = DmaAccess { control, length, address };
                    let _ = mem.write_slice(&d.to_be_bytes(), GuestAddress(at));
                    pio.inner_mut().dma_address_u64(at);
                    mmio.inner_mut().dma_address_high((at >> 32) as u32);
                    mmio.inner_mut().dma_address_low(at as u32);
                }
                Op::Poke(a, d) => {
                    let _ = mem.write_slice(&d, GuestAddress(a));
                }
                Op::Restore(selector, offset, dma_address) => {
                    let s = FwCfgState { selector, offset, dma_address };
                    let before = pio.inner().state();
                    if pio.inner_mut().restore(&s).is_err() {
                        prop_assert_eq!(pio.inner().state(), before);
                    }
                }
                Op::Reset => {
                    pio.inner_mut().reset();
                    mmio.inner_mut().reset();
                }
            }
            for dev in [pio.inner(), mmio.inner()] {
                // Invariant: the offset never passes the end of the item.
                let s = dev.state();
                let len = dev.item_bytes(s.selector).map_or(0, |d| d.len() as u32);
                prop_assert!(s.offset <= len, "{:?} len {}", s, len);
                // A state the device reached restores on a same-config twin.
                let restored = twin.restore(&s);
                prop_assert!(restored.is_ok(), "{:?}: {:?}", s, restored);
            }
        }
    }
}
