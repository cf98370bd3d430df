/* pipe.h — automatic pipelining: one-shot statements of concurrent callers
 * share a connection's round trips, each caller getting its own result. */
#ifndef PQPOOL_PIPE_H
#define PQPOOL_PIPE_H

#include <libpq-fe.h>
#include <stdint.h>

#include "slot.h"

struct pqpool;

/* A batch older than this takes no more statements: a slow query must not
 * hold up quick ones queued behind it (head-of-line blocking). */
#define PQPOOL__PIPE_HOL_MS 5

/* While at least this many statements are pipelined, a statement joins a
 * quick pipeline holding fewer than this many before it takes a free
 * connection: deeper batches on fewer connections cost the client and the
 * server less per statement (BENCHMARKS.md, "Blocking callers fill
 * pipelines"). */
#define PQPOOL__PIPE_FILL 8

/* A pipeline is quick when its last group took at most this long per
 * statement and its batch in flight is younger than this times FILL:
 * statements that keep a server busy longer run side by side on
 * connections of their own, as unpipelined ones would. */
#define PQPOOL__PIPE_QUICK_US 200

/* A group of several statements still unanswered after this is cancelled
 * and its statements sent again, each alone: one slow statement must not
 * keep the quick ones of its group waiting until their deadlines. */
#define PQPOOL__PIPE_SPLIT_MS 100

/* How pqpool__pipe_query() ended, beside its status. */
enum pqpool__pipe_outcome {
	PQPOOL__PIPE_DONE,   /* answered (or failed) in a pipeline */
	PQPOOL__PIPE_SENT,   /* failed after it was sent: may have taken effect */
	PQPOOL__PIPE_UNSENT, /* failed before anything was sent (acquire) */
	PQPOOL__PIPE_ALONE   /* run it unpipelined instead (nothing was sent) */
};

/*
 * Runs q in a pipeline: on a free connection (which becomes a pipeline
 * other callers join), or joined to the least loaded pipeline with room.
 * The result is delivered only once the Sync of its group confirmed the
 * group committed; when another statement of its group fails, q is sent
 * again in a group of its own. deadline_ns bounds the statement,
 * acquire_deadline_ns the wait for a connection. Returns the status (the
 * thread's error set as pqpool_exec would set it), *res as pqpool_exec's,
 * and in *outcome how it ended.
 */
int pqpool__pipe_query(struct pqpool *p, const pqpool__qreq *q,
                       int64_t acquire_deadline_ns, int64_t deadline_ns, PGresult **res,
                       int *outcome);

#endif
