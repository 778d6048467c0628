// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Configuration of an fw_cfg device.
//!
//! [`FwCfgBuilder`] collects items and files, checks QEMU's limits as they
//! are added (so errors name the offending call), and builds any number of
//! identical devices. Integer items are little-endian, as QEMU's
//! `fw_cfg_add_i16/i32/i64` store them.
//!
//! Like QEMU, the builder always provides the signature, the ID (with the
//! DMA bit when DMA is on), the UUID (zeros unless set), NOGRAPHIC and
//! BOOT_MENU (0 unless set), and the file directory. Unlike QEMU, it adds
//! no files on its own: [`FwCfgBuilder::x86_qemu_defaults`] adds what
//! QEMU's x86 machines always serve (`etc/boot-fail-wait`, `bootorder`,
//! `bios-geometry`, `etc/e820` and the CPU and RAM items).

use std::collections::BTreeMap;
use std::sync::Arc;

use vm_memory::GuestAddressSpace;

use crate::abi::{
    FILE_DIR_ENTRY_SIZE, FILE_DIR_HEADER_SIZE, FILE_NAME_SIZE, FILE_SLOTS_MAX, FileDirEntry,
    ID_DMA, ID_TRADITIONAL, KEY_ARCH_LOCAL, KEY_BOOT_DEVICE, KEY_BOOT_MENU, KEY_CMDLINE_ADDR,
    KEY_CMDLINE_DATA, KEY_CMDLINE_SIZE, KEY_FILE_DIR, KEY_FILE_FIRST, KEY_ID, KEY_INITRD_ADDR,
    KEY_INITRD_DATA, KEY_INITRD_SIZE, KEY_KERNEL_ADDR, KEY_KERNEL_DATA, KEY_KERNEL_ENTRY,
    KEY_KERNEL_SIZE, KEY_MACHINE_ID, KEY_MAX_CPUS, KEY_NB_CPUS, KEY_NOGRAPHIC, KEY_NUMA,
    KEY_RAM_SIZE, KEY_SETUP_ADDR, KEY_SETUP_DATA, KEY_SETUP_SIZE, KEY_SIGNATURE, KEY_UUID,
    KEY_WRITE_CHANNEL, KEY_X86_ACPI_TABLES, KEY_X86_HPET, KEY_X86_IRQ0_OVERRIDE, KEY_X86_SMBIOS,
    SIGNATURE,
};
use crate::device::{FileItem, FwCfg, Item, KEY_INDEX_MASK, SelectCallback};
use crate::error::{BuildError, FileNameError};
use crate::events::{FwCfgEvents, NoEvents};

/// Result of the builder's methods.
pub type Result<T> = std::result::Result<T, BuildError>;

/// The number of file slots QEMU gives a device unless told otherwise
/// (`FW_CFG_FILE_SLOTS_DFLT`).
pub const FILE_SLOTS_DEFAULT: u16 = 0x20;
/// The smallest number of file slots QEMU accepts (`FW_CFG_FILE_SLOTS_MIN`).
pub const FILE_SLOTS_MIN: u16 = 0x10;

/// Name of the x86 E820 file QEMU provides.
pub const E820_FILE_NAME: &str = "etc/e820";
/// Name of the file with SeaBIOS's boot-menu timeout.
pub const BOOT_MENU_WAIT_FILE_NAME: &str = "etc/boot-menu-wait";
/// Name of the file with the reboot timeout after a failed boot.
pub const BOOT_FAIL_WAIT_FILE_NAME: &str = "etc/boot-fail-wait";

/// One entry of the `etc/e820` file: packed `{LE64 address, LE64 length,
/// LE32 type}`, 20 bytes, as QEMU's `struct e820_entry`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct E820Entry {
    /// Start address.
    pub address: u64,
    /// Length in bytes.
    pub length: u64,
    /// Type: 1 RAM, 2 reserved, 3 ACPI, 4 NVS, 5 unusable.
    pub kind: u32,
}

impl E820Entry {
    /// Size of one packed entry.
    pub const SIZE: usize = 20;

    /// The packed little-endian bytes.
    pub fn to_le_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        b[0..8].copy_from_slice(&self.address.to_le_bytes());
        b[8..16].copy_from_slice(&self.length.to_le_bytes());
        b[16..20].copy_from_slice(&self.kind.to_le_bytes());
        b
    }
}

/// A read-only item from `data`, if its length fits the ABI.
fn read_only(data: Vec<u8>) -> Result<Item> {
    check_len(data.len())?;
    Ok(Item::ReadOnly(data.into()))
}

/// The largest item: QEMU asserts `len < UINT32_MAX`.
pub const ITEM_MAX_LEN: u64 = u32::MAX as u64 - 1;

/// QEMU asserts `len < UINT32_MAX`.
fn check_len(len: usize) -> Result<()> {
    if u64::try_from(len).is_ok_and(|l| l <= ITEM_MAX_LEN) {
        Ok(())
    } else {
        Err(BuildError::ItemTooLarge { len })
    }
}

/// Checks a file name against the directory's rules, as both the builder
/// and the `-fw_cfg` parser apply them: 1 to 55 bytes
/// ([`abi::FILE_NAME_MAX_LEN`](crate::abi::FILE_NAME_MAX_LEN)), no NUL byte.
///
/// ```
/// use fw_cfg_device::{FileNameError, check_file_name};
///
/// assert_eq!(check_file_name("opt/org.example/blob"), Ok(()));
/// assert_eq!(check_file_name(""), Err(FileNameError::Empty));
/// assert_eq!(check_file_name("a\0b"), Err(FileNameError::ContainsNul));
/// assert_eq!(
///     check_file_name(&"x".repeat(56)),
///     Err(FileNameError::TooLong { len: 56 })
/// );
/// ```
pub fn check_file_name(name: &str) -> std::result::Result<(), FileNameError> {
    fw_cfg_abi::check_file_name(name.as_bytes())
}

/// Builder of [`FwCfg`] devices.
///
/// ```
/// use fw_cfg_device::builder::FwCfgBuilder;
/// use vm_memory::{GuestAddress, GuestMemoryMmap};
///
/// let mut b = FwCfgBuilder::new();
/// b.ram_size(256 << 20).nb_cpus(2).max_cpus(2);
/// b.add_file("opt/hello", b"hi".to_vec()).unwrap();
/// let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x1000)]).unwrap();
/// let dev = b.build(&mem);
/// assert_eq!(dev.files().next(), Some(("opt/hello", 0x20, 2)));
/// ```
#[derive(Clone)]
pub struct FwCfgBuilder {
    dma: bool,
    file_slots: u16,
    /// Generic keys below `KEY_FILE_FIRST`.
    well_known: BTreeMap<u16, Item>,
    /// Arch-local items by index (`key & KEY_INDEX_MASK`).
    arch: BTreeMap<u16, Item>,
    /// Files in insertion order; sorted by name at build time.
    files: Vec<(String, Item)>,
    /// Select callbacks by file name.
    select_callbacks: Vec<(String, SelectCallback)>,
}

impl std::fmt::Debug for FwCfgBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FwCfgBuilder")
            .field("dma", &self.dma)
            .field("file_slots", &self.file_slots)
            .field("well_known", &self.well_known.keys().collect::<Vec<_>>())
            .field("arch", &self.arch.keys().collect::<Vec<_>>())
            .field(
                "files",
                &self.files.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Default for FwCfgBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl FwCfgBuilder {
    /// A builder with DMA on, 0x20 file slots, a zero UUID and NOGRAPHIC
    /// and BOOT_MENU set to 0 (QEMU's defaults).
    pub fn new() -> Self {
        let mut b = FwCfgBuilder {
            dma: true,
            file_slots: FILE_SLOTS_DEFAULT,
            well_known: BTreeMap::new(),
            arch: BTreeMap::new(),
            files: Vec::new(),
            select_callbacks: Vec::new(),
        };
        b.set_fixed(KEY_UUID, vec![0; 16]);
        b.set_fixed(KEY_NOGRAPHIC, 0u16.to_le_bytes().to_vec());
        b.set_fixed(KEY_BOOT_MENU, 0u16.to_le_bytes().to_vec());
        b
    }

    /// Sets a generic item whose size is known to be small.
    fn set_fixed(&mut self, key: u16, data: Vec<u8>) -> &mut Self {
        self.well_known.insert(key, Item::ReadOnly(data.into()));
        self
    }

    /// Enables or disables the DMA interface (ID bit 1 and the DMA
    /// registers).
    pub fn dma(&mut self, enabled: bool) -> &mut Self {
        self.dma = enabled;
        self
    }

    /// Sets the number of file slots (QEMU's `x-file-slots`): between 0x10
    /// and 0x3fe0, at least the number of files already added, and large
    /// enough for the arch-local keys in use.
    pub fn file_slots(&mut self, slots: u16) -> Result<&mut Self> {
        let max_entry = u32::from(KEY_FILE_FIRST) + u32::from(slots);
        if !(FILE_SLOTS_MIN..=FILE_SLOTS_MAX).contains(&slots)
            || self.files.len() > usize::from(slots)
            || self.arch.keys().any(|&i| u32::from(i) >= max_entry)
        {
            return Err(BuildError::InvalidFileSlots { slots });
        }
        self.file_slots = slots;
        Ok(self)
    }

    /// Sets the machine UUID (16 bytes, in the order of the textual form).
    pub fn uuid(&mut self, uuid: [u8; 16]) -> &mut Self {
        self.set_fixed(KEY_UUID, uuid.to_vec())
    }

    /// Sets RAM_SIZE (LE64).
    pub fn ram_size(&mut self, bytes: u64) -> &mut Self {
        self.set_fixed(KEY_RAM_SIZE, bytes.to_le_bytes().to_vec())
    }

    /// Sets NB_CPUS, the number of boot CPUs (LE16).
    pub fn nb_cpus(&mut self, n: u16) -> &mut Self {
        self.set_fixed(KEY_NB_CPUS, n.to_le_bytes().to_vec())
    }

    /// Sets MAX_CPUS (LE16). On x86 QEMU stores the APIC ID limit here.
    pub fn max_cpus(&mut self, n: u16) -> &mut Self {
        self.set_fixed(KEY_MAX_CPUS, n.to_le_bytes().to_vec())
    }

    /// Sets NOGRAPHIC (LE16, 1 when the machine has no display).
    pub fn nographic(&mut self, nographic: bool) -> &mut Self {
        self.set_fixed(KEY_NOGRAPHIC, u16::from(nographic).to_le_bytes().to_vec())
    }

    /// Sets BOOT_MENU (LE16, 1 when the boot menu is enabled).
    pub fn boot_menu(&mut self, enabled: bool) -> &mut Self {
        self.set_fixed(KEY_BOOT_MENU, u16::from(enabled).to_le_bytes().to_vec())
    }

    /// Sets MACHINE_ID (LE16, as QEMU's sparc and ppc boards store it).
    pub fn machine_id(&mut self, id: u16) -> &mut Self {
        self.set_fixed(KEY_MACHINE_ID, id.to_le_bytes().to_vec())
    }

    /// Sets BOOT_DEVICE (LE16, the legacy boot device letter).
    pub fn boot_device(&mut self, device: u16) -> &mut Self {
        self.set_fixed(KEY_BOOT_DEVICE, device.to_le_bytes().to_vec())
    }

    /// Sets the NUMA item as QEMU's x86 machines build it: LE64 node count,
    /// then one LE64 node number per APIC ID (`cpu_node[apic_id]`), then one
    /// LE64 memory size per node (`node_mem`, whose length is the node
    /// count).
    pub fn numa(&mut self, cpu_node: &[u64], node_mem: &[u64]) -> Result<&mut Self> {
        let words = 1 + cpu_node.len() + node_mem.len();
        check_len(words.saturating_mul(8))?;
        let mut v = Vec::with_capacity(words * 8);
        v.extend_from_slice(&(node_mem.len() as u64).to_le_bytes());
        for w in cpu_node.iter().chain(node_mem) {
            v.extend_from_slice(&w.to_le_bytes());
        }
        self.well_known.insert(KEY_NUMA, read_only(v)?);
        Ok(self)
    }

    /// Sets KERNEL_ADDR, KERNEL_SIZE (LE32) and KERNEL_DATA.
    pub fn kernel(&mut self, load_addr: u32, data: Vec<u8>) -> Result<&mut Self> {
        self.addr_size_data(
            KEY_KERNEL_ADDR,
            KEY_KERNEL_SIZE,
            KEY_KERNEL_DATA,
            load_addr,
            data,
        )
    }

    /// Sets KERNEL_ENTRY (LE32).
    pub fn kernel_entry(&mut self, entry: u32) -> &mut Self {
        self.set_fixed(KEY_KERNEL_ENTRY, entry.to_le_bytes().to_vec())
    }

    /// Sets INITRD_ADDR, INITRD_SIZE (LE32) and INITRD_DATA.
    pub fn initrd(&mut self, load_addr: u32, data: Vec<u8>) -> Result<&mut Self> {
        self.addr_size_data(
            KEY_INITRD_ADDR,
            KEY_INITRD_SIZE,
            KEY_INITRD_DATA,
            load_addr,
            data,
        )
    }

    /// Sets CMDLINE_ADDR, CMDLINE_SIZE (LE32, including the NUL) and
    /// CMDLINE_DATA (the string plus a NUL).
    pub fn cmdline(&mut self, load_addr: u32, cmdline: &str) -> Result<&mut Self> {
        if cmdline.as_bytes().contains(&0) {
            return Err(BuildError::StringContainsNul);
        }
        let mut data = Vec::with_capacity(cmdline.len() + 1);
        data.extend_from_slice(cmdline.as_bytes());
        data.push(0);
        self.addr_size_data(
            KEY_CMDLINE_ADDR,
            KEY_CMDLINE_SIZE,
            KEY_CMDLINE_DATA,
            load_addr,
            data,
        )
    }

    /// Sets SETUP_ADDR, SETUP_SIZE (LE32) and SETUP_DATA (the Linux setup
    /// header).
    pub fn setup(&mut self, load_addr: u32, data: Vec<u8>) -> Result<&mut Self> {
        self.addr_size_data(
            KEY_SETUP_ADDR,
            KEY_SETUP_SIZE,
            KEY_SETUP_DATA,
            load_addr,
            data,
        )
    }

    fn addr_size_data(
        &mut self,
        addr_key: u16,
        size_key: u16,
        data_key: u16,
        addr: u32,
        data: Vec<u8>,
    ) -> Result<&mut Self> {
        let item = read_only(data)?;
        let size = item.len();
        self.set_fixed(addr_key, addr.to_le_bytes().to_vec());
        self.set_fixed(size_key, size.to_le_bytes().to_vec());
        self.well_known.insert(data_key, item);
        Ok(self)
    }

    /// x86: sets IRQ0_OVERRIDE (LE32, QEMU always stores 1).
    pub fn x86_irq0_override(&mut self, enabled: bool) -> &mut Self {
        let value: Arc<[u8]> = u32::from(enabled).to_le_bytes().to_vec().into();
        self.arch.insert(
            KEY_X86_IRQ0_OVERRIDE & KEY_INDEX_MASK,
            Item::ReadOnly(value),
        );
        self
    }

    /// x86: adds the `etc/e820` file (packed 20-byte entries).
    pub fn x86_e820(&mut self, entries: &[E820Entry]) -> Result<&mut Self> {
        let mut v = Vec::with_capacity(entries.len().saturating_mul(E820Entry::SIZE));
        for e in entries {
            v.extend_from_slice(&e.to_le_bytes());
        }
        self.add_file(E820_FILE_NAME, v)
    }

    /// x86: sets the legacy ACPI_TABLES item (raw bytes).
    pub fn x86_acpi_tables(&mut self, data: Vec<u8>) -> Result<&mut Self> {
        self.add_bytes(KEY_X86_ACPI_TABLES, data)
    }

    /// x86: sets the legacy SMBIOS entries item (raw bytes).
    pub fn x86_smbios(&mut self, data: Vec<u8>) -> Result<&mut Self> {
        self.add_bytes(KEY_X86_SMBIOS, data)
    }

    /// x86: sets the HPET item (raw `struct hpet_fw_config` bytes).
    pub fn x86_hpet(&mut self, data: Vec<u8>) -> Result<&mut Self> {
        self.add_bytes(KEY_X86_HPET, data)
    }

    /// Adds `etc/boot-menu-wait` (LE16 milliseconds), as QEMU's
    /// `-boot splash-time=` does.
    pub fn boot_menu_wait(&mut self, ms: u16) -> Result<&mut Self> {
        self.add_file(BOOT_MENU_WAIT_FILE_NAME, ms.to_le_bytes().to_vec())
    }

    /// Adds `etc/boot-fail-wait`: LE32 milliseconds to wait before
    /// rebooting after a failed boot, `u32::MAX` for "never reboot" (QEMU's
    /// `fw_cfg_reboot` adds it always, from `-boot reboot-timeout=`, default
    /// -1; SeaBIOS reads it with `romfile_loadint` as milliseconds). QEMU
    /// accepts 0 to 65535 and -1; other values are refused.
    pub fn boot_fail_wait(&mut self, ms: u32) -> Result<&mut Self> {
        if ms > crate::x86::REBOOT_TIMEOUT_MAX_MS && ms != u32::MAX {
            return Err(BuildError::InvalidBootFailWait { ms });
        }
        self.add_file(BOOT_FAIL_WAIT_FILE_NAME, ms.to_le_bytes().to_vec())
    }

    /// Sets a numbered item. Allowed: generic keys below 0x20 except the
    /// signature, the ID and the directory (which the device generates),
    /// and arch-local keys (bit 15) whose index is within the file slots.
    /// Files must use [`add_file`](Self::add_file). Setting a key twice
    /// replaces the first value.
    pub fn add_bytes(&mut self, key: u16, data: Vec<u8>) -> Result<&mut Self> {
        if key & KEY_WRITE_CHANNEL != 0 {
            return Err(BuildError::InvalidKey { key });
        }
        let index = key & KEY_INDEX_MASK;
        if key & KEY_ARCH_LOCAL != 0 {
            if u32::from(index) >= u32::from(KEY_FILE_FIRST) + u32::from(self.file_slots) {
                return Err(BuildError::InvalidKey { key });
            }
            self.arch.insert(index, read_only(data)?);
        } else {
            if index >= KEY_FILE_FIRST || [KEY_SIGNATURE, KEY_ID, KEY_FILE_DIR].contains(&index) {
                return Err(BuildError::InvalidKey { key });
            }
            self.well_known.insert(index, read_only(data)?);
        }
        Ok(self)
    }

    fn push_file(&mut self, name: &str, item: Item) -> Result<&mut Self> {
        check_file_name(name).map_err(|source| BuildError::InvalidName {
            name: name.to_string(),
            source,
        })?;
        if self.files.iter().any(|(n, _)| n == name) {
            return Err(BuildError::DuplicateName {
                name: name.to_string(),
            });
        }
        if self.files.len() >= usize::from(self.file_slots) {
            return Err(BuildError::NoFreeSlot {
                slots: self.file_slots,
            });
        }
        self.files.push((name.to_string(), item));
        Ok(self)
    }

    /// Adds a read-only named file. Names are 1 to 55 bytes without NUL and
    /// unique; the directory lists files sorted by name (byte-wise, as
    /// `strcmp`), and the selector of each file is `0x20 +` its position, so
    /// selectors are only known once the device is built (see
    /// [`FwCfg::files`]).
    pub fn add_file(&mut self, name: &str, data: Vec<u8>) -> Result<&mut Self> {
        let item = read_only(data)?;
        self.push_file(name, item)
    }

    /// Adds a file the guest may overwrite by DMA (as QEMU's
    /// `etc/vmcoreinfo`). After each successful DMA write, `callback`
    /// receives the whole file as it now is. QEMU's callbacks receive the
    /// written range instead and read the item themselves; use
    /// [`add_writable_file_ranged`](Self::add_writable_file_ranged) for
    /// that form. Each built device has its own copy of the contents.
    ///
    /// The callback runs on the vCPU thread in the middle of the guest's
    /// DMA kick, with the device borrowed: it must be quick, must not
    /// access the device, and must treat the bytes as untrusted guest
    /// input. If it panics (and panics unwind), the device catches the
    /// panic, puts the written bytes back as they were and fails the
    /// transfer with the DMA error bit; the device stays usable.
    ///
    /// What the guest wrote is not in [`FwCfgState`](crate::FwCfgState):
    /// the VMM carries it across a snapshot
    /// ([`FwCfg::writable_files`], then [`FwCfg::modify_file`] on the
    /// destination), as QEMU migrates such files through their owners.
    pub fn add_writable_file(
        &mut self,
        name: &str,
        data: Vec<u8>,
        callback: impl Fn(&[u8]) + Send + Sync + 'static,
    ) -> Result<&mut Self> {
        self.add_writable_file_ranged(name, data, move |_, _, item| callback(item))
    }

    /// Like [`add_writable_file`](Self::add_writable_file), but the
    /// callback receives `(offset, len, item)`: the written range, as in
    /// QEMU's `write_cb`, and the whole file after the write.
    pub fn add_writable_file_ranged(
        &mut self,
        name: &str,
        data: Vec<u8>,
        callback: impl Fn(u32, u32, &[u8]) + Send + Sync + 'static,
    ) -> Result<&mut Self> {
        check_len(data.len())?;
        let item = Item::Writable {
            bytes: data.into_boxed_slice(),
            on_write: Arc::new(callback),
        };
        self.push_file(name, item)
    }

    /// Adds a read-only file whose `callback` runs each time the guest
    /// selects it (by the selector register or a DMA SELECT), before the
    /// read, as QEMU's `select_cb` (QEMU builds its ACPI tables this way).
    /// The callback receives the file's current bytes and returns new
    /// bytes to serve from then on (the directory size follows), or `None`
    /// to keep them; to produce content once, return `Some` only while
    /// the bytes are still the placeholder `data`. Each device built
    /// starts from `data`.
    ///
    /// The callback runs on the vCPU thread with the device borrowed: it
    /// must be quick and must not access the device. If it panics (and
    /// panics unwind), the file keeps its bytes.
    pub fn add_file_with_select_callback(
        &mut self,
        name: &str,
        data: Vec<u8>,
        callback: impl Fn(&[u8]) -> Option<Vec<u8>> + Send + Sync + 'static,
    ) -> Result<&mut Self> {
        self.add_file(name, data)?;
        self.select_callbacks
            .push((name.to_string(), Arc::new(callback)));
        Ok(self)
    }

    /// Number of files added so far.
    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    /// Builds a device without an events observer.
    pub fn build<M: GuestAddressSpace>(&self, mem: M) -> FwCfg<M, NoEvents> {
        self.build_with_events(mem, NoEvents)
    }

    /// Builds a device that reports to `events`.
    pub fn build_with_events<M: GuestAddressSpace, EV: FwCfgEvents>(
        &self,
        mem: M,
        events: EV,
    ) -> FwCfg<M, EV> {
        let mut files: Vec<&(String, Item)> = self.files.iter().collect();
        // Names are unique, so an unstable sort gives QEMU's order.
        files.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));

        let mut well_known: Vec<Option<Item>> = (0..KEY_FILE_FIRST).map(|_| None).collect();
        for (&key, item) in &self.well_known {
            // Cloning shares read-only bytes and copies writable ones.
            well_known[usize::from(key)] = Some(item.clone());
        }
        let id = ID_TRADITIONAL | if self.dma { ID_DMA } else { 0 };
        well_known[usize::from(KEY_SIGNATURE)] = Some(fixed_item(SIGNATURE.to_vec()));
        well_known[usize::from(KEY_ID)] = Some(fixed_item(id.to_le_bytes().to_vec()));
        well_known[usize::from(KEY_FILE_DIR)] = Some(fixed_item(
            self.directory(files.iter().map(|f| (&f.0, &f.1))),
        ));

        let files = files
            .into_iter()
            .map(|(name, item)| FileItem {
                name: name.clone(),
                item: item.clone(),
            })
            .collect();
        let arch = self
            .arch
            .iter()
            .map(|(&k, item)| (k, item.clone()))
            .collect();
        let mut dev = FwCfg::from_parts(
            mem,
            events,
            self.dma,
            self.file_slots,
            well_known,
            files,
            arch,
        );
        let callbacks = self.select_callbacks.iter().map(|(n, c)| (n.as_str(), c));
        dev.install_select_callbacks(callbacks);
        dev
    }

    /// The directory item: QEMU allocates it for every slot, so its length
    /// is `4 + 64 * slots` with unused entries zero.
    fn directory<'a>(&self, files: impl Iterator<Item = (&'a String, &'a Item)>) -> Vec<u8> {
        let slots = usize::from(self.file_slots);
        let mut dir = vec![0u8; FILE_DIR_HEADER_SIZE + FILE_DIR_ENTRY_SIZE * slots];
        let mut count = 0u32;
        for ((name, item), key) in files.zip(KEY_FILE_FIRST..) {
            let mut entry = FileDirEntry {
                size: item.len(),
                select: key,
                reserved: 0,
                name: [0; FILE_NAME_SIZE],
            };
            entry.name[..name.len()].copy_from_slice(name.as_bytes());
            let at = FILE_DIR_HEADER_SIZE + FILE_DIR_ENTRY_SIZE * count as usize;
            dir[at..at + FILE_DIR_ENTRY_SIZE].copy_from_slice(&entry.to_be_bytes());
            count += 1;
        }
        dir[..FILE_DIR_HEADER_SIZE].copy_from_slice(&count.to_be_bytes());
        dir
    }
}

fn fixed_item(data: Vec<u8>) -> Item {
    Item::ReadOnly(data.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::{GuestAddress, GuestMemoryMmap};

    type Mem = GuestMemoryMmap<()>;

    fn mem() -> Mem {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x1000)]).unwrap()
    }

    fn item(dev: &mut FwCfg<&Mem>, key: u16) -> Vec<u8> {
        dev.item_bytes(key).unwrap_or(&[]).to_vec()
    }

    #[test]
    fn qemu_defaults() {
        let m = mem();
        let mut dev = FwCfgBuilder::new().build(&m);
        assert_eq!(item(&mut dev, KEY_SIGNATURE), b"QEMU");
        assert_eq!(item(&mut dev, KEY_ID), 3u32.to_le_bytes());
        assert_eq!(item(&mut dev, KEY_UUID), [0; 16]);
        assert_eq!(item(&mut dev, KEY_NOGRAPHIC), [0, 0]);
        assert_eq!(item(&mut dev, KEY_BOOT_MENU), [0, 0]);
        let dir = item(&mut dev, KEY_FILE_DIR);
        assert_eq!(dir.len(), 4 + 64 * 0x20);
        assert!(dir.iter().all(|&b| b == 0));
        assert_eq!(dev.file_slots(), 0x20);
        assert!(dev.dma_enabled());
    }

    #[test]
    fn typed_items_are_little_endian() {
        let m = mem();
        let mut b = FwCfgBuilder::new();
        b.uuid([1; 16])
            .ram_size(0x1_2345_6789)
            .nb_cpus(3)
            .max_cpus(8)
            .nographic(true)
            .boot_menu(true)
            .machine_id(0x102)
            .boot_device(u16::from(b'c'))
            .kernel_entry(0x100_0000)
            .x86_irq0_override(true);
        b.numa(&[0, 1], &[0x1000, 0x2000]).unwrap();
        b.kernel(0x10_0000, vec![1, 2, 3]).unwrap();
        b.initrd(0x20_0000, vec![4; 5]).unwrap();
        b.cmdline(0x2_0000, "console=ttyS0").unwrap();
        b.setup(0x9_0000, vec![7; 2]).unwrap();
        let mut dev = b.build(&m);
        assert_eq!(item(&mut dev, KEY_UUID), [1; 16]);
        assert_eq!(item(&mut dev, KEY_RAM_SIZE), 0x1_2345_6789u64.to_le_bytes());
        assert_eq!(item(&mut dev, KEY_NB_CPUS), [3, 0]);
        assert_eq!(item(&mut dev, KEY_MAX_CPUS), [8, 0]);
        assert_eq!(item(&mut dev, KEY_NOGRAPHIC), [1, 0]);
        assert_eq!(item(&mut dev, KEY_BOOT_MENU), [1, 0]);
        assert_eq!(item(&mut dev, KEY_MACHINE_ID), [2, 1]);
        assert_eq!(item(&mut dev, KEY_BOOT_DEVICE), [b'c', 0]);
        assert_eq!(
            item(&mut dev, KEY_KERNEL_ENTRY),
            0x100_0000u32.to_le_bytes()
        );
        assert_eq!(item(&mut dev, KEY_X86_IRQ0_OVERRIDE), [1, 0, 0, 0]);
        let numa = item(&mut dev, KEY_NUMA);
        assert_eq!(numa.len(), 5 * 8);
        assert_eq!(&numa[..8], &2u64.to_le_bytes());
        assert_eq!(&numa[16..24], &1u64.to_le_bytes());
        assert_eq!(&numa[32..40], &0x2000u64.to_le_bytes());
        assert_eq!(item(&mut dev, KEY_KERNEL_ADDR), 0x10_0000u32.to_le_bytes());
        assert_eq!(item(&mut dev, KEY_KERNEL_SIZE), 3u32.to_le_bytes());
        assert_eq!(item(&mut dev, KEY_KERNEL_DATA), [1, 2, 3]);
        assert_eq!(item(&mut dev, KEY_INITRD_SIZE), 5u32.to_le_bytes());
        assert_eq!(item(&mut dev, KEY_CMDLINE_SIZE), 14u32.to_le_bytes());
        assert_eq!(item(&mut dev, KEY_CMDLINE_DATA), b"console=ttyS0\0");
        assert_eq!(item(&mut dev, KEY_SETUP_ADDR), 0x9_0000u32.to_le_bytes());
        assert_eq!(item(&mut dev, KEY_SETUP_DATA), [7, 7]);
        assert!(matches!(
            FwCfgBuilder::new().cmdline(0, "a\0b"),
            Err(BuildError::StringContainsNul)
        ));
    }

    #[test]
    fn directory_sorted_by_strcmp_with_be_fields() {
        let m = mem();
        let mut b = FwCfgBuilder::new();
        for n in [
            "etc/z",
            "bootorder",
            "etc/a",
            "Zed",
            "etc/a/b",
            "opt/\u{e9}",
        ] {
            b.add_file(n, n.as_bytes().to_vec()).unwrap();
        }
        let mut dev = b.build(&m);
        let names: Vec<&str> = dev.files().map(|(n, _, _)| n).collect();
        assert_eq!(
            names,
            [
                "Zed",
                "bootorder",
                "etc/a",
                "etc/a/b",
                "etc/z",
                "opt/\u{e9}"
            ]
        );
        let dir = item(&mut dev, KEY_FILE_DIR);
        assert_eq!(&dir[..4], &[0, 0, 0, 6]);
        for (i, (name, key, size)) in dev.files().enumerate() {
            let at = 4 + 64 * i;
            let e = FileDirEntry::from_be_bytes(dir[at..at + 64].try_into().unwrap());
            assert_eq!(e.size, size);
            assert_eq!(e.select, key);
            assert_eq!(key, 0x20 + i as u16);
            assert_eq!(e.reserved, 0);
            assert_eq!(e.name_bytes(), Some(name.as_bytes()));
            assert_eq!(&dir[at..at + 4], &size.to_be_bytes());
            assert_eq!(&dir[at + 4..at + 6], &key.to_be_bytes());
            assert_eq!(dev.item_bytes(key).unwrap(), name.as_bytes());
        }
    }

    #[test]
    fn name_limits() {
        let mut b = FwCfgBuilder::new();
        let n55 = "a".repeat(55);
        let n56 = "b".repeat(56);
        b.add_file(&n55, vec![]).unwrap();
        assert!(matches!(
            b.add_file(&n56, vec![]),
            Err(BuildError::InvalidName {
                source: FileNameError::TooLong { len: 56 },
                ..
            })
        ));
        assert!(matches!(
            b.add_file("", vec![]),
            Err(BuildError::InvalidName {
                source: FileNameError::Empty,
                ..
            })
        ));
        assert!(matches!(
            b.add_file("a\0b", vec![]),
            Err(BuildError::InvalidName {
                source: FileNameError::ContainsNul,
                ..
            })
        ));
        assert!(matches!(
            b.add_file(&n55, vec![1]),
            Err(BuildError::DuplicateName { .. })
        ));
        let m = mem();
        let mut dev = b.build(&m);
        let dir = item(&mut dev, KEY_FILE_DIR);
        assert_eq!(&dir[12..67], n55.as_bytes());
        assert_eq!(dir[67], 0);
    }

    #[test]
    fn slots_full_and_slot_limits() {
        let mut b = FwCfgBuilder::new();
        for i in 0..0x20 {
            b.add_file(&format!("f{i:02}"), vec![i]).unwrap();
        }
        assert!(matches!(
            b.add_file("one-more", vec![]),
            Err(BuildError::NoFreeSlot { slots: 0x20 })
        ));
        assert!(matches!(
            b.file_slots(0x1f),
            Err(BuildError::InvalidFileSlots { slots: 0x1f })
        ));
        b.file_slots(0x21).unwrap();
        b.add_file("one-more", vec![]).unwrap();
        assert!(FwCfgBuilder::new().file_slots(0x0f).is_err());
        assert!(FwCfgBuilder::new().file_slots(0x3fe1).is_err());
        assert!(FwCfgBuilder::new().file_slots(0x10).is_ok());
        let mut big = FwCfgBuilder::new();
        big.file_slots(0x3fe0).unwrap();
        let m = mem();
        let mut dev = big.build(&m);
        dev.select(0x3fff);
        assert_eq!(dev.state().selector, 0x3fff);
        assert_eq!(item(&mut dev, KEY_FILE_DIR).len(), 4 + 64 * 0x3fe0);
    }

    #[test]
    fn add_bytes_key_rules() {
        let mut b = FwCfgBuilder::new();
        for bad in [
            KEY_SIGNATURE,
            KEY_ID,
            KEY_FILE_DIR,
            0x20,
            0x4001,
            0xffff,
            0x8000 | 0x40,
        ] {
            assert!(
                matches!(
                    b.add_bytes(bad, vec![1]),
                    Err(BuildError::InvalidKey { .. })
                ),
                "{bad:#x}"
            );
        }
        b.add_bytes(KEY_RAM_SIZE, vec![1]).unwrap();
        b.add_bytes(KEY_RAM_SIZE, vec![2]).unwrap();
        b.add_bytes(0x8000 | 0x3f, vec![3]).unwrap();
        assert!(b.file_slots(0x10).is_err());
        b.x86_hpet(vec![4])
            .unwrap()
            .x86_smbios(vec![5])
            .unwrap()
            .x86_acpi_tables(vec![6])
            .unwrap();
        let m = mem();
        let mut dev = b.build(&m);
        assert_eq!(item(&mut dev, KEY_RAM_SIZE), [2]);
        assert_eq!(item(&mut dev, 0x803f), [3]);
        assert_eq!(item(&mut dev, KEY_X86_HPET), [4]);
        assert_eq!(item(&mut dev, KEY_X86_SMBIOS), [5]);
        assert_eq!(item(&mut dev, KEY_X86_ACPI_TABLES), [6]);
        // The arch bit separates tables: 0x8003 is not 0x0003.
        assert_eq!(item(&mut dev, 0x8000 | KEY_RAM_SIZE), b"");
    }

    #[test]
    fn e820_and_boot_files() {
        let mut b = FwCfgBuilder::new();
        b.x86_e820(&[E820Entry {
            address: 0,
            length: 0xa_0000,
            kind: 1,
        }])
        .unwrap();
        b.boot_fail_wait(u32::MAX)
            .unwrap()
            .boot_menu_wait(500)
            .unwrap();
        let m = mem();
        let dev = b.build(&m);
        let k = dev.file_key(E820_FILE_NAME).unwrap();
        let e = dev.item_bytes(k).unwrap();
        assert_eq!(e.len(), 20);
        assert_eq!(&e[8..16], &0xa_0000u64.to_le_bytes());
        assert_eq!(&e[16..], &[1, 0, 0, 0]);
        let k = dev.file_key(BOOT_FAIL_WAIT_FILE_NAME).unwrap();
        assert_eq!(dev.item_bytes(k).unwrap(), [0xff; 4]);
    }

    #[test]
    fn builder_is_reusable_and_writable_files_are_per_device() {
        use crate::abi::{DMA_CTL_WRITE, DmaAccess};
        use std::sync::Mutex;
        use vm_memory::Bytes;

        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let mut b = FwCfgBuilder::new();
        b.add_writable_file("etc/w", vec![1, 2], move |d: &[u8]| {
            s2.lock().unwrap().push(d.to_vec())
        })
        .unwrap();
        let b2 = b.clone();
        let m = mem();
        let mut d1 = b.build(&m);
        let d2 = b2.build(&m);
        assert_eq!(
            d1.files().collect::<Vec<_>>(),
            d2.files().collect::<Vec<_>>()
        );
        assert!(format!("{b:?}").contains("etc/w"));

        // The guest overwrites the file through d1 by DMA.
        let key = d1.file_key("etc/w").unwrap();
        m.write_slice(&[9, 8], GuestAddress(0x800)).unwrap();
        let desc = DmaAccess::select(key, DMA_CTL_WRITE, 2, 0x800);
        m.write_slice(&desc.to_be_bytes(), GuestAddress(0x100))
            .unwrap();
        d1.dma_address_u64(0x100);
        assert_eq!(m.read_obj::<u32>(GuestAddress(0x100)).unwrap(), 0);
        assert_eq!(d1.item_bytes(key).unwrap(), [9, 8]);
        assert_eq!(*seen.lock().unwrap(), [vec![9, 8]]);
        // d2, the builders and a device built afterwards keep the original.
        assert_eq!(d2.item_bytes(key).unwrap(), [1, 2]);
        assert_eq!(b.build(&m).item_bytes(key).unwrap(), [1, 2]);
        assert_eq!(b2.build(&m).item_bytes(key).unwrap(), [1, 2]);
    }
}
