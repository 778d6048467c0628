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
//!   Firecracker use), pointing to the DSDT, with the hardware-reduced
//!   sleep control and status registers and the reset register
//!   ([`crate::devices::AcpiPower`] at [`ACPI_POWER_PORT`]: Linux's
//!   `poweroff` and `reboot` reach the VMM), and "CMOS RTC not present"
//!   in its IA-PC boot flags (see below);
//! - a MADT with one local APIC (processor UID 0, APIC ID 0), the
//!   IO-APIC of KVM's in-kernel irqchip at [`IOAPIC_ADDRESS`], GSI base 0
//!   (ISA IRQs map one to one, so COM1's IRQ 4 is GSI 4), and LINT1 as
//!   every processor's NMI input (QEMU's Local APIC NMI entry);
//! - a DSDT whose `\_SB` scope holds exactly one fw_cfg node, as QEMU's
//!   x86 machines describe: the device crate's `Device (FWCF)`
//!   (`fw_cfg_device::acpi`) for the port-I/O front end, byte for byte
//!   QEMU's node (the MMIO window, registered for the PVH firmware's
//!   tests, is not described: Linux's driver supports one device and
//!   refuses a second with `-EBUSY`); `Device (COM1)` (`PNP0501`, ports
//!   0x3F8..0x3FF, edge-triggered GSI 4), as QEMU's microvm, Firecracker
//!   and Cloud Hypervisor describe it; and `_S5_`, the soft-off sleep
//!   type.
//!
//! Why COM1 is described: on a hardware-reduced platform Linux has no
//! legacy PIC and sets up no ISA IRQ mappings, so the 8250 driver's
//! built-in legacy port gets no working interrupt. Kernel messages still
//! appear (the console writes by polling), but a tty write (everything
//! userspace prints) waits for the transmitter-empty interrupt that never
//! comes. Through the `PNP0501` node the driver takes GSI 4, which the
//! VMM's irqfd raises.
//!
//! Why no RTC: the mini VMM has no CMOS/RTC device (the ports float
//! high), and a Linux guest's wall clock comes from kvmclock. The FADT
//! says so (IA-PC boot architecture flag "CMOS RTC not present", ACPI
//! 5.0+), so Linux registers no `rtc_cmos` device and never probes the
//! ports, instead of some 20 000 accesses ending in `rtc_cmos: broken or
//! not accessible`.
//!
//! The tables sit in the legacy BIOS area at [`ACPI_START`] (the RSDP
//! first, 16-byte aligned, so a guest that scans 0xE0000..0xFFFFF finds it
//! too), which the e820 map marks reserved; the RSDP's address also goes
//! into `boot_params.acpi_rsdp_addr`.

use acpi_tables::Aml;
use acpi_tables::aml::{
    Device, EISAName, IO, Interrupt, Name, Package, Path, ResourceTemplate, Scope,
};
use acpi_tables::fadt::{FADTBuilder, Flags};
use acpi_tables::gas::{AccessSize, AddressSpace, GAS};
use acpi_tables::madt::{
    EnabledStatus, IoApic, LocalInterruptController, MADT, ProcessorLocalApic,
};
use acpi_tables::rsdp::Rsdp;
use acpi_tables::sdt::Sdt;
use acpi_tables::xsdt::XSDT;
use fw_cfg_device::acpi::{FwCfgAcpi, RawAml as Raw, aml_bytes};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::Error;
use crate::devices::{RESET_VALUE, S5_SLEEP_TYPE};
use crate::layout::{ACPI_POWER_PORT, SERIAL_PORT, SERIAL_PORT_SIZE};

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
/// COM1's GSI (ISA IRQ 4).
pub const SERIAL_GSI: u32 = 4;
/// FADT IA-PC boot architecture flag: CMOS RTC not present (bit 5).
pub const IAPC_BOOT_ARCH_NO_CMOS_RTC: u16 = 1 << 5;

/// What the tables describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcpiConfig {
    /// The port-I/O fw_cfg device, `Some(dma)` when registered.
    pub fw_cfg_pio: Option<bool>,
    /// The MMIO fw_cfg window's base, when registered; described only
    /// when there is no port-I/O device (one fw_cfg node, as QEMU's).
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

    /// Where the last table ends ([`ACPI_START`] when there is none).
    pub fn end(&self) -> u64 {
        self.tables
            .iter()
            .map(|t| t.addr + t.bytes.len() as u64)
            .max()
            .unwrap_or(ACPI_START)
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

/// The fw_cfg node: the port-I/O device when registered, else the MMIO
/// window's, else none.
fn fw_cfg_node(config: &AcpiConfig) -> Option<Vec<u8>> {
    match (config.fw_cfg_pio, config.fw_cfg_mmio) {
        (Some(dma), _) => Some(FwCfgAcpi::x86(dma).to_bytes()),
        (None, Some(base)) => Some(FwCfgAcpi::mmio(base).to_bytes()),
        (None, None) => None,
    }
}

/// `Device (COM1)`: a 16550 (`PNP0501`) at [`SERIAL_PORT`] on the
/// edge-triggered, active-high [`SERIAL_GSI`].
pub fn serial_node() -> Vec<u8> {
    let port = SERIAL_PORT;
    let len = SERIAL_PORT_SIZE as u8;
    let hid = EISAName::new("PNP0501");
    let uid = 0u8;
    let io = IO::new(port, port, 1, len);
    let irq = Interrupt::new(true, true, false, false, SERIAL_GSI);
    let crs = ResourceTemplate::new(vec![&io, &irq]);
    let hid_name = Name::new(Path::new("_HID"), &hid);
    let uid_name = Name::new(Path::new("_UID"), &uid);
    let crs_name = Name::new(Path::new("_CRS"), &crs);
    aml_bytes(&Device::new(
        Path::new("COM1"),
        vec![&hid_name, &uid_name, &crs_name],
    ))
}

/// `Name (_S5_, Package () { 5 })`: the `SLP_TYP` of soft off.
pub fn s5_name() -> Vec<u8> {
    let sleep_type = S5_SLEEP_TYPE;
    let package = Package::new(vec![&sleep_type]);
    aml_bytes(&Name::new(Path::new("_S5_"), &package))
}

/// The DSDT: `Scope (\_SB) { Device (FWCF) {...} Device (COM1) {...} }`
/// and `_S5_`.
pub fn dsdt(config: &AcpiConfig) -> Result<Vec<u8>, Error> {
    let mut table = Sdt::new(*b"DSDT", 36, 2, OEM_ID, *b"FWCFGDSD", OEM_REVISION);
    let mut devices: Vec<Raw> = Vec::new();
    devices.extend(fw_cfg_node(config).map(Raw));
    devices.push(Raw(serial_node()));
    let children: Vec<&dyn Aml> = devices.iter().map(|d| d as &dyn Aml).collect();
    Scope::new(Path::new("\\_SB_"), children).to_aml_bytes(&mut table);
    Raw(s5_name()).to_aml_bytes(&mut table);
    table.update_checksum();
    Ok(table.as_slice().to_vec())
}

/// A one-byte register in port I/O space.
fn io_register(port: u16) -> GAS {
    GAS::new(
        AddressSpace::SystemIo,
        8,
        0,
        AccessSize::ByteAccess,
        u64::from(port),
    )
}

/// A hardware-reduced FADT pointing to the DSDT at `dsdt_addr`, with the
/// sleep control, sleep status and reset registers of
/// [`crate::devices::AcpiPower`] and no CMOS RTC.
pub fn fadt(dsdt_addr: u64) -> Vec<u8> {
    let mut b = FADTBuilder::new(OEM_ID, *b"FWCFGFAC", OEM_REVISION)
        .flag(Flags::HwReducedAcpi)
        .flag(Flags::ResetRegSup)
        .dsdt_64(dsdt_addr);
    b.hypervisor_vendor_identity = u64::from_le_bytes(*b"FWCFGVMM").into();
    b.sleep_control_reg = io_register(ACPI_POWER_PORT);
    b.sleep_status_reg = io_register(ACPI_POWER_PORT + 1);
    b.reset_reg = io_register(ACPI_POWER_PORT + 2);
    b.reset_value = RESET_VALUE;
    b.iapc_boot_arch = IAPC_BOOT_ARCH_NO_CMOS_RTC.into();
    aml_bytes(&b.finalize())
}

/// MADT structure type 4, Local APIC NMI (ACPI 6.5, 5.2.12.7).
const MADT_LOCAL_APIC_NMI: u8 = 4;
/// A Local APIC NMI's processor UID meaning "every processor".
const ALL_PROCESSORS: u8 = 0xff;

/// A MADT Local APIC NMI structure: the processors' LINT pin that is
/// wired to NMI (`acpi_tables` has no type for it).
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, zerocopy::IntoBytes, zerocopy::Immutable)]
pub struct LocalApicNmi {
    r#type: u8,
    length: u8,
    processor_uid: u8,
    /// MPS INTI flags: 0, conforming to the bus.
    flags: [u8; 2],
    lint: u8,
}

impl LocalApicNmi {
    /// NMI on local APIC input `lint` of every processor.
    pub fn all_processors(lint: u8) -> Self {
        LocalApicNmi {
            r#type: MADT_LOCAL_APIC_NMI,
            length: 6,
            processor_uid: ALL_PROCESSORS,
            flags: [0; 2],
            lint,
        }
    }
}

impl Aml for LocalApicNmi {
    fn to_aml_bytes(&self, sink: &mut dyn acpi_tables::AmlSink) {
        sink.vec(zerocopy::IntoBytes::as_bytes(self));
    }
}

/// A MADT with one enabled local APIC (ID 0), the IO-APIC, and LINT1 as
/// every processor's NMI input (as QEMU's MADT has it, and as
/// [`crate::linux::setup_vcpu`] programs the local APIC).
pub fn madt() -> Vec<u8> {
    let mut m = MADT::new(
        OEM_ID,
        *b"FWCFGMAD",
        OEM_REVISION,
        LocalInterruptController::Address(LAPIC_ADDRESS),
    );
    m.add_structure(ProcessorLocalApic::new(0, 0, EnabledStatus::Enabled));
    m.add_structure(IoApic::new(0, IOAPIC_ADDRESS, 0));
    m.add_structure(LocalApicNmi::all_processors(1));
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
        // Then the Local APIC NMI entry.
        assert_eq!(m.len(), 70);
    }

    #[test]
    fn dsdt_holds_one_fw_cfg_node_com1_and_s5() {
        use fw_cfg_device::acpi::{DEVICE_NAME, find_device};
        let d = dsdt(&BOTH).unwrap();
        let pio = FwCfgAcpi::x86(true).to_bytes();
        assert_eq!(find_device(&d, DEVICE_NAME), Some(&pio[..]));
        // The MMIO window is not described beside the port-I/O device.
        let mmio = FwCfgAcpi::mmio(0xd000_0000).to_bytes();
        assert!(!d.windows(mmio.len()).any(|w| w == &mmio[..]));
        assert_eq!(d.windows(8).filter(|w| w == b"QEMU0002").count(), 1);
        let com1 = serial_node();
        assert_eq!(find_device(&d, "COM1"), Some(&com1[..]));
        assert!(d.windows(s5_name().len()).any(|w| w == &s5_name()[..]));

        let only_pio = dsdt(&AcpiConfig {
            fw_cfg_pio: Some(false),
            fw_cfg_mmio: None,
        })
        .unwrap();
        assert_eq!(
            find_device(&only_pio, DEVICE_NAME),
            Some(&FwCfgAcpi::x86(false).to_bytes()[..])
        );
        // Without the port-I/O device, the MMIO window is the one node.
        let only_mmio = dsdt(&AcpiConfig {
            fw_cfg_pio: None,
            fw_cfg_mmio: Some(0xd000_0000),
        })
        .unwrap();
        assert_eq!(find_device(&only_mmio, DEVICE_NAME), Some(&mmio[..]));
    }

    #[test]
    fn com1_has_its_ports_and_an_edge_triggered_gsi_4() {
        let n = serial_node();
        // EISA ID of PNP0501 (a DWordConst).
        assert!(n.windows(5).any(|w| w == [0x0c, 0x41, 0xd0, 0x05, 0x01]));
        // IO (Decode16, 0x3F8, 0x3F8, 1, 8).
        assert!(
            n.windows(8)
                .any(|w| w == [0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08])
        );
        // Extended IRQ: consumer, edge, active high, exclusive; GSI 4.
        assert!(
            n.windows(9)
                .any(|w| w == [0x89, 0x06, 0x00, 0x03, 0x01, 0x04, 0, 0, 0])
        );
    }

    #[test]
    fn madt_ends_with_lint1_as_nmi_for_every_processor() {
        let m = madt();
        // Header (36), local APIC address and flags (8), local APIC (8),
        // IO-APIC (12), then the NMI structure.
        assert_eq!(m.len(), 36 + 8 + 8 + 12 + 6);
        assert_eq!(&m[64..], [4, 6, 0xff, 0, 0, 1]);
        assert_eq!(u32_at(&m, 4) as usize, m.len());
        assert_eq!(m.iter().fold(0u8, |s, b| s.wrapping_add(*b)), 0);
    }

    #[test]
    fn fadt_has_the_power_registers_and_no_cmos_rtc() {
        let f = fadt(0x1000);
        let gas = |at: usize| (f[at], f[at + 1], f[at + 2], f[at + 3], u64_at(&f, at + 4));
        let io = |port: u16| (1u8, 8u8, 0u8, 1u8, u64::from(port));
        // RESET_REG at 116, RESET_VALUE at 128, SLEEP_CONTROL_REG at 244,
        // SLEEP_STATUS_REG at 256 (ACPI 6.5, table 5.9).
        assert_eq!(gas(116), io(ACPI_POWER_PORT + 2));
        assert_eq!(f[128], RESET_VALUE);
        assert_eq!(gas(244), io(ACPI_POWER_PORT));
        assert_eq!(gas(256), io(ACPI_POWER_PORT + 1));
        // Flags at 112: RESET_REG_SUP (bit 10); IAPC_BOOT_ARCH at 109.
        assert_ne!(u32_at(&f, 112) & (1 << 10), 0);
        assert_eq!(
            u16::from_le_bytes([f[109], f[110]]),
            IAPC_BOOT_ARCH_NO_CMOS_RTC
        );
    }
}
