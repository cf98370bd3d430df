/* test_retry.c — retry.c's pure policy: which SQLSTATEs are retried, and the
 * bounds of the backoff. */
#include "testenv.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_sqlstate_classes),
	        cmocka_unit_test(test_backoff_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
