/* tests/unit/test_p9_server.c - the 9P2000.L server spoken to in raw 9P:
 * every message the Linux client uses, both sides checked (what the reply
 * says and what the host tree holds), escape attempts against a sentinel
 * file outside the share, a readonly share that must stay byte-identical,
 * and malformed messages, each of which must get an Rlerror. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "devices/p9_proto.h"
#include "devices/p9_server.h"
#include "tests/unit/check_main.h"
#include "tests/unit/p9_wire.h"

#define SENTINEL_TEXT	"SENTINEL-OUTSIDE-THE-SHARE\n"
#define ROOT_FID	1

static char top[256], share[300], outside[300], sentinel[320];
static struct p9_server *srv;
static struct p9w_msg M;
static struct p9w_reply R;
static uint16_t next_tag = 1;
static unsigned log_lines;

static void count_log(void *opaque, const char *msg)
{
	(void)opaque;
	(void)msg;
	log_lines++;
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	ck_assert_msg(system(cmd) == 0, "failed: %s", cmd);
}

static void put_file(const char *rel, const char *text)
{
	char p[600];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", share, rel);
	f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static char *host_path(const char *rel)
{
	static char p[4][600];
	static int k;

	k = (k + 1) % 4;
	snprintf(p[k], sizeof(p[k]), "%s/%s", share, rel);
	return p[k];
}

static struct p9_server *make_server(const char *path, bool ro)
{
	struct p9_server_opts o = { .path = path, .readonly = ro,
				    .log = count_log };
	char err[256];
	struct p9_server *s = p9_server_create(&o, err, sizeof(err));

	ck_assert_msg(s != NULL, "create: %s", err);
	return s;
}

/* The tree: share/ with files, a directory, symlinks pointing out (final
 * and mid-path), a device node and a fifo; outside/sentinel next to it. */
static void setup(void)
{
	snprintf(top, sizeof(top), "/tmp/p9test.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(top));
	snprintf(share, sizeof(share), "%s/share", top);
	snprintf(outside, sizeof(outside), "%s/outside", top);
	snprintf(sentinel, sizeof(sentinel), "%s/sentinel", outside);
	sh("mkdir -p %s/dir/sub %s && printf '%s' >%s && chmod 600 %s",
	   share, outside, SENTINEL_TEXT, sentinel, sentinel);
	put_file("file", "hello from the host\n");
	put_file("dir/sub/deep", "deep\n");
	sh("ln -s %s %s/abs_link && ln -s ../outside/sentinel %s/rel_link && "
	   "ln -s ../outside %s/dir_link && mkfifo %s/fifo",
	   sentinel, share, share, share, share);
	/* a device node the host put there (root only): never opened */
	if (mknod(host_path("null_dev"), S_IFCHR | 0666, makedev(1, 3)))
		put_file("null_dev", "");	/* not root: a stand-in */
	srv = make_server(share, false);
	log_lines = 0;
}

/* The sentinel must be exactly as made: same bytes, never written. */
static void check_sentinel(void)
{
	char buf[128] = "";
	int fd = open(sentinel, O_RDONLY);
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	ck_assert_int_eq(n, (ssize_t)strlen(SENTINEL_TEXT));
	ck_assert_str_eq(buf, SENTINEL_TEXT);
}

static void teardown(void)
{
	p9_server_destroy(srv);
	srv = NULL;
	check_sentinel();
	sh("rm -rf %s", top);
}

/* ---- client helpers: each returns the Rlerror errno, or 0 ---- */

static void start(uint8_t type)
{
	p9w_start(&M, type, next_tag++);
}

static int rpc(uint8_t rtype)
{
	int e;

	p9w_end(&M);
	ck_assert_int_eq(p9w_rpc(srv, &M, &R), 1);
	ck_assert_uint_ge(R.len, P9_HDR_SIZE);
	e = p9w_err(&R);
	if (!e)
		ck_assert_uint_eq(R.type, rtype);
	return e;
}

static int t_version(uint32_t msize, const char *ver, uint32_t *got,
		     char *gotver, size_t cap)
{
	int e;

	start(P9_TVERSION);
	p9w_32(&M, msize);
	p9w_str(&M, ver);
	e = rpc(P9_RVERSION);
	if (!e) {
		*got = p9w_r32(&R);
		p9w_rstr(&R, gotver, cap);
	}
	return e;
}

static int t_attach(uint32_t fid)
{
	start(P9_TATTACH);
	p9w_32(&M, fid);
	p9w_32(&M, P9_NOFID);
	p9w_str(&M, "root");
	p9w_str(&M, "");
	p9w_32(&M, 0);
	return rpc(P9_RATTACH);
}

static void session(void)
{
	uint32_t ms;
	char v[32];

	ck_assert_int_eq(t_version(512 * 1024, P9_VERSION_L, &ms, v, sizeof(v)),
			 0);
	ck_assert_int_eq(t_attach(ROOT_FID), 0);
}

/* Walk fid to newfid along a '/'-separated list of names ("" for none).
 * *nq: qids in the reply. */
static int t_walkq(uint32_t fid, uint32_t newfid, const char *path,
		   unsigned *nq)
{
	char buf[1024], *save = NULL, *p;
	const char *names[32];
	unsigned n = 0;
	int e;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = strtok_r(buf, "/", &save); p && n < 32;
	     p = strtok_r(NULL, "/", &save))
		names[n++] = p;
	start(P9_TWALK);
	p9w_32(&M, fid);
	p9w_32(&M, newfid);
	p9w_16(&M, (uint16_t)n);
	for (unsigned i = 0; i < n; i++)
		p9w_str(&M, names[i]);
	e = rpc(P9_RWALK);
	if (!e && nq)
		*nq = p9w_r16(&R);
	return e;
}

/* A full walk: an error, or ENOENT-like failure when only part worked. */
static int t_walk(uint32_t fid, uint32_t newfid, const char *path)
{
	unsigned nq = 0, want = 0;
	int e = t_walkq(fid, newfid, path, &nq);

	for (const char *p = path; *p; p++)
		if (*p != '/' && (p == path || p[-1] == '/'))
			want++;
	if (e)
		return e;
	return nq == want ? 0 : -(int)nq - 1000;	/* partial: -1000-nq */
}

static int t_clunk(uint32_t fid)
{
	start(P9_TCLUNK);
	p9w_32(&M, fid);
	return rpc(P9_RCLUNK);
}

static int t_lopen(uint32_t fid, uint32_t flags)
{
	start(P9_TLOPEN);
	p9w_32(&M, fid);
	p9w_32(&M, flags);
	return rpc(P9_RLOPEN);
}

static int t_lcreate(uint32_t fid, const char *name, uint32_t flags,
		     uint32_t mode)
{
	start(P9_TLCREATE);
	p9w_32(&M, fid);
	p9w_str(&M, name);
	p9w_32(&M, flags);
	p9w_32(&M, mode);
	p9w_32(&M, 0);
	return rpc(P9_RLCREATE);
}

static int t_read(uint32_t fid, uint64_t off, uint32_t count, char *buf,
		  size_t cap, uint32_t *got)
{
	int e;

	start(P9_TREAD);
	p9w_32(&M, fid);
	p9w_64(&M, off);
	p9w_32(&M, count);
	e = rpc(P9_RREAD);
	*got = 0;
	if (!e) {
		*got = p9w_r32(&R);
		ck_assert_uint_le(*got, cap);
		p9w_get(&R, buf, *got);
	}
	return e;
}

/* Read a whole small file through fid (opened already) as a string. */
static char *read_all(uint32_t fid)
{
	static char buf[8192];
	uint32_t got;

	ck_assert_int_eq(t_read(fid, 0, sizeof(buf) - 1, buf, sizeof(buf) - 1,
				&got), 0);
	buf[got] = '\0';
	return buf;
}

static int t_write(uint32_t fid, uint64_t off, const void *data, uint32_t n,
		   uint32_t *got)
{
	int e;

	start(P9_TWRITE);
	p9w_32(&M, fid);
	p9w_64(&M, off);
	p9w_32(&M, n);
	p9w_put(&M, data, n);
	e = rpc(P9_RWRITE);
	*got = e ? 0 : p9w_r32(&R);
	return e;
}

struct attr {
	uint8_t qtype;
	uint64_t qpath;
	uint32_t mode, uid, gid;
	uint64_t nlink, size, mtime;
};

static int t_getattr(uint32_t fid, struct attr *a)
{
	int e;

	start(P9_TGETATTR);
	p9w_32(&M, fid);
	p9w_64(&M, P9_GETATTR_BASIC);
	e = rpc(P9_RGETATTR);
	if (e)
		return e;
	p9w_r64(&R);
	a->qtype = p9w_r8(&R);
	p9w_r32(&R);
	a->qpath = p9w_r64(&R);
	a->mode = p9w_r32(&R);
	a->uid = p9w_r32(&R);
	a->gid = p9w_r32(&R);
	a->nlink = p9w_r64(&R);
	p9w_r64(&R);	/* rdev */
	a->size = p9w_r64(&R);
	p9w_r64(&R);
	p9w_r64(&R);
	p9w_r64(&R);	/* atime */
	p9w_r64(&R);
	a->mtime = p9w_r64(&R);
	ck_assert_uint_eq(R.pos + 8 * 7, R.len);
	return 0;
}

static int t_setattr(uint32_t fid, uint32_t valid, uint32_t mode,
		     uint32_t uid, uint32_t gid, uint64_t size,
		     uint64_t mtime)
{
	start(P9_TSETATTR);
	p9w_32(&M, fid);
	p9w_32(&M, valid);
	p9w_32(&M, mode);
	p9w_32(&M, uid);
	p9w_32(&M, gid);
	p9w_64(&M, size);
	p9w_64(&M, mtime);
	p9w_64(&M, 0);
	p9w_64(&M, mtime);
	p9w_64(&M, 0);
	return rpc(P9_RSETATTR);
}

static int t_dirop(uint8_t type, uint32_t dfid, const char *name,
		   uint32_t mode)
{
	start(type);
	p9w_32(&M, dfid);
	p9w_str(&M, name);
	p9w_32(&M, mode);
	if (type == P9_TMKNOD) {
		p9w_32(&M, 8);	/* major, minor: sda */
		p9w_32(&M, 0);
	}
	p9w_32(&M, 0);	/* gid */
	return rpc(type + 1);
}

static int t_symlink(uint32_t dfid, const char *name, const char *target)
{
	start(P9_TSYMLINK);
	p9w_32(&M, dfid);
	p9w_str(&M, name);
	p9w_str(&M, target);
	p9w_32(&M, 0);
	return rpc(P9_RSYMLINK);
}

static int t_readlink(uint32_t fid, char *buf, size_t cap)
{
	int e;

	start(P9_TREADLINK);
	p9w_32(&M, fid);
	e = rpc(P9_RREADLINK);
	if (!e)
		p9w_rstr(&R, buf, cap);
	return e;
}

static int t_link(uint32_t dfid, uint32_t fid, const char *name)
{
	start(P9_TLINK);
	p9w_32(&M, dfid);
	p9w_32(&M, fid);
	p9w_str(&M, name);
	return rpc(P9_RLINK);
}

static int t_rename(uint32_t fid, uint32_t dfid, const char *name)
{
	start(P9_TRENAME);
	p9w_32(&M, fid);
	p9w_32(&M, dfid);
	p9w_str(&M, name);
	return rpc(P9_RRENAME);
}

static int t_renameat(uint32_t ofid, const char *oname, uint32_t nfid,
		      const char *nname)
{
	start(P9_TRENAMEAT);
	p9w_32(&M, ofid);
	p9w_str(&M, oname);
	p9w_32(&M, nfid);
	p9w_str(&M, nname);
	return rpc(P9_RRENAMEAT);
}

static int t_unlinkat(uint32_t dfid, const char *name, uint32_t flags)
{
	start(P9_TUNLINKAT);
	p9w_32(&M, dfid);
	p9w_str(&M, name);
	p9w_32(&M, flags);
	return rpc(P9_RUNLINKAT);
}

static int t_fid_op(uint8_t type, uint32_t fid)
{
	start(type);
	p9w_32(&M, fid);
	if (type == P9_TFSYNC)
		p9w_32(&M, 0);
	return rpc(type + 1);
}

static int t_xattrwalk(uint32_t fid, uint32_t newfid, const char *name,
		       uint64_t *size)
{
	int e;

	start(P9_TXATTRWALK);
	p9w_32(&M, fid);
	p9w_32(&M, newfid);
	p9w_str(&M, name);
	e = rpc(P9_RXATTRWALK);
	if (!e)
		*size = p9w_r64(&R);
	return e;
}

static int t_xattrcreate(uint32_t fid, const char *name, uint64_t size,
			 uint32_t flags)
{
	start(P9_TXATTRCREATE);
	p9w_32(&M, fid);
	p9w_str(&M, name);
	p9w_64(&M, size);
	p9w_32(&M, flags);
	return rpc(P9_RXATTRCREATE);
}

/* All names in directory fid (opened), reading count bytes at a time. */
static int readdir_names(uint32_t fid, uint32_t count, char *out,
			 size_t cap)
{
	uint64_t off = 0;
	int entries = 0;

	out[0] = '\0';
	for (int rounds = 0; rounds < 1000; rounds++) {
		uint32_t n;
		size_t end;

		start(P9_TREADDIR);
		p9w_32(&M, fid);
		p9w_64(&M, off);
		p9w_32(&M, count);
		ck_assert_int_eq(rpc(P9_RREADDIR), 0);
		n = p9w_r32(&R);
		if (n == 0)
			return entries;
		end = R.pos + n;
		ck_assert_uint_eq(end, R.len);
		while (R.pos < end) {
			char name[256];

			p9w_r8(&R);
			p9w_r32(&R);
			p9w_r64(&R);
			off = p9w_r64(&R);
			p9w_r8(&R);
			p9w_rstr(&R, name, sizeof(name));
			strncat(out, name, cap - strlen(out) - 2);
			strcat(out, " ");
			entries++;
		}
	}
	ck_abort_msg("readdir does not end");
	return -1;
}

static bool has_word(const char *list, const char *w)
{
	char pat[300];

	snprintf(pat, sizeof(pat), " %s ", w);
	char buf[8200];

	snprintf(buf, sizeof(buf), " %s", list);
	return strstr(buf, pat) != NULL;
}

/* ---- tests: the protocol ---- */

START_TEST(version_and_attach)
{
	uint32_t ms;
	char v[32];
	struct attr a;
	struct stat st;

	/* nothing before Tversion */
	ck_assert_int_eq(t_attach(ROOT_FID), EPROTO);
	ck_assert_int_eq(t_version(8 << 20, P9_VERSION_L, &ms, v, sizeof(v)), 0);
	ck_assert_uint_eq(ms, P9_MAX_MSIZE);
	ck_assert_str_eq(v, P9_VERSION_L);
	ck_assert_int_eq(t_version(512 * 1024, "9P2000.u", &ms, v, sizeof(v)), 0);
	ck_assert_str_eq(v, "unknown");
	ck_assert_int_eq(t_attach(ROOT_FID), EPROTO);
	ck_assert_int_eq(t_version(1024, P9_VERSION_L, &ms, v, sizeof(v)), EINVAL);
	ck_assert_int_eq(t_version(512 * 1024, P9_VERSION_L, &ms, v, sizeof(v)), 0);
	ck_assert_uint_eq(ms, 512 * 1024);
	ck_assert_uint_eq(p9_server_msize(srv), 512 * 1024);
	ck_assert_int_eq(t_attach(ROOT_FID), 0);
	ck_assert_int_eq(t_attach(ROOT_FID), EEXIST);	/* fid reuse */
	ck_assert_int_eq(t_getattr(ROOT_FID, &a), 0);
	ck_assert_int_eq(stat(share, &st), 0);
	ck_assert_uint_eq(a.qpath, st.st_ino);
	ck_assert_uint_eq(a.qtype, P9_QTDIR);
	ck_assert(S_ISDIR(a.mode));
	/* a new version ends the session: the fid is gone */
	ck_assert_int_eq(t_version(65536, P9_VERSION_L, &ms, v, sizeof(v)), 0);
	ck_assert_int_eq(t_getattr(ROOT_FID, &a), EBADF);
	ck_assert_uint_eq(p9_server_fids(srv), 0);
}
END_TEST

START_TEST(walk_read_write)
{
	struct attr a;
	struct stat st;
	uint32_t got;
	char buf[64];

	session();
	ck_assert_int_eq(t_walk(ROOT_FID, 2, "dir/sub/deep"), 0);
	ck_assert_int_eq(t_getattr(2, &a), 0);
	ck_assert_int_eq(stat(host_path("dir/sub/deep"), &st), 0);
	ck_assert_uint_eq(a.qpath, st.st_ino);
	ck_assert_uint_eq(a.size, 5);
	ck_assert_int_eq(t_lopen(2, 0), 0);
	ck_assert_str_eq(read_all(2), "deep\n");
	ck_assert_int_eq(t_lopen(2, 0), EBUSY);		/* already open */
	/* a missing first name: an error; a later one: the qids so far */
	ck_assert_int_eq(t_walk(ROOT_FID, 3, "nope"), ENOENT);
	ck_assert_int_eq(t_walk(ROOT_FID, 3, "dir/nope/x"), -1001);
	ck_assert_int_eq(t_getattr(3, &a), EBADF);	/* not created */
	ck_assert_int_eq(t_walk(ROOT_FID, 2, "dir"), EEXIST);	/* in use */

	/* write: overwrite, then append beyond the end */
	ck_assert_int_eq(t_walk(ROOT_FID, 3, "file"), 0);
	ck_assert_int_eq(t_lopen(3, 2), 0);
	ck_assert_int_eq(t_write(3, 0, "HELLO", 5, &got), 0);
	ck_assert_uint_eq(got, 5);
	ck_assert_int_eq(t_write(3, 20, "more\n", 5, &got), 0);
	ck_assert_int_eq(t_read(3, 0, 64, buf, sizeof(buf), &got), 0);
	ck_assert_uint_eq(got, 25);
	ck_assert(!memcmp(buf, "HELLO from the host\nmore\n", 25));
	ck_assert_int_eq(stat(host_path("file"), &st), 0);
	ck_assert_int_eq(st.st_size, 25);
	/* past the end: 0 bytes; fsync works on an open fid */
	ck_assert_int_eq(t_read(3, 1000, 64, buf, sizeof(buf), &got), 0);
	ck_assert_uint_eq(got, 0);
	ck_assert_int_eq(t_fid_op(P9_TFSYNC, 3), 0);
	ck_assert_int_eq(t_fid_op(P9_TFSYNC, ROOT_FID), EBADF);
	/* O_APPEND appends whatever the offset */
	ck_assert_int_eq(t_walk(ROOT_FID, 4, "file"), 0);
	ck_assert_int_eq(t_lopen(4, 1 | P9_DOTL_APPEND), 0);
	ck_assert_int_eq(t_write(4, 0, "tail", 4, &got), 0);
	ck_assert_int_eq(stat(host_path("file"), &st), 0);
	ck_assert_int_eq(st.st_size, 29);
	/* a read-only open cannot write */
	ck_assert_int_eq(t_write(2, 0, "x", 1, &got), EBADF);
	/* clunk; then the fid is gone */
	ck_assert_int_eq(t_clunk(3), 0);
	ck_assert_int_eq(t_clunk(3), EBADF);
	ck_assert_int_eq(t_fid_op(P9_TSTATFS, ROOT_FID), 0);
	ck_assert_uint_eq(R.len, P9_HDR_SIZE + 4 + 4 + 8 * 6 + 4);
}
END_TEST

/* Requests and replies split over many small iovecs, as a guest's
 * descriptor chains may be. */
START_TEST(scattered_buffers)
{
	static uint8_t data[100000], back[100000];
	uint8_t rbuf[200000];
	struct iovec in[64], out[64];
	struct p9_req req;
	unsigned nin, nout;
	size_t pos;
	uint32_t count;

	session();
	ck_assert_int_eq(t_walk(ROOT_FID, 2, ""), 0);
	ck_assert_int_eq(t_lcreate(2, "big", 2, 0644), 0);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + (i >> 9));
	/* Twrite of 100000 bytes in pieces of 1..4096 bytes */
	start(P9_TWRITE);
	p9w_32(&M, 2);
	p9w_64(&M, 0);
	p9w_32(&M, sizeof(data));
	p9w_put(&M, data, sizeof(data));
	p9w_end(&M);
	for (nin = 0, pos = 0; pos < M.n; nin++) {
		size_t k = nin < 3 ? 1 + nin : 4093 + nin * 37 % 11;

		ck_assert_uint_lt(nin, 64);
		if (k > M.n - pos)
			k = M.n - pos;
		in[nin] = (struct iovec){ M.b + pos, k };
		pos += k;
	}
	out[0] = (struct iovec){ rbuf, 3 };
	out[1] = (struct iovec){ rbuf + 3, 0 };
	out[2] = (struct iovec){ rbuf + 3, 100 };
	req = (struct p9_req){ .in = in, .n_in = nin, .out = out, .n_out = 3 };
	ck_assert_int_eq(p9_server_handle(srv, &req), 1);
	ck_assert_uint_eq(req.reply_len, 11);
	ck_assert_uint_eq(rbuf[4], P9_RWRITE);
	memcpy(&count, rbuf + 7, 4);
	ck_assert_uint_eq(count, sizeof(data));

	/* Tread into a reply split at odd places */
	start(P9_TREAD);
	p9w_32(&M, 2);
	p9w_64(&M, 0);
	p9w_32(&M, sizeof(data));
	p9w_end(&M);
	in[0] = (struct iovec){ M.b, 5 };
	in[1] = (struct iovec){ M.b + 5, M.n - 5 };
	for (nout = 0, pos = 0; pos < sizeof(rbuf) && nout < 64; nout++) {
		size_t k = nout == 0 ? 2 : nout == 1 ? 9 : 3001 + nout;

		out[nout] = (struct iovec){ rbuf + pos, k };
		pos += k;
	}
	req = (struct p9_req){ .in = in, .n_in = 2, .out = out,
			       .n_out = nout };
	ck_assert_int_eq(p9_server_handle(srv, &req), 1);
	ck_assert_uint_eq(req.reply_len, 11 + sizeof(data));
	ck_assert_uint_eq(rbuf[4], P9_RREAD);
	memcpy(&count, rbuf + 7, 4);
	ck_assert_uint_eq(count, sizeof(data));
	memcpy(back, rbuf + 11, sizeof(back));
	ck_assert(!memcmp(back, data, sizeof(data)));
}
END_TEST

START_TEST(create_and_namespace_ops)
{
	struct attr a;
	struct stat st;
	char buf[256];
	uint32_t got;

	session();
	/* lcreate: the fid becomes the new file, mode exactly as asked
	 * (whatever the VMM's umask) */
	umask(022);
	p9_server_destroy(srv);
	srv = make_server(share, false);
	session();
	ck_assert_int_eq(t_walk(ROOT_FID, 2, "dir"), 0);
	ck_assert_int_eq(t_lcreate(2, "new", 2, 0666), 0);
	ck_assert_int_eq(t_write(2, 0, "created", 7, &got), 0);
	ck_assert_int_eq(stat(host_path("dir/new"), &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0666);
	ck_assert_int_eq(st.st_size, 7);
	ck_assert_int_eq(t_walk(ROOT_FID, 3, "dir"), 0);
	ck_assert_int_eq(t_lcreate(3, "new", 2 | P9_DOTL_EXCL, 0600), EEXIST);
	ck_assert_int_eq(t_lcreate(3, "new", 0, 0600), 0);	/* opens it */
	ck_assert_str_eq(read_all(3), "created");
	/* mkdir with 0777 and sticky bit kept */
	ck_assert_int_eq(t_dirop(P9_TMKDIR, ROOT_FID, "d2", 01777), 0);
	ck_assert_int_eq(stat(host_path("d2"), &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 01777);
	ck_assert_int_eq(t_dirop(P9_TMKDIR, ROOT_FID, "d2", 0755), EEXIST);
	/* mknod: a fifo and a regular file */
	ck_assert_int_eq(t_dirop(P9_TMKNOD, ROOT_FID, "f2", S_IFIFO | 0640), 0);
	ck_assert_int_eq(lstat(host_path("f2"), &st), 0);
	ck_assert(S_ISFIFO(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0640);
	ck_assert_int_eq(t_dirop(P9_TMKNOD, ROOT_FID, "r2", S_IFREG | 0604), 0);
	ck_assert_int_eq(lstat(host_path("r2"), &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	/* symlink + readlink: the target is kept as text */
	ck_assert_int_eq(t_symlink(ROOT_FID, "sl", "/etc/passwd"), 0);
	ck_assert_int_eq(readlink(host_path("sl"), buf, sizeof(buf)), 11);
	ck_assert_int_eq(t_walk(ROOT_FID, 4, "sl"), 0);
	ck_assert_int_eq(t_readlink(4, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "/etc/passwd");
	ck_assert_int_eq(t_getattr(4, &a), 0);
	ck_assert_uint_eq(a.qtype, P9_QTSYMLINK);
	ck_assert_int_eq(t_readlink(ROOT_FID, buf, sizeof(buf)), EINVAL);
	/* link: a second name for dir/new */
	ck_assert_int_eq(t_walk(ROOT_FID, 5, "dir/new"), 0);
	ck_assert_int_eq(t_link(ROOT_FID, 5, "hard"), 0);
	ck_assert_int_eq(stat(host_path("hard"), &st), 0);
	ck_assert_int_eq(st.st_nlink, 2);
	ck_assert_int_eq(t_link(ROOT_FID, ROOT_FID, "rootlink"), EPERM);
	/* renameat, then Trename of a fid (which follows its file) */
	ck_assert_int_eq(t_walk(ROOT_FID, 6, "dir"), 0);
	ck_assert_int_eq(t_renameat(ROOT_FID, "hard", 6, "moved"), 0);
	ck_assert_int_eq(access(host_path("dir/moved"), F_OK), 0);
	ck_assert_int_eq(t_walk(ROOT_FID, 7, "dir/moved"), 0);
	ck_assert_int_eq(t_rename(7, ROOT_FID, "back"), 0);
	ck_assert_int_eq(access(host_path("back"), F_OK), 0);
	ck_assert_int_eq(t_rename(7, 6, "again"), 0);
	ck_assert_int_eq(access(host_path("dir/again"), F_OK), 0);
	/* unlinkat and Tremove */
	ck_assert_int_eq(t_unlinkat(6, "again", 0), 0);
	ck_assert_int_eq(access(host_path("dir/again"), F_OK), -1);
	ck_assert_int_eq(t_unlinkat(ROOT_FID, "d2", 0), EISDIR);
	ck_assert_int_eq(t_unlinkat(ROOT_FID, "d2", P9_DOTL_AT_REMOVEDIR), 0);
	ck_assert_int_eq(t_unlinkat(ROOT_FID, "dir", P9_DOTL_AT_REMOVEDIR),
			 ENOTEMPTY);
	ck_assert_int_eq(t_walk(ROOT_FID, 8, "f2"), 0);
	ck_assert_int_eq(t_fid_op(P9_TREMOVE, 8), 0);
	ck_assert_int_eq(lstat(host_path("f2"), &st), -1);
	ck_assert_int_eq(t_clunk(8), EBADF);	/* remove clunked it */
	ck_assert_int_eq(t_walk(ROOT_FID, 8, ""), 0);
	ck_assert_int_eq(t_fid_op(P9_TREMOVE, 8), EBUSY);	/* the root */
	ck_assert_int_eq(access(share, F_OK), 0);
}
END_TEST

START_TEST(readdir_lists_everything)
{
	char names[8192];
	int n;

	session();
	for (int i = 0; i < 150; i++) {
		char nm[64];

		snprintf(nm, sizeof(nm), "dir/entry-with-a-long-name-%03d", i);
		put_file(nm, "x");
	}
	ck_assert_int_eq(t_walk(ROOT_FID, 2, "dir"), 0);
	ck_assert_int_eq(t_lopen(2, 0), 0);
	/* small counts: many rounds, resumed by offset */
	n = readdir_names(2, 200, names, sizeof(names));
	ck_assert_int_eq(n, 150 + 3);	/* ., .., sub */
	ck_assert(has_word(names, "."));
	ck_assert(has_word(names, ".."));
	ck_assert(has_word(names, "sub"));
	ck_assert(has_word(names, "entry-with-a-long-name-000"));
	ck_assert(has_word(names, "entry-with-a-long-name-149"));
	/* one big count */
	ck_assert_int_eq(readdir_names(2, 65536, names, sizeof(names)), n);
	/* not open, or not a directory */
	ck_assert_int_eq(t_walk(ROOT_FID, 3, "dir"), 0);
	start(P9_TREADDIR);
	p9w_32(&M, 3);
	p9w_64(&M, 0);
	p9w_32(&M, 4096);
	ck_assert_int_eq(rpc(P9_RREADDIR), EBADF);
}
END_TEST

START_TEST(setattr_modes_owners_times)
{
	struct attr a;
	struct stat st;

	session();
	ck_assert_int_eq(t_walk(ROOT_FID, 2, "file"), 0);
	ck_assert_int_eq(t_setattr(2, P9_ATTR_MODE, 04751, 0, 0, 0, 0), 0);
	ck_assert_int_eq(stat(host_path("file"), &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 04751);
	ck_assert_int_eq(t_setattr(2, P9_ATTR_SIZE, 0, 0, 0, 5, 0), 0);
	ck_assert_int_eq(stat(host_path("file"), &st), 0);
	ck_assert_int_eq(st.st_size, 5);
	ck_assert_int_eq(t_setattr(2, P9_ATTR_MTIME | P9_ATTR_MTIME_SET, 0, 0,
				   0, 0, 1000000000), 0);
	ck_assert_int_eq(stat(host_path("file"), &st), 0);
	ck_assert_int_eq(st.st_mtime, 1000000000);
	ck_assert_int_eq(t_getattr(2, &a), 0);
	ck_assert_uint_eq(a.mtime, 1000000000);
	ck_assert_uint_eq(a.mode & 07777, 04751);
	ck_assert_int_eq(t_walk(ROOT_FID, 3, "dir"), 0);
	ck_assert_int_eq(t_setattr(3, P9_ATTR_SIZE, 0, 0, 0, 5, 0), EISDIR);
	if (geteuid() == 0) {
		/* owners both ways: the host's show, the guest's stick */
		ck_assert_int_eq(chown(host_path("dir/sub/deep"), 1234, 5678),
				 0);
		ck_assert_int_eq(t_walk(ROOT_FID, 4, "dir/sub/deep"), 0);
		ck_assert_int_eq(t_getattr(4, &a), 0);
		ck_assert_uint_eq(a.uid, 1234);
		ck_assert_uint_eq(a.gid, 5678);
		ck_assert_int_eq(t_setattr(2, P9_ATTR_UID | P9_ATTR_GID, 0,
					   4321, 8765, 0, 0), 0);
		ck_assert_int_eq(stat(host_path("file"), &st), 0);
		ck_assert_uint_eq(st.st_uid, 4321);
		ck_assert_uint_eq(st.st_gid, 8765);
		/* a symlink's owner changes, not its target's */
		ck_assert_int_eq(t_walk(ROOT_FID, 5, "abs_link"), 0);
		ck_assert_int_eq(t_setattr(5, P9_ATTR_UID, 0, 77, 0, 0, 0), 0);
		ck_assert_int_eq(lstat(host_path("abs_link"), &st), 0);
		ck_assert_uint_eq(st.st_uid, 77);
		ck_assert_int_eq(stat(sentinel, &st), 0);
		ck_assert_uint_eq(st.st_uid, 0);
		ck_assert_int_eq(t_setattr(5, P9_ATTR_MODE, 0777, 0, 0, 0, 0),
				 EOPNOTSUPP);
		ck_assert_int_eq(t_setattr(5, P9_ATTR_SIZE, 0, 0, 0, 0, 0),
				 EINVAL);
	}
}
END_TEST

/* ---- tests: POSIX locks ---- */

static struct p9_req *completed[8];
static unsigned ncompleted;

static void on_complete(void *opaque, struct p9_req *r)
{
	(void)opaque;
	ck_assert_uint_lt(ncompleted, 8);
	completed[ncompleted++] = r;
}

/* A lock request that may be parked: its buffers live in slot. */
struct lock_slot {
	struct p9w_msg m;
	struct p9w_reply r;
	struct iovec in, out;
	struct p9_req req;
};

static int send_lock(struct lock_slot *ls, uint32_t fid, uint8_t type,
		     uint32_t flags, uint64_t start_, uint64_t len,
		     uint16_t tag)
{
	int ret;

	p9w_start(&ls->m, P9_TLOCK, tag);
	p9w_32(&ls->m, fid);
	p9w_8(&ls->m, type);
	p9w_32(&ls->m, flags);
	p9w_64(&ls->m, start_);
	p9w_64(&ls->m, len);
	p9w_32(&ls->m, 42);
	p9w_str(&ls->m, "guest");
	p9w_end(&ls->m);
	ls->in = (struct iovec){ ls->m.b, ls->m.n };
	ls->out = (struct iovec){ ls->r.b, 4096 };
	ls->req = (struct p9_req){ .in = &ls->in, .n_in = 1, .out = &ls->out,
				   .n_out = 1 };
	ret = p9_server_handle(srv, &ls->req);
	if (ret == 1) {
		ls->r.len = ls->req.reply_len;
		p9w_parse(&ls->r);
	}
	return ret;
}

/* The Rlock status (or -errno of an Rlerror) of a finished slot. */
static int lock_status(struct lock_slot *ls)
{
	ls->r.len = ls->req.reply_len;
	p9w_parse(&ls->r);
	if (ls->r.type == P9_RLERROR)
		return -p9w_err(&ls->r);
	ck_assert_uint_eq(ls->r.type, P9_RLOCK);
	return p9w_r8(&ls->r);
}

START_TEST(posix_locks)
{
	static struct lock_slot a, b, c2;
	int fd, pfd[2];
	char ch;
	pid_t pid;

	session();
	p9_server_set_complete(srv, on_complete, NULL);
	ck_assert_int_eq(t_walk(ROOT_FID, 2, "file"), 0);
	ck_assert_int_eq(t_lopen(2, 2), 0);
	ck_assert_int_eq(t_walk(ROOT_FID, 3, "file"), 0);
	ck_assert_int_eq(t_lopen(3, 2), 0);
	/* fid 2 takes a write lock; fid 3 (another open) conflicts */
	ck_assert_int_eq(send_lock(&a, 2, P9_LOCK_TYPE_WRLCK, 0, 0, 0, 100), 1);
	ck_assert_int_eq(lock_status(&a), P9_LOCK_SUCCESS);
	ck_assert_int_eq(send_lock(&b, 3, P9_LOCK_TYPE_WRLCK, 0, 0, 10, 101), 1);
	ck_assert_int_eq(lock_status(&b), P9_LOCK_BLOCKED);
	/* a getlock through fid 3 sees the conflict */
	start(P9_TGETLOCK);
	p9w_32(&M, 3);
	p9w_8(&M, P9_LOCK_TYPE_RDLCK);
	p9w_64(&M, 0);
	p9w_64(&M, 0);
	p9w_32(&M, 7);
	p9w_str(&M, "g");
	ck_assert_int_eq(rpc(P9_RGETLOCK), 0);
	ck_assert_uint_eq(p9w_r8(&R), P9_LOCK_TYPE_WRLCK);
	/* the host sees it too: a host process cannot lock the file */
	fd = open(host_path("file"), O_RDWR);
	ck_assert_int_ge(fd, 0);
	{
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

		ck_assert_int_eq(fcntl(fd, F_OFD_SETLK, &fl), -1);
		ck_assert_int_eq(errno, EAGAIN);
	}
	/* a blocking request waits (parked) until fid 2 unlocks */
	ncompleted = 0;
	ck_assert_int_eq(send_lock(&b, 3, P9_LOCK_TYPE_WRLCK,
				   P9_LOCK_FLAGS_BLOCK, 0, 10, 102), 0);
	ck_assert_uint_eq(p9_server_parked(srv), 1);
	ck_assert_uint_eq(p9_server_retry_parked(srv), 1);
	ck_assert_uint_eq(ncompleted, 0);
	ck_assert_int_eq(send_lock(&a, 2, P9_LOCK_TYPE_UNLCK, 0, 0, 0, 103), 1);
	ck_assert_int_eq(lock_status(&a), P9_LOCK_SUCCESS);
	ck_assert_uint_eq(ncompleted, 1);
	ck_assert_ptr_eq(completed[0], &b.req);
	ck_assert_int_eq(lock_status(&b), P9_LOCK_SUCCESS);
	ck_assert_uint_eq(b.r.tag, 102);
	ck_assert_uint_eq(p9_server_parked(srv), 0);
	/* clunking fid 3 drops its lock: the host can lock now */
	ck_assert_int_eq(t_clunk(3), 0);
	{
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

		ck_assert_int_eq(fcntl(fd, F_OFD_SETLK, &fl), 0);
	}
	close(fd);

	/* a host process (classic POSIX lock) holds the file: fid 2 parks,
	 * and gets the lock when the process lets go */
	ck_assert_int_eq(pipe(pfd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		int hfd = open(host_path("file"), O_RDWR);

		if (hfd < 0 || fcntl(hfd, F_SETLK, &fl))
			_exit(1);
		if (write(pfd[1], "L", 1) != 1)
			_exit(1);
		sleep(1);
		_exit(0);	/* exit releases it */
	}
	ck_assert_int_eq(read(pfd[0], &ch, 1), 1);
	ncompleted = 0;
	ck_assert_int_eq(send_lock(&c2, 2, P9_LOCK_TYPE_RDLCK,
				   P9_LOCK_FLAGS_BLOCK, 0, 0, 104), 0);
	for (int i = 0; i < 500 && p9_server_retry_parked(srv); i++)
		usleep(10000);
	ck_assert_uint_eq(ncompleted, 1);
	ck_assert_int_eq(lock_status(&c2), P9_LOCK_SUCCESS);
	waitpid(pid, NULL, 0);

	/* Tflush of a parked lock: it is answered (EINTR) first */
	ck_assert_int_eq(t_walk(ROOT_FID, 4, "file"), 0);
	ck_assert_int_eq(t_lopen(4, 2), 0);
	ncompleted = 0;
	ck_assert_int_eq(send_lock(&b, 4, P9_LOCK_TYPE_WRLCK,
				   P9_LOCK_FLAGS_BLOCK, 0, 0, 105), 0);
	start(P9_TFLUSH);
	p9w_16(&M, 105);
	ck_assert_int_eq(rpc(P9_RFLUSH), 0);
	ck_assert_uint_eq(ncompleted, 1);
	ck_assert_int_eq(lock_status(&b), -EINTR);
	ck_assert_uint_eq(p9_server_parked(srv), 0);
	/* locks need an open regular file */
	ck_assert_int_eq(send_lock(&a, ROOT_FID, P9_LOCK_TYPE_RDLCK, 0, 0, 0,
				   106), 1);
	ck_assert_int_eq(lock_status(&a), -EBADF);
	ck_assert_int_eq(send_lock(&a, 4, 9, 0, 0, 0, 107), 1);
	ck_assert_int_eq(lock_status(&a), -EINVAL);
}
END_TEST

START_TEST(xattrs)
{
	uint64_t size;
	uint32_t got;
	char buf[256];

	if (setxattr(host_path("file"), "user.probe", "1", 1, 0)) {
		/* the host file system has no user xattrs: nothing to test */
		return;
	}
	session();
	ck_assert_int_eq(t_walk(ROOT_FID, 2, "file"), 0);
	ck_assert_int_eq(t_xattrcreate(2, "user.color", 4, 0), 0);
	ck_assert_int_eq(t_write(2, 0, "blue", 4, &got), 0);
	ck_assert_int_eq(t_clunk(2), 0);
	ck_assert_int_eq(getxattr(host_path("file"), "user.color", buf,
				  sizeof(buf)), 4);
	ck_assert(!memcmp(buf, "blue", 4));
	/* read it back, and list */
	ck_assert_int_eq(t_walk(ROOT_FID, 2, "file"), 0);
	ck_assert_int_eq(t_xattrwalk(2, 3, "user.color", &size), 0);
	ck_assert_uint_eq(size, 4);
	ck_assert_int_eq(t_read(3, 0, 100, buf, sizeof(buf), &got), 0);
	ck_assert_uint_eq(got, 4);
	ck_assert(!memcmp(buf, "blue", 4));
	ck_assert_int_eq(t_clunk(3), 0);
	ck_assert_int_eq(t_xattrwalk(2, 3, "", &size), 0);
	ck_assert_int_eq(t_read(3, 0, 100, buf, sizeof(buf), &got), 0);
	ck_assert_uint_eq(got, size);
	ck_assert(memmem(buf, got, "user.color", 11) != NULL);
	ck_assert_int_eq(t_clunk(3), 0);
	ck_assert_int_eq(t_xattrwalk(2, 3, "user.none", &size), ENODATA);
	/* the host's own namespaces stay out of reach */
	ck_assert_int_eq(t_xattrwalk(2, 3, "security.capability", &size),
			 ENODATA);
	ck_assert_int_eq(t_xattrcreate(2, "trusted.overlay.x", 1, 0),
			 EOPNOTSUPP);
	ck_assert_int_eq(t_xattrcreate(2, "security.x", 1, 0), EOPNOTSUPP);
	ck_assert_int_eq(t_xattrcreate(2, "user.big", P9_MAX_XATTR_SIZE + 1,
				       0), E2BIG);
	/* size 0 removes; a short write is refused at clunk */
	ck_assert_int_eq(t_walk(ROOT_FID, 3, "file"), 0);
	ck_assert_int_eq(t_xattrcreate(3, "user.color", 0, 0), 0);
	ck_assert_int_eq(t_clunk(3), 0);
	ck_assert_int_eq(getxattr(host_path("file"), "user.color", buf,
				  sizeof(buf)), -1);
	ck_assert_int_eq(t_xattrcreate(2, "user.short", 10, 0), 0);
	ck_assert_int_eq(t_write(2, 0, "abc", 3, &got), 0);
	ck_assert_int_eq(t_write(2, 8, "abc", 3, &got), ERANGE);
	ck_assert_int_eq(t_clunk(2), EINVAL);
	ck_assert_int_eq(getxattr(host_path("file"), "user.short", buf,
				  sizeof(buf)), -1);
}
END_TEST

/* ---- tests: escapes ---- */

START_TEST(dotdot_stays_at_root)
{
	struct attr a, r;

	session();
	ck_assert_int_eq(t_getattr(ROOT_FID, &r), 0);
	ck_assert_int_eq(t_walk(ROOT_FID, 2, "../../../../.."), 0);
	ck_assert_int_eq(t_getattr(2, &a), 0);
	ck_assert_uint_eq(a.qpath, r.qpath);
	ck_assert_int_eq(t_walk(ROOT_FID, 3, "dir/sub/../../../../outside"),
			 -1006);
	ck_assert_int_eq(t_walk(ROOT_FID, 3, "../outside/sentinel"), -1001);
	ck_assert_int_eq(t_walk(ROOT_FID, 3, "dir/sub/../.."), 0);
	ck_assert_int_eq(t_getattr(3, &a), 0);
	ck_assert_uint_eq(a.qpath, r.qpath);
	/* the root (here reached by "..") cannot be removed */
	ck_assert_int_eq(t_fid_op(P9_TREMOVE, 3), EBUSY);
	/* another directory reached by "..": its name is found for rename
	 * and remove */
	ck_assert_int_eq(mkdir(host_path("dir/up"), 0755), 0);
	ck_assert_int_eq(mkdir(host_path("dir/up/e"), 0755), 0);
	ck_assert_int_eq(t_walk(ROOT_FID, 6, "dir/up/e/.."), 0);
	ck_assert_int_eq(t_rename(6, ROOT_FID, "moved"), 0);
	ck_assert_int_eq(access(host_path("moved/e"), F_OK), 0);
	ck_assert_int_eq(t_walk(ROOT_FID, 7, "moved/e/.."), 0);
	ck_assert_int_eq(t_fid_op(P9_TREMOVE, 7), ENOTEMPTY);
	ck_assert_int_eq(rmdir(host_path("moved/e")), 0);
	ck_assert_int_eq(t_fid_op(P9_TREMOVE, 6), 0);	/* renamed: still named */
	ck_assert_int_eq(access(host_path("moved"), F_OK), -1);
	/* names are single components */
	ck_assert_int_eq(t_walk(ROOT_FID, 4, ""), 0);
	start(P9_TWALK);
	p9w_32(&M, ROOT_FID);
	p9w_32(&M, 5);
	p9w_16(&M, 1);
	p9w_str(&M, "../outside/sentinel");
	ck_assert_int_eq(rpc(P9_RWALK), EINVAL);
	ck_assert_int_eq(t_lcreate(4, "../escaped", 2, 0644), EINVAL);
	ck_assert_int_eq(t_dirop(P9_TMKDIR, ROOT_FID, "a/b", 0755), EINVAL);
	ck_assert_int_eq(t_dirop(P9_TMKDIR, ROOT_FID, "..", 0755), EINVAL);
	ck_assert_int_eq(t_symlink(ROOT_FID, "x/y", "z"), EINVAL);
	ck_assert_int_eq(access(outside, F_OK), 0);
}
END_TEST

START_TEST(symlinks_never_followed)
{
	struct attr a;
	char buf[256];

	session();
	/* final symlinks: walked to as themselves, never opened */
	ck_assert_int_eq(t_walk(ROOT_FID, 2, "abs_link"), 0);
	ck_assert_int_eq(t_getattr(2, &a), 0);
	ck_assert_uint_eq(a.qtype, P9_QTSYMLINK);
	ck_assert_int_eq(t_lopen(2, 0), ELOOP);
	ck_assert_int_eq(t_walk(ROOT_FID, 3, "rel_link"), 0);
	ck_assert_int_eq(t_lopen(3, 0), ELOOP);
	ck_assert_int_eq(t_readlink(3, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "../outside/sentinel");	/* text only */
	/* mid-path: a symlinked directory is not a directory here */
	ck_assert_int_eq(t_walk(ROOT_FID, 4, "dir_link/sentinel"), -1001);
	ck_assert_int_eq(t_walk(ROOT_FID, 4, "dir_link"), 0);
	start(P9_TLCREATE);
	p9w_32(&M, 4);
	p9w_str(&M, "planted");
	p9w_32(&M, 2);
	p9w_32(&M, 0644);
	p9w_32(&M, 0);
	ck_assert_int_eq(rpc(P9_RLCREATE), ENOTDIR);
	ck_assert_int_eq(t_dirop(P9_TMKDIR, 4, "planted", 0755), ENOTDIR);
	ck_assert_int_eq(t_renameat(ROOT_FID, "file", 4, "moved"), ENOTDIR);
	ck_assert_int_eq(access(host_path("file"), F_OK), 0);
	/* lcreate over an existing symlink name opens nothing */
	ck_assert_int_eq(t_walk(ROOT_FID, 5, ""), 0);
	ck_assert_int_eq(t_lcreate(5, "abs_link", 2 | P9_DOTL_TRUNC, 0644),
			 ELOOP);
	/* xattrs of a symlink: none, and none set */
	ck_assert_int_eq(t_xattrcreate(2, "user.x", 1, 0), EPERM);
	/* a hard link to the symlink links the symlink itself */
	ck_assert_int_eq(t_link(ROOT_FID, 2, "link_to_link"), 0);
	ck_assert_int_eq(readlink(host_path("link_to_link"), buf, sizeof(buf)),
			 (ssize_t)strlen(sentinel));
	ck_assert_int_eq(t_walk(ROOT_FID, 6, "link_to_link"), 0);
	ck_assert_int_eq(t_lopen(6, 0), ELOOP);
	/* setattr size on a symlink cannot truncate its target */
	ck_assert_int_eq(t_setattr(2, P9_ATTR_SIZE, 0, 0, 0, 0, 0), EINVAL);
}
END_TEST

/* The name is swapped for a symlink between walk and open (and back):
 * the open gets the inode the walk found, never the target. */
START_TEST(swap_between_walk_and_open)
{
	char tmp[700];

	session();
	put_file("swap", "inside\n");
	ck_assert_int_eq(t_walk(ROOT_FID, 2, "swap"), 0);
	snprintf(tmp, sizeof(tmp), "%s/swap.tmp", share);
	ck_assert_int_eq(symlink(sentinel, tmp), 0);
	ck_assert_int_eq(rename(tmp, host_path("swap")), 0);
	ck_assert_int_eq(t_lopen(2, 2 | P9_DOTL_TRUNC), 0);
	ck_assert_str_eq(read_all(2), "");	/* the old, unlinked file */
	ck_assert_int_eq(t_walk(ROOT_FID, 3, "swap"), 0);	/* symlink now */
	put_file("swap.tmp", "regular again\n");
	ck_assert_int_eq(rename(tmp, host_path("swap")), 0);
	ck_assert_int_eq(t_lopen(3, 0), ELOOP);
	ck_assert_int_eq(t_setattr(3, P9_ATTR_SIZE, 0, 0, 0, 0, 0), EINVAL);
	/* and the same for a directory on the walk path */
	ck_assert_int_eq(t_walk(ROOT_FID, 4, "dir"), 0);
	sh("mv %s/dir %s/dir.real && ln -s %s %s/dir", share, share, outside,
	   share);
	ck_assert_int_eq(t_walk(4, 5, "sub/deep"), 0);	/* the real dir */
	ck_assert_int_eq(t_lopen(5, 0), 0);
	ck_assert_str_eq(read_all(5), "deep\n");
	ck_assert_int_eq(t_walk(4, 6, "../dir/sentinel"), -1002);
}
END_TEST

START_TEST(device_nodes_never_opened)
{
	struct stat st;

	session();
	/* no device nodes made, whatever the mode says */
	ck_assert_int_eq(t_dirop(P9_TMKNOD, ROOT_FID, "sda", S_IFBLK | 0666),
			 EPERM);
	ck_assert_int_eq(t_dirop(P9_TMKNOD, ROOT_FID, "mem", S_IFCHR | 0666),
			 EPERM);
	ck_assert_int_eq(t_dirop(P9_TMKNOD, ROOT_FID, "sock",
				 S_IFSOCK | 0666), EPERM);
	ck_assert_int_eq(lstat(host_path("sda"), &st), -1);
	ck_assert_int_eq(lstat(host_path("mem"), &st), -1);
	/* one the host made: walked to, never opened */
	ck_assert_int_eq(lstat(host_path("null_dev"), &st), 0);
	if (S_ISCHR(st.st_mode)) {
		ck_assert_int_eq(t_walk(ROOT_FID, 2, "null_dev"), 0);
		ck_assert_int_eq(t_lopen(2, 2), ENXIO);
		ck_assert_int_eq(t_setattr(2, P9_ATTR_SIZE, 0, 0, 0, 0, 0),
				 EINVAL);
		ck_assert_int_eq(t_walk(ROOT_FID, 3, ""), 0);
		ck_assert_int_eq(t_lcreate(3, "null_dev", 2, 0644), ENXIO);
	}
	/* a fifo is never opened either (it would block the device) */
	ck_assert_int_eq(t_walk(ROOT_FID, 4, "fifo"), 0);
	ck_assert_int_eq(t_lopen(4, 0), ENXIO);
}
END_TEST

/* A mount below the share (made in a private mount namespace, so the
 * host's mounts are untouched) is not entered. */
START_TEST(mount_point_not_crossed)
{
	int status;
	pid_t pid;

	if (geteuid() != 0)
		return;
	ck_assert_int_eq(mkdir(host_path("mnt"), 0755), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char p[700];
		int fd;

		if (unshare(CLONE_NEWNS) ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
			_exit(77);
		if (mount("tmpfs", host_path("mnt"), "tmpfs", 0, "size=1M"))
			_exit(77);
		snprintf(p, sizeof(p), "%s/mnt/inmount", share);
		fd = open(p, O_CREAT | O_WRONLY, 0644);
		if (fd < 0)
			_exit(2);
		close(fd);
		p9_server_destroy(srv);
		srv = make_server(share, false);
		session();
		if (t_walk(ROOT_FID, 2, "mnt") != EXDEV)
			_exit(3);
		if (t_walk(ROOT_FID, 2, "mnt/inmount") != EXDEV)
			_exit(4);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77)
		return;	/* no mount namespaces here */
	ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

/* ---- tests: readonly ---- */

/* Everything about the tree that a change could touch, as text. */
static void snapshot(char *out, size_t cap)
{
	char cmd[700];
	FILE *p;
	size_t n;

	snprintf(cmd, sizeof(cmd), "cd %s && find . -printf '%%p %%y %%m %%s "
		 "%%U %%G %%T@ %%l\\n' | sort && find . -type f -exec "
		 "md5sum {} + | sort", top);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	n = fread(out, 1, cap - 1, p);
	out[n] = '\0';
	pclose(p);
	ck_assert_uint_gt(n, 100);
}

START_TEST(readonly_refuses_every_change)
{
	static char before[65536], after[65536];
	uint32_t got;
	uint64_t size;

	snapshot(before, sizeof(before));
	p9_server_destroy(srv);
	srv = make_server(share, true);
	session();
	ck_assert_int_eq(t_walk(ROOT_FID, 2, "file"), 0);
	ck_assert_int_eq(t_lopen(2, 1), EROFS);
	ck_assert_int_eq(t_lopen(2, 2), EROFS);
	ck_assert_int_eq(t_lopen(2, P9_DOTL_TRUNC), EROFS);
	ck_assert_int_eq(t_lopen(2, P9_DOTL_APPEND), EROFS);
	ck_assert_int_eq(t_lopen(2, 0), 0);
	ck_assert_str_eq(read_all(2), "hello from the host\n");
	ck_assert_int_eq(t_write(2, 0, "x", 1, &got), EROFS);
	ck_assert_int_eq(t_fid_op(P9_TFSYNC, 2), 0);
	ck_assert_int_eq(t_walk(ROOT_FID, 3, "file"), 0);
	ck_assert_int_eq(t_setattr(3, P9_ATTR_MODE, 0777, 0, 0, 0, 0), EROFS);
	ck_assert_int_eq(t_setattr(3, P9_ATTR_SIZE, 0, 0, 0, 0, 0), EROFS);
	ck_assert_int_eq(t_setattr(3, P9_ATTR_UID, 0, 5, 0, 0, 0), EROFS);
	ck_assert_int_eq(t_setattr(3, P9_ATTR_MTIME, 0, 0, 0, 0, 0), EROFS);
	ck_assert_int_eq(t_walk(ROOT_FID, 4, ""), 0);
	ck_assert_int_eq(t_lcreate(4, "new", 2, 0644), EROFS);
	ck_assert_int_eq(t_lcreate(4, "file", 0, 0644), EROFS);
	ck_assert_int_eq(t_dirop(P9_TMKDIR, ROOT_FID, "d", 0755), EROFS);
	ck_assert_int_eq(t_dirop(P9_TMKNOD, ROOT_FID, "f", S_IFIFO | 0644),
			 EROFS);
	ck_assert_int_eq(t_symlink(ROOT_FID, "s", "file"), EROFS);
	ck_assert_int_eq(t_link(ROOT_FID, 3, "l"), EROFS);
	ck_assert_int_eq(t_renameat(ROOT_FID, "file", ROOT_FID, "f2"), EROFS);
	ck_assert_int_eq(t_rename(3, ROOT_FID, "f2"), EROFS);
	ck_assert_int_eq(t_unlinkat(ROOT_FID, "file", 0), EROFS);
	ck_assert_int_eq(t_unlinkat(ROOT_FID, "dir", P9_DOTL_AT_REMOVEDIR),
			 EROFS);
	ck_assert_int_eq(t_xattrcreate(3, "user.x", 1, 0), EROFS);
	ck_assert_int_eq(t_fid_op(P9_TREMOVE, 3), EROFS);
	ck_assert_int_eq(t_getattr(3, &(struct attr){ 0 }), EBADF);
	/* reading everything is fine */
	ck_assert_int_eq(t_walk(ROOT_FID, 5, "dir"), 0);
	ck_assert_int_eq(t_lopen(5, 0), 0);
	ck_assert_int_eq(t_xattrwalk(ROOT_FID, 6, "", &size), 0);
	snapshot(after, sizeof(after));
	ck_assert_str_eq(before, after);
}
END_TEST

/* ---- tests: malformed messages ---- */

/* Send raw bytes; the reply must be an Rlerror with that errno. */
static void expect_rlerror(const void *bytes, size_t n, int err)
{
	struct iovec in = { (void *)bytes, n }, out = { R.b, 4096 };
	struct p9_req req = { .in = &in, .n_in = 1, .out = &out, .n_out = 1 };

	ck_assert_int_eq(p9_server_handle(srv, &req), 1);
	R.len = req.reply_len;
	p9w_parse(&R);
	ck_assert_uint_eq(R.len, 11);
	ck_assert_uint_eq(R.type, P9_RLERROR);
	ck_assert_int_eq(p9w_err(&R), err);
}

START_TEST(malformed_messages)
{
	uint8_t raw[64] = { 0 };
	uint32_t v;

	session();
	/* short: no whole header */
	expect_rlerror(raw, 0, EINVAL);
	expect_rlerror(raw, 5, EINVAL);
	ck_assert_uint_eq(R.tag, P9_NOTAG);
	/* lying sizes: more than came, less than a header, over msize */
	start(P9_TCLUNK);
	p9w_32(&M, ROOT_FID);
	p9w_end(&M);
	v = 1000;
	memcpy(M.b, &v, 4);
	expect_rlerror(M.b, M.n, EINVAL);
	v = 3;
	memcpy(M.b, &v, 4);
	expect_rlerror(M.b, M.n, EINVAL);
	/* a body shorter than its fields, and one with bytes left over */
	start(P9_TCLUNK);
	p9w_16(&M, 1);
	p9w_end(&M);
	expect_rlerror(M.b, M.n, EINVAL);
	start(P9_TCLUNK);
	p9w_32(&M, 999);
	p9w_32(&M, 0);
	p9w_end(&M);
	expect_rlerror(M.b, M.n, EINVAL);
	ck_assert_uint_gt(log_lines, 0);
	/* a string longer than the message */
	start(P9_TWALK);
	p9w_32(&M, ROOT_FID);
	p9w_32(&M, 2);
	p9w_16(&M, 1);
	p9w_16(&M, 60000);
	p9w_put(&M, "abc", 3);
	p9w_end(&M);
	expect_rlerror(M.b, M.n, EINVAL);
	/* a NUL inside a name */
	start(P9_TWALK);
	p9w_32(&M, ROOT_FID);
	p9w_32(&M, 2);
	p9w_16(&M, 1);
	p9w_16(&M, 6);
	p9w_put(&M, "fi\0le", 6);
	p9w_end(&M);
	expect_rlerror(M.b, M.n, EINVAL);
	/* a name longer than NAME_MAX */
	{
		char longname[300];

		memset(longname, 'a', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		start(P9_TWALK);
		p9w_32(&M, ROOT_FID);
		p9w_32(&M, 2);
		p9w_16(&M, 1);
		p9w_str(&M, longname);
		p9w_end(&M);
		expect_rlerror(M.b, M.n, ENAMETOOLONG);
	}
	/* too many names in one walk */
	start(P9_TWALK);
	p9w_32(&M, ROOT_FID);
	p9w_32(&M, 2);
	p9w_16(&M, P9_MAXWELEM + 1);
	for (int i = 0; i <= P9_MAXWELEM; i++)
		p9w_str(&M, "dir");
	p9w_end(&M);
	expect_rlerror(M.b, M.n, EINVAL);
	/* bad fids, NOFID, fid reuse */
	start(P9_TCLUNK);
	p9w_32(&M, 12345);
	p9w_end(&M);
	expect_rlerror(M.b, M.n, EBADF);
	ck_assert_int_eq(t_walk(ROOT_FID, P9_NOFID, "dir"), EBADF);
	ck_assert_int_eq(t_walk(ROOT_FID, 2, "dir"), 0);
	ck_assert_int_eq(t_walk(ROOT_FID, 2, "file"), EEXIST);
	ck_assert_int_eq(t_walk(777, 3, "file"), EBADF);
	/* huge counts: a read is cut to msize, a write must match its data */
	ck_assert_int_eq(t_walk(ROOT_FID, 3, "file"), 0);
	ck_assert_int_eq(t_lopen(3, 2), 0);
	{
		uint32_t got;

		start(P9_TREAD);
		p9w_32(&M, 3);
		p9w_64(&M, 0);
		p9w_32(&M, 0xffffffff);
		ck_assert_int_eq(rpc(P9_RREAD), 0);
		got = p9w_r32(&R);
		ck_assert_uint_eq(got, 20);
		start(P9_TREAD);
		p9w_32(&M, 3);
		p9w_64(&M, (uint64_t)1 << 63);
		p9w_32(&M, 10);
		ck_assert_int_eq(rpc(P9_RREAD), EINVAL);
		start(P9_TWRITE);
		p9w_32(&M, 3);
		p9w_64(&M, 0);
		p9w_32(&M, 0x7fffffff);
		p9w_put(&M, "abc", 3);
		ck_assert_int_eq(rpc(P9_RWRITE), EINVAL);
		ck_assert_int_eq(t_write(3, ~0ULL, "abc", 3, &got), EINVAL);
	}
	/* unknown types, legacy 9P2000 and R-messages */
	start(P9_TOPEN);
	p9w_32(&M, 3);
	p9w_8(&M, 0);
	ck_assert_int_eq(rpc(0), EOPNOTSUPP);
	start(P9_RLOPEN);
	ck_assert_int_eq(rpc(0), EOPNOTSUPP);
	start(255);
	ck_assert_int_eq(rpc(0), EOPNOTSUPP);
	/* reply room too small for anything: nothing written, no crash
	 * (the clunk itself is done) */
	start(P9_TCLUNK);
	p9w_32(&M, 3);
	p9w_end(&M);
	ck_assert_int_eq(p9w_rpc_room(srv, &M, &R, 6), 1);
	ck_assert_uint_eq(R.len, 0);
	/* room for an Rlerror but not the reply */
	start(P9_TREADLINK);
	p9w_32(&M, 2);
	p9w_end(&M);
	ck_assert_int_eq(p9w_rpc_room(srv, &M, &R, 11), 1);
	ck_assert_uint_eq(R.len, 11);
	ck_assert_int_eq(p9w_err(&R), EINVAL);
	start(P9_TGETATTR);
	p9w_32(&M, 2);
	p9w_64(&M, 0);
	p9w_end(&M);
	ck_assert_int_eq(p9w_rpc_room(srv, &M, &R, 40), 1);
	ck_assert_int_eq(p9w_err(&R), ENOBUFS);
	/* the session still works */
	ck_assert_int_eq(t_fid_op(P9_TSTATFS, ROOT_FID), 0);
}
END_TEST

START_TEST(fid_limit)
{
	session();
	for (uint32_t i = 2; i <= P9_MAX_FIDS; i++)
		ck_assert_int_eq(t_walk(ROOT_FID, i, ""), 0);
	ck_assert_uint_eq(p9_server_fids(srv), P9_MAX_FIDS);
	ck_assert_int_eq(t_walk(ROOT_FID, P9_MAX_FIDS + 1, ""), ENFILE);
	ck_assert_int_eq(t_clunk(2), 0);
	ck_assert_int_eq(t_walk(ROOT_FID, P9_MAX_FIDS + 1, ""), 0);
	p9_server_reset(srv);
	ck_assert_uint_eq(p9_server_fids(srv), 0);
	ck_assert_uint_eq(p9_server_msize(srv), 0);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("p9_server");
	TCase *t = tcase_create("protocol");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 60);
	tcase_add_test(t, version_and_attach);
	tcase_add_test(t, walk_read_write);
	tcase_add_test(t, scattered_buffers);
	tcase_add_test(t, create_and_namespace_ops);
	tcase_add_test(t, readdir_lists_everything);
	tcase_add_test(t, setattr_modes_owners_times);
	tcase_add_test(t, posix_locks);
	tcase_add_test(t, xattrs);
	suite_add_tcase(s, t);
	t = tcase_create("escapes");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 60);
	tcase_add_test(t, dotdot_stays_at_root);
	tcase_add_test(t, symlinks_never_followed);
	tcase_add_test(t, swap_between_walk_and_open);
	tcase_add_test(t, device_nodes_never_opened);
	tcase_add_test(t, mount_point_not_crossed);
	tcase_add_test(t, readonly_refuses_every_change);
	suite_add_tcase(s, t);
	t = tcase_create("malformed");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 60);
	tcase_add_test(t, malformed_messages);
	tcase_add_test(t, fid_limit);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return check_run(suite());
}
