/* conn.h — opening libpq connections and checking them for life. */
#ifndef PQPOOL_CONN_H
#define PQPOOL_CONN_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conninfo.h"
#include "log.h"

/* Opens n connections to params in parallel, all within the monotonic
 * deadline_ns. out[i] is an open PGconn or NULL; err gets the first
 * failure's message, the password scrubbed. Server notices on the opened
 * connections go to lg (NULL: libpq's default), which must outlive them.
 * Returns how many opened. Blocking; no lock may be held. */
int pqpool__connect_many(const pqpool__params *params, const pqpool__logger *lg, int n,
                         PGconn **out, int64_t deadline_ns, char *err, size_t errlen);

/* One connection opened step by step, for a caller with its own poll
 * (the event loop): started without blocking (NULL with err set, the
 * password scrubbed, when it cannot start; then wait for its socket to be
 * writable), then one step each time PQsocket() is ready as the last step
 * asked: PGRES_POLLING_READING or _WRITING (wait for that; the socket may
 * have changed), _OK (open; server notices go to lg), or _FAILED (err set,
 * scrubbed; PQfinish it). The deadline is the caller's. err may be NULL. */
PGconn *pqpool__connect_start(const pqpool__params *params, char *err, size_t errlen);
PostgresPollingStatusType pqpool__connect_step(PGconn *pg, const pqpool__params *params,
                                               const pqpool__logger *lg, char *err,
                                               size_t errlen);

/* Whether TLS holds bytes of pg's that it decrypted and libpq has not read
 * yet: its socket then stays silent, so a caller that reads only when the
 * socket is readable must call PQconsumeInput again first. False without
 * TLS. */
bool pqpool__conn_tls_pending(PGconn *pg);

/* Cheap liveness check of an idle connection: no round trip unless the
 * server sent something. True when it looks usable. */
bool pqpool__conn_alive(PGconn *pg);

#endif
