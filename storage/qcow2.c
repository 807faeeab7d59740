/* storage/qcow2.c - opening qcow2 images (v2 and v3) and their backing
 * chains: header and table validation, then the blk_dev for block.c.
 * qcow2_meta.c holds the metadata code, qcow2_io.c the guest requests.
 *
 * Decisions:
 * - Dirty bit (lazy refcounts not written back): refused with a clear error
 *   telling to run "qemu-img check -r all".  We never set it and never use
 *   lazy refcounts (an image with the lazy_refcounts compat bit is written
 *   with eager refcounts), so an image we wrote is never dirty.
 * - Corrupt bit: the image opens only read-only (with a notice on stderr);
 *   a writable open is refused (naming readonly=on and qemu-img check -r
 *   all) rather than silently downgraded, so a guest never believes its
 *   writes land.
 * - Backing file without a backing-format extension: refused (the chain is
 *   read from headers, never probed from content); fix with
 *   "qemu-img rebase -u -F FMT -b BACKING IMAGE".  A relative backing name
 *   is relative to the directory of the image naming it.  Chains deeper
 *   than QCOW2_MAX_CHAIN or with a file twice (same device and inode) are
 *   refused.  Backing files are opened read-only, shared-locked, buffered.
 * - Internal snapshots: readable; writing is refused at open, since shared
 *   clusters would need copy-on-write of L2 tables.
 * - Unknown autoclear bits (bitmaps) are cleared on a writable open, as the
 *   spec asks of writers that do not maintain them.
 * - Encryption, external data files, extended L2 entries, unknown
 *   incompatible features, zstd without libzstd: refused.
 * - Locks: an OFD lock over the whole file, exclusive when writable, shared
 *   when read-only (it also keeps qemu-img out while we have it open).
 *
 * Crash safety: refcounts and new tables are written at once; what points
 * at them (L2 entries of allocating writes, new L1 and refcount table
 * entries) waits in memory and is written at FLUSH, close or the eviction
 * of a dirty L2 table, after one fdatasync barrier (qcow2_meta.c), so a
 * kill - or a power loss - between any two writes leaves at most leaked
 * clusters.  FLUSH = barrier, pointers, dirty L2 tables, fdatasync.  Data
 * written but not flushed may be lost.
 */
#include "storage/qcow2.h"
#include "storage/io_record.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef HAVE_ZSTD
#include <zstd.h>
#endif

void q2_report(struct q2img *im, const char *fmt, ...)
{
	va_list ap;

	if (im->err_reported)	/* one line per image, not a flood */
		return;
	im->err_reported = true;
	fprintf(stderr, "qcow2: %s: ", im->path);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Read len bytes; what lies past the end of the file reads as zeroes. */
int q2_pread(int fd, void *buf, uint64_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0) {
			memset(p, 0, len);
			return 0;
		}
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

int q2_pwrite(int fd, const void *buf, uint64_t len, uint64_t off)
{
	const uint8_t *p = buf;
	uint64_t len0 = len, off0 = off;	/* for the power-loss log */

	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		off += n;
		len -= n;
	}
	io_record_write(fd, buf, len0, off0);
	return 0;
}

void q2_img_close(struct q2img *im)
{
	if (!im)
		return;
	q2_img_close(im->backing);
	if (im->dfd >= 0 && im->dfd != im->fd)
		close(im->dfd);
	if (im->fd >= 0)
		close(im->fd);
	q2_cache_free(&im->l2c);
	q2_cache_free(&im->rbc);
	free(im->l1);
	free(im->rt);
	free(im->zero_cluster);
	free(im->cbuf);
	free(im->cin);
	free(im->quar);
	free(im->pfree);
#ifdef HAVE_ZSTD
	if (im->zstd)
		ZSTD_freeDCtx(im->zstd);
#endif
	free(im->path);
	free(im);
}

/* what is already open in this chain, for loop detection */
struct chain {
	dev_t dev[QCOW2_MAX_CHAIN + 2];
	ino_t ino[QCOW2_MAX_CHAIN + 2];
	int n;
};

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); goto fail; } while (0)

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return alen && blen && a < b + blen && b < a + alen;
}

static int lock_file(int fd, bool exclusive)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = exclusive ? F_WRLCK : F_RDLCK;
	fl.l_whence = SEEK_SET;
	return fcntl(fd, F_OFD_SETLK, &fl);
}

static struct q2img *img_open(const char *path, bool raw, bool writable,
			      bool direct, struct chain *ch, char *err,
			      size_t errlen);

/* Open an image file and take its lock; fills the common fields. */
static struct q2img *img_new(const char *path, bool raw, bool writable,
			     bool direct, struct chain *ch, char *err,
			     size_t errlen)
{
	struct q2img *im = calloc(1, sizeof(*im));
	struct stat st;
	off_t end;
	int i;

	if (!im) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	im->fd = im->dfd = -1;
	im->path = strdup(path);
	im->raw = raw;
	im->writable = writable;
	if (!im->path)
		FAIL("%s: out of memory", path);
	im->fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (im->fd < 0)
		FAIL("%s: cannot open: %s", path, strerror(errno));
	if (fstat(im->fd, &st) < 0)
		FAIL("%s: cannot stat: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		FAIL("%s: not a regular file or block device", path);
	for (i = 0; i < ch->n; i++)
		if (ch->dev[i] == st.st_dev && ch->ino[i] == st.st_ino)
			FAIL("%s: backing file loop (the file is already in the chain)",
			     path);
	if (ch->n > QCOW2_MAX_CHAIN)
		FAIL("%s: backing chain deeper than %d images", path,
		     QCOW2_MAX_CHAIN);
	ch->dev[ch->n] = st.st_dev;
	ch->ino[ch->n] = st.st_ino;
	ch->n++;
	end = lseek(im->fd, 0, SEEK_END);
	if (end < 0)
		FAIL("%s: cannot find its size: %s", path, strerror(errno));
	im->file_size = (uint64_t)end;
	if (lock_file(im->fd, writable) < 0)
		FAIL("%s: image is locked by another process (%s)", path,
		     writable ? "in use" : "opened for writing");
	im->dfd = im->fd;
	if (direct) {
		im->dfd = open(path, (writable ? O_RDWR : O_RDONLY) |
			       O_CLOEXEC | O_DIRECT);
		if (im->dfd < 0)
			FAIL("%s: cannot open with cache=none (O_DIRECT): %s",
			     path, strerror(errno));
	}
	return im;
fail:
	q2_img_close(im);
	return NULL;
}

static const char *feature_name(const uint8_t *ft, uint32_t ftlen, int type,
				int bit, char *buf, size_t buflen)
{
	uint32_t i;

	for (i = 0; ft && i + 48 <= ftlen; i += 48)
		if (ft[i] == type && ft[i + 1] == bit) {
			snprintf(buf, buflen, " (%.46s)", (const char *)ft + i + 2);
			return buf;
		}
	return "";
}

/* Open the backing file named in the header (already bounds checked). */
static int open_backing(struct q2img *im, const uint8_t *name, uint32_t len,
			const char *fmt, bool direct, struct chain *ch,
			char *err, size_t errlen)
{
	char bpath[4096 + QCOW2_MAX_BACKING_NAME + 2], nm[QCOW2_MAX_BACKING_NAME + 1];
	bool raw;

	memcpy(nm, name, len);
	nm[len] = 0;
	if (strlen(nm) != len || len == 0) {
		snprintf(err, errlen, "%s: invalid backing file name", im->path);
		return -1;
	}
	if (!fmt) {
		snprintf(err, errlen,
			 "%s: backing file '%s' has no recorded format (set it with "
			 "qemu-img rebase -u -F raw|qcow2 -b '%s' IMAGE); "
			 "formats are never probed", im->path, nm, nm);
		return -1;
	}
	if (strcmp(fmt, "raw") == 0)
		raw = true;
	else if (strcmp(fmt, "qcow2") == 0)
		raw = false;
	else {
		snprintf(err, errlen, "%s: backing file '%s' has unsupported format '%s'",
			 im->path, nm, fmt);
		return -1;
	}
	if (nm[0] == '/' || !strchr(im->path, '/')) {
		snprintf(bpath, sizeof(bpath), "%s", nm);
	} else {
		/* relative to the directory of the image that names it */
		char dir[4096];

		snprintf(dir, sizeof(dir), "%s", im->path);
		snprintf(bpath, sizeof(bpath), "%s/%s", dirname(dir), nm);
	}
	/* backing files are only read, through the page cache */
	(void)direct;
	im->backing = img_open(bpath, raw, false, false, ch, err, errlen);
	return im->backing ? 0 : -1;
}

static struct q2img *img_open(const char *path, bool raw, bool writable,
			      bool direct, struct chain *ch, char *err,
			      size_t errlen)
{
	struct q2img *im = img_new(path, raw, writable, direct, ch, err, errlen);
	uint8_t *h = NULL, *ft = NULL;
	uint64_t backing_off = 0, incompat = 0, autoclear = 0, l1_bytes, need;
	uint64_t ext, ext_end, i, hdr_len, snap_off;
	uint32_t backing_len = 0, ftlen = 0, crypt;
	char fmtbuf[33], *fmt = NULL, nb[64];
	unsigned cache_n;

	if (!im)
		return NULL;
	if (raw) {
		im->size = im->file_size;
		return im;
	}
	if (posix_memalign((void **)&h, 4096, 1u << QCOW2_MAX_CLUSTER_BITS))
		FAIL("%s: out of memory", path);
	memset(h, 0, 1u << QCOW2_MAX_CLUSTER_BITS);
	if (im->file_size < QCOW2_V2_HDR_LEN)
		FAIL("%s: truncated: %llu bytes is too small for a qcow2 header",
		     path, (unsigned long long)im->file_size);
	if (q2_pread(im->fd, h, 1u << QCOW2_MAX_CLUSTER_BITS, 0) < 0)
		FAIL("%s: cannot read the header: %s", path, strerror(errno));
	if (qcow2_be32(h + QH_MAGIC) != QCOW2_MAGIC)
		FAIL("%s: not a qcow2 image (bad magic)", path);
	im->version = (int)qcow2_be32(h + QH_VERSION);
	if (im->version != 2 && im->version != 3)
		FAIL("%s: unsupported qcow2 version %d", path, im->version);
	im->cb = qcow2_be32(h + QH_CLUSTER_BITS);
	if (im->cb < QCOW2_MIN_CLUSTER_BITS || im->cb > QCOW2_MAX_CLUSTER_BITS)
		FAIL("%s: unsupported cluster_bits %u (9..21)", path, im->cb);
	im->cs = 1ULL << im->cb;
	im->l2_bits = im->cb - 3;
	im->l2_n = 1ULL << im->l2_bits;
	im->size = qcow2_be64(h + QH_SIZE);
	crypt = qcow2_be32(h + QH_CRYPT);
	im->l1_size = qcow2_be32(h + QH_L1_SIZE);
	im->l1_off = qcow2_be64(h + QH_L1_OFF);
	im->rt_off = qcow2_be64(h + QH_RT_OFF);
	im->rt_clusters = qcow2_be32(h + QH_RT_CLUSTERS);
	im->nb_snapshots = qcow2_be32(h + QH_NB_SNAPSHOTS);
	snap_off = qcow2_be64(h + QH_SNAPSHOTS_OFF);
	backing_off = qcow2_be64(h + QH_BACKING_OFF);
	backing_len = qcow2_be32(h + QH_BACKING_LEN);
	im->rc_order = 4;
	hdr_len = QCOW2_V2_HDR_LEN;
	if (im->version == 3) {
		incompat = qcow2_be64(h + QH_INCOMPAT);
		autoclear = qcow2_be64(h + QH_AUTOCLEAR);
		im->rc_order = qcow2_be32(h + QH_REFCOUNT_ORDER);
		hdr_len = qcow2_be32(h + QH_HDR_LEN);
		if (hdr_len < QCOW2_V3_HDR_LEN || hdr_len % 8 || hdr_len > im->cs)
			FAIL("%s: invalid header length %llu", path,
			     (unsigned long long)hdr_len);
		if (im->rc_order > 6)
			FAIL("%s: invalid refcount_order %u", path, im->rc_order);
		if (hdr_len > QH_COMPRESSION_TYPE)
			im->compression = h[QH_COMPRESSION_TYPE];
	}
	if (im->file_size < hdr_len)
		FAIL("%s: truncated inside the header", path);
	im->rb_n = qcow2_rb_entries(im->cb, im->rc_order);

	/* header extensions: between the header and the backing file name
	 * (or the end of the first cluster) */
	ext = hdr_len;
	ext_end = im->cs;
	if (backing_off && backing_off < ext_end)
		ext_end = backing_off;
	if (ext_end > im->file_size)
		ext_end = im->file_size;
	while (ext + 8 <= ext_end) {
		uint32_t type = qcow2_be32(h + ext), len = qcow2_be32(h + ext + 4);

		if (type == QCOW2_EXT_END)
			break;
		if (len > ext_end - ext - 8)
			FAIL("%s: header extension %#x runs past the header area",
			     path, type);
		if (type == QCOW2_EXT_BACKING_FMT) {
			if (len == 0 || len >= sizeof(fmtbuf))
				FAIL("%s: invalid backing format extension", path);
			memcpy(fmtbuf, h + ext + 8, len);
			fmtbuf[len] = 0;
			fmt = fmtbuf;
		} else if (type == QCOW2_EXT_FEATURES) {
			ft = h + ext + 8;
			ftlen = len;
		}
		ext += 8 + ((len + 7ULL) & ~7ULL);
	}

	/* features */
	if (crypt)
		FAIL("%s: encrypted images are not supported", path);
	if (incompat & QCOW2_INCOMPAT_DIRTY)
		FAIL("%s: image is dirty (lazy refcounts were not written back); "
		     "repair it with qemu-img check -r all", path);
	if (incompat & QCOW2_INCOMPAT_DATA_FILE)
		FAIL("%s: images with an external data file are not supported",
		     path);
	if (incompat & QCOW2_INCOMPAT_EXTL2)
		FAIL("%s: images with extended L2 entries (subclusters) are not "
		     "supported", path);
	for (i = 5; i < 64; i++)
		if (incompat & (1ULL << i))
			FAIL("%s: unknown incompatible feature bit %llu%s", path,
			     (unsigned long long)i,
			     feature_name(ft, ftlen, 0, (int)i, nb, sizeof(nb)));
	if (incompat & QCOW2_INCOMPAT_COMPRESSION) {
		if (im->compression == QCOW2_COMPRESS_ZLIB)
			FAIL("%s: compression type bit set but type is deflate",
			     path);
	} else if (im->compression != QCOW2_COMPRESS_ZLIB) {
		FAIL("%s: compression type %d without its feature bit", path,
		     im->compression);
	}
	if (im->compression > QCOW2_COMPRESS_ZSTD)
		FAIL("%s: unknown compression type %d", path, im->compression);
#ifndef HAVE_ZSTD
	if (im->compression == QCOW2_COMPRESS_ZSTD)
		FAIL("%s: image uses zstd compression, and this vmm was built "
		     "without libzstd", path);
#endif
	if ((incompat & QCOW2_INCOMPAT_CORRUPT) && writable)
		FAIL("%s: image is marked corrupt; open it with readonly=on, or "
		     "repair it with qemu-img check -r all", path);
	if (incompat & QCOW2_INCOMPAT_CORRUPT)
		fprintf(stderr, "qcow2: %s: image is marked corrupt; opened "
			"read-only\n", path);
	if (im->nb_snapshots && writable)
		FAIL("%s: image has %u internal snapshots; writing such images is "
		     "not supported (use readonly=on)", path, im->nb_snapshots);

	/* virtual size and L1 table */
	need = qcow2_l1_entries_for(im->size, im->cb);
	if (im->size > (1ULL << 56) || need > QCOW2_MAX_L1_BYTES / 8)
		FAIL("%s: virtual size %llu is too large", path,
		     (unsigned long long)im->size);
	if (im->l1_size < need)
		FAIL("%s: L1 table (%u entries) too small for the virtual size",
		     path, im->l1_size);
	if (im->l1_size > QCOW2_MAX_L1_BYTES / 8)
		FAIL("%s: L1 table too large (%u entries)", path, im->l1_size);
	l1_bytes = (uint64_t)im->l1_size * 8;
	if (im->l1_size && (im->l1_off % im->cs || im->l1_off < im->cs ||
			    im->l1_off > im->file_size ||
			    l1_bytes > im->file_size - im->l1_off))
		FAIL("%s: L1 table offset %#llx invalid or past the end of the "
		     "file", path, (unsigned long long)im->l1_off);

	/* refcount table */
	if (!im->rt_clusters || im->rt_off % im->cs || im->rt_off < im->cs ||
	    (uint64_t)im->rt_clusters * im->cs > QCOW2_MAX_RT_BYTES ||
	    im->rt_off > im->file_size ||
	    (uint64_t)im->rt_clusters * im->cs > im->file_size - im->rt_off)
		FAIL("%s: refcount table (offset %#llx, %u clusters) invalid or "
		     "past the end of the file", path,
		     (unsigned long long)im->rt_off, im->rt_clusters);
	im->rt_size = (uint64_t)im->rt_clusters * im->cs / 8;
	if (overlaps(im->l1_off, l1_bytes, im->rt_off,
		     (uint64_t)im->rt_clusters * im->cs))
		FAIL("%s: L1 table and refcount table overlap", path);
	if (im->nb_snapshots) {
		if (im->nb_snapshots > QCOW2_MAX_SNAPSHOTS || snap_off % im->cs ||
		    snap_off < im->cs || snap_off >= im->file_size ||
		    (uint64_t)im->nb_snapshots * 40 > im->file_size - snap_off)
			FAIL("%s: snapshot table invalid or past the end of the file",
			     path);
	}

	/* backing file name: inside the first cluster */
	if (backing_off) {
		if (backing_len == 0 || backing_len > QCOW2_MAX_BACKING_NAME ||
		    backing_off > im->cs || backing_len > im->cs - backing_off ||
		    backing_off + backing_len > im->file_size ||
		    backing_off < hdr_len)
			FAIL("%s: backing file name (offset %llu, length %u) out of "
			     "bounds", path, (unsigned long long)backing_off,
			     backing_len);
	}

	/* load and check the tables */
	im->l1 = calloc(im->l1_size ? im->l1_size : 1, 8);
	im->rt = calloc(im->rt_size, 8);
	if (!im->l1 || !im->rt)
		FAIL("%s: out of memory for metadata tables", path);
	{
		uint8_t *t = malloc(l1_bytes > im->rt_size * 8 ? l1_bytes
							       : im->rt_size * 8);
		uint64_t rt_bytes = im->rt_size * 8;

		if (!t)
			FAIL("%s: out of memory", path);
		if (q2_pread(im->fd, t, l1_bytes, im->l1_off) < 0) {
			free(t);
			FAIL("%s: cannot read the L1 table: %s", path,
			     strerror(errno));
		}
		for (i = 0; i < im->l1_size; i++)
			im->l1[i] = qcow2_be64(t + i * 8);
		if (q2_pread(im->fd, t, rt_bytes, im->rt_off) < 0) {
			free(t);
			FAIL("%s: cannot read the refcount table: %s", path,
			     strerror(errno));
		}
		for (i = 0; i < im->rt_size; i++)
			im->rt[i] = qcow2_be64(t + i * 8);
		free(t);
	}
	for (i = 0; i < im->l1_size; i++) {
		uint64_t o = im->l1[i] & QCOW2_OFFSET_MASK;

		if (!o)
			continue;
		if ((im->l1[i] & QCOW2_L1_RESERVED) || o % im->cs ||
		    o + im->cs > im->file_size || o < im->cs ||
		    overlaps(o, im->cs, im->l1_off, l1_bytes) ||
		    overlaps(o, im->cs, im->rt_off,
			     (uint64_t)im->rt_clusters * im->cs))
			FAIL("%s: L1 entry %llu (%#llx) is invalid, points past the "
			     "end of the file or into other metadata", path,
			     (unsigned long long)i, (unsigned long long)im->l1[i]);
	}
	for (i = 0; i < im->rt_size; i++) {
		uint64_t o = im->rt[i];

		if (!o)
			continue;
		if ((o & QCOW2_RT_RESERVED) || o % im->cs || o < im->cs ||
		    o + im->cs > im->file_size ||
		    overlaps(o, im->cs, im->l1_off, l1_bytes) ||
		    overlaps(o, im->cs, im->rt_off,
			     (uint64_t)im->rt_clusters * im->cs))
			FAIL("%s: refcount table entry %llu (%#llx) is invalid, points "
			     "past the end of the file or into other metadata",
			     path, (unsigned long long)i, (unsigned long long)o);
	}
	if (!im->rt[0])
		FAIL("%s: refcount table has no block for the header", path);

	/* caches: about 4 MiB of L2 tables, 16 to 1024 of them (lookups
	 * scan the cache) */
	cache_n = (unsigned)((4u << 20) >> im->cb);
	if (cache_n < 16)
		cache_n = 16;
	if (cache_n > 1024)
		cache_n = 1024;
	if (q2_cache_init(&im->l2c, cache_n, im->cs) ||
	    q2_cache_init(&im->rbc, 4, im->cs) ||
	    posix_memalign((void **)&im->zero_cluster, 4096, im->cs))
		FAIL("%s: out of memory for caches", path);
	memset(im->zero_cluster, 0, im->cs);
	im->alloc_end = (im->file_size + im->cs - 1) & ~(im->cs - 1);
	im->free_hint = 1;
	im->seq_oldest = UINT64_MAX;
	im->l1_dlo = im->rt_dlo = 1;	/* nothing dirty */

	if (writable && autoclear) {
		uint8_t z[8] = { 0 };

		if (q2_pwrite(im->fd, z, 8, QH_AUTOCLEAR) < 0)
			FAIL("%s: cannot clear autoclear features: %s", path,
			     strerror(errno));
	}
	if (backing_off &&
	    open_backing(im, h + backing_off, backing_len, fmt, direct, ch,
			 err, errlen) < 0)
		goto fail_quiet;
	free(h);
	return im;
fail:
fail_quiet:
	free(h);
	q2_img_close(im);
	return NULL;
}

static void qcow2_close(struct blk_dev *d)
{
	struct qcow2 *s = (struct qcow2 *)d;

	if (s->img->writable) {
		q2_l2_writeback(s->img);
		q2_release_reservation(s->img);
		if (fdatasync(s->img->fd) == 0)
			io_record_sync(s->img->fd);
	}
	q2_img_close(s->img);
	free(s->zero_buf);
	free(s);
}

/* O_DIRECT alignment of the image file (offset and memory), at least 512. */
static unsigned dio_alignment(int fd)
{
	unsigned a = 512;
#ifdef STATX_DIOALIGN
	struct statx stx;

	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN)) {
		if (stx.stx_dio_offset_align > a)
			a = stx.stx_dio_offset_align;
		if (stx.stx_dio_mem_align > a)
			a = stx.stx_dio_mem_align;
	}
#else
	(void)fd;
#endif
	return a;
}

static const struct blk_backend_ops qcow2_ops = {
	.name = "qcow2",
	.submit = q2_submit,
	.close = qcow2_close,
};

struct blk_dev *qcow2_open(const struct blk_opts *o, struct io_engine *e,
			   char *err, size_t errlen)
{
	struct chain ch = { .n = 0 };
	bool direct = o->cache == BLK_CACHE_NONE;
	struct qcow2 *s = calloc(1, sizeof(*s));

	if (!s) {
		snprintf(err, errlen, "%s: out of memory", o->path);
		return NULL;
	}
	s->img = img_open(o->path, false, !o->readonly, direct, &ch, err, errlen);
	if (!s->img) {
		free(s);
		return NULL;
	}
	if (posix_memalign((void **)&s->zero_buf, 4096, s->img->cs)) {
		snprintf(err, errlen, "%s: out of memory", o->path);
		q2_img_close(s->img);
		free(s);
		return NULL;
	}
	memset(s->zero_buf, 0, s->img->cs);
	if (direct) {
		/* every data request then covers whole aligned blocks, and so
		 * do its pieces as long as clusters are at least that big */
		s->dev.alignment = dio_alignment(s->img->dfd);
		if (s->img->cs < s->dev.alignment) {
			snprintf(err, errlen, "%s: cluster size %llu is smaller than "
				 "the O_DIRECT alignment %u: use cache=writeback",
				 o->path, (unsigned long long)s->img->cs,
				 s->dev.alignment);
			q2_img_close(s->img);
			free(s->zero_buf);
			free(s);
			return NULL;
		}
	} else {
		s->dev.alignment = 1;
	}
	s->dev.ops = &qcow2_ops;
	s->dev.engine = e;
	s->dev.size = s->img->size;
	s->dev.readonly = o->readonly;
	s->dev.can_discard = !o->readonly;
	s->dev.can_write_zeroes = !o->readonly;
	return &s->dev;
}
