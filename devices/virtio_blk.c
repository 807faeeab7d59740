/* devices/virtio_blk.c - virtio-blk (virtio 1.2, 5.2) over a storage/
 * backend, on the shared device code of devices/virtio_dev.h.
 *
 * Each disk has its own device thread and io_engine.  A round pops every
 * available chain, checks it (vblk_parse_request: pure validation, no
 * side effects), turns it into a blk_req whose iovecs point straight into
 * guest memory (execute), and hands them all to the kernel with one
 * io_engine_submit().  Completions are reaped right after the submit (page
 * cache hits complete inside it), while polling, or on the engine's
 * eventfd; virtio_dev publishes the used rings once per round.
 *
 * Host memory a guest can make this device hold: the request slots
 * (VIRTIO_BLK_QUEUE_SIZE of them, each with its iovec array, allocated at
 * create) and what the backend allocates per request, for requests of at
 * most VIRTIO_BLK_SEG_MAX segments of VIRTIO_BLK_SIZE_MAX bytes.
 */
#include "devices/virtio_blk.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/virtio_ids.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/registry.h"
#include "devices/virtio_dev.h"
#include "vmm/vm.h"

#define SECTOR_SHIFT	9

struct vblk;

/* One request slot: a popped chain from start to completion. */
struct vblk_req {
	struct blk_req br;
	struct vblk *d;
	struct vblk_req *next_free;
	unsigned qi;		/* the queue it came from */
	uint16_t head;
	uint8_t *status;	/* the chain's last writable byte */
	uint32_t used_len;	/* bytes written into the chain on success */
	bool flush_after;	/* writethrough: flush before completing */
	struct iovec iov[VIRTIO_BLK_QUEUE_SIZE];
};

struct vblk {
	struct vm *vm;
	char name[24];
	struct io_engine *eng;
	struct blk_dev *blk;
	struct virtio_dev *vd;
	uint8_t config[VIRTIO_BLK_CFG_SIZE];
	char serial[VIRTIO_BLK_ID_BYTES];
	bool readonly;
	/* per activation, under the virtio_dev lock */
	bool writethrough;	/* FLUSH not negotiated */
	struct vblk_req *reqs, *free_list;
};

/* VMM_BLK_POLL_US overrides the polling window (0: never poll), for
 * measurements (README, "Environment"). */
static uint64_t blk_poll_ns(void)
{
	const char *s = getenv("VMM_BLK_POLL_US");
	char *end;
	unsigned long v;

	if (!s || !*s)
		return VIRTIO_DEV_POLL_US * 1000ULL;
	v = strtoul(s, &end, 10);
	return *end || v > 100000 ? VIRTIO_DEV_POLL_US * 1000ULL : v * 1000ULL;
}

/* ---- parsing: what a chain asks for, checked; no side effects ---- */

static void why(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void why(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

static void answer(struct vblk_request *r, uint8_t status)
{
	r->action = VBLK_ANSWER;
	r->status = status;
}

/* DISCARD / WRITE_ZEROES: one segment (max_*_seg is 1). */
static void parse_range(const struct vblk_params *p, uint32_t type,
			struct iovec *out, unsigned n_out,
			struct vblk_request *r, char *msg, size_t msglen)
{
	struct virtio_blk_discard_write_zeroes seg;
	bool wz = type == VIRTIO_BLK_T_WRITE_ZEROES;

	if (!(p->features & (1ULL << (wz ? VIRTIO_BLK_F_WRITE_ZEROES :
				      VIRTIO_BLK_F_DISCARD))))
		return answer(r, VIRTIO_BLK_S_UNSUPP);
	if (iov_total(out, n_out) != sizeof(seg)) {
		why(msg, msglen, "%s request with %" PRIu64 " bytes of "
		    "segments (one 16-byte segment supported)",
		    wz ? "write-zeroes" : "discard", iov_total(out, n_out));
		return answer(r, VIRTIO_BLK_S_IOERR);
	}
	iov_pull(&out, &n_out, &seg, sizeof(seg));
	if (seg.flags & ~(uint32_t)(wz ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0))
		return answer(r, VIRTIO_BLK_S_UNSUPP);
	if (seg.num_sectors > VIRTIO_BLK_MAX_DISCARD_SECTORS ||
	    seg.sector > (UINT64_MAX >> SECTOR_SHIFT) - seg.num_sectors)
		return answer(r, VIRTIO_BLK_S_IOERR);
	r->action = VBLK_SUBMIT;
	r->op = wz ? BLK_OP_WRITE_ZEROES : BLK_OP_DISCARD;
	r->offset = seg.sector << SECTOR_SHIFT;
	r->len = (uint64_t)seg.num_sectors << SECTOR_SHIFT;
	r->may_unmap = seg.flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
}

/* IN / OUT: the data buffers.  The limits the device advertises
 * (SEG_MAX segments of SIZE_MAX bytes) are enforced whether or not the
 * driver negotiated them: they bound what one request can make the
 * backend hold. */
static void parse_rw(const struct vblk_params *p, uint32_t type,
		     uint64_t sector, struct iovec *data, unsigned n,
		     struct vblk_request *r, char *msg, size_t msglen)
{
	bool wr = type == VIRTIO_BLK_T_OUT;
	uint64_t len = iov_total(data, n);

	if (n > VIRTIO_BLK_SEG_MAX) {
		why(msg, msglen, "request with %u data segments (seg_max %u)",
		    n, VIRTIO_BLK_SEG_MAX);
		return answer(r, VIRTIO_BLK_S_IOERR);
	}
	for (unsigned i = 0; i < n; i++) {
		if (data[i].iov_len > VIRTIO_BLK_SIZE_MAX) {
			why(msg, msglen, "request with a %zu-byte data segment "
			    "(size_max %u)", data[i].iov_len,
			    VIRTIO_BLK_SIZE_MAX);
			return answer(r, VIRTIO_BLK_S_IOERR);
		}
	}
	if (len % 512 || sector > (UINT64_MAX >> SECTOR_SHIFT) ||
	    (wr && p->readonly))
		return answer(r, VIRTIO_BLK_S_IOERR);
	r->action = VBLK_SUBMIT;
	r->op = wr ? BLK_OP_WRITE : BLK_OP_READ;
	r->offset = sector << SECTOR_SHIFT;
	r->len = len;
	r->iov = data;
	r->iovcnt = n;
	/* used length counts what we write into the chain (a u32: absurdly
	 * long chains saturate) */
	r->used_len = wr ? 1 : len >= UINT32_MAX ? UINT32_MAX :
		      (uint32_t)(len + 1);
}

void vblk_parse_request(const struct vblk_params *p, struct virtq_elem *e,
			struct vblk_request *r, char *msg, size_t msglen)
{
	struct iovec *out = e->iov, *in = e->iov + e->n_out;
	unsigned n_out = e->n_out, n_in = e->n_in;
	struct virtio_blk_outhdr hdr;

	memset(r, 0, sizeof(*r));
	msg[0] = '\0';
	r->used_len = 1;
	r->status_byte = iov_take_last_byte(in, &n_in);
	if (!r->status_byte) {
		/* nowhere to report an error: only a reset recovers */
		why(msg, msglen, "request at head %u has no device-writable "
		    "status byte; device needs reset", e->head);
		r->action = VBLK_ABANDON;
		return;
	}
	if (iov_pull(&out, &n_out, &hdr, sizeof(hdr)) < sizeof(hdr)) {
		why(msg, msglen, "request at head %u: header shorter than 16 "
		    "bytes", e->head);
		return answer(r, VIRTIO_BLK_S_IOERR);
	}
	r->type = hdr.type;
	/* Data in the wrong direction for the type (e.g. a read whose buffer
	 * the device may not write) is a malformed request, not a short
	 * transfer. */
	switch (hdr.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_FLUSH:
	case VIRTIO_BLK_T_GET_ID:
		if (n_out) {
			why(msg, msglen, "request at head %u (type %u) has %"
			    PRIu64 " device-readable bytes after its header",
			    e->head, hdr.type, iov_total(out, n_out));
			return answer(r, VIRTIO_BLK_S_IOERR);
		}
		break;
	case VIRTIO_BLK_T_OUT:
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (n_in) {
			why(msg, msglen, "request at head %u (type %u) has %"
			    PRIu64 " device-writable bytes before its status",
			    e->head, hdr.type, iov_total(in, n_in));
			return answer(r, VIRTIO_BLK_S_IOERR);
		}
		break;
	}
	switch (hdr.type) {
	case VIRTIO_BLK_T_IN:
		return parse_rw(p, hdr.type, hdr.sector, in, n_in, r, msg,
				msglen);
	case VIRTIO_BLK_T_OUT:
		return parse_rw(p, hdr.type, hdr.sector, out, n_out, r, msg,
				msglen);
	case VIRTIO_BLK_T_FLUSH:
		r->action = VBLK_SUBMIT;
		r->op = BLK_OP_FLUSH;
		return;
	case VIRTIO_BLK_T_GET_ID:
		r->action = VBLK_GET_ID;
		r->iov = in;
		r->iovcnt = n_in;
		return;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return parse_range(p, hdr.type, out, n_out, r, msg, msglen);
	default:
		return answer(r, VIRTIO_BLK_S_UNSUPP);
	}
}

/* ---- execution (device thread, virtio_dev lock held) ---- */

static void release(struct vblk *d, struct vblk_req *r)
{
	r->next_free = d->free_list;
	d->free_list = r;
}

/* Complete r: status byte, used entry (published after the round). */
static void finish(struct vblk *d, struct vblk_req *r, uint8_t status)
{
	if (virtio_dev_active(d->vd))
		*r->status = status;
	release(d, r);
	virtio_dev_complete(d->vd, r->qi, r->head,
			    status == VIRTIO_BLK_S_OK ? r->used_len : 1);
}

static void req_done(struct blk_req *br, int res)
{
	struct vblk_req *r = (struct vblk_req *)br;
	struct vblk *d = r->d;

	if (res == 0 && r->flush_after && virtio_dev_active(d->vd)) {
		/* writethrough: durable before the guest hears of it */
		r->flush_after = false;
		memset(br, 0, sizeof(*br));
		br->op = BLK_OP_FLUSH;
		br->done = req_done;
		blk_submit(d->blk, br);
		return;
	}
	if (res < 0 && res != -EROFS && res != -EINVAL)
		virtio_dev_guest_error(d->vd, "I/O error at sector %" PRIu64
				       ": %s", br->offset >> SECTOR_SHIFT,
				       strerror(-res));
	finish(d, r, res < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK);
}

/* Act on a popped chain: answer it at once or hand it to the backend. */
static void execute(struct vblk *d, struct vblk_req *r, struct virtq_elem *e)
{
	struct vblk_params p = {
		.features = virtio_dev_features(d->vd),
		.readonly = d->readonly,
	};
	struct vblk_request q;
	char msg[200];

	r->head = e->head;
	r->flush_after = false;
	vblk_parse_request(&p, e, &q, msg, sizeof(msg));
	if (msg[0])
		virtio_dev_guest_error(d->vd, "%s", msg);
	r->status = q.status_byte;
	r->used_len = q.used_len;
	switch (q.action) {
	case VBLK_ABANDON:
		release(d, r);
		virtio_dev_abandon(d->vd, r->qi);
		return;
	case VBLK_ANSWER:
		finish(d, r, q.status);
		return;
	case VBLK_GET_ID: {
		size_t n = iov_fill(q.iov, q.iovcnt, d->serial,
				    VIRTIO_BLK_ID_BYTES);

		/* shorter serials are NUL-terminated, 20 bytes are not */
		r->used_len = (uint32_t)n + 1;
		finish(d, r, VIRTIO_BLK_S_OK);
		return;
	}
	case VBLK_SUBMIT:
		memset(&r->br, 0, sizeof(r->br));
		r->br.op = q.op;
		r->br.offset = q.offset;
		r->br.len = q.len;
		r->br.iov = q.iov;
		r->br.iovcnt = (int)q.iovcnt;
		r->br.may_unmap = q.may_unmap;
		r->br.done = req_done;
		r->flush_after = q.op == BLK_OP_WRITE && d->writethrough;
		/* may complete inside (range or read-only errors) */
		blk_submit(d->blk, &r->br);
		return;
	}
}

/* Pop and start what is available on every served queue. */
static unsigned pop_requests(struct vblk *d)
{
	unsigned nq = virtio_dev_num_queues(d->vd), n = 0;
	struct virtq_elem e;

	for (unsigned i = 0; i < nq; i++) {
		for (;;) {
			struct vblk_req *r = d->free_list;
			int ret;

			if (!r) {
				/* every slot in flight: a completion
				 * restarts us */
				virtio_dev_stall(d->vd);
				return n;
			}
			ret = virtio_dev_pop(d->vd, i, &e, r->iov,
					     VIRTIO_BLK_QUEUE_SIZE);
			if (ret < 0)
				return n;
			if (ret == 0)
				break;
			d->free_list = r->next_free;
			r->qi = i;
			execute(d, r, &e);
			n++;
		}
	}
	return n;
}

/* ---- the virtio_dev class ---- */

static int vblk_work(void *opaque)
{
	struct vblk *d = opaque;
	unsigned popped = pop_requests(d);
	int reaped = 0;

	if (popped)
		io_engine_submit(d->eng);
	if (io_engine_inflight(d->eng))
		reaped = io_engine_poll(d->eng);
	return (int)popped + (reaped > 0 ? reaped : 0);
}

/* The engine's completion eventfd: before sleeping and when it fires. */
static int vblk_complete(void *opaque)
{
	struct vblk *d = opaque;

	return io_engine_complete(d->eng);
}

static void vblk_drain(void *opaque)
{
	struct vblk *d = opaque;

	while (io_engine_inflight(d->eng) > 0)
		if (io_engine_wait(d->eng) < 0)
			break;
}

static void vblk_config_read(void *opaque, uint32_t off, void *data,
			     unsigned size)
{
	struct vblk *d = opaque;

	memcpy(data, d->config + off, size);
}

static int vblk_activate(void *opaque, uint64_t features)
{
	struct vblk *d = opaque;

	if (!virtio_dev_queue(d->vd, 0)) {
		virtio_dev_guest_error(d->vd, "DRIVER_OK without request "
				       "queue 0");
		return -1;
	}
	d->writethrough = !(features & (1ULL << VIRTIO_BLK_F_FLUSH));
	/* with MQ the driver may use any subset of the queues */
	return features & (1ULL << VIRTIO_BLK_F_MQ) ? VIRTIO_BLK_NUM_QUEUES : 1;
}

static const struct virtio_dev_class vblk_class = {
	.device_id = VIRTIO_ID_BLOCK,
	.num_queues = VIRTIO_BLK_NUM_QUEUES,
	.queue_max = VIRTIO_BLK_QUEUE_SIZE,
	.config_size = VIRTIO_BLK_CFG_SIZE,
	.config_read = vblk_config_read,
	.activate = vblk_activate,
	.work = vblk_work,
	.before_sleep = vblk_complete,
	.drain = vblk_drain,
};

/* ---- life cycle ---- */

static void vblk_free(struct vblk *d)
{
	virtio_dev_destroy(d->vd);
	if (d->blk)
		blk_close(d->blk);
	if (d->eng)
		io_engine_destroy(d->eng);
	free(d->reqs);
	free(d);
}

static void vblk_destroy(void *opaque)
{
	vblk_free(opaque);
}

static void build_config(struct vblk *d)
{
	unsigned align = blk_alignment(d->blk);
	uint32_t bs = align > 512 ? align : 512;
	struct virtio_blk_config c = {
		.capacity = blk_size(d->blk) >> SECTOR_SHIFT,
		.size_max = VIRTIO_BLK_SIZE_MAX,
		.seg_max = VIRTIO_BLK_SEG_MAX,
		.blk_size = bs,
		.num_queues = VIRTIO_BLK_NUM_QUEUES,
		.max_discard_sectors = VIRTIO_BLK_MAX_DISCARD_SECTORS,
		.max_discard_seg = 1,
		/* hole punching works in file system blocks */
		.discard_sector_alignment = (bs > 4096 ? bs : 4096) >> SECTOR_SHIFT,
		.max_write_zeroes_sectors = VIRTIO_BLK_MAX_DISCARD_SECTORS,
		.max_write_zeroes_seg = 1,
		.write_zeroes_may_unmap = 1,
	};

	_Static_assert(sizeof(d->config) <= sizeof(c), "config layout");
	memcpy(d->config, &c, sizeof(d->config));	/* little-endian host */
}

static uint64_t offered_features(struct vblk *d)
{
	uint64_t f = (1ULL << VIRTIO_BLK_F_SIZE_MAX) |
		     (1ULL << VIRTIO_BLK_F_SEG_MAX) |
		     (1ULL << VIRTIO_BLK_F_BLK_SIZE) |
		     (1ULL << VIRTIO_BLK_F_FLUSH) |
		     (1ULL << VIRTIO_BLK_F_MQ) |
		     (1ULL << VIRTIO_F_INDIRECT_DESC) |
		     (1ULL << VIRTIO_F_EVENT_IDX);

	if (d->readonly)
		f |= 1ULL << VIRTIO_BLK_F_RO;
	if (blk_can_discard(d->blk))
		f |= 1ULL << VIRTIO_BLK_F_DISCARD;
	if (blk_can_write_zeroes(d->blk))
		f |= 1ULL << VIRTIO_BLK_F_WRITE_ZEROES;
	return f;
}

int virtio_blk_create(struct vm *vm, const struct virtio_blk_opts *o,
		      char *err, size_t errlen)
{
	struct vblk *d;
	char e2[200];
	unsigned i;

	d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, errlen, "virtio-blk: out of memory");
		return -1;
	}
	d->vm = vm;
	snprintf(d->name, sizeof(d->name), "virtio-blk%u", o->index);
	if (o->serial && strlen(o->serial) > VIRTIO_BLK_ID_BYTES) {
		snprintf(err, errlen, "%s: serial '%s' is longer than %u bytes",
			 o->blk.path ? o->blk.path : "disk", o->serial,
			 VIRTIO_BLK_ID_BYTES);
		goto fail;
	}
	if (o->serial)
		memcpy(d->serial, o->serial, strlen(o->serial));
	else
		snprintf(d->serial, sizeof(d->serial), "vmm-disk%u", o->index);

	d->reqs = calloc(VIRTIO_BLK_QUEUE_SIZE, sizeof(*d->reqs));
	if (!d->reqs) {
		snprintf(err, errlen, "%s: out of memory", d->name);
		goto fail;
	}
	for (i = 0; i < VIRTIO_BLK_QUEUE_SIZE; i++) {
		d->reqs[i].d = d;
		release(d, &d->reqs[i]);
	}
	/* room for every request plus a flush each (writethrough) */
	d->eng = io_engine_create(2 * VIRTIO_BLK_QUEUE_SIZE, e2, sizeof(e2));
	if (!d->eng) {
		snprintf(err, errlen, "%s: %s", d->name, e2);
		goto fail;
	}
	d->blk = blk_open(&o->blk, d->eng, err, errlen);
	if (!d->blk)
		goto fail;
	d->readonly = blk_readonly(d->blk);
	build_config(d);

	d->vd = virtio_dev_create(vm, d->name, &vblk_class, d,
				  offered_features(d), err, errlen);
	if (!d->vd)
		goto fail;
	virtio_dev_set_poll_ns(d->vd, blk_poll_ns());
	if (virtio_dev_add_fd(d->vd, io_engine_eventfd(d->eng),
			      vblk_complete) < 0) {
		snprintf(err, errlen, "%s: cannot watch I/O completions",
			 d->name);
		goto fail;
	}
	if (virtio_dev_start(d->vd, err, errlen) < 0)
		goto fail;
	if (vm_add_device(vm, d->name, vblk_destroy, d) < 0) {
		snprintf(err, errlen, "%s: cannot register the device",
			 d->name);
		goto fail;
	}
	return 0;
fail:
	vblk_free(d);
	return -1;
}

/* One --disk value, e.g. "path=a.img,format=raw,readonly=on". */
static int vblk_parse(char *s, void *cfg, unsigned index, char *err,
		      size_t errlen)
{
	struct virtio_blk_opts *d = cfg;
	char *save = NULL, *kv;
	bool have_format = false;

	memset(d, 0, sizeof(*d));
	d->index = index;
	d->blk.cache = BLK_CACHE_WRITEBACK;
	for (kv = strtok_r(s, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *v = strchr(kv, '=');

		if (!v)
			return errf(err, errlen, "'%s' is not key=value", kv);
		*v++ = '\0';
		if (!strcmp(kv, "path")) {
			if (!*v)
				return errf(err, errlen, "empty path");
			d->blk.path = v;
		} else if (!strcmp(kv, "format")) {
			int f = blk_format_parse(v);

			if (f < 0)
				return errf(err, errlen,
					    "unknown format '%s' (raw or qcow2)", v);
			d->blk.format = (enum blk_format)f;
			have_format = true;
		} else if (!strcmp(kv, "readonly")) {
			if (device_parse_onoff(v, &d->blk.readonly))
				return errf(err, errlen,
					    "readonly=%s: expected on or off", v);
		} else if (!strcmp(kv, "cache")) {
			if (!strcmp(v, "none"))
				d->blk.cache = BLK_CACHE_NONE;
			else if (!strcmp(v, "writeback"))
				d->blk.cache = BLK_CACHE_WRITEBACK;
			else
				return errf(err, errlen,
					    "cache=%s: expected none or writeback", v);
		} else if (!strcmp(kv, "serial")) {
			/* GET_ID answers 20 bytes: refuse, don't truncate */
			if (strlen(v) > VIRTIO_BLK_ID_BYTES)
				return errf(err, errlen,
					    "serial '%s' is longer than 20 characters", v);
			d->serial = v;
		} else {
			return errf(err, errlen, "unknown key '%s'", kv);
		}
	}
	if (!d->blk.path)
		return errf(err, errlen, "path= is required");
	if (!have_format)
		return errf(err, errlen,
			    "%s: format= is required (raw or qcow2; never probed)",
			    d->blk.path);
	return 0;
}

static int vblk_type_create(struct vm *vm, const void *cfg, char *err,
			    size_t errlen)
{
	/* an image that cannot be opened is bad input, as is all else here */
	return virtio_blk_create(vm, cfg, err, errlen) ? VMM_EXIT_BAD_INPUT : 0;
}

const struct device_type virtio_blk_type = {
	.option = "disk",
	.usage =
"  --disk path=P,format=raw|qcow2[,readonly=on][,cache=none|writeback][,serial=S]\n"
"                         a virtio-blk disk (repeatable, up to 8)\n",
	.max = VIRTIO_BLK_MAX_DISKS,
	.config_size = sizeof(struct virtio_blk_opts),
	.parse = vblk_parse,
	.create = vblk_type_create,
};
