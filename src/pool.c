/* pool.c — opening and closing a pool, and its snapshot. */
#include "pool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "clock.h"
#include "error.h"
#include "lease.h"
#include "pin.h"
#include "fdwait.h"

static _Atomic uint64_t next_pool_id = 1;

/* Allocates and initialises a pool of nslots for a validated cfg, with the
 * parameters given (taken over) or else built from cfg; no connection yet. */
static int pool_new(const pqpool_config *cfg, pqpool__params *given, int nslots,
                    struct pqpool **out)
{
	struct pqpool *p;
	char err[PQPOOL__ERRLEN];
	pthread_condattr_t ca;
	size_t sz;
	int st;

	sz = (sizeof *p + PQPOOL__CACHELINE - 1) / PQPOOL__CACHELINE * PQPOOL__CACHELINE;
	if (!(p = aligned_alloc(PQPOOL__CACHELINE, sz)))
		return pqpool__fail(PQPOOL_ENOMEM, "pqpool_open: out of memory");
	memset(p, 0, sizeof *p);
	p->nslots = nslots;
	sz = (size_t)p->nslots * sizeof *p->slots;
	p->slots = sz ? aligned_alloc(PQPOOL__CACHELINE, sz) : NULL;
	p->health_query = strdup(cfg->health_query ? cfg->health_query : "SELECT 1");
	if (!p->health_query || (sz && !p->slots)) {
		st = pqpool__fail(PQPOOL_ENOMEM, "pqpool_open: out of memory");
		goto fail;
	}
	if (given) {
		p->ctx.params = *given;
		memset(given, 0, sizeof *given);
	} else if ((st = pqpool__params_build(cfg, &p->ctx.params, err, sizeof err)) !=
	           PQPOOL_OK) {
		pqpool__fail(st, "%s", err);
		goto fail;
	}
	if (sz)
		memset(p->slots, 0, sz);
	p->ctx.cfg = *cfg;
	p->ctx.cfg.priv_ = NULL;
	/* only ctx.params is used from here */
	p->ctx.cfg.conninfo = p->ctx.cfg.ssl_mode = p->ctx.cfg.ssl_cert =
	        p->ctx.cfg.ssl_key = p->ctx.cfg.ssl_root_cert = NULL;
	p->ctx.cfg.health_query = p->health_query;
	p->ctx.log = (pqpool__logger){cfg->log_fn, cfg->log_arg, p->ctx.params.secret};
	pqpool__counters_init(&p->ctx.counters);
	for (int i = 0; i < p->nslots; i++) {
		p->slots[i].index = i;
		p->slots[i].ctx = &p->ctx;
		p->slots[i].link.fd_dup = -1;
		atomic_init(&p->slots[i].state, PQPOOL__SLOT_EMPTY);
		pthread_mutex_init(&p->slots[i].pipe.mu, NULL);
	}
	p->id = atomic_fetch_add(&next_pool_id, 1);
	p->started_wall_ms = pqc_wall_ms();
	p->started_mono_ms = pqc_now_coarse_ms();
	atomic_init(&p->next_upkeep_ms, p->started_mono_ms + 1000);
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->drained, &ca);
	pthread_condattr_destroy(&ca);
	pqpool__flight_init(&p->health);
	*out = p;
	return PQPOOL_OK;
fail:
	pqpool__params_free(given);
	free(p->health_query);
	free(p->slots);
	free(p);
	return st;
}

/* host:port (or hostaddr, or libpq's default) of a member's parameters. */
static void host_address(const pqpool__params *hp, char *out, size_t n)
{
	const char *host = NULL, *addr = NULL, *port = "5432";
	for (int i = 0; hp->keywords[i]; i++) {
		if (strcmp(hp->keywords[i], "host") == 0)
			host = hp->values[i];
		else if (strcmp(hp->keywords[i], "hostaddr") == 0)
			addr = hp->values[i];
		else if (strcmp(hp->keywords[i], "port") == 0)
			port = hp->values[i];
	}
	if (!host)
		host = addr ? addr : "localhost";
	snprintf(out, n, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
}

/* The members of a pool of several hosts, one per host; each learns its
 * host's role from a first connection (a host that does not answer is
 * banned for a while). Returns the connections open. */
static int open_members(struct pqpool *p, const pqpool_config *cfg)
{
	int n = p->ctx.params.nhosts, open = 0, st;
	if (!(p->members = calloc((size_t)n, sizeof *p->members)))
		return pqpool__fail(PQPOOL_ENOMEM, "pqpool_open: out of memory");
	for (int i = 0; i < n; i++) {
		pqpool__params hp;
		struct pqpool *m;
		if ((st = pqpool__params_for_host(&p->ctx.params, i, &hp)) != PQPOOL_OK ||
		    (st = pool_new(cfg, &hp, cfg->pool_max, &m)) != PQPOOL_OK)
			return st;
		m->ctx.member = true;
		atomic_store(&m->ctx.lag_us, -1);
		m->parent = p;
		host_address(&m->ctx.params, m->address, sizeof m->address);
		p->members[p->nmembers++] = m;
	}
	for (int i = 0; i < n; i++) {
		struct pqpool *m = p->members[i];
		pqpool_conn *c;
		if (pqpool_maintain(m) == PQPOOL_OK && m->nopen == 0 &&
		    pqpool_acquire(m, -1, &c) == PQPOOL_OK)
			pqpool_release(c);
		open += m->nopen;
	}
	return open;
}

int pqpool_open(const pqpool_config *cfg, pqpool **out)
{
	pqpool_config defaults;
	struct pqpool *p = NULL;
	char err[PQPOOL__ERRLEN];
	int st;

	if (!out)
		return pqpool__fail(PQPOOL_EINVAL, "pqpool_open: out is NULL");
	*out = NULL;
	if (!cfg) {
		pqpool_config_init(&defaults);
		cfg = &defaults;
	}
	if (pqpool_config_validate(cfg, err, sizeof err) != PQPOOL_OK)
		return pqpool__fail(PQPOOL_EINVAL, "%s", err);
	if ((st = pool_new(cfg, NULL, cfg->pool_max, &p)) != PQPOOL_OK)
		return st;
	if (p->ctx.params.nhosts > PQPOOL_MAX_HOSTS) {
		int n = p->ctx.params.nhosts;
		pqpool_close(p, 0);
		return pqpool__fail(
		        PQPOOL_EINVAL,
		        "pqpool_open: DATABASE_URL names %d hosts, at most %d", n,
		        PQPOOL_MAX_HOSTS);
	}
	if (p->ctx.params.nhosts > 1) {
		int open;
		/* the members hold the connections: this pool has no slots */
		for (int i = 0; i < p->nslots; i++)
			pthread_mutex_destroy(&p->slots[i].pipe.mu);
		free(p->slots);
		p->slots = NULL;
		p->nslots = 0;
		if ((open = open_members(p, cfg)) < 0) {
			snprintf(err, sizeof err, "%s", pqpool_errmsg());
			pqpool_close(p, 0);
			return pqpool__fail(PQPOOL_ENOMEM, "pqpool_open: %s", err);
		}
		if (open == 0 && p->ctx.cfg.fail_fast) {
			snprintf(err, sizeof err, "none of the %d hosts of %s answers",
			         p->ctx.params.nhosts, p->ctx.params.masked);
			pqpool_close(p, 0); /* frees p */
			return pqpool__fail(PQPOOL_ECONNECT, "pqpool_open: %s", err);
		}
		pqpool__log(&p->ctx.log, open ? PQPOOL_LOG_INFO : PQPOOL_LOG_WARN,
		            "pool open: %d connection(s) to %s, %d hosts (max %d each)",
		            open, p->ctx.params.masked, p->nmembers, cfg->pool_max);
		*out = p;
		pqpool__ok();
		return PQPOOL_OK;
	}
	if (strcmp(pqpool__cancel_method(), "none") == 0)
		pqpool__log(&p->ctx.log, PQPOOL_LOG_WARN,
		            "cancel requests are unavailable: built for libpq older than "
		            "17, running with libpq %d; a query past DB_QUERY_TIMEOUT "
		            "loses its connection instead (rebuild against this libpq)",
		            PQlibVersion());

	st = pqpool_maintain(p);
	if (st == PQPOOL_OK && p->ctx.cfg.fail_fast && p->ctx.cfg.pool_min == 0) {
		/* nothing to warm: prove the database answers with one connection */
		pqpool_conn *c;
		st = pqpool_acquire(p, -1, &c);
		if (st == PQPOOL_OK)
			pqpool_release(c);
	}
	if (st != PQPOOL_OK && p->ctx.cfg.fail_fast) {
		snprintf(err, sizeof err, "%s", pqpool_errmsg());
		pqpool_close(p, 0);
		return pqpool__fail(st == PQPOOL_ENOMEM ? st : PQPOOL_ECONNECT,
		                    "pqpool_open: %s", err);
	}
	if (st != PQPOOL_OK)
		pqpool__log(&p->ctx.log, PQPOOL_LOG_WARN,
		            "pool open without connections to %s (will retry on use): %s",
		            p->ctx.params.masked, pqpool_errmsg());
	else
		pqpool__log(&p->ctx.log, PQPOOL_LOG_INFO,
		            "pool open: %d connection(s) to %s (max %d)", p->nopen,
		            p->ctx.params.masked, p->nslots);
	*out = p;
	pqpool__ok();
	return PQPOOL_OK;
}

/* Leases still out when close gives up: their queries are cancelled and
 * their sockets shut down (through our own descriptor, never the PGconn,
 * which belongs to the holder's thread), so the holders' next libpq call
 * fails fast. Takes their cancellers (the holders find none) under p->mu;
 * the caller sends and frees them after. */
static int break_leases_locked(struct pqpool *p, pqpool__canceller **cs)
{
	int n = 0;
	for (int i = 0; i < p->nslots; i++) {
		pqpool__slot *s = &p->slots[i];
		if (atomic_load(&s->state) != PQPOOL__SLOT_BUSY || !s->link.pg)
			continue;
		if (cs && (cs[n] = pqpool__take_canceller(s)) != NULL)
			n++;
		if (s->link.fd_dup >= 0)
			shutdown(s->link.fd_dup, SHUT_RDWR);
	}
	return n;
}

int pqpool_close(pqpool *pool, int drain_ms)
{
	struct pqpool *p = pool;
	pqpool__pending pd = {0};
	struct timespec ts;
	int64_t deadline;
	pqpool__canceller **cs;
	int ncancel, left, busy = 0;

	if (!p)
		return PQPOOL_OK;
	pthread_mutex_lock(&p->mu);
	if (p->closed) {
		pthread_mutex_unlock(&p->mu);
		return pqpool__fail(PQPOOL_ECLOSED, "pqpool_close: already closed");
	}
	p->closed = true;
	atomic_fetch_or(&p->contend, PQPOOL__CLOSED_BIT);
	/* keeps the pool ours while we close idle connections below */
	p->users++;
	pqpool__dispatch_locked(p, &pd);
	pthread_mutex_unlock(&p->mu);
	pqpool__finish_pending(p, &pd);

	deadline = pqc_now_ns() + (int64_t)(drain_ms > 0 ? drain_ms : 0) * 1000000;
	for (int i = 0; i < p->nmembers; i++) {
		/* what a member still lends out it frees when given back */
		int left_ms = pqc_ms_until(deadline);
		if (pqpool_close(p->members[i], left_ms) == PQPOOL_EBUSY)
			busy++;
	}
	ts.tv_sec = deadline / 1000000000;
	ts.tv_nsec = deadline % 1000000000;
	pthread_mutex_lock(&p->mu);
	p->users--;
	while (p->nopen > 0 || p->users > 0) {
		if (pthread_cond_timedwait(&p->drained, &p->mu, &ts) == ETIMEDOUT)
			break;
	}
	if (p->nopen == 0 && p->users == 0) {
		pthread_mutex_unlock(&p->mu);
		pqpool__pool_free(p);
		if (busy)
			return pqpool__fail(
			        PQPOOL_EBUSY,
			        "pqpool_close: connections to %d host(s) still in "
			        "use after %d ms; their queries were cancelled",
			        busy, drain_ms);
		pqpool__ok();
		return PQPOOL_OK;
	}
	/* Still in use. The pool stays allocated (a "zombie") until the last
	 * lease is released and the last call inside it returns. */
	cs = calloc((size_t)p->nslots, sizeof *cs);
	ncancel = break_leases_locked(p, cs);
	left = p->nopen;
	p->zombie = true;
	pthread_mutex_unlock(&p->mu);
	/* p may be freed from here on: touch it no more */
	deadline = pqc_now_ns() + 1000000000; /* one second for all cancels */
	for (int i = 0; i < ncancel; i++) {
		char err[128];
		pqpool__cancel(cs[i], deadline, err, sizeof err);
		pqpool__canceller_free(cs[i]);
	}
	free(cs);
	return pqpool__fail(PQPOOL_EBUSY,
	                    "pqpool_close: %d connection(s) still in use after %d ms; "
	                    "their queries were cancelled and their sockets shut down",
	                    left, drain_ms);
}

int pqpool_stats_get(pqpool *pool, pqpool_stats *out)
{
	if (!pool || !out)
		return pqpool__fail(PQPOOL_EINVAL, "stats: NULL pool or out");
	pqpool__pin(pool);
	pqpool__snapshot(pool, out, true);
	out->nhosts = pqpool_hosts_get(pool, out->hosts, PQPOOL_MAX_HOSTS);
	pqpool__unpin(pool);
	pqpool__ok();
	return PQPOOL_OK;
}
