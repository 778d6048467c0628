// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `--phys-bits-from-outer`: this VMM runs inside a VM and states only
//! what the outer VMM vouched for ([`fw_cfg_device::nested`]).

use fw_cfg_device::nested::{OuterStatement, vouched_host};
use fw_cfg_device::phys_bits::HostAddressSizes;

use crate::fw_cfg::PhysBitsSetup;

/// Applies the chain to `setup`: the host becomes the vouched one
/// (`host_override`); when the outer VMM said nothing, both channels are
/// switched off. `l1_kvm` is what this VM's KVM reports, `l1_cpuid` this
/// VM's own CPUID widths.
pub fn apply_outer(
    setup: &mut PhysBitsSetup,
    l1_kvm: HostAddressSizes,
    l1_cpuid: HostAddressSizes,
    outer: &OuterStatement,
) {
    match vouched_host(l1_kvm, l1_cpuid, outer) {
        Some(host) => setup.host_override = Some(host),
        None => {
            setup.hint = false;
            setup.file = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fw_cfg_device::abi::PhysBitsFile;

    #[test]
    fn chain_sets_the_host_or_silences_the_channels() {
        let l1 = HostAddressSizes::new(40, 0);
        let mut s = PhysBitsSetup {
            host_phys_bits: true,
            ..PhysBitsSetup::default()
        };
        let legacy = PhysBitsFile::new(false, 40, 0).with_backed_bits(39);
        apply_outer(&mut s, l1, l1, &OuterStatement::Present(legacy));
        assert_eq!(s.host_override, Some(HostAddressSizes::new(39, 0)));
        let c = s.config(s.host_override.unwrap());
        assert_eq!((c.phys_bits(), c.valid()), (39, true));
        let mut s = PhysBitsSetup::default();
        apply_outer(&mut s, l1, l1, &OuterStatement::Absent);
        assert!(!s.hint && !s.file && s.host_override.is_none());
    }
}
