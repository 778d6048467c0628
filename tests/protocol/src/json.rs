// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! A JSON writer for serde without allocation and without `core::fmt`.
//!
//! The firmware must not use `core::fmt` for integers: the precompiled
//! `libcore` formats them with SSE instructions, which some nested KVM
//! engines cannot execute (the firmware itself is built without SSE).
//! [`Writer`] is a [`serde::Serializer`] that writes compact JSON into a
//! [`Sink`] with plain integer code; it never allocates and never formats
//! through `core::fmt`. Floating point is refused ([`WriteError::Float`]),
//! and so are maps (no line has one, and a map key need not be a string).
//!
//! Enums follow serde's conventions (what `serde_json` reads back): a unit
//! variant is its name as a string, a newtype variant `{"name":value}`.
//! Strings are escaped as JSON requires (`"`, `\`, control characters);
//! everything else is written as is.

use core::fmt;

use serde::Serialize;
use serde::ser::{self, Impossible};

/// Where the bytes go: the firmware's serial port, a `Vec<u8>` on the host.
pub trait Sink {
    /// Writes all of `bytes`.
    fn write(&mut self, bytes: &[u8]);
}

impl<S: Sink + ?Sized> Sink for &mut S {
    fn write(&mut self, bytes: &[u8]) {
        (**self).write(bytes);
    }
}

#[cfg(feature = "host")]
impl Sink for Vec<u8> {
    fn write(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Why a value could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteError {
    /// A floating-point value (the firmware has no floating point).
    Float,
    /// A map (no line has one).
    Map,
    /// A `Serialize` impl reported its own error (its message is dropped:
    /// keeping it would need `core::fmt`).
    Custom,
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WriteError::Float => "floating point cannot be written",
            WriteError::Map => "maps cannot be written",
            WriteError::Custom => "a value refused to serialize",
        })
    }
}

impl core::error::Error for WriteError {}

impl ser::Error for WriteError {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        WriteError::Custom
    }
}

/// Writes `value` as compact JSON into `sink`.
///
/// On error the sink may hold a partial document.
pub fn to_sink<S: Sink, T: Serialize + ?Sized>(sink: S, value: &T) -> Result<(), WriteError> {
    value.serialize(&mut Writer { sink })
}

/// The serializer; see the module documentation.
pub struct Writer<S: Sink> {
    sink: S,
}

impl<S: Sink> Writer<S> {
    /// A writer into `sink`.
    pub fn new(sink: S) -> Self {
        Writer { sink }
    }

    /// The sink back.
    pub fn into_inner(self) -> S {
        self.sink
    }

    fn u64(&mut self, mut value: u64) {
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
        self.sink.write(&buf[i..]);
    }

    fn i64(&mut self, value: i64) {
        if value < 0 {
            self.sink.write(b"-");
        }
        self.u64(value.unsigned_abs());
    }

    fn string(&mut self, s: &str) {
        self.sink.write(b"\"");
        let bytes = s.as_bytes();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let escape: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0..=0x1f => b"",
                _ => continue,
            };
            self.sink.write(&bytes[start..i]);
            start = i + 1;
            if escape.is_empty() {
                self.sink.write(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    hex_digit(b >> 4),
                    hex_digit(b & 0xf),
                ]);
            } else {
                self.sink.write(escape);
            }
        }
        self.sink.write(&bytes[start..]);
        self.sink.write(b"\"");
    }
}

const fn hex_digit(v: u8) -> u8 {
    if v < 10 { b'0' + v } else { b'a' + v - 10 }
}

/// An open array or object: whether a comma is due.
pub struct Compound<'a, S: Sink> {
    w: &'a mut Writer<S>,
    first: bool,
    /// What closes it: `]`, `}` or `}}` (a variant wrapper too).
    close: &'static [u8],
}

impl<S: Sink> Compound<'_, S> {
    fn comma(&mut self) {
        if !self.first {
            self.w.sink.write(b",");
        }
        self.first = false;
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), WriteError> {
        self.comma();
        value.serialize(&mut *self.w)
    }

    fn field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), WriteError> {
        self.comma();
        self.w.string(key);
        self.w.sink.write(b":");
        value.serialize(&mut *self.w)
    }

    fn finish(self) -> Result<(), WriteError> {
        self.w.sink.write(self.close);
        Ok(())
    }
}

impl<'a, S: Sink> ser::Serializer for &'a mut Writer<S> {
    type Ok = ();
    type Error = WriteError;
    type SerializeSeq = Compound<'a, S>;
    type SerializeTuple = Compound<'a, S>;
    type SerializeTupleStruct = Compound<'a, S>;
    type SerializeTupleVariant = Compound<'a, S>;
    type SerializeMap = Impossible<(), WriteError>;
    type SerializeStruct = Compound<'a, S>;
    type SerializeStructVariant = Compound<'a, S>;

    fn serialize_bool(self, v: bool) -> Result<(), WriteError> {
        self.sink.write(if v { b"true" } else { b"false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), WriteError> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i16(self, v: i16) -> Result<(), WriteError> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i32(self, v: i32) -> Result<(), WriteError> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i64(self, v: i64) -> Result<(), WriteError> {
        self.i64(v);
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), WriteError> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u16(self, v: u16) -> Result<(), WriteError> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u32(self, v: u32) -> Result<(), WriteError> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u64(self, v: u64) -> Result<(), WriteError> {
        self.u64(v);
        Ok(())
    }
    fn serialize_f32(self, _v: f32) -> Result<(), WriteError> {
        Err(WriteError::Float)
    }
    fn serialize_f64(self, _v: f64) -> Result<(), WriteError> {
        Err(WriteError::Float)
    }
    fn serialize_char(self, v: char) -> Result<(), WriteError> {
        let mut buf = [0u8; 4];
        self.string(v.encode_utf8(&mut buf));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), WriteError> {
        self.string(v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), WriteError> {
        use ser::SerializeSeq;
        let mut seq = self.serialize_seq(Some(v.len()))?;
        for b in v {
            seq.serialize_element(b)?;
        }
        seq.end()
    }
    fn serialize_none(self) -> Result<(), WriteError> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), WriteError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), WriteError> {
        self.sink.write(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), WriteError> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), WriteError> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), WriteError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), WriteError> {
        self.sink.write(b"{");
        self.string(variant);
        self.sink.write(b":");
        value.serialize(&mut *self)?;
        self.sink.write(b"}");
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'a, S>, WriteError> {
        self.sink.write(b"[");
        Ok(Compound {
            w: self,
            first: true,
            close: b"]",
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'a, S>, WriteError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'a, S>, WriteError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a, S>, WriteError> {
        self.sink.write(b"{");
        self.string(variant);
        self.sink.write(b":[");
        Ok(Compound {
            w: self,
            first: true,
            close: b"]}",
        })
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, WriteError> {
        Err(WriteError::Map)
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Compound<'a, S>, WriteError> {
        self.sink.write(b"{");
        Ok(Compound {
            w: self,
            first: true,
            close: b"}",
        })
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a, S>, WriteError> {
        self.sink.write(b"{");
        self.string(variant);
        self.sink.write(b":{");
        Ok(Compound {
            w: self,
            first: true,
            close: b"}}",
        })
    }
    fn collect_str<T: fmt::Display + ?Sized>(self, _value: &T) -> Result<(), WriteError> {
        // Formatting would need `core::fmt`; no line uses it.
        Err(WriteError::Custom)
    }
}

/// The array-like compounds (sequences, tuples, tuple structs and tuple
/// variants) all write their elements as a JSON array.
macro_rules! array_compound {
    ($($trait:ident::$method:ident),* $(,)?) => {$(
        impl<S: Sink> ser::$trait for Compound<'_, S> {
            type Ok = ();
            type Error = WriteError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), WriteError> {
                self.element(value)
            }
            fn end(self) -> Result<(), WriteError> {
                self.finish()
            }
        }
    )*};
}

array_compound!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
);

impl<S: Sink> ser::SerializeStruct for Compound<'_, S> {
    type Ok = ();
    type Error = WriteError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), WriteError> {
        self.field(key, value)
    }
    fn end(self) -> Result<(), WriteError> {
        self.finish()
    }
}

impl<S: Sink> ser::SerializeStructVariant for Compound<'_, S> {
    type Ok = ();
    type Error = WriteError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), WriteError> {
        self.field(key, value)
    }
    fn end(self) -> Result<(), WriteError> {
        self.finish()
    }
}

#[cfg(all(test, feature = "host"))]
mod tests {
    use super::*;
    use serde::Serialize;

    fn json<T: Serialize>(v: &T) -> String {
        let mut out = Vec::new();
        to_sink(&mut out, v).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[derive(Serialize)]
    enum E {
        Unit,
        New(u8),
        Tuple(u8, i8),
        Struct { a: bool },
    }

    #[test]
    fn writes_what_serde_json_writes() {
        #[derive(Serialize)]
        struct S<'a> {
            n: u64,
            i: i32,
            s: &'a str,
            o: Option<u8>,
            v: [u16; 2],
            e: [E; 4],
            c: char,
            t: (),
        }
        let v = S {
            n: u64::MAX,
            i: i32::MIN,
            s: "a\"b\\c\n\r\t\u{1}\u{1f}\u{e9}",
            o: None,
            v: [0, 65535],
            e: [E::Unit, E::New(7), E::Tuple(1, -1), E::Struct { a: true }],
            c: '\u{263a}',
            t: (),
        };
        assert_eq!(json(&v), serde_json::to_string(&v).unwrap());
        assert_eq!(json(&0u8), "0");
        assert_eq!(json(&Some(10u32)), "10");
        assert_eq!(json(&-9i64), "-9");
    }

    #[test]
    fn refuses_floats_and_maps() {
        let mut out = Vec::new();
        assert_eq!(to_sink(&mut out, &1.5f64), Err(WriteError::Float));
        let map: std::collections::BTreeMap<u8, u8> = [(1, 2)].into();
        assert_eq!(to_sink(&mut out, &map), Err(WriteError::Map));
    }
}
