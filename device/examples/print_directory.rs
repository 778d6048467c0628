// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Builds an fw_cfg device with a few files and `etc/phys-bits-valid`, puts
//! it on the x86 ports through vm-device's `IoManager`, and reads the file
//! directory back as a guest would: select 0x19 at port 0x510, then read
//! bytes from port 0x511.
//!
//! Run with `cargo run -p fw-cfg-device --features vm-device --example print_directory`
//! (add `kvm` to ask KVM for the host's widths).

use std::sync::{Arc, Mutex};

use fw_cfg_device::abi::{self, FileDirEntry};
use fw_cfg_device::{FwCfgBuilder, FwCfgPio, HostAddressSizes, PhysBitsConfig};
use vm_device::bus::{PioAddress, PioRange};
use vm_device::device_manager::{IoManager, PioManager};
use vm_memory::{GuestAddress, GuestMemoryMmap};

/// The host's address sizes: from KVM if available, else the CPUID
/// instruction (feature `kvm`), else a conservative guess.
fn host_widths() -> (HostAddressSizes, &'static str) {
    #[cfg(all(feature = "kvm", target_arch = "x86_64"))]
    {
        if let Ok(kvm) = kvm_ioctls::Kvm::new() {
            if let Ok(host) = HostAddressSizes::from_kvm(&kvm) {
                return (host, "KVM_GET_SUPPORTED_CPUID");
            }
        }
        if let Some(host) = HostAddressSizes::from_cpuid_instruction() {
            return (host, "cpuid instruction");
        }
    }
    (abi::CONSERVATIVE_PHYS_BITS.into(), "fallback")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mem = Arc::new(GuestMemoryMmap::<()>::from_ranges(&[(
        GuestAddress(0),
        0x10_0000,
    )])?);

    let (host, source) = host_widths();
    let phys_bits = PhysBitsConfig::host_passthrough(host);

    let mut builder = FwCfgBuilder::new();
    builder.ram_size(0x10_0000).nb_cpus(1).max_cpus(1);
    builder
        .add_file("opt/org.example/greeting", b"hello, guest\n".to_vec())?
        .add_file("bootorder", b"/rom@genroms/linuxboot_dma.bin\n".to_vec())?
        .boot_fail_wait(u32::MAX)?;
    phys_bits.add_to(&mut builder)?;

    let dev = Arc::new(Mutex::new(FwCfgPio::new(builder.build(mem))));
    let mut io = IoManager::new();
    io.register_pio(
        PioRange::new(PioAddress(abi::PIO_SELECTOR_PORT), abi::PIO_WINDOW_SIZE)?,
        dev,
    )?;

    // From here on, only port accesses: what a guest can do.
    select(&io, abi::KEY_SIGNATURE)?;
    let mut sig = [0u8; 4];
    read(&io, &mut sig)?;
    select(&io, abi::KEY_ID)?;
    let mut id = [0u8; 4];
    read(&io, &mut id)?;
    println!(
        "signature {:?}, id {:#x}",
        String::from_utf8_lossy(&sig),
        u32::from_le_bytes(id)
    );
    let entries = print_directory(&io)?;
    if let Some((_, e)) = entries.iter().find(|(n, _)| n == abi::PHYS_BITS_FILE_NAME) {
        print_phys_bits_file(&io, e, host, source)?;
    }
    Ok(())
}

/// Writes the selector port.
fn select(io: &IoManager, key: u16) -> Result<(), vm_device::bus::Error> {
    io.pio_write(PioAddress(abi::PIO_SELECTOR_PORT), &key.to_le_bytes())
}

/// Fills `buf` from the data port, one byte per access.
fn read(io: &IoManager, buf: &mut [u8]) -> Result<(), vm_device::bus::Error> {
    for b in buf.iter_mut() {
        let mut one = [0u8];
        io.pio_read(PioAddress(abi::PIO_DATA_PORT), &mut one)?;
        *b = one[0];
    }
    Ok(())
}

/// Reads and prints the file directory; returns its entries.
fn print_directory(io: &IoManager) -> Result<Vec<(String, FileDirEntry)>, vm_device::bus::Error> {
    select(io, abi::KEY_FILE_DIR)?;
    let mut count = [0u8; 4];
    read(io, &mut count)?;
    let count = u32::from_be_bytes(count);
    println!("{count} files:");
    println!("{:>6}  {:>8}  name", "select", "size");
    let mut entries = Vec::new();
    for _ in 0..count {
        let mut raw = [0u8; abi::FILE_DIR_ENTRY_SIZE];
        read(io, &mut raw)?;
        let e = FileDirEntry::from_be_bytes(&raw);
        let name =
            String::from_utf8_lossy(e.name_bytes().unwrap_or(b"<unterminated>")).into_owned();
        println!("{:#06x}  {:>8}  {}", e.select, e.size, name);
        entries.push((name, e));
    }
    Ok(entries)
}

/// Reads `etc/phys-bits-valid` through the ports and prints what it says.
fn print_phys_bits_file(
    io: &IoManager,
    e: &FileDirEntry,
    host: HostAddressSizes,
    source: &str,
) -> Result<(), vm_device::bus::Error> {
    select(io, e.select)?;
    let mut raw = vec![0u8; e.size as usize];
    read(io, &mut raw)?;
    match abi::PhysBitsFile::parse(&raw) {
        Ok(f) => println!(
            "{}: {:02x?} -> version {}, valid {}, phys bits {}, guest phys bits {} (host {} from {})",
            abi::PHYS_BITS_FILE_NAME,
            raw,
            f.version,
            f.valid,
            f.phys_bits,
            f.guest_phys_bits,
            host.phys_bits,
            source
        ),
        Err(e) => println!("{}: corrupt: {e}", abi::PHYS_BITS_FILE_NAME),
    }
    Ok(())
}
