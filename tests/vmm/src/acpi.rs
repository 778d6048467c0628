// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! ACPI tables for Linux guests of the mini VMM, built with rust-vmm's
//! `acpi_tables` crate.
//!
//! Linux's `qemu_fw_cfg` driver binds to the ACPI device `QEMU0002`, and
//! distribution kernels have no other way to find the device (Debian's is
//! built without `CONFIG_FW_CFG_SYSFS_CMDLINE`). So the VMM gives a Linux
//! guest what QEMU's firmware would: an RSDP pointing to an XSDT, which
//! lists
//!
//! - a FADT for a hardware-reduced ACPI platform (no PM timer, SCI, GPE
//!   or PM1 blocks, no legacy PIC/PIT: the layout cloud-hypervisor and
//!   Firecracker use), pointing to the DSDT;
//! - a MADT with one local APIC (processor UID 0, APIC ID 0) and the
//!   IO-APIC of KVM's in-kernel irqchip at [`IOAPIC_ADDRESS`], GSI base 0
//!   (ISA IRQs map one to one, so COM1's IRQ 4 is GSI 4);
//! - a DSDT whose `\_SB` scope holds the fw_cfg node of the device crate
//!   (`fw_cfg_device::acpi`): `Device (FWCF)` for the port-I/O front end,
//!   byte for byte QEMU's node, and, when the MMIO front end is
//!   registered, the device crate's MMIO node renamed `FWCM` (two devices
//!   cannot share a name in one scope).
//!
//! The tables sit in the legacy BIOS area at [`ACPI_START`] (the RSDP
//! first, 16-byte aligned, so a guest that scans 0xE0000..0xFFFFF finds it
//! too), which the e820 map marks reserved; the RSDP's address also goes
//! into `boot_params.acpi_rsdp_addr`.
//!
//! Linux's driver supports one fw_cfg device: with both front ends
//! described, it binds the first in namespace order (`FWCF`, port I/O) and
//! refuses the second with `-EBUSY` (a warning in the kernel log). Without
//! the MMIO window (`--no-fw-cfg-mmio`) there is only `FWCF`, as under
//! QEMU's `-M pc` and `-M q35`.

use acpi_tables::Aml;
use acpi_tables::aml::{Path, Scope};
use acpi_tables::fadt::{FADTBuilder, Flags};
use acpi_tables::madt::{
    EnabledStatus, IoApic, LocalInterruptController, MADT, ProcessorLocalApic,
};
use acpi_tables::rsdp::Rsdp;
use acpi_tables::sdt::Sdt;
use acpi_tables::xsdt::XSDT;
use fw_cfg_device::acpi::{AcpiName, FwCfgAcpi, RawAml as Raw, aml_bytes};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::Error;

/// Guest-physical address of the RSDP; the other tables follow it.
pub const ACPI_START: u64 = 0xe_0000;
/// End of the area reserved for the tables (the end of the legacy BIOS
/// area).
pub const ACPI_END: u64 = 0x10_0000;
/// Local APIC base (the architectural default).
pub const LAPIC_ADDRESS: u32 = 0xfee0_0000;
/// IO-APIC base (where KVM's in-kernel IO-APIC decodes).
pub const IOAPIC_ADDRESS: u32 = 0xfec0_0000;
/// OEM ID of every table.
pub const OEM_ID: [u8; 6] = *b"FWCFGT";
/// OEM revision of every table.
pub const OEM_REVISION: u32 = 1;
/// ACPI name of the MMIO front end's node.
pub const MMIO_DEVICE_NAME: &str = "FWCM";

/// What the tables describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcpiConfig {
    /// The port-I/O fw_cfg device, `Some(dma)` when registered.
    pub fw_cfg_pio: Option<bool>,
    /// The MMIO fw_cfg window's base, when registered.
    pub fw_cfg_mmio: Option<u32>,
}

/// One table placed in guest memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcpiTable {
    /// The signature (`RSD PTR ` is shortened to `RSDP`).
    pub signature: [u8; 4],
    /// Guest-physical address.
    pub addr: u64,
    /// The bytes, header and checksum included.
    pub bytes: Vec<u8>,
}

/// The tables and where they go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcpiTables {
    /// RSDP, DSDT, FADT, MADT, XSDT, in address order.
    pub tables: Vec<AcpiTable>,
}

impl AcpiTables {
    /// The RSDP's guest-physical address (`boot_params.acpi_rsdp_addr`).
    pub fn rsdp_addr(&self) -> u64 {
        ACPI_START
    }

    /// The table with `signature` (`b"RSDP"` for the RSDP).
    pub fn get(&self, signature: &[u8; 4]) -> Option<&AcpiTable> {
        self.tables.iter().find(|t| &t.signature == signature)
    }

    /// Writes every table into guest memory.
    pub fn write_to(&self, memory: &GuestMemoryMmap) -> Result<(), Error> {
        for t in &self.tables {
            memory
                .write_slice(&t.bytes, GuestAddress(t.addr))
                .map_err(|source| Error::GuestWrite {
                    addr: t.addr,
                    source,
                })?;
        }
        Ok(())
    }
}

/// [`MMIO_DEVICE_NAME`] as an ACPI name segment, checked at compile time.
const MMIO_ACPI_NAME: AcpiName = match AcpiName::new(MMIO_DEVICE_NAME) {
    Ok(name) => name,
    Err(_) => panic!("MMIO_DEVICE_NAME is not an ACPI name"),
};

/// The device crate's node for the MMIO window at `base`, named
/// [`MMIO_DEVICE_NAME`].
pub fn mmio_node(base: u32) -> Vec<u8> {
    FwCfgAcpi::mmio(base).with_name(MMIO_ACPI_NAME).to_bytes()
}

/// The DSDT: `Scope (\_SB) { Device (FWCF) {...} Device (FWCM) {...} }`
/// with the devices `config` registers.
pub fn dsdt(config: &AcpiConfig) -> Result<Vec<u8>, Error> {
    let mut table = Sdt::new(*b"DSDT", 36, 2, OEM_ID, *b"FWCFGDSD", OEM_REVISION);
    let mut devices: Vec<Raw> = Vec::new();
    if let Some(dma) = config.fw_cfg_pio {
        devices.push(Raw(FwCfgAcpi::x86(dma).to_bytes()));
    }
    if let Some(base) = config.fw_cfg_mmio {
        devices.push(Raw(mmio_node(base)));
    }
    let children: Vec<&dyn Aml> = devices.iter().map(|d| d as &dyn Aml).collect();
    Scope::new(Path::new("\\_SB_"), children).to_aml_bytes(&mut table);
    table.update_checksum();
    Ok(table.as_slice().to_vec())
}

/// A hardware-reduced FADT pointing to the DSDT at `dsdt_addr`.
pub fn fadt(dsdt_addr: u64) -> Vec<u8> {
    let mut b = FADTBuilder::new(OEM_ID, *b"FWCFGFAC", OEM_REVISION)
        .flag(Flags::HwReducedAcpi)
        .dsdt_64(dsdt_addr);
    b.hypervisor_vendor_identity = u64::from_le_bytes(*b"FWCFGVMM").into();
    aml_bytes(&b.finalize())
}

/// A MADT with one enabled local APIC (ID 0) and the IO-APIC.
pub fn madt() -> Vec<u8> {
    let mut m = MADT::new(
        OEM_ID,
        *b"FWCFGMAD",
        OEM_REVISION,
        LocalInterruptController::Address(LAPIC_ADDRESS),
    );
    m.add_structure(ProcessorLocalApic::new(0, 0, EnabledStatus::Enabled));
    m.add_structure(IoApic::new(0, IOAPIC_ADDRESS, 0));
    aml_bytes(&m)
}

fn align(addr: u64) -> u64 {
    (addr + 15) & !15
}

/// Builds the tables for `config`, placed from [`ACPI_START`].
pub fn build(config: &AcpiConfig) -> Result<AcpiTables, Error> {
    let dsdt = dsdt(config)?;
    let rsdp_len = Rsdp::len() as u64;
    let dsdt_addr = align(ACPI_START + rsdp_len);
    let fadt = fadt(dsdt_addr);
    let fadt_addr = align(dsdt_addr + dsdt.len() as u64);
    let madt = madt();
    let madt_addr = align(fadt_addr + fadt.len() as u64);
    let xsdt_addr = align(madt_addr + madt.len() as u64);
    let mut xsdt = XSDT::new(OEM_ID, *b"FWCFGXSD", OEM_REVISION);
    xsdt.add_entry(fadt_addr);
    xsdt.add_entry(madt_addr);
    let xsdt = aml_bytes(&xsdt);
    if xsdt_addr + xsdt.len() as u64 > ACPI_END {
        return Err(Error::AcpiTooBig(
            xsdt_addr + xsdt.len() as u64 - ACPI_START,
        ));
    }
    let rsdp = aml_bytes(&Rsdp::new(OEM_ID, xsdt_addr));
    let t = |signature: &[u8; 4], addr, bytes| AcpiTable {
        signature: *signature,
        addr,
        bytes,
    };
    Ok(AcpiTables {
        tables: vec![
            t(b"RSDP", ACPI_START, rsdp),
            t(b"DSDT", dsdt_addr, dsdt),
            t(b"FACP", fadt_addr, fadt),
            t(b"APIC", madt_addr, madt),
            t(b"XSDT", xsdt_addr, xsdt),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(b: &[u8]) -> u8 {
        b.iter().fold(0u8, |a, x| a.wrapping_add(*x))
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    fn u64_at(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }

    const BOTH: AcpiConfig = AcpiConfig {
        fw_cfg_pio: Some(true),
        fw_cfg_mmio: Some(0xd000_0000),
    };

    #[test]
    fn every_table_has_a_valid_header_and_checksum() {
        let t = build(&BOTH).unwrap();
        let rsdp = &t.get(b"RSDP").unwrap().bytes;
        assert_eq!(&rsdp[..8], b"RSD PTR ");
        assert_eq!(rsdp.len(), 36);
        assert_eq!(sum(&rsdp[..20]), 0);
        assert_eq!(sum(rsdp), 0);
        assert_eq!(rsdp[15], 2); // revision: ACPI 2.0+, XSDT used
        assert_eq!(t.rsdp_addr() % 16, 0);
        for sig in [b"DSDT", b"FACP", b"APIC", b"XSDT"] {
            let table = t.get(sig).unwrap();
            assert_eq!(&table.bytes[..4], sig);
            assert_eq!(u32_at(&table.bytes, 4) as usize, table.bytes.len());
            assert_eq!(sum(&table.bytes), 0, "{}", String::from_utf8_lossy(sig));
            assert_eq!(table.addr % 16, 0);
        }
        let last = t.tables.last().unwrap();
        assert!(last.addr + last.bytes.len() as u64 <= ACPI_END);
        for w in t.tables.windows(2) {
            assert!(w[0].addr + w[0].bytes.len() as u64 <= w[1].addr);
        }
    }

    #[test]
    fn pointers_link_rsdp_xsdt_fadt_dsdt_and_madt() {
        let t = build(&BOTH).unwrap();
        let rsdp = &t.get(b"RSDP").unwrap().bytes;
        let xsdt = t.get(b"XSDT").unwrap();
        assert_eq!(u64_at(rsdp, 24), xsdt.addr);
        let entries: Vec<u64> = xsdt.bytes[36..]
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(
            entries,
            [t.get(b"FACP").unwrap().addr, t.get(b"APIC").unwrap().addr]
        );
        let fadt = &t.get(b"FACP").unwrap().bytes;
        // X_DSDT at offset 140; flags at 112 with HW_REDUCED_ACPI (bit 20).
        assert_eq!(u64_at(fadt, 140), t.get(b"DSDT").unwrap().addr);
        assert_ne!(u32_at(fadt, 112) & (1 << 20), 0);
        assert_eq!(fadt[8], 6); // FADT major version 6 (hardware-reduced needs 5+)
    }

    #[test]
    fn madt_has_one_lapic_and_the_ioapic() {
        let m = madt();
        assert_eq!(u32_at(&m, 36), LAPIC_ADDRESS);
        assert_eq!(&m[44..52], &[0, 8, 0, 0, 1, 0, 0, 0]);
        assert_eq!(&m[52..56], &[1, 12, 0, 0]);
        assert_eq!(u32_at(&m, 56), IOAPIC_ADDRESS);
        assert_eq!(u32_at(&m, 60), 0);
        assert_eq!(m.len(), 64);
    }

    #[test]
    fn dsdt_holds_the_device_crates_nodes() {
        use fw_cfg_device::acpi::{DEVICE_NAME, find_device};
        let d = dsdt(&BOTH).unwrap();
        let pio = FwCfgAcpi::x86(true).to_bytes();
        assert_eq!(find_device(&d, DEVICE_NAME), Some(&pio[..]));
        let mmio = FwCfgAcpi::mmio(0xd000_0000).to_bytes();
        let renamed = find_device(&d, MMIO_DEVICE_NAME).unwrap();
        assert_eq!(renamed.len(), mmio.len());
        assert_eq!(&renamed[..3], &mmio[..3]);
        assert_eq!(&renamed[7..], &mmio[7..]);

        let only_pio = dsdt(&AcpiConfig {
            fw_cfg_pio: Some(false),
            fw_cfg_mmio: None,
        })
        .unwrap();
        assert_eq!(
            find_device(&only_pio, DEVICE_NAME),
            Some(&FwCfgAcpi::x86(false).to_bytes()[..])
        );
        assert_eq!(find_device(&only_pio, MMIO_DEVICE_NAME), None);
        // The same table the device crate builds for one node.
        let alone = fw_cfg_device::acpi::dsdt(&FwCfgAcpi::x86(false), OEM_ID, *b"FWCFGDSD");
        assert_eq!(only_pio, alone);
    }
}
