// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! PVH entry: a 32-bit stub that switches to 64-bit long mode at once.
//!
//! The PVH boot protocol enters at the address in the
//! `XEN_ELFNOTE_PHYS32_ENTRY` note in 32-bit protected mode, paging off,
//! flat segments, with `%ebx` holding the guest-physical address of the
//! `hvm_start_info` structure. The stub
//!
//! 1. loads CR3 with statically built page tables that identity-map the
//!    first 4 GiB with 2 MiB pages (so RAM, the fw_cfg MMIO window and the
//!    DMA buffers are all at physical == virtual addresses),
//! 2. sets CR4.PAE (plus OSFXSR/OSXMMEXCPT, since compiled Rust may use
//!    SSE), EFER.LME, then CR0.PG,
//! 3. loads a GDT with a 64-bit code and a flat data descriptor and far-jumps
//!    into 64-bit code,
//! 4. zeroes `.bss`, sets up the stack and calls `fw_main(start_info)`.
//!
//! An application processor (the mini VMM's AP contract: `%ebx` = 0,
//! `%edi` = its vCPU index) runs steps 1 to 3 too, then waits until the
//! BSP has zeroed `.bss` and calls `fw_ap_main(index)` on a stack of its
//! own ([`crate::smp`]); one at or above [`MAX_CPUS`] halts at once.
//!
//! Nothing here loops with paging off: the page tables are assembled into
//! `.data`, because some nested KVM engines emulate non-paged code slowly.

use core::arch::global_asm;

use crate::smp::{AP_STACK_SIZE, MAX_CPUS};

/// Size of the firmware stack.
pub const STACK_SIZE: usize = 64 * 1024;

global_asm!(
    // The PVH note: namesz 4 ("Xen\0"), descsz 4, type 18
    // (XEN_ELFNOTE_PHYS32_ENTRY), then the 32-bit entry address.
    ".pushsection .note.Xen, \"a\", @note",
    ".balign 4",
    ".long 4",
    ".long 4",
    ".long 18",
    ".asciz \"Xen\"",
    ".balign 4",
    ".long pvh_start32",
    ".balign 4",
    ".popsection",
    //
    // Identity map of the first 4 GiB: PML4[0] -> PDPT, PDPT[0..4] -> four
    // page directories of 512 2 MiB pages each (present, writable, PS).
    ".pushsection .data.page_tables, \"aw\"",
    ".balign 4096",
    "pvh_pml4:",
    ".quad pvh_pdpt + 0x3",
    ".fill 511, 8, 0",
    "pvh_pdpt:",
    ".quad pvh_pd + 0x3",
    ".quad pvh_pd + 0x1003",
    ".quad pvh_pd + 0x2003",
    ".quad pvh_pd + 0x3003",
    ".fill 508, 8, 0",
    "pvh_pd:",
    ".set pvh_page, 0",
    ".rept 2048",
    ".quad (pvh_page << 21) | 0x83",
    ".set pvh_page, pvh_page + 1",
    ".endr",
    // GDT: null, 64-bit code (selector 0x08), flat data (selector 0x10).
    ".balign 16",
    "pvh_gdt:",
    ".quad 0",
    ".quad 0x00af9a000000ffff",
    ".quad 0x00cf92000000ffff",
    "pvh_gdt_end:",
    ".balign 4",
    "pvh_gdt_ptr:",
    ".word pvh_gdt_end - pvh_gdt - 1",
    ".long pvh_gdt",
    // Set by the BSP once `.bss` is zeroed: APs may run Rust code. In
    // `.data`, which the loader fills, not `.bss`, which the BSP zeroes.
    ".balign 4",
    "pvh_ap_release:",
    ".long 0",
    ".popsection",
    //
    ".pushsection .stack, \"aw\", @nobits",
    ".balign 16",
    "pvh_stack_bottom:",
    ".skip {stack_size}",
    "pvh_stack_top:",
    // AP i (1..MAX_CPUS) runs on pvh_ap_stacks + i * AP_STACK_SIZE.
    ".balign 16",
    "pvh_ap_stacks:",
    ".skip {ap_stack_size} * ({max_cpus} - 1)",
    ".popsection",
    //
    ".pushsection .text.pvh_entry, \"ax\"",
    ".code32",
    ".globl pvh_start32",
    "pvh_start32:",
    "cli",
    "cld",
    "movl %ebx, %esi",
    "movl %edi, %ebp", // the vCPU index of an AP
    "movl $pvh_pml4, %eax",
    "movl %eax, %cr3",
    "movl %cr4, %eax",
    "orl $0x620, %eax", // PAE | OSFXSR | OSXMMEXCPT
    "movl %eax, %cr4",
    "movl $0xc0000080, %ecx", // EFER
    "rdmsr",
    "orl $0x100, %eax", // LME
    "wrmsr",
    "movl %cr0, %eax",
    "andl $0xfffffffb, %eax", // clear EM
    "orl $0x80000003, %eax",  // PG | MP | PE
    "movl %eax, %cr0",
    "lgdt pvh_gdt_ptr",
    "ljmp $0x08, $pvh_start64",
    ".code64",
    "pvh_start64:",
    "movw $0x10, %ax",
    "movw %ax, %ds",
    "movw %ax, %es",
    "movw %ax, %ss",
    "movw %ax, %fs",
    "movw %ax, %gs",
    "testl %esi, %esi",
    "jz pvh_ap64",
    "movq $pvh_stack_top, %rsp",
    // Zero .bss (rep stosb: one instruction, however the engine runs it).
    "movq $__bss_start, %rdi",
    "movq $__bss_end, %rcx",
    "subq %rdi, %rcx",
    "xorl %eax, %eax",
    "rep stosb",
    "movl $1, pvh_ap_release(%rip)",
    "movl %esi, %edi", // start_info, zero-extended
    "call fw_main",
    "2:",
    "cli",
    "hlt",
    "jmp 2b",
    "pvh_ap64:",
    "cmpl ${max_cpus}, %ebp",
    "jae 2b",
    "testl %ebp, %ebp",
    "jz 2b",
    "3:",
    "pause",
    "cmpl $0, pvh_ap_release(%rip)",
    "je 3b",
    "movl %ebp, %eax",
    "imulq ${ap_stack_size}, %rax",
    "leaq pvh_ap_stacks(%rip), %rsp",
    "addq %rax, %rsp",
    "movl %ebp, %edi",
    "call fw_ap_main",
    "jmp 2b",
    ".popsection",
    stack_size = const STACK_SIZE,
    ap_stack_size = const AP_STACK_SIZE,
    max_cpus = const MAX_CPUS,
    options(att_syntax)
);
