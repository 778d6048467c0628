// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The bus-agnostic fw_cfg device.
//!
//! [`FwCfg`] answers the operations the guest can perform: write the
//! selector, read the data register, write the data register (ignored, as in
//! QEMU since 2.4), write the DMA address (which runs a DMA descriptor) and
//! read the DMA register. Its [`pio_read`](FwCfg::pio_read),
//! [`pio_write`](FwCfg::pio_write), [`mmio_read`](FwCfg::mmio_read) and
//! [`mmio_write`](FwCfg::mmio_write) methods map bus accesses onto these
//! operations for any bus; the `pio` and `mmio` modules (feature
//! `vm-device`) wrap them as vm-device adapters.
//!
//! Every operation is infallible and panic-free whatever the guest does, and
//! no operation allocates: items are fixed when the device is built, and DMA
//! copies directly between item storage and guest memory.

use std::collections::BTreeMap;
use std::sync::Arc;

use vm_memory::{Bytes, GuestAddress, GuestAddressSpace, GuestMemory, Permissions};

use crate::abi::{
    DMA_ACCESS_SIZE, DMA_CTL_ERROR, DMA_CTL_READ, DMA_CTL_SELECT, DMA_CTL_SKIP, DMA_CTL_WRITE,
    DMA_SIGNATURE, DmaAccess, KEY_ARCH_LOCAL, KEY_FILE_FIRST, KEY_INVALID, KEY_SIGNATURE,
};
use crate::error::RestoreError;
use crate::events::{DmaOp, FwCfgEvents, NoEvents};
use crate::state::FwCfgState;

mod modify;
pub use modify::ModifyError;
pub(crate) use modify::SelectCallback;

/// Mask of the bits of a key that index an entry table: everything but
/// [`KEY_WRITE_CHANNEL`](crate::abi::KEY_WRITE_CHANNEL) and
/// [`KEY_ARCH_LOCAL`] (QEMU's `FW_CFG_ENTRY_MASK`). QEMU keeps one table for
/// generic keys and one for arch-local keys, and indexes both with
/// `key & KEY_INDEX_MASK`.
pub const KEY_INDEX_MASK: u16 = !(crate::abi::KEY_WRITE_CHANNEL | KEY_ARCH_LOCAL);

/// Callback of a writable item: `(offset, len, item)` after a successful DMA
/// write of `len` bytes at `offset`; `item` is the whole item after the write.
pub(crate) type WriteCallback = Arc<dyn Fn(u32, u32, &[u8]) + Send + Sync>;

/// One fw_cfg item. An item is writable exactly when it owns its bytes and
/// has a callback, so no other combination can be represented.
///
/// Cloning gives a device its own copy: read-only bytes are shared (with
/// the builder and every device built from it), writable bytes are copied.
#[derive(Clone)]
pub(crate) enum Item {
    /// Read-only bytes.
    ReadOnly(Arc<[u8]>),
    /// Bytes the guest may overwrite by DMA, private to one device, and the
    /// callback that runs after each write.
    Writable {
        /// The current contents.
        bytes: Box<[u8]>,
        /// Called after each successful DMA write.
        on_write: WriteCallback,
    },
}

impl Item {
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Item::ReadOnly(d) => d,
            Item::Writable { bytes, .. } => bytes,
        }
    }

    /// Length as the ABI sees it. The builder guarantees it fits in a u32.
    pub(crate) fn len(&self) -> u32 {
        u32::try_from(self.bytes().len()).unwrap_or(u32::MAX)
    }
}

/// A named file as the directory lists it.
pub(crate) struct FileItem {
    pub(crate) name: String,
    pub(crate) item: Item,
}

/// Zeros for DMA reads past the end of an item. Zero-initialised statics
/// live in `.bss`, so this costs no file size.
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// A QEMU-compatible fw_cfg device, generic over the guest memory used for
/// DMA and over an [`FwCfgEvents`] observer.
///
/// Build it with [`FwCfgBuilder`](crate::builder::FwCfgBuilder).
///
/// ```
/// use fw_cfg_device::abi;
/// use fw_cfg_device::builder::FwCfgBuilder;
/// use vm_memory::{GuestAddress, GuestMemoryMmap};
///
/// let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x10000)]).unwrap();
/// let mut dev = FwCfgBuilder::new().build(&mem);
/// dev.select(abi::KEY_SIGNATURE);
/// let mut sig = [0u8; 4];
/// dev.read_data_into(&mut sig);
/// assert_eq!(&sig, b"QEMU");
/// ```
pub struct FwCfg<M: GuestAddressSpace, EV: FwCfgEvents = NoEvents> {
    mem: M,
    events: EV,
    dma_enabled: bool,
    file_slots: u16,
    /// Generic keys below `KEY_FILE_FIRST`, indexed by key.
    well_known: Vec<Option<Item>>,
    /// Named files in directory order; file `i` has key `KEY_FILE_FIRST + i`.
    files: Vec<FileItem>,
    /// Arch-local items, indexed by `key & KEY_INDEX_MASK`.
    arch: BTreeMap<u16, Item>,
    /// Select callbacks by key (bit 14 clear); empty for most devices, so
    /// a selection pays one emptiness check.
    on_select: BTreeMap<u16, SelectCallback>,
    selector: u16,
    offset: u32,
    dma_address: u64,
}

impl<M: GuestAddressSpace, EV: FwCfgEvents> std::fmt::Debug for FwCfg<M, EV> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FwCfg")
            .field("dma_enabled", &self.dma_enabled)
            .field("file_slots", &self.file_slots)
            .field("files", &self.files.len())
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl<M: GuestAddressSpace, EV: FwCfgEvents> FwCfg<M, EV> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_parts(
        mem: M,
        events: EV,
        dma_enabled: bool,
        file_slots: u16,
        well_known: Vec<Option<Item>>,
        files: Vec<FileItem>,
        arch: BTreeMap<u16, Item>,
    ) -> Self {
        FwCfg {
            mem,
            events,
            dma_enabled,
            file_slots,
            well_known,
            files,
            arch,
            on_select: BTreeMap::new(),
            selector: KEY_SIGNATURE,
            offset: 0,
            dma_address: 0,
        }
    }

    /// Exclusive limit of `key & KEY_INDEX_MASK` (QEMU's `fw_cfg_max_entry`).
    fn max_entry(&self) -> u32 {
        u32::from(KEY_FILE_FIRST) + u32::from(self.file_slots)
    }

    fn item(&self, key: u16) -> Option<&Item> {
        if key == KEY_INVALID {
            return None;
        }
        let index = key & KEY_INDEX_MASK;
        if key & KEY_ARCH_LOCAL != 0 {
            self.arch.get(&index)
        } else if index < KEY_FILE_FIRST {
            self.well_known.get(usize::from(index))?.as_ref()
        } else {
            self.files
                .get(usize::from(index - KEY_FILE_FIRST))
                .map(|f| &f.item)
        }
    }

    fn item_mut(&mut self, key: u16) -> Option<&mut Item> {
        if key == KEY_INVALID {
            return None;
        }
        let index = key & KEY_INDEX_MASK;
        if key & KEY_ARCH_LOCAL != 0 {
            self.arch.get_mut(&index)
        } else if index < KEY_FILE_FIRST {
            self.well_known.get_mut(usize::from(index))?.as_mut()
        } else {
            self.files
                .get_mut(usize::from(index - KEY_FILE_FIRST))
                .map(|f| &mut f.item)
        }
    }

    fn select_inner(&mut self, key: u16) {
        self.offset = 0;
        self.selector = if u32::from(key & KEY_INDEX_MASK) >= self.max_entry() {
            KEY_INVALID
        } else {
            key
        };
    }

    /// Writes the selector register: resets the offset and selects `key`.
    ///
    /// As in QEMU, the value is kept as written (bit 14, the write channel,
    /// included) but bits 14 and 15 are not part of the lookup index; a key
    /// whose index is beyond the file slots selects nothing (`0xffff`).
    ///
    /// A file added with
    /// [`add_file_with_select_callback`](crate::FwCfgBuilder::add_file_with_select_callback)
    /// runs its callback here, as QEMU's `select_cb`.
    pub fn select(&mut self, key: u16) {
        self.select_inner(key);
        if !self.on_select.is_empty() {
            self.run_select_callback(key);
        }
        self.events.selected(key);
    }

    /// Reads one byte of the data register: the byte at the current offset,
    /// which then advances; 0 past the end (without advancing) or when no
    /// item is selected.
    pub fn read_data(&mut self) -> u8 {
        // The hottest guest access (one VM exit per byte with port I/O):
        // no slice copies, same result as a one-byte `read_data_into`.
        let offset = self.offset as usize;
        match self
            .item(self.selector)
            .and_then(|item| item.bytes().get(offset).copied())
        {
            Some(b) => {
                self.offset += 1;
                self.events.data_read(1);
                b
            }
            None => {
                self.events.data_read(0);
                0
            }
        }
    }

    /// Reads `buf.len()` bytes of the data register at once, as a wide MMIO
    /// read does: item bytes in order, then zeros once the item ends. The
    /// offset advances by the number of item bytes returned.
    pub fn read_data_into(&mut self, buf: &mut [u8]) {
        let offset = self.offset as usize;
        let copied = match self.item(self.selector) {
            Some(item) => {
                let data = item.bytes();
                let avail = data.get(offset..).unwrap_or(&[]);
                let n = avail.len().min(buf.len());
                buf[..n].copy_from_slice(&avail[..n]);
                n
            }
            None => 0,
        };
        if copied < buf.len() {
            buf[copied..].fill(0);
        }
        // `copied` is bounded by the item length, which fits in a u32.
        self.offset = self
            .offset
            .saturating_add(u32::try_from(copied).unwrap_or(u32::MAX));
        self.events.data_read(copied);
    }

    /// Writes the data register. QEMU removed data-register writes in 2.4;
    /// the value is ignored.
    pub fn write_data(&mut self, _value: u8) {
        self.events.data_write_ignored();
    }

    /// Writes the high 32 bits of the DMA address (x86 port 0x514, MMIO
    /// +16, as a 32-bit access). The low half is cleared, as in QEMU.
    /// Ignored when DMA is disabled.
    pub fn dma_address_high(&mut self, value: u32) {
        if self.dma_enabled {
            self.dma_address = u64::from(value) << 32;
        }
    }

    /// Writes the low 32 bits of the DMA address (x86 port 0x518, MMIO
    /// +20) and runs the descriptor at the resulting address. Ignored when
    /// DMA is disabled.
    pub fn dma_address_low(&mut self, value: u32) {
        if self.dma_enabled {
            self.dma_address |= u64::from(value);
            self.dma_transfer();
        }
    }

    /// Writes the whole 64-bit DMA address at once and runs the descriptor.
    /// Ignored when DMA is disabled.
    pub fn dma_address_u64(&mut self, value: u64) {
        if self.dma_enabled {
            self.dma_address = value;
            self.dma_transfer();
        }
    }

    /// Reads the DMA address register: `buf[i]` is byte `offset + i` of
    /// `"QEMU CFG"` (zero beyond the 8 bytes), whatever the access size.
    pub fn dma_register_read(&self, offset: u64, buf: &mut [u8]) {
        let sig = DMA_SIGNATURE.to_be_bytes();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = usize::try_from(offset)
                .ok()
                .and_then(|o| o.checked_add(i))
                .and_then(|o| sig.get(o).copied())
                .unwrap_or(0);
        }
    }

    /// Device reset: selects the signature item, as QEMU's reset handler
    /// does. Like QEMU, it leaves the DMA address latch alone.
    pub fn reset(&mut self) {
        self.select_inner(KEY_SIGNATURE);
    }

    /// The guest-visible registers, for a snapshot.
    pub fn state(&self) -> FwCfgState {
        FwCfgState {
            selector: self.selector,
            offset: self.offset,
            dma_address: self.dma_address,
        }
    }

    /// Restores registers saved by [`state`](Self::state) on a device built
    /// with the same configuration.
    ///
    /// The state is validated first (the lesson of QEMU's CVE-2016-1714,
    /// where a crafted migration stream indexed past the entry table): the
    /// selector must be `0xffff` or within the file slots, and the offset at
    /// most the length of the selected item (0 when nothing is there). On
    /// error the device is unchanged.
    pub fn restore(&mut self, state: &FwCfgState) -> Result<(), RestoreError> {
        if state.selector != KEY_INVALID
            && u32::from(state.selector & KEY_INDEX_MASK) >= self.max_entry()
        {
            return Err(RestoreError::InvalidSelector {
                selector: state.selector,
            });
        }
        let len = self.item(state.selector).map_or(0, Item::len);
        if state.offset > len {
            return Err(RestoreError::InvalidOffset {
                selector: state.selector,
                offset: state.offset,
                len,
            });
        }
        self.selector = state.selector;
        self.offset = state.offset;
        self.dma_address = state.dma_address;
        Ok(())
    }

    /// The events observer.
    pub fn events(&self) -> &EV {
        &self.events
    }

    /// The guest memory used for DMA.
    pub fn memory(&self) -> &M {
        &self.mem
    }

    /// Whether the DMA interface is enabled.
    pub fn dma_enabled(&self) -> bool {
        self.dma_enabled
    }

    /// The number of file slots.
    pub fn file_slots(&self) -> u16 {
        self.file_slots
    }

    /// The files in directory order: `(name, key, size)`.
    pub fn files(&self) -> impl ExactSizeIterator<Item = (&str, u16, u32)> + '_ {
        // At most 0x3fe0 files, so the key cannot overflow.
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.as_str(), KEY_FILE_FIRST + i as u16, f.item.len()))
    }

    /// The key of the file called `name`.
    pub fn file_key(&self, name: &str) -> Option<u16> {
        self.files().find(|(n, _, _)| *n == name).map(|(_, k, _)| k)
    }

    /// The current contents of the item selected by `key` (bit 14 ignored),
    /// e.g. to read back what the guest wrote to a writable file.
    pub fn item_bytes(&self, key: u16) -> Option<&[u8]> {
        if u32::from(key & KEY_INDEX_MASK) >= self.max_entry() {
            return None;
        }
        self.item(key).map(Item::bytes)
    }

    /// Runs the DMA descriptor at the latched address (QEMU's
    /// `fw_cfg_dma_transfer`). Completion is synchronous: the control word
    /// is written back as 0 or `DMA_CTL_ERROR` before this returns.
    fn dma_transfer(&mut self) {
        let desc_addr = GuestAddress(self.dma_address);
        self.dma_address = 0;
        let guard = self.mem.memory();
        let mem: &M::M = &guard;

        let mut raw = [0u8; DMA_ACCESS_SIZE];
        if mem.read_slice(&mut raw, desc_addr).is_err() {
            // Best effort, like QEMU: this write may fault as well.
            let _ = mem.write_slice(&DMA_CTL_ERROR.to_be_bytes(), desc_addr);
            self.events.dma_error();
            return;
        }
        let desc = DmaAccess::from_be_bytes(&raw);
        if desc.control & DMA_CTL_SELECT != 0 {
            self.select(desc.selector());
        }
        let op = if desc.control & DMA_CTL_READ != 0 {
            DmaOp::Read
        } else if desc.control & DMA_CTL_WRITE != 0 {
            DmaOp::Write
        } else if desc.control & DMA_CTL_SKIP != 0 {
            DmaOp::Skip
        } else {
            DmaOp::None
        };
        let ok = match op {
            DmaOp::None => true,
            _ => self.dma_run(mem, op, desc.length, desc.address),
        };
        let status: u32 = if ok { 0 } else { DMA_CTL_ERROR };
        let _ = mem.write_slice(&status.to_be_bytes(), desc_addr);
        if ok {
            let bytes = if op == DmaOp::None { 0 } else { desc.length };
            self.events.dma_transfer(op, bytes);
        } else {
            self.events.dma_error();
        }
    }

    /// The body of a transfer; returns false for the error bit.
    ///
    /// QEMU loops in chunks, but an item is contiguous, so there are at most
    /// two steps: the part inside the item (one bulk copy) and the part past
    /// its end.
    fn dma_run(&mut self, mem: &M::M, op: DmaOp, length: u32, address: u64) -> bool {
        let key = self.selector;
        let offset = self.offset;
        let mut remaining = length;
        let mut addr = address;

        // Step 1: the bytes that exist in the item.
        let item_len = self.item(key).map_or(0, Item::len);
        if remaining > 0 && offset < item_len {
            let n = remaining.min(item_len - offset);
            let range = offset as usize..(offset + n) as usize;
            let ok = match op {
                DmaOp::Read => match self.item(key) {
                    Some(item) => mem
                        .write_slice(&item.bytes()[range], GuestAddress(addr))
                        .is_ok(),
                    None => false,
                },
                DmaOp::Write => {
                    // All or nothing: the item must be writable, the whole
                    // length must fit, and guest memory must be readable.
                    n == remaining
                        && mem.check_range(GuestAddress(addr), n as usize, Permissions::Read)
                        && self.dma_write_item(mem, key, range, addr)
                }
                DmaOp::Skip | DmaOp::None => true,
            };
            // QEMU advances the offset even when the step failed.
            self.offset = offset + n;
            if !ok {
                return false;
            }
            remaining -= n;
            addr = addr.wrapping_add(u64::from(n));
        }

        // Step 2: past the end of the item (or no item at all).
        if remaining == 0 {
            return true;
        }
        match op {
            DmaOp::Read => zero_fill(mem, addr, remaining),
            DmaOp::Write => false,
            DmaOp::Skip | DmaOp::None => true,
        }
    }

    /// Copies guest memory into a writable item and runs its callback.
    ///
    /// The callback runs under `catch_unwind`: if it panics, the written
    /// range gets its previous bytes back and the transfer fails (the
    /// caller writes the error status), so the device stays usable and its
    /// lock is never poisoned by a callback.
    fn dma_write_item(
        &mut self,
        mem: &M::M,
        key: u16,
        range: std::ops::Range<usize>,
        addr: u64,
    ) -> bool {
        let Some(Item::Writable { bytes, on_write }) = self.item_mut(key) else {
            return false;
        };
        let (start, len) = (range.start, range.len());
        let Some(dst) = bytes.get_mut(range.clone()) else {
            return false;
        };
        // The previous bytes, put back if the copy or the callback fails.
        let previous = dst.to_vec();
        if mem.read_slice(dst, GuestAddress(addr)).is_err() {
            dst.copy_from_slice(&previous);
            return false;
        }
        // Both fit in u32: they are bounded by the item length.
        let (start, len) = (start as u32, len as u32);
        let item: &[u8] = bytes;
        let run =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| on_write(start, len, item)));
        if run.is_err() {
            bytes[range].copy_from_slice(&previous);
            return false;
        }
        self.events.item_written(key, start, len);
        true
    }
}

/// Writes `len` zeros at `addr`, stopping at the first fault (the guest
/// asked for a read past the end of the item).
fn zero_fill<GM: GuestMemory + ?Sized>(mem: &GM, mut addr: u64, len: u32) -> bool {
    let mut remaining = len as usize;
    while remaining > 0 {
        let n = remaining.min(ZEROS.len());
        if mem.write_slice(&ZEROS[..n], GuestAddress(addr)).is_err() {
            return false;
        }
        remaining -= n;
        addr = addr.wrapping_add(n as u64);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::*;
    use crate::builder::FwCfgBuilder;
    use std::sync::Mutex;
    use vm_memory::GuestMemoryMmap;

    type Mem = GuestMemoryMmap<()>;

    fn mem() -> Mem {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap()
    }

    fn read(dev: &mut FwCfg<&Mem>, key: u16, n: usize) -> Vec<u8> {
        dev.select(key);
        let mut v = vec![0; n];
        dev.read_data_into(&mut v);
        v
    }

    fn dma(m: &Mem, dev: &mut FwCfg<&Mem>, desc: DmaAccess, at: u64) -> u32 {
        m.write_slice(&desc.to_be_bytes(), GuestAddress(at))
            .unwrap();
        dev.dma_address_u64(at);
        let mut c = [0u8; 4];
        m.read_slice(&mut c, GuestAddress(at)).unwrap();
        u32::from_be_bytes(c)
    }

    #[test]
    fn index_mask_is_qemus_entry_mask() {
        // QEMU's FW_CFG_ENTRY_MASK is 0x3fff: it drops both the write and
        // the arch-local bit.
        assert_eq!(KEY_INDEX_MASK, 0x3fff);
        assert_eq!(KEY_INDEX_MASK & (KEY_WRITE_CHANNEL | 0x19), 0x19);
        assert_eq!(KEY_INDEX_MASK & (KEY_ARCH_LOCAL | 3), 3);
    }

    #[test]
    fn signature_and_id() {
        let m = mem();
        let mut dev = FwCfgBuilder::new().build(&m);
        assert_eq!(read(&mut dev, KEY_SIGNATURE, 4), b"QEMU");
        assert_eq!(read(&mut dev, KEY_ID, 4), [3, 0, 0, 0]);
        let mut dev = FwCfgBuilder::new().dma(false).build(&m);
        assert_eq!(read(&mut dev, KEY_ID, 4), [1, 0, 0, 0]);
    }

    #[test]
    fn reset_selects_signature_and_starts_after_build() {
        let m = mem();
        let mut dev = FwCfgBuilder::new().build(&m);
        assert_eq!(dev.read_data(), b'Q');
        dev.select(KEY_ID);
        dev.read_data();
        dev.reset();
        assert_eq!(dev.state().selector, KEY_SIGNATURE);
        assert_eq!(dev.read_data(), b'Q');
    }

    #[test]
    fn past_end_reads_zero_and_does_not_advance() {
        let m = mem();
        let mut dev = FwCfgBuilder::new().build(&m);
        dev.select(KEY_SIGNATURE);
        let mut b = [0u8; 6];
        dev.read_data_into(&mut b);
        assert_eq!(&b, b"QEMU\0\0");
        assert_eq!(dev.state().offset, 4);
        assert_eq!(dev.read_data(), 0);
        assert_eq!(dev.state().offset, 4);
    }

    #[test]
    fn unknown_and_out_of_range_keys() {
        let m = mem();
        let mut dev = FwCfgBuilder::new().build(&m);
        assert_eq!(read(&mut dev, 0x1f, 4), [0; 4]);
        assert_eq!(dev.state().selector, 0x1f);
        dev.select(0x3000);
        assert_eq!(dev.state().selector, KEY_INVALID);
        assert_eq!(dev.read_data(), 0);
        assert_eq!(dev.state().offset, 0);
        assert!(dev.item_bytes(0x3000).is_none());
    }

    #[test]
    fn bit14_is_kept_but_ignored_for_lookup() {
        let m = mem();
        let mut b = FwCfgBuilder::new();
        b.x86_irq0_override(true);
        let mut dev = b.build(&m);
        assert_eq!(
            read(&mut dev, KEY_SIGNATURE | KEY_WRITE_CHANNEL, 4),
            b"QEMU"
        );
        assert_eq!(dev.state().selector, KEY_WRITE_CHANNEL);
        // Bit 14 with arch-local keys (an empty one and IRQ0_OVERRIDE, LE32
        // 1) and with indexes beyond the slots (0x7fff, 0xffff, 0xbfff):
        // (key, selector kept, first data byte).
        for (k, selector, byte) in [
            (0xc000u16, 0xc000u16, 0u8),
            (KEY_X86_IRQ0_OVERRIDE | KEY_WRITE_CHANNEL, 0xc002, 1),
            (0x7fff, KEY_INVALID, 0),
            (0xffff, KEY_INVALID, 0),
            (0xbfff, KEY_INVALID, 0),
        ] {
            dev.select(k);
            assert_eq!(dev.state().selector, selector, "key {k:#x}");
            assert_eq!(dev.read_data(), byte, "key {k:#x}");
            assert_eq!(dev.state().offset, u32::from(byte), "key {k:#x}");
        }
    }

    #[test]
    fn write_data_is_ignored() {
        let m = mem();
        let mut dev = FwCfgBuilder::new().build(&m);
        dev.select(KEY_SIGNATURE);
        dev.write_data(0xaa);
        assert_eq!(dev.state().offset, 0);
        assert_eq!(read(&mut dev, KEY_SIGNATURE, 4), b"QEMU");
    }

    #[test]
    fn dma_register_reads_signature() {
        let m = mem();
        let dev = FwCfgBuilder::new().build(&m);
        let mut b = [0u8; 8];
        dev.dma_register_read(0, &mut b);
        assert_eq!(&b, b"QEMU CFG");
        let mut b = [0u8; 4];
        dev.dma_register_read(4, &mut b);
        assert_eq!(&b, b" CFG");
        let mut b = [0u8; 2];
        dev.dma_register_read(7, &mut b);
        assert_eq!(b, [b'G', 0]);
        dev.dma_register_read(u64::MAX, &mut b);
        assert_eq!(b, [0, 0]);
    }

    #[test]
    fn dma_read_select_and_status() {
        let m = mem();
        let mut dev = FwCfgBuilder::new().build(&m);
        let st = dma(
            &m,
            &mut dev,
            DmaAccess::select(KEY_SIGNATURE, DMA_CTL_READ, 4, 0x2000),
            0x1000,
        );
        assert_eq!(st, 0);
        let mut b = [0u8; 4];
        m.read_slice(&mut b, GuestAddress(0x2000)).unwrap();
        assert_eq!(&b, b"QEMU");
        assert_eq!(dev.state().offset, 4);
        assert_eq!(dev.state().dma_address, 0);
    }

    #[test]
    fn dma_read_zero_fills_past_end() {
        let m = mem();
        let mut dev = FwCfgBuilder::new().build(&m);
        m.write_slice(&[0xff; 16], GuestAddress(0x2000)).unwrap();
        let st = dma(
            &m,
            &mut dev,
            DmaAccess::select(KEY_SIGNATURE, DMA_CTL_READ, 16, 0x2000),
            0x1000,
        );
        assert_eq!(st, 0);
        let mut b = [0xffu8; 16];
        m.read_slice(&mut b, GuestAddress(0x2000)).unwrap();
        assert_eq!(&b[..4], b"QEMU");
        assert_eq!(&b[4..], &[0; 12]);
        assert_eq!(dev.state().offset, 4);
    }

    #[test]
    fn dma_huge_length_to_unmapped_memory_errors_quickly() {
        let m = mem();
        let mut dev = FwCfgBuilder::new().build(&m);
        let st = dma(
            &m,
            &mut dev,
            DmaAccess::select(KEY_SIGNATURE, DMA_CTL_READ, u32::MAX, 0xf_0000),
            0x1000,
        );
        assert_eq!(st, DMA_CTL_ERROR);
        // Skip of the same length is fine and only advances to the end.
        let st = dma(
            &m,
            &mut dev,
            DmaAccess::select(KEY_SIGNATURE, DMA_CTL_SKIP, u32::MAX, 0),
            0x1000,
        );
        assert_eq!(st, 0);
        assert_eq!(dev.state().offset, 4);
    }

    #[test]
    fn dma_write_rules_and_callback() {
        let m = mem();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let mut b = FwCfgBuilder::new();
        b.add_writable_file("etc/w", vec![0; 8], move |d: &[u8]| {
            s2.lock().unwrap().push(d.to_vec())
        })
        .unwrap();
        b.add_file("etc/ro", vec![1; 8]).unwrap();
        let mut dev = b.build(&m);
        let w = dev.file_key("etc/w").unwrap();
        let ro = dev.file_key("etc/ro").unwrap();
        m.write_slice(&[9, 8, 7, 6], GuestAddress(0x2000)).unwrap();

        // Good write at offset 2 (after a skip).
        assert_eq!(
            dma(
                &m,
                &mut dev,
                DmaAccess::select(w, DMA_CTL_SKIP, 2, 0),
                0x1000
            ),
            0
        );
        assert_eq!(
            dma(
                &m,
                &mut dev,
                DmaAccess {
                    control: DMA_CTL_WRITE,
                    length: 4,
                    address: 0x2000
                },
                0x1000
            ),
            0
        );
        assert_eq!(dev.item_bytes(w).unwrap(), &[0, 0, 9, 8, 7, 6, 0, 0]);
        assert_eq!(seen.lock().unwrap().len(), 1);
        assert_eq!(seen.lock().unwrap()[0], vec![0, 0, 9, 8, 7, 6, 0, 0]);

        // Overflowing write: nothing written, error.
        assert_eq!(
            dma(
                &m,
                &mut dev,
                DmaAccess::select(w, DMA_CTL_SKIP, 6, 0),
                0x1000
            ),
            0
        );
        assert_eq!(
            dma(
                &m,
                &mut dev,
                DmaAccess {
                    control: DMA_CTL_WRITE,
                    length: 4,
                    address: 0x2000
                },
                0x1000
            ),
            DMA_CTL_ERROR
        );
        assert_eq!(dev.item_bytes(w).unwrap(), &[0, 0, 9, 8, 7, 6, 0, 0]);
        // Read-only item.
        assert_eq!(
            dma(
                &m,
                &mut dev,
                DmaAccess::select(ro, DMA_CTL_WRITE, 4, 0x2000),
                0x1000
            ),
            DMA_CTL_ERROR
        );
        assert_eq!(dev.item_bytes(ro).unwrap(), &[1; 8]);
        // Missing item.
        assert_eq!(
            dma(
                &m,
                &mut dev,
                DmaAccess::select(0x3f, DMA_CTL_WRITE, 4, 0x2000),
                0x1000
            ),
            DMA_CTL_ERROR
        );
        // Unreadable guest source: nothing written.
        assert_eq!(
            dma(
                &m,
                &mut dev,
                DmaAccess::select(w, DMA_CTL_WRITE, 4, 0xf_fffe),
                0x1000
            ),
            DMA_CTL_ERROR
        );
        assert_eq!(dev.item_bytes(w).unwrap(), &[0, 0, 9, 8, 7, 6, 0, 0]);
        // Zero-length write succeeds without a callback.
        assert_eq!(
            dma(
                &m,
                &mut dev,
                DmaAccess::select(w, DMA_CTL_WRITE, 0, 0x2000),
                0x1000
            ),
            0
        );
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_panicking_callback_fails_the_transfer_and_leaves_the_item() {
        let m = mem();
        let calls = Arc::new(Mutex::new(0u32));
        let c2 = calls.clone();
        let mut b = FwCfgBuilder::new();
        b.add_writable_file("etc/w", vec![5; 4], move |_: &[u8]| {
            let mut n = c2.lock().unwrap();
            *n += 1;
            if *n == 1 {
                drop(n);
                panic!("callback failure");
            }
        })
        .unwrap();
        let dev = Mutex::new(b.build(&m));
        let w = dev.lock().unwrap().file_key("etc/w").unwrap();
        m.write_slice(&[1, 2, 3, 4], GuestAddress(0x2000)).unwrap();
        let write = DmaAccess::select(w, DMA_CTL_WRITE, 4, 0x2000);
        // The status word is written (the error bit), the item keeps its
        // bytes, and the lock is not poisoned.
        let st = dma(&m, &mut dev.lock().unwrap(), write, 0x1000);
        assert_eq!(st, DMA_CTL_ERROR);
        assert!(!dev.is_poisoned());
        assert_eq!(dev.lock().unwrap().item_bytes(w).unwrap(), &[5; 4]);
        // Later accesses work: the same write now succeeds.
        let st = dma(&m, &mut dev.lock().unwrap(), write, 0x1000);
        assert_eq!(st, 0);
        assert_eq!(dev.lock().unwrap().item_bytes(w).unwrap(), &[1, 2, 3, 4]);
        assert_eq!(*calls.lock().unwrap(), 2);
    }

    #[test]
    fn dma_precedence_read_over_write_over_skip() {
        let m = mem();
        let mut dev = FwCfgBuilder::new().build(&m);
        let all = DMA_CTL_READ | DMA_CTL_WRITE | DMA_CTL_SKIP;
        let st = dma(
            &m,
            &mut dev,
            DmaAccess::select(KEY_SIGNATURE, all, 4, 0x2000),
            0x1000,
        );
        assert_eq!(st, 0);
        let mut b = [0u8; 4];
        m.read_slice(&mut b, GuestAddress(0x2000)).unwrap();
        assert_eq!(&b, b"QEMU");
        // WRITE | SKIP is a write (to a read-only item: error).
        let st = dma(
            &m,
            &mut dev,
            DmaAccess::select(KEY_SIGNATURE, DMA_CTL_WRITE | DMA_CTL_SKIP, 4, 0x2000),
            0x1000,
        );
        assert_eq!(st, DMA_CTL_ERROR);
        // No operation: success, length ignored, selection applied.
        let st = dma(
            &m,
            &mut dev,
            DmaAccess::select(KEY_ID, 0, 100, 0xdead_beef_0000),
            0x1000,
        );
        assert_eq!(st, 0);
        assert_eq!(dev.state().selector, KEY_ID);
    }

    #[test]
    fn dma_descriptor_fault() {
        let m = mem();
        let mut dev = FwCfgBuilder::new().build(&m);
        dev.dma_address_u64(0xffff_fff8);
        dev.dma_address_u64(u64::MAX - 3);
        assert_eq!(dev.state().dma_address, 0);
    }

    #[test]
    fn dma_halves() {
        let m = mem();
        let mut dev = FwCfgBuilder::new().build(&m);
        m.write_slice(
            &DmaAccess::select(KEY_SIGNATURE, DMA_CTL_READ, 4, 0x3000).to_be_bytes(),
            GuestAddress(0x1000),
        )
        .unwrap();
        dev.dma_address_high(0);
        assert_eq!(m.read_obj::<u8>(GuestAddress(0x3000)).unwrap(), 0);
        dev.dma_address_low(0x1000);
        assert_eq!(m.read_obj::<u8>(GuestAddress(0x3000)).unwrap(), b'Q');
        // The high half replaces the whole latch.
        dev.dma_address_high(1);
        assert_eq!(dev.state().dma_address, 1 << 32);
    }

    #[test]
    fn dma_disabled_ignores_address_writes() {
        let m = mem();
        let mut dev = FwCfgBuilder::new().dma(false).build(&m);
        m.write_slice(
            &DmaAccess::select(KEY_SIGNATURE, DMA_CTL_READ, 4, 0x3000).to_be_bytes(),
            GuestAddress(0x1000),
        )
        .unwrap();
        dev.dma_address_u64(0x1000);
        dev.dma_address_high(1);
        assert_eq!(dev.state().dma_address, 0);
        assert_eq!(m.read_obj::<u8>(GuestAddress(0x3000)).unwrap(), 0);
    }

    #[test]
    fn state_round_trip_and_hostile_restore() {
        let m = mem();
        let mut dev = FwCfgBuilder::new().build(&m);
        dev.select(KEY_SIGNATURE | KEY_WRITE_CHANNEL);
        dev.read_data();
        dev.dma_address_high(5);
        let s = dev.state();
        let mut other = FwCfgBuilder::new().build(&m);
        other.restore(&s).unwrap();
        assert_eq!(other.state(), s);
        assert_eq!(other.read_data(), b'E');

        let bad = FwCfgState {
            selector: 0x3000,
            offset: 0,
            dma_address: 0,
        };
        assert!(matches!(
            other.restore(&bad),
            Err(RestoreError::InvalidSelector { selector: 0x3000 })
        ));
        let bad = FwCfgState {
            selector: KEY_SIGNATURE,
            offset: 5,
            dma_address: 0,
        };
        assert!(matches!(
            other.restore(&bad),
            Err(RestoreError::InvalidOffset {
                selector: KEY_SIGNATURE,
                offset: 5,
                len: 4
            })
        ));
        let bad = FwCfgState {
            selector: KEY_INVALID,
            offset: 1,
            dma_address: 0,
        };
        assert!(other.restore(&bad).is_err());
        // Offset at the end is fine.
        let ok = FwCfgState {
            selector: KEY_SIGNATURE,
            offset: 4,
            dma_address: 0,
        };
        other.restore(&ok).unwrap();
        assert_eq!(other.read_data(), 0);
    }
}
