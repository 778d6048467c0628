// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The device crate's ACPI and device-tree descriptions read back by
//! independent parsers and compared with QEMU's.
//!
//! - ACPI: every variant (x86 with and without DMA, MMIO) disassembled by
//!   ACPICA's `iasl` (the AML parser crates on crates.io need a nightly
//!   compiler). The x86 node is also compared byte for byte with the DSDT
//!   of a running QEMU in `linux_qemu.rs`.
//! - Device tree: parsed by the `fdt` crate and compared with QEMU's Arm
//!   `virt` node: the one QEMU itself writes when `qemu-system-aarch64` is
//!   installed (`-M virt,dumpdtb=`), else the node QEMU documents and
//!   `hw/arm/virt.c` writes (`fw-cfg@9020000`, `compatible =
//!   "qemu,fw-cfg-mmio"`, `reg = <0 0x9020000 0 0x18>`, `dma-coherent`).
//!
//! Without `iasl` the ACPI test fails, unless `FW_CFG_ALLOW_SKIP=1` is set.

use std::path::PathBuf;
use std::time::Duration;

use fw_cfg_device::abi::{MMIO_BASE_ARM_VIRT, MMIO_WINDOW_SIZE};
use fw_cfg_device::acpi::{self, FwCfgAcpi};
use fw_cfg_device::fdt::fdt_with_fw_cfg;
use fw_cfg_tests::peers::qemu::run_with_timeout;
use fw_cfg_tests::peers::{iasl, linux, require};

fn block(iasl: &std::path::Path, device: &FwCfgAcpi) -> Vec<String> {
    let table = acpi::dsdt(device, *b"FWCFGT", *b"FWCFGTST");
    let asl = iasl::disassemble(iasl, &table).unwrap_or_else(|e| panic!("{e}"));
    assert!(asl.contains("Scope (\\_SB)"), "{asl}");
    iasl::device_block(&asl, "FWCF").unwrap_or_else(|| panic!("no FWCF in\n{asl}"))
}

#[test]
fn acpica_reads_every_variant_of_our_node() {
    let Some(iasl) = require(iasl::find()) else {
        return;
    };
    let strip = |v: Vec<String>| v.join("\n");
    let dma = strip(block(&iasl, &FwCfgAcpi::x86(true)));
    for s in [
        "Name (_HID, \"QEMU0002\")",
        "Name (_STA, 0x0B)",
        "IO (Decode16,\n0x0510,\n0x0510,\n0x01,\n0x0C,\n)",
    ] {
        assert!(dma.contains(s), "{s:?} in\n{dma}");
    }
    assert!(!dma.contains("_CCA"));
    let no_dma = strip(block(&iasl, &FwCfgAcpi::x86(false)));
    assert!(no_dma.contains("0x01,\n0x02,\n)"), "{no_dma}");
    let mmio = strip(block(&iasl, &FwCfgAcpi::mmio(0x0902_0000)));
    for s in [
        "Name (_HID, \"QEMU0002\")",
        "Name (_STA, 0x0B)",
        "Name (_CCA, One)",
        "Memory32Fixed (ReadWrite,\n0x09020000,\n0x00000018,\n)",
    ] {
        assert!(mmio.contains(s), "{s:?} in\n{mmio}");
    }
}

/// The fw_cfg node of a device tree: (name, compatible list, reg cells,
/// whether `dma-coherent` is there).
fn fw_cfg_node(blob: &[u8]) -> (String, Vec<String>, Vec<u8>, bool) {
    let tree = fdt::Fdt::new(blob).expect("the fdt crate parses the blob");
    let node = tree
        .find_compatible(&["qemu,fw-cfg-mmio"])
        .expect("a qemu,fw-cfg-mmio node");
    (
        node.name.to_string(),
        node.compatible()
            .map(|c| c.all().map(str::to_string).collect())
            .unwrap_or_default(),
        node.property("reg")
            .map(|p| p.value.to_vec())
            .unwrap_or_default(),
        node.property("dma-coherent").is_some(),
    )
}

/// QEMU's `virt` device tree, when an Arm QEMU is installed.
fn qemu_virt_dtb() -> Option<Vec<u8>> {
    let path = std::env::var_os("PATH")?;
    let qemu: PathBuf = std::env::split_paths(&path)
        .map(|d| d.join("qemu-system-aarch64"))
        .find(|p| p.is_file())?;
    let dir = linux::scratch_dir("dtb").ok()?;
    let dtb = dir.join("virt.dtb");
    let out = run_with_timeout(
        &qemu,
        &[
            "-M".into(),
            format!("virt,dumpdtb={}", dtb.display()),
            "-nodefaults".into(),
            "-display".into(),
            "none".into(),
        ],
        Duration::from_secs(60),
    )
    .ok()?;
    let blob = std::fs::read(&dtb);
    let _ = std::fs::remove_dir_all(&dir);
    Some(blob.unwrap_or_else(|e| panic!("{}: {e}\n{}", qemu.display(), out.describe(2000))))
}

#[test]
fn device_tree_node_matches_qemus_virt_node() {
    let ours = fdt_with_fw_cfg(MMIO_BASE_ARM_VIRT, MMIO_WINDOW_SIZE).unwrap();
    let ours = fw_cfg_node(&ours);
    let mut reg = MMIO_BASE_ARM_VIRT.to_be_bytes().to_vec();
    reg.extend_from_slice(&MMIO_WINDOW_SIZE.to_be_bytes());
    let documented = (
        "fw-cfg@9020000".to_string(),
        vec!["qemu,fw-cfg-mmio".to_string()],
        reg,
        true,
    );
    assert_eq!(ours, documented, "ours vs QEMU's documented virt node");
    match qemu_virt_dtb() {
        Some(blob) => assert_eq!(ours, fw_cfg_node(&blob), "ours vs qemu-system-aarch64"),
        None => eprintln!(
            "qemu-system-aarch64 is not installed: compared with the node QEMU's virt \
             machine documents and writes (hw/arm/virt.c), not with a live dump"
        ),
    }
}
