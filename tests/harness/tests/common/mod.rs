// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Shared helpers of the integration tests.

#![allow(dead_code)]

use fw_cfg_guest::policy::{ChannelInputs, FileState, decide_all};
use fw_cfg_tests::firmware::{Decisions, ResultLine, parse_hint, parse_vendor};
use fw_cfg_tests::inproc;

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

/// Recomputes the decisions on the host from what the guest reported
/// (CPUID values and the raw file bytes), with the same policy code.
pub fn host_decisions(cpuid: &ResultLine, fw_cfg: &ResultLine) -> Decisions {
    let c = cpuid.cpuid.as_ref().expect("cpuid line has a cpuid object");
    let f = fw_cfg.file.as_ref().expect("fw_cfg line has a file object");
    let file = match f.state.as_str() {
        "absent" => FileState::Absent,
        "present" | "corrupt" => FileState::from_bytes(&f.bytes),
        other => panic!("unexpected file state {other}"),
    };
    let inputs = ChannelInputs {
        hint: parse_hint(&c.hint),
        has_address_sizes: c.has_address_sizes,
        phys_bits: c.phys_bits,
        guest_phys_bits: c.guest_phys_bits,
        // The heuristic compares CPUID 0x80000000's signature, as OVMF does.
        ext_vendor: c.ext_vendor.as_deref().map(parse_vendor),
        file,
        five_level_paging: false,
        gb_pages: c.gb_pages,
    };
    inproc::decisions(&decide_all(&inputs))
}
