// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! `memcpy`, `memmove`, `memset`, `memcmp` and `bcmp`, which the compiler
//! calls and which a freestanding program must provide. Written as string
//! instructions in assembly: a Rust loop could be turned back into a call
//! of the very function it implements.

use core::arch::global_asm;

global_asm!(
    ".pushsection .text.mem, \"ax\"",
    // void *memcpy(void *dst /* rdi */, const void *src /* rsi */, size_t n /* rdx */)
    ".globl memcpy",
    "memcpy:",
    "mov rax, rdi",
    "mov rcx, rdx",
    "rep movsb",
    "ret",
    // void *memmove(void *dst, const void *src, size_t n)
    ".globl memmove",
    "memmove:",
    "mov rax, rdi",
    "mov rcx, rdx",
    "cmp rdi, rsi",
    "jbe 2f",
    "lea r8, [rsi + rdx]",
    "cmp rdi, r8",
    "jae 2f",
    // Overlapping with dst above src: copy backwards.
    "lea rsi, [rsi + rdx - 1]",
    "lea rdi, [rdi + rdx - 1]",
    "std",
    "rep movsb",
    "cld",
    "ret",
    "2:",
    "rep movsb",
    "ret",
    // void *memset(void *dst, int c /* esi */, size_t n)
    ".globl memset",
    "memset:",
    "mov r8, rdi",
    "mov eax, esi",
    "mov rcx, rdx",
    "rep stosb",
    "mov rax, r8",
    "ret",
    // int memcmp(const void *a, const void *b, size_t n); bcmp is the same.
    ".globl memcmp",
    ".globl bcmp",
    "memcmp:",
    "bcmp:",
    "xor eax, eax",
    "mov rcx, rdx",
    "test rcx, rcx",
    "jz 3f",
    "repe cmpsb",
    "je 3f",
    "movzx eax, byte ptr [rdi - 1]",
    "movzx ecx, byte ptr [rsi - 1]",
    "sub eax, ecx",
    "3:",
    "ret",
    ".popsection",
);
