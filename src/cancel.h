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

/* c may be NULL. */
void pqpool__canceller_free(pqpool__canceller *c);

/* How cancels are sent with the libpq in use: "libpq" (its non-blocking
 * cancel API, 17 and newer), "compat" (the request written here, for older
 * libpq) or "none" (unavailable: built for an older libpq, running with a
 * newer one). Static text. */
const char *pqpool__cancel_method(void);

#endif
