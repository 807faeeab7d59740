/* tests/unit/p9_wire.h - a tiny 9P2000.L client for tests: builds
 * T-messages byte by byte (so tests can also build broken ones) and reads
 * R-messages, against a struct p9_server with plain buffers. */
#ifndef TESTS_UNIT_P9_WIRE_H
#define TESTS_UNIT_P9_WIRE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#include "devices/p9_proto.h"
#include "devices/p9_server.h"

#define P9W_MAX		(1U << 20)

struct p9w_msg {
	uint8_t b[P9W_MAX + 64];
	size_t n;
};

static inline void p9w_put(struct p9w_msg *m, const void *p, size_t n)
{
	if (m->n + n <= sizeof(m->b))
		memcpy(m->b + m->n, p, n);
	m->n += n;
}

static inline void p9w_8(struct p9w_msg *m, uint8_t v) { p9w_put(m, &v, 1); }
static inline void p9w_16(struct p9w_msg *m, uint16_t v) { p9w_put(m, &v, 2); }
static inline void p9w_32(struct p9w_msg *m, uint32_t v) { p9w_put(m, &v, 4); }
static inline void p9w_64(struct p9w_msg *m, uint64_t v) { p9w_put(m, &v, 8); }

static inline void p9w_str(struct p9w_msg *m, const char *s)
{
	size_t n = strlen(s);

	p9w_16(m, (uint16_t)n);
	p9w_put(m, s, n);
}

static inline void p9w_start(struct p9w_msg *m, uint8_t type, uint16_t tag)
{
	m->n = 0;
	p9w_32(m, 0);
	p9w_8(m, type);
	p9w_16(m, tag);
}

/* Fill in the size field with the real length. */
static inline void p9w_end(struct p9w_msg *m)
{
	uint32_t n = (uint32_t)m->n;

	memcpy(m->b, &n, 4);
}

/* A received R-message and a cursor over its body. */
struct p9w_reply {
	uint8_t b[P9W_MAX + 64];
	uint32_t len;
	size_t pos;
	uint8_t type;
	uint16_t tag;
};

static inline void p9w_get(struct p9w_reply *r, void *p, size_t n)
{
	if (r->pos + n <= r->len)
		memcpy(p, r->b + r->pos, n);
	else
		memset(p, 0xee, n);
	r->pos += n;
}

static inline uint8_t p9w_r8(struct p9w_reply *r) { uint8_t v; p9w_get(r, &v, 1); return v; }
static inline uint16_t p9w_r16(struct p9w_reply *r) { uint16_t v; p9w_get(r, &v, 2); return v; }
static inline uint32_t p9w_r32(struct p9w_reply *r) { uint32_t v; p9w_get(r, &v, 4); return v; }
static inline uint64_t p9w_r64(struct p9w_reply *r) { uint64_t v; p9w_get(r, &v, 8); return v; }

/* A string into buf (truncated to cap - 1). */
static inline void p9w_rstr(struct p9w_reply *r, char *buf, size_t cap)
{
	uint16_t n = p9w_r16(r);
	size_t k = n < cap ? n : cap - 1;

	if (r->pos + n <= r->len)
		memcpy(buf, r->b + r->pos, k);
	else
		k = 0;
	buf[k] = '\0';
	r->pos += n;
}

/* Parse the header of what the server wrote. */
static inline void p9w_parse(struct p9w_reply *r)
{
	r->pos = 0;
	r->type = 0;
	r->tag = 0;
	if (r->len >= P9_HDR_SIZE) {
		uint32_t size;

		memcpy(&size, r->b, 4);
		r->type = r->b[4];
		memcpy(&r->tag, r->b + 5, 2);
		r->pos = P9_HDR_SIZE;
	}
}

/* The errno of an Rlerror, or 0 for any other reply. */
static inline int p9w_err(const struct p9w_reply *r)
{
	uint32_t e;

	if (r->type != P9_RLERROR || r->len < P9_HDR_SIZE + 4)
		return 0;
	memcpy(&e, r->b + P9_HDR_SIZE, 4);
	return (int)e;
}

/* Send m (as one iovec) and receive into r (one iovec of room bytes).
 * Returns what p9_server_handle returned. */
static inline int p9w_rpc_room(struct p9_server *s, struct p9w_msg *m,
			       struct p9w_reply *r, size_t room)
{
	struct iovec in = { m->b, m->n < sizeof(m->b) ? m->n : sizeof(m->b) };
	struct iovec out = { r->b, room };
	struct p9_req req = { .in = &in, .n_in = 1, .out = &out, .n_out = 1 };
	int ret = p9_server_handle(s, &req);

	r->len = ret == 1 ? req.reply_len : 0;
	p9w_parse(r);
	return ret;
}

static inline int p9w_rpc(struct p9_server *s, struct p9w_msg *m,
			  struct p9w_reply *r)
{
	return p9w_rpc_room(s, m, r, P9W_MAX);
}

#endif
