/* probes.c — the service's database checks on the pool's asynchronous API.
 * Each thread runs a pqpool_loop on an epoll set of its own (the public
 * pqpool/epoll.h adapter); the event threads hand it requests through a
 * list and its wake-up, and its callbacks give the answers back. The loop
 * never blocks on the database, not even to connect, so one thread keeps
 * any number of checks in flight and pipelines them onto the pool's
 * connections, and a database that hangs holds up no thread. */
#include "probes.h"

#include "clock.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pqpool/epoll.h>

typedef struct lthread {
	struct probes *r;
	pthread_t th;
	pqpool_epoll ep; /* the loop, on an epoll set of the thread's own */

	pthread_mutex_t mu; /* guards what follows */
	probe_item *in, *in_tail;
	bool stopping;
} lthread;

struct probes {
	pqpool *pool;
	int wait_limit_ms;
	probes_done_fn done;
	void *arg;
	int n;
	atomic_uint next;
	lthread t[];
};

/* ---- checks ---- */

/* The thread a callback runs on (callbacks run on their loop's thread). */
static __thread lthread *self;

static void checked(void *arg, const pqpool_health *h)
{
	self->r->done(self->r->arg, arg, h, false);
}

/* An unhealthy verdict for a request that waited its whole limit before
 * its check could start (its thread busy with a burst). */
static void waited_too_long(probes *r, int64_t waited_ns, pqpool_health *h)
{
	pqpool_stats st;
	memset(h, 0, sizeof *h);
	pqpool_stats_get(r->pool, &st);
	h->status = PQPOOL_UNHEALTHY;
	h->response_ms = (double)waited_ns / 1e6;
	h->connection_count = st.total;
	h->checked_at_ms = pqc_wall_ms();
	snprintf(h->error, sizeof h->error,
	         "health: timed out after %lld ms (DB_CONNECTION_TIMEOUT=%d) before "
	         "the check could start",
	         (long long)(waited_ns / 1000000), r->wait_limit_ms);
}

/* Starts the check of each item, bounded by what is left of its limit. */
static void start_all(lthread *t, probe_item *it)
{
	probes *r = t->r;
	while (it) {
		probe_item *next = it->next;
		int64_t waited = pqc_now_ns() - it->since_ns;
		int64_t left = (int64_t)r->wait_limit_ms * 1000000 - waited;
		if (r->wait_limit_ms > 0 && left <= 0) {
			pqpool_health h;
			waited_too_long(r, waited, &h);
			r->done(r->arg, it, &h, false);
		} else if (pqpool_loop_check_health(
		                   t->ep.loop,
		                   r->wait_limit_ms > 0 ? (int)((left + 999999) / 1000000)
		                                        : 0,
		                   checked, it) != PQPOOL_OK) {
			/* the pool is closing, or out of memory */
			r->done(r->arg, it, NULL, true);
		}
		it = next;
	}
}

static void *run(void *arg)
{
	lthread *t = arg;

	self = t;
	for (;;) {
		probe_item *in;
		bool stopping;

		pthread_mutex_lock(&t->mu);
		in = t->in;
		t->in = t->in_tail = NULL;
		stopping = t->stopping;
		pthread_mutex_unlock(&t->mu);
		start_all(t, in);
		if (stopping && pqpool_loop_pending(t->ep.loop) == 0)
			break;
		/* until a descriptor or the timer is due, or pqpool_epoll_wake() */
		pqpool_epoll_run_once(&t->ep, -1);
	}
	return NULL;
}

bool probes_push(probes *r, probe_item *item)
{
	lthread *t = &r->t[atomic_fetch_add_explicit(&r->next, 1, memory_order_relaxed) %
	                   (unsigned)r->n];
	bool first;
	item->next = NULL;
	pthread_mutex_lock(&t->mu);
	if (t->stopping) {
		pthread_mutex_unlock(&t->mu);
		return false;
	}
	first = !t->in;
	if (t->in_tail)
		t->in_tail->next = item;
	else
		t->in = item;
	t->in_tail = item;
	/* under the lock: once it is released, probes_stop may free t */
	if (first) /* else a wake-up is on its way already */
		pqpool_epoll_wake(&t->ep);
	pthread_mutex_unlock(&t->mu);
	return true;
}

static int thread_init(probes *r, lthread *t)
{
	t->r = r;
	pthread_mutex_init(&t->mu, NULL);
	if (pqpool_epoll_open(&t->ep, r->pool) != PQPOOL_OK) {
		pthread_mutex_destroy(&t->mu);
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

/* Frees what thread t holds; it has stopped. */
static void thread_free(lthread *t)
{
	/* a check still out would be answered from here: as if on t */
	self = t;
	pqpool_epoll_close(&t->ep);
	self = NULL;
	pthread_mutex_destroy(&t->mu);
}

int probes_start(pqpool *pool, int threads, int wait_limit_ms, probes_done_fn done,
                 void *arg, probes **out)
{
	probes *r;
	sigset_t all, old;
	int rc = 0;

	*out = NULL;
	if (threads < 1)
		threads = 1;
	if (!(r = calloc(1, sizeof *r + (size_t)threads * sizeof(lthread))))
		return -1;
	r->pool = pool;
	r->wait_limit_ms = wait_limit_ms;
	r->done = done;
	r->arg = arg;
	/* the threads take no signals: the host waits for them in one place */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (r->n = 0; r->n < threads; r->n++) {
		lthread *t = &r->t[r->n];
		if (thread_init(r, t) != 0) {
			rc = errno;
			break;
		}
		if ((rc = pthread_create(&t->th, NULL, run, t)) != 0) {
			thread_free(t);
			break;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r->n < threads) {
		probes_stop(r);
		errno = rc;
		return -1;
	}
	*out = r;
	return 0;
}

void probes_stop(probes *r)
{
	if (!r)
		return;
	for (int i = 0; i < r->n; i++) {
		lthread *t = &r->t[i];
		probe_item *in;
		pthread_mutex_lock(&t->mu);
		t->stopping = true;
		in = t->in;
		t->in = t->in_tail = NULL;
		pthread_mutex_unlock(&t->mu);
		/* not started: answered at once */
		while (in) {
			probe_item *next = in->next;
			r->done(r->arg, in, NULL, true);
			in = next;
		}
		pqpool_epoll_wake(&t->ep);
	}
	for (int i = 0; i < r->n; i++) {
		pthread_join(r->t[i].th, NULL);
		thread_free(&r->t[i]);
	}
	free(r);
}
