/* storage/qcow2_compress.c - reading compressed clusters (deflate or
 * zstd), with the last decompressed cluster kept for sequential reads.
 *
 * Invariants kept here:
 * - A compressed descriptor is read only inside the file (its last sector
 *   may run past the end: the rest reads as nothing), and decompression
 *   must yield exactly one full cluster, else -EIO.
 * - The kept cluster (decompressed_valid) is dropped whenever a cluster's
 *   refcount reaches 0 (qcow2_refcount.c), since its bytes may be reused.
 */
#include "storage/qcow2.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>
#ifdef HAVE_ZSTD
#include <zstd.h>
#endif

static int inflate_raw(const uint8_t *in, uint64_t inlen, uint8_t *out,
		       uint64_t outlen)
{
	z_stream z;
	int ret;

	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, -15) != Z_OK)	/* raw deflate, no header */
		return -ENOMEM;
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)inlen;
	z.next_out = out;
	z.avail_out = (uInt)outlen;
	ret = inflate(&z, Z_FINISH);
	inflateEnd(&z);
	/* decompression stops once a full cluster came out: trailing bytes
	 * of the last sector are not part of the stream */
	if ((ret == Z_STREAM_END || ret == Z_BUF_ERROR || ret == Z_OK) &&
	    z.avail_out == 0)
		return 0;
	return -EIO;
}

#ifdef HAVE_ZSTD
static int unzstd(struct q2img *im, const uint8_t *in, uint64_t inlen,
		  uint8_t *out, uint64_t outlen)
{
	ZSTD_inBuffer ib = { in, inlen, 0 };
	ZSTD_outBuffer ob = { out, outlen, 0 };

	if (!im->zstd_dctx) {
		im->zstd_dctx = ZSTD_createDCtx();
		if (!im->zstd_dctx)
			return -ENOMEM;
	}
	ZSTD_DCtx_reset(im->zstd_dctx, ZSTD_reset_session_only);
	while (ob.pos < ob.size) {
		size_t before_in = ib.pos, before_out = ob.pos;
		size_t r = ZSTD_decompressStream(im->zstd_dctx, &ob, &ib);

		if (ZSTD_isError(r))
			return -EIO;
		if (ib.pos == before_in && ob.pos == before_out)
			return -EIO;	/* truncated stream */
	}
	return 0;
}
#endif

/* Decompress the cluster an L2 entry describes; *out (cluster_size bytes)
 * is valid until the next call for this image. */
int q2_decompress(struct q2img *im, uint64_t entry, const uint8_t **out)
{
	struct qcow2_cdesc d = qcow2_cdesc_decode(entry, im->cluster_bits);
	uint64_t n = qcow2_cdesc_bytes(d);
	int ret;

	if (im->decompressed_valid && im->decompressed_entry == entry) {
		*out = im->decompressed;
		return 0;
	}
	if (!im->decompressed) {
		im->decompressed = malloc(im->cluster_size);
		im->compressed = malloc(2 * im->cluster_size + 512);
		if (!im->decompressed || !im->compressed)
			return -ENOMEM;
	}
	if (d.offset < im->cluster_size || d.offset >= im->file_size) {
		q2_report(im, "compressed cluster at %#llx lies outside the file",
			  (unsigned long long)d.offset);
		return -EIO;
	}
	/* the last sector may run past the end of the file */
	if (n > im->file_size - d.offset)
		n = im->file_size - d.offset;
	im->decompressed_valid = false;
	ret = q2_pread(im->fd, im->compressed, n, d.offset);
	if (ret < 0)
		return ret;
	if (im->compression == QCOW2_COMPRESS_ZLIB)
		ret = inflate_raw(im->compressed, n, im->decompressed, im->cluster_size);
#ifdef HAVE_ZSTD
	else if (im->compression == QCOW2_COMPRESS_ZSTD)
		ret = unzstd(im, im->compressed, n, im->decompressed, im->cluster_size);
#endif
	else
		ret = -ENOTSUP;
	if (ret) {
		q2_report(im, "cannot decompress the cluster at %#llx",
			  (unsigned long long)d.offset);
		return -EIO;
	}
	im->decompressed_entry = entry;
	im->decompressed_valid = true;
	*out = im->decompressed;
	return 0;
}
