/* test_logic.c — the library's pure logic without a database: SQLSTATE
 * classes, backoff bounds, health thresholds, the wake-up event, the query
 * window, clocks and status texts. */
#include "testenv.h"
#include "internal.h"

#include <pthread.h>
#include <string.h>

static void test_sqlstate_classes(void **state)
{
	static const char *const retry[] = {"08000", "08003", "08006", "08001",
	                                    "08004", "08P01", "57P01", "57P02",
	                                    "57P03", "53300", "40001", "40P01"};
	static const char *const never[] = {"08007", "42601", "23505", "23503", "22012",
	                                    "57014", "53100", "53200", "40002", "40003",
	                                    "XX000", "42P01", "25P02", "00000", "57000"};
	(void)state;
	for (size_t i = 0; i < sizeof retry / sizeof *retry; i++)
		if (!pqpool_sqlstate_retryable(retry[i]))
			fail_msg("%s should be retryable", retry[i]);
	for (size_t i = 0; i < sizeof never / sizeof *never; i++)
		if (pqpool_sqlstate_retryable(never[i]))
			fail_msg("%s must not be retried", never[i]);
	assert_false(pqpool_sqlstate_retryable(NULL));
	assert_false(pqpool_sqlstate_retryable(""));
	assert_false(pqpool_sqlstate_retryable("08"));
	assert_false(pqpool_sqlstate_retryable("080000"));
}

static void test_backoff_bounds(void **state)
{
	(void)state;
	/* the ceiling doubles per attempt from the base, capped at the max */
	for (int attempt = 1; attempt <= 12; attempt++) {
		int64_t ceiling = 1000LL << (attempt - 1);
		int seen_max = 0, seen_min = 1 << 30;
		if (ceiling > 30000)
			ceiling = 30000;
		for (uint64_t r = 0; r < 20000; r++) {
			uint64_t rnd = r * 0x9E3779B97F4A7C15ull;
			int d = pqpool_backoff_ms(attempt, 1000, 30000, rnd);
			if (d < 0 || d > ceiling)
				fail_msg("attempt %d: delay %d outside [0, %lld]",
				         attempt, d, (long long)ceiling);
			if (d > seen_max)
				seen_max = d;
			if (d < seen_min)
				seen_min = d;
		}
		/* full jitter: the whole range is used, not just the top */
		assert_true(seen_min < ceiling / 20 + 1);
		assert_true(seen_max > ceiling - ceiling / 20 - 1);
	}
	/* the extremes of rnd */
	assert_int_equal(pqpool_backoff_ms(1, 1000, 30000, 0), 0);
	assert_int_equal(pqpool_backoff_ms(1, 1000, 30000, 1000), 1000);
	assert_int_equal(pqpool_backoff_ms(1, 1000, 30000, 1001), 0);
	/* a huge attempt number does not overflow */
	assert_true(pqpool_backoff_ms(1000, 1000, 30000, UINT64_MAX) <= 30000);
	assert_true(pqpool_backoff_ms(40, 600000, 3600000, UINT64_MAX - 7) <= 3600000);
	/* a max below the base caps it */
	assert_true(pqpool_backoff_ms(1, 1000, 10, UINT64_MAX) <= 10);
	/* nothing to wait for */
	assert_int_equal(pqpool_backoff_ms(0, 1000, 30000, 123), 0);
	assert_int_equal(pqpool_backoff_ms(3, 0, 30000, 123), 0);
}

static void test_health_thresholds(void **state)
{
	char why[128];
	(void)state;
	assert_int_equal(pqpool__judge_health(0.4, 1000, 0, 0.0, 60, why, sizeof why),
	                 PQPOOL_HEALTHY);
	assert_string_equal(why, "");
	assert_int_equal(pqpool__judge_health(1000.0, 1000, 0, 0.0, 60, why, sizeof why),
	                 PQPOOL_HEALTHY);
	assert_int_equal(pqpool__judge_health(1000.1, 1000, 0, 0.0, 60, why, sizeof why),
	                 PQPOOL_DEGRADED);
	assert_non_null(strstr(why, "slow"));
	assert_int_equal(pqpool__judge_health(0.4, 1000, 1, 0.0, 60, why, sizeof why),
	                 PQPOOL_DEGRADED);
	assert_non_null(strstr(why, "1 caller(s) waiting"));
	assert_int_equal(pqpool__judge_health(0.4, 1000, 0, 4.99, 60, why, sizeof why),
	                 PQPOOL_HEALTHY);
	assert_int_equal(pqpool__judge_health(0.4, 1000, 0, 5.0, 60, why, sizeof why),
	                 PQPOOL_DEGRADED);
	assert_non_null(strstr(why, "5.0 %"));
	assert_string_equal(pqpool_health_text(PQPOOL_HEALTHY), "healthy");
	assert_string_equal(pqpool_health_text(PQPOOL_DEGRADED), "degraded");
	assert_string_equal(pqpool_health_text(PQPOOL_UNHEALTHY), "unhealthy");
}

struct setter {
	pqpool__event *ev;
	int delay_ms;
};

static void *set_later(void *arg)
{
	struct setter *s = arg;
	testenv_sleep_ms(s->delay_ms);
	pqpool__event_set(s->ev);
	return NULL;
}

static void test_event_wait(void **state)
{
	pqpool__event ev;
	pthread_t th;
	struct setter s = {&ev, 50};
	int64_t t0, el;
	(void)state;
	/* times out at the deadline, not before */
	pqpool__event_init(&ev);
	t0 = testenv_now_ms();
	assert_int_equal(pqpool__event_wait(&ev, pqpool__now_ns() + 100000000), 0);
	el = testenv_now_ms() - t0;
	assert_true(el >= 99);
	assert_true(el < 400);
	/* wakes when set from another thread, well before the deadline */
	pqpool__event_init(&ev);
	pthread_create(&th, NULL, set_later, &s);
	t0 = testenv_now_ms();
	assert_int_equal(pqpool__event_wait(&ev, pqpool__now_ns() + 5000000000LL), 1);
	el = testenv_now_ms() - t0;
	pthread_join(th, NULL);
	assert_true(el >= 40);
	assert_true(el < 2000);
	/* already set: returns at once, even with a past deadline */
	assert_int_equal(pqpool__event_wait(&ev, 0), 1);
}

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

static void test_clock_and_texts(void **state)
{
	char buf[64];
	int64_t a, b;
	(void)state;
	pqpool__iso8601(1795701600123LL, buf);
	assert_string_equal(buf, "2026-11-26T14:00:00.123Z");
	pqpool__iso8601(0, buf);
	assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
	a = pqpool__now_ns();
	b = pqpool__now_ns();
	assert_true(b >= a);
	assert_true(pqpool__now_coarse_ms() > 0);
	assert_true(pqpool__rand64() != pqpool__rand64());
	for (int s = PQPOOL_EAGAIN; s <= PQPOOL_OK; s++) {
		assert_non_null(pqpool_strstatus(s));
		assert_string_not_equal(pqpool_strstatus(s), "unknown status");
	}
	assert_string_equal(pqpool_strstatus(-100), "unknown status");
	assert_string_equal(pqpool_strstatus(PQPOOL_ECLOSED), "pool closed");
	/* errors are thread-local values with a SQLSTATE when there is one */
	assert_int_equal(pqpool__fail_code(PQPOOL_EQUERY, "23505", "query: %s", "dup"),
	                 PQPOOL_EQUERY);
	assert_string_equal(pqpool_errmsg(), "query: dup");
	assert_string_equal(pqpool_errcode(), "23505");
	pqpool__ok();
	assert_string_equal(pqpool_errmsg(), "");
	assert_string_equal(pqpool_errcode(), "");
	pqpool__trim_msg("ERROR:  x\nDETAIL:  y\n\n", buf, sizeof buf);
	assert_string_equal(buf, "ERROR:  x DETAIL:  y");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_sqlstate_classes),
	        cmocka_unit_test(test_backoff_bounds),
	        cmocka_unit_test(test_health_thresholds),
	        cmocka_unit_test(test_event_wait),
	        cmocka_unit_test(test_query_window),
	        cmocka_unit_test(test_clock_and_texts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
