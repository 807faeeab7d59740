/* devices/p9_server.c - the 9P2000.L server behind virtio-9p: messages in
 * and out of iovec lists, fids that hold descriptors, never paths.
 *
 * How confinement holds (docs/9p-security.md says it for users):
 *  - A fid holds an O_PATH descriptor of its object (plus, once opened, an
 *    open descriptor, and the O_PATH descriptor of the directory it was
 *    found in with its name there, for Tremove/Trename).  Nothing is ever
 *    looked up by a path string.
 *  - A name from the guest is one component: no '/', no NUL, not empty.
 *    lookup_one() resolves it against its parent's descriptor with openat2
 *    RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
 *    RESOLVE_NO_XDEV and O_PATH | O_NOFOLLOW: a symlink is opened as
 *    itself, a mount point below the share is refused (EXDEV).  ".." at
 *    the share's root stays at the root.  Creation calls (mkdirat,
 *    openat(O_CREAT|O_EXCL|O_NOFOLLOW), symlinkat, mknodat, linkat,
 *    renameat, unlinkat) take a fid's directory descriptor and one such
 *    name, so they too act inside the share only.
 *  - Only regular files and directories are ever opened; everything else
 *    (a symlink, a device node, a fifo, a socket) stays an O_PATH
 *    descriptor, which never reaches a driver.  A regular file is opened
 *    by re-opening its own O_PATH descriptor through /proc/self/fd (the
 *    inode the fid pinned, of a type already checked), so a name swapped
 *    for a symlink between walk and open changes nothing.
 *  - A readonly share refuses every change with EROFS here, whatever the
 *    guest mounted.
 *
 * The request's iovecs are read field by field (each guest byte is copied
 * once, so a guest rewriting its buffer mid-request cannot change what was
 * checked); Tread/Twrite data goes straight between the host file and
 * those iovecs with preadv/pwritev.  Blocking locks are parked, not waited
 * for: the device thread never sleeps on a guest's behalf.
 */
#include "devices/p9_server.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "devices/p9_proto.h"

#define FID_BUCKETS	1024
#define P9_MAX_IOV	1024		/* segments per preadv/pwritev */
#define DIRBUF_SIZE	(32 << 10)
#define P9_PARKED	(-1)		/* op result: the request waits */

enum fid_kind {
	FID_NODE,		/* walked to, not opened */
	FID_OPEN,		/* lopen/lcreate: ofd is open */
	FID_XATTR_READ,		/* xattrwalk: xbuf holds the value/list */
	FID_XATTR_WRITE,	/* xattrcreate: xbuf collects the value */
};

struct p9_fid {
	struct p9_fid *hnext;
	uint32_t num;
	enum fid_kind kind;
	int fd;			/* O_PATH of the object */
	int ofd;		/* FID_OPEN: the open descriptor */
	int parent_fd;		/* O_PATH of the directory it was found in */
	char *name;		/* its name there (NULL with parent_fd -1) */
	uint32_t uid;		/* attach's n_uname: owner of what it creates */
	mode_t fmt;		/* S_IFMT of the object */
	char *xname;		/* FID_XATTR_WRITE: attribute name */
	uint8_t *xbuf;
	uint64_t xsize;		/* value bytes held / announced */
	uint64_t xfill;		/* FID_XATTR_WRITE: bytes written so far */
	int xflags;
};

struct p9_server {
	int root_fd;		/* O_PATH of the share */
	dev_t root_dev;
	ino_t root_ino;
	int proc_fd;		/* /proc/self/fd, for re-opening O_PATH fds */
	bool readonly;
	bool as_root;		/* euid 0: created files get the guest's uid */
	bool have_openat2;
	mode_t umask;
	uint32_t msize;		/* 0 until Tversion */
	struct p9_fid *fids[FID_BUCKETS];
	unsigned nfids, nxattr;
	struct p9_req *parked;	/* oldest first */
	unsigned nparked;
	uint64_t park_gen;
	void (*complete)(void *opaque, struct p9_req *r);
	void *complete_opaque;
	void (*log)(void *opaque, const char *msg);
	void *log_opaque;
	struct iovec iov[P9_MAX_IOV];	/* data slices for preadv/pwritev */
	char names[P9_MAXWELEM][NAME_MAX + 1];
	char target[PATH_MAX];
	uint8_t dirbuf[DIRBUF_SIZE] __attribute__((aligned(8)));
};

/* ---- reading a T-message out of its iovecs ---- */

struct rd {
	const struct iovec *iov;
	unsigned cnt, i;
	size_t off;		/* into iov[i] */
	size_t left;		/* message bytes not yet read */
	bool bad;		/* ran past the end */
};

static void rd_init(struct rd *r, const struct iovec *iov, unsigned cnt,
		    size_t len)
{
	r->iov = iov;
	r->cnt = cnt;
	r->i = 0;
	r->off = 0;
	r->left = len;
	r->bad = false;
}

/* Skip empty and used-up segments. */
static void rd_settle(struct rd *r)
{
	while (r->i < r->cnt && r->off >= r->iov[r->i].iov_len) {
		r->i++;
		r->off = 0;
	}
}

static bool rd_copy(struct rd *r, void *dst, size_t n)
{
	uint8_t *d = dst;

	if (r->bad || n > r->left) {
		r->bad = true;
		return false;
	}
	r->left -= n;
	while (n) {
		size_t k;

		rd_settle(r);
		if (r->i >= r->cnt) {	/* left said otherwise: caller's bug */
			r->bad = true;
			return false;
		}
		k = r->iov[r->i].iov_len - r->off;
		if (k > n)
			k = n;
		if (d) {
			memcpy(d, (const uint8_t *)r->iov[r->i].iov_base + r->off,
			       k);
			d += k;
		}
		r->off += k;
		n -= k;
	}
	return true;
}

/* Little-endian integers (the host is x86_64): 0 past the end, with
 * r->bad set. */
static uint64_t rd_le(struct rd *r, size_t n)
{
	uint64_t v = 0;

	rd_copy(r, &v, n);
	return v;
}

static uint8_t rd8(struct rd *r) { return (uint8_t)rd_le(r, 1); }
static uint16_t rd16(struct rd *r) { return (uint16_t)rd_le(r, 2); }
static uint32_t rd32(struct rd *r) { return (uint32_t)rd_le(r, 4); }
static uint64_t rd64(struct rd *r) { return rd_le(r, 8); }

/* A string into buf (cap bytes with its NUL).  0, or an errno: EINVAL for
 * a short message or an embedded NUL, toolong when it does not fit. */
static int rd_str(struct rd *r, char *buf, size_t cap, int toolong)
{
	uint16_t len = rd16(r);

	if (r->bad)
		return EINVAL;
	if (len >= cap) {
		rd_copy(r, NULL, len);
		return r->bad ? EINVAL : toolong;
	}
	if (!rd_copy(r, buf, len))
		return EINVAL;
	buf[len] = '\0';
	if (memchr(buf, '\0', len))
		return EINVAL;
	return 0;
}

/* ---- writing an R-message into its iovecs ---- */

struct wr {
	const struct iovec *iov;
	unsigned cnt, i;
	size_t off;
	size_t pos, cap;	/* bytes written; at most cap */
	bool overflow;
};

static void wr_seek(struct wr *w, size_t pos)
{
	w->i = 0;
	w->off = pos;
	w->pos = pos;
	w->overflow = false;
	while (w->i < w->cnt && w->off >= w->iov[w->i].iov_len) {
		w->off -= w->iov[w->i].iov_len;
		w->i++;
	}
}

static void wr_init(struct wr *w, const struct iovec *iov, unsigned cnt,
		    size_t cap)
{
	w->iov = iov;
	w->cnt = cnt;
	w->cap = cap;
	wr_seek(w, 0);
}

/* Copy n bytes in (src NULL: just advance, the bytes were put there by
 * someone else, e.g. preadv). */
static void wr_bytes(struct wr *w, const void *src, size_t n)
{
	const uint8_t *s = src;

	if (w->overflow || n > w->cap - w->pos) {
		w->overflow = true;
		return;
	}
	w->pos += n;
	while (n) {
		size_t k;

		while (w->i < w->cnt && w->off >= w->iov[w->i].iov_len) {
			w->i++;
			w->off = 0;
		}
		k = w->iov[w->i].iov_len - w->off;
		if (k > n)
			k = n;
		if (s) {
			memcpy((uint8_t *)w->iov[w->i].iov_base + w->off, s, k);
			s += k;
		}
		w->off += k;
		n -= k;
	}
}

static void wr8(struct wr *w, uint8_t v) { wr_bytes(w, &v, 1); }
static void wr16(struct wr *w, uint16_t v) { wr_bytes(w, &v, 2); }
static void wr32(struct wr *w, uint32_t v) { wr_bytes(w, &v, 4); }
static void wr64(struct wr *w, uint64_t v) { wr_bytes(w, &v, 8); }

static void wr_str(struct wr *w, const char *s, size_t len)
{
	wr16(w, (uint16_t)len);
	wr_bytes(w, s, len);
}

/* Overwrite 4 bytes at pos (a size or count filled in afterwards). */
static void wr_patch32(struct wr *w, size_t at, uint32_t v)
{
	size_t save = w->pos;
	bool of = w->overflow;

	wr_seek(w, at);
	wr32(w, v);
	wr_seek(w, save);
	w->overflow = of;
}

/* The iovecs covering [pos, pos + n) of a list, from segment i at off,
 * into s->iov (at most P9_MAX_IOV); returns the count, *got the bytes. */
static unsigned iov_slice(struct p9_server *s, const struct iovec *iov,
			  unsigned cnt, unsigned i, size_t off, size_t n,
			  size_t *got)
{
	unsigned k = 0;

	*got = 0;
	for (; i < cnt && n && k < P9_MAX_IOV; i++, off = 0) {
		size_t len = iov[i].iov_len;

		if (off >= len)
			continue;
		len -= off;
		if (len > n)
			len = n;
		s->iov[k].iov_base = (uint8_t *)iov[i].iov_base + off;
		s->iov[k].iov_len = len;
		k++;
		n -= len;
		*got += len;
	}
	return k;
}

/* ---- fids ---- */

static struct p9_fid *fid_get(struct p9_server *s, uint32_t num)
{
	struct p9_fid *f = s->fids[num % FID_BUCKETS];

	while (f && f->num != num)
		f = f->hnext;
	return f;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void fid_drop_xattr(struct p9_server *s, struct p9_fid *f)
{
	if (f->kind == FID_XATTR_READ || f->kind == FID_XATTR_WRITE)
		s->nxattr--;
	free(f->xbuf);
	free(f->xname);
	f->xbuf = NULL;
	f->xname = NULL;
}

static void fid_free(struct p9_server *s, struct p9_fid *f)
{
	struct p9_fid **pp = &s->fids[f->num % FID_BUCKETS];

	while (*pp != f)
		pp = &(*pp)->hnext;
	*pp = f->hnext;
	fid_drop_xattr(s, f);
	close_fd(&f->fd);
	close_fd(&f->ofd);
	close_fd(&f->parent_fd);
	free(f->name);
	free(f);
	s->nfids--;
}

/* A new fid numbered num (which the caller checked is free). */
static struct p9_fid *fid_new(struct p9_server *s, uint32_t num, int *err)
{
	struct p9_fid *f;

	if (num == P9_NOFID) {
		*err = EBADF;
		return NULL;
	}
	if (s->nfids >= P9_MAX_FIDS) {
		*err = ENFILE;
		return NULL;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		*err = ENOMEM;
		return NULL;
	}
	f->num = num;
	f->fd = f->ofd = f->parent_fd = -1;
	f->hnext = s->fids[num % FID_BUCKETS];
	s->fids[num % FID_BUCKETS] = f;
	s->nfids++;
	return f;
}

static void fids_clear(struct p9_server *s)
{
	for (unsigned b = 0; b < FID_BUCKETS; b++)
		while (s->fids[b])
			fid_free(s, s->fids[b]);
}

/* A fid that names a file-system object (not an xattr fid). */
static struct p9_fid *node_fid(struct p9_server *s, uint32_t num, int *err)
{
	struct p9_fid *f = fid_get(s, num);

	if (!f || (f->kind != FID_NODE && f->kind != FID_OPEN)) {
		*err = EBADF;
		return NULL;
	}
	return f;
}

/* ---- lookups ---- */

static int dup_fd(int fd)
{
	return fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 0);
}

/* A name the guest may create or look up: one component. */
static int check_name(const char *name)
{
	if (!name[0] || strchr(name, '/'))
		return EINVAL;
	return 0;
}

static int check_new_name(const char *name)
{
	if (check_name(name) || !strcmp(name, ".") || !strcmp(name, ".."))
		return EINVAL;
	return 0;
}

static int statx_fd(int fd, struct stat *st)
{
	return fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
}

/* O_PATH descriptor of name (one component) in directory dirfd, following
 * nothing and crossing no mount.  -1 with errno. */
static int lookup_one(struct p9_server *s, int dirfd, const char *name)
{
	struct stat pst, st;
	int fd;

	if (s->have_openat2) {
		struct open_how how = {
			.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
			.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
				   RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
		};

		fd = (int)syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
		if (fd >= 0 || errno != ENOSYS)
			return fd;
		s->have_openat2 = false;
	}
	/* Kernels before 5.6: one component with O_NOFOLLOW cannot leave
	 * dirfd; only a mount point needs catching (a different device; a
	 * bind mount of the same file system is not caught here). */
	fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (statx_fd(dirfd, &pst) || statx_fd(fd, &st)) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	if (st.st_dev != pst.st_dev) {
		close(fd);
		errno = EXDEV;
		return -1;
	}
	return fd;
}

static bool is_root(struct p9_server *s, const struct stat *st)
{
	return st->st_dev == s->root_dev && st->st_ino == s->root_ino;
}

/* O_PATH descriptor of the parent of directory fd (st: its stat); the
 * share's root is its own parent. */
static int lookup_parent(struct p9_server *s, int fd, const struct stat *st)
{
	struct open_how how = {
		.flags = O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
			   RESOLVE_NO_XDEV,
	};
	struct stat pst;
	int pfd;

	if (is_root(s, st))
		return dup_fd(fd);
	if (!S_ISDIR(st->st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	pfd = s->have_openat2 ?
	      (int)syscall(SYS_openat2, fd, "..", &how, sizeof(how)) : -1;
	if (pfd < 0 && (!s->have_openat2 || errno == ENOSYS))
		pfd = openat(fd, "..", how.flags);
	if (pfd < 0)
		return -1;
	/* A fid inside the share has its parent inside the share too; a
	 * different device would mean the host moved things under us. */
	if (statx_fd(pfd, &pst) || pst.st_dev != s->root_dev) {
		close(pfd);
		errno = EXDEV;
		return -1;
	}
	return pfd;
}

/* Re-open an O_PATH descriptor of a regular file (checked by the caller)
 * through /proc/self/fd: the very inode the fid holds. */
static int reopen_file(struct p9_server *s, int fd, int flags)
{
	char n[16];

	snprintf(n, sizeof(n), "%d", fd);
	return openat(s->proc_fd, n, flags | O_CLOEXEC);
}

/* chmod an object (never a symlink) through its O_PATH descriptor. */
static int chmod_fd(struct p9_server *s, int fd, mode_t mode)
{
	char n[16];

	snprintf(n, sizeof(n), "%d", fd);
	return fchmodat(s->proc_fd, n, mode, 0);
}

static void qid_of(const struct stat *st, uint8_t q[P9_QID_SIZE])
{
	uint32_t version = (uint32_t)(st->st_mtim.tv_sec ^
				      (st->st_mtim.tv_nsec << 2) ^
				      (st->st_size << 8));
	uint64_t path = st->st_ino;

	q[0] = S_ISDIR(st->st_mode) ? P9_QTDIR :
	       S_ISLNK(st->st_mode) ? P9_QTSYMLINK : P9_QTFILE;
	memcpy(q + 1, &version, 4);
	memcpy(q + 5, &path, 8);
}

static int wr_qid_fd(struct wr *w, int fd, struct stat *out)
{
	uint8_t q[P9_QID_SIZE];
	struct stat st;

	if (statx_fd(fd, &st))
		return errno;
	qid_of(&st, q);
	wr_bytes(w, q, sizeof(q));
	if (out)
		*out = st;
	return 0;
}

/* ---- the request context ---- */

struct ctx {
	struct p9_server *s;
	struct p9_req *req;
	struct rd rd;
	struct wr w;
	uint8_t type;
	uint16_t tag;
};

/* All fields read: the message must have been exactly that long. */
static int parsed(struct ctx *c)
{
	return c->rd.bad || c->rd.left ? EINVAL : 0;
}

/* The fid a request names, once its whole message is read: NULL with *err
 * EINVAL (a message shorter or longer than its fields) or EBADF (no such
 * fid; for req_node also one that is not a walked or open node). */
static struct p9_fid *req_fid(struct ctx *c, uint32_t num, int *err)
{
	struct p9_fid *f;

	if ((*err = parsed(c)))
		return NULL;
	if (!(f = fid_get(c->s, num)))
		*err = EBADF;
	return f;
}

static struct p9_fid *req_node(struct ctx *c, uint32_t num, int *err)
{
	if ((*err = parsed(c)))
		return NULL;
	return node_fid(c->s, num, err);
}

static int errno_or(int fallback)
{
	return errno ? errno : fallback;
}

/* Give a created object the guest's owner and the exact mode (the VMM's
 * umask must not strip what the guest asked for).  Failures to chown
 * when not running as root are not errors: the file is then the VMM
 * user's, as on any file server. */
static int set_owner_mode(struct p9_server *s, struct p9_fid *dir, int fd,
			  uint32_t gid, mode_t mode, bool chmod_it)
{
	uid_t uid = s->as_root && dir->uid != P9_NONUNAME ? dir->uid :
		    (uid_t)-1;

	if (fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) &&
	    s->as_root)
		return errno;
	if (chmod_it && chmod_fd(s, fd, mode & 07777))
		return errno;
	return 0;
}

/* ---- parked locks ---- */

static size_t iov_len_total(const struct iovec *iov, unsigned n)
{
	size_t t = 0;

	for (unsigned i = 0; i < n; i++)
		t += iov[i].iov_len;
	return t;
}

static size_t reply_cap(const struct p9_server *s, const struct iovec *out,
			unsigned n)
{
	size_t t = iov_len_total(out, n), m = s->msize ? s->msize :
					     P9_MAX_MSIZE;

	return t < m ? t : m;
}

/* Complete a parked request: an Rlerror (err) or an Rlock (status). */
static void parked_finish(struct p9_server *s, struct p9_req *r, int err,
			  uint8_t status)
{
	struct wr w;

	wr_init(&w, r->out, r->n_out, reply_cap(s, r->out, r->n_out));
	wr32(&w, 0);
	wr8(&w, err ? P9_RLERROR : P9_RLOCK);
	wr16(&w, r->tag);
	if (err)
		wr32(&w, (uint32_t)err);
	else
		wr8(&w, status);
	if (w.overflow) {
		r->reply_len = 0;
	} else {
		wr_patch32(&w, 0, (uint32_t)w.pos);
		r->reply_len = (uint32_t)w.pos;
	}
	if (s->complete)
		s->complete(s->complete_opaque, r);
}

static void parked_remove(struct p9_server *s, struct p9_req *r)
{
	struct p9_req **pp = &s->parked;

	while (*pp != r)
		pp = &(*pp)->parked_next;
	*pp = r->parked_next;
	r->parked_next = NULL;
	s->nparked--;
}

static void parked_fail_all(struct p9_server *s, int err)
{
	while (s->parked) {
		struct p9_req *r = s->parked;

		parked_remove(s, r);
		parked_finish(s, r, err, 0);
	}
}

/* ---- messages ---- */

static int op_version(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t msize = rd32(&c->rd);
	char ver[32];
	int e = rd_str(&c->rd, ver, sizeof(ver), ENAMETOOLONG);
	bool known;

	if (e == EINVAL || parsed(c))
		return EINVAL;
	known = e == 0 && !strcmp(ver, P9_VERSION_L);
	if (known && msize < P9_MIN_MSIZE)
		return EINVAL;
	/* a new session: everything of the old one goes */
	parked_fail_all(s, EINTR);
	fids_clear(s);
	s->msize = known ? (msize < P9_MAX_MSIZE ? msize : P9_MAX_MSIZE) : 0;
	wr32(&c->w, known ? s->msize : msize);
	if (known)
		wr_str(&c->w, P9_VERSION_L, strlen(P9_VERSION_L));
	else
		wr_str(&c->w, "unknown", 7);
	return 0;
}

static int op_auth(struct ctx *c)
{
	(void)c;
	return EOPNOTSUPP;	/* no authentication: attach directly */
}

static int op_attach(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fid = rd32(&c->rd), afid = rd32(&c->rd), uid;
	char uname[256], aname[256];
	struct p9_fid *f;
	int e;

	/* uname and aname are neither paths nor users here: every attach
	 * gets the share's root */
	if ((e = rd_str(&c->rd, uname, sizeof(uname), ENAMETOOLONG)) ||
	    (e = rd_str(&c->rd, aname, sizeof(aname), ENAMETOOLONG)))
		return e;
	uid = rd32(&c->rd);
	if (parsed(c))
		return EINVAL;
	if (afid != P9_NOFID)
		return EOPNOTSUPP;
	if (fid_get(s, fid))
		return EEXIST;
	f = fid_new(s, fid, &e);
	if (!f)
		return e;
	f->uid = uid;
	f->fmt = S_IFDIR;
	f->fd = dup_fd(s->root_fd);
	if (f->fd < 0) {
		e = errno_or(EMFILE);
		fid_free(s, f);
		return e;
	}
	return wr_qid_fd(&c->w, f->fd, NULL);
}

static int op_flush(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint16_t oldtag = rd16(&c->rd);

	if (parsed(c))
		return EINVAL;
	/* Requests are answered in order, so only a parked lock can still
	 * be outstanding: it is answered (EINTR) before the Rflush. */
	for (struct p9_req *r = s->parked; r; r = r->parked_next) {
		if (r->tag == oldtag) {
			parked_remove(s, r);
			parked_finish(s, r, EINTR, 0);
			break;
		}
	}
	return 0;
}

static int op_walk(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = rd32(&c->rd), newfidn = rd32(&c->rd);
	uint16_t nw = rd16(&c->rd);
	uint8_t qids[P9_MAXWELEM][P9_QID_SIZE];
	struct p9_fid *f, *nf;
	const char *name;
	char *new_name = NULL;
	int cur, par, e = 0;
	unsigned i;

	if (c->rd.bad || nw > P9_MAXWELEM)
		return EINVAL;
	for (i = 0; i < nw; i++)
		if ((e = rd_str(&c->rd, s->names[i], sizeof(s->names[i]),
				ENAMETOOLONG)))
			return e;
	if (!(f = req_node(c, fidn, &e)))
		return e;
	if (newfidn != fidn && fid_get(s, newfidn))
		return EEXIST;
	if (newfidn == fidn && nw && f->kind == FID_OPEN)
		return EBUSY;		/* it would lose its open descriptor */
	if (newfidn == fidn && nw == 0) {
		wr16(&c->w, 0);		/* a clone onto itself: nothing */
		return 0;
	}
	for (i = 0; i < nw; i++)
		if ((e = check_name(s->names[i])))
			return e;

	/* where the walk stands: cur (owned), found in par under name */
	cur = dup_fd(f->fd);
	par = dup_fd(f->parent_fd);
	name = f->name;
	if (cur < 0 || (f->parent_fd >= 0 && par < 0)) {
		e = errno_or(EMFILE);
		goto fail;
	}
	for (i = 0; i < nw; i++) {
		bool up = !strcmp(s->names[i], "..");
		struct stat st;
		int next;

		if (statx_fd(cur, &st)) {
			e = errno;
			break;
		}
		if (!strcmp(s->names[i], ".")) {
			if (!S_ISDIR(st.st_mode)) {
				e = ENOTDIR;
				break;
			}
			qid_of(&st, qids[i]);
			continue;
		}
		next = up ? lookup_parent(s, cur, &st) :
			    lookup_one(s, cur, s->names[i]);
		if (next < 0) {
			e = errno_or(ENOENT);
			break;
		}
		if (statx_fd(next, &st)) {
			e = errno;
			close(next);
			break;
		}
		qid_of(&st, qids[i]);
		close_fd(&par);
		if (up) {
			/* the parent's own name is not known */
			close(cur);
			name = NULL;
		} else {
			par = cur;
			name = s->names[i];
		}
		cur = next;
	}
	if (i < nw) {
		/* stopped early: an error for the first name, else the qids
		 * of the steps that worked; newfid is not touched */
		close_fd(&cur);
		close_fd(&par);
		if (i == 0)
			return e;
		wr16(&c->w, (uint16_t)i);
		wr_bytes(&c->w, qids, (size_t)i * P9_QID_SIZE);
		return 0;
	}
	if (name && par >= 0 && !(new_name = strdup(name))) {
		e = ENOMEM;
		goto fail;
	}
	if (!new_name)
		close_fd(&par);
	if (newfidn == fidn) {
		nf = f;
		close_fd(&nf->fd);
		close_fd(&nf->parent_fd);
		free(nf->name);
	} else {
		nf = fid_new(s, newfidn, &e);
		if (!nf) {
			free(new_name);
			goto fail;
		}
		nf->uid = f->uid;
		nf->kind = FID_NODE;
	}
	nf->fd = cur;
	nf->parent_fd = par;
	nf->name = new_name;
	{
		struct stat st;

		nf->fmt = statx_fd(cur, &st) ? 0 : st.st_mode & S_IFMT;
	}
	wr16(&c->w, nw);
	wr_bytes(&c->w, qids, (size_t)nw * P9_QID_SIZE);
	return 0;
fail:
	close_fd(&cur);
	close_fd(&par);
	return e;
}

static int op_getattr(struct ctx *c)
{
	uint32_t fidn = rd32(&c->rd);
	uint8_t q[P9_QID_SIZE];
	struct statx sx;
	struct p9_fid *f;
	uint64_t valid = P9_GETATTR_BASIC;
	int e;

	rd64(&c->rd);	/* request_mask: everything basic is cheap anyway */
	if (!(f = req_node(c, fidn, &e)))
		return e;
	if (statx(f->fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW,
		  STATX_BASIC_STATS | STATX_BTIME, &sx))
		return errno;
	{
		struct stat st = {
			.st_mode = sx.stx_mode, .st_ino = sx.stx_ino,
			.st_size = (off_t)sx.stx_size,
			.st_mtim = { sx.stx_mtime.tv_sec, sx.stx_mtime.tv_nsec },
		};
		qid_of(&st, q);
	}
	if (sx.stx_mask & STATX_BTIME)
		valid |= P9_GETATTR_BTIME;
	wr64(&c->w, valid);
	wr_bytes(&c->w, q, sizeof(q));
	wr32(&c->w, sx.stx_mode);
	wr32(&c->w, sx.stx_uid);
	wr32(&c->w, sx.stx_gid);
	wr64(&c->w, sx.stx_nlink);
	wr64(&c->w, makedev(sx.stx_rdev_major, sx.stx_rdev_minor));
	wr64(&c->w, sx.stx_size);
	wr64(&c->w, sx.stx_blksize);
	wr64(&c->w, sx.stx_blocks);
	wr64(&c->w, (uint64_t)sx.stx_atime.tv_sec);
	wr64(&c->w, sx.stx_atime.tv_nsec);
	wr64(&c->w, (uint64_t)sx.stx_mtime.tv_sec);
	wr64(&c->w, sx.stx_mtime.tv_nsec);
	wr64(&c->w, (uint64_t)sx.stx_ctime.tv_sec);
	wr64(&c->w, sx.stx_ctime.tv_nsec);
	wr64(&c->w, (uint64_t)sx.stx_btime.tv_sec);
	wr64(&c->w, sx.stx_btime.tv_nsec);
	wr64(&c->w, 0);		/* gen */
	wr64(&c->w, 0);		/* data_version */
	return 0;
}

/* A write descriptor for a regular file fid: its own if open for
 * writing, else a fresh one (closed by the caller when *fresh). */
static int writable_fd(struct p9_server *s, struct p9_fid *f, bool *fresh)
{
	*fresh = false;
	if (f->kind == FID_OPEN) {
		int fl = fcntl(f->ofd, F_GETFL);

		if (fl >= 0 && (fl & O_ACCMODE) != O_RDONLY)
			return f->ofd;
	}
	*fresh = true;
	return reopen_file(s, f->fd, O_WRONLY | O_NONBLOCK);
}

static int op_setattr(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = rd32(&c->rd), valid = rd32(&c->rd);
	uint32_t mode = rd32(&c->rd), uid = rd32(&c->rd), gid = rd32(&c->rd);
	uint64_t size = rd64(&c->rd);
	struct timespec ts[2];
	struct p9_fid *f;
	int e;

	ts[0].tv_sec = (time_t)rd64(&c->rd);
	ts[0].tv_nsec = (long)rd64(&c->rd);
	ts[1].tv_sec = (time_t)rd64(&c->rd);
	ts[1].tv_nsec = (long)rd64(&c->rd);
	if (!(f = req_node(c, fidn, &e)))
		return e;
	if (s->readonly && (valid & ~(uint32_t)P9_ATTR_CTIME))
		return EROFS;
	/* owner first: a chown clears set-id bits a mode change may set */
	if (valid & (P9_ATTR_UID | P9_ATTR_GID)) {
		uid_t u = valid & P9_ATTR_UID ? uid : (uid_t)-1;
		gid_t g = valid & P9_ATTR_GID ? gid : (gid_t)-1;

		if (fchownat(f->fd, "", u, g, AT_EMPTY_PATH |
			     AT_SYMLINK_NOFOLLOW))
			return errno;
	}
	if (valid & P9_ATTR_MODE) {
		if (f->fmt == S_IFLNK)
			return EOPNOTSUPP;
		if (chmod_fd(s, f->fd, mode & 07777))
			return errno;
	}
	if (valid & P9_ATTR_SIZE) {
		bool fresh;
		int fd;

		if (f->fmt != S_IFREG)
			return f->fmt == S_IFDIR ? EISDIR : EINVAL;
		if (size > INT64_MAX)
			return EFBIG;
		fd = writable_fd(s, f, &fresh);
		if (fd < 0)
			return errno;
		e = ftruncate(fd, (off_t)size) ? errno : 0;
		if (fresh)
			close(fd);
		if (e)
			return e;
	}
	if (valid & (P9_ATTR_ATIME | P9_ATTR_MTIME)) {
		if (!(valid & P9_ATTR_ATIME))
			ts[0].tv_nsec = UTIME_OMIT;
		else if (!(valid & P9_ATTR_ATIME_SET))
			ts[0].tv_nsec = UTIME_NOW;
		if (!(valid & P9_ATTR_MTIME))
			ts[1].tv_nsec = UTIME_OMIT;
		else if (!(valid & P9_ATTR_MTIME_SET))
			ts[1].tv_nsec = UTIME_NOW;
		for (int k = 0; k < 2; k++)
			if (ts[k].tv_nsec != UTIME_OMIT &&
			    ts[k].tv_nsec != UTIME_NOW &&
			    (ts[k].tv_nsec < 0 || ts[k].tv_nsec >= 1000000000))
				return EINVAL;
		if (utimensat(f->fd, "", ts, AT_EMPTY_PATH |
			      AT_SYMLINK_NOFOLLOW))
			return errno;
	}
	return 0;
}

static int op_statfs(struct ctx *c)
{
	uint32_t fidn = rd32(&c->rd);
	struct p9_fid *f;
	struct statfs sf;
	uint64_t fsid;
	int e;

	if (!(f = req_node(c, fidn, &e)))
		return e;
	if (fstatfs(f->fd, &sf))
		return errno;
	memcpy(&fsid, &sf.f_fsid, sizeof(fsid));
	wr32(&c->w, (uint32_t)sf.f_type);
	wr32(&c->w, (uint32_t)sf.f_bsize);
	wr64(&c->w, sf.f_blocks);
	wr64(&c->w, sf.f_bfree);
	wr64(&c->w, sf.f_bavail);
	wr64(&c->w, sf.f_files);
	wr64(&c->w, sf.f_ffree);
	wr64(&c->w, fsid);
	wr32(&c->w, (uint32_t)sf.f_namelen);
	return 0;
}

/* Tlopen/Tlcreate flags to open(2) flags.  Kept: the access mode, TRUNC,
 * APPEND, the sync flags, NOATIME, DIRECTORY.  Dropped: CREATE/EXCL
 * (lcreate adds its own), DIRECT (guest buffers need not be aligned),
 * NONBLOCK, FASYNC, NOCTTY, CLOEXEC, LARGEFILE, NOFOLLOW (never follow
 * anyway). */
static int open_flags(uint32_t f, int *out)
{
	int fl;

	switch (f & P9_DOTL_ACCMODE) {
	case 0: fl = O_RDONLY; break;
	case 1: fl = O_WRONLY; break;
	case 2: fl = O_RDWR; break;
	default: return EINVAL;
	}
	if (f & P9_DOTL_TRUNC)
		fl |= O_TRUNC;
	if (f & P9_DOTL_APPEND)
		fl |= O_APPEND;
	if (f & P9_DOTL_DSYNC)
		fl |= O_DSYNC;
	if (f & P9_DOTL_SYNC)
		fl |= O_SYNC;
	if (f & P9_DOTL_NOATIME)
		fl |= O_NOATIME;
	if (f & P9_DOTL_DIRECTORY)
		fl |= O_DIRECTORY;
	*out = fl;
	return 0;
}

static bool writes(int fl)
{
	return (fl & O_ACCMODE) != O_RDONLY || (fl & (O_TRUNC | O_APPEND));
}

/* Open the object of an O_PATH descriptor: regular files and directories
 * only; anything else is never opened. */
static int open_node(struct p9_server *s, int fd, mode_t fmt, int fl)
{
	int ofd;

	switch (fmt) {
	case S_IFDIR:
		if (writes(fl)) {
			errno = EISDIR;
			return -1;
		}
		return openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC |
			      (fl & O_NOATIME));
	case S_IFREG:
		if (fl & O_DIRECTORY) {
			errno = ENOTDIR;
			return -1;
		}
		ofd = reopen_file(s, fd, fl);
		/* O_NOATIME is for the file's owner only */
		if (ofd < 0 && errno == EPERM && (fl & O_NOATIME))
			ofd = reopen_file(s, fd, fl & ~O_NOATIME);
		return ofd;
	case S_IFLNK:
		errno = ELOOP;
		return -1;
	default:	/* device nodes, fifos, sockets */
		errno = ENXIO;
		return -1;
	}
}

static int op_lopen(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = rd32(&c->rd), flags = rd32(&c->rd);
	struct p9_fid *f;
	struct stat st;
	int fl, e;

	if (!(f = req_node(c, fidn, &e)))
		return e;
	if (f->kind != FID_NODE)
		return EBUSY;	/* already open */
	if ((e = open_flags(flags, &fl)))
		return e;
	if (s->readonly && writes(fl))
		return EROFS;
	if (statx_fd(f->fd, &st))
		return errno;
	f->fmt = st.st_mode & S_IFMT;
	f->ofd = open_node(s, f->fd, f->fmt, fl);
	if (f->ofd < 0)
		return errno_or(EIO);
	f->kind = FID_OPEN;
	if ((e = wr_qid_fd(&c->w, f->fd, NULL)))
		return e;
	wr32(&c->w, 0);		/* iounit: msize decides */
	return 0;
}

static int op_lcreate(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = rd32(&c->rd), flags, mode, gid;
	char *name = s->names[0];
	struct p9_fid *f;
	int fl, ofd, pfd, e;

	if ((e = rd_str(&c->rd, name, NAME_MAX + 1, ENAMETOOLONG)))
		return e;
	flags = rd32(&c->rd);
	mode = rd32(&c->rd);
	gid = rd32(&c->rd);
	if (!(f = req_node(c, fidn, &e)))
		return e;
	if (f->kind != FID_NODE)
		return EBUSY;
	if ((e = check_new_name(name)) || (e = open_flags(flags, &fl)))
		return e;
	if (s->readonly)
		return EROFS;
	if (f->fmt != S_IFDIR)
		return ENOTDIR;
	fl &= ~O_DIRECTORY;
	ofd = openat(f->fd, name, fl | O_CREAT | O_EXCL | O_NOFOLLOW |
		     O_CLOEXEC, mode & 07777);
	if (ofd >= 0) {
		if ((e = set_owner_mode(s, f, ofd, gid, mode,
					(mode & 07777) & (s->umask | 07000)))) {
			close(ofd);
			return e;
		}
	} else if (errno == EEXIST && !(flags & P9_DOTL_EXCL)) {
		/* an existing name: opened like Tlopen would (never a
		 * symlink or device) */
		struct stat st;
		int nfd = lookup_one(s, f->fd, name);

		if (nfd < 0)
			return errno;
		if (statx_fd(nfd, &st) ||
		    (ofd = open_node(s, nfd, st.st_mode & S_IFMT, fl)) < 0) {
			e = errno;
			close(nfd);
			return e;
		}
		if (S_ISDIR(st.st_mode)) {
			close(ofd);
			close(nfd);
			return EISDIR;
		}
		close(nfd);
	} else {
		return errno;
	}
	/* the fid becomes the new file: its O_PATH descriptor is the
	 * very inode we opened */
	pfd = reopen_file(s, ofd, O_PATH);
	if (pfd < 0) {
		e = errno;
		close(ofd);
		return e;
	}
	{
		char *nm = strdup(name);

		if (!nm) {
			close(ofd);
			close(pfd);
			return ENOMEM;
		}
		close_fd(&f->parent_fd);
		free(f->name);
		f->parent_fd = f->fd;
		f->name = nm;
	}
	f->fd = pfd;
	f->ofd = ofd;
	f->kind = FID_OPEN;
	f->fmt = S_IFREG;
	if ((e = wr_qid_fd(&c->w, pfd, NULL)))
		return e;
	wr32(&c->w, 0);
	return 0;
}

/* Largest data payload of an Rread/Rreaddir: within msize (the client
 * rejects a reply of msize bytes or more) and the reply room. */
static uint32_t data_room(struct ctx *c, uint32_t count)
{
	size_t room = c->w.cap > c->w.pos + 4 ? c->w.cap - c->w.pos - 4 : 0;
	uint32_t lim = c->s->msize - P9_IOHDR_SIZE;

	if (count > lim)
		count = lim;
	if (count > room)
		count = (uint32_t)room;
	return count;
}

static int op_read(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = rd32(&c->rd), count;
	uint64_t off = rd64(&c->rd);
	struct p9_fid *f;
	size_t done = 0;
	int e;

	count = rd32(&c->rd);
	if (!(f = req_fid(c, fidn, &e)))
		return e;
	count = data_room(c, count);
	if (f->kind == FID_XATTR_READ) {
		uint64_t n = off < f->xsize ? f->xsize - off : 0;

		if (n > count)
			n = count;
		wr32(&c->w, (uint32_t)n);
		wr_bytes(&c->w, f->xbuf + (n ? off : 0), n);
		return 0;
	}
	if (f->kind != FID_OPEN)
		return EBADF;
	if (f->fmt == S_IFDIR)
		return EISDIR;
	if (off > INT64_MAX)
		return EINVAL;
	/* straight into the reply's buffers, after the count */
	while (done < count) {
		struct wr at = c->w;
		unsigned n;
		size_t got;
		ssize_t r;

		wr_bytes(&at, NULL, 4 + done);
		n = iov_slice(s, at.iov, at.cnt, at.i, at.off, count - done,
			      &got);
		if (!n)
			break;
		r = preadv(f->ofd, s->iov, (int)n, (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			if (done)
				break;
			return errno;
		}
		if (r == 0)
			break;
		done += (size_t)r;
		if ((size_t)r < got)
			break;	/* end of file */
	}
	wr32(&c->w, (uint32_t)done);
	wr_bytes(&c->w, NULL, done);
	return 0;
}

static int op_write(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = rd32(&c->rd), count;
	uint64_t off = rd64(&c->rd);
	struct p9_fid *f;
	size_t done = 0;

	count = rd32(&c->rd);
	if (c->rd.bad || count != c->rd.left)
		return EINVAL;	/* the data is the rest of the message */
	if (!(f = fid_get(s, fidn)))
		return EBADF;
	if (f->kind == FID_XATTR_WRITE) {
		if (off > f->xsize || count > f->xsize - off)
			return ERANGE;
		rd_copy(&c->rd, f->xbuf + off, count);
		if (off + count > f->xfill)
			f->xfill = off + count;
		wr32(&c->w, count);
		return 0;
	}
	if (f->kind != FID_OPEN)
		return EBADF;
	if (s->readonly)
		return EROFS;
	if (f->fmt == S_IFDIR)
		return EISDIR;
	if (off > INT64_MAX)
		return EINVAL;
	/* straight from the request's buffers */
	while (done < count) {
		unsigned n;
		size_t got;
		ssize_t r;

		rd_settle(&c->rd);
		n = iov_slice(s, c->rd.iov, c->rd.cnt, c->rd.i, c->rd.off,
			      count - done, &got);
		if (!n)
			break;
		r = pwritev(f->ofd, s->iov, (int)n, (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (done)
				break;
			return r < 0 ? errno : EIO;
		}
		rd_copy(&c->rd, NULL, (size_t)r);
		done += (size_t)r;
		if ((size_t)r < got)
			break;	/* e.g. no space for the rest */
	}
	wr32(&c->w, (uint32_t)done);
	return 0;
}

static bool xattr_name_ok(const char *name)
{
	/* user attributes and POSIX ACLs; never trusted.* or security.*,
	 * which mean something to the host */
	return !strncmp(name, "user.", 5) ||
	       !strcmp(name, "system.posix_acl_access") ||
	       !strcmp(name, "system.posix_acl_default");
}

/* An ordinary descriptor of a fid's regular file or directory, for the
 * f*xattr calls (which refuse O_PATH descriptors). */
static int xattr_fd(struct p9_server *s, struct p9_fid *f)
{
	if (f->fmt == S_IFDIR)
		return openat(f->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (f->fmt == S_IFREG)
		return reopen_file(s, f->fd, O_RDONLY | O_NONBLOCK);
	errno = EOPNOTSUPP;
	return -1;
}

/* The end of an xattrcreate fid: set (or, with size 0, remove) it. */
static int xattr_commit(struct p9_server *s, struct p9_fid *f)
{
	int fd, e = 0;

	if (f->xfill != f->xsize)
		return EINVAL;
	fd = xattr_fd(s, f);
	if (fd < 0)
		return errno;
	if (f->xsize == 0 ? fremovexattr(fd, f->xname) :
	    fsetxattr(fd, f->xname, f->xbuf, f->xsize, f->xflags))
		e = errno;
	close(fd);
	return e;
}

static int op_clunk(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = rd32(&c->rd);
	struct p9_fid *f;
	int e = 0;

	if (!(f = req_fid(c, fidn, &e)))
		return e;
	if (f->kind == FID_XATTR_WRITE)
		e = xattr_commit(s, f);
	fid_free(s, f);
	return e;
}

/* A directory fid reached by ".." holds no name (the walk cannot tell
 * it): find it now, for remove and rename, among its parent's entries by
 * inode.  The root has none (EBUSY: it cannot be removed or renamed).
 * Costs one scan of the parent directory, only for such a fid. */
static int find_name(struct p9_server *s, struct p9_fid *f)
{
	struct stat st, est;
	struct dirent *de;
	char *name = NULL;
	int pfd, dfd;
	DIR *dir;

	if (statx_fd(f->fd, &st))
		return errno;
	if (is_root(s, &st))
		return EBUSY;
	if ((pfd = lookup_parent(s, f->fd, &st)) < 0)
		return errno_or(ENOENT);
	dfd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || !(dir = fdopendir(dfd))) {
		int e = errno_or(EMFILE);

		if (dfd >= 0)
			close(dfd);
		close(pfd);
		return e;
	}
	while (!name && (de = readdir(dir)))
		if (de->d_ino == st.st_ino && strcmp(de->d_name, ".") &&
		    strcmp(de->d_name, "..") &&
		    !fstatat(pfd, de->d_name, &est, AT_SYMLINK_NOFOLLOW) &&
		    est.st_dev == st.st_dev && est.st_ino == st.st_ino &&
		    !(name = strdup(de->d_name))) {
			closedir(dir);
			close(pfd);
			return ENOMEM;
		}
	closedir(dir);
	if (!name) {
		close(pfd);
		return ESTALE;	/* moved away meanwhile */
	}
	close_fd(&f->parent_fd);
	free(f->name);
	f->parent_fd = pfd;
	f->name = name;
	return 0;
}

/* Is fid's object still what parent_fd/name names? */
static int still_named(struct p9_server *s, struct p9_fid *f)
{
	struct stat a, b;
	int e;

	if ((f->parent_fd < 0 || !f->name) && (e = find_name(s, f)))
		return e;	/* the root, or reached by ".." and gone */
	if (fstatat(f->parent_fd, f->name, &a, AT_SYMLINK_NOFOLLOW))
		return errno;
	if (statx_fd(f->fd, &b))
		return errno;
	if (a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		return ESTALE;
	return 0;
}

static int op_remove(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = rd32(&c->rd);
	struct p9_fid *f;
	int e;

	if (!(f = req_node(c, fidn, &e)))
		return e;
	/* the fid goes whether or not the remove works */
	if (s->readonly)
		e = EROFS;
	else if (!(e = still_named(s, f)) &&
		 unlinkat(f->parent_fd, f->name,
			  f->fmt == S_IFDIR ? AT_REMOVEDIR : 0))
		e = errno;
	fid_free(s, f);
	return e;
}

static int op_readdir(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = rd32(&c->rd), count;
	uint64_t off = rd64(&c->rd);
	size_t start, used = 0;
	struct p9_fid *f;
	bool at_root;
	struct stat st;
	int e;

	count = rd32(&c->rd);
	if (!(f = req_node(c, fidn, &e)))
		return e;
	if (f->kind != FID_OPEN || f->fmt != S_IFDIR)
		return f->kind == FID_OPEN ? ENOTDIR : EBADF;
	if (off > INT64_MAX)
		return EINVAL;
	count = data_room(c, count);
	if (lseek(f->ofd, (off_t)off, SEEK_SET) < 0)
		return errno;
	at_root = statx_fd(f->fd, &st) == 0 && is_root(s, &st);
	start = c->w.pos;
	wr32(&c->w, 0);		/* count, patched below */
	for (;;) {
		ssize_t n = getdents64(f->ofd, s->dirbuf, sizeof(s->dirbuf));
		size_t p = 0;

		if (n < 0) {
			if (used)
				break;
			return errno;
		}
		if (n == 0)
			break;
		while (p < (size_t)n) {
			struct dirent64 *d = (struct dirent64 *)(s->dirbuf + p);
			size_t len = strlen(d->d_name);
			uint8_t q[P9_QID_SIZE] = { 0 };
			uint64_t ino = d->d_ino;

			if (P9_QID_SIZE + 8 + 1 + 2 + len > count - used)
				goto full;
			/* the root's ".." is itself: the host's parent
			 * directory is no business of the guest */
			if (at_root && !strcmp(d->d_name, ".."))
				ino = s->root_ino;
			q[0] = d->d_type == DT_DIR ? P9_QTDIR :
			       d->d_type == DT_LNK ? P9_QTSYMLINK : P9_QTFILE;
			memcpy(q + 5, &ino, 8);
			wr_bytes(&c->w, q, sizeof(q));
			wr64(&c->w, (uint64_t)d->d_off);
			wr8(&c->w, d->d_type);
			wr_str(&c->w, d->d_name, len);
			used += P9_QID_SIZE + 8 + 1 + 2 + len;
			p += d->d_reclen;
		}
	}
full:
	wr_patch32(&c->w, start, (uint32_t)used);
	return 0;
}

/* The directory fid of a create-like request. */
static struct p9_fid *dir_fid(struct p9_server *s, uint32_t num, int *err)
{
	struct p9_fid *f = node_fid(s, num, err);

	if (f && f->fmt != S_IFDIR) {
		*err = ENOTDIR;
		return NULL;
	}
	return f;
}

/* After mkdirat/mknodat/symlinkat: owner, exact mode, and the qid, on a
 * fresh O_PATH descriptor of what is now under name (if it was swapped
 * meanwhile, we touch what we find, which is inside the share too). */
static int created(struct ctx *c, struct p9_fid *dir, const char *name,
		   uint32_t gid, mode_t mode, mode_t fmt)
{
	struct p9_server *s = c->s;
	struct stat st;
	int fd = lookup_one(s, dir->fd, name), e;

	if (fd < 0)
		return errno;
	if (statx_fd(fd, &st)) {
		e = errno;
		goto out;
	}
	if ((st.st_mode & S_IFMT) == fmt &&
	    (e = set_owner_mode(s, dir, fd, gid, mode, fmt != S_IFLNK)))
		goto out;
	e = wr_qid_fd(&c->w, fd, NULL);
out:
	close(fd);
	return e;
}

/* A name to create or change, from the message into s->names[k]. */
static int rd_name(struct ctx *c, unsigned k)
{
	return rd_str(&c->rd, c->s->names[k], NAME_MAX + 1, ENAMETOOLONG);
}

/* What every request that makes or changes name in directory fid dfidn
 * checks first, in this order: the message was whole, dfidn is a
 * directory, name is one component (not . or ..), the share is
 * writable.  0 with *d set, or the errno to answer. */
static int name_change(struct ctx *c, uint32_t dfidn, const char *name,
		       struct p9_fid **d)
{
	int e;

	if (parsed(c))
		return EINVAL;
	if (!(*d = dir_fid(c->s, dfidn, &e)))
		return e;
	if ((e = check_new_name(name)))
		return e;
	return c->s->readonly ? EROFS : 0;
}

static int op_mkdir(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = rd32(&c->rd), mode, gid;
	char *name = s->names[0];
	struct p9_fid *d;
	int e;

	if ((e = rd_name(c, 0)))
		return e;
	mode = rd32(&c->rd);
	gid = rd32(&c->rd);
	if ((e = name_change(c, fidn, name, &d)))
		return e;
	if (mkdirat(d->fd, name, mode & 07777))
		return errno;
	return created(c, d, name, gid, mode, S_IFDIR);
}

static int op_mknod(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = rd32(&c->rd), mode, gid;
	char *name = s->names[0];
	struct p9_fid *d;
	int e;

	if ((e = rd_name(c, 0)))
		return e;
	mode = rd32(&c->rd);
	rd32(&c->rd);	/* major, minor: no device nodes here */
	rd32(&c->rd);
	gid = rd32(&c->rd);
	if ((e = name_change(c, fidn, name, &d)))
		return e;
	if (!(mode & S_IFMT))
		mode |= S_IFREG;	/* as mknod(2) reads it */
	/* regular files and fifos only: a device node in the share would be
	 * a door to the host's devices for anyone who opens it there */
	if (!S_ISREG(mode) && !S_ISFIFO(mode))
		return EPERM;
	if (mknodat(d->fd, name, (mode & S_IFMT) | (mode & 07777), 0))
		return errno;
	return created(c, d, name, gid, mode, mode & S_IFMT);
}

static int op_symlink(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = rd32(&c->rd), gid;
	char *name = s->names[0];
	struct p9_fid *d;
	int e;

	if ((e = rd_name(c, 0)) ||
	    (e = rd_str(&c->rd, s->target, sizeof(s->target), ENAMETOOLONG)))
		return e;
	gid = rd32(&c->rd);
	if ((e = name_change(c, fidn, name, &d)))
		return e;
	if (!s->target[0])
		return ENOENT;
	/* the target is only text: it is never followed here */
	if (symlinkat(s->target, d->fd, name))
		return errno;
	return created(c, d, name, gid, 0, S_IFLNK);
}

static int op_link(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t dfidn = rd32(&c->rd), fidn = rd32(&c->rd);
	char *name = s->names[0];
	struct p9_fid *d, *f;
	char n[16];
	int e;

	if ((e = rd_name(c, 0)))
		return e;
	if ((e = name_change(c, dfidn, name, &d)))
		return e;
	if (!(f = node_fid(s, fidn, &e)))
		return e;
	if (f->fmt == S_IFDIR)
		return EPERM;
	/* the fid's own inode (both ends inside the share); AT_EMPTY_PATH
	 * needs CAP_DAC_READ_SEARCH, /proc/self/fd does not */
	if (linkat(f->fd, "", d->fd, name, AT_EMPTY_PATH) == 0)
		return 0;
	if (errno != ENOENT && errno != EPERM)
		return errno;
	snprintf(n, sizeof(n), "%d", f->fd);
	if (linkat(s->proc_fd, n, d->fd, name, AT_SYMLINK_FOLLOW))
		return errno;
	return 0;
}

static int op_readlink(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = rd32(&c->rd);
	struct p9_fid *f;
	ssize_t n;
	int e;

	if (!(f = req_node(c, fidn, &e)))
		return e;
	if (f->fmt != S_IFLNK)
		return EINVAL;
	n = readlinkat(f->fd, "", s->target, sizeof(s->target));
	if (n < 0)
		return errno;
	if ((size_t)n >= sizeof(s->target))
		return ENAMETOOLONG;
	wr_str(&c->w, s->target, (size_t)n);
	return 0;
}

static int op_rename(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = rd32(&c->rd), dfidn = rd32(&c->rd);
	char *name = s->names[0], *nm;
	struct p9_fid *f, *d;
	int e, pfd;

	if ((e = rd_name(c, 0)))
		return e;
	if ((e = name_change(c, dfidn, name, &d)))
		return e;
	if (!(f = node_fid(s, fidn, &e)))
		return e;
	if ((e = still_named(s, f)))
		return e;
	if (!(nm = strdup(name)))
		return ENOMEM;
	pfd = dup_fd(d->fd);
	if (pfd < 0) {
		free(nm);
		return errno_or(EMFILE);
	}
	if (renameat(f->parent_fd, f->name, d->fd, name)) {
		e = errno;
		free(nm);
		close(pfd);
		return e;
	}
	/* the fid follows its file */
	close(f->parent_fd);
	free(f->name);
	f->parent_fd = pfd;
	f->name = nm;
	return 0;
}

static int op_renameat(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t ofidn, nfidn;
	char *oname = s->names[0], *nname = s->names[1];
	struct p9_fid *od, *nd;
	int e;

	ofidn = rd32(&c->rd);
	if ((e = rd_name(c, 0)))
		return e;
	nfidn = rd32(&c->rd);
	if ((e = rd_name(c, 1)))
		return e;
	if ((e = name_change(c, ofidn, oname, &od)) ||
	    (e = name_change(c, nfidn, nname, &nd)))
		return e;
	if (renameat(od->fd, oname, nd->fd, nname))
		return errno;
	return 0;
}

static int op_unlinkat(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = rd32(&c->rd), flags;
	char *name = s->names[0];
	struct p9_fid *d;
	int e;

	if ((e = rd_name(c, 0)))
		return e;
	flags = rd32(&c->rd);
	if (flags & ~P9_DOTL_AT_REMOVEDIR)
		return EINVAL;
	if ((e = name_change(c, fidn, name, &d)))
		return e;
	if (unlinkat(d->fd, name,
		     flags & P9_DOTL_AT_REMOVEDIR ? AT_REMOVEDIR : 0))
		return errno;
	return 0;
}

static int op_fsync(struct ctx *c)
{
	uint32_t fidn = rd32(&c->rd), datasync = rd32(&c->rd);
	struct p9_fid *f;
	int e;

	if (!(f = req_node(c, fidn, &e)))
		return e;
	if (f->kind != FID_OPEN)
		return EBADF;
	if (datasync ? fdatasync(f->ofd) : fsync(f->ofd))
		return errno;
	return 0;
}

static void rd_skip_str(struct rd *r)
{
	rd_copy(r, NULL, rd16(r));
}

static int lock_args(struct p9_fid *f, uint8_t type, uint64_t start,
		     uint64_t len, struct flock *fl)
{
	if (f->kind != FID_OPEN || f->fmt != S_IFREG)
		return EBADF;
	if (start > INT64_MAX || len > INT64_MAX ||
	    (len && start > (uint64_t)INT64_MAX - len + 1))
		return EINVAL;
	memset(fl, 0, sizeof(*fl));
	switch (type) {
	case P9_LOCK_TYPE_RDLCK: fl->l_type = F_RDLCK; break;
	case P9_LOCK_TYPE_WRLCK: fl->l_type = F_WRLCK; break;
	case P9_LOCK_TYPE_UNLCK: fl->l_type = F_UNLCK; break;
	default: return EINVAL;
	}
	fl->l_whence = SEEK_SET;
	fl->l_start = (off_t)start;
	fl->l_len = (off_t)len;	/* 0: to the end of the file, as in 9P */
	return 0;
}

/* Locks are open-file-description locks on the fid's own descriptor: each
 * guest open is its own owner, and they conflict with host processes'
 * POSIX locks on the same file. */
static int op_lock(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = rd32(&c->rd), flags;
	uint8_t type = rd8(&c->rd);
	uint64_t start, len;
	struct p9_fid *f;
	struct flock fl;
	int e;

	flags = rd32(&c->rd);
	start = rd64(&c->rd);
	len = rd64(&c->rd);
	rd32(&c->rd);		/* proc_id: the guest's business */
	rd_skip_str(&c->rd);	/* client_id */
	if (!(f = req_fid(c, fidn, &e)))
		return e;
	if ((e = lock_args(f, type, start, len, &fl)))
		return e;
	if (fcntl(f->ofd, F_OFD_SETLK, &fl) == 0) {
		wr8(&c->w, P9_LOCK_SUCCESS);
		return 0;
	}
	if (errno != EAGAIN && errno != EACCES)
		return errno;
	if ((flags & P9_LOCK_FLAGS_BLOCK) && s->nparked < P9_MAX_PARKED) {
		/* wait for the range without holding up the device */
		struct p9_req *r = c->req, **pp = &s->parked;

		r->tag = c->tag;
		r->parked_fid = fidn;
		r->lock_type = type;
		r->lock_start = start;
		r->lock_len = len;
		r->parked_gen = ++s->park_gen;
		r->parked_next = NULL;
		while (*pp)
			pp = &(*pp)->parked_next;
		*pp = r;
		s->nparked++;
		return P9_PARKED;
	}
	wr8(&c->w, P9_LOCK_BLOCKED);
	return 0;
}

unsigned p9_server_retry_parked(struct p9_server *s)
{
	struct p9_req **pp = &s->parked;

	while (*pp) {
		struct p9_req *r = *pp;
		struct p9_fid *f = fid_get(s, r->parked_fid);
		struct flock fl;
		int e;

		if (!f)
			e = EBADF;
		else if (!(e = lock_args(f, r->lock_type, r->lock_start,
					 r->lock_len, &fl)) &&
			 fcntl(f->ofd, F_OFD_SETLK, &fl))
			e = errno == EACCES ? EAGAIN : errno;
		if (e == EAGAIN) {
			pp = &r->parked_next;
			continue;
		}
		*pp = r->parked_next;
		r->parked_next = NULL;
		s->nparked--;
		parked_finish(s, r, e, P9_LOCK_SUCCESS);
	}
	return s->nparked;
}

void p9_server_cancel_parked(struct p9_server *s)
{
	while (s->parked) {
		struct p9_req *r = s->parked;

		parked_remove(s, r);
		r->reply_len = 0;
		if (s->complete)
			s->complete(s->complete_opaque, r);
	}
}

unsigned p9_server_parked(const struct p9_server *s)
{
	return s->nparked;
}

static int op_getlock(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = rd32(&c->rd), proc_id;
	uint8_t type = rd8(&c->rd);
	uint64_t start = rd64(&c->rd), len = rd64(&c->rd);
	char *client = s->names[0];
	struct p9_fid *f;
	struct flock fl;
	int e;

	proc_id = rd32(&c->rd);
	if ((e = rd_str(&c->rd, client, NAME_MAX + 1, ENAMETOOLONG)))
		return e;
	if (!(f = req_fid(c, fidn, &e)))
		return e;
	if ((e = lock_args(f, type, start, len, &fl)))
		return e;
	if (fl.l_type == F_UNLCK)
		return EINVAL;
	if (fcntl(f->ofd, F_OFD_GETLK, &fl))
		return errno;
	if (fl.l_type == F_UNLCK) {
		wr8(&c->w, P9_LOCK_TYPE_UNLCK);
		wr64(&c->w, start);
		wr64(&c->w, len);
		wr32(&c->w, proc_id);
		wr_str(&c->w, client, strlen(client));
		return 0;
	}
	wr8(&c->w, fl.l_type == F_RDLCK ? P9_LOCK_TYPE_RDLCK :
		   P9_LOCK_TYPE_WRLCK);
	wr64(&c->w, (uint64_t)fl.l_start);
	wr64(&c->w, (uint64_t)fl.l_len);
	/* an open-file-description lock has no pid (-1) */
	wr32(&c->w, fl.l_pid > 0 ? (uint32_t)fl.l_pid : 0);
	wr_str(&c->w, "", 0);
	return 0;
}

static int op_xattrwalk(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = rd32(&c->rd), newfidn = rd32(&c->rd);
	char *name = s->names[0];
	struct p9_fid *f, *nf;
	uint8_t *buf = NULL;
	ssize_t n = 0;
	int fd = -1, e;

	if ((e = rd_str(&c->rd, name, XATTR_NAME_MAX + 1, ERANGE)))
		return e;
	if (!(f = req_node(c, fidn, &e)))
		return e;
	if (fid_get(s, newfidn))
		return EEXIST;
	if (s->nxattr >= P9_MAX_XATTR_FIDS)
		return ENFILE;
	if (name[0] && !xattr_name_ok(name))
		return ENODATA;	/* the host's own namespaces are not shown */
	if (f->fmt == S_IFREG || f->fmt == S_IFDIR) {
		fd = xattr_fd(s, f);
		if (fd < 0)
			return errno;
		n = name[0] ? fgetxattr(fd, name, NULL, 0) :
			      flistxattr(fd, NULL, 0);
		if (n < 0)
			goto fail;
		if (n > P9_MAX_XATTR_SIZE) {
			errno = E2BIG;
			goto fail;
		}
		buf = malloc(n ? (size_t)n : 1);
		if (!buf) {
			errno = ENOMEM;
			goto fail;
		}
		if (n)
			n = name[0] ? fgetxattr(fd, name, buf, (size_t)n) :
				      flistxattr(fd, (char *)buf, (size_t)n);
		if (n < 0)
			goto fail;
		close_fd(&fd);
	} else if (name[0]) {
		return ENODATA;	/* no user attributes on special files */
	}
	if (!name[0] && n > 0) {
		/* list only what a get would give */
		size_t in = 0, out = 0;

		while (in < (size_t)n) {
			size_t l = strnlen((char *)buf + in, (size_t)n - in);

			if (in + l < (size_t)n && xattr_name_ok((char *)buf + in)) {
				memmove(buf + out, buf + in, l + 1);
				out += l + 1;
			}
			in += l + 1;
		}
		n = (ssize_t)out;
	}
	nf = fid_new(s, newfidn, &e);
	if (!nf) {
		free(buf);
		return e;
	}
	nf->kind = FID_XATTR_READ;
	nf->xbuf = buf;
	nf->xsize = (uint64_t)n;
	s->nxattr++;
	wr64(&c->w, (uint64_t)n);
	return 0;
fail:
	e = errno;
	close_fd(&fd);
	free(buf);
	return e;
}

static int op_xattrcreate(struct ctx *c)
{
	struct p9_server *s = c->s;
	uint32_t fidn = rd32(&c->rd), flags;
	char *name = s->names[0];
	uint64_t size;
	struct p9_fid *f;
	uint8_t *buf;
	char *nm;
	int e;

	if ((e = rd_str(&c->rd, name, XATTR_NAME_MAX + 1, ERANGE)))
		return e;
	size = rd64(&c->rd);
	flags = rd32(&c->rd);
	if (!(f = req_node(c, fidn, &e)))
		return e;
	if (s->readonly)
		return EROFS;
	if (!name[0] || (flags & ~(uint32_t)(XATTR_CREATE | XATTR_REPLACE)))
		return EINVAL;
	if (!xattr_name_ok(name))
		return EOPNOTSUPP;
	if (f->fmt != S_IFREG && f->fmt != S_IFDIR)
		return EPERM;
	if (size > P9_MAX_XATTR_SIZE)
		return E2BIG;
	if (s->nxattr >= P9_MAX_XATTR_FIDS)
		return ENFILE;
	buf = malloc(size ? size : 1);
	nm = strdup(name);
	if (!buf || !nm) {
		free(buf);
		free(nm);
		return ENOMEM;
	}
	/* the fid turns into the attribute being written */
	close_fd(&f->ofd);
	f->kind = FID_XATTR_WRITE;
	f->xbuf = buf;
	f->xname = nm;
	f->xsize = size;
	f->xfill = 0;
	f->xflags = (int)flags;
	s->nxattr++;
	return 0;
}

/* ---- dispatch ---- */

static void plog(struct p9_server *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void plog(struct p9_server *s, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	if (!s->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	s->log(s->log_opaque, msg);
}

typedef int (*op_fn)(struct ctx *c);

static op_fn op_for(uint8_t type)
{
	switch (type) {
	case P9_TSTATFS: return op_statfs;
	case P9_TLOPEN: return op_lopen;
	case P9_TLCREATE: return op_lcreate;
	case P9_TSYMLINK: return op_symlink;
	case P9_TMKNOD: return op_mknod;
	case P9_TRENAME: return op_rename;
	case P9_TREADLINK: return op_readlink;
	case P9_TGETATTR: return op_getattr;
	case P9_TSETATTR: return op_setattr;
	case P9_TXATTRWALK: return op_xattrwalk;
	case P9_TXATTRCREATE: return op_xattrcreate;
	case P9_TREADDIR: return op_readdir;
	case P9_TFSYNC: return op_fsync;
	case P9_TLOCK: return op_lock;
	case P9_TGETLOCK: return op_getlock;
	case P9_TLINK: return op_link;
	case P9_TMKDIR: return op_mkdir;
	case P9_TRENAMEAT: return op_renameat;
	case P9_TUNLINKAT: return op_unlinkat;
	case P9_TVERSION: return op_version;
	case P9_TAUTH: return op_auth;
	case P9_TATTACH: return op_attach;
	case P9_TFLUSH: return op_flush;
	case P9_TWALK: return op_walk;
	case P9_TREAD: return op_read;
	case P9_TWRITE: return op_write;
	case P9_TCLUNK: return op_clunk;
	case P9_TREMOVE: return op_remove;
	default: return NULL;	/* legacy 9P2000(.u) and R-messages */
	}
}

int p9_server_handle(struct p9_server *s, struct p9_req *r)
{
	size_t in_len = iov_len_total(r->in, r->n_in);
	size_t limit = s->msize ? s->msize : P9_MAX_MSIZE;
	struct ctx c = { .s = s, .req = r };
	uint32_t size;
	op_fn fn;
	int e;

	r->reply_len = 0;
	wr_init(&c.w, r->out, r->n_out, reply_cap(s, r->out, r->n_out));
	rd_init(&c.rd, r->in, r->n_in, in_len < P9_HDR_SIZE ? in_len :
							       P9_HDR_SIZE);
	size = rd32(&c.rd);
	c.type = rd8(&c.rd);
	c.tag = rd16(&c.rd);
	if (c.rd.bad) {
		plog(s, "message of %zu bytes is shorter than a header",
		     in_len);
		c.tag = P9_NOTAG;
		e = EINVAL;
		goto error;
	}
	if (size < P9_HDR_SIZE || size > in_len || size > limit) {
		plog(s, "message type %u tag %u: size field %u, but %zu bytes "
		     "came (msize %zu)", c.type, c.tag, size, in_len, limit);
		e = EINVAL;
		goto error;
	}
	c.rd.left = size - P9_HDR_SIZE;
	fn = op_for(c.type);
	if (!fn) {
		plog(s, "message type %u (tag %u) is not 9P2000.L", c.type,
		     c.tag);
		e = EOPNOTSUPP;
		goto error;
	}
	if (!s->msize && c.type != P9_TVERSION) {
		e = EPROTO;	/* no session yet */
		goto error;
	}
	wr32(&c.w, 0);		/* size, patched below */
	wr8(&c.w, c.type + 1);
	wr16(&c.w, c.tag);
	e = fn(&c);
	if (e == P9_PARKED)
		return 0;
	if (e == EINVAL && (c.rd.bad || c.rd.left))
		plog(s, "message type %u tag %u: %s %u-byte body", c.type,
		     c.tag, c.rd.bad ? "truncated" : "trailing bytes in",
		     size - P9_HDR_SIZE);
	if (!e && c.w.overflow)
		e = ENOBUFS;	/* the guest's reply buffer is too small */
	if (!e) {
		wr_patch32(&c.w, 0, (uint32_t)c.w.pos);
		r->reply_len = (uint32_t)c.w.pos;
		goto done;
	}
error:
	wr_seek(&c.w, 0);
	wr32(&c.w, P9_HDR_SIZE + 4);
	wr8(&c.w, P9_RLERROR);
	wr16(&c.w, c.tag);
	wr32(&c.w, (uint32_t)e);
	if (c.w.overflow)
		plog(s, "tag %u: no room for even an Rlerror (%zu bytes)",
		     c.tag, c.w.cap);
	else
		r->reply_len = (uint32_t)c.w.pos;
done:
	/* a lock range may have come free */
	if (s->nparked && (c.type == P9_TLOCK || c.type == P9_TCLUNK ||
			   c.type == P9_TREMOVE || c.type == P9_TXATTRCREATE))
		p9_server_retry_parked(s);
	return 1;
}

/* ---- life cycle ---- */

static mode_t read_umask(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[128];
	unsigned m = 0777;	/* unknown: always fix modes up */

	if (!f)
		return 0777;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Umask: %o", &m) == 1)
			break;
	fclose(f);
	return (mode_t)m;
}

struct p9_server *p9_server_create(const struct p9_server_opts *o, char *err,
				   size_t errlen)
{
	struct p9_server *s = calloc(1, sizeof(*s));
	struct stat st, pst;
	char n[16];
	int fd;

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->proc_fd = -1;
	s->root_fd = open(o->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (s->root_fd < 0 || statx_fd(s->root_fd, &st)) {
		snprintf(err, errlen, "%s: %s", o->path, strerror(errno));
		goto fail;
	}
	s->root_dev = st.st_dev;
	s->root_ino = st.st_ino;
	/* regular files are opened from their O_PATH descriptors through
	 * /proc/self/fd: check that it is there and works */
	s->proc_fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	snprintf(n, sizeof(n), "%d", s->root_fd);
	fd = s->proc_fd < 0 ? -1 : openat(s->proc_fd, n, O_PATH | O_CLOEXEC);
	if (fd < 0 || statx_fd(fd, &pst) || pst.st_ino != st.st_ino) {
		snprintf(err, errlen, "%s: cannot use /proc/self/fd (is /proc "
			 "mounted?)", o->path);
		if (fd >= 0)
			close(fd);
		goto fail;
	}
	close(fd);
	s->have_openat2 = true;
	s->readonly = o->readonly;
	s->as_root = geteuid() == 0;
	s->umask = read_umask();
	s->log = o->log;
	s->log_opaque = o->log_opaque;
	return s;
fail:
	p9_server_destroy(s);
	return NULL;
}

void p9_server_set_complete(struct p9_server *s,
			    void (*fn)(void *opaque, struct p9_req *r),
			    void *opaque)
{
	s->complete = fn;
	s->complete_opaque = opaque;
}

void p9_server_reset(struct p9_server *s)
{
	s->parked = NULL;
	s->nparked = 0;
	fids_clear(s);
	s->msize = 0;
}

void p9_server_destroy(struct p9_server *s)
{
	if (!s)
		return;
	p9_server_reset(s);
	if (s->root_fd >= 0)
		close(s->root_fd);
	if (s->proc_fd >= 0)
		close(s->proc_fd);
	free(s);
}

uint32_t p9_server_msize(const struct p9_server *s)
{
	return s->msize;
}

unsigned p9_server_fids(const struct p9_server *s)
{
	return s->nfids;
}
