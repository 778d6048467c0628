// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Exit hooks: code the embedder installs in the run loop
//! ([`Vm::set_exit_hook`](crate::Vm::set_exit_hook)).
//!
//! A hook sees every port and MMIO write the guest makes before the bus
//! does, may take it for itself ([`HookAction::Consume`]: it then goes
//! neither to a device nor into the statistics), and names the phase the
//! statistics count the following exits under ([`ExitStats::per_phase`]).
//! [`PhaseMarker`] is such a hook for a guest that announces phases on a
//! port; the run loop itself knows no such port.
//!
//! [`ExitStats::per_phase`]: crate::stats::ExitStats::per_phase

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

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

/// A phase marker: the guest writes a 32-bit phase id (0: none) to one
/// I/O port to start a measurement phase, and the following exits are also
/// counted for that phase. The marker writes themselves are taken off the
/// bus and not counted. Clones share the current phase.
#[derive(Debug, Clone)]
pub struct PhaseMarker {
    port: u16,
    phase: Arc<AtomicU32>,
}

impl PhaseMarker {
    /// A marker on I/O port `port`.
    pub fn new(port: u16) -> Self {
        PhaseMarker {
            port,
            phase: Arc::new(AtomicU32::new(0)),
        }
    }

    /// The phase the guest last started (0: none).
    pub fn current(&self) -> u32 {
        self.phase.load(Ordering::Relaxed)
    }
}

impl ExitHook for PhaseMarker {
    fn on_write(&mut self, target: ExitTarget, data: &[u8]) -> HookAction {
        if target != ExitTarget::Port(self.port) {
            return HookAction::Dispatch;
        }
        let mut v = [0u8; 4];
        let n = data.len().min(4);
        v[..n].copy_from_slice(&data[..n]);
        self.phase.store(u32::from_le_bytes(v), Ordering::Relaxed);
        HookAction::Consume
    }

    fn phase(&self) -> u32 {
        self.current()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_takes_its_port_and_names_the_phase() {
        let mut m = PhaseMarker::new(0x600);
        let seen = m.clone();
        assert_eq!(m.phase(), 0);
        assert_eq!(
            m.on_write(ExitTarget::Port(0x510), &[1, 0]),
            HookAction::Dispatch
        );
        assert_eq!(
            m.on_write(ExitTarget::Port(0x600), &[0x10, 1, 0, 0]),
            HookAction::Consume
        );
        assert_eq!(m.phase(), 0x110);
        assert_eq!(
            m.on_write(ExitTarget::Mmio(0x600), &[1]),
            HookAction::Dispatch
        );
        // A short write sets the low bytes.
        assert_eq!(
            m.on_write(ExitTarget::Port(0x600), &[7]),
            HookAction::Consume
        );
        assert_eq!(seen.current(), 7);
    }

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
