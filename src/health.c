/* health.c — the health probe: the health query through the pool, timed on
 * the monotonic clock, judged healthy / degraded / unhealthy, and shared by
 * concurrent callers (flight.c) so that a burst of checks costs one query. */
#include "health.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "exec.h"
#include "lease.h"
#include "pin.h"
#include "pool.h"
#include "router.h"
#include "utf8.h"

/* The head of an error this long or less survives a cut. */
#define FIT_HEAD 64

/*
 * Copies msg into out, cutting the middle rather than the end when it does
 * not fit: a connection error is "what failed" (acquire, the masked URL) and
 * then libpq's reason, and the reason is what a reader needs (a certificate
 * that does not match the host name comes last, after a long URL).
 */
static void fit_message(char *out, size_t outlen, const char *msg)
{
	static const char gap[] = " ... ";
	size_t n = strlen(msg), head, tail;

	if (n < outlen || outlen < FIT_HEAD * 2) {
		snprintf(out, outlen, "%s", msg);
		return;
	}
	head = pqc_utf8_start(msg, FIT_HEAD);
	tail = n - (outlen - 1 - head - (sizeof gap - 1));
	while (tail < n && ((unsigned char)msg[tail] & 0xC0) == 0x80)
		tail++;
	snprintf(out, outlen, "%.*s%s%s", (int)head, msg, gap, msg + tail);
}

static void probe(struct pqpool *p, int timeout_ms, pqpool_health *h)
{
	const pqpool_config *cfg = &p->ctx.cfg;
	int64_t t0 = pqc_now_ns();
	int64_t deadline = t0 + (int64_t)timeout_ms * 1000000;
	int64_t qdeadline, lost_ms = 0;
	pqpool__slot *s = NULL;
	struct pqpool *top = p;
	int rc;

	/* with several hosts, the standbys' lag too, in the first half of the
	 * bound; only where a probe runs, not for callers that share one */
	pqpool__measure_lags(top, t0 + (deadline - t0) / 2);

	/* A connection the server closed moments ago (a terminated backend, a
	 * restart) can still look alive when it is handed out, its goodbye not
	 * yet read, and the probe then fails on it though the database answers.
	 * The health query is read-only, so it goes again on another connection
	 * while the deadline allows: the release counted this one broken, which
	 * makes the next acquire check the others first. Backends terminated
	 * together die one by one, though, some after that check: the last try
	 * goes on a connection opened after the losses. PQPOOL__HEALTH_TRIES at
	 * most: a server that keeps closing connections is not healthy. */
	for (int attempt = 1;; attempt++) {
		/* with several hosts: the database is healthy when its primary is */
		if (!(p = pqpool__route(top, 0, deadline))) {
			rc = PQPOOL_ECONNECT;
			break;
		}
		if (attempt == PQPOOL__HEALTH_TRIES)
			rc = pqpool__acquire_fresh(p, lost_ms, deadline, &s, __FILE__,
			                           __LINE__);
		else
			rc = pqpool__acquire_until(p, deadline, &s, __FILE__, __LINE__);
		if (rc != PQPOOL_OK)
			break;
		qdeadline = deadline;
		/* the query deadline is the earlier of the probe's and the query's */
		if (cfg->query_timeout_ms > 0 &&
		    pqc_now_ns() + (int64_t)cfg->query_timeout_ms * 1000000 < qdeadline)
			qdeadline =
			        pqc_now_ns() + (int64_t)cfg->query_timeout_ms * 1000000;
		/* no grace past the deadline: a probe must answer in time */
		rc = pqpool__exec(s, p->health_query, 0, NULL, NULL, qdeadline, 0);
		pqpool__release(s, false);
		if (rc != PQPOOL_ECONNLOST || attempt >= PQPOOL__HEALTH_TRIES ||
		    pqc_now_ns() >= deadline)
			break;
		lost_ms = pqc_now_coarse_ms();
		pqpool__count(&p->ctx.counters, PQPOOL__RETRIES, 1);
	}
	pqpool__health_result(top, rc, t0, h);
}

/* A pool of several hosts is degraded while one of them is not up. */
static void judge_hosts(struct pqpool *top, pqpool_health *h)
{
	h->nhosts = pqpool_hosts_get(top, h->hosts, PQPOOL_MAX_HOSTS);
	for (int i = 0; i < h->nhosts && i < PQPOOL_MAX_HOSTS; i++) {
		if (h->hosts[i].state == PQPOOL_HOST_UP)
			continue;
		if (h->status == PQPOOL_HEALTHY) {
			h->status = PQPOOL_DEGRADED;
			snprintf(h->error, sizeof h->error, "host %s is %s",
			         h->hosts[i].address,
			         pqpool_host_state_text(h->hosts[i].state));
		}
	}
}

void pqpool__health_result(struct pqpool *p, int rc, int64_t t0, pqpool_health *h)
{
	pqpool_stats st;
	if (p->parent) /* a member's probe: judged as its pool's */
		p = p->parent;
	memset(h, 0, sizeof *h);
	h->response_ms = (double)(pqc_now_ns() - t0) / 1e6;
	h->checked_at_ms = pqc_wall_ms();
	if (rc != PQPOOL_OK) {
		h->status = PQPOOL_UNHEALTHY;
		fit_message(h->error, sizeof h->error, pqpool_errmsg());
	}
	pqpool__snapshot(p, &st, false); /* we are pinned */
	h->connection_count = st.total;
	if (rc == PQPOOL_OK)
		h->status = pqpool__judge_health(
		        h->response_ms, p->ctx.cfg.health_slow_ms, st.waiting,
		        st.error_rate, st.window_s, h->error, sizeof h->error);
	if (p->members)
		judge_hosts(p, h);
}

pqpool_health_status pqpool__judge_health(double response_ms, int slow_ms, int waiting,
                                          double error_rate, double window_s, char *why,
                                          size_t whylen)
{
	if (response_ms > slow_ms) {
		snprintf(why, whylen, "slow: the probe took %.1f ms (DB_HEALTH_SLOW=%d)",
		         response_ms, slow_ms);
		return PQPOOL_DEGRADED;
	}
	if (waiting > 0) {
		snprintf(why, whylen, "saturated: %d caller(s) waiting for a connection",
		         waiting);
		return PQPOOL_DEGRADED;
	}
	if (error_rate >= 5.0) {
		snprintf(why, whylen,
		         "errors: %.1f %% of queries failed in the last %.0f s",
		         error_rate, window_s);
		return PQPOOL_DEGRADED;
	}
	if (whylen)
		why[0] = '\0';
	return PQPOOL_HEALTHY;
}

int pqpool_check_health_within(pqpool *pool, int timeout_ms, pqpool_health *out)
{
	int64_t t0 = pqc_now_ns();
	if (!pool || !out)
		return pqpool__fail(PQPOOL_EINVAL, "health: NULL pool or out");
	if (timeout_ms <= 0 || timeout_ms > pool->ctx.cfg.connection_timeout_ms)
		timeout_ms = pool->ctx.cfg.connection_timeout_ms;
	pqpool__pin(pool);
	if (!pool->ctx.cfg.health_share) {
		probe(pool, timeout_ms, out);
	} else {
		/* a probe in flight is bounded by its own timeout; we wait for it
		 * no longer than ours */
		switch (pqpool__flight_board(&pool->health,
		                             t0 + (int64_t)timeout_ms * 1000000, out)) {
		case PQPOOL__FLIGHT_LEAD:
			probe(pool, timeout_ms, out);
			pqpool__flight_land(&pool->health, out);
			break;
		case PQPOOL__FLIGHT_LATE: /* answered like a probe that failed */
			pqpool__health_result(
			        pool,
			        pqpool__fail(PQPOOL_ETIMEDOUT,
			                     "health: timed out after %d ms "
			                     "waiting for the probe in flight",
			                     timeout_ms),
			        t0, out);
			break;
		case PQPOOL__FLIGHT_JOINED:
			break;
		}
	}
	pqpool__unpin(pool);
	pqpool__ok();
	return PQPOOL_OK;
}

int pqpool_check_health(pqpool *pool, pqpool_health *out)
{
	return pqpool_check_health_within(pool, 0, out);
}
