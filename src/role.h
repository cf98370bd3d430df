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

/* A server's role as a member of a pool of several hosts sees it. */
enum { PQPOOL__ROLE_UNKNOWN = 0, PQPOOL__ROLE_PRIMARY, PQPOOL__ROLE_STANDBY };

/* The server says it refuses writes: it reports in_hot_standby or
 * default_transaction_read_only "on" (PostgreSQL 14+ sends both whenever
 * they change). */
bool pqpool__refuses_writes(PGconn *pg);

/* Checks s's connection after it opened, after a failed statement (with
 * its sqlstate) and on release (sqlstate NULL). The server refuses writes
 * when it says so or answered 25006 outside a transaction block a caller
 * opened. A member records its host's role from that. A pool whose writers
 * need a primary retires, when it refuses writes, every connection opened
 * until now, and returns true. */
bool pqpool__role_check(pqpool__slot *s, const char *sqlstate);

/* A member's connect to its host succeeded (ok) or failed: a failure bans
 * the host for pqpool__ban_ms of its failures in a row; a success lifts it. */
void pqpool__role_connected(pqpool__ctx *ctx, bool ok);

/* How long a host is banned after fails failed connects in a row: 1 s,
 * doubling to 60 s, up to a tenth less at random (rnd). Pure. */
int64_t pqpool__ban_ms(int fails, uint64_t rnd);

/* s's connection was opened before a retirement: it takes no more work and
 * is closed (PQPOOL_CLOSE_READ_ONLY) when next released or checked. */
static inline bool pqpool__retired(const pqpool__slot *s)
{
	return s->link.created_ms <=
	       atomic_load_explicit(&s->ctx->retire_before_ms, memory_order_relaxed);
}

/* Whether a failure with sqlstate is worth another attempt beyond what
 * pqpool_sqlstate_retryable says: 25006 while writers need a primary (with
 * several hosts they always do; the next attempt is routed again) (the
 * statement ran in a transaction that was rolled back, on a server that is
 * being left), whatever the statement. */
bool pqpool__retry_refused(const pqpool__ctx *ctx, const char *sqlstate);

#endif
