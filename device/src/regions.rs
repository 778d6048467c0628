// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Shared register decoding of the PIO and MMIO front ends.
//!
//! QEMU maps fw_cfg as several small memory regions (control/data, DMA)
//! inside a window, and its memory core splits an access that crosses
//! region boundaries into one access per region. The front ends describe
//! their window as a layout of [`Region`]s and this module performs the same
//! split, then applies each region's rules for the piece's size.

use vm_memory::GuestAddressSpace;

use crate::device::FwCfg;
use crate::events::FwCfgEvents;

/// What a part of a register window decodes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Region {
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
pub(crate) type Layout = [(u64, u64, Region)];

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
        // n <= remaining, which came from a usize.
        let n = n as usize;
        f(region, pos - start, done..done + n);
        done += n;
    }
}

/// A read through a window.
pub(crate) fn read<M: GuestAddressSpace, EV: FwCfgEvents>(
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
pub(crate) fn write<M: GuestAddressSpace, EV: FwCfgEvents>(
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

fn be32(buf: &[u8]) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[..4]);
    u32::from_be_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

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
                (Region::Dma, 0, 3..8)
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
}
