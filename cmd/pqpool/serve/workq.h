/* workq.h — a FIFO of requests and the threads that answer them off the event loop. */
#ifndef PQPOOL_CLI_WORKQ_H
#define PQPOOL_CLI_WORKQ_H

#include <stdbool.h>
#include <stdint.h>

/* Embedded in the caller's job; the queue allocates nothing. */
typedef struct workq_item {
	struct workq_item *next;
	/* when the request arrived (CLOCK_MONOTONIC ns), set by its owner: a
	 * request that waited in a queue past its limit is not started */
	int64_t since_ns;
} workq_item;

/* Runs one job. cancelled: the queue is stopping and the job was never
 * started: answer it without waiting on anything. */
typedef void (*workq_fn)(void *arg, workq_item *item, bool cancelled);

typedef struct workq workq;

/*
 * Starts `threads` threads that run fn(arg, item, false) for each item
 * pushed, oldest first. Returns 0 with *out owned (workq_stop() it), or -1
 * with errno set.
 */
int workq_start(int threads, workq_fn fn, void *arg, workq **out);

/* Queues item for a thread. Returns false, without queueing, once
 * workq_stop() has begun. Thread-safe. */
bool workq_push(workq *q, workq_item *item);

/*
 * Refuses new items, lets each thread finish the job it runs, answers the
 * jobs still queued with cancelled = true, joins the threads and frees q.
 * q may be NULL.
 */
void workq_stop(workq *q);

#endif
