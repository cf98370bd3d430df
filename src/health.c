/* health.c — the health probe: the health query through the pool, timed on
 * the monotonic clock, judged healthy / degraded / unhealthy, and shared by
 * concurrent callers so that a burst of checks costs one query. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* The head of an error this long or less survives a cut. */
#define FIT_HEAD 64

/* Back from i to the start of a UTF-8 sequence, so a cut leaves valid text. */
static size_t utf8_start(const char *s, size_t i)
{
	while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80)
		i--;
	return i;
}

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
	head = utf8_start(msg, FIT_HEAD);
	tail = n - (outlen - 1 - head - (sizeof gap - 1));
	while (tail < n && ((unsigned char)msg[tail] & 0xC0) == 0x80)
		tail++;
	snprintf(out, outlen, "%.*s%s%s", (int)head, msg, gap, msg + tail);
}

static void probe(struct pqpool *p, int timeout_ms, pqpool_health *h)
{
	int64_t t0 = pqpool__now_ns();
	int64_t deadline = t0 + (int64_t)timeout_ms * 1000000;
	int64_t qdeadline;
	pqpool_conn *c = NULL;
	int rc;

	/* A connection the server closed moments ago (a terminated backend, a
	 * restart) can still look alive when it is handed out, its goodbye not
	 * yet read, and the probe then fails on it though the database answers.
	 * The health query is read-only, so it goes again on another connection
	 * while the deadline allows: the release counted this one broken, which
	 * makes the next acquire check the others first. A few tries at most:
	 * a server that keeps closing connections is not healthy. */
	for (int attempt = 1;; attempt++) {
		rc = pqpool__acquire_until(p, deadline, &c, __FILE__, __LINE__);
		if (rc != PQPOOL_OK)
			break;
		qdeadline = deadline;
		/* the query deadline is the earlier of the probe's and the query's */
		if (p->cfg.query_timeout_ms > 0 &&
		    pqpool__now_ns() + (int64_t)p->cfg.query_timeout_ms * 1000000 <
		            qdeadline)
			qdeadline = pqpool__now_ns() +
			            (int64_t)p->cfg.query_timeout_ms * 1000000;
		/* no grace past the deadline: a probe must answer in time */
		rc = pqpool__exec(c, p->health_query, 0, NULL, NULL, qdeadline, 0);
		pqpool_release(c);
		if (rc != PQPOOL_ECONNLOST || attempt >= 3 ||
		    pqpool__now_ns() >= deadline)
			break;
		pthread_mutex_lock(&p->stats_mu);
		p->retries++;
		pthread_mutex_unlock(&p->stats_mu);
	}
	pqpool__health_result(p, rc, t0, h);
}

void pqpool__health_result(struct pqpool *p, int rc, int64_t t0, pqpool_health *h)
{
	pqpool_stats st;
	memset(h, 0, sizeof *h);
	h->response_ms = (double)(pqpool__now_ns() - t0) / 1e6;
	h->checked_at_ms = pqpool__wall_ms();
	if (rc != PQPOOL_OK) {
		h->status = PQPOOL_UNHEALTHY;
		fit_message(h->error, sizeof h->error, pqpool_errmsg());
	}
	pqpool__stats_quick(p, &st); /* we are pinned */
	h->connection_count = st.total;
	if (rc != PQPOOL_OK)
		return;
	h->status = pqpool__judge_health(h->response_ms, p->cfg.health_slow_ms,
	                                 st.waiting, st.error_rate, st.window_s, h->error,
	                                 sizeof h->error);
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

int pqpool_check_health_within(pqpool *p, int timeout_ms, pqpool_health *out)
{
	int64_t t0 = pqpool__now_ns();
	uint64_t gen;
	if (!p || !out)
		return pqpool__fail(PQPOOL_EINVAL, "health: NULL pool or out");
	if (timeout_ms <= 0 || timeout_ms > p->cfg.connection_timeout_ms)
		timeout_ms = p->cfg.connection_timeout_ms;
	pqpool__pin(p);
	if (!p->cfg.health_share) {
		probe(p, timeout_ms, out);
		pqpool__unpin(p);
		pqpool__ok();
		return PQPOOL_OK;
	}
	pthread_mutex_lock(&p->health_mu);
	if (p->health_running) {
		/* a probe is in flight: its result is as fresh as ours would be.
		 * It is bounded by its own timeout; we wait no longer than ours. */
		int64_t deadline = t0 + (int64_t)timeout_ms * 1000000;
		struct timespec ts = {(time_t)(deadline / 1000000000),
		                      (long)(deadline % 1000000000)};
		bool late = false;
		gen = p->health_gen;
		while (p->health_gen == gen && !late)
			late = pthread_cond_timedwait(&p->health_cv, &p->health_mu,
			                              &ts) == ETIMEDOUT &&
			       p->health_gen == gen;
		if (!late)
			*out = p->health_last;
		pthread_mutex_unlock(&p->health_mu);
		if (late) { /* answered like a probe that failed, saying why */
			int rc = pqpool__fail(PQPOOL_ETIMEDOUT,
			                      "health: timed out after %d ms waiting for "
			                      "the probe in flight",
			                      timeout_ms);
			pqpool__health_result(p, rc, t0, out);
		}
		pqpool__unpin(p);
		pqpool__ok();
		return PQPOOL_OK;
	}
	p->health_running = true;
	pthread_mutex_unlock(&p->health_mu);

	probe(p, timeout_ms, out);

	pthread_mutex_lock(&p->health_mu);
	p->health_last = *out;
	p->health_running = false;
	p->health_gen++;
	pthread_cond_broadcast(&p->health_cv);
	pthread_mutex_unlock(&p->health_mu);
	pqpool__unpin(p);
	pqpool__ok();
	return PQPOOL_OK;
}

int pqpool_check_health(pqpool *p, pqpool_health *out)
{
	return pqpool_check_health_within(p, 0, out);
}
