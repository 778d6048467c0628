// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The MMIO front end (Arm and RISC-V `virt` layout).
//!
//! Register the adapter for a 0x18-byte window ([`abi::MMIO_WINDOW_SIZE`]),
//! e.g. at [`abi::MMIO_BASE_ARM_VIRT`]. Decoding follows QEMU's `fw_cfg_mem`
//! with an 8-byte data register:
//!
//! | Offset   | Access                 | Effect                                        |
//! |----------|------------------------|-----------------------------------------------|
//! | +0       | 1, 2, 4 or 8-byte read | the next bytes of the item, in item order; zeros past the end |
//! | +0       | write                  | data write, ignored                           |
//! | +1..+8   | any                    | 0 / ignored (QEMU accepts the data register only at +0) |
//! | +8       | 16-bit write           | selector (big-endian)                         |
//! | +8       | read, or other sizes   | 0 / ignored                                   |
//! | +10..+16 | any                    | unassigned: reads 0, writes ignored           |
//! | +16      | 32-bit write           | DMA address high half (big-endian)            |
//! | +20      | 32-bit write           | DMA address low half (big-endian), runs the DMA |
//! | +16      | 64-bit write           | whole DMA address (big-endian), runs the DMA  |
//! | +16..+24 | any read               | bytes of `"QEMU CFG"`                         |
//!
//! "Item order" means the access's bytes in memory are the item's bytes: a
//! little-endian guest that loads 8 bytes sees the first item byte in the
//! least significant position, exactly as with QEMU's big-endian data region.

use vm_device::MutDeviceMmio;
use vm_device::bus::{MmioAddress, MmioAddressOffset};
use vm_memory::GuestAddressSpace;

use crate::abi;
use crate::device::FwCfg;
use crate::events::{FwCfgEvents, NoEvents};
use crate::regions::{self, Region};

const LAYOUT_DMA: [(u64, u64, Region); 3] = [
    (
        abi::MMIO_DATA_OFFSET,
        abi::MMIO_SELECTOR_OFFSET,
        Region::Data,
    ),
    (
        abi::MMIO_SELECTOR_OFFSET,
        abi::MMIO_SELECTOR_OFFSET + 2,
        Region::Ctl,
    ),
    (abi::MMIO_DMA_OFFSET, abi::MMIO_WINDOW_SIZE, Region::Dma),
];
const LAYOUT_NO_DMA: [(u64, u64, Region); 2] = [
    (
        abi::MMIO_DATA_OFFSET,
        abi::MMIO_SELECTOR_OFFSET,
        Region::Data,
    ),
    (
        abi::MMIO_SELECTOR_OFFSET,
        abi::MMIO_SELECTOR_OFFSET + 2,
        Region::Ctl,
    ),
];

/// [`FwCfg`] on MMIO, as a `vm_device::MutDeviceMmio`.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use fw_cfg_device::{abi, builder::FwCfgBuilder, mmio::FwCfgMmio};
/// use vm_device::bus::{MmioAddress, MmioRange};
/// use vm_device::device_manager::{IoManager, MmioManager};
/// use vm_memory::{GuestAddress, GuestMemoryMmap};
///
/// let mem = Arc::new(GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x1000)]).unwrap());
/// let dev = Arc::new(Mutex::new(FwCfgMmio::new(FwCfgBuilder::new().build(mem))));
/// let base = abi::MMIO_BASE_ARM_VIRT;
/// let mut io = IoManager::new();
/// io.register_mmio(MmioRange::new(MmioAddress(base), abi::MMIO_WINDOW_SIZE).unwrap(), dev)
///     .unwrap();
/// io.mmio_write(MmioAddress(base + 8), &abi::KEY_SIGNATURE.to_be_bytes()).unwrap();
/// let mut sig = [0u8; 4];
/// io.mmio_read(MmioAddress(base), &mut sig).unwrap();
/// assert_eq!(&sig, b"QEMU");
/// ```
#[derive(Debug)]
pub struct FwCfgMmio<M: GuestAddressSpace, EV: FwCfgEvents = NoEvents> {
    inner: FwCfg<M, EV>,
}

impl<M: GuestAddressSpace, EV: FwCfgEvents> FwCfgMmio<M, EV> {
    /// Wraps a device.
    pub fn new(fw_cfg: FwCfg<M, EV>) -> Self {
        FwCfgMmio { inner: fw_cfg }
    }

    /// The device.
    pub fn inner(&self) -> &FwCfg<M, EV> {
        &self.inner
    }

    /// The device, mutably (for reset, snapshot and restore).
    pub fn inner_mut(&mut self) -> &mut FwCfg<M, EV> {
        &mut self.inner
    }

    /// Unwraps the device.
    pub fn into_inner(self) -> FwCfg<M, EV> {
        self.inner
    }

    fn layout(&self) -> &'static [(u64, u64, Region)] {
        if self.inner.dma_enabled() {
            &LAYOUT_DMA
        } else {
            &LAYOUT_NO_DMA
        }
    }
}

impl<M: GuestAddressSpace, EV: FwCfgEvents> MutDeviceMmio for FwCfgMmio<M, EV> {
    fn mmio_read(&mut self, _base: MmioAddress, offset: MmioAddressOffset, data: &mut [u8]) {
        // Fast path for data-register reads of 1..=8 bytes, which stay
        // inside the data region; the region decoder gives the same result.
        if offset == abi::MMIO_DATA_OFFSET && (1..=8).contains(&data.len()) {
            self.inner.read_data_into(data);
            return;
        }
        let layout = self.layout();
        regions::read(&mut self.inner, layout, 0, offset, data);
    }

    fn mmio_write(&mut self, _base: MmioAddress, offset: MmioAddressOffset, data: &[u8]) {
        let layout = self.layout();
        regions::write(&mut self.inner, layout, offset, data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::*;
    use crate::builder::FwCfgBuilder;
    use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

    type Mem = GuestMemoryMmap<()>;
    const BASE: MmioAddress = MmioAddress(MMIO_BASE_ARM_VIRT);

    fn mem() -> Mem {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10000)]).unwrap()
    }

    #[test]
    fn wide_reads_in_item_order() {
        let m = mem();
        let mut b = FwCfgBuilder::new();
        b.add_file("f", (0u8..11).collect()).unwrap();
        let mut d = FwCfgMmio::new(b.build(&m));
        d.mmio_write(BASE, 8, &0x20u16.to_be_bytes());
        let mut one = [0u8; 1];
        let mut two = [0u8; 2];
        let mut four = [0u8; 4];
        let mut eight = [0u8; 8];
        d.mmio_read(BASE, 0, &mut one);
        d.mmio_read(BASE, 0, &mut two);
        d.mmio_read(BASE, 0, &mut four);
        d.mmio_read(BASE, 0, &mut eight);
        assert_eq!(one, [0]);
        assert_eq!(two, [1, 2]);
        assert_eq!(four, [3, 4, 5, 6]);
        assert_eq!(eight, [7, 8, 9, 10, 0, 0, 0, 0]);
        assert_eq!(d.inner().state().offset, 11);
    }

    #[test]
    fn selector_is_big_endian_and_write_only() {
        let m = mem();
        let mut d = FwCfgMmio::new(FwCfgBuilder::new().build(&m));
        d.mmio_write(BASE, 8, &[0x00, 0x01]);
        assert_eq!(d.inner().state().selector, KEY_ID);
        let mut two = [0xaa; 2];
        d.mmio_read(BASE, 8, &mut two);
        assert_eq!(two, [0, 0]);
        // Wrong sizes are ignored.
        d.mmio_write(BASE, 8, &[0x00]);
        d.mmio_write(BASE, 9, &[0x00]);
        assert_eq!(d.inner().state().selector, KEY_ID);
        // A 4-byte write at +8 splits into the 2-byte selector and the gap.
        d.mmio_write(BASE, 8, &[0, 0x19, 0xaa, 0xbb]);
        assert_eq!(d.inner().state().selector, KEY_FILE_DIR);
        // Data reads away from +0 are rejected.
        let mut four = [0xaa; 4];
        d.mmio_read(BASE, 4, &mut four);
        assert_eq!(four, [0; 4]);
        assert_eq!(d.inner().state().offset, 0);
        // Unassigned gap.
        d.mmio_read(BASE, 12, &mut four);
        assert_eq!(four, [0; 4]);
    }

    #[test]
    fn dma_register_and_64_bit_kick() {
        let m = mem();
        let mut d = FwCfgMmio::new(FwCfgBuilder::new().build(&m));
        let mut eight = [0u8; 8];
        d.mmio_read(BASE, 16, &mut eight);
        assert_eq!(&eight, b"QEMU CFG");
        m.write_slice(
            &DmaAccess::select(KEY_SIGNATURE, DMA_CTL_READ, 4, 0x3000).to_be_bytes(),
            GuestAddress(0x1000),
        )
        .unwrap();
        d.mmio_write(BASE, 16, &0x1000u64.to_be_bytes());
        let mut s = [0u8; 4];
        m.read_slice(&mut s, GuestAddress(0x3000)).unwrap();
        assert_eq!(&s, b"QEMU");
        // A 64-bit write at +20 is not a DMA kick.
        d.mmio_write(BASE, 20, &0x1000u32.to_be_bytes()[..2]);
        assert_eq!(d.inner().state().dma_address, 0);
        let d = d.into_inner();
        assert!(d.dma_enabled());
    }
}
