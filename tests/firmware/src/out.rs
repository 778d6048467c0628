// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Protocol lines on the serial port.
//!
//! The lines are `fw-cfg-protocol`'s types, written by its no-alloc JSON
//! writer: no `core::fmt` (the precompiled `libcore` formats integers with
//! SSE instructions, which some nested KVM engines cannot execute, and the
//! firmware itself is built without SSE; see the crate README).

use fw_cfg_protocol::{Line, Sink, write_line};

use crate::serial::Serial;

impl Sink for Serial {
    fn write(&mut self, bytes: &[u8]) {
        self.write_bytes(bytes);
    }
}

/// Prints `line` on COM1.
pub fn emit(line: &Line) {
    // The line types hold no floating point and no maps, the only values
    // the writer refuses; a refused value would only cut this line short.
    let _ = write_line(Serial, line);
}
