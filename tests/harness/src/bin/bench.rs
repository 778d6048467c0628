// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `bench`: the guest-side benchmark table. Boots the test firmware in
//! benchmark mode under the mini VMM and under QEMU (`-M microvm -accel
//! kvm`, same ELF, same command line, same extra fw_cfg files) for each
//! workload: `main` (null exit, `cpuid`, every channel and transport,
//! bulk reads, the DMA size sweep) and `dir-1`, `dir-32`, `dir-1000`
//! (directory growth). QEMU runs twice per workload: traced, for exits,
//! and untraced, for guest cycles.
//!
//! Exits are exact and the primary metric; times are guest `rdtsc` deltas
//! converted at the host TSC rate and compare only between the two VMMs of
//! one run. Without `/dev/kvm` or QEMU this fails, unless
//! `FW_CFG_ALLOW_SKIP=1` (then a missing QEMU leaves its columns empty,
//! and says so).

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use fw_cfg_tests::bench::{self, Row, Workload};
use fw_cfg_tests::matrix;
use fw_cfg_tests::vmm::error_chain;

#[derive(Parser, Debug)]
#[command(version, about = "Guest-measured fw_cfg costs: mini VMM against QEMU")]
struct Args {
    /// Print JSON (rows and run metadata) instead of the table.
    #[arg(long)]
    json: bool,
    /// Also write the JSON to this file (with the table on stdout).
    #[arg(long)]
    json_out: Option<std::path::PathBuf>,
    /// QEMU binary.
    #[arg(long, default_value = "qemu-system-x86_64")]
    qemu: String,
    /// Size of the file read by port I/O (one exit per byte; default
    /// 1 MiB, 4 KiB with `--lab`).
    #[arg(long)]
    pio_bytes: Option<usize>,
    /// Workloads to run (`main`, `dir-1`, `dir-32`, `dir-1000`, or
    /// `dir-N` for any N); default all four.
    #[arg(long, value_delimiter = ',')]
    workloads: Vec<String>,
    /// Boots per VMM and workload for the cycle figures (medians); QEMU's
    /// traced boot for exits runs once (default 1; 3 with `--lab`).
    #[arg(long)]
    repeat: Option<usize>,
    /// Per-guest timeout in seconds.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
    /// Measure on real SVM in the nested KVM lab instead: the `main`
    /// workload and a Linux guest under fw-cfg-vmm and QEMU microvm in
    /// one outer boot, `--repeat` alternated boots each (default 3).
    #[arg(long)]
    lab: bool,
    /// The lab's outer MAXPHYADDR (the inner KVM host's width).
    #[arg(long, default_value_t = 48, value_parser = clap::value_parser!(u8).range(36..=52))]
    lab_phys_bits: u8,
}

/// `--lab`: one outer boot with the firmware's `main` workload and Linux.
fn run_lab(args: &Args) -> Result<(), Stop> {
    use fw_cfg_tests::lab::measure::{self, MeasureSetup};
    if args.workloads.iter().any(|w| w != "main") {
        return Err(Stop::Failed("--lab runs the main workload only".into()));
    }
    let repeat = args.repeat.unwrap_or(3);
    let setup = MeasureSetup {
        repeat: repeat.max(1),
        host_bits: args.lab_phys_bits,
        firmware: Some(Workload::main(args.pio_bytes.unwrap_or(4096))),
        linux: true,
        timed_qemu: true,
    };
    let tsc_hz = bench::tsc_hz(Duration::from_millis(200));
    bench::note(&format!(
        "bench: nested lab, {} alternated boots per VMM of the firmware and of Linux",
        setup.repeat
    ));
    let m = measure::run(&setup, measure::timeout_for(&setup))
        .map_err(|e| Stop::Failed(error_chain(&e)))?;
    let out = serde_json::json!({
        "tsc_hz": tsc_hz,
        "lab": true,
        "repeat": setup.repeat,
        "cmdline": bench::cmdline(),
        "measurement": m,
    });
    report(args, &out, &m.firmware_rows, tsc_hz)?;
    if !args.json {
        println!();
        print!("{}", measure::render_linux(&m.linux));
    }
    Ok(())
}

fn workload(name: &str, pio_bytes: usize) -> Option<Workload> {
    if name == "main" {
        return Some(Workload::main(pio_bytes));
    }
    let n: usize = name.strip_prefix("dir-")?.parse().ok()?;
    (1..=0x3f00).contains(&n).then(|| Workload::directory(n))
}

fn allow_skip() -> bool {
    std::env::var("FW_CFG_ALLOW_SKIP").as_deref() == Ok("1")
}

/// Why the command stops early: an error to print (status 1), or nothing
/// to measure with `FW_CFG_ALLOW_SKIP=1` (status 0).
enum Stop {
    Failed(String),
    NothingToMeasure,
}

/// Whether QEMU can be used; without it, the QEMU columns stay empty when
/// `FW_CFG_ALLOW_SKIP=1` is set.
fn check_peers(args: &Args) -> Result<bool, Stop> {
    if !matrix::kvm_available() {
        eprintln!(
            "bench: /dev/kvm is not usable; the guest-side benchmarks need KVM \
             (the device-side ones run with `cargo bench -p fw-cfg-device --all-features`)"
        );
        // Nothing can be measured without KVM, with or without
        // FW_CFG_ALLOW_SKIP.
        return Err(if allow_skip() {
            Stop::NothingToMeasure
        } else {
            Stop::Failed(String::new())
        });
    }
    if bench::qemu_available(&args.qemu) {
        return Ok(true);
    }
    if !allow_skip() {
        return Err(Stop::Failed(format!(
            "{} cannot be run: install QEMU (10.x, microvm), pass --qemu PATH, or \
             set FW_CFG_ALLOW_SKIP=1 to measure the mini VMM alone",
            args.qemu
        )));
    }
    eprintln!(
        "bench: {} cannot be run; FW_CFG_ALLOW_SKIP=1 is set, so the QEMU columns \
         stay empty",
        args.qemu
    );
    Ok(false)
}

/// The workloads `--workloads` names (default all four).
fn workloads(args: &Args) -> Result<Vec<Workload>, Stop> {
    let names: Vec<String> = if args.workloads.is_empty() {
        ["main", "dir-1", "dir-32", "dir-1000"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        args.workloads.clone()
    };
    names
        .iter()
        .map(|n| {
            workload(n, args.pio_bytes.unwrap_or(1 << 20))
                .ok_or_else(|| Stop::Failed(format!("unknown workload {n:?}")))
        })
        .collect()
}

/// What the measurement of one workload gave.
struct Measured {
    rows: Vec<Row>,
    wall: serde_json::Value,
}

/// Boots `w` `--repeat` times under each VMM (QEMU once more, traced, for
/// the exits) and merges the boots.
fn measure(args: &Args, w: &Workload, with_qemu: bool, host: u8) -> Result<Measured, Stop> {
    let timeout = Duration::from_secs(args.timeout);
    let repeat = args.repeat.unwrap_or(1).max(1);
    let failed = |e: bench::Error| Stop::Failed(error_chain(&e));
    let mut q_exits = None;
    if with_qemu {
        bench::note(&format!("bench: {}: QEMU, traced (exits)", w.label));
        q_exits = Some(bench::run_qemu(&args.qemu, w, host, true, timeout).map_err(failed)?);
    }
    let (mut ours_runs, mut q_runs) = (Vec::new(), Vec::new());
    // Alternate the VMMs so that load changes on the machine hit both.
    for i in 0..repeat {
        bench::note(&format!(
            "bench: {}: mini VMM ({}/{repeat})",
            w.label,
            i + 1
        ));
        ours_runs.push(bench::run_ours(w, timeout).map_err(failed)?);
        if with_qemu {
            bench::note(&format!("bench: {}: QEMU ({}/{repeat})", w.label, i + 1));
            q_runs.push(bench::run_qemu(&args.qemu, w, host, false, timeout).map_err(failed)?);
        }
    }
    let (ours, unstable) =
        bench::merge_median(ours_runs).ok_or_else(|| Stop::Failed("no boot".into()))?;
    if !unstable.is_empty() {
        eprintln!(
            "bench: {}: exits differed between boots of the mini VMM for {}",
            w.label,
            unstable.join(", ")
        );
    }
    let q_time = bench::merge_median(q_runs).map(|(r, _)| r);
    Ok(Measured {
        wall: serde_json::json!({
            "workload": w.label,
            "ours_ms": ours.wall_ms,
            "qemu_traced_ms": q_exits.as_ref().map(|r| r.wall_ms),
            "qemu_ms": q_time.as_ref().map(|r| r.wall_ms),
        }),
        rows: bench::rows(w, &ours, q_exits.as_ref(), q_time.as_ref()),
    })
}

/// Prints the table (or the JSON) and writes `--json-out`.
fn report(args: &Args, out: &serde_json::Value, rows: &[Row], tsc_hz: f64) -> Result<(), Stop> {
    let json = serde_json::to_string_pretty(out).map_err(|e| Stop::Failed(e.to_string()))?;
    if let Some(path) = &args.json_out {
        std::fs::write(path, &json)
            .map_err(|e| Stop::Failed(format!("cannot write {}: {e}", path.display())))?;
    }
    if args.json {
        println!("{json}");
        return Ok(());
    }
    print!("{}", bench::render(rows, tsc_hz));
    println!();
    println!(
        "exits: exact VM exits of each phase (mini VMM: its counters; QEMU: a traced run). \
         time: guest rdtsc at {:.0} MHz, comparable only between the two VMMs of this run; \
         ratio = mini VMM / QEMU.",
        tsc_hz / 1e6
    );
    if let Some(walls) = out["boots"].as_array() {
        for b in walls {
            println!("boot wall time: {b}");
        }
    }
    Ok(())
}

fn run(args: &Args) -> Result<(), Stop> {
    if args.lab {
        return run_lab(args);
    }
    let with_qemu = check_peers(args)?;
    let workloads = workloads(args)?;
    let host = matrix::host_phys_bits();
    let tsc_hz = bench::tsc_hz(Duration::from_millis(200));
    let mut rows: Vec<Row> = Vec::new();
    let mut walls = Vec::new();
    for w in &workloads {
        let m = measure(args, w, with_qemu, host)?;
        rows.extend(m.rows);
        walls.push(m.wall);
    }
    let out = serde_json::json!({
        "tsc_hz": tsc_hz,
        "host_phys_bits": host,
        "cmdline": bench::cmdline(),
        "repeat": args.repeat.unwrap_or(1).max(1),
        "boots": walls,
        "rows": rows,
    });
    report(args, &out, &rows, tsc_hz)
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) | Err(Stop::NothingToMeasure) => ExitCode::SUCCESS,
        Err(Stop::Failed(why)) => {
            if !why.is_empty() {
                eprintln!("bench: {why}");
            }
            ExitCode::FAILURE
        }
    }
}
