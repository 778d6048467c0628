// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `compare`: runs the configuration matrix (host-phys-bits on/off x hint
//! on/off x file absent/stated/corrupt/conflicting), each configuration
//! booted as a KVM guest with the test firmware, and prints what each
//! channel said, each policy mode's decision, and the VM exits and guest
//! cycles per channel and transport. Without `/dev/kvm` it runs the same
//! matrix in process and says so on its first line. `--peers` adds the
//! same firmware under QEMU beside the mini VMM; `--lab` the nested KVM
//! lab's matrix and Linux guests (`fw_cfg_tests::lab::compare`);
//! `--situations --lab` the situations' rows on real KVM hosts of their
//! widths in the lab (`fw_cfg_tests::lab::situations`).

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use fw_cfg_tests::lab::compare::LabReport;
use fw_cfg_tests::lab::measure::MeasureError;
use fw_cfg_tests::lab::situations::LabSituation;
use fw_cfg_tests::matrix::{self, Engine, Outcome};
use fw_cfg_tests::situations::SituationOutcome;
use fw_cfg_tests::{peers, table};
use serde::Serialize;

#[derive(Parser, Debug)]
#[command(version, about = "Compare the CPUID and fw_cfg phys-bits channels")]
struct Args {
    /// Print JSON (one array of outcomes) instead of the table.
    #[arg(long)]
    json: bool,
    /// Run in process even when /dev/kvm is available.
    #[arg(long)]
    in_process: bool,
    /// Per-guest timeout in seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// After the matrix, boot the same firmware under QEMU for every
    /// configuration QEMU can express and print both VMMs side by side.
    #[arg(long)]
    peers: bool,
    /// Print the situations table instead (every firmware rule and policy
    /// mode on the situations users have hit; in process, fast).
    #[arg(long)]
    situations: bool,
    /// With `--situations`: add each row's users, widths and windows.
    #[arg(long)]
    wide: bool,
    /// Also run the matrix and a Linux guest in the nested KVM lab (real
    /// SVM inside QEMU's TCG), under fw-cfg-vmm and QEMU microvm, and
    /// show them beside the matrix (progress on stderr). With
    /// `--situations`: boot each row that needs a simulated host on a real
    /// KVM host of its width in the lab, and show what it confirmed.
    #[arg(long)]
    lab: bool,
    /// Linux boots per VMM in the lab (alternated; times are medians).
    #[arg(long, default_value_t = 1)]
    lab_repeat: usize,
    /// The lab's outer MAXPHYADDR (the inner KVM host's width).
    #[arg(long, default_value_t = 48, value_parser = clap::value_parser!(u8).range(36..=52))]
    lab_phys_bits: u8,
    /// Print the path of the PVH test firmware this package built (for
    /// `fw-cfg-vmm --kernel`, or `FW_CFG_TEST_FIRMWARE`) and exit.
    #[arg(long)]
    firmware_path: bool,
}

/// The lab section, with a generous limit for its outer boot.
fn run_lab(args: &Args) -> Result<LabReport, MeasureError> {
    let repeat = args.lab_repeat.max(1) as u64;
    let timeout = Duration::from_secs(600 + (2 * repeat + 1) * 240);
    eprintln!("compare: nested lab (one outer boot; several minutes)…");
    fw_cfg_tests::lab::compare::run(args.lab_phys_bits, args.lab_repeat.max(1), timeout)
}

/// Runs the lab part when `wanted`; its error is one line on stderr and a
/// failing exit code.
fn lab_if<T, E: std::error::Error>(
    wanted: bool,
    run: impl FnOnce() -> Result<T, E>,
) -> Result<Option<T>, ExitCode> {
    if !wanted {
        return Ok(None);
    }
    run().map(Some).map_err(|e| {
        eprintln!("compare: lab: {}", fw_cfg_tests::vmm::error_chain(&e));
        ExitCode::FAILURE
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.firmware_path {
        println!("{}", fw_cfg_tests::firmware::path().display());
        return ExitCode::SUCCESS;
    }
    if args.situations {
        return situations(&args);
    }
    let engine = engine(&args);
    let outcomes = match matrix::run_matrix(engine, Duration::from_secs(args.timeout)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("compare: {}", fw_cfg_tests::vmm::error_chain(&e));
            return ExitCode::FAILURE;
        }
    };
    let lab = match lab_if(args.lab, || run_lab(&args)) {
        Ok(lab) => lab,
        Err(code) => return code,
    };
    if let Err(e) = print_report(&args, engine, &outcomes, lab.as_ref()) {
        eprintln!("compare: {e}");
        return ExitCode::FAILURE;
    }
    if lab.as_ref().is_some_and(|l| !l.agrees()) {
        eprintln!("compare: the lab's matrix differs from this machine's or QEMU's (see above)");
        return ExitCode::FAILURE;
    }
    if args.peers {
        println!();
        match peers::side_by_side::peer_report(Duration::from_secs(args.timeout)) {
            Ok(text) => print!("{text}"),
            Err(text) => {
                print!("{text}");
                eprintln!("compare: QEMU and the mini VMM disagree (see the table above)");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

/// The engine `args` ask for, or the in-process run when /dev/kvm is
/// missing (said on stdout).
fn engine(args: &Args) -> Engine {
    if args.in_process {
        println!("in-process run (requested): guest reader against the device through IoManager");
        Engine::InProcess
    } else if matrix::kvm_available() {
        Engine::Kvm
    } else {
        println!(
            "/dev/kvm is not available: running the matrix in process \
             (guest reader against the device through IoManager), no VM exits or guest cycles"
        );
        Engine::InProcess
    }
}

/// `compare --json --lab`: the matrix and the lab section.
#[derive(Serialize)]
struct WithLab<'a> {
    matrix: &'a [Outcome],
    lab: &'a LabReport,
}

/// Prints the matrix (and the lab section) as tables or, with `--json`,
/// as JSON.
fn print_report(
    args: &Args,
    engine: Engine,
    outcomes: &[Outcome],
    lab: Option<&LabReport>,
) -> Result<(), serde_json::Error> {
    if args.json {
        let json = match lab {
            Some(lab) => serde_json::to_string_pretty(&WithLab {
                matrix: outcomes,
                lab,
            })?,
            None => serde_json::to_string_pretty(&outcomes)?,
        };
        println!("{json}");
    } else {
        let host = outcomes.first().map(|o| o.host_phys_bits).unwrap_or(0);
        print!("{}", table::render(outcomes));
        println!();
        print!("{}", table::legend(engine, host));
        if let Some(lab) = lab {
            println!();
            print!("{}", fw_cfg_tests::lab::compare::render(lab));
        }
    }
    Ok(())
}

/// `compare --situations --json --lab`: the table and the lab's rows.
#[derive(Serialize)]
struct SituationsWithLab<'a> {
    situations: &'a [SituationOutcome],
    lab: &'a [LabSituation],
}

/// `--situations`: the table or its JSON (with `--lab`, the lab's rows).
fn situations(args: &Args) -> ExitCode {
    let rows = match fw_cfg_tests::situations::run_all() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("compare: {}", fw_cfg_tests::vmm::error_chain(&e));
            return ExitCode::FAILURE;
        }
    };
    let lab = match lab_if(args.lab, || {
        eprintln!("compare: nested lab, one outer boot per host width (a few minutes)…");
        fw_cfg_tests::lab::situations::run_all()
    }) {
        Ok(lab) => lab,
        Err(code) => return code,
    };
    if args.json {
        let json = match &lab {
            Some(lab) => serde_json::to_string_pretty(&SituationsWithLab {
                situations: &rows,
                lab,
            }),
            None => serde_json::to_string_pretty(&rows),
        };
        match json {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("compare: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", fw_cfg_tests::situations::render(&rows, args.wide));
        if let Some(lab) = &lab {
            print!("{}", fw_cfg_tests::lab::situations::render(lab));
        }
    }
    if lab.iter().flatten().any(|r| !r.differences().is_empty()) {
        eprintln!("compare: the lab's rows differ from their simulation (see above)");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
