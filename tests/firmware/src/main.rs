// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! PVH test firmware (placeholder until the harness lands).

fn main() {}
