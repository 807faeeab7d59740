/* devices/serial.h - 8250/16550A UART at COM1, the guest console. */
#ifndef DEVICES_SERIAL_H
#define DEVICES_SERIAL_H

#include <stddef.h>

struct vm;
struct serial;

/* Sees every byte the guest sends, on the sending vCPU's thread with the
 * UART's lock held (so: quick, and no calls back into the UART). */
typedef void (*serial_tap_fn)(void *opaque, char c);

/* out_fd: where the guest's output goes (-1: discarded); tap: NULL or a
 * watcher of the output. */
struct serial *serial_create(struct vm *vm, int out_fd, serial_tap_fn tap,
			     void *tap_opaque, char *err, size_t errlen);
/* Room in the receive FIFO, and input for the guest (at most that much). */
size_t serial_rx_room(struct serial *s);
void serial_receive(struct serial *s, const char *buf, size_t n);
/* Write out buffered guest output. */
void serial_flush(struct serial *s);

#endif
