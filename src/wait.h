/* wait.h — how a caller waits for a connection: queued as a waiter, asleep on
 * its own wake-up object, woken by whoever grants it one. */
#ifndef PQPOOL_WAIT_H
#define PQPOOL_WAIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "event.h"
#include "slot.h"

enum pqpool__grant {
	PQPOOL__GRANT_NONE = 0, /* still waiting */
	PQPOOL__GRANT_SLOT,     /* an idle slot, now the waiter's */
	PQPOOL__GRANT_CAPACITY, /* an OPENING slot: the waiter connects */
	PQPOOL__GRANT_CLOSED,   /* the pool closed */
	PQPOOL__GRANT_TAKEN     /* a slot its continuation already put to work */
};

typedef struct pqpool__waiter pqpool__waiter;

/* A waiter's continuation: what to do with the slot it is granted, run by
 * the granter outside the pool's lock, before the waiter wakes, so that the
 * waiter sleeps once (for the answer) instead of twice (for a connection,
 * then for the answer). Returns true when it put the slot to work and armed
 * its socket with pqpool__waiter_arm() (its last touch of w); false leaves
 * the waiter to do the work itself once woken. */
typedef bool (*pqpool__grant_fn)(pqpool__waiter *w, pqpool__slot *s, void *arg);

/* What a waiter with a continuation sleeps on: an epoll set with an eventfd
 * in it, one per thread, made on first need. */
typedef struct pqpool__waitset pqpool__waitset;

/* A caller waiting for a connection; lives on its stack, queued FIFO under
 * the pool's lock. The granter dequeues it, fills kind and slot, then wakes
 * it (or runs its continuation). */
struct pqpool__waiter {
	pqpool__waiter *next;
	_Atomic int kind; /* enum pqpool__grant */
	pqpool__slot *slot;
	pqpool__grant_fn then;
	void *then_arg;
	pqc_event ev;         /* plain waiters sleep on this */
	pqpool__waitset *ws;  /* waiters with a continuation, on this */
	_Atomic int signaled; /* the grant is complete */
	_Atomic int done;     /* its granter touches it no more */
};

/* A waiter with no grant yet; with then (may be NULL), its continuation. A
 * thread that cannot make a wait set waits without the continuation. */
void pqpool__waiter_init(pqpool__waiter *w, pqpool__grant_fn then, void *arg);

/* Sleeps until granted or the monotonic deadline passes: 1 when granted. */
int pqpool__waiter_sleep(pqpool__waiter *w, int64_t deadline_ns);

/* Wakes a waiter whose grant is complete. Touches nothing of w after. */
void pqpool__waiter_wake(pqpool__waiter *w);

/* From a continuation: the waiter's grant is TAKEN, and it wakes when fd
 * becomes readable (at once if fd cannot be watched). Touches nothing of w
 * after. */
void pqpool__waiter_arm(pqpool__waiter *w, int fd);

#endif
