// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! An observer for metrics, in the style of vm-superio's `SerialEvents`.
//!
//! Every method has a no-op default, so an implementation only overrides
//! what it counts. The methods take `&self`; use atomics or other interior
//! mutability for counters. They run on the vCPU thread in the middle of an
//! access, so they must be cheap and must not call back into the device.

use std::sync::Arc;

/// What a DMA descriptor asked for, after QEMU's precedence (READ over
/// WRITE over SKIP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmaOp {
    /// No operation bit was set: only the optional SELECT happened.
    None,
    /// Item to guest memory.
    Read,
    /// Guest memory to item.
    Write,
    /// Advance the offset.
    Skip,
}

/// Observer of guest-visible fw_cfg activity.
pub trait FwCfgEvents {
    /// The guest wrote `key` to the selector (through a register or a DMA
    /// SELECT). `key` is the value written, before range checking.
    fn selected(&self, _key: u16) {}
    /// The guest read the data register; `bytes` item bytes were returned
    /// (0 when nothing was selected or the offset was at the end).
    fn data_read(&self, _bytes: usize) {}
    /// The guest wrote the data register (ignored, as in QEMU 2.4+).
    fn data_write_ignored(&self) {}
    /// A DMA descriptor completed without error; `bytes` is its length.
    fn dma_transfer(&self, _op: DmaOp, _bytes: u32) {}
    /// A DMA descriptor completed with the error bit, or could not be read.
    fn dma_error(&self) {}
    /// A DMA write changed `len` bytes at `offset` of item `key`.
    fn item_written(&self, _key: u16, _offset: u32, _len: u32) {}
}

/// The observer that observes nothing.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NoEvents;

impl FwCfgEvents for NoEvents {}

impl<E: FwCfgEvents> FwCfgEvents for Arc<E> {
    fn selected(&self, key: u16) {
        self.as_ref().selected(key)
    }
    fn data_read(&self, bytes: usize) {
        self.as_ref().data_read(bytes)
    }
    fn data_write_ignored(&self) {
        self.as_ref().data_write_ignored()
    }
    fn dma_transfer(&self, op: DmaOp, bytes: u32) {
        self.as_ref().dma_transfer(op, bytes)
    }
    fn dma_error(&self) {
        self.as_ref().dma_error()
    }
    fn item_written(&self, key: u16, offset: u32, len: u32) {
        self.as_ref().item_written(key, offset, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Default)]
    struct Count(AtomicUsize);
    impl FwCfgEvents for Count {
        fn data_read(&self, bytes: usize) {
            self.0.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    #[test]
    fn arc_forwards_and_defaults_are_noops() {
        let c = Arc::new(Count::default());
        let e: Arc<Count> = c.clone();
        e.data_read(3);
        e.selected(1);
        e.dma_error();
        e.dma_transfer(DmaOp::Read, 4);
        e.item_written(0x20, 0, 1);
        e.data_write_ignored();
        assert_eq!(c.0.load(Ordering::Relaxed), 3);
        NoEvents.selected(0);
    }
}
