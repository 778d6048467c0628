// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! What a guest's CPU shows beyond KVM's supported CPUID, as QEMU (and
//! Firecracker, Cloud Hypervisor) give it:
//!
//! - the processor brand string, CPUID 0x80000002..=0x80000004: KVM's
//!   `KVM_GET_SUPPORTED_CPUID` reports these leaves zeroed, and QEMU's
//!   `-cpu host` copies the host's own ([`copy_host_brand_string`]);
//!   without it Linux names the CPU `AMD 06/06` instead of its model;
//! - the TSC-deadline timer, CPUID 1 ECX bit 24: KVM emulates it in its
//!   in-kernel local APIC but does not report it as supported, and QEMU
//!   and Firecracker set it when KVM has `KVM_CAP_TSC_DEADLINE_TIMER` and
//!   the VM has an in-kernel irqchip ([`set_tsc_deadline`]); Linux then
//!   uses it for its local timer (`TSC deadline timer available`);
//! - the MTRR default type, MSR `IA32_MTRR_DEF_TYPE`: with no firmware to
//!   program the MTRRs, Linux finds them all blank, disables PAT
//!   (`x86/PAT: MTRRs disabled, skipping PAT initialization too`) and maps
//!   write-combining as uncached; Firecracker and Cloud Hypervisor enable
//!   the MTRRs with write-back as default ([`MTRR_DEF_TYPE_ENABLED_WB`],
//!   [`set_boot_msrs`]), which is what a BIOS leaves for RAM.

use kvm_bindings::{CpuId, Msrs, kvm_cpuid_entry2, kvm_msr_entry};
use kvm_ioctls::{Cap, Kvm, VcpuFd};

use crate::Error;

/// The brand-string leaves.
pub const BRAND_LEAVES: [u32; 3] = [0x8000_0002, 0x8000_0003, 0x8000_0004];
/// CPUID 1 ECX: TSC-deadline mode of the local APIC timer.
pub const CPUID_1_ECX_TSC_DEADLINE: u32 = 1 << 24;
/// `IA32_MTRR_DEF_TYPE`.
pub const MSR_MTRR_DEF_TYPE: u32 = 0x2ff;
/// `IA32_MTRR_DEF_TYPE` with the MTRRs enabled (bit 11) and write-back
/// (type 6) as the default memory type; fixed-range MTRRs off.
pub const MTRR_DEF_TYPE_ENABLED_WB: u64 = (1 << 11) | 6;

/// The host CPU's brand string registers (EAX, EBX, ECX, EDX of each of
/// [`BRAND_LEAVES`]), from the `cpuid` instruction; `None` when the host
/// has no such leaves.
pub fn host_brand_string() -> Option<[[u32; 4]; 3]> {
    use std::arch::x86_64::__cpuid;
    // `cpuid` is unprivileged and has no side effects; every x86-64 CPU
    // has it, and leaf 0x80000000 names the highest extended leaf.
    if __cpuid(0x8000_0000).eax < BRAND_LEAVES[2] {
        return None;
    }
    Some(BRAND_LEAVES.map(|leaf| {
        let r = __cpuid(leaf);
        [r.eax, r.ebx, r.ecx, r.edx]
    }))
}

/// Puts `brand` (registers of [`BRAND_LEAVES`]) in `cpuid` where KVM left
/// those leaves zeroed or out, raising leaf 0x80000000's limit to reach
/// them; a brand KVM did report is kept.
pub fn put_brand_string(cpuid: &mut CpuId, brand: [[u32; 4]; 3]) -> Result<(), Error> {
    let reported = cpuid
        .as_slice()
        .iter()
        .any(|e| BRAND_LEAVES.contains(&e.function) && (e.eax | e.ebx | e.ecx | e.edx) != 0);
    if reported {
        return Ok(());
    }
    for (function, [eax, ebx, ecx, edx]) in BRAND_LEAVES.into_iter().zip(brand) {
        let entry = kvm_cpuid_entry2 {
            function,
            eax,
            ebx,
            ecx,
            edx,
            ..Default::default()
        };
        match cpuid
            .as_mut_slice()
            .iter_mut()
            .find(|e| e.function == function)
        {
            Some(e) => *e = entry,
            None => cpuid.push(entry).map_err(|_| Error::CpuidFull)?,
        }
    }
    for e in cpuid.as_mut_slice() {
        if e.function == 0x8000_0000 && e.eax < BRAND_LEAVES[2] {
            e.eax = BRAND_LEAVES[2];
        }
    }
    Ok(())
}

/// [`put_brand_string`] with the host's own brand ([`host_brand_string`]),
/// as QEMU's `-cpu host` does.
pub fn copy_host_brand_string(cpuid: &mut CpuId) -> Result<(), Error> {
    match host_brand_string() {
        Some(brand) => put_brand_string(cpuid, brand),
        None => Ok(()),
    }
}

/// Sets the TSC-deadline bit in CPUID leaf 1 when `available` (KVM has
/// `KVM_CAP_TSC_DEADLINE_TIMER` and the VM has an in-kernel irqchip);
/// clears it otherwise, since there is then no local APIC to have it.
pub fn set_tsc_deadline(cpuid: &mut CpuId, available: bool) {
    for e in cpuid.as_mut_slice() {
        if e.function == 1 {
            if available {
                e.ecx |= CPUID_1_ECX_TSC_DEADLINE;
            } else {
                e.ecx &= !CPUID_1_ECX_TSC_DEADLINE;
            }
        }
    }
}

/// Whether `kvm` emulates the TSC-deadline timer (in-kernel irqchip VMs).
pub fn kvm_has_tsc_deadline(kvm: &Kvm) -> bool {
    kvm.check_extension(Cap::TscDeadlineTimer)
}

/// The MSRs a Linux guest booted without firmware starts with:
/// `IA32_MTRR_DEF_TYPE` = [`MTRR_DEF_TYPE_ENABLED_WB`].
pub fn boot_msrs() -> Vec<kvm_msr_entry> {
    vec![kvm_msr_entry {
        index: MSR_MTRR_DEF_TYPE,
        data: MTRR_DEF_TYPE_ENABLED_WB,
        ..Default::default()
    }]
}

/// Writes [`boot_msrs`] into `vcpu`.
pub fn set_boot_msrs(vcpu: &VcpuFd) -> Result<(), Error> {
    let entries = boot_msrs();
    let msrs = Msrs::from_entries(&entries).map_err(|_| Error::MsrList(entries.len()))?;
    let written = vcpu.set_msrs(&msrs).map_err(Error::Vcpu)?;
    match entries.get(written) {
        Some(refused) => Err(Error::MsrRefused(refused.index)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(function: u32, eax: u32) -> kvm_cpuid_entry2 {
        kvm_cpuid_entry2 {
            function,
            eax,
            ..Default::default()
        }
    }

    fn regs(cpuid: &CpuId, function: u32) -> [u32; 4] {
        let e = cpuid
            .as_slice()
            .iter()
            .find(|e| e.function == function)
            .unwrap();
        [e.eax, e.ebx, e.ecx, e.edx]
    }

    const BRAND: [[u32; 4]; 3] = [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 0]];

    #[test]
    fn a_zeroed_brand_is_filled_and_the_limit_raised() {
        let mut cpuid = CpuId::from_entries(&[
            entry(0x8000_0000, 0x8000_0001),
            entry(0x8000_0002, 0),
            entry(0x8000_0008, 0x3030),
        ])
        .unwrap();
        put_brand_string(&mut cpuid, BRAND).unwrap();
        for (leaf, want) in BRAND_LEAVES.into_iter().zip(BRAND) {
            assert_eq!(regs(&cpuid, leaf), want);
        }
        assert_eq!(regs(&cpuid, 0x8000_0000)[0], 0x8000_0004);
        assert_eq!(regs(&cpuid, 0x8000_0008)[0], 0x3030);
        assert_eq!(cpuid.as_slice().len(), 5);
    }

    #[test]
    fn a_reported_brand_is_kept() {
        let mut cpuid = CpuId::from_entries(&[
            entry(0x8000_0000, 0x8000_0008),
            entry(0x8000_0002, 0x2044_4d41),
        ])
        .unwrap();
        put_brand_string(&mut cpuid, BRAND).unwrap();
        assert_eq!(regs(&cpuid, 0x8000_0002), [0x2044_4d41, 0, 0, 0]);
        assert_eq!(cpuid.as_slice().len(), 2);
    }

    #[test]
    fn the_host_brand_is_the_cpuid_instructions() {
        let mut cpuid = CpuId::from_entries(&[entry(0x8000_0000, 0x8000_0008)]).unwrap();
        copy_host_brand_string(&mut cpuid).unwrap();
        match host_brand_string() {
            Some(brand) => {
                let text: Vec<u8> = brand
                    .iter()
                    .flatten()
                    .flat_map(|r| r.to_le_bytes())
                    .collect();
                assert_eq!(text.len(), 48);
                assert_eq!(regs(&cpuid, 0x8000_0003), brand[1]);
            }
            None => assert_eq!(cpuid.as_slice().len(), 1),
        }
    }

    #[test]
    fn tsc_deadline_follows_the_irqchip() {
        let mut cpuid = CpuId::from_entries(&[kvm_cpuid_entry2 {
            function: 1,
            ecx: 0x8000_0001,
            ..Default::default()
        }])
        .unwrap();
        set_tsc_deadline(&mut cpuid, true);
        assert_eq!(regs(&cpuid, 1)[2], 0x8100_0001);
        set_tsc_deadline(&mut cpuid, false);
        assert_eq!(regs(&cpuid, 1)[2], 0x8000_0001);
    }

    #[test]
    fn the_mtrrs_default_to_write_back_enabled() {
        let msrs = boot_msrs();
        assert_eq!(msrs.len(), 1);
        assert_eq!(msrs[0].index, 0x2ff);
        // E (bit 11) set, FE (bit 10) clear, type WB (6).
        assert_eq!(msrs[0].data, 0x806);
    }
}
