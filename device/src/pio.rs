// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The x86 port-I/O front end as a `vm_device::MutDevicePio` (feature
//! `vm-device`).
//!
//! Register the adapter for the 12-byte window at 0x510
//! ([`abi::PIO_SELECTOR_PORT`](crate::abi::PIO_SELECTOR_PORT),
//! [`abi::PIO_WINDOW_SIZE`](crate::abi::PIO_WINDOW_SIZE)). The adapter
//! forwards every access to [`FwCfg::pio_read`] and [`FwCfg::pio_write`],
//! which document the port layout and how QEMU splits and answers odd
//! widths; a VMM with its own bus trait calls those directly.

use vm_device::MutDevicePio;
use vm_device::bus::{PioAddress, PioAddressOffset};
use vm_memory::GuestAddressSpace;

use crate::adapter::fw_cfg_adapter;
use crate::device::FwCfg;
use crate::events::{FwCfgEvents, NoEvents};

fw_cfg_adapter! {
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
    FwCfgPio
}

impl<M: GuestAddressSpace, EV: FwCfgEvents> MutDevicePio for FwCfgPio<M, EV> {
    fn pio_read(&mut self, _base: PioAddress, offset: PioAddressOffset, data: &mut [u8]) {
        self.inner.pio_read(offset, data);
    }

    fn pio_write(&mut self, _base: PioAddress, offset: PioAddressOffset, data: &[u8]) {
        self.inner.pio_write(offset, data);
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
        let mut adapter = FwCfgPio::new(FwCfgBuilder::new().build(&m));
        let mut core = FwCfgBuilder::new().build(&m);
        let base = PioAddress(PIO_SELECTOR_PORT);
        MutDevicePio::pio_write(
            &mut adapter,
            base,
            PIO_SELECTOR_OFFSET,
            &KEY_ID.to_le_bytes(),
        );
        core.pio_write(PIO_SELECTOR_OFFSET, &KEY_ID.to_le_bytes());
        assert_eq!(adapter.inner().state().selector, KEY_ID);
        for (offset, len) in [
            (PIO_DATA_OFFSET, 1),
            (PIO_DATA_OFFSET, 2),
            (PIO_DMA_OFFSET, 4),
            (PIO_DMA_OFFSET, 8),
            (2, 4),
        ] {
            let (mut a, mut c) = ([0x55; 8], [0xaa; 8]);
            MutDevicePio::pio_read(&mut adapter, base, offset, &mut a[..len]);
            core.pio_read(offset, &mut c[..len]);
            assert_eq!(a[..len], c[..len], "offset {offset}, {len} bytes");
            assert_eq!(adapter.inner().state(), core.state());
        }
        adapter.inner_mut().reset();
        assert_eq!(adapter.into_inner().state().selector, KEY_SIGNATURE);
    }
}
