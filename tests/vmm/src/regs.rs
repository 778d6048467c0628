// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Where a guest was when its run timed out: each vCPU's instruction
//! pointer, flags, control registers and run state, read with
//! `KVM_GET_REGS`, `KVM_GET_SREGS` and `KVM_GET_MP_STATE` after the
//! watchdog kicked the vCPU's thread out of `KVM_RUN`.
//!
//! A hanging guest is then located by mapping [`VcpuRegisters::rip`] to a
//! symbol (for Linux, boot with `nokaslr` and look the address up in the
//! kernel's `System.map`); [`VcpuRegisters::halted`] with interrupts off
//! (`RFLAGS.IF` clear) means the vCPU stopped for good.
//!
//! ```
//! use fw_cfg_vmm::regs::VcpuRegisters;
//!
//! let r = VcpuRegisters {
//!     vcpu: 0,
//!     rip: 0xffff_ffff_8100_0000,
//!     rsp: 0xffff_c900_0001_3e00,
//!     rflags: 0x46,
//!     cr0: 0x8005_0033,
//!     cr3: 0x10_0000,
//!     cr4: 0x3606f0,
//!     halted: true,
//! };
//! assert!(!r.interrupts_enabled());
//! assert_eq!(
//!     r.to_string(),
//!     "vcpu0 rip=0xffffffff81000000 rsp=0xffffc90000013e00 rflags=0x46 \
//!      cr0=0x80050033 cr3=0x100000 cr4=0x3606f0 halted"
//! );
//! ```

use std::fmt;

use kvm_bindings::KVM_MP_STATE_HALTED;
use kvm_ioctls::VcpuFd;
use serde::{Deserialize, Serialize};

use crate::Error;

/// `RFLAGS.IF`: maskable interrupts enabled.
pub const RFLAGS_IF: u64 = 1 << 9;

/// One vCPU's state where the run stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VcpuRegisters {
    /// The vCPU's index (0 is the boot processor).
    pub vcpu: usize,
    /// The instruction pointer.
    pub rip: u64,
    /// The stack pointer.
    pub rsp: u64,
    /// The flags register.
    pub rflags: u64,
    /// CR0.
    pub cr0: u64,
    /// CR3 (the page-table root).
    pub cr3: u64,
    /// CR4.
    pub cr4: u64,
    /// Whether the vCPU was halted (`hlt` inside KVM's in-kernel local
    /// APIC, waiting for an interrupt) rather than running.
    pub halted: bool,
}

impl VcpuRegisters {
    /// Reads vCPU `index`'s registers from `vcpu` (outside `KVM_RUN`).
    pub fn read(vcpu: &VcpuFd, index: usize) -> Result<VcpuRegisters, Error> {
        let regs = vcpu.get_regs().map_err(Error::Vcpu)?;
        let sregs = vcpu.get_sregs().map_err(Error::Vcpu)?;
        let mp = vcpu.get_mp_state().map_err(Error::Vcpu)?;
        Ok(VcpuRegisters {
            vcpu: index,
            rip: regs.rip,
            rsp: regs.rsp,
            rflags: regs.rflags,
            cr0: sregs.cr0,
            cr3: sregs.cr3,
            cr4: sregs.cr4,
            halted: mp.mp_state == KVM_MP_STATE_HALTED,
        })
    }

    /// Whether maskable interrupts were enabled (`RFLAGS.IF`).
    pub fn interrupts_enabled(&self) -> bool {
        self.rflags & RFLAGS_IF != 0
    }
}

impl fmt::Display for VcpuRegisters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "vcpu{} rip={:#x} rsp={:#x} rflags={:#x} cr0={:#x} cr3={:#x} cr4={:#x} {}",
            self.vcpu,
            self.rip,
            self.rsp,
            self.rflags,
            self.cr0,
            self.cr3,
            self.cr4,
            if self.halted { "halted" } else { "running" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_the_run_state_and_the_flags_decide_if() {
        let r = VcpuRegisters {
            vcpu: 2,
            rip: 0x1000,
            rsp: 0x8ff0,
            rflags: 0x202,
            cr0: 0x11,
            cr3: 0,
            cr4: 0,
            halted: false,
        };
        assert!(r.interrupts_enabled());
        assert_eq!(
            r.to_string(),
            "vcpu2 rip=0x1000 rsp=0x8ff0 rflags=0x202 cr0=0x11 cr3=0x0 cr4=0x0 running"
        );
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<VcpuRegisters>(&json).unwrap(), r);
    }
}
