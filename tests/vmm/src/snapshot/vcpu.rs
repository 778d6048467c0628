// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Saving and restoring the vCPU state KVM exposes.

use kvm_bindings::{Msrs, kvm_msr_entry};
use kvm_ioctls::VcpuFd;

use super::SnapshotError;
use super::format::{MAX_MSRS, VcpuState};

/// The MSRs a resumed guest needs beyond `kvm_sregs` (which holds EFER and
/// the APIC base): the time stamp counter, the SYSENTER and SYSCALL
/// registers, the swapped GS base, PAT and `IA32_MISC_ENABLE`. KVM returns
/// those it supports, in this order, up to the first it does not.
pub const SAVED_MSRS: [u32; 12] = [
    0x10,        // IA32_TSC
    0x174,       // IA32_SYSENTER_CS
    0x175,       // IA32_SYSENTER_ESP
    0x176,       // IA32_SYSENTER_EIP
    0x1a0,       // IA32_MISC_ENABLE
    0x277,       // IA32_PAT
    0xc000_0081, // STAR
    0xc000_0082, // LSTAR
    0xc000_0083, // CSTAR
    0xc000_0084, // SFMASK
    0xc000_0102, // KERNEL_GS_BASE
    0xc000_0103, // TSC_AUX
];

const _: () = assert!(SAVED_MSRS.len() <= MAX_MSRS);

/// Completes the I/O of the last exit inside KVM (an `in` gets its value
/// in RAX, a string instruction advances) without running the guest:
/// `KVM_RUN` with `immediate_exit` set returns `EINTR` right after that.
pub fn complete_pending_io(vcpu: &mut VcpuFd) -> Result<(), SnapshotError> {
    vcpu.set_kvm_immediate_exit(1);
    let r = vcpu.run().map(|_| ());
    vcpu.set_kvm_immediate_exit(0);
    match r {
        Err(e) if e.errno() == libc::EINTR => Ok(()),
        Err(e) => Err(SnapshotError::Kvm {
            what: "KVM_RUN (immediate exit)",
            source: e,
        }),
        // An exit before the guest ran: nothing was pending.
        Ok(()) => Ok(()),
    }
}

fn kvm(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> SnapshotError {
    move |source| SnapshotError::Kvm { what, source }
}

fn get_msrs(vcpu: &VcpuFd) -> Result<Vec<kvm_msr_entry>, SnapshotError> {
    let entries: Vec<kvm_msr_entry> = SAVED_MSRS
        .iter()
        .map(|&index| kvm_msr_entry {
            index,
            ..Default::default()
        })
        .collect();
    let mut msrs = Msrs::from_entries(&entries).map_err(|_| SnapshotError::MsrList)?;
    let n = vcpu.get_msrs(&mut msrs).map_err(kvm("KVM_GET_MSRS"))?;
    Ok(msrs.as_slice().iter().take(n).copied().collect())
}

/// Reads the state of a vCPU stopped outside `KVM_RUN` (after
/// [`complete_pending_io`]).
pub fn save(vcpu: &VcpuFd) -> Result<VcpuState, SnapshotError> {
    Ok(VcpuState {
        regs: vcpu.get_regs().map_err(kvm("KVM_GET_REGS"))?,
        sregs: vcpu.get_sregs().map_err(kvm("KVM_GET_SREGS"))?,
        xsave: vcpu.get_xsave().map_err(kvm("KVM_GET_XSAVE"))?,
        xcrs: vcpu.get_xcrs().map_err(kvm("KVM_GET_XCRS"))?,
        events: vcpu.get_vcpu_events().map_err(kvm("KVM_GET_VCPU_EVENTS"))?,
        mp_state: vcpu.get_mp_state().map_err(kvm("KVM_GET_MP_STATE"))?,
        msrs: get_msrs(vcpu)?,
    })
}

/// Writes `state` into a vCPU that has not run yet (its CPUID already set).
pub fn restore(vcpu: &VcpuFd, state: &VcpuState) -> Result<(), SnapshotError> {
    vcpu.set_sregs(&state.sregs).map_err(kvm("KVM_SET_SREGS"))?;
    vcpu.set_regs(&state.regs).map_err(kvm("KVM_SET_REGS"))?;
    // SAFETY: this VMM never enables dynamically sized XSTATE features
    // (no ARCH_REQ_XCOMP_GUEST_PERM), so the kernel expects exactly the
    // 4096-byte `kvm_xsave` passed here (kvm-ioctls' condition).
    unsafe { vcpu.set_xsave(&state.xsave) }.map_err(kvm("KVM_SET_XSAVE"))?;
    vcpu.set_xcrs(&state.xcrs).map_err(kvm("KVM_SET_XCRS"))?;
    let msrs = Msrs::from_entries(&state.msrs).map_err(|_| SnapshotError::MsrList)?;
    let n = vcpu.set_msrs(&msrs).map_err(kvm("KVM_SET_MSRS"))?;
    if n != state.msrs.len() {
        let index = state.msrs.get(n).map_or(0, |m| m.index);
        return Err(SnapshotError::MsrRefused { index });
    }
    vcpu.set_mp_state(state.mp_state)
        .map_err(kvm("KVM_SET_MP_STATE"))?;
    vcpu.set_vcpu_events(&state.events)
        .map_err(kvm("KVM_SET_VCPU_EVENTS"))
}
