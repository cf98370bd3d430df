/* test_pool_oom.c — allocation failure, SQLite's way: run one scenario (open
 * a pool, lease, query, retry-query, non-blocking query, health, snapshot,
 * every renderer, close) against the real server with the Nth allocation
 * made during it failing, for N = 0, 1, 2, … until the scenario makes fewer
 * than N allocations. Each step must then succeed or return an error with a
 * message — never crash or hang — and once the pool is closed every block
 * allocated during the scenario must have been freed.
 *
 * The hook is this program's own malloc/calloc/realloc/free, which the
 * dynamic linker binds for libpq, libc and the pool alike, so the failures
 * reach into libpq's and libc's allocations too, not only the pool's. Each
 * forwards to glibc's allocator (__libc_malloc and kin). Two modes: the Nth
 * allocation fails alone (transient), or it and every one after it fail
 * (persistent: the error paths themselves must not need memory).
 *
 * Built without sanitizers only: ASan and TSan bring their own malloc. */
#include "testenv.h"

#include <dlfcn.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the hook ---------------------------------------------------------- */

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);

#define LIVE_SLOTS (1u << 16) /* open addressing; the scenario keeps < 10k */
static void *const TOMB = (void *)1;

static pthread_mutex_t hook_mu = PTHREAD_MUTEX_INITIALIZER;
static bool hook_armed;   /* counting and tracking */
static long fail_at = -1; /* index of the first failing allocation */
static bool persistent;   /* every allocation from fail_at on fails */
static long n_allocs;     /* allocations attempted while armed */
static long n_failed;     /* of which failed */
static long n_live;       /* tracked blocks not yet freed */
static bool overflow;     /* the live table filled up: the run is void */
static void *live[LIVE_SLOTS];
static void *live_caller[LIVE_SLOTS]; /* who allocated it, for the report */
static size_t live_size[LIVE_SLOTS];

static size_t slot_of(const void *p)
{
	uintptr_t h = (uintptr_t)p >> 4;
	h ^= h >> 17;
	h *= 0x9e3779b97f4a7c15ull;
	return (size_t)(h >> 7) & (LIVE_SLOTS - 1);
}

/* under hook_mu */
static void live_add(void *p, size_t size, void *caller)
{
	size_t i = slot_of(p);
	for (size_t k = 0; k < LIVE_SLOTS; k++, i = (i + 1) & (LIVE_SLOTS - 1))
		if (live[i] == NULL || live[i] == TOMB) {
			live[i] = p;
			live_size[i] = size;
			live_caller[i] = caller;
			n_live++;
			return;
		}
	overflow = true;
}

/* under hook_mu; a block allocated before arming is simply not found */
static void live_del(void *p)
{
	size_t i = slot_of(p);
	for (size_t k = 0; k < LIVE_SLOTS; k++, i = (i + 1) & (LIVE_SLOTS - 1)) {
		if (live[i] == NULL)
			return;
		if (live[i] == p) {
			live[i] = TOMB;
			n_live--;
			return;
		}
	}
}

/* OpenSSL's libcrypto, which libpq's SCRAM authentication uses for its
 * hashes, makes some 12,000 allocations per connection while it sets up its
 * algorithm tables, and keeps process-wide caches that a failed allocation
 * leaves built differently. Its own robustness is not what this test is
 * about: allocations made by its code (and libssl's) pass straight through,
 * neither counted, failed nor tracked. The ranges are the libraries' text
 * segments, read once from /proc/self/maps before the hook is armed. */
#define MAX_RANGES 16
static uintptr_t skip_lo[MAX_RANGES], skip_hi[MAX_RANGES];
static int n_skip;

static void find_skipped_ranges(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	n_skip = 0;
	while (f && fgets(line, sizeof line, f) && n_skip < MAX_RANGES) {
		unsigned long lo, hi;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[2] != 'x')
			continue;
		if (strstr(line, "/libcrypto.so") || strstr(line, "/libssl.so")) {
			skip_lo[n_skip] = lo;
			skip_hi[n_skip] = hi;
			n_skip++;
		}
	}
	if (f)
		fclose(f);
}

static bool skipped(const void *caller)
{
	for (int i = 0; i < n_skip; i++)
		if ((uintptr_t)caller >= skip_lo[i] && (uintptr_t)caller < skip_hi[i])
			return true;
	return false;
}

/* True when this allocation is to fail; counts it. Under hook_mu. */
static bool should_fail(void)
{
	long i = n_allocs++;
	bool f = fail_at >= 0 && (i == fail_at || (persistent && i > fail_at));
	if (f)
		n_failed++;
	return f;
}

/* The start of an allocation by caller: takes hook_mu. Returns -1 when the
 * allocation is to fail (hook_mu released), else whether it is tracked. */
static int hook_enter(void *caller)
{
	pthread_mutex_lock(&hook_mu);
	bool armed = hook_armed && !skipped(caller);
	if (armed && should_fail()) {
		pthread_mutex_unlock(&hook_mu);
		return -1;
	}
	return armed;
}

/* Its end: tracks the block when asked to, releases hook_mu. */
static void *hook_leave(void *p, size_t size, void *caller, int tracked)
{
	if (tracked && p)
		live_add(p, size, caller);
	pthread_mutex_unlock(&hook_mu);
	return p;
}

void *malloc(size_t n)
{
	void *caller = __builtin_return_address(0);
	int t = hook_enter(caller);
	return t < 0 ? NULL : hook_leave(__libc_malloc(n), n, caller, t);
}

void *calloc(size_t n, size_t size)
{
	void *caller = __builtin_return_address(0);
	int t = hook_enter(caller);
	return t < 0 ? NULL : hook_leave(__libc_calloc(n, size), n * size, caller, t);
}

void *realloc(void *old, size_t n)
{
	void *caller = __builtin_return_address(0);
	if (n == 0 && old) { /* a free: never fails */
		free(old);
		return NULL;
	}
	int t = hook_enter(caller);
	if (t < 0)
		return NULL; /* old stays valid, as realloc promises */
	void *p = __libc_realloc(old, n);
	if (t && p && old)
		live_del(old);
	return hook_leave(p, n, caller, t);
}

void free(void *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&hook_mu);
	if (hook_armed)
		live_del(p);
	__libc_free(p);
	pthread_mutex_unlock(&hook_mu);
}

/* Counts the blocks still live, printing up to 10 with the code that
 * allocated them. After disarm(). */
static long count_leaks(bool print)
{
	long leaks = 0, shown = 0;
	for (size_t i = 0; i < LIVE_SLOTS; i++) {
		if (live[i] == NULL || live[i] == TOMB)
			continue;
		leaks++;
		if (!print || shown++ >= 10)
			continue;
		Dl_info di;
		const char *obj = "?", *sym = "?";
		uintptr_t off = 0;
		if (dladdr(live_caller[i], &di)) {
			obj = di.dli_fname ? di.dli_fname : "?";
			sym = di.dli_sname ? di.dli_sname : "?";
			off = (uintptr_t)live_caller[i] -
			      (uintptr_t)(di.dli_saddr ? di.dli_saddr : di.dli_fbase);
		}
		print_message("  live: %zu bytes from %s+0x%lx (%s)\n", live_size[i], sym,
		              (unsigned long)off, obj);
	}
	return leaks;
}

static void arm(long at, bool pers)
{
	pthread_mutex_lock(&hook_mu);
	memset(live, 0, sizeof live);
	n_allocs = n_failed = n_live = 0;
	overflow = false;
	fail_at = at;
	persistent = pers;
	hook_armed = true;
	pthread_mutex_unlock(&hook_mu);
}

static void disarm(void)
{
	pthread_mutex_lock(&hook_mu);
	hook_armed = false;
	pthread_mutex_unlock(&hook_mu);
}

/* ---- the scenario ---------------------------------------------------------- */

enum step {
	S_OPEN,
	S_ACQUIRE,
	S_EXEC,
	S_QUERY,
	S_QUERY_ALONE,
	S_RUN,
	S_SEND,
	S_HEALTH,
	S_PROBE,
	S_STATS,
	S_RENDER_METRICS,
	S_RENDER_POOL,
	S_RENDER_HEALTH,
	S_RENDER_PROM,
	S_CLOSE,
	S_COUNT
};
static const char *const step_name[S_COUNT] = {"open",
                                               "acquire",
                                               "exec",
                                               "query (pipelined)",
                                               "query (not pipelined)",
                                               "run",
                                               "send/finish",
                                               "health",
                                               "probe",
                                               "stats",
                                               "render metrics",
                                               "render pool",
                                               "render health",
                                               "render prometheus",
                                               "close"};

/* What one step did: 1 succeeded, 0 did not run, -1 failed with a message,
 * -2 failed without one (a defect), -3 a wrong answer (a defect). */
struct outcome {
	int step[S_COUNT];
	int status[S_COUNT];
};

/* An error must say something: a status and a message. */
static int judge(int status)
{
	if (status == PQPOOL_OK)
		return 1;
	const char *m = pqpool_errmsg();
	return status < 0 && m && m[0] ? -1 : -2;
}

/* Notes what step i returned; right: whether a value it returned was the
 * one expected (only looked at when it succeeded). */
static void record(struct outcome *o, enum step i, int st, bool right)
{
	o->status[i] = st;
	o->step[i] = judge(st);
	if (st == PQPOOL_OK && !right)
		o->step[i] = -3;
}

/* The same for a health answer, which reports through its status alone:
 * unhealthy must say why. */
static void record_health(struct outcome *o, enum step i, int st, const pqpool_health *h)
{
	o->status[i] = st;
	if (h->status == PQPOOL_HEALTHY)
		o->step[i] = 1;
	else
		o->step[i] = h->error[0] ? -1 : -2;
}

static int in_run(pqpool_conn *c, void *arg)
{
	PGresult *r = NULL;
	int st = pqpool_exec(c, "SELECT 2", 0, NULL, &r);
	if (st == PQPOOL_OK) {
		*(bool *)arg = strcmp(PQgetvalue(r, 0, 0), "2") == 0;
		PQclear(r);
	}
	return st;
}

static void silent(void *arg, pqpool_log_level level, const char *msg)
{
	(void)arg;
	(void)level;
	(void)msg;
}

static bool value_is(PGresult *r, const char *want)
{
	return r && PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), want) == 0;
}

/* Waits up to 10 ms for the lease's socket to have something to read. */
static void wait_readable(int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	poll(&pfd, pfd.fd >= 0 ? 1 : 0, 10);
}

static void scenario(const char *conninfo, struct outcome *o)
{
	pqpool_config cfg;
	pqpool *p = NULL;
	pqpool_conn *c = NULL;
	PGresult *r = NULL;
	int st;

	memset(o, 0, sizeof *o);
	pqpool_config_init(&cfg);
	cfg.conninfo = conninfo;
	cfg.log_fn = silent;
	cfg.pool_min = 1;
	cfg.pool_max = 3;
	cfg.connection_timeout_ms = 3000;
	cfg.query_timeout_ms = 3000;
	cfg.retry_base_delay_ms = 1;

	st = pqpool_open(&cfg, &p);
	record(o, S_OPEN, st, true);
	if (st != PQPOOL_OK)
		return;

	st = pqpool_acquire(p, 3000, &c);
	record(o, S_ACQUIRE, st, true);
	if (st == PQPOOL_OK) {
		const char *one[] = {"7"};
		st = pqpool_exec(c, "SELECT $1::int + 1", 1, one, &r);
		record(o, S_EXEC, st, value_is(r, "8"));
		PQclear(r);
		r = NULL;
		pqpool_release(c);
		c = NULL;
	}

	const char *arg[] = {"x"};
	st = pqpool_query(p, "SELECT $1::text", 1, arg, PQPOOL_IDEMPOTENT, &r);
	record(o, S_QUERY, st, value_is(r, "x"));
	PQclear(r);
	r = NULL;
	st = pqpool_query(p, "SELECT $1::text", 1, arg,
	                  PQPOOL_IDEMPOTENT | PQPOOL_NO_PIPELINE, &r);
	record(o, S_QUERY_ALONE, st, value_is(r, "x"));
	PQclear(r);
	r = NULL;

	bool right = false;
	st = pqpool_run(p, "oom test", in_run, &right);
	record(o, S_RUN, st, right);

	pqpool_inflight *q = NULL;
	st = pqpool_send(p, "SELECT 3", 0, NULL, &q);
	if (st == PQPOOL_OK) {
		while ((st = pqpool_poll(q)) == PQPOOL_EAGAIN)
			wait_readable(pqpool_inflight_socket(q));
		st = pqpool_finish(q, &r);
	}
	record(o, S_SEND, st, value_is(r, "3"));
	PQclear(r);
	r = NULL;

	pqpool_health h;
	st = pqpool_check_health(p, &h);
	record_health(o, S_HEALTH, st, &h);

	/* the non-blocking probe: once started, it reports through its result;
	 * EAGAIN (no idle connection at once) is an answer, not a failure */
	pqpool_probe *pr = NULL;
	st = pqpool_probe_start(p, &pr);
	if (st == PQPOOL_OK) {
		pqpool_health h2;
		while (pqpool_probe_poll(pr) == PQPOOL_EAGAIN)
			wait_readable(pqpool_probe_socket(pr));
		pqpool_probe_finish(pr, &h2);
		record_health(o, S_PROBE, st, &h2);
	} else if (st != PQPOOL_EAGAIN) {
		record(o, S_PROBE, st, true);
	} else {
		o->status[S_PROBE] = st;
	}

	pqpool_stats s;
	st = pqpool_stats_get(p, &s);
	record(o, S_STATS, st, true);
	if (st == PQPOOL_OK) {
		char *out;
		/* a renderer's only failure is running out of memory: NULL */
		out = pqpool_render_metrics_json(&s, 1700000000000);
		o->step[S_RENDER_METRICS] = out ? 1 : -1;
		free(out);
		out = pqpool_render_pool_json(&s, 1700000000000);
		o->step[S_RENDER_POOL] = out ? 1 : -1;
		free(out);
		out = pqpool_render_health_json(&h);
		o->step[S_RENDER_HEALTH] = out ? 1 : -1;
		free(out);
		out = pqpool_render_prometheus(&s);
		o->step[S_RENDER_PROM] = out ? 1 : -1;
		free(out);
	}

	st = pqpool_close(p, 3000);
	o->status[S_CLOSE] = st;
	o->step[S_CLOSE] = st == PQPOOL_OK ? 1 : -2;
}

/* ---- the loop ---------------------------------------------------------------- */

struct tally {
	long iterations, ok_steps, failed_steps;
	long max_allocs;
};

/* One run with the Nth allocation failing; false when N was past the end. */
static bool run_one(const char *conninfo, long n, bool pers, struct tally *t)
{
	const char *mode = pers ? "persistent" : "transient";
	struct outcome o;
	int64_t t0 = testenv_now_ms();
	arm(n, pers);
	scenario(conninfo, &o);
	disarm();
	int64_t ms = testenv_now_ms() - t0;
	if (getenv("PQPOOL_OOM_TRACE"))
		print_message("%s N=%ld: %lld ms\n", mode, n, (long long)ms);
	/* every step is bounded by 3 s; together they must stay well inside */
	if (ms > 10000)
		fail_msg("%s N=%ld: the scenario took %lld ms", mode, n, (long long)ms);

	long allocs = n_allocs, failed = n_failed, leaked = count_leaks(false);
	if (allocs > t->max_allocs)
		t->max_allocs = allocs;
	if (overflow)
		fail_msg("N=%ld: more live blocks than the tracking table holds", n);
	if (n >= 0 && failed == 0)
		return false; /* the scenario made fewer than N+1 allocations */
	t->iterations++;

	for (int i = 0; i < S_COUNT; i++) {
		if (o.step[i] == 1)
			t->ok_steps++;
		else if (o.step[i] == -1)
			t->failed_steps++;
		if (o.step[i] == -2)
			fail_msg("%s N=%ld: %s failed (%s) without saying why", mode, n,
			         step_name[i], pqpool_status_text(o.status[i]));
		if (o.step[i] == -3)
			fail_msg("%s N=%ld: %s returned a wrong value", mode, n,
			         step_name[i]);
	}
	/* Without failures, everything must work. */
	if (n < 0)
		for (int i = 0; i < S_COUNT; i++)
			if (o.step[i] != 1)
				fail_msg("no failure injected, yet %s did not succeed "
				         "(%s)",
				         step_name[i], pqpool_status_text(o.status[i]));
	if (leaked != 0) {
		count_leaks(true); /* prints who allocated them */
		fail_msg("%s N=%ld: %ld blocks allocated during the scenario are "
		         "still live after close",
		         mode, n, leaked);
	}
	return true;
}

static void loop(bool pers)
{
	/* GSSAPI and TLS negotiation off: libkrb5 rebuilds a process-wide
	 * mechanism list at each connection attempt, which would read as a
	 * leak here. The pool has no GSSAPI or TLS code of its own. */
	static char conninfo[512];
	const char *url = testenv_url();
	snprintf(conninfo, sizeof conninfo, "%s%cgssencmode=disable&sslmode=disable", url,
	         strchr(url, '?') ? '&' : '?');
	struct tally t = {0};

	/* The first run initialises what libc and libpq keep for the process
	 * (locale, name service, libpq's statics); the second must then leave
	 * nothing behind, with no failure injected. */
	struct outcome o;
	find_skipped_ranges();
	arm(-1, false);
	scenario(conninfo, &o);
	disarm();
	run_one(conninfo, -1, false, &t);
	if (getenv("PQPOOL_OOM_TRACE"))
		print_message("a clean run: %ld allocations\n", t.max_allocs);

	long n;
	for (n = 0; n < 100000; n++)
		if (!run_one(conninfo, n, pers, &t))
			break;
	print_message("%s: %ld runs (allocations per clean run: %ld), "
	              "%ld steps succeeded, %ld failed with a message\n",
	              pers ? "persistent" : "transient", t.iterations, t.max_allocs,
	              t.ok_steps, t.failed_steps);
	assert_true(n > 50); /* the hook really reached the scenario */
	assert_int_equal(testenv_backends_settled(0), 0);
}

static void test_transient(void **state)
{
	(void)state;
	loop(false);
}

static void test_persistent(void **state)
{
	(void)state;
	loop(true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_transient),
	        cmocka_unit_test(test_persistent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
