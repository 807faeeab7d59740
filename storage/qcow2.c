/* storage/qcow2.c - opening qcow2 images (v2 and v3) and their backing
 * chains: header and table validation, then the blk_dev for block.c.
 * The metadata code is in qcow2_cache.c, qcow2_cluster.c, qcow2_compress.c
 * and qcow2_refcount.c; the guest requests in qcow2_io.c.
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
 * - Internal snapshots: read and written as QEMU does.  Their L1 tables
 *   are never read; what they share with the active image has a refcount
 *   above 1 and no COPIED flag, and is copied on write: an L2 table when a
 *   write, discard or write-zeroes first touches it (qcow2_cluster.c), a
 *   data or compressed cluster whenever it is written (qcow2_io.c), so a
 *   snapshot's data never changes.  Creating, applying or deleting
 *   snapshots is left to qemu-img.
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
 * of a dirty L2 table, after one fdatasync barrier (qcow2_cache.c), so a
 * kill - or a power loss - between any two writes leaves at most leaked
 * clusters.  References that replaced entries held (overwritten shared or
 * compressed clusters, discards, L2 tables copied from snapshots) drop at
 * the same write-back, after the pointers and a second barrier.  FLUSH =
 * barrier, pointers, dirty L2 tables, [barrier, dropped references],
 * fdatasync.  Data written but not flushed may be lost.
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

int q2_fdatasync(int fd)
{
	if (fdatasync(fd) < 0)
		return -errno;
	io_record_sync(fd);
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
	if (im->data_fd >= 0 && im->data_fd != im->fd)
		close(im->data_fd);
	if (im->fd >= 0)
		close(im->fd);
	q2_cache_free(&im->l2_cache);
	q2_cache_free(&im->refblock_cache);
	free(im->l1);
	free(im->reftable);
	free(im->zero_cluster);
	free(im->decompressed);
	free(im->compressed);
	free(im->quarantine);
	free(im->deferred_frees);
#ifdef HAVE_ZSTD
	if (im->zstd_dctx)
		ZSTD_freeDCtx(im->zstd_dctx);
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
	im->fd = im->data_fd = -1;
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
	im->file_size = im->open_file_size = (uint64_t)end;
	if (lock_file(im->fd, writable) < 0)
		FAIL("%s: image is locked by another process (%s)", path,
		     writable ? "in use" : "opened for writing");
	im->data_fd = im->fd;
	if (direct) {
		im->data_fd = open(path, (writable ? O_RDWR : O_RDONLY) |
			       O_CLOEXEC | O_DIRECT);
		if (im->data_fd < 0)
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

/* What the header says beyond the fields struct q2img keeps, while the
 * image is being opened. */
struct hdr_info {
	uint8_t *buf;		/* the file's first 2 MiB (the largest cluster) */
	uint32_t crypt;
	uint64_t incompat, autoclear;
	uint64_t hdr_len;
	uint64_t snapshots_off;
	uint64_t backing_off;	/* 0: no backing file */
	uint32_t backing_len;
	char backing_fmt_buf[33];
	const char *backing_fmt;	/* NULL: no backing format extension */
	const uint8_t *feature_table;	/* feature name table extension */
	uint32_t feature_table_len;
};

/* The open phases below return 0, or -1 with the reason in err. */
#define REFUSE(...) do { snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)

/* Phase 1: the fixed header fields, and the geometry they imply. */
static int read_header(struct q2img *im, struct hdr_info *h, char *err,
		       size_t errlen)
{
	const char *path = im->path;
	uint8_t *b;

	if (posix_memalign((void **)&h->buf, 4096, 1u << QCOW2_MAX_CLUSTER_BITS))
		REFUSE("%s: out of memory", path);
	b = h->buf;
	memset(b, 0, 1u << QCOW2_MAX_CLUSTER_BITS);
	if (im->file_size < QCOW2_V2_HDR_LEN)
		REFUSE("%s: truncated: %llu bytes is too small for a qcow2 header",
		       path, (unsigned long long)im->file_size);
	if (q2_pread(im->fd, b, 1u << QCOW2_MAX_CLUSTER_BITS, 0) < 0)
		REFUSE("%s: cannot read the header: %s", path, strerror(errno));
	if (qcow2_be32(b + QH_MAGIC) != QCOW2_MAGIC)
		REFUSE("%s: not a qcow2 image (bad magic)", path);
	im->version = (int)qcow2_be32(b + QH_VERSION);
	if (im->version != 2 && im->version != 3)
		REFUSE("%s: unsupported qcow2 version %d", path, im->version);
	im->cluster_bits = qcow2_be32(b + QH_CLUSTER_BITS);
	if (im->cluster_bits < QCOW2_MIN_CLUSTER_BITS ||
	    im->cluster_bits > QCOW2_MAX_CLUSTER_BITS)
		REFUSE("%s: unsupported cluster_bits %u (9..21)", path,
		       im->cluster_bits);
	im->cluster_size = 1ULL << im->cluster_bits;
	im->l2_bits = im->cluster_bits - 3;
	im->l2_entries = 1ULL << im->l2_bits;
	im->size = qcow2_be64(b + QH_SIZE);
	h->crypt = qcow2_be32(b + QH_CRYPT);
	im->l1_size = qcow2_be32(b + QH_L1_SIZE);
	im->l1_off = qcow2_be64(b + QH_L1_OFF);
	im->reftable_off = qcow2_be64(b + QH_RT_OFF);
	im->reftable_clusters = qcow2_be32(b + QH_RT_CLUSTERS);
	im->nb_snapshots = qcow2_be32(b + QH_NB_SNAPSHOTS);
	h->snapshots_off = qcow2_be64(b + QH_SNAPSHOTS_OFF);
	h->backing_off = qcow2_be64(b + QH_BACKING_OFF);
	h->backing_len = qcow2_be32(b + QH_BACKING_LEN);
	im->refcount_order = 4;
	h->hdr_len = QCOW2_V2_HDR_LEN;
	if (im->version == 3) {
		h->incompat = qcow2_be64(b + QH_INCOMPAT);
		h->autoclear = qcow2_be64(b + QH_AUTOCLEAR);
		im->refcount_order = qcow2_be32(b + QH_REFCOUNT_ORDER);
		h->hdr_len = qcow2_be32(b + QH_HDR_LEN);
		if (h->hdr_len < QCOW2_V3_HDR_LEN || h->hdr_len % 8 ||
		    h->hdr_len > im->cluster_size)
			REFUSE("%s: invalid header length %llu", path,
			       (unsigned long long)h->hdr_len);
		if (im->refcount_order > 6)
			REFUSE("%s: invalid refcount_order %u", path,
			       im->refcount_order);
		if (h->hdr_len > QH_COMPRESSION_TYPE)
			im->compression = b[QH_COMPRESSION_TYPE];
	}
	if (im->file_size < h->hdr_len)
		REFUSE("%s: truncated inside the header", path);
	im->refblock_entries = qcow2_rb_entries(im->cluster_bits,
						im->refcount_order);
	return 0;
}

/* Phase 2: header extensions, between the header and the backing file
 * name (or the end of the first cluster). */
static int read_extensions(struct q2img *im, struct hdr_info *h, char *err,
			   size_t errlen)
{
	uint64_t ext = h->hdr_len, ext_end = im->cluster_size;

	if (h->backing_off && h->backing_off < ext_end)
		ext_end = h->backing_off;
	if (ext_end > im->file_size)
		ext_end = im->file_size;
	while (ext + 8 <= ext_end) {
		uint32_t type = qcow2_be32(h->buf + ext);
		uint32_t len = qcow2_be32(h->buf + ext + 4);

		if (type == QCOW2_EXT_END)
			break;
		if (len > ext_end - ext - 8)
			REFUSE("%s: header extension %#x runs past the header area",
			       im->path, type);
		if (type == QCOW2_EXT_BACKING_FMT) {
			if (len == 0 || len >= sizeof(h->backing_fmt_buf))
				REFUSE("%s: invalid backing format extension",
				       im->path);
			memcpy(h->backing_fmt_buf, h->buf + ext + 8, len);
			h->backing_fmt_buf[len] = 0;
			h->backing_fmt = h->backing_fmt_buf;
		} else if (type == QCOW2_EXT_FEATURES) {
			h->feature_table = h->buf + ext + 8;
			h->feature_table_len = len;
		}
		ext += 8 + ((len + 7ULL) & ~7ULL);
	}
	return 0;
}

/* Phase 3: features we refuse, and the write restrictions of the others. */
static int check_features(struct q2img *im, const struct hdr_info *h,
			  char *err, size_t errlen)
{
	const char *path = im->path;
	char name[64];
	unsigned bit;

	if (h->crypt)
		REFUSE("%s: encrypted images are not supported", path);
	if (h->incompat & QCOW2_INCOMPAT_DIRTY)
		REFUSE("%s: image is dirty (lazy refcounts were not written back); "
		       "repair it with qemu-img check -r all", path);
	if (h->incompat & QCOW2_INCOMPAT_DATA_FILE)
		REFUSE("%s: images with an external data file are not supported",
		       path);
	if (h->incompat & QCOW2_INCOMPAT_EXTL2)
		REFUSE("%s: images with extended L2 entries (subclusters) are not "
		       "supported", path);
	for (bit = 5; bit < 64; bit++)
		if (h->incompat & (1ULL << bit))
			REFUSE("%s: unknown incompatible feature bit %u%s", path,
			       bit, feature_name(h->feature_table,
						 h->feature_table_len, 0,
						 (int)bit, name, sizeof(name)));
	if (h->incompat & QCOW2_INCOMPAT_COMPRESSION) {
		if (im->compression == QCOW2_COMPRESS_ZLIB)
			REFUSE("%s: compression type bit set but type is deflate",
			       path);
	} else if (im->compression != QCOW2_COMPRESS_ZLIB) {
		REFUSE("%s: compression type %d without its feature bit", path,
		       im->compression);
	}
	if (im->compression > QCOW2_COMPRESS_ZSTD)
		REFUSE("%s: unknown compression type %d", path, im->compression);
#ifndef HAVE_ZSTD
	if (im->compression == QCOW2_COMPRESS_ZSTD)
		REFUSE("%s: image uses zstd compression, and this vmm was built "
		       "without libzstd", path);
#endif
	if ((h->incompat & QCOW2_INCOMPAT_CORRUPT) && im->writable)
		REFUSE("%s: image is marked corrupt; open it with readonly=on, or "
		       "repair it with qemu-img check -r all", path);
	if (h->incompat & QCOW2_INCOMPAT_CORRUPT)
		fprintf(stderr, "qcow2: %s: image is marked corrupt; opened "
			"read-only\n", path);
	return 0;
}

static uint64_t l1_bytes(const struct q2img *im)
{
	return (uint64_t)im->l1_size * 8;
}

static uint64_t reftable_bytes(const struct q2img *im)
{
	return (uint64_t)im->reftable_clusters * im->cluster_size;
}

/* Read a big-endian table of n entries at off into host-endian *out. */
static int load_table(struct q2img *im, uint64_t off, uint64_t n,
		      uint64_t **out)
{
	uint8_t *raw = malloc(n ? n * 8 : 1);
	uint64_t i;
	int ret;

	*out = calloc(n ? n : 1, 8);
	if (!raw || !*out) {
		free(raw);
		return -ENOMEM;
	}
	ret = q2_pread(im->fd, raw, n * 8, off);
	for (i = 0; !ret && i < n; i++)
		(*out)[i] = qcow2_be64(raw + i * 8);
	free(raw);
	return ret;
}

/* A table (L2 or refcount block) at off must be a whole cluster inside the
 * file and clear of the header, the L1 table and the refcount table. */
static bool table_placement_ok(const struct q2img *im, uint64_t off)
{
	return off % im->cluster_size == 0 && off >= im->cluster_size &&
	       off + im->cluster_size <= im->file_size &&
	       !overlaps(off, im->cluster_size, im->l1_off, l1_bytes(im)) &&
	       !overlaps(off, im->cluster_size, im->reftable_off,
			 reftable_bytes(im));
}

/* Phase 4: the virtual size, the L1 table's place, the refcount table's
 * place, the snapshot table's place and the backing file name's bounds;
 * all before anything is read from those places. */
static int check_layout(struct q2img *im, const struct hdr_info *h,
			char *err, size_t errlen)
{
	const char *path = im->path;
	uint64_t need = qcow2_l1_entries_for(im->size, im->cluster_bits);

	if (im->size > (1ULL << 56) || need > QCOW2_MAX_L1_BYTES / 8)
		REFUSE("%s: virtual size %llu is too large", path,
		       (unsigned long long)im->size);
	if (im->l1_size < need)
		REFUSE("%s: L1 table (%u entries) too small for the virtual size",
		       path, im->l1_size);
	if (im->l1_size > QCOW2_MAX_L1_BYTES / 8)
		REFUSE("%s: L1 table too large (%u entries)", path, im->l1_size);
	if (im->l1_size &&
	    (im->l1_off % im->cluster_size || im->l1_off < im->cluster_size ||
	     im->l1_off > im->file_size ||
	     l1_bytes(im) > im->file_size - im->l1_off))
		REFUSE("%s: L1 table offset %#llx invalid or past the end of the "
		       "file", path, (unsigned long long)im->l1_off);

	if (!im->reftable_clusters || im->reftable_off % im->cluster_size ||
	    im->reftable_off < im->cluster_size ||
	    reftable_bytes(im) > QCOW2_MAX_RT_BYTES ||
	    im->reftable_off > im->file_size ||
	    reftable_bytes(im) > im->file_size - im->reftable_off)
		REFUSE("%s: refcount table (offset %#llx, %u clusters) invalid or "
		       "past the end of the file", path,
		       (unsigned long long)im->reftable_off,
		       im->reftable_clusters);
	im->reftable_entries = reftable_bytes(im) / 8;
	if (overlaps(im->l1_off, l1_bytes(im), im->reftable_off,
		     reftable_bytes(im)))
		REFUSE("%s: L1 table and refcount table overlap", path);

	if (im->nb_snapshots &&
	    (im->nb_snapshots > QCOW2_MAX_SNAPSHOTS ||
	     h->snapshots_off % im->cluster_size ||
	     h->snapshots_off < im->cluster_size ||
	     h->snapshots_off >= im->file_size ||
	     (uint64_t)im->nb_snapshots * 40 > im->file_size - h->snapshots_off))
		REFUSE("%s: snapshot table invalid or past the end of the file",
		       path);

	/* the backing file name lies inside the first cluster */
	if (h->backing_off &&
	    (h->backing_len == 0 || h->backing_len > QCOW2_MAX_BACKING_NAME ||
	     h->backing_off > im->cluster_size ||
	     h->backing_len > im->cluster_size - h->backing_off ||
	     h->backing_off + h->backing_len > im->file_size ||
	     h->backing_off < h->hdr_len))
		REFUSE("%s: backing file name (offset %llu, length %u) out of "
		       "bounds", path, (unsigned long long)h->backing_off,
		       h->backing_len);
	return 0;
}

/* Phase 5: the L1 table, every entry checked. */
static int load_l1(struct q2img *im, char *err, size_t errlen)
{
	uint64_t i;
	int ret = load_table(im, im->l1_off, im->l1_size, &im->l1);

	if (ret < 0)
		REFUSE("%s: cannot read the L1 table: %s", im->path,
		       strerror(-ret));
	for (i = 0; i < im->l1_size; i++) {
		uint64_t off = im->l1[i] & QCOW2_OFFSET_MASK;

		if (off && ((im->l1[i] & QCOW2_L1_RESERVED) ||
			    !table_placement_ok(im, off)))
			REFUSE("%s: L1 entry %llu (%#llx) is invalid, points past "
			       "the end of the file or into other metadata",
			       im->path, (unsigned long long)i,
			       (unsigned long long)im->l1[i]);
	}
	return 0;
}

/* Phase 6: the refcount table, every entry checked. */
static int load_reftable(struct q2img *im, char *err, size_t errlen)
{
	uint64_t i;
	int ret = load_table(im, im->reftable_off, im->reftable_entries,
			     &im->reftable);

	if (ret < 0)
		REFUSE("%s: cannot read the refcount table: %s", im->path,
		       strerror(-ret));
	for (i = 0; i < im->reftable_entries; i++) {
		uint64_t off = im->reftable[i];

		if (off && ((off & QCOW2_RT_RESERVED) ||
			    !table_placement_ok(im, off)))
			REFUSE("%s: refcount table entry %llu (%#llx) is invalid, "
			       "points past the end of the file or into other "
			       "metadata", im->path, (unsigned long long)i,
			       (unsigned long long)off);
	}
	if (!im->reftable[0])
		REFUSE("%s: refcount table has no block for the header",
		       im->path);
	return 0;
}

/* Phase 7: caches and allocator state.  About 4 MiB of L2 tables, 16 to
 * 1024 of them (lookups scan the cache). */
static int init_caches(struct q2img *im, char *err, size_t errlen)
{
	unsigned l2_slots = (unsigned)((4u << 20) >> im->cluster_bits);

	if (l2_slots < 16)
		l2_slots = 16;
	if (l2_slots > 1024)
		l2_slots = 1024;
	if (q2_cache_init(&im->l2_cache, l2_slots, im->cluster_size) ||
	    q2_cache_init(&im->refblock_cache, 4, im->cluster_size) ||
	    posix_memalign((void **)&im->zero_cluster, 4096, im->cluster_size))
		REFUSE("%s: out of memory for caches", im->path);
	memset(im->zero_cluster, 0, im->cluster_size);
	im->alloc_end = (im->file_size + im->cluster_size - 1) &
			~(im->cluster_size - 1);
	im->free_hint = 1;
	im->seq_oldest = UINT64_MAX;
	im->l1_dirty = im->reftable_dirty = Q2_RANGE_EMPTY;
	return 0;
}

/* Phase 8 (writable images): clear the autoclear bits we do not
 * maintain, as the spec asks. */
static int clear_autoclear(struct q2img *im, const struct hdr_info *h,
			   char *err, size_t errlen)
{
	uint8_t zero[8] = { 0 };

	if (im->writable && h->autoclear &&
	    q2_pwrite(im->fd, zero, 8, QH_AUTOCLEAR) < 0)
		REFUSE("%s: cannot clear autoclear features: %s", im->path,
		       strerror(errno));
	return 0;
}

static struct q2img *img_open(const char *path, bool raw, bool writable,
			      bool direct, struct chain *ch, char *err,
			      size_t errlen)
{
	struct q2img *im = img_new(path, raw, writable, direct, ch, err, errlen);
	struct hdr_info h = { 0 };
	int ret;

	if (!im)
		return NULL;
	if (raw) {
		im->size = im->file_size;
		return im;
	}
	ret = read_header(im, &h, err, errlen);
	if (!ret)
		ret = read_extensions(im, &h, err, errlen);
	if (!ret)
		ret = check_features(im, &h, err, errlen);
	if (!ret)
		ret = check_layout(im, &h, err, errlen);
	if (!ret)
		ret = load_l1(im, err, errlen);
	if (!ret)
		ret = load_reftable(im, err, errlen);
	if (!ret)
		ret = init_caches(im, err, errlen);
	if (!ret)
		ret = clear_autoclear(im, &h, err, errlen);
	/* phase 9: the backing chain, opened recursively */
	if (!ret && h.backing_off)
		ret = open_backing(im, h.buf + h.backing_off, h.backing_len,
				   h.backing_fmt, direct, ch, err, errlen);
	free(h.buf);
	if (ret) {
		q2_img_close(im);
		return NULL;
	}
	return im;
}

static void qcow2_close(struct blk_dev *d)
{
	struct qcow2 *s = (struct qcow2 *)d;

	if (s->img->writable) {
		q2_l2_writeback(s->img);
		q2_release_reservation(s->img);
		q2_fdatasync(s->img->fd);
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
	if (posix_memalign((void **)&s->zero_buf, 4096, s->img->cluster_size)) {
		snprintf(err, errlen, "%s: out of memory", o->path);
		q2_img_close(s->img);
		free(s);
		return NULL;
	}
	memset(s->zero_buf, 0, s->img->cluster_size);
	if (direct) {
		/* every data request then covers whole aligned blocks, and so
		 * do its pieces as long as clusters are at least that big */
		s->dev.alignment = dio_alignment(s->img->data_fd);
		if (s->img->cluster_size < s->dev.alignment) {
			snprintf(err, errlen, "%s: cluster size %llu is smaller than "
				 "the O_DIRECT alignment %u: use cache=writeback",
				 o->path, (unsigned long long)s->img->cluster_size,
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
