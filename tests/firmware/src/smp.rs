// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Several vCPUs: the application-processor side of the boot stub, and the
//! SMP stress mode (`fw_cfg_tests.smp=ITERATIONS`).
//!
//! The mini VMM starts every AP at the PVH entry with `%ebx` = 0 and
//! `%edi` = its vCPU index (its AP contract); the boot stub sends APs
//! below [`MAX_CPUS`] to [`fw_ap_main`] on a stack of their own once the
//! BSP has zeroed `.bss`, and parks the others. An AP waits for the BSP's
//! word: park (every mode but this one) or stress.
//!
//! # The stress run and what "consistent" means
//!
//! The host serves [`STRESS_ITEMS`] files `opt/stress/K` of `32 - 8K`
//! bytes whose byte at offset `O` is `0x80 | K << 5 | O`
//! ([`stress_byte`]): every byte names its item and offset, and no item
//! byte is 0. Each vCPU then runs
//! `ITERATIONS` random operations at once with the others:
//!
//! - port I/O: select an item, read up to 40 bytes one `inb` at a time.
//!   Another vCPU may select (offset back to 0, maybe another item) or read
//!   (offset moves on) between any two of them, so a serial order only
//!   promises that each byte is a byte of some item or 0 (past an end);
//! - DMA SELECT + READ of 40 bytes: one access, which the device runs
//!   whole under its lock (as QEMU runs it under its big lock), so the
//!   bytes must be exactly item `K` from 0, then zeros;
//! - DMA READ of 16 bytes from wherever the device's offset is: a
//!   contiguous run of one item from some offset, then zeros (or all
//!   zeros);
//! - MMIO (when a window is announced; a device of its own): select an
//!   item, one 8-byte data read, which is one access: again a contiguous
//!   run.
//!
//! The DMA address is written as two 32-bit halves, which other vCPUs'
//! halves may interleave with; every descriptor lies below 4 GiB, so every
//! high half is 0 and any interleaving starts the right transfers. Each
//! vCPU has its own descriptor and buffer. Afterwards the BSP alone reads
//! every item through every transport and checks it byte for byte: the
//! device state is valid after the storm.

use core::arch::asm;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use fw_cfg_guest::abi::{
    DMA_CTL_ERROR, DMA_CTL_READ, DMA_CTL_SELECT, KEY_NB_CPUS, MMIO_DATA_OFFSET,
    MMIO_SELECTOR_OFFSET, PIO_DATA_PORT, PIO_DMA_PORT, PIO_SELECTOR_PORT,
};
use fw_cfg_guest::reader::FwCfgReader;
use fw_cfg_guest::transport::PortIo;
use fw_cfg_protocol::{
    Line, SMP_PARAM, STRESS_FILE_PREFIX, STRESS_ITEMS, SmpLine, stress_byte, stress_size,
};

use crate::out::emit;
use crate::serial::inb;

/// vCPUs the firmware runs (the BSP included); APs at or above this
/// index are parked by the boot stub.
pub const MAX_CPUS: u32 = 16;
/// Stack of each AP.
pub const AP_STACK_SIZE: usize = 16 * 1024;
/// Bytes of a port-I/O or select-and-DMA read.
const LONG_READ: usize = 40;
/// Bytes of a DMA read without select.
const SHORT_READ: usize = 16;
/// How long the BSP waits for the APs (`pause` loops), arrival and end.
const WAIT_SPINS: u64 = 1 << 32;

/// The BSP's word to the APs: [`MODE_WAIT`], [`MODE_PARK`], [`MODE_STRESS`].
static MODE: AtomicU32 = AtomicU32::new(MODE_WAIT);
const MODE_WAIT: u32 = 0;
const MODE_PARK: u32 = 1;
const MODE_STRESS: u32 = 2;
/// APs that reached Rust code.
static ARRIVED: AtomicU32 = AtomicU32::new(0);
/// APs that finished their stress operations.
static FINISHED: AtomicU32 = AtomicU32::new(0);
/// The stress run's parameters, set by the BSP before [`MODE_STRESS`].
static ITERATIONS: AtomicU32 = AtomicU32::new(0);
static MMIO_BASE: AtomicU64 = AtomicU64::new(0);
/// `key | size << 16` of each stress item (0: missing).
static ITEMS: [AtomicU32; STRESS_ITEMS] = [const { AtomicU32::new(0) }; STRESS_ITEMS];
/// What the vCPUs counted, summed: [`Counts`] in order.
static COUNTS: [AtomicU64; 7] = [const { AtomicU64::new(0) }; 7];

/// One vCPU's DMA descriptor and buffer.
#[repr(C, align(64))]
struct CpuDma {
    descriptor: [u8; 16],
    data: [u8; 48],
}

/// Every vCPU's DMA area (in `.bss`, zeroed by the BSP before any AP
/// runs Rust code); vCPU `i` only ever touches entry `i`.
static mut DMA: [CpuDma; MAX_CPUS as usize] = [const {
    CpuDma {
        descriptor: [0; 16],
        data: [0; 48],
    }
}; MAX_CPUS as usize];

/// One vCPU's tallies, added to [`COUNTS`] at the end.
#[derive(Default)]
struct Counts {
    pio: u64,
    pio_interleaved: u64,
    dma_select: u64,
    dma: u64,
    mmio: u64,
    inconsistent: u64,
    dma_errors: u64,
}

/// Whether `b` is a byte some stress item holds, or 0.
fn plausible(b: u8) -> bool {
    b == 0 || (b & 0x80 != 0 && usize::from(b & 0x1f) < stress_size(usize::from((b >> 5) & 3)))
}

/// Whether `bytes` is a contiguous run of one stress item from some
/// offset, then zeros (all zeros included).
fn contiguous_run(bytes: &[u8]) -> bool {
    let Some(&first) = bytes.first().filter(|&&b| b != 0) else {
        return bytes.iter().all(|&b| b == 0);
    };
    if !plausible(first) {
        return false;
    }
    let (k, start) = (usize::from((first >> 5) & 3), usize::from(first & 0x1f));
    exact_from(bytes, k, start)
}

/// Whether `bytes` is item `k` from `start`, then zeros.
fn exact_from(bytes: &[u8], k: usize, start: usize) -> bool {
    bytes.iter().enumerate().all(|(i, &b)| {
        let o = start + i;
        b == if o < stress_size(k) {
            stress_byte(k, o)
        } else {
            0
        }
    })
}

/// The iteration count from `fw_cfg_tests.smp=N`, when stress mode is on.
pub fn param(cmdline: &[u8]) -> Option<u32> {
    let word = cmdline
        .split(|&b| b == b' ')
        .find_map(|w| w.strip_prefix(SMP_PARAM.as_bytes()))?;
    crate::pvh::parse_u64(word).map(|n| u32::try_from(n).unwrap_or(u32::MAX))
}

/// Tells the APs to park (every mode but the stress run).
pub fn park_aps() {
    MODE.store(MODE_PARK, Ordering::Release);
}

/// Rust entry of AP `index` (`1..MAX_CPUS`), called by the boot stub on
/// the AP's own stack.
#[unsafe(no_mangle)]
extern "C" fn fw_ap_main(index: u64) -> ! {
    ARRIVED.fetch_add(1, Ordering::AcqRel);
    let mode = loop {
        match MODE.load(Ordering::Acquire) {
            MODE_WAIT => core::hint::spin_loop(),
            m => break m,
        }
    };
    if mode == MODE_STRESS {
        stress(index as usize);
        FINISHED.fetch_add(1, Ordering::AcqRel);
    }
    halt()
}

/// Parks this vCPU: `hlt` with interrupts off (the VMM ends its thread).
fn halt() -> ! {
    loop {
        // SAFETY: `cli; hlt` only stops this vCPU.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) }
    }
}

/// Writes a 16-bit value to an I/O port.
fn outw(port: u16, value: u16) {
    // SAFETY: port I/O to the fw_cfg selector port; no memory effects.
    unsafe { asm!("out dx, ax", in("dx") port, in("ax") value, options(nomem, nostack)) }
}

/// Writes a 32-bit value to a DMA address port. Not `nomem`: the device
/// reads and writes guest memory (the descriptor, the buffer) during the
/// `out`, and the compiler must not keep those bytes in registers across.
fn out_dma(port: u16, value: u32) {
    // SAFETY: the written address is that of this vCPU's own descriptor,
    // whose buffer lies inside its own `CpuDma`; the device writes nothing
    // else.
    unsafe { asm!("out dx, eax", in("dx") port, in("eax") value, options(nostack)) }
}

/// A xorshift generator, seeded per vCPU.
struct Rng(u32);

impl Rng {
    fn next(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }
}

/// `(key, size)` of stress item `k`.
fn item(k: usize) -> (u16, usize) {
    let v = ITEMS[k].load(Ordering::Acquire);
    ((v & 0xffff) as u16, (v >> 16) as usize)
}

/// Selects `key` and reads `buf.len()` bytes by port I/O.
fn pio_read(key: u16, buf: &mut [u8]) {
    outw(PIO_SELECTOR_PORT, key);
    for b in buf.iter_mut() {
        *b = inb(PIO_DATA_PORT);
    }
}

/// Runs one DMA transfer on vCPU `index`'s descriptor into its buffer;
/// returns the control word the device wrote back and the bytes.
fn dma(index: usize, control: u32, len: usize) -> (u32, [u8; 48]) {
    let area = (&raw mut DMA).cast::<CpuDma>().wrapping_add(index);
    // SAFETY: `index` < MAX_CPUS (the stub parks the others), and only
    // vCPU `index` touches entry `index`; the device writes the buffer
    // and the control word during `out_dma` (not `nomem`), so the volatile
    // reads below see what it wrote.
    unsafe {
        let data = &raw mut (*area).data;
        let desc = &raw mut (*area).descriptor;
        let mut d = [0u8; 16];
        d[..4].copy_from_slice(&control.to_be_bytes());
        d[4..8].copy_from_slice(&(len as u32).to_be_bytes());
        d[8..].copy_from_slice(&(data as u64).to_be_bytes());
        desc.write_volatile(d);
        out_dma(PIO_DMA_PORT, 0);
        out_dma(PIO_DMA_PORT + 4, (desc as u32).to_be());
        let back = u32::from_be_bytes(desc.read_volatile()[..4].try_into().unwrap_or([1; 4]));
        (back, data.read_volatile())
    }
}

/// Selects `key` on the MMIO device at `base` and reads 8 data bytes in
/// one access.
fn mmio_read(base: u64, key: u16) -> [u8; 8] {
    let selector = (base + MMIO_SELECTOR_OFFSET) as *mut u16;
    let data = (base + MMIO_DATA_OFFSET) as *const u64;
    // SAFETY: the window was announced for the fw_cfg device, lies in the
    // identity-mapped first 4 GiB, and these are its selector (big-endian
    // 16 bits) and data registers.
    unsafe {
        selector.write_volatile(key.to_be());
        data.read_volatile().to_ne_bytes()
    }
}

/// One random operation of vCPU `index`.
fn operation(index: usize, rng: &mut Rng, c: &mut Counts, mmio: u64) {
    let r = rng.next();
    let k = (r >> 8) as usize % STRESS_ITEMS;
    let (key, _) = item(k);
    let ok = match r % 4 {
        0 => {
            c.pio += 1;
            let mut buf = [0u8; LONG_READ];
            let n = 1 + (r >> 16) as usize % LONG_READ;
            pio_read(key, &mut buf[..n]);
            c.pio_interleaved += u64::from(!exact_from(&buf[..n], k, 0));
            buf[..n].iter().all(|&b| plausible(b))
        }
        1 => {
            c.dma_select += 1;
            let control = (u32::from(key) << 16) | DMA_CTL_SELECT | DMA_CTL_READ;
            let (back, data) = dma(index, control, LONG_READ);
            c.dma_errors += u64::from(back & DMA_CTL_ERROR != 0);
            back == 0 && exact_from(&data[..LONG_READ], k, 0)
        }
        2 => {
            c.dma += 1;
            let (back, data) = dma(index, DMA_CTL_READ, SHORT_READ);
            c.dma_errors += u64::from(back & DMA_CTL_ERROR != 0);
            back == 0 && contiguous_run(&data[..SHORT_READ])
        }
        _ if mmio != 0 => {
            c.mmio += 1;
            contiguous_run(&mmio_read(mmio, key))
        }
        _ => true,
    };
    c.inconsistent += u64::from(!ok);
}

/// vCPU `index`'s share of the stress run.
fn stress(index: usize) {
    let mut rng = Rng((index as u32).wrapping_mul(0x9e37_79b9) | 1);
    let mut c = Counts::default();
    let mmio = MMIO_BASE.load(Ordering::Acquire);
    for _ in 0..ITERATIONS.load(Ordering::Acquire) {
        operation(index, &mut rng, &mut c, mmio);
    }
    let all = [
        c.pio,
        c.pio_interleaved,
        c.dma_select,
        c.dma,
        c.mmio,
        c.inconsistent,
        c.dma_errors,
    ];
    for (total, mine) in COUNTS.iter().zip(all) {
        total.fetch_add(mine, Ordering::AcqRel);
    }
}

/// Finds the stress items and NB_CPUS through the guest reader (port
/// I/O); `None` when the device or an item is missing.
fn find_items() -> Option<u32> {
    // SAFETY: the firmware runs in ring 0 and the fw_cfg ports belong to
    // the fw_cfg device; the APs are not using the device yet.
    let mut reader = FwCfgReader::new(unsafe { PortIo::new() }).ok()?;
    let mut nb = [0u8; 2];
    reader.read_item(KEY_NB_CPUS, &mut nb).ok()?;
    let mut name = [0u8; STRESS_FILE_PREFIX.len() + 1];
    name[..STRESS_FILE_PREFIX.len()].copy_from_slice(STRESS_FILE_PREFIX.as_bytes());
    for (k, slot) in ITEMS.iter().enumerate() {
        name[STRESS_FILE_PREFIX.len()] = b'0' + k as u8;
        let entry = reader
            .find_file(core::str::from_utf8(&name).ok()?)
            .ok()
            .filter(|e| e.size as usize == stress_size(k))?;
        slot.store(
            u32::from(entry.select) | (entry.size << 16),
            Ordering::Release,
        );
    }
    Some(u32::from(u16::from_le_bytes(nb)))
}

/// Spins until `done()` or the bound; returns `done()`.
fn wait_for(done: impl Fn() -> bool) -> bool {
    for _ in 0..WAIT_SPINS {
        if done() {
            return true;
        }
        core::hint::spin_loop();
    }
    done()
}

/// The BSP alone reads every item through every transport.
fn final_check(mmio: u64) -> bool {
    (0..STRESS_ITEMS).all(|k| {
        let (key, _) = item(k);
        let mut buf = [0u8; LONG_READ];
        pio_read(key, &mut buf);
        let control = (u32::from(key) << 16) | DMA_CTL_SELECT | DMA_CTL_READ;
        let (back, data) = dma(0, control, LONG_READ);
        let mmio_ok = mmio == 0 || exact_from(&mmio_read(mmio, key), k, 0);
        exact_from(&buf, k, 0) && back == 0 && exact_from(&data[..LONG_READ], k, 0) && mmio_ok
    })
}

/// The stress run, on the BSP: finds the items, releases the APs, does
/// its own share, waits for theirs, checks the device alone, and prints
/// the `smp` line.
pub fn run(iterations: u32, mmio: Option<(u64, u64)>) {
    let Some(announced) = find_items() else {
        park_aps();
        emit(&Line::Smp(report(0, 1, iterations, false)));
        return;
    };
    let mmio = mmio.map_or(0, |(base, _)| base);
    let aps = announced.clamp(1, MAX_CPUS) - 1;
    let arrived = wait_for(|| ARRIVED.load(Ordering::Acquire) >= aps);
    let cpus = if arrived {
        aps
    } else {
        ARRIVED.load(Ordering::Acquire)
    };
    ITERATIONS.store(iterations, Ordering::Release);
    MMIO_BASE.store(mmio, Ordering::Release);
    MODE.store(MODE_STRESS, Ordering::Release);
    stress(0);
    wait_for(|| FINISHED.load(Ordering::Acquire) >= cpus);
    let finished = FINISHED.load(Ordering::Acquire) + 1;
    let final_ok = final_check(mmio);
    emit(&Line::Smp(report(
        announced, finished, iterations, final_ok,
    )));
}

/// The `smp` line with the counts gathered so far.
fn report(announced: u32, cpus: u32, iterations: u32, final_ok: bool) -> SmpLine {
    let c = |i: usize| COUNTS[i].load(Ordering::Acquire);
    SmpLine {
        announced,
        cpus,
        iterations,
        pio_reads: c(0),
        pio_interleaved: c(1),
        dma_select_reads: c(2),
        dma_reads: c(3),
        mmio_reads: c(4),
        inconsistent: c(5),
        dma_errors: c(6),
        final_ok,
    }
}
