/* settings.c — HOST, PORT, HTTP_* and SHUTDOWN_TIMEOUT from the environment,
 * validated. */
#include "settings.h"

#include "parse.h"
#include "utf8.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How much of a bad value an error message repeats. */
#define SHOW_MAX 40

/* A bad value for an error message: capped, invalid bytes and control
 * characters replaced, so that a hostile variable cannot forge log lines. */
static const char *shown(const char *v, char out[SHOW_MAX + PQC_SHOWN_EXTRA])
{
	return pqc_shown(v, strlen(v), SHOW_MAX, out, SHOW_MAX + PQC_SHOWN_EXTRA);
}

static const char *get(pqpool_getenv_fn lookup, void *arg, const char *name)
{
	const char *v = lookup ? lookup(arg, name) : getenv(name);

	return v && *v ? v : NULL; /* empty counts as unset, as in the library */
}

static int int_setting(pqpool_getenv_fn lookup, void *arg, const char *name, int def,
                       int min, int max, int *out, char *err, size_t errlen)
{
	const char *v = get(lookup, arg, name);
	char show[SHOW_MAX + 4];

	*out = def;
	if (!v || pqc_parse_int(v, min, max, out))
		return 0;
	snprintf(err, errlen, "%s=\"%s\": expected an integer from %d to %d", name,
	         shown(v, show), min, max);
	return -1;
}

static int resolve(serve_settings *s, char *err, size_t errlen)
{
	struct addrinfo hints = {0}, *res = NULL;
	char port[8], show[SHOW_MAX + 4];
	int rc;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
	snprintf(port, sizeof(port), "%d", s->port);
	rc = getaddrinfo(s->host, port, &hints, &res);
	if (rc != 0 || !res || res->ai_addrlen > sizeof(s->addr)) {
		snprintf(err, errlen,
		         "HOST=\"%s\": expected an IP address or a host name that "
		         "resolves (%s)",
		         shown(s->host, show), rc != 0 ? gai_strerror(rc) : "no address");
		if (res)
			freeaddrinfo(res);
		return -1;
	}
	/* The first answer, as a client's connect() would try first: for a name
	 * with both families that is the one the resolver prefers. */
	memcpy(&s->addr, res->ai_addr, res->ai_addrlen);
	s->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int serve_settings_load(serve_settings *s, pqpool_getenv_fn lookup, void *arg, char *err,
                        size_t errlen)
{
	const char *host = get(lookup, arg, "HOST"), *token;
	char show[SHOW_MAX + 4];
	/* One database thread: its event loop keeps every check in flight
	 * at once and pipelines them (probes.c). The event threads never wait
	 * on the database, so one per core is enough, and measured faster than
	 * more: on 2 cores, /api/metrics/database served 101-125k req/s on 2
	 * event threads against 85-100k on 20 (wrk -t2 -c64). */
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int def_threads = 1;
	int def_http = ncpu < 2                   ? 2
	               : ncpu > SERVE_MAX_THREADS ? SERVE_MAX_THREADS
	                                          : (int)ncpu;

	memset(s, 0, sizeof(*s));
	if (!host)
		host = SERVE_DEFAULT_HOST;
	if (strlen(host) >= sizeof(s->host)) {
		snprintf(err, errlen,
		         "HOST=\"%s\": expected a host name of at most %zu bytes",
		         shown(host, show), sizeof(s->host) - 1);
		return -1;
	}
	strcpy(s->host, host);

	if (int_setting(lookup, arg, "PORT", SERVE_DEFAULT_PORT, 0, 65535, &s->port, err,
	                errlen) != 0 ||
	    int_setting(lookup, arg, "HTTP_THREADS", def_http, 1, SERVE_MAX_THREADS,
	                &s->threads, err, errlen) != 0 ||
	    int_setting(lookup, arg, "HTTP_DB_THREADS", def_threads, 0, SERVE_MAX_THREADS,
	                &s->db_threads, err, errlen) != 0 ||
	    int_setting(lookup, arg, "HTTP_MAX_CONNECTIONS",
	                SERVE_DEFAULT_MAX_CONNECTIONS, 1, 1000000, &s->max_connections,
	                err, errlen) != 0 ||
	    int_setting(lookup, arg, "HTTP_IDLE_TIMEOUT", SERVE_DEFAULT_IDLE_TIMEOUT_S, 0,
	                86400, &s->idle_timeout_s, err, errlen) != 0 ||
	    /* below 4 KiB MHD has no room for an ordinary request's headers */
	    int_setting(lookup, arg, "HTTP_MAX_HEADER_BYTES",
	                SERVE_DEFAULT_MAX_HEADER_BYTES, 4096, 16777216,
	                &s->max_header_bytes, err, errlen) != 0 ||
	    int_setting(lookup, arg, "SHUTDOWN_TIMEOUT", SERVE_DEFAULT_SHUTDOWN_MS, 0,
	                3600000, &s->shutdown_timeout_ms, err, errlen) != 0)
		return -1;
	token = get(lookup, arg, "METRICS_TOKEN");
	if (token) {
		if (auth_token_validate(token, err, errlen) != 0)
			return -1;
		strcpy(s->metrics_token, token); /* AUTH_TOKEN_MAX bytes at most */
	}
	return resolve(s, err, errlen);
}

void serve_format_url(const struct sockaddr *addr, int port, char *out, size_t outlen)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (addr->sa_family == AF_INET6) {
		inet_ntop(AF_INET6,
		          &((const struct sockaddr_in6 *)(const void *)addr)->sin6_addr,
		          ip, sizeof(ip));
		snprintf(out, outlen, "http://[%s]:%d", ip, port);
	} else {
		inet_ntop(AF_INET,
		          &((const struct sockaddr_in *)(const void *)addr)->sin_addr, ip,
		          sizeof(ip));
		snprintf(out, outlen, "http://%s:%d", ip, port);
	}
}
