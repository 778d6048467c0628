// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Linux boot items from a bzImage, as QEMU's `x86_load_linux`
//! (hw/i386/x86-common.c) fills them for `-kernel`, `-initrd` and
//! `-append` (feature `linux-boot`, x86 only).
//!
//! The firmware (SeaBIOS, qboot) reads these items and hands them to the
//! option ROM `linuxboot_dma.bin`, which copies the setup part to
//! `SETUP_ADDR`, the protected-mode part to `KERNEL_ADDR`, the initrd to
//! `INITRD_ADDR` and the command line to `CMDLINE_ADDR`, then jumps into
//! the setup code. [`LinuxBoot::from_bzimage`] does what `x86_load_linux`
//! does before that:
//!
//! - the boot protocol version from the `HdrS` header (offset 0x202);
//! - the load addresses: a "high and recent" kernel (protocol 2.02+,
//!   `LOADED_HIGH`) gets setup at 0x10000, the command line at 0x20000 and
//!   the kernel at 0x100000; older ones setup at 0x90000 and the command
//!   line below 0x9a000 (and the kernel at 0x10000 when not loaded high);
//! - the highest initrd address: 4 GiB - 1 with `XLF_CAN_BE_LOADED_ABOVE_4G`
//!   (protocol 2.12+), else the header's `initrd_addr_max` (2.03+), else
//!   0x37ffffff; capped below the top of RAM under 4 GiB minus the ACPI
//!   data size; the initrd sits page-aligned just below it;
//! - the header fields patched in the setup part: `type_of_loader` 0xb0,
//!   `loadflags |= CAN_USE_HEAP` and `heap_end_ptr`, `cmd_line_ptr` (or
//!   the old command-line magic at 0x20), `ramdisk_image`/`ramdisk_size`,
//!   `vid_mode` from a `vga=` parameter;
//! - the split of the image: `(setup_sects + 1) * 512` bytes of setup (4
//!   sectors when the field is 0), the rest is the protected-mode kernel;
//!   the whole unpatched image is also served as `etc/boot/kernel`.
//!
//! Not done (QEMU does them): multiboot and PVH ELF kernels, `-dtb`, and
//! the SEV kernel hashes. Header fields are read and written through
//! linux-loader's `setup_header`.

use linux_loader::loader::bootparam::setup_header;
use vm_memory::ByteValued;

use crate::builder::FwCfgBuilder;
use crate::error::BuildError;

/// Offset of the setup header in a bzImage.
pub const SETUP_HEADER_OFFSET: usize = 0x1f1;
/// `"HdrS"`, the boot protocol magic at offset 0x202.
pub const HDRS_MAGIC: u32 = 0x5372_6448;
/// `type_of_loader` QEMU writes: high nibble 0xB is QEMU, revision 0.
pub const QEMU_LOADER_TYPE: u8 = 0xb0;
/// Name of the file with the whole, unpatched kernel image.
pub const BOOT_KERNEL_FILE_NAME: &str = "etc/boot/kernel";
/// The option ROM QEMU uses to boot a bzImage with DMA.
pub const LINUXBOOT_DMA_ROM: &str = "linuxboot_dma.bin";

/// `loadflags` bit 0: the protected-mode code is loaded at 0x100000.
const LOADED_HIGH: u8 = 0x01;
/// `loadflags` bit 7: `heap_end_ptr` is valid.
const CAN_USE_HEAP: u8 = 0x80;
/// `xloadflags` bit 1: the initrd may be loaded above 4 GiB.
const XLF_CAN_BE_LOADED_ABOVE_4G: u16 = 0x02;
/// The part of the image QEMU reads as "the header" and patches.
const HEADER_BYTES: usize = 8192;

/// Why a bzImage cannot be booted through fw_cfg.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinuxBootError {
    /// The image is too short to hold the setup header.
    #[error("kernel image of {len} bytes is too short for a Linux setup header ({need} bytes)")]
    Truncated {
        /// The image length.
        len: usize,
        /// The length the header needs.
        need: usize,
    },
    /// No `HdrS` magic: not a bzImage (an ELF kernel boots through PVH).
    #[error("kernel image has no Linux boot protocol header (HdrS)")]
    NoHeader,
    /// The boot protocol is older than 2.00, which cannot take an initrd
    /// nor be loaded high.
    #[error("Linux boot protocol {version:#06x} is too old (2.00 or newer needed)")]
    ProtocolTooOld {
        /// The version from the header.
        version: u16,
    },
    /// The setup part the header announces is longer than the image.
    #[error("setup part of {setup_size} bytes is longer than the {len}-byte kernel image")]
    SetupTooLarge {
        /// `(setup_sects + 1) * 512`.
        setup_size: usize,
        /// The image length.
        len: usize,
    },
    /// The initrd does not fit below the highest address it may use.
    #[error("initrd of {size} bytes does not fit below {max:#x}")]
    InitrdTooLarge {
        /// The initrd length.
        size: usize,
        /// The highest initrd address.
        max: u32,
    },
    /// RAM below 4 GiB is not above the ACPI data size, or above 4 GiB.
    #[error(
        "{below_4g:#x} bytes of RAM below 4 GiB leave no room after {acpi_data_size:#x} bytes of ACPI data"
    )]
    InvalidMemory {
        /// RAM below 4 GiB.
        below_4g: u64,
        /// The ACPI data size.
        acpi_data_size: u64,
    },
    /// The command line has a `vga=` value QEMU refuses.
    #[error("invalid vga= kernel parameter")]
    InvalidVgaMode,
    /// The command line contains a NUL byte.
    #[error("kernel command line contains a NUL byte")]
    CmdlineContainsNul,
}

/// Where the machine's memory ends, as `x86_load_linux` is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinuxBootMemory {
    /// RAM below 4 GiB (QEMU's `below_4g_mem_size`; microvm: all RAM up
    /// to 3 GiB).
    pub below_4g: u64,
    /// Bytes kept free at the top of that RAM for ACPI tables (microvm
    /// passes 0; `-M pc` 0x28000).
    pub acpi_data_size: u64,
}

/// The boot items of one kernel, initrd and command line, ready for
/// [`add_to`](Self::add_to).
#[derive(Clone, PartialEq, Eq)]
pub struct LinuxBoot {
    /// The boot protocol version.
    pub protocol: u16,
    /// `SETUP_ADDR`: where the setup part goes.
    pub setup_addr: u32,
    /// `SETUP_DATA`: the setup part with the patched header.
    pub setup: Vec<u8>,
    /// `KERNEL_ADDR`: where the protected-mode part goes.
    pub kernel_addr: u32,
    /// `CMDLINE_ADDR`: where the command line goes.
    pub cmdline_addr: u32,
    /// The command line (served with a NUL).
    pub cmdline: String,
    /// `INITRD_ADDR`, when there is an initrd.
    pub initrd_addr: Option<u32>,
    /// The highest address the initrd may reach (after the RAM cap).
    pub initrd_max: u32,
    /// The whole image as given (`etc/boot/kernel`; its tail after the
    /// setup part is `KERNEL_DATA`).
    image: Vec<u8>,
    /// `INITRD_DATA`.
    initrd: Option<Vec<u8>>,
}

impl std::fmt::Debug for LinuxBoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinuxBoot")
            .field("protocol", &format_args!("{:#06x}", self.protocol))
            .field("setup_addr", &format_args!("{:#x}", self.setup_addr))
            .field("setup_len", &self.setup.len())
            .field("kernel_addr", &format_args!("{:#x}", self.kernel_addr))
            .field("kernel_len", &self.kernel().len())
            .field("cmdline_addr", &format_args!("{:#x}", self.cmdline_addr))
            .field("initrd_addr", &self.initrd_addr)
            .field("initrd_len", &self.initrd.as_ref().map(Vec::len))
            .finish()
    }
}

/// Load addresses `(real_addr, cmdline_addr, prot_addr)` by protocol, as
/// `x86_load_linux` chooses them.
fn load_addresses(protocol: u16, loadflags: u8, cmdline_len: usize) -> (u32, u32, u32) {
    // QEMU's "paranoia" alignment of the command line below 0x9a000.
    let cmdline_size = u32::try_from((cmdline_len + 16) & !15).unwrap_or(u32::MAX);
    let low_cmdline = 0x9a000u32.saturating_sub(cmdline_size);
    if protocol < 0x200 || loadflags & LOADED_HIGH == 0 {
        (0x90000, low_cmdline, 0x10000)
    } else if protocol < 0x202 {
        (0x90000, low_cmdline, 0x100000)
    } else {
        (0x10000, 0x20000, 0x100000)
    }
}

/// The highest initrd address before the RAM cap.
fn initrd_limit(protocol: u16, hdr: &setup_header) -> u32 {
    if protocol >= 0x20c && hdr.xloadflags & XLF_CAN_BE_LOADED_ABOVE_4G != 0 {
        u32::MAX
    } else if protocol >= 0x203 {
        hdr.initrd_addr_max
    } else {
        0x37ff_ffff
    }
}

/// The video mode of a `vga=` parameter, as `x86_load_linux` parses it.
fn vga_mode(cmdline: &str) -> Result<Option<u16>, LinuxBootError> {
    let Some(at) = cmdline.find("vga=") else {
        return Ok(None);
    };
    let v = &cmdline[at + 4..];
    for (word, mode) in [("normal", 0xffff), ("ext", 0xfffe), ("ask", 0xfffd)] {
        if v.starts_with(word) {
            return Ok(Some(mode));
        }
    }
    let token = v.split(' ').next().unwrap_or("");
    // qemu_strtoui with base 0: 0x hex, leading 0 octal, else decimal.
    let parsed = if let Some(hex) = token
        .strip_prefix("0x")
        .or_else(|| token.strip_prefix("0X"))
    {
        u32::from_str_radix(hex, 16)
    } else if token.len() > 1 && token.starts_with('0') {
        u32::from_str_radix(&token[1..], 8)
    } else {
        token.parse::<u32>()
    };
    // QEMU stores the value with stw_le_p: the low 16 bits.
    parsed
        .map(|m| Some(m as u16))
        .map_err(|_| LinuxBootError::InvalidVgaMode)
}

/// Reads the setup header of `image` (which holds at least its bytes).
fn read_header(image: &[u8]) -> Result<setup_header, LinuxBootError> {
    let need = SETUP_HEADER_OFFSET + std::mem::size_of::<setup_header>();
    let bytes = image
        .get(SETUP_HEADER_OFFSET..need)
        .ok_or(LinuxBootError::Truncated {
            len: image.len(),
            need,
        })?;
    let mut hdr = setup_header::default();
    hdr.as_mut_slice().copy_from_slice(bytes);
    if hdr.header != HDRS_MAGIC {
        return Err(LinuxBootError::NoHeader);
    }
    if hdr.version < 0x200 {
        return Err(LinuxBootError::ProtocolTooOld {
            version: hdr.version,
        });
    }
    Ok(hdr)
}

/// The highest initrd address after QEMU's cap below the RAM top.
fn capped_initrd_max(limit: u32, mem: LinuxBootMemory) -> Result<u32, LinuxBootError> {
    let invalid = LinuxBootError::InvalidMemory {
        below_4g: mem.below_4g,
        acpi_data_size: mem.acpi_data_size,
    };
    let room = mem
        .below_4g
        .checked_sub(mem.acpi_data_size)
        .filter(|&r| r > 0 && r <= 1 << 32)
        .ok_or(invalid)?;
    if u64::from(limit) >= room {
        // room - 1 < 2^32 by the filter above.
        Ok((room - 1) as u32)
    } else {
        Ok(limit)
    }
}

/// Places an initrd of `len` bytes as `x86_load_linux` does: page-aligned
/// below `initrd_max`, recorded in `hdr`; returns its address.
fn place_initrd(
    hdr: &mut setup_header,
    len: usize,
    initrd_max: u32,
) -> Result<u32, LinuxBootError> {
    let too_large = LinuxBootError::InitrdTooLarge {
        size: len,
        max: initrd_max,
    };
    let size = u32::try_from(len).map_err(|_| too_large.clone())?;
    if size >= initrd_max {
        return Err(too_large);
    }
    let addr = (initrd_max - size) & !4095;
    hdr.ramdisk_image = addr;
    hdr.ramdisk_size = size;
    Ok(addr)
}

impl LinuxBoot {
    /// Computes the boot items of a bzImage `image` with an optional
    /// `initrd` and a command line, for a machine with `mem`, as
    /// `x86_load_linux` does.
    pub fn from_bzimage(
        image: Vec<u8>,
        initrd: Option<Vec<u8>>,
        cmdline: &str,
        mem: LinuxBootMemory,
    ) -> Result<Self, LinuxBootError> {
        if cmdline.as_bytes().contains(&0) {
            return Err(LinuxBootError::CmdlineContainsNul);
        }
        let mut hdr = read_header(&image)?;
        let protocol = hdr.version;
        let (real_addr, cmdline_addr, prot_addr) =
            load_addresses(protocol, hdr.loadflags, cmdline.len());
        let initrd_max = capped_initrd_max(initrd_limit(protocol, &hdr), mem)?;

        // The first 8 KiB of the image, patched as QEMU patches its copy.
        let mut header = image[..image.len().min(HEADER_BYTES)].to_vec();
        if protocol >= 0x202 {
            hdr.cmd_line_ptr = cmdline_addr;
        } else {
            // The old command-line protocol: magic and offset at 0x20.
            header[0x20..0x22].copy_from_slice(&0xa33fu16.to_le_bytes());
            let offset = cmdline_addr.wrapping_sub(real_addr) as u16;
            header[0x22..0x24].copy_from_slice(&offset.to_le_bytes());
        }
        if let Some(mode) = vga_mode(cmdline)? {
            hdr.vid_mode = mode;
        }
        hdr.type_of_loader = QEMU_LOADER_TYPE;
        if protocol >= 0x201 {
            hdr.loadflags |= CAN_USE_HEAP;
            hdr.heap_end_ptr = cmdline_addr.wrapping_sub(real_addr).wrapping_sub(0x200) as u16;
        }
        let initrd_addr = match &initrd {
            Some(data) => Some(place_initrd(&mut hdr, data.len(), initrd_max)?),
            None => None,
        };
        let end = SETUP_HEADER_OFFSET + std::mem::size_of::<setup_header>();
        header[SETUP_HEADER_OFFSET..end].copy_from_slice(hdr.as_slice());

        let sects = if hdr.setup_sects == 0 {
            4
        } else {
            usize::from(hdr.setup_sects)
        };
        let setup_size = (sects + 1) * 512;
        if setup_size > image.len() {
            return Err(LinuxBootError::SetupTooLarge {
                setup_size,
                len: image.len(),
            });
        }
        let mut setup = image[..setup_size].to_vec();
        let patched = header.len().min(setup_size);
        setup[..patched].copy_from_slice(&header[..patched]);

        Ok(LinuxBoot {
            protocol,
            setup_addr: real_addr,
            setup,
            kernel_addr: prot_addr,
            cmdline_addr,
            cmdline: cmdline.to_string(),
            initrd_addr,
            initrd_max,
            image,
            initrd,
        })
    }

    /// The patched setup header, as the setup part carries it.
    pub fn header(&self) -> setup_header {
        let mut hdr = setup_header::default();
        let end = SETUP_HEADER_OFFSET + std::mem::size_of::<setup_header>();
        hdr.as_mut_slice()
            .copy_from_slice(&self.setup[SETUP_HEADER_OFFSET..end]);
        hdr
    }

    /// `KERNEL_DATA`: the protected-mode part of the image.
    pub fn kernel(&self) -> &[u8] {
        &self.image[self.setup.len()..]
    }

    /// `INITRD_DATA`, when there is an initrd.
    pub fn initrd(&self) -> Option<&[u8]> {
        self.initrd.as_deref()
    }

    /// Adds the items to `builder` as `x86_load_linux` does: `SETUP_*`,
    /// `KERNEL_*`, `CMDLINE_*`, `INITRD_*` (with an initrd) and the file
    /// `etc/boot/kernel`. The option ROM is the VMM's to add
    /// ([`FwCfgBuilder::option_rom`] with [`LINUXBOOT_DMA_ROM`]), with its
    /// [boot path](crate::x86::option_rom_boot_path) first in `bootorder`.
    pub fn add_to(self, builder: &mut FwCfgBuilder) -> Result<(), BuildError> {
        let LinuxBoot {
            setup_addr,
            setup,
            kernel_addr,
            cmdline_addr,
            cmdline,
            initrd_addr,
            image,
            initrd,
            ..
        } = self;
        let kernel = image[setup.len()..].to_vec();
        builder.setup(setup_addr, setup)?;
        builder.kernel(kernel_addr, kernel)?;
        builder.cmdline(cmdline_addr, &cmdline)?;
        if let (Some(addr), Some(data)) = (initrd_addr, initrd) {
            builder.initrd(addr, data)?;
        }
        builder.add_file(BOOT_KERNEL_FILE_NAME, image)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal image: `sects` setup sectors, a header of `version`, and
    /// `body` bytes of protected-mode code.
    pub(crate) fn image(version: u16, loadflags: u8, sects: u8, body: usize) -> Vec<u8> {
        let setup = (usize::from(if sects == 0 { 4 } else { sects }) + 1) * 512;
        let mut v: Vec<u8> = (0..setup + body).map(|i| (i * 7) as u8).collect();
        let mut hdr = setup_header {
            setup_sects: sects,
            boot_flag: 0xaa55,
            header: HDRS_MAGIC,
            version,
            loadflags,
            initrd_addr_max: 0x7fff_ffff,
            ..Default::default()
        };
        hdr.type_of_loader = 0;
        let end = SETUP_HEADER_OFFSET + std::mem::size_of::<setup_header>();
        v[SETUP_HEADER_OFFSET..end].copy_from_slice(hdr.as_slice());
        v
    }

    const MEM: LinuxBootMemory = LinuxBootMemory {
        below_4g: 256 << 20,
        acpi_data_size: 0,
    };

    #[test]
    fn high_recent_kernel_gets_qemu_addresses_and_patches() {
        let img = image(0x20f, LOADED_HIGH, 27, 0x3000);
        let boot = LinuxBoot::from_bzimage(img.clone(), Some(vec![1; 5000]), "console=ttyS0", MEM)
            .unwrap();
        assert_eq!(
            (boot.setup_addr, boot.cmdline_addr, boot.kernel_addr),
            (0x10000, 0x20000, 0x100000)
        );
        assert_eq!(boot.setup.len(), 28 * 512);
        assert_eq!(boot.kernel(), &img[28 * 512..]);
        let h = boot.header();
        assert_eq!(h.type_of_loader, 0xb0);
        assert_eq!(h.loadflags, LOADED_HIGH | CAN_USE_HEAP);
        assert_eq!({ h.heap_end_ptr }, 0xfe00);
        assert_eq!({ h.cmd_line_ptr }, 0x20000);
        // initrd_addr_max 0x7fffffff is above RAM: capped at 256 MiB - 1.
        assert_eq!(boot.initrd_max, (256 << 20) - 1);
        let addr = ((256u32 << 20) - 1 - 5000) & !4095;
        assert_eq!(boot.initrd_addr, Some(addr));
        assert_eq!(({ h.ramdisk_image }, { h.ramdisk_size }), (addr, 5000));
        // Outside the header, the setup part is the image's.
        assert_eq!(&boot.setup[0x300..], &img[0x300..28 * 512]);
    }

    #[test]
    fn old_protocols_take_the_low_addresses() {
        let b = LinuxBoot::from_bzimage(image(0x201, LOADED_HIGH, 4, 16), None, "ro", MEM).unwrap();
        assert_eq!((b.setup_addr, b.kernel_addr), (0x90000, 0x100000));
        assert_eq!(b.cmdline_addr, 0x9a000 - 16);
        assert_eq!(&b.setup[0x20..0x24], &[0x3f, 0xa3, 0xf0, 0x9f]);
        assert_eq!(
            { b.header().heap_end_ptr },
            (0x9a000u32 - 16 - 0x90000 - 0x200) as u16
        );
        let b = LinuxBoot::from_bzimage(image(0x20f, 0, 4, 16), None, "", MEM).unwrap();
        assert_eq!((b.setup_addr, b.kernel_addr), (0x90000, 0x10000));
        // setup_sects 0 means 4.
        let b = LinuxBoot::from_bzimage(image(0x20f, 1, 0, 16), None, "", MEM).unwrap();
        assert_eq!(b.setup.len(), 5 * 512);
        // Protocol 2.02 below the 2.03 initrd_addr_max field: 0x37ffffff.
        let big = LinuxBootMemory {
            below_4g: 3 << 30,
            acpi_data_size: 0x28000,
        };
        let b = LinuxBoot::from_bzimage(image(0x202, 1, 4, 16), None, "", big).unwrap();
        assert_eq!(b.initrd_max, 0x37ff_ffff);
        let mut img = image(0x20c, 1, 4, 16);
        img[0x236] = XLF_CAN_BE_LOADED_ABOVE_4G as u8;
        let b = LinuxBoot::from_bzimage(img, None, "", big).unwrap();
        assert_eq!(b.initrd_max, (3 << 30) - 0x28000 - 1);
    }

    #[test]
    fn vga_parameter_as_qemu_parses_it() {
        for (cmdline, mode) in [
            ("vga=normal", 0xffff),
            ("a vga=ext b", 0xfffe),
            ("vga=ask", 0xfffd),
            ("vga=0x317 quiet", 0x317),
            ("vga=791", 791),
            ("vga=017", 0o17),
        ] {
            let b = LinuxBoot::from_bzimage(image(0x20f, 1, 4, 16), None, cmdline, MEM).unwrap();
            assert_eq!({ b.header().vid_mode }, mode, "{cmdline}");
        }
        assert_eq!(
            LinuxBoot::from_bzimage(image(0x20f, 1, 4, 16), None, "vga=x", MEM),
            Err(LinuxBootError::InvalidVgaMode)
        );
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        let e = |img, initrd: Option<Vec<u8>>, mem| LinuxBoot::from_bzimage(img, initrd, "", mem);
        assert!(matches!(
            e(vec![0; 0x200], None, MEM),
            Err(LinuxBootError::Truncated { len: 0x200, .. })
        ));
        assert_eq!(e(vec![0; 0x1000], None, MEM), Err(LinuxBootError::NoHeader));
        assert_eq!(
            e(image(0x1ff, 1, 4, 16), None, MEM),
            Err(LinuxBootError::ProtocolTooOld { version: 0x1ff })
        );
        let mut img = image(0x20f, 1, 4, 16);
        img.truncate(0x400);
        assert!(matches!(
            e(img, None, MEM),
            Err(LinuxBootError::SetupTooLarge {
                setup_size: 0xa00,
                len: 0x400
            })
        ));
        let small = LinuxBootMemory {
            below_4g: 1 << 20,
            acpi_data_size: 0,
        };
        assert!(matches!(
            e(image(0x20f, 1, 4, 16), Some(vec![0; 1 << 20]), small),
            Err(LinuxBootError::InitrdTooLarge {
                size: 0x10_0000,
                max: 0xf_ffff
            })
        ));
        let none = LinuxBootMemory {
            below_4g: 0x1000,
            acpi_data_size: 0x1000,
        };
        assert!(matches!(
            e(image(0x20f, 1, 4, 16), None, none),
            Err(LinuxBootError::InvalidMemory { .. })
        ));
        assert_eq!(
            LinuxBoot::from_bzimage(image(0x20f, 1, 4, 16), None, "a\0", MEM),
            Err(LinuxBootError::CmdlineContainsNul)
        );
    }

    #[test]
    fn add_to_serves_qemu_items() {
        use crate::abi::*;
        use vm_memory::{GuestAddress, GuestMemoryMmap};
        let img = image(0x20f, 1, 4, 100);
        let boot = LinuxBoot::from_bzimage(img.clone(), Some(vec![9; 10]), "x", MEM).unwrap();
        let setup = boot.setup.clone();
        let mut b = FwCfgBuilder::new();
        boot.add_to(&mut b).unwrap();
        let m = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x1000)]).unwrap();
        let dev = b.build(&m);
        let item = |k| dev.item_bytes(k).unwrap().to_vec();
        assert_eq!(item(KEY_SETUP_ADDR), 0x10000u32.to_le_bytes());
        assert_eq!(item(KEY_SETUP_SIZE), 0xa00u32.to_le_bytes());
        assert_eq!(item(KEY_SETUP_DATA), setup);
        assert_eq!(item(KEY_KERNEL_ADDR), 0x100000u32.to_le_bytes());
        assert_eq!(item(KEY_KERNEL_SIZE), 100u32.to_le_bytes());
        assert_eq!(item(KEY_KERNEL_DATA), &img[0xa00..]);
        assert_eq!(item(KEY_CMDLINE_ADDR), 0x20000u32.to_le_bytes());
        assert_eq!(item(KEY_CMDLINE_SIZE), 2u32.to_le_bytes());
        assert_eq!(item(KEY_CMDLINE_DATA), b"x\0");
        assert_eq!(item(KEY_INITRD_SIZE), 10u32.to_le_bytes());
        assert_eq!(item(KEY_INITRD_DATA), [9; 10]);
        let k = dev.file_key(BOOT_KERNEL_FILE_NAME).unwrap();
        assert_eq!(dev.item_bytes(k).unwrap(), img);
    }
}
