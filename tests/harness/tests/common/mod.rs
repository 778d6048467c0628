// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Shared helpers of the integration tests.

#![allow(dead_code)]

use fw_cfg_guest::policy::{ChannelInputs, decide_all};
use fw_cfg_protocol::modes::ModeAnswers;
use fw_cfg_protocol::{Decisions, ResultLine};

/// Whether the KVM tests can run. Without `/dev/kvm` they fail, unless
/// `FW_CFG_ALLOW_SKIP=1` says the caller accepts that they prove nothing.
pub fn require_kvm() -> bool {
    if fw_cfg_tests::matrix::kvm_available() {
        return true;
    }
    if std::env::var("FW_CFG_ALLOW_SKIP").as_deref() == Ok("1") {
        eprintln!(
            "/dev/kvm is not usable; FW_CFG_ALLOW_SKIP=1 is set, so this KVM test passes \
             without running anything"
        );
        return false;
    }
    panic!(
        "/dev/kvm is not usable: this test boots a KVM guest. Give the user access to \
         /dev/kvm, or set FW_CFG_ALLOW_SKIP=1 to accept that KVM tests prove nothing here"
    );
}

/// The policy inputs the guest reported (CPUID values, the raw file
/// bytes and the memory map's top).
pub fn host_inputs(cpuid: &ResultLine, fw_cfg: &ResultLine) -> ChannelInputs {
    let c = cpuid.cpuid.as_ref().expect("cpuid line has a cpuid object");
    let f = fw_cfg.file.as_ref().expect("fw_cfg line has a file object");
    let file = f
        .state_from_bytes()
        .unwrap_or_else(|| panic!("unexpected file state {}", f.state));
    // The heuristic compares CPUID 0x80000000's signature, as OVMF does
    // (`CpuidLine::inputs` takes `ext_vendor`); the memory map's top is the
    // one the firmware read and reported on its CPUID line.
    let top = cpuid.memory_top.unwrap_or(0);
    c.inputs(file).with_memory_top(top)
}

/// Recomputes the decisions on the host from what the guest reported,
/// with the same policy code.
pub fn host_decisions(cpuid: &ResultLine, fw_cfg: &ResultLine) -> Decisions {
    Decisions::from(&decide_all(&host_inputs(cpuid, fw_cfg)))
}

/// Recomputes every mode's answer on the host from what the guest
/// reported, with the same code (no BARs, as the firmware).
pub fn host_modes(cpuid: &ResultLine, fw_cfg: &ResultLine) -> ModeAnswers {
    let c = cpuid.cpuid.as_ref().expect("cpuid line has a cpuid object");
    ModeAnswers::compute(&host_inputs(cpuid, fw_cfg), &c.seabios_cpu(), &mut [])
}
