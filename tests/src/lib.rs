// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! KVM harness and channel comparison.

#![deny(missing_docs)]
