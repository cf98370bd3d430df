/* settings.h — the service's own settings (HOST, PORT, HTTP_*, SHUTDOWN_TIMEOUT).
 */
#ifndef PQPOOL_CLI_SERVE_SETTINGS_H
#define PQPOOL_CLI_SERVE_SETTINGS_H

#include <stddef.h>
#include <sys/socket.h>

#include "auth.h"
#include "pqpool.h"

/* Defaults and bounds, as README's "service" table shows them. */
#define SERVE_DEFAULT_HOST             "127.0.0.1"
#define SERVE_DEFAULT_PORT             3000
#define SERVE_MAX_THREADS              256
#define SERVE_DEFAULT_MAX_CONNECTIONS  1024
#define SERVE_DEFAULT_IDLE_TIMEOUT_S   30
#define SERVE_DEFAULT_MAX_HEADER_BYTES 16384
#define SERVE_DEFAULT_SHUTDOWN_MS      10000

typedef struct serve_settings {
	char host[256]; /* HOST as given, or the default */
	int port;       /* PORT; 0 = any free port */
	int threads;    /* HTTP_THREADS: event threads; default the CPUs (at least 2),
	                 * 1..256 */
	int db_threads; /* HTTP_DB_THREADS: threads whose event loops check the
	                 * database; default 1, 0..256; 0 = the checks block on the
	                 * event threads */
	int max_connections;     /* HTTP_MAX_CONNECTIONS */
	int idle_timeout_s;      /* HTTP_IDLE_TIMEOUT, seconds; 0 = never */
	int max_header_bytes;    /* HTTP_MAX_HEADER_BYTES: per-connection memory */
	int shutdown_timeout_ms; /* SHUTDOWN_TIMEOUT: drain of requests in flight */
	/* METRICS_TOKEN, validated (auth.h); "" = the metrics routes are open.
	 * A secret: never logged or shown. */
	char metrics_token[AUTH_TOKEN_MAX + 1];

	/* HOST:PORT resolved (the first address getaddrinfo gives) */
	struct sockaddr_storage addr;
	socklen_t addrlen;
} serve_settings;

/*
 * Reads and validates the settings through lookup (dotenv_lookup with the
 * .env.local table, or NULL for getenv), as the library does its own: an
 * empty value is the default, integers are plain decimal in range. HOST must resolve
 * (numeric service, passive), which may consult DNS for a name.
 * Returns 0, or -1 with `NAME="value": expected ...` in err (for
 * METRICS_TOKEN, the rule it breaks, without the value).
 */
int serve_settings_load(serve_settings *s, pqpool_getenv_fn lookup, void *arg, char *err,
                        size_t errlen);

/* "http://127.0.0.1:3000" or "http://[::1]:3000" for addr with port. */
void serve_format_url(const struct sockaddr *addr, int port, char *out, size_t outlen);

#endif
