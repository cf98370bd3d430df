/* bench.h — the workloads behind `pqpool bench`: what they measure and what
 * they report. Benchmarks are programs, not timed tests: they print figures
 * and compare side by side in one run. */
#ifndef PQPOOL_BENCH_H
#define PQPOOL_BENCH_H

#include <stdbool.h>
#include <stdint.h>

#include "pqpool.h"

/* ---- latency histogram: log-linear, about 3 % resolution, no allocation ---- */
#define LAT_SUB     32 /* sub-buckets per power of two */
#define LAT_BUCKETS (64 * LAT_SUB)

typedef struct lat_hist {
	uint64_t count;
	uint64_t sum_ns;
	uint64_t min_ns, max_ns;
	uint64_t b[LAT_BUCKETS];
} lat_hist;

void lat_init(lat_hist *h);
void lat_add(lat_hist *h, uint64_t ns);
void lat_merge(lat_hist *into, const lat_hist *from);
/* Value at quantile q (0..1), ns; 0 when empty. */
uint64_t lat_quantile(const lat_hist *h, double q);
double lat_mean_ns(const lat_hist *h);

/* ---- options and results ---- */
typedef struct bench_opts {
	const char *conninfo; /* NULL: from the environment (pqpool config) */
	int threads;          /* client threads (throughput, nopool, overhead) */
	int pool;             /* pool size */
	double duration_s;    /* per measurement */
	int rounds;           /* spec: rounds; others: repetitions */
	const char *query;    /* throughput / nopool / compare */
	bool prepared;        /* named statements cached per connection */
	bool lease;           /* throughput: acquire, exec, release instead of
	                       * the one-shot pqpool_query */
	bool blocking;        /* spec: a thread per concurrent query, rounds
	                       * kept by barriers, instead of one thread */
	int loops;            /* throughput, compare: event-loop threads with
	                       * pqpool_submit instead of blocking callers
	                       * (0: blocking) */
	int outstanding;      /* with loops: statements kept in flight in
	                       * total (0: one per connection of the pool) */
	int pipeline;         /* pgbench: statements per \startpipeline ...
	                       * \endpipeline (0: not pipelined) */
	bool progress;        /* a progress line on stderr */
} bench_opts;

typedef struct bench_result {
	const char *name; /* "pqpool", "nopool", "pgbench", ... */
	int threads, conns;
	bool prepared;
	double seconds; /* wall time measured */
	uint64_t ops;   /* queries, rounds or cycles */
	uint64_t errors;
	double ops_per_s;
	double cpu_s; /* client CPU (user + system) */
	double cpu_us_per_op;
	lat_hist latency;       /* per query, acquire included */
	lat_hist wait;          /* acquire only (pooled runs) */
	uint64_t worst_wait_ns; /* longest single acquire (lease runs) */
	pqpool_hist pool_wait;  /* the pool's own wait histogram over the run */
	double rounds_per_s;    /* spec only */
	int outstanding;        /* statements kept in flight (loops, pgbench) */
} bench_result;

/* Each returns 0, or -1 with a message on stderr. */
int bench_throughput(const bench_opts *o, pqpool_config *cfg, bench_result *r);
/* The same work from o->loops event-loop threads with pqpool_submit,
 * keeping o->outstanding statements in flight between them. */
int bench_throughput_async(const bench_opts *o, pqpool_config *cfg, bench_result *r);
int bench_nopool(const bench_opts *o, pqpool_config *cfg, bench_result *r);
int bench_overhead(const bench_opts *o, pqpool_config *cfg, bench_result *r);
int bench_spec(const bench_opts *o, pqpool_config *cfg, bench_result *r);
/* The same rounds from one thread with the non-blocking API, as Node.js
 * runs them. */
int bench_spec_async(const bench_opts *o, pqpool_config *cfg, bench_result *r);
/* Runs pgbench with the same connections, query and protocol; its CPU is
 * the child's rusage. */
int bench_pgbench(const bench_opts *o, pqpool_config *cfg, bench_result *r);

/* Monotonic seconds; process CPU seconds (all threads). */
double bench_now(void);
double bench_cpu_self(void);

#endif
