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

/* Cheap liveness check of an idle connection: no round trip unless the
 * server sent something. True when it looks usable. */
bool pqpool__conn_alive(PGconn *pg);

#endif
