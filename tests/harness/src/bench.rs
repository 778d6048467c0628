// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Guest-measured benchmarks: the test firmware in benchmark mode
//! (`fw_cfg_tests.bench=SIZE@BASE` on its command line), booted under the
//! mini VMM and under QEMU (`-M microvm -accel kvm`) with the same ELF, the
//! same command line and the same extra fw_cfg files.
//!
//! Exits are the primary metric: exact, and independent of how fast the
//! KVM engine runs guest code. The mini VMM counts them per phase; for
//! QEMU a second, traced run (`-trace kvm_run_exit -trace
//! memory_region_ops_write`) counts every `KVM_RUN` return between the
//! firmware's phase-marker writes to port 0x600 (the marker write's own
//! exit is not counted, as in the mini VMM). Guest cycles (`rdtsc`) come
//! from the untraced runs and compare only between the two VMMs of one
//! run on one machine.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use fw_cfg_protocol::{BenchLine, FirmwareReport, MARK_PORT};
use serde::Serialize;

use crate::firmware;
use crate::vmm::devices::SerialSink;
use crate::vmm::fw_cfg::{FwCfgSetup, PhysBitsSetup};
use crate::vmm::{ExitReason, VmConfig};

/// Guest-physical base of the bulk area handed to the firmware.
pub const AREA_BASE: u64 = 0x0200_0000;
/// Size of the bulk area: the largest bulk file.
pub const AREA_SIZE: u64 = 16 << 20;
/// Guest memory of both VMMs, in MiB.
pub const MEMORY_MIB: u64 = 128;
/// Sizes of the DMA size sweep.
pub const DMA_SIZES: [usize; 9] = [
    8,
    64,
    512,
    4 << 10,
    32 << 10,
    256 << 10,
    1 << 20,
    4 << 20,
    16 << 20,
];
/// Directory sizes of the growth runs.
pub const DIR_SIZES: [usize; 3] = [1, 32, 1000];

/// The command line selecting benchmark mode with the bulk area.
pub fn cmdline() -> String {
    format!("fw_cfg_tests.bench={AREA_SIZE:#x}@{AREA_BASE:#x}")
}

/// The firmware's sparse check of bulk data (every 4096th byte and the
/// last one).
pub fn sparse_sum(data: &[u8]) -> u64 {
    let mut sum: u64 = data.iter().step_by(4096).map(|&b| u64::from(b)).sum();
    if let Some(&last) = data.last() {
        sum += u64::from(last);
    }
    sum
}

/// Contents of a bulk file of `size` bytes.
pub fn pattern(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 7 + 3) as u8).collect()
}

/// A human size label: `8`, `4k`, `1m`.
pub fn size_label(size: usize) -> String {
    if size >= 1 << 20 && size % (1 << 20) == 0 {
        format!("{}m", size >> 20)
    } else if size >= 1 << 10 && size % (1 << 10) == 0 {
        format!("{}k", size >> 10)
    } else {
        size.to_string()
    }
}

/// What one guest boot contains besides the phys-bits file.
#[derive(Debug, Clone, Serialize)]
pub struct Workload {
    /// Name in the table (`main`, `dir-32`, ...).
    pub label: String,
    /// Filler files `opt/bench/dir/NNNN` (1 byte each).
    pub filler_files: usize,
    /// Bulk files: `(name, size)`, each `opt/bench/<transport>/<label>`.
    pub bulk: Vec<(String, usize)>,
}

impl Workload {
    /// The main workload: bulk reads by every transport (PIO: `pio_bytes`)
    /// and the DMA size sweep.
    pub fn main(pio_bytes: usize) -> Self {
        let mut bulk = vec![
            (
                format!("opt/bench/pio/{}", size_label(pio_bytes)),
                pio_bytes,
            ),
            ("opt/bench/mmio/1m".to_string(), 1 << 20),
            ("opt/bench/mmio-dma/1m".to_string(), 1 << 20),
        ];
        for &s in &DMA_SIZES {
            bulk.push((format!("opt/bench/dma/{}", size_label(s)), s));
        }
        Workload {
            label: "main".into(),
            filler_files: 0,
            bulk,
        }
    }

    /// A directory-growth workload: `files` files in the mini VMM's
    /// directory (the phys-bits file and `files - 1` fillers).
    pub fn directory(files: usize) -> Self {
        Workload {
            label: format!("dir-{files}"),
            filler_files: files.saturating_sub(1),
            bulk: Vec::new(),
        }
    }

    /// Every extra file: fillers, then bulk files.
    pub fn files(&self) -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<(String, Vec<u8>)> = (0..self.filler_files)
            .map(|i| (format!("opt/bench/dir/{i:04}"), vec![b'x']))
            .collect();
        v.extend(self.bulk.iter().map(|(n, s)| (n.clone(), pattern(*s))));
        v
    }

    /// File slots needed (with room for QEMU's own files), when more than
    /// the default.
    pub fn file_slots(&self) -> Option<u16> {
        let n = self.filler_files + self.bulk.len() + 64;
        (n > 0x20).then(|| {
            u16::try_from(n.next_power_of_two())
                .unwrap_or(0x3fe0)
                .min(0x3fe0)
        })
    }
}

/// The firmware's `bench` lines (other lines are ignored), through the
/// protocol's one parser.
pub fn parse_lines(serial: &[u8]) -> Vec<BenchLine> {
    FirmwareReport::parse(serial).bench
}

/// Exits per phase from a QEMU trace (`kvm_run_exit` and
/// `memory_region_ops_write` events). Each write to the marker port
/// switches the phase; its own exit, the last one before it, is not
/// counted.
pub fn exits_from_trace(trace: &str) -> BTreeMap<u32, u64> {
    let mut exits: BTreeMap<u32, u64> = BTreeMap::new();
    let mut phase = 0u32;
    for line in trace.lines() {
        if line.starts_with("kvm_run_exit ") {
            if phase != 0 {
                *exits.entry(phase).or_default() += 1;
            }
        } else if line.starts_with("memory_region_ops_write ")
            && line.contains("name 'io'")
            && trace_field(line, "addr") == Some(u64::from(MARK_PORT))
        {
            if phase != 0 {
                if let Some(n) = exits.get_mut(&phase) {
                    *n = n.saturating_sub(1);
                }
            }
            phase = trace_field(line, "value")
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(0);
        }
    }
    exits
}

/// The hexadecimal value after `key ` in a trace line.
pub fn trace_field(line: &str, key: &str) -> Option<u64> {
    let mut words = line.split_whitespace();
    while let Some(w) = words.next() {
        if w == key {
            let v = words.next()?;
            let v = v.strip_prefix("0x").unwrap_or(v);
            return u64::from_str_radix(v, 16).ok();
        }
    }
    None
}

/// One boot's results.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BootResult {
    /// The firmware's lines.
    pub lines: Vec<BenchLine>,
    /// Exits per phase (empty for an untraced QEMU run).
    pub exits: BTreeMap<u32, u64>,
    /// Wall-clock time of the boot.
    pub wall_ms: f64,
}

/// Errors of a benchmark run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The mini VMM failed.
    #[error(transparent)]
    Vmm(#[from] crate::vmm::Error),
    /// A guest did not finish its run.
    #[error("{vmm}: the firmware did not finish ({why}); output:\n{serial}")]
    Incomplete {
        /// Which VMM.
        vmm: &'static str,
        /// How it stopped.
        why: String,
        /// What it printed.
        serial: String,
    },
    /// QEMU could not be run.
    #[error("cannot run {path}: {source}")]
    Qemu {
        /// The QEMU binary.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Temporary files.
    #[error("temporary file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A bulk read returned wrong data or failed.
    #[error("{vmm}: {name}: {what}")]
    BadRead {
        /// Which VMM.
        vmm: &'static str,
        /// The measurement.
        name: String,
        /// What was wrong.
        what: String,
    },
}

/// Checks every bulk read of `w` in `lines` (present, the right sparse
/// sum, no error); `vmm` names the VMM in the error.
pub fn check_reads(vmm: &'static str, w: &Workload, lines: &[BenchLine]) -> Result<(), Error> {
    for (name, size) in &w.bulk {
        let key = format!("read/{name}");
        let Some(l) = lines.iter().find(|l| l.name.as_str() == key) else {
            return Err(Error::BadRead {
                vmm,
                name: key,
                what: "no line".into(),
            });
        };
        if !l.available {
            continue;
        }
        let want = sparse_sum(&pattern(*size));
        let got = l.check;
        let err = l.error;
        if got != Some(want) || err.is_some() {
            return Err(Error::BadRead {
                vmm,
                name: key,
                what: format!("check {got:?} (want {want}), error {err:?}"),
            });
        }
    }
    Ok(())
}

/// The phys-bits setup of every run (QEMU's legacy default, both channels
/// on; `fw-cfg-vmm`'s defaults).
pub fn phys_bits_setup() -> PhysBitsSetup {
    PhysBitsSetup::default()
}

/// Boots the firmware in benchmark mode under the mini VMM.
pub fn run_ours(w: &Workload, timeout: Duration) -> Result<BootResult, Error> {
    let (sink, buf) = SerialSink::capture();
    let mut config = VmConfig::new(firmware::path());
    config.serial = sink;
    config.cmdline = cmdline();
    config.memory_mib = MEMORY_MIB;
    config.timeout = Some(timeout);
    config.fw_cfg = FwCfgSetup {
        raw_files: w.files(),
        phys_bits: phys_bits_setup(),
        file_slots: w.file_slots(),
        ..FwCfgSetup::default()
    };
    let start = Instant::now();
    let outcome = crate::phase::run_vm(&config)?;
    let wall_ms = start.elapsed().as_secs_f64() * 1e3;
    let serial = buf.lock().map(|b| b.clone()).unwrap_or_default();
    let report = FirmwareReport::parse(&serial);
    if !report.done || outcome.reason != (ExitReason::DebugExit { value: 0 }) {
        return Err(Error::Incomplete {
            vmm: "mini VMM",
            why: format!("{:?}", outcome.reason),
            serial: String::from_utf8_lossy(&serial).into_owned(),
        });
    }
    let lines = report.bench;
    check_reads("mini VMM", w, &lines)?;
    let exits = outcome
        .stats
        .per_phase
        .iter()
        .map(|(&p, c)| (p, c.total()))
        .collect();
    Ok(BootResult {
        lines,
        exits,
        wall_ms,
    })
}

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self, Error> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("fw-cfg-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        Ok(TempDir(path))
    }

    fn write(&self, name: &str, data: &[u8]) -> Result<PathBuf, Error> {
        let path = self.0.join(name);
        std::fs::write(&path, data).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The QEMU command line for `w` (without tracing), with the files it
/// needs written into `dir`.
fn qemu_args(w: &Workload, host: u8, dir: &TempDir) -> Result<Vec<String>, Error> {
    qemu_args_with(w, host, &firmware::path(), |name, data| {
        dir.write(name, data).map(|p| p.display().to_string())
    })
}

/// The QEMU command line that boots `firmware` for `w` on a host of
/// `host` bits (without tracing); `place(name, bytes)` stores each file
/// QEMU reads and returns the path to give it.
pub fn qemu_args_with<E>(
    w: &Workload,
    host: u8,
    firmware: &std::path::Path,
    mut place: impl FnMut(&str, &[u8]) -> Result<String, E>,
) -> Result<Vec<String>, E> {
    let mut args = crate::peers::qemu::firmware_base_args("microvm");
    args.push("-m".into());
    args.push(format!("{MEMORY_MIB}M"));
    args.push("-kernel".into());
    args.push(firmware.display().to_string());
    args.push("-append".into());
    args.push(cmdline());
    if let Some(slots) = w.file_slots() {
        args.push("-global".into());
        args.push(format!("fw_cfg_io.x-file-slots={slots}"));
    }
    // The same statement the mini VMM renders, so both directories hold it.
    let phys = phys_bits_setup().config(host);
    let path = place("phys-bits-valid", &phys.file_bytes())?;
    args.push("-fw_cfg".into());
    args.push(format!(
        "name={},file={path}",
        fw_cfg_device::abi::PHYS_BITS_FILE_NAME
    ));
    args.extend(file_options(w, "-fw_cfg", place)?);
    Ok(args)
}

/// The `option name=NAME,...` pairs that give a VMM `w`'s files (QEMU's
/// `-fw_cfg` syntax, which `fw-cfg-vmm --fw-cfg` shares): one-byte fillers
/// as strings, the rest as files stored by `place`.
pub fn file_options<E>(
    w: &Workload,
    option: &str,
    mut place: impl FnMut(&str, &[u8]) -> Result<String, E>,
) -> Result<Vec<String>, E> {
    let mut args = Vec::new();
    for (i, (name, data)) in w.files().iter().enumerate() {
        args.push(option.to_string());
        if data.len() == 1 {
            args.push(format!("name={name},string=x"));
        } else {
            let path = place(&format!("f{i}"), data)?;
            args.push(format!("name={name},file={path}"));
        }
    }
    Ok(args)
}

/// Boots the firmware in benchmark mode under QEMU; with `trace`, counts
/// exits per phase from QEMU's trace events.
pub fn run_qemu(
    qemu: &str,
    w: &Workload,
    host: u8,
    trace: bool,
    timeout: Duration,
) -> Result<BootResult, Error> {
    let dir = TempDir::new()?;
    let mut args = qemu_args(w, host, &dir)?;
    let trace_path = dir.0.join("trace.log");
    if trace {
        args.extend(
            [
                "-trace",
                "kvm_run_exit",
                "-trace",
                "memory_region_ops_write",
                "-D",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        args.push(trace_path.display().to_string());
    }
    let out = crate::peers::qemu::run_with_timeout(std::path::Path::new(qemu), &args, timeout)
        .map_err(|source| Error::Qemu {
            path: qemu.to_string(),
            source,
        })?;
    let wall_ms = out.elapsed.as_secs_f64() * 1e3;
    let serial = out.stdout;
    let report = FirmwareReport::parse(&serial);
    // isa-debug-exit with value 0: status (0 << 1) | 1.
    if !report.done || out.status.and_then(|s| s.code()) != Some(1) {
        return Err(Error::Incomplete {
            vmm: "QEMU",
            why: match out.status {
                Some(s) => format!("{s}; stderr: {}", String::from_utf8_lossy(&out.stderr)),
                None => format!("timeout after {timeout:?}"),
            },
            serial: String::from_utf8_lossy(&serial).into_owned(),
        });
    }
    let lines = report.bench;
    check_reads("QEMU", w, &lines)?;
    let exits = if trace {
        let text = std::fs::read_to_string(&trace_path).map_err(|source| Error::Io {
            path: trace_path.clone(),
            source,
        })?;
        exits_from_trace(&text)
    } else {
        BTreeMap::new()
    };
    Ok(BootResult {
        lines,
        exits,
        wall_ms,
    })
}

/// Merges repeated boots of one VMM: the first boot's lines and exits,
/// with each measurement's cycles replaced by the median over all boots.
/// Returns the merged boot and the names whose exits differed between
/// boots (exits are expected to be identical).
pub fn merge_median(mut runs: Vec<BootResult>) -> Option<(BootResult, Vec<String>)> {
    if runs.is_empty() {
        return None;
    }
    let mut unstable = Vec::new();
    let rest = runs.split_off(1);
    let mut first = runs.pop()?;
    let exits_of =
        |r: &BootResult, l: &BenchLine| l.phase.and_then(|p| r.exits.get(&p.id()).copied());
    for i in 0..first.lines.len() {
        let name = first.lines[i].name;
        let mut cycles = vec![first.lines[i].cycles];
        let want = exits_of(&first, &first.lines[i]);
        for r in &rest {
            if let Some(l) = r.lines.iter().find(|l| l.name == name) {
                cycles.push(l.cycles);
                let label = name.to_string();
                if !r.exits.is_empty() && exits_of(r, l) != want && !unstable.contains(&label) {
                    unstable.push(label);
                }
            }
        }
        cycles.sort_unstable();
        first.lines[i].cycles = cycles[cycles.len() / 2];
    }
    first.wall_ms = rest.iter().map(|r| r.wall_ms).fold(first.wall_ms, f64::min);
    Some((first, unstable))
}

/// One row of the guest-side table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The workload (`main`, `dir-1000`, ...).
    pub workload: String,
    /// The measurement.
    pub name: String,
    /// Repetitions in the phase.
    pub ops: u64,
    /// Directory count the guest read under the mini VMM, for lookups.
    pub dir_count: Option<u64>,
    /// Directory count the guest read under QEMU (QEMU adds files of its
    /// own), for lookups.
    pub qemu_dir_count: Option<u64>,
    /// Bytes read, for bulk reads.
    pub bytes: Option<u64>,
    /// Exits under the mini VMM.
    pub ours_exits: Option<u64>,
    /// Guest cycles under the mini VMM.
    pub ours_cycles: Option<u64>,
    /// Exits under QEMU (traced run).
    pub qemu_exits: Option<u64>,
    /// Guest cycles under QEMU (untraced run).
    pub qemu_cycles: Option<u64>,
}

impl Row {
    /// Cycles ours / QEMU.
    pub fn cycle_ratio(&self) -> Option<f64> {
        match (self.ours_cycles, self.qemu_cycles) {
            (Some(o), Some(q)) if q > 0 => Some(o as f64 / q as f64),
            _ => None,
        }
    }
}

/// Merges the boots of one workload into rows, in the firmware's order.
pub fn rows(
    w: &Workload,
    ours: &BootResult,
    qemu_exits: Option<&BootResult>,
    qemu_time: Option<&BootResult>,
) -> Vec<Row> {
    let find = |r: Option<&BootResult>, name: &str| -> Option<BenchLine> {
        r?.lines
            .iter()
            .find(|l| l.name.as_str() == name && l.available)
            .copied()
    };
    let exits = |r: Option<&BootResult>, name: &str| -> Option<u64> {
        let l = find(r, name)?;
        let p = l.phase?;
        Some(r?.exits.get(&p.id()).copied().unwrap_or(0))
    };
    ours.lines
        .iter()
        .map(|l| {
            let ours_line = l.available.then_some(l);
            Row {
                workload: w.label.clone(),
                name: l.name.to_string(),
                ops: l.ops.max(1),
                dir_count: l.dir_count.map(u64::from),
                qemu_dir_count: find(qemu_time, l.name.as_str())
                    .and_then(|l| l.dir_count.map(u64::from)),
                bytes: l.read.map(u64::from),
                ours_exits: ours_line.and_then(|_| exits(Some(ours), l.name.as_str())),
                ours_cycles: ours_line.map(|l| l.cycles),
                qemu_exits: exits(qemu_exits, l.name.as_str()),
                qemu_cycles: find(qemu_time, l.name.as_str()).map(|l| l.cycles),
            }
        })
        .collect()
}

/// The host TSC frequency in Hz, measured over `window` (guests under KVM
/// read the same TSC unless the VMM scales it; neither VMM here does).
#[cfg(target_arch = "x86_64")]
pub fn tsc_hz(window: Duration) -> f64 {
    // SAFETY: `rdtsc` has no preconditions on x86-64.
    let t0 = unsafe { std::arch::x86_64::_rdtsc() };
    let i0 = Instant::now();
    std::thread::sleep(window);
    // SAFETY: as above.
    let t1 = unsafe { std::arch::x86_64::_rdtsc() };
    let dt = i0.elapsed().as_secs_f64();
    t1.wrapping_sub(t0) as f64 / dt
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn time(cycles: Option<u64>, hz: f64) -> String {
    match cycles {
        None => "-".into(),
        Some(c) => {
            let s = c as f64 / hz;
            if s >= 1.0 {
                format!("{s:.2} s")
            } else if s >= 1e-3 {
                format!("{:.2} ms", s * 1e3)
            } else {
                format!("{:.1} us", s * 1e6)
            }
        }
    }
}

/// Renders the table (times from cycles at `tsc_hz`).
pub fn render(rows: &[Row], tsc_hz: f64) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<9} {:<28} {:>5} {:>9} {:>9} | {:>9} {:>9} {:>8} | {:>10} {:>10} {:>6}",
        "workload",
        "measurement",
        "ops",
        "dir/qemu",
        "bytes",
        "exits",
        "qemu",
        "per op",
        "time",
        "qemu",
        "ratio"
    );
    for r in rows {
        let per_op = r
            .ours_exits
            .map(|e| format!("{:.2}", e as f64 / r.ops as f64))
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            s,
            "{:<9} {:<28} {:>5} {:>9} {:>9} | {:>9} {:>9} {:>8} | {:>10} {:>10} {:>6}",
            r.workload,
            r.name,
            r.ops,
            match (r.dir_count, r.qemu_dir_count) {
                (None, None) => "-".to_string(),
                (a, b) => format!("{}/{}", opt(a), opt(b)),
            },
            opt(r.bytes),
            opt(r.ours_exits),
            opt(r.qemu_exits),
            per_op,
            time(r.ours_cycles, tsc_hz),
            time(r.qemu_cycles, tsc_hz),
            r.cycle_ratio()
                .map_or_else(|| "-".into(), |x| format!("{x:.2}")),
        );
    }
    s
}

/// Writes a progress note to standard error.
pub fn note(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// Whether `qemu` can be started (`--version`).
pub fn qemu_available(qemu: &str) -> bool {
    crate::peers::qemu::version_of(std::path::Path::new(qemu)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use fw_cfg_protocol::Phase;

    #[test]
    fn parses_bench_lines() {
        let out = br#"{"event":"boot","cmdline":"x"}
{"event":"bench","phase":256,"name":"null-exit","ops":64,"cycles":1000,"value":255}
{"event":"bench","name":"mmio/decision","available":false}
{"event":"bench","phase":300,"name":"read/opt/bench/dma/1m","ops":1,"cycles":5,"size":1048576,"read":1048576,"check":77}
{"event":"done"}"#;
        let l = parse_lines(out);
        assert_eq!(l.len(), 3);
        assert_eq!(
            (l[0].phase, l[0].ops, l[0].cycles),
            (Some(Phase::Bench(0)), 64, 1000)
        );
        assert_eq!(l[0].value, Some(255));
        assert!(l[0].available);
        assert!(!l[1].available);
        assert_eq!(l[2].read, Some(1 << 20));
        assert_eq!(l[2].check, Some(77));
    }

    #[test]
    fn trace_exits_exclude_the_marker_writes() {
        let trace = "\
kvm_run_exit cpu_index 0, reason 2
memory_region_ops_write cpu 0 mr 0x1 addr 0x600 value 0x100 size 4 name 'io'
kvm_run_exit cpu_index 0, reason 2
kvm_run_exit cpu_index 0, reason 2
memory_region_ops_write cpu 0 mr 0x2 addr 0x0 value 0x0 size 2 name 'fwcfg.ctl'
kvm_run_exit cpu_index 0, reason 2
memory_region_ops_write cpu 0 mr 0x1 addr 0x600 value 0x0 size 4 name 'io'
kvm_run_exit cpu_index 0, reason 2
memory_region_ops_write cpu 0 mr 0x1 addr 0x600 value 0x101 size 4 name 'io'
kvm_run_exit cpu_index 0, reason 2
memory_region_ops_write cpu 0 mr 0x1 addr 0x600 value 0x0 size 4 name 'io'
";
        let e = exits_from_trace(trace);
        assert_eq!(e.get(&0x100), Some(&2));
        assert_eq!(e.get(&0x101).copied().unwrap_or(0), 0);
    }

    #[test]
    fn workloads_and_labels() {
        assert_eq!(size_label(8), "8");
        assert_eq!(size_label(4096), "4k");
        assert_eq!(size_label(16 << 20), "16m");
        let w = Workload::directory(1000);
        assert_eq!(w.files().len(), 999);
        assert!(w.file_slots().unwrap() >= 1000 + 32);
        assert_eq!(Workload::directory(1).file_slots(), Some(64));
        let m = Workload::main(64 << 10);
        assert!(
            m.bulk
                .iter()
                .any(|(n, s)| n == "opt/bench/pio/64k" && *s == 64 << 10)
        );
        assert_eq!(sparse_sum(&[1, 2, 3]), 4);
        assert_eq!(
            sparse_sum(&pattern(8193)),
            3 + 3 + 3 + u64::from((8192u64 * 7 + 3) as u8)
        );
    }
}
