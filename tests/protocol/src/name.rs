// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Fixed-capacity values without allocation: [`Name`] (text) and
//! [`Bytes`] (raw bytes).
//!
//! The firmware has no heap, so every string and byte array of a line
//! lives inline with a capacity fixed by its type. A [`Name`] holds ASCII
//! only: [`Name::from_bytes`] turns every byte outside printable ASCII into
//! `?` and [`Name::new`] every non-ASCII character, and both cut what does
//! not fit. That makes a `Name` valid UTF-8 whatever the firmware was given
//! (a command line is bytes) and keeps truncation from splitting a
//! character. On the host, deserializing text or bytes longer than the
//! capacity is an error, not a silent cut: what a producer wrote fits by
//! construction.

use core::fmt;

use serde::{Serialize, Serializer};

/// ASCII text of at most `N` bytes, stored inline.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Name<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Name<N> {
    /// The empty name.
    pub const fn empty() -> Self {
        Name {
            buf: [0; N],
            len: 0,
        }
    }

    /// `s`, non-ASCII characters replaced by `?`, cut to `N` bytes.
    pub fn new(s: &str) -> Self {
        let mut n = Self::empty();
        for c in s.chars() {
            if !n.push_byte(if c.is_ascii() { c as u8 } else { b'?' }) {
                break;
            }
        }
        n
    }

    /// `bytes`, every byte outside printable ASCII replaced by `?`, cut to
    /// `N` bytes.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let mut n = Self::empty();
        n.push_bytes(bytes);
        n
    }

    /// `parts` joined by `/` (cut to `N` bytes), as the benchmark names
    /// are built.
    pub fn joined(parts: &[&[u8]]) -> Self {
        let mut n = Self::empty();
        for (i, p) in parts.iter().enumerate() {
            if i != 0 {
                n.push_bytes(b"/");
            }
            n.push_bytes(p);
        }
        n
    }

    /// Appends `bytes` (same replacement as [`Name::from_bytes`]); returns
    /// whether all of them fitted.
    pub fn push_bytes(&mut self, bytes: &[u8]) -> bool {
        bytes.iter().all(|&b| self.push_byte(b))
    }

    fn push_byte(&mut self, b: u8) -> bool {
        let Some(slot) = self.buf.get_mut(self.len) else {
            return false;
        };
        *slot = if (0x20..0x7f).contains(&b) { b } else { b'?' };
        self.len += 1;
        true
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Only printable ASCII is ever stored (`push_byte`), and a prefix
        // of ASCII is valid UTF-8.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl<const N: usize> Default for Name<N> {
    fn default() -> Self {
        Self::empty()
    }
}

impl<const N: usize> fmt::Debug for Name<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> fmt::Display for Name<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<const N: usize> PartialEq<str> for Name<N> {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl<const N: usize> PartialEq<&str> for Name<N> {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl<const N: usize> Serialize for Name<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// At most `N` raw bytes, stored inline; serialized as an array of
/// numbers.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bytes<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Bytes<N> {
    /// No bytes.
    pub const fn empty() -> Self {
        Bytes {
            buf: [0; N],
            len: 0,
        }
    }

    /// The first `N` bytes of `bytes`.
    pub fn new(bytes: &[u8]) -> Self {
        let mut b = Self::empty();
        let n = bytes.len().min(N);
        b.buf[..n].copy_from_slice(&bytes[..n]);
        b.len = n;
        b
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl<const N: usize> Default for Bytes<N> {
    fn default() -> Self {
        Self::empty()
    }
}

impl<const N: usize> fmt::Debug for Bytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_slice(), f)
    }
}

impl<const N: usize> Serialize for Bytes<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.as_slice())
    }
}

#[cfg(feature = "host")]
mod de {
    use core::fmt;

    use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};

    use super::{Bytes, Name};

    struct NameVisitor<const N: usize>;

    impl<'de, const N: usize> Visitor<'de> for NameVisitor<N> {
        type Value = Name<N>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a printable ASCII string of at most {N} bytes")
        }

        fn visit_str<E: de::Error>(self, s: &str) -> Result<Name<N>, E> {
            if s.len() > N {
                return Err(E::invalid_length(s.len(), &self));
            }
            if !s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                return Err(E::invalid_value(de::Unexpected::Str(s), &self));
            }
            Ok(Name::new(s))
        }
    }

    impl<'de, const N: usize> Deserialize<'de> for Name<N> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_str(NameVisitor::<N>)
        }
    }

    struct BytesVisitor<const N: usize>;

    impl<'de, const N: usize> Visitor<'de> for BytesVisitor<N> {
        type Value = Bytes<N>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "an array of at most {N} bytes")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes<N>, A::Error> {
            let mut b = Bytes::<N>::empty();
            while let Some(v) = seq.next_element::<u8>()? {
                let Some(slot) = b.buf.get_mut(b.len) else {
                    return Err(de::Error::invalid_length(b.len + 1, &self));
                };
                *slot = v;
                b.len += 1;
            }
            Ok(b)
        }
    }

    impl<'de, const N: usize> Deserialize<'de> for Bytes<N> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_seq(BytesVisitor::<N>)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_printable_ascii_and_cut() {
        assert_eq!(Name::<8>::new("pio/dma").as_str(), "pio/dma");
        assert_eq!(Name::<4>::new("abcdef").as_str(), "abcd");
        assert_eq!(Name::<8>::new("a\u{e9}b").as_str(), "a?b");
        assert_eq!(Name::<8>::from_bytes(b"a\n\xffb").as_str(), "a??b");
        assert_eq!(
            Name::<16>::joined(&[b"read", b"opt/x"]).as_str(),
            "read/opt/x"
        );
        let mut n = Name::<3>::empty();
        assert!(n.push_bytes(b"ab"));
        assert!(!n.push_bytes(b"cd"));
        assert_eq!(n, "abc");
    }

    #[test]
    fn bytes_cut_at_capacity() {
        assert_eq!(Bytes::<2>::new(&[1, 2, 3]).as_slice(), &[1, 2]);
        assert_eq!(Bytes::<4>::new(&[1]).as_slice(), &[1]);
    }
}
