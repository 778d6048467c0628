// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The project's PVH test firmware under QEMU and under the mini VMM, with
//! the same configuration, side by side.
//!
//! A [`PeerConfig`] is one phys-bits configuration written both ways: as
//! QEMU options (`-cpu host,-arch-capabilities,host-phys-bits=...`,
//! `phys-bits=`, `host-phys-bits-limit=`, `guest-phys-bits=`, and
//! `-fw_cfg name=etc/phys-bits-valid,file=...` with the bytes the mini VMM
//! would serve) and as the mini VMM's [`FwCfgSetup`]. Both VMMs boot the
//! same firmware ELF; [`compare`] lists every difference in what the
//! reader saw (CPUID widths and vendor, the file through each transport,
//! a bulk file's size and byte sum) and decided (each policy mode).
//!
//! QEMU has no way to set the proposed hint bit (KVM features leaf EDX bit
//! 1), so configurations with the hint on run under the mini VMM only and
//! their row says "not expressible in QEMU". QEMU's x86 machines have no
//! fw_cfg MMIO window either: the `mmio` and `mmio-dma` transports are the
//! mini VMM's alone and are not compared.
//!
//! Measured on the project's machines (QEMU 10.0, nested KVM engine, host
//! MAXPHYADDR 48): under `-M microvm -accel kvm`, QEMU puts the host's
//! width in CPUID whatever `host-phys-bits=off` and `phys-bits=N` say (the
//! guest sees 48); `host-phys-bits=on,host-phys-bits-limit=N` does lower it.
//! Under `-M pc`, `host-phys-bits=off` gives QEMU's legacy 40 bits and
//! `phys-bits=N` gives N. The matrix therefore expresses "advertise N
//! bits" as `host-phys-bits-limit=N` on microvm and as `phys-bits=N` on pc.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use fw_cfg_device::abi::PHYS_BITS_FILE_NAME;
use serde::Serialize;

use super::qemu::{Qemu, QemuOutput};
use fw_cfg_protocol::{BulkLine, DecisionLine, Transport};

use crate::firmware::{self, BULK_FILE_NAME, FirmwareReport};
use crate::matrix::{self, FileCase};
use crate::vmm::fw_cfg::{FwCfgSetup, PhysBitsSetup};

/// Text of rows QEMU cannot run.
pub const NOT_EXPRESSIBLE: &str = "not expressible in QEMU";
/// Transports both VMMs offer on x86.
pub const SHARED_TRANSPORTS: [Transport; 3] =
    [Transport::Pio, Transport::PioString, Transport::Dma];
/// Size of the bulk file both VMMs serve.
pub const BULK_SIZE: usize = 4096;

/// QEMU machine type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum QemuMachine {
    /// `-M microvm` (qboot, no PCI, no ACPI by default).
    Microvm,
    /// `-M pc` (SeaBIOS, i440FX, ACPI).
    Pc,
}

impl QemuMachine {
    /// The `-M` value.
    pub fn as_str(&self) -> &'static str {
        match self {
            QemuMachine::Microvm => "microvm",
            QemuMachine::Pc => "pc",
        }
    }
}

/// The physical address width advertised in CPUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Width {
    /// The host's width (`host-phys-bits=on`).
    Host,
    /// `N` bits: `phys-bits=N` on pc, `host-phys-bits-limit=N` on microvm.
    Bits(u8),
    /// QEMU's legacy default, 40 bits (`host-phys-bits=off`; pc only).
    Legacy,
}

/// One configuration, for both VMMs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PeerConfig {
    /// QEMU machine type.
    pub machine: QemuMachine,
    /// Advertised width.
    pub width: Width,
    /// CPUID 0x80000008 EAX\[23:16\] (`guest-phys-bits=`).
    pub guest_phys_bits: Option<u8>,
    /// The hint bit (mini VMM only).
    pub hint: bool,
    /// The `etc/phys-bits-valid` file.
    pub file: FileCase,
}

impl PeerConfig {
    /// A microvm configuration without the hint.
    pub const fn microvm(width: Width, file: FileCase) -> Self {
        PeerConfig {
            machine: QemuMachine::Microvm,
            width,
            guest_phys_bits: None,
            hint: false,
            file,
        }
    }

    /// The same on `-M pc`.
    pub const fn on_pc(mut self) -> Self {
        self.machine = QemuMachine::Pc;
        self
    }

    /// With a guest-physical width.
    pub const fn with_guest_phys_bits(mut self, bits: u8) -> Self {
        self.guest_phys_bits = Some(bits);
        self
    }

    /// With the hint bit on.
    pub const fn with_hint(mut self) -> Self {
        self.hint = true;
        self
    }

    /// A short label.
    pub fn label(&self) -> String {
        let width = match self.width {
            Width::Host => "host".to_string(),
            Width::Bits(n) => n.to_string(),
            Width::Legacy => "legacy".to_string(),
        };
        let mut s = format!("{} width={width}", self.machine.as_str());
        if let Some(g) = self.guest_phys_bits {
            let _ = write!(s, " gpb={g}");
        }
        let _ = write!(
            s,
            " hint={} file={}",
            if self.hint { "on" } else { "off" },
            self.file.as_str()
        );
        s
    }

    /// The mini VMM's phys-bits setup for a host of `host` bits.
    pub fn phys_bits_setup(&self, host: u8) -> PhysBitsSetup {
        let (host_phys_bits, phys_bits) = match self.width {
            Width::Host => (true, None),
            Width::Bits(n) => (false, Some(n.min(host))),
            Width::Legacy => (false, None),
        };
        PhysBitsSetup {
            host_phys_bits,
            phys_bits,
            guest_phys_bits: self.guest_phys_bits,
            hint: self.hint,
            file: self.file == FileCase::Stated,
            host_override: Some(host.into()),
        }
    }

    /// The bytes of `etc/phys-bits-valid` both VMMs serve (`None`: no
    /// file): what `PhysBitsConfig` renders, or the malformed and
    /// conflicting statements of [`FileCase`].
    pub fn file_bytes(&self, host: u8) -> Option<Vec<u8>> {
        self.file
            .file_bytes(&self.phys_bits_setup(host).config(host))
    }

    /// The mini VMM's fw_cfg setup: the phys-bits channels plus the bulk
    /// file.
    pub fn vmm_setup(&self, host: u8) -> FwCfgSetup {
        let mut raw_files = vec![(BULK_FILE_NAME.to_string(), bulk_contents())];
        if self.file.is_raw() {
            let bytes = self.file_bytes(host).expect("a file case with bytes");
            raw_files.push((PHYS_BITS_FILE_NAME.to_string(), bytes));
        }
        FwCfgSetup {
            raw_files,
            phys_bits: self.phys_bits_setup(host),
            ..FwCfgSetup::default()
        }
    }

    /// QEMU's `-cpu` value, or why QEMU cannot express this configuration.
    pub fn qemu_cpu(&self) -> Result<String, String> {
        if self.hint {
            return Err(format!(
                "{NOT_EXPRESSIBLE}: the hint bit (KVM features leaf EDX bit 1)"
            ));
        }
        let mut cpu = "host,-arch-capabilities".to_string();
        match (self.width, self.machine) {
            (Width::Host, _) => cpu.push_str(",host-phys-bits=on"),
            (Width::Bits(n), QemuMachine::Microvm) => {
                let _ = write!(cpu, ",host-phys-bits=on,host-phys-bits-limit={n}");
            }
            (Width::Bits(n), QemuMachine::Pc) => {
                let _ = write!(cpu, ",host-phys-bits=off,phys-bits={n}");
            }
            (Width::Legacy, QemuMachine::Pc) => cpu.push_str(",host-phys-bits=off"),
            (Width::Legacy, QemuMachine::Microvm) => {
                return Err(format!(
                    "{NOT_EXPRESSIBLE}: microvm advertises the host width even with \
                     host-phys-bits=off"
                ));
            }
        }
        if let Some(g) = self.guest_phys_bits {
            let _ = write!(cpu, ",guest-phys-bits={g}");
        }
        Ok(cpu)
    }
}

/// The bulk file's bytes.
pub fn bulk_contents() -> Vec<u8> {
    (0..BULK_SIZE).map(|i| (i * 7 + i / 256) as u8).collect()
}

/// The default matrix: every configuration QEMU can express on microvm
/// and pc, and the hint configurations it cannot.
pub fn default_matrix() -> Vec<PeerConfig> {
    use FileCase::*;
    use Width::*;
    let mut v = Vec::new();
    for file in FileCase::ALL {
        v.push(PeerConfig::microvm(Host, file));
    }
    v.push(PeerConfig::microvm(Host, Stated).with_guest_phys_bits(40));
    v.push(PeerConfig::microvm(Bits(39), Stated));
    v.push(PeerConfig::microvm(Bits(39), Absent));
    v.push(PeerConfig::microvm(Bits(39), Stated).on_pc());
    v.push(PeerConfig::microvm(Legacy, Stated).on_pc());
    v.push(PeerConfig::microvm(Legacy, Absent).on_pc());
    v.push(PeerConfig::microvm(Host, Stated).with_hint());
    v.push(PeerConfig::microvm(Host, Absent).with_hint());
    v
}

/// One VMM's run of one configuration.
#[derive(Debug, Clone, Serialize)]
pub struct PeerRun {
    /// What the firmware printed.
    pub report: FirmwareReport,
    /// Wall time, boot to exit.
    pub seconds: f64,
}

/// One row of the side-by-side comparison.
#[derive(Debug, Clone, Serialize)]
pub struct PeerRow {
    /// The configuration.
    pub config: PeerConfig,
    /// [`PeerConfig::label`].
    pub label: String,
    /// Host MAXPHYADDR.
    pub host_phys_bits: u8,
    /// QEMU's `-M` and `-cpu` (empty when not expressible).
    pub qemu_options: String,
    /// The QEMU run: `Err` holds "not expressible in QEMU: ..." or why the
    /// run failed.
    pub qemu: Result<PeerRun, String>,
    /// The mini VMM run, or why it failed.
    pub vmm: Result<PeerRun, String>,
    /// Every difference between the two (empty when both ran and agree).
    pub differences: Vec<String>,
}

impl PeerRow {
    /// Whether QEMU could not express the configuration.
    pub fn not_expressible(&self) -> bool {
        matches!(&self.qemu, Err(e) if e.starts_with(NOT_EXPRESSIBLE))
    }
}

/// The arguments that boot `firmware` under QEMU for `config`.
pub fn qemu_args(
    config: &PeerConfig,
    firmware: &std::path::Path,
    file: Option<&std::path::Path>,
    bulk: &std::path::Path,
) -> Result<Vec<String>, String> {
    let cpu = config.qemu_cpu()?;
    let mut args = super::qemu::firmware_base_args(config.machine.as_str());
    args.extend([
        "-cpu".to_string(),
        cpu,
        "-m".into(),
        "128".into(),
        "-kernel".into(),
    ]);
    args.push(firmware.display().to_string());
    args.push("-fw_cfg".into());
    args.push(format!("name={BULK_FILE_NAME},file={}", bulk.display()));
    if let Some(f) = file {
        args.push("-fw_cfg".into());
        args.push(format!("name={PHYS_BITS_FILE_NAME},file={}", f.display()));
    }
    Ok(args)
}

fn run_qemu(
    qemu: &Qemu,
    config: &PeerConfig,
    host: u8,
    timeout: Duration,
) -> Result<PeerRun, String> {
    let dir = super::linux::scratch_dir("fw").map_err(|e| e.to_string())?;
    let bulk = dir.join("bulk");
    std::fs::write(&bulk, bulk_contents()).map_err(|e| e.to_string())?;
    let file = match config.file_bytes(host) {
        Some(b) => {
            let p = dir.join("phys-bits-valid");
            std::fs::write(&p, b).map_err(|e| e.to_string())?;
            Some(p)
        }
        None => None,
    };
    let args = qemu_args(config, &firmware::path(), file.as_deref(), &bulk)?;
    let out: QemuOutput = qemu.run(&args, timeout).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&dir);
    let report = FirmwareReport::parse(&out.stdout);
    // isa-debug-exit: QEMU exits with (value << 1) | 1; the firmware writes 0.
    if !report.done || out.code() != Some(1) {
        return Err(format!(
            "the firmware did not finish under QEMU:\n{}",
            out.describe(3000)
        ));
    }
    Ok(PeerRun {
        report,
        seconds: out.elapsed.as_secs_f64(),
    })
}

fn run_vmm(config: &PeerConfig, host: u8, timeout: Duration) -> Result<PeerRun, String> {
    let start = Instant::now();
    let run = matrix::run_firmware(config.vmm_setup(host), timeout).map_err(|e| e.to_string())?;
    Ok(PeerRun {
        report: run.report,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Adds `what: QEMU a, mini VMM b` to `d` when the two values differ.
fn diff<T: PartialEq + std::fmt::Debug>(d: &mut Vec<String>, what: &str, qemu: &T, vmm: &T) {
    if qemu != vmm {
        d.push(format!("{what}: QEMU {qemu:?}, mini VMM {vmm:?}"));
    }
}

/// Lists every difference in what the firmware read and decided under
/// QEMU and under the mini VMM: the CPUID channel (widths, vendor, 1 GiB
/// pages, hint state, decisions), the file through each shared transport
/// (availability, DMA use, state, bytes, decisions) and the bulk reads.
/// The values are compared as values; only a difference is formatted.
pub fn compare(qemu: &FirmwareReport, vmm: &FirmwareReport) -> Vec<String> {
    let mut d = Vec::new();
    match (qemu.result(Transport::Cpuid), vmm.result(Transport::Cpuid)) {
        (Some(q), Some(v)) => {
            match (&q.cpuid, &v.cpuid) {
                (Some(qc), Some(vc)) => {
                    diff(&mut d, "cpuid phys_bits", &qc.phys_bits, &vc.phys_bits);
                    let what = "cpuid guest_phys_bits";
                    diff(&mut d, what, &qc.guest_phys_bits, &vc.guest_phys_bits);
                    diff(&mut d, "cpuid vendor", &qc.vendor, &vc.vendor);
                    diff(&mut d, "cpuid ext_vendor", &qc.ext_vendor, &vc.ext_vendor);
                    diff(&mut d, "cpuid gb_pages", &qc.gb_pages, &vc.gb_pages);
                    diff(&mut d, "cpuid hint", &qc.hint, &vc.hint);
                }
                _ => d.push("cpuid: report missing".into()),
            }
            diff(&mut d, "cpuid decisions", &q.decisions, &v.decisions);
        }
        _ => d.push("cpuid result line missing".into()),
    }
    let bulk = |b: &BulkLine| (b.size, b.read, b.sum, b.error);
    for t in SHARED_TRANSPORTS {
        let name = t.as_str();
        let (Some(q), Some(v)) = (qemu.result(t), vmm.result(t)) else {
            d.push(format!("{name}: result line missing"));
            continue;
        };
        diff(
            &mut d,
            &format!("{name} available"),
            &q.available,
            &v.available,
        );
        diff(&mut d, &format!("{name} id"), &q.id, &v.id);
        diff(&mut d, &format!("{name} dma"), &q.dma, &v.dma);
        diff(&mut d, &format!("{name} file"), &q.file, &v.file);
        diff(
            &mut d,
            &format!("{name} decisions"),
            &q.decisions,
            &v.decisions,
        );
        match (qemu.bulk.get(&t), vmm.bulk.get(&t)) {
            (Some(qb), Some(vb)) => diff(&mut d, &format!("{name} bulk"), &bulk(qb), &bulk(vb)),
            (a, b) => diff(
                &mut d,
                &format!("{name} bulk line"),
                &a.is_some(),
                &b.is_some(),
            ),
        }
    }
    d
}

/// Runs `configs` under QEMU (when expressible) and under the mini VMM,
/// one after the other, and compares them. `qemu` is `None` when QEMU is
/// missing: every row then says so in its QEMU column.
pub fn run_peer_matrix(
    qemu: Option<&Qemu>,
    configs: &[PeerConfig],
    timeout: Duration,
) -> Vec<PeerRow> {
    let host = matrix::host_phys_bits();
    configs
        .iter()
        .map(|config| {
            let qemu_options = config
                .qemu_cpu()
                .map(|cpu| format!("-M {} -cpu {cpu}", config.machine.as_str()))
                .unwrap_or_default();
            let qemu_run = match (qemu, config.qemu_cpu()) {
                (_, Err(e)) => Err(e),
                (None, Ok(_)) => Err("qemu-system-x86_64 is missing".to_string()),
                (Some(q), Ok(_)) => run_qemu(q, config, host, timeout),
            };
            let vmm = run_vmm(config, host, timeout);
            let differences = match (&qemu_run, &vmm) {
                (Ok(q), Ok(v)) => compare(&q.report, &v.report),
                _ => Vec::new(),
            };
            PeerRow {
                config: *config,
                label: config.label(),
                host_phys_bits: host,
                qemu_options,
                qemu: qemu_run,
                vmm,
                differences,
            }
        })
        .collect()
}

fn short_decision(r: &FirmwareReport) -> String {
    let Some(d) = r.result(Transport::Pio).and_then(|l| l.decisions.as_ref()) else {
        return "-".into();
    };
    let by = crate::table::by;
    let one = |l: &DecisionLine| {
        format!(
            "{}{}{}",
            l.phys_bits,
            by(l.decided_by),
            if l.conflicts.is_empty() { "" } else { "!" }
        )
    };
    format!(
        "{} {} {}",
        one(&d.strict),
        one(&d.heuristic),
        one(&d.combined)
    )
}

fn cpuid_said(r: &FirmwareReport) -> String {
    match r.result(Transport::Cpuid).and_then(|l| l.cpuid.as_ref()) {
        Some(c) => format!("{}/{} {}", c.phys_bits, c.guest_phys_bits, c.hint.as_str()),
        None => "-".into(),
    }
}

/// Renders rows as a table: per configuration, what CPUID said (phys /
/// guest-phys width and hint state) and the decisions (strict, heuristic,
/// combined; width and who decided, `!` when conflicts were listed) under
/// QEMU and under the mini VMM, both wall times, and the verdict.
pub fn render_peer_table(rows: &[PeerRow]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<48} {:<16} {:<22} {:<16} {:<22} {:>6} {:>6}  verdict",
        "configuration", "QEMU cpuid", "QEMU s/h/c", "VMM cpuid", "VMM s/h/c", "QEMU s", "VMM s"
    );
    for r in rows {
        let (qc, qd, qs) = match &r.qemu {
            Ok(q) => (
                cpuid_said(&q.report),
                short_decision(&q.report),
                format!("{:.2}", q.seconds),
            ),
            Err(_) => ("-".into(), "-".into(), "-".into()),
        };
        let (vc, vd, vs) = match &r.vmm {
            Ok(v) => (
                cpuid_said(&v.report),
                short_decision(&v.report),
                format!("{:.2}", v.seconds),
            ),
            Err(_) => ("-".into(), "-".into(), "-".into()),
        };
        let verdict = match (&r.qemu, &r.vmm) {
            (_, Err(e)) => format!("mini VMM failed: {}", e.lines().next().unwrap_or("")),
            (Err(e), _) => e.lines().next().unwrap_or("").to_string(),
            (Ok(_), Ok(_)) if r.differences.is_empty() => "same bytes and decisions".into(),
            (Ok(_), Ok(_)) => format!("DIFFERENT: {}", r.differences.join("; ")),
        };
        let _ = writeln!(
            o,
            "{:<48} {:<16} {:<22} {:<16} {:<22} {:>6} {:>6}  {}",
            r.label, qc, qd, vc, vd, qs, vs, verdict
        );
    }
    if let Some(r) = rows.iter().find(|r| !r.qemu_options.is_empty()) {
        let _ = writeln!(
            o,
            "\nQEMU options per row: e.g. {} (microvm expresses N bits as \
             host-phys-bits-limit=N; pc as phys-bits=N)",
            r.qemu_options
        );
    }
    let _ = writeln!(
        o,
        "Compared: CPUID widths, vendor, 1G pages, hint state; etc/phys-bits-valid and a \
         {BULK_SIZE}-byte file through pio, pio-string and dma; every policy decision. \
         QEMU's x86 machines have no fw_cfg MMIO window."
    );
    o
}

/// What `compare --peers` prints: the default matrix under QEMU (when
/// installed; otherwise every QEMU column says it is missing) and the mini
/// VMM, as a table. `Err` carries the same table when a configuration
/// differs between the two or a run failed.
pub fn peer_report(timeout: Duration) -> Result<String, String> {
    let qemu = Qemu::find();
    let mut text = match &qemu {
        Ok(q) => format!(
            "QEMU {} ({}) vs the mini VMM, same firmware\n",
            q.version_string(),
            q.path.display()
        ),
        Err(m) => format!("{m}: mini VMM only\n"),
    };
    let rows = run_peer_matrix(qemu.as_ref().ok(), &default_matrix(), timeout);
    text.push_str(&render_peer_table(&rows));
    let failed = rows.iter().any(|r| {
        !r.differences.is_empty()
            || r.vmm.is_err()
            || (qemu.is_ok() && r.qemu.is_err() && !r.not_expressible())
    });
    if failed { Err(text) } else { Ok(text) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_options_per_configuration() {
        use FileCase::*;
        use Width::*;
        assert_eq!(
            PeerConfig::microvm(Host, Stated).qemu_cpu().unwrap(),
            "host,-arch-capabilities,host-phys-bits=on"
        );
        assert_eq!(
            PeerConfig::microvm(Bits(39), Absent).qemu_cpu().unwrap(),
            "host,-arch-capabilities,host-phys-bits=on,host-phys-bits-limit=39"
        );
        assert_eq!(
            PeerConfig::microvm(Bits(39), Absent)
                .on_pc()
                .with_guest_phys_bits(37)
                .qemu_cpu()
                .unwrap(),
            "host,-arch-capabilities,host-phys-bits=off,phys-bits=39,guest-phys-bits=37"
        );
        let hint = PeerConfig::microvm(Host, Stated).with_hint();
        assert!(hint.qemu_cpu().unwrap_err().starts_with(NOT_EXPRESSIBLE));
        assert!(
            PeerConfig::microvm(Legacy, Stated)
                .qemu_cpu()
                .unwrap_err()
                .starts_with(NOT_EXPRESSIBLE)
        );
    }

    #[test]
    fn both_vmms_get_the_same_file_bytes() {
        use FileCase::*;
        let c = PeerConfig::microvm(Width::Bits(39), Stated);
        assert_eq!(c.file_bytes(48).unwrap(), vec![2, 1, 39, 0, 48, 0, 0, 0]);
        let s = c.vmm_setup(48);
        assert!(s.phys_bits.file);
        assert_eq!(
            s.phys_bits.config(48).file_bytes().to_vec(),
            c.file_bytes(48).unwrap()
        );
        let legacy = PeerConfig::microvm(Width::Legacy, Stated).on_pc();
        assert_eq!(
            legacy.file_bytes(48).unwrap(),
            vec![2, 1, 40, 0, 48, 0, 0, 0]
        );
        let corrupt = PeerConfig::microvm(Width::Host, Corrupt);
        assert_eq!(
            corrupt.file_bytes(48).unwrap(),
            vec![1, 2, 48, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            corrupt.vmm_setup(48).raw_files[1],
            (
                PHYS_BITS_FILE_NAME.to_string(),
                vec![1, 2, 48, 0, 0, 0, 0, 0]
            )
        );
        assert_eq!(
            PeerConfig::microvm(Width::Host, Absent).file_bytes(48),
            None
        );
        assert_eq!(bulk_contents().len(), BULK_SIZE);
    }

    #[test]
    fn comparison_lists_differences() {
        let out = br#"{"event":"result","phase":2,"channel":"cpuid","transport":"cpuid","cpuid":{"hypervisor_present":true,"kvm_base":1073741824,"kvm_max_leaf":1073741825,"kvm_features_edx":0,"hint":"clear","max_ext_leaf":2147483656,"has_address_sizes":true,"address_sizes_eax":12336,"phys_bits":48,"guest_phys_bits":0,"vendor":"amd","ext_vendor":"amd","gb_pages":false,"la57":false}}
{"event":"done"}"#;
        let a = FirmwareReport::parse(out);
        let b = FirmwareReport::parse(
            &String::from_utf8_lossy(out)
                .replace(":48,", ":39,")
                .into_bytes(),
        );
        let d = compare(&a, &b);
        assert!(
            d.contains(&"cpuid phys_bits: QEMU 48, mini VMM 39".to_string()),
            "{d:?}"
        );
        assert!(d.iter().any(|s| s == "pio: result line missing"));
        let other = FirmwareReport::parse(
            &String::from_utf8_lossy(out)
                .replace(r#""vendor":"amd""#, r#""vendor":"other""#)
                .into_bytes(),
        );
        assert!(
            compare(&a, &other).contains(&"cpuid vendor: QEMU Amd, mini VMM Other".to_string())
        );
        assert!(
            compare(&a, &a)
                .iter()
                .all(|s| s.ends_with("result line missing"))
        );
    }

    #[test]
    fn default_matrix_labels_are_distinct() {
        let m = default_matrix();
        let labels: std::collections::BTreeSet<String> = m.iter().map(|c| c.label()).collect();
        assert_eq!(labels.len(), m.len());
        assert!(m.iter().any(|c| c.qemu_cpu().is_err()));
    }
}
