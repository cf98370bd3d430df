/* http.h — the HTTP server of `pqpool serve`: libmicrohttpd, limits, access log, drain.
 */
#ifndef PQPOOL_CLI_HTTP_H
#define PQPOOL_CLI_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "pqpool.h"

typedef struct http_server http_server;

typedef struct http_options {
	const struct sockaddr *addr; /* where to listen (port 0: any free one) */
	socklen_t addrlen;
	int threads;          /* event threads, each with its own epoll set */
	int db_threads;       /* threads whose event loops run the requests that
	                       * check the database (probes.c); 0: those checks
	                       * block on the event threads */
	int wait_limit_ms;    /* DB_CONNECTION_TIMEOUT: a check ends this long after
	                       * its request arrived, whatever it waited for */
	int max_connections;  /* open connections at most; half of it per IP */
	int idle_timeout_s;   /* a silent connection is closed after this; 0 never */
	int max_header_bytes; /* memory per connection: request line + headers */
	/* METRICS_TOKEN, validated; NULL = open metrics. Borrowed: must
	 * outlive http_stop() */
	const char *metrics_token;
} http_options;

/*
 * Binds and listens on o->addr exactly, then starts the worker threads,
 * which answer the routes of routes.h with the pool's health and metrics.
 * Signals the process wants to handle must be blocked before this call: the
 * workers inherit the mask. pool is borrowed and must outlive http_stop().
 * Returns 0 with *out owned (http_stop() it), or -1 with the reason in err.
 */
int http_start(const http_options *o, pqpool *pool, http_server **out, char *err,
               size_t errlen);

/* The port listened on (the kernel's choice when asked for 0). */
int http_port(const http_server *s);

/* The event threads actually started (at most max_connections), and the
 * threads that answer requests waiting on the database. */
int http_threads(const http_server *s);
int http_db_threads(const http_server *s);

/*
 * Begins the shutdown: no new connection is accepted (new ones are refused
 * at once rather than left in the backlog), /readyz answers 503, and each
 * further answer closes its connection, so keep-alive clients go elsewhere.
 * Requests in flight go on. Thread-safe; call once.
 */
void http_quiesce(http_server *s);

/* Requests received and not yet completed. */
int http_in_flight(http_server *s);

/* Requests completed since the start (answered, or ended by the client). */
uint64_t http_completed(http_server *s);

/*
 * Stops the workers: connections still open are closed, after waiting for
 * any request handler still running (a health probe, bounded by
 * DB_CONNECTION_TIMEOUT). No pool call is made after it returns. s may be
 * NULL.
 */
void http_stop(http_server *s);

#endif
