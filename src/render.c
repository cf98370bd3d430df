/* render.c — latency histograms, pool status, and the JSON and Prometheus renderings. */
#include "internal.h"

#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Histograms                                                           */
/* ------------------------------------------------------------------ */

static const double hist_bounds_ms[PQPOOL_HIST_BUCKETS] = {
        0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, INFINITY,
};

/* The same finite bounds in integer ns, so that classifying a duration on
 * the query path needs no floating point. */
static const int64_t hist_bounds_ns[PQPOOL_HIST_BUCKETS - 1] = {
        100000,    250000,    500000,     1000000,    2500000,
        5000000,   10000000,  25000000,   50000000,   100000000,
        250000000, 500000000, 1000000000, 2500000000, 5000000000,
};

const double *pqpool_hist_bounds_ms(void)
{
	return hist_bounds_ms;
}

int pqpool__hist_bucket(int64_t ns)
{
	/* The bounds are sorted, so the number of bounds below ns is the index of
	 * the first bound >= ns. Counting without branches costs the same for
	 * every duration and the compiler can vectorise it. */
	int idx = 0;
	for (int i = 0; i < PQPOOL_HIST_BUCKETS - 1; i++)
		idx += ns > hist_bounds_ns[i];
	return idx;
}

void pqpool__hist_add(pqpool_hist *h, int64_t ns)
{
	if (ns < 0) /* a clock that stepped back is not a negative duration */
		ns = 0;
	h->count++;
	h->sum_ms += (double)ns / 1e6;
	h->buckets[pqpool__hist_bucket(ns)]++;
}

double pqpool_hist_quantile(const pqpool_hist *h, double q)
{
	if (h == NULL || !(q > 0 && q < 1))
		return 0;
	/* Rank against the sum of the buckets rather than h->count: a snapshot
	 * summed from relaxed counters may differ by a sample or two, and the
	 * buckets are what the interpolation walks. */
	uint64_t total = 0;
	for (int i = 0; i < PQPOOL_HIST_BUCKETS; i++)
		total += h->buckets[i];
	if (total == 0)
		return 0;

	double rank = q * (double)total;
	uint64_t below = 0;
	for (int i = 0; i < PQPOOL_HIST_BUCKETS; i++) {
		uint64_t n = h->buckets[i];
		if (n == 0 || (double)(below + n) < rank) {
			below += n;
			continue;
		}
		double lo = i == 0 ? 0 : hist_bounds_ms[i - 1];
		if (i == PQPOOL_HIST_BUCKETS - 1)
			return lo; /* no upper bound to interpolate towards */
		double frac = (rank - (double)below) / (double)n;
		return lo + (hist_bounds_ms[i] - lo) * frac;
	}
	/* Rounding left the rank above the last sample: the largest bound seen. */
	return hist_bounds_ms[PQPOOL_HIST_BUCKETS - 2];
}

/* ------------------------------------------------------------------ */
/* Texts and the specification's pool status                            */
/* ------------------------------------------------------------------ */

const char *pqpool_health_text(pqpool_health_status status)
{
	switch (status) {
	case PQPOOL_HEALTHY:
		return "healthy";
	case PQPOOL_DEGRADED:
		return "degraded";
	case PQPOOL_UNHEALTHY:
		return "unhealthy";
	}
	return "unknown";
}

static const char *const close_reason_names[PQPOOL_CLOSE_REASONS] = {
        [PQPOOL_CLOSE_IDLE] = "idle",
        [PQPOOL_CLOSE_LIFETIME] = "lifetime",
        [PQPOOL_CLOSE_BROKEN] = "broken",
        [PQPOOL_CLOSE_UNCLEAN] = "unclean",
        [PQPOOL_CLOSE_DISCARDED] = "discarded",
        [PQPOOL_CLOSE_POOL_CLOSED] = "pool_closed",
};

const char *pqpool_close_reason_text(pqpool_close_reason r)
{
	if ((int)r < 0 || r >= PQPOOL_CLOSE_REASONS)
		return "unknown";
	return close_reason_names[r];
}

void pqpool_pool_status_of(const pqpool_stats *st, pqpool_pool_status *out)
{
	static const pqpool_stats zero;
	if (out == NULL)
		return;
	if (st == NULL)
		st = &zero;
	double u = st->utilization;
	memset(out, 0, sizeof *out);
	/* Thresholds and texts exactly as the specification's getPoolStatus(). */
	if (u > 80)
		out->utilization = "critical";
	else if (u > 60)
		out->utilization = "high";
	else if (u > 40)
		out->utilization = "medium";
	else
		out->utilization = "low";
	if (st->waiting > 0)
		out->recommendations[out->n_recommendations++] =
		        "Consider increasing pool size";
	if (u > 80)
		out->recommendations[out->n_recommendations++] =
		        "Pool utilization is critically high";
	out->healthy = st->error_rate < 5;
}

/* ------------------------------------------------------------------ */
/* Shared helpers                                                       */
/* ------------------------------------------------------------------ */

/* A growable string; after the first failed allocation every append is a
 * no-op and sbuf_finish() returns NULL, so callers check once at the end. */
typedef struct sbuf {
	char *p;
	size_t len, cap;
	bool failed;
} sbuf;

static bool sbuf_reserve(sbuf *b, size_t extra)
{
	if (b->failed)
		return false;
	if (b->len + extra + 1 <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 1024;
	while (cap < b->len + extra + 1)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (p == NULL) {
		b->failed = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

static void sbuf_putn(sbuf *b, const char *s, size_t n)
{
	if (!sbuf_reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sbuf_puts(sbuf *b, const char *s)
{
	sbuf_putn(b, s, strlen(s));
}

static void sbuf_printf(sbuf *b, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static void sbuf_printf(sbuf *b, const char *fmt, ...)
{
	char small[128];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = true;
		return;
	}
	if ((size_t)n < sizeof small) {
		sbuf_putn(b, small, (size_t)n);
		return;
	}
	if (!sbuf_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* Hands the text over to the caller, or frees it and returns NULL. */
static char *sbuf_finish(sbuf *b)
{
	if (b->failed || b->p == NULL) {
		free(b->p);
		return NULL;
	}
	return b->p;
}

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

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlongs,
 * surrogates or code points past U+10FFFF), or 0 when it is not one. */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0];
	size_t n;
	unsigned char lo = 0x80, hi = 0xBF; /* range of the second byte */
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		n = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else
		return 0;
	if (avail < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return n;
}

/* A JSON string from text that may not be valid UTF-8 (server messages in a
 * LATIN1 client encoding, a message cut at a fixed length): jansson rejects
 * such text, so each bad byte becomes U+FFFD. NULL only on allocation failure. */
static json_t *json_text(const char *s, size_t len)
{
	json_t *j = json_stringn(s, len);
	if (j != NULL)
		return j;
	sbuf b = {0};
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq_len(u + i, len - i);
		if (n == 0 || (n == 1 && u[i] == 0)) {
			sbuf_puts(&b, "\xEF\xBF\xBD");
			i++;
		} else {
			sbuf_putn(&b, s + i, n);
			i += n;
		}
	}
	sbuf_putn(&b, "", 0);
	char *clean = sbuf_finish(&b);
	if (clean == NULL)
		return NULL;
	j = json_stringn(clean, b.len);
	free(clean);
	return j;
}

static json_t *json_iso8601(int64_t ms)
{
	char buf[64];
	pqpool__iso8601(ms, buf);
	return json_string(buf);
}

static int dump_cb(const char *buffer, size_t size, void *data)
{
	sbuf *b = data;
	sbuf_putn(b, buffer, size);
	return b->failed ? -1 : 0;
}

/* Serialises into our own malloc'd buffer, so the caller's free() is right
 * even when the host gave jansson its own allocator. Consumes root. */
static char *dump_json(json_t *root)
{
	sbuf b = {0};
	if (root == NULL)
		return NULL;
	int rc = json_dump_callback(root, dump_cb, &b,
	                            JSON_COMPACT | JSON_PRESERVE_ORDER |
	                                    JSON_REAL_PRECISION(6));
	json_decref(root);
	if (rc != 0)
		b.failed = true;
	return sbuf_finish(&b);
}

/* An error class name safe as a JSON key and a Prometheus label value:
 * SQLSTATE classes are ASCII, so anything else is replaced rather than
 * trusted. Returns false for an unused slot. */
static bool class_name(const pqpool_stats *st, int i, char out[8])
{
	size_t n = strnlen(st->error_class[i], sizeof st->error_class[i]);
	if (n == 0)
		return false;
	if (n > 7)
		n = 7;
	for (size_t k = 0; k < n; k++) {
		unsigned char c = (unsigned char)st->error_class[i][k];
		out[k] = (c >= 0x20 && c < 0x7F) ? (char)c : '?';
	}
	out[n] = '\0';
	return true;
}

/* The count of class i including later slots with the same name, or false
 * when an earlier slot already had it (so each class is reported once). */
static bool class_total(const pqpool_stats *st, int i, char name[8], uint64_t *total)
{
	char other[8];
	if (!class_name(st, i, name))
		return false;
	for (int j = 0; j < i; j++)
		if (class_name(st, j, other) && strcmp(other, name) == 0)
			return false;
	*total = st->errors_by_class[i];
	for (int j = i + 1; j < PQPOOL_ERROR_CLASSES; j++)
		if (class_name(st, j, other) && strcmp(other, name) == 0)
			*total += st->errors_by_class[j];
	return true;
}

/* ------------------------------------------------------------------ */
/* JSON                                                                 */
/* ------------------------------------------------------------------ */

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

/* Everything beyond the specification's keys, kept apart so that the
 * specification's objects stay exactly as written. */
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
		put(closed, close_reason_names[r],
		    json_integer(clamp_u64(st->closed_by[r])), ok);
	put(c, "closed", closed, ok);
	put(c, "queries", json_integer(clamp_u64(st->queries)), ok);
	put(c, "queryErrors", json_integer(clamp_u64(st->query_errors)), ok);
	put(c, "queryTimeouts", json_integer(clamp_u64(st->query_timeouts)), ok);
	put(c, "rollbacks", json_integer(clamp_u64(st->rollbacks)), ok);
	put(c, "retries", json_integer(clamp_u64(st->retries)), ok);
	put(c, "leaseWarnings", json_integer(clamp_u64(st->lease_warnings)), ok);
	put(pool, "counters", c, ok);

	json_t *classes = json_object();
	for (int i = 0; i < PQPOOL_ERROR_CLASSES; i++) {
		char name[8];
		uint64_t n;
		if (class_total(st, i, name, &n))
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
	return pool;
}

char *pqpool_render_metrics_json(const pqpool_stats *st, int64_t now_ms)
{
	if (st == NULL)
		return NULL;
	if (now_ms == 0)
		now_ms = pqpool__wall_ms();
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
		now_ms = pqpool__wall_ms();
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
	put(root, "data", d, &ok);
	if (!ok) {
		json_decref(root);
		return NULL;
	}
	return dump_json(root);
}

/* ------------------------------------------------------------------ */
/* Prometheus text exposition format 0.0.4                              */
/* ------------------------------------------------------------------ */

/* Connections by state. DESIGN §2's example, db_client_connection_count
 * (OpenTelemetry's db.client.connection.count as its exporter spells it),
 * fails `promtool check metrics`: Prometheus reserves the _count suffix for
 * histograms and summaries. We use the name OpenTelemetry gave the same
 * instrument before (db.client.connections.usage), which passes. */
#define PROM_CONN_COUNT "db_client_connections_usage"

/* Shortest of %.15g / %.17g that reads back as the same double, so ratios
 * print as 0.25 rather than 0.25000000000000001. */
static void prom_double(sbuf *b, double v)
{
	char buf[40];
	v = finite_or_zero(v);
	snprintf(buf, sizeof buf, "%.15g", v);
	if (strtod(buf, NULL) != v)
		snprintf(buf, sizeof buf, "%.17g", v);
	sbuf_puts(b, buf);
}

/* HELP text escaping: backslash and line feed. */
static void prom_help(sbuf *b, const char *name, const char *type, const char *help)
{
	sbuf_printf(b, "# HELP %s ", name);
	for (const char *p = help; *p; p++) {
		if (*p == '\\')
			sbuf_puts(b, "\\\\");
		else if (*p == '\n')
			sbuf_puts(b, "\\n");
		else
			sbuf_putn(b, p, 1);
	}
	sbuf_printf(b, "\n# TYPE %s %s\n", name, type);
}

/* Label value escaping: backslash, double quote and line feed. */
static void prom_label(sbuf *b, const char *key, const char *val)
{
	sbuf_printf(b, "{%s=\"", key);
	for (const char *p = val; *p; p++) {
		if (*p == '\\')
			sbuf_puts(b, "\\\\");
		else if (*p == '"')
			sbuf_puts(b, "\\\"");
		else if (*p == '\n')
			sbuf_puts(b, "\\n");
		else
			sbuf_putn(b, p, 1);
	}
	sbuf_puts(b, "\"}");
}

static void prom_u64(sbuf *b, const char *name, const char *key, const char *val,
                     uint64_t v)
{
	sbuf_puts(b, name);
	if (key)
		prom_label(b, key, val);
	sbuf_printf(b, " %" PRIu64 "\n", v);
}

static void prom_gauge(sbuf *b, const char *name, const char *help, double v)
{
	prom_help(b, name, "gauge", help);
	sbuf_puts(b, name);
	sbuf_putn(b, " ", 1);
	prom_double(b, v);
	sbuf_putn(b, "\n", 1);
}

static void prom_counter(sbuf *b, const char *name, const char *help, uint64_t v)
{
	prom_help(b, name, "counter", help);
	prom_u64(b, name, NULL, NULL, v);
}

/* A histogram in seconds. _count is the +Inf bucket, not h->count, so the
 * two agree even in a snapshot summed from relaxed counters. */
static void prom_hist(sbuf *b, const char *name, const char *help, const pqpool_hist *h)
{
	uint64_t cum = 0;
	prom_help(b, name, "histogram", help);
	for (int i = 0; i < PQPOOL_HIST_BUCKETS; i++) {
		char le[32];
		cum += h->buckets[i];
		if (i == PQPOOL_HIST_BUCKETS - 1)
			snprintf(le, sizeof le, "+Inf");
		else
			snprintf(le, sizeof le, "%g", hist_bounds_ms[i] / 1000);
		sbuf_printf(b, "%s_bucket", name);
		prom_label(b, "le", le);
		sbuf_printf(b, " %" PRIu64 "\n", cum);
	}
	double sum = finite_or_zero(h->sum_ms) / 1000;
	sbuf_printf(b, "%s_sum ", name);
	prom_double(b, sum < 0 ? 0 : sum);
	sbuf_printf(b, "\n%s_count %" PRIu64 "\n", name, cum);
}

char *pqpool_render_prometheus(const pqpool_stats *st)
{
	if (st == NULL)
		return NULL;
	sbuf b = {0};

	prom_help(&b, PROM_CONN_COUNT, "gauge",
	          "Connections open in the pool, by state (used = leased or opening).");
	prom_u64(&b, PROM_CONN_COUNT, "state", "idle",
	         st->idle > 0 ? (uint64_t)st->idle : 0);
	prom_u64(&b, PROM_CONN_COUNT, "state", "used",
	         st->active > 0 ? (uint64_t)st->active : 0);
	prom_gauge(&b, "db_client_connection_max", "Most connections the pool may open.",
	           st->max);
	prom_gauge(&b, "db_client_connection_idle_min",
	           "Connections the pool keeps open even when idle.", st->min);
	prom_gauge(&b, "db_client_connection_pending_requests",
	           "Callers waiting for a connection.", st->waiting);
	prom_gauge(&b, "db_client_connection_utilization_ratio",
	           "Used connections over the maximum (0 to 1).", st->utilization / 100);
	prom_gauge(&b, "db_client_connection_recent_window_seconds",
	           "Length of the recent window of the recent_* gauges.", st->window_s);
	prom_gauge(&b, "db_client_connection_recent_queries",
	           "Queries finished in the recent window.", (double)st->window_queries);
	prom_gauge(&b, "db_client_connection_recent_error_ratio",
	           "Share of the queries in the recent window that failed (0 to 1).",
	           st->error_rate / 100);
	prom_gauge(&b, "db_client_connection_recent_response_time_seconds",
	           "Mean query duration over the recent window.",
	           st->avg_response_ms / 1000);

	prom_counter(&b, "db_client_connection_acquires_total",
	             "Connections handed out to callers.", st->acquires);
	prom_counter(&b, "db_client_connection_timeouts_total",
	             "Acquires that gave up waiting for a connection.",
	             st->acquire_timeouts);
	prom_counter(&b, "db_client_connection_acquire_errors_total",
	             "Acquires that failed because a connection could not be opened.",
	             st->acquire_errors);
	prom_counter(&b, "db_client_connection_opened_total", "Connections opened.",
	             st->opened);
	prom_counter(&b, "db_client_connection_connect_failures_total",
	             "Attempts to open a connection that failed.", st->connect_failures);
	prom_help(&b, "db_client_connection_closed_total", "counter",
	          "Connections closed, by reason.");
	for (int r = 0; r < PQPOOL_CLOSE_REASONS; r++)
		prom_u64(&b, "db_client_connection_closed_total", "reason",
		         close_reason_names[r], st->closed_by[r]);
	prom_counter(&b, "db_client_connection_queries_total",
	             "Queries run through the pool.", st->queries);
	prom_counter(&b, "db_client_connection_query_errors_total",
	             "Queries that failed.", st->query_errors);
	prom_counter(&b, "db_client_connection_query_timeouts_total",
	             "Queries cancelled at the client-side deadline.",
	             st->query_timeouts);
	prom_counter(&b, "db_client_connection_rollbacks_total",
	             "Open transactions rolled back when their connection was released.",
	             st->rollbacks);
	prom_counter(&b, "db_client_connection_retries_total",
	             "Extra attempts made by the retry loop.", st->retries);
	prom_counter(&b, "db_client_connection_lease_warnings_total",
	             "Leases held longer than the warning threshold.",
	             st->lease_warnings);
	/* Declared only once there is a class to show: a family without samples
	 * says nothing, and the classes are not known in advance. */
	bool declared = false;
	for (int i = 0; i < PQPOOL_ERROR_CLASSES; i++) {
		char name[8];
		uint64_t n;
		if (!class_total(st, i, name, &n))
			continue;
		if (!declared)
			prom_help(&b, "db_client_connection_errors_total", "counter",
			          "Errors by SQLSTATE class (client = failures without a "
			          "SQLSTATE).");
		declared = true;
		prom_u64(&b, "db_client_connection_errors_total", "class", name, n);
	}

	prom_hist(&b, "db_client_connection_wait_time_seconds",
	          "Time callers waited to acquire a connection.", &st->wait);
	prom_hist(&b, "db_client_operation_duration_seconds", "Duration of queries.",
	          &st->query);
	prom_hist(&b, "db_client_connection_create_time_seconds",
	          "Time it took to open a connection.", &st->connect);
	return sbuf_finish(&b);
}
