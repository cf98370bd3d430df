/* cmd_bench.c — `pqpool bench <workload>`: the benchmarks, as a table or JSON. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "commands.h"
#include "log.h"
#include "parse.h"
#include "setup.h"

static const cli_option bench_options[] = {
        {"threads", 't', "N", "client threads (default 64; spec: 50 concurrent queries)"},
        {"pool", 'p', "N", "pool size, and pgbench's connections (default 20)"},
        {"duration", 'd', "SECS", "seconds per measurement (default 10; overhead 3)"},
        {"rounds", 'r', "N",
         "spec: rounds to run (default: as many as --duration allows)"},
        {"query", 'q', "SQL", "the query of throughput, nopool and compare (SELECT 1)"},
        {"prepared", 0, NULL,
         "cached prepared statements (pgbench -M prepared); "
         "default unnamed (-M extended)"},
        {"clients", 'c', "LIST", "sweep: client counts, e.g. 1,2,4,8,16,32,64"},
        {"lease", 0, NULL,
         "throughput: acquire, exec, release per query instead of "
         "pqpool_query"},
        {"loops", 0, "N",
         "throughput, compare: N event-loop threads with pqpool_submit "
         "(as pgbench -j N) instead of --threads blocking callers"},
        {"outstanding", 0, "M",
         "with --loops: statements kept in flight in total (default: one "
         "per connection of --pool); compare adds pgbench pipelined at "
         "as many (-c P, pipelines of M/P)"},
        {"blocking", 0, NULL,
         "spec: a thread per concurrent query (--threads), instead "
         "of one thread with pqpool_send"},
        {"json", 0, NULL, "JSON on stdout instead of a table"},
        {"no-progress", 0, NULL, "no progress line on stderr"},
        {NULL, 0, NULL, NULL},
};

typedef struct run {
	const char *workload;
	bench_opts o;
	bool json;
	setup_ctx s;
	json_t *out;     /* the JSON document */
	json_t *results; /* its results array */
} run;

/* ---- numbers in, numbers out ---- */

static int int_opt(const cli_args *a, const char *name, int def, int min, int max,
                   int *out)
{
	const char *v = cli_value(a, name);

	if (!v) {
		*out = def;
		return 0;
	}
	if (!pqc_parse_int(v, min, max, out)) {
		fprintf(stderr,
		        "pqpool: --%s=\"%s\": expected an integer from %d to %d\n", name,
		        v, min, max);
		return -1;
	}
	return 0;
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static json_t *lat_json(const lat_hist *h)
{
	return json_pack("{s:I, s:f, s:f, s:f, s:f, s:f, s:f}", "count",
	                 (json_int_t)h->count, "mean", lat_mean_ns(h) / 1e6, "min",
	                 h->count ? ms(h->min_ns) : 0.0, "p50", ms(lat_quantile(h, 0.50)),
	                 "p95", ms(lat_quantile(h, 0.95)), "p99",
	                 ms(lat_quantile(h, 0.99)), "max", ms(h->max_ns));
}

static json_t *result_json(const bench_result *r)
{
	json_t *j = json_pack(
	        "{s:s, s:i, s:i, s:b, s:f, s:I, s:I, s:f, s:f, s:f}", "name", r->name,
	        "threads", r->threads, "connections", r->conns, "prepared", r->prepared,
	        "seconds", r->seconds, "operations", (json_int_t)r->ops, "errors",
	        (json_int_t)r->errors, "operations_per_s", r->ops_per_s, "client_cpu_s",
	        r->cpu_s, "client_cpu_us_per_op", r->cpu_us_per_op);
	if (!j)
		return NULL;
	if (r->latency.count)
		json_object_set_new(j, "latency_ms", lat_json(&r->latency));
	if (r->wait.count) {
		json_object_set_new(j, "wait_ms", lat_json(&r->wait));
		json_object_set_new(j, "worst_wait_ms", json_real(ms(r->worst_wait_ns)));
	}
	if (r->pool_wait.count)
		json_object_set_new(
		        j, "pool_wait_ms",
		        json_pack("{s:I, s:f, s:f, s:f}", "count",
		                  (json_int_t)r->pool_wait.count, "p50",
		                  pqpool_hist_quantile(&r->pool_wait, 0.5), "p95",
		                  pqpool_hist_quantile(&r->pool_wait, 0.95), "p99",
		                  pqpool_hist_quantile(&r->pool_wait, 0.99)));
	if (r->rounds_per_s > 0)
		json_object_set_new(j, "rounds_per_s", json_real(r->rounds_per_s));
	if (r->outstanding > 0)
		json_object_set_new(j, "outstanding", json_integer(r->outstanding));
	return j;
}

static void print_result(const run *rn, const bench_result *r)
{
	if (rn->json)
		return;
	printf("%-22s %4d thr %4d conn  %11.0f %s/s  cpu %7.2f us/op", r->name,
	       r->threads, r->conns, r->ops_per_s,
	       strcmp(rn->workload, "overhead") == 0 ? "cycles" : "queries",
	       r->cpu_us_per_op);
	if (r->outstanding > 0)
		printf("  %4d in flight", r->outstanding);
	if (strcmp(rn->workload, "overhead") == 0 && r->ops)
		printf("  %7.1f ns/cycle/thread",
		       r->seconds * 1e9 * r->threads / (double)r->ops);
	if (r->errors)
		printf("  %llu errors", (unsigned long long)r->errors);
	putchar('\n');
	if (r->latency.count)
		printf("%22s latency ms: p50 %.3f  p95 %.3f  p99 %.3f  max %.3f\n", "",
		       ms(lat_quantile(&r->latency, 0.5)),
		       ms(lat_quantile(&r->latency, 0.95)),
		       ms(lat_quantile(&r->latency, 0.99)), ms(r->latency.max_ns));
	if (r->wait.count)
		printf("%22s wait ms:    p50 %.3f  p95 %.3f  p99 %.3f  max %.3f\n", "",
		       ms(lat_quantile(&r->wait, 0.5)), ms(lat_quantile(&r->wait, 0.95)),
		       ms(lat_quantile(&r->wait, 0.99)), ms(r->worst_wait_ns));
	else if (r->pool_wait.count)
		printf("%22s wait ms:    p50 %.3f  p95 %.3f  p99 %.3f  (the pool's "
		       "histogram)\n",
		       "", pqpool_hist_quantile(&r->pool_wait, 0.5),
		       pqpool_hist_quantile(&r->pool_wait, 0.95),
		       pqpool_hist_quantile(&r->pool_wait, 0.99));
	fflush(stdout);
}

static int record(run *rn, int rc, const bench_result *r)
{
	if (rc != 0)
		return -1;
	print_result(rn, r);
	json_array_append_new(rn->results, result_json(r));
	return 0;
}

static void ratio(run *rn, const char *name, double v, const char *what)
{
	json_object_set_new(json_object_get(rn->out, "ratios"), name, json_real(v));
	if (!rn->json)
		printf("  %-34s %6.2f  (%s)\n", name, v, what);
}

/* A fresh config per measurement: the workloads change sizes and flags. */
static pqpool_config cfg_of(const run *rn)
{
	pqpool_config c = rn->s.cfg;
	c.log_fn = NULL; /* the lease warnings of a saturated run are noise here */
	return c;
}

/* ---- the workloads ---- */

/* The pooled run: blocking callers, or event loops with --loops. */
static int pooled(run *rn, bench_result *r)
{
	pqpool_config c = cfg_of(rn);
	return rn->o.loops > 0 ? bench_throughput_async(&rn->o, &c, r)
	                       : bench_throughput(&rn->o, &c, r);
}

static int w_throughput(run *rn)
{
	bench_result r;
	return record(rn, pooled(rn, &r), &r);
}

static int w_nopool(run *rn)
{
	bench_result pooled, unpooled;
	pqpool_config c = cfg_of(rn);
	if (record(rn, bench_throughput(&rn->o, &c, &pooled), &pooled) != 0)
		return -1;
	c = cfg_of(rn);
	if (record(rn, bench_nopool(&rn->o, &c, &unpooled), &unpooled) != 0)
		return -1;
	if (!rn->json)
		puts("ratios:");
	ratio(rn, "pooled_over_unpooled",
	      unpooled.ops_per_s > 0 ? pooled.ops_per_s / unpooled.ops_per_s : 0,
	      "queries/s with the pool / a fresh connection per query");
	return 0;
}

static int w_overhead(run *rn)
{
	static const int threads[] = {1, 8, 64};
	for (size_t i = 0; i < sizeof threads / sizeof *threads; i++) {
		bench_result r;
		pqpool_config c = cfg_of(rn);
		bench_opts o = rn->o;
		o.threads = threads[i];
		if (record(rn, bench_overhead(&o, &c, &r), &r) != 0)
			return -1;
	}
	return 0;
}

static int w_spec(run *rn)
{
	bench_result r;
	pqpool_config c = cfg_of(rn);
	if ((rn->o.blocking ? bench_spec(&rn->o, &c, &r)
	                    : bench_spec_async(&rn->o, &c, &r)) != 0)
		return -1;
	json_array_append_new(rn->results, result_json(&r));
	if (!rn->json) {
		printf("spec: %d concurrent `SELECT $1 as test, NOW() as timestamp` on a "
		       "pool of %d, "
		       "%s\n",
		       rn->o.blocking ? rn->o.threads : 50, rn->o.pool,
		       rn->o.blocking
		               ? "a thread each, rounds kept by barriers"
		               : "issued from one thread (pqpool_send), as Node.js does");
		printf("  %.0f rounds/s (%llu queries in %.1f s, %llu errors)\n",
		       r.rounds_per_s, (unsigned long long)r.ops, r.seconds,
		       (unsigned long long)r.errors);
		printf("  per query ms: average %.3f  min %.3f  max %.3f  p50 %.3f  p99 "
		       "%.3f\n",
		       lat_mean_ns(&r.latency) / 1e6, ms(r.latency.min_ns),
		       ms(r.latency.max_ns), ms(lat_quantile(&r.latency, 0.5)),
		       ms(lat_quantile(&r.latency, 0.99)));
	}
	return 0;
}

/* pgbench right before and after pqpool, with the same connections, query
 * and protocol; the ratios use the mean of the two pgbench runs. */
static int w_compare(run *rn)
{
	bench_result before, pq, after;
	pqpool_config c = cfg_of(rn);
	double pg_qps, pg_cpu, p50, p99, worst;
	bench_opts po = rn->o;
	bench_result pbefore, pafter;
	bool piped = rn->o.loops > 0 && rn->o.outstanding > 0;
	if (piped) {
		/* pgbench pipelined at as many statements in flight: -c P, each
		 * client a pipeline of M/P (fewer clients when M < P) */
		po.pool = rn->o.outstanding < rn->o.pool ? rn->o.outstanding : rn->o.pool;
		po.pipeline = rn->o.outstanding / po.pool;
	}
	if (record(rn, bench_pgbench(&rn->o, &c, &before), &before) != 0)
		return -1;
	c = cfg_of(rn);
	if (piped && record(rn, bench_pgbench(&po, &c, &pbefore), &pbefore) != 0)
		return -1;
	if (record(rn, pooled(rn, &pq), &pq) != 0)
		return -1;
	c = cfg_of(rn);
	if (record(rn, bench_pgbench(&rn->o, &c, &after), &after) != 0)
		return -1;
	c = cfg_of(rn);
	if (piped && record(rn, bench_pgbench(&po, &c, &pafter), &pafter) != 0)
		return -1;
	pg_qps = (before.ops_per_s + after.ops_per_s) / 2;
	pg_cpu = (before.cpu_us_per_op + after.cpu_us_per_op) / 2;
	/* waits: measured around each acquire with --lease; else the pool's
	 * own histogram, and the slowest whole query bounds the worst wait */
	if (pq.wait.count) {
		p50 = ms(lat_quantile(&pq.wait, 0.5));
		p99 = ms(lat_quantile(&pq.wait, 0.99));
		worst = ms(pq.worst_wait_ns);
	} else {
		p50 = pqpool_hist_quantile(&pq.pool_wait, 0.5);
		p99 = pqpool_hist_quantile(&pq.pool_wait, 0.99);
		worst = ms(pq.latency.max_ns);
	}
	if (!rn->json)
		puts("ratios:");
	ratio(rn, "throughput_over_pgbench", pg_qps > 0 ? pq.ops_per_s / pg_qps : 0,
	      "pqpool queries/s / pgbench's, mean of before and after");
	ratio(rn, "client_cpu_over_pgbench", pg_cpu > 0 ? pq.cpu_us_per_op / pg_cpu : 0,
	      "pqpool client CPU per query / pgbench's");
	if (piped) {
		double pp_qps = (pbefore.ops_per_s + pafter.ops_per_s) / 2;
		double pp_cpu = (pbefore.cpu_us_per_op + pafter.cpu_us_per_op) / 2;
		ratio(rn, "throughput_over_pgbench_pipelined",
		      pp_qps > 0 ? pq.ops_per_s / pp_qps : 0,
		      "pqpool queries/s / pgbench pipelined at as many in flight");
		ratio(rn, "client_cpu_over_pgbench_pipelined",
		      pp_cpu > 0 ? pq.cpu_us_per_op / pp_cpu : 0,
		      "pqpool client CPU per query / pgbench pipelined's");
	}
	if (rn->o.loops > 0) {
		ratio(rn, "slowest_query_ms", ms(pq.latency.max_ns),
		      "the slowest statement, submission to callback");
		return 0;
	}
	ratio(rn, "wait_p99_over_median", p50 > 0 ? p99 / p50 : 0,
	      "fairness: p99 wait for a connection / the median");
	json_object_set_new(json_object_get(rn->out, "ratios"), "worst_wait_ms",
	                    json_real(worst));
	if (!rn->json)
		printf("  %-34s %6.1f  (%s)\n", "worst_wait_ms", worst,
		       pq.wait.count ? "the longest any caller waited for a connection"
		                     : "the slowest query, its wait included");
	return 0;
}

/* For the chart: throughput against client count for pqpool (a pool of
 * --pool), no pool, and pgbench with as many connections as clients. */
static int w_sweep(run *rn, const char *list)
{
	char *copy = strdup(list ? list : "1,2,4,8,16,32,64"), *tok, *save = NULL;
	int rc = 0;
	if (!copy)
		return -1;
	for (tok = strtok_r(copy, ",", &save); tok && rc == 0;
	     tok = strtok_r(NULL, ",", &save)) {
		int n = atoi(tok);
		bench_result r;
		pqpool_config c;
		bench_opts o = rn->o;
		if (n < 1 || n > 1024) {
			fprintf(stderr,
			        "pqpool: --clients: \"%s\" is not a count from 1 to "
			        "1024\n",
			        tok);
			rc = -1;
			break;
		}
		o.threads = n;
		c = cfg_of(rn);
		rc = record(rn, bench_throughput(&o, &c, &r), &r);
		if (rc == 0) {
			c = cfg_of(rn);
			rc = record(rn, bench_nopool(&o, &c, &r), &r);
		}
		if (rc == 0) {
			o.pool = n;
			c = cfg_of(rn);
			rc = record(rn, bench_pgbench(&o, &c, &r), &r);
		}
	}
	free(copy);
	return rc;
}

/* Whether the kernel shares the CPU between sessions before threads
 * (kernel.sched_autogroup_enabled): the server, started by pg_ctl in a
 * session of its own, and the benchmark then weigh the same whatever their
 * thread counts, which moves the figures a lot (BENCHMARKS.md). -1 when
 * unknown. */
static int autogroup(void)
{
	FILE *f = fopen("/proc/sys/kernel/sched_autogroup_enabled", "r");
	int v = -1;
	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v < 0 ? -1 : v != 0;
}

static int run_bench(const cli_args *args)
{
	static const char *const workloads[] = {"spec",     "throughput", "nopool",
	                                        "overhead", "compare",    "sweep"};
	run rn;
	int rc = 0, dur;
	bool known = false;

	memset(&rn, 0, sizeof rn);
	rn.workload = args->argv[0];
	for (size_t i = 0; i < sizeof workloads / sizeof *workloads; i++)
		known = known || strcmp(rn.workload, workloads[i]) == 0;
	if (!known) {
		fprintf(stderr,
		        "pqpool: bench: unknown workload \"%.40s\" (spec, throughput, "
		        "nopool, overhead, compare or sweep)\n",
		        rn.workload);
		cli_usage_hint(args->cmd);
		return CLI_EXIT_USAGE;
	}
	if (int_opt(args, "threads", strcmp(rn.workload, "spec") == 0 ? 50 : 64, 1, 4096,
	            &rn.o.threads) != 0 ||
	    int_opt(args, "pool", 20, 1, 10000, &rn.o.pool) != 0 ||
	    int_opt(args, "duration", strcmp(rn.workload, "overhead") == 0 ? 3 : 10, 1,
	            3600, &dur) != 0 ||
	    int_opt(args, "rounds", 0, 0, 100000000, &rn.o.rounds) != 0 ||
	    int_opt(args, "loops", 0, 0, 1024, &rn.o.loops) != 0 ||
	    int_opt(args, "outstanding", 0, 0, 100000, &rn.o.outstanding) != 0)
		return CLI_EXIT_USAGE;
	if (rn.o.outstanding > 0 && rn.o.loops == 0) {
		fputs("pqpool: bench: --outstanding needs --loops\n", stderr);
		cli_usage_hint(args->cmd);
		return CLI_EXIT_USAGE;
	}
	rn.o.duration_s = dur;
	rn.o.query = cli_value(args, "query") ? cli_value(args, "query") : "SELECT 1";
	rn.o.prepared = cli_flag(args, "prepared");
	rn.o.lease = cli_flag(args, "lease");
	rn.o.blocking = cli_flag(args, "blocking");
	rn.o.progress = !cli_flag(args, "no-progress") && isatty(2);
	rn.json = cli_flag(args, "json");

	rc = setup_load(&rn.s);
	if (rc != 0) {
		setup_free(&rn.s);
		return rc;
	}
	rn.out = json_pack("{s:s, s:{s:i, s:i, s:f, s:s, s:b, s:i, s:i}, s:[], s:{}}",
	                   "workload", rn.workload, "options", "threads", rn.o.threads,
	                   "pool", rn.o.pool, "duration_s", rn.o.duration_s, "query",
	                   rn.o.query, "prepared", rn.o.prepared, "loops", rn.o.loops,
	                   "outstanding", rn.o.outstanding,
	                   "results", "ratios");
	rn.results = rn.out ? json_object_get(rn.out, "results") : NULL;
	if (!rn.results) {
		setup_free(&rn.s);
		json_decref(rn.out);
		fputs("pqpool: out of memory\n", stderr);
		return CLI_EXIT_FAIL;
	}
	{
		char *url = setup_masked_url(rn.s.cfg.conninfo);
		int ag = autogroup();
		json_object_set_new(rn.out, "database", json_string(url ? url : "?"));
		json_object_set_new(rn.out, "cpus",
		                    json_integer(sysconf(_SC_NPROCESSORS_ONLN)));
		json_object_set_new(rn.out, "autogroup",
		                    ag < 0 ? json_null() : json_boolean(ag));
		if (!rn.json)
			printf("pqpool bench %s against %s (%ld CPUs%s)\n", rn.workload,
			       url ? url : "?", sysconf(_SC_NPROCESSORS_ONLN),
			       ag < 0 ? ""
			       : ag   ? ", autogroup on"
			              : ", autogroup off");
		free(url);
	}
	if (strcmp(rn.workload, "spec") == 0)
		rc = w_spec(&rn);
	else if (strcmp(rn.workload, "throughput") == 0)
		rc = w_throughput(&rn);
	else if (strcmp(rn.workload, "nopool") == 0)
		rc = w_nopool(&rn);
	else if (strcmp(rn.workload, "overhead") == 0)
		rc = w_overhead(&rn);
	else if (strcmp(rn.workload, "compare") == 0)
		rc = w_compare(&rn);
	else
		rc = w_sweep(&rn, cli_value(args, "clients"));
	if (rc == 0 && rn.json) {
		char *s = json_dumps(rn.out, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
		if (s)
			puts(s);
		free(s);
	}
	json_decref(rn.out);
	setup_free(&rn.s);
	return rc == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

const cli_command bench_command = {
        .name = "bench",
        .summary = "measure the pool: spec, throughput, nopool, overhead, compare, sweep",
        .args = "<workload>",
        .details =
                "Workloads, against the database of `pqpool config`:\n"
                "  spec        rounds of the specification's load test: 50 concurrent\n"
                "              `SELECT $1 as test, NOW() as timestamp` through a pool\n"
                "              of 20; rounds/s and per-query latency\n"
                "  throughput  N client threads (64) on a pool of P (20) running the\n"
                "              query for T seconds: queries/s, latency and wait\n"
                "              percentiles, client CPU per query (getrusage)\n"
                "  nopool      throughput, then the same work with a fresh connection\n"
                "              per query, and the ratio\n"
                "  overhead    acquire + release of an open connection, no query,\n"
                "              with 1, 8 and 64 threads\n"
                "  compare     pgbench (-c P -j 2, same query and protocol) right\n"
                "              before and after throughput; the ratios of\n"
                "              throughput and client CPU per query, and fairness\n"
                "  sweep       throughput, nopool and pgbench for each client count\n"
                "              of --clients, for the chart (bench/chart.sh)\n"
                "Exits 1 when a measurement fails (e.g. pgbench is missing).",
        .options = bench_options,
        .min_args = 1,
        .max_args = 1,
        .run = run_bench,
};
