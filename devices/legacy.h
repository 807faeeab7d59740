/* devices/legacy.h - i8042 reset line, exit port, boot-ready marker. */
#ifndef DEVICES_LEGACY_H
#define DEVICES_LEGACY_H

#include <stddef.h>

struct vm;

int legacy_devices_create(struct vm *vm, char *err, size_t errlen);

#endif
