// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The two renderings of a [`Report`]: the `fw-cfg-protocol` document
//! (`--json`) and the table for people.

use std::fmt::Write as _;

use fw_cfg_guest::abi::{ID_DMA, ID_TRADITIONAL};
use fw_cfg_guest::cpuid::{CpuidReport, Vendor};
use fw_cfg_guest::policy::FileState;
use fw_cfg_protocol::probe::{DeviceState, ProbeFile, ProbeFwCfg, ProbeReport, hex};
use fw_cfg_protocol::{CpuidLine, Decisions, ErrorKind, FileLine, HintState};

use crate::{FwCfgProbe, ProbedFile, Report};

/// The report as the protocol's document.
pub fn to_protocol(r: &Report) -> ProbeReport {
    ProbeReport {
        cpuid: CpuidLine::from(&r.cpuid),
        fw_cfg: fw_cfg_doc(r),
        phys_bits_file: FileLine::from(&r.file),
        memory_top: r.memory_top,
        decisions: Decisions::from(&r.decisions),
        modes: Some(r.modes),
        exit_code: r.exit_code(),
    }
}

fn fw_cfg_doc(r: &Report) -> ProbeFwCfg {
    let mut doc = ProbeFwCfg {
        state: DeviceState::Present,
        os_error: None,
        signature: None,
        id: None,
        dma: None,
        sysfs_present: None,
        files: None,
        error: None,
    };
    match &r.fw_cfg {
        FwCfgProbe::NoPermission(e) => {
            doc.state = DeviceState::NoPermission;
            doc.os_error = Some(e.clone());
        }
        FwCfgProbe::Absent(sig) => {
            doc.state = DeviceState::Absent;
            doc.signature = Some(*sig);
        }
        FwCfgProbe::Present { id, files } => {
            doc.id = Some(*id);
            doc.dma = Some(id & ID_DMA != 0);
            doc.sysfs_present = Some(r.sysfs_present);
            match files {
                Ok(files) => doc.files = Some(files.iter().map(file_doc).collect()),
                Err(e) => doc.error = Some(ErrorKind::from(*e)),
            }
        }
    }
    doc
}

fn file_doc(f: &ProbedFile) -> ProbeFile {
    ProbeFile {
        name: f.name.clone(),
        size: f.size,
        select: f.select,
        pio_hex: f.bytes.as_ref().ok().map(|b| hex(b)),
        truncated: f.bytes.is_ok() && f.truncated,
        over_budget: f.bytes.is_ok() && f.over_budget,
        error: f.bytes.as_ref().err().map(|e| ErrorKind::from(*e)),
        sysfs_equal: f.sysfs_equal(),
    }
}

/// Renders the report as JSON (one object, the protocol's
/// [`ProbeReport`]).
pub fn render_json(r: &Report) -> String {
    to_protocol(r).to_json()
}

/// Renders the report as a human-readable table.
pub fn render_table(r: &Report) -> String {
    let mut o = String::new();
    cpuid_section(&mut o, &r.cpuid);
    fw_cfg_section(&mut o, r);
    decisions_section(&mut o, r);
    o
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// `s` safe to print on a terminal: printable ASCII as it is (a backslash
/// doubled), everything else, control characters and escape codes first,
/// as a Rust escape (`\n`, `\u{1b}`), so that a host-supplied string can
/// neither forge table rows nor drive the terminal.
pub fn printable(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            ' '..='~' => o.push(c),
            c => o.extend(c.escape_default()),
        }
    }
    o
}

fn vendor_text(v: &Vendor) -> String {
    match v {
        Vendor::Other(s) => printable(&String::from_utf8_lossy(s)),
        v => v.as_str().to_string(),
    }
}

fn cpuid_section(o: &mut String, c: &CpuidReport) {
    let _ = writeln!(o, "CPUID channel");
    let _ = writeln!(o, "  hypervisor bit        {}", yes(c.hypervisor_present));
    match (c.kvm_base, c.kvm_max_leaf) {
        (Some(b), Some(m)) => {
            let _ = writeln!(o, "  KVM base leaf         {b:#010x} (max leaf {m:#010x})");
        }
        _ => {
            let _ = writeln!(o, "  KVM base leaf         none");
        }
    }
    let _ = write!(o, "  phys-bits hint        {}", HintState::from(c.hint));
    if let Some(edx) = c.kvm_features_edx {
        let _ = write!(o, " (features EDX {edx:#010x})");
    }
    o.push('\n');
    if c.has_address_sizes {
        let _ = writeln!(
            o,
            "  0x80000008 EAX        {:#010x}: phys {}, guest phys {}",
            c.address_sizes_eax, c.phys_bits, c.guest_phys_bits
        );
    } else {
        let _ = writeln!(
            o,
            "  0x80000008            missing (max extended leaf {:#010x})",
            c.max_ext_leaf
        );
    }
    let _ = writeln!(
        o,
        "  vendor                {} (0x80000000: {})   1G pages {}   la57 {}",
        vendor_text(&c.vendor),
        c.ext_vendor
            .as_ref()
            .map_or_else(|| "none".to_string(), vendor_text),
        yes(c.gb_pages),
        yes(c.la57)
    );
}

fn fw_cfg_section(o: &mut String, r: &Report) {
    let _ = writeln!(o, "fw_cfg channel (port I/O)");
    match &r.fw_cfg {
        FwCfgProbe::NoPermission(e) => {
            let _ = writeln!(o, "  not read: ioperm failed: {e}");
        }
        FwCfgProbe::Absent(sig) => {
            let _ = writeln!(o, "  no device (signature {})", hex(sig));
        }
        FwCfgProbe::Present { id, files } => {
            let _ = writeln!(
                o,
                "  device                QEMU, id {id:#x} ({}{})",
                if id & ID_TRADITIONAL != 0 {
                    "traditional"
                } else {
                    "no traditional bit"
                },
                if id & ID_DMA != 0 { ", dma" } else { "" }
            );
            let sysfs = if r.sysfs_present {
                "present"
            } else {
                "absent (qemu_fw_cfg not loaded?)"
            };
            let _ = writeln!(o, "  sysfs cross-check     {sysfs}");
            match files {
                Err(e) => {
                    let _ = writeln!(o, "  directory error: {e}");
                }
                Ok(files) => files_table(o, files),
            }
        }
    }
    let _ = writeln!(o, "  etc/phys-bits-valid   {}", file_state_text(&r.file));
}

fn files_table(o: &mut String, files: &[ProbedFile]) {
    let _ = writeln!(o, "  {:<8}{:>10}  {:<8}name", "select", "size", "sysfs");
    for f in files {
        let s = match (&f.bytes, f.sysfs_equal()) {
            (Err(_), _) => "error",
            (_, Some(true)) => "equal",
            (_, Some(false)) => "DIFFERS",
            (_, None) => "-",
        };
        let note = match (&f.bytes, f.over_budget, f.truncated) {
            (Ok(b), true, _) if b.is_empty() => " (not read: total budget spent)",
            (_, true, _) => " (truncated: total budget spent)",
            (_, false, true) => " (truncated)",
            (_, false, false) => "",
        };
        let _ = writeln!(
            o,
            "  {:<#8x}{:>10}  {:<8}{}{}",
            f.select,
            f.size,
            s,
            printable(&f.name),
            note
        );
    }
}

fn file_state_text(f: &FileState) -> String {
    match f {
        FileState::Absent => "absent".into(),
        FileState::Present(p) => format!(
            "present: version {}, valid {}, phys {}, guest phys {}",
            p.version, p.valid as u8, p.phys_bits, p.guest_phys_bits
        ),
        FileState::Corrupt(e) => format!("corrupt: {e}"),
        FileState::Unreadable(e) => format!("unreadable: {e}"),
    }
}

fn decisions_section(o: &mut String, r: &Report) {
    let _ = writeln!(o, "Decisions");
    let _ = writeln!(o, "  {:<10}{:>5}  {:<22}rule", "mode", "bits", "decided by");
    for d in &r.decisions {
        let _ = writeln!(
            o,
            "  {:<10}{:>5}  {:<22}{}",
            d.mode.as_str(),
            d.phys_bits,
            d.decided_by.as_str(),
            d.rule
        );
    }
    let conflicts: Vec<&str> = r.decisions[0]
        .conflicts
        .iter()
        .map(|c| c.as_str())
        .collect();
    let _ = writeln!(
        o,
        "Conflicts: {}",
        if conflicts.is_empty() {
            "none".to_string()
        } else {
            conflicts.join(", ")
        }
    );
    let _ = writeln!(o, "Exit code: {}", r.exit_code());
}
