// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Property tests: the reader against hostile fake devices. Whatever the
//! bytes, every call returns (no panic, no endless loop), errors are typed,
//! and the amount read stays within the bounds the ABI allows.

use fw_cfg_guest::abi::{
    DMA_ACCESS_SIZE, FILE_DIR_ENTRY_SIZE, FILE_DIR_HEADER_SIZE, FILE_SLOTS_MAX, FileDirEntry,
    KEY_FILE_DIR, KEY_SIGNATURE, PHYS_BITS_FILE_NAME, PhysBitsFile, SIGNATURE,
};
use fw_cfg_guest::policy::{FileState, read_phys_bits_file};
use fw_cfg_guest::reader::{FwCfgReader, Lookup, ReadError};
use fw_cfg_guest::transport::{Dma, DmaKick, DmaMemory, FwCfgTransport, TransportError};
use proptest::prelude::*;

/// Most bytes a directory walk may read.
const MAX_WALK: usize = FILE_DIR_HEADER_SIZE + FILE_SLOTS_MAX as usize * FILE_DIR_ENTRY_SIZE;

/// Answers the signature honestly (optionally), everything else from a
/// random stream.
struct Random {
    stream: Vec<u8>,
    pos: usize,
    key: u16,
    honest_signature: bool,
    sig_off: usize,
    bytes: usize,
}

impl Random {
    fn new(stream: Vec<u8>, honest_signature: bool) -> Self {
        Random {
            stream,
            pos: 0,
            key: 0,
            honest_signature,
            sig_off: 0,
            bytes: 0,
        }
    }
    fn byte(&mut self) -> u8 {
        if self.stream.is_empty() {
            return 0;
        }
        let b = self.stream[self.pos % self.stream.len()];
        self.pos += 1;
        b
    }
}

impl FwCfgTransport for Random {
    fn select(&mut self, key: u16) {
        self.key = key;
        self.sig_off = 0;
    }
    fn read(&mut self, buf: &mut [u8]) -> Result<(), TransportError> {
        for b in buf {
            *b = if self.honest_signature && self.key == KEY_SIGNATURE {
                let v = SIGNATURE.get(self.sig_off).copied().unwrap_or(0);
                self.sig_off += 1;
                v
            } else {
                self.byte()
            };
            self.bytes += 1;
        }
        Ok(())
    }
}

impl DmaKick for Random {
    unsafe fn kick(&mut self, _descriptor_address: u64) {}
}

/// DMA memory whose control word and buffer come from random streams.
struct RandomMem {
    control: Vec<u32>,
    pos: usize,
    data: Vec<u8>,
    len: usize,
}

// SAFETY: no device behind the kick (it does nothing) touches memory; the
// addresses name nothing.
unsafe impl DmaMemory for RandomMem {
    fn descriptor_address(&self) -> u64 {
        0x1000
    }
    fn write_descriptor(&mut self, _bytes: &[u8; DMA_ACCESS_SIZE]) {}
    fn read_control(&mut self) -> u32 {
        if self.control.is_empty() {
            return 0;
        }
        let c = self.control[self.pos % self.control.len()];
        self.pos += 1;
        c
    }
    fn buffer_address(&self) -> u64 {
        0x2000
    }
    fn buffer_len(&self) -> usize {
        self.len
    }
    fn read_buffer(&mut self, offset: usize, out: &mut [u8]) {
        for (i, b) in out.iter_mut().enumerate() {
            *b = if self.data.is_empty() {
                0
            } else {
                self.data[(offset + i) % self.data.len()]
            };
        }
    }
}

fn exercise<T: FwCfgTransport>(mut r: FwCfgReader<T>) -> Result<(), TestCaseError> {
    // A full directory walk terminates within the slot limit.
    if let Ok(files) = r.files() {
        let declared = files.declared_count();
        prop_assert!(declared <= u32::from(FILE_SLOTS_MAX));
        let mut n = 0u32;
        for e in files {
            n += 1;
            if let Ok(e) = e {
                prop_assert!((0x20..0x4000).contains(&e.select));
                prop_assert!(!e.name().is_empty() && e.name().len() <= 55);
            }
        }
        prop_assert!(n <= declared);
    }
    for lookup in [Lookup::FullScan, Lookup::FirstMatch] {
        r.set_lookup(lookup);
        let mut buf = [0u8; 32];
        match r.read_file(PHYS_BITS_FILE_NAME, &mut buf) {
            Ok(n) => prop_assert!(n <= buf.len()),
            Err(ReadError::FileTooLarge { size, buf: b }) => prop_assert!(size as usize > b),
            Err(_) => {}
        }
    }
    check_phys_bits_read(&mut r)
}

/// `read_phys_bits_file` stays within the caller's buffer and the file,
/// and its state is what its bytes say.
fn check_phys_bits_read<T: FwCfgTransport>(r: &mut FwCfgReader<T>) -> Result<(), TestCaseError> {
    let mut buf = [0u8; 16];
    let read = r.read_phys_bits_file(&mut buf);
    prop_assert!(read.raw.len() <= 16);
    match read.entry {
        None => {
            prop_assert!(read.raw.is_empty());
            prop_assert!(matches!(
                read.state,
                FileState::Absent | FileState::Unreadable(_)
            ));
        }
        Some(e) => {
            prop_assert_eq!(e.name(), PHYS_BITS_FILE_NAME.as_bytes());
            prop_assert!(read.raw.len() <= e.size as usize);
            if let FileState::Unreadable(_) = read.state {
                prop_assert!(read.raw.is_empty());
            } else {
                prop_assert_eq!(read.raw.len(), (e.size as usize).min(16));
                prop_assert_eq!(read.state, FileState::from_bytes(read.raw));
            }
        }
    }
    // The wrapper runs the same lookup again; the random host answers it
    // differently, so only its return (no panic, no hang) is checked.
    let _ = read_phys_bits_file(r);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_everywhere(stream in proptest::collection::vec(any::<u8>(), 0..512), honest in any::<bool>()) {
        match FwCfgReader::new(Random::new(stream, honest)) {
            Ok(r) => {
                exercise(r)?;
            }
            Err(e) => {
                let no_sig = matches!(e, ReadError::NoSignature { .. });
                prop_assert!(no_sig, "unexpected {:?}", e);
            }
        }
    }

    /// Random directory entries behind a random count: the walk reads at
    /// most the slot limit's worth, three walks plus the file reads.
    #[test]
    fn random_directory_is_bounded(count in any::<u32>(), entries in proptest::collection::vec(any::<[u8; 64]>(), 0..4)) {
        let mut stream = count.to_be_bytes().to_vec();
        for e in &entries {
            stream.extend_from_slice(e);
        }
        let t = Random::new(stream, true);
        let mut r = FwCfgReader::new(t).unwrap();
        // Reading the count again must re-read it: rewind per select.
        r.transport_mut().pos = 0;
        let result = r.find_file("x");
        if count > u32::from(FILE_SLOTS_MAX) {
            prop_assert_eq!(result, Err(ReadError::BadDirectoryCount { count }));
        }
        prop_assert!(r.transport().bytes <= 8 + MAX_WALK);
    }

    /// DMA with random completions: errors, timeouts and garbage never hang
    /// (the poll limit bounds each transfer) and surface as typed errors.
    #[test]
    fn random_dma_completions(control in proptest::collection::vec(any::<u32>(), 0..8),
                              data in proptest::collection::vec(any::<u8>(), 0..256),
                              len in 0usize..128,
                              polls in 1u32..16) {
        // ID item: DMA advertised.
        let mut t = Random::new(vec![0x03, 0, 0, 0], true);
        t.key = 0;
        let mem = RandomMem { control, pos: 0, data, len };
        let mut dma = Dma::new(t, mem);
        dma.set_max_polls(polls);
        let r = FwCfgReader::new(dma).unwrap();
        prop_assert_eq!(r.uses_dma(), len > 0);
        let mut r = r;
        let mut buf = [0u8; 16];
        match r.read_item(KEY_FILE_DIR, &mut buf) {
            Ok(()) => {}
            Err(ReadError::Transport(TransportError::DmaError { control })) => prop_assert!(control & 1 != 0),
            Err(ReadError::Transport(TransportError::DmaTimeout { polls: p, .. })) => {
                prop_assert_eq!(p, polls);
                // Poisoned from now on.
                prop_assert_eq!(r.read_item(0, &mut buf), Err(ReadError::Transport(TransportError::DmaPoisoned)));
                prop_assert!(!r.uses_dma());
            }
            Err(e) => prop_assert!(false, "unexpected {e:?}"),
        }
        exercise(r)?;
    }
}

/// The fake host above plays the ABI when its stream says so: the
/// property tests' "random" hosts include honest ones.
#[test]
fn random_host_speaks_the_abi() {
    let mut name = [0u8; 56];
    name[..PHYS_BITS_FILE_NAME.len()].copy_from_slice(PHYS_BITS_FILE_NAME.as_bytes());
    let entry = FileDirEntry {
        size: 8,
        select: 0x20,
        reserved: 0,
        name,
    };
    // ID, directory count, one entry, the file: in the order they are read.
    let mut stream = 1u32.to_le_bytes().to_vec();
    stream.extend_from_slice(&1u32.to_be_bytes());
    stream.extend_from_slice(&entry.to_be_bytes());
    stream.extend_from_slice(&PhysBitsFile::new(true, 39, 0).to_bytes());
    let mut r = FwCfgReader::new(Random::new(stream.clone(), true)).unwrap();
    assert_eq!(r.id(), Some(1));
    let mut buf = [0u8; 16];
    let read = r.read_phys_bits_file(&mut buf);
    assert_eq!(
        read.state,
        FileState::Present(PhysBitsFile::new(true, 39, 0))
    );
    assert_eq!(read.raw, &[2, 1, 39, 0, 0, 0, 0, 0]);
    assert_eq!(read.entry.map(|e| (e.size, e.select)), Some((8, 0x20)));
    // Without the honest signature the same stream is no fw_cfg device.
    assert!(matches!(
        FwCfgReader::new(Random::new(stream, false)),
        Err(ReadError::NoSignature { .. })
    ));
}
