// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! A debug console port, QEMU's `isa-debugcon` (hw/char/debugcon.c): every
//! byte written to the port goes to a file, stderr or a buffer, and a read
//! returns the readback value 0xe9, by which SeaBIOS's `qemu_debug_preinit`
//! (src/hw/serialio.c) decides that the port is there before it logs to
//! it. SeaBIOS logs to port 0x402 ([`SEABIOS_DEBUG_PORT`], its
//! `DebugOutputPort`); QEMU's device defaults to 0xe9, which is why QEMU
//! users pass `-global isa-debugcon.iobase=0x402`. qboot has no debug port
//! (it prints only a panic, on COM1).

use std::fs::File;
use std::io::{self, LineWriter, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use vm_device::MutDevicePio;
use vm_device::bus::{PioAddress, PioAddressOffset};

use crate::Error;

/// What a read of the port returns (QEMU's `readback` property default,
/// SeaBIOS's `QEMU_DEBUGCON_READBACK`).
pub const DEBUGCON_READBACK: u8 = 0xe9;
/// SeaBIOS's debug output port, the default of `--debugcon-port`.
pub const SEABIOS_DEBUG_PORT: u16 = 0x402;

/// Where the debug console's bytes go.
#[derive(Debug, Clone)]
pub enum DebugconSink {
    /// The VMM's standard error.
    Stderr,
    /// A file, created (truncated) when the VM is built.
    File(PathBuf),
    /// A buffer the caller reads after the run.
    Buffer(Arc<Mutex<Vec<u8>>>),
}

/// The debug console's port and sink.
#[derive(Debug, Clone)]
pub struct DebugconSetup {
    /// The I/O port (one byte wide).
    pub port: u16,
    /// Where the bytes go.
    pub sink: DebugconSink,
}

/// The device.
pub struct Debugcon {
    out: Box<dyn Write + Send>,
}

impl std::fmt::Debug for Debugcon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Debugcon").finish_non_exhaustive()
    }
}

/// Appends to a shared buffer.
struct BufferWriter(Arc<Mutex<Vec<u8>>>);

impl Write for BufferWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("debugcon buffer poisoned"))?
            .extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Debugcon {
    /// A device writing to `sink` (creating its file).
    pub fn new(sink: &DebugconSink) -> Result<Debugcon, Error> {
        // Line-buffered: a firmware writes its log a byte per exit, and a
        // write per byte to a slow file (a 9p share) costs more than the
        // exit. The buffer is flushed at each newline and when the device
        // is dropped at the end of the run.
        let out: Box<dyn Write + Send> = match sink {
            DebugconSink::Stderr => Box::new(LineWriter::new(io::stderr())),
            DebugconSink::File(path) => {
                let file = File::create(path).map_err(|source| Error::Debugcon {
                    path: path.clone(),
                    source,
                })?;
                Box::new(LineWriter::new(file))
            }
            DebugconSink::Buffer(buf) => Box::new(BufferWriter(buf.clone())),
        };
        Ok(Debugcon { out })
    }
}

impl MutDevicePio for Debugcon {
    fn pio_read(&mut self, _base: PioAddress, _offset: PioAddressOffset, data: &mut [u8]) {
        data.fill(DEBUGCON_READBACK);
    }

    fn pio_write(&mut self, _base: PioAddress, _offset: PioAddressOffset, data: &[u8]) {
        // As QEMU: the low byte of a wider write. Output errors (a full
        // disk) must not stop the guest.
        if let Some(&b) = data.first() {
            let _ = self.out.write_all(&[b]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_reach_the_sink_and_reads_are_the_readback() {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let mut d = Debugcon::new(&DebugconSink::Buffer(buf.clone())).unwrap();
        let port = PioAddress(SEABIOS_DEBUG_PORT);
        for &b in b"SeaBIOS\n" {
            d.pio_write(port, 0, &[b]);
        }
        d.pio_write(port, 0, b"!x");
        assert_eq!(&*buf.lock().unwrap(), b"SeaBIOS\n!");
        let mut r = [0u8; 2];
        d.pio_read(port, 0, &mut r);
        assert_eq!(r, [DEBUGCON_READBACK; 2]);
    }

    #[test]
    fn an_uncreatable_file_is_an_error() {
        let sink = DebugconSink::File(PathBuf::from("/nonexistent-dir/debugcon.log"));
        assert!(matches!(Debugcon::new(&sink), Err(Error::Debugcon { .. })));
    }
}
