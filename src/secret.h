/* secret.h — no password is ever shown: scrubbing, refusing ambiguous URIs,
 * the masked URL. */
#ifndef PQPOOL_SECRET_H
#define PQPOOL_SECRET_H

#include <stddef.h>

#include "sbuf.h"

/* Replaces each occurrence of secret in msg, in place (so it needs no
 * memory): by "****" when secret has 4 bytes or more, else by as many '*'
 * as it has. secret NULL or "": nothing to do. */
void pqpool__scrub(char *msg, const char *secret);

/* Scrubs from msg whatever in conninfo may be a password, for a conninfo
 * that libpq refused (its messages can echo any fragment of the input):
 * URI userinfo however it may be read, password= and sslpassword= values,
 * quoted, percent-encoded or raw. Without memory, or with too many
 * candidates, the whole message is starred. */
void pqpool__scrub_unparsed(char *msg, const char *conninfo);

/* Why libpq would read a URI's userinfo differently from what its author
 * meant (an unencoded '@' or '/' in the password moves part of it into the
 * host, port or database name, where masking would show it), or NULL when
 * conninfo is not such a URI. Static text. */
const char *pqpool__ambiguous_uri(const char *conninfo);

/* A connection option, borrowed. */
typedef struct pqpool__kv {
	const char *k, *v;
} pqpool__kv;

/* The value of option k among the n of e, or NULL. */
const char *pqpool__kv_get(const pqpool__kv *e, size_t n, const char *k);

/* Appends postgresql://user:****@host:port,.../dbname?other=options for
 * the n options of e: never the password (nor sslpassword), each part
 * percent-encoded so that libpq's URI parser reads it back. */
void pqpool__render_masked(pqc_sbuf *b, const pqpool__kv *e, size_t n);

#endif
