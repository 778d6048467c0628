// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Static buffers: the DMA descriptor slot and bounce buffer, and the bulk
//! read target. They live in `.noinit` (not zeroed at boot: zeroing 128 KiB
//! costs real time on slow nested engines, and every byte is written before
//! it is read).

use fw_cfg_guest::abi::DMA_ACCESS_SIZE;

use crate::probes::{BULK_MAX, DMA_BUFFER_SIZE};

#[repr(C, align(4096))]
struct DmaArea {
    descriptor: [u8; DMA_ACCESS_SIZE],
    _pad: [u8; 4096 - DMA_ACCESS_SIZE],
    data: [u8; DMA_BUFFER_SIZE],
}

#[unsafe(link_section = ".noinit.dma")]
static mut DMA_AREA: DmaArea = DmaArea {
    descriptor: [0; DMA_ACCESS_SIZE],
    _pad: [0; 4096 - DMA_ACCESS_SIZE],
    data: [0; DMA_BUFFER_SIZE],
};

#[unsafe(link_section = ".noinit.bulk")]
static mut BULK: [u8; BULK_MAX] = [0; BULK_MAX];

/// The DMA descriptor slot and data buffer with their physical addresses
/// (equal to their virtual ones under the identity map).
///
/// The firmware is single-threaded and each caller drops the borrow (the
/// transport holding it) before the next call.
pub fn dma() -> (
    &'static mut [u8; DMA_ACCESS_SIZE],
    u64,
    &'static mut [u8],
    u64,
) {
    let area = &raw mut DMA_AREA;
    // SAFETY: one vCPU, no interrupts, and the previous borrow has ended
    // (see above), so this is the only live reference to the area.
    let area = unsafe { &mut *area };
    let desc_addr = area.descriptor.as_ptr() as u64;
    let data_addr = area.data.as_ptr() as u64;
    (&mut area.descriptor, desc_addr, &mut area.data, data_addr)
}

/// The bulk read target (same borrowing rule as [`dma`]).
pub fn bulk() -> &'static mut [u8; BULK_MAX] {
    let bulk = &raw mut BULK;
    // SAFETY: as for `dma`.
    unsafe { &mut *bulk }
}
