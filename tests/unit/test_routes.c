/* test_routes.c — the service's routing, bodies and metrics text, without HTTP or a
 * database. */
#include "testenv.h"

#include <jansson.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- fault injection ----
 * routes.c is compiled into this test with its allocator calls redirected,
 * and jansson is given the same allocator, so that each allocation a route
 * makes can be failed in turn. */
static long fi_fail_at = -1; /* index of the allocation that fails; -1 none */
static long fi_count;        /* allocations attempted since the last reset */

static void *fi_malloc(size_t n)
{
	if (fi_count++ == fi_fail_at)
		return NULL;
	return malloc(n);
}

static void fi_free(void *p)
{
	free(p);
}

#define malloc fi_malloc
#define free   fi_free
#include "../../cmd/pqpool/serve/routes.c"
#undef malloc
#undef free

#include "../../cmd/pqpool/serve/auth.c"
#include "../../cmd/pqpool/serve/http_metrics.c"

/* ---- a stand-in for the pool and the service ---- */

typedef struct fake {
	int health_rc;        /* what check_health returns */
	pqpool_health health; /* and fills in */
	int stats_rc;
	int health_calls, stats_calls, service_calls;
	bool shutting_down;
	bool service_fails;  /* service_metrics returns NULL */
	int extra_active;    /* added to the snapshot's active connections */
	int64_t deadline_ns; /* the bound the last check_health was given */
} fake;

static int fake_health(void *arg, int64_t deadline_ns, pqpool_health *out)
{
	fake *f = arg;

	f->health_calls++;
	f->deadline_ns = deadline_ns;
	*out = f->health;
	return f->health_rc;
}

static int fake_stats(void *arg, pqpool_stats *out)
{
	fake *f = arg;

	f->stats_calls++;
	memset(out, 0, sizeof(*out));
	out->total = 5 + f->extra_active;
	out->active = 1 + f->extra_active;
	out->idle = 4;
	out->max = 20;
	out->min = 5;
	out->utilization = 5.0;
	out->window_s = 60;
	out->started_ms = INT64_C(1795701600000);
	return f->stats_rc;
}

static char *fake_service(void *arg)
{
	fake *f = arg;

	f->service_calls++;
	if (f->service_fails)
		return NULL;
	return strdup("# HELP svc_up Up.\n# TYPE svc_up gauge\nsvc_up 1\n");
}

static bool fake_shutting_down(void *arg)
{
	return ((fake *)arg)->shutting_down;
}

static fake F;
static route_env E = {fake_health, fake_stats, fake_service, fake_shutting_down,
                      &F,          NULL,       NULL};

static int setup(void **state)
{
	(void)state;
	memset(&F, 0, sizeof(F));
	F.health.status = PQPOOL_HEALTHY;
	F.health.response_ms = 0.41;
	F.health.connection_count = 5;
	F.health.checked_at_ms = INT64_C(1795701600000);
	fi_fail_at = -1;
	E.metrics_token = NULL;
	return 0;
}

/* Answers method path into *r and checks what every reply must have. */
static void ask(const char *method, const char *path, route_reply *r)
{
	route_handle(&E, &(route_request){method, path, NULL, 0}, r);
	assert_non_null(r->body);
	assert_non_null(r->content_type);
	assert_int_equal(r->body_len, strlen(r->body));
}

/* The body parsed as a JSON object (decref it). */
static json_t *json_of(const route_reply *r)
{
	json_error_t e;
	json_t *j = json_loads(r->body, 0, &e);

	if (!j)
		fail_msg("not JSON (%s): %s", e.text, r->body);
	assert_true(json_is_object(j));
	assert_string_equal(r->content_type, "application/json");
	return j;
}

static const char *str(json_t *j, const char *path)
{
	json_t *v = j;
	char key[64];

	while (*path) {
		size_t n = strcspn(path, ".");

		snprintf(key, sizeof(key), "%.*s", (int)n, path);
		v = json_object_get(v, key);
		path += n + (path[n] == '.');
	}
	if (!json_is_string(v))
		fail_msg("no string at the path asked for");
	return json_string_value(v);
}

static bool matches(const char *re, const char *s)
{
	regex_t rx;
	int rc;

	assert_int_equal(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0);
	rc = regexec(&rx, s, 0, NULL, 0);
	regfree(&rx);
	return rc == 0;
}

/* ------------------------------------------------------------------ */

static void test_match(void **state)
{
	static const struct {
		const char *path;
		route_id want;
	} cases[] = {
	        {"/api/health/database", ROUTE_HEALTH},
	        {"/api/metrics/database", ROUTE_METRICS},
	        {"/api/metrics/pool", ROUTE_POOL},
	        {"/metrics", ROUTE_PROMETHEUS},
	        {"/livez", ROUTE_LIVEZ},
	        {"/readyz", ROUTE_READYZ},
	        {"/livez?x=1", ROUTE_LIVEZ},
	        {"/metrics?", ROUTE_PROMETHEUS},
	        {"/api/health/database?verbose=1&a=b", ROUTE_HEALTH},
	        {"/livez/", ROUTE_OTHER},
	        {"/LIVEZ", ROUTE_OTHER},
	        {"/livezz", ROUTE_OTHER},
	        {"/live", ROUTE_OTHER},
	        {"livez", ROUTE_OTHER},
	        {"/api/health", ROUTE_OTHER},
	        {"/api/health/database/", ROUTE_OTHER},
	        {"/", ROUTE_PAGE},
	        {"/?refresh=1", ROUTE_PAGE},
	        {"//", ROUTE_OTHER},
	        {"/index.html", ROUTE_OTHER},
	        {"", ROUTE_OTHER},
	        {"?/livez", ROUTE_OTHER},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (route_match(cases[i].path) != cases[i].want)
			fail_msg("%s: route %d, expected %d", cases[i].path,
			         route_match(cases[i].path), cases[i].want);
	}
	assert_string_equal(route_name(ROUTE_HEALTH), "/api/health/database");
	assert_string_equal(route_name(ROUTE_PAGE), "/");
	assert_string_equal(route_name(ROUTE_OTHER), "other");
	assert_string_equal(route_name((route_id)99), "other");
}

static void test_livez(void **state)
{
	route_reply r;
	json_t *j;

	(void)state;
	ask("GET", "/livez", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.route, ROUTE_LIVEZ);
	assert_null(r.allow);
	j = json_of(&r);
	assert_string_equal(str(j, "status"), "ok");
	assert_int_equal(json_object_size(j), 1);
	json_decref(j);
	route_reply_free(&r);
	/* no database call */
	assert_int_equal(F.health_calls + F.stats_calls, 0);
}

/* True when every src="..." and href="..." of the page names this
 * service (a path) or is a data: URL: no CDN, font or script from elsewhere. */
static bool page_refs_local(const char *html)
{
	static const char *attrs[] = {"src=\"", "href=\"", "src='", "href='"};

	for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
		for (const char *p = strstr(html, attrs[i]); p;
		     p = strstr(p + 1, attrs[i])) {
			const char *v = p + strlen(attrs[i]);

			if (!((v[0] == '/' && v[1] != '/') ||
			      strncmp(v, "data:", 5) == 0))
				return false;
		}
	}
	return strstr(html, "@import") == NULL && strstr(html, "url(") == NULL;
}

static void test_page(void **state)
{
	static const char *methods[] = {"GET", "HEAD"};
	route_reply r;

	(void)state;
	for (size_t m = 0; m < 2; m++) {
		ask(methods[m], "/", &r);
		assert_int_equal(r.status, 200);
		assert_int_equal(r.route, ROUTE_PAGE);
		assert_string_equal(r.content_type, "text/html; charset=utf-8");
		/* the bytes built in, whole: static, never copied */
		assert_false(r.body_owned);
		assert_ptr_equal(r.body, (const char *)page_html);
		assert_int_equal(r.body_len, page_html_len);
		assert_true(strncmp(r.body, "<!doctype html>", 15) == 0);
		assert_non_null(strstr(r.body, "</html>"));
		assert_null(r.allow);
		assert_null(r.www_authenticate);
		/* only its own inline script and style, by hash */
		assert_ptr_equal(r.csp, page_csp);
		assert_true(matches(
		        "^default-src 'none'; script-src 'sha256-[A-Za-z0-9+/]{43}='; "
		        "style-src 'sha256-[A-Za-z0-9+/]{43}='; connect-src 'self'; ",
		        r.csp));
		assert_non_null(strstr(r.csp, "frame-ancestors 'none'"));
		assert_null(strstr(r.csp, "unsafe"));
		route_reply_free(&r);
	}
	/* one inline script and one inline style, as the hashes assume */
	assert_non_null(strstr((const char *)page_html, "<script>"));
	assert_null(strstr(strstr((const char *)page_html, "<script") + 1, "<script"));
	assert_null(strstr(strstr((const char *)page_html, "<style") + 1, "<style"));
	assert_true(page_refs_local((const char *)page_html));
	assert_false(page_refs_local("<img src=\"https://cdn.example/x.png\">"));
	assert_false(page_refs_local("<link href=\"//cdn.example/x.css\">"));
	assert_false(page_refs_local("<style>@import 'x.css';</style>"));
	/* the page is a static body: serving it asks nothing of the pool */
	assert_int_equal(F.health_calls + F.stats_calls + F.service_calls, 0);
	assert_false(route_blocking("GET", "/"));

	/* other methods: 405, the same JSON as every route */
	ask("POST", "/", &r);
	assert_int_equal(r.status, 405);
	assert_string_equal(r.allow, "GET, HEAD");
	assert_null(r.csp);
	json_decref(json_of(&r));
	route_reply_free(&r);

	/* the page is open with METRICS_TOKEN set: it asks for the token itself */
	E.metrics_token = "0123456789abcdef-T0KEN_~+/==";
	ask("GET", "/", &r);
	assert_int_equal(r.status, 200);
	assert_null(r.www_authenticate);
	route_reply_free(&r);
	ask("GET", "/?x=1", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.route, ROUTE_PAGE);
	route_reply_free(&r);
	assert_int_equal(F.health_calls + F.stats_calls + F.service_calls, 0);
	assert_false(route_protected(ROUTE_PAGE));
}

static void test_health(void **state)
{
	static const struct {
		pqpool_health_status st;
		int code;
		const char *text;
	} cases[] = {
	        {PQPOOL_HEALTHY, 200, "healthy"},
	        {PQPOOL_DEGRADED, 200, "degraded"},
	        {PQPOOL_UNHEALTHY, 503, "unhealthy"},
	};

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		route_reply r;
		json_t *j;

		F.health.status = cases[i].st;
		strcpy(F.health.error, cases[i].st == PQPOOL_HEALTHY ? "" : "it broke");
		ask("GET", "/api/health/database", &r);
		assert_int_equal(r.status, cases[i].code);
		j = json_of(&r);
		assert_string_equal(str(j, "status"), cases[i].text);
		assert_true(json_is_number(
		        json_object_get(json_object_get(j, "data"), "responseTime")));
		assert_string_equal(str(j, "data.lastCheck"), "2026-11-26T14:00:00.000Z");
		if (cases[i].st == PQPOOL_HEALTHY)
			assert_null(json_object_get(json_object_get(j, "data"), "error"));
		else
			assert_string_equal(str(j, "data.error"), "it broke");
		json_decref(j);
		route_reply_free(&r);
	}
	assert_int_equal(F.health_calls, 3);
}

static void test_health_check_fails(void **state)
{
	route_reply r;

	(void)state;
	F.health_rc = PQPOOL_EINVAL;
	ask("GET", "/api/health/database", &r);
	assert_int_equal(r.status, 503);
	/* the spec's catch branch, exactly */
	assert_string_equal(
	        r.body, "{\"status\":\"unhealthy\",\"data\":{\"error\":\"Database health "
	                "check failed\"}}");
	route_reply_free(&r);
}

static void test_metrics(void **state)
{
	route_reply r;
	json_t *j, *m;

	(void)state;
	ask("GET", "/api/metrics/database", &r);
	assert_int_equal(r.status, 200);
	j = json_of(&r);
	m = json_object_get(j, "metrics");
	assert_int_equal(json_integer_value(json_object_get(m, "totalConnections")), 5);
	assert_int_equal(json_integer_value(json_object_get(m, "activeConnections")), 1);
	assert_int_equal(json_integer_value(json_object_get(m, "idleConnections")), 4);
	assert_string_equal(str(j, "status.utilization"), "low");
	assert_true(matches("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{3}Z$",
	                    str(j, "timestamp")));
	json_decref(j);
	route_reply_free(&r);

	/* live: a snapshot per call */
	ask("GET", "/api/metrics/database", &r);
	route_reply_free(&r);
	assert_int_equal(F.stats_calls, 2);

	/* exactly the spec's keys; the rest is on /api/metrics/pool */
	ask("GET", "/api/metrics/database", &r);
	j = json_of(&r);
	assert_int_equal(json_object_size(j), 3);
	assert_null(json_object_get(j, "pool"));
	json_decref(j);
	route_reply_free(&r);
	ask("GET", "/api/metrics/pool", &r);
	assert_int_equal(r.status, 200);
	j = json_of(&r);
	assert_int_equal(
	        json_integer_value(json_object_get(json_object_get(j, "pool"), "max")),
	        20);
	json_decref(j);
	route_reply_free(&r);

	/* a body reused within one millisecond still follows the pool: a
	 * change between two back-to-back calls shows in the second */
	for (int i = 0; i < 50; i++) {
		F.extra_active = i % 2;
		ask("GET", "/api/metrics/database", &r);
		j = json_of(&r);
		m = json_object_get(j, "metrics");
		assert_int_equal(
		        json_integer_value(json_object_get(m, "activeConnections")),
		        1 + i % 2);
		json_decref(j);
		route_reply_free(&r);
	}
	F.extra_active = 0;

	F.stats_rc = PQPOOL_EINVAL;
	ask("GET", "/api/metrics/database", &r);
	assert_int_equal(r.status, 500);
	j = json_of(&r);
	assert_string_equal(str(j, "error"), "Failed to collect database metrics");
	assert_true(matches("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{3}Z$",
	                    str(j, "timestamp")));
	assert_int_equal(json_object_size(j), 2);
	json_decref(j);
	route_reply_free(&r);
}

static void test_prometheus(void **state)
{
	route_reply r;
	const char *svc = "# HELP svc_up Up.\n# TYPE svc_up gauge\nsvc_up 1\n";

	(void)state;
	ask("GET", "/metrics", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
	/* the pool's families first, the service's after */
	assert_true(strncmp(r.body, "# HELP db_client_", 17) == 0);
	assert_true(r.body_len > strlen(svc));
	assert_string_equal(r.body + r.body_len - strlen(svc), svc);
	assert_non_null(
	        strstr(r.body, "db_client_connections_usage{state=\"idle\"} 4\n"));
	route_reply_free(&r);

	F.service_fails = true;
	ask("GET", "/metrics", &r);
	assert_int_equal(r.status, 500);
	route_reply_free(&r);
	F.service_fails = false;

	F.stats_rc = PQPOOL_EINVAL;
	ask("GET", "/metrics", &r);
	assert_int_equal(r.status, 500);
	assert_non_null(strstr(r.body, "Failed to collect database metrics"));
	route_reply_free(&r);
}

/* The request's deadline reaches the health check, on both routes that
 * check, and nothing else invents one. */
static void test_health_deadline(void **state)
{
	route_reply r;

	(void)state;
	route_handle(&E, &(route_request){"GET", "/api/health/database", NULL, 12345},
	             &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(F.deadline_ns, 12345);
	route_reply_free(&r);
	route_handle(&E, &(route_request){"GET", "/readyz", NULL, 777}, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(F.deadline_ns, 777);
	route_reply_free(&r);
	ask("GET", "/api/health/database", &r);
	assert_int_equal(F.deadline_ns, 0);
	route_reply_free(&r);
}

/* The memo gives the bytes a fresh render gives, and a changed snapshot a
 * new body, never the remembered one. */
static void test_metrics_memo(void **state)
{
	route_memo m;
	route_reply a, b, c;

	(void)state;
	route_memo_init(&m);
	E.memo = &m;
	ask("GET", "/api/metrics/database", &a);
	ask("GET", "/api/metrics/database", &b);
	assert_int_equal(a.status, 200);
	assert_non_null(m.body);
	/* the same inputs (a millisecond may pass between them: then both
	 * are fresh renders, and still valid) */
	assert_int_equal(b.status, 200);
	F.extra_active = 3;
	ask("GET", "/api/metrics/database", &c);
	assert_non_null(strstr(a.body, "\"activeConnections\":1,"));
	assert_non_null(strstr(c.body, "\"activeConnections\":4,"));
	route_reply_free(&a);
	route_reply_free(&b);
	route_reply_free(&c);
	E.memo = NULL;
	F.extra_active = 0;
	route_memo_destroy(&m);
}

static void test_readyz(void **state)
{
	route_reply r;
	json_t *j;

	(void)state;
	ask("GET", "/readyz", &r);
	assert_int_equal(r.status, 200);
	j = json_of(&r);
	assert_string_equal(str(j, "status"), "ready");
	json_decref(j);
	route_reply_free(&r);

	/* degraded still serves */
	F.health.status = PQPOOL_DEGRADED;
	ask("GET", "/readyz", &r);
	assert_int_equal(r.status, 200);
	route_reply_free(&r);

	F.health.status = PQPOOL_UNHEALTHY;
	strcpy(F.health.error, "acquire: connection refused\n");
	ask("GET", "/readyz", &r);
	assert_int_equal(r.status, 503);
	j = json_of(&r);
	assert_string_equal(str(j, "status"), "not ready");
	assert_string_equal(str(j, "error"), "acquire: connection refused\n");
	json_decref(j);
	route_reply_free(&r);

	F.health.error[0] = '\0';
	ask("GET", "/readyz", &r);
	assert_int_equal(r.status, 503);
	j = json_of(&r);
	assert_string_equal(str(j, "error"), "database unhealthy");
	json_decref(j);
	route_reply_free(&r);

	F.health_rc = PQPOOL_EINVAL;
	ask("GET", "/readyz", &r);
	assert_int_equal(r.status, 503);
	route_reply_free(&r);

	/* shutting down: not ready whatever the database says, without asking */
	F.health_rc = PQPOOL_OK;
	F.health.status = PQPOOL_HEALTHY;
	F.shutting_down = true;
	F.health_calls = 0;
	ask("GET", "/readyz", &r);
	assert_int_equal(r.status, 503);
	j = json_of(&r);
	assert_string_equal(str(j, "error"), "shutting down");
	json_decref(j);
	route_reply_free(&r);
	assert_int_equal(F.health_calls, 0);
}

static void test_not_found(void **state)
{
	static const char *methods[] = {"GET", "HEAD", "POST", "DELETE", "BREW"};
	route_reply r;
	json_t *j;

	(void)state;
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		ask(methods[i], "/nope", &r);
		assert_int_equal(r.status, 404);
		assert_int_equal(r.route, ROUTE_OTHER);
		assert_null(r.allow);
		j = json_of(&r);
		assert_string_equal(str(j, "error"), "Not found");
		assert_string_equal(str(j, "path"), "/nope");
		assert_int_equal(json_object_size(j), 2);
		json_decref(j);
		route_reply_free(&r);
	}
	/* the query string is not repeated: it may hold what a client would
	 * rather not see echoed (and logged) */
	ask("GET", "/nope?token=secret", &r);
	assert_null(strstr(r.body, "secret"));
	j = json_of(&r);
	assert_string_equal(str(j, "path"), "/nope");
	json_decref(j);
	route_reply_free(&r);
	assert_int_equal(F.health_calls + F.stats_calls, 0);
}

static void test_method_not_allowed(void **state)
{
	static const char *methods[] = {"POST",  "PUT", "DELETE", "PATCH",   "OPTIONS",
	                                "TRACE", "get", "head",   "CONNECT", ""};
	static const char *paths[] = {"/api/health/database",
	                              "/api/metrics/database",
	                              "/metrics",
	                              "/livez",
	                              "/readyz",
	                              "/livez?x=1",
	                              "/"};

	(void)state;
	for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
		for (size_t p = 0; p < sizeof(paths) / sizeof(paths[0]); p++) {
			route_reply r;
			json_t *j;

			ask(methods[m], paths[p], &r);
			if (r.status != 405)
				fail_msg("%s %s: status %d", methods[m], paths[p],
				         r.status);
			assert_non_null(r.allow);
			assert_string_equal(r.allow, "GET, HEAD");
			j = json_of(&r);
			assert_string_equal(str(j, "error"), "Method not allowed");
			json_decref(j);
			route_reply_free(&r);
		}
	}
	/* refused before any database call */
	assert_int_equal(F.health_calls + F.stats_calls, 0);
}

/* HEAD answers what GET answers (the HTTP layer leaves out the body). */
static void test_head(void **state)
{
	static const char *paths[] = {"/api/health/database",
	                              "/api/metrics/database",
	                              "/metrics",
	                              "/livez",
	                              "/readyz",
	                              "/nope",
	                              "/"};

	(void)state;
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		route_reply g, h;

		ask("GET", paths[i], &g);
		ask("HEAD", paths[i], &h);
		assert_int_equal(h.status, g.status);
		assert_string_equal(h.content_type, g.content_type);
		assert_int_equal(h.route, g.route);
		assert_int_equal(h.body_len, g.body_len);
		assert_true((h.csp == NULL) == (g.csp == NULL));
		assert_null(h.allow);
		route_reply_free(&g);
		route_reply_free(&h);
	}
}

static void test_query_ignored(void **state)
{
	route_reply r;

	(void)state;
	ask("GET", "/livez?x=1", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{\"status\":\"ok\"}");
	route_reply_free(&r);
	ask("GET", "/api/health/database?x=%22", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.route, ROUTE_HEALTH);
	route_reply_free(&r);
	ask("HEAD", "/metrics?", &r);
	assert_int_equal(r.status, 200);
	route_reply_free(&r);
}

/* The path a 404 repeats: JSON-escaped by jansson, valid UTF-8, capped. */
static void test_path_escaping(void **state)
{
	static const struct {
		const char *path, *want;
	} cases[] = {
	        {"/a\"b", "/a\"b"},
	        {"/a\\b", "/a\\b"},
	        {"/a\nb\r\x01\x1b[31m", "/a\nb\r\x01\x1b[31m"},
	        {"/caf\xc3\xa9", "/caf\xc3\xa9"},           /* é */
	        {"/\xf0\x9f\x98\x80", "/\xf0\x9f\x98\x80"}, /* 4 bytes */
	        {"/bad\xff\xfe", "/bad??"},                 /* not UTF-8 */
	        {"/over\xc0\x80long", "/over??long"},       /* overlong NUL */
	        {"/sur\xed\xa0\x80", "/sur???"},            /* a surrogate */
	        {"/past\xf4\x90\x80\x80", "/past????"},     /* past U+10FFFF */
	        {"/cut\xe2\x82", "/cut??"},                 /* truncated € */
	        {"/</script>", "/</script>"},
	};
	route_reply r;
	json_t *j;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ask("GET", cases[i].path, &r);
		assert_int_equal(r.status, 404);
		j = json_of(&r);
		assert_string_equal(str(j, "path"), cases[i].want);
		json_decref(j);
		/* raw control characters never reach the body */
		for (const char *p = r.body; *p; p++)
			assert_false((unsigned char)*p < 0x20);
		route_reply_free(&r);
	}
}

static void test_path_cap(void **state)
{
	char path[1200], want[ROUTE_PATH_SHOWN_MAX + 4];
	route_reply r;
	json_t *j;
	const char *shown;

	(void)state;
	path[0] = '/';
	memset(path + 1, 'x', sizeof(path) - 2);
	path[sizeof(path) - 1] = '\0';
	ask("GET", path, &r);
	j = json_of(&r);
	shown = str(j, "path");
	assert_int_equal(strlen(shown), ROUTE_PATH_SHOWN_MAX + 3);
	memcpy(want, path, ROUTE_PATH_SHOWN_MAX);
	strcpy(want + ROUTE_PATH_SHOWN_MAX, "...");
	assert_string_equal(shown, want);
	json_decref(j);
	route_reply_free(&r);

	/* a cut never splits a UTF-8 sequence */
	for (size_t i = 1; i + 2 < sizeof(path); i += 2)
		memcpy(path + i, "\xc3\xa9", 2);
	path[sizeof(path) - 2] = '\0';
	ask("GET", path, &r);
	j = json_of(&r); /* jansson would refuse a split sequence */
	shown = str(j, "path");
	assert_true(strlen(shown) <= ROUTE_PATH_SHOWN_MAX + 3);
	assert_string_equal(shown + strlen(shown) - 3, "...");
	json_decref(j);
	route_reply_free(&r);
}

static void test_shown(void **state)
{
	char out[16];

	(void)state;
	route_shown("/a?b", 10, false, out, sizeof(out));
	assert_string_equal(out, "/a");
	route_shown("/a?b", 10, true, out, sizeof(out));
	assert_string_equal(out, "/a?b");
	route_shown("abcdefghij", 10, true, out, sizeof(out));
	assert_string_equal(out, "abcdefghij");
	route_shown("abcdefghijk", 10, true, out, sizeof(out));
	assert_string_equal(out, "abcdefghij...");
	/* max larger than the buffer allows: the buffer wins */
	route_shown("abcdefghijklmnopqrstuvwxyz", 100, true, out, sizeof(out));
	assert_string_equal(out, "abcdefghijkl...");
	route_shown("\xe2\x82\xac\xe2\x82\xac", 4, true, out, sizeof(out));
	assert_string_equal(out, "\xe2\x82\xac...");
	route_shown("", 4, true, out, sizeof(out));
	assert_string_equal(out, "");
	route_shown("abc", 4, true, out, 3); /* too small to say anything */
	assert_string_equal(out, "");
}

static void test_error_reply(void **state)
{
	route_reply r;

	(void)state;
	route_error(413, "Payload too large", &r);
	assert_int_equal(r.status, 413);
	assert_string_equal(r.content_type, "application/json");
	assert_string_equal(r.body, "{\"error\":\"Payload too large\"}");
	route_reply_free(&r);
	assert_null(r.body);
	route_reply_free(NULL);
}

/* Fails each allocation of routes.c and jansson in turn: every reply is
 * still complete (a status, a content type, a body that parses), with the
 * normal status or a 5xx. Leaks show under `make test-asan`. */
static void test_alloc_failures(void **state)
{
	static const char *paths[] = {"/api/health/database",
	                              "/api/metrics/database",
	                              "/metrics",
	                              "/livez",
	                              "/readyz",
	                              "/nope\"x",
	                              "/"};

	(void)state;
	json_set_alloc_funcs(fi_malloc, fi_free);
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		route_reply ok, r;
		long n;

		fi_fail_at = -1;
		fi_count = 0;
		ask("GET", paths[i], &ok);
		n = fi_count;
		for (long k = 0; k < n; k++) {
			fi_fail_at = k;
			fi_count = 0;
			ask("GET", paths[i], &r);
			fi_fail_at = -1;
			if (r.status != ok.status && r.status < 500)
				fail_msg("%s, allocation %ld failed: status %d, body %s",
				         paths[i], k, r.status, r.body);
			if (strcmp(r.content_type, "application/json") == 0) {
				json_t *j = json_loads(r.body, 0, NULL);

				if (!j)
					fail_msg(
					        "%s, allocation %ld failed: not JSON: %s",
					        paths[i], k, r.body);
				json_decref(j);
			}
			route_reply_free(&r);
		}
		route_reply_free(&ok);
	}
	json_set_alloc_funcs(malloc, free);
}

/* ---- the service's metrics text ---- */

static void test_http_metrics(void **state)
{
	http_metrics m;
	char *text;

	(void)state;
	http_metrics_init(&m);
	text = http_metrics_render(&m);
	assert_non_null(text);
	/* nothing counted yet: the families are declared, without samples */
	assert_non_null(strstr(text, "# TYPE pqpool_http_requests_total counter\n"));
	assert_null(strstr(text, "pqpool_http_requests_total{"));
	assert_null(strstr(text, "pqpool_http_request_duration_seconds_bucket"));
	assert_non_null(
	        strstr(text, "pqpool_build_info{version=\"" PQPOOL_VERSION "\"} 1\n"));
	assert_non_null(strstr(text, "\nprocess_start_time_seconds "));
	free(text);

	http_metrics_observe(&m, ROUTE_LIVEZ, 200, 50000);       /* 50 µs */
	http_metrics_observe(&m, ROUTE_LIVEZ, 200, 300000);      /* 300 µs */
	http_metrics_observe(&m, ROUTE_HEALTH, 503, 2000000);    /* 2 ms */
	http_metrics_observe(&m, ROUTE_PAGE, 200, 80000);        /* 80 µs */
	http_metrics_observe(&m, ROUTE_OTHER, 418, 20000000000); /* 20 s */
	http_metrics_observe(&m, (route_id)42, 200, -5); /* a bad route, a clock step */
	atomic_store(&m.connections, 3);
	text = http_metrics_render(&m);
	assert_non_null(text);
	assert_non_null(strstr(
	        text, "pqpool_http_requests_total{route=\"/livez\",code=\"200\"} 2\n"));
	assert_non_null(strstr(text, "pqpool_http_requests_total{route=\"/api/health/"
	                             "database\",code=\"503\"} 1\n"));
	assert_non_null(
	        strstr(text, "pqpool_http_requests_total{route=\"/\",code=\"200\"} 1\n"));
	assert_non_null(strstr(
	        text, "pqpool_http_requests_total{route=\"other\",code=\"other\"} 1\n"));
	assert_non_null(strstr(
	        text, "pqpool_http_requests_total{route=\"other\",code=\"200\"} 1\n"));
	/* cumulative buckets; _count is the +Inf bucket */
	assert_non_null(strstr(text, "pqpool_http_request_duration_seconds_bucket{route="
	                             "\"/livez\",le=\"0.0001\"} 1\n"));
	assert_non_null(strstr(text, "pqpool_http_request_duration_seconds_bucket{route="
	                             "\"/livez\",le=\"0.0005\"} 2\n"));
	assert_non_null(strstr(text, "pqpool_http_request_duration_seconds_bucket{route="
	                             "\"/livez\",le=\"+Inf\"} 2\n"));
	assert_non_null(strstr(
	        text,
	        "pqpool_http_request_duration_seconds_count{route=\"/livez\"} 2\n"));
	assert_non_null(strstr(text, "pqpool_http_request_duration_seconds_sum{route=\"/"
	                             "livez\"} 0.000350000\n"));
	assert_non_null(strstr(text, "pqpool_http_request_duration_seconds_bucket{route="
	                             "\"other\",le=\"10\"} 1\n"));
	assert_non_null(strstr(text, "pqpool_http_request_duration_seconds_bucket{route="
	                             "\"other\",le=\"+Inf\"} 2\n"));
	assert_null(strstr(text, "route=\"/metrics\""));
	assert_non_null(strstr(text, "\npqpool_http_connections 3\n"));
	free(text);
}

/* ---- METRICS_TOKEN ---- */

#define TOKEN "0123456789abcdef-T0KEN_~+/=="

static void test_auth_equal(void **state)
{
	static const char secret[] = "s3cret-token-0123456789";
	const size_t n = sizeof(secret) - 1;
	char buf[64];

	(void)state;
	assert_true(auth_equal(secret, n, secret, n));
	assert_true(auth_equal("", 0, "", 0));
	assert_false(auth_equal("", 0, secret, n));
	assert_false(auth_equal(secret, n - 1, secret, n)); /* a prefix */
	assert_false(auth_equal(secret, 1, secret, n));
	/* the secret followed by more: given is compared over its own length */
	snprintf(buf, sizeof(buf), "%sX", secret);
	assert_false(auth_equal(buf, n + 1, secret, n));
	/* one byte off, anywhere, including a bit that a sign could hide */
	for (size_t i = 0; i < n; i++) {
		memcpy(buf, secret, n);
		buf[i] ^= 0x01;
		assert_false(auth_equal(buf, n, secret, n));
		buf[i] = (char)(secret[i] ^ 0x80);
		assert_false(auth_equal(buf, n, secret, n));
	}
	/* past given's end it compares with 0: a NUL in the secret must not
	 * make a shorter input match (tokens never hold one; still) */
	assert_false(auth_equal("ab", 2, "ab\0", 3));
}

/* A comparison that stopped at the first difference would take about 1000
 * times longer for a guess wrong in its last byte than for one wrong in its
 * first; so would one that stopped on a length mismatch. Ours does the same
 * work whatever the input: the times stay within a factor of 2 (bounded
 * loosely, the machine is shared; the best of several rounds). */
static double time_equal(const char *given, size_t glen, const char *secret, size_t slen)
{
	volatile bool sink = false;
	int64_t a = pqc_now_ns();

	for (int i = 0; i < 2000; i++)
		sink = auth_equal(given, glen, secret, slen) || sink;
	(void)sink;
	return (double)(pqc_now_ns() - a);
}

static void test_auth_equal_timing(void **state)
{
	enum { N = AUTH_TOKEN_MAX };
	static char secret[N], first[N], last[N];
	double t_first = 1e18, t_last = 1e18, t_short = 1e18, ratio;

	(void)state;
	memset(secret, 'a', N);
	memcpy(first, secret, N);
	memcpy(last, secret, N);
	first[0] = 'b';
	last[N - 1] = 'b';
	for (int round = 0; round < 11; round++) {
		double t;

		if ((t = time_equal(first, N, secret, N)) < t_first)
			t_first = t;
		if ((t = time_equal(last, N, secret, N)) < t_last)
			t_last = t;
		if ((t = time_equal("a", 1, secret, N)) < t_short)
			t_short = t;
	}
	ratio = t_last / t_first;
	if (ratio > 2 || ratio < 0.5)
		fail_msg("wrong in the last byte / wrong in the first: %.2f", ratio);
	ratio = t_last / t_short;
	if (ratio > 2 || ratio < 0.5)
		fail_msg("full length / 1 byte: %.2f", ratio);
}

static void test_auth_token_validate(void **state)
{
	static const char *good[] = {
	        "0123456789abcdef", /* the minimum */
	        "A-Za-z0-9._~+/xyz",
	        "c2VjcmV0LXRva2VuLTEyMw==",
	        TOKEN,
	};
	static const char *bad[] = {
	        "",
	        "0123456789abcde",   /* 15 */
	        "0123456789abcdef ", /* a blank */
	        " 0123456789abcdef",
	        "0123456789\tabcdef",
	        "01234567=89abcdef", /* padding in the middle */
	        "================",  /* nothing but padding */
	        "0123456789abcdef\"",
	        "0123456789abcdef\xc3\xa9", /* not ASCII */
	        "Bearer 0123456789abcdef",
	        "0123456789abcdef\n",
	};
	char err[256], big[AUTH_TOKEN_MAX + 2];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (auth_token_validate(good[i], err, sizeof(err)) != 0)
			fail_msg("%s refused: %s", good[i], err);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (auth_token_validate(bad[i], err, sizeof(err)) == 0)
			fail_msg("bad token #%zu accepted", i);
		assert_true(strncmp(err, "METRICS_TOKEN: ", 15) == 0);
		/* never the value: no run of 4 of its characters in the message */
		for (size_t k = 0; bad[i][0] && k + 4 <= strlen(bad[i]); k++) {
			char part[5];

			memcpy(part, bad[i] + k, 4);
			part[4] = '\0';
			if (strcspn(part, " \t\n") == 4 && strstr(err, part))
				fail_msg("the message shows part of the token: %s", err);
		}
	}
	assert_int_equal(auth_token_validate("0123456789 abcdef", err, sizeof(err)), -1);
	assert_string_equal(err, "METRICS_TOKEN: character 11 is not allowed: expected "
	                         "letters, digits and - . _ ~ + / (RFC 6750's b64token), "
	                         "optionally ending in =");
	assert_int_equal(auth_token_validate("short", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "expected 16 to 1024 characters, got 5"));
	memset(big, 'x', AUTH_TOKEN_MAX);
	big[AUTH_TOKEN_MAX] = '\0';
	assert_int_equal(auth_token_validate(big, err, sizeof(err)), 0);
	big[AUTH_TOKEN_MAX] = 'x';
	big[AUTH_TOKEN_MAX + 1] = '\0';
	assert_int_equal(auth_token_validate(big, err, sizeof(err)), -1);
}

static void test_auth_check_bearer(void **state)
{
	static const struct {
		const char *header;
		auth_result want;
	} cases[] = {
	        {"Bearer " TOKEN, AUTH_OK},
	        {"bearer " TOKEN, AUTH_OK}, /* RFC 7235: the scheme ignores case */
	        {"BEARER " TOKEN, AUTH_OK},
	        {"Bearer   " TOKEN, AUTH_OK},
	        {"Bearer " TOKEN " \t", AUTH_OK},
	        {NULL, AUTH_MISSING},
	        {"", AUTH_MISSING},
	        {"Bearer", AUTH_MISSING},
	        {"Bearer" TOKEN, AUTH_MISSING},
	        {"Basic dXNlcjpwYXNz", AUTH_MISSING},
	        {TOKEN, AUTH_MISSING},
	        {"Bearer ", AUTH_INVALID},
	        {"Bearer wrong-token-0123456789", AUTH_INVALID},
	        {"Bearer " TOKEN "x", AUTH_INVALID},
	        {"Bearer 0123456789abcdef-T0KEN_~+/=", AUTH_INVALID}, /* a prefix */
	        {"Bearer " TOKEN " " TOKEN, AUTH_INVALID},
	        {"Bearer \"" TOKEN "\"", AUTH_INVALID},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		auth_result got = auth_check_bearer(cases[i].header, TOKEN);

		if (got != cases[i].want)
			fail_msg("\"%s\": %d, expected %d",
			         cases[i].header ? cases[i].header : "(none)", got,
			         cases[i].want);
	}
}

/* Answers with an Authorization header. */
static void ask_auth(const char *method, const char *path, const char *authz,
                     route_reply *r)
{
	route_handle(&E, &(route_request){method, path, authz, 0}, r);
	assert_non_null(r->body);
	assert_non_null(r->content_type);
	assert_int_equal(r->body_len, strlen(r->body));
	assert_null(strstr(r->body, TOKEN));
}

static void test_routes_token(void **state)
{
	static const char *guarded[] = {"/metrics", "/api/metrics/database",
	                                "/api/metrics/pool", "/metrics?x=1"};
	static const char *open[] = {"/api/health/database", "/livez", "/readyz"};
	route_reply r;
	json_t *j;

	(void)state;
	E.metrics_token = TOKEN;
	for (size_t i = 0; i < sizeof(guarded) / sizeof(guarded[0]); i++) {
		static const char *methods[] = {"GET", "HEAD"};

		for (size_t m = 0; m < 2; m++) {
			ask_auth(methods[m], guarded[i], NULL, &r);
			if (r.status != 401)
				fail_msg("%s %s without a token: %d", methods[m],
				         guarded[i], r.status);
			assert_string_equal(r.www_authenticate,
			                    "Bearer realm=\"pqpool\"");
			j = json_of(&r);
			assert_string_equal(str(j, "error"), "Unauthorized");
			assert_int_equal(json_object_size(j), 1);
			json_decref(j);
			route_reply_free(&r);

			ask_auth(methods[m], guarded[i], "Basic dXNlcjpwYXNz", &r);
			assert_int_equal(r.status, 401);
			assert_string_equal(r.www_authenticate,
			                    "Bearer realm=\"pqpool\"");
			route_reply_free(&r);

			ask_auth(methods[m], guarded[i], "Bearer not-the-token-at-all",
			         &r);
			assert_int_equal(r.status, 401);
			assert_string_equal(
			        r.www_authenticate,
			        "Bearer realm=\"pqpool\", error=\"invalid_token\"");
			route_reply_free(&r);

			ask_auth(methods[m], guarded[i], "Bearer " TOKEN, &r);
			assert_int_equal(r.status, 200);
			assert_null(r.www_authenticate);
			route_reply_free(&r);

			ask_auth(methods[m], guarded[i], "bearer " TOKEN, &r);
			assert_int_equal(r.status, 200);
			route_reply_free(&r);
		}
	}
	/* refused before any call on the pool: 3 routes x 2 methods x 2 allowed */
	assert_int_equal(F.stats_calls, 4 * 2 * 2);
	assert_int_equal(F.service_calls, 2 * 2 * 2);

	/* probes stay open */
	for (size_t i = 0; i < sizeof(open) / sizeof(open[0]); i++) {
		ask_auth("GET", open[i], NULL, &r);
		if (r.status != 200)
			fail_msg("%s without a token: %d", open[i], r.status);
		assert_null(r.www_authenticate);
		route_reply_free(&r);
		ask_auth("GET", open[i], "Bearer wrong-token-0123456789", &r);
		assert_int_equal(r.status, 200);
		route_reply_free(&r);
	}
	/* 404 and 405 are what they were: nothing to protect there */
	ask_auth("GET", "/nope", NULL, &r);
	assert_int_equal(r.status, 404);
	assert_null(r.www_authenticate);
	route_reply_free(&r);
	ask_auth("POST", "/metrics", NULL, &r);
	assert_int_equal(r.status, 405);
	assert_null(r.www_authenticate);
	route_reply_free(&r);

	/* a request without the header */
	route_handle(&E, &(route_request){"GET", "/metrics", NULL, 0}, &r);
	assert_int_equal(r.status, 401);
	route_reply_free(&r);

	/* no token, or an empty one: open */
	E.metrics_token = "";
	ask_auth("GET", "/metrics", NULL, &r);
	assert_int_equal(r.status, 200);
	route_reply_free(&r);
	E.metrics_token = NULL;
	ask_auth("GET", "/api/metrics/pool", "Bearer anything-at-all-here", &r);
	assert_int_equal(r.status, 200);
	route_reply_free(&r);

	/* every allocation of a 401 failing in turn: still a complete answer */
	E.metrics_token = TOKEN;
	json_set_alloc_funcs(fi_malloc, fi_free);
	fi_count = 0;
	ask_auth("GET", "/metrics", NULL, &r);
	route_reply_free(&r);
	for (long k = 0, n = fi_count; k < n; k++) {
		fi_fail_at = k;
		fi_count = 0;
		ask_auth("GET", "/metrics", NULL, &r);
		fi_fail_at = -1;
		if (r.status != 401 && r.status != 500)
			fail_msg("allocation %ld failed: status %d", k, r.status);
		route_reply_free(&r);
	}
	json_set_alloc_funcs(malloc, free);
}

static void test_http_metrics_401(void **state)
{
	http_metrics m;
	char *text;

	(void)state;
	http_metrics_init(&m);
	http_metrics_observe(&m, ROUTE_PROMETHEUS, 401, 1000);
	text = http_metrics_render(&m);
	assert_non_null(text);
	assert_non_null(strstr(
	        text, "pqpool_http_requests_total{route=\"/metrics\",code=\"401\"} 1\n"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup(test_match, setup),
	        cmocka_unit_test_setup(test_livez, setup),
	        cmocka_unit_test_setup(test_page, setup),
	        cmocka_unit_test_setup(test_health, setup),
	        cmocka_unit_test_setup(test_health_check_fails, setup),
	        cmocka_unit_test_setup(test_health_deadline, setup),
	        cmocka_unit_test_setup(test_metrics_memo, setup),
	        cmocka_unit_test_setup(test_metrics, setup),
	        cmocka_unit_test_setup(test_prometheus, setup),
	        cmocka_unit_test_setup(test_readyz, setup),
	        cmocka_unit_test_setup(test_not_found, setup),
	        cmocka_unit_test_setup(test_method_not_allowed, setup),
	        cmocka_unit_test_setup(test_head, setup),
	        cmocka_unit_test_setup(test_query_ignored, setup),
	        cmocka_unit_test_setup(test_path_escaping, setup),
	        cmocka_unit_test_setup(test_path_cap, setup),
	        cmocka_unit_test_setup(test_shown, setup),
	        cmocka_unit_test_setup(test_error_reply, setup),
	        cmocka_unit_test_setup(test_alloc_failures, setup),
	        cmocka_unit_test_setup(test_http_metrics, setup),
	        cmocka_unit_test_setup(test_auth_equal, setup),
	        cmocka_unit_test_setup(test_auth_equal_timing, setup),
	        cmocka_unit_test_setup(test_auth_token_validate, setup),
	        cmocka_unit_test_setup(test_auth_check_bearer, setup),
	        cmocka_unit_test_setup(test_routes_token, setup),
	        cmocka_unit_test_setup(test_http_metrics_401, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
