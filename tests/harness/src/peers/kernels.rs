// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Installed distribution kernels: `/boot/vmlinuz-<release>`, newest
//! release first by version (6.1.0-26 before 6.1.0-9), not by spelling.

use std::path::{Path, PathBuf};

/// Where distributions install kernels.
pub const BOOT_DIR: &str = "/boot";

/// The release of a kernel image named `vmlinuz-<release>`.
pub fn kernel_release(kernel: &Path) -> Option<String> {
    kernel
        .file_name()?
        .to_str()?
        .strip_prefix("vmlinuz-")
        .map(str::to_string)
}

/// The numbers of a release, in order: the key of a version-aware sort.
pub fn version_key(release: &str) -> Vec<u64> {
    release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// Sorts kernel images newest release first (images without a release
/// last).
pub fn sort_newest_first(kernels: &mut [PathBuf]) {
    kernels.sort_by_key(|p| std::cmp::Reverse(kernel_release(p).map(|r| version_key(&r))));
}

/// The `vmlinuz-<release>` images in `dir`, newest release first.
pub fn installed_kernels(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| kernel_release(p).is_some())
        .collect();
    sort_newest_first(&mut v);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_sort_numerically() {
        let mut v = vec!["6.1.0-9-amd64", "6.1.0-26-amd64", "5.10.0-30-amd64"];
        v.sort_by_key(|r| std::cmp::Reverse(version_key(r)));
        assert_eq!(v, ["6.1.0-26-amd64", "6.1.0-9-amd64", "5.10.0-30-amd64"]);
        assert_eq!(
            kernel_release(Path::new("/boot/vmlinuz-6.1.0-26-amd64")).as_deref(),
            Some("6.1.0-26-amd64")
        );
        assert_eq!(kernel_release(Path::new("/boot/config-6.1")), None);
    }

    #[test]
    fn releases_sort_by_version_not_by_spelling() {
        let mut v: Vec<PathBuf> = [
            "/boot/vmlinuz-6.1.0-9-amd64",
            "/boot/vmlinuz-5.10.0-30-amd64",
            "/boot/vmlinuz-6.1.0-26-amd64",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        sort_newest_first(&mut v);
        let names: Vec<String> = v.iter().filter_map(|p| kernel_release(p)).collect();
        assert_eq!(
            names,
            ["6.1.0-26-amd64", "6.1.0-9-amd64", "5.10.0-30-amd64"]
        );
    }

    #[test]
    fn only_vmlinuz_images_are_listed() {
        let dir = std::env::temp_dir().join(format!("fw-cfg-kernels-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for n in [
            "vmlinuz-6.1.0-9-amd64",
            "vmlinuz-6.1.0-26-amd64",
            "config-6.1.0-26-amd64",
        ] {
            std::fs::write(dir.join(n), b"").unwrap();
        }
        let found = installed_kernels(&dir).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            found,
            [
                dir.join("vmlinuz-6.1.0-26-amd64"),
                dir.join("vmlinuz-6.1.0-9-amd64")
            ]
        );
        assert_eq!(kernel_release(Path::new("/boot/config-6.1")), None);
    }
}
