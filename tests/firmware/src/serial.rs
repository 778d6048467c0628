// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! COM1 output and the debug-exit port, by plain port I/O.

use core::arch::asm;

/// COM1 transmit holding register.
pub const COM1: u16 = 0x3f8;
/// `isa-debug-exit` port: the VMM exits with status `(value << 1) | 1`.
pub const DEBUG_EXIT_PORT: u16 = 0xf4;

/// Writes a 32-bit value to an I/O port.
#[inline(always)]
pub fn outl(port: u16, value: u32) {
    // SAFETY: port I/O has no memory effects; the firmware owns the machine
    // and only targets ports of devices it knows (debug exit, harness
    // marker).
    unsafe {
        asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags))
    }
}

/// Reads one byte from an I/O port.
#[inline(always)]
pub fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: as for `outl`; a read of an unused port returns 0xff.
    unsafe {
        asm!("in al, dx", in("dx") port, out("al") value, options(nomem, nostack, preserves_flags))
    }
    value
}

/// The serial console. Writes do not poll the line status register: both
/// the mini VMM's and QEMU's UARTs accept bytes at once, and every poll
/// would cost a VM exit. Bytes go out with `rep outsb`, which KVM turns into
/// one exit per batch instead of one per byte.
pub struct Serial;

impl Serial {
    /// Writes raw bytes.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        // SAFETY: `rep outsb` reads exactly `bytes.len()` bytes from
        // `bytes` (the direction flag is clear on entry to asm) and writes
        // them to COM1; port I/O as for `outl`.
        unsafe {
            asm!("rep outsb", in("dx") COM1, inout("rsi") bytes.as_ptr() => _,
                inout("rcx") bytes.len() => _, options(readonly, nostack, preserves_flags));
        }
    }
}

/// Leaves the VM through the debug-exit port (status `(code << 1) | 1`),
/// halting forever if no such device is present.
pub fn exit(code: u8) -> ! {
    outl(DEBUG_EXIT_PORT, u32::from(code));
    loop {
        // SAFETY: `cli; hlt` only stops this vCPU.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) }
    }
}
