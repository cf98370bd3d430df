/* probe.c — the health probe without blocking, for hosts that run their own
 * event loop: start on a free connection, poll when its socket is readable,
 * finish. One thread can keep many probes in flight, as pgbench keeps many
 * queries, instead of parking a thread on each. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

int pqpool_probe_start(pqpool *p, pqpool_conn **out)
{
	struct pqpool_conn *c;
	int rc;

	if (!p || !out)
		return pqpool__fail(PQPOOL_EINVAL, "probe: NULL pool or out");
	*out = NULL;
	rc = pqpool__try_acquire(p, &c, __FILE__, __LINE__);
	if (rc != PQPOOL_OK)
		return rc;
	c->probe_t0_ns = pqpool__now_ns();
	c->probe_deadline_ns = c->probe_t0_ns + (int64_t)p->cfg.connection_timeout_ms * 1000000;
	if (p->cfg.query_timeout_ms > 0 &&
	    p->cfg.query_timeout_ms < p->cfg.connection_timeout_ms)
		c->probe_deadline_ns = c->probe_t0_ns + (int64_t)p->cfg.query_timeout_ms * 1000000;
	c->probe_last = NULL;
	c->probe_done = false;
	rc = pqpool__send_query(c, p->health_query, &c->probe_preparing);
	if (rc != PQPOOL_OK) {
		/* counted like any failed query; the caller falls back to a
		 * blocking check, which replaces a broken connection */
		pqpool__note_query(c, c->probe_t0_ns, rc);
		pqpool_release(c);
		return rc;
	}
	*out = c;
	pqpool__ok();
	return PQPOOL_OK;
}

/* The statement is prepared: execute it. False when that cannot be sent
 * or the Prepare failed (the kept result says why). */
static bool prepared_now_execute(pqpool_conn *c)
{
	if (!c->probe_last || PQresultStatus(c->probe_last) != PGRES_COMMAND_OK)
		return false; /* finish reports the failed Prepare */
	PQclear(c->probe_last);
	c->probe_last = NULL;
	c->probe_preparing = false;
	return pqpool__stmt_prepared(c, c->pool->health_query) == PQPOOL_OK &&
	       pqpool__send_query(c, c->pool->health_query, &c->probe_preparing) == PQPOOL_OK;
}

int pqpool_probe_poll(pqpool_conn *c)
{
	PGconn *pg;
	if (!c)
		return pqpool__fail(PQPOOL_EINVAL, "probe: NULL probe");
	if (c->probe_done)
		return PQPOOL_OK;
	pg = c->pg;
	if (!PQconsumeInput(pg)) {
		c->probe_done = true; /* lost: finish reports it */
		return PQPOOL_OK;
	}
	while (!PQisBusy(pg)) {
		PGresult *r = PQgetResult(pg);
		if (!r) {
			if (c->probe_preparing && prepared_now_execute(c))
				continue; /* the answer to the execute is next */
			c->probe_done = true;
			return PQPOOL_OK;
		}
		pqpool__keep_result(&c->probe_last, r);
	}
	if (pqpool__now_ns() >= c->probe_deadline_ns)
		return PQPOOL_OK; /* finish gives up on it */
	return PQPOOL_EAGAIN;
}

int pqpool_probe_timeout_ms(const pqpool_conn *c)
{
	int64_t left;
	if (!c)
		return 0;
	left = c->probe_deadline_ns - pqpool__now_ns();
	return left <= 0 ? 0 : left > INT32_MAX / 2 ? INT32_MAX / 2 : (int)((left + 999999) / 1000000);
}

void pqpool_probe_finish(pqpool_conn *c, pqpool_health *out)
{
	struct pqpool *p;
	int rc;
	if (!c || !out)
		return;
	p = c->pool;
	if (!c->probe_done) {
		/* past its deadline: drop the connection rather than wait for a
		 * cancel (statement_timeout bounds what is left on the server) */
		PQclear(c->probe_last);
		c->broken = true;
		rc = pqpool__fail(PQPOOL_ETIMEDOUT,
		                  "query: timed out after %lld ms; connection closed",
		                  (long long)((pqpool__now_ns() - c->probe_t0_ns) / 1000000));
	} else {
		rc = pqpool__result_status(c, c->probe_last, 0, NULL, "query");
	}
	c->probe_last = NULL;
	pqpool__note_query(c, c->probe_t0_ns, rc);
	/* the lease pinned the pool; keep it for the judgement after release */
	pqpool__pin(p);
	{
		int64_t t0 = c->probe_t0_ns;
		char msg[PQPOOL__ERRLEN];
		snprintf(msg, sizeof msg, "%s", pqpool_errmsg());
		pqpool_release(c);
		if (rc != PQPOOL_OK)
			pqpool__fail(rc, "%s", msg);
		pqpool__health_result(p, rc, t0, out);
	}
	pqpool__unpin(p);
	pqpool__ok();
}
