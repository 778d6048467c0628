// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The ACPI description of the fw_cfg device (feature `acpi`), byte for
//! byte the node QEMU puts in its DSDT, built with rust-vmm's
//! `acpi_tables` AML generator.
//!
//! Linux's `qemu_fw_cfg` driver binds to the ACPI device `QEMU0002` and
//! takes the registers from its `_CRS`; distribution kernels (Debian's
//! among them) are built without `CONFIG_FW_CFG_SYSFS_CMDLINE`, so a VMM
//! that wants such a guest to see fw_cfg must describe it in ACPI.
//!
//! QEMU's node, in ASL:
//!
//! ```text
//! Device (FWCF) {
//!     Name (_HID, "QEMU0002")
//!     Name (_STA, 0x0B)        // present, enabled, functioning, not shown in UI
//!     Name (_CRS, ResourceTemplate () {
//!         IO (Decode16, 0x0510, 0x0510, 0x01, 0x0C)   // 0x02 without DMA
//!     })
//! }
//! ```
//!
//! On x86 QEMU places it in `\_SB.PCI0` (`-M pc`, `-M q35`); the I/O
//! length is 12 with the DMA interface (selector and data at 0x510..0x512,
//! DMA address at 0x514..0x51c) and 2 without. The MMIO variant (Arm
//! `virt`) adds `_CCA` (cache-coherent DMA) and describes the window with
//! `Memory32Fixed (ReadWrite, base, 0x18)`.
//!
//! ```
//! use fw_cfg_device::acpi::FwCfgAcpi;
//!
//! let aml = FwCfgAcpi::x86(true).to_bytes();
//! // Device (FWCF) { ... } starts with ExtOpPrefix DeviceOp.
//! assert_eq!(&aml[..2], &[0x5b, 0x82]);
//! assert!(aml.windows(8).any(|w| w == b"QEMU0002"));
//! ```

use acpi_tables::aml::{self, Device, IO, Memory32Fixed, Name, Path, ResourceTemplate};
use acpi_tables::{Aml, AmlSink};

use crate::abi::{ACPI_HID, MMIO_WINDOW_SIZE, PIO_SELECTOR_PORT};

/// QEMU's name for the device.
pub const DEVICE_NAME: &str = "FWCF";
/// `_STA`: present (bit 0), enabled (bit 1), functioning (bit 3), not
/// shown in the UI (bit 2 clear).
pub const STA: u8 = 0x0b;
/// I/O length with the DMA interface: the 16-bit control register rounded
/// up to 4, plus the 8-byte DMA address register.
pub const IO_LENGTH_DMA: u8 = 0x0c;
/// I/O length without DMA: the 16-bit control register, which the 8-bit
/// data register overlaps.
pub const IO_LENGTH_NO_DMA: u8 = 0x02;

/// Why a string is not an ACPI name segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AcpiNameError {
    /// A name segment is exactly four bytes.
    #[error("an ACPI name is 4 characters, not {len} bytes")]
    BadLength {
        /// The length given.
        len: usize,
    },
    /// A byte outside `A-Z`, `_` (and, after the first, `0-9`).
    #[error("byte {byte:#04x} at position {position} is not allowed in an ACPI name")]
    BadCharacter {
        /// The offending byte.
        byte: u8,
        /// Its position, 0 to 3.
        position: usize,
    },
}

/// A validated ACPI name segment (`NameSeg`): four characters, the first
/// `A-Z` or `_`, the others `A-Z`, `0-9` or `_` (ACPI 6.5, 20.2.2).
///
/// ```
/// use fw_cfg_device::acpi::{AcpiName, AcpiNameError};
///
/// assert_eq!(AcpiName::new("FWCM").unwrap().as_str(), "FWCM");
/// assert_eq!(AcpiName::new("FWC"), Err(AcpiNameError::BadLength { len: 3 }));
/// assert!(AcpiName::new("0FWC").is_err());
/// assert!(AcpiName::new("fwcf").is_err());
/// // Checked at compile time:
/// const FWCM: AcpiName = match AcpiName::new("FWCM") {
///     Ok(name) => name,
///     Err(_) => panic!("not an ACPI name"),
/// };
/// assert_eq!(FWCM.as_str(), "FWCM");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AcpiName([u8; 4]);

impl AcpiName {
    /// QEMU's name for the device, `FWCF`.
    pub const FWCF: AcpiName = AcpiName(*b"FWCF");

    /// Checks `name` and makes it a name segment. A `const fn`, so a
    /// constant name can be checked at compile time.
    pub const fn new(name: &str) -> Result<Self, AcpiNameError> {
        let b = name.as_bytes();
        if b.len() != 4 {
            return Err(AcpiNameError::BadLength { len: b.len() });
        }
        let mut position = 0;
        while position < 4 {
            let byte = b[position];
            let ok = byte.is_ascii_uppercase()
                || byte == b'_'
                || (position > 0 && byte.is_ascii_digit());
            if !ok {
                return Err(AcpiNameError::BadCharacter { byte, position });
            }
            position += 1;
        }
        Ok(AcpiName([b[0], b[1], b[2], b[3]]))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes pass `new`.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The registers a node describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcpiRegisters {
    /// x86 port I/O at `base` (0x510), with or without DMA.
    Pio {
        /// First port.
        base: u16,
        /// Whether the DMA registers are part of the device.
        dma: bool,
    },
    /// An MMIO window at `base` of `size` bytes (0x18), cache-coherent.
    Mmio {
        /// Guest-physical base (below 4 GiB: `Memory32Fixed`).
        base: u32,
        /// Window size.
        size: u32,
    },
}

/// The ACPI node of one fw_cfg device: its name and its registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FwCfgAcpi {
    name: AcpiName,
    registers: AcpiRegisters,
}

impl FwCfgAcpi {
    /// A node called `name` describing `registers`.
    pub const fn new(name: AcpiName, registers: AcpiRegisters) -> Self {
        FwCfgAcpi { name, registers }
    }

    /// QEMU's x86 node: `FWCF`, ports 0x510.., 12 bytes with DMA, 2
    /// without.
    pub const fn x86(dma: bool) -> Self {
        Self::new(
            AcpiName::FWCF,
            AcpiRegisters::Pio {
                base: PIO_SELECTOR_PORT,
                dma,
            },
        )
    }

    /// QEMU's Arm `virt` node (`FWCF`) for a window at `base`.
    pub const fn mmio(base: u32) -> Self {
        Self::new(
            AcpiName::FWCF,
            AcpiRegisters::Mmio {
                base,
                size: MMIO_WINDOW_SIZE as u32,
            },
        )
    }

    /// The same node under another name, e.g. for a second fw_cfg device
    /// in the same scope.
    pub const fn with_name(self, name: AcpiName) -> Self {
        Self::new(name, self.registers)
    }

    /// The node's name.
    pub const fn name(&self) -> AcpiName {
        self.name
    }

    /// The registers the node describes.
    pub const fn registers(&self) -> AcpiRegisters {
        self.registers
    }

    /// The AML bytes of `Device (NAME) { ... }`.
    pub fn to_bytes(&self) -> Vec<u8> {
        aml_bytes(self)
    }

    /// The `_CRS` resource template's AML (a `Buffer` object).
    pub fn crs_bytes(&self) -> Vec<u8> {
        match self.registers {
            AcpiRegisters::Pio { base, dma } => {
                let len = if dma { IO_LENGTH_DMA } else { IO_LENGTH_NO_DMA };
                let io = IO::new(base, base, 1, len);
                aml_bytes(&ResourceTemplate::new(vec![&io]))
            }
            AcpiRegisters::Mmio { base, size } => {
                let mem = Memory32Fixed::new(true, base, size);
                aml_bytes(&ResourceTemplate::new(vec![&mem]))
            }
        }
    }
}

/// The AML encoding of any `acpi_tables` object.
///
/// ```
/// use fw_cfg_device::acpi::{RawAml, aml_bytes};
///
/// assert_eq!(aml_bytes(&RawAml(vec![0x5b, 0x82])), [0x5b, 0x82]);
/// ```
pub fn aml_bytes(aml: &dyn Aml) -> Vec<u8> {
    let mut v = Vec::new();
    aml.to_aml_bytes(&mut v);
    v
}

/// Bytes that are already AML, as an AML object: lets an encoded node
/// (such as [`FwCfgAcpi::to_bytes`]) or a resource template go where
/// `acpi_tables` expects an [`Aml`] object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAml(pub Vec<u8>);

impl Aml for RawAml {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        sink.vec(&self.0);
    }
}

impl Aml for FwCfgAcpi {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        let hid = Name::new(Path::new("_HID"), &ACPI_HID);
        let sta = Name::new(Path::new("_STA"), &STA);
        let cca = Name::new(Path::new("_CCA"), &aml::ONE);
        let crs = Name::new(Path::new("_CRS"), &RawAml(self.crs_bytes()));
        let children: Vec<&dyn Aml> = match self.registers {
            AcpiRegisters::Pio { .. } => vec![&hid, &sta, &crs],
            AcpiRegisters::Mmio { .. } => vec![&hid, &sta, &cca, &crs],
        };
        Device::new(Path::new(self.name.as_str()), children).to_aml_bytes(sink);
    }
}

/// A whole DSDT (header and checksum included) that holds only
/// `Scope (\_SB) { Device (NAME) { ... } }`: enough for a guest to find
/// the device, or to append to a VMM's own DSDT body.
pub fn dsdt(device: &FwCfgAcpi, oem_id: [u8; 6], oem_table_id: [u8; 8]) -> Vec<u8> {
    let mut table = acpi_tables::sdt::Sdt::new(*b"DSDT", 36, 2, oem_id, oem_table_id, 1);
    aml::Scope::new(Path::new("\\_SB_"), vec![device]).to_aml_bytes(&mut table);
    table.update_checksum();
    table.as_slice().to_vec()
}

/// Finds `Device (name)` in AML bytes (a DSDT or SSDT, header included or
/// not) and returns its encoding, from the `DeviceOp` prefix to the end of
/// its package. Used to compare another VMM's node with ours.
pub fn find_device<'a>(aml: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let name = name.as_bytes();
    (0..aml.len().saturating_sub(2)).find_map(|i| {
        if aml[i] != 0x5b || aml[i + 1] != 0x82 {
            return None;
        }
        let (len, used) = pkg_length(&aml[i + 2..])?;
        let name_at = i + 2 + used;
        if aml.get(name_at..name_at + name.len())? != name {
            return None;
        }
        aml.get(i..i + 2 + len)
    })
}

/// Decodes an AML `PkgLength`: (value, bytes used).
fn pkg_length(b: &[u8]) -> Option<(usize, usize)> {
    let lead = *b.first()?;
    let follow = usize::from(lead >> 6);
    if follow == 0 {
        return Some((usize::from(lead & 0x3f), 1));
    }
    let mut len = usize::from(lead & 0x0f);
    for k in 0..follow {
        len |= usize::from(*b.get(1 + k)?) << (4 + 8 * k);
    }
    Some((len, 1 + follow))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checksum_ok(table: &[u8]) -> bool {
        table.iter().fold(0u8, |a, b| a.wrapping_add(*b)) == 0
    }

    /// The bytes QEMU's `aml_device`/`aml_name_decl`/`aml_io` produce for
    /// the x86 node with DMA, written out by hand from the AML grammar
    /// (ACPI 6.5, chapters 6.4 and 20): what `-M pc`'s DSDT carries (the
    /// Linux-under-QEMU test compares with the live table, and disassembles
    /// both with ACPICA's `iasl`).
    #[rustfmt::skip]
    const QEMU_X86_DMA: &[u8] = &[
        0x5b, 0x82, 0x2e, b'F', b'W', b'C', b'F',                   // Device (FWCF), PkgLength 46
        0x08, b'_', b'H', b'I', b'D',                                // Name (_HID,
        0x0d, b'Q', b'E', b'M', b'U', b'0', b'0', b'0', b'2', 0x00,  //   "QEMU0002")
        0x08, b'_', b'S', b'T', b'A', 0x0a, 0x0b,                    // Name (_STA, 0x0B)
        0x08, b'_', b'C', b'R', b'S',                                // Name (_CRS,
        0x11, 0x0d, 0x0a, 0x0a,                                      //   Buffer (10) {
        0x47, 0x01, 0x10, 0x05, 0x10, 0x05, 0x01, 0x0c,              //     IO (Decode16, 0x510, 0x510, 1, 12)
        0x79, 0x00,                                                  //     EndTag })
    ];

    #[test]
    fn x86_node_bytes_are_qemus() {
        assert_eq!(FwCfgAcpi::x86(true).to_bytes(), QEMU_X86_DMA);
        assert_eq!(find_device(QEMU_X86_DMA, DEVICE_NAME), Some(QEMU_X86_DMA));
    }

    #[test]
    fn x86_node_without_dma_covers_two_ports() {
        let b = FwCfgAcpi::x86(false).to_bytes();
        assert_eq!(b.len(), QEMU_X86_DMA.len());
        assert_eq!(
            &b[b.len() - 10..],
            &[0x47, 0x01, 0x10, 0x05, 0x10, 0x05, 0x01, 0x02, 0x79, 0x00]
        );
    }

    #[test]
    fn mmio_node_has_cca_and_memory32fixed() {
        let b = FwCfgAcpi::mmio(0x0902_0000).to_bytes();
        #[rustfmt::skip]
        let tail: &[u8] = &[
            0x08, b'_', b'C', b'C', b'A', 0x01,                      // Name (_CCA, One)
            0x08, b'_', b'C', b'R', b'S',                            // Name (_CRS,
            0x11, 0x11, 0x0a, 0x0e,                                  //   Buffer (14) {
            0x86, 0x09, 0x00, 0x01,                                  //     Memory32Fixed (ReadWrite,
            0x00, 0x00, 0x02, 0x09, 0x18, 0x00, 0x00, 0x00,          //       0x09020000, 0x18)
            0x79, 0x00,                                              //     EndTag })
        ];
        assert!(b.ends_with(tail), "{b:02x?}");
        assert_eq!(
            &b[..7],
            &[0x5b, 0x82, b.len() as u8 - 2, b'F', b'W', b'C', b'F']
        );
        assert_eq!(&b[7..29], &QEMU_X86_DMA[7..29]); // same _HID and _STA
    }

    #[test]
    fn dsdt_wraps_the_node_in_sb() {
        let t = dsdt(&FwCfgAcpi::x86(true), *b"FWCFGT", *b"FWCFGTST");
        assert_eq!(&t[..4], b"DSDT");
        assert_eq!(
            u32::from_le_bytes(t[4..8].try_into().unwrap()) as usize,
            t.len()
        );
        assert!(checksum_ok(&t));
        // Scope (\_SB_) { Device (FWCF) ... }
        assert_eq!(&t[36..38], &[0x10, 2 + 5 + QEMU_X86_DMA.len() as u8 - 1]);
        assert_eq!(&t[38..43], b"\\_SB_");
        assert_eq!(find_device(&t, DEVICE_NAME), Some(QEMU_X86_DMA));
    }

    #[test]
    fn find_device_skips_other_devices_and_handles_long_packages() {
        let mut aml = vec![0x10, 0x00]; // noise
        // A device with a two-byte PkgLength (0x4X lead byte).
        let mut other = vec![0x5b, 0x82, 0x45, 0x01];
        other.extend_from_slice(b"OTHR");
        other.resize(2 + 0x15, 0); // PkgLength 0x15 counts from itself
        aml.extend_from_slice(&other);
        let ours = FwCfgAcpi::x86(false).to_bytes();
        aml.extend_from_slice(&ours);
        assert_eq!(find_device(&aml, DEVICE_NAME), Some(&ours[..]));
        assert_eq!(find_device(&aml, "NONE"), None);
        assert_eq!(pkg_length(&[0x45, 0x01]), Some((0x15, 2)));
        assert_eq!(pkg_length(&[0x2e]), Some((0x2e, 1)));
        assert_eq!(pkg_length(&[0x80, 0x01]), None);
    }

    #[test]
    fn renamed_node_differs_only_in_its_name() {
        let fwcm = AcpiName::new("FWCM").unwrap();
        let renamed = FwCfgAcpi::mmio(0x0902_0000).with_name(fwcm);
        assert_eq!(renamed.name(), fwcm);
        let (a, b) = (FwCfgAcpi::mmio(0x0902_0000).to_bytes(), renamed.to_bytes());
        assert_eq!(a.len(), b.len());
        assert_eq!(&b[3..7], b"FWCM");
        assert_eq!((&a[..3], &a[7..]), (&b[..3], &b[7..]));
        assert_eq!(find_device(&b, "FWCM"), Some(&b[..]));
        assert_eq!(find_device(&b, DEVICE_NAME), None);
        assert_eq!(
            renamed.registers(),
            AcpiRegisters::Mmio {
                base: 0x0902_0000,
                size: 0x18
            }
        );
    }

    #[test]
    fn acpi_names_are_checked() {
        assert_eq!(AcpiName::new(DEVICE_NAME), Ok(AcpiName::FWCF));
        assert_eq!(AcpiName::new("_SB_").unwrap().as_str(), "_SB_");
        assert_eq!(AcpiName::new("A1_9").unwrap().as_str(), "A1_9");
        assert_eq!(
            AcpiName::new("FWCFG"),
            Err(AcpiNameError::BadLength { len: 5 })
        );
        assert_eq!(
            AcpiName::new("1ABC"),
            Err(AcpiNameError::BadCharacter {
                byte: b'1',
                position: 0
            })
        );
        assert_eq!(
            AcpiName::new("AB-C"),
            Err(AcpiNameError::BadCharacter {
                byte: b'-',
                position: 2
            })
        );
        // Four bytes, but not four ASCII characters.
        assert!(AcpiName::new("\u{e9}AB").is_err());
    }
}
