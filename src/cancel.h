/* cancel.h — cancel requests with a deadline, sendable from any thread
 * without touching the connection they cancel for. */
#ifndef PQPOOL_CANCEL_H
#define PQPOOL_CANCEL_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pqpool__canceller pqpool__canceller;

/* What a cancel request for pg's backend needs, taken on the thread that
 * owns pg, once it is connected. Owned (pqpool__canceller_free()); NULL when
 * cancels are unavailable with this libpq, or out of memory: a query past its
 * deadline then loses its connection instead. */
pqpool__canceller *pqpool__canceller_new(PGconn *pg);

/* Sends a cancel request for the backend's current query and waits until the
 * server has taken it (it closes the request's connection), spending no
 * longer than until the monotonic deadline_ns. Never blocks past it, even on
 * a server whose packets are dropped. 0 when sent, -1 with the reason in err.
 * One thread at a time per canceller; the canceller can be used again. */
int pqpool__cancel(pqpool__canceller *c, int64_t deadline_ns, char *err, size_t errlen);
/* (cancel_wait.c, over the steps below) */

/* The same request step by step, for a caller with its own poll (an event
 * loop), which keeps the deadline. pqpool__cancel_begin starts it: 0 with
 * *fd the socket to wait on for *events (POLLIN or POLLOUT), or -1 with
 * the reason in err. Then, each time *fd is ready, pqpool__cancel_step: 1
 * when it is done (sent, and the server closed the request's connection),
 * 0 to wait again (*fd, which may have changed, and *events updated), -1
 * failed. pqpool__cancel_end after every begin that returned 0, done,
 * failed or given up: the canceller can be used again. The descriptor is
 * the canceller's; watch a dup of it. */
int pqpool__cancel_begin(pqpool__canceller *c, int *fd, short *events, char *err,
                         size_t errlen);
int pqpool__cancel_step(pqpool__canceller *c, int *fd, short *events, char *err,
                        size_t errlen);
void pqpool__cancel_end(pqpool__canceller *c);

/* c may be NULL. */
void pqpool__canceller_free(pqpool__canceller *c);

/* How cancels are sent with the libpq in use: "libpq" (its non-blocking
 * cancel API, 17 and newer), "compat" (the request written here, for older
 * libpq) or "none" (unavailable: built for an older libpq, running with a
 * newer one). Static text. */
const char *pqpool__cancel_method(void);

#endif
