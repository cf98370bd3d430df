/* rand.c — a cheap per-thread pseudo-random source (not for secrets). */
#include "rand.h"

#include "clock.h"

uint64_t pqc_rand64(void)
{
	static __thread uint64_t s;
	if (s == 0) {
		s = (uint64_t)pqc_now_ns() ^ ((uint64_t)(uintptr_t)&s << 16) ^
		    0x9E3779B97F4A7C15ull;
		if (s == 0)
			s = 1;
	}
	s ^= s >> 12;
	s ^= s << 25;
	s ^= s >> 27;
	return s * 0x2545F4914F6CDD1Dull;
}
