/* routes.c — routing and the JSON, Prometheus and error bodies of each route. */
#include "routes.h"

#include "auth.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The spec's bodies for a failed health check and failed metrics. */
#define HEALTH_FAILED  "Database health check failed"
#define METRICS_FAILED "Failed to collect database metrics"

/* The answer when not even an error body can be built. */
static const char oom_body[] = "{\"error\":\"Out of memory\"}";

static const char *const route_paths[ROUTE_COUNT] = {
        [ROUTE_HEALTH] = "/api/health/database",
        [ROUTE_METRICS] = "/api/metrics/database",
        [ROUTE_POOL] = "/api/metrics/pool",
        [ROUTE_PROMETHEUS] = "/metrics",
        [ROUTE_LIVEZ] = "/livez",
        [ROUTE_READYZ] = "/readyz",
        [ROUTE_OTHER] = "other",
};

const char *route_name(route_id r)
{
	return r >= 0 && r < ROUTE_COUNT ? route_paths[r] : "other";
}

route_id routes_match(const char *path)
{
	size_t len = strcspn(path, "?");

	for (int r = 0; r < ROUTE_OTHER; r++) {
		if (strlen(route_paths[r]) == len &&
		    memcmp(route_paths[r], path, len) == 0)
			return (route_id)r;
	}
	return ROUTE_OTHER;
}

static bool method_allowed(const char *method)
{
	return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

bool routes_blocking(const char *method, const char *path)
{
	route_id r = routes_match(path);

	return (r == ROUTE_HEALTH || r == ROUTE_READYZ) && method_allowed(method);
}

/* Length of the valid UTF-8 sequence at p (jansson's rules: no overlong
 * forms, surrogates or code points past U+10FFFF), or 0 when invalid. p is
 * NUL-terminated and a NUL is never a continuation byte, so each byte is
 * read only after the previous one was found to be one. */
static size_t utf8_len(const unsigned char *p)
{
	unsigned char lo = 0x80, hi = 0xBF;
	size_t n;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xC2 && p[0] <= 0xDF) {
		n = 2;
	} else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
		n = 3;
		if (p[0] == 0xE0)
			lo = 0xA0;
		else if (p[0] == 0xED)
			hi = 0x9F;
	} else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
		n = 4;
		if (p[0] == 0xF0)
			lo = 0x90;
		else if (p[0] == 0xF4)
			hi = 0x8F;
	} else {
		return 0;
	}
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
	}
	return n;
}

void routes_shown(const char *s, size_t max, bool query, char *out, size_t outlen)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0;

	if (outlen < 4) {
		if (outlen > 0)
			out[0] = '\0';
		return;
	}
	if (max > outlen - 4)
		max = outlen - 4;
	while (*p && (query || *p != '?')) {
		size_t n = utf8_len(p);

		if (o + (n ? n : 1) > max) {
			strcpy(out + o, "...");
			return;
		}
		if (n) {
			memcpy(out + o, p, n);
			o += n;
			p += n;
		} else {
			out[o++] = '?';
			p++;
		}
	}
	out[o] = '\0';
}

static void reply_static(route_reply *out, int status, const char *body)
{
	out->status = status;
	out->content_type = ROUTES_JSON;
	out->body = (char *)body;
	out->body_len = strlen(body);
	out->body_owned = false;
}

/* Takes ownership of body (NULL: out of memory). */
static void reply_text(route_reply *out, int status, const char *type, char *body)
{
	if (!body) {
		reply_static(out, 500, oom_body);
		return;
	}
	out->status = status;
	out->content_type = type;
	out->body = body;
	out->body_len = strlen(body);
	out->body_owned = true;
}

/* Takes ownership of j (NULL: out of memory). */
static void reply_json(route_reply *out, int status, json_t *j)
{
	char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	reply_text(out, status, ROUTES_JSON, body);
}

/* "2026-11-26T14:00:00.000Z", as the library's bodies print times. */
static void iso_now(char out[32])
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%03dZ", (int)(ts.tv_nsec / 1000000));
}

static void health(const route_env *env, route_reply *out)
{
	pqpool_health h;
	int rc = env->check_health(env->arg, &h);

	routes_health_reply(rc, &h, out);
}

void routes_health_reply(int rc, const pqpool_health *h, route_reply *out)
{
	char *body = NULL;

	memset(out, 0, sizeof(*out));
	out->route = ROUTE_HEALTH;
	if (rc == PQPOOL_OK && h)
		body = pqpool_render_health_json(h);
	if (!body) {
		/* the spec's catch branch: the check itself failed */
		reply_json(out, 503,
		           json_pack("{s:s, s:{s:s}}", "status", "unhealthy", "data",
		                     "error", HEALTH_FAILED));
		return;
	}
	reply_text(out, h->status == PQPOOL_UNHEALTHY ? 503 : 200, ROUTES_JSON, body);
}

static void metrics_failed(route_reply *out)
{
	char ts[32];

	iso_now(ts);
	reply_json(out, 500,
	           json_pack("{s:s, s:s}", "error", METRICS_FAILED, "timestamp", ts));
}

/*
 * The spec's metrics body depends on these figures of a snapshot and on the
 * millisecond it is rendered in, nothing else. Rendering costs a few
 * microseconds (jansson's serializer), several times what the rest of the
 * request costs; so each HTTP thread remembers the last body it rendered
 * and the inputs it came from, and a request whose fresh snapshot gives the
 * same inputs in the same millisecond reuses those bytes, which rendering
 * again would reproduce exactly.
 */
typedef struct metrics_key {
	int total, active, idle, waiting;
	double utilization, avg_response_ms, error_rate;
	int64_t last_activity_ms, started_ms, now_ms;
} metrics_key;

typedef struct metrics_memo {
	metrics_key key;
	char *body;
	size_t len;
} metrics_memo;

static pthread_key_t memo_key;
static pthread_once_t memo_once = PTHREAD_ONCE_INIT;
static bool memo_ok;

static void memo_free(void *p)
{
	metrics_memo *m = p;
	if (m)
		free(m->body);
	free(m);
}

static void memo_init(void)
{
	memo_ok = pthread_key_create(&memo_key, memo_free) == 0;
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *render_metrics(const pqpool_stats *st)
{
	metrics_key k;
	metrics_memo *m = NULL;
	char *body;

	memset(&k, 0, sizeof k); /* padding too: keys are compared whole */
	k.total = st->total;
	k.active = st->active;
	k.idle = st->idle;
	k.waiting = st->waiting;
	k.utilization = st->utilization;
	k.avg_response_ms = st->avg_response_ms;
	k.error_rate = st->error_rate;
	k.last_activity_ms = st->last_activity_ms;
	k.started_ms = st->started_ms;
	k.now_ms = wall_ms();
	pthread_once(&memo_once, memo_init);
	if (memo_ok && (m = pthread_getspecific(memo_key)) != NULL && m->body &&
	    memcmp(&m->key, &k, sizeof k) == 0 && (body = malloc(m->len + 1)) != NULL) {
		memcpy(body, m->body, m->len + 1);
		return body;
	}
	body = pqpool_render_metrics_json(st, k.now_ms);
	if (!body || !memo_ok)
		return body;
	if (!m && (m = calloc(1, sizeof *m)) != NULL &&
	    pthread_setspecific(memo_key, m) != 0) {
		free(m);
		m = NULL;
	}
	if (m) {
		size_t len = strlen(body);
		char *copy = malloc(len + 1);
		if (copy) {
			memcpy(copy, body, len + 1);
			free(m->body);
			m->body = copy;
			m->len = len;
			m->key = k;
		}
	}
	return body;
}

static void metrics(const route_env *env, route_reply *out, bool detail)
{
	pqpool_stats st;
	char *body = NULL;

	/* a fresh snapshot on every call: never the stale zeros of a collector
	 * created on first use, as in the spec */
	if (env->stats(env->arg, &st) != PQPOOL_OK ||
	    !(body = detail ? pqpool_render_pool_json(&st, 0) : render_metrics(&st))) {
		metrics_failed(out);
		return;
	}
	reply_text(out, 200, ROUTES_JSON, body);
}

static void prometheus(const route_env *env, route_reply *out)
{
	pqpool_stats st;
	char *pool = NULL, *service = NULL, *body = NULL;
	size_t a, b;

	if (env->stats(env->arg, &st) == PQPOOL_OK)
		pool = pqpool_render_prometheus(&st);
	if (pool)
		service = env->service_metrics(env->arg);
	if (pool && service) {
		a = strlen(pool);
		b = strlen(service);
		body = malloc(a + b + 1);
		if (body) {
			memcpy(body, pool, a);
			memcpy(body + a, service, b + 1);
		}
	}
	free(pool);
	free(service);
	if (!body) {
		metrics_failed(out);
		return;
	}
	reply_text(out, 200, ROUTES_PROMETHEUS, body);
}

static json_t *not_ready(const char *why)
{
	return json_pack("{s:s, s:s}", "status", "not ready", "error", why);
}

static void readyz(const route_env *env, route_reply *out)
{
	pqpool_health h;

	if (env->shutting_down(env->arg)) {
		reply_json(out, 503, not_ready("shutting down"));
		return;
	}
	if (env->check_health(env->arg, &h) != PQPOOL_OK) {
		reply_json(out, 503, not_ready(HEALTH_FAILED));
		return;
	}
	if (h.status == PQPOOL_UNHEALTHY) {
		char why[sizeof(h.error) + 4];

		/* the library's messages name what failed and never a password */
		routes_shown(h.error[0] ? h.error : "database unhealthy", sizeof(h.error),
		             true, why, sizeof(why));
		reply_json(out, 503, not_ready(why));
		return;
	}
	reply_json(out, 200, json_pack("{s:s}", "status", "ready"));
}

static void not_found(const char *path, route_reply *out)
{
	char shown[ROUTES_PATH_SHOWN_MAX + 4];

	routes_shown(path, ROUTES_PATH_SHOWN_MAX, false, shown, sizeof(shown));
	reply_json(out, 404,
	           json_pack("{s:s, s:s}", "error", "Not found", "path", shown));
}

bool routes_protected(route_id r)
{
	return r == ROUTE_METRICS || r == ROUTE_POOL || r == ROUTE_PROMETHEUS;
}

/* RFC 6750 §3: no error code when no credentials came (the client may not
 * know it needs them), invalid_token when the wrong ones did. */
#define CHALLENGE         "Bearer realm=\"pqpool\""
#define CHALLENGE_INVALID "Bearer realm=\"pqpool\", error=\"invalid_token\""

static bool authorized(const route_env *env, const char *authorization, route_reply *out)
{
	auth_result a;

	if (!env->metrics_token || !env->metrics_token[0] ||
	    !routes_protected(out->route))
		return true;
	a = auth_check_bearer(authorization, env->metrics_token);
	if (a == AUTH_OK)
		return true;
	out->www_authenticate = a == AUTH_MISSING ? CHALLENGE : CHALLENGE_INVALID;
	reply_json(out, 401, json_pack("{s:s}", "error", "Unauthorized"));
	return false;
}

void routes_handle(const route_env *env, const char *method, const char *path,
                   route_reply *out)
{
	routes_handle_auth(env, method, path, NULL, out);
}

void routes_handle_auth(const route_env *env, const char *method, const char *path,
                        const char *authorization, route_reply *out)
{
	memset(out, 0, sizeof(*out));
	out->route = routes_match(path);
	if (out->route == ROUTE_OTHER) {
		not_found(path, out);
		return;
	}
	if (!method_allowed(method)) {
		out->allow = ROUTES_ALLOW;
		reply_json(out, 405, json_pack("{s:s}", "error", "Method not allowed"));
		return;
	}
	if (!authorized(env, authorization, out))
		return;
	switch (out->route) {
	case ROUTE_HEALTH:
		health(env, out);
		break;
	case ROUTE_METRICS:
		metrics(env, out, false);
		break;
	case ROUTE_POOL:
		metrics(env, out, true);
		break;
	case ROUTE_PROMETHEUS:
		prometheus(env, out);
		break;
	case ROUTE_LIVEZ: /* the process answers: no database call */
		reply_json(out, 200, json_pack("{s:s}", "status", "ok"));
		break;
	case ROUTE_READYZ:
		readyz(env, out);
		break;
	case ROUTE_OTHER:
	case ROUTE_COUNT:
		break;
	}
}

void routes_error(int status, const char *message, route_reply *out)
{
	memset(out, 0, sizeof(*out));
	out->route = ROUTE_OTHER;
	reply_json(out, status, json_pack("{s:s}", "error", message));
}

void route_reply_free(route_reply *r)
{
	if (r && r->body_owned)
		free(r->body);
	if (r) {
		r->body = NULL;
		r->body_owned = false;
	}
}
