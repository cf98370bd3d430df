/* pool.c — open, acquire, release and close: the lease path and its waiters.
 *
 * The lease path takes no lock while nobody waits: a slot's state is claimed
 * by compare-and-swap, trying first the slot this thread released last (it is
 * likely still in this core's cache, and it is this thread's most recently
 * used connection), then the lowest-numbered idle slot, which keeps the work
 * on few connections so that the others go idle and are reaped. Once a caller
 * has to wait, it queues FIFO under the lock and sleeps on its own event; a
 * release then hands its connection straight to the oldest waiter, and new
 * callers queue behind (no barging). The pool's `contend` word (waiters +
 * closed bit) is what sends both sides down the locked path; the store of a
 * slot's IDLE state and the waiter's increment of `contend`, and the loads
 * that follow each, are all sequentially consistent, so a release and a new
 * waiter cannot miss each other.
 *
 * Lifetime: the pool is freed once it is closed and nothing holds it: no
 * slot open (a lease pins it, as does a connection being opened) and no
 * thread inside a call that may block without owning a slot (`users`).
 * Code that gives up the last thing pinning it must not touch it after. */
#include "internal.h"

#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

static _Atomic uint64_t next_pool_id = 1;

/* The slot this thread released last, and in which pool. */
static __thread struct {
	uint64_t pool_id;
	int slot;
} tl_hint;

/* Work decided under the lock and done after it: waiters to wake and
 * connections to close (no I/O, no futex call under the lock). */
typedef struct pending {
	pqpool__waiter *wake;
	struct pqpool_conn *close;
} pending;

static void close_slot(struct pqpool *p, struct pqpool_conn *s, pqpool_close_reason why);
static int unfit(struct pqpool *p, struct pqpool_conn *s, int64_t now);

/* ---- the wait set of query waiters, one per thread ---- */

static pthread_key_t tctx_key;
static pthread_once_t tctx_once = PTHREAD_ONCE_INIT;
static bool tctx_ok;
static __thread pqpool__tctx *tl_ctx;

static void tctx_free(void *arg)
{
	pqpool__tctx *c = arg;
	close(c->epfd);
	close(c->evfd);
	free(c);
}

static void tctx_init(void)
{
	tctx_ok = pthread_key_create(&tctx_key, tctx_free) == 0;
}

/* This thread's wait set, made on first need (two descriptors, freed when
 * the thread exits); NULL when it cannot be made: the thread then waits
 * like any other. */
static pqpool__tctx *tctx_get(void)
{
	pqpool__tctx *c;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	if (tl_ctx)
		return tl_ctx;
	pthread_once(&tctx_once, tctx_init);
	if (!tctx_ok || !(c = malloc(sizeof *c)))
		return NULL;
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	c->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->epfd < 0 || c->evfd < 0 ||
	    epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->evfd, &ev) != 0 ||
	    pthread_setspecific(tctx_key, c) != 0) {
		if (c->epfd >= 0)
			close(c->epfd);
		if (c->evfd >= 0)
			close(c->evfd);
		free(c);
		return NULL;
	}
	tl_ctx = c;
	return c;
}

/* Wakes a waiter whose grant is complete. A waiter with a wait set sees
 * `signaled`, then waits for `done`, which its granter stores last: its
 * descriptors (and its thread) stay alive while we use them. Touch nothing
 * of w after. */
static void signal_waiter(pqpool__waiter *w)
{
	if (w->ctx) {
		uint64_t one = 1;
		atomic_store_explicit(&w->signaled, 1, memory_order_release);
		if (write(w->ctx->evfd, &one, sizeof one) < 0) {
			/* counter overflow only: it is readable anyway */
		}
		atomic_store_explicit(&w->done, 1, memory_order_release);
	} else {
		pqpool__event_set(&w->ev);
	}
}

/* A query waiter was granted slot s: send its query now and arm the
 * socket in its wait set, so that it wakes for the answer. False when that
 * cannot be done here (the connection needs a check that failed, or its
 * statement preparing): the waiter then gets the plain grant. */
static bool presend(struct pqpool *p, pqpool__waiter *w)
{
	struct pqpool_conn *s = w->slot;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.ptr = s};
	int64_t t0;
	int fd, epfd = w->ctx->epfd;
	if (unfit(p, s, pqpool__now_coarse_ms()) >= 0)
		return false;
	t0 = pqpool__now_ns();
	if (pqpool__send_params(s, w->q) != PQPOOL_OK) {
		pqpool__ok(); /* ours, not the caller's: the waiter finds out */
		return false;
	}
	fd = PQsocket(s->pg);
	w->sent_ns = t0;
	atomic_store_explicit(&w->kind, GRANT_SENT, memory_order_relaxed);
	/* signaled before the event can fire, so the woken waiter sees it; it
	 * then waits for `done`, so its wait set outlives our use of it */
	atomic_store_explicit(&w->signaled, 1, memory_order_release);
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) != 0 &&
	    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		/* cannot arm it: wake the waiter now; it polls the socket */
		uint64_t one = 1;
		if (write(w->ctx->evfd, &one, sizeof one) < 0) {
			/* overflow only */
		}
	}
	atomic_store_explicit(&w->done, 1, memory_order_release);
	return true;
}

void pqpool__log(struct pqpool *p, pqpool_log_level lvl, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	if (!p->cfg.log_fn)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	pqpool__scrub(buf, p->secret);
	p->cfg.log_fn(p->cfg.log_arg, lvl, buf);
}

/* ---- pool lifetime ---- */

static void pool_free(struct pqpool *p)
{
	pqpool__params_free(&p->params);
	free(p->health_query);
	pthread_mutex_destroy(&p->mu);
	pthread_mutex_destroy(&p->stats_mu);
	pthread_mutex_destroy(&p->health_mu);
	pthread_cond_destroy(&p->drained);
	pthread_cond_destroy(&p->health_cv);
	free(p->slots);
	free(p);
}

/* Under p->mu, after a slot emptied or a user left: tells a waiting closer,
 * or returns true when the caller must free the pool (after unlocking). */
static bool last_one_locked(struct pqpool *p)
{
	if (!p->closed || p->nopen > 0 || p->users > 0 || p->freeing)
		return false;
	if (!p->zombie) {
		pthread_cond_broadcast(&p->drained); /* pqpool_close frees it */
		return false;
	}
	p->freeing = true;
	return true;
}

/* Pinning takes no lock: every pqpool_query pins, and a lock per pin is
 * contended by all callers at once. Only the last user to leave a closed
 * pool takes it, to tell the closer or free the pool; the decrement and
 * close's setting of CLOSED_BIT are sequentially consistent, so that one of
 * them sees the other. */
static void pin(struct pqpool *p)
{
	atomic_fetch_add(&p->users, 1);
}

static void unpin(struct pqpool *p)
{
	bool free_it;
	if (atomic_fetch_sub(&p->users, 1) != 1 ||
	    !(atomic_load(&p->contend) & PQPOOL__CLOSED_BIT))
		return;
	pthread_mutex_lock(&p->mu);
	free_it = last_one_locked(p);
	pthread_mutex_unlock(&p->mu);
	if (free_it)
		pool_free(p);
}

void pqpool__pin(struct pqpool *p)
{
	pin(p);
}

void pqpool__unpin(struct pqpool *p)
{
	unpin(p);
}

/* ---- slots ---- */

static struct pqpool_conn *take_idle(struct pqpool *p, bool use_hint)
{
	/* seq_cst loads: they pair with publish()'s IDLE store and load of
	 * `contend` (see the top of this file) */
	if (use_hint && tl_hint.pool_id == p->id) {
		struct pqpool_conn *s = &p->slots[tl_hint.slot];
		int idle = SLOT_IDLE;
		if (atomic_load(&s->state) == SLOT_IDLE &&
		    atomic_compare_exchange_strong(&s->state, &idle, SLOT_BUSY))
			return s;
	}
	for (int i = 0; i < p->nslots; i++) {
		struct pqpool_conn *s = &p->slots[i];
		int idle = SLOT_IDLE;
		if (atomic_load(&s->state) == SLOT_IDLE &&
		    atomic_compare_exchange_strong(&s->state, &idle, SLOT_BUSY))
			return s;
	}
	return NULL;
}

/* How long a failed open stops the pool from growing past the connections
 * it has: about the upkeep's cadence, so that a server that refuses more
 * connections (max_connections reached) is asked about once a second, not
 * once per caller. */
#define GROW_HOLD_MS 1000

/* Claims free capacity: an EMPTY slot becomes OPENING. Under p->mu.
 * While a recent open failed, only a pool with no connection at all may
 * try again: the others' callers wait for a release, as at pool_max. */
static struct pqpool_conn *claim_empty_locked(struct pqpool *p)
{
	if (p->nopen >= p->nslots)
		return NULL;
	if (p->nopen > 0 &&
	    pqpool__now_coarse_ms() <
	            atomic_load_explicit(&p->grow_hold_until_ms, memory_order_relaxed))
		return NULL;
	for (int i = 0; i < p->nslots; i++) {
		struct pqpool_conn *s = &p->slots[i];
		if (atomic_load_explicit(&s->state, memory_order_relaxed) == SLOT_EMPTY) {
			atomic_store(&s->state, SLOT_OPENING);
			p->nopen++;
			return s;
		}
	}
	return NULL;
}

static void grant_locked(struct pqpool *p, pending *pd, enum grant_kind kind,
                         struct pqpool_conn *s)
{
	pqpool__waiter *w = p->whead;
	p->whead = w->next;
	if (!p->whead)
		p->wtail = NULL;
	p->nwaiting--;
	p->users--; /* the waiter's pin: it now owns a slot, or is told we closed */
	atomic_fetch_sub(&p->contend, 1);
	atomic_store_explicit(&w->kind, kind, memory_order_relaxed);
	w->slot = s;
	w->next = pd->wake;
	pd->wake = w;
}

/* Serves waiters, oldest first, from idle connections or free capacity;
 * once closed, wakes them all with GRANT_CLOSED and collects idle
 * connections for closing. Under p->mu. */
static void dispatch_locked(struct pqpool *p, pending *pd)
{
	if (p->closed) {
		struct pqpool_conn *s;
		while (p->whead)
			grant_locked(p, pd, GRANT_CLOSED, NULL);
		while ((s = take_idle(p, false)) != NULL) {
			s->next = pd->close;
			pd->close = s;
		}
		return;
	}
	while (p->whead) {
		struct pqpool_conn *s = take_idle(p, false);
		if (s) {
			grant_locked(p, pd, GRANT_SLOT, s);
			continue;
		}
		s = claim_empty_locked(p);
		if (!s)
			break;
		grant_locked(p, pd, GRANT_CAPACITY, s);
	}
}

static void close_list(struct pqpool *p, struct pqpool_conn *s, pqpool_close_reason why)
{
	while (s) {
		struct pqpool_conn *next = s->next;
		close_slot(p, s, why);
		s = next;
	}
}

/* Wakes the granted waiters and closes what dispatch collected (only ever
 * when closing). Closing the last slot may free the pool: the caller must
 * not touch p afterwards unless it is pinned or owns a slot. */
static void finish_pending(struct pqpool *p, pending *pd)
{
	pqpool__waiter *w = pd->wake;
	while (w) {
		/* read next first: once set, the waiter may return and its stack
		 * frame, where w lives, is gone */
		pqpool__waiter *next = w->next;
		if (!(w->q && w->ctx &&
		      atomic_load_explicit(&w->kind, memory_order_relaxed) ==
		              GRANT_SLOT &&
		      presend(p, w)))
			signal_waiter(w);
		w = next;
	}
	close_list(p, pd->close, PQPOOL_CLOSE_POOL_CLOSED);
}

/* Slot goes EMPTY after its connection was closed (or never opened). May
 * free the pool. */
static void slot_emptied(struct pqpool *p, struct pqpool_conn *s)
{
	pending pd = {0};
	bool free_it;
	pthread_mutex_lock(&p->mu);
	atomic_store(&s->state, SLOT_EMPTY);
	p->nopen--;
	dispatch_locked(p, &pd);
	free_it = last_one_locked(p);
	pthread_mutex_unlock(&p->mu);
	finish_pending(p, &pd);
	if (free_it)
		pool_free(p);
}

/* Closes an owned slot's connection and counts why; the slot stays owned.
 * The PGconn is detached under the lock, so that pqpool_close() never looks
 * at one being freed, and finished outside it. */
static void detach_conn(struct pqpool *p, struct pqpool_conn *s, pqpool_close_reason why)
{
	PGconn *pg;
	int fd;
	pthread_mutex_lock(&p->mu);
	pg = s->pg;
	fd = s->fd_dup;
	s->pg = NULL;
	s->fd_dup = -1;
	s->ci.valid = false;
	pthread_mutex_unlock(&p->mu);
	pqpool__stmts_free(s->stmts);
	s->stmts = NULL;
	PQfinish(pg);
	if (fd >= 0)
		close(fd);
	if (why == PQPOOL_CLOSE_BROKEN)
		atomic_store_explicit(&p->broken_at_ms, pqpool__now_coarse_ms(),
		                      memory_order_relaxed);
	pthread_mutex_lock(&p->stats_mu);
	p->closed_by[why]++;
	pthread_mutex_unlock(&p->stats_mu);
}

/* Closes an owned slot for good. May free the pool. */
static void close_slot(struct pqpool *p, struct pqpool_conn *s, pqpool_close_reason why)
{
	detach_conn(p, s, why);
	slot_emptied(p, s);
}

static void slot_attach(struct pqpool *p, struct pqpool_conn *s, PGconn *pg, int64_t now)
{
	int life = p->cfg.max_lifetime_ms;
	pqpool__cancel_info ci;
	pqpool__cancel_info_of(pg, &ci);
	/* written before the slot is published (OPENING -> BUSY or IDLE); the
	 * closer reads them under the lock only for slots it sees BUSY */
	s->pg = pg;
	s->ci = ci;
	s->fd_dup = PQsocket(pg) >= 0 ? fcntl(PQsocket(pg), F_DUPFD_CLOEXEC, 0) : -1;
	s->created_ms = now;
	s->checked_ms = now;
	s->expires_ms = 0;
	if (life > 0) {
		/* up to 10 % shorter, at random, so that connections opened together
		 * do not all reconnect together */
		int64_t jitter =
		        life / 10 > 0
		                ? (int64_t)(pqpool__rand64() % (uint64_t)(life / 10 + 1))
		                : 0;
		s->expires_ms = now + life - jitter;
	}
	s->broken = false;
	atomic_store_explicit(&s->released_ms, now, memory_order_relaxed);
	pthread_mutex_lock(&p->stats_mu);
	p->opened++;
	pthread_mutex_unlock(&p->stats_mu);
}

/* Makes an owned slot available: to the oldest waiter if any, else IDLE.
 * The caller gives the slot up: when the pool is closing the slot is closed
 * instead, which may free the pool. */
static void publish(struct pqpool *p, struct pqpool_conn *s)
{
	pending pd = {0};
	if (atomic_load(&p->contend) != 0) {
		bool handed = false, closed;
		pthread_mutex_lock(&p->mu);
		closed = p->closed;
		if (!closed && p->whead) {
			grant_locked(p, &pd, GRANT_SLOT, s);
			handed = true; /* the slot pins the pool for the waiter */
		}
		pthread_mutex_unlock(&p->mu);
		if (closed) {
			close_slot(p, s, PQPOOL_CLOSE_POOL_CLOSED);
			return;
		}
		if (handed) {
			finish_pending(p, &pd);
			return;
		}
	}
	atomic_store(&s->state, SLOT_IDLE);
	/* a caller may have queued, or close begun, between our first look and
	 * the store */
	if (atomic_load(&p->contend) != 0) {
		bool free_it;
		pthread_mutex_lock(&p->mu);
		dispatch_locked(p, &pd);
		free_it = last_one_locked(p);
		pthread_mutex_unlock(&p->mu);
		finish_pending(p, &pd);
		if (free_it)
			pool_free(p);
	}
}

/* Opens connections into owned OPENING slots; those that open become BUSY
 * (for the caller's lease) or are published, the others are emptied.
 * Returns how many opened, or -1 when out of memory (all emptied). The
 * caller must be pinned: emptying may otherwise free the pool. */
static int open_into(struct pqpool *p, struct pqpool_conn **slots, int n, bool lease,
                     int64_t deadline_ns, char *err, size_t errlen)
{
	PGconn *stackpg[8], **pgs = stackpg;
	int64_t t0 = pqpool__now_ns(), now;
	int opened;
	if (n > 8 && !(pgs = calloc((size_t)n, sizeof *pgs))) {
		for (int i = 0; i < n; i++)
			slot_emptied(p, slots[i]);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	opened = pqpool__connect_many(p, n, pgs, deadline_ns, err, errlen);
	now = pqpool__now_coarse_ms();
	pthread_mutex_lock(&p->stats_mu);
	for (int i = 0; i < n; i++) {
		if (pgs[i])
			pqpool__hist_add(&p->connect, pqpool__now_ns() - t0);
		else
			p->connect_failures++;
	}
	pthread_mutex_unlock(&p->stats_mu);
	for (int i = 0; i < n; i++) {
		if (!pgs[i]) {
			slot_emptied(p, slots[i]);
			continue;
		}
		slot_attach(p, slots[i], pgs[i], now);
		if (lease)
			atomic_store(&slots[i]->state, SLOT_BUSY);
		else
			publish(p, slots[i]);
	}
	/* A failure while other connections are open (the server's limit,
	 * most likely) holds the pool at its size; one with none open does
	 * not, so that a pool recovering from an outage fills at once. */
	pthread_mutex_lock(&p->mu);
	atomic_store_explicit(&p->grow_hold_until_ms,
	                      opened < n && p->nopen > 0 ? now + GROW_HOLD_MS : 0,
	                      memory_order_relaxed);
	pthread_mutex_unlock(&p->mu);
	if (pgs != stackpg)
		free(pgs);
	return opened;
}

/* ---- lifecycle ---- */

int pqpool_open(const pqpool_config *cfg_in, pqpool **out)
{
	pqpool_config defaults;
	struct pqpool *p;
	char err[PQPOOL__ERRLEN];
	pthread_condattr_t ca;
	size_t sz;
	int st;

	if (!out)
		return pqpool__fail(PQPOOL_EINVAL, "pqpool_open: out is NULL");
	*out = NULL;
	if (!cfg_in) {
		pqpool_config_init(&defaults);
		cfg_in = &defaults;
	}
	if (pqpool_config_validate(cfg_in, err, sizeof err) != PQPOOL_OK)
		return pqpool__fail(PQPOOL_EINVAL, "%s", err);

	sz = (sizeof *p + PQPOOL__CACHELINE - 1) / PQPOOL__CACHELINE * PQPOOL__CACHELINE;
	p = aligned_alloc(PQPOOL__CACHELINE, sz);
	if (!p)
		return pqpool__fail(PQPOOL_ENOMEM, "pqpool_open: out of memory");
	memset(p, 0, sizeof *p);
	p->cfg = *cfg_in;
	p->cfg.priv_ = NULL;
	p->cfg.conninfo = p->cfg.ssl_mode = p->cfg.ssl_cert = p->cfg.ssl_key =
	        p->cfg.ssl_root_cert = NULL; /* only p->params is used from here */
	p->health_query =
	        strdup(cfg_in->health_query ? cfg_in->health_query : "SELECT 1");
	p->cfg.health_query = p->health_query;
	p->nslots = cfg_in->pool_max;
	sz = (size_t)p->nslots * sizeof *p->slots;
	p->slots = aligned_alloc(PQPOOL__CACHELINE, sz);
	if (!p->health_query || !p->slots) {
		free(p->health_query);
		free(p->slots);
		free(p);
		return pqpool__fail(PQPOOL_ENOMEM, "pqpool_open: out of memory");
	}
	memset(p->slots, 0, sz);
	st = pqpool__params_build(cfg_in, &p->params, err, sizeof err);
	if (st != PQPOOL_OK) {
		free(p->health_query);
		free(p->slots);
		free(p);
		return pqpool__fail(st, "%s", err);
	}
	for (int i = 0; p->params.keywords[i]; i++)
		if (strcmp(p->params.keywords[i], "password") == 0)
			p->secret = p->params.values[i];
	for (int i = 0; i < p->nslots; i++) {
		p->slots[i].index = i;
		p->slots[i].pool = p;
		p->slots[i].fd_dup = -1;
		atomic_init(&p->slots[i].state, SLOT_EMPTY);
	}
	p->id = atomic_fetch_add(&next_pool_id, 1);
	p->started_wall_ms = pqpool__wall_ms();
	p->started_mono_ms = pqpool__now_coarse_ms();
	atomic_init(&p->next_upkeep_ms, p->started_mono_ms + 1000);
	pthread_mutex_init(&p->mu, NULL);
	pthread_mutex_init(&p->stats_mu, NULL);
	pthread_mutex_init(&p->health_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->drained, &ca);
	pthread_cond_init(&p->health_cv, &ca);
	pthread_condattr_destroy(&ca);

	st = pqpool_maintain(p);
	if (st == PQPOOL_OK && p->cfg.fail_fast && p->cfg.pool_min == 0) {
		/* nothing to warm: prove the database answers with one connection */
		pqpool_conn *c;
		st = pqpool_acquire(p, -1, &c);
		if (st == PQPOOL_OK)
			pqpool_release(c);
	}
	if (st != PQPOOL_OK && p->cfg.fail_fast) {
		snprintf(err, sizeof err, "%s", pqpool_errmsg());
		pqpool_close(p, 0);
		return pqpool__fail(st == PQPOOL_ENOMEM ? st : PQPOOL_ECONNECT,
		                    "pqpool_open: %s", err);
	}
	if (st != PQPOOL_OK)
		pqpool__log(p, PQPOOL_LOG_WARN,
		            "pool open without connections to %s (will retry on use): %s",
		            p->params.masked, pqpool_errmsg());
	else
		pqpool__log(p, PQPOOL_LOG_INFO,
		            "pool open: %d connection(s) to %s (max %d)", p->nopen,
		            p->params.masked, p->nslots);
	*out = p;
	pqpool__ok();
	return PQPOOL_OK;
}

/* Leases still out when close gives up: their queries are cancelled and
 * their sockets shut down (through our own descriptor, never the PGconn,
 * which belongs to the holder's thread), so the holders' next libpq call
 * fails fast. Collects what to cancel under p->mu; sends after. */
static int break_leases_locked(struct pqpool *p, pqpool__cancel_info *cis)
{
	int n = 0;
	for (int i = 0; i < p->nslots; i++) {
		struct pqpool_conn *s = &p->slots[i];
		if (atomic_load(&s->state) != SLOT_BUSY || !s->pg)
			continue;
		if (cis && s->ci.valid)
			cis[n++] = s->ci;
		if (s->fd_dup >= 0)
			shutdown(s->fd_dup, SHUT_RDWR);
	}
	return n;
}

int pqpool_close(pqpool *p, int drain_ms)
{
	pending pd = {0};
	struct timespec ts;
	int64_t deadline;
	pqpool__cancel_info *cis;
	int ncancel, left;

	if (!p)
		return PQPOOL_OK;
	pthread_mutex_lock(&p->mu);
	if (p->closed) {
		pthread_mutex_unlock(&p->mu);
		return pqpool__fail(PQPOOL_ECLOSED, "pqpool_close: already closed");
	}
	p->closed = true;
	atomic_fetch_or(&p->contend, PQPOOL__CLOSED_BIT);
	/* keeps the pool ours while we close idle connections below */
	p->users++;
	dispatch_locked(p, &pd);
	pthread_mutex_unlock(&p->mu);
	finish_pending(p, &pd);

	deadline = pqpool__now_ns() + (int64_t)(drain_ms > 0 ? drain_ms : 0) * 1000000;
	ts.tv_sec = deadline / 1000000000;
	ts.tv_nsec = deadline % 1000000000;
	pthread_mutex_lock(&p->mu);
	p->users--;
	while (p->nopen > 0 || p->users > 0) {
		if (pthread_cond_timedwait(&p->drained, &p->mu, &ts) == ETIMEDOUT)
			break;
	}
	if (p->nopen == 0 && p->users == 0) {
		pthread_mutex_unlock(&p->mu);
		pool_free(p);
		pqpool__ok();
		return PQPOOL_OK;
	}
	/* Still in use. The pool stays allocated (a "zombie") until the last
	 * lease is released and the last call inside it returns. */
	cis = calloc((size_t)p->nslots, sizeof *cis);
	ncancel = break_leases_locked(p, cis);
	left = p->nopen;
	p->zombie = true;
	pthread_mutex_unlock(&p->mu);
	/* p may be freed from here on: touch it no more */
	deadline = pqpool__now_ns() + 1000000000; /* one second for all cancels */
	for (int i = 0; cis && i < ncancel; i++) {
		char err[128];
		pqpool__cancel_send(&cis[i], deadline, err, sizeof err);
	}
	free(cis);
	return pqpool__fail(
	        PQPOOL_EBUSY,
	        "pqpool_close: %d connection(s) still in use after %d ms; their "
	        "queries were cancelled and their sockets shut down",
	        left, drain_ms);
}

/* ---- upkeep ---- */

/* Closes idle connections past the idle timeout (never below the minimum)
 * or their lifetime, and logs leases held too long. The caller is pinned or
 * owns a slot. */
static void reap(struct pqpool *p, int64_t now)
{
	struct pqpool_conn *idle_victims = NULL, *old_victims = NULL;
	struct {
		const char *file;
		int line;
		int64_t held;
	} warn[8];
	int nwarn = 0, keep;
	int idle_to = p->cfg.idle_timeout_ms, warn_ms = p->cfg.lease_warn_ms;

	pthread_mutex_lock(&p->mu);
	keep = p->nopen;
	/* from the highest slot down: those are the least used */
	for (int i = p->nslots - 1; i >= 0; i--) {
		struct pqpool_conn *s = &p->slots[i];
		int st = atomic_load(&s->state);
		if (st == SLOT_IDLE) {
			bool expired = s->expires_ms && now >= s->expires_ms;
			bool idle = idle_to > 0 && keep > p->cfg.pool_min &&
			            now - atomic_load_explicit(&s->released_ms,
			                                       memory_order_relaxed) >=
			                    idle_to;
			int want = SLOT_IDLE;
			if ((expired || idle) && !p->closed &&
			    atomic_compare_exchange_strong(&s->state, &want, SLOT_BUSY)) {
				struct pqpool_conn **list =
				        expired ? &old_victims : &idle_victims;
				s->next = *list;
				*list = s;
				keep--;
			}
		} else if (st == SLOT_BUSY && warn_ms > 0 && nwarn < 8) {
			int64_t at = atomic_load_explicit(&s->acquired_ms,
			                                  memory_order_relaxed);
			if (at > 0 && now - at >= warn_ms &&
			    !atomic_exchange(&s->warned, true)) {
				/* the lease may have changed hands since we read `at` */
				if (atomic_load_explicit(&s->acquired_ms,
				                         memory_order_relaxed) != at) {
					atomic_store(&s->warned, false);
					continue;
				}
				warn[nwarn].file = atomic_load_explicit(
				        &s->acq_file, memory_order_relaxed);
				warn[nwarn].line = atomic_load_explicit(
				        &s->acq_line, memory_order_relaxed);
				warn[nwarn].held = now - at;
				nwarn++;
			}
		}
	}
	pthread_mutex_unlock(&p->mu);
	if (nwarn) {
		pthread_mutex_lock(&p->stats_mu);
		p->lease_warnings += (uint64_t)nwarn;
		pthread_mutex_unlock(&p->stats_mu);
	}
	for (int i = 0; i < nwarn; i++)
		pqpool__log(
		        p, PQPOOL_LOG_WARN,
		        "lease held for %lld ms (DB_LEASE_WARN=%d), acquired at %s:%d",
		        (long long)warn[i].held, warn_ms,
		        warn[i].file ? warn[i].file : "?", warn[i].line);
	close_list(p, idle_victims, PQPOOL_CLOSE_IDLE);
	close_list(p, old_victims, PQPOOL_CLOSE_LIFETIME);
}

/* Reaping runs at most this often from the lease path. */
static int64_t upkeep_interval(const struct pqpool *p)
{
	int64_t iv = p->cfg.idle_timeout_ms > 0 ? p->cfg.idle_timeout_ms / 4 : 1000;
	return iv < 50 ? 50 : iv > 1000 ? 1000 : iv;
}

static void maybe_upkeep(struct pqpool *p, int64_t now)
{
	int64_t next = atomic_load_explicit(&p->next_upkeep_ms, memory_order_relaxed);
	if (now < next)
		return;
	if (!atomic_compare_exchange_strong(&p->next_upkeep_ms, &next,
	                                    now + upkeep_interval(p)))
		return;
	reap(p, now);
}

static int refill(struct pqpool *p)
{
	struct pqpool_conn *stackslots[8], **claimed = stackslots;
	char err[PQPOOL__ERRLEN];
	int need, n = 0, opened;

	reap(p, pqpool__now_coarse_ms());
	atomic_store(&p->next_upkeep_ms, pqpool__now_coarse_ms() + upkeep_interval(p));

	pthread_mutex_lock(&p->mu);
	if (p->closed) {
		pthread_mutex_unlock(&p->mu);
		return pqpool__fail(PQPOOL_ECLOSED, "maintain: pool closed");
	}
	need = p->cfg.pool_min - p->nopen;
	if (need > 8 && !(claimed = malloc((size_t)need * sizeof *claimed))) {
		pthread_mutex_unlock(&p->mu);
		return pqpool__fail(PQPOOL_ENOMEM, "maintain: out of memory");
	}
	while (n < need) {
		struct pqpool_conn *s = claim_empty_locked(p);
		if (!s)
			break;
		claimed[n++] = s;
	}
	pthread_mutex_unlock(&p->mu);
	if (n == 0) {
		if (claimed != stackslots)
			free(claimed);
		pqpool__ok();
		return PQPOOL_OK;
	}
	opened = open_into(p, claimed, n, false,
	                   pqpool__now_ns() +
	                           (int64_t)p->cfg.connection_timeout_ms * 1000000,
	                   err, sizeof err);
	if (claimed != stackslots)
		free(claimed);
	if (opened < 0)
		return pqpool__fail(PQPOOL_ENOMEM, "maintain: out of memory");
	if (opened < n)
		return pqpool__fail(PQPOOL_ECONNECT, "could not connect to %s: %s",
		                    p->params.masked, err);
	pqpool__ok();
	return PQPOOL_OK;
}

int pqpool_maintain(pqpool *p)
{
	int st;
	if (!p)
		return pqpool__fail(PQPOOL_EINVAL, "pqpool_maintain: pool is NULL");
	pin(p);
	st = refill(p);
	unpin(p);
	return st;
}

/* ---- acquire and release ---- */

/* Why an owned idle slot cannot be handed out as it is, or -1 when it can:
 * past its lifetime, or found dead by the cheap check, which runs when it
 * has been idle a while or predates a breakage seen on another connection. */
static int unfit(struct pqpool *p, struct pqpool_conn *s, int64_t now)
{
	int64_t idle_for, broken_at;
	if (s->expires_ms && now >= s->expires_ms)
		return PQPOOL_CLOSE_LIFETIME;
	idle_for = now - atomic_load_explicit(&s->released_ms, memory_order_relaxed);
	broken_at = atomic_load_explicit(&p->broken_at_ms, memory_order_relaxed);
	if (idle_for < p->cfg.validate_after_ms && s->checked_ms >= broken_at)
		return -1;
	if (!pqpool__conn_alive(s->pg)) {
		pqpool__log(p, PQPOOL_LOG_INFO,
		            "connection found closed by the server (idle %lld ms); "
		            "replacing it",
		            (long long)idle_for);
		return PQPOOL_CLOSE_BROKEN;
	}
	s->checked_ms = now;
	return -1;
}

static void lease_begin(struct pqpool_conn *s, int64_t now, const char *file, int line)
{
	atomic_store_explicit(&s->acq_file, file, memory_order_relaxed);
	atomic_store_explicit(&s->acq_line, line, memory_order_relaxed);
	atomic_store_explicit(&s->acquired_ms, now > 0 ? now : 1, memory_order_relaxed);
	atomic_store_explicit(&s->acquires,
	                      atomic_load_explicit(&s->acquires, memory_order_relaxed) +
	                              1,
	                      memory_order_relaxed);
	s->last_status = 0;
	s->last_sqlstate[0] = '\0';
	s->deadline_cap_ns = 0;
}

/* Records an acquire that queued or opened a connection, in the slot it
 * got (owned: no lock, no shared cache line). */
static void record_wait(struct pqpool_conn *s, int64_t t0)
{
	int64_t ns = pqpool__now_ns() - t0;
	pqpool__qstats *q = &s->q;
	if (ns < 0)
		ns = 0;
	atomic_store_explicit(
	        &q->slow_acquires,
	        atomic_load_explicit(&q->slow_acquires, memory_order_relaxed) + 1,
	        memory_order_relaxed);
	atomic_store_explicit(
	        &q->wait_sum_ns,
	        atomic_load_explicit(&q->wait_sum_ns, memory_order_relaxed) +
	                (uint64_t)ns,
	        memory_order_relaxed);
	atomic_store_explicit(&q->wait_hist[pqpool__hist_bucket(ns)],
	                      atomic_load_explicit(&q->wait_hist[pqpool__hist_bucket(ns)],
	                                           memory_order_relaxed) +
	                              1,
	                      memory_order_relaxed);
}

/* Opens a connection into an owned OPENING slot for the caller's lease.
 * The caller is pinned. */
static int open_for_lease(struct pqpool *p, struct pqpool_conn *s, int64_t t0,
                          int64_t deadline, pqpool_conn **out, const char *file, int line)
{
	char err[PQPOOL__ERRLEN];
	int n, st;
	/* a failed open empties the slot, which no longer pins the pool */
	pin(p);
	n = open_into(p, &s, 1, true, deadline, err, sizeof err);
	if (n == 1) {
		unpin(p); /* the slot pins it */
		if (atomic_load(&p->contend) & PQPOOL__CLOSED_BIT) {
			pqpool_release(s); /* closes it */
			return pqpool__fail(PQPOOL_ECLOSED, "acquire: pool closed");
		}
		lease_begin(s, pqpool__now_coarse_ms(), file, line);
		record_wait(s, t0);
		*out = s;
		pqpool__ok();
		return PQPOOL_OK;
	}
	if (n < 0) {
		st = pqpool__fail(PQPOOL_ENOMEM, "acquire: out of memory");
	} else {
		/* A connect that ran out of time is still a failure to connect,
		 * not pool exhaustion: it is ECONNECT, which retry loops may try
		 * again. */
		atomic_fetch_add(&p->acquire_errors, 1);
		if (pqpool__now_ns() >= deadline)
			st = pqpool__fail(
			        PQPOOL_ECONNECT,
			        "acquire: could not connect to %s within %lld ms "
			        "(DB_CONNECTION_TIMEOUT): %s",
			        p->params.masked,
			        (long long)((pqpool__now_ns() - t0) / 1000000), err);
		else
			st = pqpool__fail(PQPOOL_ECONNECT,
			                  "acquire: could not connect to %s: %s",
			                  p->params.masked, err);
	}
	unpin(p);
	return st;
}

/* An owned slot whose connection is unfit: its connection is replaced in
 * place, so the caller keeps its turn. The caller is pinned. */
static int reopen_for_lease(struct pqpool *p, struct pqpool_conn *s, int why, int64_t t0,
                            int64_t deadline, pqpool_conn **out, const char *file,
                            int line)
{
	detach_conn(p, s, (pqpool_close_reason)why);
	atomic_store(&s->state, SLOT_OPENING);
	return open_for_lease(p, s, t0, deadline, out, file, line);
}

/* Waits until the waiter is signaled or the monotonic deadline passes.
 * Returns 1 when signaled. */
static int wait_grant(pqpool__waiter *w, int64_t deadline)
{
	if (!w->ctx)
		return pqpool__event_wait(&w->ev, deadline);
	while (!atomic_load_explicit(&w->signaled, memory_order_acquire)) {
		struct epoll_event evs[4];
		int64_t left = deadline - pqpool__now_ns();
		int n, ms;
		if (left <= 0)
			return 0;
		ms = left > (int64_t)1000000 * 1000000 ? 1000000
		                                       : (int)((left + 999999) / 1000000);
		n = epoll_wait(w->ctx->epfd, evs, 4, ms);
		for (int i = 0; i < n; i++) {
			uint64_t v;
			if (evs[i].data.ptr == NULL &&
			    read(w->ctx->evfd, &v, sizeof v) < 0) {
				/* drained already */
			}
			/* a socket that fired is either ours (signaled is set)
			 * or left armed by an earlier wait: its one shot is spent */
		}
	}
	/* the granter may still be in a system call on our wait set */
	while (!atomic_load_explicit(&w->done, memory_order_acquire))
		sched_yield();
	return 1;
}

static int acquire_slow(struct pqpool *p, int64_t t0, int64_t deadline, pqpool_conn **out,
                        const char *file, int line, const pqpool__qreq *q,
                        int64_t *sent_ns)
{
	pqpool__waiter w;
	enum grant_kind kind = GRANT_NONE;
	struct pqpool_conn *s = NULL;
	int why;

	pthread_mutex_lock(&p->mu);
	if (p->closed) {
		pthread_mutex_unlock(&p->mu);
		return pqpool__fail(PQPOOL_ECLOSED, "acquire: pool closed");
	}
	if (!p->whead) {
		if ((s = take_idle(p, true)) != NULL)
			kind = GRANT_SLOT;
		else if ((s = claim_empty_locked(p)) != NULL)
			kind = GRANT_CAPACITY;
	}
	if (kind == GRANT_NONE) {
		pending pd = {0};
		w.next = NULL;
		atomic_init(&w.kind, GRANT_NONE);
		w.slot = NULL;
		pqpool__event_init(&w.ev);
		w.q = q;
		w.ctx = q ? tctx_get() : NULL;
		atomic_init(&w.signaled, 0);
		atomic_init(&w.done, 0);
		w.sent_ns = 0;
		/* w lives on this stack frame; every way out of this block takes it
		 * off the queue (a granter, or the timeout below) */
		if (p->wtail)
			p->wtail->next = &w; // cppcheck-suppress autoVariables
		else
			p->whead = &w; // cppcheck-suppress autoVariables
		p->wtail = &w;         // cppcheck-suppress autoVariables
		p->nwaiting++;
		p->users++; /* dropped by our granter, or below on timeout */
		atomic_fetch_add(&p->contend, 1);
		/* a connection released before our increment is idle now */
		dispatch_locked(p, &pd);
		pthread_mutex_unlock(&p->mu);
		finish_pending(p, &pd);
		if (!wait_grant(&w, deadline)) {
			int open, waiting, nslots;
			bool free_it;
			pthread_mutex_lock(&p->mu);
			if (atomic_load_explicit(&w.kind, memory_order_relaxed) ==
			    GRANT_NONE) {
				pqpool__waiter **pp = &p->whead, *prev = NULL;
				while (*pp != &w) {
					prev = *pp;
					pp = &(*pp)->next;
				}
				*pp = w.next;
				if (p->wtail == &w)
					p->wtail = prev;
				p->nwaiting--;
				atomic_fetch_sub(&p->contend, 1);
				atomic_fetch_add(&p->acquire_timeouts, 1);
				open = p->nopen;
				waiting = p->nwaiting;
				nslots = p->nslots;
				p->users--;
				free_it = last_one_locked(p);
				pthread_mutex_unlock(&p->mu);
				if (free_it)
					pool_free(p);
				return pqpool__fail(
				        PQPOOL_ETIMEDOUT,
				        "acquire: timed out after %lld ms waiting for a "
				        "connection "
				        "(%d of %d open, all in use; %d other caller(s) "
				        "waiting)",
				        (long long)((pqpool__now_ns() - t0) / 1000000),
				        open, nslots, waiting);
			}
			pthread_mutex_unlock(&p->mu);
			/* granted as we gave up: the granter signals us next */
			wait_grant(&w, INT64_MAX);
		}
		kind = (enum grant_kind)atomic_load_explicit(&w.kind,
		                                             memory_order_relaxed);
		s = w.slot;
		if (kind == GRANT_SENT) { /* our query is on its way */
			lease_begin(s, pqpool__now_coarse_ms(), file, line);
			record_wait(s, t0);
			*sent_ns = w.sent_ns;
			*out = s;
			pqpool__ok();
			return PQPOOL_OK;
		}
	} else {
		pthread_mutex_unlock(&p->mu);
	}

	if (kind == GRANT_CLOSED)
		return pqpool__fail(PQPOOL_ECLOSED, "acquire: pool closed");
	if (kind == GRANT_CAPACITY)
		return open_for_lease(p, s, t0, deadline, out, file, line);
	/* GRANT_SLOT */
	why = unfit(p, s, pqpool__now_coarse_ms());
	if (why >= 0)
		return reopen_for_lease(p, s, why, t0, deadline, out, file, line);
	lease_begin(s, pqpool__now_coarse_ms(), file, line);
	record_wait(s, t0);
	*out = s;
	pqpool__ok();
	return PQPOOL_OK;
}

/* Everything but the lock-free path. `s` is an unfit slot the fast path
 * took (or NULL). Pinning: a queued waiter holds a pin; a slot owner is
 * pinned by its slot; opening pins for itself. */
static int acquire_rest(struct pqpool *p, struct pqpool_conn *s, int why, int64_t t0,
                        int64_t deadline, pqpool_conn **out, const char *file, int line)
{
	int64_t unused;
	if (s)
		return reopen_for_lease(p, s, why, t0, deadline, out, file, line);
	return acquire_slow(p, t0, deadline, out, file, line, NULL, &unused);
}

/* The lock-free path, taken only when nobody queues (no barging). Returns
 * true with *out set, or false with *unfit_slot an owned slot to replace
 * (or NULL) and *why its reason. */
static bool acquire_fast(struct pqpool *p, pqpool_conn **out, const char *file, int line,
                         struct pqpool_conn **unfit_slot, int *why)
{
	struct pqpool_conn *s;
	int64_t now;
	*unfit_slot = NULL;
	if (atomic_load_explicit(&p->contend, memory_order_acquire) != 0 ||
	    (s = take_idle(p, true)) == NULL)
		return false;
	now = pqpool__now_coarse_ms();
	if ((*why = unfit(p, s, now)) >= 0) {
		*unfit_slot = s;
		return false;
	}
	lease_begin(s, now, file, line);
	*out = s;
	pqpool__ok();
	return true;
}

int pqpool__acquire_query(struct pqpool *p, int64_t deadline_ns, const pqpool__qreq *q,
                          pqpool_conn **out, int64_t *sent_ns)
{
	struct pqpool_conn *s;
	int why = -1;
	*out = NULL;
	*sent_ns = 0;
	if (acquire_fast(p, out, __FILE__, __LINE__, &s, &why))
		return PQPOOL_OK;
	if (s)
		return reopen_for_lease(p, s, why, pqpool__now_ns(), deadline_ns, out,
		                        __FILE__, __LINE__);
	return acquire_slow(p, pqpool__now_ns(), deadline_ns, out, __FILE__, __LINE__, q,
	                    sent_ns);
}

int pqpool__try_acquire(struct pqpool *p, pqpool_conn **out, const char *file, int line)
{
	struct pqpool_conn *s;
	int why = -1;
	*out = NULL;
	if (acquire_fast(p, out, file, line, &s, &why))
		return PQPOOL_OK;
	if (s) { /* unfit: replacing it would mean connecting, which blocks */
		pin(p);
		close_slot(p, s, (pqpool_close_reason)why);
		unpin(p);
	}
	return pqpool__fail(PQPOOL_EAGAIN, "acquire: no idle connection free right now");
}

int pqpool__acquire_until(struct pqpool *p, int64_t deadline_ns, pqpool_conn **out,
                          const char *file, int line)
{
	struct pqpool_conn *s;
	int why = -1;
	if (!p || !out)
		return pqpool__fail(PQPOOL_EINVAL, "acquire: NULL pool or out");
	*out = NULL;
	if (acquire_fast(p, out, file, line, &s, &why))
		return PQPOOL_OK;
	return acquire_rest(p, s, why, pqpool__now_ns(), deadline_ns, out, file, line);
}

int pqpool_acquire_at(pqpool *p, int timeout_ms, pqpool_conn **out, const char *file,
                      int line)
{
	struct pqpool_conn *s;
	int why = -1;
	int64_t t0;
	if (!p || !out)
		return pqpool__fail(PQPOOL_EINVAL, "acquire: NULL pool or out");
	*out = NULL;
	if (acquire_fast(p, out, file, line, &s, &why))
		return PQPOOL_OK;
	/* the precise clock is read only here, off the fast path */
	t0 = pqpool__now_ns();
	if (timeout_ms < 0)
		timeout_ms = p->cfg.connection_timeout_ms;
	return acquire_rest(p, s, why, t0, t0 + (int64_t)timeout_ms * 1000000, out, file,
	                    line);
}

PGconn *pqpool_conn_pg(pqpool_conn *c)
{
	return c ? c->pg : NULL;
}

static bool rollback(struct pqpool_conn *s)
{
	const pqpool_config *cfg = &s->pool->cfg;
	int ms = cfg->query_timeout_ms > 0 ? cfg->query_timeout_ms
	                                   : cfg->connection_timeout_ms;
	int64_t deadline = pqpool__now_ns() + (int64_t)ms * 1000000;
	char saved[PQPOOL__ERRLEN], code[6];
	bool ok;
	/* the caller's own error (why the transaction failed) is what they
	 * will look at next, not ours */
	snprintf(saved, sizeof saved, "%s", pqpool_errmsg());
	snprintf(code, sizeof code, "%s", pqpool_errcode());
	ok = PQsendQuery(s->pg, "ROLLBACK") &&
	     pqpool__wait_result(s, deadline, 0, NULL, "rollback on release") ==
	             PQPOOL_OK;
	if (!ok)
		pqpool__log(s->pool, PQPOOL_LOG_WARN, "%s", pqpool_errmsg());
	pqpool__fail_code(0, code, "%s", saved);
	return ok;
}

static void release_impl(struct pqpool_conn *s, bool discard)
{
	struct pqpool *p;
	int reason = -1;
	int64_t now;

	if (!s)
		return;
	p = s->pool;
	if (discard) {
		reason = PQPOOL_CLOSE_DISCARDED;
	} else if (s->broken || PQstatus(s->pg) != CONNECTION_OK) {
		reason = PQPOOL_CLOSE_BROKEN;
	} else {
		PGTransactionStatusType tx = PQtransactionStatus(s->pg);
		if (tx == PQTRANS_INTRANS || tx == PQTRANS_INERROR) {
			if (rollback(s)) {
				pthread_mutex_lock(&p->stats_mu);
				p->rollbacks++;
				pthread_mutex_unlock(&p->stats_mu);
			} else {
				reason = PQPOOL_CLOSE_UNCLEAN;
			}
		} else if (tx != PQTRANS_IDLE) {
			/* a command still running, or results not read */
			reason = PQPOOL_CLOSE_UNCLEAN;
		}
	}
	now = pqpool__now_coarse_ms();
	if (reason < 0 && s->expires_ms && now >= s->expires_ms)
		reason = PQPOOL_CLOSE_LIFETIME;
	atomic_store_explicit(&s->acquired_ms, 0, memory_order_relaxed);
	atomic_store_explicit(&s->warned, false, memory_order_relaxed);
	/* upkeep while our slot still pins the pool */
	maybe_upkeep(p, now);
	if (reason >= 0) {
		close_slot(p, s, (pqpool_close_reason)reason);
		return;
	}
	atomic_store_explicit(&s->released_ms, now, memory_order_relaxed);
	tl_hint.pool_id = p->id;
	tl_hint.slot = s->index;
	publish(p, s); /* may free the pool when closing */
}

void pqpool_release(pqpool_conn *c)
{
	release_impl(c, false);
}

void pqpool_discard(pqpool_conn *c)
{
	release_impl(c, true);
}
