/* render_json.c — the specification's JSON bodies (metrics, health) and the
 * pool's own detail, from a snapshot; pure: no pool access. */
#include "pqpool.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "sbuf.h"
#include "stats.h"
#include "utf8.h"

/* NaN and infinities are not JSON and mean nothing on a dashboard: a
 * snapshot taken before any traffic may divide by zero. */
static double finite_or_zero(double v)
{
	return isfinite(v) ? v : 0.0;
}

#if JSON_INTEGER_IS_LONG_LONG
#define JSON_INT_MAX LLONG_MAX
#else
#define JSON_INT_MAX LONG_MAX
#endif

/* A counter past what json_int_t holds is clamped rather than wrapped negative. */
static json_int_t clamp_u64(uint64_t v)
{
	return v > (uint64_t)JSON_INT_MAX ? (json_int_t)JSON_INT_MAX : (json_int_t)v;
}

/* A JSON string from text that may not be valid UTF-8 (server messages in a
 * LATIN1 client encoding, a message cut at a fixed length): jansson rejects
 * such text, so each bad byte becomes U+FFFD. NULL only on allocation failure. */
static json_t *json_text(const char *s, size_t len)
{
	json_t *j = json_stringn(s, len);
	pqc_sbuf b = PQC_SBUF_INIT;
	char *clean;
	size_t n;
	if (j != NULL)
		return j;
	pqc_utf8_clean(&b, s, len);
	n = b.len;
	if (!(clean = pqc_sbuf_finish(&b)))
		return NULL;
	j = json_stringn(clean, n);
	free(clean);
	return j;
}

static json_t *json_iso8601(int64_t ms)
{
	char buf[PQC_ISO8601_LEN];
	return json_string(pqc_iso8601(ms, buf));
}

static int dump_cb(const char *buffer, size_t size, void *data)
{
	pqc_sbuf *b = data;
	pqc_sbuf_putn(b, buffer, size);
	return b->failed ? -1 : 0;
}

/* Serialises into our own malloc'd buffer, so the caller's free() is right
 * even when the host gave jansson its own allocator. Consumes root. */
static char *dump_json(json_t *root)
{
	pqc_sbuf b = PQC_SBUF_INIT;
	if (root == NULL)
		return NULL;
	int rc = json_dump_callback(root, dump_cb, &b,
	                            JSON_COMPACT | JSON_PRESERVE_ORDER |
	                                    JSON_REAL_PRECISION(6));
	json_decref(root);
	if (rc != 0)
		b.failed = true;
	return pqc_sbuf_finish(&b);
}

/* Each setter consumes its value even on failure, so a NULL from an
 * exhausted allocator only clears *ok and nothing leaks. */
static void put(json_t *obj, const char *key, json_t *val, bool *ok)
{
	if (obj == NULL) {
		json_decref(val);
		*ok = false;
		return;
	}
	if (json_object_set_new(obj, key, val) != 0)
		*ok = false;
}

static void put_real(json_t *obj, const char *key, double v, bool *ok)
{
	put(obj, key, json_real(finite_or_zero(v)), ok);
}

static json_t *hist_json(const pqpool_hist *h, bool *ok)
{
	json_t *o = json_object();
	uint64_t total = 0;
	for (int i = 0; i < PQPOOL_HIST_BUCKETS; i++)
		total += h->buckets[i];
	put(o, "count", json_integer(clamp_u64(total)), ok);
	put_real(o, "mean", total ? h->sum_ms / (double)total : 0, ok);
	put_real(o, "p50", pqpool_hist_quantile(h, 0.50), ok);
	put_real(o, "p95", pqpool_hist_quantile(h, 0.95), ok);
	put_real(o, "p99", pqpool_hist_quantile(h, 0.99), ok);
	return o;
}

static json_t *depth_json(const pqpool_depth_hist *h, bool *ok)
{
	json_t *o = json_object();
	uint64_t total = 0;
	for (int i = 0; i < PQPOOL_DEPTH_BUCKETS; i++)
		total += h->buckets[i];
	put(o, "count", json_integer(clamp_u64(total)), ok);
	put_real(o, "mean", total ? (double)h->sum / (double)total : 0, ok);
	put(o, "p50", json_integer(pqpool_depth_quantile(h, 0.50)), ok);
	put(o, "p95", json_integer(pqpool_depth_quantile(h, 0.95)), ok);
	put(o, "p99", json_integer(pqpool_depth_quantile(h, 0.99)), ok);
	return o;
}

/* Everything beyond the specification's keys, kept apart so that the
 * specification's objects stay exactly as written. */
/* With several hosts: [{address, role, state, connections, failures,
 * lagMs (a standby's, when measured)}]. */
static json_t *hosts_json(const pqpool_host *hs, int n, bool *ok)
{
	json_t *a = json_array();
	if (n > PQPOOL_MAX_HOSTS)
		n = PQPOOL_MAX_HOSTS;
	for (int i = 0; i < n; i++) {
		const pqpool_host *h = &hs[i];
		json_t *o = json_object();
		put(o, "address",
		    json_text(h->address, strnlen(h->address, sizeof h->address)), ok);
		put(o, "role", json_string(pqpool_role_text(h->role)), ok);
		put(o, "state", json_string(pqpool_host_state_text(h->state)), ok);
		put(o, "connections", json_integer(h->connections), ok);
		put(o, "failures", json_integer(h->failures), ok);
		if (h->lag_ms >= 0)
			put_real(o, "lagMs", h->lag_ms, ok);
		if (!a || json_array_append_new(a, o) != 0)
			*ok = false;
	}
	return a;
}

static json_t *pool_json(const pqpool_stats *st, bool *ok)
{
	json_t *pool = json_object();
	put(pool, "max", json_integer(st->max), ok);
	put(pool, "min", json_integer(st->min), ok);
	put(pool, "closed", json_boolean(st->closed), ok);
	/* null rather than 1970 for a snapshot that never had a start time */
	put(pool, "startedAt",
	    st->started_ms ? json_iso8601(st->started_ms) : json_null(), ok);

	json_t *c = json_object();
	put(c, "acquires", json_integer(clamp_u64(st->acquires)), ok);
	put(c, "acquireTimeouts", json_integer(clamp_u64(st->acquire_timeouts)), ok);
	put(c, "acquireErrors", json_integer(clamp_u64(st->acquire_errors)), ok);
	put(c, "opened", json_integer(clamp_u64(st->opened)), ok);
	put(c, "connectFailures", json_integer(clamp_u64(st->connect_failures)), ok);
	json_t *closed = json_object();
	for (int r = 0; r < PQPOOL_CLOSE_REASONS; r++)
		put(closed, pqpool_close_reason_text((pqpool_close_reason)r),
		    json_integer(clamp_u64(st->closed_by[r])), ok);
	put(c, "closed", closed, ok);
	put(c, "queries", json_integer(clamp_u64(st->queries)), ok);
	put(c, "queryErrors", json_integer(clamp_u64(st->query_errors)), ok);
	put(c, "queryTimeouts", json_integer(clamp_u64(st->query_timeouts)), ok);
	put(c, "rollbacks", json_integer(clamp_u64(st->rollbacks)), ok);
	put(c, "retries", json_integer(clamp_u64(st->retries)), ok);
	put(c, "leaseWarnings", json_integer(clamp_u64(st->lease_warnings)), ok);
	put(pool, "counters", c, ok);
	if (st->nhosts > 0)
		put(pool, "hosts", hosts_json(st->hosts, st->nhosts, ok), ok);

	json_t *classes = json_object();
	for (int i = 0; i < PQPOOL_ERROR_CLASSES; i++) {
		char name[8];
		uint64_t n;
		if (pqpool__error_class(st, i, name, &n))
			put(classes, name, json_integer(clamp_u64(n)), ok);
	}
	put(pool, "errorsByClass", classes, ok);

	json_t *win = json_object();
	put_real(win, "seconds", st->window_s, ok);
	put(win, "queries", json_integer(clamp_u64(st->window_queries)), ok);
	put(pool, "window", win, ok);

	put(pool, "waitTimeMs", hist_json(&st->wait, ok), ok);
	put(pool, "queryTimeMs", hist_json(&st->query, ok), ok);
	put(pool, "connectTimeMs", hist_json(&st->connect, ok), ok);
	json_t *pipe = json_object();
	put(pipe, "depth", depth_json(&st->pipeline_depth, ok), ok);
	put(pipe, "headOfLineWaitMs", hist_json(&st->pipeline_wait, ok), ok);
	put(pool, "pipeline", pipe, ok);
	return pool;
}

char *pqpool_render_metrics_json(const pqpool_stats *st, int64_t now_ms)
{
	if (st == NULL)
		return NULL;
	if (now_ms == 0)
		now_ms = pqc_wall_ms();
	int64_t last = st->last_activity_ms ? st->last_activity_ms : st->started_ms;
	if (last == 0)
		last = now_ms;
	pqpool_pool_status ps;
	pqpool_pool_status_of(st, &ps);

	bool ok = true;
	json_t *root = json_object();

	json_t *m = json_object();
	put(m, "totalConnections", json_integer(st->total), &ok);
	put(m, "activeConnections", json_integer(st->active), &ok);
	put(m, "idleConnections", json_integer(st->idle), &ok);
	put(m, "waitingConnections", json_integer(st->waiting), &ok);
	put_real(m, "poolUtilization", st->utilization, &ok);
	put_real(m, "averageResponseTime", st->avg_response_ms, &ok);
	put_real(m, "errorRate", st->error_rate, &ok);
	put(m, "lastActivity", json_iso8601(last), &ok);
	put(root, "metrics", m, &ok);

	json_t *s = json_object();
	put(s, "healthy", json_boolean(ps.healthy), &ok);
	put(s, "utilization", json_string(ps.utilization), &ok);
	json_t *recs = json_array();
	for (int i = 0; i < ps.n_recommendations; i++)
		if (recs == NULL ||
		    json_array_append_new(recs, json_string(ps.recommendations[i])))
			ok = false;
	put(s, "recommendations", recs, &ok);
	put(root, "status", s, &ok);

	put(root, "timestamp", json_iso8601(now_ms), &ok);

	if (!ok) {
		json_decref(root);
		return NULL;
	}
	return dump_json(root);
}

char *pqpool_render_pool_json(const pqpool_stats *st, int64_t now_ms)
{
	bool ok = true;
	json_t *root;
	if (st == NULL)
		return NULL;
	if (now_ms == 0)
		now_ms = pqc_wall_ms();
	root = json_object();
	put(root, "pool", pool_json(st, &ok), &ok);
	put(root, "timestamp", json_iso8601(now_ms), &ok);
	if (!ok) {
		json_decref(root);
		return NULL;
	}
	return dump_json(root);
}

char *pqpool_render_health_json(const pqpool_health *h)
{
	if (h == NULL)
		return NULL;
	bool ok = true;
	json_t *root = json_object();
	put(root, "status", json_string(pqpool_health_text(h->status)), &ok);
	json_t *d = json_object();
	double rt = finite_or_zero(h->response_ms);
	put_real(d, "responseTime", rt < 0 ? 0 : rt, &ok);
	put(d, "connectionCount", json_integer(h->connection_count), &ok);
	put(d, "lastCheck", json_iso8601(h->checked_at_ms), &ok);
	size_t elen = strnlen(h->error, sizeof h->error);
	if (elen > 0)
		put(d, "error", json_text(h->error, elen), &ok);
	if (h->nhosts > 0)
		put(d, "hosts", hosts_json(h->hosts, h->nhosts, &ok), &ok);
	put(root, "data", d, &ok);
	if (!ok) {
		json_decref(root);
		return NULL;
	}
	return dump_json(root);
}
