/* probes.h — the service's database checks on event loops of the pool's
 * asynchronous API: threads that never block on the database. */
#ifndef PQPOOL_CLI_PROBES_H
#define PQPOOL_CLI_PROBES_H

#include <stdbool.h>
#include <stdint.h>

#include "pqpool.h"

/* Embedded in the caller's request; nothing is allocated for it. */
typedef struct probe_item {
	struct probe_item *next;
	/* when the request arrived (CLOCK_MONOTONIC ns), set by its owner: its
	 * check is bounded by the wait limit from then */
	int64_t since_ns;
} probe_item;

typedef struct probes probes;

/* Called on a loop thread with the verdict of the check for item (as
 * pqpool_check_health_within would give it), or with h NULL and cancelled
 * set when the threads stop before the item's check started. */
typedef void (*probes_done_fn)(void *arg, probe_item *item, const pqpool_health *h,
                               bool cancelled);

/*
 * Starts `threads` threads, each running a pqpool_loop on an epoll set of
 * its own. A check for an item takes at most wait_limit_ms
 * (DB_CONNECTION_TIMEOUT) from the item's arrival, waiting for a connection
 * included; with the pool's health_share, checks while one is in flight on
 * the same thread share it. Returns 0 with *out owned (probes_stop() it),
 * or -1 with errno set.
 */
int probes_start(pqpool *pool, int threads, int wait_limit_ms, probes_done_fn done,
                 void *arg, probes **out);

/* Hands item to a loop thread (round robin): done() is called for it later,
 * from that thread. false, without taking it, once probes_stop() has begun.
 * Thread-safe; never blocks. */
bool probes_push(probes *r, probe_item *item);

/* Refuses new items, answers those not started with cancelled, lets the
 * checks started finish (each bounded by the wait limit), joins the
 * threads and frees r. r may be NULL. */
void probes_stop(probes *r);

#endif
