/* routes.h — the HTTP API (README: "The service"): (method, path) → status, headers,
 * body. */
#ifndef PQPOOL_CLI_ROUTES_H
#define PQPOOL_CLI_ROUTES_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pqpool.h"

/*
 * The last body of GET /api/metrics/database and what it was rendered
 * from. That body depends only on a few figures of the snapshot and on the
 * millisecond it is rendered in; rendering it (jansson) costs several times
 * the rest of the request, so a request whose fresh snapshot gives the same
 * inputs in the same millisecond reuses the bytes, which rendering again
 * would reproduce exactly (measured: twice the requests per second with
 * wrk). One per server, shared by its threads under a lock.
 */
typedef struct route_memo {
	pthread_mutex_t mu;
	struct route_memo_key {
		int total, active, idle, waiting;
		double utilization, avg_response_ms, error_rate;
		int64_t last_activity_ms, started_ms, now_ms;
	} key;
	char *body; /* owned; NULL: nothing remembered */
	size_t len;
} route_memo;

void route_memo_init(route_memo *m);
void route_memo_destroy(route_memo *m);

/* The routes, also the `route` label of the service's own metrics. */
typedef enum route_id {
	ROUTE_HEALTH,     /* GET /api/health/database */
	ROUTE_METRICS,    /* GET /api/metrics/database */
	ROUTE_POOL,       /* GET /api/metrics/pool: counters and distributions */
	ROUTE_PROMETHEUS, /* GET /metrics */
	ROUTE_LIVEZ,      /* GET /livez */
	ROUTE_READYZ,     /* GET /readyz */
	ROUTE_PAGE,       /* GET /: the status page, a static body (page.html) */
	ROUTE_OTHER,      /* any other path: 404 */
	ROUTE_COUNT
} route_id;

/* The route's path, or "other". Static. */
const char *route_name(route_id r);

/* Which route a path names; a query string is ignored. */
route_id route_match(const char *path);

/* True when answering method path waits on the database (a health probe):
 * the HTTP layer hands those to threads of their own, so that its event
 * threads never block. */
bool route_blocking(const char *method, const char *path);

/*
 * What the routes need from the process, behind function pointers so that
 * the unit tests can stand in for the pool and the service. Each is called
 * from the HTTP worker threads concurrently, and must be thread-safe.
 */
typedef struct route_env {
	/* pqpool_check_health_within() on the process's pool, bounded by the
	 * request's deadline (monotonic ns; 0: the pool's own bound) */
	int (*check_health)(void *arg, int64_t deadline_ns, pqpool_health *out);
	/* pqpool_stats_get() on the process's pool */
	int (*stats)(void *arg, pqpool_stats *out);
	/* The service's own metrics in Prometheus text, appended to the
	 * pool's on /metrics. Owned (free()), or NULL when out of memory. */
	char *(*service_metrics)(void *arg);
	/* True once a shutdown has begun: /readyz answers 503. */
	bool (*shutting_down)(void *arg);
	void *arg;
	/* METRICS_TOKEN (borrowed), or NULL/"" when the metrics are open: the
	 * routes of route_protected() then need "Authorization: Bearer" it. */
	const char *metrics_token;
	/* the metrics body remembered between requests; NULL: none */
	route_memo *memo;
} route_env;

#define ROUTE_TYPE_JSON       "application/json"
#define ROUTE_TYPE_PROMETHEUS "text/plain; version=0.0.4; charset=utf-8"
#define ROUTE_TYPE_HTML       "text/html; charset=utf-8"
#define ROUTE_ALLOW           "GET, HEAD"

/* The answer to one request. */
typedef struct route_reply {
	route_id route;
	int status;
	const char *content_type; /* static */
	char *body;               /* never NULL once filled */
	size_t body_len;
	bool body_owned;   /* body is malloc'd (free() it), else static */
	const char *allow; /* value of an Allow header, or NULL; static */
	/* value of a WWW-Authenticate header (401), or NULL; static */
	const char *www_authenticate;
	/* value of a Content-Security-Policy header (the page), or NULL; static */
	const char *csp;
} route_reply;

/* True for the routes METRICS_TOKEN guards: /metrics, /api/metrics/database
 * and /api/metrics/pool. Health, /livez and /readyz stay open for probes, and
 * the page (it holds no figure: it asks the others, with the token). */
bool route_protected(route_id r);

/* One request, as the routes see it. Every pointer is borrowed. */
typedef struct route_request {
	const char *method;
	const char *path;          /* the request target; a query string is ignored */
	const char *authorization; /* the Authorization header, or NULL */
	/* the monotonic bound (ns) of a health check: what is left of
	 * DB_CONNECTION_TIMEOUT for a request that waited in line; 0: none */
	int64_t deadline_ns;
} route_request;

/*
 * Answers one request. HEAD is answered as GET (the HTTP layer leaves out
 * the body). With env->metrics_token set, a protected route asked for with
 * GET or HEAD and without the token gets 401 {"error":"Unauthorized"} and a
 * WWW-Authenticate challenge, before any pool call; unknown paths still get
 * 404 and other methods 405. GET / is the status page: a static body with
 * its Content-Security-Policy, and no call on env. Every JSON body is built
 * with jansson. Always
 * fills *out with a complete reply: when memory runs out, a 500 with a
 * static body.
 */
void route_handle(const route_env *env, const route_request *rq, route_reply *out);

/* The answer of GET /api/health/database for a check that returned rc and
 * filled *h (h may be NULL when rc is a failure). */
void route_health_reply(int rc, const pqpool_health *h, route_reply *out);

/* The /readyz answer for a health check that returned rc with *h (read
 * only when rc is PQPOOL_OK): 503 while shutting down or unhealthy, else
 * 200. */
void route_ready_reply(const route_env *env, int rc, const pqpool_health *h,
                       route_reply *out);

/* A JSON error reply {"error": message} with the given status, for answers
 * the HTTP layer gives itself (413). */
void route_error(int status, const char *message, route_reply *out);

/* Frees an owned body. r may be NULL. */
void route_reply_free(route_reply *r);

/* The most of a request path that is repeated in a 404 body or a log line. */
#define ROUTE_PATH_SHOWN_MAX 200

/*
 * Copies at most max bytes of s (stopping at a '?', when query is false)
 * into out (outlen >= max + PQC_SHOWN_EXTRA), as valid UTF-8: an invalid
 * byte becomes '?', and a cut adds "...". Control characters stay: the JSON
 * encoders escape them, and no byte left can make them refuse the string.
 */
void route_shown(const char *s, size_t max, bool query, char *out, size_t outlen);

#endif
