/* async.c — queries without blocking, for hosts that run their own event
 * loop: send on a connection free right now, poll when its socket is
 * readable, finish. One thread can keep many queries in flight, as pgbench
 * keeps many, instead of parking a thread on each. The health probe's
 * non-blocking form is one such query. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

/* Takes a free connection and sends q on it, bounded by deadline_ms. */
static int start(struct pqpool *p, const pqpool__qreq *q, int deadline_ms,
                 pqpool_conn **out)
{
	struct pqpool_conn *c;
	int rc;

	*out = NULL;
	rc = pqpool__try_acquire(p, &c, __FILE__, __LINE__);
	if (rc != PQPOOL_OK)
		return rc;
	c->aq = *q;
	c->aq_t0_ns = pqpool__now_ns();
	c->aq_deadline_ns = deadline_ms > 0 ? c->aq_t0_ns + (int64_t)deadline_ms * 1000000
	                                    : INT64_MAX;
	c->aq_last = NULL;
	c->aq_done = false;
	rc = pqpool__send_query(c, q, &c->aq_preparing);
	if (rc != PQPOOL_OK) {
		/* counted like any failed query; the lease goes back (a broken
		 * connection is closed on the way) */
		pqpool__note_query(c, c->aq_t0_ns, rc);
		pqpool_release(c);
		return rc;
	}
	*out = c;
	pqpool__ok();
	return PQPOOL_OK;
}

int pqpool_send(pqpool *p, const char *sql, int nparams, const char *const *params,
                pqpool_conn **out)
{
	pqpool__qreq q = {sql, nparams, params};
	if (!p || !out || !sql || nparams < 0 || (nparams > 0 && !params)) {
		if (out)
			*out = NULL;
		return pqpool__fail(PQPOOL_EINVAL,
		                    "send: NULL pool, SQL, parameters or out");
	}
	return start(p, &q, p->cfg.query_timeout_ms, out);
}

/* The statement is now prepared: execute it. False when that cannot be
 * sent or the Prepare failed (the kept result says why). */
static bool prepared_now_execute(pqpool_conn *c)
{
	if (!c->aq_last || PQresultStatus(c->aq_last) != PGRES_COMMAND_OK)
		return false; /* finish reports the failed Prepare */
	PQclear(c->aq_last);
	c->aq_last = NULL;
	c->aq_preparing = false;
	return pqpool__stmt_prepared(c, c->aq.sql) == PQPOOL_OK &&
	       pqpool__send_query(c, &c->aq, &c->aq_preparing) == PQPOOL_OK;
}

int pqpool_poll(pqpool_conn *c)
{
	PGconn *pg;
	if (!c)
		return pqpool__fail(PQPOOL_EINVAL, "poll: NULL query");
	if (c->aq_done)
		return PQPOOL_OK;
	pg = c->pg;
	if (!PQconsumeInput(pg)) {
		c->aq_done = true; /* lost: finish reports it */
		return PQPOOL_OK;
	}
	while (!PQisBusy(pg)) {
		PGresult *r = PQgetResult(pg);
		if (!r) {
			if (c->aq_preparing && prepared_now_execute(c))
				continue; /* the answer to the execute is next */
			c->aq_done = true;
			return PQPOOL_OK;
		}
		pqpool__keep_result(&c->aq_last, r);
	}
	if (pqpool__now_ns() >= c->aq_deadline_ns)
		return PQPOOL_OK; /* finish gives up on it */
	return PQPOOL_EAGAIN;
}

int pqpool_poll_timeout_ms(const pqpool_conn *c)
{
	int64_t left;
	if (!c)
		return 0;
	if (c->aq_deadline_ns == INT64_MAX)
		return -1;
	left = c->aq_deadline_ns - pqpool__now_ns();
	return left <= 0              ? 0
	       : left > INT32_MAX / 2 ? INT32_MAX / 2
	                              : (int)((left + 999999) / 1000000);
}

/* The outcome of the query in flight on c, counted; the lease stays. */
static int outcome(pqpool_conn *c, PGresult **res)
{
	int rc;
	if (!c->aq_done) {
		/* past its deadline: drop the connection rather than wait for a
		 * cancel (statement_timeout bounds what is left on the server) */
		PQclear(c->aq_last);
		c->broken = true;
		rc = pqpool__fail(
		        PQPOOL_ETIMEDOUT,
		        "query: timed out after %lld ms; connection closed",
		        (long long)((pqpool__now_ns() - c->aq_t0_ns) / 1000000));
	} else {
		rc = pqpool__result_status(c, c->aq_last, 0, res, "query");
	}
	c->aq_last = NULL;
	pqpool__note_query(c, c->aq_t0_ns, rc);
	return rc;
}

/* Gives the lease back keeping the caller's error (the release may log or
 * roll back, which must not replace it). */
static void release_keeping_error(pqpool_conn *c, int rc)
{
	char msg[PQPOOL__ERRLEN], code[6];
	snprintf(msg, sizeof msg, "%s", pqpool_errmsg());
	snprintf(code, sizeof code, "%s", pqpool_errcode());
	pqpool_release(c);
	if (rc != PQPOOL_OK)
		pqpool__fail_code(rc, code, "%s", msg);
	else
		pqpool__ok();
}

int pqpool_finish(pqpool_conn *c, PGresult **res)
{
	int rc;
	if (res)
		*res = NULL;
	if (!c)
		return pqpool__fail(PQPOOL_EINVAL, "finish: NULL query");
	rc = outcome(c, res);
	release_keeping_error(c, rc);
	return rc;
}

/* ---- the health probe, without blocking ---- */

int pqpool_probe_start(pqpool *p, pqpool_conn **out)
{
	pqpool__qreq q;
	int deadline_ms;
	if (!p || !out)
		return pqpool__fail(PQPOOL_EINVAL, "probe: NULL pool or out");
	q = (pqpool__qreq){p->health_query, 0, NULL};
	/* bounded like pqpool_check_health: the connection timeout, or the
	 * query timeout when shorter */
	deadline_ms = p->cfg.connection_timeout_ms;
	if (p->cfg.query_timeout_ms > 0 && p->cfg.query_timeout_ms < deadline_ms)
		deadline_ms = p->cfg.query_timeout_ms;
	return start(p, &q, deadline_ms, out);
}

int pqpool_probe_poll(pqpool_conn *c)
{
	return pqpool_poll(c);
}

int pqpool_probe_timeout_ms(const pqpool_conn *c)
{
	int t = pqpool_poll_timeout_ms(c);
	return t < 0 ? 0 : t;
}

void pqpool_probe_finish(pqpool_conn *c, pqpool_health *out)
{
	struct pqpool *p;
	int64_t t0;
	int rc;
	if (!c || !out)
		return;
	p = c->pool;
	t0 = c->aq_t0_ns;
	rc = outcome(c, NULL);
	/* the lease pinned the pool; keep it for the judgement after release */
	pqpool__pin(p);
	release_keeping_error(c, rc);
	pqpool__health_result(p, rc, t0, out);
	pqpool__unpin(p);
	pqpool__ok();
}
