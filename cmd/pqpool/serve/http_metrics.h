/* http_metrics.h — the service's own metrics: requests by route and status, durations,
 * connections. */
#ifndef PQPOOL_CLI_HTTP_METRICS_H
#define PQPOOL_CLI_HTTP_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "routes.h"

/* Status codes counted by their own value; anything else counts as "other". */
#define HTTP_METRICS_CODES 10
/* Upper bounds of the request duration buckets, seconds; then +Inf. */
#define HTTP_METRICS_BUCKETS 17

/* Counters updated from every worker thread with relaxed atomics: a scrape
 * may see one request's counter and not yet its histogram, which Prometheus
 * tolerates, and no lock sits on the request path. */
typedef struct http_metrics {
	atomic_uint_fast64_t requests[ROUTE_COUNT][HTTP_METRICS_CODES];
	atomic_uint_fast64_t buckets[ROUTE_COUNT][HTTP_METRICS_BUCKETS];
	atomic_uint_fast64_t sum_ns[ROUTE_COUNT];
	atomic_int connections; /* open HTTP connections */
	atomic_int in_flight;   /* requests received and not yet completed */
	int64_t started_ms;     /* wall clock at start, ms since the epoch */
} http_metrics;

/* Zeroes the counters and records the start time. */
void http_metrics_init(http_metrics *m);

/* Counts one completed request. Thread-safe. */
void http_metrics_observe(http_metrics *m, route_id route, int status,
                          int64_t duration_ns);

/*
 * The service's metrics in the Prometheus text format 0.0.4, meant to follow
 * the library's db_client_* families: pqpool_http_requests_total{route,code},
 * pqpool_http_request_duration_seconds{route} (histogram),
 * pqpool_http_connections, pqpool_http_requests_in_flight, pqpool_build_info,
 * process_start_time_seconds, process_resident_memory_bytes.
 * Owned (free()), or NULL when out of memory. Thread-safe.
 */
char *http_metrics_render(http_metrics *m);

#endif
