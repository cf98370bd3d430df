/* slot.c — the slots of a pool and the hand-off between callers.
 *
 * A slot's state is claimed by compare-and-swap, so the lease path takes no
 * lock while nobody waits. Once a caller has to wait, it queues FIFO under
 * the pool's lock (lease.c) and sleeps on its own wake-up (wait.c); a
 * release then hands its connection straight to the oldest waiter, and new
 * callers queue behind (no barging). The pool's `contend` word (waiters +
 * closed bit) is what sends both sides down the locked path; the store of a
 * slot's IDLE state and the waiter's increment of `contend`, and the loads
 * that follow each, are all sequentially consistent, so a release and a new
 * waiter cannot miss each other. */
#include "slot.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "conn.h"
#include "fdwait.h"
#include "pin.h"
#include "pool.h"
#include "rand.h"
#include "role.h"
#include "wait.h"

/* How long a failed open stops the pool from growing past the connections
 * it has: about the upkeep's cadence, so that a server that refuses more
 * connections (max_connections reached) is asked about once a second, not
 * once per caller. */
#define GROW_HOLD_MS 1000

/* The slot this thread released last, and in which pool. */
static __thread struct {
	uint64_t pool_id;
	int slot;
} tl_hint;

static bool take(pqpool__slot *s)
{
	/* seq_cst: pairs with publish()'s IDLE store and load of `contend` */
	int idle = PQPOOL__SLOT_IDLE;
	return atomic_load(&s->state) == PQPOOL__SLOT_IDLE &&
	       atomic_compare_exchange_strong(&s->state, &idle, PQPOOL__SLOT_BUSY);
}

pqpool__slot *pqpool__take_idle(struct pqpool *p, bool use_hint)
{
	if (use_hint && tl_hint.pool_id == p->id && take(&p->slots[tl_hint.slot]))
		return &p->slots[tl_hint.slot];
	for (int i = 0; i < p->nslots; i++)
		if (take(&p->slots[i]))
			return &p->slots[i];
	return NULL;
}

void pqpool__remember(struct pqpool *p, const pqpool__slot *s)
{
	tl_hint.pool_id = p->id;
	tl_hint.slot = s->index;
}

pqpool__slot *pqpool__claim_empty_locked(struct pqpool *p)
{
	if (p->nopen >= p->nslots)
		return NULL;
	/* while a recent open failed, only a pool with no connection at all
	 * may try again: the others' callers wait for a release */
	if (p->nopen > 0 &&
	    pqc_now_coarse_ms() <
	            atomic_load_explicit(&p->grow_hold_until_ms, memory_order_relaxed))
		return NULL;
	for (int i = 0; i < p->nslots; i++) {
		pqpool__slot *s = &p->slots[i];
		if (atomic_load_explicit(&s->state, memory_order_relaxed) ==
		    PQPOOL__SLOT_EMPTY) {
			atomic_store(&s->state, PQPOOL__SLOT_OPENING);
			p->nopen++;
			return s;
		}
	}
	return NULL;
}

void pqpool__grant_locked(struct pqpool *p, pqpool__pending *pd, int kind,
                          pqpool__slot *s)
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

void pqpool__dispatch_locked(struct pqpool *p, pqpool__pending *pd)
{
	pqpool__slot *s;
	if (p->closed) {
		while (p->whead)
			pqpool__grant_locked(p, pd, PQPOOL__GRANT_CLOSED, NULL);
		while ((s = pqpool__take_idle(p, false)) != NULL) {
			s->next = pd->close;
			pd->close = s;
		}
		return;
	}
	while (p->whead) {
		if ((s = pqpool__take_idle(p, false)) != NULL)
			pqpool__grant_locked(p, pd, PQPOOL__GRANT_SLOT, s);
		else if ((s = pqpool__claim_empty_locked(p)) != NULL)
			pqpool__grant_locked(p, pd, PQPOOL__GRANT_CAPACITY, s);
		else
			break;
	}
}

void pqpool__close_list(struct pqpool *p, pqpool__slot *s, pqpool_close_reason why)
{
	while (s) {
		pqpool__slot *next = s->next;
		pqpool__close_slot(p, s, why);
		s = next;
	}
}

void pqpool__finish_pending(struct pqpool *p, pqpool__pending *pd)
{
	pqpool__waiter *w = pd->wake;
	while (w) {
		/* read next first: once woken, the waiter may return, and its
		 * stack frame, where w lives, is gone */
		pqpool__waiter *next = w->next;
		if (!(w->then &&
		      atomic_load_explicit(&w->kind, memory_order_relaxed) ==
		              PQPOOL__GRANT_SLOT &&
		      pqpool__unfit(p, w->slot, pqc_now_coarse_ms()) < 0 &&
		      w->then(w, w->slot, w->then_arg)))
			pqpool__waiter_wake(w);
		w = next;
	}
	pqpool__close_list(p, pd->close, PQPOOL_CLOSE_POOL_CLOSED);
}

/* Slot goes EMPTY after its connection was closed (or never opened). May
 * free the pool. */
static void emptied(struct pqpool *p, pqpool__slot *s)
{
	pqpool__pending pd = {0};
	bool free_it;
	pthread_mutex_lock(&p->mu);
	atomic_store(&s->state, PQPOOL__SLOT_EMPTY);
	p->nopen--;
	pqpool__dispatch_locked(p, &pd);
	free_it = pqpool__last_one_locked(p);
	pthread_mutex_unlock(&p->mu);
	pqpool__finish_pending(p, &pd);
	if (free_it)
		pqpool__pool_free(p);
}

void pqpool__detach(struct pqpool *p, pqpool__slot *s, pqpool_close_reason why)
{
	PGconn *pg;
	int fd;
	/* detached under the lock, so that pqpool_close() never looks at a
	 * PGconn being freed; finished outside it */
	pthread_mutex_lock(&p->mu);
	pg = s->link.pg;
	fd = s->link.fd_dup;
	s->link.pg = NULL;
	s->link.fd_dup = -1;
	pthread_mutex_unlock(&p->mu);
	pqpool__canceller_free(pqpool__take_canceller(s));
	pqpool__stmts_free(s->link.stmts);
	s->link.stmts = NULL;
	PQfinish(pg);
	if (fd >= 0)
		close(fd);
	if (why == PQPOOL_CLOSE_BROKEN)
		atomic_store_explicit(&p->broken_at_ms, pqc_now_coarse_ms(),
		                      memory_order_relaxed);
	pqpool__count_closed(&p->ctx.counters, why);
}

void pqpool__close_slot(struct pqpool *p, pqpool__slot *s, pqpool_close_reason why)
{
	pqpool__detach(p, s, why);
	emptied(p, s);
}

static void attach(struct pqpool *p, pqpool__slot *s, PGconn *pg, int64_t now)
{
	int life = p->ctx.cfg.max_lifetime_ms;
	pqpool__link *l = &s->link;
	/* written before the slot is published (OPENING -> BUSY or IDLE); the
	 * closer reads them under the lock only for slots it sees BUSY */
	l->pg = pg;
	atomic_store(&l->cancel, pqpool__canceller_new(pg));
	l->fd_dup = PQsocket(pg) >= 0 ? fcntl(PQsocket(pg), F_DUPFD_CLOEXEC, 0) : -1;
	l->created_ms = now;
	l->checked_ms = now;
	l->expires_ms = 0;
	if (life > 0) {
		/* up to 10 % shorter, at random, so that connections opened together
		 * do not all reconnect together */
		int64_t jitter =
		        life / 10 > 0
		                ? (int64_t)(pqc_rand64() % (uint64_t)(life / 10 + 1))
		                : 0;
		l->expires_ms = now + life - jitter;
	}
	l->broken = false;
	atomic_store_explicit(&l->released_ms, now, memory_order_relaxed);
	pqpool__count_opened(&p->ctx.counters);
}

void pqpool__publish(struct pqpool *p, pqpool__slot *s)
{
	pqpool__pending pd = {0};
	if (atomic_load(&p->contend) != 0) {
		bool handed = false, closed;
		pthread_mutex_lock(&p->mu);
		closed = p->closed;
		if (!closed && p->whead) {
			pqpool__grant_locked(p, &pd, PQPOOL__GRANT_SLOT, s);
			handed = true; /* the slot pins the pool for the waiter */
		}
		pthread_mutex_unlock(&p->mu);
		if (closed) {
			pqpool__close_slot(p, s, PQPOOL_CLOSE_POOL_CLOSED);
			return;
		}
		if (handed) {
			pqpool__finish_pending(p, &pd);
			return;
		}
	}
	atomic_store(&s->state, PQPOOL__SLOT_IDLE);
	/* a caller may have queued, or close begun, between our first look and
	 * the store */
	if (atomic_load(&p->contend) != 0) {
		bool free_it;
		pthread_mutex_lock(&p->mu);
		pqpool__dispatch_locked(p, &pd);
		free_it = pqpool__last_one_locked(p);
		pthread_mutex_unlock(&p->mu);
		pqpool__finish_pending(p, &pd);
		if (free_it)
			pqpool__pool_free(p);
	}
}

/* What opening n slots (pgs[i]: its connection, NULL when it failed, opened
 * of them; begun at t0) comes to: the host's ban told, the connect times
 * counted, each slot attached and made BUSY (PQPOOL__OPEN_LEASE) or
 * published, or emptied; the pool's growth held after a failure. */
static void settle(struct pqpool *p, pqpool__slot **slots, PGconn **pgs, int n,
                   int opened, unsigned how, int64_t t0)
{
	int64_t now;
	pqpool__role_connected(&p->ctx, opened > 0);
	now = pqc_now_coarse_ms();
	for (int i = 0; i < n; i++)
		pqpool__count_connect(&p->ctx.counters, pgs[i] ? pqc_now_ns() - t0 : -1);
	for (int i = 0; i < n; i++) {
		if (!pgs[i]) {
			emptied(p, slots[i]);
			continue;
		}
		attach(p, slots[i], pgs[i], now);
		pqpool__role_check(slots[i], NULL); /* a member learns its role */
		if (how & PQPOOL__OPEN_LEASE)
			atomic_store(&slots[i]->state, PQPOOL__SLOT_BUSY);
		else
			pqpool__publish(p, slots[i]);
	}
	/* A failure while other connections are open (the server's limit,
	 * most likely) holds the pool at its size; one with none open does
	 * not, so that a pool recovering from an outage fills at once. */
	pthread_mutex_lock(&p->mu);
	atomic_store_explicit(&p->grow_hold_until_ms,
	                      opened < n && p->nopen > 0 ? now + GROW_HOLD_MS : 0,
	                      memory_order_relaxed);
	pthread_mutex_unlock(&p->mu);
}

/* The pause after failed connect attempt k (1-based) of a patient open:
 * 50 ms doubling to 400 ms, the upper half at random (callers that wait
 * together do not connect together), never past the deadline. */
static int64_t patience_ms(int k, int64_t deadline_ns)
{
	int64_t ms = (int64_t)50 << (k < 4 ? k - 1 : 3);
	int64_t left = pqc_ms_until(deadline_ns);
	ms = ms / 2 + (int64_t)(pqc_rand64() % (uint64_t)(ms / 2 + 1));
	return ms < left ? ms : left;
}

int pqpool__open_into(struct pqpool *p, pqpool__slot **slots, int n, unsigned how,
                      int64_t deadline_ns, char *err, size_t errlen)
{
	PGconn *stackpg[8], **pgs = stackpg;
	int64_t t0 = pqc_now_ns();
	int opened;
	if (n > 8 && !(pgs = calloc((size_t)n, sizeof *pgs))) {
		for (int i = 0; i < n; i++)
			emptied(p, slots[i]);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	opened = pqpool__connect_many(&p->ctx.params, &p->ctx.log, n, pgs, deadline_ns,
	                              err, errlen);
	for (int k = 1; opened == 0 && (how & PQPOOL__OPEN_PATIENT) &&
	                p->ctx.params.need_primary && pqc_now_ns() < deadline_ns &&
	                !(atomic_load(&p->contend) & PQPOOL__CLOSED_BIT);
	     k++) {
		if (k == 1)
			pqpool__log(&p->ctx.log, PQPOOL_LOG_WARN,
			            "no primary answers (%s); trying again until "
			            "DB_CONNECTION_TIMEOUT",
			            err);
		pqc_sleep_ms(patience_ms(k, deadline_ns));
		opened = pqpool__connect_many(&p->ctx.params, &p->ctx.log, n, pgs,
		                              deadline_ns, err, errlen);
	}
	settle(p, slots, pgs, n, opened, how, t0);
	if (pgs != stackpg)
		free(pgs);
	return opened;
}

void pqpool__open_settle(struct pqpool *p, pqpool__slot *s, PGconn *pg, int64_t t0_ns)
{
	settle(p, &s, &pg, 1, pg ? 1 : 0, PQPOOL__OPEN_LEASE, t0_ns);
}

void pqpool__open_abandon(struct pqpool *p, pqpool__slot *s)
{
	emptied(p, s);
}

int pqpool__unfit(struct pqpool *p, pqpool__slot *s, int64_t now)
{
	pqpool__link *l = &s->link;
	int64_t idle_for, broken_at;
	if (pqpool__retired(s))
		return PQPOOL_CLOSE_READ_ONLY;
	if (l->expires_ms && now >= l->expires_ms)
		return PQPOOL_CLOSE_LIFETIME;
	idle_for = now - atomic_load_explicit(&l->released_ms, memory_order_relaxed);
	broken_at = atomic_load_explicit(&p->broken_at_ms, memory_order_relaxed);
	/* checked when idle a while, or older than a breakage seen elsewhere */
	if (idle_for < p->ctx.cfg.validate_after_ms && l->checked_ms >= broken_at)
		return -1;
	if (!pqpool__conn_alive(l->pg)) {
		pqpool__log(&p->ctx.log, PQPOOL_LOG_INFO,
		            "connection found closed by the server (idle %lld ms); "
		            "replacing it",
		            (long long)idle_for);
		return PQPOOL_CLOSE_BROKEN;
	}
	l->checked_ms = now;
	return -1;
}

static void snapshot_one(struct pqpool *p, pqpool_stats *st, bool full);

void pqpool__snapshot(struct pqpool *p, pqpool_stats *st, bool full)
{
	snapshot_one(p, st, full);
	/* a pool of several hosts: its own counters (retries) and its members' */
	for (int i = 0; i < p->nmembers; i++) {
		pqpool_stats m;
		snapshot_one(p->members[i], &m, full);
		pqpool__stats_add(st, &m);
	}
}

static void snapshot_one(struct pqpool *p, pqpool_stats *st, bool full)
{
	pqpool__tally t;
	uint32_t contend;
	pqpool__tally_begin(&t, st, full);
	for (int i = 0; i < p->nslots; i++) {
		int state =
		        atomic_load_explicit(&p->slots[i].state, memory_order_relaxed);
		pqpool__tally_slot(&t, &p->slots[i].q,
		                   state == PQPOOL__SLOT_IDLE    ? PQPOOL__USE_IDLE
		                   : state == PQPOOL__SLOT_EMPTY ? PQPOOL__USE_NONE
		                                                 : PQPOOL__USE_USED);
	}
	/* `contend` is the waiters count plus the closed bit, kept with them
	 * under the lock: reading it needs none */
	contend = atomic_load(&p->contend);
	pqpool__tally_end(&t, &(pqpool__pool_facts){
	                              .max = p->nslots,
	                              .min = p->ctx.cfg.pool_min,
	                              .waiting = (int)(contend & ~PQPOOL__CLOSED_BIT),
	                              .closed = (contend & PQPOOL__CLOSED_BIT) != 0,
	                              .started_wall_ms = p->started_wall_ms,
	                              .started_mono_ms = p->started_mono_ms,
	                              .counters = full ? &p->ctx.counters : NULL,
	                      });
}
