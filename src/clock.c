/* clock.c — monotonic and wall clocks, and a cheap per-thread random source. */
#include "internal.h"

#include <stdio.h>
#include <time.h>

int64_t pqpool__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The coarse clock is read through the vDSO without touching the hardware
 * counter: a few ns, which is what lets the lease path time-stamp every
 * acquire and release. Resolution is a few ms, plenty for idle and lifetime
 * limits counted in seconds. */
int64_t pqpool__now_coarse_ms(void)
{
	struct timespec ts;
#ifdef CLOCK_MONOTONIC_COARSE
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
#else
	clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t pqpool__wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t pqpool__rand64(void)
{
	static __thread uint64_t s;
	if (s == 0) {
		/* seed from the clock and the thread's own address */
		s = (uint64_t)pqpool__now_ns() ^ ((uint64_t)(uintptr_t)&s << 16) ^
		    0x9E3779B97F4A7C15ull;
		if (s == 0)
			s = 1;
	}
	/* xorshift64* */
	s ^= s >> 12;
	s ^= s << 25;
	s ^= s >> 27;
	return s * 0x2545F4914F6CDD1Dull;
}

void pqpool__iso8601(int64_t wall_ms, char out[64])
{
	time_t secs = (time_t)(wall_ms / 1000);
	int ms = (int)(wall_ms % 1000);
	struct tm tm;
	if (ms < 0) {
		ms += 1000;
		secs -= 1;
	}
	gmtime_r(&secs, &tm);
	snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}
