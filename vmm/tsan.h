/* vmm/tsan.h - what ThreadSanitizer (make check TSAN=1) needs told; empty
 * in every other build. */
#ifndef VMM_TSAN_H
#define VMM_TSAN_H

#include <stddef.h>

#ifdef __SANITIZE_THREAD__
/* the TSan runtime's dynamic annotation (libtsan exports it) */
void AnnotateBenignRaceSized(const char *file, int line,
			     const volatile void *mem, unsigned long size,
			     const char *description);
/* Guest RAM is shared with the guest, which orders the device threads'
 * accesses to it through its own rings and MMIO -- steps TSan cannot see
 * (they pass through KVM) -- and may, if hostile, make them overlap; the
 * VMM never relies on what guest RAM holds.  So accesses there are not
 * data races of ours: TSan is told to expect them.  (Rings in unit tests
 * live in ordinary memory and stay checked.) */
#define tsan_guest_ram(mem, size)					\
	AnnotateBenignRaceSized(__FILE__, __LINE__, (mem), (size),	\
				"guest RAM: ordered by the guest")
#else
#define tsan_guest_ram(mem, size)	((void)(mem), (void)(size))
#endif

#endif
