// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! A minimal MC146818 CMOS RTC at ports 0x70 (index) and 0x71 (data), as
//! QEMU's `microvm` gives its firmware (`rtc=on`, its default).
//!
//! It offers what SeaBIOS and Linux read: the time of day from the host's
//! clock (UTC, in BCD or binary as status register B asks, always 24-hour),
//! status register A with the update-in-progress bit clear, status register
//! D with the valid-RAM bit set, and the memory-size bytes QEMU's
//! `microvm_set_rtc` (hw/i386/microvm.c) writes: base memory (0x15/0x16),
//! extended memory (0x17/0x18, 0x30/0x31), memory between 16 MiB and 4 GiB
//! in 64 KiB units (0x34/0x35) and above 4 GiB (0x5b..0x5d). SeaBIOS reads
//! the sizes only when fw_cfg has no `etc/e820`. No alarm, periodic or
//! update interrupts; writes to the other bytes are kept as NVRAM.

use std::time::{SystemTime, UNIX_EPOCH};

use vm_device::MutDevicePio;
use vm_device::bus::{PioAddress, PioAddressOffset};

/// The index port.
pub const CMOS_PORT: u16 = 0x70;
/// Index and data port.
pub const CMOS_PORT_SIZE: u16 = 2;
/// Status register A: divider 32.768 kHz, rate 1024 Hz, no update in
/// progress (what SeaBIOS's `rtc_setup` writes).
pub const STATUS_A: u8 = 0x26;
/// Status register B at reset: 24-hour mode, BCD.
pub const STATUS_B: u8 = 0x02;
/// Status register B's data-mode bit: binary instead of BCD.
pub const STATUS_B_BINARY: u8 = 0x04;
/// Status register D: RAM and time valid.
pub const STATUS_D: u8 = 0x80;

/// The time-of-day registers and the century byte.
const SECONDS: u8 = 0x00;
const MINUTES: u8 = 0x02;
const HOURS: u8 = 0x04;
const WEEKDAY: u8 = 0x06;
const DAY: u8 = 0x07;
const MONTH: u8 = 0x08;
const YEAR: u8 = 0x09;
const REG_A: u8 = 0x0a;
const REG_B: u8 = 0x0b;
const REG_C: u8 = 0x0c;
const REG_D: u8 = 0x0d;
const CENTURY: u8 = 0x32;

/// The CMOS device.
#[derive(Debug, Clone)]
pub struct Cmos {
    index: u8,
    nvram: [u8; 128],
}

/// A UTC calendar time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CivilTime {
    /// Full year.
    pub year: u32,
    /// 1..=12.
    pub month: u8,
    /// 1..=31.
    pub day: u8,
    /// 1 (Sunday) ..= 7.
    pub weekday: u8,
    /// 0..=23.
    pub hour: u8,
    /// 0..=59.
    pub minute: u8,
    /// 0..=59.
    pub second: u8,
}

impl CivilTime {
    /// The calendar time `secs` seconds after the Unix epoch (proleptic
    /// Gregorian calendar, days-from-civil inverted).
    pub fn from_unix(secs: u64) -> CivilTime {
        let days = secs / 86_400;
        let rem = secs % 86_400;
        // 1970-01-01 was a Thursday (weekday 5 counting Sunday as 1).
        let weekday = ((days + 4) % 7) as u8 + 1;
        let z = days + 719_468;
        let era = z / 146_097;
        let doe = z % 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + u64::from(month <= 2)) as u32;
        CivilTime {
            year,
            month,
            day,
            weekday,
            hour: (rem / 3600) as u8,
            minute: (rem / 60 % 60) as u8,
            second: (rem % 60) as u8,
        }
    }

    /// Now, from the host's clock.
    pub fn now() -> CivilTime {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        CivilTime::from_unix(secs)
    }
}

fn bcd(v: u8) -> u8 {
    ((v / 10) << 4) | (v % 10)
}

impl Cmos {
    /// A CMOS for a guest with `below_4g` bytes of RAM under 4 GiB and
    /// `above_4g` above, with QEMU microvm's memory-size bytes.
    pub fn new(below_4g: u64, above_4g: u64) -> Cmos {
        let mut nvram = [0u8; 128];
        let mut set16 = |at: usize, v: u64| {
            let v = v.min(0xffff);
            nvram[at] = v as u8;
            nvram[at + 1] = (v >> 8) as u8;
        };
        set16(0x15, (below_4g >> 10).min(640));
        let ext = below_4g.saturating_sub(1 << 20) >> 10;
        set16(0x17, ext);
        set16(0x30, ext);
        set16(0x34, below_4g.saturating_sub(16 << 20) >> 16);
        let high = above_4g >> 16;
        nvram[0x5b] = high as u8;
        nvram[0x5c] = (high >> 8) as u8;
        nvram[0x5d] = (high >> 16) as u8;
        nvram[usize::from(REG_A)] = STATUS_A;
        nvram[usize::from(REG_B)] = STATUS_B;
        Cmos { index: 0, nvram }
    }

    /// Register `index` as the guest reads it at time `t`.
    pub fn read_at(&self, index: u8, t: &CivilTime) -> u8 {
        let binary = self.nvram[usize::from(REG_B)] & STATUS_B_BINARY != 0;
        let enc = |v: u8| if binary { v } else { bcd(v) };
        match index {
            SECONDS => enc(t.second),
            MINUTES => enc(t.minute),
            HOURS => enc(t.hour),
            WEEKDAY => enc(t.weekday),
            DAY => enc(t.day),
            MONTH => enc(t.month),
            YEAR => enc((t.year % 100) as u8),
            CENTURY => enc((t.year / 100 % 100) as u8),
            // Never an update in progress.
            REG_A => self.nvram[usize::from(REG_A)] & 0x7f,
            REG_C => 0,
            REG_D => STATUS_D,
            i => self.nvram[usize::from(i & 0x7f)],
        }
    }

    /// A write of `value` to register `index`: the time registers, C and D
    /// are read-only here; status register B keeps its data-mode bit and
    /// stays in 24-hour mode.
    pub fn write(&mut self, index: u8, value: u8) {
        match index {
            SECONDS | MINUTES | HOURS | WEEKDAY | DAY | MONTH | YEAR | CENTURY | REG_C | REG_D => {}
            REG_B => self.nvram[usize::from(REG_B)] = value | STATUS_B,
            i => self.nvram[usize::from(i & 0x7f)] = value,
        }
    }
}

impl MutDevicePio for Cmos {
    fn pio_read(&mut self, _base: PioAddress, offset: PioAddressOffset, data: &mut [u8]) {
        let value = match offset {
            1 => self.read_at(self.index, &CivilTime::now()),
            _ => 0xff,
        };
        data.fill(value);
    }

    fn pio_write(&mut self, _base: PioAddress, offset: PioAddressOffset, data: &[u8]) {
        let Some(&value) = data.first() else {
            return;
        };
        match offset {
            // Bit 7 of the index port masks NMIs; the index is 7 bits.
            0 => self.index = value & 0x7f,
            _ => {
                let index = self.index;
                self.write(index, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_time_from_unix() {
        let epoch = CivilTime::from_unix(0);
        assert_eq!(
            (epoch.year, epoch.month, epoch.day, epoch.weekday),
            (1970, 1, 1, 5)
        );
        // 2024-02-29 12:34:56 UTC, a Thursday.
        let t = CivilTime::from_unix(1_709_210_096);
        assert_eq!(
            t,
            CivilTime {
                year: 2024,
                month: 2,
                day: 29,
                weekday: 5,
                hour: 12,
                minute: 34,
                second: 56
            }
        );
        // 2000-03-01 00:00:00, a Wednesday.
        let t = CivilTime::from_unix(951_868_800);
        assert_eq!((t.year, t.month, t.day, t.weekday), (2000, 3, 1, 4));
    }

    #[test]
    fn memory_bytes_are_microvms() {
        let word = |c: &Cmos, at: u8| {
            let t = CivilTime::from_unix(0);
            u32::from(c.read_at(at, &t)) | (u32::from(c.read_at(at + 1, &t)) << 8)
        };
        let c = Cmos::new(32 << 20, 0);
        assert_eq!(word(&c, 0x15), 640);
        assert_eq!(word(&c, 0x17), 31 * 1024);
        assert_eq!(word(&c, 0x30), 31 * 1024);
        assert_eq!(word(&c, 0x34), (16 << 20) / (64 << 10));
        // Extended memory saturates at 0xffff KiB.
        let c = Cmos::new(256 << 20, 0);
        assert_eq!(word(&c, 0x17), 0xffff);
        assert_eq!(word(&c, 0x34), (240 << 20) / (64 << 10));
        let big = Cmos::new(3 << 30, 5 << 30);
        let t = CivilTime::from_unix(0);
        assert_eq!(big.read_at(0x17, &t), 0xff);
        assert_eq!(big.read_at(0x18, &t), 0xff);
        let high = (5u64 << 30) >> 16;
        assert_eq!(big.read_at(0x5b, &t), high as u8);
        assert_eq!(big.read_at(0x5c, &t), (high >> 8) as u8);
        assert_eq!(big.read_at(0x5d, &t), (high >> 16) as u8);
    }

    #[test]
    fn time_in_bcd_then_binary_through_the_ports() {
        let t = CivilTime::from_unix(1_709_210_096);
        let mut c = Cmos::new(64 << 20, 0);
        assert_eq!(c.read_at(HOURS, &t), 0x12);
        assert_eq!(c.read_at(SECONDS, &t), 0x56);
        assert_eq!(c.read_at(YEAR, &t), 0x24);
        assert_eq!(c.read_at(CENTURY, &t), 0x20);
        assert_eq!(c.read_at(REG_A, &t) & 0x80, 0);
        assert_eq!(c.read_at(REG_D, &t), STATUS_D);
        let base = PioAddress(CMOS_PORT);
        // Index with the NMI-mask bit, then switch B to binary.
        c.pio_write(base, 0, &[0x80 | REG_B]);
        c.pio_write(base, 1, &[STATUS_B_BINARY]);
        assert_eq!(c.read_at(SECONDS, &t), 56);
        assert_eq!(c.read_at(REG_B, &t), STATUS_B_BINARY | STATUS_B);
        // Time registers are not writable; NVRAM is.
        c.write(SECONDS, 0);
        assert_eq!(c.read_at(SECONDS, &t), 56);
        c.pio_write(base, 0, &[0x40]);
        c.pio_write(base, 1, &[0xab]);
        let mut v = [0u8];
        c.pio_read(base, 1, &mut v);
        assert_eq!(v, [0xab]);
    }
}
