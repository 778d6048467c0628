// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The nesting chain, riding on a lab boot of a 39-bit outer vCPU: the
//! outer QEMU serves `etc/phys-bits-valid` ("valid, 39"), the outer Linux
//! exposes it in sysfs, and three inner `fw-cfg-vmm --host-phys-bits
//! --phys-bits-from-outer` guests state only what was vouched: the sysfs
//! file (39), a file saying "not valid, 38 is backed" (38), and none (no
//! channel at all).

use fw_cfg_device::abi::{PHYS_BITS_FILE_NAME, PhysBitsFile};
use fw_cfg_protocol::{DecidedBy, Transport};
use fw_cfg_tests::lab::build::LabTools;
use fw_cfg_tests::lab::firmware::{self, FIRMWARE_FILE, GUEST_TIMEOUT, VMM_FILE, vmm_args};
use fw_cfg_tests::lab::{Lab, LabError, LabRun, inner_path};
use fw_cfg_tests::matrix::FileCase;
use fw_cfg_tests::peers::side_by_side::{PeerConfig, Width, bulk_contents};

/// The outer vCPU's MAXPHYADDR this module expects.
pub const OUTER_BITS: u8 = 39;

/// (guest, `--phys-bits-from-outer` path, CPUID width, strict width, by)
const GUESTS: [(&str, Option<&str>, u8, u8, DecidedBy); 3] = [
    ("nest-sysfs", None, 39, 39, DecidedBy::FwCfgFile),
    (
        "nest-backed",
        Some("nest/backed"),
        38,
        38,
        DecidedBy::FwCfgFile,
    ),
    (
        "nest-absent",
        Some("nest/none"),
        39,
        36,
        DecidedBy::ConservativeDefault,
    ),
];

/// Adds the outer file, the inner guests and a sysfs dump to `lab`.
pub fn add(lab: Lab, tools: &LabTools) -> Result<Lab, LabError> {
    let outer = PhysBitsFile::new(true, OUTER_BITS, 0).with_backed_bits(OUTER_BITS);
    let backed = PhysBitsFile::new(false, OUTER_BITS, 0).with_backed_bits(38);
    let mut lab = lab
        .outer_fw_cfg(PHYS_BITS_FILE_NAME, outer.to_bytes().to_vec())?
        .file("nest/backed", backed.to_bytes().to_vec(), false)?
        .file("nest/bulk", bulk_contents(), false)?
        .copy(VMM_FILE, &tools.vmm)?
        .copy(FIRMWARE_FILE, &tools.firmware)?
        .script("od -An -tx1 /sys/firmware/qemu_fw_cfg/by_name/etc/phys-bits-valid/raw");
    // The file channel only (QEMU's microvm configuration: no hint).
    let config = PeerConfig::microvm(Width::Host, FileCase::Stated);
    let base = vmm_args(
        &config,
        &inner_path(FIRMWARE_FILE),
        None,
        &inner_path("nest/bulk"),
    );
    for (name, path, ..) in GUESTS {
        let argv = std::iter::once(inner_path(VMM_FILE))
            .chain(base.iter().cloned())
            .chain(std::iter::once("--phys-bits-from-outer".to_string()))
            .chain(path.map(inner_path));
        lab = lab.guest(name, argv, GUEST_TIMEOUT)?;
    }
    Ok(lab)
}

/// Checks what the inner guests decided.
pub fn check(run: &LabRun) {
    assert!(
        run.output.contains("02 01 27 00 27 00 00 00"),
        "the outer file in sysfs\n{}\n{}",
        run.output,
        run.console
    );
    for (name, _, cpuid_bits, width, by) in GUESTS {
        let g = run
            .guests
            .keys()
            .find(|n| n.as_str() == name)
            .unwrap_or_else(|| panic!("no guest {name}"));
        let report = firmware::report(run, g).unwrap_or_else(|e| panic!("{name}: {e}"));
        let cpuid = report.results[&Transport::Cpuid]
            .cpuid
            .as_ref()
            .expect("a cpuid object");
        assert_eq!(cpuid.phys_bits, cpuid_bits, "{name}: advertised width");
        let strict = report.results[&Transport::Pio]
            .decisions
            .expect("decisions")
            .strict;
        assert_eq!((strict.phys_bits, strict.decided_by), (width, by), "{name}");
    }
}
