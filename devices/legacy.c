/* devices/legacy.c - the small PC and VMM control ports: the i8042 reset
 * line (a guest reboot ends the VM, status 0), the exit port (the guest's
 * status becomes ours), the boot-ready marker and the snapshot-request
 * port. */
#include "devices/legacy.h"

#include <stdio.h>
#include <string.h>

#include "vmm/vm.h"

#define I8042_DATA	0x60
#define I8042_CMD	0x64
#define I8042_RESET	0xfe

static void i8042_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	(void)opaque;
	(void)off;
	/* no keyboard: empty output buffer, input buffer ready */
	memset(data, 0, size);
}

static void i8042_write(void *opaque, uint64_t off, const void *data,
			unsigned size)
{
	(void)size;
	if (off == I8042_CMD - I8042_DATA && *(const uint8_t *)data == I8042_RESET)
		vm_request_exit(opaque, 0);
}

static void control_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	(void)opaque;
	(void)off;
	memset(data, 0xff, size);
}

static void control_write(void *opaque, uint64_t off, const void *data,
			  unsigned size)
{
	uint8_t v = *(const uint8_t *)data;

	(void)size;
	if (off == 0)
		vm_request_exit(opaque, v);
	else if (off == 1 && v == VMM_BOOT_READY_MAGIC)
		vm_boot_ready(opaque);
	else if (off == VMM_PORT_SNAPSHOT - VMM_PORT_EXIT &&
		 v == VMM_SNAPSHOT_MAGIC)
		vm_snapshot_request(opaque);
}

int legacy_devices_create(struct vm *vm, char *err, size_t errlen)
{
	if (vm_register_io(vm, IO_SPACE_PIO, I8042_DATA, I8042_CMD - I8042_DATA + 1,
			   i8042_read, i8042_write, vm) ||
	    vm_register_io(vm, IO_SPACE_PIO, VMM_PORT_EXIT,
			   VMM_PORT_SNAPSHOT - VMM_PORT_EXIT + 1, control_read,
			   control_write, vm)) {
		snprintf(err, errlen, "cannot register the i8042 and control ports");
		return -1;
	}
	return 0;
}
