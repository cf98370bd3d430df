/* workloads.c — the measurements: pooled throughput, the same work without a
 * pool, the pool's own overhead, the specification's load test, and pgbench
 * as the C reference, each reporting throughput, latency and client CPU. */
#include "bench.h"
#include "clock.h"

#include <pqpool/epoll.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* A progress line on stderr while a measurement runs, then erased. */
static void progress(const bench_opts *o, const char *what, double done, double total)
{
	if (!o->progress)
		return;
	if (done < 0) {
		fprintf(stderr, "\r%60s\r", "");
		return;
	}
	fprintf(stderr, "\r%s: %3.0f %%", what, total > 0 ? 100.0 * done / total : 0);
	fflush(stderr);
}

static void wait_measuring(const bench_opts *o, const char *what, double seconds)
{
	double t0 = bench_now();
	while (bench_now() - t0 < seconds) {
		double left = seconds - (bench_now() - t0);
		progress(o, what, bench_now() - t0, seconds);
		pqc_sleep_ms((int64_t)((left < 0.5 ? left : 0.5) * 1000));
	}
	progress(o, what, -1, 0);
}

static void finish(bench_result *r, double t0, double cpu0)
{
	r->seconds = bench_now() - t0;
	r->cpu_s = bench_cpu_self() - cpu0;
	r->ops_per_s = r->seconds > 0 ? (double)r->ops / r->seconds : 0;
	r->cpu_us_per_op = r->ops ? r->cpu_s * 1e6 / (double)r->ops : 0;
}

static int open_pool(pqpool_config *cfg, int size, pqpool **p)
{
	cfg->pool_max = size;
	cfg->pool_min = size;
	if (pqpool_open(cfg, p) != PQPOOL_OK) {
		fprintf(stderr, "bench: %s\n", pqpool_errmsg());
		return -1;
	}
	return 0;
}

/* Phases of a timed run, shared by the workers of one measurement. */
enum { PH_WAIT, PH_WARM, PH_MEASURE, PH_STOP };

/* Runs the workers through a warm-up (connections opened, statements
 * prepared, caches warm; not counted) and the measured interval. With a
 * pool, its wait histogram over the interval goes to *wait. */
static void run_phases(const bench_opts *o, const char *what, _Atomic int *phase,
                       double *t0, double *cpu0, pqpool *pool, pqpool_hist *wait)
{
	pqpool_stats before, after;
	atomic_store(phase, PH_WARM);
	pqc_sleep_ms(
	        (int64_t)((o->duration_s / 10 < 0.5 ? o->duration_s / 10 : 0.5) * 1000));
	if (pool)
		pqpool_stats_get(pool, &before);
	*cpu0 = bench_cpu_self();
	*t0 = bench_now();
	atomic_store(phase, PH_MEASURE);
	wait_measuring(o, what, o->duration_s);
	atomic_store(phase, PH_STOP);
	if (pool) {
		pqpool_stats_get(pool, &after);
		memset(wait, 0, sizeof *wait);
		for (int b = 0; b < PQPOOL_HIST_BUCKETS; b++) {
			wait->buckets[b] = after.wait.buckets[b] - before.wait.buckets[b];
			wait->count += wait->buckets[b];
		}
		wait->sum_ms = after.wait.sum_ms - before.wait.sum_ms;
	}
}

/* What one worker measured: its queries, its errors (the first one's
 * message kept) and their latency, added to the result at the end. */
typedef struct tally {
	uint64_t ops, errors;
	lat_hist lat;
	char err[256];
} tally;

static void tally_error(tally *t, const char *msg)
{
	if (!t->errors)
		snprintf(t->err, sizeof t->err, "%s", msg);
	t->errors++;
}

/* Adds t to r; its errors, if any, are reported on stderr after "bench: "
 * and what. */
static void tally_merge(bench_result *r, const tally *t, const char *what)
{
	r->ops += t->ops;
	r->errors += t->errors;
	lat_merge(&r->latency, &t->lat);
	if (t->errors)
		fprintf(stderr, "bench: %s%llu error(s), first: %s\n", what,
		        (unsigned long long)t->errors, t->err);
}

/* ---- throughput: N threads on a pool of P, one query per lease ---- */

struct tp_worker {
	pqpool *pool;
	const bench_opts *o;
	_Atomic int *phase;
	tally t;
	uint64_t worst_wait;
	lat_hist wait;
	pthread_t th;
};

static void *tp_run(void *arg)
{
	struct tp_worker *w = arg;
	int ph;
	while (atomic_load(w->phase) == PH_WAIT)
		sched_yield();
	while ((ph = atomic_load_explicit(w->phase, memory_order_relaxed)) != PH_STOP) {
		pqpool_conn *c;
		uint64_t t0 = (uint64_t)pqc_now_ns(), t1, t2;
		int rc;
		if (w->o->lease) {
			rc = pqpool_acquire(w->pool, -1, &c);
			t1 = (uint64_t)pqc_now_ns();
			if (rc == PQPOOL_OK) {
				rc = pqpool_exec(c, w->o->query, 0, NULL, NULL);
				pqpool_release(c);
			}
		} else {
			/* the one-shot query: its wait is in the pool's histogram */
			rc = pqpool_query(w->pool, w->o->query, 0, NULL, 0, NULL);
			t1 = 0;
		}
		t2 = (uint64_t)pqc_now_ns();
		if (ph != PH_MEASURE)
			continue;
		if (rc != PQPOOL_OK) {
			tally_error(&w->t, pqpool_errmsg());
			continue;
		}
		if (t1) {
			lat_add(&w->wait, t1 - t0);
			if (t1 - t0 > w->worst_wait)
				w->worst_wait = t1 - t0;
		}
		lat_add(&w->t.lat, t2 - t0);
		w->t.ops++;
	}
	return NULL;
}

static void init_result(bench_result *r, const char *name, const bench_opts *o)
{
	memset(r, 0, sizeof *r);
	lat_init(&r->latency);
	lat_init(&r->wait);
	r->name = name;
	r->threads = o->threads;
	r->conns = o->pool;
	r->prepared = o->prepared;
}

int bench_throughput(const bench_opts *o, pqpool_config *cfg, bench_result *r)
{
	struct tp_worker *w = calloc((size_t)o->threads, sizeof *w);
	_Atomic int phase = PH_WAIT;
	pqpool *p;
	double t0, cpu0;

	init_result(r,
	            o->lease ? (o->prepared ? "pqpool lease prepared" : "pqpool lease")
	                     : (o->prepared ? "pqpool prepared" : "pqpool"),
	            o);
	cfg->prepare = o->prepared;
	if (!w || open_pool(cfg, o->pool, &p) != 0) {
		free(w);
		return -1;
	}
	for (int i = 0; i < o->threads; i++) {
		w[i].pool = p;
		w[i].o = o;
		w[i].phase = &phase;
		lat_init(&w[i].t.lat);
		lat_init(&w[i].wait);
		pthread_create(&w[i].th, NULL, tp_run, &w[i]);
	}
	run_phases(o, r->name, &phase, &t0, &cpu0, p, &r->pool_wait);
	for (int i = 0; i < o->threads; i++)
		pthread_join(w[i].th, NULL);
	for (int i = 0; i < o->threads; i++) {
		tally_merge(r, &w[i].t, "");
		lat_merge(&r->wait, &w[i].wait);
		if (w[i].worst_wait > r->worst_wait_ns)
			r->worst_wait_ns = w[i].worst_wait;
	}
	finish(r, t0, cpu0);
	pqpool_close(p, 5000);
	free(w);
	return 0;
}

/* ---- throughput, the event-loop way: pqpool_submit from a few threads ---- */

/* Each loop keeps its share of the outstanding statements in flight on its
 * own epoll loop: a callback submits the next one at once. The pool queues
 * and pipelines them; latency counts from submission to callback. */
struct al_worker {
	pqpool *pool;
	const bench_opts *o;
	_Atomic int *phase;
	int share; /* statements this loop keeps in flight */
	pqpool_loop *loop;
	tally t;
	pthread_t th;
};

struct al_call {
	struct al_worker *w;
	int64_t t0;
};

static void al_error(struct al_worker *w, int ph)
{
	if (ph == PH_MEASURE)
		tally_error(&w->t, pqpool_errmsg());
}

static void al_submit(struct al_call *c);

static void al_done(void *arg, int status, const PGresult *res)
{
	struct al_call *c = arg;
	struct al_worker *w = c->w;
	int ph = atomic_load_explicit(w->phase, memory_order_relaxed);
	(void)res;
	if (status != PQPOOL_OK) {
		al_error(w, ph);
	} else if (ph == PH_MEASURE) {
		lat_add(&w->t.lat, (uint64_t)(pqc_now_ns() - c->t0));
		w->t.ops++;
	}
	if (ph != PH_STOP)
		al_submit(c);
}

static void al_submit(struct al_call *c)
{
	c->t0 = pqc_now_ns();
	if (pqpool_submit(c->w->loop, c->w->o->query, 0, NULL, 0, al_done, c) != PQPOOL_OK)
		al_error(c->w, atomic_load_explicit(c->w->phase, memory_order_relaxed));
}

static void *al_run(void *arg)
{
	struct al_worker *w = arg;
	struct al_call *calls = calloc((size_t)w->share, sizeof *calls);
	pqpool_epoll ep;
	if (!calls || pqpool_epoll_open(&ep, w->pool) != PQPOOL_OK) {
		tally_error(&w->t, calls ? pqpool_errmsg() : "out of memory");
		free(calls);
		return NULL;
	}
	w->loop = ep.loop;
	while (atomic_load(w->phase) == PH_WAIT)
		sched_yield();
	for (int i = 0; i < w->share; i++) {
		calls[i].w = w;
		al_submit(&calls[i]);
	}
	/* until stopped and every callback has run; a quiet 100 ms looks
	 * at the phase again */
	while (atomic_load_explicit(w->phase, memory_order_relaxed) != PH_STOP ||
	       pqpool_loop_pending(ep.loop) > 0)
		pqpool_epoll_run_once(&ep, 100);
	pqpool_epoll_close(&ep);
	free(calls);
	return NULL;
}

int bench_throughput_async(const bench_opts *o, pqpool_config *cfg, bench_result *r)
{
	int total = o->outstanding > 0 ? o->outstanding : o->pool;
	int loops = o->loops < total ? o->loops : total;
	struct al_worker *w = calloc((size_t)loops, sizeof *w);
	_Atomic int phase = PH_WAIT;
	pqpool *p;
	double t0, cpu0;

	init_result(r, o->prepared ? "pqpool_submit prepared" : "pqpool_submit", o);
	r->threads = loops;
	r->outstanding = total;
	cfg->prepare = o->prepared;
	if (!w || open_pool(cfg, o->pool, &p) != 0) {
		free(w);
		return -1;
	}
	for (int i = 0; i < loops; i++) {
		w[i].pool = p;
		w[i].o = o;
		w[i].phase = &phase;
		w[i].share = total / loops + (i < total % loops);
		lat_init(&w[i].t.lat);
		pthread_create(&w[i].th, NULL, al_run, &w[i]);
	}
	/* the pool's wait histogram: how long statements waited to go out */
	run_phases(o, r->name, &phase, &t0, &cpu0, p, &r->pool_wait);
	for (int i = 0; i < loops; i++)
		pthread_join(w[i].th, NULL);
	for (int i = 0; i < loops; i++)
		tally_merge(r, &w[i].t, "");
	finish(r, t0, cpu0);
	pqpool_close(p, 5000);
	free(w);
	return 0;
}

/* ---- nopool: the same work, a fresh connection per query ---- */

struct np_worker {
	const pqpool_config *cfg;
	const bench_opts *o;
	_Atomic int *phase;
	tally t;
	pthread_t th;
};

static void *np_run(void *arg)
{
	struct np_worker *w = arg;
	int ph;
	while (atomic_load(w->phase) == PH_WAIT)
		sched_yield();
	while ((ph = atomic_load_explicit(w->phase, memory_order_relaxed)) != PH_STOP) {
		uint64_t t0 = (uint64_t)pqc_now_ns();
		PGconn *c = NULL;
		bool ok = false;
		/* opened exactly as the pool opens its connections */
		if (pqpool_connect(w->cfg, -1, &c) == PQPOOL_OK) {
			PGresult *res = PQexecParams(c, w->o->query, 0, NULL, NULL, NULL,
			                             NULL, 0);
			ok = PQresultStatus(res) == PGRES_TUPLES_OK ||
			     PQresultStatus(res) == PGRES_COMMAND_OK;
			PQclear(res);
		}
		if (!ok && !w->t.errors)
			snprintf(w->t.err, sizeof w->t.err, "%s",
			         c ? PQerrorMessage(c) : pqpool_errmsg());
		PQfinish(c);
		if (ph != PH_MEASURE)
			continue;
		if (!ok) {
			w->t.errors++;
			continue;
		}
		lat_add(&w->t.lat, (uint64_t)pqc_now_ns() - t0);
		w->t.ops++;
	}
	return NULL;
}

int bench_nopool(const bench_opts *o, pqpool_config *cfg, bench_result *r)
{
	struct np_worker *w = calloc((size_t)o->threads, sizeof *w);
	_Atomic int phase = PH_WAIT;
	char err[512];
	double t0, cpu0;

	init_result(r, "no pool", o);
	r->conns = o->threads;
	if (!w || pqpool_config_validate(cfg, err, sizeof err) != PQPOOL_OK) {
		fprintf(stderr, "bench: %s\n", w ? err : "out of memory");
		free(w);
		return -1;
	}
	for (int i = 0; i < o->threads; i++) {
		w[i].cfg = cfg;
		w[i].o = o;
		w[i].phase = &phase;
		lat_init(&w[i].t.lat);
		pthread_create(&w[i].th, NULL, np_run, &w[i]);
	}
	run_phases(o, r->name, &phase, &t0, &cpu0, NULL, NULL);
	for (int i = 0; i < o->threads; i++)
		pthread_join(w[i].th, NULL);
	for (int i = 0; i < o->threads; i++)
		tally_merge(r, &w[i].t, "no pool: ");
	finish(r, t0, cpu0);
	free(w);
	return 0;
}

/* ---- overhead: acquire + release of an open connection, no query ---- */

struct ov_worker {
	pqpool *pool;
	_Atomic int *phase;
	uint64_t ops, errors;
	pthread_t th;
};

static void *ov_run(void *arg)
{
	struct ov_worker *w = arg;
	int ph;
	while (atomic_load(w->phase) == PH_WAIT)
		sched_yield();
	while ((ph = atomic_load_explicit(w->phase, memory_order_relaxed)) != PH_STOP) {
		uint64_t n = 0, errs = 0;
		/* 64 cycles between looks at the phase */
		for (int i = 0; i < 64; i++) {
			pqpool_conn *c;
			if (pqpool_acquire(w->pool, -1, &c) != PQPOOL_OK) {
				errs++;
				continue;
			}
			pqpool_release(c);
			n++;
		}
		if (ph == PH_MEASURE) {
			w->ops += n;
			w->errors += errs;
		}
	}
	return NULL;
}

int bench_overhead(const bench_opts *o, pqpool_config *cfg, bench_result *r)
{
	struct ov_worker *w = calloc((size_t)o->threads, sizeof *w);
	_Atomic int phase = PH_WAIT;
	pqpool *p;
	double t0, cpu0;

	init_result(r, "acquire+release", o);
	if (!w || open_pool(cfg, o->pool, &p) != 0) {
		free(w);
		return -1;
	}
	for (int i = 0; i < o->threads; i++) {
		w[i].pool = p;
		w[i].phase = &phase;
		pthread_create(&w[i].th, NULL, ov_run, &w[i]);
	}
	run_phases(o, "overhead", &phase, &t0, &cpu0, NULL, NULL);
	for (int i = 0; i < o->threads; i++) {
		pthread_join(w[i].th, NULL);
		r->ops += w[i].ops;
		r->errors += w[i].errors;
	}
	finish(r, t0, cpu0);
	pqpool_close(p, 5000);
	free(w);
	return 0;
}

/* ---- spec: rounds of 50 concurrent queries through a pool of 20 ---- */

struct sp_shared {
	pqpool *pool;
	pthread_barrier_t start, done;
	_Atomic int stop;
	int nthreads;
};

struct sp_worker {
	struct sp_shared *sh;
	int index;
	tally t; /* its ops are the latency count */
	pthread_t th;
};

static void *sp_run(void *arg)
{
	struct sp_worker *w = arg;
	char param[16];
	const char *params[] = {param};
	snprintf(param, sizeof param, "%d", w->index);
	for (;;) {
		uint64_t t0;
		PGresult *res;
		pthread_barrier_wait(&w->sh->start);
		if (atomic_load(&w->sh->stop))
			return NULL;
		t0 = (uint64_t)pqc_now_ns();
		/* the spec's: pool.query("SELECT $1 as test, NOW() as timestamp", [i]) */
		if (pqpool_query(w->sh->pool, "SELECT $1 as test, NOW() as timestamp", 1,
		                 params, 0, &res) == PQPOOL_OK) {
			lat_add(&w->t.lat, (uint64_t)pqc_now_ns() - t0);
			PQclear(res);
		} else {
			tally_error(&w->t, pqpool_errmsg());
		}
		pthread_barrier_wait(&w->sh->done);
	}
}

int bench_spec(const bench_opts *o, pqpool_config *cfg, bench_result *r)
{
	struct sp_shared sh = {0};
	struct sp_worker *w = calloc((size_t)o->threads, sizeof *w);
	double t0, cpu0;
	uint64_t rounds = 0;

	init_result(r, "spec", o);
	/* statements as the configuration says (DB_PREPARED_STATEMENTS) */
	if (!w || open_pool(cfg, o->pool, &sh.pool) != 0) {
		free(w);
		return -1;
	}
	sh.nthreads = o->threads;
	pthread_barrier_init(&sh.start, NULL, (unsigned)o->threads + 1);
	pthread_barrier_init(&sh.done, NULL, (unsigned)o->threads + 1);
	for (int i = 0; i < o->threads; i++) {
		w[i].sh = &sh;
		w[i].index = i;
		lat_init(&w[i].t.lat);
		pthread_create(&w[i].th, NULL, sp_run, &w[i]);
	}
	/* one warm-up round, then rounds until --rounds or --duration */
	pthread_barrier_wait(&sh.start);
	pthread_barrier_wait(&sh.done);
	for (int i = 0; i < o->threads; i++) {
		lat_init(&w[i].t.lat);
		w[i].t.errors = 0;
	}
	cpu0 = bench_cpu_self();
	t0 = bench_now();
	while ((o->rounds > 0 && rounds < (uint64_t)o->rounds) ||
	       (o->rounds <= 0 && bench_now() - t0 < o->duration_s)) {
		pthread_barrier_wait(&sh.start);
		pthread_barrier_wait(&sh.done);
		rounds++;
		if ((rounds & 63) == 0)
			progress(o, "spec",
			         o->rounds > 0 ? (double)rounds : bench_now() - t0,
			         o->rounds > 0 ? o->rounds : o->duration_s);
	}
	progress(o, "spec", -1, 0);
	finish(r, t0, cpu0);
	atomic_store(&sh.stop, 1);
	pthread_barrier_wait(&sh.start);
	for (int i = 0; i < o->threads; i++) {
		pthread_join(w[i].th, NULL);
		tally_merge(r, &w[i].t, "spec: ");
	}
	r->ops = r->latency.count;
	r->rounds_per_s = r->seconds > 0 ? (double)rounds / r->seconds : 0;
	r->ops_per_s = r->seconds > 0 ? (double)r->ops / r->seconds : 0;
	r->cpu_us_per_op = r->ops ? r->cpu_s * 1e6 / (double)r->ops : 0;
	pthread_barrier_destroy(&sh.start);
	pthread_barrier_destroy(&sh.done);
	pqpool_close(sh.pool, 5000);
	free(w);
	return 0;
}

/* ---- pgbench: the C reference, same connections, query and protocol ---- */

/* Appends key='value' with libpq quoting. */
static void append_kv(char *buf, size_t len, const char *k, const char *v)
{
	size_t n = strlen(buf);
	if (n + strlen(k) + 4 >= len)
		return;
	n += (size_t)snprintf(buf + n, len - n, "%s%s='", n ? " " : "", k);
	for (; *v && n + 3 < len; v++) {
		if (*v == '\'' || *v == '\\')
			buf[n++] = '\\';
		buf[n++] = *v;
	}
	if (n + 2 < len) {
		buf[n++] = '\'';
		buf[n] = '\0';
	}
}

int bench_pgbench(const bench_opts *o, pqpool_config *cfg, bench_result *r)
{
	PQconninfoOption *opts = NULL, *defaults = NULL;
	PGconn *pg = NULL;
	char conninfo[4096] = "", script[] = "/tmp/pqpool-bench-XXXXXX";
	char clients[16], jobs[16], secs[16], line[512];
	char *password = NULL;
	int fd, pipefd[2], status;
	struct rusage ru;
	pid_t pid;
	FILE *out;
	double tps = 0;
	unsigned long long processed = 0;

	init_result(r,
	            o->pipeline > 0 ? (o->prepared ? "pgbench -M prepared, pipelined"
	                                           : "pgbench -M extended, pipelined")
	                            : (o->prepared ? "pgbench -M prepared"
	                                           : "pgbench -M extended"),
	            o);
	/* pgbench connects as the pool does: with the options libpq reports
	 * for a connection opened exactly as the pool opens its own, but those at
	 * libpq's own default, which pgbench has too (and an older libpq may not
	 * know the option at all) */
	if (pqpool_connect(cfg, -1, &pg) != PQPOOL_OK || !(opts = PQconninfo(pg)) ||
	    !(defaults = PQconndefaults())) {
		fprintf(stderr, "bench: %s\n", pg ? "out of memory" : pqpool_errmsg());
		PQconninfoFree(opts);
		PQfinish(pg);
		return -1;
	}
	/* the password goes to the child's environment, never its command line */
	for (const PQconninfoOption *k = opts; k->keyword; k++) {
		const char *def = NULL;
		for (const PQconninfoOption *d = defaults; d->keyword; d++)
			if (strcmp(d->keyword, k->keyword) == 0)
				def = d->val;
		if (!k->val || !k->val[0] || (def && strcmp(k->val, def) == 0))
			continue;
		if (strcmp(k->keyword, "password") == 0)
			password = strdup(k->val);
		else
			append_kv(conninfo, sizeof conninfo, k->keyword, k->val);
	}
	PQconninfoFree(defaults);
	PQconninfoFree(opts);
	PQfinish(pg);
	fd = mkstemp(script);
	if (fd >= 0 && o->pipeline > 0) {
		/* one transaction of pgbench's is a pipeline of o->pipeline */
		bool ok = dprintf(fd, "\\startpipeline\n") > 0;
		for (int i = 0; ok && i < o->pipeline; i++)
			ok = dprintf(fd, "%s;\n", o->query) > 0;
		if (!ok || dprintf(fd, "\\endpipeline\n") < 0) {
			close(fd);
			fd = -1;
		}
	} else if (fd >= 0 && dprintf(fd, "%s;\n", o->query) < 0) {
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		fprintf(stderr, "bench: cannot write the pgbench script: %s\n",
		        strerror(errno));
		free(password);
		return -1;
	}
	close(fd);
	snprintf(clients, sizeof clients, "%d", o->pool);
	snprintf(jobs, sizeof jobs, "%d", o->pool < 2 ? 1 : 2);
	snprintf(secs, sizeof secs, "%d",
	         (int)(o->duration_s + 0.5) > 0 ? (int)(o->duration_s + 0.5) : 1);
	if (pipe(pipefd) != 0) {
		unlink(script);
		free(password);
		return -1;
	}
	pid = fork();
	if (pid == 0) {
		dup2(pipefd[1], 1);
		close(pipefd[0]);
		close(pipefd[1]);
		if (password)
			setenv("PGPASSWORD", password, 1);
		execlp("pgbench", "pgbench", "-n", "-c", clients, "-j", jobs, "-T", secs,
		       "-M", o->prepared ? "prepared" : "extended", "-f", script,
		       conninfo, (char *)NULL);
		fprintf(stderr,
		        "bench: cannot run pgbench (Debian package postgresql-client): "
		        "%s\n",
		        strerror(errno));
		_exit(127);
	}
	close(pipefd[1]);
	free(password);
	if (pid < 0) {
		close(pipefd[0]);
		unlink(script);
		return -1;
	}
	out = fdopen(pipefd[0], "r");
	while (out && fgets(line, sizeof line, out)) {
		sscanf(line, "tps = %lf", &tps);
		sscanf(line, "number of transactions actually processed: %llu",
		       &processed);
	}
	if (out)
		fclose(out);
	wait4(pid, &status, 0, &ru);
	unlink(script);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || processed == 0) {
		fprintf(stderr, "bench: pgbench failed (exit %d)\n",
		        WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		return -1;
	}
	if (o->pipeline > 0) { /* statements, not pipelines */
		processed *= (unsigned long long)o->pipeline;
		tps *= o->pipeline;
	}
	r->ops = processed;
	r->ops_per_s = tps;
	r->seconds = (double)processed / tps;
	r->cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	r->cpu_us_per_op = r->cpu_s * 1e6 / (double)processed;
	r->threads = o->pool;
	r->conns = o->pool;
	r->outstanding = o->pool * (o->pipeline > 0 ? o->pipeline : 1);
	return 0;
}

/* ---- spec, the Node.js way: one thread, 50 queries issued per round ---- */

/* What node-postgres does with Promise.all over 50 pool.query calls: issue
 * them all, the pool running 20 at a time and queueing the rest; here one
 * thread sends what it can (pqpool_send), waits on the sockets, finishes
 * what has answered and sends the next. Each query's time counts from the
 * start of its round, as the spec's Date.now() around pool.query does. */
int bench_spec_async(const bench_opts *o, pqpool_config *cfg, bench_result *r)
{
	enum { PER_ROUND = 50 };
	struct inflight {
		pqpool_inflight *q;
		int idx;
	} *fl = calloc((size_t)o->pool, sizeof *fl);
	struct pollfd *pfd = calloc((size_t)o->pool, sizeof *pfd);
	char vals[PER_ROUND][16];
	const char *params[PER_ROUND][1];
	pqpool *p;
	double t0, cpu0;
	uint64_t rounds = 0;
	bool warm = true;

	init_result(r, "spec (one thread)", o);
	r->threads = 1;
	if (!fl || !pfd || open_pool(cfg, o->pool, &p) != 0) {
		free(fl);
		free(pfd);
		return -1;
	}
	for (int i = 0; i < PER_ROUND; i++) {
		snprintf(vals[i], sizeof vals[i], "%d", i);
		params[i][0] = vals[i];
	}
	t0 = bench_now();
	cpu0 = bench_cpu_self();
	for (;;) {
		uint64_t start = (uint64_t)pqc_now_ns();
		int next = 0, done = 0, nfl = 0;
		if (!warm && ((o->rounds > 0 && rounds >= (uint64_t)o->rounds) ||
		              (o->rounds <= 0 && bench_now() - t0 >= o->duration_s)))
			break;
		while (done < PER_ROUND) {
			/* send while connections are free */
			while (next < PER_ROUND && nfl < o->pool) {
				pqpool_inflight *q;
				int rc = pqpool_send(
				        p, "SELECT $1 as test, NOW() as timestamp", 1,
				        params[next], &q);
				if (rc == PQPOOL_EAGAIN)
					break;
				if (rc != PQPOOL_OK) {
					r->errors++;
					next++;
					done++;
					continue;
				}
				fl[nfl++] = (struct inflight){q, next++};
			}
			for (int i = 0; i < nfl; i++)
				pfd[i] = (struct pollfd){pqpool_inflight_socket(fl[i].q),
				                         POLLIN, 0};
			if (nfl <= 0)
				continue; /* none free and none of ours: try again */
			poll(pfd, (nfds_t)nfl, 1000);
			for (int i = 0; i < nfl; i++) {
				PGresult *res;
				if (!pfd[i].revents || pqpool_poll(fl[i].q) != PQPOOL_OK)
					continue;
				if (pqpool_finish(fl[i].q, &res) == PQPOOL_OK) {
					if (!warm)
						lat_add(&r->latency,
						        (uint64_t)pqc_now_ns() - start);
					PQclear(res);
				} else {
					r->errors++;
				}
				done++;
				fl[i] = fl[--nfl];
				pfd[i] = pfd[nfl];
				i--;
			}
		}
		if (warm) { /* one round to open connections and prepare, not counted */
			warm = false;
			r->errors = 0;
			t0 = bench_now();
			cpu0 = bench_cpu_self();
			continue;
		}
		rounds++;
		if ((rounds & 255) == 0)
			progress(o, "spec",
			         o->rounds > 0 ? (double)rounds : bench_now() - t0,
			         o->rounds > 0 ? o->rounds : o->duration_s);
	}
	progress(o, "spec", -1, 0);
	finish(r, t0, cpu0);
	r->ops = r->latency.count;
	r->rounds_per_s = r->seconds > 0 ? (double)rounds / r->seconds : 0;
	r->ops_per_s = r->seconds > 0 ? (double)r->ops / r->seconds : 0;
	r->cpu_us_per_op = r->ops ? r->cpu_s * 1e6 / (double)r->ops : 0;
	pqpool_close(p, 5000);
	free(fl);
	free(pfd);
	return 0;
}
