/* lease.c — leases: acquire (lock-free while nobody waits, FIFO once anyone
 * does, opening a connection when there is room) and release (rolled back
 * or closed unless clean, then handed to the oldest waiter). */
#include "lease.h"
#include "role.h"

#include <stdio.h>

#include "clock.h"
#include "error.h"
#include "exec.h"
#include "janitor.h"
#include "pin.h"
#include "pool.h"

static void lease_begin(pqpool__slot *s, int64_t now, const char *file, int line)
{
	struct pqpool_conn *l = &s->lease;
	atomic_store_explicit(&l->file, file, memory_order_relaxed);
	atomic_store_explicit(&l->line, line, memory_order_relaxed);
	atomic_store_explicit(&l->acquired_ms, now > 0 ? now : 1, memory_order_relaxed);
	l->last_status = 0;
	l->last_sqlstate[0] = '\0';
	l->deadline_cap_ns = 0;
	pqpool__qstats_lease(&s->q, now);
}

/* A lease that queued or opened a connection: begun, its wait counted in
 * the slot it got (owned: no lock, no shared cache line). */
static int granted(pqpool__slot *s, int64_t t0, const char *file, int line,
                   pqpool__slot **out)
{
	lease_begin(s, pqc_now_coarse_ms(), file, line);
	pqpool__qstats_wait(&s->q, pqc_now_ns() - t0);
	*out = s;
	pqpool__ok();
	return PQPOOL_OK;
}

/* Opens a connection into an owned OPENING slot (BUSY once open; a failed
 * open empties it); patient, a caller that may block waits for a primary
 * (slot.h). The lease is the caller's to begin. */
static int open_owned(struct pqpool *p, pqpool__slot *s, int64_t t0, int64_t deadline,
                      bool patient)
{
	char err[PQPOOL__ERRLEN];
	int n, st;
	/* a failed open empties the slot, which no longer pins the pool */
	pqpool__pin(p);
	n = pqpool__open_into(p, &s, 1,
	                      PQPOOL__OPEN_LEASE | (patient ? PQPOOL__OPEN_PATIENT : 0),
	                      deadline, err, sizeof err);
	if (n == 1) {
		pqpool__unpin(p); /* the slot pins it */
		if (atomic_load(&p->contend) & PQPOOL__CLOSED_BIT) {
			pqpool__release(s, false); /* closes it */
			return pqpool__fail(PQPOOL_ECLOSED, "acquire: pool closed");
		}
		pqpool__ok();
		return PQPOOL_OK;
	}
	if (n < 0) {
		st = pqpool__fail(PQPOOL_ENOMEM, "acquire: out of memory");
	} else {
		/* A connect that ran out of time is still a failure to connect,
		 * not pool exhaustion: it is ECONNECT, which retry loops may try
		 * again. */
		atomic_fetch_add(&p->ctx.counters.acquire_errors, 1);
		if (pqc_now_ns() >= deadline)
			st = pqpool__fail(
			        PQPOOL_ECONNECT,
			        "acquire: could not connect to %s within %lld ms "
			        "(DB_CONNECTION_TIMEOUT): %s",
			        p->ctx.params.masked,
			        (long long)((pqc_now_ns() - t0) / 1000000), err);
		else
			st = pqpool__fail(PQPOOL_ECONNECT,
			                  "acquire: could not connect to %s: %s",
			                  p->ctx.params.masked, err);
	}
	pqpool__unpin(p);
	return st;
}

/* Opens a connection into an owned OPENING slot for the caller's lease. */
static int open_for_lease(struct pqpool *p, pqpool__slot *s, int64_t t0, int64_t deadline,
                          bool patient, pqpool__slot **out, const char *file, int line)
{
	int st = open_owned(p, s, t0, deadline, patient);
	return st == PQPOOL_OK ? granted(s, t0, file, line, out) : st;
}

/* An owned slot's connection closed for why and another opened in its
 * place (open_owned). */
static int reopen_owned(struct pqpool *p, pqpool__slot *s, int why, int64_t t0,
                        int64_t deadline, bool patient)
{
	pqpool__detach(p, s, (pqpool_close_reason)why);
	atomic_store(&s->state, PQPOOL__SLOT_OPENING);
	return open_owned(p, s, t0, deadline, patient);
}

/* An owned slot whose connection is unfit: its connection is replaced in
 * place, so the caller keeps its turn. */
static int reopen_for_lease(struct pqpool *p, pqpool__slot *s, int why, int64_t t0,
                            int64_t deadline, bool patient, pqpool__slot **out,
                            const char *file, int line)
{
	int st = reopen_owned(p, s, why, t0, deadline, patient);
	return st == PQPOOL_OK ? granted(s, t0, file, line, out) : st;
}

/* Takes the caller off the queue after its wait timed out. Under p->mu,
 * which it releases. */
static int give_up_locked(struct pqpool *p, pqpool__waiter *w, int64_t t0)
{
	pqpool__waiter **pp = &p->whead, *prev = NULL;
	int open, waiting, nslots;
	bool free_it;
	while (*pp != w) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	*pp = w->next;
	if (p->wtail == w)
		p->wtail = prev;
	p->nwaiting--;
	atomic_fetch_sub(&p->contend, 1);
	atomic_fetch_add(&p->ctx.counters.acquire_timeouts, 1);
	open = p->nopen;
	waiting = p->nwaiting;
	nslots = p->nslots;
	p->users--;
	free_it = pqpool__last_one_locked(p);
	pthread_mutex_unlock(&p->mu);
	if (free_it)
		pqpool__pool_free(p);
	return pqpool__fail(PQPOOL_ETIMEDOUT,
	                    "acquire: timed out after %lld ms waiting for a connection "
	                    "(%d of %d open, all in use; %d other caller(s) waiting)",
	                    (long long)((pqc_now_ns() - t0) / 1000000), open, nslots,
	                    waiting);
}

/* Queues the caller (with its continuation, if any) and sleeps until it is
 * granted a slot, capacity, the pool's closing, or the deadline. Under p->mu,
 * which it releases. Returns the grant, or -1 after a timeout (the error
 * set). */
static int wait_locked(struct pqpool *p, pqpool__waiter *w, int64_t t0, int64_t deadline)
{
	pqpool__pending pd = {0};
	/* w lives on the caller's stack frame; every way out of here takes it
	 * off the queue (a granter, or the timeout below) */
	if (p->wtail)
		p->wtail->next = w;
	else
		p->whead = w;
	p->wtail = w;
	p->nwaiting++;
	p->users++; /* dropped by our granter, or on timeout */
	atomic_fetch_add(&p->contend, 1);
	/* a connection released before our increment is idle now */
	pqpool__dispatch_locked(p, &pd);
	pthread_mutex_unlock(&p->mu);
	pqpool__finish_pending(p, &pd);
	if (!pqpool__waiter_sleep(w, deadline)) {
		pthread_mutex_lock(&p->mu);
		if (atomic_load_explicit(&w->kind, memory_order_relaxed) ==
		    PQPOOL__GRANT_NONE) {
			give_up_locked(p, w, t0);
			return -1;
		}
		pthread_mutex_unlock(&p->mu);
		/* granted as we gave up: the granter wakes us next */
		pqpool__waiter_sleep(w, INT64_MAX);
	}
	return atomic_load_explicit(&w->kind, memory_order_relaxed);
}

static int acquire_slow(struct pqpool *p, int64_t t0, int64_t deadline,
                        pqpool__slot **out, const char *file, int line,
                        pqpool__grant_fn then, void *arg, bool *taken, bool queue)
{
	int kind = PQPOOL__GRANT_NONE, why;
	pqpool__slot *s = NULL;

	pthread_mutex_lock(&p->mu);
	if (p->closed) {
		pthread_mutex_unlock(&p->mu);
		return pqpool__fail(PQPOOL_ECLOSED, "acquire: pool closed");
	}
	if (!p->whead) {
		if ((s = pqpool__take_idle(p, true)) != NULL)
			kind = PQPOOL__GRANT_SLOT;
		else if ((s = pqpool__claim_empty_locked(p)) != NULL)
			kind = PQPOOL__GRANT_CAPACITY;
	}
	if (kind == PQPOOL__GRANT_NONE && !queue) {
		pthread_mutex_unlock(&p->mu);
		return pqpool__fail(PQPOOL_EAGAIN,
		                    "acquire: no connection free right now");
	}
	if (kind == PQPOOL__GRANT_NONE) {
		pqpool__waiter w;
		pqpool__waiter_init(&w, then, arg);
		if ((kind = wait_locked(p, &w, t0, deadline)) < 0)
			return PQPOOL_ETIMEDOUT;
		s = w.slot;
	} else {
		pthread_mutex_unlock(&p->mu);
	}

	switch (kind) {
	case PQPOOL__GRANT_CLOSED:
		return pqpool__fail(PQPOOL_ECLOSED, "acquire: pool closed");
	case PQPOOL__GRANT_CAPACITY:
		return open_for_lease(p, s, t0, deadline, queue, out, file, line);
	case PQPOOL__GRANT_TAKEN: /* our continuation put it to work */
		*taken = true;
		return granted(s, t0, file, line, out);
	default: /* PQPOOL__GRANT_SLOT */
		if ((why = pqpool__unfit(p, s, pqc_now_coarse_ms())) >= 0)
			return reopen_for_lease(p, s, why, t0, deadline, queue, out, file,
			                        line);
		return granted(s, t0, file, line, out);
	}
}

/* The lock-free path, taken only when nobody queues (no barging). Returns
 * true with *out set, or false with *unfit_slot an owned slot to replace
 * (or NULL) and *why its reason. */
static bool acquire_fast(struct pqpool *p, pqpool__slot **out, const char *file, int line,
                         pqpool__slot **unfit_slot, int *why)
{
	pqpool__slot *s;
	int64_t now;
	*unfit_slot = NULL;
	if (atomic_load_explicit(&p->contend, memory_order_acquire) != 0 ||
	    (s = pqpool__take_idle(p, true)) == NULL)
		return false;
	now = pqc_now_coarse_ms();
	if ((*why = pqpool__unfit(p, s, now)) >= 0) {
		*unfit_slot = s;
		return false;
	}
	lease_begin(s, now, file, line);
	*out = s;
	pqpool__ok();
	return true;
}

/* Everything after the fast path: s is an unfit slot it took (or NULL).
 * Pinning: a queued waiter holds a pin; a slot owner is pinned by its slot;
 * opening pins for itself. */
static int acquire_rest(struct pqpool *p, pqpool__slot *s, int why, int64_t t0,
                        int64_t deadline, pqpool__slot **out, const char *file, int line,
                        pqpool__grant_fn then, void *arg, bool *taken, bool queue)
{
	*taken = false;
	if (s)
		return reopen_for_lease(p, s, why, t0, deadline, queue, out, file, line);
	return acquire_slow(p, t0, deadline, out, file, line, then, arg, taken, queue);
}

static int acquire(struct pqpool *p, int64_t deadline, pqpool__slot **out,
                   const char *file, int line, pqpool__grant_fn then, void *arg,
                   bool *taken)
{
	pqpool__slot *s;
	int why = -1;
	*out = NULL;
	*taken = false;
	if (acquire_fast(p, out, file, line, &s, &why))
		return PQPOOL_OK;
	return acquire_rest(p, s, why, pqc_now_ns(), deadline, out, file, line, then, arg,
	                    taken, true);
}

int pqpool__acquire_unqueued(struct pqpool *p, int64_t deadline_ns, pqpool__slot **out,
                             const char *file, int line)
{
	pqpool__slot *s;
	int why = -1;
	bool taken;
	*out = NULL;
	if (acquire_fast(p, out, file, line, &s, &why))
		return PQPOOL_OK;
	return acquire_rest(p, s, why, pqc_now_ns(), deadline_ns, out, file, line, NULL,
	                    NULL, &taken, false);
}

int pqpool__acquire_then(struct pqpool *p, int64_t deadline_ns, pqpool__grant_fn then,
                         void *arg, pqpool__slot **out, bool *taken)
{
	return acquire(p, deadline_ns, out, __FILE__, __LINE__, then, arg, taken);
}

int pqpool__acquire_until(struct pqpool *p, int64_t deadline_ns, pqpool__slot **out,
                          const char *file, int line)
{
	bool taken;
	return acquire(p, deadline_ns, out, file, line, NULL, NULL, &taken);
}

int pqpool__acquire_fresh(struct pqpool *p, int64_t opened_after_ms, int64_t deadline_ns,
                          pqpool__slot **out, const char *file, int line)
{
	pqpool__slot *s;
	int64_t at;
	int st = pqpool__acquire_until(p, deadline_ns, &s, file, line);
	*out = s;
	if (st != PQPOOL_OK || pqpool__opened_after(s, opened_after_ms))
		return st;
	/* suspect: replaced in place, the lease kept (begun, counted once);
	 * not marked leased while it opens, for a failed open empties the
	 * slot, which others may take at once */
	*out = NULL;
	at = atomic_exchange_explicit(&s->lease.acquired_ms, 0, memory_order_relaxed);
	st = reopen_owned(p, s, PQPOOL_CLOSE_DISCARDED, pqc_now_ns(), deadline_ns, true);
	if (st == PQPOOL_OK) {
		atomic_store_explicit(&s->lease.acquired_ms, at, memory_order_relaxed);
		*out = s;
	}
	return st;
}

int pqpool__try_acquire(struct pqpool *p, pqpool__slot **out, const char *file, int line)
{
	pqpool__slot *s;
	int why = -1;
	*out = NULL;
	if (acquire_fast(p, out, file, line, &s, &why))
		return PQPOOL_OK;
	if (s) { /* unfit: replacing it would mean connecting, which blocks */
		pqpool__pin(p);
		pqpool__close_slot(p, s, (pqpool_close_reason)why);
		pqpool__unpin(p);
	}
	return pqpool__fail(PQPOOL_EAGAIN, "acquire: no idle connection free right now");
}

int pqpool__acquire_or_claim(struct pqpool *p, int64_t opened_after_ms,
                             pqpool__slot **out, bool *claimed, const char *file,
                             int line)
{
	pqpool__slot *s = NULL;
	bool fresh = opened_after_ms > 0;
	int why = -1;
	*out = NULL;
	*claimed = false;
	if (!fresh && acquire_fast(p, out, file, line, &s, &why))
		return PQPOOL_OK;
	if (!s) {
		pthread_mutex_lock(&p->mu);
		if (p->closed) {
			pthread_mutex_unlock(&p->mu);
			return pqpool__fail(PQPOOL_ECLOSED, "acquire: pool closed");
		}
		/* fresh: room for a new connection first, then an idle one */
		if (!p->whead &&
		    ((fresh && (s = pqpool__claim_empty_locked(p)) != NULL) ||
		     ((s = pqpool__take_idle(p, true)) == NULL &&
		      (s = pqpool__claim_empty_locked(p)) != NULL))) {
			pthread_mutex_unlock(&p->mu);
			*out = s;
			*claimed = true;
			pqpool__ok();
			return PQPOOL_OK;
		}
		pthread_mutex_unlock(&p->mu);
		if (!s) /* others wait, or the pool is at its size and all in use */
			return pqpool__fail(PQPOOL_EAGAIN,
			                    "acquire: no connection free right now");
		if ((why = pqpool__unfit(p, s, pqc_now_coarse_ms())) < 0 && fresh &&
		    !pqpool__opened_after(s, opened_after_ms))
			why = PQPOOL_CLOSE_DISCARDED; /* opened before: suspect */
		if (why < 0) {
			lease_begin(s, pqc_now_coarse_ms(), file, line);
			*out = s;
			pqpool__ok();
			return PQPOOL_OK;
		}
	}
	/* unfit: its connection goes, the slot stays ours to open into */
	pqpool__detach(p, s, (pqpool_close_reason)why);
	atomic_store(&s->state, PQPOOL__SLOT_OPENING);
	*out = s;
	*claimed = true;
	pqpool__ok();
	return PQPOOL_OK;
}

void pqpool__lease_opened(pqpool__slot *s, int64_t t0_ns, const char *file, int line)
{
	pqpool__slot *unused;
	granted(s, t0_ns, file, line, &unused);
}

int pqpool__acquire_loc(struct pqpool *pool, int timeout_ms, pqpool_conn **out,
                        const char *file, int line)
{
	pqpool__slot *s = NULL, *unfit;
	int why = -1, st = PQPOOL_OK;
	int64_t t0;
	bool taken;
	if (!pool || !out)
		return pqpool__fail(PQPOOL_EINVAL, "acquire: NULL pool or out");
	*out = NULL;
	if (!acquire_fast(pool, &s, file, line, &unfit, &why)) {
		/* the precise clock is read only here, off the fast path */
		t0 = pqc_now_ns();
		if (timeout_ms < 0)
			timeout_ms = pool->ctx.cfg.connection_timeout_ms;
		st = acquire_rest(pool, unfit, why, t0,
		                  t0 + (int64_t)timeout_ms * 1000000, &s, file, line,
		                  NULL, NULL, &taken, true);
	}
	if (st == PQPOOL_OK)
		*out = &s->lease;
	return st;
}

PGconn *pqpool_conn_pg(pqpool_conn *conn)
{
	return conn ? pqpool__slot_of_lease(conn)->link.pg : NULL;
}

/* ---- release ---- */

static bool rollback(pqpool__slot *s)
{
	const pqpool_config *cfg = &s->ctx->cfg;
	int ms = cfg->query_timeout_ms > 0 ? cfg->query_timeout_ms
	                                   : cfg->connection_timeout_ms;
	int64_t deadline = pqc_now_ns() + (int64_t)ms * 1000000;
	pqpool__saved_error caller;
	bool ok;
	/* the caller's own error (why the transaction failed) is what they
	 * will look at next, not ours */
	pqpool__error_save(&caller);
	ok = PQsendQuery(s->link.pg, "ROLLBACK") &&
	     pqpool__wait_result(s, deadline, 0, NULL, "rollback on release") ==
	             PQPOOL_OK;
	if (!ok)
		pqpool__log(&s->ctx->log, PQPOOL_LOG_WARN, "%s", pqpool_errmsg());
	pqpool__error_restore(&caller);
	return ok;
}

/* Why a released slot cannot be kept, or -1 when it can. */
static int unclean(pqpool__slot *s)
{
	PGTransactionStatusType tx;
	if (s->link.broken || PQstatus(s->link.pg) != CONNECTION_OK)
		return PQPOOL_CLOSE_BROKEN;
	tx = PQtransactionStatus(s->link.pg);
	if (tx == PQTRANS_INTRANS || tx == PQTRANS_INERROR) {
		if (!rollback(s))
			return PQPOOL_CLOSE_UNCLEAN;
		pqpool__count(&s->ctx->counters, PQPOOL__ROLLBACKS, 1);
		return -1;
	}
	/* anything but idle: a command still running, or results not read */
	return tx == PQTRANS_IDLE ? -1 : PQPOOL_CLOSE_UNCLEAN;
}

void pqpool__release(pqpool__slot *s, bool discard)
{
	struct pqpool *p = pqpool__pool_of(s);
	int reason = discard ? PQPOOL_CLOSE_DISCARDED : unclean(s);
	int64_t now = pqc_now_coarse_ms();
	if (reason < 0 && s->link.expires_ms && now >= s->link.expires_ms)
		reason = PQPOOL_CLOSE_LIFETIME;
	if (reason < 0 && (pqpool__role_check(s, NULL) || pqpool__retired(s)))
		reason = PQPOOL_CLOSE_READ_ONLY;
	atomic_store_explicit(&s->lease.acquired_ms, 0, memory_order_relaxed);
	atomic_store_explicit(&s->lease.warned, false, memory_order_relaxed);
	pqpool__qstats_release(&s->q, now);
	/* upkeep while our slot still pins the pool */
	pqpool__maybe_upkeep(p, now);
	if (reason >= 0) {
		pqpool__close_slot(p, s, (pqpool_close_reason)reason);
		return;
	}
	atomic_store_explicit(&s->link.released_ms, now, memory_order_relaxed);
	pqpool__remember(p, s);
	pqpool__publish(p, s); /* may free the pool when closing */
}

void pqpool_release(pqpool_conn *conn)
{
	if (conn)
		pqpool__release(pqpool__slot_of_lease(conn), false);
}

void pqpool_discard(pqpool_conn *conn)
{
	if (conn)
		pqpool__release(pqpool__slot_of_lease(conn), true);
}
