/* http_metrics.c — counts requests and renders the service's metrics for /metrics. */
#include "http_metrics.h"

#include "clock.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const int codes[HTTP_METRICS_CODES - 1] = {200, 400, 401, 404, 405,
                                                  413, 431, 500, 503};

/* From 100 µs (a /livez answer) to 10 s (a health probe at its deadline). */
static const double bounds_s[HTTP_METRICS_BUCKETS - 1] = {
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
        0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10,
};

void http_metrics_init(http_metrics *m)
{
	for (int r = 0; r < ROUTE_COUNT; r++) {
		for (int c = 0; c < HTTP_METRICS_CODES; c++)
			atomic_init(&m->requests[r][c], 0);
		for (int b = 0; b < HTTP_METRICS_BUCKETS; b++)
			atomic_init(&m->buckets[r][b], 0);
		atomic_init(&m->sum_ns[r], 0);
	}
	atomic_init(&m->connections, 0);
	atomic_init(&m->in_flight, 0);
	m->started_ms = pqc_wall_ms();
}

static int code_index(int status)
{
	for (int i = 0; i < HTTP_METRICS_CODES - 1; i++) {
		if (codes[i] == status)
			return i;
	}
	return HTTP_METRICS_CODES - 1;
}

void http_metrics_observe(http_metrics *m, route_id route, int status,
                          int64_t duration_ns)
{
	double s = (double)duration_ns / 1e9;
	int b = 0;

	if (route < 0 || route >= ROUTE_COUNT)
		route = ROUTE_OTHER;
	if (duration_ns < 0)
		duration_ns = 0;
	while (b < HTTP_METRICS_BUCKETS - 1 && s > bounds_s[b])
		b++;
	atomic_fetch_add_explicit(&m->requests[route][code_index(status)], 1,
	                          memory_order_relaxed);
	atomic_fetch_add_explicit(&m->buckets[route][b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->sum_ns[route], (uint_fast64_t)duration_ns,
	                          memory_order_relaxed);
}

static uint64_t load(atomic_uint_fast64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

static void family(FILE *out, const char *name, const char *type, const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Pages of resident memory, as ps shows them; 0 when /proc is not there. */
static double resident_bytes(void)
{
	unsigned long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

static void requests(FILE *out, http_metrics *m)
{
	family(out, "pqpool_http_requests_total", "counter",
	       "HTTP requests answered, by route and status code.");
	for (int r = 0; r < ROUTE_COUNT; r++) {
		for (int c = 0; c < HTTP_METRICS_CODES; c++) {
			uint64_t n = load(&m->requests[r][c]);
			char code[8] = "other";

			if (n == 0)
				continue; /* only the pairs seen, as client libraries do
				           */
			if (c < HTTP_METRICS_CODES - 1)
				snprintf(code, sizeof(code), "%d", codes[c]);
			fprintf(out,
			        "pqpool_http_requests_total{route=\"%s\",code=\"%s\"} "
			        "%" PRIu64 "\n",
			        route_name((route_id)r), code, n);
		}
	}
}

static void durations(FILE *out, http_metrics *m)
{
	static const char name[] = "pqpool_http_request_duration_seconds";

	family(out, name, "histogram",
	       "Time from a request's headers to its answer, by route.");
	for (int r = 0; r < ROUTE_COUNT; r++) {
		uint64_t cum = 0, seen = 0;
		const char *route = route_name((route_id)r);

		for (int b = 0; b < HTTP_METRICS_BUCKETS; b++)
			seen += load(&m->buckets[r][b]);
		if (seen == 0)
			continue;
		for (int b = 0; b < HTTP_METRICS_BUCKETS; b++) {
			cum += load(&m->buckets[r][b]);
			if (b < HTTP_METRICS_BUCKETS - 1)
				fprintf(out,
				        "%s_bucket{route=\"%s\",le=\"%g\"} %" PRIu64 "\n",
				        name, route, bounds_s[b], cum);
			else
				fprintf(out,
				        "%s_bucket{route=\"%s\",le=\"+Inf\"} %" PRIu64
				        "\n",
				        name, route, cum);
		}
		/* _count is the +Inf bucket, so the two agree within a scrape */
		fprintf(out, "%s_sum{route=\"%s\"} %.9f\n", name, route,
		        (double)load(&m->sum_ns[r]) / 1e9);
		fprintf(out, "%s_count{route=\"%s\"} %" PRIu64 "\n", name, route, cum);
	}
}

char *http_metrics_render(http_metrics *m)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);

	if (!out)
		return NULL;
	requests(out, m);
	durations(out, m);
	family(out, "pqpool_http_connections", "gauge", "HTTP connections open now.");
	fprintf(out, "pqpool_http_connections %d\n",
	        atomic_load_explicit(&m->connections, memory_order_relaxed));
	family(out, "pqpool_http_requests_in_flight", "gauge",
	       "HTTP requests received and not yet answered.");
	fprintf(out, "pqpool_http_requests_in_flight %d\n",
	        atomic_load_explicit(&m->in_flight, memory_order_relaxed));
	family(out, "pqpool_build_info", "gauge", "Always 1; the version is the label.");
	fprintf(out, "pqpool_build_info{version=\"%s\"} 1\n", PQPOOL_VERSION);
	family(out, "process_start_time_seconds", "gauge",
	       "Start time of the process since the Unix epoch, seconds.");
	fprintf(out, "process_start_time_seconds %.3f\n", (double)m->started_ms / 1000);
	family(out, "process_resident_memory_bytes", "gauge",
	       "Resident memory size, bytes.");
	fprintf(out, "process_resident_memory_bytes %.0f\n", resident_bytes());
	if (fclose(out) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
