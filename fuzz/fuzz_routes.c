/* fuzz_routes.c — routes.c without HTTP: any method and path bytes, a health
 * error text of any bytes, against a fake pool.
 *
 * Input: 8 bytes for the fake's answers, then method, path, the health
 * error and an Authorization header, separated by NUL bytes; an odd size
 * also sets METRICS_TOKEN, and 401 must come exactly when it should. Checks every reply:
 * a body of body_len bytes; JSON bodies parse; the route is route_match()'s; 405 has
 * Allow; a 404 repeats the path as route_shown() gives it; route_blocking() agrees with
 * the route; only the page (GET or HEAD /, token or not) is HTML, with a CSP;
 * route_shown() gives valid UTF-8 within its bound.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "fake_env.h"
#include "routes.h"

static void trap_if(bool bad)
{
	if (bad)
		__builtin_trap();
}

/* Next NUL-terminated field of the input (the rest when no NUL is left). */
static const char *field(const char **p, const char *end, char *buf, size_t cap)
{
	size_t n = (size_t)(end - *p);
	const char *nul = memchr(*p, '\0', n);
	if (nul)
		n = (size_t)(nul - *p);
	if (n >= cap)
		n = cap - 1;
	memcpy(buf, *p, n);
	buf[n] = '\0';
	*p = nul ? nul + 1 : end;
	return buf;
}

static void check_shown(const char *s, size_t max, bool query)
{
	char out[64];
	json_t *j;
	size_t n;

	route_shown(s, max, query, out, sizeof out);
	n = strlen(out);
	trap_if(n > (max < sizeof out - 4 ? max : sizeof out - 4) + 3);
	/* jansson refuses invalid UTF-8: so what it accepts is valid */
	j = json_string(out);
	trap_if(j == NULL);
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char method[256], path[4096], authz[512];
	static const char token[] = "fuzz-token-0123456789";
	fake f;
	/* one memo across inputs, as one server keeps it across requests */
	static route_memo memo;
	static int memo_ready;
	route_env env = {fake_health, fake_stats, fake_service, fake_shutting_down,
	                 &f,          NULL,       &memo};
	if (!memo_ready) {
		route_memo_init(&memo);
		memo_ready = 1;
	}
	route_reply r;
	const char *p, *end;
	bool get;
	json_t *j;

	if (size > 8192)
		return 0;
	fake_from_bytes(&f, &data, &size);
	p = (const char *)data;
	end = p + size;
	field(&p, end, method, sizeof method);
	field(&p, end, path, sizeof path);
	field(&p, end, f.health.error, sizeof f.health.error);
	field(&p, end, authz, sizeof authz);
	/* an odd size configures METRICS_TOKEN; an empty field sends no header */
	if (size & 1)
		env.metrics_token = token;

	route_handle(&env, &(route_request){method, path, authz[0] ? authz : NULL, 0},
	             &r);
	get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
	trap_if(r.body == NULL || r.content_type == NULL);
	trap_if(r.body_len != strlen(r.body));
	trap_if(r.route != route_match(path));
	trap_if(route_blocking(method, path) !=
	        (get && (r.route == ROUTE_HEALTH || r.route == ROUTE_READYZ)));
	trap_if((r.status == 405) != (r.route != ROUTE_OTHER && !get));
	trap_if((r.status == 405) != (r.allow != NULL));
	trap_if((r.status == 404) != (r.route == ROUTE_OTHER));
	/* 401 only with a token configured, on the metrics routes, and exactly
	 * when the header does not carry that token */
	bool guarded = env.metrics_token && get &&
	               (r.route == ROUTE_METRICS || r.route == ROUTE_POOL ||
	                r.route == ROUTE_PROMETHEUS);
	trap_if((r.status == 401) !=
	        (guarded &&
	         auth_check_bearer(authz[0] ? authz : NULL, token) != AUTH_OK));
	if (strcmp(r.content_type, ROUTE_TYPE_JSON) == 0) {
		j = json_loads(r.body, 0, NULL);
		trap_if(j == NULL);
		if (r.status == 404) {
			char shown[ROUTE_PATH_SHOWN_MAX + 4];
			route_shown(path, ROUTE_PATH_SHOWN_MAX, false, shown,
			            sizeof shown);
			trap_if(strcmp(json_string_value(json_object_get(j, "path")),
			               shown) != 0);
		}
		json_decref(j);
	} else if (strcmp(r.content_type, ROUTE_TYPE_HTML) == 0) {
		/* the page: open whatever the token, its bytes, its policy */
		trap_if(r.route != ROUTE_PAGE || r.status != 200 || !get);
		trap_if(r.body_owned || r.csp == NULL);
	} else {
		trap_if(r.route != ROUTE_PROMETHEUS || r.status != 200);
	}
	trap_if((r.csp != NULL) != (r.route == ROUTE_PAGE && r.status == 200));
	route_reply_free(&r);

	check_shown(path, size % 70, size & 1);
	check_shown(f.health.error, 40, true);
	return 0;
}
