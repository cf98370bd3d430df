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
#include <string.h>

#include "clock.h"
#include "error.h"
#include "exec.h"
#include "fdwait.h"
#include "lease.h"
#include "log.h"
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

/* A usable standby at random; else the primary (asked for only when no
 * standby is known), else any usable member. */
static struct pqpool *reader(struct pqpool *p, int64_t deadline_ns)
{
	int64_t now = pqc_now_coarse_ms();
	struct pqpool *pick[64], *m;
	int n = 0;
	for (int i = 0; i < p->nmembers && n < 64; i++)
		if (role_of(p->members[i]) == PQPOOL__ROLE_STANDBY &&
		    usable(p, p->members[i], now))
			pick[n++] = p->members[i];
	if (n > 0)
		return pick[pqc_rand64() % (uint64_t)n];
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
