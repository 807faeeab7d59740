/* guest/common/netframe.h - the sequence-numbered test frames the test
 * kernel's netperf and the host's tools/netio exchange.  Header only,
 * freestanding (no libc).
 *
 * A frame is Ethernet + IPv4 + TCP headers (54 bytes, so that a 64 KiB
 * frame can travel as one TSO frame), then a 16-byte tag (magic, length,
 * sequence number; little-endian) and the guest/common/pattern.h pattern
 * of seed (seq % NETFRAME_SLOTS) for the rest: a sender can fill its
 * buffers once and only stamp the sequence number per frame, and the
 * receiver still checks every byte.
 *
 * The destination MAC is never the host TAP's own, so the host's IP stack
 * drops these frames at once (PACKET_OTHERHOST); only packet sockets see
 * them.
 */
#ifndef GUEST_COMMON_NETFRAME_H
#define GUEST_COMMON_NETFRAME_H

#include <stdbool.h>
#include <stdint.h>

#include "guest/common/pattern.h"

#define NETFRAME_HDR_LEN	54	/* Ethernet 14, IPv4 20, TCP 20 */
#define NETFRAME_TAG_LEN	16
#define NETFRAME_MIN		(NETFRAME_HDR_LEN + NETFRAME_TAG_LEN)
#define NETFRAME_MAX		65280	/* IPv4 total length stays < 64 KiB */
#define NETFRAME_MAGIC		0x464e4d56u	/* "VMNF" */
#define NETFRAME_SLOTS		256
#define NETFRAME_MSS		1448
/* TCP checksum place for a NEEDS_CSUM virtio header */
#define NETFRAME_CSUM_START	34
#define NETFRAME_CSUM_OFFSET	16

/* MACs: the guest's default peer, and the host side's */
#define NETFRAME_HOST_MAC	{ 0x02, 0x00, 0x00, 0x00, 0x00, 0x02 }
#define NETFRAME_GUEST_MAC	{ 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 }

static inline void netframe_put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline uint16_t netframe_csum_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/* Ethernet, IPv4 (checksummed) and TCP headers for a frame of len bytes;
 * the TCP checksum field holds the pseudo-header sum, as a NEEDS_CSUM
 * sender leaves it. */
static inline void netframe_headers(uint8_t *f, uint32_t len,
				    const uint8_t dst[6], const uint8_t src[6])
{
	static const uint8_t saddr[4] = { 10, 0, 2, 15 }, daddr[4] = { 10, 0, 2, 2 };
	uint16_t ip_len = (uint16_t)(len - 14), tcp_len = (uint16_t)(len - 34);
	uint32_t s = 0;
	int i;

	for (i = 0; i < 6; i++) {
		f[i] = dst[i];
		f[6 + i] = src[i];
	}
	f[12] = 0x08;
	f[13] = 0x00;
	for (i = 14; i < NETFRAME_HDR_LEN; i++)
		f[i] = 0;
	f[14] = 0x45;
	netframe_put_be16(f + 16, ip_len);
	f[20] = 0x40;			/* DF */
	f[22] = 64;			/* TTL */
	f[23] = 6;			/* TCP */
	for (i = 0; i < 4; i++) {
		f[26 + i] = saddr[i];
		f[30 + i] = daddr[i];
	}
	for (i = 14; i < 34; i += 2)
		s += (uint32_t)f[i] << 8 | f[i + 1];
	netframe_put_be16(f + 24, (uint16_t)~netframe_csum_fold(s));
	netframe_put_be16(f + 34, 5001);
	netframe_put_be16(f + 36, 5001);
	f[46] = 0x50;			/* data offset: 5 words */
	f[47] = 0x10;			/* ACK */
	netframe_put_be16(f + 48, 0xffff);
	/* pseudo header: addresses, protocol, TCP length */
	s = (10u << 8 | 0) + (2u << 8 | 15) + (10u << 8 | 0) + (2u << 8 | 2) +
	    6 + tcp_len;
	netframe_put_be16(f + 50, netframe_csum_fold(s));
}

/* The pattern part (after the tag), which depends on seq % NETFRAME_SLOTS
 * only. */
static inline void netframe_fill_payload(uint8_t *f, uint32_t len, uint64_t seq)
{
	pattern_fill(f + NETFRAME_MIN, seq % NETFRAME_SLOTS, 0,
		     len - NETFRAME_MIN);
}

static inline void netframe_stamp(uint8_t *f, uint32_t len, uint64_t seq)
{
	uint8_t *t = f + NETFRAME_HDR_LEN;
	int i;

	for (i = 0; i < 4; i++) {
		t[i] = (uint8_t)(NETFRAME_MAGIC >> (8 * i));
		t[4 + i] = (uint8_t)(len >> (8 * i));
	}
	for (i = 0; i < 8; i++)
		t[8 + i] = (uint8_t)(seq >> (8 * i));
}

/* Every byte of p[0..len) against the pattern of seed from offset 0, a
 * word at a time. */
static inline bool netframe_pattern_ok(const uint8_t *p, uint64_t seed,
				       uint32_t len)
{
	uint32_t i = 0;
	int b;

	for (; i + 8 <= len; i += 8) {
		uint64_t w = pattern_word(seed, i >> 3);

		for (b = 0; b < 8; b++)
			if (p[i + b] != (uint8_t)(w >> (8 * b)))
				return false;
	}
	for (; i < len; i++)
		if (p[i] != pattern_byte(seed, i))
			return false;
	return true;
}

/* Check a received frame of len bytes.  1: one of ours, *seq set;
 * 0: not a test frame; -1: a test frame whose length or contents are wrong
 * (full: every byte; else the first and last 8 of the pattern). */
static inline int netframe_check(const uint8_t *f, uint32_t len, bool full,
				 uint64_t *seq)
{
	const uint8_t *t = f + NETFRAME_HDR_LEN;
	uint32_t magic = 0, flen = 0;
	uint64_t s = 0, slot;
	int i;

	if (len < NETFRAME_MIN || f[12] != 0x08 || f[13] != 0x00)
		return 0;
	for (i = 0; i < 4; i++) {
		magic |= (uint32_t)t[i] << (8 * i);
		flen |= (uint32_t)t[4 + i] << (8 * i);
	}
	if (magic != NETFRAME_MAGIC)
		return 0;
	for (i = 0; i < 8; i++)
		s |= (uint64_t)t[8 + i] << (8 * i);
	*seq = s;
	if (flen != len)
		return -1;
	slot = s % NETFRAME_SLOTS;
	len -= NETFRAME_MIN;
	f += NETFRAME_MIN;
	if (full)
		return netframe_pattern_ok(f, slot, len) ? 1 : -1;
	if (len >= 16)
		return pattern_check(f, slot, 0, 8) == 8 &&
		       pattern_check(f + len - 8, slot, len - 8, 8) == 8 ? 1 : -1;
	return pattern_check(f, slot, 0, len) == len ? 1 : -1;
}

#endif
