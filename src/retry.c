/* retry.c — what is safe to try again (SQLSTATE classes), exponential backoff
 * with full jitter, and the retry loops of pqpool_run and pqpool_query. */
#include "internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

bool pqpool_sqlstate_retryable(const char *s)
{
	if (!s || strlen(s) != 5)
		return false;
	/* connection exceptions, except 08007 transaction_resolution_unknown:
	 * the commit may have happened, so running it again could repeat it */
	if (s[0] == '0' && s[1] == '8')
		return strcmp(s, "08007") != 0;
	return strcmp(s, "57P01") == 0     /* admin_shutdown */
	       || strcmp(s, "57P02") == 0  /* crash_shutdown */
	       || strcmp(s, "57P03") == 0  /* cannot_connect_now */
	       || strcmp(s, "53300") == 0  /* too_many_connections */
	       || strcmp(s, "40001") == 0  /* serialization_failure */
	       || strcmp(s, "40P01") == 0; /* deadlock_detected */
}

/* "Full jitter": uniform in [0, min(cap, base * 2^(attempt-1))], which
 * spreads a crowd of retrying callers out instead of synchronising them. */
int pqpool_backoff_ms(int attempt, int base_ms, int max_ms, uint64_t rnd)
{
	int64_t ceiling;
	if (attempt < 1 || base_ms <= 0 || max_ms <= 0)
		return 0;
	ceiling = base_ms;
	for (int i = 1; i < attempt && ceiling < max_ms; i++)
		ceiling *= 2;
	if (ceiling > max_ms)
		ceiling = max_ms;
	return (int)(rnd % (uint64_t)(ceiling + 1));
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0)
		;
}

/* What one attempt reports to the loop. */
typedef struct attempt {
	int status;
	bool retryable;
	char sqlstate[6];
	char msg[PQPOOL__ERRLEN];
} attempt;

/* One attempt; deadline_ns is the whole loop's, which no attempt outlives. */
typedef int (*attempt_fn)(struct pqpool *p, void *arg, int64_t deadline_ns, attempt *a);

static int retry_loop(struct pqpool *p, const char *context, attempt_fn fn, void *arg)
{
	const pqpool_config *cfg = &p->cfg;
	int64_t deadline = pqpool__now_ns() + (int64_t)cfg->retry_deadline_ms * 1000000;
	attempt a;
	int n;

	pqpool__pin(p);
	if (!context)
		context = "operation";
	for (n = 1;; n++) {
		int delay;
		memset(&a, 0, sizeof a);
		fn(p, arg, deadline, &a);
		if (a.status == PQPOOL_OK) {
			pqpool__unpin(p);
			pqpool__ok();
			return PQPOOL_OK;
		}
		if (!a.retryable || n >= cfg->retry_attempts)
			break;
		delay = pqpool_backoff_ms(n, cfg->retry_base_delay_ms,
		                          cfg->retry_max_delay_ms, pqpool__rand64());
		if (pqpool__now_ns() + (int64_t)delay * 1000000 >= deadline) {
			pqpool__log(
			        p, PQPOOL_LOG_WARN,
			        "database %s attempt %d failed, no time left to retry "
			        "(DB_RETRY_DEADLINE=%d): %s",
			        context, n, cfg->retry_deadline_ms, a.msg);
			break;
		}
		pqpool__log(p, PQPOOL_LOG_WARN,
		            "database %s attempt %d failed, retrying in %d ms: %s",
		            context, n, delay, a.msg);
		pthread_mutex_lock(&p->stats_mu);
		p->retries++;
		pthread_mutex_unlock(&p->stats_mu);
		sleep_ms(delay);
	}
	pqpool__unpin(p);
	return pqpool__fail_code(a.status, a.sqlstate,
	                         "database %s failed after %d attempt%s: %s", context, n,
	                         n == 1 ? "" : "s", a.msg);
}

static void take_error(attempt *a, int status)
{
	a->status = status;
	snprintf(a->msg, sizeof a->msg, "%s", pqpool_errmsg());
	snprintf(a->sqlstate, sizeof a->sqlstate, "%s", pqpool_errcode());
}

/* Acquire failures happen before anything was sent: retrying is always
 * safe; worth it when the database could not be reached, not when the pool
 * is saturated or closed. */
static bool acquire_attempt(struct pqpool *p, int64_t deadline_ns, pqpool_conn **c,
                            attempt *a)
{
	int st = pqpool__acquire_until(p, deadline_ns, c, __FILE__, __LINE__);
	if (st == PQPOOL_OK)
		return true;
	take_error(a, st);
	a->retryable = st == PQPOOL_ECONNECT;
	return false;
}

static int64_t acquire_deadline(struct pqpool *p, int64_t loop_deadline)
{
	int64_t d = pqpool__now_ns() + (int64_t)p->cfg.connection_timeout_ms * 1000000;
	return d < loop_deadline ? d : loop_deadline;
}

/* ---- pqpool_run ---- */

struct run_arg {
	pqpool_fn fn;
	void *arg;
};

static int run_attempt(struct pqpool *p, void *arg, int64_t deadline, attempt *a)
{
	struct run_arg *ra = arg;
	pqpool_conn *c;
	int st;
	if (!acquire_attempt(p, acquire_deadline(p, deadline), &c, a))
		return a->status;
	c->deadline_cap_ns = deadline; /* queries through pqpool_exec stop there */
	pqpool__ok();
	st = ra->fn(c, ra->arg);
	if (st != PQPOOL_OK) {
		take_error(a, st);
		if (c->last_status != 0) {
			/* recorded by pqpool_exec or pqpool_conn_fail */
			snprintf(a->sqlstate, sizeof a->sqlstate, "%s", c->last_sqlstate);
			a->retryable = c->last_status == PQPOOL_ECONNLOST ||
			               pqpool_sqlstate_retryable(c->last_sqlstate);
		} else if (PQstatus(c->pg) == CONNECTION_BAD) {
			a->retryable = true; /* broke under raw libpq calls */
		}
		if (!a->msg[0])
			snprintf(a->msg, sizeof a->msg, "the function returned %d (%s)",
			         st, pqpool_strstatus(st));
	}
	pqpool_release(c);
	a->status = st;
	return st;
}

int pqpool_run(pqpool *p, const char *context, pqpool_fn fn, void *arg)
{
	struct run_arg ra = {fn, arg};
	if (!p || !fn)
		return pqpool__fail(PQPOOL_EINVAL, "pqpool_run: NULL pool or function");
	return retry_loop(p, context, run_attempt, &ra);
}

/* ---- pqpool_query ---- */

struct query_arg {
	const char *sql;
	int nparams;
	const char *const *params;
	unsigned flags;
	PGresult **res;
};

static int query_attempt(struct pqpool *p, void *arg, int64_t deadline, attempt *a)
{
	struct query_arg *qa = arg;
	pqpool__qreq q = {qa->sql, qa->nparams, qa->params};
	pqpool_conn *c;
	int64_t sent_ns;
	int st;
	/* Waiting for a connection, the query goes with us: whoever frees one
	 * sends it, and we wake once, for the answer. */
	st = pqpool__acquire_query(p, acquire_deadline(p, deadline), &q, &c, &sent_ns);
	if (st != PQPOOL_OK) {
		take_error(a, st);
		a->retryable = st == PQPOOL_ECONNECT;
		return st;
	}
	c->deadline_cap_ns = deadline;
	if (sent_ns)
		st = pqpool__finish_sent(c, sent_ns, qa->res);
	else
		st = pqpool_exec(c, qa->sql, qa->nparams, qa->params, qa->res);
	if (st != PQPOOL_OK) {
		take_error(a, st);
		/* sent: the statement may have taken effect before the failure */
		a->retryable = (qa->flags & PQPOOL_IDEMPOTENT) &&
		               (st == PQPOOL_ECONNLOST ||
		                pqpool_sqlstate_retryable(a->sqlstate));
	}
	pqpool_release(c);
	a->status = st;
	return st;
}

int pqpool_query(pqpool *p, const char *sql, int nparams, const char *const *params,
                 unsigned flags, PGresult **res)
{
	struct query_arg qa = {sql, nparams, params, flags, res};
	if (res)
		*res = NULL;
	if (!p || !sql || nparams < 0 || (nparams > 0 && !params))
		return pqpool__fail(PQPOOL_EINVAL,
		                    "pqpool_query: NULL pool, SQL or parameters");
	return retry_loop(p, "query", query_attempt, &qa);
}
