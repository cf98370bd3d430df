/* pool.h — struct pqpool: the data the pool layer (pool, pin, slot, wait,
 * lease, janitor) shares, and what the parts above it read. */
#ifndef PQPOOL_POOL_H
#define PQPOOL_POOL_H

#include <pthread.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "flight.h"
#include "slot.h"
#include "wait.h"

/* Set in pool->contend once closing begins. */
#define PQPOOL__CLOSED_BIT (1u << 30)

struct pqpool {
	/* read-mostly after open */
	pqpool__ctx ctx;
	char *health_query;  /* owned; ctx.cfg.health_query points here */
	pqpool__slot *slots; /* ctx.cfg.pool_max of them */
	int nslots;
	uint64_t id; /* unique per pool, for a thread's slot hint */
	int64_t started_wall_ms;
	int64_t started_mono_ms;

	/* Written rarely, read on every lease: waiters count + CLOSED_BIT.
	 * Non-zero sends acquire and release down the locked path. */
	_Atomic uint32_t contend __attribute__((aligned(PQPOOL__CACHELINE)));
	_Atomic int64_t next_upkeep_ms;
	/* When a connection was last found broken: connections older than that
	 * are checked before their next use, since whatever broke one (a server
	 * restart, a network cut) likely broke them all. */
	_Atomic int64_t broken_at_ms;
	/* After a connection failed to open, the pool does not grow past the
	 * connections it has until this time (coarse monotonic ms): callers
	 * wait for one of those instead of each asking the server for another,
	 * which a server at max_connections refuses at the cost of a process
	 * start each. */
	_Atomic int64_t grow_hold_until_ms;

	pthread_mutex_t mu __attribute__((aligned(PQPOOL__CACHELINE)));
	pqpool__waiter *whead, *wtail; /* FIFO of waiters */
	int nwaiting;
	int nopen;    /* slots not EMPTY */
	bool closed;  /* under mu; mirrored in CLOSED_BIT */
	bool zombie;  /* close gave up; freed by the last one out */
	bool freeing; /* someone is freeing it */
	/* Threads inside calls that may block without owning a slot (slow
	 * acquire, health, run, query, maintain, stats): see pin.c. */
	_Atomic int users;
	pthread_cond_t drained; /* closed: a slot emptied, a user left */

	pqpool__flight health; /* the health probe in flight */

	/* A pool of several hosts (DATABASE_URL names more than one) has no
	 * slots of its own: one member pool per host, in the URL's order, each
	 * of pool_max connections; router.c picks the member for each call.
	 * NULL for a pool of one host. Members are closed with it. */
	struct pqpool **members;
	int nmembers;
	/* a member's: the pool it belongs to, and its host as host:port */
	struct pqpool *parent;
	char address[128];
};

/* The pool a slot belongs to. */
static inline struct pqpool *pqpool__pool_of(pqpool__slot *s)
{
	return (struct pqpool *)(void *)((char *)s->ctx - offsetof(struct pqpool, ctx));
}

#endif
