// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The device-tree node of the MMIO fw_cfg device (feature `fdt`), as
//! QEMU's Arm and RISC-V `virt` machines write it, built with rust-vmm's
//! `vm-fdt`.
//!
//! ```text
//! fw-cfg@9020000 {
//!     compatible = "qemu,fw-cfg-mmio";
//!     reg = <0x0 0x9020000 0x0 0x18>;
//!     dma-coherent;
//! };
//! ```
//!
//! The node name is `fw-cfg@<base in lowercase hex>`; `reg` is written
//! with two address cells and two size cells (the parent must say
//! `#address-cells = <2>; #size-cells = <2>`, as QEMU's root node does);
//! `dma-coherent` tells the guest the DMA interface needs no cache
//! maintenance. The binding is Linux's
//! `Documentation/devicetree/bindings/firmware/qemu,fw-cfg-mmio.yaml`.
//!
//! ```
//! use fw_cfg_device::fdt::fdt_with_fw_cfg;
//!
//! let blob = fdt_with_fw_cfg(0x0902_0000, 0x18).unwrap();
//! assert_eq!(&blob[..4], &[0xd0, 0x0d, 0xfe, 0xed]); // FDT magic
//! ```

use vm_fdt::{Error, FdtWriter};

use crate::abi::MMIO_DT_COMPATIBLE;

/// The node name for a window at `base`.
pub fn node_name(base: u64) -> String {
    format!("fw-cfg@{base:x}")
}

/// Writes the fw_cfg node into `fdt`, inside the currently open node
/// (which must use two address and two size cells).
pub fn add_fw_cfg_node(fdt: &mut FdtWriter, base: u64, size: u64) -> Result<(), Error> {
    let node = fdt.begin_node(&node_name(base))?;
    fdt.property_string("compatible", MMIO_DT_COMPATIBLE)?;
    fdt.property_array_u64("reg", &[base, size])?;
    fdt.property_null("dma-coherent")?;
    fdt.end_node(node)
}

/// A whole device tree with a root node (`#address-cells = <2>`,
/// `#size-cells = <2>`) holding only the fw_cfg node.
pub fn fdt_with_fw_cfg(base: u64, size: u64) -> Result<Vec<u8>, Error> {
    let mut fdt = FdtWriter::new()?;
    let root = fdt.begin_node("")?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    add_fw_cfg_node(&mut fdt, base, size)?;
    fdt.end_node(root)?;
    fdt.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{MMIO_BASE_ARM_VIRT, MMIO_BASE_RISCV_VIRT, MMIO_WINDOW_SIZE};

    /// Parses the blob with the independent `fdt` crate and checks the
    /// node QEMU documents for `virt`.
    fn check(base: u64) {
        let blob = fdt_with_fw_cfg(base, MMIO_WINDOW_SIZE).unwrap();
        let tree = ::fdt::Fdt::new(&blob).expect("the fdt crate parses the blob");
        let node = tree
            .find_compatible(&["qemu,fw-cfg-mmio"])
            .expect("a node compatible with qemu,fw-cfg-mmio");
        assert_eq!(node.name, format!("fw-cfg@{base:x}"));
        let compatible: Vec<&str> = node.compatible().unwrap().all().collect();
        assert_eq!(compatible, ["qemu,fw-cfg-mmio"]);
        let regs: Vec<_> = node.reg().expect("reg").collect();
        assert_eq!(regs.len(), 1);
        assert_eq!(regs[0].starting_address as usize as u64, base);
        assert_eq!(regs[0].size, Some(MMIO_WINDOW_SIZE as usize));
        let coherent = node
            .property("dma-coherent")
            .expect("dma-coherent property");
        assert!(coherent.value.is_empty());
        // The raw `reg` cells: <0 base 0 0x18> with two cells each.
        let reg = node.property("reg").unwrap().value;
        let mut expected = base.to_be_bytes().to_vec();
        expected.extend_from_slice(&MMIO_WINDOW_SIZE.to_be_bytes());
        assert_eq!(reg, &expected[..]);
        assert_eq!(
            tree.find_node(&format!("/fw-cfg@{base:x}")).unwrap().name,
            node.name
        );
    }

    #[test]
    fn arm_virt_node_parses_back() {
        check(MMIO_BASE_ARM_VIRT);
        assert_eq!(node_name(MMIO_BASE_ARM_VIRT), "fw-cfg@9020000");
    }

    #[test]
    fn riscv_virt_node_parses_back() {
        check(MMIO_BASE_RISCV_VIRT);
        assert_eq!(node_name(MMIO_BASE_RISCV_VIRT), "fw-cfg@10100000");
    }

    #[test]
    fn node_goes_into_an_existing_tree() {
        let mut fdt = FdtWriter::new().unwrap();
        let root = fdt.begin_node("").unwrap();
        fdt.property_u32("#address-cells", 2).unwrap();
        fdt.property_u32("#size-cells", 2).unwrap();
        let memory = fdt.begin_node("memory@40000000").unwrap();
        fdt.property_string("device_type", "memory").unwrap();
        fdt.end_node(memory).unwrap();
        add_fw_cfg_node(&mut fdt, 0xd000_0000, MMIO_WINDOW_SIZE).unwrap();
        fdt.end_node(root).unwrap();
        let blob = fdt.finish().unwrap();
        let tree = ::fdt::Fdt::new(&blob).unwrap();
        assert!(tree.find_node("/memory@40000000").is_some());
        assert!(tree.find_node("/fw-cfg@d0000000").is_some());
        // Without an open node the writer refuses, it does not panic.
        let mut fdt = FdtWriter::new().unwrap();
        assert!(fdt.property_u32("x", 1).is_err());
    }
}
