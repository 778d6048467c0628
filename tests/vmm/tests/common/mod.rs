// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Helpers the `fw-cfg-vmm` integration tests share.

#![allow(dead_code)]

use std::path::PathBuf;

use fw_cfg_vmm::test_image::pvh_elf;

/// Whether KVM can be used; without it the test fails, unless
/// `FW_CFG_ALLOW_SKIP=1` says the caller accepts that it proves nothing.
pub fn require_kvm() -> bool {
    if kvm_ioctls::Kvm::new().is_ok() {
        return true;
    }
    if std::env::var("FW_CFG_ALLOW_SKIP").as_deref() == Ok("1") {
        eprintln!("/dev/kvm is not usable; FW_CFG_ALLOW_SKIP=1 is set, so this test passes");
        return false;
    }
    panic!("/dev/kvm is not usable: this test boots a KVM guest (FW_CFG_ALLOW_SKIP=1 to skip)");
}

/// A path in the temporary folder for file `name` of the test file
/// `tag`, unique to this process.
pub fn temp(tag: &str, name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("fw-cfg-vmm-{tag}-{}-{name}", std::process::id()))
}

/// Writes a PVH ELF running `code` to [`temp`]`(tag, name)`.
pub fn write_elf(tag: &str, name: &str, code: &[u8]) -> PathBuf {
    let path = temp(tag, name);
    std::fs::write(&path, pvh_elf(code, true)).unwrap();
    path
}
