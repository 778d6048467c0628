// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The whole configuration matrix, each configuration booted as a KVM guest
//! running the test firmware under the mini VMM.

mod common;

use fw_cfg_device::phys_bits::HostAddressSizes;
use fw_cfg_protocol::{DecisionLine, Phase, Transport};
use fw_cfg_tests::inproc::run_in_process;
use fw_cfg_tests::matrix::{self, DEFAULT_TIMEOUT, FileCase, Scenario};

/// What strict and combined must decide: `(width, decided_by, rule)`,
/// and whether both channels are silent (combined = the heuristic then).
/// `W` is the effective width (the guest width caps the advertised one);
/// a fallback is 36 (the firmware passes no memory map top), never above
/// `W`; an invalid file states the width the host backs, which is used.
fn expected(s: &Scenario, host: HostAddressSizes) -> ((u8, &'static str, &'static str), bool) {
    let config = s.phys_bits_config(host);
    let (w, valid) = (config.width(), config.valid());
    let hint_set = s.hint && valid;
    let fallback = 36.min(w);
    let strict = match s.file {
        FileCase::Corrupt | FileCase::Conflicting => {
            (fallback, "conservative-default", "distrusted")
        }
        FileCase::Stated if !valid => (config.backed_bits().min(w), "fw-cfg-file", "backed-width"),
        FileCase::Stated if hint_set => (w, "both-channels", "explicit-valid"),
        FileCase::Stated => (w, "fw-cfg-file", "explicit-valid"),
        FileCase::Absent if hint_set => (w, "cpuid-hint", "explicit-valid"),
        FileCase::Absent => (fallback, "conservative-default", "no-information"),
    };
    let silent = s.file == FileCase::Absent && !hint_set;
    (strict, silent)
}

fn check(d: &DecisionLine, want: (u8, &str, &str), what: &str) {
    assert_eq!(
        (d.phys_bits, d.decided_by.as_str(), d.rule.as_str()),
        want,
        "{what}"
    );
}

#[test]
fn every_configuration_decides_as_the_policy_says_with_transport_exact_exits() {
    if !common::require_kvm() {
        return;
    }
    let host = matrix::host_address_sizes();
    for s in Scenario::all() {
        let label = s.label();
        let o =
            matrix::run_kvm(&s, host, DEFAULT_TIMEOUT).unwrap_or_else(|e| panic!("{label}: {e}"));
        let r = &o.report.results;
        assert!(o.report.done && o.report.panic.is_none(), "{label}");
        // Every line the firmware printed went through the one parser.
        assert_eq!(o.report.other_lines, 0, "{label}: lines that do not parse");

        // The CPUID channel says what PhysBitsConfig put there.
        let cpuid = &r[&Transport::Cpuid];
        let c = cpuid.cpuid.as_ref().unwrap();
        assert_eq!(c.phys_bits, o.advertised_phys_bits, "{label}");
        // KVM's guest width, as QEMU would pass it on.
        let guest_phys_bits = s.phys_bits_config(host).guest_phys_bits();
        assert_eq!(c.guest_phys_bits, guest_phys_bits, "{label}");
        // The firmware read the top of the PVH memory map the VMM wrote:
        // the end of the highest RAM range.
        let layout = |mib: u64| fw_cfg_tests::vmm::layout::ram_ranges(mib << 20);
        let ram_top = layout(fw_cfg_tests::vmm::layout::DEFAULT_MEMORY_MIB)
            .iter()
            .map(|(start, len)| start + len)
            .max();
        assert_eq!(cpuid.memory_top, ram_top, "{label}: memory map top");
        let hint_set = s.hint && o.config_valid;
        assert_eq!(
            c.hint.as_str(),
            if hint_set { "set" } else { "clear" },
            "{label}"
        );

        let (strict, silent) = expected(&s, host);
        for t in Transport::FW_CFG {
            let line = &r[&t];
            let what = format!("{label} via {}", t.as_str());
            assert!(line.available, "{what}");
            // What the file channel said.
            let f = line.file.as_ref().unwrap();
            match s.file {
                FileCase::Absent => assert_eq!(f.state.as_str(), "absent", "{what}"),
                FileCase::Stated => {
                    assert_eq!(f.state.as_str(), "present", "{what}");
                    assert_eq!(f.valid, Some(o.config_valid), "{what}");
                    assert_eq!(f.phys_bits, Some(o.advertised_phys_bits), "{what}");
                    assert_eq!(f.guest_phys_bits, Some(guest_phys_bits), "{what}");
                    let backed = s.phys_bits_config(host).backed_bits();
                    assert_eq!(f.backed_bits, Some(backed), "{what}");
                }
                FileCase::Corrupt => {
                    assert_eq!(f.state.as_str(), "corrupt", "{what}");
                    assert_eq!(
                        f.error.map(|e| e.as_str()),
                        Some("bad-valid-flag"),
                        "{what}"
                    );
                }
                FileCase::Conflicting => {
                    assert_eq!(f.state.as_str(), "present", "{what}");
                    assert_ne!(f.phys_bits, Some(o.advertised_phys_bits), "{what}");
                }
            }
            // Decisions: the policy table, and exactly what the host
            // computes from the same inputs.
            let d = line.decisions.as_ref().unwrap();
            check(&d.strict, strict, &format!("{what} strict"));
            if silent {
                assert_eq!(d.combined, d.heuristic, "{what} combined");
            } else {
                check(&d.combined, strict, &format!("{what} combined"));
            }
            assert_eq!(d, &common::host_decisions(cpuid, line), "{what}");
            let conflicted = matches!(s.file, FileCase::Corrupt | FileCase::Conflicting);
            assert_eq!(
                !d.strict.conflicts.is_empty(),
                conflicted || (s.file == FileCase::Stated && o.config_valid && !s.hint),
                "{what}"
            );
        }

        // Exits: CPUID never leaves the kernel; port I/O, DMA and MMIO
        // cost exactly the device accesses the reader makes (the in-process
        // run counts them one by one).
        assert_eq!(
            o.stats.phase(Phase::Lookup(Transport::Cpuid).id()).total(),
            0,
            "{label}"
        );
        let inproc = run_in_process(&s, host).unwrap();
        for t in ["pio", "dma", "mmio", "mmio-dma"] {
            let phase = Phase::Lookup(Transport::from_name(t).unwrap()).id();
            assert_eq!(
                o.stats.phase(phase).total(),
                inproc.stats.phase(phase).total(),
                "{label}: {t} exits"
            );
        }
        let phase = |t| {
            o.stats
                .phase(Phase::Lookup(Transport::from_name(t).unwrap()).id())
        };
        // DMA, exactly: the DMA register's signature (two 32-bit `in`, or
        // one 64-bit MMIO read), which is the DMA evidence (the ID is read
        // after the decision), the count and the directory by one
        // transfer, the file (when there is one) by one; every transfer
        // one exit.
        let file_read = u64::from(s.file != FileCase::Absent);
        assert_eq!(phase("dma").total(), 2 + 1 + file_read, "{label}");
        assert_eq!(phase("dma").io_in, 2, "{label}");
        assert_eq!(phase("mmio-dma").total(), 1 + 1 + file_read, "{label}");
        // `rep insb`: a select and one string read per item (signature,
        // ID, the count with up to 15 entries, the file), each string
        // within KVM's 1024-byte batch and one page.
        assert_eq!(
            phase("pio-string").total(),
            2 + 2 + 2 + 2 * file_read,
            "{label}"
        );
        assert_eq!(phase("pio").mmio(), 0, "{label}");
        assert_eq!(phase("mmio").pio(), 0, "{label}");
        assert!(phase("dma").total() < phase("pio").total(), "{label}");
        assert!(phase("mmio-dma").total() < phase("mmio").total(), "{label}");
        assert!(
            phase("pio-string").total() <= phase("pio").total(),
            "{label}"
        );
        // The baseline is exactly its 16 null exits.
        assert_eq!(o.stats.phase(Phase::Baseline.id()).io_in, 16, "{label}");
    }
}
