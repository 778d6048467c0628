// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Hand-rolled JSON-line output on the serial port.
//!
//! The firmware does not use `core::fmt`: the precompiled `libcore` formats
//! integers with SSE instructions, which some nested KVM engines cannot
//! execute, and the firmware itself is built without SSE (see the crate
//! README). Everything here is plain integer code.

use crate::serial::Serial;

/// A JSON object being written as one line: `{"k":v,...}\n`.
pub struct Line {
    out: Serial,
    first: bool,
}

impl Line {
    /// Starts a line whose `"event"` member is `event`.
    pub fn new(event: &str) -> Self {
        let mut line = Line {
            out: Serial,
            first: true,
        };
        line.out.write_bytes(b"{");
        line.str("event", event.as_bytes());
        line
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.write_bytes(b",");
        }
        self.first = false;
        self.out.write_bytes(b"\"");
        self.out.write_bytes(key.as_bytes());
        self.out.write_bytes(b"\":");
    }

    /// A string member; bytes outside printable ASCII are escaped.
    pub fn str(&mut self, key: &str, value: &[u8]) -> &mut Self {
        self.key(key);
        self.out.write_bytes(b"\"");
        for &b in value {
            match b {
                b'"' => self.out.write_bytes(b"\\\""),
                b'\\' => self.out.write_bytes(b"\\\\"),
                0x20..=0x7e => self.out.write_bytes(&[b]),
                _ => {
                    self.out.write_bytes(b"\\u00");
                    self.out
                        .write_bytes(&[hex_digit(b >> 4), hex_digit(b & 0xf)]);
                }
            }
        }
        self.out.write_bytes(b"\"");
        self
    }

    /// An unsigned integer member.
    pub fn u64(&mut self, key: &str, value: u64) -> &mut Self {
        self.key(key);
        write_u64(&mut self.out, value);
        self
    }

    /// A boolean member.
    pub fn bool(&mut self, key: &str, value: bool) -> &mut Self {
        self.key(key);
        self.out.write_bytes(if value { b"true" } else { b"false" });
        self
    }

    /// A `null` member.
    pub fn null(&mut self, key: &str) -> &mut Self {
        self.key(key);
        self.out.write_bytes(b"null");
        self
    }

    /// An optional unsigned integer member (`null` when absent).
    pub fn opt_u64(&mut self, key: &str, value: Option<u64>) -> &mut Self {
        match value {
            Some(v) => self.u64(key, v),
            None => self.null(key),
        }
    }

    /// An array of small unsigned integers (raw bytes).
    pub fn bytes(&mut self, key: &str, value: &[u8]) -> &mut Self {
        self.key(key);
        self.out.write_bytes(b"[");
        for (i, &b) in value.iter().enumerate() {
            if i != 0 {
                self.out.write_bytes(b",");
            }
            write_u64(&mut self.out, u64::from(b));
        }
        self.out.write_bytes(b"]");
        self
    }

    /// Opens an array member; add elements with [`Line::array_str`].
    pub fn array_open(&mut self, key: &str) -> &mut Self {
        self.key(key);
        self.out.write_bytes(b"[");
        self.first = true;
        self
    }

    /// Adds a string element to the open array.
    pub fn array_str(&mut self, value: &[u8]) -> &mut Self {
        if !self.first {
            self.out.write_bytes(b",");
        }
        self.first = false;
        self.out.write_bytes(b"\"");
        self.out.write_bytes(value);
        self.out.write_bytes(b"\"");
        self
    }

    /// Closes the open array.
    pub fn array_close(&mut self) -> &mut Self {
        self.out.write_bytes(b"]");
        self.first = false;
        self
    }

    /// Opens a nested object member; close it with [`Line::close`].
    pub fn open(&mut self, key: &str) -> &mut Self {
        self.key(key);
        self.out.write_bytes(b"{");
        self.first = true;
        self
    }

    /// Closes the innermost nested object.
    pub fn close(&mut self) -> &mut Self {
        self.out.write_bytes(b"}");
        self.first = false;
        self
    }

    /// Ends the line.
    pub fn end(mut self) {
        self.out.write_bytes(b"}\n");
    }
}

const fn hex_digit(v: u8) -> u8 {
    if v < 10 { b'0' + v } else { b'a' + v - 10 }
}

/// Writes `value` in decimal.
pub fn write_u64(out: &mut Serial, mut value: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.write_bytes(&buf[i..]);
}
