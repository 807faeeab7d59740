/* devices/registry.c - the table of device types.
 *
 * Adding a device: its file defines `const struct device_type NAME_type`;
 * add one extern line and one table line below.  An explicit table (not a
 * linker section) so that linking from libvmm.a cannot drop an entry.
 */
#include "devices/registry.h"

#include <string.h>

#include "vmm/limits.h"

extern const struct device_type virtio_blk_type;
extern const struct device_type virtio_net_type;
extern const struct device_type virtio_vsock_type;
extern const struct device_type virtio_9p_type;

const struct device_type *const device_types[] = {
	&virtio_blk_type,
	&virtio_net_type,
	&virtio_vsock_type,
	&virtio_9p_type,
	NULL,
};

_Static_assert(sizeof(device_types) / sizeof(device_types[0]) - 1 <=
	       VMM_MAX_DEVICE_TYPES, "raise VMM_MAX_DEVICE_TYPES");

const struct device_type *device_type_find(const char *name)
{
	for (const struct device_type *const *t = device_types; *t; t++)
		if (!strcmp((*t)->option, name))
			return *t;
	return NULL;
}

int device_parse_onoff(const char *v, bool *out)
{
	if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "1") ||
	    !strcmp(v, "yes"))
		*out = true;
	else if (!strcmp(v, "off") || !strcmp(v, "false") ||
		 !strcmp(v, "0") || !strcmp(v, "no"))
		*out = false;
	else
		return -1;
	return 0;
}
