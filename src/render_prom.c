/* render_prom.c — the snapshot in the Prometheus text exposition format
 * 0.0.4, db_client_connection_* names, durations in seconds; pure. */
#include "pqpool.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "sbuf.h"
#include "stats.h"

/* Connections by state. OpenTelemetry's db.client.connection.count, as its
 * exporter spells it (db_client_connection_count),
 * fails `promtool check metrics`: Prometheus reserves the _count suffix for
 * histograms and summaries. We use the name OpenTelemetry gave the same
 * instrument before (db.client.connections.usage), which passes. */
#define PROM_CONN_COUNT "db_client_connections_usage"

/* Shortest of %.15g / %.17g that reads back as the same double, so ratios
 * print as 0.25 rather than 0.25000000000000001. */
static void prom_double(pqc_sbuf *b, double v)
{
	char buf[40];
	v = isfinite(v) ? v : 0.0;
	snprintf(buf, sizeof buf, "%.15g", v);
	if (strtod(buf, NULL) != v)
		snprintf(buf, sizeof buf, "%.17g", v);
	pqc_sbuf_puts(b, buf);
}

/* HELP text escaping: backslash and line feed. */
static void prom_help(pqc_sbuf *b, const char *name, const char *type, const char *help)
{
	pqc_sbuf_printf(b, "# HELP %s ", name);
	for (const char *p = help; *p; p++) {
		if (*p == '\\')
			pqc_sbuf_puts(b, "\\\\");
		else if (*p == '\n')
			pqc_sbuf_puts(b, "\\n");
		else
			pqc_sbuf_putn(b, p, 1);
	}
	pqc_sbuf_printf(b, "\n# TYPE %s %s\n", name, type);
}

/* Label value escaping: backslash, double quote and line feed. */
/* key="val" with val escaped, after sep ("{" or ","). */
static void prom_pair(pqc_sbuf *b, const char *sep, const char *key, const char *val)
{
	pqc_sbuf_printf(b, "%s%s=\"", sep, key);
	for (const char *p = val; *p; p++) {
		if (*p == '\\')
			pqc_sbuf_puts(b, "\\\\");
		else if (*p == '"')
			pqc_sbuf_puts(b, "\\\"");
		else if (*p == '\n')
			pqc_sbuf_puts(b, "\\n");
		else
			pqc_sbuf_putn(b, p, 1);
	}
	pqc_sbuf_putn(b, "\"", 1);
}

static void prom_label(pqc_sbuf *b, const char *key, const char *val)
{
	prom_pair(b, "{", key, val);
	pqc_sbuf_putn(b, "}", 1);
}

/* name{host="...",role="..."[,key="val"]} v, for one host. */
static void prom_host(pqc_sbuf *b, const char *name, const pqpool_host *h,
                      const char *key, const char *val, double v)
{
	pqc_sbuf_puts(b, name);
	prom_pair(b, "{", "host", h->address);
	prom_pair(b, ",", "role", pqpool_role_text(h->role));
	if (key)
		prom_pair(b, ",", key, val);
	pqc_sbuf_putn(b, "} ", 2);
	prom_double(b, v);
	pqc_sbuf_putn(b, "\n", 1);
}

/* With several hosts: each one's connections, state and lag. */
static void prom_hosts(pqc_sbuf *b, const pqpool_stats *st)
{
	int n = st->nhosts < PQPOOL_MAX_HOSTS ? st->nhosts : PQPOOL_MAX_HOSTS;
	bool lag = false;
	if (n <= 0)
		return;
	prom_help(b, PROM_CONN_COUNT "_by_host", "gauge",
	          "Connections open to each host of the pool, by state.");
	for (int i = 0; i < n; i++) {
		prom_host(b, PROM_CONN_COUNT "_by_host", &st->hosts[i], "state", "idle",
		          st->hosts[i].idle);
		prom_host(b, PROM_CONN_COUNT "_by_host", &st->hosts[i], "state", "used",
		          st->hosts[i].active);
	}
	prom_help(b, "db_client_host_up", "gauge",
	          "1 while the host answers, 0 while banned or down after failed "
	          "connects.");
	for (int i = 0; i < n; i++)
		prom_host(b, "db_client_host_up", &st->hosts[i], NULL, NULL,
		          st->hosts[i].state == PQPOOL_HOST_UP);
	for (int i = 0; i < n; i++) {
		if (st->hosts[i].lag_ms < 0)
			continue;
		if (!lag)
			prom_help(b, "db_client_host_replication_lag_seconds", "gauge",
			          "A standby's replay lag when last measured.");
		lag = true;
		prom_host(b, "db_client_host_replication_lag_seconds", &st->hosts[i],
		          NULL, NULL, st->hosts[i].lag_ms / 1000);
	}
}

static void prom_u64(pqc_sbuf *b, const char *name, const char *key, const char *val,
                     uint64_t v)
{
	pqc_sbuf_puts(b, name);
	if (key)
		prom_label(b, key, val);
	pqc_sbuf_printf(b, " %" PRIu64 "\n", v);
}

static void prom_gauge(pqc_sbuf *b, const char *name, const char *help, double v)
{
	prom_help(b, name, "gauge", help);
	pqc_sbuf_puts(b, name);
	pqc_sbuf_putn(b, " ", 1);
	prom_double(b, v);
	pqc_sbuf_putn(b, "\n", 1);
}

static void prom_counter(pqc_sbuf *b, const char *name, const char *help, uint64_t v)
{
	prom_help(b, name, "counter", help);
	prom_u64(b, name, NULL, NULL, v);
}

/* A histogram in seconds. _count is the +Inf bucket, not h->count, so the
 * two agree even in a snapshot summed from relaxed counters. */
static void prom_hist(pqc_sbuf *b, const char *name, const char *help,
                      const pqpool_hist *h)
{
	uint64_t cum = 0;
	prom_help(b, name, "histogram", help);
	for (int i = 0; i < PQPOOL_HIST_BUCKETS; i++) {
		char le[32];
		cum += h->buckets[i];
		if (i == PQPOOL_HIST_BUCKETS - 1)
			snprintf(le, sizeof le, "+Inf");
		else
			snprintf(le, sizeof le, "%g", pqpool_hist_bounds_ms()[i] / 1000);
		pqc_sbuf_printf(b, "%s_bucket", name);
		prom_label(b, "le", le);
		pqc_sbuf_printf(b, " %" PRIu64 "\n", cum);
	}
	double sum = (isfinite(h->sum_ms) ? h->sum_ms : 0.0) / 1000;
	pqc_sbuf_printf(b, "%s_sum ", name);
	prom_double(b, sum < 0 ? 0 : sum);
	pqc_sbuf_printf(b, "\n%s_count %" PRIu64 "\n", name, cum);
}

/* A histogram of statement counts (no unit). */
static void prom_depth(pqc_sbuf *b, const char *name, const char *help,
                       const pqpool_depth_hist *h)
{
	uint64_t cum = 0;
	prom_help(b, name, "histogram", help);
	for (int i = 0; i < PQPOOL_DEPTH_BUCKETS; i++) {
		char le[32];
		cum += h->buckets[i];
		if (i == PQPOOL_DEPTH_BUCKETS - 1)
			snprintf(le, sizeof le, "+Inf");
		else
			snprintf(le, sizeof le, "%d", pqpool_depth_bounds()[i]);
		pqc_sbuf_printf(b, "%s_bucket", name);
		prom_label(b, "le", le);
		pqc_sbuf_printf(b, " %" PRIu64 "\n", cum);
	}
	pqc_sbuf_printf(b, "%s_sum %" PRIu64 "\n%s_count %" PRIu64 "\n", name, h->sum,
	                name, cum);
}

char *pqpool_render_prometheus(const pqpool_stats *st)
{
	if (st == NULL)
		return NULL;
	pqc_sbuf b = PQC_SBUF_INIT;

	prom_help(&b, PROM_CONN_COUNT, "gauge",
	          "Connections open in the pool, by state (used = leased or opening).");
	prom_u64(&b, PROM_CONN_COUNT, "state", "idle",
	         st->idle > 0 ? (uint64_t)st->idle : 0);
	prom_u64(&b, PROM_CONN_COUNT, "state", "used",
	         st->active > 0 ? (uint64_t)st->active : 0);
	prom_hosts(&b, st);
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
		         pqpool_close_reason_text((pqpool_close_reason)r),
		         st->closed_by[r]);
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
		if (!pqpool__error_class(st, i, name, &n))
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
	prom_depth(&b, "db_client_connection_pipeline_depth",
	           "Statements in flight on a connection at each pipeline Sync sent.",
	           &st->pipeline_depth);
	prom_hist(&b, "db_client_connection_pipeline_wait_time_seconds",
	          "Time pipelined statements waited behind earlier groups on their "
	          "connection (head-of-line wait).",
	          &st->pipeline_wait);
	return pqc_sbuf_finish(&b);
}
