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
    /// Size of the file read by port I/O (one exit per byte).
    #[arg(long, default_value_t = 1 << 20)]
    pio_bytes: usize,
    /// Workloads to run (`main`, `dir-1`, `dir-32`, `dir-1000`, or
    /// `dir-N` for any N); default all four.
    #[arg(long, value_delimiter = ',')]
    workloads: Vec<String>,
    /// Boots per VMM and workload for the cycle figures (medians); QEMU's
    /// traced boot for exits runs once.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Per-guest timeout in seconds.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
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

fn main() -> ExitCode {
    let args = Args::parse();
    if !matrix::kvm_available() {
        eprintln!(
            "bench: /dev/kvm is not usable; the guest-side benchmarks need KVM \
             (the device-side ones run with `cargo bench -p fw-cfg-device`)"
        );
        // Nothing can be measured without KVM, with or without
        // FW_CFG_ALLOW_SKIP.
        return if allow_skip() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let with_qemu = bench::qemu_available(&args.qemu);
    if !with_qemu {
        if allow_skip() {
            eprintln!(
                "bench: {} cannot be run; FW_CFG_ALLOW_SKIP=1 is set, so the QEMU columns \
                 stay empty",
                args.qemu
            );
        } else {
            eprintln!(
                "bench: {} cannot be run: install QEMU (10.x, microvm), pass --qemu PATH, or \
                 set FW_CFG_ALLOW_SKIP=1 to measure the mini VMM alone",
                args.qemu
            );
            return ExitCode::FAILURE;
        }
    }
    let names: Vec<String> = if args.workloads.is_empty() {
        ["main", "dir-1", "dir-32", "dir-1000"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        args.workloads.clone()
    };
    let mut workloads = Vec::new();
    for n in &names {
        match workload(n, args.pio_bytes) {
            Some(w) => workloads.push(w),
            None => {
                eprintln!("bench: unknown workload {n:?}");
                return ExitCode::FAILURE;
            }
        }
    }

    let timeout = Duration::from_secs(args.timeout);
    let host = matrix::host_phys_bits();
    let tsc_hz = bench::tsc_hz(Duration::from_millis(200));
    let mut rows: Vec<Row> = Vec::new();
    let mut walls = Vec::new();
    for w in &workloads {
        let repeat = args.repeat.max(1);
        let (mut ours_runs, mut q_runs, mut q_exits) = (Vec::new(), Vec::new(), None);
        if with_qemu {
            bench::note(&format!("bench: {}: QEMU, traced (exits)", w.label));
            match bench::run_qemu(&args.qemu, w, host, true, timeout) {
                Ok(r) => q_exits = Some(r),
                Err(e) => {
                    eprintln!("bench: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        // Alternate the VMMs so that load changes on the machine hit both.
        for i in 0..repeat {
            bench::note(&format!(
                "bench: {}: mini VMM ({}/{repeat})",
                w.label,
                i + 1
            ));
            match bench::run_ours(w, timeout) {
                Ok(r) => ours_runs.push(r),
                Err(e) => {
                    eprintln!("bench: {e}");
                    return ExitCode::FAILURE;
                }
            }
            if with_qemu {
                bench::note(&format!("bench: {}: QEMU ({}/{repeat})", w.label, i + 1));
                match bench::run_qemu(&args.qemu, w, host, false, timeout) {
                    Ok(r) => q_runs.push(r),
                    Err(e) => {
                        eprintln!("bench: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
        }
        let Some((ours, unstable)) = bench::merge_median(ours_runs) else {
            return ExitCode::FAILURE;
        };
        if !unstable.is_empty() {
            eprintln!(
                "bench: {}: exits differed between boots of the mini VMM for {}",
                w.label,
                unstable.join(", ")
            );
        }
        let q_time = bench::merge_median(q_runs).map(|(r, _)| r);
        walls.push(serde_json::json!({
            "workload": w.label,
            "ours_ms": ours.wall_ms,
            "qemu_traced_ms": q_exits.as_ref().map(|r| r.wall_ms),
            "qemu_ms": q_time.as_ref().map(|r| r.wall_ms),
        }));
        rows.extend(bench::rows(w, &ours, q_exits.as_ref(), q_time.as_ref()));
    }

    let out = serde_json::json!({
        "tsc_hz": tsc_hz,
        "host_phys_bits": host,
        "cmdline": bench::cmdline(),
        "repeat": args.repeat.max(1),
        "boots": walls,
        "rows": rows,
    });
    let json = match serde_json::to_string_pretty(&out) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = &args.json_out {
        if let Err(e) = std::fs::write(path, &json) {
            eprintln!("bench: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if args.json {
        println!("{json}");
    } else {
        print!("{}", bench::render(&rows, tsc_hz));
        println!();
        println!(
            "exits: exact VM exits of each phase (mini VMM: its counters; QEMU: a traced run). \
             time: guest rdtsc at {:.0} MHz, comparable only between the two VMMs of this run; \
             ratio = mini VMM / QEMU.",
            tsc_hz / 1e6
        );
        for b in &walls {
            println!("boot wall time: {b}");
        }
    }
    ExitCode::SUCCESS
}
