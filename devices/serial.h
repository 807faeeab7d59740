/* devices/serial.h - 8250/16550A UART at COM1, the guest console. */
#ifndef DEVICES_SERIAL_H
#define DEVICES_SERIAL_H

#include <stddef.h>

struct vm;
struct serial;

/* out_fd: where the guest's output goes (-1: discarded). */
struct serial *serial_create(struct vm *vm, int out_fd, char *err, size_t errlen);
/* Room in the receive FIFO, and input for the guest (at most that much). */
size_t serial_rx_room(struct serial *s);
void serial_receive(struct serial *s, const char *buf, size_t n);
/* Write out buffered guest output. */
void serial_flush(struct serial *s);

#endif
