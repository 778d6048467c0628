// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The fw_cfg guest reader's bus traits over rust-vmm's device model: a
//! guest's port I/O and MMIO go through a `vm-device` [`IoManager`] (the
//! path a VMM's exit handler takes), its DMA memory is a `vm-memory`
//! [`GuestMemoryMmap`]. With these, the reader (`fw-cfg-guest`) runs its
//! real access patterns against the real device (`fw-cfg-device`) in one
//! process, for tests and benchmarks.
//!
//! - [`IoPorts`] implements [`PortBus`], [`IoMmio`] implements [`MmioBus`]
//!   for a window at a base address, [`GuestDma`] implements [`DmaMemory`];
//! - every bus access is reported to an [`AccessObserver`] (each one would
//!   be a VM exit under KVM); [`BusCounters`] counts them, and counts the
//!   accesses that reached no device.
//!
//! Unassigned ports read as 0xff and unassigned MMIO as zeros; writes to
//! them are dropped, as on real buses.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//!
//! use fw_cfg_guest::abi::{PIO_SELECTOR_PORT, PIO_WINDOW_SIZE};
//! use fw_cfg_guest::reader::FwCfgReader;
//! use fw_cfg_guest::transport::PortIo;
//! use fw_cfg_iobus::{BusCounters, IoPorts};
//! use vm_device::bus::{PioAddress, PioRange};
//! use vm_device::device_manager::{IoManager, PioManager};
//! use vm_memory::{GuestAddress, GuestMemoryMmap};
//!
//! let mem = Arc::new(GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)])?);
//! let device = fw_cfg_device::FwCfgBuilder::new().build(mem);
//! let mut io = IoManager::new();
//! io.register_pio(
//!     PioRange::new(PioAddress(PIO_SELECTOR_PORT), PIO_WINDOW_SIZE)?,
//!     Arc::new(Mutex::new(fw_cfg_device::FwCfgPio::new(device))),
//! )?;
//!
//! let counters = BusCounters::default();
//! let reader = FwCfgReader::new(PortIo::with_bus(IoPorts::new(&io, &counters)))?;
//! assert!(!reader.uses_dma());
//! assert!(counters.accesses() > 0);
//! assert_eq!(counters.unassigned(), 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

use std::cell::Cell;
use std::ops::Deref;

use fw_cfg_guest::abi::{DMA_ACCESS_SIZE, DMA_CTL_ERROR};
use fw_cfg_guest::transport::{DmaMemory, MmioBus, PortBus};
use vm_device::bus::{MmioAddress, PioAddress};
use vm_device::device_manager::{IoManager, MmioManager, PioManager};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// The direction and address space of one bus access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessKind {
    /// A port read (`in`).
    PortRead,
    /// A port write (`out`).
    PortWrite,
    /// An MMIO read.
    MmioRead,
    /// An MMIO write.
    MmioWrite,
}

/// One bus access: what a guest would take a VM exit for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusAccess {
    /// Direction and address space.
    pub kind: AccessKind,
    /// The port or guest-physical address.
    pub addr: u64,
    /// Bytes moved.
    pub bytes: usize,
    /// Whether a device on the bus answered it.
    pub assigned: bool,
}

/// Sees every access the adapters make.
pub trait AccessObserver {
    /// Called once per access, after it was dispatched.
    fn access(&self, access: BusAccess);
}

/// Counts accesses, and those that reached no device.
#[derive(Debug, Default)]
pub struct BusCounters {
    accesses: Cell<u64>,
    unassigned: Cell<u64>,
}

impl BusCounters {
    /// Accesses since the last [`BusCounters::reset`].
    pub fn accesses(&self) -> u64 {
        self.accesses.get()
    }

    /// Accesses that reached no device since the last reset.
    pub fn unassigned(&self) -> u64 {
        self.unassigned.get()
    }

    /// Sets both counters to zero.
    pub fn reset(&self) {
        self.accesses.set(0);
        self.unassigned.set(0);
    }
}

impl AccessObserver for BusCounters {
    fn access(&self, access: BusAccess) {
        self.accesses.set(self.accesses.get() + 1);
        if !access.assigned {
            self.unassigned.set(self.unassigned.get() + 1);
        }
    }
}

/// The guest reader's port bus over an [`IoManager`].
pub struct IoPorts<'a, O: AccessObserver = BusCounters> {
    io: &'a IoManager,
    observer: &'a O,
}

impl<'a, O: AccessObserver> IoPorts<'a, O> {
    /// Ports of `io`, every access reported to `observer`.
    pub fn new(io: &'a IoManager, observer: &'a O) -> Self {
        IoPorts { io, observer }
    }

    fn write(&mut self, port: u16, data: &[u8]) {
        let assigned = self.io.pio_write(PioAddress(port), data).is_ok();
        self.observer.access(BusAccess {
            kind: AccessKind::PortWrite,
            addr: u64::from(port),
            bytes: data.len(),
            assigned,
        });
    }
}

impl<O: AccessObserver> PortBus for IoPorts<'_, O> {
    fn out16(&mut self, port: u16, value: u16) {
        self.write(port, &value.to_le_bytes());
    }

    fn out32(&mut self, port: u16, value: u32) {
        self.write(port, &value.to_le_bytes());
    }

    fn in8(&mut self, port: u16) -> u8 {
        let mut b = [0xffu8];
        let assigned = self.io.pio_read(PioAddress(port), &mut b).is_ok();
        if !assigned {
            // Unassigned ports float high.
            b[0] = 0xff;
        }
        self.observer.access(BusAccess {
            kind: AccessKind::PortRead,
            addr: u64::from(port),
            bytes: 1,
            assigned,
        });
        b[0]
    }

    fn in32(&mut self, port: u16) -> u32 {
        let mut b = [0xffu8; 4];
        let assigned = self.io.pio_read(PioAddress(port), &mut b).is_ok();
        if !assigned {
            b = [0xff; 4];
        }
        self.observer.access(BusAccess {
            kind: AccessKind::PortRead,
            addr: u64::from(port),
            bytes: 4,
            assigned,
        });
        u32::from_le_bytes(b)
    }
}

/// The guest reader's MMIO bus: a window at `base` of an [`IoManager`].
pub struct IoMmio<'a, O: AccessObserver = BusCounters> {
    io: &'a IoManager,
    base: u64,
    observer: &'a O,
}

impl<'a, O: AccessObserver> IoMmio<'a, O> {
    /// The window at guest-physical `base` of `io`, every access reported
    /// to `observer`.
    pub fn new(io: &'a IoManager, base: u64, observer: &'a O) -> Self {
        IoMmio { io, base, observer }
    }

    fn read<const N: usize>(&mut self, offset: u64) -> [u8; N] {
        let addr = self.base.wrapping_add(offset);
        let mut b = [0u8; N];
        let assigned = self.io.mmio_read(MmioAddress(addr), &mut b).is_ok();
        if !assigned {
            b = [0; N];
        }
        self.observer.access(BusAccess {
            kind: AccessKind::MmioRead,
            addr,
            bytes: N,
            assigned,
        });
        b
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let addr = self.base.wrapping_add(offset);
        let assigned = self.io.mmio_write(MmioAddress(addr), data).is_ok();
        self.observer.access(BusAccess {
            kind: AccessKind::MmioWrite,
            addr,
            bytes: data.len(),
            assigned,
        });
    }
}

impl<O: AccessObserver> MmioBus for IoMmio<'_, O> {
    fn read8(&mut self, offset: u64) -> u8 {
        self.read::<1>(offset)[0]
    }
    fn read16(&mut self, offset: u64) -> u16 {
        u16::from_ne_bytes(self.read(offset))
    }
    fn read32(&mut self, offset: u64) -> u32 {
        u32::from_ne_bytes(self.read(offset))
    }
    fn read64(&mut self, offset: u64) -> u64 {
        u64::from_ne_bytes(self.read(offset))
    }
    fn write16(&mut self, offset: u64, value: u16) {
        self.write(offset, &value.to_ne_bytes());
    }
    fn write64(&mut self, offset: u64, value: u64) {
        self.write(offset, &value.to_ne_bytes());
    }
}

/// DMA memory in guest RAM: the descriptor at one guest-physical address,
/// the data buffer of `len` bytes at another. `M` is any handle to the
/// memory (`&GuestMemoryMmap`, `Arc<GuestMemoryMmap>`).
pub struct GuestDma<M> {
    mem: M,
    descriptor: u64,
    buffer: u64,
    len: usize,
}

impl<M: Deref<Target = GuestMemoryMmap>> GuestDma<M> {
    /// The descriptor at `descriptor`, a buffer of `len` bytes at `buffer`.
    pub fn new(mem: M, descriptor: u64, buffer: u64, len: usize) -> Self {
        GuestDma {
            mem,
            descriptor,
            buffer,
            len,
        }
    }
}

// SAFETY: the addresses are guest-physical addresses in `mem`. The device a
// kick reaches sits on an in-process `IoManager` and does DMA only through
// vm-memory's bounds-checked accessors of guest memory: a descriptor or
// buffer outside it fails the transfer and never touches other host memory.
unsafe impl<M: Deref<Target = GuestMemoryMmap>> DmaMemory for GuestDma<M> {
    fn descriptor_address(&self) -> u64 {
        self.descriptor
    }

    fn write_descriptor(&mut self, bytes: &[u8; DMA_ACCESS_SIZE]) {
        // A descriptor outside RAM is not written; the device then reads
        // whatever is there (or fails the transfer), as on hardware.
        let _ = self.mem.write_slice(bytes, GuestAddress(self.descriptor));
    }

    fn read_control(&mut self) -> u32 {
        let mut c = [0u8; 4];
        match self.mem.read_slice(&mut c, GuestAddress(self.descriptor)) {
            Ok(()) => u32::from_be_bytes(c),
            // A descriptor outside RAM cannot report success.
            Err(_) => DMA_CTL_ERROR,
        }
    }

    fn buffer_address(&self) -> u64 {
        self.buffer
    }

    fn buffer_len(&self) -> usize {
        self.len
    }

    fn read_buffer(&mut self, offset: usize, out: &mut [u8]) {
        // An unmapped buffer reads as zeros.
        let addr = self.buffer.wrapping_add(offset as u64);
        if self.mem.read_slice(out, GuestAddress(addr)).is_err() {
            out.fill(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::{Arc, Mutex};

    use vm_device::MutDevicePio;
    use vm_device::bus::{PioAddressOffset, PioRange};

    struct Echo(u8);

    impl MutDevicePio for Echo {
        fn pio_read(&mut self, _b: PioAddress, _o: PioAddressOffset, data: &mut [u8]) {
            data.fill(self.0);
        }
        fn pio_write(&mut self, _b: PioAddress, _o: PioAddressOffset, data: &[u8]) {
            self.0 = data[0];
        }
    }

    #[test]
    fn ports_count_accesses_and_float_high_when_unassigned() {
        let mut io = IoManager::new();
        io.register_pio(
            PioRange::new(PioAddress(0x600), 4).unwrap(),
            Arc::new(Mutex::new(Echo(0))),
        )
        .unwrap();
        let c = BusCounters::default();
        let mut p = IoPorts::new(&io, &c);
        p.out16(0x600, 0x1234);
        assert_eq!(p.in8(0x600), 0x34);
        assert_eq!(p.in8(0x700), 0xff);
        p.out32(0x700, 1);
        assert_eq!((c.accesses(), c.unassigned()), (4, 2));
        c.reset();
        assert_eq!((c.accesses(), c.unassigned()), (0, 0));
    }

    #[test]
    fn unassigned_mmio_reads_zero_and_dma_outside_ram_fails() {
        let io = IoManager::new();
        let c = BusCounters::default();
        let mut m = IoMmio::new(&io, 0xd000_0000, &c);
        assert_eq!(m.read64(0), 0);
        m.write16(8, 1);
        assert_eq!((c.accesses(), c.unassigned()), (2, 2));

        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x10_000)]).unwrap();
        let mut dma = GuestDma::new(&mem, 0x1000, 0x2000, 16);
        dma.write_descriptor(&[0, 0, 0, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(dma.read_control(), 0x08);
        let mut far = GuestDma::new(&mem, 0x100_0000, 0x200_0000, 16);
        assert_eq!(far.read_control(), DMA_CTL_ERROR);
        let mut out = [1u8; 4];
        far.read_buffer(0, &mut out);
        assert_eq!(out, [0; 4]);
    }
}

/// The README's usage example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_example {}
