// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The legacy devices of the mini VMM: a 16550 UART (vm-superio), QEMU's
//! `isa-debug-exit` and the ACPI power registers ([`AcpiPower`]), all as
//! `vm-device` port-I/O devices.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use vm_device::MutDevicePio;
use vm_device::bus::{PioAddress, PioAddressOffset};
use vm_superio::{Serial, Trigger};

/// The UART's interrupt line. The mini VMM has no interrupt controller (so
/// that `hlt` exits to it); the firmware polls or only writes.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoInterrupt;

impl Trigger for NoInterrupt {
    type E = io::Error;

    fn trigger(&self) -> io::Result<()> {
        Ok(())
    }
}

/// Where the serial port's output goes.
#[derive(Debug, Clone)]
pub enum SerialSink {
    /// The VMM's standard output.
    Stdout,
    /// A buffer the caller reads after the run.
    Buffer(Arc<Mutex<Vec<u8>>>),
    /// Both.
    Tee(Arc<Mutex<Vec<u8>>>),
}

impl SerialSink {
    /// A fresh capture buffer and a sink writing to it.
    pub fn capture() -> (Self, Arc<Mutex<Vec<u8>>>) {
        let buf = Arc::new(Mutex::new(Vec::new()));
        (SerialSink::Buffer(buf.clone()), buf)
    }
}

impl Write for SerialSink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let to_buffer = |buf: &Arc<Mutex<Vec<u8>>>| {
            buf.lock()
                .map_err(|_| io::Error::other("serial capture buffer poisoned"))
                .map(|mut b| b.extend_from_slice(data))
        };
        match self {
            SerialSink::Stdout => io::stdout().write_all(data)?,
            SerialSink::Buffer(buf) => to_buffer(buf)?,
            SerialSink::Tee(buf) => {
                to_buffer(buf)?;
                io::stdout().write_all(data)?;
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            SerialSink::Stdout | SerialSink::Tee(_) => io::stdout().flush(),
            SerialSink::Buffer(_) => Ok(()),
        }
    }
}

/// COM1: vm-superio's `Serial` behind the `vm-device` port-I/O interface,
/// raising its interrupt through `T` ([`NoInterrupt`] for the polled PVH
/// firmware, an irqfd for Linux: [`crate::linux::IrqSerial`]).
pub struct SerialDevice<T: Trigger = NoInterrupt> {
    serial: Serial<T, vm_superio::serial::NoEvents, SerialSink>,
}

impl SerialDevice {
    /// A UART without an interrupt line, writing to `sink`.
    pub fn new(sink: SerialSink) -> Self {
        SerialDevice::with_trigger(NoInterrupt, sink)
    }
}

impl SerialDevice {
    /// The UART's registers and receive FIFO, for a snapshot.
    pub fn state(&self) -> vm_superio::serial::SerialState {
        self.serial.state()
    }

    /// Replaces the UART's registers and FIFO by `state` (from
    /// [`state`](Self::state)); the output sink stays.
    pub fn restore(
        &mut self,
        state: &vm_superio::serial::SerialState,
    ) -> Result<(), vm_superio::serial::Error<io::Error>> {
        let sink = self.serial.writer().clone();
        self.serial = Serial::from_state(state, NoInterrupt, vm_superio::serial::NoEvents, sink)?;
        Ok(())
    }
}

impl<T: Trigger> SerialDevice<T> {
    /// A UART raising its interrupt through `trigger`, writing to `sink`.
    pub fn with_trigger(trigger: T, sink: SerialSink) -> Self {
        SerialDevice {
            serial: Serial::new(trigger, sink),
        }
    }
}

impl<T: Trigger> MutDevicePio for SerialDevice<T> {
    fn pio_read(&mut self, _base: PioAddress, offset: PioAddressOffset, data: &mut [u8]) {
        if let (Ok(off), Some(first)) = (u8::try_from(offset), data.first_mut()) {
            *first = self.serial.read(off);
        }
    }

    fn pio_write(&mut self, _base: PioAddress, offset: PioAddressOffset, data: &[u8]) {
        if let (Ok(off), Some(&first)) = (u8::try_from(offset), data.first()) {
            // Output errors (a closed stdout) must not stop the guest.
            let _ = self.serial.write(off, first);
        }
    }
}

/// QEMU's `isa-debug-exit`: a write of `value` asks the VMM to exit with
/// status `(value << 1) | 1`.
#[derive(Debug, Default)]
pub struct DebugExit {
    /// 0 while no exit was requested, otherwise `value + 1`.
    requested: Arc<AtomicU64>,
}

impl DebugExit {
    /// A device and the flag the run loop polls.
    pub fn new() -> (Self, DebugExitFlag) {
        let requested = Arc::new(AtomicU64::new(0));
        (
            DebugExit {
                requested: requested.clone(),
            },
            DebugExitFlag(requested),
        )
    }
}

impl MutDevicePio for DebugExit {
    fn pio_read(&mut self, _base: PioAddress, _offset: PioAddressOffset, data: &mut [u8]) {
        data.fill(0);
    }

    fn pio_write(&mut self, _base: PioAddress, _offset: PioAddressOffset, data: &[u8]) {
        let mut value = [0u8; 4];
        let n = data.len().min(4);
        value[..n].copy_from_slice(&data[..n]);
        let value = u32::from_le_bytes(value);
        self.requested.store(u64::from(value) + 1, Ordering::SeqCst);
    }
}

/// Read side of [`DebugExit`].
#[derive(Debug, Clone)]
pub struct DebugExitFlag(Arc<AtomicU64>);

impl DebugExitFlag {
    /// The value the guest wrote, if it wrote one.
    pub fn value(&self) -> Option<u32> {
        match self.0.load(Ordering::SeqCst) {
            0 => None,
            v => u32::try_from(v - 1).ok(),
        }
    }
}

/// QEMU's exit status for a debug-exit write of `value`.
pub fn debug_exit_status(value: u32) -> u32 {
    (value << 1) | 1
}

/// `SLP_EN` in the hardware-reduced sleep control register (ACPI 6.5,
/// 4.8.3.7).
pub const SLEEP_ENABLE: u8 = 1 << 5;
/// Position of `SLP_TYPx` in the sleep control register (bits 4:2).
pub const SLEEP_TYPE_SHIFT: u8 = 2;
/// The `SLP_TYPx` value of S5 (soft off), as the DSDT's `_S5_` states it.
pub const S5_SLEEP_TYPE: u8 = 5;
/// The value the FADT's `RESET_VALUE` names; written to the reset
/// register, it resets the machine.
pub const RESET_VALUE: u8 = 1;

/// What the guest asked of [`AcpiPower`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerRequest {
    /// S5 through the sleep control register.
    PowerOff,
    /// [`RESET_VALUE`] through the reset register.
    Reset,
}

/// The ACPI hardware-reduced power registers, one byte each from its base
/// (the FADT's `SLEEP_CONTROL_REG`, `SLEEP_STATUS_REG` and `RESET_REG`,
/// as Cloud Hypervisor and QEMU's microvm give them):
///
/// - offset 0, sleep control: a write with `SLP_EN` and `SLP_TYP` =
///   [`S5_SLEEP_TYPE`] powers off; other sleep states are not offered
///   (the DSDT has only `_S5_`) and are ignored;
/// - offset 1, sleep status: reads 0 (no wake event), writes (Linux
///   clears `WAK_STS` before sleeping) are ignored;
/// - offset 2, reset: a write of [`RESET_VALUE`] resets.
///
/// The run loop polls the [`PowerFlag`] after each port write.
#[derive(Debug, Default)]
pub struct AcpiPower {
    requested: Arc<AtomicU8>,
}

/// Read side of [`AcpiPower`].
#[derive(Debug, Clone)]
pub struct PowerFlag(Arc<AtomicU8>);

const REQUEST_NONE: u8 = 0;
const REQUEST_POWER_OFF: u8 = 1;
const REQUEST_RESET: u8 = 2;

impl AcpiPower {
    /// A device and the flag the run loop polls.
    pub fn new() -> (Self, PowerFlag) {
        let requested = Arc::new(AtomicU8::new(REQUEST_NONE));
        (
            AcpiPower {
                requested: requested.clone(),
            },
            PowerFlag(requested),
        )
    }

    /// What a write of `value` to register `offset` requests.
    pub fn decode(offset: PioAddressOffset, value: u8) -> Option<PowerRequest> {
        let sleep_type = (value >> SLEEP_TYPE_SHIFT) & 0x7;
        match offset {
            0 if value & SLEEP_ENABLE != 0 && sleep_type == S5_SLEEP_TYPE => {
                Some(PowerRequest::PowerOff)
            }
            2 if value == RESET_VALUE => Some(PowerRequest::Reset),
            _ => None,
        }
    }
}

impl MutDevicePio for AcpiPower {
    fn pio_read(&mut self, _base: PioAddress, _offset: PioAddressOffset, data: &mut [u8]) {
        data.fill(0);
    }

    fn pio_write(&mut self, _base: PioAddress, offset: PioAddressOffset, data: &[u8]) {
        let request = data.first().and_then(|&v| AcpiPower::decode(offset, v));
        let code = match request {
            Some(PowerRequest::PowerOff) => REQUEST_POWER_OFF,
            Some(PowerRequest::Reset) => REQUEST_RESET,
            None => return,
        };
        self.requested.store(code, Ordering::SeqCst);
    }
}

impl PowerFlag {
    /// The guest's request, if it made one.
    pub fn request(&self) -> Option<PowerRequest> {
        match self.0.load(Ordering::SeqCst) {
            REQUEST_POWER_OFF => Some(PowerRequest::PowerOff),
            REQUEST_RESET => Some(PowerRequest::Reset),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_captures_bytes() {
        let (sink, buf) = SerialSink::capture();
        let mut dev = SerialDevice::new(sink);
        for &b in b"hi\n" {
            dev.pio_write(PioAddress(0x3f8), 0, &[b]);
        }
        assert_eq!(&*buf.lock().unwrap(), b"hi\n");
        // Line status: transmitter empty.
        let mut lsr = [0u8];
        dev.pio_read(PioAddress(0x3f8), 5, &mut lsr);
        assert_ne!(lsr[0] & 0x20, 0);
    }

    #[test]
    fn debug_exit_status_matches_qemu() {
        let (mut dev, flag) = DebugExit::new();
        assert_eq!(flag.value(), None);
        dev.pio_write(PioAddress(0xf4), 0, &[3, 0, 0, 0]);
        assert_eq!(flag.value(), Some(3));
        assert_eq!(debug_exit_status(3), 7);
        assert_eq!(debug_exit_status(0), 1);
    }

    #[test]
    fn power_registers_decode_s5_and_the_reset_value() {
        let (mut dev, flag) = AcpiPower::new();
        let base = PioAddress(0x3c0);
        // Linux clears WAK_STS first: no request.
        dev.pio_write(base, 1, &[0x80]);
        // Sleep types other than S5, or S5 without SLP_EN: no request.
        dev.pio_write(base, 0, &[(3 << SLEEP_TYPE_SHIFT) | SLEEP_ENABLE]);
        dev.pio_write(base, 0, &[S5_SLEEP_TYPE << SLEEP_TYPE_SHIFT]);
        dev.pio_write(base, 2, &[RESET_VALUE + 1]);
        assert_eq!(flag.request(), None);
        let mut status = [0xffu8];
        dev.pio_read(base, 1, &mut status);
        assert_eq!(status, [0]);
        // What acpi_hw_extended_sleep writes for S5: 0x34.
        dev.pio_write(base, 0, &[0x34]);
        assert_eq!(flag.request(), Some(PowerRequest::PowerOff));

        let (mut dev, flag) = AcpiPower::new();
        dev.pio_write(base, 2, &[RESET_VALUE]);
        assert_eq!(flag.request(), Some(PowerRequest::Reset));
    }
}
