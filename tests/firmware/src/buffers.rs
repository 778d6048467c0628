// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Static buffers: the DMA descriptor slot and bounce buffer, and the bulk
//! read target. They live in `.noinit` (not zeroed at boot: zeroing 128 KiB
//! costs real time on slow nested engines, and every byte is written before
//! it is read).
//!
//! [`take`] hands them out once, as one [`Buffers`] value holding the only
//! references to them; later calls get `None`. Every user borrows from that
//! value, so the borrow checker keeps the uses apart (a transport holding
//! the DMA buffers must be dropped before the next one is made).

use core::sync::atomic::{AtomicBool, Ordering};

use fw_cfg_guest::abi::DMA_ACCESS_SIZE;
use fw_cfg_guest::transport::DmaBuffer;
use fw_cfg_protocol::BULK_MAX;

/// Size of the DMA bounce buffer.
pub const DMA_BUFFER_SIZE: usize = 64 * 1024;

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

/// Whether [`take`] has handed the buffers out.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// The DMA descriptor slot and data buffer with their physical addresses
/// (equal to their virtual ones under the identity map).
pub struct DmaParts {
    /// The descriptor slot.
    pub descriptor: &'static mut [u8; DMA_ACCESS_SIZE],
    /// Its physical address.
    pub descriptor_addr: u64,
    /// The bounce buffer.
    data: &'static mut [u8; DMA_BUFFER_SIZE],
    /// Its physical address.
    data_addr: u64,
}

impl DmaParts {
    /// The guest reader's DMA memory over these buffers, borrowed.
    pub fn buffer(&mut self) -> DmaBuffer<'_> {
        // SAFETY: both addresses are those of the buffers themselves, and
        // under the firmware's identity map of the first 4 GiB (where the
        // image lies) a virtual address is the physical one the device
        // uses; the buffers are borrowed exclusively for the DmaBuffer's
        // life.
        unsafe {
            DmaBuffer::new(
                &mut *self.descriptor,
                self.descriptor_addr,
                &mut self.data[..],
                self.data_addr,
            )
        }
    }
}

/// Every static buffer.
pub struct Buffers {
    /// The DMA descriptor slot and bounce buffer.
    pub dma: DmaParts,
    /// The bulk read target (also the buffered lookup's scratch).
    pub bulk: &'static mut [u8; BULK_MAX],
}

/// The buffers, the first time; `None` ever after.
pub fn take() -> Option<Buffers> {
    if TAKEN.swap(true, Ordering::AcqRel) {
        return None;
    }
    let area = &raw mut DMA_AREA;
    let bulk = &raw mut BULK;
    // SAFETY: `TAKEN` was false, so this is the first and only call that
    // gets here: no other reference to either static exists or will ever
    // be made (nothing else names them).
    let (area, bulk) = unsafe { (&mut *area, &mut *bulk) };
    let descriptor_addr = area.descriptor.as_ptr() as u64;
    let data_addr = area.data.as_ptr() as u64;
    Some(Buffers {
        dma: DmaParts {
            descriptor: &mut area.descriptor,
            descriptor_addr,
            data: &mut area.data,
            data_addr,
        },
        bulk,
    })
}
