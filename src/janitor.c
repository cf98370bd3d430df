/* janitor.c — lazy upkeep, as the library owns no thread or timer: idle
 * connections past the idle timeout and connections past their lifetime
 * closed (never below the minimum), leases held too long logged, run at most
 * every upkeep interval from releases; refilling to the minimum from
 * pqpool_maintain(). */
#include "janitor.h"

#include <stdio.h>
#include <stdlib.h>

#include "clock.h"
#include "error.h"
#include "pin.h"
#include "pool.h"
#include "role.h"

/* Closes idle connections past the idle timeout (never below the minimum)
 * or their lifetime, and logs leases held too long. The caller is pinned or
 * owns a slot. */
static void reap(struct pqpool *p, int64_t now)
{
	pqpool__slot *idle_victims = NULL, *old_victims = NULL, *retired_victims = NULL;
	struct {
		const char *file;
		int line;
		int64_t held;
	} warn[8];
	int nwarn = 0, keep;
	int idle_to = p->ctx.cfg.idle_timeout_ms, warn_ms = p->ctx.cfg.lease_warn_ms;

	pthread_mutex_lock(&p->mu);
	keep = p->nopen;
	/* from the highest slot down: those are the least used */
	for (int i = p->nslots - 1; i >= 0; i--) {
		pqpool__slot *s = &p->slots[i];
		int st = atomic_load(&s->state);
		if (st == PQPOOL__SLOT_IDLE) {
			bool retired = pqpool__retired(s);
			bool expired = !retired && s->link.expires_ms &&
			               now >= s->link.expires_ms;
			bool idle = idle_to > 0 && keep > p->ctx.cfg.pool_min &&
			            now - atomic_load_explicit(&s->link.released_ms,
			                                       memory_order_relaxed) >=
			                    idle_to;
			int want = PQPOOL__SLOT_IDLE;
			if ((retired || expired || idle) && !p->closed &&
			    atomic_compare_exchange_strong(&s->state, &want,
			                                   PQPOOL__SLOT_BUSY)) {
				pqpool__slot **list = retired   ? &retired_victims
				                      : expired ? &old_victims
				                                : &idle_victims;
				s->next = *list;
				*list = s;
				keep--;
			}
		} else if (st == PQPOOL__SLOT_BUSY && warn_ms > 0 && nwarn < 8) {
			int64_t at = atomic_load_explicit(&s->lease.acquired_ms,
			                                  memory_order_relaxed);
			if (at > 0 && now - at >= warn_ms &&
			    !atomic_exchange(&s->lease.warned, true)) {
				/* the lease may have changed hands since we read `at` */
				if (atomic_load_explicit(&s->lease.acquired_ms,
				                         memory_order_relaxed) != at) {
					atomic_store(&s->lease.warned, false);
					continue;
				}
				warn[nwarn].file = atomic_load_explicit(
				        &s->lease.file, memory_order_relaxed);
				warn[nwarn].line = atomic_load_explicit(
				        &s->lease.line, memory_order_relaxed);
				warn[nwarn].held = now - at;
				nwarn++;
			}
		}
	}
	pthread_mutex_unlock(&p->mu);
	if (nwarn)
		pqpool__count(&p->ctx.counters, PQPOOL__LEASE_WARNINGS, (uint64_t)nwarn);
	for (int i = 0; i < nwarn; i++)
		pqpool__log(
		        &p->ctx.log, PQPOOL_LOG_WARN,
		        "lease held for %lld ms (DB_LEASE_WARN=%d), acquired at %s:%d",
		        (long long)warn[i].held, warn_ms,
		        warn[i].file ? warn[i].file : "?", warn[i].line);
	pqpool__close_list(p, idle_victims, PQPOOL_CLOSE_IDLE);
	pqpool__close_list(p, old_victims, PQPOOL_CLOSE_LIFETIME);
	pqpool__close_list(p, retired_victims, PQPOOL_CLOSE_READ_ONLY);
}

/* Reaping runs at most this often from the lease path. */
static int64_t upkeep_interval(const struct pqpool *p)
{
	int64_t iv =
	        p->ctx.cfg.idle_timeout_ms > 0 ? p->ctx.cfg.idle_timeout_ms / 4 : 1000;
	return iv < 50 ? 50 : iv > 1000 ? 1000 : iv;
}

void pqpool__upkeep_due(struct pqpool *p, int64_t now)
{
	int64_t next = atomic_load_explicit(&p->next_upkeep_ms, memory_order_relaxed);
	if (now < next)
		return;
	if (!atomic_compare_exchange_strong(&p->next_upkeep_ms, &next,
	                                    now + upkeep_interval(p)))
		return;
	reap(p, now);
}

static int refill(struct pqpool *p)
{
	pqpool__slot *stackslots[8], **claimed = stackslots;
	char err[PQPOOL__ERRLEN];
	int need, n = 0, opened;

	reap(p, pqc_now_coarse_ms());
	atomic_store(&p->next_upkeep_ms, pqc_now_coarse_ms() + upkeep_interval(p));

	pthread_mutex_lock(&p->mu);
	if (p->closed) {
		pthread_mutex_unlock(&p->mu);
		return pqpool__fail(PQPOOL_ECLOSED, "maintain: pool closed");
	}
	need = p->ctx.cfg.pool_min - p->nopen;
	if (need > 8 && !(claimed = malloc((size_t)need * sizeof *claimed))) {
		pthread_mutex_unlock(&p->mu);
		return pqpool__fail(PQPOOL_ENOMEM, "maintain: out of memory");
	}
	while (n < need) {
		pqpool__slot *s = pqpool__claim_empty_locked(p);
		if (!s)
			break;
		claimed[n++] = s;
	}
	pthread_mutex_unlock(&p->mu);
	if (n == 0) {
		if (claimed != stackslots)
			free(claimed);
		pqpool__ok();
		return PQPOOL_OK;
	}
	opened = pqpool__open_into(
	        p, claimed, n, 0,
	        pqc_now_ns() + (int64_t)p->ctx.cfg.connection_timeout_ms * 1000000, err,
	        sizeof err);
	if (claimed != stackslots)
		free(claimed);
	if (opened < 0)
		return pqpool__fail(PQPOOL_ENOMEM, "maintain: out of memory");
	if (opened < n)
		return pqpool__fail(PQPOOL_ECONNECT, "could not connect to %s: %s",
		                    p->ctx.params.masked, err);
	pqpool__ok();
	return PQPOOL_OK;
}

int pqpool__maintain(struct pqpool *pool)
{
	int st;
	pqpool__pin(pool);
	st = refill(pool);
	pqpool__unpin(pool);
	return st;
}
