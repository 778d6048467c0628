// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! How bytes get from the fw_cfg device to the guest: x86 port I/O, MMIO,
//! and DMA.
//!
//! The [reader](crate::reader) is generic over [`FwCfgTransport`]: select an
//! item, read its next bytes. Three implementations:
//!
//! - [`PortIo`]: the x86 "traditional" interface, a 16-bit little-endian
//!   write of the key to port 0x510 and 8-bit reads from port 0x511
//!   (optionally `rep insb`, see [`PortIo::set_string_reads`]).
//! - [`Mmio`]: the memory-mapped interface (Arm/RISC-V `virt`, or any base
//!   the platform describes): a 16-bit big-endian selector at +8 and a data
//!   register at +0 read with 8, 4, 2 or 1-byte accesses.
//! - [`Dma`]: wraps either of them and moves data with DMA descriptors
//!   through a caller-provided buffer ([`DmaMemory`], for real hardware
//!   [`DmaBuffer`]), kicked by a write of the descriptor's address to the
//!   DMA register ([`DmaKick`]: port 0x514 or MMIO +16).
//!
//! The register accesses of [`PortIo`] and [`Mmio`] go through the tiny
//! [`PortBus`] and [`MmioBus`] traits. The real buses ([`X86PortBus`],
//! [`RawMmio`]) are the only place with port I/O or MMIO instructions and
//! have `unsafe` constructors; tests plug a VMM's I/O bus in instead and
//! exercise exactly the same access patterns.
//!
//! # Safety
//!
//! No safe call touches an address that an `unsafe` contract did not vouch
//! for:
//!
//! - the safe methods of the real buses stay inside the register window
//!   their constructor was promised and never write the DMA address
//!   register ([`RegisterAccessError`] says what they refused);
//! - the DMA register is written only by the `unsafe`
//!   [`PortBus::out32_dma`] and [`MmioBus::write64_dma`], called by the
//!   `unsafe` [`DmaKick::kick`];
//! - [`Dma`] kicks only with the descriptor address of its [`DmaMemory`],
//!   an `unsafe` trait whose implementations vouch for their addresses
//!   ([`DmaBuffer::new`] for real memory).
//!
//! # Physical addresses and DMA
//!
//! The device sees guest-*physical* addresses. This crate never translates
//! addresses: whoever builds a [`DmaBuffer`] passes the physical address of
//! each piece of memory (in identity-mapped firmware, the pointer value).
//! A DMA transfer that times out leaves the buffer possibly still in use by
//! the device, so [`Dma`] refuses every later transfer
//! ([`TransportError::DmaPoisoned`]).

use core::marker::PhantomData;
use core::ops::Range;
use core::ptr::NonNull;
use core::sync::atomic::{Ordering, fence};

use crate::abi::{
    DMA_ACCESS_SIZE, DMA_CTL_ERROR, DMA_CTL_READ, DMA_CTL_SELECT, DMA_CTL_SKIP, DmaAccess,
    MMIO_DATA_OFFSET, MMIO_DMA_OFFSET, MMIO_SELECTOR_OFFSET, MMIO_WINDOW_SIZE, PIO_DATA_OFFSET,
    PIO_DMA_OFFSET, PIO_SELECTOR_OFFSET, PIO_SELECTOR_PORT, PIO_WINDOW_SIZE,
};

/// A transport failure. Only DMA can fail; the register interfaces cannot
/// tell a failure from data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The device set the ERROR bit in the descriptor's control word.
    #[error("fw_cfg DMA transfer failed (control word {control:#010x})")]
    DmaError {
        /// The control word read back.
        control: u32,
    },
    /// The control word did not become 0 within the poll limit.
    #[error(
        "fw_cfg DMA transfer did not complete after {polls} polls (control word {control:#010x})"
    )]
    DmaTimeout {
        /// The last control word read back.
        control: u32,
        /// How many times it was read.
        polls: u32,
    },
    /// An earlier transfer timed out; the device may still own the buffer,
    /// so no further DMA is attempted.
    #[error("fw_cfg DMA disabled after an earlier timeout")]
    DmaPoisoned,
}

/// Selects fw_cfg items and reads their bytes.
pub trait FwCfgTransport {
    /// Selects `key`; the item offset becomes 0.
    fn select(&mut self, key: u16);

    /// Reads the next `buf.len()` bytes of the selected item. Bytes past the
    /// end of an item read as 0 (the device's rule).
    fn read(&mut self, buf: &mut [u8]) -> Result<(), TransportError>;

    /// Advances the item offset by `len` bytes. The default reads and
    /// discards them.
    fn skip(&mut self, mut len: usize) -> Result<(), TransportError> {
        let mut scratch = [0u8; 64];
        while len > 0 {
            let n = len.min(scratch.len());
            self.read(&mut scratch[..n])?;
            len -= n;
        }
        Ok(())
    }

    /// Tells the transport whether the device's ID item advertises DMA;
    /// returns whether transfers now use DMA. The default (no DMA) ignores
    /// it.
    fn set_dma(&mut self, device_has_dma: bool) -> bool {
        let _ = device_has_dma;
        false
    }

    /// Whether transfers currently use DMA.
    fn uses_dma(&self) -> bool {
        false
    }

    /// Reads the DMA address register's signature (see
    /// [`DmaKick::read_dma_signature`]) when this transport can do DMA;
    /// `None` (the default) when it cannot, without touching the device.
    fn dma_signature(&mut self) -> Option<u64> {
        None
    }

    /// How many bytes one [`read`](Self::read) moves for the cost of one,
    /// as far as the transport knows (the reader sizes a directory's first
    /// read by it): 1 (the default) for register reads, which cost per
    /// access; [`STRING_READ_BATCH`] for `rep insb`; the buffer for DMA.
    fn read_batch(&self) -> usize {
        1
    }
}

/// What one `rep insb` moves per VM exit under KVM, at most: its
/// instruction emulator reads string I/O ahead into a 1024-byte cache
/// (`struct read_cache` in Linux's `arch/x86/kvm/kvm_emulate.h`) and stops
/// a batch at the end of the destination's page, so a read of up to 1024
/// bytes that does not cross a page is one exit.
pub const STRING_READ_BATCH: usize = 1024;

impl<T: FwCfgTransport + ?Sized> FwCfgTransport for &mut T {
    fn select(&mut self, key: u16) {
        (**self).select(key)
    }
    fn read(&mut self, buf: &mut [u8]) -> Result<(), TransportError> {
        (**self).read(buf)
    }
    fn skip(&mut self, len: usize) -> Result<(), TransportError> {
        (**self).skip(len)
    }
    fn set_dma(&mut self, device_has_dma: bool) -> bool {
        (**self).set_dma(device_has_dma)
    }
    fn uses_dma(&self) -> bool {
        (**self).uses_dma()
    }
    fn dma_signature(&mut self) -> Option<u64> {
        (**self).dma_signature()
    }
    fn read_batch(&self) -> usize {
        (**self).read_batch()
    }
}

/// Starts a DMA transfer: writes a descriptor's guest-physical address to
/// the device's DMA address register.
///
/// The device then reads the descriptor at that address and reads or
/// writes the memory the descriptor names, so the kick is `unsafe`: safe
/// code must not be able to aim the device at arbitrary memory. [`Dma`] is
/// the safe way to use it: it kicks only with the address of the
/// descriptor slot of its [`DmaMemory`], whose descriptor names that
/// memory's buffer.
pub trait DmaKick {
    /// Writes `descriptor_address` to the DMA register, which starts the
    /// transfer.
    ///
    /// # Safety
    ///
    /// `descriptor_address` must be the guest-physical address of a
    /// 16-byte [`DmaAccess`] descriptor (big-endian, as the device reads
    /// it) that the caller has handed to the device, and the memory the
    /// descriptor names (`length` bytes at `address` for READ or WRITE)
    /// must be handed over too: memory the device may read and write
    /// until the control word reads 0 or has the ERROR bit set, and which
    /// nothing else (no Rust reference in particular) uses meanwhile. If
    /// the control word never clears, that memory stays the device's.
    unsafe fn kick(&mut self, descriptor_address: u64);

    /// Starts a transfer at a descriptor below 4 GiB when the device's
    /// address latch already holds 0 in its high half: writes the low half
    /// only. The default writes the whole address ([`kick`](Self::kick)).
    ///
    /// The latch is 0 at startup and after every transfer (QEMU's
    /// `docs/specs/fw_cfg.rst`: "The value for the register is 0 at startup
    /// and after an operation"; `fw_cfg_dma_transfer` clears it before it
    /// reads the descriptor, so an ERROR completion clears it too). Only a
    /// high-half write without its low half leaves it otherwise.
    ///
    /// # Safety
    ///
    /// As for [`kick`](Self::kick), with `descriptor_address` as the
    /// address, and the caller knows the latch's high half is 0.
    unsafe fn kick_low(&mut self, descriptor_address: u32) {
        // SAFETY: our caller meets `kick`'s contract for this address.
        unsafe { self.kick(u64::from(descriptor_address)) }
    }

    /// Reads the 8-byte DMA address register, which a device with the DMA
    /// interface answers with `"QEMU CFG"` ([`DMA_SIGNATURE`]), as a
    /// big-endian number. Reading starts nothing. The default reads
    /// nothing and returns 0, which is not the signature: the reader then
    /// probes through the traditional interface.
    ///
    /// [`DMA_SIGNATURE`]: crate::abi::DMA_SIGNATURE
    fn read_dma_signature(&mut self) -> u64 {
        0
    }
}

/// A register access that a real bus ([`X86PortBus`], [`RawMmio`]) refused
/// instead of performing it.
///
/// Their safe methods only touch the register window their `unsafe`
/// constructor was promised, and never write the DMA address register
/// (that would start a transfer at an address safe code chose): those
/// writes go through the `unsafe` [`PortBus::out32_dma`] and
/// [`MmioBus::write64_dma`] only. A refused read returns 0, a refused write
/// does nothing, and the bus records the refusal (`last_refused()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegisterAccessError {
    /// The access does not lie entirely inside the window.
    #[error("{width}-byte access at {address:#x} is outside the fw_cfg register window")]
    OutsideWindow {
        /// The port (port I/O) or the offset into the window (MMIO).
        address: u64,
        /// The access width in bytes.
        width: u8,
    },
    /// An MMIO access whose offset is not a multiple of its width.
    #[error("{width}-byte access at {address:#x} is not naturally aligned")]
    Misaligned {
        /// The offset into the window.
        address: u64,
        /// The access width in bytes.
        width: u8,
    },
    /// A safe write that reaches the DMA address register.
    #[error("{width}-byte write at {address:#x} reaches the DMA address register")]
    DmaRegister {
        /// The port (port I/O) or the offset into the window (MMIO).
        address: u64,
        /// The access width in bytes.
        width: u8,
    },
}

/// Checks an access of `width` bytes at `at` against a register window
/// `regs` whose DMA address register spans `dma`; a safe write (`safe_write`)
/// may not touch the DMA register.
fn check_access(
    regs: Range<u64>,
    dma: Range<u64>,
    at: u64,
    width: u8,
    safe_write: bool,
) -> Result<(), RegisterAccessError> {
    let end = at.saturating_add(u64::from(width));
    if at < regs.start || end > regs.end {
        return Err(RegisterAccessError::OutsideWindow { address: at, width });
    }
    if safe_write && at < dma.end && dma.start < end {
        return Err(RegisterAccessError::DmaRegister { address: at, width });
    }
    Ok(())
}

/// [`check_access`] for the x86 window 0x510..0x51c (DMA 0x514..0x51c).
#[cfg(any(target_arch = "x86", target_arch = "x86_64", test))]
fn check_port(port: u16, width: u8, safe_write: bool) -> Result<(), RegisterAccessError> {
    let base = u64::from(PIO_SELECTOR_PORT);
    let regs = base..base + u64::from(PIO_WINDOW_SIZE);
    let dma = base + u64::from(PIO_DMA_OFFSET)..regs.end;
    check_access(regs, dma, u64::from(port), width, safe_write)
}

// ---------------------------------------------------------------------------
// Port I/O.
// ---------------------------------------------------------------------------

/// x86 I/O port accesses. Values are what the CPU register holds; the bus is
/// little-endian.
pub trait PortBus {
    /// `out` of 16 bits.
    fn out16(&mut self, port: u16, value: u16);
    /// `out` of 32 bits.
    fn out32(&mut self, port: u16, value: u32);
    /// `in` of 8 bits.
    fn in8(&mut self, port: u16) -> u8;
    /// `in` of 32 bits: the bytes of ports `port..port + 4`, little-endian.
    /// The default does one `in8` per port (four accesses where a real
    /// 32-bit `in` is one).
    fn in32(&mut self, port: u16) -> u32 {
        let mut b = [0u8; 4];
        for (i, byte) in b.iter_mut().enumerate() {
            // `i < 4`.
            *byte = self.in8(port.wrapping_add(i as u16));
        }
        u32::from_le_bytes(b)
    }
    /// `rep insb`: fills `buf` from `port`. The default does one `in8` per
    /// byte.
    fn in8_string(&mut self, port: u16, buf: &mut [u8]) {
        for b in buf {
            *b = self.in8(port);
        }
    }
    /// `out` of 32 bits to a DMA address register (port 0x514 or 0x518):
    /// the write to 0x518 starts a transfer. [`PortIo`]'s kick uses this,
    /// never [`out32`](Self::out32).
    ///
    /// The default forwards to `out32`, which is right for a bus that
    /// reaches a simulated device (a VMM's I/O bus in a test). A bus that
    /// reaches real hardware refuses the DMA registers in its safe `out32`
    /// and writes them only here ([`X86PortBus`]).
    ///
    /// # Safety
    ///
    /// A write that starts a transfer starts it at the address the two
    /// halves form: that address must meet the contract of
    /// [`DmaKick::kick`].
    unsafe fn out32_dma(&mut self, port: u16, value: u32) {
        self.out32(port, value)
    }
}

/// The CPU's own I/O ports, limited to the fw_cfg window
/// `0x510..0x51c` (selector, data, DMA address).
///
/// Every safe method checks its port against that window, and the safe
/// writes refuse the DMA address register (`0x514..0x51c`); see
/// [`RegisterAccessError`]. Only [`PortBus::out32_dma`], which is
/// `unsafe`, writes the DMA register.
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[derive(Debug)]
pub struct X86PortBus {
    refused: Option<RegisterAccessError>,
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
impl X86PortBus {
    /// Gives access to the fw_cfg ports `0x510..0x51c`.
    ///
    /// # Safety
    ///
    /// The caller promises that:
    ///
    /// - it has I/O privilege for ports 0x510..0x51c (ring 0 with IOPL, or
    ///   `ioperm` for them under Linux);
    /// - those ports belong to an fw_cfg device, or to nothing;
    /// - nothing else uses them while this value lives: the selector is
    ///   shared state;
    /// - the device at those ports touches guest memory only as the fw_cfg
    ///   DMA interface defines: after a write to the DMA address register
    ///   (0x514..0x51c) it reads the descriptor at the address written and
    ///   the memory that descriptor names, and writes back to them, and it
    ///   touches no memory otherwise. The transport writes that register
    ///   only from `unsafe` code ([`DmaKick::kick`]) whose caller hands
    ///   that memory over.
    pub unsafe fn new() -> Self {
        X86PortBus { refused: None }
    }

    /// The last access a safe method refused, if any; [`None`] again after
    /// this call.
    pub fn last_refused(&mut self) -> Option<RegisterAccessError> {
        self.refused.take()
    }

    /// Whether an access of `width` bytes at `port` may go ahead (a safe
    /// write may not touch the DMA register); records the refusal when not.
    fn allow(&mut self, port: u16, width: u8, safe_write: bool) -> bool {
        match check_port(port, width, safe_write) {
            Ok(()) => true,
            Err(e) => {
                self.refused = Some(e);
                false
            }
        }
    }

    /// `out dx, eax`.
    ///
    /// # Safety
    ///
    /// `port` is inside the window; when it is a DMA address register, the
    /// caller meets [`PortBus::out32_dma`]'s contract.
    unsafe fn raw_out32(port: u16, value: u32) {
        // SAFETY: `new`'s caller granted I/O privilege and exclusive use of
        // the window, which `port` is in; our caller meets the DMA contract
        // if this write starts a transfer. A transfer reads and writes
        // memory handed to the device, so the block is not `nomem`: the
        // compiler must not cache memory across it.
        unsafe {
            core::arch::asm!("out dx, eax", in("dx") port, in("eax") value,
                options(nostack, preserves_flags));
        }
    }
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
impl PortBus for X86PortBus {
    fn out16(&mut self, port: u16, value: u16) {
        if !self.allow(port, 2, true) {
            return;
        }
        // SAFETY: `new`'s caller granted I/O privilege and exclusive use of
        // the window; `allow` checked that the two bytes at `port` are in
        // it and miss the DMA register, so no transfer starts. `out`
        // touches no memory.
        unsafe {
            core::arch::asm!("out dx, ax", in("dx") port, in("ax") value,
                options(nomem, nostack, preserves_flags));
        }
    }

    fn out32(&mut self, port: u16, value: u32) {
        if self.allow(port, 4, true) {
            // SAFETY: `allow` checked that the port is in the window and
            // misses the DMA register, so no transfer starts.
            unsafe { Self::raw_out32(port, value) }
        }
    }

    fn in8(&mut self, port: u16) -> u8 {
        if !self.allow(port, 1, false) {
            return 0;
        }
        let value: u8;
        // SAFETY: I/O privilege and exclusivity as for `out16`; `allow`
        // checked the port. Reading a register starts nothing (reading the
        // DMA register returns its signature); `in` only writes AL.
        unsafe {
            core::arch::asm!("in al, dx", in("dx") port, out("al") value,
                options(nomem, nostack, preserves_flags));
        }
        value
    }

    fn in32(&mut self, port: u16) -> u32 {
        if !self.allow(port, 4, false) {
            return 0;
        }
        let value: u32;
        // SAFETY: I/O privilege and exclusivity as for `out16`; `allow`
        // checked that the four ports are in the window. Reading a register
        // starts nothing (the DMA register returns its signature); `in`
        // only writes EAX.
        unsafe {
            core::arch::asm!("in eax, dx", in("dx") port, out("eax") value,
                options(nomem, nostack, preserves_flags));
        }
        value
    }

    fn in8_string(&mut self, port: u16, buf: &mut [u8]) {
        if buf.is_empty() {
            return;
        }
        if !self.allow(port, 1, false) {
            buf.fill(0);
            return;
        }
        // SAFETY: I/O privilege and the port as for `in8`. `rep insb`
        // writes exactly `buf.len()` bytes starting at `buf`'s pointer,
        // which is valid and exclusively borrowed; the direction flag is
        // clear on entry to an asm block (Rust's asm ABI), so it writes
        // upwards.
        unsafe {
            #[cfg(target_arch = "x86_64")]
            core::arch::asm!("rep insb", in("dx") port,
                inout("rdi") buf.as_mut_ptr() => _, inout("rcx") buf.len() => _,
                options(nostack, preserves_flags));
            #[cfg(target_arch = "x86")]
            core::arch::asm!("rep insb", in("dx") port,
                inout("edi") buf.as_mut_ptr() => _, inout("ecx") buf.len() => _,
                options(nostack, preserves_flags));
        }
    }

    unsafe fn out32_dma(&mut self, port: u16, value: u32) {
        if self.allow(port, 4, false) {
            // SAFETY: `allow` checked that the port is in the window; our
            // caller meets the DMA contract.
            unsafe { Self::raw_out32(port, value) }
        }
    }
}

/// The x86 port-I/O transport (selector 0x510, data 0x511, DMA 0x514).
#[derive(Debug)]
pub struct PortIo<B: PortBus> {
    bus: B,
    base: u16,
    string_reads: bool,
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
impl PortIo<X86PortBus> {
    /// The transport at the standard ports 0x510..0x51c.
    ///
    /// # Safety
    ///
    /// As for [`X86PortBus::new`], including its promise about the DMA
    /// registers.
    pub unsafe fn new() -> Self {
        // SAFETY: our caller makes `X86PortBus::new`'s promises.
        PortIo::with_bus(unsafe { X86PortBus::new() })
    }
}

impl<B: PortBus> PortIo<B> {
    /// The transport at the standard ports over any port bus.
    pub fn with_bus(bus: B) -> Self {
        Self::with_bus_at(bus, PIO_SELECTOR_PORT)
    }

    /// The transport with its selector port at `base`. ([`X86PortBus`]
    /// refuses every port outside 0x510..0x51c.)
    pub fn with_bus_at(bus: B, base: u16) -> Self {
        PortIo {
            bus,
            base,
            string_reads: false,
        }
    }

    /// Reads data with `rep insb` instead of one `in` per byte. Off by
    /// default: under KVM one string instruction can carry many bytes in
    /// one exit, but the VMM must then handle counted port exits.
    pub fn set_string_reads(&mut self, on: bool) {
        self.string_reads = on;
    }

    /// The bus.
    pub fn bus(&self) -> &B {
        &self.bus
    }

    /// The bus, mutably.
    pub fn bus_mut(&mut self) -> &mut B {
        &mut self.bus
    }

    /// Gives the bus back.
    pub fn into_bus(self) -> B {
        self.bus
    }

    fn port(&self, offset: u16) -> u16 {
        self.base.wrapping_add(offset)
    }
}

impl<B: PortBus> FwCfgTransport for PortIo<B> {
    fn select(&mut self, key: u16) {
        let port = self.port(PIO_SELECTOR_OFFSET);
        self.bus.out16(port, key);
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<(), TransportError> {
        let port = self.port(PIO_DATA_OFFSET);
        if self.string_reads {
            self.bus.in8_string(port, buf);
        } else {
            for b in buf {
                *b = self.bus.in8(port);
            }
        }
        Ok(())
    }

    fn read_batch(&self) -> usize {
        if self.string_reads {
            STRING_READ_BATCH
        } else {
            1
        }
    }
}

impl<B: PortBus> DmaKick for PortIo<B> {
    unsafe fn kick(&mut self, descriptor_address: u64) {
        // The register is big-endian: `out` of the byte-swapped halves puts
        // the most significant byte first on the (little-endian) bus. The
        // write of the low half starts the transfer.
        let high = (descriptor_address >> 32) as u32;
        let low = descriptor_address as u32;
        let port = self.port(PIO_DMA_OFFSET);
        // SAFETY: the two halves form `descriptor_address`, which our
        // caller vouches for (`kick`'s contract is `out32_dma`'s).
        unsafe {
            self.bus.out32_dma(port, high.to_be());
            self.bus.out32_dma(port.wrapping_add(4), low.to_be());
        }
    }

    unsafe fn kick_low(&mut self, descriptor_address: u32) {
        let port = self.port(PIO_DMA_OFFSET).wrapping_add(4);
        // SAFETY: our caller vouches for the address and for the latch's
        // high half being 0, so this write starts the transfer at
        // `descriptor_address`.
        unsafe { self.bus.out32_dma(port, descriptor_address.to_be()) }
    }

    fn read_dma_signature(&mut self) -> u64 {
        // One 32-bit `in` per half; the bytes in port order are the
        // big-endian signature.
        let port = self.port(PIO_DMA_OFFSET);
        let high = self.bus.in32(port).to_le_bytes();
        let low = self.bus.in32(port.wrapping_add(4)).to_le_bytes();
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&high);
        b[4..].copy_from_slice(&low);
        u64::from_be_bytes(b)
    }
}

// ---------------------------------------------------------------------------
// MMIO.
// ---------------------------------------------------------------------------

/// Memory-mapped register accesses at offsets into the fw_cfg window.
/// Values are what the CPU register holds, so `value.to_ne_bytes()` are the
/// bytes in address order.
pub trait MmioBus {
    /// One 8-bit read.
    fn read8(&mut self, offset: u64) -> u8;
    /// One 16-bit read.
    fn read16(&mut self, offset: u64) -> u16;
    /// One 32-bit read.
    fn read32(&mut self, offset: u64) -> u32;
    /// One 64-bit read.
    fn read64(&mut self, offset: u64) -> u64;
    /// One 16-bit write.
    fn write16(&mut self, offset: u64, value: u16);
    /// One 64-bit write.
    fn write64(&mut self, offset: u64, value: u64);
    /// One 64-bit write to the DMA address register (+16), which starts a
    /// transfer. [`Mmio`]'s kick uses this, never
    /// [`write64`](Self::write64).
    ///
    /// The default forwards to `write64`, which is right for a bus that
    /// reaches a simulated device. A bus that reaches real hardware refuses
    /// the DMA register in its safe `write64` and writes it only here
    /// ([`RawMmio`]).
    ///
    /// # Safety
    ///
    /// The value written is a descriptor address that must meet the
    /// contract of [`DmaKick::kick`].
    unsafe fn write64_dma(&mut self, offset: u64, value: u64) {
        self.write64(offset, value)
    }
}

/// The fw_cfg MMIO window at a virtual address.
///
/// Every safe method checks that its access lies inside the
/// [`MMIO_WINDOW_SIZE`]-byte window and is naturally aligned, and the safe
/// writes refuse the DMA address register (+16..+24); see
/// [`RegisterAccessError`]. Only [`MmioBus::write64_dma`], which is
/// `unsafe`, writes the DMA register.
#[derive(Debug)]
pub struct RawMmio {
    base: *mut u8,
    refused: Option<RegisterAccessError>,
}

impl RawMmio {
    /// Accesses the window at `base`.
    ///
    /// # Safety
    ///
    /// The caller promises that:
    ///
    /// - `base` is 8-byte aligned and maps the whole fw_cfg register window
    ///   ([`MMIO_WINDOW_SIZE`] bytes) as device (uncached) memory, valid
    ///   for volatile accesses of 1, 2, 4 and 8 bytes, for as long as this
    ///   value lives;
    /// - nothing else uses the device concurrently: the selector is shared
    ///   state;
    /// - the device touches guest memory only as the fw_cfg DMA interface
    ///   defines: after a write to the DMA address register it reads the
    ///   descriptor at the address written and the memory that descriptor
    ///   names, and writes back to them, and it touches no memory
    ///   otherwise. The transport writes that register only from `unsafe`
    ///   code ([`DmaKick::kick`]) whose caller hands that memory over.
    pub unsafe fn new(base: *mut u8) -> Self {
        RawMmio {
            base,
            refused: None,
        }
    }

    /// The base address.
    pub fn base(&self) -> *mut u8 {
        self.base
    }

    /// The last access a safe method refused, if any; [`None`] again after
    /// this call.
    pub fn last_refused(&mut self) -> Option<RegisterAccessError> {
        self.refused.take()
    }

    /// The register at `offset` for an access of `size_of::<W>()` bytes, if
    /// that access is inside the window, aligned, and (for a safe write)
    /// misses the DMA register; records the refusal when not.
    fn reg<W>(&mut self, offset: u64, safe_write: bool) -> Option<*mut W> {
        // 1, 2, 4 or 8.
        let width = core::mem::size_of::<W>() as u8;
        let dma = MMIO_DMA_OFFSET..MMIO_DMA_OFFSET + 8;
        let checked =
            check_access(0..MMIO_WINDOW_SIZE, dma, offset, width, safe_write).and_then(|()| {
                if offset % u64::from(width) == 0 {
                    Ok(())
                } else {
                    Err(RegisterAccessError::Misaligned {
                        address: offset,
                        width,
                    })
                }
            });
        match checked {
            // `offset < MMIO_WINDOW_SIZE`, so it fits a usize and the
            // pointer stays inside the window.
            Ok(()) => Some(self.base.wrapping_add(offset as usize).cast::<W>()),
            Err(e) => {
                self.refused = Some(e);
                None
            }
        }
    }

    fn read<W: Default>(&mut self, offset: u64) -> W {
        match self.reg::<W>(offset, false) {
            // SAFETY: `new`'s caller promised the window is mapped for
            // volatile accesses of this width; `reg` checked that the access
            // is inside it and aligned (the base is 8-byte aligned). Reading
            // a register starts nothing.
            Some(p) => unsafe { p.read_volatile() },
            None => W::default(),
        }
    }
}

impl MmioBus for RawMmio {
    fn read8(&mut self, offset: u64) -> u8 {
        self.read(offset)
    }
    fn read16(&mut self, offset: u64) -> u16 {
        self.read(offset)
    }
    fn read32(&mut self, offset: u64) -> u32 {
        self.read(offset)
    }
    fn read64(&mut self, offset: u64) -> u64 {
        self.read(offset)
    }
    fn write16(&mut self, offset: u64, value: u16) {
        if let Some(p) = self.reg::<u16>(offset, true) {
            // SAFETY: as for `read`; `reg` also checked that the write
            // misses the DMA register, so no transfer starts.
            unsafe { p.write_volatile(value) }
        }
    }
    fn write64(&mut self, offset: u64, value: u64) {
        if let Some(p) = self.reg::<u64>(offset, true) {
            // SAFETY: as for `write16`.
            unsafe { p.write_volatile(value) }
        }
    }
    unsafe fn write64_dma(&mut self, offset: u64, value: u64) {
        if let Some(p) = self.reg::<u64>(offset, false) {
            // A DMA kick: order the descriptor stores before it.
            fence(Ordering::SeqCst);
            // SAFETY: inside the window and aligned as for `read`; our
            // caller meets the DMA contract for the transfer this starts.
            unsafe { p.write_volatile(value) }
        }
    }
}

/// The MMIO transport: data at +0, selector (BE16) at +8, DMA at +16.
#[derive(Debug)]
pub struct Mmio<B: MmioBus> {
    bus: B,
}

impl Mmio<RawMmio> {
    /// The transport for the window at `base`.
    ///
    /// # Safety
    ///
    /// As for [`RawMmio::new`], including its promise about DMA.
    pub unsafe fn new(base: *mut u8) -> Self {
        // SAFETY: our caller makes `RawMmio::new`'s promises.
        Mmio::with_bus(unsafe { RawMmio::new(base) })
    }
}

impl<B: MmioBus> Mmio<B> {
    /// The transport over any MMIO bus.
    pub fn with_bus(bus: B) -> Self {
        Mmio { bus }
    }

    /// The bus.
    pub fn bus(&self) -> &B {
        &self.bus
    }

    /// The bus, mutably.
    pub fn bus_mut(&mut self) -> &mut B {
        &mut self.bus
    }

    /// Gives the bus back.
    pub fn into_bus(self) -> B {
        self.bus
    }
}

impl<B: MmioBus> FwCfgTransport for Mmio<B> {
    fn select(&mut self, key: u16) {
        // Big-endian register: the most significant byte at the lower
        // address.
        self.bus
            .write16(MMIO_SELECTOR_OFFSET, u16::from_ne_bytes(key.to_be_bytes()));
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<(), TransportError> {
        // The data register returns the next bytes in address order for any
        // access width; use the widest that fits.
        let mut rest = buf;
        while !rest.is_empty() {
            let n = match rest.len() {
                8.. => {
                    rest[..8].copy_from_slice(&self.bus.read64(MMIO_DATA_OFFSET).to_ne_bytes());
                    8
                }
                4.. => {
                    rest[..4].copy_from_slice(&self.bus.read32(MMIO_DATA_OFFSET).to_ne_bytes());
                    4
                }
                2.. => {
                    rest[..2].copy_from_slice(&self.bus.read16(MMIO_DATA_OFFSET).to_ne_bytes());
                    2
                }
                _ => {
                    rest[0] = self.bus.read8(MMIO_DATA_OFFSET);
                    1
                }
            };
            rest = &mut rest[n..];
        }
        Ok(())
    }
}

impl<B: MmioBus> DmaKick for Mmio<B> {
    unsafe fn kick(&mut self, descriptor_address: u64) {
        // One big-endian 64-bit write starts the transfer.
        let value = u64::from_ne_bytes(descriptor_address.to_be_bytes());
        // SAFETY: the value is `descriptor_address`, which our caller
        // vouches for (`kick`'s contract is `write64_dma`'s).
        unsafe { self.bus.write64_dma(MMIO_DMA_OFFSET, value) }
    }

    fn read_dma_signature(&mut self) -> u64 {
        // One 64-bit read; its bytes in address order are big-endian.
        u64::from_be_bytes(self.bus.read64(MMIO_DMA_OFFSET).to_ne_bytes())
    }
}

// ---------------------------------------------------------------------------
// DMA.
// ---------------------------------------------------------------------------

/// Memory the device can reach by DMA: one descriptor slot and one data
/// buffer, each with its guest-physical address.
///
/// [`Dma`] kicks the device with [`descriptor_address`] after storing a
/// descriptor that names [`buffer_address`] and at most [`buffer_len`]
/// bytes, so these addresses decide which memory the device reads and
/// writes: the trait is `unsafe` to implement.
///
/// [`descriptor_address`]: DmaMemory::descriptor_address
/// [`buffer_address`]: DmaMemory::buffer_address
/// [`buffer_len`]: DmaMemory::buffer_len
///
/// # Safety
///
/// An implementation promises, for as long as it lives and for every value
/// these methods return, that:
///
/// - `descriptor_address()` is the guest-physical address of a 16-byte
///   slot where `write_descriptor` stores and `read_control` loads, and
///   `buffer_address()` that of `buffer_len()` bytes (each physically
///   contiguous and reachable by the device);
/// - both are handed over to the device behind the kick, in the sense of
///   [`DmaKick::kick`]: it may read and write them during any transfer
///   (and, after a transfer that never completes, later), and nothing else
///   relies on their contents meanwhile; `read_buffer` reads them
///   accordingly (volatile, or through the VMM's memory accessors).
///
/// For a simulated device (a VMM's guest memory in a test), an
/// implementation whose addresses name that guest memory meets this: the
/// device touches nothing else. Real firmware uses [`DmaBuffer`].
pub unsafe trait DmaMemory {
    /// Guest-physical address of the 16-byte descriptor slot.
    fn descriptor_address(&self) -> u64;
    /// Stores the big-endian descriptor into the slot.
    fn write_descriptor(&mut self, bytes: &[u8; DMA_ACCESS_SIZE]);
    /// Loads the control word (big-endian in memory) from the slot, as the
    /// device left it. Must not be cached.
    fn read_control(&mut self) -> u32;
    /// Guest-physical address of the data buffer.
    fn buffer_address(&self) -> u64;
    /// Size of the data buffer.
    fn buffer_len(&self) -> usize;
    /// Copies `out.len()` bytes from the data buffer at `offset` (within
    /// `buffer_len`).
    fn read_buffer(&mut self, offset: usize, out: &mut [u8]);
}

/// A descriptor slot and data buffer in ordinary memory, for firmware or a
/// kernel that knows their guest-physical addresses.
///
/// The slot and buffer stay borrowed for `'a`; while a transfer runs the
/// device writes them, so they are only accessed through volatile
/// operations on raw pointers.
#[derive(Debug)]
pub struct DmaBuffer<'a> {
    descriptor: NonNull<[u8; DMA_ACCESS_SIZE]>,
    descriptor_address: u64,
    data: NonNull<u8>,
    len: usize,
    data_address: u64,
    _borrow: PhantomData<&'a mut [u8]>,
}

impl<'a> DmaBuffer<'a> {
    /// Hands a descriptor slot and a data buffer to the device.
    ///
    /// # Safety
    ///
    /// `descriptor_address` and `data_address` must be the guest-physical
    /// addresses of `descriptor` and `data` (identity-mapped firmware: the
    /// pointer values), each physically contiguous, and reachable by the
    /// device (for encrypted guests: shared/decrypted memory). The device
    /// writes up to `data.len()` bytes there during each transfer.
    ///
    /// A transfer that times out ([`TransportError::DmaTimeout`]) may still
    /// be running when the borrows end (the [`Dma`] transport and this
    /// value dropped, or given back by [`Dma::into_parts`]): after a
    /// timeout the caller must keep both pieces of memory away from
    /// anything else (for example by using static buffers reserved for
    /// fw_cfg DMA) unless it knows the device has stopped.
    pub unsafe fn new(
        descriptor: &'a mut [u8; DMA_ACCESS_SIZE],
        descriptor_address: u64,
        data: &'a mut [u8],
        data_address: u64,
    ) -> Self {
        let len = data.len();
        DmaBuffer {
            descriptor: NonNull::from(descriptor),
            descriptor_address,
            data: NonNull::from(data).cast(),
            len,
            data_address,
            _borrow: PhantomData,
        }
    }
}

// SAFETY: `DmaBuffer::new`'s caller promised that the two addresses are
// those of the slot and buffer this value borrows exclusively for 'a (and
// keeps away from others after a timeout), and the methods below access
// them only through volatile operations within their bounds.
unsafe impl DmaMemory for DmaBuffer<'_> {
    fn descriptor_address(&self) -> u64 {
        self.descriptor_address
    }

    fn write_descriptor(&mut self, bytes: &[u8; DMA_ACCESS_SIZE]) {
        // SAFETY: the slot is exclusively borrowed for 'a and 16 bytes long;
        // `[u8; 16]` has alignment 1.
        unsafe { self.descriptor.as_ptr().write_volatile(*bytes) }
    }

    fn read_control(&mut self) -> u32 {
        // SAFETY: as for `write_descriptor`; the first four bytes are the
        // control word, which the device updates behind the compiler's back,
        // hence the volatile load.
        let c = unsafe { self.descriptor.cast::<[u8; 4]>().as_ptr().read_volatile() };
        u32::from_be_bytes(c)
    }

    fn buffer_address(&self) -> u64 {
        self.data_address
    }

    fn buffer_len(&self) -> usize {
        self.len
    }

    fn read_buffer(&mut self, offset: usize, out: &mut [u8]) {
        let n = out.len().min(self.len.saturating_sub(offset));
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: `offset + i + 8 <= len`, inside the borrowed buffer;
            // `[u8; 8]` has alignment 1. Volatile because the device wrote
            // the bytes.
            let chunk = unsafe {
                self.data
                    .as_ptr()
                    .add(offset + i)
                    .cast::<[u8; 8]>()
                    .read_volatile()
            };
            out[i..i + 8].copy_from_slice(&chunk);
            i += 8;
        }
        while i < n {
            // SAFETY: `offset + i < len`, inside the borrowed buffer.
            out[i] = unsafe { self.data.as_ptr().add(offset + i).read_volatile() };
            i += 1;
        }
    }
}

/// Default number of control-word reads before a transfer is declared
/// stuck. QEMU and this project's device complete synchronously, inside the
/// kick, so the first read normally sees 0.
pub const DMA_DEFAULT_MAX_POLLS: u32 = 100_000;

/// The DMA transport: the register interface `T` for the kick (and as the
/// fallback while DMA is off), and the DMA memory `M`.
///
/// DMA starts disabled; [`FwCfgTransport::set_dma`] (which
/// [`FwCfgReader::new`](crate::reader::FwCfgReader::new) calls when the DMA
/// register reads `"QEMU CFG"`, or else after reading the ID item) turns it
/// on only when the device advertises it. With DMA on,
/// a select is folded into the next transfer (one descriptor with SELECT and
/// READ or SKIP), and reads larger than the buffer take several transfers.
#[derive(Debug)]
pub struct Dma<T, M> {
    inner: T,
    mem: M,
    enabled: bool,
    poisoned: bool,
    pending_select: Option<u16>,
    max_polls: u32,
    transfers: u64,
    latch_high_zero: bool,
}

impl<T: FwCfgTransport + DmaKick, M: DmaMemory> Dma<T, M> {
    /// Combines a register transport and DMA memory. DMA is off until
    /// [`FwCfgTransport::set_dma`] turns it on.
    pub fn new(inner: T, mem: M) -> Self {
        Dma {
            inner,
            mem,
            enabled: false,
            poisoned: false,
            pending_select: None,
            max_polls: DMA_DEFAULT_MAX_POLLS,
            transfers: 0,
            latch_high_zero: true,
        }
    }

    /// Makes the next transfer write both halves of the descriptor address.
    ///
    /// By default the transport relies on the documented state of the
    /// device's address latch (0 at startup and after every transfer, see
    /// [`DmaKick::kick_low`]) and, for a descriptor below 4 GiB, writes only
    /// the low half: one register write per transfer instead of two. Call
    /// this when earlier code may have written a high half without its low
    /// half.
    pub fn forget_address_latch(&mut self) {
        self.latch_high_zero = false;
    }

    /// Sets how many times the control word is read before a transfer is
    /// declared stuck (at least 1).
    pub fn set_max_polls(&mut self, polls: u32) {
        self.max_polls = polls.max(1);
    }

    /// How many DMA transfers were started.
    pub fn transfers(&self) -> u64 {
        self.transfers
    }

    /// The register transport.
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// Splits the transport into its parts.
    pub fn into_parts(self) -> (T, M) {
        (self.inner, self.mem)
    }

    fn flush_select(&mut self) {
        if let Some(key) = self.pending_select.take() {
            self.inner.select(key);
        }
    }

    /// Runs one descriptor: `op` (READ, SKIP or 0) over `len` bytes of the
    /// data buffer, preceded by the pending select if any.
    fn transfer(&mut self, op: u32, len: u32) -> Result<(), TransportError> {
        if self.poisoned {
            return Err(TransportError::DmaPoisoned);
        }
        let mut control = op;
        if let Some(key) = self.pending_select.take() {
            control |= (u32::from(key) << 16) | DMA_CTL_SELECT;
        }
        let desc = DmaAccess {
            control,
            length: len,
            address: self.mem.buffer_address(),
        };
        self.mem.write_descriptor(&desc.to_be_bytes());
        // The descriptor must be in memory before the device looks.
        fence(Ordering::SeqCst);
        self.transfers += 1;
        let address = self.mem.descriptor_address();
        let low = u32::try_from(address).ok().filter(|_| self.latch_high_zero);
        // SAFETY: the descriptor just stored in `self.mem`'s slot is a READ
        // of at most `self.mem`'s buffer length into that buffer (`read`
        // chunks to it) or a SKIP, which touches no memory; `M: DmaMemory`
        // promises that the slot and the buffer are handed over to the
        // device at those addresses. `kick_low` only when the address fits
        // the low half and the latch's high half is 0: its documented
        // state, which every kick restores.
        unsafe {
            match low {
                Some(low) => self.inner.kick_low(low),
                None => self.inner.kick(address),
            }
        }
        self.latch_high_zero = true;
        fence(Ordering::SeqCst);
        let mut control = 0;
        for _ in 0..self.max_polls {
            control = self.mem.read_control();
            if control & DMA_CTL_ERROR != 0 {
                return Err(TransportError::DmaError { control });
            }
            if control == 0 {
                return Ok(());
            }
            core::hint::spin_loop();
        }
        self.poisoned = true;
        self.enabled = false;
        Err(TransportError::DmaTimeout {
            control,
            polls: self.max_polls,
        })
    }
}

impl<T: FwCfgTransport + DmaKick, M: DmaMemory> FwCfgTransport for Dma<T, M> {
    fn select(&mut self, key: u16) {
        if self.enabled {
            self.pending_select = Some(key);
        } else {
            self.inner.select(key);
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<(), TransportError> {
        if self.poisoned {
            return Err(TransportError::DmaPoisoned);
        }
        if !self.enabled {
            return self.inner.read(buf);
        }
        let chunk_max = self.mem.buffer_len().min(u32::MAX as usize);
        for chunk in buf.chunks_mut(chunk_max) {
            // `chunk.len() <= chunk_max <= u32::MAX`.
            self.transfer(DMA_CTL_READ, chunk.len() as u32)?;
            self.mem.read_buffer(0, chunk);
        }
        Ok(())
    }

    fn skip(&mut self, mut len: usize) -> Result<(), TransportError> {
        if self.poisoned {
            return Err(TransportError::DmaPoisoned);
        }
        if !self.enabled {
            return self.inner.skip(len);
        }
        while len > 0 {
            let n = len.min(u32::MAX as usize);
            self.transfer(DMA_CTL_SKIP, n as u32)?;
            len -= n;
        }
        Ok(())
    }

    fn set_dma(&mut self, device_has_dma: bool) -> bool {
        let on = device_has_dma && !self.poisoned && self.mem.buffer_len() > 0;
        if !on {
            self.flush_select();
        }
        self.enabled = on;
        on
    }

    fn uses_dma(&self) -> bool {
        self.enabled
    }

    fn dma_signature(&mut self) -> Option<u64> {
        if self.poisoned {
            return None;
        }
        Some(self.inner.read_dma_signature())
    }

    fn read_batch(&self) -> usize {
        if self.enabled {
            self.mem.buffer_len()
        } else {
            self.inner.read_batch()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{DMA_SIGNATURE, PIO_DATA_PORT, PIO_DMA_PORT};

    #[derive(Default)]
    struct RecPorts {
        writes16: [(u16, u16); 4],
        n16: usize,
        writes32: [(u16, u32); 4],
        n32: usize,
        next: u8,
    }

    impl PortBus for RecPorts {
        fn out16(&mut self, port: u16, value: u16) {
            self.writes16[self.n16 % 4] = (port, value);
            self.n16 += 1;
        }
        fn out32(&mut self, port: u16, value: u32) {
            self.writes32[self.n32 % 4] = (port, value);
            self.n32 += 1;
        }
        fn in8(&mut self, port: u16) -> u8 {
            assert_eq!(port, PIO_DATA_PORT);
            self.next = self.next.wrapping_add(1);
            self.next
        }
    }

    #[test]
    fn port_io_select_read_and_kick() {
        let mut t = PortIo::with_bus(RecPorts::default());
        t.select(0x19);
        let mut b = [0u8; 3];
        t.read(&mut b).unwrap();
        assert_eq!(b, [1, 2, 3]);
        t.set_string_reads(true);
        t.read(&mut b).unwrap();
        assert_eq!(b, [4, 5, 6]);
        // SAFETY: `RecPorts` only records the writes; no device does DMA.
        unsafe { t.kick(0x1122_3344_5566_7788) };
        let bus = t.into_bus();
        assert_eq!(bus.writes16[0], (PIO_SELECTOR_PORT, 0x19));
        // Bytes on the little-endian bus must be big-endian.
        assert_eq!(bus.writes32[0].0, PIO_DMA_PORT);
        assert_eq!(bus.writes32[0].1.to_le_bytes(), [0x11, 0x22, 0x33, 0x44]);
        assert_eq!(bus.writes32[1].0, PIO_DMA_PORT + 4);
        assert_eq!(bus.writes32[1].1.to_le_bytes(), [0x55, 0x66, 0x77, 0x88]);
    }

    #[test]
    fn port_io_low_kick_and_dma_signature() {
        struct SigPorts(RecPorts);
        impl PortBus for SigPorts {
            fn out16(&mut self, port: u16, value: u16) {
                self.0.out16(port, value)
            }
            fn out32(&mut self, port: u16, value: u32) {
                self.0.out32(port, value)
            }
            fn in8(&mut self, port: u16) -> u8 {
                // The DMA register, byte by byte (the default `in32`).
                DMA_SIGNATURE.to_be_bytes()[usize::from(port - PIO_DMA_PORT)]
            }
        }
        let mut t = PortIo::with_bus(SigPorts(RecPorts::default()));
        assert_eq!(t.read_dma_signature(), DMA_SIGNATURE);
        // SAFETY: `RecPorts` only records the writes; no device does DMA.
        unsafe { t.kick_low(0x5566_7788) };
        let bus = t.into_bus().0;
        assert_eq!(bus.n32, 1, "the low half only");
        assert_eq!(bus.writes32[0].0, PIO_DMA_PORT + 4);
        assert_eq!(bus.writes32[0].1.to_le_bytes(), [0x55, 0x66, 0x77, 0x88]);
    }

    /// The MMIO window as plain memory: reads of the data register return
    /// what is stored there, which checks the access widths and byte order.
    #[repr(C, align(8))]
    struct Window([u8; 0x18]);

    #[test]
    fn raw_mmio_byte_order_and_widths() {
        let mut w = Window([0; 0x18]);
        w.0[..8].copy_from_slice(b"QEMU CFG");
        {
            // SAFETY: `w` is an aligned, live, 0x18-byte window of plain
            // memory, used by nothing else while `t` exists; plain memory
            // does no DMA.
            let mut t = unsafe { Mmio::new(w.0.as_mut_ptr()) };
            let mut b = [0u8; 15];
            t.read(&mut b).unwrap();
            // 8 + 4 + 2 + 1 bytes, each access starting again at +0.
            assert_eq!(&b, b"QEMU CFGQEMUQEQ");
            t.select(0x1234);
            // SAFETY: plain memory behind the window: nothing does DMA.
            unsafe { t.kick(0x0102_0304_0506_0708) };
            assert_eq!(t.bus_mut().last_refused(), None);
        }
        assert_eq!(&w.0[8..10], &[0x12, 0x34]);
        assert_eq!(&w.0[16..24], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&DMA_SIGNATURE.to_be_bytes(), b"QEMU CFG");
    }

    /// The safe methods of `RawMmio` stay inside the window, aligned, and
    /// away from the DMA register; refused reads return 0.
    #[test]
    fn raw_mmio_refuses_accesses_outside_the_window() {
        // The window, and guard bytes after it that must stay untouched;
        // the pointer covers both, so a stray write would show.
        #[repr(C, align(8))]
        struct Guarded {
            window: [u8; 0x18],
            guard: [u8; 0x10],
        }
        let mut g = Guarded {
            window: [0x5a; 0x18],
            guard: [0xa5; 0x10],
        };
        let base = core::ptr::addr_of_mut!(g).cast::<u8>();
        // SAFETY: `base` is an aligned, live, 0x18-byte window of plain
        // memory (followed by the guard), used by nothing else while `bus`
        // exists; plain memory does no DMA.
        let mut bus = unsafe { RawMmio::new(base) };
        let outside = |address, width| RegisterAccessError::OutsideWindow { address, width };
        assert_eq!(bus.read8(0x17), 0x5a);
        assert_eq!(bus.last_refused(), None);
        assert_eq!(bus.read8(0x18), 0);
        assert_eq!(bus.last_refused(), Some(outside(0x18, 1)));
        assert_eq!(bus.read64(u64::MAX - 3), 0);
        assert_eq!(bus.last_refused(), Some(outside(u64::MAX - 3, 8)));
        assert_eq!(bus.read64(0x18), 0);
        assert_eq!(bus.last_refused(), Some(outside(0x18, 8)));
        assert_eq!(bus.read32(0x16), 0, "straddles the end");
        assert_eq!(bus.last_refused(), Some(outside(0x16, 4)));
        assert_eq!(bus.read16(0x9), 0);
        assert_eq!(
            bus.last_refused(),
            Some(RegisterAccessError::Misaligned {
                address: 9,
                width: 2
            })
        );
        bus.write16(0x18, 0xffff);
        assert_eq!(bus.last_refused(), Some(outside(0x18, 2)));
        bus.write64(0x20, u64::MAX);
        assert_eq!(bus.last_refused(), Some(outside(0x20, 8)));
        // The DMA register only through the unsafe method.
        bus.write64(MMIO_DMA_OFFSET, u64::MAX);
        assert_eq!(
            bus.last_refused(),
            Some(RegisterAccessError::DmaRegister {
                address: 0x10,
                width: 8
            })
        );
        bus.write16(0x16, 0xffff);
        assert_eq!(
            bus.last_refused(),
            Some(RegisterAccessError::DmaRegister {
                address: 0x16,
                width: 2
            })
        );
        bus.write64(0x18, u64::MAX);
        assert_eq!(bus.last_refused(), Some(outside(0x18, 8)));
        // SAFETY: plain memory behind the window: nothing does DMA.
        unsafe { bus.write64_dma(0x0c, 1) };
        assert_eq!(
            bus.last_refused(),
            Some(RegisterAccessError::Misaligned {
                address: 0x0c,
                width: 8
            })
        );
        // SAFETY: as above.
        unsafe { bus.write64_dma(0x18, 1) };
        assert_eq!(bus.last_refused(), Some(outside(0x18, 8)));
        // SAFETY: as above.
        unsafe { bus.write64_dma(MMIO_DMA_OFFSET, u64::from_ne_bytes([7; 8])) };
        assert_eq!(bus.last_refused(), None);
        // Allowed writes land where they should.
        bus.write16(MMIO_SELECTOR_OFFSET, 0x0102);
        assert_eq!(bus.last_refused(), None);
        // `bus` is not used from here on.
        assert_eq!(g.guard, [0xa5; 0x10], "nothing written past the window");
        assert_eq!(&g.window[..8], &[0x5a; 8], "nothing written to data");
        assert_eq!(&g.window[8..10], &0x0102u16.to_ne_bytes());
        assert_eq!(&g.window[10..16], &[0x5a; 6]);
        assert_eq!(&g.window[16..24], &[7; 8]);
    }

    /// The port window of `X86PortBus`: 0x510..0x51c, the DMA register
    /// (0x514..0x51c) refused to safe writes. (The check runs before any
    /// instruction, so it is tested without I/O privilege.)
    #[test]
    fn port_window_checks() {
        let outside = |address, width| Err(RegisterAccessError::OutsideWindow { address, width });
        let dma = |address, width| Err(RegisterAccessError::DmaRegister { address, width });
        assert_eq!(check_port(0x510, 2, true), Ok(()));
        assert_eq!(check_port(0x511, 1, false), Ok(()));
        assert_eq!(check_port(0x51b, 1, false), Ok(()));
        assert_eq!(check_port(0x50f, 1, false), outside(0x50f, 1));
        assert_eq!(check_port(0x51c, 1, false), outside(0x51c, 1));
        assert_eq!(check_port(0x51a, 4, false), outside(0x51a, 4));
        assert_eq!(check_port(0xffff, 4, false), outside(0xffff, 4));
        assert_eq!(check_port(0x80, 1, false), outside(0x80, 1));
        assert_eq!(check_port(0x514, 4, true), dma(0x514, 4));
        assert_eq!(check_port(0x518, 4, true), dma(0x518, 4));
        assert_eq!(check_port(0x513, 2, true), dma(0x513, 2));
        assert_eq!(check_port(0x512, 2, true), Ok(()));
        // The DMA path (`out32_dma`) and reads may reach the register.
        assert_eq!(check_port(0x514, 4, false), Ok(()));
        assert_eq!(check_port(0x518, 4, false), Ok(()));
    }

    /// A fake device for DMA: completes each transfer by writing `fill`
    /// into the buffer and `result` into the control word.
    struct FakeDmaDev<'m> {
        mem: &'m core::cell::RefCell<([u8; 16], [u8; 32])>,
        result: u32,
        selects: u32,
        low_kicks: u32,
        full_kicks: u32,
    }

    impl FwCfgTransport for FakeDmaDev<'_> {
        fn select(&mut self, _key: u16) {
            self.selects += 1;
        }
        fn read(&mut self, buf: &mut [u8]) -> Result<(), TransportError> {
            buf.fill(0xee);
            Ok(())
        }
    }

    impl DmaKick for FakeDmaDev<'_> {
        unsafe fn kick_low(&mut self, addr: u32) {
            self.low_kicks += 1;
            self.full_kicks = self.full_kicks.wrapping_sub(1);
            // SAFETY: the fake device only writes the test's cell.
            unsafe { self.kick(u64::from(addr)) }
        }
        unsafe fn kick(&mut self, addr: u64) {
            self.full_kicks = self.full_kicks.wrapping_add(1);
            assert_eq!(addr, 0xd000);
            let mut m = self.mem.borrow_mut();
            let d = DmaAccess::from_be_bytes(&m.0);
            assert_eq!(d.address, 0xb000);
            if d.control & DMA_CTL_READ != 0 {
                let n = d.length as usize;
                for (i, b) in m.1[..n].iter_mut().enumerate() {
                    *b = d.selector() as u8 ^ i as u8;
                }
            }
            m.0[..4].copy_from_slice(&self.result.to_be_bytes());
        }
    }

    struct FakeMem<'m>(&'m core::cell::RefCell<([u8; 16], [u8; 32])>);

    // SAFETY: the "device" is `FakeDmaDev`, which writes only the cell's
    // two arrays, the memory these addresses stand for.
    unsafe impl DmaMemory for FakeMem<'_> {
        fn descriptor_address(&self) -> u64 {
            0xd000
        }
        fn write_descriptor(&mut self, bytes: &[u8; 16]) {
            self.0.borrow_mut().0 = *bytes;
        }
        fn read_control(&mut self) -> u32 {
            let m = self.0.borrow();
            u32::from_be_bytes([m.0[0], m.0[1], m.0[2], m.0[3]])
        }
        fn buffer_address(&self) -> u64 {
            0xb000
        }
        fn buffer_len(&self) -> usize {
            32
        }
        fn read_buffer(&mut self, offset: usize, out: &mut [u8]) {
            out.copy_from_slice(&self.0.borrow().1[offset..offset + out.len()]);
        }
    }

    #[test]
    fn dma_folds_select_and_chunks() {
        let cell = core::cell::RefCell::new(([0u8; 16], [0u8; 32]));
        let dev = FakeDmaDev {
            mem: &cell,
            result: 0,
            selects: 0,
            low_kicks: 0,
            full_kicks: 0,
        };
        let mut t = Dma::new(dev, FakeMem(&cell));
        // Off: falls through to the register interface.
        let mut b = [0u8; 4];
        t.select(7);
        t.read(&mut b).unwrap();
        assert_eq!(b, [0xee; 4]);
        assert!(t.set_dma(true));
        t.select(0x21);
        let mut big = [0u8; 40];
        t.read(&mut big).unwrap();
        assert_eq!(t.transfers(), 2);
        assert_eq!(big[0], 0x21);
        assert_eq!(big[1], 0x20);
        // The second chunk is a plain READ: no selector in the control word.
        assert_eq!(big[32], 0);
        assert_eq!(t.inner().selects, 1);
        // Below 4 GiB the latch's documented state saves the high half;
        // after `forget_address_latch` one kick writes both.
        assert_eq!((t.inner().low_kicks, t.inner().full_kicks), (2, 0));
        t.forget_address_latch();
        t.read(&mut b).unwrap();
        t.read(&mut b).unwrap();
        assert_eq!((t.inner().low_kicks, t.inner().full_kicks), (3, 1));
        assert_eq!(t.dma_signature(), Some(0));
    }

    #[test]
    fn dma_error_and_timeout() {
        let cell = core::cell::RefCell::new(([0u8; 16], [0u8; 32]));
        let dev = FakeDmaDev {
            mem: &cell,
            result: DMA_CTL_ERROR,
            selects: 0,
            low_kicks: 0,
            full_kicks: 0,
        };
        let mut t = Dma::new(dev, FakeMem(&cell));
        t.set_dma(true);
        let mut b = [0u8; 4];
        assert_eq!(
            t.read(&mut b),
            Err(TransportError::DmaError {
                control: DMA_CTL_ERROR
            })
        );
        let (mut dev, mem) = t.into_parts();
        dev.result = DMA_CTL_READ; // never completes
        let mut t = Dma::new(dev, mem);
        t.set_max_polls(3);
        t.set_dma(true);
        assert_eq!(
            t.read(&mut b),
            Err(TransportError::DmaTimeout {
                control: DMA_CTL_READ,
                polls: 3
            })
        );
        assert_eq!(t.read(&mut b), Err(TransportError::DmaPoisoned));
        assert!(!t.set_dma(true));
    }

    #[test]
    fn dma_buffer_volatile_access() {
        let mut slot = [0u8; 16];
        let mut data = [0u8; 13];
        for (i, b) in data.iter_mut().enumerate() {
            *b = i as u8;
        }
        let (sa, da) = (slot.as_ptr() as u64, data.as_ptr() as u64);
        // SAFETY: nothing does DMA here; the addresses are only recorded.
        let mut m = unsafe { DmaBuffer::new(&mut slot, sa, &mut data, da) };
        m.write_descriptor(&DmaAccess::select(1, DMA_CTL_READ, 4, da).to_be_bytes());
        assert_eq!(m.read_control(), (1 << 16) | DMA_CTL_SELECT | DMA_CTL_READ);
        let mut out = [0u8; 13];
        m.read_buffer(0, &mut out);
        assert_eq!(out[12], 12);
        let mut tail = [0u8; 5];
        m.read_buffer(10, &mut tail);
        assert_eq!(tail, [10, 11, 12, 0, 0]);
        assert_eq!((m.descriptor_address(), m.buffer_address()), (sa, da));
    }
}
