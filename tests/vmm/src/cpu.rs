// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! vCPU setup: CPUID and the PVH 32-bit entry state, for the boot
//! processor and for application processors.
//!
//! # Application processors (the AP contract)
//!
//! There is no interrupt controller for PVH guests, so no INIT/SIPI: the
//! VMM sets every vCPU's registers itself, and all vCPUs start running
//! together. vCPU 0 (the BSP) enters as the PVH boot protocol says
//! ([`setup_pvh_vcpu`]). Every other vCPU (an AP, index 1 to N-1) enters
//! at the **same PVH entry point, in the same state** (32-bit protected
//! mode, paging off, flat 4 GiB segments) with **`%ebx` = 0** (there is no
//! second start info, and a PVH start info is never at address 0) and
//! **`%edi` = its vCPU index** ([`setup_pvh_ap`]). Its CPUID leaf 1 names
//! the index as the initial APIC ID (EBX bits 31..24), as QEMU's does.
//!
//! So an image for several vCPUs tells the BSP from an AP by `%ebx`,
//! gives each AP its own stack from `%edi`, and must not let APs run the
//! BSP's one-time setup. An AP that executes `hlt` is parked: its thread
//! ends, and the run goes on (nothing can wake it). A PVH kernel that does
//! not follow this contract (Linux's PVH entry, say) must run with one
//! vCPU.

use kvm_bindings::{
    CpuId, KVM_MAX_CPUID_ENTRIES, kvm_cpuid_entry2, kvm_fpu, kvm_regs, kvm_segment,
};
use kvm_ioctls::{Kvm, VcpuFd};

use crate::Error;
use fw_cfg_device::abi;

/// The CPUID the host supports, with KVM's signature leaves guaranteed to
/// be present (`0x40000000` naming KVM, `0x40000001` its features), the
/// "running under a hypervisor" bit set, and the host's brand string
/// where KVM zeroes it ([`crate::guest_cpu::copy_host_brand_string`]).
/// [`PhysBitsConfig`] is applied on top of this.
///
/// [`PhysBitsConfig`]: fw_cfg_device::phys_bits::PhysBitsConfig
pub fn base_cpuid(kvm: &Kvm) -> Result<CpuId, Error> {
    let mut cpuid = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(Error::Cpuid)?;
    ensure_kvm_leaves(&mut cpuid)?;
    copy_vendor_to_extended_leaf(&mut cpuid);
    crate::guest_cpu::copy_host_brand_string(&mut cpuid)?;
    for e in cpuid.as_mut_slice() {
        if e.function == 1 {
            e.ecx |= abi::CPUID_1_ECX_HYPERVISOR;
        }
    }
    Ok(cpuid)
}

/// Repeats leaf 0's vendor signature in leaf 0x80000000 (EBX, ECX, EDX)
/// when the host left it empty, as QEMU does for every CPU model. Intel
/// CPUs report zeros there, and OVMF reads the vendor from that leaf, so
/// without this a guest sees a different vendor under this VMM than under
/// QEMU on the same host.
pub fn copy_vendor_to_extended_leaf(cpuid: &mut CpuId) {
    let Some(vendor) = leaf(cpuid, 0) else {
        return;
    };
    for e in cpuid.as_mut_slice() {
        if e.function == 0x8000_0000 && e.ebx == 0 && e.ecx == 0 && e.edx == 0 {
            e.ebx = vendor.ebx;
            e.ecx = vendor.ecx;
            e.edx = vendor.edx;
        }
    }
}

/// Adds the KVM signature leaf and an empty features leaf when the host's
/// supported CPUID lacks them (some nested engines do not report them).
pub fn ensure_kvm_leaves(cpuid: &mut CpuId) -> Result<(), Error> {
    let base = abi::CPUID_HYPERVISOR_BASE;
    let features = base + abi::KVM_FEATURES_LEAF_OFFSET;
    let [sig_ebx, sig_ecx, sig_edx] = abi::KVM_SIGNATURE_REGS;
    let has = |cpuid: &CpuId, f: u32| cpuid.as_slice().iter().any(|e| e.function == f);
    if !has(cpuid, base) {
        cpuid
            .push(kvm_cpuid_entry2 {
                function: base,
                eax: features,
                ebx: sig_ebx,
                ecx: sig_ecx,
                edx: sig_edx,
                ..Default::default()
            })
            .map_err(|_| Error::CpuidFull)?;
    } else {
        for e in cpuid.as_mut_slice() {
            if e.function == base && e.eax < features {
                e.eax = features;
            }
        }
    }
    if !has(cpuid, features) {
        cpuid
            .push(kvm_cpuid_entry2 {
                function: features,
                ..Default::default()
            })
            .map_err(|_| Error::CpuidFull)?;
    }
    Ok(())
}

/// Looks a leaf up (index 0).
pub fn leaf(cpuid: &CpuId, function: u32) -> Option<kvm_cpuid_entry2> {
    cpuid
        .as_slice()
        .iter()
        .find(|e| e.function == function && e.index == 0)
        .copied()
}

fn flat_segment(selector: u16, type_: u8) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_,
        present: 1,
        dpl: 0,
        db: 1,
        s: 1,
        l: 0,
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

/// Puts the vCPU in the state the PVH boot protocol specifies: 32-bit
/// protected mode, paging off, flat 4 GiB code (selector 0x08) and data
/// (0x10) segments, `%ebx` = guest-physical address of `hvm_start_info`,
/// `%eip` = the PVH entry point.
pub fn setup_pvh_vcpu(vcpu: &VcpuFd, entry: u64, start_info: u64) -> Result<(), Error> {
    let mut sregs = vcpu.get_sregs().map_err(Error::Vcpu)?;
    sregs.cs = flat_segment(0x08, 0xb); // execute/read, accessed
    let data = flat_segment(0x10, 0x3); // read/write, accessed
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.cr0 = 0x11; // PE | ET
    sregs.cr4 = 0;
    sregs.efer = 0;
    vcpu.set_sregs(&sregs).map_err(Error::Vcpu)?;

    let regs = kvm_regs {
        rip: entry,
        rbx: start_info,
        rflags: 0x2,
        ..Default::default()
    };
    vcpu.set_regs(&regs).map_err(Error::Vcpu)?;
    reset_fpu(vcpu)
}

/// Most vCPUs a VM may have (the `fw-cfg-vmm --cpus` limit).
pub const MAX_VCPUS: u16 = 64;

/// Puts application processor `index` (1..[`MAX_VCPUS`]) at the PVH entry
/// `entry` as the AP contract above says: the BSP's state with `%ebx` = 0
/// and `%edi` = `index`.
pub fn setup_pvh_ap(vcpu: &VcpuFd, entry: u64, index: u16) -> Result<(), Error> {
    setup_pvh_vcpu(vcpu, entry, 0)?;
    let mut regs = vcpu.get_regs().map_err(Error::Vcpu)?;
    regs.rdi = u64::from(index);
    vcpu.set_regs(&regs).map_err(Error::Vcpu)
}

/// `cpuid` for vCPU `index`: leaf 1 EBX bits 31..24 (the initial APIC ID)
/// name the index.
pub fn cpuid_for_vcpu(cpuid: &CpuId, index: u16) -> Result<CpuId, Error> {
    let mut own = CpuId::from_entries(cpuid.as_slice()).map_err(|_| Error::CpuidFull)?;
    for e in own.as_mut_slice() {
        if e.function == 1 {
            e.ebx = (e.ebx & 0x00ff_ffff) | ((u32::from(index) & 0xff) << 24);
        }
    }
    Ok(own)
}

/// Puts the x87 control word and MXCSR in their architectural reset
/// state (all exceptions masked), as every boot protocol expects.
pub fn reset_fpu(vcpu: &VcpuFd) -> Result<(), Error> {
    let fpu = kvm_fpu {
        fcw: 0x37f,
        mxcsr: 0x1f80,
        ..Default::default()
    };
    vcpu.set_fpu(&fpu).map_err(Error::Vcpu)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kvm_leaves_are_added_once() {
        let mut cpuid = CpuId::new(0).unwrap();
        ensure_kvm_leaves(&mut cpuid).unwrap();
        ensure_kvm_leaves(&mut cpuid).unwrap();
        assert_eq!(cpuid.as_slice().len(), 2);
        let base = leaf(&cpuid, 0x4000_0000).unwrap();
        assert_eq!(base.eax, 0x4000_0001);
        let sig = abi::hypervisor_signature_from_regs(base.ebx, base.ecx, base.edx);
        assert_eq!(&sig, b"KVMKVMKVM\0\0\0");
        assert_eq!(leaf(&cpuid, 0x4000_0001).unwrap().edx, 0);
    }

    #[test]
    fn vendor_is_copied_only_into_an_empty_extended_leaf() {
        let intel = kvm_cpuid_entry2 {
            function: 0,
            eax: 0x16,
            ebx: u32::from_le_bytes(*b"Genu"),
            edx: u32::from_le_bytes(*b"ineI"),
            ecx: u32::from_le_bytes(*b"ntel"),
            ..Default::default()
        };
        let ext = kvm_cpuid_entry2 {
            function: 0x8000_0000,
            eax: 0x8000_0008,
            ..Default::default()
        };
        let mut cpuid = CpuId::from_entries(&[intel, ext]).unwrap();
        copy_vendor_to_extended_leaf(&mut cpuid);
        let got = leaf(&cpuid, 0x8000_0000).unwrap();
        assert_eq!(
            (got.ebx, got.ecx, got.edx),
            (intel.ebx, intel.ecx, intel.edx)
        );
        assert_eq!(got.eax, 0x8000_0008);

        let amd_ext = kvm_cpuid_entry2 {
            ebx: 1,
            ecx: 2,
            edx: 3,
            ..ext
        };
        let mut cpuid = CpuId::from_entries(&[intel, amd_ext]).unwrap();
        copy_vendor_to_extended_leaf(&mut cpuid);
        let got = leaf(&cpuid, 0x8000_0000).unwrap();
        assert_eq!((got.ebx, got.ecx, got.edx), (1, 2, 3));
    }
}
