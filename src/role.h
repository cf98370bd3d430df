/* role.h — whether a connection's server still takes writes, and what the
 * pool does when the server its writers use stops taking them (a switchover,
 * a fenced old primary, a standby behind a proxy): every connection opened
 * until then is retired at once, not at its lifetime's end, and the next
 * connect finds the primary again (libpq's target_session_attrs). */
#ifndef PQPOOL_ROLE_H
#define PQPOOL_ROLE_H

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "slot.h"

/* The server says it refuses writes: it reports in_hot_standby or
 * default_transaction_read_only "on" (PostgreSQL 14+ sends both whenever
 * they change). */
bool pqpool__refuses_writes(PGconn *pg);

/* Checks s's connection after a statement or on release, and with
 * refused_sqlstate (a statement's SQLSTATE, or NULL) after a failure:
 * when the pool's writers need a primary and the server refuses writes
 * (it says so, or answered 25006 outside a transaction block a caller
 * opened), retires every connection opened until now and returns true. */
bool pqpool__role_check(pqpool__slot *s, const char *sqlstate);

/* s's connection was opened before a retirement: it takes no more work and
 * is closed (PQPOOL_CLOSE_READ_ONLY) when next released or checked. */
static inline bool pqpool__retired(const pqpool__slot *s)
{
	return s->link.created_ms <=
	       atomic_load_explicit(&s->ctx->retire_before_ms, memory_order_relaxed);
}

/* Whether a failure with sqlstate is worth another attempt beyond what
 * pqpool_sqlstate_retryable says: 25006 while writers need a primary (the
 * statement ran in a transaction that was rolled back, on a server that is
 * being left), whatever the statement. */
bool pqpool__retry_refused(const pqpool__ctx *ctx, const char *sqlstate);

#endif
