/* render_fixture.h — what the renderers' tests share: a snapshot with a
 * value in every field, and assertions for doubles. */
#ifndef PQPOOL_RENDER_FIXTURE_H
#define PQPOOL_RENDER_FIXTURE_H

#include <math.h>
#include <string.h>

#include "hist.h"
#include "testenv.h"

/* cmocka 1.1.5 (Debian 12) has no assert_double_equal. */
#define assert_near(a, b, eps)                                                           \
	do {                                                                             \
		double a_ = (a), b_ = (b);                                               \
		if (!(fabs(a_ - b_) <= (eps)))                                           \
			fail_msg("%.17g != expected %.17g", a_, b_);                     \
	} while (0)

/* 2026-11-26T14:00:00.000Z, the DESIGN example */
#define T0 INT64_C(1795701600000)

static void example_stats(pqpool_stats *st)
{
	memset(st, 0, sizeof *st);
	st->total = 5;
	st->active = 1;
	st->idle = 4;
	st->waiting = 0;
	st->max = 20;
	st->min = 5;
	st->utilization = 5.0;
	st->avg_response_ms = 0.38;
	st->error_rate = 0;
	st->window_s = 60;
	st->window_queries = 1234;
	st->acquires = 1000;
	st->acquire_timeouts = 2;
	st->acquire_errors = 1;
	st->opened = 7;
	st->connect_failures = 3;
	st->closed_by[PQPOOL_CLOSE_IDLE] = 1;
	st->closed_by[PQPOOL_CLOSE_BROKEN] = 1;
	st->queries = 1300;
	st->query_errors = 4;
	st->query_timeouts = 1;
	st->rollbacks = 2;
	st->retries = 5;
	st->lease_warnings = 1;
	strcpy(st->error_class[0], "08");
	st->errors_by_class[0] = 2;
	strcpy(st->error_class[1], "23");
	st->errors_by_class[1] = 1;
	strcpy(st->error_class[4], "08"); /* a duplicate slot is merged */
	st->errors_by_class[4] = 3;
	strcpy(st->error_class[5], "client");
	st->errors_by_class[5] = 1;
	for (int i = 1; i <= 10000; i++)
		pqpool__hist_add(&st->query,
		                 (int64_t)i * 10000); /* uniform (0, 100] ms */
	for (int i = 0; i < 1000; i++)
		pqpool__hist_add(&st->wait, 50000);
	for (int i = 0; i < 7; i++)
		pqpool__hist_add(&st->connect, 3000000);
	/* pipeline: 100 Syncs at depth 1, 300 at 3, 600 at 64 */
	st->pipeline_depth.buckets[0] = 100;
	st->pipeline_depth.buckets[2] = 300;
	st->pipeline_depth.buckets[6] = 600;
	st->pipeline_depth.count = 1000;
	st->pipeline_depth.sum = 100 + 300 * 3 + 600 * 64;
	for (int i = 0; i < 400; i++)
		pqpool__hist_add(&st->pipeline_wait, 2000000); /* 2 ms behind */
	st->started_ms = T0 - 3600000;
	st->last_activity_ms = T0 - 500;
}

#endif
