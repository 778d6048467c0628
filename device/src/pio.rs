// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The x86 port-I/O front end.
//!
//! Register the adapter for the 12-byte window at 0x510
//! ([`abi::PIO_SELECTOR_PORT`], [`abi::PIO_WINDOW_SIZE`]). Decoding follows
//! QEMU's `fw_cfg_io`:
//!
//! | Port(s)        | Access            | Effect                                         |
//! |----------------|-------------------|------------------------------------------------|
//! | 0x510          | 16-bit write      | selector (little-endian)                        |
//! | 0x510 or 0x511 | 8-bit read        | next data byte (QEMU's 2-byte register reads data at both ports) |
//! | 0x510 or 0x511 | 8-bit write       | data write, ignored                            |
//! | 0x510          | 16-bit read       | 0, no advance (QEMU rejects the access)         |
//! | 0x512, 0x513   | any               | unassigned: reads 0xff, writes ignored         |
//! | 0x514          | 32-bit write      | DMA address high half (big-endian)             |
//! | 0x518          | 32-bit write      | DMA address low half (big-endian), runs the DMA |
//! | 0x514..0x51c   | any read          | bytes of `"QEMU CFG"`                          |
//!
//! An access that spans several of these is split as QEMU's memory core
//! splits it. With DMA disabled, 0x514..0x51c are unassigned.
//!
//! Big-endian for the DMA halves means: the bytes the guest's `outl` puts on
//! the bus, read as a big-endian number. A little-endian guest therefore
//! writes `bswap32(value)`, as Linux and OVMF do.

use vm_device::MutDevicePio;
use vm_device::bus::{PioAddress, PioAddressOffset};
use vm_memory::GuestAddressSpace;

use crate::abi;
use crate::device::FwCfg;
use crate::events::{FwCfgEvents, NoEvents};
use crate::regions::{self, Region};

const LAYOUT_DMA: [(u64, u64, Region); 2] = [
    (0, 2, Region::Comb),
    (
        abi::PIO_DMA_OFFSET as u64,
        abi::PIO_WINDOW_SIZE as u64,
        Region::Dma,
    ),
];
const LAYOUT_NO_DMA: [(u64, u64, Region); 1] = [(0, 2, Region::Comb)];
/// What an x86 port nobody decodes reads as.
const UNASSIGNED_PORT: u8 = 0xff;
/// Offset of the low half of the DMA address register (port 0x518).
const DMA_LOW_OFFSET: u16 = abi::PIO_DMA_OFFSET + 4;

/// [`FwCfg`] on x86 I/O ports, as a `vm_device::MutDevicePio`.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use fw_cfg_device::{abi, builder::FwCfgBuilder, pio::FwCfgPio};
/// use vm_device::bus::{PioAddress, PioRange};
/// use vm_device::device_manager::{IoManager, PioManager};
/// use vm_memory::{GuestAddress, GuestMemoryMmap};
///
/// let mem = Arc::new(GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x1000)]).unwrap());
/// let dev = Arc::new(Mutex::new(FwCfgPio::new(FwCfgBuilder::new().build(mem))));
/// let mut io = IoManager::new();
/// let range = PioRange::new(PioAddress(abi::PIO_SELECTOR_PORT), abi::PIO_WINDOW_SIZE).unwrap();
/// io.register_pio(range, dev).unwrap();
///
/// io.pio_write(PioAddress(abi::PIO_SELECTOR_PORT), &abi::KEY_SIGNATURE.to_le_bytes()).unwrap();
/// let mut sig = [0u8; 4];
/// for b in &mut sig {
///     let mut x = [0u8];
///     io.pio_read(PioAddress(abi::PIO_DATA_PORT), &mut x).unwrap();
///     *b = x[0];
/// }
/// assert_eq!(&sig, b"QEMU");
/// ```
#[derive(Debug)]
pub struct FwCfgPio<M: GuestAddressSpace, EV: FwCfgEvents = NoEvents> {
    inner: FwCfg<M, EV>,
}

impl<M: GuestAddressSpace, EV: FwCfgEvents> FwCfgPio<M, EV> {
    /// Wraps a device.
    pub fn new(fw_cfg: FwCfg<M, EV>) -> Self {
        FwCfgPio { inner: fw_cfg }
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

impl<M: GuestAddressSpace, EV: FwCfgEvents> MutDevicePio for FwCfgPio<M, EV> {
    fn pio_read(&mut self, _base: PioAddress, offset: PioAddressOffset, data: &mut [u8]) {
        // Fast path for the access that dominates port-I/O reads, one byte
        // of the data port; the region decoder gives the same result.
        if let ([byte], abi::PIO_DATA_OFFSET) = (&mut *data, offset) {
            *byte = self.inner.read_data();
            return;
        }
        let layout = self.layout();
        regions::read(
            &mut self.inner,
            layout,
            UNASSIGNED_PORT,
            u64::from(offset),
            data,
        );
    }

    fn pio_write(&mut self, _base: PioAddress, offset: PioAddressOffset, data: &[u8]) {
        // Fast paths for the selector write (16-bit, little-endian) and the
        // two 32-bit halves of the DMA address (big-endian; the device
        // ignores them when DMA is off, as the decoder does).
        match (data, offset) {
            (&[lo, hi], abi::PIO_SELECTOR_OFFSET) => {
                self.inner.select(u16::from_le_bytes([lo, hi]));
                return;
            }
            (&[a, b, c, d], abi::PIO_DMA_OFFSET) => {
                self.inner
                    .dma_address_high(u32::from_be_bytes([a, b, c, d]));
                return;
            }
            (&[a, b, c, d], DMA_LOW_OFFSET) => {
                self.inner.dma_address_low(u32::from_be_bytes([a, b, c, d]));
                return;
            }
            _ => {}
        }
        let layout = self.layout();
        regions::write(&mut self.inner, layout, u64::from(offset), data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::*;
    use crate::builder::FwCfgBuilder;
    use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

    type Mem = GuestMemoryMmap<()>;
    const BASE: PioAddress = PioAddress(PIO_SELECTOR_PORT);

    fn mem() -> Mem {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10000)]).unwrap()
    }

    #[test]
    fn selector_le16_and_data_port() {
        let m = mem();
        let mut p = FwCfgPio::new(FwCfgBuilder::new().build(&m));
        p.pio_write(BASE, 0, &KEY_ID.to_le_bytes());
        let mut b = [0u8];
        p.pio_read(BASE, 1, &mut b);
        assert_eq!(b[0], 3);
        // Port 0x510 also reads data, one byte at a time.
        p.pio_write(BASE, 0, &KEY_SIGNATURE.to_le_bytes());
        p.pio_read(BASE, 0, &mut b);
        assert_eq!(b[0], b'Q');
        p.pio_read(BASE, 1, &mut b);
        assert_eq!(b[0], b'E');
        // A 16-bit read is rejected: zero, no advance.
        let mut w = [0xaa; 2];
        p.pio_read(BASE, 0, &mut w);
        assert_eq!(w, [0, 0]);
        p.pio_read(BASE, 1, &mut b);
        assert_eq!(b[0], b'M');
    }

    #[test]
    fn fast_paths_match_the_region_decoder() {
        let m = mem();
        let mut b = FwCfgBuilder::new();
        b.add_file("opt/x", vec![1, 2, 3]).unwrap();
        let mut fast = FwCfgPio::new(b.build(&m));
        let mut slow = b.build(&m);
        // DMA register halves: ignored without DMA, as by the decoder.
        let mut no_dma = FwCfgPio::new(FwCfgBuilder::new().dma(false).build(&m));
        no_dma.pio_write(BASE, 4, &1u32.to_be_bytes());
        no_dma.pio_write(BASE, 8, &0x1000u32.to_be_bytes());
        assert_eq!(no_dma.inner().state().dma_address, 0);
        for key in [KEY_SIGNATURE, KEY_ID, 0x20, 0x4020, 0x3fff, KEY_INVALID] {
            fast.pio_write(BASE, 0, &key.to_le_bytes());
            regions::write(&mut slow, &LAYOUT_DMA, 0, &key.to_le_bytes());
            assert_eq!(fast.inner().state(), slow.state());
            for _ in 0..6 {
                let (mut x, mut y) = ([0xaa], [0x55]);
                fast.pio_read(BASE, 1, &mut x);
                regions::read(&mut slow, &LAYOUT_DMA, UNASSIGNED_PORT, 1, &mut y);
                assert_eq!(x, y, "key {key:#x}");
                assert_eq!(fast.inner().state(), slow.state());
            }
        }
    }

    #[test]
    fn one_byte_writes_are_data_writes() {
        let m = mem();
        let mut p = FwCfgPio::new(FwCfgBuilder::new().build(&m));
        p.pio_write(BASE, 0, &KEY_ID.to_le_bytes());
        p.pio_write(BASE, 0, &[0]);
        p.pio_write(BASE, 1, &[0]);
        assert_eq!(p.inner().state().selector, KEY_ID);
        // A 32-bit write to 0x510 is split as QEMU's memory core splits
        // it: a 16-bit selector write, then two unassigned ports.
        p.pio_write(BASE, 0, &[0x19, 0, 0xaa, 0xbb]);
        assert_eq!(p.inner().state().selector, KEY_FILE_DIR);
        // A 16-bit write at 0x511 is a data write plus an unassigned port.
        p.pio_write(BASE, 1, &[0x01, 0x00]);
        assert_eq!(p.inner().state().selector, KEY_FILE_DIR);
    }

    #[test]
    fn gap_and_dma_register_reads() {
        let m = mem();
        let mut p = FwCfgPio::new(FwCfgBuilder::new().build(&m));
        let mut b = [0u8; 2];
        p.pio_read(BASE, 2, &mut b);
        assert_eq!(b, [0xff, 0xff]);
        let mut d = [0u8; 4];
        p.pio_read(BASE, 4, &mut d);
        assert_eq!(&d, b"QEMU");
        p.pio_read(BASE, 8, &mut d);
        assert_eq!(&d, b" CFG");
        let mut one = [0u8];
        p.pio_read(BASE, 11, &mut one);
        assert_eq!(one[0], b'G');
        let mut p = FwCfgPio::new(FwCfgBuilder::new().dma(false).build(&m));
        p.pio_read(BASE, 4, &mut d);
        assert_eq!(d, [0xff; 4]);
    }

    #[test]
    fn dma_halves_through_ports() {
        let m = mem();
        let mut p = FwCfgPio::new(FwCfgBuilder::new().build(&m));
        m.write_slice(
            &DmaAccess::select(KEY_SIGNATURE, DMA_CTL_READ, 4, 0x3000).to_be_bytes(),
            GuestAddress(0x1000),
        )
        .unwrap();
        p.pio_write(BASE, 4, &0u32.to_be_bytes());
        p.pio_write(BASE, 8, &0x1000u32.to_be_bytes());
        let mut s = [0u8; 4];
        m.read_slice(&mut s, GuestAddress(0x3000)).unwrap();
        assert_eq!(&s, b"QEMU");
        assert_eq!(m.read_obj::<u32>(GuestAddress(0x1000)).unwrap(), 0);
        let p = p.into_inner();
        assert_eq!(p.state().offset, 4);
    }
}
