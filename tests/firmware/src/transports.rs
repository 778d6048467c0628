// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Making a transport of each kind, in one place.

/// Binds `$t` to a fresh guest-reader transport of kind `$kind`
/// (a [`fw_cfg_protocol::Transport`]) and evaluates `$body` with it, giving
/// `Some(result)`; `None` for `Cpuid` and for an MMIO transport when the
/// platform announced no window. `$mmio` is the window (`Option<(base,
/// size)>`), `$dma` the [`crate::buffers::DmaParts`] the DMA transports
/// borrow for the evaluation of `$body`.
macro_rules! with_transport {
    ($kind:expr, $mmio:expr, $dma:expr, |$t:ident| $body:expr) => {{
        use fw_cfg_guest::transport::{Dma, Mmio, PortIo};
        use fw_cfg_protocol::Transport;
        let mmio: Option<(u64, u64)> = $mmio;
        let base = mmio.map_or(core::ptr::null_mut(), |(base, _)| base as *mut u8);
        match ($kind, mmio.is_some()) {
            (Transport::Cpuid, _) | (Transport::Mmio | Transport::MmioDma, false) => None,
            (Transport::Pio, _) => {
                // SAFETY: the firmware runs alone in ring 0 with I/O
                // privilege, and the fw_cfg ports belong to the fw_cfg
                // device (or to nothing: reads give 0xff).
                let $t = unsafe { PortIo::new() };
                Some($body)
            }
            (Transport::PioString, _) => {
                // SAFETY: as for `Pio`.
                let mut $t = unsafe { PortIo::new() };
                $t.set_string_reads(true);
                Some($body)
            }
            (Transport::Dma, _) => {
                // SAFETY: as for `Pio`.
                let $t = Dma::new(unsafe { PortIo::new() }, $dma.buffer());
                Some($body)
            }
            (Transport::Mmio, true) => {
                // SAFETY: the window was announced by the platform for the
                // fw_cfg device and lies in the identity-mapped first 4 GiB;
                // nothing else in the firmware touches it.
                let $t = unsafe { Mmio::new(base) };
                Some($body)
            }
            (Transport::MmioDma, true) => {
                // SAFETY: as for `Mmio`.
                let $t = Dma::new(unsafe { Mmio::new(base) }, $dma.buffer());
                Some($body)
            }
        }
    }};
}

pub(crate) use with_transport;
