/* router.c — a pool of several hosts: which member (one host's pool) a call
 * goes to. Writers go to the primary; reads (PQPOOL_READ) to a standby at
 * random, else to the primary. A member whose connects fail is banned for a
 * while (role.c) and skipped, unless every member is: the last usable host
 * is never banned. With no primary known, the members not known to be
 * standbys are asked first, then the standbys (one may have been promoted
 * since we last looked); a caller that may wait asks again, 50 ms doubling
 * to 400 ms apart, until its deadline. */
#include "router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "exec.h"
#include "fdwait.h"
#include "janitor.h"
#include "lease.h"
#include "log.h"
#include "pin.h"
#include "rand.h"
#include "role.h"

static int role_of(const struct pqpool *m)
{
	return atomic_load_explicit(&m->ctx.role, memory_order_relaxed);
}

/* Not banned, or every member is and this one's ban ends first. */
static bool usable(const struct pqpool *p, const struct pqpool *m, int64_t now)
{
	int64_t until = atomic_load(&m->ctx.banned_until_ms), first = INT64_MAX;
	if (until <= now)
		return true;
	for (int i = 0; i < p->nmembers; i++) {
		int64_t u = atomic_load(&p->members[i]->ctx.banned_until_ms);
		if (u <= now)
			return false; /* another one is usable */
		if (u < first)
			first = u;
	}
	return until == first;
}

/* Asks member m's server whether it takes writes now, with a round trip
 * (an idle session is told of a promotion only once it runs a command): a
 * server in recovery, or one made read-only (a fenced old primary), is a
 * standby to writers. Records the role; true when m is the primary. */
static bool ask(struct pqpool *m, int64_t deadline_ns)
{
	pqpool__slot *s;
	PGresult *res = NULL;
	int role = PQPOOL__ROLE_UNKNOWN;
	int64_t d = pqc_now_ns() + (int64_t)m->ctx.cfg.connection_timeout_ms * 1000000;
	if (d > deadline_ns)
		d = deadline_ns;
	if (pqpool__acquire_until(m, d, &s, __FILE__, __LINE__) == PQPOOL_OK) {
		if (pqpool__exec(s,
		                 "SELECT pg_is_in_recovery() OR "
		                 "current_setting('transaction_read_only')::bool",
		                 0, NULL, &res, d, 0) == PQPOOL_OK &&
		    PQntuples(res) == 1)
			role = strcmp(PQgetvalue(res, 0, 0), "t") == 0
			               ? PQPOOL__ROLE_STANDBY
			               : PQPOOL__ROLE_PRIMARY;
		PQclear(res);
		pqpool__release(s, false);
	}
	atomic_store(&m->ctx.role, role);
	return role == PQPOOL__ROLE_PRIMARY;
}

/* The primary, asking the others in two rounds (not known standbys, then
 * standbys) when none is known; NULL when none answers as one. */
static struct pqpool *primary_now(struct pqpool *p, int64_t deadline_ns)
{
	int64_t now = pqc_now_coarse_ms();
	for (int i = 0; i < p->nmembers; i++)
		if (role_of(p->members[i]) == PQPOOL__ROLE_PRIMARY &&
		    usable(p, p->members[i], now))
			return p->members[i];
	if (deadline_ns == 0)
		return NULL; /* nothing asked */
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < p->nmembers; i++) {
			struct pqpool *m = p->members[i];
			bool standby = role_of(m) == PQPOOL__ROLE_STANDBY;
			if (standby == (round == 1) &&
			    usable(p, m, pqc_now_coarse_ms()) && ask(m, deadline_ns))
				return m;
		}
	return NULL;
}

static struct pqpool *writer(struct pqpool *p, int64_t deadline_ns)
{
	struct pqpool *m;
	for (int k = 1;; k++) {
		int64_t ms;
		if ((m = primary_now(p, deadline_ns)) != NULL)
			return m;
		if (deadline_ns == 0 || (atomic_load(&p->contend) & PQPOOL__CLOSED_BIT))
			break;
		ms = (int64_t)50 << (k < 4 ? k - 1 : 3);
		ms = ms / 2 + (int64_t)(pqc_rand64() % (uint64_t)(ms / 2 + 1));
		if (ms >= pqc_ms_until(deadline_ns))
			break;
		if (k == 1)
			pqpool__log(&p->ctx.log, PQPOOL_LOG_WARN,
			            "none of the %d hosts of %s is a primary now; asking "
			            "again until DB_CONNECTION_TIMEOUT",
			            p->nmembers, p->ctx.params.masked);
		pqc_sleep_ms(ms);
	}
	pqpool__fail(PQPOOL_ECONNECT, "acquire: none of the %d hosts of %s is a primary",
	             p->nmembers, p->ctx.params.masked);
	return NULL;
}

/* A standby within DB_MAX_REPLICA_LAG as last measured (unknown: within). */
static bool lag_ok(const struct pqpool *m)
{
	int64_t lag = atomic_load_explicit(&m->ctx.lag_us, memory_order_relaxed);
	int max = m->ctx.cfg.max_replica_lag_ms;
	return max <= 0 || lag < 0 || lag <= (int64_t)max * 1000;
}

/* A usable standby at random (DB_READ_TARGET=any: or the primary); else,
 * when a caller may wait, a member whose role is unknown (a host back from
 * an outage) is asked; else (but with DB_READ_TARGET=standby) the primary,
 * else any usable member. */
static struct pqpool *reader(struct pqpool *p, int64_t deadline_ns)
{
	int64_t now = pqc_now_coarse_ms();
	int target = p->ctx.cfg.read_target;
	struct pqpool *pick[PQPOOL_MAX_HOSTS], *m;
	int n = 0;
	for (int i = 0; i < p->nmembers; i++) {
		m = p->members[i];
		if (!usable(p, m, now))
			continue;
		if ((role_of(m) == PQPOOL__ROLE_STANDBY && lag_ok(m)) ||
		    (target == PQPOOL_READ_ANY && role_of(m) == PQPOOL__ROLE_PRIMARY))
			pick[n++] = m;
	}
	if (n > 0)
		return pick[pqc_rand64() % (uint64_t)n];
	for (int i = 0; deadline_ns && i < p->nmembers; i++) {
		m = p->members[i];
		if (role_of(m) == PQPOOL__ROLE_UNKNOWN && usable(p, m, now) &&
		    !ask(m, deadline_ns) && role_of(m) == PQPOOL__ROLE_STANDBY)
			return m;
	}
	if (target == PQPOOL_READ_STANDBY) {
		pqpool__fail(
		        PQPOOL_ECONNECT,
		        "acquire: none of the %d hosts of %s is a standby that answers "
		        "(DB_READ_TARGET=standby)",
		        p->nmembers, p->ctx.params.masked);
		return NULL;
	}
	if ((m = primary_now(p, deadline_ns)) != NULL)
		return m;
	for (int i = 0; i < p->nmembers; i++)
		if (usable(p, p->members[i], now))
			return p->members[i];
	pqpool__fail(PQPOOL_ECONNECT, "acquire: none of the %d hosts of %s answers",
	             p->nmembers, p->ctx.params.masked);
	return NULL;
}

struct pqpool *pqpool__route(struct pqpool *p, unsigned flags, int64_t deadline_ns)
{
	if (!p->members)
		return p;
	if (atomic_load(&p->contend) & PQPOOL__CLOSED_BIT) {
		pqpool__fail(PQPOOL_ECLOSED, "acquire: pool closed");
		return NULL;
	}
	return flags & PQPOOL_READ ? reader(p, deadline_ns) : writer(p, deadline_ns);
}

int pqpool_acquire_for(pqpool *pool, unsigned flags, int timeout_ms, pqpool_conn **out,
                       const char *file, int line)
{
	struct pqpool *m;
	if (!pool || !out)
		return pqpool__fail(PQPOOL_EINVAL, "acquire: NULL pool or out");
	*out = NULL;
	if (!pool->members)
		return pqpool__acquire_loc(pool, timeout_ms, out, file, line);
	if (timeout_ms < 0)
		timeout_ms = pool->ctx.cfg.connection_timeout_ms;
	if (!(m = pqpool__route(pool, flags,
	                        pqc_now_ns() + (int64_t)timeout_ms * 1000000)))
		return pqpool__fail(PQPOOL_ECONNECT, "%s", pqpool_errmsg());
	return pqpool__acquire_loc(m, timeout_ms, out, file, line);
}

int pqpool_acquire_loc(pqpool *pool, int timeout_ms, pqpool_conn **out, const char *file,
                       int line)
{
	return pqpool_acquire_for(pool, 0, timeout_ms, out, file, line);
}

/* ---- upkeep and what is seen of the hosts ---- */

/* Each standby's replay lag, with a round trip: 0 when it has replayed all
 * it received, else the age of the last transaction it replayed. */
static void measure_lags(struct pqpool *p, int64_t deadline_ns)
{
	for (int i = 0; i < p->nmembers; i++) {
		struct pqpool *m = p->members[i];
		pqpool__slot *s;
		PGresult *res = NULL;
		int64_t lag = -1;
		if (role_of(m) != PQPOOL__ROLE_STANDBY ||
		    !usable(p, m, pqc_now_coarse_ms()) ||
		    pqpool__acquire_until(m, deadline_ns, &s, __FILE__, __LINE__) !=
		            PQPOOL_OK)
			continue;
		if (pqpool__exec(
		            s,
		            "SELECT CASE WHEN NOT pg_is_in_recovery() OR "
		            "pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() "
		            "THEN 0 ELSE COALESCE(EXTRACT(EPOCH FROM now() - "
		            "pg_last_xact_replay_timestamp()) * 1000000, 0) END::bigint",
		            0, NULL, &res, deadline_ns, 0) == PQPOOL_OK &&
		    PQntuples(res) == 1)
			lag = atoll(PQgetvalue(res, 0, 0));
		PQclear(res);
		pqpool__release(s, false);
		atomic_store(&m->ctx.lag_us, lag);
	}
}

int pqpool_maintain(pqpool *pool)
{
	int st = PQPOOL_OK, ok = 0;
	if (!pool)
		return pqpool__fail(PQPOOL_EINVAL, "pqpool_maintain: pool is NULL");
	if (!pool->members)
		return pqpool__maintain(pool);
	pqpool__pin(pool);
	/* each host's pool (a banned host's only once its ban is over); fine
	 * when one of them answers */
	for (int i = 0; i < pool->nmembers; i++) {
		int rc;
		if (!usable(pool, pool->members[i], pqc_now_coarse_ms()))
			continue;
		if ((rc = pqpool__maintain(pool->members[i])) == PQPOOL_OK)
			ok++;
		else
			st = rc;
	}
	measure_lags(pool, pqc_now_ns() + (int64_t)pool->ctx.cfg.connection_timeout_ms *
	                                          1000000);
	pqpool__unpin(pool);
	if (ok > 0)
		pqpool__ok();
	return ok > 0 ? PQPOOL_OK : st;
}

void pqpool__measure_lags(struct pqpool *p, int64_t deadline_ns)
{
	if (p->members)
		measure_lags(p, deadline_ns);
}

int pqpool_hosts_get(pqpool *pool, pqpool_host *out, int max)
{
	int64_t now = pqc_now_coarse_ms();
	if (!pool || !pool->members)
		return 0;
	for (int i = 0; i < pool->nmembers && i < max && out; i++) {
		struct pqpool *m = pool->members[i];
		pqpool_stats st;
		pqpool_host *h = &out[i];
		int fails = atomic_load(&m->ctx.fails);
		int64_t lag = atomic_load(&m->ctx.lag_us);
		pqpool__snapshot(m, &st, false);
		memset(h, 0, sizeof *h);
		snprintf(h->address, sizeof h->address, "%s", m->address);
		h->role = (pqpool_role)role_of(m);
		h->state = fails == 0              ? PQPOOL_HOST_UP
		           : !usable(pool, m, now) ? PQPOOL_HOST_BANNED
		                                   : PQPOOL_HOST_DOWN;
		h->connections = st.total;
		h->active = st.active;
		h->idle = st.idle;
		h->failures = fails;
		h->lag_ms = h->role == PQPOOL_ROLE_STANDBY && lag >= 0
		                    ? (double)lag / 1000.0
		                    : -1;
	}
	return pool->nmembers;
}
