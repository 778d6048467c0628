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
    use std::sync::Mutex;

    /// One observed call, with its arguments.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Call {
        Selected(u16),
        DataRead(usize),
        DataWriteIgnored,
        DmaTransfer(DmaOp, u32),
        DmaError,
        ItemWritten(u16, u32, u32),
    }

    /// Records every call; overrides every hook.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<Call>>);

    impl Recorder {
        fn push(&self, c: Call) {
            self.0.lock().unwrap().push(c);
        }
        fn calls(&self) -> Vec<Call> {
            self.0.lock().unwrap().clone()
        }
    }

    impl FwCfgEvents for Recorder {
        fn selected(&self, key: u16) {
            self.push(Call::Selected(key));
        }
        fn data_read(&self, bytes: usize) {
            self.push(Call::DataRead(bytes));
        }
        fn data_write_ignored(&self) {
            self.push(Call::DataWriteIgnored);
        }
        fn dma_transfer(&self, op: DmaOp, bytes: u32) {
            self.push(Call::DmaTransfer(op, bytes));
        }
        fn dma_error(&self) {
            self.push(Call::DmaError);
        }
        fn item_written(&self, key: u16, offset: u32, len: u32) {
            self.push(Call::ItemWritten(key, offset, len));
        }
    }

    #[test]
    fn arc_forwards_every_hook_with_its_arguments() {
        let r = Arc::new(Recorder::default());
        let e: Arc<Recorder> = r.clone();
        e.data_read(3);
        e.selected(0x4020);
        e.dma_error();
        e.dma_transfer(DmaOp::Read, 4);
        e.item_written(0x20, 2, 6);
        e.data_write_ignored();
        assert_eq!(
            r.calls(),
            [
                Call::DataRead(3),
                Call::Selected(0x4020),
                Call::DmaError,
                Call::DmaTransfer(DmaOp::Read, 4),
                Call::ItemWritten(0x20, 2, 6),
                Call::DataWriteIgnored,
            ]
        );
    }

    #[test]
    fn the_device_reports_what_the_guest_did() {
        use crate::abi::{DMA_CTL_READ, DMA_CTL_WRITE, DmaAccess, KEY_ID, KEY_SIGNATURE};
        use crate::builder::FwCfgBuilder;
        use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

        let m = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x1000)]).unwrap();
        let mut b = FwCfgBuilder::new();
        b.add_writable_file("etc/w", vec![0; 8], |_| {}).unwrap();
        let r = Arc::new(Recorder::default());
        let mut dev = b.build_with_events(&m, r.clone());
        dev.select(KEY_ID);
        dev.read_data();
        let mut six = [0u8; 6];
        dev.read_data_into(&mut six);
        dev.write_data(0xaa);
        let read = DmaAccess::select(KEY_SIGNATURE, DMA_CTL_READ, 4, 0x800);
        m.write_slice(&read.to_be_bytes(), GuestAddress(0x100))
            .unwrap();
        dev.dma_address_u64(0x100);
        m.write_slice(&[7; 3], GuestAddress(0x800)).unwrap();
        let write = DmaAccess::select(0x20, DMA_CTL_WRITE, 3, 0x800);
        m.write_slice(&write.to_be_bytes(), GuestAddress(0x100))
            .unwrap();
        dev.dma_address_u64(0x100);
        // A descriptor outside guest memory.
        dev.dma_address_u64(0x10_0000);
        assert_eq!(
            r.calls(),
            [
                Call::Selected(KEY_ID),
                Call::DataRead(1),
                // Three ID bytes were left, then zeros.
                Call::DataRead(3),
                Call::DataWriteIgnored,
                Call::Selected(KEY_SIGNATURE),
                Call::DmaTransfer(DmaOp::Read, 4),
                Call::Selected(0x20),
                Call::ItemWritten(0x20, 0, 3),
                Call::DmaTransfer(DmaOp::Write, 3),
                Call::DmaError,
            ]
        );
    }
}
