/* probes.h — one thread that keeps many health probes in flight without blocking. */
#ifndef PQPOOL_CLI_PROBES_H
#define PQPOOL_CLI_PROBES_H

#include <stdbool.h>

#include "pqpool.h"
#include "workq.h"

typedef struct probes probes;

/* Called on the probe thread with the result of a check for item (as
 * pqpool_check_health would give it; rc its status), or with cancelled set
 * when the thread stops before the item was started. */
typedef void (*probes_done_fn)(void *arg, workq_item *item, int rc,
                               const pqpool_health *h, bool cancelled);

/*
 * Starts the probe thread. Items it cannot probe without blocking (no idle
 * connection free at once, or the probe could not be sent) go to fallback,
 * whose threads run the blocking pqpool_check_health (and may open
 * connections) — unless park_at probes are already in flight: then the item
 * waits for one of them to give its connection back, for wait_limit_ms at
 * most since it arrived. With share, items
 * that arrive while a probe is in flight get its result, as
 * pqpool_check_health shares. Returns 0 with *out owned (probes_stop() it),
 * or -1 with errno set.
 */
int probes_start(pqpool *pool, bool share, int park_at, int wait_limit_ms,
                 workq *fallback, probes_done_fn done, void *arg, probes **out);

/*
 * The answer for a health request that waited waited_ns (since its
 * item's since_ns) in a queue without a probe and reached wait_limit_ms
 * (DB_CONNECTION_TIMEOUT, the bound pqpool_check_health keeps): unhealthy,
 * "timed out after N ms waiting for a connection". Parked items past it are
 * answered so by the probe thread, queued ones by whoever dequeues them.
 */
void probes_waited_too_long(pqpool *pool, int64_t waited_ns, int wait_limit_ms,
                            pqpool_health *h);

/*
 * On an event thread, for a health request: starts a probe (or joins the
 * one in flight, with share) and waits for its answer a few milliseconds at
 * most. Returns true when answered here: *rc and *h hold the check's result
 * (or *cancelled is set: the probes are stopping). Otherwise it has called
 * suspend(sarg) before handing item on, and done() is called for it later,
 * from another thread. Thread-safe.
 */
bool probes_answer(probes *r, workq_item *item, void (*suspend)(void *), void *sarg,
                   int *rc, pqpool_health *h, bool *cancelled);

/* Lets the probes in flight finish (each is bounded by the probe deadline),
 * answers the items not started with cancelled, joins the thread, frees r.
 * r may be NULL. */
void probes_stop(probes *r);

#endif
