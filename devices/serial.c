/* devices/serial.c - an 8250/16550A UART (COM1, port 0x3f8, IRQ 4): the
 * console.  Transmission is instant, so THR is always empty; output is
 * buffered per line and flushed by the main loop.  Every byte sent also
 * goes to an optional tap (the VMM's console watcher); what the guest's
 * output means is not the UART's business. */
#include "devices/serial.h"

#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/vm.h"

#define RX_FIFO		64
#define OUT_BUF		4096

#define UART_IER_RDI	0x01
#define UART_IER_THRI	0x02
#define UART_IER_RLSI	0x04
#define UART_IIR_NO_INT	0x01
#define UART_IIR_THRI	0x02
#define UART_IIR_RDI	0x04
#define UART_IIR_FIFO	0xc0
#define UART_FCR_ENABLE	0x01
#define UART_FCR_CLEAR_RCVR 0x02
#define UART_LCR_DLAB	0x80
#define UART_MCR_LOOP	0x10
#define UART_LSR_DR	0x01
#define UART_LSR_THRE	0x20
#define UART_LSR_TEMT	0x40

struct serial {
	struct vm *vm;
	pthread_mutex_t lock;
	uint8_t ier, iir, fcr, lcr, mcr, scr, dll, dlm;
	bool thr_pending;		/* THRE interrupt owed */
	bool irq_level;
	char rx[RX_FIFO];
	unsigned rx_head, rx_count;
	int out_fd;
	char out[OUT_BUF];
	size_t out_len;
	serial_tap_fn tap;		/* sees every byte sent (NULL: none) */
	void *tap_opaque;
};

static void flush_locked(struct serial *s)
{
	if (s->out_len && s->out_fd >= 0)
		/* a console gone must not stall the guest: drop */
		write_all(s->out_fd, s->out, s->out_len);
	s->out_len = 0;
}

static void update_irq(struct serial *s)
{
	uint8_t iir = UART_IIR_NO_INT;
	bool level;

	if ((s->ier & UART_IER_RDI) && s->rx_count)
		iir = UART_IIR_RDI;
	else if ((s->ier & UART_IER_THRI) && s->thr_pending)
		iir = UART_IIR_THRI;
	s->iir = iir | (s->fcr & UART_FCR_ENABLE ? UART_IIR_FIFO : 0);
	level = iir != UART_IIR_NO_INT;
	if (level != s->irq_level) {
		s->irq_level = level;
		vm_irq_line(s->vm, VMM_IRQ_COM1, level);
	}
}

static void transmit(struct serial *s, uint8_t c)
{
	if (s->mcr & UART_MCR_LOOP) {
		if (s->rx_count < RX_FIFO)
			s->rx[(s->rx_head + s->rx_count++) % RX_FIFO] = (char)c;
		return;
	}
	if (s->out_fd >= 0) {
		s->out[s->out_len++] = (char)c;
		if (c == '\n' || s->out_len == OUT_BUF)
			flush_locked(s);
	}
	if (s->tap)
		s->tap(s->tap_opaque, (char)c);
}

static void serial_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	struct serial *s = opaque;
	uint8_t v = 0xff;

	pthread_mutex_lock(&s->lock);
	switch (off) {
	case 0:
		if (s->lcr & UART_LCR_DLAB) {
			v = s->dll;
		} else {
			v = 0;
			if (s->rx_count) {
				v = (uint8_t)s->rx[s->rx_head];
				s->rx_head = (s->rx_head + 1) % RX_FIFO;
				s->rx_count--;
			}
		}
		break;
	case 1:
		v = s->lcr & UART_LCR_DLAB ? s->dlm : s->ier;
		break;
	case 2:
		v = s->iir;
		/* reading IIR acknowledges a THRE interrupt */
		if ((s->iir & 0x0f) == UART_IIR_THRI)
			s->thr_pending = false;
		break;
	case 3:
		v = s->lcr;
		break;
	case 4:
		v = s->mcr;
		break;
	case 5:
		v = UART_LSR_THRE | UART_LSR_TEMT | (s->rx_count ? UART_LSR_DR : 0);
		break;
	case 6:
		if (s->mcr & UART_MCR_LOOP)	/* RTS->CTS DTR->DSR OUT1->RI OUT2->DCD */
			v = (uint8_t)((s->mcr & 0x02) << 3 | (s->mcr & 0x01) << 5 |
				       (s->mcr & 0x04) << 4 | (s->mcr & 0x08) << 4);
		else
			v = 0xb0;		/* DCD, DSR, CTS */
		break;
	case 7:
		v = s->scr;
		break;
	}
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
	memset(data, 0, size);
	*(uint8_t *)data = v;
}

static void serial_write(void *opaque, uint64_t off, const void *data,
			 unsigned size)
{
	struct serial *s = opaque;
	uint8_t v = *(const uint8_t *)data;

	(void)size;
	pthread_mutex_lock(&s->lock);
	switch (off) {
	case 0:
		if (s->lcr & UART_LCR_DLAB) {
			s->dll = v;
		} else {
			transmit(s, v);
			s->thr_pending = true;	/* sent at once: THR empty again */
		}
		break;
	case 1:
		if (s->lcr & UART_LCR_DLAB) {
			s->dlm = v;
		} else {
			/* enabling THRI with THR empty raises THRE at once */
			if (!(s->ier & UART_IER_THRI) && (v & UART_IER_THRI))
				s->thr_pending = true;
			s->ier = v & 0x0f;
		}
		break;
	case 2:
		s->fcr = v & 0xc9;
		if (v & UART_FCR_CLEAR_RCVR)
			s->rx_count = 0;
		break;
	case 3:
		s->lcr = v;
		break;
	case 4:
		s->mcr = v & 0x1f;
		break;
	case 7:
		s->scr = v;
		break;
	}
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

size_t serial_rx_room(struct serial *s)
{
	size_t room;

	pthread_mutex_lock(&s->lock);
	room = RX_FIFO - s->rx_count;
	pthread_mutex_unlock(&s->lock);
	return room;
}

void serial_receive(struct serial *s, const char *buf, size_t n)
{
	pthread_mutex_lock(&s->lock);
	while (n-- && s->rx_count < RX_FIFO)
		s->rx[(s->rx_head + s->rx_count++) % RX_FIFO] = *buf++;
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

void serial_flush(struct serial *s)
{
	pthread_mutex_lock(&s->lock);
	flush_locked(s);
	pthread_mutex_unlock(&s->lock);
}

/* Snapshot: the registers and what waits in the receive FIFO.  Output
 * buffered on its way out is flushed, not saved (it belongs to this run). */
struct serial_state {
	uint8_t ier, iir, fcr, lcr, mcr, scr, dll, dlm;
	uint8_t thr_pending, irq_level, reserved[2];
	uint32_t rx_count;
	char rx[RX_FIFO];
};

static int serial_save(void *opaque, struct snap_buf *b, char *err,
		       size_t errlen)
{
	struct serial *s = opaque;
	struct serial_state st;

	(void)err;
	(void)errlen;
	memset(&st, 0, sizeof(st));
	pthread_mutex_lock(&s->lock);
	flush_locked(s);
	st.ier = s->ier;
	st.iir = s->iir;
	st.fcr = s->fcr;
	st.lcr = s->lcr;
	st.mcr = s->mcr;
	st.scr = s->scr;
	st.dll = s->dll;
	st.dlm = s->dlm;
	st.thr_pending = s->thr_pending;
	st.irq_level = s->irq_level;
	st.rx_count = s->rx_count;
	for (unsigned i = 0; i < s->rx_count; i++)
		st.rx[i] = s->rx[(s->rx_head + i) % RX_FIFO];
	pthread_mutex_unlock(&s->lock);
	vm_snap_put(b, &st, sizeof(st));
	return 0;
}

static int serial_load(void *opaque, struct snap_reader *r, char *err,
		       size_t errlen)
{
	struct serial *s = opaque;
	struct serial_state st;

	if (vm_snap_get(r, &st, sizeof(st)) || vm_snap_left(r) ||
	    st.rx_count > RX_FIFO) {
		snprintf(err, errlen, "malformed state");
		return VMM_EXIT_BAD_INPUT;
	}
	pthread_mutex_lock(&s->lock);
	s->ier = st.ier;
	s->iir = st.iir;
	s->fcr = st.fcr;
	s->lcr = st.lcr;
	s->mcr = st.mcr;
	s->scr = st.scr;
	s->dll = st.dll;
	s->dlm = st.dlm;
	s->thr_pending = st.thr_pending;
	s->rx_head = 0;
	s->rx_count = st.rx_count;
	memcpy(s->rx, st.rx, sizeof(s->rx));
	/* KVM_SET_IRQCHIP does not carry a source's line level: raise it */
	s->irq_level = st.irq_level;
	if (s->irq_level)
		vm_irq_line(s->vm, VMM_IRQ_COM1, 1);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static const struct vm_snapshot_ops serial_snapshot_ops = {
	.save = serial_save,
	.load = serial_load,
};

static void serial_destroy(void *opaque)
{
	struct serial *s = opaque;

	serial_flush(s);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

struct serial *serial_create(struct vm *vm, int out_fd, serial_tap_fn tap,
			     void *tap_opaque, char *err, size_t errlen)
{
	struct serial *s = calloc(1, sizeof(*s));
	int r;

	if (!s) {
		snprintf(err, errlen, "serial: out of memory");
		return NULL;
	}
	s->vm = vm;
	s->out_fd = out_fd;
	s->tap = tap;
	s->tap_opaque = tap_opaque;
	s->iir = UART_IIR_NO_INT;
	pthread_mutex_init(&s->lock, NULL);
	r = vm_register_io(vm, IO_SPACE_PIO, VMM_PORT_COM1, 8, serial_read,
			   serial_write, s);
	if (r || vm_add_device(vm, "serial", serial_destroy, s) ||
	    vm_add_snapshot_section(vm, "serial", &serial_snapshot_ops, s)) {
		snprintf(err, errlen, "serial: cannot register port %#x", VMM_PORT_COM1);
		pthread_mutex_destroy(&s->lock);
		free(s);
		return NULL;
	}
	return s;
}
