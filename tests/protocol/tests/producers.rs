// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Every line kind through the no-alloc writer and back through the one
//! parser; the writer's bytes equal `serde_json`'s; and lines built from
//! the guest reader's values (what the producers do) parse back to the
//! same values.

use fw_cfg_guest::abi::{PhysBitsFile, PhysBitsFileError};
use fw_cfg_guest::cpuid::{CpuidReport, Vendor as GuestVendor};
use fw_cfg_guest::policy::{ChannelInputs, FileState, decide_all};
use fw_cfg_guest::reader::ReadError;
use fw_cfg_guest::transport::TransportError;
use fw_cfg_protocol::modes::ModeAnswers;
use fw_cfg_protocol::{
    BaselineLine, BenchLine, BenchName, BootLine, BulkLine, Bytes, Conflict, CpuidLine, DecidedBy,
    Decisions, ErrorKind, FileLine, FileStateKind, FirmwareReport, HashLine, HintState, Line, Name,
    PanicLine, ParseError, Phase, ResultLine, Rule, Transport, Vendor, line_to_string, parse_line,
};

fn cpuid_report(hint: fw_cfg_guest::cpuid::HintState) -> CpuidReport {
    CpuidReport {
        hypervisor_present: true,
        kvm_base: Some(0x4000_0000),
        kvm_max_leaf: Some(0x4000_0001),
        kvm_features_edx: Some(2),
        hint,
        max_ext_leaf: 0x8000_0008,
        has_address_sizes: true,
        address_sizes_eax: 0x3027,
        phys_bits: 39,
        guest_phys_bits: 0,
        vendor: GuestVendor::Other(*b"HygonGenuine"),
        ext_vendor: Some(GuestVendor::Intel),
        gb_pages: true,
        la57: false,
        sev_c_bit: None,
        tdx: false,
    }
}

fn result_line(file: FileState) -> ResultLine {
    let cpuid = cpuid_report(fw_cfg_guest::cpuid::HintState::Set);
    let mut l = ResultLine::new(Transport::MmioDma);
    l.cycles = Some(1234);
    l.id = Some(3);
    l.dma = true;
    let mut f = FileLine::from(&file);
    f.size = Some(8);
    f.bytes = Bytes::new(&PhysBitsFile::new(false, 40, 0).to_bytes());
    l.file = Some(f);
    let inputs = ChannelInputs::new(&cpuid, file);
    l.decisions = Some(Decisions::from(&decide_all(&inputs)));
    let seabios = fw_cfg_guest::peers::SeabiosCpu::from_report(&cpuid);
    l.modes = Some(ModeAnswers::compute(&inputs, &seabios, &mut []));
    l
}

fn every_line() -> Vec<Line> {
    let mut bench = BenchLine::new(BenchName::new("read/opt/bench/dma/1m"));
    bench.phase = Some(Phase::Bench(3));
    bench.ops = 1;
    bench.cycles = 99;
    bench.size = Some(1 << 20);
    bench.read = Some(1 << 20);
    bench.check = Some(77);
    bench.bytes = Some(Bytes::new(&[1, 2]));
    bench.error = Some(ErrorKind::NoArea);
    let mut unavailable = BenchLine::new(BenchName::new("mmio/decision"));
    unavailable.available = false;
    let mut cpuid = ResultLine::new(Transport::Cpuid);
    cpuid.cpuid = Some(CpuidLine::from(&cpuid_report(
        fw_cfg_guest::cpuid::HintState::NoKvmLeaf,
    )));
    let mut unavailable_result = ResultLine::new(Transport::Mmio);
    unavailable_result.available = false;
    unavailable_result.device_error = Some(ReadError::NoSignature { found: [0; 4] }.into());
    vec![
        Line::Boot(BootLine {
            firmware: Name::new("fw-cfg-test-firmware"),
            version: Name::new("0.1.0"),
            start_info: 0x6000,
            cmdline: Name::from_bytes(b"qemu_fw_cfg.mmio=0x10@0xfeb00000 \"x\"\\\x01"),
            mmio_base: Some(0xfeb0_0000),
        }),
        Line::Baseline(BaselineLine {
            phase: Phase::Baseline,
            exits: 16,
            cycles: 500,
            value: 0xff,
        }),
        Line::Result(cpuid),
        Line::Result(unavailable_result),
        Line::Result(result_line(FileState::Present(PhysBitsFile::new(
            false, 40, 0,
        )))),
        Line::Result(result_line(FileState::Corrupt(
            PhysBitsFileError::ReservedNotZero,
        ))),
        Line::Result(result_line(FileState::Unreadable(ReadError::Transport(
            TransportError::DmaPoisoned,
        )))),
        Line::Bulk(BulkLine {
            phase: Phase::Bulk(Transport::Dma),
            size: 65536,
            read: 65536,
            sum: u64::MAX,
            cycles: 1,
            error: Some(ErrorKind::DmaTimeout),
        }),
        Line::Bench(bench),
        Line::Bench(unavailable),
        Line::Hash(HashLine {
            transport: Transport::PioString,
            size: 1 << 20,
            read: 1 << 20,
            crc32: u32::MAX,
            error: None,
        }),
        Line::Hash(HashLine {
            transport: Transport::Dma,
            size: 0,
            read: 0,
            crc32: 0,
            error: Some(ErrorKind::NoArea),
        }),
        Line::Done,
        Line::Panic(PanicLine {
            message: Name::new("index out of bounds"),
            file: Some(Name::new("src/main.rs")),
            line: Some(42),
        }),
    ]
}

#[test]
fn every_line_kind_round_trips() {
    let lines = every_line();
    let kinds: std::collections::HashSet<_> = lines.iter().map(std::mem::discriminant).collect();
    assert_eq!(kinds.len(), 8, "every line kind");
    for line in lines {
        let text = line_to_string(&line).unwrap();
        assert!(text.ends_with("}\n") && !text[..text.len() - 1].contains('\n'));
        assert_eq!(text.trim_end(), serde_json::to_string(&line).unwrap());
        assert_eq!(parse_line(&text).unwrap(), line, "{text}");
        // After foreign text on the same line, too.
        assert_eq!(parse_line(&format!("SeaBIOS..{text}")).unwrap(), line);
    }
}

#[test]
fn values_have_one_kebab_case_spelling() {
    let text = line_to_string(&every_line()[4]).unwrap();
    for want in [
        r#""event":"result""#,
        r#""phase":7"#,
        r#""channel":"fw_cfg""#,
        r#""transport":"mmio-dma""#,
        r#""state":"present""#,
        r#""decided_by":"conservative-default""#,
        r#""rule":"distrusted""#,
        r#""conflicts":["file-phys-bits-differs-from-cpuid","hint-set-but-file-invalid"]"#,
        r#""decided_by":"heuristic","rule":"heuristic-valid""#,
    ] {
        assert!(text.contains(want), "{want} in {text}");
    }
    let cpuid = line_to_string(&every_line()[2]).unwrap();
    assert!(
        cpuid.contains(r#""vendor":"other","ext_vendor":"intel""#),
        "{cpuid}"
    );
    assert!(cpuid.contains(r#""hint":"no-kvm-leaf""#), "{cpuid}");
    let corrupt = line_to_string(&every_line()[5]).unwrap();
    assert!(corrupt.contains(r#""state":"corrupt","error":"reserved-not-zero""#));
    let unreadable = line_to_string(&every_line()[6]).unwrap();
    assert!(unreadable.contains(r#""state":"unreadable","error":"dma-poisoned""#));
}

#[test]
fn decisions_survive_the_wire() {
    let Line::Result(l) = every_line()[4] else {
        unreachable!()
    };
    let d = l.decisions.unwrap();
    assert_eq!(d.strict.decided_by, DecidedBy::ConservativeDefault);
    assert_eq!(d.strict.rule, Rule::Distrusted);
    assert_eq!(d.heuristic.rule, Rule::HeuristicValid);
    assert_eq!(
        d.strict.conflicts.iter().collect::<Vec<_>>(),
        [
            Conflict::FilePhysBitsDiffersFromCpuid,
            Conflict::HintSetButFileInvalid
        ]
    );
    let file = l.file.unwrap();
    assert_eq!(file.state, FileStateKind::Present);
    // The host rebuilds the guest's state from the bytes and decides the
    // same.
    let state = file.state_from_bytes().unwrap();
    let cpuid = CpuidLine::from(&cpuid_report(fw_cfg_guest::cpuid::HintState::Set));
    assert_eq!(cpuid.hint, HintState::Set);
    assert_eq!(cpuid.vendor, Vendor::Other);
    assert_eq!(Decisions::from(&decide_all(&cpuid.inputs(state))), d);
}

#[test]
fn the_parser_refuses_what_no_producer_writes() {
    for bad in [
        r#"{"event":"nope"}"#,
        r#"{"event":"result","phase":99,"channel":"fw_cfg","transport":"pio"}"#,
        r#"{"event":"result","phase":3,"channel":"fw_cfg","transport":"PIO"}"#,
        r#"{"event":"bulk","phase":10,"size":1,"read":1,"sum":1,"cycles":1,"error":"Dma error"}"#,
        r#"{"event":"bench","name":"x","bytes":[1,2,3,4,5,6,7,8,9]}"#,
    ] {
        assert!(matches!(parse_line(bad), Err(ParseError::Json(_))), "{bad}");
    }
    assert!(matches!(
        parse_line("plain text"),
        Err(ParseError::NotALine)
    ));
    let long = format!(r#"{{"event":"bench","name":"{}"}}"#, "x".repeat(81));
    assert!(parse_line(&long).is_err());
}

#[test]
fn the_report_collects_lines_by_kind() {
    let mut serial = b"SeaBIOS\n\n".to_vec();
    for line in every_line() {
        serial.extend_from_slice(line_to_string(&line).unwrap().as_bytes());
    }
    serial.extend_from_slice(b"{\"event\":\"garbage\"}\n");
    let r = FirmwareReport::parse(&serial);
    assert!(r.done);
    assert_eq!(r.other_lines, 2);
    assert_eq!(r.mmio_base(), Some(0xfeb0_0000));
    assert_eq!(r.baseline, Some((500, 16)));
    assert_eq!(r.results.len(), 3);
    assert!(!r.result(Transport::Mmio).unwrap().available);
    assert_eq!(r.bulk[&Transport::Dma].sum, u64::MAX);
    assert_eq!(r.bench.len(), 2);
    assert_eq!(r.panic.unwrap().line, Some(42));
}
