// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! Every access of 1 to 8 bytes at every offset of both register windows
//! (x86 ports and MMIO), DMA on and off, read and write, against the model
//! of QEMU's memory core in `fuzz/qemu_model.rs` (shared with the fuzz
//! target `access_split`, which drives random sequences of such accesses).

#[allow(dead_code)]
#[path = "../fuzz/qemu_model.rs"]
mod qemu_model;

use qemu_model::{Log, device, memory, memory_bytes, model, regions, window};

#[test]
fn every_odd_access_splits_as_qemu_splits_it() {
    // Written bytes that make the DMA halves point at the descriptor (a
    // transfer then shows in the log and in guest memory) and the selector
    // writes select something.
    const WRITE: [u8; 8] = [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00];
    let mut cases = 0;
    let mut differ = Vec::new();
    for mmio in [false, true] {
        for dma in [false, true] {
            let regions = regions(mmio, dma);
            let (window, unassigned) = window(mmio);
            for is_write in [false, true] {
                for offset in 0..window {
                    for width in 1..=8usize {
                        cases += 1;
                        let (ma, mb) = (memory(), memory());
                        let (la, lb) = (Log::default(), Log::default());
                        let mut a = device(&ma, dma, la.clone());
                        let mut b = device(&mb, dma, lb.clone());
                        let ops = model(&regions, unassigned, offset, &WRITE[..width], is_write);
                        let expected = qemu_model::apply(&mut b, &ops);
                        let mut got = vec![0u8; width];
                        match (mmio, is_write) {
                            (false, false) => a.pio_read(offset as u16, &mut got),
                            (false, true) => a.pio_write(offset as u16, &WRITE[..width]),
                            (true, false) => a.mmio_read(offset, &mut got),
                            (true, true) => a.mmio_write(offset, &WRITE[..width]),
                        }
                        if is_write {
                            got.clear();
                        }
                        let same = got == expected
                            && a.state() == b.state()
                            && la.events() == lb.events()
                            && memory_bytes(&ma) == memory_bytes(&mb);
                        if !same {
                            differ.push(format!(
                                "{} dma {dma} {} +{offset:#x} x{width}: got {got:?} {:?}, QEMU {expected:?} {:?} ({ops:?})",
                                if mmio { "mmio" } else { "pio" },
                                if is_write { "write" } else { "read" },
                                a.state(),
                                b.state()
                            ));
                        }
                    }
                }
            }
        }
    }
    assert_eq!(cases, 1152);
    assert!(
        differ.is_empty(),
        "{} of {cases} differ:\n{}",
        differ.len(),
        differ.join("\n")
    );
}
