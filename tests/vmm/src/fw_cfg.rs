// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The fw_cfg device and the phys-bits channels, wired into the mini VMM.
//!
//! One [`FwCfgBuilder`] describes the items; it builds two devices with the
//! same contents (each with its own selector state, as two front ends of
//! one device would have in QEMU): the x86 port-I/O one at 0x510..0x51c
//! (selector, data, DMA) and the MMIO one at [`FW_CFG_MMIO_BASE`] (0x18
//! bytes: data, selector, DMA). The MMIO window is announced to the guest
//! on the kernel command line in Linux's syntax,
//! `qemu_fw_cfg.mmio=0x18@0xd0000000`, which is also what the test
//! firmware parses.
//!
//! One [`PhysBitsConfig`] drives both channels: it patches the vCPU CPUID
//! (hint bit, 0x80000008 widths) and adds `etc/phys-bits-valid`. Raw files
//! can be added on top ([`FwCfgSetup::raw_files`]), e.g. statements that
//! `PhysBitsConfig` would never produce. [`setup_for_host`] does all of it
//! without KVM, for a given host.

use std::sync::{Arc, Mutex};

use fw_cfg_device::cmdline::FwCfgOption;
use fw_cfg_device::phys_bits::{HostAddressSizes, PhysBitsConfig};
use fw_cfg_device::{FwCfgBuilder, FwCfgMmio, FwCfgPio, abi};
use kvm_bindings::CpuId;
use kvm_ioctls::Kvm;
use vm_device::bus::{MmioAddress, MmioRange, PioAddress, PioRange};
use vm_device::device_manager::{IoManager, MmioManager, PioManager};
use vm_memory::{GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

use crate::Error;
use crate::layout::FW_CFG_MMIO_BASE;

/// The device type the VMM registers on ports.
pub type PioDevice = FwCfgPio<Arc<GuestMemoryMmap>>;
/// The device type the VMM registers on MMIO.
pub type MmioDevice = FwCfgMmio<Arc<GuestMemoryMmap>>;
/// The port-I/O device as registered on the bus.
pub type SharedPio = Arc<Mutex<PioDevice>>;
/// The MMIO device as registered on the bus.
pub type SharedMmio = Arc<Mutex<MmioDevice>>;

/// How the phys-bits statement is chosen (QEMU's `-cpu` property names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhysBitsSetup {
    /// `host-phys-bits=on`: advertise the host's width.
    pub host_phys_bits: bool,
    /// `phys-bits=N`: advertise N (ignored with `host_phys_bits`). Neither
    /// set means QEMU's legacy default of 40 bits.
    pub phys_bits: Option<u8>,
    /// `guest-phys-bits=N`: CPUID 0x80000008 EAX\[23:16\] (0: none). Unset:
    /// the host's (KVM's) guest width, as QEMU 9.1+ passes it on
    /// ([`PhysBitsConfig::with_host_guest_phys_bits`]).
    pub guest_phys_bits: Option<u8>,
    /// The CPUID hint channel (KVM features EDX bit 1).
    pub hint: bool,
    /// The `etc/phys-bits-valid` file channel.
    pub file: bool,
    /// The host's address sizes to state (e.g. those of the machine a guest
    /// will migrate to); `None` asks KVM.
    pub host_override: Option<HostAddressSizes>,
}

impl Default for PhysBitsSetup {
    fn default() -> Self {
        PhysBitsSetup {
            host_phys_bits: false,
            phys_bits: None,
            guest_phys_bits: None,
            hint: true,
            file: true,
            host_override: None,
        }
    }
}

impl PhysBitsSetup {
    /// The configuration for a host with address sizes `host` (a bare
    /// MAXPHYADDR means a host that reports no guest width).
    pub fn config(&self, host: impl Into<HostAddressSizes>) -> PhysBitsConfig {
        let host = host.into();
        let c = if self.host_phys_bits {
            PhysBitsConfig::host_passthrough(host)
        } else if let Some(n) = self.phys_bits {
            PhysBitsConfig::explicit(host, n)
        } else {
            PhysBitsConfig::legacy_default(host)
        };
        let c = match self.guest_phys_bits {
            Some(g) => c.with_guest_phys_bits(g),
            None => c.with_host_guest_phys_bits(host.guest_phys_bits),
        };
        c.with_cpuid_hint(self.hint).with_fw_cfg_file(self.file)
    }
}

/// How the VMM builds the fw_cfg device.
#[derive(Debug, Clone)]
pub struct FwCfgSetup {
    /// Whether there is an fw_cfg device at all.
    pub enabled: bool,
    /// Whether the DMA interface is offered.
    pub dma: bool,
    /// Whether the MMIO front end is registered (and announced).
    pub mmio: bool,
    /// `-fw_cfg` items.
    pub options: Vec<FwCfgOption>,
    /// Files added verbatim, after the phys-bits file (items with bytes the
    /// `-fw_cfg` syntax cannot express, e.g. a corrupt or conflicting
    /// statement).
    pub raw_files: Vec<(String, Vec<u8>)>,
    /// The phys-bits channels.
    pub phys_bits: PhysBitsSetup,
    /// File slots (QEMU's `x-file-slots`); `None` keeps the default 0x20.
    pub file_slots: Option<u16>,
    /// The machine's vCPUs (QEMU's `-smp`): what NB_CPUS and MAX_CPUS
    /// state, and how many [`Vm::new`](crate::Vm::new) creates (1 to
    /// [`MAX_VCPUS`](crate::cpu::MAX_VCPUS)).
    pub cpus: u16,
    /// The items a firmware boot adds (`--bios`, [`crate::bios`]).
    pub firmware: Option<Arc<crate::bios::FirmwareItems>>,
}

impl Default for FwCfgSetup {
    fn default() -> Self {
        FwCfgSetup {
            enabled: true,
            dma: true,
            mmio: true,
            options: Vec::new(),
            raw_files: Vec::new(),
            phys_bits: PhysBitsSetup::default(),
            file_slots: None,
            cpus: 1,
            firmware: None,
        }
    }
}

/// What the VMM registered.
#[derive(Default)]
pub struct FwCfgHandles {
    /// The port-I/O device.
    pub pio: Option<Arc<Mutex<PioDevice>>>,
    /// The MMIO device.
    pub mmio: Option<Arc<Mutex<MmioDevice>>>,
    /// The phys-bits configuration applied to CPUID and the file.
    pub phys_bits: Option<PhysBitsConfig>,
    /// The host MAXPHYADDR used.
    pub host_phys_bits: u8,
    cmdline: Option<String>,
}

impl std::fmt::Debug for FwCfgHandles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FwCfgHandles")
            .field("pio", &self.pio.is_some())
            .field("mmio", &self.mmio.is_some())
            .field("phys_bits", &self.phys_bits)
            .field("host_phys_bits", &self.host_phys_bits)
            .finish()
    }
}

impl FwCfgHandles {
    /// The kernel parameter announcing the MMIO window, if registered.
    pub fn cmdline_param(&self) -> Option<&str> {
        self.cmdline.as_deref()
    }
}

/// The kernel parameter for an MMIO window at `base` (Linux's
/// `qemu_fw_cfg.mmio=SIZE@BASE`).
pub fn mmio_cmdline_param(base: u64) -> String {
    format!("qemu_fw_cfg.mmio={:#x}@{base:#x}", abi::MMIO_WINDOW_SIZE)
}

/// The builder for `setup` with `memory` (without the phys-bits file).
pub fn builder(setup: &FwCfgSetup, memory: &GuestMemoryMmap) -> Result<FwCfgBuilder, Error> {
    let mut b = FwCfgBuilder::new();
    b.dma(setup.dma);
    if let Some(slots) = setup.file_slots {
        b.file_slots(slots).map_err(Error::FwCfg)?;
    }
    let ram: u64 = memory.iter().map(|r| r.len()).sum();
    b.ram_size(ram)
        .nb_cpus(setup.cpus)
        .max_cpus(setup.cpus)
        .nographic(true);
    if let Some(items) = &setup.firmware {
        items.add_to(&mut b)?;
    }
    for o in &setup.options {
        b.add_option(o).map_err(Error::FwCfgOption)?;
    }
    Ok(b)
}

/// Builds the device, registers it, and applies the phys-bits statement to
/// `cpuid` and the file directory, with the host's address sizes from KVM
/// (or [`PhysBitsSetup::host_override`]).
pub fn setup(
    setup: &FwCfgSetup,
    kvm: &Kvm,
    cpuid: &mut CpuId,
    memory: &GuestMemoryMmap,
    io: &mut IoManager,
) -> Result<FwCfgHandles, Error> {
    let host = host_sizes(&setup.phys_bits, kvm)?;
    setup_for_host(setup, host, cpuid, memory, io)
}

/// The host's address sizes the VMM states: [`PhysBitsSetup::host_override`]
/// or, without one, KVM's.
pub fn host_sizes(phys_bits: &PhysBitsSetup, kvm: &Kvm) -> Result<HostAddressSizes, Error> {
    match phys_bits.host_override {
        Some(h) => Ok(h),
        None => HostAddressSizes::from_kvm(kvm).map_err(Error::PhysBits),
    }
}

/// [`setup`] for a host with address sizes `host`, without KVM: patches
/// `cpuid`, builds the device with the phys-bits file and
/// [`FwCfgSetup::raw_files`], and registers its front ends on `io` (ports
/// 0x510..0x51c; MMIO at [`FW_CFG_MMIO_BASE`] when [`FwCfgSetup::mmio`]).
pub fn setup_for_host(
    setup: &FwCfgSetup,
    host: HostAddressSizes,
    cpuid: &mut CpuId,
    memory: &GuestMemoryMmap,
    io: &mut IoManager,
) -> Result<FwCfgHandles, Error> {
    let config = setup.phys_bits.config(host);
    config.patch_cpuid(cpuid).map_err(Error::PhysBits)?;
    let mut handles = FwCfgHandles {
        phys_bits: Some(config),
        host_phys_bits: host.phys_bits,
        ..Default::default()
    };
    if !setup.enabled {
        return Ok(handles);
    }
    let mut b = builder(setup, memory)?;
    config.add_to(&mut b).map_err(Error::PhysBits)?;
    for (name, data) in &setup.raw_files {
        b.add_file(name, data.clone()).map_err(Error::FwCfg)?;
    }
    let mmio_base = setup.mmio.then_some(FW_CFG_MMIO_BASE);
    let (pio, mmio) = register(&b, Arc::new(memory.clone()), mmio_base, io)?;
    handles.pio = Some(pio);
    handles.cmdline = mmio.as_ref().map(|_| mmio_cmdline_param(FW_CFG_MMIO_BASE));
    handles.mmio = mmio;
    Ok(handles)
}

/// Builds two devices from `builder` (each with its own selector state) and
/// registers them on `io`: the port-I/O one at 0x510..0x51c, and the MMIO
/// one at `mmio_base` if given.
pub fn register(
    builder: &FwCfgBuilder,
    memory: Arc<GuestMemoryMmap>,
    mmio_base: Option<u64>,
    io: &mut IoManager,
) -> Result<(SharedPio, Option<SharedMmio>), Error> {
    let pio = Arc::new(Mutex::new(FwCfgPio::new(builder.build(memory.clone()))));
    io.register_pio(
        PioRange::new(PioAddress(abi::PIO_SELECTOR_PORT), abi::PIO_WINDOW_SIZE)
            .map_err(Error::Bus)?,
        pio.clone(),
    )
    .map_err(Error::Bus)?;
    let Some(base) = mmio_base else {
        return Ok((pio, None));
    };
    let mmio = Arc::new(Mutex::new(FwCfgMmio::new(builder.build(memory))));
    io.register_mmio(
        MmioRange::new(MmioAddress(base), abi::MMIO_WINDOW_SIZE).map_err(Error::Bus)?,
        mmio.clone(),
    )
    .map_err(Error::Bus)?;
    Ok((pio, Some(mmio)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phys_bits_setup_follows_qemu_properties() {
        let mut s = PhysBitsSetup::default();
        // Legacy default: 40 bits, backed on any host of at least 40.
        assert_eq!(s.config(48).phys_bits(), 40);
        assert!(s.config(48).valid());
        assert!(s.config(40).valid());
        assert!(!s.config(39).valid());
        s.phys_bits = Some(39);
        assert!(s.config(48).valid());
        s.host_phys_bits = true;
        s.guest_phys_bits = Some(46);
        let c = s.config(48);
        assert_eq!((c.phys_bits(), c.guest_phys_bits()), (48, 46));
        assert!(c.valid());
        s.hint = false;
        s.file = false;
        assert!(!s.config(48).cpuid_hint());
        assert!(!s.config(48).fw_cfg_file());
    }

    #[test]
    fn phys_bits_setup_passes_the_host_guest_width_unless_given() {
        let host = HostAddressSizes {
            phys_bits: 52,
            guest_phys_bits: 48,
        };
        let mut s = PhysBitsSetup {
            host_phys_bits: true,
            ..PhysBitsSetup::default()
        };
        let c = s.config(host);
        assert_eq!((c.phys_bits(), c.guest_phys_bits()), (52, 48));
        assert_eq!(c.file_bytes()[3], 48);
        // A bare width: the host reports no guest width.
        assert_eq!(s.config(52).guest_phys_bits(), 0);
        // QEMU's rule in the other modes.
        s.host_phys_bits = false;
        assert_eq!(s.config(host).guest_phys_bits(), 0);
        s.phys_bits = Some(46);
        assert_eq!(s.config(host).guest_phys_bits(), 46);
        // `--guest-phys-bits` wins, 0 included.
        for g in [40, 0] {
            s.guest_phys_bits = Some(g);
            assert_eq!(s.config(host).guest_phys_bits(), g);
        }
    }

    #[test]
    fn mmio_parameter_uses_linux_syntax() {
        assert_eq!(
            mmio_cmdline_param(0xd000_0000),
            "qemu_fw_cfg.mmio=0x18@0xd0000000"
        );
    }
}
