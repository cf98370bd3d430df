/* routes.c — routing and the JSON, Prometheus and error bodies of each route. */
#include "routes.h"

#include "auth.h"
#include "clock.h"
#include "page.h"
#include "utf8.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        [ROUTE_PAGE] = "/",
        [ROUTE_OTHER] = "other",
};

const char *route_name(route_id r)
{
	return r >= 0 && r < ROUTE_COUNT ? route_paths[r] : "other";
}

route_id route_match(const char *path)
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

bool route_blocking(const char *method, const char *path)
{
	route_id r = route_match(path);

	return (r == ROUTE_HEALTH || r == ROUTE_READYZ) && method_allowed(method);
}

void route_shown(const char *s, size_t max, bool query, char *out, size_t outlen)
{
	pqc_shown_json(s, query ? strlen(s) : strcspn(s, "?"), max, out, outlen);
}

static void reply_static(route_reply *out, int status, const char *body)
{
	out->status = status;
	out->content_type = ROUTE_TYPE_JSON;
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
	reply_text(out, status, ROUTE_TYPE_JSON, body);
}

static void health(const route_env *env, int64_t deadline_ns, route_reply *out)
{
	pqpool_health h;
	int rc = env->check_health(env->arg, deadline_ns, &h);

	route_health_reply(rc, &h, out);
}

void route_health_reply(int rc, const pqpool_health *h, route_reply *out)
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
	reply_text(out, h->status == PQPOOL_UNHEALTHY ? 503 : 200, ROUTE_TYPE_JSON, body);
}

static void metrics_failed(route_reply *out)
{
	char ts[PQC_ISO8601_LEN];

	pqc_iso8601(pqc_wall_ms(), ts);
	reply_json(out, 500,
	           json_pack("{s:s, s:s}", "error", METRICS_FAILED, "timestamp", ts));
}

void route_memo_init(route_memo *m)
{
	memset(m, 0, sizeof *m);
	pthread_mutex_init(&m->mu, NULL);
}

void route_memo_destroy(route_memo *m)
{
	free(m->body);
	m->body = NULL;
	pthread_mutex_destroy(&m->mu);
}

static char *copy_of(const char *s, size_t len)
{
	char *c = malloc(len + 1);
	if (c)
		memcpy(c, s, len + 1);
	return c;
}

/* The metrics body of st, from the memo when its inputs are the same. */
static char *render_metrics(route_memo *m, const pqpool_stats *st)
{
	struct route_memo_key k;
	char *body = NULL;

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
	k.now_ms = pqc_wall_ms();
	if (!m)
		return pqpool_render_metrics_json(st, k.now_ms);
	pthread_mutex_lock(&m->mu);
	if (m->body && memcmp(&m->key, &k, sizeof k) == 0)
		body = copy_of(m->body, m->len);
	pthread_mutex_unlock(&m->mu);
	if (body)
		return body;
	body = pqpool_render_metrics_json(st, k.now_ms);
	if (body) {
		size_t len = strlen(body);
		char *keep = copy_of(body, len);
		pthread_mutex_lock(&m->mu);
		if (keep) {
			free(m->body);
			m->body = keep;
			m->len = len;
			m->key = k;
		}
		pthread_mutex_unlock(&m->mu);
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
	    !(body = detail ? pqpool_render_pool_json(&st, 0)
	                    : render_metrics(env->memo, &st))) {
		metrics_failed(out);
		return;
	}
	reply_text(out, 200, ROUTE_TYPE_JSON, body);
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
	reply_text(out, 200, ROUTE_TYPE_PROMETHEUS, body);
}

static json_t *not_ready(const char *why)
{
	return json_pack("{s:s, s:s}", "status", "not ready", "error", why);
}

void route_ready_reply(const route_env *env, int rc, const pqpool_health *h,
                       route_reply *out)
{
	if (env->shutting_down(env->arg)) {
		reply_json(out, 503, not_ready("shutting down"));
		return;
	}
	if (rc != PQPOOL_OK) {
		reply_json(out, 503, not_ready(HEALTH_FAILED));
		return;
	}
	if (h->status == PQPOOL_UNHEALTHY) {
		char why[sizeof(h->error) + 4];

		/* the library's messages name what failed and never a password */
		route_shown(h->error[0] ? h->error : "database unhealthy",
		            sizeof(h->error), true, why, sizeof(why));
		reply_json(out, 503, not_ready(why));
		return;
	}
	reply_json(out, 200, json_pack("{s:s}", "status", "ready"));
}

static void readyz(const route_env *env, int64_t deadline_ns, route_reply *out)
{
	pqpool_health h;
	int rc;

	if (env->shutting_down(env->arg)) {
		reply_json(out, 503, not_ready("shutting down"));
		return;
	}
	rc = env->check_health(env->arg, deadline_ns, &h);
	route_ready_reply(env, rc, &h, out);
}

/* The same bytes for every view: the figures come from the page's own
 * requests to the routes above, so a view costs the pool nothing. */
static void page(route_reply *out)
{
	out->status = 200;
	out->content_type = ROUTE_TYPE_HTML;
	out->body = (char *)page_html;
	out->body_len = page_html_len;
	out->body_owned = false;
	out->csp = page_csp;
}

static void not_found(const char *path, route_reply *out)
{
	char shown[ROUTE_PATH_SHOWN_MAX + 4];

	route_shown(path, ROUTE_PATH_SHOWN_MAX, false, shown, sizeof(shown));
	reply_json(out, 404,
	           json_pack("{s:s, s:s}", "error", "Not found", "path", shown));
}

bool route_protected(route_id r)
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

	if (!env->metrics_token || !env->metrics_token[0] || !route_protected(out->route))
		return true;
	a = auth_check_bearer(authorization, env->metrics_token);
	if (a == AUTH_OK)
		return true;
	out->www_authenticate = a == AUTH_MISSING ? CHALLENGE : CHALLENGE_INVALID;
	reply_json(out, 401, json_pack("{s:s}", "error", "Unauthorized"));
	return false;
}

void route_handle(const route_env *env, const route_request *rq, route_reply *out)
{
	memset(out, 0, sizeof(*out));
	out->route = route_match(rq->path);
	if (out->route == ROUTE_OTHER) {
		not_found(rq->path, out);
		return;
	}
	if (!method_allowed(rq->method)) {
		out->allow = ROUTE_ALLOW;
		reply_json(out, 405, json_pack("{s:s}", "error", "Method not allowed"));
		return;
	}
	if (!authorized(env, rq->authorization, out))
		return;
	switch (out->route) {
	case ROUTE_HEALTH:
		health(env, rq->deadline_ns, out);
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
		readyz(env, rq->deadline_ns, out);
		break;
	case ROUTE_PAGE:
		page(out);
		break;
	case ROUTE_OTHER:
	case ROUTE_COUNT:
		break;
	}
}

void route_error(int status, const char *message, route_reply *out)
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
