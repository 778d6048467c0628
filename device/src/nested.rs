// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The nesting chain: a VMM running inside a VM vouches only for what its
//! own host vouched.
//!
//! Inside a VM, KVM derives the widths it reports from the VM's CPUID,
//! which the outer VMM may have made up (QEMU's legacy 40 on a 39-bit
//! host). The outer VMM's `etc/phys-bits-valid`, which the VM's Linux
//! exposes at [`OUTER_FILE_SYSFS`], says what is really backed. The
//! inner host is then ([`vouched_host`]):
//!
//! | outer statement | inner host |
//! |---|---|
//! | valid, matching the VM's CPUID | KVM's widths capped at the outer `W` |
//! | not valid, backed width `B` (version 2) | capped at `B` |
//! | not valid without `B`, corrupt, or disagreeing with the VM's CPUID | capped at 36: nothing above the architectural minimum is vouched |
//! | absent | unknown: `None`, and [`nested_config`] turns both channels off, so the inner VMM says nothing rather than vouch for what nobody vouched |
//!
//! ```
//! use fw_cfg_device::abi::PhysBitsFile;
//! use fw_cfg_device::nested::{vouched_host, OuterStatement};
//! use fw_cfg_device::phys_bits::HostAddressSizes;
//!
//! // QEMU's legacy 40 on a 39-bit host: the VM's KVM reports 40.
//! let l1 = HostAddressSizes::new(40, 0);
//! let outer = OuterStatement::from_bytes(&PhysBitsFile::new(false, 40, 0).with_backed_bits(39).to_bytes());
//! assert_eq!(vouched_host(l1, l1, &outer), Some(HostAddressSizes::new(39, 0)));
//! ```

use std::io;
use std::path::Path;

use crate::abi::{CONSERVATIVE_PHYS_BITS, MIN_PHYS_BITS, PhysBitsFile, PhysBitsFileError};
use crate::phys_bits::{HostAddressSizes, PhysBitsConfig};

/// Where Linux's `qemu_fw_cfg` driver exposes the outer VMM's file.
pub const OUTER_FILE_SYSFS: &str = "/sys/firmware/qemu_fw_cfg/by_name/etc/phys-bits-valid/raw";

/// What the outer VMM said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OuterStatement {
    /// No file.
    Absent,
    /// The parsed file.
    Present(PhysBitsFile),
    /// Bytes that do not parse.
    Corrupt(PhysBitsFileError),
}

impl OuterStatement {
    /// Parses the file's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        match PhysBitsFile::parse(bytes) {
            Ok(f) => OuterStatement::Present(f),
            Err(e) => OuterStatement::Corrupt(e),
        }
    }
}

/// Why the outer statement could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NestedError {
    /// The file exists but reading it failed.
    #[error("cannot read the outer VM's phys-bits file {path}")]
    Read {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// Reads the outer statement from `path` (normally
/// [`OUTER_FILE_SYSFS`]); a missing file is [`OuterStatement::Absent`].
pub fn read_outer_statement(path: &Path) -> Result<OuterStatement, NestedError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(OuterStatement::from_bytes(&bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(OuterStatement::Absent),
        Err(source) => Err(NestedError::Read {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// The host this VMM may vouch for (module docs): `l1_kvm` as the VM's
/// KVM reports it, `l1_cpuid` the widths in the VM's own CPUID (which the
/// outer file repeats), `outer` what the outer VMM said. `None`: nobody
/// vouched.
pub fn vouched_host(
    l1_kvm: HostAddressSizes,
    l1_cpuid: HostAddressSizes,
    outer: &OuterStatement,
) -> Option<HostAddressSizes> {
    let cap = match outer {
        OuterStatement::Absent => return None,
        OuterStatement::Corrupt(_) => CONSERVATIVE_PHYS_BITS,
        OuterStatement::Present(f)
            if f.phys_bits != l1_cpuid.phys_bits
                || f.guest_phys_bits != l1_cpuid.guest_phys_bits =>
        {
            CONSERVATIVE_PHYS_BITS
        }
        OuterStatement::Present(f) if f.valid => f.width(),
        OuterStatement::Present(f) if f.backed_bits >= MIN_PHYS_BITS => f.backed_bits,
        OuterStatement::Present(_) => CONSERVATIVE_PHYS_BITS,
    };
    let cap_width = |w: u8| if w == 0 { 0 } else { w.min(cap) };
    Some(HostAddressSizes::new(
        l1_kvm.phys_bits.min(cap),
        cap_width(l1_kvm.guest_phys_bits),
    ))
}

/// The configuration a nested VMM states: `config_for` (e.g.
/// [`PhysBitsConfig::host_passthrough`]) applied to the vouched host, or,
/// when nobody vouched, to the VM's KVM widths with both channels off.
pub fn nested_config(
    config_for: impl FnOnce(HostAddressSizes) -> PhysBitsConfig,
    l1_kvm: HostAddressSizes,
    l1_cpuid: HostAddressSizes,
    outer: &OuterStatement,
) -> PhysBitsConfig {
    match vouched_host(l1_kvm, l1_cpuid, outer) {
        Some(host) => config_for(host),
        None => config_for(l1_kvm)
            .with_cpuid_hint(false)
            .with_fw_cfg_file(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(valid: bool, p: u8, g: u8, b: u8) -> OuterStatement {
        OuterStatement::Present(PhysBitsFile::new(valid, p, g).with_backed_bits(b))
    }

    #[test]
    fn chain_rows() {
        let h = HostAddressSizes::new;
        // (row, L1 KVM, L1 CPUID, outer, vouched)
        let rows: &[(
            &str,
            HostAddressSizes,
            HostAddressSizes,
            OuterStatement,
            Option<HostAddressSizes>,
        )] = &[
            (
                "valid 48",
                h(48, 0),
                h(48, 0),
                file(true, 48, 0, 48),
                Some(h(48, 0)),
            ),
            (
                "valid 46/46: the guest width carries",
                h(46, 46),
                h(46, 46),
                file(true, 46, 46, 46),
                Some(h(46, 46)),
            ),
            (
                "legacy 40 on 39: backed 39",
                h(40, 0),
                h(40, 0),
                file(false, 40, 0, 39),
                Some(h(39, 0)),
            ),
            (
                "invalid v1: 36",
                h(40, 0),
                h(40, 0),
                OuterStatement::Present(PhysBitsFile::new(false, 40, 0)),
                Some(h(36, 0)),
            ),
            (
                "file disagrees with CPUID: 36",
                h(48, 0),
                h(48, 0),
                file(true, 46, 0, 48),
                Some(h(36, 0)),
            ),
            (
                "corrupt: 36",
                h(48, 0),
                h(48, 0),
                OuterStatement::from_bytes(&[1, 2, 48, 0, 0, 0, 0, 0]),
                Some(h(36, 0)),
            ),
            (
                "absent: nobody vouched",
                h(48, 0),
                h(48, 0),
                OuterStatement::Absent,
                None,
            ),
            (
                "L1's KVM reports less: kept",
                h(39, 0),
                h(48, 0),
                file(true, 48, 0, 48),
                Some(h(39, 0)),
            ),
        ];
        for (name, kvm, cpuid, outer, want) in rows {
            assert_eq!(vouched_host(*kvm, *cpuid, outer), *want, "{name}");
        }
    }

    #[test]
    fn nested_config_follows() {
        let legacy = file(false, 40, 0, 39);
        let l1 = HostAddressSizes::new(40, 0);
        let c = nested_config(PhysBitsConfig::host_passthrough, l1, l1, &legacy);
        assert_eq!((c.phys_bits(), c.valid()), (39, true));
        let c = nested_config(PhysBitsConfig::legacy_default, l1, l1, &legacy);
        assert_eq!((c.phys_bits(), c.valid(), c.backed_bits()), (40, false, 39));
        let c = nested_config(
            PhysBitsConfig::host_passthrough,
            l1,
            l1,
            &OuterStatement::Absent,
        );
        assert!(!c.cpuid_hint() && !c.fw_cfg_file());
    }

    #[test]
    fn reading_the_outer_file() {
        let dir = std::env::temp_dir().join(format!("fw-cfg-nested-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("raw");
        assert_eq!(read_outer_statement(&p).unwrap(), OuterStatement::Absent);
        std::fs::write(&p, PhysBitsFile::new(true, 48, 0).to_bytes()).unwrap();
        assert_eq!(
            read_outer_statement(&p).unwrap(),
            OuterStatement::Present(PhysBitsFile::new(true, 48, 0))
        );
        assert!(
            read_outer_statement(&dir).is_err(),
            "a directory is not a file"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
