// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `compare`: runs the configuration matrix (host-phys-bits on/off x hint
//! on/off x file absent/stated/corrupt/conflicting), each configuration
//! booted as a KVM guest with the test firmware, and prints what each
//! channel said, each policy mode's decision, and the VM exits and guest
//! cycles per channel and transport. Without `/dev/kvm` it runs the same
//! matrix in process and says so on its first line. `--peers` adds the
//! same firmware under QEMU beside the mini VMM.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use fw_cfg_tests::matrix::{self, Engine};
use fw_cfg_tests::{peers, table};

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
    /// Print the path of the PVH test firmware this package built (for
    /// `fw-cfg-vmm --kernel`, or `FW_CFG_TEST_FIRMWARE`) and exit.
    #[arg(long)]
    firmware_path: bool,
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
    let engine = if args.in_process {
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
    };
    let outcomes = match matrix::run_matrix(engine, Duration::from_secs(args.timeout)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("compare: {}", fw_cfg_tests::vmm::error_chain(&e));
            return ExitCode::FAILURE;
        }
    };
    if args.json {
        match serde_json::to_string_pretty(&outcomes) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("compare: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        let host = outcomes.first().map(|o| o.host_phys_bits).unwrap_or(0);
        print!("{}", table::render(&outcomes));
        println!();
        print!("{}", table::legend(engine, host));
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

/// `--situations`: the table or its JSON.
fn situations(args: &Args) -> ExitCode {
    let rows = match fw_cfg_tests::situations::run_all() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("compare: {}", fw_cfg_tests::vmm::error_chain(&e));
            return ExitCode::FAILURE;
        }
    };
    if args.json {
        match serde_json::to_string_pretty(&rows) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("compare: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", fw_cfg_tests::situations::render(&rows, args.wide));
    }
    ExitCode::SUCCESS
}
