// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! On this machine's KVM: the CPUID every vCPU gets carries the host's
//! brand string, and KVM takes the MTRR default type a Linux guest
//! starts with (`fw_cfg_vmm::guest_cpu`).

use kvm_bindings::{Msrs, kvm_msr_entry};
use kvm_ioctls::Kvm;

use fw_cfg_vmm::cpu::{base_cpuid, leaf};
use fw_cfg_vmm::guest_cpu::{
    BRAND_LEAVES, MSR_MTRR_DEF_TYPE, MTRR_DEF_TYPE_ENABLED_WB, host_brand_string, set_boot_msrs,
};

mod common;

use common::require_kvm;

#[test]
fn every_vcpu_gets_the_hosts_brand_string() {
    if !require_kvm() {
        return;
    }
    let kvm = Kvm::new().unwrap();
    let cpuid = base_cpuid(&kvm).unwrap();
    let host = host_brand_string().expect("an x86-64 host with a brand string");
    for (function, want) in BRAND_LEAVES.into_iter().zip(host) {
        let e = leaf(&cpuid, function).unwrap();
        assert_eq!([e.eax, e.ebx, e.ecx, e.edx], want, "leaf {function:#x}");
    }
    assert!(leaf(&cpuid, 0x8000_0000).unwrap().eax >= 0x8000_0004);
}

#[test]
fn kvm_takes_the_boot_mtrr_default_type() {
    if !require_kvm() {
        return;
    }
    let kvm = Kvm::new().unwrap();
    let vm = kvm.create_vm().unwrap();
    let vcpu = vm.create_vcpu(0).unwrap();
    vcpu.set_cpuid2(&base_cpuid(&kvm).unwrap()).unwrap();
    set_boot_msrs(&vcpu).unwrap();
    let mut msrs = Msrs::from_entries(&[kvm_msr_entry {
        index: MSR_MTRR_DEF_TYPE,
        ..Default::default()
    }])
    .unwrap();
    assert_eq!(vcpu.get_msrs(&mut msrs).unwrap(), 1);
    assert_eq!(msrs.as_slice()[0].data, MTRR_DEF_TYPE_ENABLED_WB);
}
