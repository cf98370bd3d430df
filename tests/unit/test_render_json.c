/* test_render_json.c — render_json.c: the specification's JSON bodies and the
 * pool's detail, exactly shaped, numbers and texts right; every allocation
 * failed in turn. */
#include "testenv.h"
#include "clock.h"

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
 * The renderer is compiled into this test with its allocator redirected
 * (see failalloc.h), so that each allocation it makes can be failed in turn. */
#include "failalloc.h"

#define malloc  fi_malloc
#define realloc fi_realloc
#define free    fi_free
#include "../../src/render_json.c"
#include "../../common/sbuf.c"
#include "../../common/utf8.c"
#undef malloc
#undef realloc
#undef free

#include "render_fixture.h"

/* A free of a rendering: through fi_free so the live count stays balanced. */
static void rfree(char *s)
{
	fi_free(s);
}

static void iso(int64_t ms, char out[PQC_ISO8601_LEN])
{
	pqc_iso8601(ms, out);
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
	static const char *const pk[] = {"max",           "min",        "closed",
	                                 "startedAt",     "counters",   "errorsByClass",
	                                 "window",        "waitTimeMs", "queryTimeMs",
	                                 "connectTimeMs", "pipeline"};
	assert_keys(p, pk, 11);
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
	static const char *const ck[] = {"idle",     "lifetime",  "broken",
	                                 "unclean",  "discarded", "pool_closed",
	                                 "read_only"};
	assert_keys(closed, ck, 7);
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

	json_t *pl = json_object_get(p, "pipeline");
	static const char *const plk[] = {"depth", "headOfLineWaitMs"};
	assert_keys(pl, plk, 2);
	json_t *dp = json_object_get(pl, "depth");
	assert_keys(dp, hk, 5);
	assert_int_at(dp, "count", 1000);
	assert_real_at(dp, "mean", (100 + 300 * 3 + 600 * 64) / 1000.0);
	assert_int_at(dp, "p50", 64); /* 400 below, the 500th is at depth 64 */
	assert_int_at(dp, "p99", 64);
	json_t *hl = json_object_get(pl, "headOfLineWaitMs");
	assert_keys(hl, hk, 5);
	assert_int_at(hl, "count", 400);
	assert_real_at(hl, "mean", 2);

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
	char before[PQC_ISO8601_LEN], after[PQC_ISO8601_LEN];
	iso(pqc_wall_ms(), before);
	char *s = pqpool_render_metrics_json(&st, 0);
	iso(pqc_wall_ms(), after);
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

/* With several hosts: data.hosts, each with its address, role, state,
 * connections, failures and (a standby's, when measured) lagMs. */
static void test_health_json_hosts(void **state)
{
	(void)state;
	pqpool_health h = {0};
	h.status = PQPOOL_DEGRADED;
	h.response_ms = 2;
	h.checked_at_ms = T0;
	strcpy(h.error, "host db2:5432 is banned");
	h.nhosts = 2;
	h.hosts[0] = (pqpool_host){
	        "db1:5432", PQPOOL_ROLE_PRIMARY, PQPOOL_HOST_UP, 4, 1, 3, 0, -1};
	h.hosts[1] = (pqpool_host){
	        "db2:5432", PQPOOL_ROLE_STANDBY, PQPOOL_HOST_BANNED, 0, 0, 0, 3, 12.5};
	char *s = pqpool_render_health_json(&h);
	json_t *j = parse(s);
	json_t *hosts = json_object_get(json_object_get(j, "data"), "hosts");
	static const char *const k0[] = {"address", "role", "state", "connections",
	                                 "failures"};
	static const char *const k1[] = {"address",     "role",     "state",
	                                 "connections", "failures", "lagMs"};
	assert_int_equal(json_array_size(hosts), 2);
	assert_keys(json_array_get(hosts, 0), k0, 5);
	assert_keys(json_array_get(hosts, 1), k1, 6);
	assert_str_at(json_array_get(hosts, 0), "role", "primary");
	assert_str_at(json_array_get(hosts, 0), "state", "up");
	assert_int_at(json_array_get(hosts, 0), "connections", 4);
	assert_str_at(json_array_get(hosts, 1), "address", "db2:5432");
	assert_str_at(json_array_get(hosts, 1), "role", "standby");
	assert_str_at(json_array_get(hosts, 1), "state", "banned");
	assert_int_at(json_array_get(hosts, 1), "failures", 3);
	assert_real_at(json_array_get(hosts, 1), "lagMs", 12.5);
	json_decref(j);
	rfree(s);
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

/* ---- allocation failures ---- */

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
	        cmocka_unit_test(test_metrics_json_shape),
	        cmocka_unit_test(test_metrics_json_status),
	        cmocka_unit_test(test_metrics_json_numbers),
	        cmocka_unit_test(test_metrics_json_now),
	        cmocka_unit_test(test_health_json),
	        cmocka_unit_test(test_health_json_hosts),
	        cmocka_unit_test(test_alloc_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
