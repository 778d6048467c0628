// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! QEMU's `-fw_cfg` command-line syntax (feature `cmdline`).
//!
//! ```text
//! -fw_cfg [name=]opt/com.example/blob,file=./blob.bin
//! -fw_cfg [name=]opt/com.example/text,string=hello
//! ```
//!
//! The value of `-fw_cfg` is a QEMU option string: comma-separated
//! `key=value` pairs, where `,,` inside a value stands for a literal comma,
//! the first element may omit `name=`, a later `key=` overrides an earlier
//! one, and `id=` is accepted and ignored. The validation is QEMU's:
//!
//! - `name` is required and non-empty, and at most 55 bytes;
//! - exactly one of `file=` and `string=` is non-empty (an empty value
//!   counts as absent);
//! - `string=` contents are stored without a terminating NUL;
//! - `gen_id=` is recognised but not supported (it names a QEMU object);
//! - names should start with `opt/` (QEMU warns otherwise, and so does
//!   [`FwCfgOption::warnings`]; the option is still accepted).
//!
//! Where this parser is stricter than QEMU: an unknown key is an error in
//! both, but a bare word after the first element (`string` without `=`),
//! which QEMU reads as the boolean `string=on`, is an error here, because
//! for `-fw_cfg` it can only be a typing mistake.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::builder::{FwCfgBuilder, ITEM_MAX_LEN, check_file_name};
use crate::error::{BuildError, FileNameError};

/// Errors of the `-fw_cfg` parser and of adding a parsed option.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CmdlineError {
    /// A parameter after the first has no `=value`.
    #[error("invalid -fw_cfg option: parameter '{key}' has no value (expected {key}=...)")]
    MissingValue {
        /// The parameter as given.
        key: String,
    },
    /// A parameter `-fw_cfg` does not know.
    #[error("invalid -fw_cfg option: invalid parameter '{key}'")]
    UnknownParameter {
        /// The parameter as given.
        key: String,
    },
    /// The name is missing or empty, or not exactly one of `file=`,
    /// `string=` and `gen_id=` is non-empty.
    #[error(
        "invalid -fw_cfg option: name, plus exactly one of file, string and gen_id, are needed"
    )]
    MissingNameOrContents,
    /// The name cannot go into the directory.
    #[error("invalid -fw_cfg option: {0}")]
    InvalidName(#[source] FileNameError),
    /// `gen_id=` names a QEMU object, which this crate does not have.
    #[error("invalid -fw_cfg option: gen_id= is not supported: it names a QEMU object")]
    GenIdUnsupported,
    /// A file named by `file=` could not be read.
    #[error("can't load the -fw_cfg file")]
    File(#[source] InputFileError),
    /// The builder refused the item (a duplicate name, no free slot, ...).
    #[error("cannot add the -fw_cfg item")]
    Build(#[source] BuildError),
}

/// Why an input file (an item's `file=`, or a VMM's kernel or initrd) is
/// refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputFileError {
    /// The file cannot be opened, examined or read.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The path names a FIFO, a device, a socket or a directory: its size
    /// is not known before reading, and reading it may block or never end.
    #[error("{} is not a regular file ({kind})", path.display())]
    NotRegular {
        /// The file.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// The file is larger than its destination takes.
    #[error("{} has {len} bytes, more than the {max} its destination takes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        len: u64,
        /// The largest size accepted.
        max: u64,
    },
    /// The file changed size while it was read.
    #[error("{} changed size while it was read", path.display())]
    Changed {
        /// The file.
        path: PathBuf,
    },
}

/// Opens `path` for reading if it is a regular file; returns it with its
/// size.
///
/// The file is opened with `O_NONBLOCK`, so that opening a FIFO returns at
/// once instead of waiting for a writer, and then examined with `fstat` on
/// the open descriptor: what is checked is what will be read, with no
/// window for the path to be swapped between a `stat` and the `open`.
/// Once the file is known to be regular, `O_NONBLOCK` is cleared again:
/// local file systems ignore it for regular files, but network ones (9p
/// among them) honour it and may answer a read with `EAGAIN`.
pub fn open_regular_file(path: &Path) -> std::result::Result<(File, u64), InputFileError> {
    let io = |source| InputFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    let t = meta.file_type();
    if !t.is_file() {
        let kind = if t.is_dir() {
            "a directory"
        } else if t.is_fifo() {
            "a FIFO"
        } else if t.is_char_device() {
            "a character device"
        } else if t.is_block_device() {
            "a block device"
        } else if t.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(InputFileError::NotRegular {
            path: path.to_path_buf(),
            kind,
        });
    }
    clear_nonblocking(&file).map_err(io)?;
    Ok((file, meta.len()))
}

/// Clears `O_NONBLOCK` on `file`'s descriptor.
fn clear_nonblocking(file: &File) -> std::io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: `fd` is the open descriptor `file` owns for the whole call;
    // F_GETFL only reads its status flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: as above; F_SETFL changes only that descriptor's status flags.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Reads the regular file `path` whole if it has at most `max` bytes. The
/// size is checked before anything is read, and the read stops one byte
/// past the size found (a file growing meanwhile is an error, never an
/// unbounded allocation).
pub fn read_regular_file(path: &Path, max: u64) -> std::result::Result<Vec<u8>, InputFileError> {
    let (file, len) = open_regular_file(path)?;
    if len > max {
        return Err(InputFileError::TooLarge {
            path: path.to_path_buf(),
            len,
            max,
        });
    }
    let mut data = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(len.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|source| InputFileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if data.len() as u64 != len {
        return Err(InputFileError::Changed {
            path: path.to_path_buf(),
        });
    }
    Ok(data)
}

/// Result of this module's functions.
pub type Result<T> = std::result::Result<T, CmdlineError>;

/// Where the contents of a `-fw_cfg` item come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FwCfgContent {
    /// `file=PATH`: the file's bytes, read when the item is added.
    File(PathBuf),
    /// `string=TEXT`: the text, without a NUL.
    String(String),
}

/// One parsed `-fw_cfg` option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FwCfgOption {
    /// The file name in the fw_cfg directory.
    pub name: String,
    /// Its contents.
    pub content: FwCfgContent,
}

impl FwCfgOption {
    /// QEMU's warning-level findings: currently only a name outside the
    /// `opt/` namespace reserved for users.
    pub fn warnings(&self) -> Vec<String> {
        if self.name.starts_with("opt/") {
            Vec::new()
        } else {
            vec![format!(
                "externally provided fw_cfg item names should be prefixed with \"opt/\": {}",
                self.name
            )]
        }
    }
}

/// Splits a QEMU option string into `(key, value)` pairs.
fn split_options(s: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = s;
    let mut first = true;
    while !rest.is_empty() {
        let eq = rest.find('=');
        let comma = rest.find(',');
        let (key, value_text) = match eq {
            Some(e) if comma.is_none_or(|c| e < c) => (&rest[..e], &rest[e + 1..]),
            // The implied first option: the whole element is the name.
            _ if first => ("name", rest),
            _ => {
                let key = &rest[..comma.unwrap_or(rest.len())];
                return Err(CmdlineError::MissingValue {
                    key: key.to_string(),
                });
            }
        };
        let (value, after) = parse_value(value_text);
        out.push((key.to_string(), value));
        rest = after;
        first = false;
    }
    Ok(out)
}

/// Reads a value up to a single `,` (`,,` is a literal comma); returns the
/// value and the text after the separator.
fn parse_value(s: &str) -> (String, &str) {
    let mut value = String::new();
    let mut iter = s.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        if c == ',' {
            if iter.next_if(|&(_, c)| c == ',').is_some() {
                value.push(',');
                continue;
            }
            return (value, &s[i + 1..]);
        }
        value.push(c);
    }
    (value, "")
}

/// Parses the value of a QEMU `-fw_cfg` option.
///
/// ```
/// use fw_cfg_device::cmdline::{parse_fw_cfg_option, FwCfgContent};
///
/// let o = parse_fw_cfg_option("name=opt/greeting,string=hello,, world").unwrap();
/// assert_eq!(o.name, "opt/greeting");
/// assert_eq!(o.content, FwCfgContent::String("hello, world".into()));
/// let o = parse_fw_cfg_option("opt/blob,file=/tmp/blob").unwrap();
/// assert_eq!(o.content, FwCfgContent::File("/tmp/blob".into()));
/// assert!(parse_fw_cfg_option("name=opt/x").is_err());
/// ```
pub fn parse_fw_cfg_option(s: &str) -> Result<FwCfgOption> {
    let mut name = None;
    let mut file = None;
    let mut string = None;
    let mut gen_id = None;
    for (key, value) in split_options(s)? {
        match key.as_str() {
            "name" => name = Some(value),
            "file" => file = Some(value),
            "string" => string = Some(value),
            "gen_id" => gen_id = Some(value),
            "id" => {}
            _ => return Err(CmdlineError::UnknownParameter { key }),
        }
    }
    let nonempty = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.is_empty());
    let sources = [&file, &string, &gen_id]
        .into_iter()
        .filter(|v| nonempty(v))
        .count();
    let name = match name {
        Some(n) if !n.is_empty() && sources == 1 => n,
        _ => return Err(CmdlineError::MissingNameOrContents),
    };
    check_file_name(&name).map_err(CmdlineError::InvalidName)?;
    let content = if let Some(s) = string.filter(|s| !s.is_empty()) {
        FwCfgContent::String(s)
    } else if let Some(f) = file.filter(|f| !f.is_empty()) {
        FwCfgContent::File(PathBuf::from(f))
    } else {
        return Err(CmdlineError::GenIdUnsupported);
    };
    Ok(FwCfgOption { name, content })
}

impl FwCfgBuilder {
    /// Adds a file described by a parsed `-fw_cfg` option, reading it from
    /// disk for `file=`. A `string=` value is stored without a NUL, as QEMU
    /// does.
    ///
    /// A `file=` must be a regular file of at most
    /// [`ITEM_MAX_LEN`] bytes; its size is checked before it is read
    /// ([`read_regular_file`]), so a FIFO, `/dev/zero` or a huge sparse
    /// file is refused at once.
    pub fn add_option(&mut self, option: &FwCfgOption) -> Result<&mut Self> {
        let data = match &option.content {
            FwCfgContent::String(s) => s.as_bytes().to_vec(),
            FwCfgContent::File(path) => {
                read_regular_file(path, ITEM_MAX_LEN).map_err(CmdlineError::File)?
            }
        };
        self.add_file(&option.name, data)
            .map_err(CmdlineError::Build)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> FwCfgOption {
        parse_fw_cfg_option(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> String {
        match parse_fw_cfg_option(s) {
            Ok(o) => panic!("{s} parsed as {o:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn accepted_forms() {
        assert_eq!(
            ok("name=opt/a,file=/x/y"),
            FwCfgOption {
                name: "opt/a".into(),
                content: FwCfgContent::File("/x/y".into())
            }
        );
        assert_eq!(ok("opt/a,string=v").name, "opt/a");
        assert_eq!(ok("string=v,name=opt/a").name, "opt/a");
        assert_eq!(
            ok("name=opt/a,string=a,,b,,").content,
            FwCfgContent::String("a,b,".into())
        );
        assert_eq!(ok("opt/a,,b,string=x").name, "opt/a,b");
        // Later keys override earlier ones; empty values count as absent.
        assert_eq!(
            ok("name=opt/a,string=1,string=2").content,
            FwCfgContent::String("2".into())
        );
        assert_eq!(
            ok("name=opt/a,file=,string=s").content,
            FwCfgContent::String("s".into())
        );
        assert_eq!(ok("id=x1,name=opt/a,string=s").name, "opt/a");
        assert_eq!(
            ok("name=opt/a,string==").content,
            FwCfgContent::String("=".into())
        );
        assert_eq!(
            ok(&format!("name=opt/{},string=s", "x".repeat(51)))
                .name
                .len(),
            55
        );
    }

    #[test]
    fn rejected_forms() {
        let needed = "exactly one of file, string and gen_id";
        assert!(err("").contains(needed));
        assert!(err("name=opt/a").contains(needed));
        assert!(err("name=,string=x").contains(needed));
        assert!(err("string=x").contains(needed));
        assert!(err("name=opt/a,file=f,string=s").contains(needed));
        assert!(err("name=opt/a,string=").contains(needed));
        assert!(err("name=opt/a,string=s,bogus=1").contains("invalid parameter 'bogus'"));
        assert!(err("name=opt/a,string").contains("has no value"));
        assert!(err(&format!("name=opt/{},string=s", "x".repeat(52))).contains("name too long"));
        assert!(err("name=opt/a,gen_id=g").contains("gen_id"));
        assert!(err("name=opt/a,gen_id=g,string=s").contains(needed));
    }

    #[test]
    fn opt_prefix_is_a_warning() {
        assert!(ok("name=opt/a,string=s").warnings().is_empty());
        let w = ok("name=etc/a,string=s").warnings();
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("opt/"));
    }

    #[test]
    fn add_option_reads_files_and_keeps_sources() {
        use std::error::Error as _;
        let mut b = FwCfgBuilder::new();
        b.add_option(&ok("name=opt/s,string=text")).unwrap();
        let missing = ok("name=opt/f,file=/nonexistent/fw-cfg-device/blob");
        let e = b.add_option(&missing).unwrap_err();
        let CmdlineError::File(InputFileError::Io { path, source }) = &e else {
            panic!("{e:?}");
        };
        assert_eq!(path, &PathBuf::from("/nonexistent/fw-cfg-device/blob"));
        assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        assert!(e.source().is_some());
        let e = b.add_option(&ok("name=opt/s,string=again")).unwrap_err();
        assert!(matches!(
            e,
            CmdlineError::Build(BuildError::DuplicateName { ref name }) if name == "opt/s"
        ));
        let m =
            vm_memory::GuestMemoryMmap::<()>::from_ranges(&[(vm_memory::GuestAddress(0), 0x1000)])
                .unwrap();
        let dev = b.build(&m);
        let key = dev.file_key("opt/s").unwrap();
        assert_eq!(dev.item_bytes(key).unwrap(), b"text");
    }

    #[test]
    fn invalid_names_carry_the_reason() {
        assert!(matches!(
            parse_fw_cfg_option(&format!("name=opt/{},string=s", "x".repeat(52))),
            Err(CmdlineError::InvalidName(FileNameError::TooLong {
                len: 56
            }))
        ));
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("fw-cfg-cmdline-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn non_regular_files_are_refused_without_blocking() {
        let d = temp_dir("fifo");
        let fifo = d.join("fifo");
        let _ = std::fs::remove_file(&fifo);
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: `c` is a NUL-terminated path that lives across the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let mut b = FwCfgBuilder::new();
        let opt = ok(&format!("name=opt/f,file={}", fifo.display()));
        let e = b.add_option(&opt).unwrap_err();
        assert!(
            matches!(
                e,
                CmdlineError::File(InputFileError::NotRegular { kind: "a FIFO", .. })
            ),
            "{e:?}"
        );
        for (path, kind) in [("/dev/zero", "a character device"), ("/", "a directory")] {
            let e = read_regular_file(Path::new(path), u64::MAX).unwrap_err();
            assert!(
                matches!(e, InputFileError::NotRegular { kind: k, .. } if k == kind),
                "{path}: {e:?}"
            );
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn regular_files_are_read_in_blocking_mode() {
        let d = temp_dir("blocking");
        let f = d.join("f");
        std::fs::write(&f, b"abc").unwrap();
        let (file, len) = open_regular_file(&f).unwrap();
        assert_eq!(len, 3);
        // SAFETY: `file` owns the descriptor for the whole call.
        let flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
        assert!(flags >= 0);
        assert_eq!(flags & libc::O_NONBLOCK, 0, "O_NONBLOCK left set");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn sizes_are_checked_before_reading() {
        let d = temp_dir("sparse");
        let big = d.join("big");
        // 8 GiB, sparse: refused from its size alone, nothing read.
        let f = File::create(&big).unwrap();
        f.set_len(8 << 30).unwrap();
        let mut b = FwCfgBuilder::new();
        let e = b
            .add_option(&ok(&format!("name=opt/big,file={}", big.display())))
            .unwrap_err();
        assert!(
            matches!(
                e,
                CmdlineError::File(InputFileError::TooLarge { len, max, .. })
                    if len == 8 << 30 && max == ITEM_MAX_LEN
            ),
            "{e:?}"
        );
        f.set_len(5).unwrap();
        assert_eq!(read_regular_file(&big, 5).unwrap(), [0; 5]);
        assert!(matches!(
            read_regular_file(&big, 4),
            Err(InputFileError::TooLarge { len: 5, max: 4, .. })
        ));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
