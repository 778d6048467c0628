// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The fw_cfg ABI and the phys-bits channel formats, in one place.
//!
//! `#![no_std]`, no allocation and no dependencies: the device crate and the
//! guest reader both depend on this crate and on nothing of each other.
//!
//! Every constant here is what QEMU's `hw/nvram/fw_cfg.c` and
//! `docs/specs/fw_cfg.rst` define (or, for the phys-bits items, what this
//! project's `spec/phys-bits-valid.md` defines). Both ends of the project use
//! this crate: the VMM-side device renders these bytes and the guest reader
//! parses them, so they cannot drift apart.
//!
//! Byte order summary, as in QEMU:
//! - integer *items* (ID, RAM size, CPU counts, ...) are little-endian;
//! - the file directory and the DMA descriptor are big-endian;
//! - the x86 selector port takes a little-endian 16-bit write, the MMIO
//!   selector register a big-endian one;
//! - the DMA address registers are big-endian.

#![no_std]
#![deny(missing_docs)]

// ---------------------------------------------------------------------------
// Well-known selector keys (QEMU's FW_CFG_*).
// ---------------------------------------------------------------------------

/// `"QEMU"`: the signature item.
pub const KEY_SIGNATURE: u16 = 0x00;
/// LE32 feature bitmap: [`ID_TRADITIONAL`] | [`ID_DMA`].
pub const KEY_ID: u16 = 0x01;
/// 16-byte machine UUID.
pub const KEY_UUID: u16 = 0x02;
/// LE64 RAM size in bytes.
pub const KEY_RAM_SIZE: u16 = 0x03;
/// LE16, non-zero when the machine has no graphical display.
pub const KEY_NOGRAPHIC: u16 = 0x04;
/// LE16 number of boot CPUs.
pub const KEY_NB_CPUS: u16 = 0x05;
/// LE16 machine id.
pub const KEY_MACHINE_ID: u16 = 0x06;
/// LE32 guest-physical load address of the kernel.
pub const KEY_KERNEL_ADDR: u16 = 0x07;
/// LE32 size of the kernel.
pub const KEY_KERNEL_SIZE: u16 = 0x08;
/// Legacy kernel command line key (QEMU keeps it reserved).
pub const KEY_KERNEL_CMDLINE: u16 = 0x09;
/// LE32 guest-physical load address of the initrd.
pub const KEY_INITRD_ADDR: u16 = 0x0a;
/// LE32 size of the initrd.
pub const KEY_INITRD_SIZE: u16 = 0x0b;
/// LE16 legacy boot device.
pub const KEY_BOOT_DEVICE: u16 = 0x0c;
/// NUMA description: LE64 node count, then LE64 per CPU, then LE64 per node.
pub const KEY_NUMA: u16 = 0x0d;
/// LE16, non-zero when the boot menu is enabled.
pub const KEY_BOOT_MENU: u16 = 0x0e;
/// LE16 maximum number of CPUs.
pub const KEY_MAX_CPUS: u16 = 0x0f;
/// LE32 kernel entry point.
pub const KEY_KERNEL_ENTRY: u16 = 0x10;
/// Kernel image bytes.
pub const KEY_KERNEL_DATA: u16 = 0x11;
/// Initrd bytes.
pub const KEY_INITRD_DATA: u16 = 0x12;
/// LE32 guest-physical address of the command line.
pub const KEY_CMDLINE_ADDR: u16 = 0x13;
/// LE32 size of the command line, including the NUL.
pub const KEY_CMDLINE_SIZE: u16 = 0x14;
/// Command line bytes, NUL-terminated.
pub const KEY_CMDLINE_DATA: u16 = 0x15;
/// LE32 guest-physical address of the Linux setup header.
pub const KEY_SETUP_ADDR: u16 = 0x16;
/// LE32 size of the Linux setup header.
pub const KEY_SETUP_SIZE: u16 = 0x17;
/// Linux setup header bytes.
pub const KEY_SETUP_DATA: u16 = 0x18;
/// The file directory (see [`FileDirEntry`]).
pub const KEY_FILE_DIR: u16 = 0x19;
/// Selector of the first named file.
pub const KEY_FILE_FIRST: u16 = 0x20;
/// Bit 14 of the selector: the guest asks for write access. QEMU keeps the
/// bit in the saved selector but ignores it when looking the item up.
pub const KEY_WRITE_CHANNEL: u16 = 0x4000;
/// Bit 15 of the selector: architecture-local items.
pub const KEY_ARCH_LOCAL: u16 = 0x8000;
/// The "nothing selected" key.
pub const KEY_INVALID: u16 = 0xffff;

/// x86 arch-local: ACPI tables (legacy, QEMU uses `etc/acpi/tables` now).
pub const KEY_X86_ACPI_TABLES: u16 = KEY_ARCH_LOCAL;
/// x86 arch-local: SMBIOS entries.
pub const KEY_X86_SMBIOS: u16 = KEY_ARCH_LOCAL + 1;
/// x86 arch-local: LE32 IRQ0 override flag.
pub const KEY_X86_IRQ0_OVERRIDE: u16 = KEY_ARCH_LOCAL + 2;
/// x86 arch-local: legacy E820 reservation table.
pub const KEY_X86_E820_TABLE: u16 = KEY_ARCH_LOCAL + 3;
/// x86 arch-local: HPET description.
pub const KEY_X86_HPET: u16 = KEY_ARCH_LOCAL + 4;

/// Largest number of file slots: files may not reach [`KEY_WRITE_CHANNEL`].
pub const FILE_SLOTS_MAX: u16 = KEY_WRITE_CHANNEL - KEY_FILE_FIRST;

// ---------------------------------------------------------------------------
// Signature and ID.
// ---------------------------------------------------------------------------

/// Contents of [`KEY_SIGNATURE`].
pub const SIGNATURE: [u8; 4] = *b"QEMU";
/// [`KEY_ID`] bit: the traditional (selector + data register) interface.
pub const ID_TRADITIONAL: u32 = 1 << 0;
/// [`KEY_ID`] bit: the DMA interface.
pub const ID_DMA: u32 = 1 << 1;
/// What reading the DMA address register returns: `"QEMU CFG"` as a
/// big-endian 64-bit value.
pub const DMA_SIGNATURE: u64 = 0x5145_4d55_2043_4647;

// ---------------------------------------------------------------------------
// Register layouts.
// ---------------------------------------------------------------------------

/// x86 I/O port of the selector register (16-bit, little-endian).
pub const PIO_SELECTOR_PORT: u16 = 0x510;
/// x86 I/O port of the data register (8-bit reads).
pub const PIO_DATA_PORT: u16 = 0x511;
/// x86 I/O port of the DMA address register (high half at this port, low
/// half at +4; big-endian).
pub const PIO_DMA_PORT: u16 = 0x514;
/// Size of the x86 port window starting at [`PIO_SELECTOR_PORT`] (QEMU
/// registers 0x510..0x51c when DMA is enabled).
pub const PIO_WINDOW_SIZE: u16 = 0x0c;
/// Offset of the selector inside the x86 window.
pub const PIO_SELECTOR_OFFSET: u16 = 0;
/// Offset of the data register inside the x86 window.
pub const PIO_DATA_OFFSET: u16 = 1;
/// Offset of the DMA address register inside the x86 window.
pub const PIO_DMA_OFFSET: u16 = 4;

/// MMIO: offset of the data register (1, 2, 4 or 8-byte reads).
pub const MMIO_DATA_OFFSET: u64 = 0x00;
/// MMIO: offset of the selector register (16-bit, big-endian).
pub const MMIO_SELECTOR_OFFSET: u64 = 0x08;
/// MMIO: offset of the DMA address register (big-endian).
pub const MMIO_DMA_OFFSET: u64 = 0x10;
/// MMIO: size of the register window.
pub const MMIO_WINDOW_SIZE: u64 = 0x18;
/// Base address QEMU's Arm `virt` machine uses.
pub const MMIO_BASE_ARM_VIRT: u64 = 0x0902_0000;
/// Base address QEMU's RISC-V `virt` machine uses.
pub const MMIO_BASE_RISCV_VIRT: u64 = 0x1010_0000;
/// Device-tree `compatible` string of the MMIO variant.
pub const MMIO_DT_COMPATIBLE: &str = "qemu,fw-cfg-mmio";
/// ACPI hardware id of the device.
pub const ACPI_HID: &str = "QEMU0002";

// ---------------------------------------------------------------------------
// DMA.
// ---------------------------------------------------------------------------

/// DMA control bit: the transfer failed (written back by the device).
pub const DMA_CTL_ERROR: u32 = 0x01;
/// DMA control bit: read from the selected item into guest memory.
pub const DMA_CTL_READ: u32 = 0x02;
/// DMA control bit: advance the item offset by `length` bytes.
pub const DMA_CTL_SKIP: u32 = 0x04;
/// DMA control bit: select the item in bits 31..16 first.
pub const DMA_CTL_SELECT: u32 = 0x08;
/// DMA control bit: write guest memory into the selected item.
pub const DMA_CTL_WRITE: u32 = 0x10;
/// Size in bytes of a [`DmaAccess`] descriptor in guest memory.
pub const DMA_ACCESS_SIZE: usize = 16;

/// A DMA descriptor as it sits in guest memory: `{BE32 control, BE32
/// length, BE64 address}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DmaAccess {
    /// Control word: selector in bits 31..16, `DMA_CTL_*` bits below.
    pub control: u32,
    /// Number of bytes to transfer.
    pub length: u32,
    /// Guest-physical address of the buffer.
    pub address: u64,
}

impl DmaAccess {
    /// A descriptor that selects `key` and then performs the operation
    /// `op` (`DMA_CTL_READ`, `DMA_CTL_WRITE`, `DMA_CTL_SKIP`, or 0).
    pub const fn select(key: u16, op: u32, length: u32, address: u64) -> Self {
        DmaAccess {
            control: ((key as u32) << 16) | DMA_CTL_SELECT | op,
            length,
            address,
        }
    }

    /// Decodes the big-endian guest layout.
    pub fn from_be_bytes(bytes: &[u8; DMA_ACCESS_SIZE]) -> Self {
        DmaAccess {
            control: u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            length: u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
            address: u64::from_be_bytes([
                bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14],
                bytes[15],
            ]),
        }
    }

    /// Encodes the big-endian guest layout.
    pub fn to_be_bytes(&self) -> [u8; DMA_ACCESS_SIZE] {
        let mut out = [0u8; DMA_ACCESS_SIZE];
        out[0..4].copy_from_slice(&self.control.to_be_bytes());
        out[4..8].copy_from_slice(&self.length.to_be_bytes());
        out[8..16].copy_from_slice(&self.address.to_be_bytes());
        out
    }

    /// The selector carried in bits 31..16 of the control word.
    pub const fn selector(&self) -> u16 {
        (self.control >> 16) as u16
    }
}

// ---------------------------------------------------------------------------
// File directory.
// ---------------------------------------------------------------------------

/// Size of the name field of a directory entry, NUL included.
pub const FILE_NAME_SIZE: usize = 56;
/// Longest file name, without the terminating NUL.
pub const FILE_NAME_MAX_LEN: usize = FILE_NAME_SIZE - 1;
/// Size of one directory entry.
pub const FILE_DIR_ENTRY_SIZE: usize = 64;

/// Why a name cannot stand in the file directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileNameError {
    /// The name is empty.
    Empty,
    /// The name contains a NUL byte (the directory stores it
    /// NUL-terminated).
    ContainsNul,
    /// The name is longer than the [`FILE_NAME_MAX_LEN`] bytes the
    /// directory can hold.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
}

impl core::fmt::Display for FileNameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FileNameError::Empty => f.write_str("the name is empty"),
            FileNameError::ContainsNul => f.write_str("the name contains a NUL byte"),
            FileNameError::TooLong { len } => {
                write!(f, "name too long ({len} bytes, max. {FILE_NAME_MAX_LEN})")
            }
        }
    }
}

impl core::error::Error for FileNameError {}

/// Whether `name` can stand in the file directory: not empty, no NUL, at
/// most [`FILE_NAME_MAX_LEN`] bytes. QEMU's `fw_cfg_add_file` takes the
/// name into a 56-byte NUL-terminated field; the device refuses what does
/// not fit and the reader refuses to look such a name up.
///
/// ```
/// use fw_cfg_abi::{FileNameError, check_file_name};
///
/// assert_eq!(check_file_name(b"etc/phys-bits-valid"), Ok(()));
/// assert_eq!(check_file_name(b""), Err(FileNameError::Empty));
/// assert_eq!(check_file_name(b"a\0b"), Err(FileNameError::ContainsNul));
/// assert_eq!(check_file_name(&[b'x'; 56]), Err(FileNameError::TooLong { len: 56 }));
/// ```
pub const fn check_file_name(name: &[u8]) -> Result<(), FileNameError> {
    if name.is_empty() {
        return Err(FileNameError::Empty);
    }
    let mut i = 0;
    while i < name.len() {
        if name[i] == 0 {
            return Err(FileNameError::ContainsNul);
        }
        i += 1;
    }
    if name.len() > FILE_NAME_MAX_LEN {
        return Err(FileNameError::TooLong { len: name.len() });
    }
    Ok(())
}
/// Size of the directory header (a BE32 entry count).
pub const FILE_DIR_HEADER_SIZE: usize = 4;

/// One 64-byte entry of the file directory: `{BE32 size, BE16 select, BE16
/// reserved, name[56]}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileDirEntry {
    /// Size of the file in bytes.
    pub size: u32,
    /// Selector key of the file.
    pub select: u16,
    /// Reserved, zero in QEMU's directory.
    pub reserved: u16,
    /// Name, NUL-padded. A well-formed name has at least one NUL.
    pub name: [u8; FILE_NAME_SIZE],
}

impl FileDirEntry {
    /// Decodes the big-endian layout.
    pub fn from_be_bytes(bytes: &[u8; FILE_DIR_ENTRY_SIZE]) -> Self {
        let mut name = [0u8; FILE_NAME_SIZE];
        name.copy_from_slice(&bytes[8..]);
        FileDirEntry {
            size: u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            select: u16::from_be_bytes([bytes[4], bytes[5]]),
            reserved: u16::from_be_bytes([bytes[6], bytes[7]]),
            name,
        }
    }

    /// Encodes the big-endian layout.
    pub fn to_be_bytes(&self) -> [u8; FILE_DIR_ENTRY_SIZE] {
        let mut out = [0u8; FILE_DIR_ENTRY_SIZE];
        out[0..4].copy_from_slice(&self.size.to_be_bytes());
        out[4..6].copy_from_slice(&self.select.to_be_bytes());
        out[6..8].copy_from_slice(&self.reserved.to_be_bytes());
        out[8..].copy_from_slice(&self.name);
        out
    }

    /// The name up to its first NUL, or `None` when the field has no NUL
    /// (a malformed entry).
    pub fn name_bytes(&self) -> Option<&[u8]> {
        let end = self.name.iter().position(|&b| b == 0)?;
        Some(&self.name[..end])
    }
}

// ---------------------------------------------------------------------------
// The CPUID channel.
// ---------------------------------------------------------------------------

/// First hypervisor CPUID leaf.
pub const CPUID_HYPERVISOR_BASE: u32 = 0x4000_0000;
/// End (exclusive) of the hypervisor-leaf scan.
pub const CPUID_HYPERVISOR_END: u32 = 0x4001_0000;
/// Step of the hypervisor-leaf scan.
pub const CPUID_HYPERVISOR_STEP: u32 = 0x100;
/// Signature KVM returns in EBX, ECX, EDX of its base leaf.
pub const KVM_SIGNATURE: [u8; 12] = *b"KVMKVMKVM\0\0\0";
/// Offset of the KVM features leaf from the base leaf.
pub const KVM_FEATURES_LEAF_OFFSET: u32 = 1;
/// Features leaf EDX bit 0: vCPUs are never preempted for long.
pub const KVM_HINTS_REALTIME: u32 = 1 << 0;
/// Features leaf EDX bit 1 (proposed): CPUID 0x80000008's physical address
/// size is backed by the host.
pub const KVM_HINTS_PHYS_ADDRESS_SIZE_DATA_VALID: u32 = 1 << 1;
/// CPUID.1:ECX bit 31: running under a hypervisor.
pub const CPUID_1_ECX_HYPERVISOR: u32 = 1 << 31;
/// Extended leaf with the address sizes.
pub const CPUID_ADDRESS_SIZES_LEAF: u32 = 0x8000_0008;
/// AMD's encrypted-memory leaf (EAX bit 1: SEV; EBX\[5:0\]: C-bit).
pub const CPUID_SEV_LEAF: u32 = 0x8000_001f;
/// CPUID 0x8000001F EAX bit 1: SEV.
pub const CPUID_SEV_EAX_SEV: u32 = 1 << 1;
/// CPUID 0x8000001F EBX\[5:0\]: the C-bit's position.
pub const CPUID_SEV_EBX_C_BIT_MASK: u32 = 0x3f;
/// Intel TDX's identification leaf.
pub const CPUID_TDX_LEAF: u32 = 0x21;
/// Leaf 0x21's signature (EBX, EDX, ECX, as leaf 0's vendor).
pub const TDX_SIGNATURE: [u8; 12] = *b"IntelTDX    ";

/// Physical address width from CPUID 0x80000008 EAX (bits 7..0).
pub const fn cpuid_phys_bits(eax: u32) -> u8 {
    (eax & 0xff) as u8
}

/// Guest-physical address width from CPUID 0x80000008 EAX (bits 23..16);
/// 0 means "same as the physical width".
pub const fn cpuid_guest_phys_bits(eax: u32) -> u8 {
    ((eax >> 16) & 0xff) as u8
}

/// The EBX, ECX and EDX words of a hypervisor signature leaf
/// (0x4000_0000 + n×0x100): bytes 0..4 little-endian in EBX, 4..8 in ECX,
/// 8..12 in EDX. The inverse of [`hypervisor_signature_from_regs`].
///
/// ```
/// use fw_cfg_abi::{KVM_SIGNATURE, hypervisor_signature_regs};
/// assert_eq!(
///     hypervisor_signature_regs(&KVM_SIGNATURE),
///     [0x4b4d_564b, 0x564b_4d56, 0x0000_004d]
/// );
/// ```
pub const fn hypervisor_signature_regs(signature: &[u8; 12]) -> [u32; 3] {
    let s = signature;
    [
        u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
        u32::from_le_bytes([s[4], s[5], s[6], s[7]]),
        u32::from_le_bytes([s[8], s[9], s[10], s[11]]),
    ]
}

/// The 12-byte signature a hypervisor leaf carries in `ebx`, `ecx`, `edx`
/// (in that order, each little-endian). The inverse of
/// [`hypervisor_signature_regs`].
pub const fn hypervisor_signature_from_regs(ebx: u32, ecx: u32, edx: u32) -> [u8; 12] {
    let (b, c, d) = (ebx.to_le_bytes(), ecx.to_le_bytes(), edx.to_le_bytes());
    [
        b[0], b[1], b[2], b[3], c[0], c[1], c[2], c[3], d[0], d[1], d[2], d[3],
    ]
}

/// [`KVM_SIGNATURE`] as the EBX, ECX and EDX words of KVM's base leaf.
pub const KVM_SIGNATURE_REGS: [u32; 3] = hypervisor_signature_regs(&KVM_SIGNATURE);

/// The 12-byte vendor signature of CPUID leaf 0 (and of 0x8000_0000 on CPUs
/// that fill it): bytes 0..4 in EBX, 4..8 in **EDX**, 8..12 in ECX, each
/// little-endian. Note the register order differs from a hypervisor leaf's.
///
/// ```
/// use fw_cfg_abi::vendor_signature_from_regs;
/// let (ebx, ecx, edx) = (0x756e_6547, 0x6c65_746e, 0x4965_6e69);
/// assert_eq!(&vendor_signature_from_regs(ebx, ecx, edx), b"GenuineIntel");
/// ```
pub const fn vendor_signature_from_regs(ebx: u32, ecx: u32, edx: u32) -> [u8; 12] {
    hypervisor_signature_from_regs(ebx, edx, ecx)
}

/// Width the architecture guarantees to every x86-64 CPU; the conservative
/// answer when nothing says more.
pub const CONSERVATIVE_PHYS_BITS: u8 = 36;

// ---------------------------------------------------------------------------
// The fw_cfg channel: `etc/phys-bits-valid`.
// ---------------------------------------------------------------------------

/// Name of the fw_cfg file that carries the phys-bits statement.
pub const PHYS_BITS_FILE_NAME: &str = "etc/phys-bits-valid";
/// Size of a version-1 file.
pub const PHYS_BITS_FILE_V1_SIZE: usize = 8;
/// Size of a version-2 file (the same 8 bytes; byte 4 gains a meaning).
pub const PHYS_BITS_FILE_V2_SIZE: usize = 8;
/// The format version this crate writes.
pub const PHYS_BITS_FILE_VERSION: u8 = 2;
/// The smallest physical width QEMU accepts (`phys-bits`, `guest-phys-bits`).
pub const MIN_PHYS_BITS: u8 = 32;
/// The largest physical width x86-64 defines, and QEMU's upper bound.
pub const MAX_PHYS_BITS: u8 = 52;

/// The effective width `W` of CPUID 0x80000008: EAX\[7:0\] capped by a
/// non-zero EAX\[23:16\]. "Valid" means every guest-physical address
/// below 2^W is backed.
pub const fn effective_width(phys_bits: u8, guest_phys_bits: u8) -> u8 {
    if guest_phys_bits != 0 && guest_phys_bits < phys_bits {
        guest_phys_bits
    } else {
        phys_bits
    }
}

/// Why bytes are not a usable `etc/phys-bits-valid` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PhysBitsFileError {
    /// Fewer than [`PHYS_BITS_FILE_V1_SIZE`] bytes.
    TooShort(usize),
    /// Version 0 is not a version.
    BadVersion(u8),
    /// The valid flag is neither 0 nor 1.
    BadValidFlag(u8),
    /// The physical width is 0 or larger than 64.
    BadPhysBits(u8),
    /// The guest-physical width is larger than 64.
    BadGuestPhysBits(u8),
    /// A version-1 file has non-zero reserved bytes 4..8, or a version-2
    /// file non-zero reserved bytes 5..8.
    ReservedNotZero,
    /// A version-2 backed width that is neither 0 (not stated) nor within
    /// 1..=64.
    BadBackedBits(u8),
}

impl core::fmt::Display for PhysBitsFileError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PhysBitsFileError::TooShort(n) => write!(
                f,
                "phys-bits-valid file has {n} bytes, at least {PHYS_BITS_FILE_V1_SIZE} needed"
            ),
            PhysBitsFileError::BadVersion(v) => write!(f, "phys-bits-valid version {v} is invalid"),
            PhysBitsFileError::BadValidFlag(v) => {
                write!(f, "phys-bits-valid flag {v} is neither 0 nor 1")
            }
            PhysBitsFileError::BadPhysBits(v) => {
                write!(f, "phys-bits-valid physical width {v} is outside 1..=64")
            }
            PhysBitsFileError::BadGuestPhysBits(v) => {
                write!(f, "phys-bits-valid guest-physical width {v} is above 64")
            }
            PhysBitsFileError::ReservedNotZero => {
                write!(f, "phys-bits-valid has non-zero reserved bytes")
            }
            PhysBitsFileError::BadBackedBits(v) => {
                write!(f, "phys-bits-valid backed width {v} is above 64")
            }
        }
    }
}

impl core::error::Error for PhysBitsFileError {}

/// The contents of `etc/phys-bits-valid`.
///
/// Version 1 layout (8 bytes): byte 0 version, byte 1 valid flag (1 = every
/// guest-physical address below 2^W is backed by the host, W being the
/// effective width of the CPUID values in bytes 2 and 3, see
/// [`effective_width`]; 0 = the VMM knows it is not), byte 2 the physical
/// width the VMM put in CPUID 0x80000008 EAX\[7:0\], byte 3 the
/// guest-physical width it put in EAX\[23:16\] (0 = none), bytes 4..8 zero.
///
/// Version 2 (this crate writes it) gives byte 4 a meaning: the widest
/// effective width the VMM knows the host backs (0 = not stated); bytes
/// 5..8 stay zero. The valid flag is then exactly "W <= byte 4". A
/// version-1 reader accepts version 2 (it reads the version-1 fields), so
/// the change is backward compatible. Later versions may only append or use
/// the reserved bytes; readers accept any version >= 1, read the fields
/// their version defines, and ignore the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhysBitsFile {
    /// Format version ([`PHYS_BITS_FILE_VERSION`] for files this crate
    /// writes).
    pub version: u8,
    /// Whether every address below 2^W (the CPUID width) is backed.
    pub valid: bool,
    /// The physical width the VMM advertised in CPUID.
    pub phys_bits: u8,
    /// The guest-physical width the VMM advertised, 0 for none.
    pub guest_phys_bits: u8,
    /// The widest width the VMM knows the host backs (version 2 byte 4);
    /// 0 when not stated (always 0 in version 1).
    pub backed_bits: u8,
}

impl PhysBitsFile {
    /// A version-2 statement that does not state the backed width.
    pub const fn new(valid: bool, phys_bits: u8, guest_phys_bits: u8) -> Self {
        PhysBitsFile {
            version: PHYS_BITS_FILE_VERSION,
            valid,
            phys_bits,
            guest_phys_bits,
            backed_bits: 0,
        }
    }

    /// The same statement, also stating the backed width.
    pub const fn with_backed_bits(mut self, backed_bits: u8) -> Self {
        self.backed_bits = backed_bits;
        self
    }

    /// The effective width `W` the file's CPUID values give.
    pub const fn width(&self) -> u8 {
        effective_width(self.phys_bits, self.guest_phys_bits)
    }

    /// Renders the bytes of [`PHYS_BITS_FILE_VERSION`] (2).
    pub const fn to_bytes(&self) -> [u8; PHYS_BITS_FILE_V2_SIZE] {
        [
            PHYS_BITS_FILE_VERSION,
            self.valid as u8,
            self.phys_bits,
            self.guest_phys_bits,
            self.backed_bits,
            0,
            0,
            0,
        ]
    }

    /// Parses a file: strict about anything shorter than version 1 and
    /// about the reserved bytes of versions 1 and 2, tolerant of longer
    /// files and of later versions.
    pub fn parse(bytes: &[u8]) -> Result<Self, PhysBitsFileError> {
        if bytes.len() < PHYS_BITS_FILE_V1_SIZE {
            return Err(PhysBitsFileError::TooShort(bytes.len()));
        }
        let version = bytes[0];
        if version == 0 {
            return Err(PhysBitsFileError::BadVersion(version));
        }
        let valid = match bytes[1] {
            0 => false,
            1 => true,
            other => return Err(PhysBitsFileError::BadValidFlag(other)),
        };
        let phys_bits = bytes[2];
        if phys_bits == 0 || phys_bits > 64 {
            return Err(PhysBitsFileError::BadPhysBits(phys_bits));
        }
        let guest_phys_bits = bytes[3];
        if guest_phys_bits > 64 {
            return Err(PhysBitsFileError::BadGuestPhysBits(guest_phys_bits));
        }
        let reserved_from = if version == 1 { 4 } else { 5 };
        if version <= 2
            && bytes[reserved_from..PHYS_BITS_FILE_V1_SIZE]
                .iter()
                .any(|&b| b != 0)
        {
            return Err(PhysBitsFileError::ReservedNotZero);
        }
        let backed_bits = if version >= 2 { bytes[4] } else { 0 };
        if backed_bits > 64 {
            return Err(PhysBitsFileError::BadBackedBits(backed_bits));
        }
        Ok(PhysBitsFile {
            version,
            valid,
            phys_bits,
            guest_phys_bits,
            backed_bits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dma_descriptor_is_big_endian() {
        let d = DmaAccess::select(KEY_FILE_DIR, DMA_CTL_READ, 0x40, 0x1122_3344_5566_7788);
        let b = d.to_be_bytes();
        assert_eq!(&b[0..4], &[0x00, 0x19, 0x00, 0x0a]);
        assert_eq!(&b[4..8], &[0, 0, 0, 0x40]);
        assert_eq!(&b[8..16], &[0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
        assert_eq!(DmaAccess::from_be_bytes(&b), d);
        assert_eq!(d.selector(), KEY_FILE_DIR);
    }

    #[test]
    fn dma_signature_spells_qemu_cfg() {
        assert_eq!(&DMA_SIGNATURE.to_be_bytes(), b"QEMU CFG");
    }

    #[test]
    fn dir_entry_round_trip_and_name() {
        let mut name = [0u8; FILE_NAME_SIZE];
        name[..PHYS_BITS_FILE_NAME.len()].copy_from_slice(PHYS_BITS_FILE_NAME.as_bytes());
        let e = FileDirEntry {
            size: 8,
            select: 0x21,
            reserved: 0,
            name,
        };
        let b = e.to_be_bytes();
        assert_eq!(&b[0..8], &[0, 0, 0, 8, 0, 0x21, 0, 0]);
        let back = FileDirEntry::from_be_bytes(&b);
        assert_eq!(back, e);
        assert_eq!(back.name_bytes(), Some(PHYS_BITS_FILE_NAME.as_bytes()));
        let unterminated = FileDirEntry {
            name: [b'a'; FILE_NAME_SIZE],
            ..e
        };
        assert_eq!(unterminated.name_bytes(), None);
    }

    #[test]
    fn effective_width_caps_at_a_non_zero_guest_width() {
        assert_eq!(effective_width(42, 39), 39);
        assert_eq!(effective_width(40, 0), 40);
        // A guest width above the physical one does not widen it.
        assert_eq!(effective_width(39, 48), 39);
    }

    #[test]
    fn cpuid_width_fields() {
        assert_eq!(cpuid_phys_bits(0x0025_3027), 39);
        assert_eq!(cpuid_guest_phys_bits(0x0025_3027), 37);
        assert_eq!(cpuid_guest_phys_bits(0x0000_3028), 0);
    }

    #[test]
    fn signature_register_packing() {
        // KVM's base leaf as Linux's kvm_para.h documents it.
        assert_eq!(KVM_SIGNATURE_REGS, [0x4b4d_564b, 0x564b_4d56, 0x4d]);
        assert_eq!(
            &hypervisor_signature_from_regs(0x4b4d_564b, 0x564b_4d56, 0x4d),
            b"KVMKVMKVM\0\0\0"
        );
        // Round trips, with bytes that differ in every position.
        let sig: [u8; 12] = *b"0123456789ab";
        let [ebx, ecx, edx] = hypervisor_signature_regs(&sig);
        assert_eq!(ebx, u32::from_le_bytes(*b"0123"));
        assert_eq!(edx, u32::from_le_bytes(*b"89ab"));
        assert_eq!(hypervisor_signature_from_regs(ebx, ecx, edx), sig);
        // Leaf 0 puts the middle four bytes in EDX, not ECX.
        let amd = vendor_signature_from_regs(
            u32::from_le_bytes(*b"Auth"),
            u32::from_le_bytes(*b"cAMD"),
            u32::from_le_bytes(*b"enti"),
        );
        assert_eq!(&amd, b"AuthenticAMD");
    }

    #[test]
    fn phys_bits_file_v1_round_trip() {
        let f = PhysBitsFile::new(true, 39, 37);
        assert_eq!(f.to_bytes(), [2, 1, 39, 37, 0, 0, 0, 0]);
        assert_eq!(PhysBitsFile::parse(&f.to_bytes()), Ok(f));
        let invalid = PhysBitsFile::new(false, 40, 0).with_backed_bits(39);
        assert_eq!(invalid.to_bytes(), [2, 0, 40, 0, 39, 0, 0, 0]);
        assert_eq!(PhysBitsFile::parse(&invalid.to_bytes()), Ok(invalid));
        // A version-1 file has no backed width.
        let v1 = PhysBitsFile::parse(&[1, 1, 39, 37, 0, 0, 0, 0]).unwrap();
        assert_eq!((v1.version, v1.backed_bits, v1.width()), (1, 0, 37));
        assert_eq!(
            PhysBitsFile::parse(&[1, 0, 40, 0, 39, 0, 0, 0]),
            Err(PhysBitsFileError::ReservedNotZero)
        );
        assert_eq!(
            PhysBitsFile::parse(&[2, 0, 40, 0, 39, 1, 0, 0]),
            Err(PhysBitsFileError::ReservedNotZero)
        );
        assert_eq!(
            PhysBitsFile::parse(&[2, 0, 40, 0, 65, 0, 0, 0]),
            Err(PhysBitsFileError::BadBackedBits(65))
        );
    }

    #[test]
    fn phys_bits_file_rejects_corrupt_and_short() {
        assert_eq!(
            PhysBitsFile::parse(&[1, 1, 39, 0, 0, 0, 0]),
            Err(PhysBitsFileError::TooShort(7))
        );
        assert_eq!(
            PhysBitsFile::parse(&[]),
            Err(PhysBitsFileError::TooShort(0))
        );
        assert_eq!(
            PhysBitsFile::parse(&[0, 1, 39, 0, 0, 0, 0, 0]),
            Err(PhysBitsFileError::BadVersion(0))
        );
        assert_eq!(
            PhysBitsFile::parse(&[1, 2, 39, 0, 0, 0, 0, 0]),
            Err(PhysBitsFileError::BadValidFlag(2))
        );
        assert_eq!(
            PhysBitsFile::parse(&[1, 1, 0, 0, 0, 0, 0, 0]),
            Err(PhysBitsFileError::BadPhysBits(0))
        );
        assert_eq!(
            PhysBitsFile::parse(&[1, 1, 65, 0, 0, 0, 0, 0]),
            Err(PhysBitsFileError::BadPhysBits(65))
        );
        assert_eq!(
            PhysBitsFile::parse(&[1, 1, 40, 65, 0, 0, 0, 0]),
            Err(PhysBitsFileError::BadGuestPhysBits(65))
        );
        assert_eq!(
            PhysBitsFile::parse(&[1, 1, 40, 0, 0, 0, 1, 0]),
            Err(PhysBitsFileError::ReservedNotZero)
        );
    }

    #[test]
    fn phys_bits_file_tolerates_future_versions() {
        let v3 = [3, 1, 46, 44, 46, 9, 9, 9, 0xaa, 0xbb];
        let f = PhysBitsFile::parse(&v3).expect("future version accepted");
        assert_eq!(f.version, 3);
        assert!(f.valid);
        assert_eq!(
            (f.phys_bits, f.guest_phys_bits, f.backed_bits),
            (46, 44, 46)
        );
        // Version 1 with trailing bytes is also accepted.
        assert!(PhysBitsFile::parse(&[1, 0, 40, 0, 0, 0, 0, 0, 7]).is_ok());
    }

    #[test]
    fn file_slot_limit_matches_qemu() {
        assert_eq!(FILE_SLOTS_MAX, 0x3fe0);
        assert_eq!(KEY_FILE_FIRST + FILE_SLOTS_MAX, KEY_WRITE_CHANNEL);
    }
}

/// The README's usage example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_example {}
