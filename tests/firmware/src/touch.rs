// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The MMIO address sweep (`fw_cfg_tests.touch=COUNT@BASE`): one read of
//! each of `COUNT` addresses [`TOUCH_STRIDE`] bytes apart from `BASE`,
//! where nothing is mapped, so each is an MMIO exit at an address the VMM
//! has not seen before. A VMM that keeps something per address grows
//! with `COUNT`; the harness compares the VMM's peak memory for two
//! counts.

use fw_cfg_protocol::{Line, TOUCH_PARAM, TOUCH_STRIDE, TouchLine};

use crate::out::emit;

/// `(base, count)` from `fw_cfg_tests.touch=COUNT@BASE`, when the sweep is
/// asked for and lies inside the identity-mapped first 4 GiB.
pub fn param(cmdline: &[u8]) -> Option<(u64, u64)> {
    let word = cmdline
        .split(|&b| b == b' ')
        .find_map(|w| w.strip_prefix(TOUCH_PARAM.as_bytes()))?;
    let (base, count) = crate::pvh::parse_size_at_base(word)?;
    let end = count.checked_mul(TOUCH_STRIDE)?.checked_add(base)?;
    (end <= 1 << 32).then_some((base, count))
}

/// Reads every address of the sweep and prints the `touch` line.
pub fn run(base: u64, count: u64) {
    let mut acc = 0u8;
    for i in 0..count {
        let p = (base + i * TOUCH_STRIDE) as *const u8;
        // SAFETY: `param` checked that the sweep lies inside the 4 GiB
        // identity map; the platform maps nothing there (the harness picks
        // a hole), so the read is an MMIO exit the VMM answers, and it has
        // no effect on memory the firmware uses.
        acc ^= unsafe { p.read_volatile() };
    }
    core::hint::black_box(acc);
    emit(&Line::Touch(TouchLine {
        base,
        count,
        stride: TOUCH_STRIDE,
    }));
}
