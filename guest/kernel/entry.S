/* guest/kernel/entry.S - entry points: the BSP's 64-bit entry (from vmm)
 * and its PVH entry (any VMM that boots an ELF by its Xen PVH note), the AP
 * real-mode trampoline, interrupt stubs, and MSR access with a #GP fixup.
 */
#define STACK_SIZE	16384
#define BOOT_LINUX	0	/* kernel.h: what kmain's first argument is */
#define BOOT_PVH	1
#define XEN_ELFNOTE_PHYS32_ENTRY 18

/* The PVH note: the VMM enters pvh_start in 32-bit protected mode.  The
 * descriptor is 8 bytes, as Linux's (some loaders read 8 whatever the size);
 * the section's 4-byte alignment keeps the segment's p_align at 4, which
 * loaders use to find the descriptor after the name. */
	.section .note.pvh, "a", @note
	.balign	4
	.long	4			/* n_namesz: "Xen\0" */
	.long	8			/* n_descsz */
	.long	XEN_ELFNOTE_PHYS32_ENTRY
	.asciz	"Xen"
	.balign	4
	.quad	pvh_start
	.balign	4

	.section .text.entry, "ax"
	.code64
	.globl	_start
/* vmm enters here in long mode with its boot identity map, interrupts off
 * and %rsi = boot_params.  Switch to CPU 0's stack and go to C. */
_start:
	cli
	lea	cpu_stacks + STACK_SIZE(%rip), %rsp
	mov	%rsi, %rdi
	mov	$BOOT_LINUX, %esi
	xor	%ebp, %ebp
	call	kmain
1:	cli
	hlt
	jmp	1b

/* PVH entry (xen/include/public/arch-x86/hvm/start_info.h): 32-bit
 * protected mode, paging off, flat CS/DS, %ebx = hvm_start_info, no stack.
 * Load our GDT, turn on PAE + long mode + paging with the static identity
 * map below, and far-jump to 64-bit code.  On a PVM host this runs
 * instruction-emulated: the few instructions here are all it costs. */
	.code32
	.globl	pvh_start
pvh_start:
	cli
	cld
	mov	%ebx, %esi		/* kept for kmain */
	lgdtl	pvh_gdtr
	mov	$0x18, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	mov	%eax, %fs
	mov	%eax, %gs
	mov	%cr4, %eax
	or	$0x20, %eax		/* PAE */
	mov	%eax, %cr4
	mov	$boot_pml4, %eax
	mov	%eax, %cr3
	mov	$0xc0000080, %ecx	/* EFER */
	rdmsr
	or	$0x100, %eax		/* LME */
	wrmsr
	mov	%cr0, %eax
	or	$0x80000001, %eax	/* PG | PE */
	mov	%eax, %cr0
	ljmpl	$0x10, $pvh_entry64

	.code64
pvh_entry64:
	xor	%eax, %eax
	mov	%eax, %fs
	mov	%eax, %gs
	lea	cpu_stacks + STACK_SIZE(%rip), %rsp
	mov	%esi, %edi		/* zero-extends: the start info's GPA */
	mov	$BOOT_PVH, %esi
	xor	%ebp, %ebp
	call	kmain
1:	cli
	hlt
	jmp	1b

/* APs arrive here from the trampoline in long mode on their own stack. */
	.globl	ap_entry64
ap_entry64:
	xor	%ebp, %ebp
	call	ap_main
1:	cli
	hlt
	jmp	1b

	.text
/* int safe_rdmsr(uint32_t msr, uint64_t *val) */
	.globl	safe_rdmsr, safe_rdmsr_insn, safe_wrmsr, safe_wrmsr_insn
	.globl	safe_msr_fixup
safe_rdmsr:
	mov	%edi, %ecx
safe_rdmsr_insn:
	rdmsr
	shl	$32, %rdx
	or	%rdx, %rax
	mov	%rax, (%rsi)
	xor	%eax, %eax
	ret
/* int safe_wrmsr(uint32_t msr, uint64_t val) */
safe_wrmsr:
	mov	%edi, %ecx
	mov	%rsi, %rax
	mov	%rsi, %rdx
	shr	$32, %rdx
safe_wrmsr_insn:
	wrmsr
	xor	%eax, %eax
	ret
/* the #GP handler resumes a faulting safe_*msr_insn here */
safe_msr_fixup:
	mov	$-1, %eax
	ret

/* Interrupt stubs, 16 bytes each: isr_stubs + 16 * vector.  Each pushes a
 * dummy error code where the CPU pushes none, then the vector. */
	.globl	isr_stubs
	.align	16
isr_stubs:
	.set	vec, 0
	.rept	256
	.align	16
	.if	(vec == 8 || (vec >= 10 && vec <= 14) || vec == 17 || vec == 21 || vec == 29 || vec == 30) == 0
	pushq	$0
	.endif
	pushq	$vec
	jmp	isr_common
	.set	vec, vec + 1
	.endr

isr_common:
	push	%rax
	push	%rbx
	push	%rcx
	push	%rdx
	push	%rsi
	push	%rdi
	push	%rbp
	push	%r8
	push	%r9
	push	%r10
	push	%r11
	push	%r12
	push	%r13
	push	%r14
	push	%r15
	mov	%rsp, %rdi
	mov	%rsp, %rbx
	and	$-16, %rsp
	cld
	call	isr_dispatch
	mov	%rbx, %rsp
	pop	%r15
	pop	%r14
	pop	%r13
	pop	%r12
	pop	%r11
	pop	%r10
	pop	%r9
	pop	%r8
	pop	%rbp
	pop	%rdi
	pop	%rsi
	pop	%rdx
	pop	%rcx
	pop	%rbx
	pop	%rax
	add	$16, %rsp
	iretq

/* AP trampoline: copied to TRAMPOLINE_BASE (4 KiB aligned, below 1 MiB);
 * the SIPI starts it in real mode at CS:IP = base>>4:0.  It goes through
 * 32-bit protected mode to long mode on the kernel's GDT and page tables,
 * then finds its own stack from its APIC ID (apic_to_cpu[], filled by the
 * BSP) and jumps to ap_entry64: all APs can start at the same time. */
#define TRAMPOLINE_BASE	0x1000
#define T(x)	((x) - trampoline_start + TRAMPOLINE_BASE)

	.section .rodata.trampoline, "a"
	.globl	trampoline_start, trampoline_end
	.globl	tramp_gdtr, tramp_cr3
	.code16
trampoline_start:
	cli
	xor	%ax, %ax
	mov	%ax, %ds
	lgdtl	T(tramp_gdtr)
	mov	%cr0, %eax
	or	$1, %eax
	mov	%eax, %cr0
	ljmpl	$0x08, $T(tramp32)

	.code32
tramp32:
	mov	$0x18, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	mov	%cr4, %eax
	or	$0x20, %eax		/* PAE */
	mov	%eax, %cr4
	mov	T(tramp_cr3), %eax
	mov	%eax, %cr3
	mov	$0xc0000080, %ecx	/* EFER */
	rdmsr
	or	$0x900, %eax		/* LME | NXE */
	wrmsr
	mov	%cr0, %eax
	or	$0x80000001, %eax	/* PG | PE */
	mov	%eax, %cr0
	ljmpl	$0x10, $T(tramp64)

	.code64
tramp64:
	mov	$0x18, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	xor	%ax, %ax
	mov	%ax, %fs
	mov	%ax, %gs
	mov	$0xfee00020, %eax	/* LAPIC ID register */
	mov	(%rax), %eax
	shr	$24, %eax
	movzbl	apic_to_cpu(%rax), %eax	/* CPU index */
	inc	%eax
	shl	$14, %rax		/* x STACK_SIZE: top of its stack */
	add	$cpu_stacks, %rax
	mov	%rax, %rsp
	movabs	$ap_entry64, %rax
	jmp	*%rax

	.align	8
tramp_gdtr:
	.word	0
	.long	0
	.align	8
tramp_cr3:
	.quad	0
trampoline_end:

/* The PVH entry's boot page tables, built by the assembler so the emulated
 * entry code has nothing to fill: identity map of 0-4 GiB with 2 MiB pages,
 * U/S=1 at every level (PVM livelocks on a U/S=0 entry), the same map as
 * vmm's boot tables.  paging_init() replaces them. */
	.data
	.balign	4096
boot_pml4:
	.quad	boot_pdpt + 7
	.fill	511, 8, 0
boot_pdpt:
	.quad	boot_pds + 7, boot_pds + 0x1007, boot_pds + 0x2007, boot_pds + 0x3007
	.fill	508, 8, 0
boot_pds:
	.set	pde, 0
	.rept	2048
	.quad	(pde << 21) | 0x87	/* P W U/S PS */
	.set	pde, pde + 1
	.endr

	.balign	8
pvh_gdtr:
	.word	8 * 8 - 1
	.long	gdt

	.section .note.GNU-stack, "", @progbits
