/* async.c — queries without blocking, for hosts that run their own event
 * loop: send on a connection free right now, poll when its socket is
 * readable, finish. One thread can keep many queries in flight, as pgbench
 * keeps many, instead of parking a thread on each. The health probe's
 * non-blocking form is one such query. */
#include "pqpool.h"

#include <stdio.h>

#include "clock.h"
#include "error.h"
#include "exec.h"
#include "health.h"
#include "lease.h"
#include "pin.h"
#include "pool.h"
#include "router.h"

/* Takes a free connection and sends q on it, bounded by deadline_ms. */
static int start(struct pqpool *p, const pqpool__qreq *q, int deadline_ms,
                 pqpool__slot **out)
{
	struct pqpool_inflight *f;
	pqpool__slot *s;
	int rc;

	*out = NULL;
	if ((rc = pqpool__try_acquire(p, &s, __FILE__, __LINE__)) != PQPOOL_OK)
		return rc;
	f = &s->async.query;
	f->req = *q;
	f->t0_ns = pqc_now_ns();
	f->deadline_ns =
	        deadline_ms > 0 ? f->t0_ns + (int64_t)deadline_ms * 1000000 : INT64_MAX;
	f->last = NULL;
	f->done = false;
	rc = pqpool__send_query(s, q, &f->preparing);
	if (rc != PQPOOL_OK) {
		/* counted like any failed query; the lease goes back (a broken
		 * connection is closed on the way) */
		pqpool__note_query(s, f->t0_ns, rc);
		pqpool__release(s, false);
		return rc;
	}
	*out = s;
	pqpool__ok();
	return PQPOOL_OK;
}

int pqpool_send(pqpool *pool, const char *sql, int nparams, const char *const *params,
                pqpool_inflight **out)
{
	pqpool__qreq q = {sql, nparams, params};
	pqpool__slot *s;
	int rc;
	if (out)
		*out = NULL;
	if (!pool || !out || !sql || nparams < 0 || (nparams > 0 && !params))
		return pqpool__fail(PQPOOL_EINVAL,
		                    "send: NULL pool, SQL, parameters or out");
	/* never waits: with several hosts, the primary as known now */
	if (!(pool = pqpool__route(pool, 0, 0)))
		return pqpool__fail(PQPOOL_EAGAIN, "send: %s", pqpool_errmsg());
	if ((rc = start(pool, &q, pool->ctx.cfg.query_timeout_ms, &s)) == PQPOOL_OK)
		*out = &s->async.query;
	return rc;
}

int pqpool_inflight_socket(const pqpool_inflight *query)
{
	return query ? PQsocket(pqpool__slot_of_query((pqpool_inflight *)query)->link.pg)
	             : -1;
}

int pqpool_poll(pqpool_inflight *query)
{
	pqpool__slot *s;
	PGconn *pg;
	if (!query)
		return pqpool__fail(PQPOOL_EINVAL, "poll: NULL query");
	if (query->done)
		return PQPOOL_OK;
	s = pqpool__slot_of_query(query);
	pg = s->link.pg;
	if (!PQconsumeInput(pg)) {
		query->done = true; /* lost: finish reports it */
		return PQPOOL_OK;
	}
	while (!PQisBusy(pg)) {
		PGresult *r = PQgetResult(pg);
		if (r) {
			pqpool__keep_result(&query->last, r);
			continue;
		}
		/* the statement is now prepared: execute it, whose answer is next */
		if (query->preparing && pqpool__prepared(s, &query->req, &query->last,
		                                         &query->preparing) == PQPOOL_OK)
			continue;
		query->done = true; /* or the Prepare failed: the kept result says why */
		return PQPOOL_OK;
	}
	if (pqc_now_ns() >= query->deadline_ns)
		return PQPOOL_OK; /* finish gives up on it */
	return PQPOOL_EAGAIN;
}

int pqpool_poll_timeout_ms(const pqpool_inflight *query)
{
	int64_t left;
	if (!query)
		return 0;
	if (query->deadline_ns == INT64_MAX)
		return -1;
	left = query->deadline_ns - pqc_now_ns();
	return left <= 0              ? 0
	       : left > INT32_MAX / 2 ? INT32_MAX / 2
	                              : (int)((left + 999999) / 1000000);
}

/* The outcome of the query in flight on s, counted; the lease stays. */
static int outcome(pqpool__slot *s, PGresult **res)
{
	struct pqpool_inflight *f = &s->async.query;
	int rc;
	if (!f->done) {
		/* past its deadline: drop the connection rather than wait for a
		 * cancel (statement_timeout bounds what is left on the server) */
		PQclear(f->last);
		s->link.broken = true;
		rc = pqpool__fail(PQPOOL_ETIMEDOUT,
		                  "query: timed out after %lld ms; connection closed",
		                  (long long)((pqc_now_ns() - f->t0_ns) / 1000000));
	} else {
		rc = pqpool__result_status(s, f->last, 0, res, "query");
	}
	f->last = NULL;
	pqpool__note_query(s, f->t0_ns, rc);
	return rc;
}

/* Gives the lease back keeping the caller's error (the release may log or
 * roll back, which must not replace it). */
static void release_keeping_error(pqpool__slot *s, int rc)
{
	pqpool__saved_error e;
	pqpool__error_save(&e);
	pqpool__release(s, false);
	if (rc != PQPOOL_OK)
		pqpool__error_restore(&e);
	else
		pqpool__ok();
}

int pqpool_finish(pqpool_inflight *query, PGresult **res)
{
	pqpool__slot *s;
	int rc;
	if (res)
		*res = NULL;
	if (!query)
		return pqpool__fail(PQPOOL_EINVAL, "finish: NULL query");
	s = pqpool__slot_of_query(query);
	rc = outcome(s, res);
	release_keeping_error(s, rc);
	return rc;
}

/* ---- the health probe, without blocking ---- */

int pqpool_probe_start(pqpool *pool, pqpool_probe **out)
{
	pqpool__qreq q;
	pqpool__slot *s;
	int deadline_ms, rc;
	if (out)
		*out = NULL;
	if (!pool || !out)
		return pqpool__fail(PQPOOL_EINVAL, "probe: NULL pool or out");
	/* with several hosts, the primary as known now, else asked within the
	 * connection timeout (which may block while hosts are asked) */
	{
		struct pqpool *m = pqpool__route(pool, 0, 0);
		if (!m && !(m = pqpool__route(
		                    pool, 0,
		                    pqc_now_ns() +
		                            (int64_t)pool->ctx.cfg.connection_timeout_ms *
		                                    1000000)))
			return pqpool__fail(PQPOOL_ECONNECT, "probe: %s",
			                    pqpool_errmsg());
		pool = m;
	}
	q = (pqpool__qreq){pool->health_query, 0, NULL};
	/* bounded like pqpool_check_health: the connection timeout, or the
	 * query timeout when shorter */
	deadline_ms = pool->ctx.cfg.connection_timeout_ms;
	if (pool->ctx.cfg.query_timeout_ms > 0 &&
	    pool->ctx.cfg.query_timeout_ms < deadline_ms)
		deadline_ms = pool->ctx.cfg.query_timeout_ms;
	/* a member's probe keeps its pool until finished: it is judged as a
	 * whole (every host) */
	if (pool->parent)
		pqpool__pin(pool->parent);
	if ((rc = start(pool, &q, deadline_ms, &s)) == PQPOOL_OK)
		*out = &s->async.probe;
	else if (pool->parent)
		pqpool__unpin(pool->parent);
	return rc;
}

int pqpool_probe_socket(const pqpool_probe *probe)
{
	return probe ? pqpool_inflight_socket(&probe->q) : -1;
}

int pqpool_probe_poll(pqpool_probe *probe)
{
	if (!probe)
		return pqpool__fail(PQPOOL_EINVAL, "probe: NULL probe");
	return pqpool_poll(&probe->q);
}

int pqpool_probe_timeout_ms(const pqpool_probe *probe)
{
	int t = probe ? pqpool_poll_timeout_ms(&probe->q) : 0;
	return t < 0 ? 0 : t;
}

void pqpool_probe_finish(pqpool_probe *probe, pqpool_health *out)
{
	pqpool__slot *s;
	struct pqpool *p;
	int64_t t0;
	int rc;
	if (!probe || !out)
		return;
	s = pqpool__slot_of_probe(probe);
	p = pqpool__pool_of(s);
	t0 = probe->q.t0_ns;
	rc = outcome(s, NULL);
	/* the lease pinned the pool; keep it for the judgement after release */
	pqpool__pin(p);
	release_keeping_error(s, rc);
	pqpool__health_result(p, rc, t0, out);
	if (p->parent)
		pqpool__unpin(p->parent); /* pinned by pqpool_probe_start */
	pqpool__unpin(p);
	pqpool__ok();
}
