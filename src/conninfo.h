/* conninfo.h — libpq connection strings: parsed and checked by libpq's own
 * parser, shown masked, and turned once into the parameters every connect
 * uses. */
#ifndef PQPOOL_CONNINFO_H
#define PQPOOL_CONNINFO_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "pqpool.h"

/* The specification's default target, as key=value so that no character
 * needs URL escaping. */
#define PQPOOL__DEFAULT_CONNINFO                                                         \
	"host=localhost port=5432 dbname=hyperpage user=hyperpage password=password"

/* How much of a bad value an error message shows: a hostile or mistaken
 * value must not flood a log line. */
#define PQPOOL__SHOW_MAX 64

/* v for an error message: at most PQPOOL__SHOW_MAX bytes (see pqc_shown);
 * out has room for PQPOOL__SHOW_MAX + PQC_SHOWN_EXTRA. Returns out. */
const char *pqpool__shown(const char *v, char *out, size_t outlen);

#define PQPOOL__SSL_MODES_TEXT "disable, allow, prefer, require, verify-ca or verify-full"

/* One of libpq's six sslmode values. */
bool pqpool__valid_ssl_mode(const char *s);

/*
 * Parses conninfo with libpq and, with check_values, checks the values libpq
 * leaves for connect time (port, sslmode). label names the source in
 * messages ("DATABASE_URL", "conninfo"). Returns PQPOOL_OK with *out owned
 * (PQconninfoFree), or a failure with a password-free message in msg.
 */
int pqpool__parse_conninfo(const char *conninfo, const char *label, bool check_values,
                           PQconninfoOption **out, char *msg, size_t msglen);

/* The value of keyword kw in parsed options, or NULL when unset or empty. */
const char *pqpool__opt_get(const PQconninfoOption *o, const char *kw);

/* The resolved connection parameters of a config: parallel NULL-terminated
 * keyword/value arrays for PQconnectStartParams (expand_dbname = 0), built
 * from conninfo plus the SSL overrides, statement_timeout (as
 * "options=-c statement_timeout=N") and a fallback application_name. All
 * in one block owned by the struct. */
typedef struct pqpool__params {
	const char **keywords;
	const char **values;
	const char *masked; /* the URL with the password masked, for messages */
	const char *secret; /* the password, for scrubbing; NULL when none */
	int nhosts;         /* hosts named (host or hostaddr, comma-separated) */
	/* Writers must reach a primary: target_session_attrs is read-write or
	 * primary, which is also the default (added) when several hosts are
	 * named. Connections that stop taking writes are then retired (role.h). */
	bool need_primary;
	void *storage_;
} pqpool__params;

/* PQPOOL_OK, or a failure with the reason in err and pqpool_errmsg(). */
int pqpool__params_build(const pqpool_config *cfg, pqpool__params *out, char *err,
                         size_t errlen);
void pqpool__params_free(pqpool__params *p);

/* The parameters of host i (0-based) of all's list: its host, hostaddr and
 * port alone, no target_session_attrs (the pool tracks roles itself). */
int pqpool__params_for_host(const pqpool__params *all, int i, pqpool__params *out);

#endif
