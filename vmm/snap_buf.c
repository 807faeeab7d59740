/* vmm/snap_buf.c - the byte buffers of snapshot sections and the CRC-32
 * (vmm/snapshot.h).  Apart from snapshot.c because devices use it, and
 * the device unit tests link them without the rest of the VMM. */
#include "vmm/snapshot.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/vm.h"

static uint32_t crc_table[256];

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

uint32_t snap_crc32(uint32_t crc, const void *data, size_t n)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	const uint8_t *p = data;

	pthread_once(&once, crc_init);
	crc = ~crc;
	while (n--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

void vm_snap_put(struct snap_buf *b, const void *data, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		uint8_t *p;

		while (cap < b->len + n)
			cap *= 2;
		p = realloc(b->data, cap);
		if (!p) {
			b->failed = true;
			return;
		}
		b->data = p;
		b->cap = cap;
	}
	if (n)
		memcpy(b->data + b->len, data, n);
	b->len += n;
}

int vm_snap_get(struct snap_reader *r, void *data, size_t n)
{
	if (r->len - r->off < n)
		return -1;
	memcpy(data, r->p + r->off, n);
	r->off += n;
	return 0;
}

size_t vm_snap_left(const struct snap_reader *r)
{
	return r->len - r->off;
}

void snap_buf_free(struct snap_buf *b)
{
	free(b->data);
	*b = (struct snap_buf){ 0 };
}

size_t snap_section_begin(struct snap_buf *b, const char *name)
{
	struct snap_section_hdr h = { .size = 0 };
	size_t at = b->len;

	snprintf(h.name, sizeof(h.name), "%s", name);
	vm_snap_put(b, &h, sizeof(h));
	return at;
}

void snap_section_end(struct snap_buf *b, size_t at)
{
	static const uint8_t zeros[8];
	size_t size;
	uint32_t s32;

	if (b->failed)
		return;
	size = b->len - at - sizeof(struct snap_section_hdr);
	s32 = (uint32_t)size;
	memcpy(b->data + at + offsetof(struct snap_section_hdr, size), &s32,
	       sizeof(s32));
	vm_snap_put(b, zeros, (8 - size % 8) % 8);
}

