// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The situations table's `migrate-to-39` row across real KVM hosts, in
//! the nested lab (`fw_cfg_tests::lab::migration`), with the row's flags
//! and no host override. On a 48-bit host, `fw-cfg-vmm` saves the guest
//! mid-way through the firmware's first fw_cfg phase (after its CPUID
//! decision) and stops with status 32; a restore of that snapshot on the
//! same host finishes with the decisions of an uninterrupted run. The
//! snapshot then goes to a 39-bit host, where the migration guard refuses
//! it (status 2, one line naming the narrower host), and to a 52-bit
//! host, where the file would change under the guest (other items): both
//! as the in-process simulation of the same moves says.
//!
//! The three outer boots run in turn (the snapshot flows from the first).
//! Without QEMU, the kernel, its modules, busybox or this machine's
//! `/dev/kvm` (which counts the phase's accesses) this test fails, unless
//! `FW_CFG_ALLOW_SKIP=1` is set.

use fw_cfg_protocol::Transport;
use fw_cfg_tests::lab::LabPeers;
use fw_cfg_tests::lab::build::LabTools;
use fw_cfg_tests::lab::migration::{self, ERROR_STATUS};
use fw_cfg_tests::lab::situations::Reading;
use fw_cfg_tests::peers::{kvm_device, require};
use fw_cfg_tests::situations::{self, LabLimit, MigrationResult, Situation};

/// The source (48 bits), the row's destination (39) and a wider host.
const DESTINATIONS: [u8; 2] = [39, 52];

#[test]
fn migrate_to_39_moves_between_real_hosts_and_is_refused() {
    let (Some(peers), Some(())) = (require(LabPeers::find()), require(kvm_device())) else {
        return;
    };
    let tools = LabTools::build(false).unwrap_or_else(|e| panic!("{e}"));
    let row = Situation::named("migrate-to-39").expect("the row");
    assert_eq!(row.lab_host_bits(), Err(LabLimit::Migration));
    let m = migration::run(&peers, &tools, &row, &DESTINATIONS).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{m:#?}");

    // The source: a real 48-bit host, stopped inside the port-I/O lookup.
    assert_eq!(m.source_bits, 48);
    assert_eq!(m.lab_lookup_accesses, m.lookup_accesses);
    assert!(0 < m.after_accesses && m.after_accesses < m.lab_lookup_accesses);
    assert_eq!(m.before_snapshot, [Transport::Cpuid], "stopped after CPUID");
    assert!(
        !m.after_restore.contains(&Transport::Cpuid),
        "resumed, not rebooted"
    );
    assert_eq!(m.after_restore.first(), Some(&Transport::Pio));
    assert!(m.differing.is_empty(), "{:?}", m.differing);
    assert_eq!(m.resumed, m.reference);
    let outcome = situations::run(&row).unwrap();
    assert_eq!(Some(m.reference), Reading::simulated(&outcome));
    assert_eq!(m.reference.cpuid, (48, 0), "the inner KVM host is 48 bits");

    // The destinations, each as the simulation of the same move.
    assert_eq!(m.destinations.len(), DESTINATIONS.len());
    for d in &m.destinations {
        let sim = migration::simulated(&row, d.host_bits).unwrap().unwrap();
        assert_eq!((m.vouched, d.result), (sim.vouched, sim.result), "{d:?}");
        assert_eq!(d.status, ERROR_STATUS, "{d:?}");
        assert_eq!(d.stderr.lines().count(), 1, "{d:?}");
    }
    let row_move = outcome.migration.expect("a migration row");
    let to_39 = &m.destinations[0];
    assert_eq!(to_39.host_bits, row_move.destination_backed);
    assert_eq!(
        (m.vouched, to_39.result),
        (48, MigrationResult::NarrowerHost)
    );
    assert_eq!(to_39.result, row_move.result);
    assert!(
        to_39.stderr.contains("this host backs only 39"),
        "{to_39:?}"
    );
    assert_eq!(m.destinations[1].result, MigrationResult::OtherItems);
}
