// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The Linux guest probe behind the `fw-cfg-probe` binary.
//!
//! Run as root inside a Linux guest, it reads both channels for real:
//! CPUID with the instruction, fw_cfg by port I/O after `ioperm(0x510, 12)`,
//! and, when `/sys/firmware/qemu_fw_cfg` exists (the `qemu_fw_cfg` module),
//! the same files from `by_key/<select>/{name,size,raw}` as a cross-check.
//! It then runs all three policy modes and prints a table, or JSON with
//! `--json`: one `fw-cfg-protocol` `ProbeReport` document, serialized with
//! `serde_json` (see [`to_protocol`]), which the host parses back with the
//! same type.
//!
//! ```text
//! fw-cfg-probe [--json] [--five-level] [--max-file-bytes N] [--max-total-bytes N] [--sysfs-root DIR] [--memmap-root DIR]
//! ```
//!
//! The host chooses how many files there are (up to 0x3fe0) and how large
//! each one is, and every byte read by port I/O is a VM exit. So the probe
//! reads at most `--max-file-bytes` of each file and at most
//! `--max-total-bytes` of file contents in all ([`probe_files`]); once the
//! total is spent, the remaining files are still listed (name, size,
//! selector) but marked as not read. Hitting a limit is not an error.
//!
//! Exit codes ([`EXIT_OK`] ...):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | decisions made; no conflict, port I/O and sysfs agree |
//! | 1 | a conflict was listed, or port I/O and sysfs disagree |
//! | 2 | usage error, or no I/O privilege (not root: `ioperm` failed) |
//! | 3 | an fw_cfg device answered but its directory or a file could not be read |
//!
//! A machine without fw_cfg is not an error: the file channel is then
//! "absent" and the exit code follows the decisions.
//!
//! The probe uses the ports without the kernel driver's lock. Do not read
//! `/sys/firmware/qemu_fw_cfg` concurrently while it runs.

#![cfg(all(target_os = "linux", target_arch = "x86_64"))]
#![deny(missing_docs)]

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use fw_cfg_guest::abi::{PIO_SELECTOR_PORT, PIO_WINDOW_SIZE};
use fw_cfg_guest::cpuid::{CpuidReport, HardwareCpuid, read_cpuid_channel};
use fw_cfg_guest::memmap::{e820_type_from_linux_name, memory_top};
use fw_cfg_guest::peers::SeabiosCpu;
use fw_cfg_guest::policy::{ChannelInputs, Decision, FileState, decide_all, read_phys_bits_file};
use fw_cfg_guest::reader::{FwCfgReader, ReadError};
use fw_cfg_guest::transport::PortIo;
use fw_cfg_protocol::modes::ModeAnswers;

mod render;

pub use render::{render_json, render_table, to_protocol};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_example {}

/// Exit code: no conflict, everything agrees.
pub const EXIT_OK: i32 = 0;
/// Exit code: a conflict was found, or port I/O and sysfs disagree.
pub const EXIT_CONFLICT: i32 = 1;
/// Exit code: usage or permission error.
pub const EXIT_USAGE: i32 = 2;
/// Exit code: fw_cfg present but unreadable.
pub const EXIT_FW_CFG_ERROR: i32 = 3;

/// Default directory of Linux's firmware memory map (one directory per
/// range with `start`, `end` (inclusive) and `type`).
pub const MEMMAP_ROOT: &str = "/sys/firmware/memmap";
/// Default sysfs directory of Linux's `qemu_fw_cfg` driver.
pub const SYSFS_ROOT: &str = "/sys/firmware/qemu_fw_cfg";

/// Default [`Options::max_file_bytes`]: 1 MiB.
pub const DEFAULT_MAX_FILE_BYTES: usize = 1 << 20;
/// Default [`Options::max_total_bytes`]: 16 MiB.
pub const DEFAULT_MAX_TOTAL_BYTES: usize = 16 << 20;

const USAGE: &str = "usage: fw-cfg-probe [--json] [--five-level] [--max-file-bytes N] [--max-total-bytes N] [--sysfs-root DIR] [--memmap-root DIR]
  Reads the CPUID and fw_cfg phys-bits channels (run as root) and prints the
  decision of every policy mode.
  --json              machine-readable output
  --five-level        the heuristic assumes 5-level paging (default 4-level)
  --max-file-bytes N  read at most N bytes of each fw_cfg file (default 1048576; also caps the sysfs cross-check)
  --max-total-bytes N read at most N bytes of fw_cfg file contents in all (default 16777216); once
                      spent, the remaining files are listed (name, size) but their contents not read
  --sysfs-root DIR    qemu_fw_cfg sysfs directory (default /sys/firmware/qemu_fw_cfg)
  --memmap-root DIR   firmware memory map directory (default /sys/firmware/memmap)
exit codes: 0 ok, 1 conflict or sysfs mismatch, 2 usage/permission, 3 fw_cfg unreadable";

/// Command-line options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Print JSON.
    pub json: bool,
    /// The heuristic assumes 5-level paging.
    pub five_level: bool,
    /// Per-file byte limit.
    pub max_file_bytes: usize,
    /// Byte limit over all files' contents (see [`probe_files`]).
    pub max_total_bytes: usize,
    /// Sysfs directory.
    pub sysfs_root: PathBuf,
    /// The firmware memory map directory (`/sys/firmware/memmap`).
    pub memmap_root: PathBuf,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            json: false,
            five_level: false,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_total_bytes: DEFAULT_MAX_TOTAL_BYTES,
            sysfs_root: PathBuf::from(SYSFS_ROOT),
            memmap_root: PathBuf::from(MEMMAP_ROOT),
        }
    }
}

/// Why the arguments are not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// `--help` was asked for.
    #[error("help requested")]
    Help,
    /// An unknown argument.
    #[error("unknown argument {0:?}")]
    Unknown(String),
    /// A flag without its value, or a bad value.
    #[error("bad or missing value for {0}")]
    BadValue(&'static str),
}

/// Parses the arguments (without the program name).
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Options, UsageError> {
    let mut o = Options::default();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => o.json = true,
            "--five-level" => o.five_level = true,
            "--max-file-bytes" => {
                o.max_file_bytes = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or(UsageError::BadValue("--max-file-bytes"))?
            }
            "--max-total-bytes" => {
                o.max_total_bytes = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or(UsageError::BadValue("--max-total-bytes"))?
            }
            "--sysfs-root" => {
                o.sysfs_root = it
                    .next()
                    .map(PathBuf::from)
                    .ok_or(UsageError::BadValue("--sysfs-root"))?
            }
            "--memmap-root" => {
                o.memmap_root = it
                    .next()
                    .map(PathBuf::from)
                    .ok_or(UsageError::BadValue("--memmap-root"))?
            }
            "-h" | "--help" => return Err(UsageError::Help),
            _ => return Err(UsageError::Unknown(a)),
        }
    }
    Ok(o)
}

/// What sysfs says about one file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SysfsFile {
    /// `name`, without the newline.
    pub name: Option<String>,
    /// `size`.
    pub size: Option<u64>,
    /// `raw`, when readable.
    pub raw: Option<Vec<u8>>,
}

/// One file of the directory, as port I/O and sysfs saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbedFile {
    /// Name (lossy UTF-8).
    pub name: String,
    /// Size from the directory.
    pub size: u32,
    /// Selector.
    pub select: u16,
    /// Bytes read by port I/O (at most `max_file_bytes`, and at most what
    /// was left of `max_total_bytes`).
    pub bytes: Result<Vec<u8>, ReadError>,
    /// Whether `bytes` stops before `size`.
    pub truncated: bool,
    /// Whether the total budget (not the per-file limit) cut this file
    /// short; when it was already spent, the file was not read at all and
    /// `bytes` is empty.
    pub over_budget: bool,
    /// The sysfs view, when the sysfs tree exists.
    pub sysfs: Option<SysfsFile>,
}

impl ProbedFile {
    /// Whether sysfs agrees (name, size and raw bytes); `None` when there
    /// is nothing to compare.
    pub fn sysfs_equal(&self) -> Option<bool> {
        let s = self.sysfs.as_ref()?;
        let bytes = self.bytes.as_ref().ok()?;
        let mut equal = s.name.as_deref().is_none_or(|n| n == self.name)
            && s.size.is_none_or(|n| n == u64::from(self.size));
        if let Some(raw) = &s.raw {
            equal &= if self.truncated {
                raw.starts_with(bytes)
            } else {
                raw == bytes
            };
        } else if s.name.is_none() && s.size.is_none() {
            return None;
        }
        Some(equal)
    }
}

/// The fw_cfg side of a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FwCfgProbe {
    /// `ioperm` failed (errno text).
    NoPermission(String),
    /// No device: the signature did not match.
    Absent([u8; 4]),
    /// A device answered.
    Present {
        /// The ID item.
        id: u32,
        /// The directory walk: the files, or the error that stopped it.
        files: Result<Vec<ProbedFile>, ReadError>,
    },
}

/// Everything the probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The CPUID channel.
    pub cpuid: CpuidReport,
    /// The fw_cfg device.
    pub fw_cfg: FwCfgProbe,
    /// Whether the sysfs tree exists.
    pub sysfs_present: bool,
    /// The fw_cfg channel's state.
    pub file: FileState,
    /// The memory map's top ([`read_memmap_top`]; 0 = unknown).
    pub memory_top: u64,
    /// Strict, heuristic, combined.
    pub decisions: [Decision; 3],
    /// Every mode's answer (the firmware rules, each channel alone) and
    /// the strict decision's layout, from the same inputs.
    pub modes: ModeAnswers,
}

/// Every mode's answer over `inputs`, SeaBIOS's CPU facts from `cpuid`
/// (a 64-bit Linux runs in long mode, so PAE and long mode are there).
pub fn mode_answers(inputs: &ChannelInputs, cpuid: &CpuidReport) -> ModeAnswers {
    ModeAnswers::compute(inputs, &SeabiosCpu::from_report(cpuid), &mut [])
}

impl Report {
    /// The exit code for this report (module docs).
    pub fn exit_code(&self) -> i32 {
        match &self.fw_cfg {
            FwCfgProbe::NoPermission(_) => return EXIT_USAGE,
            FwCfgProbe::Present { files: Err(_), .. } => return EXIT_FW_CFG_ERROR,
            FwCfgProbe::Present { files: Ok(f), .. } if f.iter().any(|f| f.bytes.is_err()) => {
                return EXIT_FW_CFG_ERROR;
            }
            _ => {}
        }
        let mismatch = match &self.fw_cfg {
            FwCfgProbe::Present { files: Ok(f), .. } => {
                f.iter().any(|f| f.sysfs_equal() == Some(false))
            }
            _ => false,
        };
        if mismatch || self.decisions.iter().any(|d| !d.conflicts.is_empty()) {
            EXIT_CONFLICT
        } else {
            EXIT_OK
        }
    }
}

/// Reads `by_key/<select>/{name,size,raw}` under `root`, at most
/// `max_bytes` of `raw`.
///
/// The cap matters: Linux's `qemu_fw_cfg` driver re-selects the item and
/// skips to the offset on every read of `raw`, so reading a whole file costs
/// time quadratic in its size (about 8 s for 1 MiB under QEMU TCG).
pub fn read_sysfs_file(root: &Path, select: u16, max_bytes: usize) -> SysfsFile {
    let dir = root.join("by_key").join(select.to_string());
    let text = |name, max| {
        read_bounded(&dir.join(name), max)
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    };
    SysfsFile {
        name: text("name", SYSFS_NAME_MAX).map(|s| s.trim_end_matches('\n').to_string()),
        size: text("size", SYSFS_SIZE_MAX).and_then(|s| s.trim().parse().ok()),
        raw: read_bounded(&dir.join("raw"), max_bytes as u64).ok(),
    }
}

/// Most bytes of a sysfs `name` read: the directory's 56-byte name field
/// and a newline fit.
pub const SYSFS_NAME_MAX: u64 = 64;
/// Most bytes of a sysfs `size` read: a decimal `u32` and a newline fit.
pub const SYSFS_SIZE_MAX: u64 = 16;

/// At most `max` bytes of the regular file `path`. It is opened with
/// `O_NONBLOCK` and examined on the open descriptor, so a FIFO put in its
/// place neither blocks the open nor gets read, and a device such as
/// `/dev/zero` is refused rather than read without end.
pub fn read_bounded(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = fs::File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
    }
    let mut buf = Vec::new();
    f.take(max).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Walks the directory of `reader` and reads every file, in directory
/// order: at most `max_file_bytes` of each, and at most `max_total_bytes`
/// of contents in all.
///
/// A hostile host can list 0x3fe0 files of any size; without the total
/// limit the probe would read (and keep) up to 0x3fe0 × `max_file_bytes`
/// bytes, one VM exit each over port I/O. Once the total is spent, the
/// remaining files are listed with their name, size and selector but not
/// selected or read (`over_budget`, empty `bytes`). The sysfs cross-check
/// reads no more of a file than port I/O did, so it stays within the same
/// budget; names and sizes are still compared for unread files.
pub fn probe_files<T: fw_cfg_guest::transport::FwCfgTransport>(
    reader: &mut FwCfgReader<T>,
    max_file_bytes: usize,
    max_total_bytes: usize,
    sysfs: Option<&Path>,
) -> Result<Vec<ProbedFile>, ReadError> {
    let entries = reader.files()?.collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::with_capacity(entries.len());
    let mut budget = max_total_bytes;
    for e in entries {
        let wanted = (e.size as usize).min(max_file_bytes);
        let cap = wanted.min(budget);
        let over_budget = cap < wanted;
        // Counted whether or not the read succeeds: the exits are spent.
        budget -= cap;
        let bytes = if cap == 0 && over_budget {
            Ok(Vec::new())
        } else {
            let mut buf = vec![0u8; cap];
            reader.read_entry_prefix(&e, &mut buf).map(|n| {
                buf.truncate(n);
                buf
            })
        };
        out.push(ProbedFile {
            name: String::from_utf8_lossy(e.name()).into_owned(),
            size: e.size,
            select: e.select,
            truncated: (e.size as usize) > cap,
            over_budget,
            bytes,
            sysfs: sysfs.map(|root| read_sysfs_file(root, e.select, cap)),
        });
    }
    Ok(out)
}

/// Runs the probe on this machine.
pub fn probe(opts: &Options) -> Report {
    let cpuid = read_cpuid_channel(&HardwareCpuid);
    let sysfs_present = opts.sysfs_root.join("by_key").is_dir();
    let sysfs = sysfs_present.then_some(opts.sysfs_root.as_path());
    // SAFETY: `ioperm` only changes this process's I/O permission bitmap.
    let rc = unsafe {
        libc::ioperm(
            libc::c_ulong::from(PIO_SELECTOR_PORT),
            libc::c_ulong::from(PIO_WINDOW_SIZE),
            1,
        )
    };
    let (fw_cfg, file) = if rc != 0 {
        (
            FwCfgProbe::NoPermission(std::io::Error::last_os_error().to_string()),
            FileState::Absent,
        )
    } else {
        // SAFETY: `ioperm` granted ports 0x510..0x51c; on x86 PCs they are
        // fw_cfg's or unassigned (reads 0xff). The module docs warn against
        // concurrent sysfs use.
        let transport = unsafe { PortIo::new() };
        match FwCfgReader::new(transport) {
            Err(ReadError::NoSignature { found }) => (FwCfgProbe::Absent(found), FileState::Absent),
            Err(e) => (
                FwCfgProbe::Present {
                    id: 0,
                    files: Err(e),
                },
                FileState::Unreadable(e),
            ),
            Ok(mut reader) => {
                let files = probe_files(
                    &mut reader,
                    opts.max_file_bytes,
                    opts.max_total_bytes,
                    sysfs,
                );
                let file = read_phys_bits_file(&mut reader);
                let probe = match reader.read_id() {
                    Ok(id) => FwCfgProbe::Present { id, files },
                    Err(e) => FwCfgProbe::Present {
                        id: 0,
                        files: Err(e),
                    },
                };
                (probe, file)
            }
        }
    };
    let memory_top = read_memmap_top(&opts.memmap_root);
    let mut inputs = ChannelInputs::new(&cpuid, file).with_memory_top(memory_top);
    inputs.five_level_paging = opts.five_level;
    Report {
        cpuid,
        fw_cfg,
        sysfs_present,
        file,
        memory_top,
        decisions: decide_all(&inputs),
        modes: mode_answers(&inputs, &cpuid),
    }
}

/// The top of Linux's firmware memory map under `root`
/// (`/sys/firmware/memmap/N/{start,end,type}`, hexadecimal, `end`
/// inclusive), as [`fw_cfg_guest::memmap::memory_top`] counts it. Ranges
/// that do not parse are ignored; a missing directory gives 0 (unknown).
pub fn read_memmap_top(root: &Path) -> u64 {
    let Ok(dir) = std::fs::read_dir(root) else {
        return 0;
    };
    let read = |d: &Path, f: &str| std::fs::read_to_string(d.join(f)).ok();
    let hex = |t: String| u64::from_str_radix(t.trim().trim_start_matches("0x"), 16).ok();
    let ranges = dir.filter_map(|e| {
        let d = e.ok()?.path();
        let start = hex(read(&d, "start")?)?;
        let end = hex(read(&d, "end")?)?;
        let kind = e820_type_from_linux_name(&read(&d, "type")?)?;
        let size = end.checked_sub(start)?.saturating_add(1);
        Some((start, size, kind))
    });
    memory_top(ranges)
}

/// Runs the binary: parses `args`, probes, prints; returns the exit code.
pub fn main_with_args<I: IntoIterator<Item = String>>(args: I) -> i32 {
    let opts = match parse_args(args) {
        Ok(o) => o,
        Err(UsageError::Help) => {
            println!("{USAGE}");
            return EXIT_OK;
        }
        Err(e) => {
            eprintln!("fw-cfg-probe: {e}\n{USAGE}");
            return EXIT_USAGE;
        }
    };
    let report = probe(&opts);
    if opts.json {
        println!("{}", render_json(&report));
    } else {
        print!("{}", render_table(&report));
    }
    if let FwCfgProbe::NoPermission(e) = &report.fw_cfg {
        eprintln!(
            "fw-cfg-probe: ioperm(0x510, 12) failed: {e} (needs root and a kernel that allows ioperm)"
        );
    }
    report.exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;
    use fw_cfg_guest::abi::{FILE_NAME_SIZE, FileDirEntry, PhysBitsFile, SIGNATURE};
    use fw_cfg_guest::cpuid::{HintState, Vendor};
    use fw_cfg_guest::policy::PolicyMode;
    use fw_cfg_guest::transport::{FwCfgTransport, TransportError};
    use fw_cfg_protocol::probe::{DeviceState, ProbeReport};
    use fw_cfg_protocol::{DecidedBy, ErrorKind, FileStateKind};

    /// An in-memory device: the directory and `(selector, contents)` items;
    /// counts the bytes read.
    struct MemDev<'a> {
        dir: &'a [u8],
        files: &'a [(u16, &'a [u8])],
        cur: u16,
        off: usize,
        bytes_read: usize,
    }

    impl<'a> MemDev<'a> {
        fn new(dir: &'a [u8], files: &'a [(u16, &'a [u8])]) -> Self {
            MemDev {
                dir,
                files,
                cur: 0,
                off: 0,
                bytes_read: 0,
            }
        }
    }

    impl FwCfgTransport for MemDev<'_> {
        fn select(&mut self, key: u16) {
            self.cur = key;
            self.off = 0;
        }
        fn read(&mut self, buf: &mut [u8]) -> Result<(), TransportError> {
            let id = 1u32.to_le_bytes();
            let item: &[u8] = match self.cur {
                0 => &SIGNATURE,
                1 => &id,
                0x19 => self.dir,
                k => self
                    .files
                    .iter()
                    .find(|(s, _)| *s == k)
                    .map_or(&[][..], |(_, b)| *b),
            };
            for b in buf {
                *b = item.get(self.off).copied().unwrap_or(0);
                self.off += 1;
                self.bytes_read += 1;
            }
            Ok(())
        }
    }

    fn entry(size: u32, select: u16, name: &[u8]) -> [u8; 64] {
        let mut n = [0u8; FILE_NAME_SIZE];
        n[..name.len()].copy_from_slice(name);
        FileDirEntry {
            size,
            select,
            reserved: 0,
            name: n,
        }
        .to_be_bytes()
    }

    fn dir<const N: usize>(count: u32, entries: &[[u8; 64]]) -> [u8; N] {
        let mut d = [0u8; N];
        d[..4].copy_from_slice(&count.to_be_bytes());
        for (i, e) in entries.iter().enumerate() {
            d[4 + i * 64..4 + (i + 1) * 64].copy_from_slice(e);
        }
        d
    }

    /// The probe's JSON through the host's one parser.
    fn parsed(r: &Report) -> ProbeReport {
        let json = render_json(r);
        let p = ProbeReport::parse(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
        assert_eq!(p, to_protocol(r));
        p
    }

    fn report(file: FileState, fw_cfg: FwCfgProbe) -> Report {
        let cpuid = CpuidReport {
            hypervisor_present: true,
            kvm_base: Some(0x4000_0000),
            kvm_max_leaf: Some(0x4000_0001),
            kvm_features_edx: Some(2),
            hint: HintState::Set,
            max_ext_leaf: 0x8000_0008,
            has_address_sizes: true,
            address_sizes_eax: 0x3027,
            phys_bits: 39,
            guest_phys_bits: 0,
            vendor: Vendor::Intel,
            ext_vendor: Some(Vendor::Intel),
            gb_pages: true,
            la57: false,
            sev_c_bit: None,
            tdx: false,
        };
        Report {
            cpuid,
            fw_cfg,
            sysfs_present: true,
            file,
            memory_top: 0,
            decisions: decide_all(&ChannelInputs::new(&cpuid, file)),
            modes: mode_answers(&ChannelInputs::new(&cpuid, file), &cpuid),
        }
    }

    fn files(raw: Option<Vec<u8>>) -> FwCfgProbe {
        FwCfgProbe::Present {
            id: 3,
            files: Ok(vec![ProbedFile {
                name: "etc/phys-bits-valid".into(),
                size: 8,
                select: 0x20,
                bytes: Ok(vec![2, 1, 39, 0, 0, 0, 0, 0]),
                truncated: false,
                over_budget: false,
                sysfs: Some(SysfsFile {
                    name: Some("etc/phys-bits-valid".into()),
                    size: Some(8),
                    raw,
                }),
            }]),
        }
    }

    #[test]
    fn args() {
        assert_eq!(parse_args(Vec::<String>::new()), Ok(Options::default()));
        let o = parse_args(["--json", "--max-file-bytes", "10", "--five-level"].map(String::from))
            .unwrap();
        assert!(o.json && o.five_level);
        assert_eq!(o.max_file_bytes, 10);
        assert_eq!(o.max_total_bytes, DEFAULT_MAX_TOTAL_BYTES);
        let o = parse_args(["--max-total-bytes", "0"].map(String::from)).unwrap();
        assert_eq!(o.max_total_bytes, 0);
        assert_eq!(
            parse_args(["--max-total-bytes", "-1"].map(String::from)),
            Err(UsageError::BadValue("--max-total-bytes"))
        );
        assert!(USAGE.contains("--max-total-bytes N"));
        assert_eq!(
            parse_args(["--bogus".to_string()]),
            Err(UsageError::Unknown("--bogus".into()))
        );
        assert_eq!(
            parse_args(["--max-file-bytes".to_string()]),
            Err(UsageError::BadValue("--max-file-bytes"))
        );
        assert_eq!(main_with_args(["--nope".to_string()]), EXIT_USAGE);
        let o = parse_args(["--memmap-root", "/x"].map(String::from)).unwrap();
        assert_eq!(o.memmap_root, PathBuf::from("/x"));
        assert_eq!(
            parse_args(["--memmap-root".to_string()]),
            Err(UsageError::BadValue("--memmap-root"))
        );
    }

    /// `/sys/firmware/memmap` as Linux lays it out: RAM to 96 GiB above
    /// 4 GiB, a reserved range near 1 TiB that does not count, and a range
    /// that does not parse.
    #[test]
    fn memmap_top_from_sysfs() {
        let root = std::env::temp_dir().join(format!("fw-cfg-probe-memmap-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let ranges = [
            ("0", "0x0", "0x9fbff", "System RAM\n"),
            ("1", "0x100000000", "0x18ffffffff", "System RAM\n"),
            ("2", "0xfd00000000", "0xffffffffff", "Reserved\n"),
            ("3", "zz", "0x1ffffffffff", "System RAM\n"),
        ];
        for (n, start, end, kind) in ranges {
            let d = root.join(n);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("start"), format!("{start}\n")).unwrap();
            std::fs::write(d.join("end"), format!("{end}\n")).unwrap();
            std::fs::write(d.join("type"), kind).unwrap();
        }
        assert_eq!(read_memmap_top(&root), 0x19_0000_0000);
        assert_eq!(read_memmap_top(&root.join("missing")), 0);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn exit_codes_and_rendering() {
        let good = PhysBitsFile::new(true, 39, 0);
        let r = report(
            FileState::Present(good),
            files(Some(good.to_bytes().to_vec())),
        );
        assert_eq!(r.exit_code(), EXIT_OK);
        assert_eq!(r.decisions[0].mode, PolicyMode::Strict);
        assert_eq!(r.decisions[0].phys_bits, 39);
        let json = render_json(&r);
        assert!(json.contains(r#""pio_hex":"0201270000000000""#), "{json}");
        assert!(json.contains(r#""sysfs_equal":true"#));
        assert!(json.contains(r#""decided_by":"both-channels""#));
        assert!(json.starts_with('{') && json.ends_with('}'));
        let p = parsed(&r);
        assert_eq!(p.exit_code, EXIT_OK);
        assert_eq!(p.fw_cfg.state, DeviceState::Present);
        assert_eq!(p.phys_bits_file.state, FileStateKind::Present);
        assert_eq!(p.decisions.strict.decided_by, DecidedBy::BothChannels);
        let listed = p.fw_cfg.files.as_ref().unwrap();
        assert_eq!(listed[0].bytes(), Some(good.to_bytes().to_vec()));
        assert_eq!(listed[0].sysfs_equal, Some(true));
        let table = render_table(&r);
        assert!(table.contains("equal"), "{table}");
        assert!(table.contains("both-channels"));

        let r = report(FileState::Present(good), files(Some(vec![0; 8])));
        assert_eq!(r.exit_code(), EXIT_CONFLICT);
        assert!(render_json(&r).contains(r#""sysfs_equal":false"#));

        let bad = PhysBitsFile::new(false, 39, 0);
        let r = report(FileState::Present(bad), files(None));
        assert_eq!(r.exit_code(), EXIT_CONFLICT);
        assert!(render_table(&r).contains("hint-set-but-file-invalid"));

        let r = report(FileState::Absent, FwCfgProbe::NoPermission("EPERM".into()));
        assert_eq!(r.exit_code(), EXIT_USAGE);
        let r = report(
            FileState::Absent,
            FwCfgProbe::Present {
                id: 1,
                files: Err(ReadError::BadDirectoryCount { count: 7 << 20 }),
            },
        );
        assert_eq!(r.exit_code(), EXIT_FW_CFG_ERROR);
        assert!(render_json(&r).contains(r#""files":null"#));
        let p = parsed(&r);
        assert_eq!(p.fw_cfg.error, Some(ErrorKind::BadDirectoryCount));
        assert_eq!(p.exit_code, EXIT_FW_CFG_ERROR);
        let r = report(FileState::Absent, FwCfgProbe::NoPermission("EPERM".into()));
        assert_eq!(parsed(&r).fw_cfg.os_error.as_deref(), Some("EPERM"));
        let r = report(FileState::Absent, FwCfgProbe::Absent(*b"\xff\xff\xff\xff"));
        assert_eq!(parsed(&r).fw_cfg.signature, Some([0xff; 4]));
    }

    #[test]
    fn total_budget_stops_reading_but_lists_every_file() {
        let d: [u8; 4 + 4 * 64] = dir(
            4,
            &[
                entry(10, 0x20, b"a"),
                entry(10, 0x21, b"b"),
                entry(10, 0x22, b"c"),
                entry(0, 0x23, b"empty"),
            ],
        );
        let contents: &[(u16, &[u8])] = &[(0x20, &[1; 10]), (0x21, &[2; 10]), (0x22, &[3; 10])];
        let mut r = FwCfgReader::new(MemDev::new(&d, contents)).unwrap();
        let before = r.transport().bytes_read;
        // 8 bytes per file, 15 in all: a gets 8, b the last 7, c nothing.
        let files = probe_files(&mut r, 8, 15, None).unwrap();
        let directory = d.len();
        assert_eq!(r.transport().bytes_read - before, directory + 15);
        let got: Vec<_> = files
            .iter()
            .map(|f| {
                let bytes = f.bytes.as_ref().unwrap();
                (
                    f.name.as_str(),
                    f.size,
                    bytes.len(),
                    f.truncated,
                    f.over_budget,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("a", 10, 8, true, false),
                ("b", 10, 7, true, true),
                ("c", 10, 0, true, true),
                ("empty", 0, 0, false, false),
            ]
        );
        assert_eq!(files[1].bytes.as_deref().unwrap(), &[2; 7]);

        // A budget of 0 reads no contents at all.
        let mut r = FwCfgReader::new(MemDev::new(&d, contents)).unwrap();
        let before = r.transport().bytes_read;
        let files = probe_files(&mut r, 8, 0, None).unwrap();
        assert_eq!(r.transport().bytes_read - before, directory);
        assert_eq!(files.len(), 4);
        assert!(files[..3].iter().all(|f| f.over_budget && f.truncated));

        // The rendering says which files were not read.
        let cpu = report(FileState::Absent, FwCfgProbe::Absent([0; 4])).cpuid;
        let rep = Report {
            cpuid: cpu,
            fw_cfg: FwCfgProbe::Present {
                id: 1,
                files: Ok(files),
            },
            sysfs_present: false,
            file: FileState::Absent,
            memory_top: 0,
            decisions: decide_all(&ChannelInputs::new(&cpu, FileState::Absent)),
            modes: mode_answers(&ChannelInputs::new(&cpu, FileState::Absent), &cpu),
        };
        let table = render_table(&rep);
        assert!(
            table.contains("a (not read: total budget spent)"),
            "{table}"
        );
        assert!(render_json(&rep).contains(r#""pio_hex":"","truncated":true,"over_budget":true"#));
        let p = parsed(&rep);
        assert!(p.fw_cfg.files.unwrap()[2].bytes() == Some(Vec::new()));
        // Hitting the budget is not an error.
        assert_eq!(rep.exit_code(), EXIT_OK);
    }

    /// A host listing the most files the ABI allows (0x3fe0), 1 MiB each:
    /// about 16 GiB without the total budget.
    struct HostileDev {
        dir: Vec<u8>,
        cur: u16,
        off: usize,
        content_bytes: usize,
    }

    impl HostileDev {
        const FILE_SIZE: u32 = 1 << 20;

        fn new() -> Self {
            let count = fw_cfg_guest::abi::FILE_SLOTS_MAX;
            let mut dir = u32::from(count).to_be_bytes().to_vec();
            for i in 0..count {
                let name = format!("opt/big{i}");
                dir.extend_from_slice(&entry(Self::FILE_SIZE, 0x20 + i, name.as_bytes()));
            }
            HostileDev {
                dir,
                cur: 0,
                off: 0,
                content_bytes: 0,
            }
        }
    }

    impl FwCfgTransport for HostileDev {
        fn select(&mut self, key: u16) {
            self.cur = key;
            self.off = 0;
        }
        fn read(&mut self, buf: &mut [u8]) -> Result<(), TransportError> {
            for b in buf {
                *b = match self.cur {
                    0 => SIGNATURE.get(self.off).copied().unwrap_or(0),
                    1 => 1u32.to_le_bytes().get(self.off).copied().unwrap_or(0),
                    0x19 => self.dir.get(self.off).copied().unwrap_or(0),
                    _ => {
                        self.content_bytes += 1;
                        0xab
                    }
                };
                self.off += 1;
            }
            Ok(())
        }
    }

    #[test]
    fn default_budget_bounds_a_hostile_directory() {
        let o = Options::default();
        assert_eq!(o.max_total_bytes, 16 << 20);
        let mut r = FwCfgReader::new(HostileDev::new()).unwrap();
        let files = probe_files(&mut r, o.max_file_bytes, o.max_total_bytes, None).unwrap();
        // Every file is listed; only the first 16 are read, in full.
        assert_eq!(files.len(), usize::from(fw_cfg_guest::abi::FILE_SLOTS_MAX));
        assert_eq!(r.transport().content_bytes, 16 << 20);
        let read = files.iter().filter(|f| !f.over_budget).count();
        assert_eq!(read, 16);
        assert!(files[..16].iter().all(|f| !f.truncated));
        assert!(files[16..].iter().all(|f| {
            f.over_budget && f.truncated && f.bytes == Ok(Vec::new()) && f.size == 1 << 20
        }));
        assert_eq!(files[0x3fdf].name, "opt/big16351");
    }

    #[test]
    fn the_table_escapes_host_strings() {
        let mut fw_cfg = files(None);
        if let FwCfgProbe::Present { files: Ok(f), .. } = &mut fw_cfg {
            f[0].name = "opt/a\n  0x99  forged\u{1b}[2J\\\u{202e}é".into();
        }
        let mut r = report(FileState::Absent, fw_cfg);
        r.cpuid.vendor = Vendor::Other(*b"Evil\x1b]0;x\x07\r\n");
        let t = render_table(&r);
        assert!(
            t.contains("opt/a\\n  0x99  forged\\u{1b}[2J\\\\\\u{202e}\\u{e9}"),
            "{t}"
        );
        assert!(t.contains("Evil\\u{1b}]0;x\\u{7}\\r\\n "), "{t}");
        assert!(!t.contains('\u{1b}') && !t.contains('\r') && !t.contains('\u{7}'));
        assert!(!t.lines().any(|l| l.starts_with("  0x99")), "{t}");
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut fw_cfg = files(None);
        if let FwCfgProbe::Present { files: Ok(f), .. } = &mut fw_cfg {
            f[0].name = "a\"b\\c\n\u{1}".into();
        }
        let r = report(FileState::Absent, fw_cfg);
        assert!(render_json(&r).contains(r#""name":"a\"b\\c\n\u0001""#));
        let p = parsed(&r);
        assert_eq!(p.fw_cfg.files.unwrap()[0].name, "a\"b\\c\n\u{1}");
    }

    #[test]
    fn sysfs_reader() {
        let root = std::env::temp_dir().join(format!("fw-cfg-probe-test-{}", std::process::id()));
        let dir = root.join("by_key").join("32");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("name"), "etc/x\n").unwrap();
        fs::write(dir.join("size"), "3\n").unwrap();
        fs::write(dir.join("raw"), [1, 2, 3]).unwrap();
        let s = read_sysfs_file(&root, 32, 1 << 20);
        assert_eq!(
            read_sysfs_file(&root, 32, 2).raw.as_deref(),
            Some(&[1u8, 2][..])
        );
        assert_eq!(s.name.as_deref(), Some("etc/x"));
        assert_eq!(s.size, Some(3));
        assert_eq!(s.raw.as_deref(), Some(&[1u8, 2, 3][..]));
        assert_eq!(read_sysfs_file(&root, 33, 1 << 20), SysfsFile::default());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn sysfs_reads_are_bounded_and_refuse_special_files() {
        let root = std::env::temp_dir().join(format!("fw-cfg-probe-bounds-{}", std::process::id()));
        let dir = root.join("by_key").join("33");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("name"), "n".repeat(1000)).unwrap();
        let c = std::ffi::CString::new(dir.join("size").as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: `c` is a NUL-terminated path that lives across the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        std::os::unix::fs::symlink("/dev/zero", dir.join("raw")).unwrap();
        let s = read_sysfs_file(&root, 33, 1 << 20);
        assert_eq!(s.name.unwrap().len(), SYSFS_NAME_MAX as usize);
        assert_eq!(s.size, None);
        assert_eq!(s.raw, None);
        fs::remove_dir_all(&root).unwrap();
    }
}
