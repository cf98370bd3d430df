/* lease.h — taking a connection from the pool and giving it back. */
#ifndef PQPOOL_LEASE_H
#define PQPOOL_LEASE_H

#include <stdbool.h>
#include <stdint.h>

#include "slot.h"
#include "wait.h"

struct pqpool;

/* Acquires a slot within the monotonic deadline_ns, waiting FIFO for one
 * and opening one when there is room. file and line name the lease for the
 * lease_warn_ms log. PQPOOL_OK with *out a leased slot, or a failure. The
 * caller need not be pinned. */
int pqpool__acquire_until(struct pqpool *p, int64_t deadline_ns, pqpool__slot **out,
                          const char *file, int line);

/* The same for a caller with a continuation: should it have to wait and be
 * granted an idle slot, its granter runs then(w, slot, arg) first (see
 * wait.h). *taken tells whether then ran and took the slot into use. */
int pqpool__acquire_then(struct pqpool *p, int64_t deadline_ns, pqpool__grant_fn then,
                         void *arg, pqpool__slot **out, bool *taken);

/* pqpool_acquire on a pool of one host (or a member); router.c routes the
 * public call. */
int pqpool__acquire_loc(struct pqpool *pool, int timeout_ms, pqpool_conn **out,
                        const char *file, int line);

/* Takes an idle slot, or opens one into free capacity, but never queues:
 * PQPOOL_EAGAIN when it would have to wait (or others already wait). */
int pqpool__acquire_unqueued(struct pqpool *p, int64_t deadline_ns, pqpool__slot **out,
                             const char *file, int line);

/* Takes an idle connection if one is free right now (never waits, never
 * connects), else PQPOOL_EAGAIN. */
int pqpool__try_acquire(struct pqpool *p, pqpool__slot **out, const char *file, int line);

/* For a caller that connects without blocking (an event loop): an idle
 * connection (*claimed false: *out leased), or an owned OPENING slot to
 * open a connection into (*claimed true; an unfit idle connection is
 * closed first, and its slot is the one claimed), or PQPOOL_EAGAIN when it
 * would have to wait (or others already wait), PQPOOL_ECLOSED. Never
 * queues, never connects. Open with pqpool__connect_start/_step, then
 * pqpool__open_settle and, when it opened, pqpool__lease_opened. With
 * opened_after_ms > 0 (coarse ms), no connection opened at or before then:
 * room for a new one is claimed first, else an idle one opened before is
 * closed (PQPOOL_CLOSE_DISCARDED) and its slot claimed. */
int pqpool__acquire_or_claim(struct pqpool *p, int64_t opened_after_ms,
                             pqpool__slot **out, bool *claimed, const char *file,
                             int line);

/* As pqpool__acquire_until, on a connection opened after opened_after_ms
 * (coarse ms): one opened at or before then is closed
 * (PQPOOL_CLOSE_DISCARDED) and replaced in place, the lease kept. For a
 * health check after connections were lost in a row: those opened with
 * them may be dying too (terminated together). Blocking. */
int pqpool__acquire_fresh(struct pqpool *p, int64_t opened_after_ms, int64_t deadline_ns,
                          pqpool__slot **out, const char *file, int line);

/* Begins the lease of a slot that pqpool__open_settle made BUSY, claimed
 * at t0_ns (its wait, counted from then). */
void pqpool__lease_opened(pqpool__slot *s, int64_t t0_ns, const char *file, int line);

/* Gives a leased slot back (discard: its connection closed), as
 * pqpool_release() / pqpool_discard(). */
void pqpool__release(pqpool__slot *s, bool discard);

#endif
