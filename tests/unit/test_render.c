/* test_render.c — histograms, pool status, JSON and Prometheus output, parsed back. */
#include "testenv.h"
#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- fault injection ----
 * render.c is compiled into this test with its allocator calls redirected,
 * and jansson is given the same allocator, so that every allocation the
 * renderers make can be failed in turn. Live allocations are counted so a
 * leak fails the test even outside valgrind. */
#include "failalloc.h"

#define malloc  fi_malloc
#define realloc fi_realloc
#define free    fi_free
#include "../../src/render.c"
#undef malloc
#undef realloc
#undef free

/* cmocka 1.1.5 (Debian 12) has no assert_double_equal. */
#define assert_near(a, b, eps)                                                           \
	do {                                                                             \
		double a_ = (a), b_ = (b);                                               \
		if (!(fabs(a_ - b_) <= (eps)))                                           \
			fail_msg("%.17g != expected %.17g", a_, b_);                     \
	} while (0)

/* 2026-11-26T14:00:00.000Z, the DESIGN example */
#define T0 INT64_C(1795701600000)

/* A free of a rendering: through fi_free so the live count stays balanced. */
static void rfree(char *s)
{
	fi_free(s);
}

/* ------------------------------------------------------------------ */
/* Histograms                                                           */
/* ------------------------------------------------------------------ */

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

/* ------------------------------------------------------------------ */
/* Texts and pool status                                                */
/* ------------------------------------------------------------------ */

static void test_texts(void **state)
{
	(void)state;
	assert_string_equal(pqpool_health_text(PQPOOL_HEALTHY), "healthy");
	assert_string_equal(pqpool_health_text(PQPOOL_DEGRADED), "degraded");
	assert_string_equal(pqpool_health_text(PQPOOL_UNHEALTHY), "unhealthy");
	assert_string_equal(pqpool_health_text((pqpool_health_status)42), "unknown");
	static const char *const want[] = {"idle",    "lifetime",  "broken",
	                                   "unclean", "discarded", "pool_closed"};
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

/* ------------------------------------------------------------------ */
/* JSON                                                                 */
/* ------------------------------------------------------------------ */

static void iso(int64_t ms, char out[64])
{
	pqpool__iso8601(ms, out);
}

/* Asserts that obj has exactly these keys, in this order. */
static void assert_keys(const json_t *obj, const char *const *keys, size_t n)
{
	assert_true(json_is_object(obj));
	size_t i = 0;
	const char *key;
	json_t *val;
	json_object_foreach((json_t *)obj, key, val)
	{
		(void)val;
		if (i >= n)
			fail_msg("unexpected extra key \"%s\"", key);
		if (strcmp(key, keys[i]) != 0)
			fail_msg("key %zu is \"%s\", expected \"%s\"", i, key, keys[i]);
		i++;
	}
	if (i != n)
		fail_msg("%zu keys, expected %zu (missing \"%s\")", i, n, keys[i]);
}

static json_t *parse(const char *s)
{
	json_error_t err;
	assert_non_null(s);
	json_t *j = json_loads(s, JSON_REJECT_DUPLICATES, &err);
	if (j == NULL)
		fail_msg("invalid JSON (%s at %d): %s", err.text, err.position, s);
	return j;
}

static void assert_int_at(const json_t *obj, const char *key, json_int_t want)
{
	json_t *v = json_object_get(obj, key);
	if (!json_is_integer(v))
		fail_msg("\"%s\" is not an integer", key);
	if (json_integer_value(v) != want)
		fail_msg("\"%s\" is %lld, expected %lld", key,
		         (long long)json_integer_value(v), (long long)want);
}

static void assert_real_at(const json_t *obj, const char *key, double want)
{
	json_t *v = json_object_get(obj, key);
	if (!json_is_real(v))
		fail_msg("\"%s\" is not a real", key);
	if (fabs(json_real_value(v) - want) > 1e-9 * (1 + fabs(want)))
		fail_msg("\"%s\" is %.17g, expected %.17g", key, json_real_value(v),
		         want);
}

static void assert_str_at(const json_t *obj, const char *key, const char *want)
{
	json_t *v = json_object_get(obj, key);
	if (!json_is_string(v))
		fail_msg("\"%s\" is not a string", key);
	assert_string_equal(json_string_value(v), want);
}

/* The DESIGN §2 example, plus counters and histograms for the "pool" object. */
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
	st->started_ms = T0 - 3600000;
	st->last_activity_ms = T0 - 500;
}

static void test_metrics_json_shape(void **state)
{
	(void)state;
	pqpool_stats st;
	example_stats(&st);
	char *s = pqpool_render_metrics_json(&st, T0);
	assert_non_null(s);

	/* Byte-exact where DESIGN §2 shows the output: compact, keys in order,
	 * reals with a decimal point. */
	const char *prefix =
	        "{\"metrics\":{\"totalConnections\":5,\"activeConnections\":1,"
	        "\"idleConnections\":4,\"waitingConnections\":0,\"poolUtilization\":5.0,"
	        "\"averageResponseTime\":0.38,\"errorRate\":0.0,"
	        "\"lastActivity\":\"2026-11-26T13:59:59.500Z\"},"
	        "\"status\":{\"healthy\":true,\"utilization\":\"low\","
	        "\"recommendations\":[]},"
	        "\"timestamp\":\"2026-11-26T14:00:00.000Z\"}";
	/* exactly the specification's shape: the rest is on its own route */
	if (strcmp(s, prefix) != 0)
		fail_msg("unexpected body:\n%s\nexpected:\n%s", s, prefix);
	assert_null(strchr(s, '\n'));

	json_t *j = parse(s);
	static const char *const top[] = {"metrics", "status", "timestamp"};
	assert_keys(j, top, 3);
	json_t *m = json_object_get(j, "metrics");
	static const char *const mk[] = {"totalConnections", "activeConnections",
	                                 "idleConnections",  "waitingConnections",
	                                 "poolUtilization",  "averageResponseTime",
	                                 "errorRate",        "lastActivity"};
	assert_keys(m, mk, 8);
	assert_int_at(m, "totalConnections", 5);
	assert_int_at(m, "activeConnections", 1);
	assert_int_at(m, "idleConnections", 4);
	assert_int_at(m, "waitingConnections", 0);
	assert_real_at(m, "poolUtilization", 5.0);
	assert_real_at(m, "averageResponseTime", 0.38);
	assert_real_at(m, "errorRate", 0.0);
	assert_str_at(m, "lastActivity", "2026-11-26T13:59:59.500Z");

	json_t *s2 = json_object_get(j, "status");
	static const char *const sk[] = {"healthy", "utilization", "recommendations"};
	assert_keys(s2, sk, 3);
	assert_true(json_is_true(json_object_get(s2, "healthy")));
	assert_str_at(s2, "utilization", "low");
	assert_true(json_is_array(json_object_get(s2, "recommendations")));
	assert_int_equal(json_array_size(json_object_get(s2, "recommendations")), 0);
	assert_str_at(j, "timestamp", "2026-11-26T14:00:00.000Z");

	char *ps = pqpool_render_pool_json(&st, T0);
	assert_non_null(ps);
	json_t *pj = parse(ps);
	static const char *const ptop[] = {"pool", "timestamp"};
	assert_keys(pj, ptop, 2);
	assert_str_at(pj, "timestamp", "2026-11-26T14:00:00.000Z");
	json_t *p = json_object_get(pj, "pool");
	static const char *const pk[] = {
	        "max",           "min",    "closed",     "startedAt",   "counters",
	        "errorsByClass", "window", "waitTimeMs", "queryTimeMs", "connectTimeMs"};
	assert_keys(p, pk, 10);
	assert_int_at(p, "max", 20);
	assert_int_at(p, "min", 5);
	assert_true(json_is_false(json_object_get(p, "closed")));
	assert_str_at(p, "startedAt", "2026-11-26T13:00:00.000Z");

	json_t *c = json_object_get(p, "counters");
	assert_int_at(c, "acquires", 1000);
	assert_int_at(c, "acquireTimeouts", 2);
	assert_int_at(c, "acquireErrors", 1);
	assert_int_at(c, "opened", 7);
	assert_int_at(c, "connectFailures", 3);
	assert_int_at(c, "queries", 1300);
	assert_int_at(c, "queryErrors", 4);
	assert_int_at(c, "queryTimeouts", 1);
	assert_int_at(c, "rollbacks", 2);
	assert_int_at(c, "retries", 5);
	assert_int_at(c, "leaseWarnings", 1);
	json_t *closed = json_object_get(c, "closed");
	static const char *const ck[] = {"idle",    "lifetime",  "broken",
	                                 "unclean", "discarded", "pool_closed"};
	assert_keys(closed, ck, 6);
	assert_int_at(closed, "idle", 1);
	assert_int_at(closed, "broken", 1);
	assert_int_at(closed, "pool_closed", 0);

	json_t *ec = json_object_get(p, "errorsByClass");
	static const char *const ek[] = {"08", "23", "client"};
	assert_keys(ec, ek, 3);
	assert_int_at(ec, "08", 5);
	assert_int_at(ec, "23", 1);
	assert_int_at(ec, "client", 1);

	json_t *w = json_object_get(p, "window");
	assert_real_at(w, "seconds", 60);
	assert_int_at(w, "queries", 1234);

	json_t *q = json_object_get(p, "queryTimeMs");
	static const char *const hk[] = {"count", "mean", "p50", "p95", "p99"};
	assert_keys(q, hk, 5);
	assert_int_at(q, "count", 10000);
	assert_real_at(q, "mean", 50.005);
	assert_real_at(q, "p50", 50);
	assert_real_at(q, "p95", 95);
	assert_real_at(q, "p99", 99);
	json_t *wt = json_object_get(p, "waitTimeMs");
	assert_keys(wt, hk, 5);
	assert_int_at(wt, "count", 1000);
	assert_real_at(wt, "mean", 0.05);
	json_t *ct = json_object_get(p, "connectTimeMs");
	assert_int_at(ct, "count", 7);
	assert_real_at(ct, "p50", 2.5 + 2.5 * 0.5);

	json_decref(pj);
	rfree(ps);
	json_decref(j);
	rfree(s);
}

static void test_metrics_json_status(void **state)
{
	(void)state;
	static const struct {
		double u;
		int waiting;
		double err;
		const char *level;
		bool healthy;
		int nrec;
	} cases[] = {
	        {40, 0, 0, "low", true, 0},         {40.01, 0, 0, "medium", true, 0},
	        {60, 0, 4.99, "medium", true, 0},   {60.01, 0, 5.0, "high", false, 0},
	        {80, 1, 0, "high", true, 1},        {80.01, 0, 0, "critical", true, 1},
	        {100, 2, 50, "critical", false, 2},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		pqpool_stats st = {0};
		st.max = 10;
		st.utilization = cases[i].u;
		st.waiting = cases[i].waiting;
		st.error_rate = cases[i].err;
		st.started_ms = T0;
		char *s = pqpool_render_metrics_json(&st, T0);
		json_t *j = parse(s);
		json_t *m = json_object_get(j, "metrics");
		assert_real_at(m, "poolUtilization", cases[i].u);
		assert_real_at(m, "errorRate", cases[i].err);
		assert_int_at(m, "waitingConnections", cases[i].waiting);
		json_t *ps = json_object_get(j, "status");
		assert_str_at(ps, "utilization", cases[i].level);
		assert_true(json_is_boolean(json_object_get(ps, "healthy")));
		assert_int_equal(json_is_true(json_object_get(ps, "healthy")),
		                 cases[i].healthy);
		json_t *recs = json_object_get(ps, "recommendations");
		assert_int_equal(json_array_size(recs), cases[i].nrec);
		size_t k = 0;
		if (cases[i].waiting > 0)
			assert_string_equal(json_string_value(json_array_get(recs, k++)),
			                    "Consider increasing pool size");
		if (cases[i].u > 80)
			assert_string_equal(json_string_value(json_array_get(recs, k++)),
			                    "Pool utilization is critically high");
		json_decref(j);
		rfree(s);
	}
}

static void test_metrics_json_numbers(void **state)
{
	(void)state;
	pqpool_stats st = {0};
	st.max = 3;
	st.active = 1;
	st.utilization = 100.0 / 3;
	st.avg_response_ms = NAN;
	st.error_rate = INFINITY;
	st.window_s = -INFINITY;
	st.query.buckets[0] = 1;
	st.query.count = 1;
	st.query.sum_ms = NAN;
	st.acquires = UINT64_MAX; /* past json_int_t: clamped, not negative */
	st.started_ms = T0;
	char *s = pqpool_render_metrics_json(&st, T0);
	assert_non_null(s);
	/* six significant digits, no NaN or Infinity tokens */
	assert_non_null(strstr(s, "\"poolUtilization\":33.3333,"));
	assert_null(strstr(s, "nan"));
	assert_null(strstr(s, "inf"));
	json_t *j = parse(s);
	json_t *m = json_object_get(j, "metrics");
	assert_real_at(m, "averageResponseTime", 0);
	assert_real_at(m, "errorRate", 0);
	/* lastActivity falls back to the pool's start */
	assert_str_at(m, "lastActivity", "2026-11-26T14:00:00.000Z");
	char *ps = pqpool_render_pool_json(&st, T0);
	assert_non_null(ps);
	assert_null(strstr(ps, "nan"));
	assert_null(strstr(ps, "inf"));
	json_t *pj = parse(ps);
	json_t *p = json_object_get(pj, "pool");
	assert_real_at(json_object_get(p, "window"), "seconds", 0);
	assert_real_at(json_object_get(p, "queryTimeMs"), "mean", 0);
	assert_int_at(json_object_get(p, "counters"), "acquires", LLONG_MAX);
	json_decref(pj);
	rfree(ps);
	json_decref(j);
	rfree(s);
}

static void test_metrics_json_now(void **state)
{
	(void)state;
	pqpool_stats st = {0};
	char before[64], after[64];
	iso(pqpool__wall_ms(), before);
	char *s = pqpool_render_metrics_json(&st, 0);
	iso(pqpool__wall_ms(), after);
	json_t *j = parse(s);
	const char *ts = json_string_value(json_object_get(j, "timestamp"));
	assert_non_null(ts);
	/* ISO 8601 UTC strings of equal shape sort by time */
	assert_true(strcmp(before, ts) <= 0 && strcmp(ts, after) <= 0);
	/* no activity and no start time: lastActivity is now, not 1970 */
	assert_string_equal(json_string_value(json_object_get(
	                            json_object_get(j, "metrics"), "lastActivity")),
	                    ts);
	json_decref(j);
	rfree(s);
	assert_null(pqpool_render_metrics_json(NULL, T0));
}

static void test_health_json(void **state)
{
	(void)state;
	pqpool_health h = {0};
	h.status = PQPOOL_HEALTHY;
	h.response_ms = 0.41;
	h.connection_count = 5;
	h.checked_at_ms = T0;
	char *s = pqpool_render_health_json(&h);
	assert_string_equal(
	        s, "{\"status\":\"healthy\",\"data\":{\"responseTime\":0.41,"
	           "\"connectionCount\":5,\"lastCheck\":\"2026-11-26T14:00:00.000Z\"}}");
	json_t *j = parse(s);
	static const char *const top[] = {"status", "data"};
	static const char *const dk[] = {"responseTime", "connectionCount", "lastCheck"};
	static const char *const dke[] = {"responseTime", "connectionCount", "lastCheck",
	                                  "error"};
	assert_keys(j, top, 2);
	assert_keys(json_object_get(j, "data"), dk, 3);
	assert_real_at(json_object_get(j, "data"), "responseTime", 0.41);
	assert_int_at(json_object_get(j, "data"), "connectionCount", 5);
	json_decref(j);
	rfree(s);

	/* a whole number of ms is still a real */
	h.status = PQPOOL_DEGRADED;
	h.response_ms = 1200;
	strcpy(h.error, "slow: 1200 ms");
	s = pqpool_render_health_json(&h);
	j = parse(s);
	assert_str_at(j, "status", "degraded");
	assert_keys(json_object_get(j, "data"), dke, 4);
	assert_real_at(json_object_get(j, "data"), "responseTime", 1200);
	assert_str_at(json_object_get(j, "data"), "error", "slow: 1200 ms");
	json_decref(j);
	rfree(s);

	/* quotes, backslashes, control characters and non-ASCII survive a round trip */
	static const char tricky[] =
	        "could not connect: \"db\" \\ said\nFATAL:\tno\x01\x1f "
	        "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 </script>";
	h.status = PQPOOL_UNHEALTHY;
	h.response_ms = NAN;
	h.connection_count = 0;
	strcpy(h.error, tricky);
	s = pqpool_render_health_json(&h);
	assert_null(strchr(s, '\n'));
	j = parse(s);
	assert_str_at(j, "status", "unhealthy");
	assert_str_at(json_object_get(j, "data"), "error", tricky);
	assert_real_at(json_object_get(j, "data"), "responseTime", 0);
	json_decref(j);
	rfree(s);

	/* invalid UTF-8 (LATIN1 text, a sequence cut at the buffer's end) is
	 * replaced, not dropped and not emitted raw */
	strcpy(h.error, "caf\xe9 \xed\xa0\x80 ok");
	s = pqpool_render_health_json(&h);
	j = parse(s);
	assert_str_at(json_object_get(j, "data"), "error",
	              "caf\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd ok");
	json_decref(j);
	rfree(s);
	memset(h.error, 'a', sizeof h.error); /* full buffer, no NUL */
	h.error[sizeof h.error - 2] = '\xc3';
	h.error[sizeof h.error - 1] = '\xa9';
	s = pqpool_render_health_json(&h);
	j = parse(s);
	assert_int_equal(strlen(json_string_value(
	                         json_object_get(json_object_get(j, "data"), "error"))),
	                 sizeof h.error);
	json_decref(j);
	rfree(s);
	h.error[sizeof h.error - 1] = 'a'; /* now a cut sequence */
	s = pqpool_render_health_json(&h);
	j = parse(s);
	const char *e =
	        json_string_value(json_object_get(json_object_get(j, "data"), "error"));
	assert_int_equal(strlen(e), sizeof h.error - 2 + 3 + 1);
	assert_memory_equal(e + sizeof h.error - 2,
	                    "\xef\xbf\xbd"
	                    "a",
	                    4);
	json_decref(j);
	rfree(s);

	assert_null(pqpool_render_health_json(NULL));
}

/* ------------------------------------------------------------------ */
/* Prometheus                                                           */
/* ------------------------------------------------------------------ */

#define MAX_FAM 64

typedef struct prom_fam {
	char name[128];
	char type[16];
	bool typed;
	int samples;
	bool closed; /* a later family started: no more samples allowed */
	/* histograms */
	double last_le;
	double last_bucket;
	double inf_bucket;
	bool has_inf, has_sum, has_count;
	double count;
} prom_fam;

typedef struct prom_doc {
	prom_fam fam[MAX_FAM];
	int n;
} prom_doc;

static prom_fam *fam_find(prom_doc *d, const char *name)
{
	for (int i = 0; i < d->n; i++)
		if (strcmp(d->fam[i].name, name) == 0)
			return &d->fam[i];
	return NULL;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

static bool name_char(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
	       (!first && c >= '0' && c <= '9');
}

static double parse_value(const char *line, const char *p)
{
	char *end;
	errno = 0;
	double v = strtod(p, &end);
	if (end == p || *end != '\0' || errno != 0)
		fail_msg("bad sample value in: %s", line);
	if (!isfinite(v))
		fail_msg("non-finite sample value in: %s", line);
	return v;
}

/* Parses one label set at *pp ("{k=\"v\",...}"), checks the escapes, and
 * returns the value of label want (unescaped) in out, if present. */
static bool parse_labels(const char *line, const char **pp, const char *want, char *out,
                         size_t outlen)
{
	const char *p = *pp;
	bool found = false;
	if (*p != '{')
		return false;
	p++;
	while (*p != '}') {
		char key[64];
		size_t k = 0;
		if (!name_char(*p, true))
			fail_msg("bad label name in: %s", line);
		while (name_char(*p, false) && k < sizeof key - 1)
			key[k++] = *p++;
		key[k] = '\0';
		if (*p++ != '=' || *p++ != '"')
			fail_msg("bad label syntax in: %s", line);
		char val[256];
		size_t v = 0;
		while (*p != '"') {
			if (*p == '\0' || *p == '\n')
				fail_msg("unterminated label value in: %s", line);
			char c = *p++;
			if (c == '\\') {
				c = *p++;
				if (c == 'n')
					c = '\n';
				else if (c != '\\' && c != '"')
					fail_msg("bad escape in label value: %s", line);
			}
			if (v < sizeof val - 1)
				val[v++] = c;
		}
		val[v] = '\0';
		p++;
		if (strcmp(key, want) == 0) {
			found = true;
			size_t l = strlen(val) < outlen ? strlen(val) : outlen - 1;
			memcpy(out, val, l);
			out[l] = '\0';
		}
		if (*p == ',')
			p++;
		else if (*p != '}')
			fail_msg("bad label list in: %s", line);
	}
	*pp = p + 1;
	return found;
}

static void check_sample(prom_doc *d, const char *line, prom_fam **current)
{
	char name[128];
	size_t n = 0;
	const char *p = line;
	if (!name_char(*p, true))
		fail_msg("bad metric name in: %s", line);
	while (name_char(*p, false) && n < sizeof name - 1)
		name[n++] = *p++;
	name[n] = '\0';

	/* the family: the name itself, or a histogram's stem */
	prom_fam *f = fam_find(d, name);
	const char *suffix = NULL;
	if (f == NULL || strcmp(f->type, "histogram") == 0) {
		static const char *const sfx[] = {"_bucket", "_sum", "_count"};
		for (int i = 0; i < 3 && f == NULL; i++) {
			if (!ends_with(name, sfx[i]))
				continue;
			char stem[128];
			snprintf(stem, sizeof stem, "%.*s", (int)(n - strlen(sfx[i])),
			         name);
			prom_fam *g = fam_find(d, stem);
			if (g && strcmp(g->type, "histogram") == 0) {
				f = g;
				suffix = sfx[i];
			}
		}
		if (f && strcmp(f->type, "histogram") == 0 && suffix == NULL)
			fail_msg("histogram sample without a suffix: %s", line);
	}
	if (f == NULL)
		fail_msg("sample of a family without HELP/TYPE: %s", line);
	if (!f->typed)
		fail_msg("sample before its TYPE line: %s", line);
	if (f->closed)
		fail_msg("family %s appears twice: %s", f->name, line);
	if (*current && *current != f)
		(*current)->closed = true;
	*current = f;
	f->samples++;

	char le[64] = "";
	bool has_le = parse_labels(line, &p, "le", le, sizeof le);
	if (*p++ != ' ')
		fail_msg("expected one space before the value: %s", line);
	double v = parse_value(line, p);

	if (strcmp(f->type, "counter") == 0) {
		if (!ends_with(f->name, "_total"))
			fail_msg("counter %s does not end in _total", f->name);
		if (v < 0 || v != floor(v))
			fail_msg("counter value not a whole number: %s", line);
	} else if (strcmp(f->type, "histogram") == 0) {
		if (strcmp(suffix, "_bucket") == 0) {
			if (!has_le)
				fail_msg("bucket without le: %s", line);
			if (f->has_inf)
				fail_msg("bucket after +Inf: %s", line);
			double lev =
			        strcmp(le, "+Inf") == 0 ? INFINITY : strtod(le, NULL);
			if (f->samples > 1 && !(lev > f->last_le))
				fail_msg("le not increasing: %s", line);
			if (f->samples > 1 && v < f->last_bucket)
				fail_msg("buckets not cumulative: %s", line);
			f->last_le = lev;
			f->last_bucket = v;
			if (isinf(lev)) {
				f->has_inf = true;
				f->inf_bucket = v;
			}
		} else if (strcmp(suffix, "_sum") == 0) {
			if (!f->has_inf)
				fail_msg("_sum before the +Inf bucket: %s", line);
			if (v < 0)
				fail_msg("negative _sum: %s", line);
			f->has_sum = true;
		} else {
			if (!f->has_inf)
				fail_msg("_count before the +Inf bucket: %s", line);
			f->has_count = true;
			f->count = v;
			if (v != f->inf_bucket)
				fail_msg("%s: _count %g != +Inf bucket %g", f->name, v,
				         f->inf_bucket);
		}
	} else if (ends_with(f->name, "_total")) {
		fail_msg("non-counter %s ends in _total", f->name);
	}
}

/* Structural checks of a whole exposition; fills d. */
static void check_exposition(const char *text, prom_doc *d)
{
	memset(d, 0, sizeof *d);
	assert_true(strlen(text) > 0 && text[strlen(text) - 1] == '\n');
	prom_fam *current = NULL;
	const char *p = text;
	while (*p) {
		const char *nl = strchr(p, '\n');
		assert_non_null(nl);
		char line[1024];
		assert_true((size_t)(nl - p) < sizeof line);
		memcpy(line, p, (size_t)(nl - p));
		line[nl - p] = '\0';
		p = nl + 1;

		char name[128], rest[512];
		if (strncmp(line, "# HELP ", 7) == 0) {
			if (sscanf(line + 7, "%127s %511[^\n]", name, rest) != 2)
				fail_msg("HELP without text: %s", line);
			if (fam_find(d, name))
				fail_msg("second HELP for %s", name);
			assert_true(d->n < MAX_FAM);
			if (current)
				current->closed = true;
			current = &d->fam[d->n++];
			snprintf(current->name, sizeof current->name, "%s", name);
		} else if (strncmp(line, "# TYPE ", 7) == 0) {
			if (sscanf(line + 7, "%127s %511s", name, rest) != 2)
				fail_msg("bad TYPE: %s", line);
			prom_fam *f = fam_find(d, name);
			if (f == NULL || f != current || f->samples > 0)
				fail_msg("TYPE of %s not right after its HELP", name);
			if (f->typed)
				fail_msg("second TYPE for %s", name);
			if (strcmp(rest, "gauge") && strcmp(rest, "counter") &&
			    strcmp(rest, "histogram"))
				fail_msg("unexpected type %s", rest);
			snprintf(f->type, sizeof f->type, "%.15s", rest);
			f->typed = true;
		} else if (line[0] == '#' || line[0] == '\0') {
			fail_msg("unexpected line: \"%s\"", line);
		} else {
			check_sample(d, line, &current);
		}
	}
	for (int i = 0; i < d->n; i++) {
		prom_fam *f = &d->fam[i];
		if (!f->typed || f->samples == 0)
			fail_msg("family %s has no TYPE or no samples", f->name);
		if (strcmp(f->type, "histogram") == 0 &&
		    !(f->has_inf && f->has_sum && f->has_count))
			fail_msg("histogram %s incomplete", f->name);
	}
}

/* The value of the sample line that starts with prefix (name and labels). */
static double sample_value(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, prefix, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	fail_msg("no sample %s", prefix);
	return -1;
}

static bool has_line_prefix(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, prefix, n) == 0)
			return true;
	return false;
}

static void test_prometheus_structure(void **state)
{
	(void)state;
	pqpool_stats st;
	example_stats(&st);
	st.utilization = 25;
	st.error_rate = 1.5;
	st.avg_response_ms = 2.5;
	char *s = pqpool_render_prometheus(&st);
	prom_doc d;
	check_exposition(s, &d);

	static const struct {
		const char *name, *type;
	} want[] = {
	        {PROM_CONN_COUNT, "gauge"},
	        {"db_client_connection_max", "gauge"},
	        {"db_client_connection_idle_min", "gauge"},
	        {"db_client_connection_pending_requests", "gauge"},
	        {"db_client_connection_utilization_ratio", "gauge"},
	        {"db_client_connection_recent_error_ratio", "gauge"},
	        {"db_client_connection_recent_response_time_seconds", "gauge"},
	        {"db_client_connection_acquires_total", "counter"},
	        {"db_client_connection_timeouts_total", "counter"},
	        {"db_client_connection_opened_total", "counter"},
	        {"db_client_connection_connect_failures_total", "counter"},
	        {"db_client_connection_closed_total", "counter"},
	        {"db_client_connection_queries_total", "counter"},
	        {"db_client_connection_query_errors_total", "counter"},
	        {"db_client_connection_query_timeouts_total", "counter"},
	        {"db_client_connection_rollbacks_total", "counter"},
	        {"db_client_connection_retries_total", "counter"},
	        {"db_client_connection_lease_warnings_total", "counter"},
	        {"db_client_connection_errors_total", "counter"},
	        {"db_client_connection_wait_time_seconds", "histogram"},
	        {"db_client_operation_duration_seconds", "histogram"},
	        {"db_client_connection_create_time_seconds", "histogram"},
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		prom_fam *f = fam_find(&d, want[i].name);
		if (f == NULL)
			fail_msg("family %s missing", want[i].name);
		assert_string_equal(f->type, want[i].type);
	}

	assert_true(sample_value(s, PROM_CONN_COUNT "{state=\"idle\"}") == 4);
	assert_true(sample_value(s, PROM_CONN_COUNT "{state=\"used\"}") == 1);
	assert_true(sample_value(s, "db_client_connection_max") == 20);
	assert_true(sample_value(s, "db_client_connection_idle_min") == 5);
	assert_true(sample_value(s, "db_client_connection_pending_requests") == 0);
	assert_true(sample_value(s, "db_client_connection_utilization_ratio") == 0.25);
	assert_true(sample_value(s, "db_client_connection_recent_error_ratio") == 0.015);
	assert_true(
	        sample_value(s, "db_client_connection_recent_response_time_seconds") ==
	        0.0025);
	assert_true(sample_value(s, "db_client_connection_acquires_total") == 1000);
	assert_true(sample_value(s, "db_client_connection_timeouts_total") == 2);
	for (int r = 0; r < PQPOOL_CLOSE_REASONS; r++) {
		char pfx[128];
		snprintf(pfx, sizeof pfx,
		         "db_client_connection_closed_total{reason=\"%s\"}",
		         pqpool_close_reason_text((pqpool_close_reason)r));
		assert_true(sample_value(s, pfx) == (double)st.closed_by[r]);
	}
	assert_true(sample_value(s, "db_client_connection_errors_total{class=\"08\"}") ==
	            5);
	assert_true(sample_value(s, "db_client_connection_errors_total{class=\"23\"}") ==
	            1);
	assert_true(
	        sample_value(s, "db_client_connection_errors_total{class=\"client\"}") ==
	        1);
	assert_int_equal(fam_find(&d, "db_client_connection_errors_total")->samples, 3);

	/* le in seconds from the ms bounds, cumulative, _count == +Inf */
	const char *h = "db_client_operation_duration_seconds";
	char pfx[160];
	snprintf(pfx, sizeof pfx, "%s_bucket{le=\"0.0001\"}", h);
	assert_true(sample_value(s, pfx) == 10);
	snprintf(pfx, sizeof pfx, "%s_bucket{le=\"0.00025\"}", h);
	assert_true(sample_value(s, pfx) == 25);
	snprintf(pfx, sizeof pfx, "%s_bucket{le=\"0.05\"}", h);
	assert_true(sample_value(s, pfx) == 5000);
	snprintf(pfx, sizeof pfx, "%s_bucket{le=\"5\"}", h);
	assert_true(sample_value(s, pfx) == 10000);
	snprintf(pfx, sizeof pfx, "%s_bucket{le=\"+Inf\"}", h);
	assert_true(sample_value(s, pfx) == 10000);
	snprintf(pfx, sizeof pfx, "%s_count", h);
	assert_true(sample_value(s, pfx) == 10000);
	snprintf(pfx, sizeof pfx, "%s_sum", h);
	assert_near(sample_value(s, pfx), 500.05, 1e-9);
	assert_int_equal(fam_find(&d, h)->samples, PQPOOL_HIST_BUCKETS + 2);
	assert_true(sample_value(s, "db_client_connection_create_time_seconds_count") ==
	            7);
	rfree(s);
}

static void test_prometheus_edge_values(void **state)
{
	(void)state;
	pqpool_stats st = {0};
	st.utilization = NAN;
	st.error_rate = INFINITY;
	st.avg_response_ms = -INFINITY;
	st.wait.sum_ms = NAN;
	st.idle = -1; /* a nonsense count is not printed as a huge unsigned */
	/* class names that need escaping, or are not text at all */
	strcpy(st.error_class[0], "a\"b\\c");
	st.errors_by_class[0] = 1;
	strcpy(st.error_class[1], "x\ny");
	st.errors_by_class[1] = 2;
	/* counts disagreeing with the buckets, as a racy snapshot might */
	st.query.count = 5;
	st.query.buckets[3] = 4;
	st.queries = UINT64_MAX;
	char *s = pqpool_render_prometheus(&st);
	prom_doc d;
	check_exposition(s, &d);
	assert_null(strstr(s, "NaN"));
	assert_null(strstr(s, "Inf "));
	assert_true(sample_value(s, "db_client_connection_utilization_ratio") == 0);
	assert_true(sample_value(s, "db_client_connection_recent_error_ratio") == 0);
	assert_true(sample_value(s, PROM_CONN_COUNT "{state=\"idle\"}") == 0);
	assert_true(has_line_prefix(
	        s, "db_client_connection_errors_total{class=\"a\\\"b\\\\c\"} 1\n"));
	assert_true(has_line_prefix(
	        s, "db_client_connection_errors_total{class=\"x?y\"} 2\n"));
	assert_true(has_line_prefix(
	        s, "db_client_connection_queries_total 18446744073709551615\n"));
	assert_true(sample_value(s, "db_client_operation_duration_seconds_count") == 4);
	rfree(s);

	/* no error class yet: no errors_total family at all, rather than a
	 * family without samples */
	memset(&st, 0, sizeof st);
	s = pqpool_render_prometheus(&st);
	check_exposition(s, &d);
	assert_null(fam_find(&d, "db_client_connection_errors_total"));
	assert_non_null(fam_find(&d, "db_client_connection_closed_total"));
	assert_int_equal(fam_find(&d, "db_client_connection_closed_total")->samples,
	                 PQPOOL_CLOSE_REASONS);
	rfree(s);
}

/* The escaping helpers on inputs the renderers never produce today. */
static void test_prometheus_escaping(void **state)
{
	(void)state;
	sbuf b = {0};
	prom_label(&b, "k", "a\\b\"c\nd");
	prom_help(&b, "m", "gauge", "line\\one\nline two");
	char *s = sbuf_finish(&b);
	assert_string_equal(s, "{k=\"a\\\\b\\\"c\\nd\"}"
	                       "# HELP m line\\\\one\\nline two\n# TYPE m gauge\n");
	rfree(s);
}

/* Runs promtool check metrics on text; returns its exit status and its
 * output (owned) in *out. */
static int run_promtool(const char *text, char **out)
{
	char path[] = "/tmp/test_render_promXXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	size_t len = strlen(text);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);

	char cmd[256];
	snprintf(cmd, sizeof cmd, "promtool check metrics < %s 2>&1", path);
	FILE *pf = popen(cmd, "r");
	assert_non_null(pf);
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	assert_non_null(buf);
	size_t got;
	while ((got = fread(buf + n, 1, cap - n - 1, pf)) > 0) {
		n += got;
		if (cap - n - 1 == 0) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
	}
	buf[n] = '\0';
	int rc = pclose(pf);
	unlink(path);
	*out = buf;
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void require_promtool(void)
{
	if (system("command -v promtool >/dev/null 2>&1") != 0)
		fail_msg("promtool not found in PATH: install the Debian package "
		         "\"prometheus\" (scripts/deps.sh does)");
}

static void check_with_promtool(const pqpool_stats *st)
{
	char *s = pqpool_render_prometheus(st);
	char *out;
	int rc;
	assert_non_null(s);
	/* the whole exposition passes the linter with nothing to say */
	rc = run_promtool(s, &out);
	if (rc != 0 || out[0] != '\0')
		fail_msg("promtool exit %d, output:\n%s\n--- input:\n%s", rc, out, s);
	free(out);
	rfree(s);
}

static void test_prometheus_promtool(void **state)
{
	(void)state;
	require_promtool();

	/* promtool itself must be able to fail, or this test proves nothing */
	char *out;
	int rc = run_promtool(
	        "# HELP x_total X.\n# TYPE x_total gauge\nx_total{a=\"b} 1\n", &out);
	assert_int_not_equal(rc, 0);
	free(out);

	pqpool_stats st;
	example_stats(&st);
	check_with_promtool(&st);
	memset(&st, 0, sizeof st);
	check_with_promtool(&st);
	strcpy(st.error_class[0], "a\"b\\c");
	st.errors_by_class[0] = 1;
	st.utilization = NAN;
	check_with_promtool(&st);
}

/* ------------------------------------------------------------------ */
/* Allocation failures                                                  */
/* ------------------------------------------------------------------ */

typedef char *(*render_fn)(const void *arg);

static char *r_metrics(const void *arg)
{
	return pqpool_render_metrics_json(arg, T0);
}

static char *r_pool(const void *arg)
{
	return pqpool_render_pool_json(arg, T0);
}

static char *r_health(const void *arg)
{
	return pqpool_render_health_json(arg);
}

static char *r_prom(const void *arg)
{
	return pqpool_render_prometheus(arg);
}

/* Fails each allocation in turn: the renderer returns NULL or the same
 * text as without failures, and frees everything it took either way. */
static void fault_loop(render_fn fn, const void *arg)
{
	json_set_alloc_funcs(fi_malloc, fi_free);
	fi_fail_at = -1;
	fi_count = 0;
	fi_live = 0;
	char *ref = fn(arg);
	assert_non_null(ref);
	long total = fi_count;
	assert_true(total > 0);
	int nulls = 0;
	for (long k = 0; k < total; k++) {
		fi_fail_at = k;
		fi_count = 0;
		fi_hit = false;
		char *s = fn(arg);
		assert_true(fi_hit);
		if (s == NULL)
			nulls++;
		else {
			assert_string_equal(s, ref);
			rfree(s);
		}
		if (fi_live != 1) /* only ref is still out */
			fail_msg("allocation %ld of %ld failed: %ld blocks leaked", k,
			         total, fi_live - 1);
	}
	assert_true(nulls > 0);
	fi_fail_at = -1;
	rfree(ref);
	assert_int_equal(fi_live, 0);
	json_set_alloc_funcs(malloc, free);
}

static void test_alloc_failures(void **state)
{
	(void)state;
	pqpool_stats st;
	example_stats(&st);
	st.waiting = 2;
	st.utilization = 90;
	fault_loop(r_metrics, &st);
	fault_loop(r_pool, &st);
	fault_loop(r_prom, &st);

	pqpool_health h = {0};
	h.checked_at_ms = T0;
	fault_loop(r_health, &h);
	strcpy(h.error, "with an error \"quoted\"");
	fault_loop(r_health, &h);
	strcpy(h.error, "not UTF-8: \xff\xfe");
	fault_loop(r_health, &h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_hist_bounds),
	        cmocka_unit_test(test_hist_bucket_boundaries),
	        cmocka_unit_test(test_hist_add),
	        cmocka_unit_test(test_hist_quantile),
	        cmocka_unit_test(test_texts),
	        cmocka_unit_test(test_pool_status),
	        cmocka_unit_test(test_metrics_json_shape),
	        cmocka_unit_test(test_metrics_json_status),
	        cmocka_unit_test(test_metrics_json_numbers),
	        cmocka_unit_test(test_metrics_json_now),
	        cmocka_unit_test(test_health_json),
	        cmocka_unit_test(test_prometheus_structure),
	        cmocka_unit_test(test_prometheus_edge_values),
	        cmocka_unit_test(test_prometheus_escaping),
	        cmocka_unit_test(test_prometheus_promtool),
	        cmocka_unit_test(test_alloc_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
