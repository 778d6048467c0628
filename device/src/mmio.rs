// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The MMIO front end as a `vm_device::MutDeviceMmio` (feature
//! `vm-device`).
//!
//! Register the adapter for a 0x18-byte window
//! ([`abi::MMIO_WINDOW_SIZE`](crate::abi::MMIO_WINDOW_SIZE)), e.g. at
//! [`abi::MMIO_BASE_ARM_VIRT`](crate::abi::MMIO_BASE_ARM_VIRT). The adapter
//! forwards every access to [`FwCfg::mmio_read`] and [`FwCfg::mmio_write`],
//! which document the register layout and how QEMU splits and answers odd
//! widths; a VMM with its own bus trait calls those directly.

use vm_device::MutDeviceMmio;
use vm_device::bus::{MmioAddress, MmioAddressOffset};
use vm_memory::GuestAddressSpace;

use crate::adapter::fw_cfg_adapter;
use crate::device::FwCfg;
use crate::events::{FwCfgEvents, NoEvents};

fw_cfg_adapter! {
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
    FwCfgMmio
}

impl<M: GuestAddressSpace, EV: FwCfgEvents> MutDeviceMmio for FwCfgMmio<M, EV> {
    fn mmio_read(&mut self, _base: MmioAddress, offset: MmioAddressOffset, data: &mut [u8]) {
        self.inner.mmio_read(offset, data);
    }

    fn mmio_write(&mut self, _base: MmioAddress, offset: MmioAddressOffset, data: &[u8]) {
        self.inner.mmio_write(offset, data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::*;
    use crate::builder::FwCfgBuilder;
    use vm_memory::{GuestAddress, GuestMemoryMmap};

    #[test]
    fn forwards_to_the_core() {
        let m = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x1000)]).unwrap();
        let mut adapter = FwCfgMmio::new(FwCfgBuilder::new().build(&m));
        let mut core = FwCfgBuilder::new().build(&m);
        let base = MmioAddress(MMIO_BASE_ARM_VIRT);
        MutDeviceMmio::mmio_write(
            &mut adapter,
            base,
            MMIO_SELECTOR_OFFSET,
            &KEY_ID.to_be_bytes(),
        );
        core.mmio_write(MMIO_SELECTOR_OFFSET, &KEY_ID.to_be_bytes());
        assert_eq!(adapter.inner().state().selector, KEY_ID);
        for (offset, len) in [
            (MMIO_DATA_OFFSET, 1),
            (MMIO_DATA_OFFSET, 2),
            (MMIO_DMA_OFFSET, 4),
            (MMIO_DMA_OFFSET, 8),
            (2, 4),
        ] {
            let (mut a, mut c) = ([0x55; 8], [0xaa; 8]);
            MutDeviceMmio::mmio_read(&mut adapter, base, offset, &mut a[..len]);
            core.mmio_read(offset, &mut c[..len]);
            assert_eq!(a[..len], c[..len], "offset {offset}, {len} bytes");
            assert_eq!(adapter.inner().state(), core.state());
        }
        adapter.inner_mut().reset();
        assert_eq!(adapter.into_inner().state().selector, KEY_SIGNATURE);
    }
}
