// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Shared helpers: a guest's view of the device through `IoManager`.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use fw_cfg_device::abi::{self, DmaAccess};
use fw_cfg_device::{FwCfg, FwCfgBuilder, FwCfgMmio, FwCfgPio, NoEvents};
use vm_device::bus::{MmioAddress, MmioRange, PioAddress, PioRange};
use vm_device::device_manager::{IoManager, MmioManager, PioManager};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

pub type Mem = Arc<GuestMemoryMmap<()>>;
pub const MEM_SIZE: usize = 0x40_0000;
pub const DESC: u64 = 0x1000;
pub const BUF: u64 = 0x10_0000;
pub const MMIO_BASE: u64 = abi::MMIO_BASE_ARM_VIRT;

pub fn mem() -> Mem {
    Arc::new(GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM_SIZE)]).unwrap())
}

/// A guest with the device on x86 ports.
pub struct PioGuest {
    pub mem: Mem,
    pub io: IoManager,
    pub dev: Arc<Mutex<FwCfgPio<Mem, NoEvents>>>,
}

impl PioGuest {
    pub fn new(b: &FwCfgBuilder) -> Self {
        let mem = mem();
        let dev = Arc::new(Mutex::new(FwCfgPio::new(b.build(mem.clone()))));
        let mut io = IoManager::new();
        io.register_pio(
            PioRange::new(PioAddress(abi::PIO_SELECTOR_PORT), abi::PIO_WINDOW_SIZE).unwrap(),
            dev.clone(),
        )
        .unwrap();
        PioGuest { mem, io, dev }
    }

    pub fn select(&self, key: u16) {
        self.io
            .pio_write(PioAddress(abi::PIO_SELECTOR_PORT), &key.to_le_bytes())
            .unwrap();
    }

    pub fn inb(&self, port: u16) -> u8 {
        let mut b = [0u8];
        self.io.pio_read(PioAddress(port), &mut b).unwrap();
        b[0]
    }

    pub fn read(&self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.inb(abi::PIO_DATA_PORT)).collect()
    }

    pub fn item(&self, key: u16, n: usize) -> Vec<u8> {
        self.select(key);
        self.read(n)
    }

    pub fn outl(&self, port: u16, bytes: [u8; 4]) {
        self.io.pio_write(PioAddress(port), &bytes).unwrap();
    }

    /// Places `desc` at `DESC`, kicks it with the two 32-bit halves as
    /// Linux does, and returns the written-back control word.
    pub fn dma(&self, desc: DmaAccess) -> u32 {
        self.mem
            .write_slice(&desc.to_be_bytes(), GuestAddress(DESC))
            .unwrap();
        self.outl(abi::PIO_DMA_PORT, ((DESC >> 32) as u32).to_be_bytes());
        self.outl(abi::PIO_DMA_PORT + 4, (DESC as u32).to_be_bytes());
        self.control()
    }

    pub fn control(&self) -> u32 {
        let mut c = [0u8; 4];
        self.mem.read_slice(&mut c, GuestAddress(DESC)).unwrap();
        u32::from_be_bytes(c)
    }

    pub fn guest_bytes(&self, at: u64, n: usize) -> Vec<u8> {
        let mut v = vec![0; n];
        self.mem.read_slice(&mut v, GuestAddress(at)).unwrap();
        v
    }

    /// Reads the directory through the data port: `(name, key, size)`.
    pub fn directory(&self) -> Vec<(String, u16, u32)> {
        self.select(abi::KEY_FILE_DIR);
        let count = u32::from_be_bytes(self.read(4).try_into().unwrap());
        (0..count)
            .map(|_| {
                let raw: [u8; 64] = self.read(64).try_into().unwrap();
                let e = abi::FileDirEntry::from_be_bytes(&raw);
                let name = String::from_utf8(e.name_bytes().unwrap().to_vec()).unwrap();
                (name, e.select, e.size)
            })
            .collect()
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut FwCfg<Mem, NoEvents>) -> R) -> R {
        f(self.dev.lock().unwrap().inner_mut())
    }
}

/// A guest with the device on MMIO.
pub struct MmioGuest {
    pub mem: Mem,
    pub io: IoManager,
    pub dev: Arc<Mutex<FwCfgMmio<Mem, NoEvents>>>,
}

impl MmioGuest {
    pub fn new(b: &FwCfgBuilder) -> Self {
        let mem = mem();
        let dev = Arc::new(Mutex::new(FwCfgMmio::new(b.build(mem.clone()))));
        let mut io = IoManager::new();
        io.register_mmio(
            MmioRange::new(MmioAddress(MMIO_BASE), abi::MMIO_WINDOW_SIZE).unwrap(),
            dev.clone(),
        )
        .unwrap();
        MmioGuest { mem, io, dev }
    }

    pub fn select(&self, key: u16) {
        self.io
            .mmio_write(
                MmioAddress(MMIO_BASE + abi::MMIO_SELECTOR_OFFSET),
                &key.to_be_bytes(),
            )
            .unwrap();
    }

    pub fn read(&self, n: usize) -> Vec<u8> {
        let mut v = vec![0; n];
        self.io
            .mmio_read(MmioAddress(MMIO_BASE + abi::MMIO_DATA_OFFSET), &mut v)
            .unwrap();
        v
    }

    pub fn control(&self) -> u32 {
        let mut c = [0u8; 4];
        self.mem.read_slice(&mut c, GuestAddress(DESC)).unwrap();
        u32::from_be_bytes(c)
    }

    pub fn put_desc(&self, desc: DmaAccess) {
        self.mem
            .write_slice(&desc.to_be_bytes(), GuestAddress(DESC))
            .unwrap();
    }
}
