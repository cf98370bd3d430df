/* probes.c — health probes that never hold up an event thread for long: the
 * event thread that got the request starts the probe and waits for its
 * answer a few milliseconds at most; a probe still running then is handed to
 * one thread that finishes the slow ones from an epoll set. A thread parked
 * per probe cost two context switches a request, and a hand-off for every
 * probe a few system calls more: measured on 2 cores, wrk -c64 against
 * /api/health/database gave about 27k requests/s through 20 probe threads,
 * 28k through this thread alone, and 33-35k answering fast probes on the
 * event threads. */
#include "probes.h"

#include "clock.h"
#include "fdwait.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* A probe in flight and the items waiting for its result. */
typedef struct flight {
	pqpool_probe *probe;
	int fd;
	bool armed;        /* its one-shot registration may still fire */
	bool inline_wait;  /* an event thread is waiting on it: not ours yet */
	workq_item *items; /* linked through next */
	struct flight *next;
} flight;

struct probes {
	pqpool *pool;
	bool share;
	int park_at;       /* park once this many probes are in flight */
	int wait_limit_ms; /* a parked item is answered "timed out" past it */
	workq *fallback;
	probes_done_fn done;
	void *arg;
	int epfd, evfd;
	pthread_t thread;

	pthread_mutex_t mu; /* guards what follows */
	flight *flights;
	int nflights;
	flight *shared; /* with share, the probe new items join */
	/* items waiting for one of the probes to give its connection back */
	workq_item *parked, *parked_tail;
	bool stopping;

	/* after a probe outlasted INLINE_WAIT_MS, event threads do not wait
	 * on probes until this time (monotonic ns) */
	_Atomic int64_t no_wait_until;
};

/* How long an event thread waits for a probe's answer before handing the
 * probe on: a bound on how long one health request can hold up the others
 * on its thread. */
#define INLINE_WAIT_MS 5

static void wake(probes *r)
{
	uint64_t one = 1;
	if (write(r->evfd, &one, sizeof one) < 0) {
		/* an eventfd write fails only when its counter would overflow,
		 * and then it is readable anyway */
	}
}

/* Arms f's socket for one event, under mu (which also hands the lease from
 * thread to thread). The registration of a connection's socket stays in the
 * set between probes, disarmed; MOD re-arms it and points it at this
 * flight. */
static bool arm(probes *r, flight *f)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.ptr = f};
	f->armed = true;
	if (epoll_ctl(r->epfd, EPOLL_CTL_MOD, f->fd, &ev) == 0)
		return true;
	if (errno == ENOENT && epoll_ctl(r->epfd, EPOLL_CTL_ADD, f->fd, &ev) == 0)
		return true;
	f->armed = false;
	return false;
}

/* Starts a probe for item (any thread, mu not held). Returns false when no
 * connection is free right now (rc PQPOOL_EAGAIN) or it failed. */
static flight *start(probes *r, workq_item *item, bool inline_wait, int *rc)
{
	flight *f = calloc(1, sizeof *f);
	bool first;

	*rc = PQPOOL_ENOMEM;
	if (!f || (*rc = pqpool_probe_start(r->pool, &f->probe)) != PQPOOL_OK) {
		free(f);
		return NULL;
	}
	f->fd = pqpool_probe_socket(f->probe);
	f->inline_wait = inline_wait;
	item->next = NULL;
	f->items = item;
	if (inline_wait && !r->share)
		return f; /* nobody can join it: listed only if handed on */
	pthread_mutex_lock(&r->mu);
	first = !r->flights;
	f->next = r->flights;
	r->flights = f;
	r->nflights++;
	if (r->share)
		r->shared = f;
	if (!inline_wait && !arm(r, f)) {
		/* cannot watch it: the thread will find it past its deadline;
		 * meanwhile it still answers anyone who joined */
	}
	pthread_mutex_unlock(&r->mu);
	/* the thread may be asleep with no deadline to keep */
	if (first)
		wake(r);
	return f;
}

static void park_or_pass(probes *r, workq_item *item, int rc);

/* Sends item where it can be answered: a probe of its own, one in flight,
 * a wait for a connection our probes hold, or the blocking threads. */
static void route(probes *r, workq_item *item)
{
	int rc;
	pthread_mutex_lock(&r->mu);
	if (r->share && r->shared) {
		item->next = r->shared->items;
		r->shared->items = item;
		pthread_mutex_unlock(&r->mu);
		return;
	}
	pthread_mutex_unlock(&r->mu);
	if (start(r, item, false, &rc))
		return;
	park_or_pass(r, item, rc);
}

/* An item for which no probe could start right now. */
static void park_or_pass(probes *r, workq_item *item, int rc)
{
	pthread_mutex_lock(&r->mu);
	if (rc == PQPOOL_EAGAIN && r->nflights >= r->park_at && !r->stopping) {
		/* our own probes hold the connections: the next one back is
		 * this item's */
		item->next = NULL;
		if (r->parked_tail)
			r->parked_tail->next = item;
		else
			r->parked = item;
		r->parked_tail = item;
		pthread_mutex_unlock(&r->mu);
		wake(r); /* the thread keeps its deadline too */
		return;
	}
	pthread_mutex_unlock(&r->mu);
	/* nothing free this instant and not ours to wait for, or a failure:
	 * a blocking check on the fallback threads, which may open
	 * connections and wait in the pool's own line */
	if (!workq_push(r->fallback, item))
		r->done(r->arg, item, PQPOOL_ECLOSED, NULL, true);
}

/* A quick probe that ended unhealthy before its deadline failed on the
 * connection it was given, not for want of time: most often one the server
 * had just closed (a terminated backend, a restart) with its goodbye not yet
 * read when the probe took it. The database may be fine, and this probe
 * cannot tell: its items go to the blocking check, which runs the probe
 * again on another connection (or opens one) within its own deadline, and
 * whose verdict is final. A probe that ran out of time is final at once:
 * another try would double the wait. */
static bool recheck(const pqpool_health *h, bool early)
{
	return early && h->status == PQPOOL_UNHEALTHY;
}

/* Sends items (linked through next) to the blocking check. */
static void pass_all(probes *r, workq_item *it)
{
	while (it) {
		workq_item *next = it->next; /* the queue relinks it */
		if (!workq_push(r->fallback, it))
			r->done(r->arg, it, PQPOOL_ECLOSED, NULL, true);
		it = next;
	}
}

/* A probe an event thread started when the probe thread is stopping: waited
 * for here, up to its deadline, and answered through done() like the
 * thread would. */
static void see_through(probes *r, flight *f)
{
	pqpool_health h;
	workq_item *it;
	while (pqpool_probe_poll(f->probe) == PQPOOL_EAGAIN) {
		struct pollfd pfd = {.fd = f->fd, .events = POLLIN};
		poll(&pfd, 1, pqpool_probe_timeout_ms(f->probe));
	}
	pthread_mutex_lock(&r->mu);
	if (r->share) {
		flight **pp;
		for (pp = &r->flights; *pp != f; pp = &(*pp)->next)
			;
		*pp = f->next;
		r->nflights--;
		if (r->shared == f)
			r->shared = NULL;
	}
	it = f->items;
	pthread_mutex_unlock(&r->mu);
	pqpool_probe_finish(f->probe, &h);
	while (it) {
		workq_item *next = it->next;
		r->done(r->arg, it, PQPOOL_OK, &h, false);
		it = next;
	}
	free(f);
	wake(r);
}

bool probes_answer(probes *r, workq_item *item, void (*suspend)(void *), void *sarg,
                   int *rc, pqpool_health *h, bool *cancelled)
{
	int64_t now, until;
	workq_item *others;
	flight *f, **pp;
	bool stopping, early;
	int st;

	*cancelled = false;
	pthread_mutex_lock(&r->mu);
	if (r->stopping) {
		pthread_mutex_unlock(&r->mu);
		*cancelled = true;
		return true;
	}
	if (r->share && r->shared) { /* join the probe in flight */
		suspend(sarg);
		item->next = r->shared->items;
		r->shared->items = item;
		pthread_mutex_unlock(&r->mu);
		return false;
	}
	pthread_mutex_unlock(&r->mu);

	now = pqc_now_ns();
	if (now < atomic_load_explicit(&r->no_wait_until, memory_order_relaxed)) {
		/* probes have been slow: do not wait on this one here */
		suspend(sarg);
		route(r, item);
		return false;
	}
	f = start(r, item, true, &st);
	if (!f) {
		suspend(sarg);
		park_or_pass(r, item, st);
		return false;
	}
	until = now + (int64_t)INLINE_WAIT_MS * 1000000;
	for (;;) {
		struct pollfd pfd = {.fd = f->fd, .events = POLLIN};
		int left = pqc_ms_until(until);

		/* wait first: the answer cannot be there yet right after sending */
		if (left > 0 && poll(&pfd, 1, left) > 0 &&
		    pqpool_probe_poll(f->probe) == PQPOOL_OK)
			break;
		now = pqc_now_ns();
		if (now >= until) {
			/* slow: hand it to the thread, and stop waiting on probes
			 * here for a while */
			atomic_store_explicit(&r->no_wait_until, now + 1000000000,
			                      memory_order_relaxed);
			suspend(sarg);
			pthread_mutex_lock(&r->mu);
			if (r->stopping) {
				/* the thread may be gone: see it through here */
				pthread_mutex_unlock(&r->mu);
				see_through(r, f);
				return false;
			}
			if (!r->share) { /* private until now */
				f->next = r->flights;
				r->flights = f;
				r->nflights++;
			}
			f->inline_wait = false;
			if (!arm(r, f)) {
				/* left to its deadline */
			}
			pthread_mutex_unlock(&r->mu);
			wake(r); /* it has a deadline to keep now */
			return false;
		}
	}
	/* answered in time: this request here, anyone who joined through the
	 * thread's callback */
	stopping = false;
	others = NULL;
	if (r->share) {
		pthread_mutex_lock(&r->mu);
		for (pp = &r->flights; *pp != f; pp = &(*pp)->next)
			;
		*pp = f->next;
		r->nflights--;
		if (r->shared == f)
			r->shared = NULL;
		others = f->items;
		stopping = r->stopping;
		pthread_mutex_unlock(&r->mu);
	}
	early = pqpool_probe_timeout_ms(f->probe) > 0;
	pqpool_probe_finish(f->probe, h);
	if (recheck(h, early)) {
		suspend(sarg);
		/* with share, item is among the others; without, it is alone */
		pass_all(r, r->share ? others : item);
		free(f);
		if (stopping)
			wake(r);
		return false;
	}
	*rc = PQPOOL_OK;
	while (others) {
		workq_item *next = others->next;
		if (others != item)
			r->done(r->arg, others, PQPOOL_OK, h, false);
		others = next;
	}
	free(f);
	if (stopping) /* the thread may be waiting for the last probe */
		wake(r);
	return true;
}

/* On the thread: the probe is done or past its deadline. */
static void finish(probes *r, flight *f)
{
	pqpool_health h;
	flight **pp;
	workq_item *it;
	bool early;
	pthread_mutex_lock(&r->mu);
	if (f->armed) {
		/* its registration would fire at a freed flight: disarm it */
		struct epoll_event ev = {.events = 0, .data.ptr = NULL};
		epoll_ctl(r->epfd, EPOLL_CTL_MOD, f->fd, &ev);
	}
	for (pp = &r->flights; *pp != f; pp = &(*pp)->next)
		;
	*pp = f->next;
	r->nflights--;
	if (r->shared == f)
		r->shared = NULL;
	it = f->items; /* complete: nobody joins it any more */
	pthread_mutex_unlock(&r->mu);
	early = pqpool_probe_timeout_ms(f->probe) > 0;
	pqpool_probe_finish(f->probe, &h);
	if (recheck(&h, early)) {
		pass_all(r, it);
		free(f);
		return;
	}
	while (it) {
		workq_item *next = it->next; /* the callback may free it */
		r->done(r->arg, it, PQPOOL_OK, &h, false);
		it = next;
	}
	free(f);
}

/* An unhealthy answer for a request that waited waited_ns; what it waited
 * for is said by the caller. */
static void timed_out(pqpool *pool, int64_t waited_ns, pqpool_health *h, pqpool_stats *st)
{
	memset(h, 0, sizeof *h);
	memset(st, 0, sizeof *st);
	pqpool_stats_get(pool, st);
	h->status = PQPOOL_UNHEALTHY;
	h->response_ms = (double)waited_ns / 1e6;
	h->connection_count = st->total;
	h->checked_at_ms = pqc_wall_ms();
}

void probes_waited_too_long(pqpool *pool, int64_t waited_ns, int wait_limit_ms,
                            pqpool_health *h)
{
	pqpool_stats st;
	timed_out(pool, waited_ns, h, &st);
	snprintf(h->error, sizeof h->error,
	         "acquire: timed out after %lld ms waiting for a connection "
	         "(DB_CONNECTION_TIMEOUT=%d; %d of %d open, all in use)",
	         (long long)(waited_ns / 1000000), wait_limit_ms, st.total, st.max);
}

/* A request whose probe started late (it waited for a connection first)
 * and has not answered by the request's own bound. */
static void probe_too_late(pqpool *pool, int64_t waited_ns, int wait_limit_ms,
                           pqpool_health *h)
{
	pqpool_stats st;
	timed_out(pool, waited_ns, h, &st);
	snprintf(h->error, sizeof h->error,
	         "health: timed out after %lld ms (DB_CONNECTION_TIMEOUT=%d): waited "
	         "for a connection, and the probe has no answer yet",
	         (long long)(waited_ns / 1000000), wait_limit_ms);
}

/* Moves the items of the list at *pp whose bound (since + limit) has come
 * onto *expired. Returns the ns until the next bound among those kept (-1:
 * none); *last is the last item kept (NULL: none). Under mu. */
static int64_t split_expired(workq_item **pp, int64_t now, int64_t limit,
                             workq_item **expired, workq_item **last)
{
	workq_item *it;
	int64_t next = -1;
	*last = NULL;
	while ((it = *pp) != NULL) {
		int64_t left = it->since_ns + limit - now;
		if (left <= 0) {
			*pp = it->next;
			it->next = *expired;
			*expired = it;
			continue;
		}
		if (next < 0 || left < next)
			next = left;
		*last = it;
		pp = &it->next;
	}
	return next;
}

static int64_t earlier(int64_t a, int64_t b)
{
	return a < 0 || (b >= 0 && b < a) ? b : a;
}

/* Answers the expired items "timed out", why() saying what they waited
 * for. */
static void answer_expired(probes *r, workq_item *expired, int64_t now,
                           void (*why)(pqpool *, int64_t, int, pqpool_health *))
{
	while (expired) {
		pqpool_health h;
		workq_item *it = expired;
		expired = it->next;
		why(r->pool, now - it->since_ns, r->wait_limit_ms, &h);
		r->done(r->arg, it, PQPOOL_OK, &h, false);
	}
}

/* Requests that have waited their limit, counted from their arrival:
 * answered "timed out". Parked ones, as pqpool_check_health answers a
 * caller that waited that long in the pool's line (else a parked request
 * waits as long as the line ahead of it takes). Those of probes in flight
 * (not the ones an event thread waits on), while their probe runs on to
 * its deadline for the others: a probe's deadline counts from its start,
 * and a request that first waited for a connection would otherwise wait up
 * to twice DB_CONNECTION_TIMEOUT in all. One pass under mu for both.
 * Returns the ms until the next one's limit (-1: none). */
static int expire(probes *r)
{
	workq_item *parked = NULL, *late = NULL, *last;
	int64_t now = pqc_now_ns(), limit = (int64_t)r->wait_limit_ms * 1000000, next;
	if (r->wait_limit_ms <= 0)
		return -1;
	pthread_mutex_lock(&r->mu);
	next = split_expired(&r->parked, now, limit, &parked, &r->parked_tail);
	for (flight *f = r->flights; f; f = f->next)
		if (!f->inline_wait)
			next = earlier(
			        next, split_expired(&f->items, now, limit, &late, &last));
	pthread_mutex_unlock(&r->mu);
	answer_expired(r, parked, now, probes_waited_too_long);
	answer_expired(r, late, now, probe_too_late);
	return next < 0 ? -1 : (int)((next + 999999) / 1000000);
}

/* Connections our probes gave back go to the parked items. */
static void unpark(probes *r)
{
	for (;;) {
		workq_item *it;
		int rc;
		pthread_mutex_lock(&r->mu);
		it = r->parked;
		if (it) {
			r->parked = it->next;
			if (!r->parked)
				r->parked_tail = NULL;
		}
		pthread_mutex_unlock(&r->mu);
		if (!it)
			return;
		if (start(r, it, false, &rc))
			continue;
		if (rc == PQPOOL_EAGAIN) {
			/* still none free: back to the head of the line */
			pthread_mutex_lock(&r->mu);
			it->next = r->parked;
			r->parked = it;
			if (!r->parked_tail)
				r->parked_tail = it;
			pthread_mutex_unlock(&r->mu);
			return;
		}
		if (!workq_push(r->fallback, it))
			r->done(r->arg, it, PQPOOL_ECLOSED, NULL, true);
	}
}

static void *run(void *arg)
{
	probes *r = arg;
	struct epoll_event evs[64];

	for (;;) {
		int timeout = expire(r), n;
		bool stopping, idle;
		pthread_mutex_lock(&r->mu);
		for (flight *f = r->flights; f; f = f->next) {
			int t = pqpool_probe_timeout_ms(f->probe);
			if (timeout < 0 || t < timeout)
				timeout = t;
		}
		stopping = r->stopping;
		idle = !r->flights && !r->parked;
		pthread_mutex_unlock(&r->mu);
		if (stopping && idle)
			break;
		n = epoll_wait(r->epfd, evs, 64, timeout);
		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			flight *f = evs[i].data.ptr;
			if (!f) { /* the eventfd: a new deadline to keep, or stop */
				uint64_t v;
				if (read(r->evfd, &v, sizeof v) < 0) {
					/* nothing to read: fine */
				}
				continue;
			}
			pthread_mutex_lock(&r->mu);
			f->armed = false; /* one shot: fired */
			pthread_mutex_unlock(&r->mu);
			if (pqpool_probe_poll(f->probe) == PQPOOL_OK) {
				finish(r, f);
			} else {
				pthread_mutex_lock(&r->mu);
				if (!arm(r, f)) {
					/* left to its deadline */
				}
				pthread_mutex_unlock(&r->mu);
			}
		}
		/* probes past their deadline, whose sockets stayed silent */
		for (;;) {
			flight *late = NULL;
			pthread_mutex_lock(&r->mu);
			for (flight *f = r->flights; f && !late; f = f->next)
				if (!f->inline_wait &&
				    pqpool_probe_timeout_ms(f->probe) == 0)
					late = f;
			pthread_mutex_unlock(&r->mu);
			if (!late)
				break;
			pqpool_probe_poll(late->probe);
			finish(r, late);
		}
		unpark(r);
	}
	return NULL;
}

int probes_start(pqpool *pool, bool share, int park_at, int wait_limit_ms,
                 workq *fallback, probes_done_fn done, void *arg, probes **out)
{
	probes *r = calloc(1, sizeof *r);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	sigset_t all, old;
	int rc;

	*out = NULL;
	if (!r)
		return -1;
	r->pool = pool;
	r->share = share;
	r->park_at = park_at < 1 ? 1 : park_at;
	r->wait_limit_ms = wait_limit_ms;
	r->fallback = fallback;
	r->done = done;
	r->arg = arg;
	pthread_mutex_init(&r->mu, NULL);
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	r->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->epfd < 0 || r->evfd < 0 ||
	    epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->evfd, &ev) != 0)
		goto fail;
	/* the thread takes no signals: the host waits for them in one place */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&r->thread, NULL, run, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		errno = rc;
		goto fail;
	}
	*out = r;
	return 0;
fail:
	rc = errno;
	if (r->epfd >= 0)
		close(r->epfd);
	if (r->evfd >= 0)
		close(r->evfd);
	pthread_mutex_destroy(&r->mu);
	free(r);
	errno = rc;
	return -1;
}

void probes_stop(probes *r)
{
	workq_item *parked;
	if (!r)
		return;
	pthread_mutex_lock(&r->mu);
	r->stopping = true;
	parked = r->parked;
	r->parked = r->parked_tail = NULL;
	pthread_mutex_unlock(&r->mu);
	/* not started: answered at once, like the queue's leftovers */
	while (parked) {
		workq_item *next = parked->next;
		r->done(r->arg, parked, PQPOOL_ECLOSED, NULL, true);
		parked = next;
	}
	wake(r);
	pthread_join(r->thread, NULL);
	close(r->epfd);
	close(r->evfd);
	pthread_mutex_destroy(&r->mu);
	free(r);
}
