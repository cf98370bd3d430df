/* test_hist.c — hist.c: bucket bounds and boundaries, sums, quantiles. */
#include "testenv.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* white-box: the ns table of the hot path */
#include "../../src/hist.c"

/* cmocka 1.1.5 (Debian 12) has no assert_double_equal. */
#define assert_near(a, b, eps)                                                           \
	do {                                                                             \
		double a_ = (a), b_ = (b);                                               \
		if (!(fabs(a_ - b_) <= (eps)))                                           \
			fail_msg("%.17g != expected %.17g", a_, b_);                     \
	} while (0)

/* 2026-11-26T14:00:00.000Z, the DESIGN example */
#define T0 INT64_C(1795701600000)

static void test_hist_bounds(void **state)
{
	(void)state;
	static const double want[PQPOOL_HIST_BUCKETS - 1] = {
	        0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000};
	const double *b = pqpool_hist_bounds_ms();
	assert_non_null(b);
	for (int i = 0; i < PQPOOL_HIST_BUCKETS - 1; i++) {
		assert_true(b[i] == want[i]);
		/* the ns table used on the hot path says the same thing */
		assert_int_equal(hist_bounds_ns[i], llround(b[i] * 1e6));
	}
	assert_true(isinf(b[PQPOOL_HIST_BUCKETS - 1]) && b[PQPOOL_HIST_BUCKETS - 1] > 0);
}

static void test_hist_bucket_boundaries(void **state)
{
	(void)state;
	const double *b = pqpool_hist_bounds_ms();
	for (int i = 0; i < PQPOOL_HIST_BUCKETS - 1; i++) {
		int64_t ns = llround(b[i] * 1e6);
		/* exactly on a bound belongs to that bucket ("le") */
		assert_int_equal(pqpool__hist_bucket(ns), i);
		assert_int_equal(pqpool__hist_bucket(ns - 1), i);
		assert_int_equal(pqpool__hist_bucket(ns + 1), i + 1);
	}
	assert_int_equal(pqpool__hist_bucket(0), 0);
	assert_int_equal(pqpool__hist_bucket(1), 0);
	assert_int_equal(pqpool__hist_bucket(-1000), 0);
	assert_int_equal(pqpool__hist_bucket(INT64_C(5000000000)), 14);
	assert_int_equal(pqpool__hist_bucket(INT64_C(5000000001)), 15);
	assert_int_equal(pqpool__hist_bucket(INT64_MAX), 15);
}

static void test_hist_add(void **state)
{
	(void)state;
	pqpool_hist h = {0};
	for (int i = 0; i < 100; i++)
		pqpool__hist_add(&h, 1500000); /* 1.5 ms */
	pqpool__hist_add(&h, 100000);          /* 0.1 ms, on the first bound */
	pqpool__hist_add(&h, -5);              /* clock step: counted as 0 */
	assert_int_equal(h.count, 102);
	assert_near(h.sum_ms, 150.1, 1e-9);
	assert_int_equal(h.buckets[4], 100);
	assert_int_equal(h.buckets[0], 2);
	uint64_t total = 0;
	for (int i = 0; i < PQPOOL_HIST_BUCKETS; i++)
		total += h.buckets[i];
	assert_int_equal(total, h.count);
}

static void test_hist_quantile(void **state)
{
	(void)state;
	pqpool_hist h = {0};
	/* empty */
	assert_true(pqpool_hist_quantile(&h, 0.5) == 0);
	assert_true(pqpool_hist_quantile(NULL, 0.5) == 0);

	/* all in (1, 2.5]: linear inside the bucket */
	for (int i = 0; i < 100; i++)
		pqpool__hist_add(&h, 1500000);
	assert_near(pqpool_hist_quantile(&h, 0.5), 1.75, 1e-9);
	assert_near(pqpool_hist_quantile(&h, 0.99), 2.485, 1e-9);
	assert_near(pqpool_hist_quantile(&h, 0.01), 1.015, 1e-9);
	/* q outside (0, 1) */
	assert_true(pqpool_hist_quantile(&h, 0) == 0);
	assert_true(pqpool_hist_quantile(&h, 1) == 0);
	assert_true(pqpool_hist_quantile(&h, -0.5) == 0);
	assert_true(pqpool_hist_quantile(&h, 1.5) == 0);
	assert_true(pqpool_hist_quantile(&h, NAN) == 0);

	/* half in the first bucket (lower bound 0), half in (0.5, 1] */
	memset(&h, 0, sizeof h);
	for (int i = 0; i < 50; i++) {
		pqpool__hist_add(&h, 50000);
		pqpool__hist_add(&h, 700000);
	}
	assert_near(pqpool_hist_quantile(&h, 0.25), 0.05, 1e-9);
	assert_near(pqpool_hist_quantile(&h, 0.5), 0.1, 1e-9);
	assert_near(pqpool_hist_quantile(&h, 0.95), 0.95, 1e-9);

	/* uniform over (0, 100] ms: interpolation is exact */
	memset(&h, 0, sizeof h);
	for (int i = 1; i <= 10000; i++)
		pqpool__hist_add(&h, (int64_t)i * 10000);
	assert_near(pqpool_hist_quantile(&h, 0.5), 50, 1e-9);
	assert_near(pqpool_hist_quantile(&h, 0.95), 95, 1e-9);
	assert_near(pqpool_hist_quantile(&h, 0.99), 99, 1e-9);

	/* the +Inf bucket reports its lower bound */
	memset(&h, 0, sizeof h);
	for (int i = 0; i < 90; i++)
		pqpool__hist_add(&h, 300000);
	for (int i = 0; i < 10; i++)
		pqpool__hist_add(&h, INT64_C(10000000000));
	assert_near(pqpool_hist_quantile(&h, 0.9), 0.5, 1e-9);
	assert_near(pqpool_hist_quantile(&h, 0.99), 5000, 1e-9);
	memset(&h, 0, sizeof h);
	pqpool__hist_add(&h, INT64_C(60000000000));
	assert_near(pqpool_hist_quantile(&h, 0.5), 5000, 1e-9);
}

/* Depths: powers of two, each bound in its own bucket, the rest +Inf. */
static void test_depth(void **state)
{
	(void)state;
	const int *b = pqpool_depth_bounds();
	assert_int_equal(b[0], 1);
	assert_int_equal(b[PQPOOL_DEPTH_BUCKETS - 2], 256);
	assert_int_equal(pqpool__depth_bucket(0), 0);
	assert_int_equal(pqpool__depth_bucket(1), 0);
	assert_int_equal(pqpool__depth_bucket(2), 1);
	assert_int_equal(pqpool__depth_bucket(3), 2);
	assert_int_equal(pqpool__depth_bucket(4), 2);
	assert_int_equal(pqpool__depth_bucket(256), PQPOOL_DEPTH_BUCKETS - 2);
	assert_int_equal(pqpool__depth_bucket(257), PQPOOL_DEPTH_BUCKETS - 1);

	pqpool_depth_hist h;
	memset(&h, 0, sizeof h);
	assert_int_equal(pqpool_depth_quantile(&h, 0.5), 0);
	assert_int_equal(pqpool_depth_quantile(NULL, 0.5), 0);
	h.buckets[0] = 10; /* depth 1 */
	h.buckets[3] = 90; /* depth 5..8 */
	assert_int_equal(pqpool_depth_quantile(&h, 0.05), 1);
	assert_int_equal(pqpool_depth_quantile(&h, 0.10), 1);
	assert_int_equal(pqpool_depth_quantile(&h, 0.5), 8);
	assert_int_equal(pqpool_depth_quantile(&h, 1.0), 0); /* out of range */
	h.buckets[PQPOOL_DEPTH_BUCKETS - 1] = 1000;          /* beyond 256 */
	assert_int_equal(pqpool_depth_quantile(&h, 0.99), 256);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_hist_bounds),
	        cmocka_unit_test(test_hist_bucket_boundaries),
	        cmocka_unit_test(test_hist_add),
	        cmocka_unit_test(test_hist_quantile),
	        cmocka_unit_test(test_depth),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
