// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The mini VMM's error type.

use std::path::PathBuf;

/// Errors of the mini VMM.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Saving or restoring a snapshot failed.
    #[error("snapshot failed")]
    Snapshot(#[source] crate::snapshot::SnapshotError),
    /// `/dev/kvm` cannot be opened.
    #[error("cannot open /dev/kvm")]
    Kvm(#[source] kvm_ioctls::Error),
    /// Creating the VM failed.
    #[error("cannot create the VM")]
    CreateVm(#[source] kvm_ioctls::Error),
    /// A VM-level ioctl failed.
    #[error("VM setup failed")]
    Vm(#[source] kvm_ioctls::Error),
    /// A vCPU ioctl failed.
    #[error("vCPU setup or run failed")]
    Vcpu(#[source] kvm_ioctls::Error),
    /// `KVM_GET_SUPPORTED_CPUID` failed.
    #[error("cannot get the supported CPUID")]
    Cpuid(#[source] kvm_ioctls::Error),
    /// No room for another CPUID entry.
    #[error("the CPUID table is full")]
    CpuidFull,
    /// The SMBIOS structure table (this many bytes) does not fit below
    /// the reset vector.
    #[error("the SMBIOS table ({0} bytes) does not fit below the reset vector")]
    SmbiosTooBig(usize),
    /// KVM did not take the boot MSR with this index.
    #[error("KVM refused MSR {0:#x}")]
    MsrRefused(u32),
    /// Too many MSRs for one `KVM_SET_MSRS`.
    #[error("{0} MSRs do not fit in one KVM_SET_MSRS")]
    MsrList(usize),
    /// The memory size is zero, too small or too large.
    #[error("invalid memory size {0} MiB")]
    MemorySize(u64),
    /// The guest's RAM would end above the width its CPUID states.
    #[error(
        "guest memory would end at {top:#x}, above the {bits}-bit physical address width \
         the vCPU is given (use a wider --phys-bits or less --memory)"
    )]
    MemoryBeyondWidth {
        /// The RAM's top (exclusive).
        top: u64,
        /// CPUID 0x80000008 EAX\[7:0\].
        bits: u8,
    },
    /// Allocating guest memory failed.
    #[error("cannot allocate guest memory")]
    Memory(#[source] vm_memory::mmap::FromRangesError),
    /// A guest memory region has no host mapping.
    #[error("a guest memory region has no host address")]
    HostAddress(#[source] vm_memory::GuestMemoryError),
    /// A file could not be read.
    #[error("cannot read {path}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An input file (kernel, initrd) is refused: not a regular file, or
    /// unreadable.
    #[error("invalid input file")]
    Input(#[source] fw_cfg_device::cmdline::InputFileError),
    /// `pref_address + init_size` of a bzImage's setup header overflows.
    #[error(
        "the bzImage's decompression area (pref_address {pref_address:#x} + init_size {init_size:#x}) \
         overflows the address space"
    )]
    DecompressorOverflow {
        /// The setup header's `pref_address`.
        pref_address: u64,
        /// The setup header's `init_size`.
        init_size: u32,
    },
    /// A kernel segment (or a bzImage's decompression area) does not lie
    /// in guest RAM.
    #[error(
        "the kernel's segment {start:#x}..{end:#x} lies outside guest RAM (RAM ends at {ram_end:#x})"
    )]
    KernelOutsideRam {
        /// Segment start.
        start: u64,
        /// Segment end (exclusive).
        end: u64,
        /// End of the RAM below the MMIO gap.
        ram_end: u64,
    },
    /// A kernel segment overlaps the data the VMM writes for the boot.
    #[error(
        "the kernel's segment {start:#x}..{end:#x} overlaps the {what} at {data_start:#x}..{data_end:#x}"
    )]
    KernelOverlapsBootData {
        /// Segment start.
        start: u64,
        /// Segment end (exclusive).
        end: u64,
        /// What the VMM puts there.
        what: &'static str,
        /// Start of that data.
        data_start: u64,
        /// End of that data (exclusive).
        data_end: u64,
    },
    /// The ELF program headers cannot be read.
    #[error("malformed ELF program headers")]
    ElfHeaders,
    /// The kernel image is not a loadable ELF or bzImage.
    #[error("cannot load the kernel")]
    Load(#[source] linux_loader::loader::Error),
    /// The ELF has no PVH entry note.
    #[error(
        "the kernel has no XEN_ELFNOTE_PHYS32_ENTRY note; only PVH ELF images and bzImages are supported"
    )]
    NotPvh,
    /// The bzImage loader returned no setup header.
    #[error("the bzImage loader returned no setup header")]
    NoSetupHeader,
    /// The bzImage has no 64-bit entry (boot protocol before 2.12, or
    /// `XLF_KERNEL_64` clear).
    #[error(
        "boot protocol {}.{:02} without the 64-bit entry (xloadflags {xloadflags:#x}); \
         2.12 or later with XLF_KERNEL_64 is needed",
        version >> 8,
        version & 0xff
    )]
    No64BitEntry {
        /// The setup header's boot protocol version.
        version: u16,
        /// The setup header's `xloadflags`.
        xloadflags: u16,
    },
    /// The command line is longer than the kernel accepts.
    #[error("the command line has {len} bytes; this kernel takes at most {max}")]
    CmdlineTooLong {
        /// The command line's length.
        len: usize,
        /// The kernel's limit.
        max: usize,
    },
    /// The command line is invalid.
    #[error("invalid kernel command line")]
    Cmdline(#[source] linux_loader::cmdline::Error),
    /// Writing boot data into guest memory failed.
    #[error("cannot write boot data at guest address {addr:#x}")]
    GuestWrite {
        /// Where the data was to go.
        addr: u64,
        /// Why it could not.
        #[source]
        source: vm_memory::GuestMemoryError,
    },
    /// Writing the boot parameters (PVH start info or zero page) failed.
    #[error("cannot write the boot parameters")]
    BootParams(#[source] linux_loader::configurator::Error),
    /// The initrd does not fit in guest memory.
    #[error("the initrd ({0} bytes) does not fit in guest memory")]
    InitrdTooBig(u64),
    /// The memory map has more entries than the zero page holds.
    #[error("the memory map has {0} entries, more than the zero page holds")]
    TooManyE820Entries(usize),
    /// The fw_cfg MMIO window is not where ACPI's 32-bit fields reach.
    #[error("the fw_cfg MMIO window at {0:#x} is above 4 GiB")]
    MmioAbove4G(u64),
    /// The ACPI tables do not fit in their area.
    #[error("the ACPI tables ({0} bytes) do not fit below 1 MiB")]
    AcpiTooBig(u64),
    /// The device crate's ACPI node has an unexpected encoding.
    #[error("the device crate's MMIO ACPI node is malformed")]
    MalformedAcpiNode,
    /// Creating the serial port's interrupt eventfd failed.
    #[error("cannot create the serial irqfd")]
    Irqfd(#[source] std::io::Error),
    /// Registering a device on the I/O bus failed.
    #[error("cannot register a device")]
    Bus(#[source] vm_device::bus::Error),
    /// Building the fw_cfg device failed.
    #[error("fw_cfg setup failed")]
    FwCfg(#[source] fw_cfg_device::BuildError),
    /// A `-fw_cfg` option could not be added.
    #[error("invalid fw_cfg option")]
    FwCfgOption(#[source] fw_cfg_device::cmdline::CmdlineError),
    /// Querying the host or applying the phys-bits statement failed.
    #[error("phys-bits setup failed")]
    PhysBits(#[source] fw_cfg_device::PhysBitsError),
    /// The signal that kicks the vCPU out of `KVM_RUN` cannot be installed
    /// (reported by every run, not only the first).
    #[error("cannot install the vCPU kick signal handler")]
    KickSignal(#[source] vmm_sys_util::errno::Error),
    /// The vCPU count is outside 1..=[`MAX_VCPUS`](crate::cpu::MAX_VCPUS).
    #[error("{0} vCPUs asked for: 1 to {max} are supported", max = crate::cpu::MAX_VCPUS)]
    VcpuCount(u16),
    /// Several vCPUs for a bzImage: only PVH images get application
    /// processors ([`crate::cpu::setup_pvh_ap`]).
    #[error("{0} vCPUs asked for a Linux bzImage: several vCPUs are supported for PVH images only")]
    SmpNeedsPvh(u16),
    /// The vCPU thread could not be started.
    #[error("cannot start the vCPU thread")]
    SpawnThread(#[source] std::io::Error),
    /// The vCPU thread panicked.
    #[error("the vCPU thread panicked")]
    ThreadPanicked,
    /// A firmware ROM's size is zero or not a multiple of 64 KiB (QEMU's
    /// `x86_bios_rom_init` refuses it too).
    #[error(
        "the firmware ROM {} has {size} bytes; it must be a non-zero multiple of 64 KiB",
        path.display()
    )]
    RomSize {
        /// The ROM file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// A firmware ROM is larger than the window below 4 GiB takes.
    #[error(
        "the firmware ROM {} has {size} bytes, more than the {max} that fit below the APIC pages",
        path.display()
    )]
    RomTooBig {
        /// The ROM file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The host memory for the ROM cannot be mapped.
    #[error("cannot map memory for the firmware ROM")]
    RomMemory(#[source] vm_memory::mmap::MmapRegionError),
    /// `--bios` with a kernel the option ROM cannot boot.
    #[error(
        "{} is not a bzImage: the firmware boots a kernel only through linuxboot_dma.bin, \
         which needs a bzImage (boot a PVH kernel without --bios)",
        .0.display()
    )]
    BiosNeedsBzImage(PathBuf),
    /// The option ROM is missing or unreadable.
    #[error("cannot use the option ROM")]
    OptionRom(#[source] fw_cfg_device::cmdline::InputFileError),
    /// The option ROM is larger than an option ROM can be.
    #[error("the option ROM {} has {size} bytes, more than an option ROM's {max}", path.display())]
    OptionRomTooBig {
        /// The option ROM file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// A kernel or initrd for the firmware is larger than guest RAM.
    #[error("{} has {size} bytes, more than the guest's {ram} bytes of RAM", path.display())]
    BootFileTooBig {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// Guest RAM.
        ram: u64,
    },
    /// The firmware's Linux boot items cannot be made from the kernel.
    #[error("cannot hand the kernel to the firmware")]
    LinuxBoot(#[source] fw_cfg_device::linux_boot::LinuxBootError),
    /// The VMM's ACPI tables cannot be served to the firmware.
    #[error("cannot serve the ACPI tables through the table-loader")]
    AcpiLoader(#[source] fw_cfg_device::acpi_loader::AcpiLoaderError),
    /// The debug console's file cannot be created.
    #[error("cannot create the debug console file {}", path.display())]
    Debugcon {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// KVM reported an internal error (emulation failure).
    #[error("KVM could not run the guest: internal error (emulation failure)")]
    InternalError,
    /// KVM could not enter the guest.
    #[error("KVM could not run the guest: entry failed, hardware reason {reason:#x} on CPU {cpu}")]
    FailEntry {
        /// The hardware's entry failure reason.
        reason: u64,
        /// The physical CPU.
        cpu: u32,
    },
}

/// `e` with its chain of sources, `: `-separated (the variants' messages
/// do not repeat their sources).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
