// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Exit hooks: code the embedder installs in the run loop
//! ([`Vm::set_exit_hook`](crate::Vm::set_exit_hook)).
//!
//! A hook sees every port and MMIO write the guest makes before the bus
//! does, may take it for itself ([`HookAction::Consume`]: it then goes
//! neither to a device nor into the statistics), and names the phase the
//! statistics count the following exits under ([`ExitStats::per_phase`]).
//! A test harness uses this for a measurement marker the guest writes; the
//! VMM itself knows no such port.
//!
//! [`ExitStats::per_phase`]: crate::stats::ExitStats::per_phase

use crate::stats::ExitTarget;

/// What the run loop does with a write a hook has seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookAction {
    /// Dispatch it to the bus and count it, as without a hook.
    Dispatch,
    /// The hook handled it: neither dispatched nor counted.
    Consume,
}

/// An observer of the guest's port and MMIO writes.
pub trait ExitHook: Send {
    /// Called for every port-I/O or MMIO write exit, before dispatch, with
    /// the bytes the guest wrote (one access; a string instruction's
    /// accesses are presented together).
    fn on_write(&mut self, target: ExitTarget, data: &[u8]) -> HookAction;

    /// The phase the statistics count the next exit under (0: none).
    fn phase(&self) -> u32 {
        0
    }
}

/// The hook a VM has until one is installed: dispatches everything and
/// names no phase.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHook;

impl ExitHook for NoHook {
    fn on_write(&mut self, _target: ExitTarget, _data: &[u8]) -> HookAction {
        HookAction::Dispatch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_hook_dispatches_and_names_no_phase() {
        let mut h = NoHook;
        assert_eq!(
            h.on_write(ExitTarget::Port(0x600), &[1]),
            HookAction::Dispatch
        );
        assert_eq!(h.phase(), 0);
    }
}
