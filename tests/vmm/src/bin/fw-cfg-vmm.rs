// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `fw-cfg-vmm`: boots a PVH ELF kernel or firmware, or a Linux bzImage
//! (64-bit boot protocol, with ACPI tables describing fw_cfg as QEMU does),
//! under the mini VMM, with the fw_cfg device and the phys-bits channels. Flags follow QEMU's
//! names where QEMU has them. Serial output goes to stdout; the exit status
//! is QEMU's: `(value << 1) | 1` after a write of `value` to the debug-exit
//! port 0xf4, 0 after `hlt`, 124 on timeout, 2 on a VMM error (bad
//! arguments included), 4 after a triple fault or a shutdown the VMM
//! did not ask for, and 32 after saving a snapshot (`--snapshot FILE`: at
//! SIGUSR1, or after `--snapshot-after-accesses N` fw_cfg accesses).
//! `--restore FILE`, with the same configuration flags, resumes such a
//! snapshot (PVH guests only).
//!
//! `--cpus N` starts N vCPUs, each on a thread of its own (PVH images
//! only; the application processors follow the AP contract of
//! `fw_cfg_vmm::cpu`).
//!
//! Without `--kernel` it boots the image named by the environment variable
//! `FW_CFG_TEST_FIRMWARE` (the project's PVH test firmware; the harness's
//! `compare --firmware-path` prints where it was built). With `--bios ROM`
//! it starts ROM at the reset vector instead (QEMU's `-bios`), alone or
//! with `--kernel` handed to it through fw_cfg; `--debugcon` logs what the
//! firmware writes to its debug port.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgAction, Parser, ValueEnum};
use fw_cfg_device::cmdline::{FwCfgOption, parse_fw_cfg_option};
use fw_cfg_device::phys_bits::{
    HostAddressSizes, LEGACY_DEFAULT_PHYS_BITS, MIN_EXPLICIT_PHYS_BITS,
};
use fw_cfg_vmm::bios::{BiosSetup, DEFAULT_OPTION_ROM};
use fw_cfg_vmm::cpu::MAX_VCPUS;
use fw_cfg_vmm::debugcon::{DebugconSetup, DebugconSink};
use fw_cfg_vmm::fw_cfg::{FwCfgSetup, PhysBitsSetup};
use fw_cfg_vmm::hook::PhaseMarker;
use fw_cfg_vmm::layout::DEFAULT_MEMORY_MIB;
use fw_cfg_vmm::report::RunReport;
use fw_cfg_vmm::snapshot::SnapshotRequest;
use fw_cfg_vmm::{ExitReason, RunOutcome, Vm, VmConfig, error_chain};

/// Names the kernel booted without `--kernel`.
const DEFAULT_KERNEL_ENV: &str = "FW_CFG_TEST_FIRMWARE";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OnOff {
    On,
    Off,
}

impl OnOff {
    fn on(self) -> bool {
        self == OnOff::On
    }
}

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Mini KVM VMM with the fw_cfg device and the phys-bits channels"
)]
struct Args {
    /// PVH ELF kernel or firmware, or a Linux bzImage (default: the test
    /// firmware named by `FW_CFG_TEST_FIRMWARE`).
    #[arg(long)]
    kernel: Option<PathBuf>,
    /// Initrd (the first PVH module, or the bzImage's initramfs).
    #[arg(long)]
    initrd: Option<PathBuf>,
    /// Kernel command line.
    #[arg(long, default_value = "")]
    cmdline: String,
    /// Guest memory in MiB (sparse: untouched memory costs nothing); its
    /// top, with RAM above 3 GiB at 4 GiB, must lie within the stated
    /// physical address width.
    #[arg(long, default_value_t = DEFAULT_MEMORY_MIB)]
    memory: u64,
    /// vCPUs, each on a thread of its own (1 to 64; more than one for PVH
    /// images only, which start the others as the VMM's AP contract says).
    #[arg(long, default_value_t = 1, value_parser = parse_cpus)]
    cpus: u16,
    /// fw_cfg item, QEMU syntax: `name=NAME,file=PATH` or
    /// `name=NAME,string=STR` (repeatable).
    #[arg(long = "fw-cfg", action = ArgAction::Append)]
    fw_cfg: Vec<String>,
    /// Physical address width advertised in CPUID (QEMU's `phys-bits`,
    /// 32 to 52).
    #[arg(long, value_parser = parse_phys_bits)]
    phys_bits: Option<u8>,
    /// Advertise the host's width (QEMU's `host-phys-bits=on`).
    #[arg(long)]
    host_phys_bits: bool,
    /// Guest-physical width (CPUID 0x80000008 EAX bits 23..16); 0 for none.
    /// Without it, KVM's guest width is passed on as QEMU 9.1+ does (none
    /// with the legacy default, else capped at the advertised width).
    #[arg(long)]
    guest_phys_bits: Option<u8>,
    /// The CPUID hint channel (KVM features leaf EDX bit 1).
    #[arg(long, value_enum, default_value = "on")]
    phys_bits_hint: OnOff,
    /// The `etc/phys-bits-valid` fw_cfg file channel.
    #[arg(long, value_enum, default_value = "on")]
    phys_bits_file: OnOff,
    /// Do not register the fw_cfg MMIO window.
    #[arg(long)]
    no_fw_cfg_mmio: bool,
    /// Print VM-exit counters on stderr at the end.
    #[arg(long)]
    stats: bool,
    /// Write why the guest stopped and every exit counter to FILE as JSON
    /// (`fw_cfg_vmm::report::RunReport`), also after a timeout.
    #[arg(long, value_name = "FILE")]
    stats_json: Option<PathBuf>,
    /// Count exits per phase: the guest announces a phase by writing its
    /// 32-bit id to this I/O port (the test firmware uses 0x600); those
    /// writes go neither to a device nor into the counters.
    #[arg(long, value_parser = parse_port)]
    phase_port: Option<u16>,
    /// Running inside a VM: state only what the outer VMM vouched for in
    /// its etc/phys-bits-valid, read from PATH (default: Linux's
    /// qemu_fw_cfg sysfs file; a missing file means the outer VMM said
    /// nothing).
    #[arg(long, value_name = "PATH", num_args = 0..=1,
          default_missing_value = fw_cfg_device::nested::OUTER_FILE_SYSFS)]
    phys_bits_from_outer: Option<PathBuf>,
    /// Stop the guest after this many seconds (0: never).
    #[arg(long, default_value_t = 0)]
    timeout: u64,
    /// Save a snapshot of the running guest into this file at SIGUSR1
    /// (or after `--snapshot-after-accesses`), then exit with status 32.
    #[arg(long, value_name = "FILE")]
    snapshot: Option<PathBuf>,
    /// Save the snapshot after this many fw_cfg accesses (VM exits to the
    /// fw_cfg ports or MMIO window).
    #[arg(long, value_name = "N", requires = "snapshot")]
    snapshot_after_accesses: Option<u64>,
    /// Resume the snapshot in this file, taken with the same configuration
    /// flags.
    #[arg(long, value_name = "FILE")]
    restore: Option<PathBuf>,
    /// Start at the reset vector of this firmware ROM (QEMU's `-bios`);
    /// `--kernel`, `--initrd` and `--cmdline` then go to the firmware
    /// through fw_cfg.
    #[arg(long)]
    bios: Option<PathBuf>,
    /// The option ROM that boots `--kernel` under `--bios`.
    #[arg(long, default_value = DEFAULT_OPTION_ROM)]
    option_rom: PathBuf,
    /// Debug console output (QEMU's `-debugcon`): a file, or `stderr`.
    #[arg(long)]
    debugcon: Option<PathBuf>,
    /// The debug console's port (SeaBIOS logs to 0x402; QEMU's
    /// isa-debugcon defaults to 0xe9).
    #[arg(long, value_parser = parse_port, default_value = "0x402")]
    debugcon_port: u16,
}

/// The widest `--phys-bits` QEMU accepts on x86-64
/// (`TARGET_PHYS_ADDR_SPACE_BITS`).
const PHYS_BITS_MAX: u8 = 52;
/// The narrowest `--phys-bits` (and non-zero `--guest-phys-bits`) QEMU
/// accepts.
const PHYS_BITS_MIN: u8 = MIN_EXPLICIT_PHYS_BITS;

/// `--phys-bits`, refused outside 32..=52 as QEMU's x86 CPU realize
/// refuses it.
fn parse_phys_bits(s: &str) -> Result<u8, String> {
    let bits: u8 = s.parse().map_err(|e| format!("{s}: {e}"))?;
    if (PHYS_BITS_MIN..=PHYS_BITS_MAX).contains(&bits) {
        Ok(bits)
    } else {
        Err(format!(
            "phys-bits should be between {PHYS_BITS_MIN} and {PHYS_BITS_MAX} (but is {bits})"
        ))
    }
}

/// `--cpus`, refused outside 1..=[`MAX_VCPUS`].
fn parse_cpus(s: &str) -> Result<u16, String> {
    let cpus: u16 = s.parse().map_err(|e| format!("{s}: {e}"))?;
    if (1..=MAX_VCPUS).contains(&cpus) {
        Ok(cpus)
    } else {
        Err(format!(
            "cpus should be between 1 and {MAX_VCPUS} (but is {cpus})"
        ))
    }
}

/// QEMU's check of `--guest-phys-bits`: 0 (none), or 32 up to the
/// advertised width (`--phys-bits`, else the legacy default of 40; with
/// `--host-phys-bits` the host's width, unknown here, so only the widest
/// QEMU accepts is checked).
fn check_guest_phys_bits(args: &Args) -> Result<(), String> {
    let Some(guest) = args.guest_phys_bits.filter(|&g| g != 0) else {
        return Ok(());
    };
    let max = match (args.host_phys_bits, args.phys_bits) {
        (true, _) => PHYS_BITS_MAX,
        (false, Some(n)) => n,
        (false, None) => LEGACY_DEFAULT_PHYS_BITS,
    };
    if (PHYS_BITS_MIN..=max).contains(&guest) {
        Ok(())
    } else {
        Err(format!(
            "guest-phys-bits should be between {PHYS_BITS_MIN} and {max} (but is {guest})"
        ))
    }
}

/// The `--fw-cfg` items, warnings printed; the first invalid one is an
/// error message.
fn fw_cfg_options(specs: &[String]) -> Result<Vec<FwCfgOption>, String> {
    let mut options = Vec::new();
    for spec in specs {
        let o = parse_fw_cfg_option(spec).map_err(|e| format!("--fw-cfg {spec}: {e}"))?;
        for w in o.warnings() {
            eprintln!("fw-cfg-vmm: warning: {w}");
        }
        options.push(o);
    }
    Ok(options)
}

/// A port number, decimal or `0x` hexadecimal.
fn parse_port(s: &str) -> Result<u16, String> {
    let parsed = match s.strip_prefix("0x") {
        Some(hex) => u16::from_str_radix(hex, 16),
        None => s.parse(),
    };
    parsed.map_err(|e| format!("{s}: {e}"))
}

/// The VM configuration `args` describe.
fn config(args: &Args) -> Result<VmConfig, String> {
    check_guest_phys_bits(args)?;
    let options = fw_cfg_options(&args.fw_cfg)?;
    let kernel = match (
        &args.kernel,
        &args.bios,
        std::env::var_os(DEFAULT_KERNEL_ENV),
    ) {
        (Some(k), _, _) => k.clone(),
        // The firmware alone.
        (None, Some(_), _) => PathBuf::new(),
        (None, None, Some(k)) => PathBuf::from(k),
        (None, None, None) => {
            return Err(format!("no --kernel given and {DEFAULT_KERNEL_ENV} unset"));
        }
    };
    let mut config = VmConfig::new(kernel);
    config.bios = args.bios.as_ref().map(|rom| BiosSetup {
        rom: rom.clone(),
        option_rom: args.option_rom.clone(),
        load_kernel: args.kernel.is_some(),
    });
    config.debugcon = args.debugcon.as_ref().map(|d| DebugconSetup {
        port: args.debugcon_port,
        sink: if d.as_os_str() == "stderr" {
            DebugconSink::Stderr
        } else {
            DebugconSink::File(d.clone())
        },
    });
    config.initrd = args.initrd.clone();
    config.cmdline = args.cmdline.clone();
    config.memory_mib = args.memory;
    config.timeout = (args.timeout > 0).then(|| Duration::from_secs(args.timeout));
    config.fw_cfg = FwCfgSetup {
        mmio: !args.no_fw_cfg_mmio,
        cpus: args.cpus,
        options,
        phys_bits: PhysBitsSetup {
            host_phys_bits: args.host_phys_bits,
            phys_bits: args.phys_bits,
            guest_phys_bits: args.guest_phys_bits,
            hint: args.phys_bits_hint.on(),
            file: args.phys_bits_file.on(),
            host_override: None,
        },
        ..FwCfgSetup::default()
    };
    if let Some(path) = &args.phys_bits_from_outer {
        from_outer(&mut config.fw_cfg.phys_bits, path)?;
    }
    Ok(config)
}

/// `--phys-bits-from-outer` (`fw_cfg_vmm::nesting`).
fn from_outer(setup: &mut PhysBitsSetup, path: &std::path::Path) -> Result<(), String> {
    let outer = fw_cfg_device::nested::read_outer_statement(path).map_err(|e| error_chain(&e))?;
    let kvm = kvm_ioctls::Kvm::new().map_err(|e| format!("cannot open /dev/kvm: {e}"))?;
    let l1_kvm = HostAddressSizes::from_kvm(&kvm).map_err(|e| error_chain(&e))?;
    let l1_cpuid = HostAddressSizes::own_cpuid().ok_or("this CPU has no CPUID 0x80000008")?;
    fw_cfg_vmm::nesting::apply_outer(setup, l1_kvm, l1_cpuid, &outer);
    Ok(())
}

/// The exit status for `outcome`, QEMU's.
fn exit_code(outcome: &RunOutcome, stats: bool) -> ExitCode {
    if stats {
        eprintln!("fw-cfg-vmm: {:?}", outcome.reason);
        eprint!("{}", outcome.stats);
    }
    if outcome.reason == ExitReason::Shutdown {
        eprintln!("fw-cfg-vmm: the guest triple-faulted or shut down without being asked to");
    }
    match outcome.reason.status() {
        Some(status) => ExitCode::from(u8::try_from(status & 0xff).unwrap_or(u8::MAX)),
        None => {
            // One line: where each vCPU was (`fw_cfg_vmm::regs`).
            let at: String = outcome.stuck.iter().map(|r| format!("; {r}")).collect();
            eprintln!("fw-cfg-vmm: timeout{at}");
            ExitCode::from(124)
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fw-cfg-vmm: {e}");
            return ExitCode::from(2);
        }
    };
    let run = Vm::new(&config).and_then(|mut vm| {
        if let Some(port) = args.phase_port {
            vm.set_exit_hook(Box::new(PhaseMarker::new(port)));
        }
        if let Some(path) = &args.restore {
            vm.restore(path)?;
        }
        if let Some(path) = &args.snapshot {
            vm.snapshot_on(SnapshotRequest {
                path: path.clone(),
                after_accesses: args.snapshot_after_accesses,
            })?;
        }
        vm.run(config.timeout)
    });
    match run {
        Ok(outcome) => {
            if let Some(path) = &args.stats_json {
                if let Err(e) = RunReport::from(&outcome).write(path) {
                    eprintln!("fw-cfg-vmm: {}", error_chain(&e));
                    return ExitCode::from(2);
                }
            }
            exit_code(&outcome, args.stats)
        }
        Err(e) => {
            eprintln!("fw-cfg-vmm: {}", error_chain(&e));
            ExitCode::from(2)
        }
    }
}
