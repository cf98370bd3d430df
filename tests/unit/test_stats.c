/* test_stats.c — stats.c: a slot's recent window and lifetime figures, and a
 * snapshot summed from slots. */
#include "testenv.h"
#include "clock.h"
#include "hist.h"
#include "stats.h"

#include <math.h>
#include <string.h>

static void test_query_window(void **state)
{
	static pqpool__qstats q; /* zeroed */
	const int64_t s = 1000000000;
	const int64_t span = (int64_t)PQPOOL__WIN_SPAN_S * s;
	(void)state;
	pqpool__qstats_add(&q, 100 * span, 2000000, false);
	pqpool__qstats_add(&q, 100 * span + s, 4000000, true);
	assert_int_equal(atomic_load(&q.queries), 2);
	assert_int_equal(atomic_load(&q.errors), 1);
	assert_int_equal(atomic_load(&q.sum_ns), 6000000);
	assert_int_equal(atomic_load(&q.win[100 % PQPOOL__WIN_SLOTS].n), 2);
	assert_int_equal(atomic_load(&q.win[100 % PQPOOL__WIN_SLOTS].err), 1);
	/* a full window later the same bucket starts over */
	pqpool__qstats_add(&q, (100 + PQPOOL__WIN_SLOTS) * span, 1000000, false);
	assert_int_equal(atomic_load(&q.win[100 % PQPOOL__WIN_SLOTS].n), 1);
	assert_int_equal(atomic_load(&q.win[100 % PQPOOL__WIN_SLOTS].err), 0);
	assert_int_equal(atomic_load(&q.win[100 % PQPOOL__WIN_SLOTS].epoch),
	                 100 + PQPOOL__WIN_SLOTS);
	/* the lifetime totals do not */
	assert_int_equal(atomic_load(&q.queries), 3);
	/* 2 ms and 4 ms land in the (1, 2.5] and (2.5, 5] ms buckets */
	assert_int_equal(atomic_load(&q.hist[pqpool__hist_bucket(2000000)]), 1);
	assert_int_equal(atomic_load(&q.hist[pqpool__hist_bucket(4000000)]), 1);
}

static void test_tally(void **state)
{
	static pqpool__qstats a, b; /* zeroed */
	pqpool__counters c;
	pqpool__tally t;
	pqpool_stats st;
	int64_t now = pqc_now_ns();
	(void)state;
	pqpool__qstats_lease(&a, 5000);
	pqpool__qstats_add(&a, now, 1000000, false);
	pqpool__qstats_wait(&a, 3000000);
	pqpool__qstats_release(&a, 6000);
	pqpool__qstats_lease(&b, 5500);
	pqpool__qstats_add(&b, now, 3000000, true);
	pqpool__counters_init(&c);
	pqpool__count_failure(&c, PQPOOL_ETIMEDOUT, NULL);
	pqpool__count_failure(&c, PQPOOL_EQUERY, "23505");
	pqpool__count_failure(&c, PQPOOL_EQUERY, "23503");
	pqpool__count_closed(&c, PQPOOL_CLOSE_IDLE);
	pqpool__count(&c, PQPOOL__RETRIES, 2);

	pqpool__tally_begin(&t, &st, true);
	pqpool__tally_slot(&t, &a, PQPOOL__USE_IDLE);
	pqpool__tally_slot(&t, &b, PQPOOL__USE_USED);
	pqpool__tally_slot(&t, &b, PQPOOL__USE_NONE); /* counted, not open */
	pqpool__tally_end(&t, &(pqpool__pool_facts){.max = 4,
	                                            .min = 1,
	                                            .waiting = 3,
	                                            .started_wall_ms = 1000000,
	                                            .started_mono_ms = 1000,
	                                            .counters = &c});
	assert_int_equal(st.total, 2);
	assert_int_equal(st.idle, 1);
	assert_int_equal(st.active, 1);
	assert_int_equal(st.waiting, 3);
	assert_true(st.utilization == 25.0);
	assert_int_equal(st.acquires, 3);
	assert_int_equal(st.queries, 3);
	assert_int_equal(st.query_errors, 2);
	assert_int_equal(st.window_queries, 3);
	/* one acquire of three waited; the other two are the zero bucket */
	assert_int_equal(st.wait.count, 3);
	assert_int_equal(st.wait.buckets[0], 2);
	/* the latest use, on the wall clock */
	assert_int_equal(st.last_activity_ms, 1000000 + (6000 - 1000));
	assert_int_equal(st.query_timeouts, 1);
	assert_int_equal(st.closed_by[PQPOOL_CLOSE_IDLE], 1);
	assert_int_equal(st.retries, 2);
	{
		char name[8];
		uint64_t n;
		int classes = 0;
		for (int i = 0; i < PQPOOL_ERROR_CLASSES; i++)
			if (pqpool__error_class(&st, i, name, &n)) {
				classes++;
				if (strcmp(name, "23") == 0)
					assert_int_equal(n, 2);
				else
					assert_string_equal(name, "client");
			}
		assert_int_equal(classes, 2);
	}
	pqpool__counters_destroy(&c);
}

static void test_texts(void **state)
{
	(void)state;
	static const char *const want[] = {"idle",     "lifetime",  "broken",
	                                   "unclean",  "discarded", "pool_closed",
	                                   "read_only"};
	assert_int_equal(sizeof want / sizeof want[0], PQPOOL_CLOSE_REASONS);
	for (int r = 0; r < PQPOOL_CLOSE_REASONS; r++)
		assert_string_equal(pqpool_close_reason_text((pqpool_close_reason)r),
		                    want[r]);
	assert_string_equal(pqpool_close_reason_text(PQPOOL_CLOSE_REASONS), "unknown");
	assert_string_equal(pqpool_close_reason_text((pqpool_close_reason)-1), "unknown");
}

static void test_pool_status(void **state)
{
	(void)state;
	static const struct {
		double u;
		const char *level;
	} cases[] = {
	        {0, "low"},          {40, "low"},       {40.01, "medium"},
	        {60, "medium"},      {60.01, "high"},   {80, "high"},
	        {80.01, "critical"}, {100, "critical"}, {NAN, "low"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		pqpool_stats st = {0};
		pqpool_pool_status ps;
		st.utilization = cases[i].u;
		pqpool_pool_status_of(&st, &ps);
		assert_string_equal(ps.utilization, cases[i].level);
		assert_true(ps.healthy);
		if (cases[i].u > 80) {
			assert_int_equal(ps.n_recommendations, 1);
			assert_string_equal(ps.recommendations[0],
			                    "Pool utilization is critically high");
		} else {
			assert_int_equal(ps.n_recommendations, 0);
		}
	}

	pqpool_stats st = {0};
	pqpool_pool_status ps;
	st.waiting = 3;
	st.utilization = 95;
	pqpool_pool_status_of(&st, &ps);
	assert_int_equal(ps.n_recommendations, 2);
	assert_string_equal(ps.recommendations[0], "Consider increasing pool size");
	assert_string_equal(ps.recommendations[1], "Pool utilization is critically high");

	st.utilization = 10;
	st.error_rate = 4.99;
	pqpool_pool_status_of(&st, &ps);
	assert_int_equal(ps.n_recommendations, 1);
	assert_string_equal(ps.recommendations[0], "Consider increasing pool size");
	assert_true(ps.healthy);
	st.error_rate = 5.0;
	pqpool_pool_status_of(&st, &ps);
	assert_false(ps.healthy);

	pqpool_pool_status_of(NULL, &ps); /* treated as an empty snapshot */
	assert_string_equal(ps.utilization, "low");
	assert_true(ps.healthy);
	pqpool_pool_status_of(&st, NULL); /* must not crash */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_query_window),
	        cmocka_unit_test(test_tally),
	        cmocka_unit_test(test_texts),
	        cmocka_unit_test(test_pool_status),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
