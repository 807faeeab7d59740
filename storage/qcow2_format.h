/* storage/qcow2_format.h - qcow2 on-disk constants and the pure arithmetic on
 * them (entry decoding, compressed descriptors, refcount indexing), kept
 * apart from the I/O code so the unit tests can check each rule alone.
 * Reference: QEMU docs/interop/qcow2.rst.  All on-disk numbers are big
 * endian; these helpers take host-endian values.
 */
#ifndef STORAGE_QCOW2_FORMAT_H
#define STORAGE_QCOW2_FORMAT_H

#include <stdbool.h>
#include <stdint.h>

#define QCOW2_MAGIC		0x514649fbU	/* "QFI\xfb" */
#define QCOW2_V2_HDR_LEN	72
#define QCOW2_V3_HDR_LEN	104
#define QCOW2_MIN_CLUSTER_BITS	9
#define QCOW2_MAX_CLUSTER_BITS	21
#define QCOW2_MAX_BACKING_NAME	1023
#define QCOW2_MAX_L1_BYTES	(32u << 20)	/* QEMU's limits, so we open */
#define QCOW2_MAX_RT_BYTES	(8u << 20)	/* what QEMU opens, no more */
#define QCOW2_MAX_SNAPSHOTS	65536
#define QCOW2_MAX_CHAIN		16

/* header field offsets */
#define QH_MAGIC		0
#define QH_VERSION		4
#define QH_BACKING_OFF		8
#define QH_BACKING_LEN		16
#define QH_CLUSTER_BITS		20
#define QH_SIZE			24
#define QH_CRYPT		32
#define QH_L1_SIZE		36
#define QH_L1_OFF		40
#define QH_RT_OFF		48
#define QH_RT_CLUSTERS		56
#define QH_NB_SNAPSHOTS		60
#define QH_SNAPSHOTS_OFF	64
#define QH_INCOMPAT		72
#define QH_COMPAT		80
#define QH_AUTOCLEAR		88
#define QH_REFCOUNT_ORDER	96
#define QH_HDR_LEN		100
#define QH_COMPRESSION_TYPE	104

/* incompatible feature bits */
#define QCOW2_INCOMPAT_DIRTY		(1ULL << 0)
#define QCOW2_INCOMPAT_CORRUPT		(1ULL << 1)
#define QCOW2_INCOMPAT_DATA_FILE	(1ULL << 2)
#define QCOW2_INCOMPAT_COMPRESSION	(1ULL << 3)
#define QCOW2_INCOMPAT_EXTL2		(1ULL << 4)

#define QCOW2_COMPRESS_ZLIB	0
#define QCOW2_COMPRESS_ZSTD	1

/* header extensions */
#define QCOW2_EXT_END		0x00000000U
#define QCOW2_EXT_BACKING_FMT	0xe2792acaU
#define QCOW2_EXT_FEATURES	0x6803f857U
#define QCOW2_EXT_BITMAPS	0x23852875U
#define QCOW2_EXT_CRYPTO	0x0537be77U
#define QCOW2_EXT_DATA_FILE	0x44415441U

/* L1 / L2 / refcount-table entries */
#define QCOW2_OFLAG_COPIED	(1ULL << 63)
#define QCOW2_OFLAG_COMPRESSED	(1ULL << 62)
#define QCOW2_OFLAG_ZERO	(1ULL << 0)
#define QCOW2_OFFSET_MASK	0x00fffffffffffe00ULL	/* bits 9..55 */
#define QCOW2_L1_RESERVED	0x7f000000000001ffULL
#define QCOW2_L2_RESERVED	0x3f000000000001feULL	/* standard entries */
#define QCOW2_RT_RESERVED	0x00000000000001ffULL

static inline uint64_t qcow2_be64(const void *p)
{
	const uint8_t *b = (const uint8_t *)p;
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | b[i];
	return v;
}

static inline uint32_t qcow2_be32(const void *p)
{
	const uint8_t *b = (const uint8_t *)p;

	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
	       (uint32_t)b[2] << 8 | b[3];
}

static inline void qcow2_put_be64(void *p, uint64_t v)
{
	uint8_t *b = (uint8_t *)p;
	int i;

	for (i = 7; i >= 0; i--, v >>= 8)
		b[i] = (uint8_t)v;
}

static inline void qcow2_put_be32(void *p, uint32_t v)
{
	uint8_t *b = (uint8_t *)p;

	b[0] = (uint8_t)(v >> 24);
	b[1] = (uint8_t)(v >> 16);
	b[2] = (uint8_t)(v >> 8);
	b[3] = (uint8_t)v;
}

/* What a (non-extended) L2 entry describes. */
enum qcow2_kind {
	QCOW2_UNALLOC,		/* backing file or zeroes */
	QCOW2_ZERO,		/* v3 zero flag: reads as zeroes */
	QCOW2_DATA,		/* standard cluster at a host offset */
	QCOW2_COMPRESSED,
	QCOW2_BAD,		/* reserved bits or misaligned offset */
};

/* Classify an L2 entry.  *host gets the host cluster offset of standard
 * entries (also of a v3 zero cluster that keeps a preallocation).  The zero
 * flag is a reserved bit in v2. */
static inline enum qcow2_kind qcow2_l2_kind(uint64_t e, int version,
					    unsigned cluster_bits,
					    uint64_t *host)
{
	uint64_t off;

	*host = 0;
	if (e & QCOW2_OFLAG_COMPRESSED)
		return (e & QCOW2_OFLAG_COPIED) ? QCOW2_BAD : QCOW2_COMPRESSED;
	if (e & QCOW2_L2_RESERVED)
		return QCOW2_BAD;
	off = e & QCOW2_OFFSET_MASK;
	if (off & ((1ULL << cluster_bits) - 1))
		return QCOW2_BAD;
	*host = off;
	if (e & QCOW2_OFLAG_ZERO)
		return version >= 3 ? QCOW2_ZERO : QCOW2_BAD;
	if (off == 0)
		/* COPIED without an offset only makes sense with external
		 * data files, which we refuse */
		return (e & QCOW2_OFLAG_COPIED) ? QCOW2_BAD : QCOW2_UNALLOC;
	return QCOW2_DATA;
}

/* A standard entry for a host cluster whose refcount is exactly one. */
static inline uint64_t qcow2_l2_data_entry(uint64_t host)
{
	return (host & QCOW2_OFFSET_MASK) | QCOW2_OFLAG_COPIED;
}

/* Compressed cluster descriptor: x = 62 - (cluster_bits - 8) bits of host
 * byte offset, then the count of additional 512-byte sectors. */
struct qcow2_cdesc {
	uint64_t offset;	/* host byte offset of the compressed data */
	uint64_t nb_sectors;	/* sectors touched, counting the first */
};

static inline unsigned qcow2_csize_shift(unsigned cluster_bits)
{
	return 62 - (cluster_bits - 8);
}

static inline struct qcow2_cdesc qcow2_cdesc_decode(uint64_t e,
						    unsigned cluster_bits)
{
	unsigned shift = qcow2_csize_shift(cluster_bits);
	uint64_t mask = (1ULL << (cluster_bits - 8)) - 1;
	struct qcow2_cdesc d;

	d.offset = e & ((1ULL << shift) - 1);
	d.nb_sectors = ((e >> shift) & mask) + 1;
	return d;
}

static inline uint64_t qcow2_cdesc_encode(uint64_t offset,
					  uint64_t nb_sectors,
					  unsigned cluster_bits)
{
	return QCOW2_OFLAG_COMPRESSED |
	       ((nb_sectors - 1) << qcow2_csize_shift(cluster_bits)) | offset;
}

/* Bytes of compressed data to read: from offset to the end of its last
 * sector. */
static inline uint64_t qcow2_cdesc_bytes(struct qcow2_cdesc d)
{
	return (d.offset & ~511ULL) + d.nb_sectors * 512 - d.offset;
}

/* Host clusters whose refcount the compressed data holds: every cluster
 * the sector range [offset & ~511, + nb_sectors * 512) touches. */
static inline void qcow2_cdesc_clusters(struct qcow2_cdesc d,
					unsigned cluster_bits,
					uint64_t *first, uint64_t *count)
{
	uint64_t start = d.offset & ~511ULL;
	uint64_t end = start + d.nb_sectors * 512 - 1;

	*first = start >> cluster_bits;
	*count = (end >> cluster_bits) - *first + 1;
}

/* Refcount indexing: refcount_bits = 1 << order, entries per block =
 * cluster_size * 8 / refcount_bits. */
static inline uint64_t qcow2_rb_entries(unsigned cluster_bits, unsigned order)
{
	return 1ULL << (cluster_bits + 3 - order);
}

static inline uint64_t qcow2_rc_max(unsigned order)
{
	return order == 6 ? UINT64_MAX : (1ULL << (1u << order)) - 1;
}

/* Read entry idx of a refcount block.  Sub-byte widths: bit 0 is the least
 * significant bit of a byte; wider ones are big endian. */
static inline uint64_t qcow2_rc_get(const uint8_t *blk, unsigned order,
				    uint64_t idx)
{
	unsigned bits = 1u << order, i;
	uint64_t v = 0;

	if (bits < 8) {
		uint64_t bit = idx * bits;

		return (blk[bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
	}
	for (i = 0; i < bits / 8; i++)
		v = (v << 8) | blk[idx * (bits / 8) + i];
	return v;
}

static inline void qcow2_rc_set(uint8_t *blk, unsigned order, uint64_t idx,
				uint64_t v)
{
	unsigned bits = 1u << order, i;

	if (bits < 8) {
		uint64_t bit = idx * bits;
		uint8_t mask = (uint8_t)(((1u << bits) - 1) << (bit % 8));

		blk[bit / 8] = (uint8_t)((blk[bit / 8] & ~mask) |
					 ((v << (bit % 8)) & mask));
		return;
	}
	for (i = bits / 8; i-- > 0; v >>= 8)
		blk[idx * (bits / 8) + i] = (uint8_t)v;
}

/* Byte range of a block that entry idx lives in (for partial writes). */
static inline void qcow2_rc_byte_range(unsigned order, uint64_t idx,
				       uint64_t *first, uint64_t *len)
{
	unsigned bits = 1u << order;

	if (bits < 8) {
		*first = idx * bits / 8;
		*len = 1;
	} else {
		*first = idx * (bits / 8);
		*len = bits / 8;
	}
}

/* L1 entries needed to map size bytes. */
static inline uint64_t qcow2_l1_entries_for(uint64_t size,
					    unsigned cluster_bits)
{
	unsigned shift = cluster_bits + (cluster_bits - 3);

	return (size >> shift) + ((size & ((1ULL << shift) - 1)) != 0);
}

#endif
