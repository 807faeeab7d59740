/* tests/fuzz/p9_server_fuzz.c - a libFuzzer target for the 9P2000.L
 * server's message parsing and the file operations behind it.  The input
 * is a run of raw T-messages, each starting with its own size field (a
 * size that lies is cut to what is left); after a fixed Tversion and
 * Tattach (fid 0 = the share's root) each is served in turn, split over
 * iovecs at points taken from the input, into reply room the input picks.
 * The first byte chooses the server: bit 0 readonly.  Any reply is fine;
 * a crash, a hang, a sanitizer report, a leaked descriptor (checked by the
 * unit test) or a write outside the share is not.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I. \
 *     tests/fuzz/p9_server_fuzz.c devices/p9_server.c -o /tmp/p9-fuzz
 *   cp -r tests/fuzz/corpus/p9 /tmp/p9-corpus && /tmp/p9-fuzz /tmp/p9-corpus
 *
 * tests/unit/test_p9_fuzz.c runs the seed corpus (tests/fuzz/corpus/p9)
 * and deterministic mutations of it in make check.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "devices/p9_proto.h"
#include "devices/p9_server.h"

#define FUZZ_MSIZE	65536
#define FUZZ_SLOTS	P9_MAX_PARKED

static struct p9_server *fuzz_srv[2];	/* read-write, readonly */
static char fuzz_top[64], fuzz_share[96];
static unsigned fuzz_inputs;

/* Parked requests keep their buffers until they complete or the server
 * is reset. */
static struct fuzz_slot {
	uint8_t msg[512];
	uint8_t reply[256];
	struct iovec iov[5];	/* in[0..3), out[3..5) */
	struct p9_req req;
	int busy;
} fuzz_slots[FUZZ_SLOTS];

static void fuzz_complete(void *opaque, struct p9_req *r)
{
	(void)opaque;
	((struct fuzz_slot *)r->opaque)->busy = 0;
}

static void fuzz_file(const char *rel, const char *text)
{
	char p[160];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", fuzz_share, rel);
	f = fopen(p, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

/* A small tree; rebuilt now and then so what inputs create cannot pile
 * up. */
static void fuzz_tree(void)
{
	char cmd[800];

	snprintf(cmd, sizeof(cmd), "rm -rf %s && mkdir -p %s/dir/sub && "
		 "ln -s /etc/passwd %s/link && ln -s dir %s/dlink && "
		 "mkfifo %s/fifo", fuzz_share, fuzz_share, fuzz_share,
		 fuzz_share, fuzz_share);
	if (system(cmd) != 0)
		abort();
	fuzz_file("file", "hello\n");
	fuzz_file("dir/sub/deep", "deep\n");
}

void p9_fuzz_cleanup(void);

static void fuzz_init(void)
{
	static int cleanup_registered;
	char err[256];

	if (fuzz_srv[0])
		return;
	/* a libFuzzer run ends with exit(): the temporary tree goes too */
	if (!cleanup_registered++)
		atexit(p9_fuzz_cleanup);
	snprintf(fuzz_top, sizeof(fuzz_top), "/tmp/p9fuzz.XXXXXX");
	if (!mkdtemp(fuzz_top))
		abort();
	snprintf(fuzz_share, sizeof(fuzz_share), "%s/share", fuzz_top);
	fuzz_tree();
	/* next to the share: must never change (the unit test looks) */
	{
		char p[96];
		FILE *f;

		snprintf(p, sizeof(p), "%s/sentinel", fuzz_top);
		f = fopen(p, "w");
		if (!f)
			abort();
		fputs("outside\n", f);
		fclose(f);
	}
	for (int i = 0; i < 2; i++) {
		struct p9_server_opts o = { .path = fuzz_share,
					    .readonly = i == 1 };

		fuzz_srv[i] = p9_server_create(&o, err, sizeof(err));
		if (!fuzz_srv[i]) {
			fprintf(stderr, "p9 fuzz: %s\n", err);
			abort();
		}
		p9_server_set_complete(fuzz_srv[i], fuzz_complete, NULL);
	}
}

/* Tear down what fuzz_init made (the unit test calls this at the end). */
void p9_fuzz_cleanup(void)
{
	char cmd[128];

	for (int i = 0; i < 2; i++) {
		p9_server_destroy(fuzz_srv[i]);
		fuzz_srv[i] = NULL;
	}
	if (fuzz_top[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", fuzz_top);
		if (system(cmd) != 0)
			fprintf(stderr, "p9 fuzz: cannot remove %s\n", fuzz_top);
	}
	fuzz_top[0] = '\0';
}

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* Serve one message; mode picks the iovec split and the reply room. */
static void fuzz_one(struct p9_server *s, const uint8_t *msg, size_t len,
		     uint8_t mode)
{
	static uint8_t reply[FUZZ_MSIZE + 64];
	static struct iovec local_iov[5];
	struct fuzz_slot *slot = NULL;
	struct iovec *in, *out;
	struct p9_req *req, local;
	unsigned n_in = 0;
	size_t cut1 = len ? (size_t)(mode * 7) % (len + 1) : 0;
	size_t cut2 = cut1 + (len - cut1) / 2;
	size_t room = mode & 0x80 ? (size_t)(mode & 0x3f) : sizeof(reply);
	uint8_t *rb = reply;

	/* A small message may be a lock that parks: it gets buffers that
	 * live until it completes or the server is reset. */
	if (len <= sizeof(slot->msg))
		for (int i = 0; i < FUZZ_SLOTS && !slot; i++)
			if (!fuzz_slots[i].busy)
				slot = &fuzz_slots[i];
	if (slot) {
		memcpy(slot->msg, msg, len);
		msg = slot->msg;
		rb = slot->reply;
		if (room > sizeof(slot->reply))
			room = sizeof(slot->reply);
		req = &slot->req;
		in = slot->iov;
	} else {
		req = &local;
		in = local_iov;
	}
	out = in + 3;
	/* up to three pieces of the message, two of the reply */
	if (cut1)
		in[n_in++] = (struct iovec){ (void *)msg, cut1 };
	if (cut2 > cut1)
		in[n_in++] = (struct iovec){ (void *)(msg + cut1), cut2 - cut1 };
	if (len > cut2)
		in[n_in++] = (struct iovec){ (void *)(msg + cut2), len - cut2 };
	{
		size_t part = mode & 0x40 ? room / 3 : room;

		out[0] = (struct iovec){ rb, part };
		out[1] = (struct iovec){ rb + part, room - part };
	}
	*req = (struct p9_req){ .in = in, .n_in = n_in, .out = out,
				.n_out = 2, .opaque = slot };
	if (p9_server_handle(s, req) == 0) {
		if (!slot)
			abort();	/* parked, but its buffers are ours */
		slot->busy = 1;
	}
}

static void fuzz_prelude(struct p9_server *s)
{
	uint8_t m[64];
	size_t n = 0;

	/* Tversion msize 64K "9P2000.L" */
	put32(m, 0);
	m[4] = P9_TVERSION;
	m[5] = m[6] = 0;
	n = 7;
	put32(m + n, FUZZ_MSIZE);
	n += 4;
	m[n++] = 8;
	m[n++] = 0;
	memcpy(m + n, P9_VERSION_L, 8);
	n += 8;
	put32(m, (uint32_t)n);
	fuzz_one(s, m, n, 0);
	/* Tattach fid 0, afid NOFID, uname "", aname "", n_uname 0 */
	n = 7;
	m[4] = P9_TATTACH;
	put32(m + n, 0);
	n += 4;
	put32(m + n, P9_NOFID);
	n += 4;
	memset(m + n, 0, 4);
	n += 4;
	put32(m + n, 0);
	n += 4;
	put32(m, (uint32_t)n);
	fuzz_one(s, m, n, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct p9_server *s;
	size_t pos = 1;
	unsigned msgs = 0;

	fuzz_init();
	if (size < 1)
		return 0;
	if (++fuzz_inputs % 256 == 0)
		fuzz_tree();
	s = fuzz_srv[data[0] & 1];
	fuzz_prelude(s);
	while (pos + 4 <= size && msgs++ < 256) {
		uint32_t len;
		uint8_t mode = data[pos - 1];

		memcpy(&len, data + pos, 4);
		if (len < 4 || len > size - pos)
			len = (uint32_t)(size - pos);	/* a lying size */
		fuzz_one(s, data + pos, len, mode);
		pos += len;
	}
	/* drop the session (and parked requests) for the next input */
	p9_server_reset(s);
	for (int i = 0; i < FUZZ_SLOTS; i++)
		fuzz_slots[i].busy = 0;
	return 0;
}
