// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The snapshot file format, version 1 (documented in `tests/README.md`).
//!
//! All integers little-endian:
//!
//! ```text
//! magic    8 bytes  "FWCFGVM\0"
//! version  u32      1
//! count    u32      number of sections
//! section  count ×  { id u32, length u64, payload[length] }
//! crc      u32      CRC-32 (IEEE) of every byte before it
//! ```
//!
//! Sections, each exactly once: 1 machine (kernel kind, memory regions),
//! 2 memory (the regions' bytes, in order), 3 vCPU (KVM's register
//! structures), 4 fw_cfg (each front end's [`FwCfgSnapshot`]), 5 serial
//! (the UART's registers and receive FIFO). [`parse`] checks everything
//! against [`Limits`] (the restoring VMM's own configuration) before it
//! allocates: the memory section is borrowed from the input, and every
//! other allocation is bounded by a constant or by the input's length.

use std::io::{self, Write};

use fw_cfg_device::snapshot::{ConfigDigest, FwCfgSnapshot, WritableContents};
use fw_cfg_device::state::FwCfgState;
use kvm_bindings::{
    kvm_mp_state, kvm_msr_entry, kvm_regs, kvm_sregs, kvm_vcpu_events, kvm_xcrs, kvm_xsave,
};
use vm_superio::serial::SerialState;
use zerocopy::{FromBytes, IntoBytes};

/// The file's first eight bytes.
pub const MAGIC: [u8; 8] = *b"FWCFGVM\0";
/// The only version this reader accepts.
pub const VERSION: u32 = 1;
/// Most memory regions a snapshot may describe.
pub const MAX_REGIONS: usize = 8;
/// Most MSRs a vCPU record may hold.
pub const MAX_MSRS: usize = 64;
/// The UART's receive FIFO size (vm-superio's).
pub const MAX_SERIAL_FIFO: usize = 64;
/// The kernel kind of a PVH guest (the only kind snapshots support).
pub const KIND_PVH: u8 = 1;

/// Section identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum SectionId {
    /// Kernel kind and memory regions.
    Machine = 1,
    /// Guest memory.
    Memory = 2,
    /// vCPU state.
    Vcpu = 3,
    /// fw_cfg devices.
    FwCfg = 4,
    /// COM1.
    Serial = 5,
}

impl SectionId {
    const ALL: [SectionId; 5] = [
        SectionId::Machine,
        SectionId::Memory,
        SectionId::Vcpu,
        SectionId::FwCfg,
        SectionId::Serial,
    ];

    fn from_u32(id: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|s| *s as u32 == id)
    }
}

/// Why a snapshot file cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The input ends inside `what`.
    #[error("the snapshot is truncated (in {what})")]
    Truncated {
        /// What was being read.
        what: &'static str,
    },
    /// Not a snapshot of this VMM.
    #[error("not a snapshot file (bad magic)")]
    BadMagic,
    /// A version this reader does not know.
    #[error("unsupported snapshot version {0} (this VMM reads version {VERSION})")]
    UnsupportedVersion(u32),
    /// The checksum does not match the contents.
    #[error("the snapshot is corrupted (CRC-32 {stored:#010x} stored, {computed:#010x} computed)")]
    Checksum {
        /// The stored CRC.
        stored: u32,
        /// The CRC of the contents.
        computed: u32,
    },
    /// An unknown section.
    #[error("unknown snapshot section {0}")]
    UnknownSection(u32),
    /// A section appears twice.
    #[error("snapshot section {0:?} appears twice")]
    DuplicateSection(SectionId),
    /// A section is missing.
    #[error("snapshot section {0:?} is missing")]
    MissingSection(SectionId),
    /// Bytes left over after the last section or inside one.
    #[error("trailing bytes in snapshot {what}")]
    Trailing {
        /// Where.
        what: &'static str,
    },
    /// A count exceeds its bound.
    #[error("snapshot {what} count {count} exceeds {max}")]
    TooMany {
        /// What is counted.
        what: &'static str,
        /// The count found.
        count: u64,
        /// The bound.
        max: u64,
    },
    /// A record of a KVM structure has the wrong size.
    #[error("snapshot {what} record of {len} bytes (expected {expected})")]
    RecordSize {
        /// The structure.
        what: &'static str,
        /// The length found.
        len: u32,
        /// Its size.
        expected: usize,
    },
    /// A value outside its domain.
    #[error("invalid {what} in the snapshot")]
    Invalid {
        /// What is invalid.
        what: &'static str,
    },
    /// The memory regions differ from the restoring VMM's.
    #[error("the snapshot's guest memory layout differs from this VM's (check --memory)")]
    MemoryLayout,
}

/// What the restoring VMM expects: its own guest memory regions
/// (`(start, length)`); the snapshot's must be the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The guest memory regions.
    pub regions: Vec<(u64, u64)>,
}

impl Limits {
    /// The total guest memory in bytes.
    pub fn memory_bytes(&self) -> u64 {
        self.regions.iter().map(|r| r.1).sum()
    }
}

/// The vCPU state KVM exposes that a resumed PVH guest needs.
pub struct VcpuState {
    /// General-purpose registers, RIP and RFLAGS.
    pub regs: kvm_regs,
    /// Segment, control and descriptor-table registers, EFER, APIC base.
    pub sregs: kvm_sregs,
    /// x87, SSE and extended state.
    pub xsave: kvm_xsave,
    /// XCR0.
    pub xcrs: kvm_xcrs,
    /// Pending exceptions, interrupts, NMIs and the interrupt shadow.
    pub events: kvm_vcpu_events,
    /// Runnable or halted.
    pub mp_state: kvm_mp_state,
    /// The MSRs of [`super::vcpu::SAVED_MSRS`] that KVM returned.
    pub msrs: Vec<kvm_msr_entry>,
}

impl std::fmt::Debug for VcpuState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VcpuState")
            .field("rip", &self.regs.rip)
            .field("msrs", &self.msrs.len())
            .finish_non_exhaustive()
    }
}

/// The fw_cfg front ends' snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FwCfgFronts {
    /// The port-I/O device.
    pub pio: Option<FwCfgSnapshot>,
    /// The MMIO device.
    pub mmio: Option<FwCfgSnapshot>,
}

/// A parsed snapshot; guest memory is borrowed from the input.
#[derive(Debug)]
pub struct Snapshot<'a> {
    /// The guest memory regions, as [`Limits::regions`].
    pub regions: Vec<(u64, u64)>,
    /// Their bytes, concatenated in order.
    pub memory: &'a [u8],
    /// The vCPU.
    pub vcpu: VcpuState,
    /// The fw_cfg devices.
    pub fw_cfg: FwCfgFronts,
    /// COM1.
    pub serial: SerialState,
}

/// A reader over a byte slice that never reads past its end.
struct Cursor<'a> {
    data: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: u64, what: &'static str) -> Result<&'a [u8], FormatError> {
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.data.len())
            .ok_or(FormatError::Truncated { what })?;
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], FormatError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N as u64, what)?);
        Ok(a)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, FormatError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, FormatError> {
        self.array(what).map(u16::from_le_bytes)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, FormatError> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, FormatError> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// A count of at most `max` items.
    fn count(&mut self, what: &'static str, max: usize) -> Result<usize, FormatError> {
        let count = self.u32(what)?;
        usize::try_from(count)
            .ok()
            .filter(|&c| c <= max)
            .ok_or(FormatError::TooMany {
                what,
                count: u64::from(count),
                max: max as u64,
            })
    }

    /// One KVM structure, written as a `u32` size and its bytes.
    fn record<T: FromBytes>(&mut self, what: &'static str) -> Result<T, FormatError> {
        let len = self.u32(what)?;
        let expected = std::mem::size_of::<T>();
        if usize::try_from(len).ok() != Some(expected) {
            return Err(FormatError::RecordSize {
                what,
                len,
                expected,
            });
        }
        let bytes = self.take(u64::from(len), what)?;
        T::read_from_bytes(bytes).map_err(|_| FormatError::Invalid { what })
    }

    fn end(&self, what: &'static str) -> Result<(), FormatError> {
        if self.data.is_empty() {
            Ok(())
        } else {
            Err(FormatError::Trailing { what })
        }
    }
}

/// A writer that keeps the CRC-32 of everything written through it.
struct Checksummed<W: Write> {
    inner: W,
    crc: crc32fast::Hasher,
}

impl<W: Write> Write for Checksummed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn put_record<T: IntoBytes + zerocopy::Immutable>(out: &mut Vec<u8>, value: &T) {
    let bytes = value.as_bytes();
    // KVM structures are a few KiB at most.
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn encode_machine(regions: &[(u64, u64)]) -> Vec<u8> {
    let mut out = vec![KIND_PVH];
    out.extend_from_slice(&(regions.len() as u32).to_le_bytes());
    for (start, len) in regions {
        out.extend_from_slice(&start.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
    }
    out
}

fn encode_vcpu(v: &VcpuState) -> Vec<u8> {
    let mut out = Vec::new();
    put_record(&mut out, &v.regs);
    put_record(&mut out, &v.sregs);
    put_record(&mut out, &v.xsave);
    put_record(&mut out, &v.xcrs);
    put_record(&mut out, &v.events);
    put_record(&mut out, &v.mp_state);
    out.extend_from_slice(&(v.msrs.len() as u32).to_le_bytes());
    for m in &v.msrs {
        out.extend_from_slice(m.as_bytes());
    }
    out
}

fn encode_device(out: &mut Vec<u8>, kind: u8, s: &FwCfgSnapshot) {
    out.push(kind);
    out.extend_from_slice(&s.registers.selector.to_le_bytes());
    out.extend_from_slice(&s.registers.offset.to_le_bytes());
    out.extend_from_slice(&s.registers.dma_address.to_le_bytes());
    out.extend_from_slice(&s.config_digest);
    out.push(s.vouched_bits);
    out.extend_from_slice(&(s.writable.len() as u32).to_le_bytes());
    for w in &s.writable {
        out.extend_from_slice(&w.key.to_le_bytes());
        // Items are at most `ITEM_MAX_LEN` bytes, which fits a u32.
        out.extend_from_slice(&(w.bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(&w.bytes);
    }
}

fn encode_fw_cfg(f: &FwCfgFronts) -> Vec<u8> {
    let fronts: Vec<(u8, &FwCfgSnapshot)> = [(0, &f.pio), (1, &f.mmio)]
        .into_iter()
        .filter_map(|(k, s)| Some((k, s.as_ref()?)))
        .collect();
    let mut out = vec![fronts.len() as u8];
    for (kind, s) in fronts {
        encode_device(&mut out, kind, s);
    }
    out
}

fn encode_serial(s: &SerialState) -> Vec<u8> {
    let mut out = vec![
        s.baud_divisor_low,
        s.baud_divisor_high,
        s.interrupt_enable,
        s.interrupt_identification,
        s.line_control,
        s.line_status,
        s.modem_control,
        s.modem_status,
        s.scratch,
    ];
    let fifo = &s.in_buffer[..s.in_buffer.len().min(MAX_SERIAL_FIFO)];
    out.push(fifo.len() as u8);
    out.extend_from_slice(fifo);
    out
}

/// What [`write()`] saves besides guest memory.
pub struct SnapshotParts<'a> {
    /// The guest memory regions.
    pub regions: &'a [(u64, u64)],
    /// The vCPU.
    pub vcpu: &'a VcpuState,
    /// The fw_cfg devices.
    pub fw_cfg: &'a FwCfgFronts,
    /// COM1.
    pub serial: &'a SerialState,
}

/// Writes a version-1 snapshot to `out`; `memory(offset, buf)` fills `buf`
/// with guest memory bytes at `offset` of the concatenated regions.
pub fn write<W: Write>(
    out: W,
    parts: &SnapshotParts<'_>,
    mut memory: impl FnMut(u64, &mut [u8]) -> io::Result<()>,
) -> io::Result<W> {
    let mut w = Checksummed {
        inner: out,
        crc: crc32fast::Hasher::new(),
    };
    w.write_all(&MAGIC)?;
    w.write_all(&VERSION.to_le_bytes())?;
    w.write_all(&(SectionId::ALL.len() as u32).to_le_bytes())?;
    let section = |w: &mut Checksummed<W>, id: SectionId, len: u64| -> io::Result<()> {
        w.write_all(&(id as u32).to_le_bytes())?;
        w.write_all(&len.to_le_bytes())
    };
    let machine = encode_machine(parts.regions);
    section(&mut w, SectionId::Machine, machine.len() as u64)?;
    w.write_all(&machine)?;
    let total: u64 = parts.regions.iter().map(|r| r.1).sum();
    section(&mut w, SectionId::Memory, total)?;
    // Copied in pieces of at most 1 MiB.
    let mut buf = vec![0u8; total.min(1 << 20) as usize];
    let mut offset = 0;
    while offset < total {
        let n = (total - offset).min(buf.len() as u64) as usize;
        memory(offset, &mut buf[..n])?;
        w.write_all(&buf[..n])?;
        offset += n as u64;
    }
    for (id, payload) in [
        (SectionId::Vcpu, encode_vcpu(parts.vcpu)),
        (SectionId::FwCfg, encode_fw_cfg(parts.fw_cfg)),
        (SectionId::Serial, encode_serial(parts.serial)),
    ] {
        section(&mut w, id, payload.len() as u64)?;
        w.write_all(&payload)?;
    }
    let crc = w.crc.clone().finalize();
    w.inner.write_all(&crc.to_le_bytes())?;
    Ok(w.inner)
}

fn parse_machine(c: &mut Cursor<'_>, limits: &Limits) -> Result<Vec<(u64, u64)>, FormatError> {
    if c.u8("machine")? != KIND_PVH {
        return Err(FormatError::Invalid {
            what: "kernel kind",
        });
    }
    let n = c.count("memory region", MAX_REGIONS)?;
    let mut regions = Vec::with_capacity(n);
    for _ in 0..n {
        regions.push((c.u64("region start")?, c.u64("region length")?));
    }
    c.end("machine section")?;
    if regions != limits.regions {
        return Err(FormatError::MemoryLayout);
    }
    Ok(regions)
}

fn parse_vcpu(c: &mut Cursor<'_>) -> Result<VcpuState, FormatError> {
    let regs = c.record("kvm_regs")?;
    let sregs = c.record("kvm_sregs")?;
    let xsave = c.record("kvm_xsave")?;
    let xcrs = c.record("kvm_xcrs")?;
    let events = c.record("kvm_vcpu_events")?;
    let mp_state = c.record("kvm_mp_state")?;
    let n = c.count("MSR", MAX_MSRS)?;
    let mut msrs = Vec::with_capacity(n);
    for _ in 0..n {
        let bytes = c.take(std::mem::size_of::<kvm_msr_entry>() as u64, "MSR")?;
        msrs.push(
            kvm_msr_entry::read_from_bytes(bytes)
                .map_err(|_| FormatError::Invalid { what: "MSR" })?,
        );
    }
    c.end("vCPU section")?;
    Ok(VcpuState {
        regs,
        sregs,
        xsave,
        xcrs,
        events,
        mp_state,
        msrs,
    })
}

fn parse_device(c: &mut Cursor<'_>) -> Result<FwCfgSnapshot, FormatError> {
    let registers = FwCfgState {
        selector: c.u16("fw_cfg selector")?,
        offset: c.u32("fw_cfg offset")?,
        dma_address: c.u64("fw_cfg DMA address")?,
    };
    let config_digest: ConfigDigest = c.array("fw_cfg digest")?;
    let vouched_bits = c.u8("vouched width")?;
    // Each entry takes at least six bytes of the input.
    let n = c.count("writable item", c.data.len() / 6)?;
    let mut writable = Vec::with_capacity(n);
    for _ in 0..n {
        let key = c.u16("writable key")?;
        let len = c.u32("writable length")?;
        let bytes = c.take(u64::from(len), "writable contents")?.to_vec();
        writable.push(WritableContents { key, bytes });
    }
    Ok(FwCfgSnapshot {
        registers,
        config_digest,
        writable,
        vouched_bits,
    })
}

fn parse_fw_cfg(c: &mut Cursor<'_>) -> Result<FwCfgFronts, FormatError> {
    let mut fronts = FwCfgFronts::default();
    let n = c.u8("fw_cfg front-end count")?;
    for _ in 0..n {
        let slot = match c.u8("fw_cfg front-end kind")? {
            0 => &mut fronts.pio,
            1 => &mut fronts.mmio,
            _ => {
                return Err(FormatError::Invalid {
                    what: "fw_cfg front-end kind",
                });
            }
        };
        if slot.is_some() {
            return Err(FormatError::Invalid {
                what: "fw_cfg front-end list",
            });
        }
        *slot = Some(parse_device(c)?);
    }
    c.end("fw_cfg section")?;
    Ok(fronts)
}

fn parse_serial(c: &mut Cursor<'_>) -> Result<SerialState, FormatError> {
    let r: [u8; 9] = c.array("serial registers")?;
    let n = usize::from(c.u8("serial FIFO length")?);
    if n > MAX_SERIAL_FIFO {
        return Err(FormatError::TooMany {
            what: "serial FIFO byte",
            count: n as u64,
            max: MAX_SERIAL_FIFO as u64,
        });
    }
    let in_buffer = c.take(n as u64, "serial FIFO")?.to_vec();
    c.end("serial section")?;
    Ok(SerialState {
        baud_divisor_low: r[0],
        baud_divisor_high: r[1],
        interrupt_enable: r[2],
        interrupt_identification: r[3],
        line_control: r[4],
        line_status: r[5],
        modem_control: r[6],
        modem_status: r[7],
        scratch: r[8],
        in_buffer,
    })
}

/// Checks the frame (magic, version, CRC) and returns the section bytes.
fn frame(data: &[u8]) -> Result<(usize, &[u8]), FormatError> {
    let (body, crc) = data
        .split_last_chunk::<4>()
        .ok_or(FormatError::Truncated { what: "header" })?;
    let mut c = Cursor { data: body };
    if c.array::<8>("header")? != MAGIC {
        return Err(FormatError::BadMagic);
    }
    let version = c.u32("header")?;
    if version != VERSION {
        return Err(FormatError::UnsupportedVersion(version));
    }
    let stored = u32::from_le_bytes(*crc);
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(FormatError::Checksum { stored, computed });
    }
    let count = c.count("section", SectionId::ALL.len())?;
    Ok((count, c.data))
}

/// Parses a snapshot and checks it against `limits`.
pub fn parse<'a>(data: &'a [u8], limits: &Limits) -> Result<Snapshot<'a>, FormatError> {
    let (count, sections) = frame(data)?;
    let mut c = Cursor { data: sections };
    let mut found: [Option<&'a [u8]>; 5] = [None; 5];
    for _ in 0..count {
        let raw = c.u32("section header")?;
        let id = SectionId::from_u32(raw).ok_or(FormatError::UnknownSection(raw))?;
        let len = c.u64("section header")?;
        let payload = c.take(len, "section")?;
        let slot = &mut found[id as usize - 1];
        if slot.replace(payload).is_some() {
            return Err(FormatError::DuplicateSection(id));
        }
    }
    c.end("file")?;
    let section = |id: SectionId| {
        found[id as usize - 1]
            .map(|data| Cursor { data })
            .ok_or(FormatError::MissingSection(id))
    };
    let regions = parse_machine(&mut section(SectionId::Machine)?, limits)?;
    let memory = section(SectionId::Memory)?.data;
    if memory.len() as u64 != limits.memory_bytes() {
        return Err(FormatError::MemoryLayout);
    }
    Ok(Snapshot {
        regions,
        memory,
        vcpu: parse_vcpu(&mut section(SectionId::Vcpu)?)?,
        fw_cfg: parse_fw_cfg(&mut section(SectionId::FwCfg)?)?,
        serial: parse_serial(&mut section(SectionId::Serial)?)?,
    })
}

/// Replaces the last four bytes of `data` by the CRC-32 of the rest, so
/// that a fuzzer's or a test's mutations reach the section parsers.
pub fn fix_checksum(data: &mut [u8]) {
    if let Some((body, crc)) = data.split_last_chunk_mut::<4>() {
        *crc = crc32fast::hash(body).to_le_bytes();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vcpu() -> VcpuState {
        VcpuState {
            regs: kvm_regs {
                rip: 0x1234,
                ..Default::default()
            },
            sregs: Default::default(),
            xsave: Default::default(),
            xcrs: Default::default(),
            events: Default::default(),
            mp_state: Default::default(),
            msrs: vec![kvm_msr_entry {
                index: 0x10,
                data: 99,
                ..Default::default()
            }],
        }
    }

    fn fronts() -> FwCfgFronts {
        FwCfgFronts {
            pio: Some(FwCfgSnapshot {
                registers: FwCfgState {
                    selector: 0x21,
                    offset: 7,
                    dma_address: 0x5_0000_0000,
                },
                config_digest: [3; 32],
                writable: vec![WritableContents {
                    key: 0x22,
                    bytes: b"abc".to_vec(),
                }],
                vouched_bits: 46,
            }),
            mmio: None,
        }
    }

    /// A snapshot of 8 KiB of memory in two regions.
    fn sample() -> (Vec<u8>, Limits) {
        let regions = vec![(0, 4096), (0x1_0000_0000, 4096)];
        let serial = SerialState {
            in_buffer: vec![b'x'],
            ..Default::default()
        };
        let parts = SnapshotParts {
            regions: &regions,
            vcpu: &vcpu(),
            fw_cfg: &fronts(),
            serial: &serial,
        };
        let data = write(Vec::new(), &parts, |off, buf| {
            for (i, b) in buf.iter_mut().enumerate() {
                *b = ((off + i as u64) >> 12) as u8 + 1;
            }
            Ok(())
        })
        .unwrap();
        (data, Limits { regions })
    }

    #[test]
    fn round_trip() {
        let (data, limits) = sample();
        let s = parse(&data, &limits).unwrap();
        assert_eq!(s.regions, limits.regions);
        assert_eq!(s.memory.len(), 8192);
        assert_eq!((s.memory[0], s.memory[4096]), (1, 2));
        assert_eq!(s.vcpu.regs.rip, 0x1234);
        assert_eq!(s.vcpu.msrs[0].data, 99);
        assert_eq!(s.fw_cfg, fronts());
        assert_eq!(s.serial.in_buffer, b"x");
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_is_an_error() {
        let (data, limits) = sample();
        for len in 0..data.len() {
            assert!(parse(&data[..len], &limits).is_err(), "length {len}");
        }
        // Every single-bit corruption is caught by the CRC.
        for i in (0..data.len()).step_by(7) {
            let mut bad = data.clone();
            bad[i] ^= 0x10;
            assert!(parse(&bad, &limits).is_err(), "byte {i}");
        }
    }

    #[test]
    fn hostile_fields_are_typed_errors() {
        let (data, limits) = sample();
        // Version, with a valid checksum.
        let mut bad = data.clone();
        bad[8] = 2;
        fix_checksum(&mut bad);
        assert_eq!(
            parse(&bad, &limits).unwrap_err(),
            FormatError::UnsupportedVersion(2)
        );
        let mut bad = data.clone();
        bad[0] = b'X';
        assert_eq!(parse(&bad, &limits).unwrap_err(), FormatError::BadMagic);
        let mut bad = data.clone();
        bad[20..28].copy_from_slice(&u64::MAX.to_le_bytes());
        fix_checksum(&mut bad);
        assert_eq!(
            parse(&bad, &limits).unwrap_err(),
            FormatError::Truncated { what: "section" }
        );
        // Another memory size.
        let other = Limits {
            regions: vec![(0, 4096)],
        };
        assert_eq!(parse(&data, &other).unwrap_err(), FormatError::MemoryLayout);
        let mut bad = data;
        bad[12] = 9;
        fix_checksum(&mut bad);
        assert!(matches!(
            parse(&bad, &limits).unwrap_err(),
            FormatError::TooMany {
                what: "section",
                ..
            }
        ));
    }
}
