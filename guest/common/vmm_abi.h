/* guest/common/vmm_abi.h - the fixed machine the VMM presents, shared by the
 * VMM, the test kernel and the guest agent.  Changing a value here changes
 * the guest ABI: keep them stable.
 */
#ifndef GUEST_COMMON_VMM_ABI_H
#define GUEST_COMMON_VMM_ABI_H

/* I/O ports */
#define VMM_PORT_COM1		0x3f8	/* 8250 UART, IRQ 4 */
#define VMM_IRQ_COM1		4
#define VMM_PORT_I8042		0x60	/* 0x60/0x64; 0xfe to 0x64 resets */
#define VMM_PORT_EXIT		0xf4	/* write a byte: VMM exits with it */
#define VMM_PORT_BOOT_READY	0xf5	/* write VMM_BOOT_READY_MAGIC */
#define VMM_BOOT_READY_MAGIC	123	/* as Firecracker's boot timer */
#define VMM_PORT_SNAPSHOT	0xf6	/* write VMM_SNAPSHOT_MAGIC: snapshot now */
#define VMM_SNAPSHOT_MAGIC	0x53	/* 'S' */

/* Guest physical memory map */
#define VMM_GDT_GPA		0x500
#define VMM_PVH_START_INFO_GPA	0x6000	/* + memmap after it */
#define VMM_ZERO_PAGE_GPA	0x7000	/* Linux boot_params */
#define VMM_BOOT_STACK_GPA	0x8ff0
#define VMM_PML4_GPA		0x9000	/* boot identity map, 4 GiB, U/S=1 */
#define VMM_CMDLINE_GPA		0x20000
#define VMM_CMDLINE_MAX		0x10000
#define VMM_MPTABLE_GPA		0x9fc00	/* EBDA: MP floating pointer + table */
#define VMM_EBDA_END		0x100000	/* 0x9fc00-0xfffff reserved */
#define VMM_HIMEM_START		0x100000
#define VMM_MMIO_HOLE_START	0xc0000000ULL	/* RAM resumes at 4 GiB */
#define VMM_MMIO_HOLE_END	0x100000000ULL
#define VMM_VIRTIO_MMIO_BASE	0xd0000000ULL	/* one 4 KiB window per device */
#define VMM_VIRTIO_MMIO_SIZE	0x1000
#define VMM_VIRTIO_IRQ_BASE	5	/* device n uses IRQ 5 + n */
#define VMM_VIRTIO_MAX_DEVICES	16	/* IRQs 5..20 on the IOAPIC */
#define VMM_IOAPIC_GPA		0xfec00000ULL
#define VMM_LAPIC_GPA		0xfee00000ULL

#endif
