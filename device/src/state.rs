// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The guest-visible state of the device, for snapshots.
//!
//! QEMU migrates exactly these three values (`cur_entry`, `cur_offset` and,
//! with DMA, `dma_addr`); the items themselves are configuration, rebuilt by
//! the VMM on the destination. The struct is plain data without serde so a
//! VMM can serialize it with whatever it uses.
//!
//! Guest-written contents of writable files are not part of it: as in QEMU
//! (which migrates them through their owners, e.g. vmgenid), the VMM
//! carries them. Save [`FwCfg::writable_files`](crate::FwCfg::writable_files)
//! with the rest of the machine and, on the destination, put each back with
//! [`FwCfg::modify_file`](crate::FwCfg::modify_file) before
//! [`FwCfg::restore`](crate::FwCfg::restore).

/// The guest-visible registers of an fw_cfg device.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FwCfgState {
    /// The current selector as the guest wrote it (bit 14 included), or
    /// `0xffff` when the last selection was out of range.
    pub selector: u16,
    /// The read offset inside the selected item.
    pub offset: u32,
    /// The DMA address latch (the high half written at 0x514 waiting for
    /// the low half; 0 after every transfer).
    pub dma_address: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_zero() {
        let s = FwCfgState::default();
        assert_eq!((s.selector, s.offset, s.dma_address), (0, 0, 0));
    }
}
