// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Everything of one device that a snapshot or a migration must carry,
//! and the checks a destination makes before it accepts it.
//!
//! [`FwCfgState`] holds the three registers QEMU migrates. A VMM that
//! restores into a freshly built device also needs to know that the device
//! was built with the same items, that the bytes the guest wrote into
//! writable files come along, and that its own host can back the physical
//! address width the source vouched for. [`FwCfgSnapshot`] holds all of
//! it; [`FwCfg::snapshot`] makes one and [`FwCfg::restore_snapshot`] checks
//! and applies it, all or nothing.
//!
//! - **Configuration digest** ([`FwCfg::config_digest`]): SHA-256 over the
//!   DMA flag, the file slots and every item in key order (key, file name,
//!   whether it is writable, length, and the contents of read-only items).
//!   A destination with different items (a changed file, another name,
//!   another key) refuses the snapshot.
//! - **Writable contents**: the current bytes of every writable item, by
//!   key. The item's write callback does not run on restore: whatever the
//!   VMM did with the written bytes (its side of the callback) is the VMM's
//!   to carry.
//! - **Migration guard** ([`vouched_bits`]): the widest physical address
//!   width the source's [`PhysBitsConfig`] stated as backed. A guest may
//!   have placed memory-mapped I/O anywhere below `2^W`; a destination host
//!   whose backed width is narrower would fault at the next access, so the
//!   restore is refused.
//!
//! ```
//! use fw_cfg_device::builder::FwCfgBuilder;
//! use fw_cfg_device::phys_bits::{HostAddressSizes, PhysBitsConfig};
//! use fw_cfg_device::snapshot::{SnapshotError, vouched_bits};
//! use vm_memory::{GuestAddress, GuestMemoryMmap};
//!
//! let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x10000)]).unwrap();
//! let config = PhysBitsConfig::host_passthrough(46);
//! let mut b = FwCfgBuilder::new();
//! config.add_to(&mut b).unwrap();
//! let source = b.build(&mem);
//! let snap = source.snapshot(vouched_bits(&config));
//! assert_eq!(snap.vouched_bits, 46);
//!
//! // A destination built the same way on a host as wide restores it ...
//! let mut dest = b.build(&mem);
//! dest.restore_snapshot(&snap, HostAddressSizes::new(46, 0)).unwrap();
//! // ... one on a 39-bit host refuses.
//! let err = dest.restore_snapshot(&snap, HostAddressSizes::new(39, 0));
//! assert!(matches!(err, Err(SnapshotError::NarrowerHost { vouched: 46, backed: 39 })));
//! ```

use sha2::{Digest, Sha256};
use vm_memory::GuestAddressSpace;

use crate::abi::{KEY_ARCH_LOCAL, KEY_FILE_FIRST};
use crate::device::{FwCfg, Item};
use crate::error::RestoreError;
use crate::events::FwCfgEvents;
use crate::phys_bits::{HostAddressSizes, PhysBitsConfig};
use crate::state::FwCfgState;

/// SHA-256 of a device's configuration ([`FwCfg::config_digest`]).
pub type ConfigDigest = [u8; 32];

/// What the digest starts with: names this encoding, so a later change of
/// it never matches an old digest by accident.
const DIGEST_DOMAIN: &[u8] = b"fw-cfg-device config digest v1\0";

/// The current contents of one writable item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WritableContents {
    /// The item's key.
    pub key: u16,
    /// Its bytes, as long as the item.
    pub bytes: Vec<u8>,
}

/// Everything one device carries across a snapshot or migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FwCfgSnapshot {
    /// The guest-visible registers.
    pub registers: FwCfgState,
    /// The source's [`FwCfg::config_digest`].
    pub config_digest: ConfigDigest,
    /// Every writable item's contents, in key order.
    pub writable: Vec<WritableContents>,
    /// The width the source vouched for ([`vouched_bits`]; 0: none).
    pub vouched_bits: u8,
}

/// Why a destination refuses a snapshot. The device is unchanged after
/// any of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The destination's items differ from the source's.
    #[error("the snapshot was taken with other fw_cfg items (configuration digests differ)")]
    ConfigMismatch,
    /// The registers do not fit the device.
    #[error("invalid fw_cfg registers")]
    Registers(#[source] RestoreError),
    /// A writable item of the snapshot is not a writable item here, or
    /// has another length, or one of the destination's is missing.
    #[error("the snapshot's writable fw_cfg items do not match the device's (key {key:#06x})")]
    WritableMismatch {
        /// The first key that does not match.
        key: u16,
    },
    /// The destination host backs fewer address bits than the source
    /// vouched for.
    #[error(
        "the source vouched for {vouched} physical address bits, this host backs only {backed}"
    )]
    NarrowerHost {
        /// What the source vouched for.
        vouched: u8,
        /// What the destination host backs.
        backed: u8,
    },
}

/// The widest physical address width `config` states as backed, the width
/// a guest may have relied on: its effective width when the statement is
/// valid (whatever channel the guest read it from, GuestPhysBits
/// included), and the backed width the file states when the file channel
/// is on; 0 when it states none.
pub fn vouched_bits(config: &PhysBitsConfig) -> u8 {
    let valid_width = if config.valid() { config.width() } else { 0 };
    let file_backed = if config.fw_cfg_file() {
        config.backed_bits()
    } else {
        0
    };
    valid_width.max(file_backed)
}

/// Refuses a destination host that backs fewer than `vouched` bits.
pub fn check_destination(vouched: u8, destination: HostAddressSizes) -> Result<(), SnapshotError> {
    let backed = destination.backed_bits();
    if backed < vouched {
        return Err(SnapshotError::NarrowerHost { vouched, backed });
    }
    Ok(())
}

fn digest_item(h: &mut Sha256, key: u16, name: &[u8], item: &Item) {
    h.update(key.to_le_bytes());
    // Names are at most 55 bytes (the directory's limit).
    h.update((name.len() as u16).to_le_bytes());
    h.update(name);
    h.update(item.len().to_le_bytes());
    match item {
        Item::ReadOnly(bytes) => {
            h.update([0]);
            h.update(bytes);
        }
        // The contents are state, carried in `FwCfgSnapshot::writable`.
        Item::Writable { .. } => h.update([1]),
    }
}

impl<M: GuestAddressSpace, EV: FwCfgEvents> FwCfg<M, EV> {
    /// Every item with its key and (for files) name, in key order.
    fn keyed_items(&self) -> impl Iterator<Item = (u16, &[u8], &Item)> + '_ {
        let well_known = self
            .well_known
            .iter()
            .enumerate()
            .filter_map(|(i, item)| Some((i as u16, &[][..], item.as_ref()?)));
        // At most 0x3fe0 files: the keys fit.
        let files = self
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| (KEY_FILE_FIRST + i as u16, f.name.as_bytes(), &f.item));
        let arch = self
            .arch
            .iter()
            .map(|(&index, item)| (KEY_ARCH_LOCAL | index, &[][..], item));
        well_known.chain(files).chain(arch)
    }

    /// SHA-256 of the configuration: the DMA flag, the file slots, and
    /// every item's key, name, kind (read-only or writable), length and,
    /// for read-only items, contents (module documentation).
    pub fn config_digest(&self) -> ConfigDigest {
        let mut h = Sha256::new();
        h.update(DIGEST_DOMAIN);
        h.update([u8::from(self.dma_enabled)]);
        h.update(self.file_slots.to_le_bytes());
        for (key, name, item) in self.keyed_items() {
            digest_item(&mut h, key, name, item);
        }
        h.finalize().into()
    }

    /// The keys and lengths of the writable items, in key order: what a
    /// snapshot reader may expect ([`FwCfgSnapshot::writable`]).
    pub fn writable_items(&self) -> impl Iterator<Item = (u16, usize)> + '_ {
        self.keyed_items().filter_map(|(key, _, item)| match item {
            Item::Writable { bytes, .. } => Some((key, bytes.len())),
            Item::ReadOnly(_) => None,
        })
    }

    /// Checks that `writable` names exactly this device's writable items,
    /// in order, each with its length.
    fn check_writable(&self, writable: &[WritableContents]) -> Result<(), SnapshotError> {
        let mut expected = self.writable_items();
        for w in writable {
            match expected.next() {
                Some((key, len)) if key == w.key && len == w.bytes.len() => {}
                _ => return Err(SnapshotError::WritableMismatch { key: w.key }),
            }
        }
        match expected.next() {
            Some((key, _)) => Err(SnapshotError::WritableMismatch { key }),
            None => Ok(()),
        }
    }

    /// Everything a destination needs ([`FwCfgSnapshot`]), with the width
    /// the VMM vouched for (usually [`vouched_bits`] of its
    /// [`PhysBitsConfig`]; 0 for none).
    pub fn snapshot(&self, vouched_bits: u8) -> FwCfgSnapshot {
        let writable = self
            .keyed_items()
            .filter_map(|(key, _, item)| match item {
                Item::Writable { bytes, .. } => Some(WritableContents {
                    key,
                    bytes: bytes.to_vec(),
                }),
                Item::ReadOnly(_) => None,
            })
            .collect();
        FwCfgSnapshot {
            registers: self.state(),
            config_digest: self.config_digest(),
            writable,
            vouched_bits,
        }
    }

    /// Checks `snap` against this device and a destination host with
    /// address sizes `destination`, then applies it: registers and
    /// writable contents. Checked, in order: the migration guard (first:
    /// a narrower host usually also changes `etc/phys-bits-valid`, hence
    /// the digest, and the guard's error says more), the configuration
    /// digest, the registers ([`FwCfg::restore`]'s rules), the
    /// writable items (same keys, same lengths). On error nothing changes.
    pub fn restore_snapshot(
        &mut self,
        snap: &FwCfgSnapshot,
        destination: HostAddressSizes,
    ) -> Result<(), SnapshotError> {
        check_destination(snap.vouched_bits, destination)?;
        if snap.config_digest != self.config_digest() {
            return Err(SnapshotError::ConfigMismatch);
        }
        self.check_writable(&snap.writable)?;
        self.restore(&snap.registers)
            .map_err(SnapshotError::Registers)?;
        for w in &snap.writable {
            if let Some(Item::Writable { bytes, .. }) = self.item_mut(w.key) {
                bytes.copy_from_slice(&w.bytes);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

    use super::*;
    use crate::abi::{DMA_CTL_SELECT, DMA_CTL_WRITE, DmaAccess};
    use crate::builder::FwCfgBuilder;

    fn mem() -> GuestMemoryMmap {
        GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x10000)]).unwrap()
    }

    fn builder(contents: &[u8]) -> FwCfgBuilder {
        let mut b = FwCfgBuilder::new();
        b.add_file("opt/a", contents.to_vec()).unwrap();
        b.add_writable_file("opt/w", vec![0; 8], |_| {}).unwrap();
        b
    }

    /// DMA-writes `data` into the item `key` of `dev`.
    fn dma_write(dev: &mut FwCfg<&GuestMemoryMmap>, m: &GuestMemoryMmap, key: u16, data: &[u8]) {
        m.write_slice(data, GuestAddress(0x2000)).unwrap();
        let access = DmaAccess {
            control: (u32::from(key) << 16) | DMA_CTL_SELECT | DMA_CTL_WRITE,
            length: data.len() as u32,
            address: 0x2000,
        };
        m.write_slice(&access.to_be_bytes(), GuestAddress(0x1000))
            .unwrap();
        dev.dma_address_u64(0x1000);
        assert_eq!(m.read_obj::<u32>(GuestAddress(0x1000)).unwrap(), 0);
    }

    #[test]
    fn round_trip_carries_registers_and_written_bytes() {
        let m = mem();
        let b = builder(b"hello");
        let mut src = b.build(&m);
        let key = src.file_key("opt/w").unwrap();
        dma_write(&mut src, &m, key, b"written!");
        src.select(src.file_key("opt/a").unwrap());
        src.read_data();
        src.dma_address_high(0x1234);
        let snap = src.snapshot(40);
        assert_eq!(snap.writable.len(), 1);
        assert_eq!(snap.writable[0].bytes, b"written!");

        let mut dest = b.build(&m);
        assert_ne!(dest.item_bytes(key), Some(&b"written!"[..]));
        dest.restore_snapshot(&snap, HostAddressSizes::new(48, 0))
            .unwrap();
        assert_eq!(dest.state(), src.state());
        assert_eq!(dest.item_bytes(key), Some(&b"written!"[..]));
        assert_eq!(dest.read_data(), b'e');
        assert_eq!(dest.state().dma_address, 0x1234 << 32);
    }

    #[test]
    fn restore_runs_no_write_callback() {
        let m = mem();
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let mut b = FwCfgBuilder::new();
        b.add_writable_file("opt/w", vec![0; 4], move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
        let mut src = b.build(&m);
        let key = src.file_key("opt/w").unwrap();
        dma_write(&mut src, &m, key, b"abcd");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let mut dest = b.build(&m);
        dest.restore_snapshot(&src.snapshot(0), HostAddressSizes::new(36, 0))
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn other_items_are_refused_and_leave_the_device_alone() {
        let m = mem();
        let mut src = builder(b"hello").build(&m);
        src.select(0x20);
        src.read_data();
        let snap = src.snapshot(0);
        let host = HostAddressSizes::new(48, 0);
        let mut other_contents = builder(b"hellp").build(&m);
        let mut other_name = FwCfgBuilder::new();
        other_name.add_file("opt/b", b"hello".to_vec()).unwrap();
        other_name
            .add_writable_file("opt/w", vec![0; 8], |_| {})
            .unwrap();
        let mut other_name = other_name.build(&m);
        let mut no_dma = builder(b"hello");
        no_dma.dma(false);
        let mut no_dma = no_dma.build(&m);
        for dest in [&mut other_contents, &mut other_name, &mut no_dma] {
            let before = dest.state();
            assert_eq!(
                dest.restore_snapshot(&snap, host),
                Err(SnapshotError::ConfigMismatch)
            );
            assert_eq!(dest.state(), before);
        }
        // Same items, digests agree; a forged writable list is refused.
        let mut dest = builder(b"hello").build(&m);
        assert_eq!(dest.config_digest(), snap.config_digest);
        let mut forged = snap.clone();
        forged.writable[0].bytes.push(0);
        let key = forged.writable[0].key;
        assert_eq!(
            dest.restore_snapshot(&forged, host),
            Err(SnapshotError::WritableMismatch { key })
        );
        forged.writable.clear();
        assert_eq!(
            dest.restore_snapshot(&forged, host),
            Err(SnapshotError::WritableMismatch { key })
        );
        let mut forged = snap.clone();
        forged.registers.offset = 1000;
        assert!(matches!(
            dest.restore_snapshot(&forged, host),
            Err(SnapshotError::Registers(RestoreError::InvalidOffset { .. }))
        ));
        assert_eq!(dest.state(), FwCfgState::default());
    }

    #[test]
    fn written_contents_do_not_change_the_digest() {
        let m = mem();
        let mut dev = builder(b"x").build(&m);
        let before = dev.config_digest();
        let key = dev.file_key("opt/w").unwrap();
        dma_write(&mut dev, &m, key, b"12345678");
        assert_eq!(dev.config_digest(), before);
    }

    #[test]
    fn vouched_width_follows_what_the_config_states() {
        // Valid statements vouch for their effective width.
        assert_eq!(vouched_bits(&PhysBitsConfig::host_passthrough(46)), 46);
        let host = HostAddressSizes::new(52, 48);
        assert_eq!(vouched_bits(&PhysBitsConfig::host_passthrough(host)), 48);
        // The legacy 40 on a 48-bit host: the file states 48 as backed.
        assert_eq!(vouched_bits(&PhysBitsConfig::legacy_default(48)), 48);
        // Without the file only the valid width counts.
        let c = PhysBitsConfig::legacy_default(48).with_fw_cfg_file(false);
        assert_eq!(vouched_bits(&c), 40);
        // An invalid statement without the file vouches for nothing.
        let c = PhysBitsConfig::legacy_default(39).with_fw_cfg_file(false);
        assert_eq!(vouched_bits(&c), 0);
    }

    #[test]
    fn migration_guard_refuses_a_narrower_host() {
        let m = mem();
        let config = PhysBitsConfig::host_passthrough(HostAddressSizes::new(52, 48));
        let mut b = FwCfgBuilder::new();
        config.add_to(&mut b).unwrap();
        let src = b.build(&m);
        let snap = src.snapshot(vouched_bits(&config));
        let mut dest = b.build(&m);
        for (host, ok) in [
            (HostAddressSizes::new(48, 0), true),
            (HostAddressSizes::new(52, 48), true),
            (HostAddressSizes::new(46, 0), false),
            // A wide MAXPHYADDR with a narrower guest width is narrower.
            (HostAddressSizes::new(52, 46), false),
        ] {
            let r = dest.restore_snapshot(&snap, host);
            assert_eq!(r.is_ok(), ok, "{host:?}: {r:?}");
            if !ok {
                assert_eq!(
                    r,
                    Err(SnapshotError::NarrowerHost {
                        vouched: 48,
                        backed: host.backed_bits()
                    })
                );
            }
        }
        assert!(check_destination(0, HostAddressSizes::new(32, 0)).is_ok());
    }
}
