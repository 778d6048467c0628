// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The register windows of the device: QEMU's access splitting, as
//! inherent methods of [`FwCfg`] that any bus can call.
//!
//! QEMU maps fw_cfg as several small memory regions (control/data, DMA)
//! inside a window, and its memory core splits an access that crosses
//! region boundaries into one access per region. Each window is described
//! here as a layout of [`Region`]s; this module performs the same split,
//! then applies each region's rules for the piece's size.

use vm_memory::GuestAddressSpace;

use crate::abi;
use crate::device::FwCfg;
use crate::events::FwCfgEvents;

/// What a part of a register window decodes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Region {
    /// x86: the 2-byte selector/data combination at 0x510.
    Comb,
    /// MMIO: the data register (reads of 1..=8 bytes at its start).
    Data,
    /// MMIO: the big-endian 16-bit selector.
    Ctl,
    /// The 8-byte big-endian DMA address register.
    Dma,
    /// Nothing is mapped here.
    Unassigned,
}

/// One region of a window: `[start, end)`.
type Layout = [(u64, u64, Region)];

/// Calls `f(region, offset in region, range in the access buffer)` for each
/// piece of an access of `len` bytes at `offset`.
fn for_each_piece(
    layout: &Layout,
    offset: u64,
    len: usize,
    mut f: impl FnMut(Region, u64, std::ops::Range<usize>),
) {
    let mut done = 0usize;
    while done < len {
        let pos = offset.saturating_add(done as u64);
        let remaining = (len - done) as u64;
        let (region, start, end) = match layout.iter().find(|(s, e, _)| *s <= pos && pos < *e) {
            Some(&(s, e, r)) => (r, s, e),
            None => {
                // Unassigned up to the next region (or the end of the access).
                let next = layout
                    .iter()
                    .map(|(s, _, _)| *s)
                    .filter(|&s| s > pos)
                    .min()
                    .unwrap_or(u64::MAX);
                (Region::Unassigned, pos, next)
            }
        };
        let n = remaining.min(end - pos).max(1);
        // QEMU's memory core then cuts the piece into accesses its region
        // takes (`memory_access_size`): each at most the region's
        // `.valid.max_access_size` (4 when unset), at most the alignment of
        // its offset in the region, rounded down to a power of two.
        let mut sub = 0u64;
        while sub < n {
            let off = pos - start + sub;
            let l = match region.valid_max() {
                Some(max) => access_size(max, n - sub, off),
                None => n - sub,
            };
            // sub + l <= n <= remaining, which came from a usize.
            let at = done + sub as usize;
            f(region, off, at..at + l as usize);
            sub += l;
        }
        done += n as usize;
    }
}

impl Region {
    /// QEMU's `.valid.max_access_size` of the region's `MemoryRegionOps`
    /// (hw/nvram/fw_cfg.c), 4 where it is unset; `None` for what no region
    /// decodes (its pieces are answered whole).
    fn valid_max(self) -> Option<u64> {
        match self {
            // `fw_cfg_comb_mem_ops`, `fw_cfg_ctl_mem_ops`: unset.
            Region::Comb | Region::Ctl => Some(4),
            // The MMIO data register of `data_width` 8, and
            // `fw_cfg_dma_mem_ops`.
            Region::Data | Region::Dma => Some(8),
            Region::Unassigned => None,
        }
    }
}

/// QEMU's `memory_access_size`: the size of the next access of at most
/// `len` (>= 1) bytes at `offset` in a region taking at most `max` bytes
/// and aligned accesses only.
fn access_size(max: u64, len: u64, offset: u64) -> u64 {
    let align = offset & offset.wrapping_neg();
    let max = if align != 0 { max.min(align) } else { max };
    let l = len.min(max).max(1);
    1 << (63 - l.leading_zeros())
}

/// A read through a window.
fn read<M: GuestAddressSpace, EV: FwCfgEvents>(
    dev: &mut FwCfg<M, EV>,
    layout: &Layout,
    unassigned: u8,
    offset: u64,
    data: &mut [u8],
) {
    for_each_piece(layout, offset, data.len(), |region, off, range| {
        let buf = &mut data[range];
        match region {
            Region::Comb if buf.len() == 1 => buf[0] = dev.read_data(),
            Region::Data if off == 0 => dev.read_data_into(buf),
            // Accesses QEMU's `.valid.accepts` rejects read as 0.
            Region::Comb | Region::Data | Region::Ctl => buf.fill(0),
            Region::Dma => dev.dma_register_read(off, buf),
            Region::Unassigned => buf.fill(unassigned),
        }
    });
}

/// A write through a window. The combined x86 register takes a
/// little-endian selector, the MMIO control register a big-endian one.
fn write<M: GuestAddressSpace, EV: FwCfgEvents>(
    dev: &mut FwCfg<M, EV>,
    layout: &Layout,
    offset: u64,
    data: &[u8],
) {
    for_each_piece(layout, offset, data.len(), |region, off, range| {
        let buf = &data[range];
        match (region, off, buf.len()) {
            (Region::Comb, _, 1) => dev.write_data(buf[0]),
            (Region::Comb, 0, 2) => dev.select(u16::from_le_bytes([buf[0], buf[1]])),
            (Region::Data, 0, _) => buf.iter().for_each(|&b| dev.write_data(b)),
            (Region::Ctl, 0, 2) => dev.select(u16::from_be_bytes([buf[0], buf[1]])),
            (Region::Dma, 0, 4) => dev.dma_address_high(be32(buf)),
            (Region::Dma, 4, 4) => dev.dma_address_low(be32(buf)),
            (Region::Dma, 0, 8) => {
                let mut b = [0u8; 8];
                b.copy_from_slice(buf);
                dev.dma_address_u64(u64::from_be_bytes(b));
            }
            // Everything else is rejected by QEMU and has no effect.
            _ => {}
        }
    });
}

const PIO_LAYOUT_DMA: [(u64, u64, Region); 2] = [
    (0, 2, Region::Comb),
    (
        abi::PIO_DMA_OFFSET as u64,
        abi::PIO_WINDOW_SIZE as u64,
        Region::Dma,
    ),
];
const PIO_LAYOUT_NO_DMA: [(u64, u64, Region); 1] = [(0, 2, Region::Comb)];
/// What an x86 port nobody decodes reads as.
const UNASSIGNED_PORT: u8 = 0xff;
/// Offset of the low half of the DMA address register (port 0x518).
const PIO_DMA_LOW_OFFSET: u16 = abi::PIO_DMA_OFFSET + 4;

const MMIO_DATA: (u64, u64, Region) = (
    abi::MMIO_DATA_OFFSET,
    abi::MMIO_SELECTOR_OFFSET,
    Region::Data,
);
const MMIO_CTL: (u64, u64, Region) = (
    abi::MMIO_SELECTOR_OFFSET,
    abi::MMIO_SELECTOR_OFFSET + 2,
    Region::Ctl,
);
const MMIO_LAYOUT_DMA: [(u64, u64, Region); 3] = [
    MMIO_DATA,
    MMIO_CTL,
    (abi::MMIO_DMA_OFFSET, abi::MMIO_WINDOW_SIZE, Region::Dma),
];
const MMIO_LAYOUT_NO_DMA: [(u64, u64, Region); 2] = [MMIO_DATA, MMIO_CTL];
/// What an unassigned MMIO offset reads as.
const UNASSIGNED_MMIO: u8 = 0;

/// Reads four bytes as a big-endian number (`buf` is a 4-byte piece).
fn be32(buf: &[u8]) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[..4]);
    u32::from_be_bytes(b)
}

impl<M: GuestAddressSpace, EV: FwCfgEvents> FwCfg<M, EV> {
    fn pio_layout(&self) -> &'static Layout {
        if self.dma_enabled() {
            &PIO_LAYOUT_DMA
        } else {
            &PIO_LAYOUT_NO_DMA
        }
    }

    fn mmio_layout(&self) -> &'static Layout {
        if self.dma_enabled() {
            &MMIO_LAYOUT_DMA
        } else {
            &MMIO_LAYOUT_NO_DMA
        }
    }

    /// A read of `data.len()` bytes at `offset` in the x86 port window
    /// (`offset` 0 is port 0x510, [`abi::PIO_SELECTOR_PORT`]; the window is
    /// [`abi::PIO_WINDOW_SIZE`] ports). Decoding follows QEMU's `fw_cfg_io`:
    ///
    /// | Port(s)        | Access      | Effect                                         |
    /// |----------------|-------------|------------------------------------------------|
    /// | 0x510 or 0x511 | 8-bit read  | next data byte (QEMU's 2-byte register reads data at both ports) |
    /// | 0x510          | 16-bit read | 0, no advance (QEMU rejects the access)        |
    /// | 0x512, 0x513   | any         | unassigned: reads 0xff                         |
    /// | 0x514..0x51c   | any read    | bytes of `"QEMU CFG"`                          |
    ///
    /// An access that spans several of these is split as QEMU's memory core
    /// splits it, one piece per region, each answered by that region's
    /// rules for the piece's size (so a 4-byte read at 0x512 gives two
    /// 0xff bytes and the first two signature bytes). With DMA disabled,
    /// 0x514..0x51c are unassigned too. Offsets beyond the window read as
    /// unassigned ports. Never fails and never panics.
    ///
    /// ```
    /// use fw_cfg_device::{FwCfgBuilder, abi};
    /// use vm_memory::{GuestAddress, GuestMemoryMmap};
    ///
    /// let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x1000)]).unwrap();
    /// let mut dev = FwCfgBuilder::new().build(&mem);
    /// // A custom bus forwards port accesses relative to 0x510.
    /// dev.pio_write(abi::PIO_SELECTOR_OFFSET, &abi::KEY_SIGNATURE.to_le_bytes());
    /// let mut sig = [0u8; 4];
    /// for b in &mut sig {
    ///     dev.pio_read(abi::PIO_DATA_OFFSET, std::slice::from_mut(b));
    /// }
    /// assert_eq!(&sig, b"QEMU");
    /// ```
    pub fn pio_read(&mut self, offset: u16, data: &mut [u8]) {
        // Fast path for the access that dominates port-I/O reads, one byte
        // of the data port; the region decoder gives the same result.
        if let ([byte], abi::PIO_DATA_OFFSET) = (&mut *data, offset) {
            *byte = self.read_data();
            return;
        }
        let layout = self.pio_layout();
        read(self, layout, UNASSIGNED_PORT, u64::from(offset), data);
    }

    /// A write of `data` at `offset` in the x86 port window (see
    /// [`pio_read`](Self::pio_read)). Decoding follows QEMU's `fw_cfg_io`:
    ///
    /// | Port(s)        | Access       | Effect                                          |
    /// |----------------|--------------|-------------------------------------------------|
    /// | 0x510          | 16-bit write | selector (little-endian)                        |
    /// | 0x510 or 0x511 | 8-bit write  | data write, ignored                             |
    /// | 0x512, 0x513   | any          | unassigned: ignored                             |
    /// | 0x514          | 32-bit write | DMA address high half (big-endian)              |
    /// | 0x518          | 32-bit write | DMA address low half (big-endian), runs the DMA |
    /// | 0x514          | 64-bit write | whole DMA address (big-endian), runs the DMA    |
    ///
    /// Other widths at these ports are rejected by QEMU and have no effect;
    /// an access spanning several regions is split as for reads (a 32-bit
    /// write at 0x510 is a selector write plus two unassigned ports). With
    /// DMA disabled the DMA ports are unassigned.
    ///
    /// Big-endian for the DMA halves means: the bytes the guest's `outl`
    /// puts on the bus, read as a big-endian number. A little-endian guest
    /// therefore writes `bswap32(value)`, as Linux and OVMF do.
    pub fn pio_write(&mut self, offset: u16, data: &[u8]) {
        // Fast paths for the selector write (16-bit, little-endian) and the
        // two 32-bit halves of the DMA address (big-endian; the device
        // ignores them when DMA is off, as the decoder does).
        match (data, offset) {
            (&[lo, hi], abi::PIO_SELECTOR_OFFSET) => self.select(u16::from_le_bytes([lo, hi])),
            (&[_, _, _, _], abi::PIO_DMA_OFFSET) => self.dma_address_high(be32(data)),
            (&[_, _, _, _], PIO_DMA_LOW_OFFSET) => self.dma_address_low(be32(data)),
            _ => {
                let layout = self.pio_layout();
                write(self, layout, u64::from(offset), data);
            }
        }
    }

    /// A read of `data.len()` bytes at `offset` in the MMIO window (Arm and
    /// RISC-V `virt` layout, [`abi::MMIO_WINDOW_SIZE`] bytes, e.g. at
    /// [`abi::MMIO_BASE_ARM_VIRT`]). Decoding follows QEMU's `fw_cfg_mem`
    /// with an 8-byte data register:
    ///
    /// | Offset   | Access                 | Effect                                        |
    /// |----------|------------------------|-----------------------------------------------|
    /// | +0       | 1, 2, 4 or 8-byte read | the next bytes of the item, in item order; zeros past the end |
    /// | +0       | 3, 5, 6 or 7-byte read | 2 or 4 item bytes, then zeros (see below)     |
    /// | +1..+8   | any                    | 0 (QEMU accepts the data register only at +0) |
    /// | +8       | any read               | 0 (the selector is write-only)                |
    /// | +10..+16 | any                    | unassigned: 0                                 |
    /// | +16..+24 | any read               | bytes of `"QEMU CFG"`                         |
    ///
    /// "Item order" means the access's bytes in memory are the item's
    /// bytes: a little-endian guest that loads 8 bytes sees the first item
    /// byte in the least significant position, exactly as with QEMU's
    /// big-endian data region. An access is split as QEMU's memory core
    /// splits it: at region edges, then into accesses of at most the
    /// region's valid size (8 for data and DMA, 4 elsewhere) and of the
    /// alignment of their offset, each rounded down to a power of two
    /// (`memory_access_size`). So a 3-byte read at +0 is a 2-byte data read
    /// plus a rejected 1-byte read at +2 (0), and a 6-byte write at +18 is a
    /// rejected 2-byte write plus the 4-byte low half at +20, which starts a
    /// transfer. With DMA disabled, +16..+24 is
    /// unassigned. Offsets beyond the window read 0. Never fails and never
    /// panics.
    ///
    /// ```
    /// use fw_cfg_device::{FwCfgBuilder, abi};
    /// use vm_memory::{GuestAddress, GuestMemoryMmap};
    ///
    /// let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x1000)]).unwrap();
    /// let mut dev = FwCfgBuilder::new().build(&mem);
    /// dev.mmio_write(abi::MMIO_SELECTOR_OFFSET, &abi::KEY_SIGNATURE.to_be_bytes());
    /// let mut sig = [0u8; 8];
    /// dev.mmio_read(abi::MMIO_DATA_OFFSET, &mut sig);
    /// assert_eq!(&sig, b"QEMU\0\0\0\0");
    /// ```
    pub fn mmio_read(&mut self, offset: u64, data: &mut [u8]) {
        // Fast path for data-register reads of 1, 2, 4 or 8 bytes, which
        // QEMU takes whole; the region decoder gives the same result.
        if offset == abi::MMIO_DATA_OFFSET && matches!(data.len(), 1 | 2 | 4 | 8) {
            self.read_data_into(data);
            return;
        }
        let layout = self.mmio_layout();
        read(self, layout, UNASSIGNED_MMIO, offset, data);
    }

    /// A write of `data` at `offset` in the MMIO window (see
    /// [`mmio_read`](Self::mmio_read)):
    ///
    /// | Offset   | Access       | Effect                                           |
    /// |----------|--------------|--------------------------------------------------|
    /// | +0       | any write    | data write, ignored                              |
    /// | +8       | 16-bit write | selector (big-endian)                            |
    /// | +8       | other sizes  | ignored                                          |
    /// | +16      | 32-bit write | DMA address high half (big-endian)               |
    /// | +20      | 32-bit write | DMA address low half (big-endian), runs the DMA  |
    /// | +16      | 64-bit write | whole DMA address (big-endian), runs the DMA     |
    ///
    /// Everything else is ignored, as QEMU rejects it; an access spanning
    /// several regions is split as for reads (a 32-bit write at +8 is a
    /// selector write plus two unassigned bytes, an 8-byte write at +20 is
    /// a 4-byte piece of the DMA register, a low-half write, followed by
    /// four unassigned bytes).
    pub fn mmio_write(&mut self, offset: u64, data: &[u8]) {
        let layout = self.mmio_layout();
        write(self, layout, offset, data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::*;
    use crate::builder::FwCfgBuilder;
    use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

    type Mem = GuestMemoryMmap<()>;

    fn mem() -> Mem {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10000)]).unwrap()
    }

    #[test]
    fn pieces_split_at_region_boundaries() {
        let layout = [(0, 2, Region::Comb), (4, 12, Region::Dma)];
        let mut seen = Vec::new();
        for_each_piece(&layout, 1, 8, |r, o, range| seen.push((r, o, range)));
        assert_eq!(
            seen,
            vec![
                (Region::Comb, 1, 0..1),
                (Region::Unassigned, 0, 1..3),
                // 5 bytes of the DMA region: a 4-byte access, then 1 byte
                // (`memory_access_size`: powers of two).
                (Region::Dma, 0, 3..7),
                (Region::Dma, 4, 7..8)
            ]
        );
        seen.clear();
        for_each_piece(&layout, 10, 4, |r, o, range| seen.push((r, o, range)));
        assert_eq!(
            seen,
            vec![(Region::Dma, 6, 0..2), (Region::Unassigned, 0, 2..4)]
        );
        seen.clear();
        for_each_piece(&layout, u64::MAX, 2, |r, o, range| seen.push((r, o, range)));
        assert_eq!(seen.len(), 2);
    }

    #[test]
    fn pio_selector_le16_and_data_port() {
        let m = mem();
        let mut p = FwCfgBuilder::new().build(&m);
        p.pio_write(0, &KEY_ID.to_le_bytes());
        let mut b = [0u8];
        p.pio_read(1, &mut b);
        assert_eq!(b[0], 3);
        // Port 0x510 also reads data, one byte at a time.
        p.pio_write(0, &KEY_SIGNATURE.to_le_bytes());
        p.pio_read(0, &mut b);
        assert_eq!(b[0], b'Q');
        p.pio_read(1, &mut b);
        assert_eq!(b[0], b'E');
        // A 16-bit read is rejected: zero, no advance.
        let mut w = [0xaa; 2];
        p.pio_read(0, &mut w);
        assert_eq!(w, [0, 0]);
        p.pio_read(1, &mut b);
        assert_eq!(b[0], b'M');
    }

    #[test]
    fn pio_fast_paths_match_the_region_decoder() {
        let m = mem();
        let mut b = FwCfgBuilder::new();
        b.add_file("opt/x", vec![1, 2, 3]).unwrap();
        let mut fast = b.build(&m);
        let mut slow = b.build(&m);
        // DMA register halves: ignored without DMA, as by the decoder.
        let mut no_dma = FwCfgBuilder::new().dma(false).build(&m);
        no_dma.pio_write(4, &1u32.to_be_bytes());
        no_dma.pio_write(8, &0x1000u32.to_be_bytes());
        assert_eq!(no_dma.state().dma_address, 0);
        for key in [KEY_SIGNATURE, KEY_ID, 0x20, 0x4020, 0x3fff, KEY_INVALID] {
            fast.pio_write(0, &key.to_le_bytes());
            write(&mut slow, &PIO_LAYOUT_DMA, 0, &key.to_le_bytes());
            assert_eq!(fast.state(), slow.state());
            for _ in 0..6 {
                let (mut x, mut y) = ([0xaa], [0x55]);
                fast.pio_read(1, &mut x);
                read(&mut slow, &PIO_LAYOUT_DMA, UNASSIGNED_PORT, 1, &mut y);
                assert_eq!(x, y, "key {key:#x}");
                assert_eq!(fast.state(), slow.state());
            }
        }
    }

    #[test]
    fn pio_one_byte_writes_are_data_writes() {
        let m = mem();
        let mut p = FwCfgBuilder::new().build(&m);
        p.pio_write(0, &KEY_ID.to_le_bytes());
        p.pio_write(0, &[0]);
        p.pio_write(1, &[0]);
        assert_eq!(p.state().selector, KEY_ID);
        // A 32-bit write to 0x510 is split as QEMU's memory core splits
        // it: a 16-bit selector write, then two unassigned ports.
        p.pio_write(0, &[0x19, 0, 0xaa, 0xbb]);
        assert_eq!(p.state().selector, KEY_FILE_DIR);
        // A 16-bit write at 0x511 is a data write plus an unassigned port.
        p.pio_write(1, &[0x01, 0x00]);
        assert_eq!(p.state().selector, KEY_FILE_DIR);
    }

    #[test]
    fn pio_gap_and_dma_register_reads() {
        let m = mem();
        let mut p = FwCfgBuilder::new().build(&m);
        let mut b = [0u8; 2];
        p.pio_read(2, &mut b);
        assert_eq!(b, [0xff, 0xff]);
        let mut d = [0u8; 4];
        p.pio_read(4, &mut d);
        assert_eq!(&d, b"QEMU");
        p.pio_read(8, &mut d);
        assert_eq!(&d, b" CFG");
        let mut one = [0u8];
        p.pio_read(11, &mut one);
        assert_eq!(one[0], b'G');
        let mut p = FwCfgBuilder::new().dma(false).build(&m);
        p.pio_read(4, &mut d);
        assert_eq!(d, [0xff; 4]);
    }

    #[test]
    fn pio_dma_halves_through_ports() {
        let m = mem();
        let mut p = FwCfgBuilder::new().build(&m);
        m.write_slice(
            &DmaAccess::select(KEY_SIGNATURE, DMA_CTL_READ, 4, 0x3000).to_be_bytes(),
            GuestAddress(0x1000),
        )
        .unwrap();
        p.pio_write(4, &0u32.to_be_bytes());
        p.pio_write(8, &0x1000u32.to_be_bytes());
        let mut s = [0u8; 4];
        m.read_slice(&mut s, GuestAddress(0x3000)).unwrap();
        assert_eq!(&s, b"QEMU");
        assert_eq!(m.read_obj::<u32>(GuestAddress(0x1000)).unwrap(), 0);
        assert_eq!(p.state().offset, 4);
    }

    #[test]
    fn mmio_wide_reads_in_item_order() {
        let m = mem();
        let mut b = FwCfgBuilder::new();
        b.add_file("f", (0u8..11).collect()).unwrap();
        let mut d = b.build(&m);
        d.mmio_write(8, &0x20u16.to_be_bytes());
        let mut one = [0u8; 1];
        let mut two = [0u8; 2];
        let mut four = [0u8; 4];
        let mut eight = [0u8; 8];
        d.mmio_read(0, &mut one);
        d.mmio_read(0, &mut two);
        d.mmio_read(0, &mut four);
        d.mmio_read(0, &mut eight);
        assert_eq!(one, [0]);
        assert_eq!(two, [1, 2]);
        assert_eq!(four, [3, 4, 5, 6]);
        assert_eq!(eight, [7, 8, 9, 10, 0, 0, 0, 0]);
        assert_eq!(d.state().offset, 11);
    }

    #[test]
    fn mmio_selector_is_big_endian_and_write_only() {
        let m = mem();
        let mut d = FwCfgBuilder::new().build(&m);
        d.mmio_write(8, &[0x00, 0x01]);
        assert_eq!(d.state().selector, KEY_ID);
        let mut two = [0xaa; 2];
        d.mmio_read(8, &mut two);
        assert_eq!(two, [0, 0]);
        // Wrong sizes are ignored.
        d.mmio_write(8, &[0x00]);
        d.mmio_write(9, &[0x00]);
        assert_eq!(d.state().selector, KEY_ID);
        // A 4-byte write at +8 splits into the 2-byte selector and the gap.
        d.mmio_write(8, &[0, 0x19, 0xaa, 0xbb]);
        assert_eq!(d.state().selector, KEY_FILE_DIR);
        // Data reads away from +0 are rejected.
        let mut four = [0xaa; 4];
        d.mmio_read(4, &mut four);
        assert_eq!(four, [0; 4]);
        assert_eq!(d.state().offset, 0);
        // Unassigned gap.
        d.mmio_read(12, &mut four);
        assert_eq!(four, [0; 4]);
    }

    #[test]
    fn mmio_dma_register_and_64_bit_kick() {
        let m = mem();
        let mut d = FwCfgBuilder::new().build(&m);
        let mut eight = [0u8; 8];
        d.mmio_read(16, &mut eight);
        assert_eq!(&eight, b"QEMU CFG");
        m.write_slice(
            &DmaAccess::select(KEY_SIGNATURE, DMA_CTL_READ, 4, 0x3000).to_be_bytes(),
            GuestAddress(0x1000),
        )
        .unwrap();
        d.mmio_write(16, &0x1000u64.to_be_bytes());
        let mut s = [0u8; 4];
        m.read_slice(&mut s, GuestAddress(0x3000)).unwrap();
        assert_eq!(&s, b"QEMU");
        // A 16-bit write at +20 is rejected: the latched high half stays.
        d.mmio_write(16, &1u32.to_be_bytes());
        assert_eq!(d.state().dma_address, 1 << 32);
        d.mmio_write(20, &0x1000u32.to_be_bytes()[..2]);
        assert_eq!(d.state().dma_address, 1 << 32);
        // A 64-bit write at +20 is split as QEMU's memory core splits it:
        // the 4 bytes inside the DMA register are a low-half write, which
        // runs the descriptor, and the 4 bytes past the window are ignored.
        d.mmio_write(16, &0u32.to_be_bytes());
        m.write_slice(
            &DmaAccess::select(KEY_ID, DMA_CTL_READ, 4, 0x3100).to_be_bytes(),
            GuestAddress(0x1000),
        )
        .unwrap();
        let mut wide = [0xaa; 8];
        wide[..4].copy_from_slice(&0x1000u32.to_be_bytes());
        d.mmio_write(20, &wide);
        m.read_slice(&mut s, GuestAddress(0x3100)).unwrap();
        assert_eq!(s, [3, 0, 0, 0]);
        assert_eq!(m.read_obj::<u32>(GuestAddress(0x1000)).unwrap(), 0);
        assert_eq!(d.state().dma_address, 0);
        assert_eq!(d.state().selector, KEY_ID);
        assert!(d.dma_enabled());
    }
}
