// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The outer guest's initramfs: busybox, the modules and [`INIT_SCRIPT`].
//!
//! `/init` prints a line starting with [`MARKER`] for each
//! failure it sees (`insmod-failed NAME`, `mount-failed WHAT`, `no-kvm`
//! with `dmesg` lines), `kvm` with the kernel's nested paging line once
//! `/dev/kvm` exists, and `status N` after the script;
//! [`check_console`] turns the failures into [`LabError`]s.

use std::path::{Path, PathBuf};

use super::{INNER_WORK, LAB_DIR, LabError, MARKER, TAIL_LINES, TextTail};
use crate::peers::Missing;
use crate::peers::cpio::Archive;

/// The modules `/init` loads, in order (name, path under the release's
/// `kernel/` directory): virtio PCI, 9p over virtio, and KVM for AMD.
pub const MODULES: [(&str, &str); 15] = [
    ("virtio_ring", "drivers/virtio/virtio_ring.ko"),
    ("virtio", "drivers/virtio/virtio.ko"),
    (
        "virtio_pci_modern_dev",
        "drivers/virtio/virtio_pci_modern_dev.ko",
    ),
    (
        "virtio_pci_legacy_dev",
        "drivers/virtio/virtio_pci_legacy_dev.ko",
    ),
    ("virtio_pci", "drivers/virtio/virtio_pci.ko"),
    ("netfs", "fs/netfs/netfs.ko"),
    ("fscache", "fs/fscache/fscache.ko"),
    ("9pnet", "net/9p/9pnet.ko"),
    ("9pnet_virtio", "net/9p/9pnet_virtio.ko"),
    ("9p", "fs/9p/9p.ko"),
    ("irqbypass", "virt/lib/irqbypass.ko"),
    ("ccp", "drivers/crypto/ccp/ccp.ko"),
    ("kvm", "arch/x86/kvm/kvm.ko"),
    ("kvm-amd", "arch/x86/kvm/kvm-amd.ko"),
    // The outer VM's fw_cfg in sysfs, for `fw-cfg-vmm --phys-bits-from-outer`.
    ("qemu_fw_cfg", "drivers/firmware/qemu_fw_cfg.ko"),
];

/// The outer guest's `/init`. [`init_script`] replaces `@MODULES@` by the
/// module names, `@WORK@` by [`INNER_WORK`] and `@LAB@` by [`LAB_DIR`].
pub const INIT_SCRIPT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
M="@@LAB"
fail() { echo "$M $*"; poweroff -f; }
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in @MODULES@; do
  # Without SVM kvm-amd refuses to load: the /dev/kvm check reports it.
  insmod /modules/$m.ko || [ $m = kvm-amd ] || fail insmod-failed $m
done
O=trans=virtio,version=9p2000.L,msize=262144
mkdir -p /host
mount -t 9p -o $O,ro hostroot /host || fail mount-failed hostroot
mount -t proc proc /host/proc && mount -t sysfs sysfs /host/sys \
  && mount -t devtmpfs devtmpfs /host/dev && mount -t tmpfs tmpfs /host/tmp \
  || fail mount-failed chroot
mkdir /host@WORK@ && mount -t 9p -o $O work /host@WORK@ || fail mount-failed work
if [ ! -c /dev/kvm ]; then
  echo "$M no-kvm"
  dmesg | grep -i -e svm -e kvm | sed "s/^/$M dmesg /"
  poweroff -f
fi
echo "$M kvm $(dmesg | grep -i 'nested paging')"
chroot /host /bin/sh @WORK@/@LAB@/run.sh > /host@WORK@/@LAB@/output 2>&1
S=$?
echo $S > /host@WORK@/@LAB@/status
echo "$M status $S"
poweroff -f
"#;

/// The `/init` script with the module list filled in.
pub fn init_script() -> String {
    let names: Vec<&str> = MODULES.iter().map(|(n, _)| *n).collect();
    INIT_SCRIPT
        .replace("@MODULES@", &names.join(" "))
        .replace("@WORK@", INNER_WORK)
        .replace("@LAB@", LAB_DIR)
}

/// The modules of [`MODULES`] under `release_dir` (`/lib/modules/<release>`).
pub fn find_modules(release_dir: impl AsRef<Path>) -> Result<Vec<PathBuf>, Missing> {
    let kernel = release_dir.as_ref().join("kernel");
    MODULES
        .iter()
        .map(|(name, sub)| {
            let path = kernel.join(sub);
            if path.is_file() {
                Ok(path)
            } else {
                Err(Missing::new(
                    format!("kernel module {name}.ko"),
                    format!(
                        "the nested lab loads {} (uncompressed; .ko.xz/.ko.zst are not \
                         supported); install the kernel's full modules package",
                        path.display()
                    ),
                ))
            }
        })
        .collect()
}

/// The initramfs: `busybox`, the modules (`modules` in [`MODULES`] order)
/// and `/init`.
pub fn initramfs(busybox: &Path, modules: &[PathBuf]) -> Result<Vec<u8>, LabError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| LabError::Io {
            action: "read",
            path: p.to_path_buf(),
            source,
        })
    };
    let mut a = Archive::new();
    for d in ["bin", "dev", "proc", "sys", "tmp", "modules", "host"] {
        a.dir(d, 0o755);
    }
    a.char_device("dev/console", 0o600, 5, 1);
    a.file("bin/busybox", 0o755, read(busybox)?);
    for ((name, _), path) in MODULES.iter().zip(modules) {
        a.file(&format!("modules/{name}.ko"), 0o644, read(path)?);
    }
    a.file("init", 0o755, init_script().into_bytes());
    Ok(a.finish())
}

/// The failure `/init` reported on `console`, if any.
pub fn check_console(console: &str) -> Result<(), LabError> {
    let tail = || TextTail::last(console, TAIL_LINES);
    let mut dmesg = Vec::new();
    let mut no_kvm = false;
    for line in console.lines() {
        let Some(i) = line.find(MARKER) else { continue };
        let rest = line[i + MARKER.len()..].trim_end_matches('\r');
        let (tag, value) = rest.split_once(' ').unwrap_or((rest, ""));
        match tag {
            "insmod-failed" => {
                let module = MODULES
                    .iter()
                    .map(|(n, _)| *n)
                    .find(|n| *n == value)
                    .unwrap_or("(unknown)");
                return Err(LabError::Insmod {
                    module,
                    tail: tail(),
                });
            }
            "mount-failed" => {
                let what = match value {
                    "hostroot" => "the machine's root (9p tag hostroot) on /host",
                    "work" => "the work folder (9p tag work) on /host/tmp/work",
                    _ => "proc, sys, dev and tmp under /host",
                };
                return Err(LabError::Mount { what, tail: tail() });
            }
            "no-kvm" => no_kvm = true,
            "dmesg" => dmesg.push(value.to_string()),
            _ => {}
        }
    }
    if no_kvm {
        return Err(LabError::NoKvm {
            dmesg: TextTail { lines: dmesg },
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::cpio;

    #[test]
    fn init_loads_the_modules_in_order_then_runs_the_script() {
        let s = init_script();
        assert!(s.starts_with("#!/bin/busybox sh\n"));
        assert!(s.contains(
            "for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci \
             netfs fscache 9pnet 9pnet_virtio 9p irqbypass ccp kvm kvm-amd qemu_fw_cfg; do"
        ));
        assert!(s.contains("insmod /modules/$m.ko || [ $m = kvm-amd ] || fail insmod-failed $m"));
        let chroot = s
            .find("chroot /host /bin/sh /tmp/work/.lab/run.sh > /host/tmp/work/.lab/output")
            .unwrap();
        assert!(s.find("[ ! -c /dev/kvm ]").unwrap() < chroot);
        assert!(s.find("mount-failed work").unwrap() < chroot);
        assert!(s.trim_end().ends_with("poweroff -f"));
    }

    #[test]
    fn initramfs_holds_busybox_modules_and_init() {
        let dir = std::env::temp_dir().join(format!("fw-cfg-lab-initrd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let busybox = dir.join("busybox");
        std::fs::write(&busybox, b"bb").unwrap();
        let modules: Vec<PathBuf> = MODULES
            .iter()
            .map(|(n, _)| {
                let p = dir.join(format!("{n}.ko"));
                std::fs::write(&p, n.as_bytes()).unwrap();
                p
            })
            .collect();
        let image = initramfs(&busybox, &modules).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let entries = cpio::parse(&image).unwrap();
        let get = |name: &str| entries.iter().find(|e| e.name == name).map(|e| &e.data);
        assert_eq!(get("bin/busybox").unwrap(), b"bb");
        assert_eq!(get("modules/kvm-amd.ko").unwrap(), b"kvm-amd");
        assert_eq!(get("init").unwrap(), init_script().as_bytes());
        assert!(get("dev/console").is_some());
        assert!(matches!(
            initramfs(&dir.join("nope"), &modules),
            Err(LabError::Io { action: "read", .. })
        ));
    }

    #[test]
    fn missing_modules_are_named() {
        let e = find_modules("/nonexistent/lib/modules/0.0").unwrap_err();
        assert_eq!(e.what, "kernel module virtio_ring.ko");
        assert!(
            e.hint
                .contains("/nonexistent/lib/modules/0.0/kernel/drivers/virtio/virtio_ring.ko")
        );
    }

    #[test]
    fn console_failures_become_errors() {
        assert!(
            check_console(
                "[ 1.0] boot\n@@LAB kvm [ 2.0] SVM: kvm: Nested Paging enabled\n@@LAB status 0\n"
            )
            .is_ok()
        );
        assert!(matches!(
            check_console("x\n@@LAB insmod-failed kvm-amd\r\n"),
            Err(LabError::Insmod {
                module: "kvm-amd",
                ..
            })
        ));
        assert!(matches!(
            check_console("@@LAB mount-failed hostroot\n"),
            Err(LabError::Mount { what, .. }) if what.contains("hostroot")
        ));
        match check_console(
            "@@LAB no-kvm\n@@LAB dmesg [ 1.5] kvm: no hardware support for 'kvm_amd'\n",
        ) {
            Err(LabError::NoKvm { dmesg }) => {
                assert_eq!(
                    dmesg.lines,
                    ["[ 1.5] kvm: no hardware support for 'kvm_amd'"]
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
