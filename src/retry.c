/* retry.c — what is safe to try again (SQLSTATE classes), exponential backoff
 * with full jitter, the retry loop, and pqpool_run on it. */
#include "retry.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "lease.h"
#include "pin.h"
#include "pool.h"
#include "rand.h"
#include "role.h"
#include "router.h"

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

int pqpool__retry(struct pqpool *p, const char *context, pqpool__attempt_fn fn, void *arg)
{
	const pqpool_config *cfg = &p->ctx.cfg;
	int64_t deadline = pqc_now_ns() + (int64_t)cfg->retry_deadline_ms * 1000000;
	pqpool__attempt a;
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
		                          cfg->retry_max_delay_ms, pqc_rand64());
		if (pqc_now_ns() + (int64_t)delay * 1000000 >= deadline) {
			pqpool__log(
			        &p->ctx.log, PQPOOL_LOG_WARN,
			        "database %s attempt %d failed, no time left to retry "
			        "(DB_RETRY_DEADLINE=%d): %s",
			        context, n, cfg->retry_deadline_ms, a.msg);
			break;
		}
		pqpool__log(&p->ctx.log, PQPOOL_LOG_WARN,
		            "database %s attempt %d failed, retrying in %d ms: %s",
		            context, n, delay, a.msg);
		pqpool__count(&p->ctx.counters, PQPOOL__RETRIES, 1);
		pqc_sleep_ms(delay);
	}
	pqpool__unpin(p);
	return pqpool__fail_code(a.status, a.sqlstate,
	                         "database %s failed after %d attempt%s: %s", context, n,
	                         n == 1 ? "" : "s", a.msg);
}

void pqpool__attempt_failed(pqpool__attempt *a, int status)
{
	a->status = status;
	snprintf(a->msg, sizeof a->msg, "%s", pqpool_errmsg());
	snprintf(a->sqlstate, sizeof a->sqlstate, "%s", pqpool_errcode());
}

/* Acquire failures happen before anything was sent: retrying is always
 * safe; worth it when the database could not be reached, not when the pool
 * is saturated or closed. */
static bool acquire_attempt(struct pqpool *p, int64_t deadline_ns, pqpool__slot **s,
                            pqpool__attempt *a)
{
	struct pqpool *m = pqpool__route(p, 0, deadline_ns);
	int st = m ? pqpool__acquire_until(m, deadline_ns, s, __FILE__, __LINE__)
	           : PQPOOL_ECONNECT;
	if (st == PQPOOL_OK)
		return true;
	pqpool__attempt_failed(a, st);
	a->retryable = st == PQPOOL_ECONNECT;
	return false;
}

int64_t pqpool__acquire_deadline(struct pqpool *p, int64_t loop_deadline)
{
	int64_t d = pqc_now_ns() + (int64_t)p->ctx.cfg.connection_timeout_ms * 1000000;
	return d < loop_deadline ? d : loop_deadline;
}

/* ---- pqpool_run ---- */

struct run_arg {
	pqpool_fn fn;
	void *arg;
};

static int run_attempt(struct pqpool *p, void *arg, int64_t deadline, pqpool__attempt *a)
{
	struct run_arg *ra = arg;
	pqpool__slot *s;
	int st;
	if (!acquire_attempt(p, pqpool__acquire_deadline(p, deadline), &s, a))
		return a->status;
	s->lease.deadline_cap_ns = deadline; /* queries through pqpool_exec stop there */
	pqpool__ok();
	st = ra->fn(&s->lease, ra->arg);
	if (st != PQPOOL_OK) {
		pqpool__attempt_failed(a, st);
		if (s->lease.last_status != 0) {
			/* recorded by pqpool_exec or pqpool_conn_fail */
			snprintf(a->sqlstate, sizeof a->sqlstate, "%s",
			         s->lease.last_sqlstate);
			a->retryable =
			        s->lease.last_status == PQPOOL_ECONNLOST ||
			        pqpool_sqlstate_retryable(s->lease.last_sqlstate) ||
			        pqpool__retry_refused(&p->ctx, s->lease.last_sqlstate);
		} else if (PQstatus(s->link.pg) == CONNECTION_BAD) {
			a->retryable = true; /* broke under raw libpq calls */
		}
		if (!a->msg[0])
			snprintf(a->msg, sizeof a->msg, "the function returned %d (%s)",
			         st, pqpool_status_text(st));
	}
	pqpool__release(s, false);
	a->status = st;
	return st;
}

int pqpool_run(pqpool *pool, const char *context, pqpool_fn fn, void *arg)
{
	struct run_arg ra = {fn, arg};
	if (!pool || !fn)
		return pqpool__fail(PQPOOL_EINVAL, "pqpool_run: NULL pool or function");
	return pqpool__retry(pool, context, run_attempt, &ra);
}
