/* fake_env.h — a stand-in for the pool behind the service's routes (as in
 * tests/unit/test_routes.c), whose answers the fuzzer chooses. */
#ifndef PQPOOL_FUZZ_FAKE_ENV_H
#define PQPOOL_FUZZ_FAKE_ENV_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "routes.h"

typedef struct fake {
	int health_rc, stats_rc;
	pqpool_health health;
	pqpool_stats stats;
	bool service_fails, shutting_down;
} fake;

static int fake_health(void *arg, int64_t deadline_ns, pqpool_health *out)
{
	fake *f = arg;
	(void)deadline_ns;
	*out = f->health;
	return f->health_rc;
}

static int fake_stats(void *arg, pqpool_stats *out)
{
	fake *f = arg;
	*out = f->stats;
	return f->stats_rc;
}

static char *fake_service(void *arg)
{
	fake *f = arg;
	return f->service_fails ? NULL : strdup("# TYPE svc_up gauge\nsvc_up 1\n");
}

static bool fake_shutting_down(void *arg)
{
	return ((fake *)arg)->shutting_down;
}

/*
 * Sets the fake's answers from a few bytes of *data (consumed), within what
 * the library can report: counts a pool of at most 10000 can have, percents,
 * plain times. The health error text is left to the caller.
 */
static void fake_from_bytes(fake *f, const uint8_t **data, size_t *size)
{
	uint8_t b[8] = {0};
	size_t n = *size < sizeof b ? *size : sizeof b;

	memcpy(b, *data, n);
	*data += n;
	*size -= n;
	memset(f, 0, sizeof *f);
	f->health_rc = (b[0] & 3) == 3 ? PQPOOL_ETIMEDOUT : PQPOOL_OK;
	f->health.status = (pqpool_health_status)((b[0] >> 2) % 3);
	f->health.response_ms = b[1] * 0.37;
	f->health.connection_count = b[2];
	f->health.checked_at_ms = INT64_C(1795701600000) + b[3];
	f->stats_rc = (b[0] & 16) ? PQPOOL_ECLOSED : PQPOOL_OK;
	f->service_fails = b[0] & 32;
	f->shutting_down = b[0] & 64;
	f->stats.max = 1 + b[4] % 200;
	f->stats.active = b[5] % (f->stats.max + 1);
	f->stats.idle = b[6] % 8;
	f->stats.total = f->stats.active + f->stats.idle;
	f->stats.waiting = b[7] % 16;
	f->stats.min = f->stats.total < 5 ? f->stats.total : 5;
	f->stats.utilization = 100.0 * f->stats.active / f->stats.max;
	f->stats.window_s = 60;
	f->stats.window_queries = b[1];
	f->stats.avg_response_ms = b[2] * 0.11;
	f->stats.error_rate = (b[3] % 101) * 1.0;
	f->stats.queries = b[1] * 3u;
	f->stats.started_ms = INT64_C(1795701600000);
	f->stats.last_activity_ms = INT64_C(1795701600000) + b[4];
}

#endif
