// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The wrapper type the vm-device adapters share.

/// Defines a wrapper around [`FwCfg`](crate::device::FwCfg) with the
/// accessors every bus adapter has.
macro_rules! fw_cfg_adapter {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name<M: GuestAddressSpace, EV: FwCfgEvents = NoEvents> {
            inner: FwCfg<M, EV>,
        }

        impl<M: GuestAddressSpace, EV: FwCfgEvents> $name<M, EV> {
            /// Wraps a device.
            pub fn new(fw_cfg: FwCfg<M, EV>) -> Self {
                $name { inner: fw_cfg }
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
        }
    };
}

pub(crate) use fw_cfg_adapter;
