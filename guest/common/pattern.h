/* guest/common/pattern.h - the seeded data pattern shared by the test kernel,
 * the guest agent and the host tools, so a pattern written in one place can be
 * verified in another.  Header only, freestanding (no libc).
 *
 * The byte at absolute disk (or file) offset `off` for seed `seed` is byte
 * (off % 8) of the little-endian 64-bit word pattern_word(seed, off / 8).
 * Any range, aligned or not, is therefore well defined.
 */
#ifndef GUEST_COMMON_PATTERN_H
#define GUEST_COMMON_PATTERN_H

#include <stdint.h>

static inline uint64_t pattern_word(uint64_t seed, uint64_t word_index)
{
	/* splitmix64 of (seed, index): cheap, and no two seeds share a stream */
	uint64_t z = seed * 0x9e3779b97f4a7c15ULL + word_index + 1;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline uint8_t pattern_byte(uint64_t seed, uint64_t off)
{
	return (uint8_t)(pattern_word(seed, off >> 3) >> ((off & 7) * 8));
}

/* Fill buf with the pattern of [off, off + len). */
static inline void pattern_fill(void *buf, uint64_t seed, uint64_t off,
				uint64_t len)
{
	uint8_t *p = (uint8_t *)buf;
	uint64_t i = 0;

	while (i < len && ((off + i) & 7))
		p[i] = pattern_byte(seed, off + i), i++;
	for (; i + 8 <= len; i += 8) {
		uint64_t w = pattern_word(seed, (off + i) >> 3);
		int b;

		for (b = 0; b < 8; b++)
			p[i + b] = (uint8_t)(w >> (b * 8));
	}
	for (; i < len; i++)
		p[i] = pattern_byte(seed, off + i);
}

/* Return the index of the first byte of buf that differs from the pattern,
 * or len if all match. */
static inline uint64_t pattern_check(const void *buf, uint64_t seed,
				     uint64_t off, uint64_t len)
{
	const uint8_t *p = (const uint8_t *)buf;
	uint64_t i;

	for (i = 0; i < len; i++)
		if (p[i] != pattern_byte(seed, off + i))
			return i;
	return len;
}

#endif
