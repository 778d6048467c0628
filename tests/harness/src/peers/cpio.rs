// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! A writer for `newc` cpio archives, the format Linux unpacks as an
//! initramfs (`Documentation/driver-api/early-userspace/buffer-format.rst`).
//!
//! Each entry is a 110-byte ASCII header (`070701`, then thirteen 8-digit
//! hex fields: inode, mode, uid, gid, nlink, mtime, file size, dev major,
//! dev minor, rdev major, rdev minor, name size including the NUL, check
//! 0), the NUL-terminated name padded to a multiple of 4, and the data
//! padded to a multiple of 4. The archive ends with the entry
//! `TRAILER!!!`. The kernel accepts the archive uncompressed.
//!
//! ```
//! use fw_cfg_tests::peers::cpio::Archive;
//!
//! let mut a = Archive::new();
//! a.dir("bin", 0o755);
//! a.file("init", 0o755, b"#!/bin/sh\n".to_vec());
//! let bytes = a.finish();
//! assert!(bytes.starts_with(b"070701"));
//! assert_eq!(bytes.len() % 4, 0);
//! ```

/// File type bits of `mode`.
pub const S_IFDIR: u32 = 0o040000;
/// Regular file.
pub const S_IFREG: u32 = 0o100000;
/// Symbolic link.
pub const S_IFLNK: u32 = 0o120000;
/// Character device.
pub const S_IFCHR: u32 = 0o020000;

/// The magic of `newc` headers without checksums.
pub const MAGIC: &[u8; 6] = b"070701";
/// Name of the last entry.
pub const TRAILER: &str = "TRAILER!!!";
/// Size of a header.
pub const HEADER_SIZE: usize = 110;

/// An archive being written in memory.
#[derive(Debug, Clone, Default)]
pub struct Archive {
    out: Vec<u8>,
    next_inode: u32,
}

/// One entry read back by [`parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path inside the archive.
    pub name: String,
    /// Type and permission bits.
    pub mode: u32,
    /// Device numbers of a device node (major, minor).
    pub rdev: (u32, u32),
    /// File contents, or the target of a symbolic link.
    pub data: Vec<u8>,
}

impl Archive {
    /// An empty archive.
    pub fn new() -> Self {
        Archive {
            out: Vec::new(),
            next_inode: 1,
        }
    }

    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
        let name = name.trim_start_matches('/');
        let inode = self.next_inode;
        self.next_inode += 1;
        let nlink = if mode & 0o170000 == S_IFDIR { 2 } else { 1 };
        let fields = [
            inode,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime
            data.len() as u32,
            0, // dev major
            0, // dev minor
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0, // check
        ];
        self.out.extend_from_slice(MAGIC);
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while self.out.len() % 4 != 0 {
            self.out.push(0);
        }
    }

    /// Adds a directory (`perm` like 0o755).
    pub fn dir(&mut self, path: &str, perm: u32) -> &mut Self {
        self.entry(path, S_IFDIR | (perm & 0o7777), (0, 0), &[]);
        self
    }

    /// Adds a regular file.
    pub fn file(&mut self, path: &str, perm: u32, data: Vec<u8>) -> &mut Self {
        self.entry(path, S_IFREG | (perm & 0o7777), (0, 0), &data);
        self
    }

    /// Adds a symbolic link to `target`.
    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.entry(path, S_IFLNK | 0o777, (0, 0), target.as_bytes());
        self
    }

    /// Adds a character device node.
    pub fn char_device(&mut self, path: &str, perm: u32, major: u32, minor: u32) -> &mut Self {
        self.entry(path, S_IFCHR | (perm & 0o7777), (major, minor), &[]);
        self
    }

    /// Appends the trailer and returns the archive bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry(TRAILER, 0, (0, 0), &[]);
        self.out
    }
}

/// Reads a `newc` archive back (up to the trailer); `None` if malformed.
/// Used by the tests of this module and to check generated initramfs
/// images.
pub fn parse(mut bytes: &[u8]) -> Option<Vec<Entry>> {
    let mut entries = Vec::new();
    let total = bytes.len();
    loop {
        if bytes.len() < HEADER_SIZE || &bytes[..6] != MAGIC {
            return None;
        }
        let field = |i: usize| -> Option<u32> {
            let s = std::str::from_utf8(&bytes[6 + 8 * i..6 + 8 * (i + 1)]).ok()?;
            u32::from_str_radix(s, 16).ok()
        };
        let mode = field(1)?;
        let size = field(6)? as usize;
        let rdev = (field(9)?, field(10)?);
        let namesize = field(11)? as usize;
        let name_end = HEADER_SIZE + namesize;
        if namesize == 0 || bytes.len() < name_end || bytes[name_end - 1] != 0 {
            return None;
        }
        let name = std::str::from_utf8(&bytes[HEADER_SIZE..name_end - 1])
            .ok()?
            .to_string();
        let offset = total - bytes.len();
        let data_start = align4(offset + name_end) - offset;
        let data_end = data_start + size;
        if bytes.len() < data_end {
            return None;
        }
        if name == TRAILER {
            return Some(entries);
        }
        entries.push(Entry {
            name,
            mode,
            rdev,
            data: bytes[data_start..data_end].to_vec(),
        });
        let next = align4(offset + data_end) - offset;
        bytes = bytes.get(next..)?;
    }
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_odd_sizes() {
        let mut a = Archive::new();
        a.dir("/bin", 0o755)
            .file("bin/busybox", 0o755, vec![7; 5])
            .file("x", 0o644, Vec::new())
            .symlink("bin/sh", "busybox")
            .char_device("dev/console", 0o600, 5, 1)
            .file("init", 0o755, b"abc".to_vec());
        let bytes = a.finish();
        assert_eq!(bytes.len() % 4, 0);
        let e = parse(&bytes).expect("parses");
        let names: Vec<&str> = e.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            ["bin", "bin/busybox", "x", "bin/sh", "dev/console", "init"]
        );
        assert_eq!(e[0].mode, S_IFDIR | 0o755);
        assert_eq!(e[1].data, vec![7; 5]);
        assert_eq!(e[3].mode & 0o170000, S_IFLNK);
        assert_eq!(e[3].data, b"busybox");
        assert_eq!(e[4].rdev, (5, 1));
        assert_eq!(e[5].data, b"abc");
    }

    #[test]
    fn header_layout_is_newc() {
        let mut a = Archive::new();
        a.file("ab", 0o644, b"hello".to_vec());
        let bytes = a.finish();
        let header = std::str::from_utf8(&bytes[..HEADER_SIZE]).unwrap();
        // magic, inode 1, mode 0100644, uid, gid, nlink 1, mtime, size 5
        assert_eq!(
            &header[..6 + 8 * 7],
            "07070100000001000081a40000000000000000000000010000000000000005"
        );
        // name size 3 ("ab" + NUL), check 0
        assert_eq!(&header[6 + 8 * 11..], "0000000300000000");
        // 110 + 3 = 113 -> padded to 116, then 5 data bytes padded to 8.
        assert_eq!(&bytes[HEADER_SIZE..HEADER_SIZE + 3], b"ab\0");
        assert_eq!(&bytes[116..121], b"hello");
        assert_eq!(&bytes[124..130], MAGIC);
    }

    #[test]
    fn malformed_archives_are_rejected() {
        assert_eq!(parse(b""), None);
        assert_eq!(parse(&[b'0'; 120]), None);
        let mut bytes = Archive::new().finish();
        assert_eq!(parse(&bytes), Some(Vec::new()));
        bytes.truncate(HEADER_SIZE + 4);
        assert_eq!(parse(&bytes), None);
    }
}
