/* setup.h — what every command that reads the configuration does first. */
#ifndef PQPOOL_CLI_SETUP_H
#define PQPOOL_CLI_SETUP_H

#include "dotenv.h"
#include "pqpool.h"

/* Read from the working directory, as in the specification. */
#define SETUP_ENV_FILE ".env.local"

typedef struct setup_ctx {
	dotenv_file *env;  /* ./.env.local; an empty table when absent */
	pqpool_config cfg; /* validated; log_fn writes through log.c */
} setup_ctx;

/*
 * Loads ./.env.local, configures logging from LOG_LEVEL and LOG_FORMAT,
 * reports the file's skipped lines as warnings and builds the validated pool
 * configuration, the real environment winning over the file throughout.
 * Returns 0, or the exit status (CLI_EXIT_USAGE) after printing
 * "pqpool: <why>" on stderr; in both cases call setup_free() afterwards.
 */
int setup_load(setup_ctx *s);

/* Frees what setup_load() allocated. */
void setup_free(setup_ctx *s);

/* Prints "pqpool: <msg>" on stderr, adding "(set in .env.local)" when the
 * variable msg starts with came from that file. */
void setup_report_error(const dotenv_file *env, const char *msg);

/*
 * Logs a warning when the connection would use TLS without checking the
 * server's identity (sslmode allow, prefer or require, wherever it came
 * from: SSL_MODE, NODE_ENV=production or the URL's own sslmode), naming
 * verify-full. Silent for disable (no TLS to misjudge), verify-ca and
 * verify-full. For the commands that connect (check, serve).
 */
void setup_warn_tls(const setup_ctx *s);

/* The connection target of conninfo (NULL = the default) as a URL with the
 * password masked, or "(invalid)". Owned (free() it); NULL when out of
 * memory. The only way the CLI shows a connection string. */
char *setup_masked_url(const char *conninfo);

#endif
