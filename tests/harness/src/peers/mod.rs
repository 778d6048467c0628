// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Interop with real peers: QEMU's fw_cfg device and Linux's `qemu_fw_cfg`
//! driver, which nobody on this project wrote.
//!
//! - [`qemu`]: finding `qemu-system-x86_64` and running it with a timeout,
//!   capturing the serial console;
//! - [`cpio`]: a small `newc` archive writer for initramfs images (no
//!   external `cpio` command needed);
//! - [`kernels`]: the installed distribution kernels, newest first;
//! - [`linux`]: the Debian kernel booted under QEMU's TCG with an initramfs
//!   of busybox, the kernel's own `qemu_fw_cfg.ko` and the static
//!   `fw-cfg-probe`; the `/init` script prints what the probe read by port
//!   I/O and what Linux shows in `/sys/firmware/qemu_fw_cfg`, plus QEMU's
//!   DSDT;
//! - [`side_by_side`]: the project's PVH test firmware booted under QEMU and
//!   under the mini VMM with the same configurations, side by side
//!   ([`side_by_side::run_peer_matrix`], [`side_by_side::render_peer_table`]).
//!
//! Peers that are missing make the tests fail with a message saying what
//! to install, unless `FW_CFG_ALLOW_SKIP=1` is set ([`require`]).

pub mod cpio;
pub mod iasl;
pub mod kernels;
pub mod linux;
pub mod qemu;
pub mod side_by_side;

use std::fmt;

/// Environment variable that lets tests pass without running when a peer
/// (QEMU, the kernel, busybox, `/dev/kvm`) is missing.
pub const ALLOW_SKIP_ENV: &str = "FW_CFG_ALLOW_SKIP";

/// A peer the tests need and did not find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// What is missing (e.g. `qemu-system-x86_64`).
    pub what: String,
    /// How to get it.
    pub hint: String,
}

impl Missing {
    /// A missing peer with an installation hint.
    pub fn new(what: impl Into<String>, hint: impl Into<String>) -> Self {
        Missing {
            what: what.into(),
            hint: hint.into(),
        }
    }
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is missing ({})", self.what, self.hint)
    }
}

impl std::error::Error for Missing {}

/// Whether `FW_CFG_ALLOW_SKIP=1` is set.
pub fn skip_allowed() -> bool {
    std::env::var(ALLOW_SKIP_ENV).as_deref() == Ok("1")
}

/// Unwraps a peer lookup for a test: the value when found; when missing,
/// `None` if `FW_CFG_ALLOW_SKIP=1` is set (the test then proves nothing and
/// says so on stderr), otherwise a panic naming what to install.
pub fn require<T>(found: Result<T, Missing>) -> Option<T> {
    match found {
        Ok(v) => Some(v),
        Err(m) if skip_allowed() => {
            eprintln!("{m}; {ALLOW_SKIP_ENV}=1 is set, so this test passes without running");
            None
        }
        Err(m) => panic!(
            "{m}. This test needs the real peer; install it, or set {ALLOW_SKIP_ENV}=1 to \
             accept that the peer tests prove nothing on this machine"
        ),
    }
}

/// Whether `/dev/kvm` can be opened read-write.
pub fn kvm_device() -> Result<(), Missing> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map(|_| ())
        .map_err(|e| {
            Missing::new(
                "/dev/kvm",
                format!("cannot open it read-write: {e}; KVM must be available to this user"),
            )
        })
}

/// Hex of bytes and back: the probe document's encoding, shared.
pub use fw_cfg_protocol::probe::{hex, unhex};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let b = [0u8, 1, 0xab, 0xff];
        assert_eq!(hex(&b), "0001abff");
        assert_eq!(unhex("0001ABff\n").unwrap(), b);
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn missing_peer_message_names_the_fix() {
        let m = Missing::new("qemu-system-x86_64", "apt-get install qemu-system-x86");
        assert_eq!(
            m.to_string(),
            "qemu-system-x86_64 is missing (apt-get install qemu-system-x86)"
        );
        assert_eq!(require::<u8>(Ok(3)), Some(3));
    }
}
