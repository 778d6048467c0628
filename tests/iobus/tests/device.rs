// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The reader against the real device crate, in-process: the device sits
//! behind a vm-device `IoManager` (port I/O and MMIO) with a vm-memory
//! `GuestMemoryMmap` for DMA, and the guest's transports run their real
//! access patterns over it, through this crate's bus adapters. The CPUID side uses the device crate's own
//! `PhysBitsConfig::patch_cpuid` on a `kvm_bindings::CpuId`.

#![cfg(target_arch = "x86_64")]

use std::sync::{Arc, Mutex};

use fw_cfg_device::{FwCfgBuilder, FwCfgMmio, FwCfgPio, PhysBitsConfig};
use fw_cfg_guest::abi::{
    KVM_HINTS_REALTIME, MMIO_BASE_ARM_VIRT, MMIO_WINDOW_SIZE, PHYS_BITS_FILE_NAME,
    PIO_SELECTOR_PORT, PIO_WINDOW_SIZE, PhysBitsFile, PhysBitsFileError,
};
use fw_cfg_guest::cpuid::{CpuidResult, CpuidSource, HintState, read_cpuid_channel};
use fw_cfg_guest::policy::{
    ChannelInputs, Conflict, DecidedBy, Decision, FileState, PolicyMode, Rule, decide,
    read_phys_bits_file,
};
use fw_cfg_guest::reader::{FwCfgReader, ReadError};
use fw_cfg_guest::transport::{Dma, DmaKick, FwCfgTransport, Mmio, PortIo, TransportError};
use fw_cfg_iobus::{BusCounters, GuestDma, IoMmio, IoPorts};
use kvm_bindings::{CpuId, kvm_cpuid_entry2};
use vm_device::bus::{MmioAddress, MmioRange, PioAddress, PioRange};
use vm_device::device_manager::{IoManager, MmioManager, PioManager};
use vm_memory::{GuestAddress, GuestMemoryMmap};

type Mem = Arc<GuestMemoryMmap<()>>;

const MEM_SIZE: u64 = 0x10_0000;
const DESC_GPA: u64 = 0x1000;
const BUF_GPA: u64 = 0x2000;
const BUF_LEN: usize = 4096;

// ---------------------------------------------------------------------------
// A machine: one device on ports, one on MMIO, both from the same builder.
// ---------------------------------------------------------------------------

struct Machine {
    io: IoManager,
    mem: Mem,
    counters: BusCounters,
}

impl Machine {
    fn new(builder: &FwCfgBuilder) -> Self {
        let mem: Mem = Arc::new(
            GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM_SIZE as usize)]).unwrap(),
        );
        let mut io = IoManager::new();
        let pio = Arc::new(Mutex::new(FwCfgPio::new(builder.build(mem.clone()))));
        io.register_pio(
            PioRange::new(PioAddress(PIO_SELECTOR_PORT), PIO_WINDOW_SIZE).unwrap(),
            pio,
        )
        .unwrap();
        let mmio = Arc::new(Mutex::new(FwCfgMmio::new(builder.build(mem.clone()))));
        io.register_mmio(
            MmioRange::new(MmioAddress(MMIO_BASE_ARM_VIRT), MMIO_WINDOW_SIZE).unwrap(),
            mmio,
        )
        .unwrap();
        Machine {
            io,
            mem,
            counters: BusCounters::default(),
        }
    }

    fn pio(&self) -> PortIo<IoPorts<'_>> {
        PortIo::with_bus(IoPorts::new(&self.io, &self.counters))
    }

    fn mmio(&self) -> Mmio<IoMmio<'_>> {
        Mmio::with_bus(IoMmio::new(&self.io, MMIO_BASE_ARM_VIRT, &self.counters))
    }

    fn dma_mem(&self, buf: u64) -> GuestDma<Mem> {
        GuestDma::new(self.mem.clone(), DESC_GPA, buf, BUF_LEN)
    }
}

/// Runs `f` with a reader over each of the four transports; returns the
/// results and the bus accesses each took, in the order PIO, MMIO,
/// DMA over PIO, DMA over MMIO.
fn each_transport<R>(m: &Machine, mut f: impl FnMut(&mut dyn ReaderOps) -> R) -> [(R, u64); 4] {
    let mut run = |t: &mut dyn ReaderOps| {
        m.counters.reset();
        let r = f(t);
        // Every access reaches a device (the buses used to panic otherwise).
        assert_eq!(m.counters.unassigned(), 0);
        (r, m.counters.accesses())
    };
    let pio = run(&mut FwCfgReader::new(m.pio()).unwrap());
    let mmio = run(&mut FwCfgReader::new(m.mmio()).unwrap());
    let dpio = run(&mut FwCfgReader::new(Dma::new(m.pio(), m.dma_mem(BUF_GPA))).unwrap());
    let dmmio = run(&mut FwCfgReader::new(Dma::new(m.mmio(), m.dma_mem(BUF_GPA))).unwrap());
    [pio, mmio, dpio, dmmio]
}

/// Object-safe view of a reader, so one closure serves all transports.
trait ReaderOps {
    fn read_file(&mut self, name: &str, buf: &mut [u8]) -> Result<usize, ReadError>;
    fn names(&mut self) -> Vec<(String, u16, u32)>;
    fn file_state(&mut self) -> FileState;
    fn uses_dma(&self) -> bool;
}

impl<T: FwCfgTransport> ReaderOps for FwCfgReader<T> {
    fn read_file(&mut self, name: &str, buf: &mut [u8]) -> Result<usize, ReadError> {
        FwCfgReader::read_file(self, name, buf)
    }
    fn names(&mut self) -> Vec<(String, u16, u32)> {
        self.files()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.name_str().unwrap().to_string(), e.select, e.size)
            })
            .collect()
    }
    fn file_state(&mut self) -> FileState {
        read_phys_bits_file(self)
    }
    fn uses_dma(&self) -> bool {
        FwCfgReader::uses_dma(self)
    }
}

// ---------------------------------------------------------------------------
// CPUID from the device crate's patcher.
// ---------------------------------------------------------------------------

struct Entries(Vec<kvm_cpuid_entry2>);

impl CpuidSource for Entries {
    fn cpuid(&self, leaf: u32, _subleaf: u32) -> CpuidResult {
        self.0
            .iter()
            .find(|e| e.function == leaf)
            .map(|e| CpuidResult {
                eax: e.eax,
                ebx: e.ebx,
                ecx: e.ecx,
                edx: e.edx,
            })
            .unwrap_or_default()
    }
}

fn entry(function: u32, eax: u32, ebx: u32, ecx: u32, edx: u32) -> kvm_cpuid_entry2 {
    kvm_cpuid_entry2 {
        function,
        eax,
        ebx,
        ecx,
        edx,
        ..Default::default()
    }
}

/// A KVM-like CPUID table (Intel, hypervisor bit, KVM leaves, 48-bit
/// virtual, host 46-bit physical) patched by `cfg`. Like QEMU, it repeats
/// the vendor signature in leaf 0x8000_0000, which the heuristic reads.
fn patched_cpuid(cfg: &PhysBitsConfig) -> Entries {
    let mut cpuid = CpuId::from_entries(&[
        entry(0, 0xd, 0x756e_6547, 0x6c65_746e, 0x4965_6e69),
        entry(1, 0, 0, 1 << 31, 0),
        entry(0x4000_0000, 0x4000_0001, 0x4b4d_564b, 0x564b_4d56, 0x4d),
        entry(0x4000_0001, 0, 0, 0, KVM_HINTS_REALTIME),
        entry(
            0x8000_0000,
            0x8000_0008,
            0x756e_6547,
            0x6c65_746e,
            0x4965_6e69,
        ),
        entry(0x8000_0001, 0, 0, 0, 1 << 26),
        entry(0x8000_0008, 0x302e, 0, 0, 0),
    ])
    .unwrap();
    cfg.patch_cpuid(&mut cpuid).unwrap();
    Entries(cpuid.as_slice().to_vec())
}

// ---------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------

fn sample_builder() -> FwCfgBuilder {
    let mut b = FwCfgBuilder::new();
    b.add_file("bootorder", b"/pci@i0cf8/disk@0\n".to_vec())
        .unwrap();
    b.add_file("etc/big", (0..10_000u32).map(|i| (i * 7) as u8).collect())
        .unwrap();
    b.add_file("a/first", vec![0xaa; 3]).unwrap();
    PhysBitsConfig::host_passthrough(46)
        .with_guest_phys_bits(44)
        .add_to(&mut b)
        .unwrap();
    b
}

#[test]
fn every_transport_reads_the_same_bytes() {
    let m = Machine::new(&sample_builder());
    let results = each_transport(&m, |r| {
        let names = r.names();
        let mut files = Vec::new();
        for (name, _, size) in &names {
            let mut buf = vec![0u8; *size as usize];
            let n = r.read_file(name, &mut buf).unwrap();
            assert_eq!(n, *size as usize);
            files.push(buf);
        }
        (r.uses_dma(), names, files, r.file_state())
    });
    let (_, names, files, state) = &results[0].0;
    // The directory is sorted by name, as QEMU sorts it.
    let sorted: Vec<&str> = names.iter().map(|n| n.0.as_str()).collect();
    assert_eq!(
        sorted,
        ["a/first", "bootorder", "etc/big", "etc/phys-bits-valid"]
    );
    let big = names.iter().position(|n| n.0 == "etc/big").unwrap();
    assert_eq!(files[big][9_999], (9_999u32 * 7) as u8);
    assert_eq!(
        *state,
        FileState::Present(PhysBitsFile::new(true, 46, 44).with_backed_bits(46))
    );
    for (i, ((dma, n, f, s), _)) in results.iter().enumerate() {
        assert_eq!(*dma, i >= 2, "transport {i} DMA use");
        assert_eq!(n, names, "transport {i} directory");
        assert_eq!(f, files, "transport {i} bytes");
        assert_eq!(s, state, "transport {i} file state");
    }
    // DMA needs far fewer register accesses (VM exits) than byte-wise I/O.
    let accesses: Vec<u64> = results.iter().map(|r| r.1).collect();
    eprintln!("register accesses (PIO, MMIO, DMA/PIO, DMA/MMIO): {accesses:?}");
    assert!(accesses[2] * 50 < accesses[0], "{accesses:?}");
    assert!(accesses[3] * 10 < accesses[1], "{accesses:?}");
}

#[test]
fn dma_is_used_only_when_the_id_says_so() {
    let mut b = sample_builder();
    b.dma(false);
    let m = Machine::new(&b);
    let mut r = FwCfgReader::new(Dma::new(m.pio(), m.dma_mem(BUF_GPA))).unwrap();
    assert!(!r.has_dma() && !r.uses_dma());
    let mut buf = [0u8; 16];
    assert_eq!(r.read_file(PHYS_BITS_FILE_NAME, &mut buf), Ok(8));
    assert_eq!(r.into_transport().transfers(), 0);
}

#[test]
fn dma_fault_is_reported() {
    let m = Machine::new(&sample_builder());
    // The data buffer lies outside guest memory: the device sets ERROR.
    let mut r = FwCfgReader::new(Dma::new(m.pio(), m.dma_mem(MEM_SIZE + 0x1000))).unwrap();
    let mut buf = [0u8; 4];
    assert!(matches!(
        r.read_item(0, &mut buf),
        Err(ReadError::Transport(TransportError::DmaError { .. }))
    ));
    assert!(matches!(
        read_phys_bits_file(&mut r),
        FileState::Unreadable(ReadError::Transport(TransportError::DmaError { .. }))
    ));
    let mut r = FwCfgReader::new(Dma::new(m.mmio(), m.dma_mem(MEM_SIZE + 0x1000))).unwrap();
    let mut buf = [0u8; 4];
    assert!(matches!(
        r.read_item(0, &mut buf),
        Err(ReadError::Transport(TransportError::DmaError { .. }))
    ));
}

#[test]
fn directory_and_items_match_the_device() {
    let m = Machine::new(&sample_builder());
    let mut r = FwCfgReader::new(m.pio()).unwrap();
    assert_eq!(r.id().map(|id| id & 3), Some(3));
    let mut id = [0u8; 4];
    r.read_item(fw_cfg_guest::abi::KEY_ID, &mut id).unwrap();
    assert_eq!(Some(u32::from_le_bytes(id)), r.id());
    let mut small = [0u8; 8];
    assert_eq!(
        r.read_file("etc/big", &mut small),
        Err(ReadError::FileTooLarge {
            size: 10_000,
            buf: 8
        })
    );
    assert_eq!(r.find_file("missing"), Err(ReadError::NotFound));
}

/// One scenario of the decision matrix.
struct Case {
    name: &'static str,
    cfg: PhysBitsConfig,
    /// Replaces the file the configuration would render.
    file_override: Option<Vec<u8>>,
    hint: HintState,
    file: FileState,
    strict: (u8, DecidedBy, Rule),
    combined: (u8, DecidedBy, Rule),
    conflicts: &'static [Conflict],
}

#[test]
fn decision_matrix_through_every_transport() {
    let valid39 = PhysBitsConfig::host_passthrough(39);
    let invalid40 = PhysBitsConfig::legacy_default(39); // advertises 40 on a 39-bit host
    let cases = [
        Case {
            name: "valid, hint on, file on",
            cfg: valid39,
            file_override: None,
            hint: HintState::Set,
            file: FileState::Present(PhysBitsFile::new(true, 39, 0).with_backed_bits(39)),
            strict: (39, DecidedBy::BothChannels, Rule::ExplicitValid),
            combined: (39, DecidedBy::BothChannels, Rule::ExplicitValid),
            conflicts: &[],
        },
        Case {
            name: "valid, hint on, file absent",
            cfg: valid39.with_fw_cfg_file(false),
            file_override: None,
            hint: HintState::Set,
            file: FileState::Absent,
            strict: (39, DecidedBy::CpuidHint, Rule::ExplicitValid),
            combined: (39, DecidedBy::CpuidHint, Rule::ExplicitValid),
            conflicts: &[],
        },
        Case {
            name: "valid, hint off, file on",
            cfg: valid39.with_cpuid_hint(false),
            file_override: None,
            hint: HintState::Clear,
            file: FileState::Present(PhysBitsFile::new(true, 39, 0).with_backed_bits(39)),
            strict: (39, DecidedBy::FwCfgFile, Rule::ExplicitValid),
            combined: (39, DecidedBy::FwCfgFile, Rule::ExplicitValid),
            conflicts: &[Conflict::HintClearButFileValid],
        },
        Case {
            name: "valid, both channels off",
            cfg: valid39.with_cpuid_hint(false).with_fw_cfg_file(false),
            file_override: None,
            hint: HintState::Clear,
            file: FileState::Absent,
            strict: (36, DecidedBy::ConservativeDefault, Rule::NoInformation),
            combined: (39, DecidedBy::Heuristic, Rule::HeuristicValid),
            conflicts: &[],
        },
        Case {
            name: "invalid, file says so and states the backed 39",
            cfg: invalid40,
            file_override: None,
            hint: HintState::Clear,
            file: FileState::Present(PhysBitsFile::new(false, 40, 0).with_backed_bits(39)),
            strict: (39, DecidedBy::FwCfgFile, Rule::BackedWidth),
            combined: (39, DecidedBy::FwCfgFile, Rule::BackedWidth),
            conflicts: &[],
        },
        Case {
            name: "invalid, version-1 file without a backed width",
            cfg: invalid40.with_fw_cfg_file(false),
            file_override: Some(vec![1, 0, 40, 0, 0, 0, 0, 0]),
            hint: HintState::Clear,
            file: FileState::Present(PhysBitsFile {
                version: 1,
                ..PhysBitsFile::new(false, 40, 0)
            }),
            strict: (36, DecidedBy::FwCfgFile, Rule::ExplicitInvalid),
            combined: (36, DecidedBy::FwCfgFile, Rule::ExplicitInvalid),
            conflicts: &[],
        },
        Case {
            name: "legacy 40 on a 48-bit host: backed",
            cfg: PhysBitsConfig::legacy_default(48),
            file_override: None,
            hint: HintState::Set,
            file: FileState::Present(PhysBitsFile::new(true, 40, 0).with_backed_bits(48)),
            strict: (40, DecidedBy::BothChannels, Rule::ExplicitValid),
            combined: (40, DecidedBy::BothChannels, Rule::ExplicitValid),
            conflicts: &[],
        },
        Case {
            name: "invalid, file off (Intel 40: heuristic rejects)",
            cfg: invalid40.with_fw_cfg_file(false),
            file_override: None,
            hint: HintState::Clear,
            file: FileState::Absent,
            strict: (36, DecidedBy::ConservativeDefault, Rule::NoInformation),
            combined: (36, DecidedBy::ConservativeDefault, Rule::HeuristicInvalid),
            conflicts: &[],
        },
        Case {
            name: "corrupt file, hint on",
            cfg: valid39.with_fw_cfg_file(false),
            file_override: Some(vec![1, 7, 39, 0, 0, 0, 0, 0]),
            hint: HintState::Set,
            file: FileState::Corrupt(PhysBitsFileError::BadValidFlag(7)),
            strict: (36, DecidedBy::ConservativeDefault, Rule::Distrusted),
            combined: (36, DecidedBy::ConservativeDefault, Rule::Distrusted),
            conflicts: &[Conflict::CorruptFile],
        },
        Case {
            name: "short file, hint off",
            cfg: valid39.with_fw_cfg_file(false).with_cpuid_hint(false),
            file_override: Some(vec![1, 1, 39]),
            hint: HintState::Clear,
            file: FileState::Corrupt(PhysBitsFileError::TooShort(3)),
            strict: (36, DecidedBy::ConservativeDefault, Rule::Distrusted),
            combined: (36, DecidedBy::ConservativeDefault, Rule::Distrusted),
            conflicts: &[Conflict::CorruptFile],
        },
        Case {
            name: "conflicting file width",
            cfg: valid39.with_fw_cfg_file(false),
            file_override: Some(PhysBitsFile::new(true, 46, 0).to_bytes().to_vec()),
            hint: HintState::Set,
            file: FileState::Present(PhysBitsFile::new(true, 46, 0)),
            strict: (36, DecidedBy::ConservativeDefault, Rule::Distrusted),
            combined: (36, DecidedBy::ConservativeDefault, Rule::Distrusted),
            conflicts: &[Conflict::FilePhysBitsDiffersFromCpuid],
        },
        Case {
            name: "hint on, file says invalid",
            cfg: valid39.with_fw_cfg_file(false),
            file_override: Some(PhysBitsFile::new(false, 39, 0).to_bytes().to_vec()),
            hint: HintState::Set,
            file: FileState::Present(PhysBitsFile::new(false, 39, 0)),
            strict: (36, DecidedBy::ConservativeDefault, Rule::Distrusted),
            combined: (36, DecidedBy::ConservativeDefault, Rule::Distrusted),
            conflicts: &[Conflict::HintSetButFileInvalid],
        },
        Case {
            name: "future version, longer file",
            cfg: valid39.with_fw_cfg_file(false),
            file_override: Some(vec![3, 1, 39, 0, 39, 5, 5, 5, 9, 9, 9, 9]),
            hint: HintState::Set,
            file: FileState::Present(PhysBitsFile {
                version: 3,
                valid: true,
                phys_bits: 39,
                guest_phys_bits: 0,
                backed_bits: 39,
            }),
            strict: (39, DecidedBy::BothChannels, Rule::ExplicitValid),
            combined: (39, DecidedBy::BothChannels, Rule::ExplicitValid),
            conflicts: &[],
        },
        Case {
            name: "guest-phys width caps",
            cfg: PhysBitsConfig::host_passthrough(46).with_guest_phys_bits(41),
            file_override: None,
            hint: HintState::Set,
            file: FileState::Present(PhysBitsFile::new(true, 46, 41).with_backed_bits(46)),
            strict: (41, DecidedBy::BothChannels, Rule::ExplicitValid),
            combined: (41, DecidedBy::BothChannels, Rule::ExplicitValid),
            conflicts: &[],
        },
    ];
    for c in cases {
        let mut b = FwCfgBuilder::new();
        b.add_file("bootorder", b"x".to_vec()).unwrap();
        c.cfg.add_to(&mut b).unwrap();
        if let Some(bytes) = &c.file_override {
            b.add_file(PHYS_BITS_FILE_NAME, bytes.clone()).unwrap();
        }
        let m = Machine::new(&b);
        let cpuid = read_cpuid_channel(&patched_cpuid(&c.cfg));
        assert_eq!(cpuid.hint, c.hint, "{}: hint", c.name);
        for (i, (file, _)) in each_transport(&m, |r| r.file_state())
            .into_iter()
            .enumerate()
        {
            assert_eq!(file, c.file, "{}: transport {i}", c.name);
            let inputs = ChannelInputs::new(&cpuid, file);
            let check = |d: Decision, want: (u8, DecidedBy, Rule)| {
                assert_eq!(
                    (d.phys_bits, d.decided_by, d.rule),
                    want,
                    "{}: {:?} via transport {i}",
                    c.name,
                    d.mode
                );
                let got: Vec<Conflict> = d.conflicts.iter().collect();
                assert_eq!(got, c.conflicts, "{}: conflicts", c.name);
            };
            check(decide(&inputs, PolicyMode::Strict), c.strict);
            check(decide(&inputs, PolicyMode::Combined), c.combined);
        }
    }

    // KVM's supported CPUID passed through on an Intel host has no vendor in
    // leaf 0x8000_0000; OVMF's heuristic, and so ours, then rejects 39.
    let silent = valid39.with_cpuid_hint(false).with_fw_cfg_file(false);
    let mut cpuid = patched_cpuid(&silent);
    for e in cpuid.0.iter_mut().filter(|e| e.function == 0x8000_0000) {
        (e.ebx, e.ecx, e.edx) = (0, 0, 0);
    }
    let cpuid = read_cpuid_channel(&cpuid);
    assert_eq!((cpuid.phys_bits, cpuid.ext_vendor), (39, None));
    let d = decide(
        &ChannelInputs::new(&cpuid, FileState::Absent),
        PolicyMode::Combined,
    );
    assert_eq!(
        (d.phys_bits, d.decided_by, d.rule),
        (36, DecidedBy::ConservativeDefault, Rule::HeuristicInvalid)
    );
}

/// The DMA decision against the real device, access by access: the DMA
/// register's signature (two 32-bit reads by port I/O, one 64-bit read by
/// MMIO), which is all that opening costs, the directory with its count by
/// one transfer, the file by one; each transfer one register write (the
/// low half by port). The ID, read after the decision, is one more.
#[test]
fn dma_decision_takes_the_floor_of_accesses() {
    fn decide_by_dma<T: FwCfgTransport + DmaKick>(m: &Machine, t: T, sig: u64, want: u64) {
        m.counters.reset();
        let mut r = FwCfgReader::new(Dma::new(t, m.dma_mem(BUF_GPA))).unwrap();
        assert!(r.uses_dma() && r.has_dma());
        assert_eq!((r.id(), m.counters.accesses()), (None, sig), "open");
        let state = read_phys_bits_file(&mut r);
        assert!(matches!(state, FileState::Present(_)), "{state:?}");
        assert_eq!(m.counters.accesses(), want, "the decision");
        assert_eq!(r.read_id().map(|id| id & 3), Ok(3));
        assert_eq!(m.counters.accesses(), want + 1, "the ID");
        assert_eq!(r.into_transport().transfers(), 3);
        assert_eq!(m.counters.unassigned(), 0);
    }
    let m = Machine::new(&sample_builder());
    decide_by_dma(&m, m.pio(), 2, 4);
    decide_by_dma(&m, m.mmio(), 1, 3);
    // With the latch forgotten, the first kick writes both halves.
    m.counters.reset();
    let mut dma = Dma::new(m.pio(), m.dma_mem(BUF_GPA));
    dma.forget_address_latch();
    let mut r = FwCfgReader::new(dma).unwrap();
    assert!(r.uses_dma());
    r.read_id().unwrap();
    assert_eq!(m.counters.accesses(), 2 + 2);
}
