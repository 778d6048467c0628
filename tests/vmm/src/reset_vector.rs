// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! The real-mode reset vector of a Linux guest booted without firmware:
//! a 9-byte stub at [`RESET_VECTOR`] (`F000:FFF0`) that writes
//! [`RESET_VALUE`] to the ACPI reset register, so that a guest jumping
//! there resets the machine as a PC BIOS would, and the VMM ends the run
//! with [`crate::RESET_EXIT_STATUS`].
//!
//! Why Linux jumps there: on a hardware-reduced ACPI platform, Linux's
//! `reboot_init()` (arch/x86/kernel/reboot.c, 6.1) picks the EFI reboot
//! method unless the command line names one (`efi_reboot_required()` is
//! true whenever `acpi_gbl_reduced_hardware` is set, and only an explicit
//! `efi=noruntime` counts as "runtime disabled"). Without EFI,
//! `efi_reboot()` returns at once and the next method is `BOOT_BIOS`:
//! `machine_real_restart()` drops to real mode and jumps to `F000:FFF0`,
//! the ACPI reset register never tried. Under QEMU microvm that is the
//! firmware's reset entry; under this VMM it used to be zeroed RAM, which
//! the vCPU executed (`add [bx+si], al`, no exits) until the timeout. Any
//! `reboot=` parameter skips the EFI choice (`reboot_default` is cleared),
//! which is why `reboot=f` worked.
//!
//! ```
//! use fw_cfg_vmm::devices::{AcpiPower, PowerRequest};
//! use fw_cfg_vmm::layout::ACPI_POWER_PORT;
//! use fw_cfg_vmm::reset_vector::{RESET_PORT, stub};
//!
//! let code = stub();
//! // mov dx, RESET_PORT; mov al, RESET_VALUE; out dx, al; 1: hlt; jmp 1b
//! assert_eq!(code[0], 0xba);
//! assert_eq!(u16::from_le_bytes([code[1], code[2]]), RESET_PORT);
//! let request = AcpiPower::decode(RESET_PORT - ACPI_POWER_PORT, code[4]);
//! assert_eq!(request, Some(PowerRequest::Reset));
//! ```

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::Error;
use crate::acpi::{ACPI_START, AcpiTables};
use crate::devices::RESET_VALUE;
use crate::layout::{ACPI_POWER_PORT, HIMEM_START};

/// Guest-physical address of the real-mode reset vector, `F000:FFF0`
/// (where `machine_real_restart()` jumps).
pub const RESET_VECTOR: u64 = 0xf_fff0;

/// The ACPI reset register's port (the FADT's `RESET_REG`).
pub const RESET_PORT: u16 = ACPI_POWER_PORT + 2;

/// The stub's length.
pub const STUB_LEN: usize = 9;

// The stub ends below the kernel, loaded at 1 MiB.
const _: () = assert!(RESET_VECTOR + STUB_LEN as u64 <= HIMEM_START);

/// The stub, 16-bit code: `mov dx, RESET_PORT; mov al, RESET_VALUE;
/// out dx, al; 1: hlt; jmp 1b` (the `hlt` loop is never reached: the
/// write ends the run).
pub fn stub() -> [u8; STUB_LEN] {
    let [lo, hi] = RESET_PORT.to_le_bytes();
    [0xba, lo, hi, 0xb0, RESET_VALUE, 0xee, 0xf4, 0xeb, 0xfd]
}

/// Writes [`stub`] at [`RESET_VECTOR`] in `memory`, checking that the
/// ACPI tables (in the same reserved area, from [`ACPI_START`]) end
/// below it.
pub fn write(memory: &GuestMemoryMmap, acpi: &AcpiTables) -> Result<(), Error> {
    let acpi_end = acpi.end();
    if acpi_end > RESET_VECTOR {
        return Err(Error::AcpiTooBig(acpi_end - ACPI_START));
    }
    memory
        .write_slice(&stub(), GuestAddress(RESET_VECTOR))
        .map_err(|source| Error::GuestWrite {
            addr: RESET_VECTOR,
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acpi::{AcpiConfig, AcpiTable, build};

    #[test]
    fn the_stub_lands_at_the_reset_vector_after_the_tables() {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 2 << 20)]).unwrap();
        let acpi = build(&AcpiConfig {
            fw_cfg_pio: Some(true),
            fw_cfg_mmio: None,
        })
        .unwrap();
        write(&mem, &acpi).unwrap();
        let mut got = [0u8; STUB_LEN];
        mem.read_slice(&mut got, GuestAddress(RESET_VECTOR))
            .unwrap();
        assert_eq!(got, stub());
        // The FADT's reset register is the port the stub writes.
        let fadt = &acpi.get(b"FACP").unwrap().bytes;
        // RESET_REG (a generic address) at 116: the address at +4.
        let addr = u64::from_le_bytes(fadt[120..128].try_into().unwrap());
        assert_eq!(addr, u64::from(RESET_PORT));
        assert_eq!(fadt[128], stub()[4]);
    }

    #[test]
    fn tables_reaching_the_vector_are_refused() {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 2 << 20)]).unwrap();
        let big = AcpiTables {
            tables: vec![AcpiTable {
                signature: *b"DSDT",
                addr: ACPI_START,
                bytes: vec![0; (RESET_VECTOR - ACPI_START + 1) as usize],
            }],
        };
        assert!(matches!(write(&mem, &big), Err(Error::AcpiTooBig(_))));
        let mut got = [0u8; STUB_LEN];
        mem.read_slice(&mut got, GuestAddress(RESET_VECTOR))
            .unwrap();
        assert_eq!(got, [0; STUB_LEN]);
    }
}
