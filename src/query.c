/* query.c — pqpool_query, the specification's pool.query(): a statement on a
 * connection of the pool, with retry where that is safe. A caller that has
 * to wait for a connection carries its statement as its continuation: the
 * caller that frees one sends it, and the waiter wakes once, for the answer,
 * instead of twice. */
#include "pqpool.h"

#include "classify.h"
#include "clock.h"
#include "error.h"
#include "exec.h"
#include "lease.h"
#include "pipe.h"
#include "pool.h"
#include "retry.h"
#include "router.h"
#include "role.h"

struct query_arg {
	pqpool__qreq q;
	unsigned flags;
	PGresult **res;
	int64_t sent_ns; /* set by the granter when it sent q for us */
};

/* The continuation, on the granter's thread: sends q on the fit idle slot
 * granted, when it needs no Prepare first, and arms its socket. */
static bool send_on_grant(pqpool__waiter *w, pqpool__slot *s, void *arg)
{
	struct query_arg *qa = arg;
	pqpool__saved_error granters;
	int64_t t0 = pqc_now_ns();
	int st;
	/* a failure here is the waiter's to find out, not the granter's */
	pqpool__error_save(&granters);
	st = pqpool__send_ready(s, &qa->q);
	pqpool__error_restore(&granters);
	if (st != PQPOOL_OK)
		return false;
	qa->sent_ns = t0;
	pqpool__waiter_arm(w, PQsocket(s->link.pg));
	return true;
}

/* Whether qa may share a connection with other callers' statements. */
static bool pipelined(struct pqpool *p, const struct query_arg *qa)
{
	/* libpq refuses more parameters than the protocol counts */
	return p->ctx.cfg.pipeline && !(qa->flags & PQPOOL_NO_PIPELINE) &&
	       qa->q.nparams <= 65535 && pqpool__pipelinable(qa->q.sql);
}

/* An attempt in a pipeline; *alone when it must run unpipelined instead. */
static int pipe_attempt(struct pqpool *p, struct query_arg *qa, int64_t deadline,
                        pqpool__attempt *a, bool *alone)
{
	int qt = p->ctx.cfg.query_timeout_ms, outcome, st;
	int64_t qdeadline = qt > 0 ? pqc_now_ns() + (int64_t)qt * 1000000 : INT64_MAX;

	if (deadline && deadline < qdeadline)
		qdeadline = deadline;
	st = pqpool__pipe_query(p, &qa->q, pqpool__acquire_deadline(p, deadline),
	                        qdeadline, qa->res, &outcome);
	*alone = outcome == PQPOOL__PIPE_ALONE;
	if (*alone || st == PQPOOL_OK)
		return st;
	pqpool__attempt_failed(a, st);
	if (outcome == PQPOOL__PIPE_UNSENT)
		a->retryable = st == PQPOOL_ECONNECT;
	else /* sent: it may have taken effect before the failure */
		a->retryable = ((qa->flags & PQPOOL_IDEMPOTENT) &&
		                (st == PQPOOL_ECONNLOST ||
		                 pqpool_sqlstate_retryable(a->sqlstate))) ||
		               pqpool__retry_refused(&p->ctx, a->sqlstate);
	a->status = st;
	return st;
}

static int query_attempt(struct pqpool *p, void *arg, int64_t deadline,
                         pqpool__attempt *a)
{
	struct query_arg *qa = arg;
	pqpool__slot *s;
	bool taken, alone = false;
	int st;

	/* with several hosts, each attempt goes where its kind goes now */
	if (!(p = pqpool__route(p, qa->flags, pqpool__acquire_deadline(p, deadline)))) {
		pqpool__attempt_failed(a, PQPOOL_ECONNECT);
		a->retryable = true; /* nothing was sent */
		return a->status;
	}
	if (pipelined(p, qa)) {
		st = pipe_attempt(p, qa, deadline, a, &alone);
		if (!alone)
			return st;
	}
	st = pqpool__acquire_then(p, pqpool__acquire_deadline(p, deadline), send_on_grant,
	                          qa, &s, &taken);
	if (st != PQPOOL_OK) {
		/* nothing was sent: safe to retry, worth it when the database could
		 * not be reached, not when the pool is saturated or closed */
		pqpool__attempt_failed(a, st);
		a->retryable = st == PQPOOL_ECONNECT;
		return st;
	}
	s->lease.deadline_cap_ns = deadline;
	if (taken)
		st = pqpool__finish_sent(s, qa->sent_ns, qa->res);
	else
		st = pqpool_exec(&s->lease, qa->q.sql, qa->q.nparams, qa->q.params,
		                 qa->res);
	if (st != PQPOOL_OK) {
		pqpool__attempt_failed(a, st);
		/* sent: the statement may have taken effect before the failure */
		a->retryable = ((qa->flags & PQPOOL_IDEMPOTENT) &&
		                (st == PQPOOL_ECONNLOST ||
		                 pqpool_sqlstate_retryable(a->sqlstate))) ||
		               pqpool__retry_refused(&p->ctx, a->sqlstate);
	}
	pqpool__release(s, false);
	a->status = st;
	return st;
}

int pqpool_query(pqpool *pool, const char *sql, int nparams, const char *const *params,
                 unsigned flags, PGresult **res)
{
	struct query_arg qa = {{sql, nparams, params}, flags, res, 0};
	if (res)
		*res = NULL;
	if (!pool || !sql || nparams < 0 || (nparams > 0 && !params))
		return pqpool__fail(PQPOOL_EINVAL,
		                    "pqpool_query: NULL pool, SQL or parameters");
	return pqpool__retry(pool, "query", query_attempt, &qa);
}
