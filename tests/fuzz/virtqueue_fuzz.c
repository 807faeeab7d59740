/* tests/fuzz/virtqueue_fuzz.c - the split-virtqueue walker (devices/
 * virtqueue.c) on arbitrary guest memory and ring indices.
 *
 * Input: a 16-byte header (queue size, ring offsets, features, the
 * starting ring index, iovec room), then the bytes of guest RAM (16 KiB
 * between guard pages; what the input does not cover is zero), then a
 * list of operations: pop, push (a used length up to the chain's writable
 * bytes), unpop, publish/interrupt, notify on/off, and raw writes into RAM
 * (the driver changing rings and descriptors between pops).
 *
 * Checked: every popped iovec lies inside RAM (and is touched, so a wrong
 * one faults or trips ASan), lengths add up, readable buffers come first,
 * no more than max_iov iovecs, no head popped twice while in flight, the
 * used ring's index moves by what was pushed, and a broken queue stays
 * broken.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz_harness.h"

#define RAM_SIZE	(16u << 10)
#define MAX_IOV		64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fz_ram ram;
static uint64_t in_flight_bits[VIRTQ_IN_FLIGHT_WORDS(512)];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	struct iovec iov[MAX_IOV];
	struct virtq q;
	struct virtq_elem e;
	uint16_t qsize, start;
	struct { uint16_t head; uint64_t in_len; } popped[512];
	uint64_t desc, avail, used, features;
	unsigned max_iov, npopped = 0, pushed = 0;
	bool can_unpop = false;
	uint8_t flags;
	char err[200];

	if (!ram.map)
		fz_ram_init(&ram, RAM_SIZE);
	fz_track_reset();
	/* header: sizes up to 512 (not only powers of two) */
	qsize = fz_u16(&in) % 513;
	desc = fz_u16(&in) % RAM_SIZE;
	avail = fz_u16(&in) % RAM_SIZE;
	used = fz_u16(&in) % RAM_SIZE;
	flags = fz_u8(&in);
	start = fz_u16(&in);
	max_iov = 1 + fz_u8(&in) % MAX_IOV;
	fz_u16(&in);	/* reserved */
	features = (flags & 1 ? 1ULL << VIRTIO_F_INDIRECT_DESC : 0) |
		   (flags & 2 ? 1ULL << VIRTIO_F_EVENT_IDX : 0);
	/* mostly aligned rings: misaligned ones are refused at init */
	if (!(flags & 4)) {
		desc &= ~15ULL;
		avail &= ~1ULL;
		used &= ~3ULL;
	}
	memset(ram.mem.host, 0, RAM_SIZE);
	{
		uint16_t n = fz_u16(&in) % (RAM_SIZE + 1);

		fz_bytes(&in, ram.mem.host, n);
	}
	if (virtq_init(&q, &ram.mem, "fuzz", qsize, desc, avail, used,
		       features, err, sizeof(err)) < 0)
		return 0;
	q.last_avail = q.used_idx = q.published_used = start;
	q.signalled_used = start;
	if (flags & 8)
		virtq_track_in_flight(&q, in_flight_bits);
	while (fz_more(&in)) {
		uint8_t op = fz_u8(&in);
		bool was_broken = q.broken;
		int ret;

		switch (op % 8) {
		case 0:
		case 1:
		case 2:	/* pop */
			ret = virtq_pop(&q, &e, iov, max_iov);
			FZ_CHECK(ret >= -1 && ret <= 1, "pop returned %d", ret);
			FZ_CHECK(!was_broken || ret == -1,
				 "a broken queue popped %d", ret);
			FZ_CHECK(ret != -1 || q.broken, "-1 but not broken");
			if (ret != 1)
				break;
			for (unsigned i = 0; i < e.n_out + e.n_in; i++) {
				const uint8_t *b = iov[i].iov_base;
				volatile uint8_t sink = 0;

				FZ_CHECK(fz_in_ram(&ram, b, iov[i].iov_len),
					 "iovec %u outside RAM", i);
				/* touch both ends: a bad pointer faults */
				sink ^= b[0];
				sink ^= b[iov[i].iov_len - 1];
				(void)sink;
				if (i >= e.n_out)
					memset(iov[i].iov_base, 0xa5,
					       iov[i].iov_len);
			}
			/* with in-flight tracking no head is out twice, so at
			 * most qsize are; without it (no device runs so) a
			 * driver moving its avail index on may hand heads out
			 * again and again: the input ends there */
			FZ_CHECK(!(flags & 8) || npopped < qsize,
				 "%u heads in flight on a queue of %u",
				 npopped + 1, qsize);
			if (npopped == 512)
				return 0;
			popped[npopped].head = e.head;
			popped[npopped++].in_len = e.in_len;
			can_unpop = true;
			break;
		case 3:	/* push the oldest popped head */
			if (!npopped)
				break;
			virtq_push(&q, popped[0].head, (uint32_t)(fz_u32(&in) %
				   (popped[0].in_len + 1)));
			memmove(popped, popped + 1, --npopped * sizeof(popped[0]));
			pushed++;
			can_unpop = false;
			break;
		case 4:	/* give the last pop back */
			if (!can_unpop)
				break;
			virtq_unpop(&q);
			npopped--;
			can_unpop = false;
			break;
		case 5: {	/* publish; interrupt decision */
			uint16_t before = q.used_idx;
			bool writes = q.published_used != q.used_idx;

			virtq_publish(&q);
			FZ_CHECK(q.published_used == before, "publish");
			FZ_CHECK(!writes || q.used_hdr[1] == (uint16_t)(start + pushed),
				 "used idx %u after %u pushes from %u",
				 q.used_hdr[1], pushed, start);
			(void)virtq_should_interrupt(&q);
			break;
		}
		case 6:	/* notifies */
			if (op & 0x10)
				virtq_disable_notify(&q);
			else
				(void)virtq_enable_notify(&q);
			(void)virtq_avail_count(&q);
			break;
		case 7: {	/* the driver writes RAM */
			uint16_t at = fz_u16(&in) % RAM_SIZE;

			fz_ram_poke(&ram, &in, at, fz_u8(&in) % 32);
			break;
		}
		}
	}
	return 0;
}
