/* devices/virtio_9p.c - virtio-9p (virtio 1.2, 5.x "9P transport"): a host
 * directory shared with the guest over 9P2000.L.
 *
 *   --fs path=DIR,tag=TAG[,readonly=on]
 *   guest: mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 TAG /mnt
 *
 * The transport side only: each chain on the one request queue is a
 * T-message (device-readable part) and room for the R-message
 * (device-writable part), handed as iovecs into guest memory to the 9P
 * server (devices/p9_server.c, which knows nothing of virtio and holds the
 * confinement rules).  Requests are served one after another on the device
 * thread (virtio_dev.c's work loop); data moves between the host file and
 * the guest's buffers with preadv/pwritev, no bounce copy.
 *
 * A blocking lock request whose range is taken is parked by the server,
 * never waited for: its chain stays in flight and a timer on the device
 * thread retries it every PARK_RETRY_MS until it gets the range, is
 * flushed, or the device resets (then it is ended without a reply, as the
 * reset wants every chain ended before it returns).
 *
 * Host memory a guest can make this device hold: QUEUE_SIZE request slots
 * (the chains' iovec arrays, ~270 KiB) plus the server's bounded fid table
 * and xattr buffers (devices/p9_server.h): a few MiB per share at most,
 * whatever msize the guest negotiates.
 */
#include <errno.h>
#include <linux/virtio_9p.h>
#include <linux/virtio_ids.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "devices/p9_server.h"
#include "devices/registry.h"
#include "devices/virtio_dev.h"
#include "vmm/vm.h"

#define V9P_MAX_SHARES	8
#define V9P_QUEUE_SIZE	128	/* Linux puts <= 128 buffers in a request */
#define V9P_TAG_MAX	64
#define PARK_RETRY_MS	10

struct v9p_opts {
	const char *path;
	const char *tag;
	bool readonly;
	unsigned index;
};

struct v9p;

struct v9p_req {
	struct p9_req req;
	struct v9p *d;
	struct v9p_req *next_free;
	uint16_t head;
	struct iovec iov[V9P_QUEUE_SIZE];
};

struct v9p {
	char name[24];
	struct virtio_dev_class cls;	/* v9p_class with this config size */
	struct virtio_dev *vd;
	struct p9_server *srv;
	uint8_t config[2 + V9P_TAG_MAX];
	uint32_t config_size;
	struct v9p_req *reqs, *free_list;
	int timer_fd;
	bool timer_armed;
	unsigned completed;	/* parked requests ended since last asked */
};

static void release(struct v9p *d, struct v9p_req *r)
{
	r->next_free = d->free_list;
	d->free_list = r;
}

/* A parked request ended (the server wrote its reply, or, after a reset,
 * nothing): end its chain. */
static void on_parked_done(void *opaque, struct p9_req *pr)
{
	struct v9p *d = opaque;
	struct v9p_req *r = pr->opaque;

	virtio_dev_complete(d->vd, 0, r->head,
			    virtio_dev_active(d->vd) ? pr->reply_len : 0);
	release(d, r);
	d->completed++;
}

static void arm_timer(struct v9p *d, bool on)
{
	struct itimerspec its = { 0 };

	if (on == d->timer_armed)
		return;
	if (on) {
		its.it_value.tv_nsec = PARK_RETRY_MS * 1000000L;
		its.it_interval.tv_nsec = PARK_RETRY_MS * 1000000L;
	}
	if (timerfd_settime(d->timer_fd, 0, &its, NULL) == 0)
		d->timer_armed = on;
	else
		vm_log(d->name, "timerfd: %s", strerror(errno));
}

static void server_log(void *opaque, const char *msg)
{
	struct v9p *d = opaque;

	virtio_dev_guest_error(d->vd, "%s", msg);
}

static int v9p_work(void *opaque)
{
	struct v9p *d = opaque;
	struct virtq_elem e;
	int n = 0;

	d->completed = 0;
	while (d->free_list) {
		struct v9p_req *r = d->free_list;
		int ret = virtio_dev_pop(d->vd, 0, &e, r->iov, V9P_QUEUE_SIZE);

		if (ret <= 0)
			break;
		d->free_list = r->next_free;
		r->head = e.head;
		r->req = (struct p9_req){
			.in = e.iov, .n_in = e.n_out,
			.out = e.iov + e.n_out, .n_out = e.n_in,
			.opaque = r,
		};
		n++;
		if (p9_server_handle(d->srv, &r->req) == 0) {
			arm_timer(d, true);	/* parked */
			continue;
		}
		if (r->req.reply_len == 0)
			virtio_dev_guest_error(d->vd, "request at head %u has "
					       "no room for a reply", e.head);
		virtio_dev_complete(d->vd, 0, r->head, r->req.reply_len);
		release(d, r);
	}
	/* every slot parked cannot happen (the server parks at most
	 * P9_MAX_PARKED < V9P_QUEUE_SIZE), but stall rather than spin */
	if (!d->free_list)
		virtio_dev_stall(d->vd);
	if (!p9_server_parked(d->srv))
		arm_timer(d, false);
	return n + (int)d->completed;
}

/* The retry timer: parked locks try again; after a reset started, they
 * end (the reset waits for that). */
static int v9p_on_timer(void *opaque)
{
	struct v9p *d = opaque;
	uint64_t ticks;

	if (read(d->timer_fd, &ticks, sizeof(ticks)) < 0)
		return 0;
	d->completed = 0;
	if (!virtio_dev_active(d->vd)) {
		p9_server_cancel_parked(d->srv);
		arm_timer(d, false);
		return (int)d->completed;
	}
	if (!p9_server_retry_parked(d->srv))
		arm_timer(d, false);
	return (int)d->completed;
}

static void v9p_config_read(void *opaque, uint32_t off, void *data,
			    unsigned size)
{
	struct v9p *d = opaque;

	memcpy(data, d->config + off, size);
}

static int v9p_activate(void *opaque, uint64_t features)
{
	struct v9p *d = opaque;

	(void)features;
	if (!virtio_dev_queue(d->vd, 0)) {
		virtio_dev_guest_error(d->vd, "DRIVER_OK without request "
				       "queue 0");
		return -1;
	}
	return 1;
}

/* After a reset drained: the 9P session is over. */
static void v9p_reset(void *opaque)
{
	struct v9p *d = opaque;

	p9_server_reset(d->srv);
	arm_timer(d, false);
}

/* Teardown: parked requests end here, without replies. */
static void v9p_drain(void *opaque)
{
	struct v9p *d = opaque;

	p9_server_cancel_parked(d->srv);
}

static const struct virtio_dev_class v9p_class = {
	.device_id = VIRTIO_ID_9P,
	.num_queues = 1,
	.queue_max = V9P_QUEUE_SIZE,
	.config_size = 0,	/* set per device: 2 + the tag */
	.config_read = v9p_config_read,
	.activate = v9p_activate,
	.work = v9p_work,
	.reset = v9p_reset,
	.drain = v9p_drain,
};

static void v9p_free(struct v9p *d)
{
	virtio_dev_destroy(d->vd);
	p9_server_destroy(d->srv);
	if (d->timer_fd >= 0)
		close(d->timer_fd);
	free(d->reqs);
	free(d);
}

static void v9p_destroy(void *opaque)
{
	v9p_free(opaque);
}

/* Each fid may hold up to three descriptors: ask for the hard limit so a
 * busy guest meets EMFILE as late as possible. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int v9p_create(struct vm *vm, const void *cfg, char *err,
		      size_t errlen)
{
	const struct v9p_opts *o = cfg;
	struct p9_server_opts so = { .path = o->path,
				     .readonly = o->readonly,
				     .log = server_log };
	uint16_t tag_len = (uint16_t)strlen(o->tag);
	struct v9p *d = calloc(1, sizeof(*d));
	char e2[200];

	if (!d) {
		snprintf(err, errlen, "virtio-9p: out of memory");
		return VMM_EXIT_INTERNAL;
	}
	snprintf(d->name, sizeof(d->name), "virtio-9p%u", o->index);
	d->timer_fd = -1;
	so.log_opaque = d;
	d->srv = p9_server_create(&so, e2, sizeof(e2));
	if (!d->srv) {
		snprintf(err, errlen, "--fs: %s", e2);
		v9p_free(d);
		return VMM_EXIT_BAD_INPUT;
	}
	p9_server_set_complete(d->srv, on_parked_done, d);
	d->reqs = calloc(V9P_QUEUE_SIZE, sizeof(*d->reqs));
	d->timer_fd = timerfd_create(CLOCK_MONOTONIC,
				     TFD_NONBLOCK | TFD_CLOEXEC);
	if (!d->reqs || d->timer_fd < 0) {
		snprintf(err, errlen, "%s: %s", d->name,
			 d->reqs ? strerror(errno) : "out of memory");
		v9p_free(d);
		return VMM_EXIT_INTERNAL;
	}
	for (unsigned i = 0; i < V9P_QUEUE_SIZE; i++) {
		d->reqs[i].d = d;
		release(d, &d->reqs[i]);
	}
	/* config: tag_len (LE16), then the tag without a NUL */
	memcpy(d->config, &tag_len, 2);
	memcpy(d->config + 2, o->tag, tag_len);
	d->config_size = 2U + tag_len;
	/* the class carries the config size: one per device */
	d->cls = v9p_class;
	d->cls.config_size = d->config_size;
	d->vd = virtio_dev_create(vm, d->name, &d->cls, d,
				  (1ULL << VIRTIO_9P_MOUNT_TAG) |
				  (1ULL << VIRTIO_F_INDIRECT_DESC) |
				  (1ULL << VIRTIO_F_EVENT_IDX),
				  err, errlen);
	if (!d->vd) {
		v9p_free(d);
		return VMM_EXIT_INTERNAL;
	}
	if (virtio_dev_add_fd(d->vd, d->timer_fd, v9p_on_timer) < 0 ||
	    virtio_dev_start(d->vd, err, errlen) < 0) {
		snprintf(err, errlen, "%s: cannot start the device thread",
			 d->name);
		v9p_free(d);
		return VMM_EXIT_INTERNAL;
	}
	if (vm_add_device(vm, d->name, v9p_destroy, d) < 0) {
		snprintf(err, errlen, "%s: cannot register the device",
			 d->name);
		v9p_free(d);
		return VMM_EXIT_INTERNAL;
	}
	raise_fd_limit();
	return 0;
}

static bool tag_ok(const char *t)
{
	if (!*t || strlen(t) > V9P_TAG_MAX)
		return false;
	for (; *t; t++)
		if (!(*t >= 'a' && *t <= 'z') && !(*t >= 'A' && *t <= 'Z') &&
		    !(*t >= '0' && *t <= '9') && !strchr("._-", *t))
			return false;
	return true;
}

static int v9p_parse(char *s, void *cfg, unsigned index, char *err,
		     size_t errlen)
{
	struct v9p_opts *o = cfg;
	char *save = NULL, *kv;

	memset(o, 0, sizeof(*o));
	o->index = index;
	for (kv = strtok_r(s, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *v = strchr(kv, '=');

		if (!v)
			return errf(err, errlen, "'%s' is not key=value", kv);
		*v++ = '\0';
		if (!strcmp(kv, "path")) {
			if (!*v)
				return errf(err, errlen, "empty path");
			o->path = v;
		} else if (!strcmp(kv, "tag")) {
			if (!tag_ok(v))
				return errf(err, errlen, "tag '%s': 1 to %d of "
					    "A-Z a-z 0-9 . _ -", v,
					    V9P_TAG_MAX);
			o->tag = v;
		} else if (!strcmp(kv, "readonly")) {
			if (device_parse_onoff(v, &o->readonly))
				return errf(err, errlen,
					    "readonly=%s: expected on or off", v);
		} else {
			return errf(err, errlen, "unknown key '%s'", kv);
		}
	}
	if (!o->path)
		return errf(err, errlen, "path= is required");
	if (!o->tag)
		return errf(err, errlen, "tag= is required (the guest mounts "
			    "by it)");
	return 0;
}

/* Two shares with one tag: the guest could mount only the first. */
static int v9p_check(const void *configs, unsigned count, char *err,
		     size_t errlen)
{
	const struct v9p_opts *o = configs, *last = &o[count - 1];

	for (unsigned i = 0; i + 1 < count; i++)
		if (!strcmp(o[i].tag, last->tag))
			return errf(err, errlen, "tag '%s' is already used by "
				    "--fs #%u (path=%s)", last->tag, i + 1,
				    o[i].path);
	return 0;
}

const struct device_type virtio_9p_type = {
	.option = "fs",
	.usage =
"  --fs path=DIR,tag=TAG[,readonly=on]\n"
"                         share a host directory (virtio-9p, 9P2000.L;\n"
"                         repeatable, up to 8); the guest mounts it with\n"
"                         mount -t 9p -o trans=virtio,version=9p2000.L TAG DIR\n",
	.max = V9P_MAX_SHARES,
	.config_size = sizeof(struct v9p_opts),
	.parse = v9p_parse,
	.create = v9p_create,
	.check = v9p_check,
};
