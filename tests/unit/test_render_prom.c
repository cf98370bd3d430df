/* test_render_prom.c — render_prom.c: the Prometheus exposition, checked line
 * by line and by promtool; every allocation failed in turn. */
#include "testenv.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- fault injection ----
 * The renderer is compiled into this test with its allocator redirected
 * (see failalloc.h), so that each allocation it makes can be failed in turn. */
#include "failalloc.h"

#define malloc  fi_malloc
#define realloc fi_realloc
#define free    fi_free
#include "../../src/render_prom.c"
#include "../../common/sbuf.c"
#undef malloc
#undef realloc
#undef free

#include "render_fixture.h"

/* A free of a rendering: through fi_free so the live count stays balanced. */
static void rfree(char *s)
{
	fi_free(s);
}

/* ------------------------------------------------------------------ */
/* Prometheus                                                           */
/* ------------------------------------------------------------------ */

#define MAX_FAM 64

typedef struct prom_fam {
	char name[128];
	char type[16];
	bool typed;
	int samples;
	bool closed; /* a later family started: no more samples allowed */
	/* histograms */
	double last_le;
	double last_bucket;
	double inf_bucket;
	bool has_inf, has_sum, has_count;
	double count;
} prom_fam;

typedef struct prom_doc {
	prom_fam fam[MAX_FAM];
	int n;
} prom_doc;

static prom_fam *fam_find(prom_doc *d, const char *name)
{
	for (int i = 0; i < d->n; i++)
		if (strcmp(d->fam[i].name, name) == 0)
			return &d->fam[i];
	return NULL;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

static bool name_char(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
	       (!first && c >= '0' && c <= '9');
}

static double parse_value(const char *line, const char *p)
{
	char *end;
	errno = 0;
	double v = strtod(p, &end);
	if (end == p || *end != '\0' || errno != 0)
		fail_msg("bad sample value in: %s", line);
	if (!isfinite(v))
		fail_msg("non-finite sample value in: %s", line);
	return v;
}

/* Parses one label set at *pp ("{k=\"v\",...}"), checks the escapes, and
 * returns the value of label want (unescaped) in out, if present. */
static bool parse_labels(const char *line, const char **pp, const char *want, char *out,
                         size_t outlen)
{
	const char *p = *pp;
	bool found = false;
	if (*p != '{')
		return false;
	p++;
	while (*p != '}') {
		char key[64];
		size_t k = 0;
		if (!name_char(*p, true))
			fail_msg("bad label name in: %s", line);
		while (name_char(*p, false) && k < sizeof key - 1)
			key[k++] = *p++;
		key[k] = '\0';
		if (*p++ != '=' || *p++ != '"')
			fail_msg("bad label syntax in: %s", line);
		char val[256];
		size_t v = 0;
		while (*p != '"') {
			if (*p == '\0' || *p == '\n')
				fail_msg("unterminated label value in: %s", line);
			char c = *p++;
			if (c == '\\') {
				c = *p++;
				if (c == 'n')
					c = '\n';
				else if (c != '\\' && c != '"')
					fail_msg("bad escape in label value: %s", line);
			}
			if (v < sizeof val - 1)
				val[v++] = c;
		}
		val[v] = '\0';
		p++;
		if (strcmp(key, want) == 0) {
			found = true;
			size_t l = strlen(val) < outlen ? strlen(val) : outlen - 1;
			memcpy(out, val, l);
			out[l] = '\0';
		}
		if (*p == ',')
			p++;
		else if (*p != '}')
			fail_msg("bad label list in: %s", line);
	}
	*pp = p + 1;
	return found;
}

static void check_sample(prom_doc *d, const char *line, prom_fam **current)
{
	char name[128];
	size_t n = 0;
	const char *p = line;
	if (!name_char(*p, true))
		fail_msg("bad metric name in: %s", line);
	while (name_char(*p, false) && n < sizeof name - 1)
		name[n++] = *p++;
	name[n] = '\0';

	/* the family: the name itself, or a histogram's stem */
	prom_fam *f = fam_find(d, name);
	const char *suffix = NULL;
	if (f == NULL || strcmp(f->type, "histogram") == 0) {
		static const char *const sfx[] = {"_bucket", "_sum", "_count"};
		for (int i = 0; i < 3 && f == NULL; i++) {
			if (!ends_with(name, sfx[i]))
				continue;
			char stem[128];
			snprintf(stem, sizeof stem, "%.*s", (int)(n - strlen(sfx[i])),
			         name);
			prom_fam *g = fam_find(d, stem);
			if (g && strcmp(g->type, "histogram") == 0) {
				f = g;
				suffix = sfx[i];
			}
		}
		if (f && strcmp(f->type, "histogram") == 0 && suffix == NULL)
			fail_msg("histogram sample without a suffix: %s", line);
	}
	if (f == NULL)
		fail_msg("sample of a family without HELP/TYPE: %s", line);
	if (!f->typed)
		fail_msg("sample before its TYPE line: %s", line);
	if (f->closed)
		fail_msg("family %s appears twice: %s", f->name, line);
	if (*current && *current != f)
		(*current)->closed = true;
	*current = f;
	f->samples++;

	char le[64] = "";
	bool has_le = parse_labels(line, &p, "le", le, sizeof le);
	if (*p++ != ' ')
		fail_msg("expected one space before the value: %s", line);
	double v = parse_value(line, p);

	if (strcmp(f->type, "counter") == 0) {
		if (!ends_with(f->name, "_total"))
			fail_msg("counter %s does not end in _total", f->name);
		if (v < 0 || v != floor(v))
			fail_msg("counter value not a whole number: %s", line);
	} else if (strcmp(f->type, "histogram") == 0) {
		if (strcmp(suffix, "_bucket") == 0) {
			if (!has_le)
				fail_msg("bucket without le: %s", line);
			if (f->has_inf)
				fail_msg("bucket after +Inf: %s", line);
			double lev =
			        strcmp(le, "+Inf") == 0 ? INFINITY : strtod(le, NULL);
			if (f->samples > 1 && !(lev > f->last_le))
				fail_msg("le not increasing: %s", line);
			if (f->samples > 1 && v < f->last_bucket)
				fail_msg("buckets not cumulative: %s", line);
			f->last_le = lev;
			f->last_bucket = v;
			if (isinf(lev)) {
				f->has_inf = true;
				f->inf_bucket = v;
			}
		} else if (strcmp(suffix, "_sum") == 0) {
			if (!f->has_inf)
				fail_msg("_sum before the +Inf bucket: %s", line);
			if (v < 0)
				fail_msg("negative _sum: %s", line);
			f->has_sum = true;
		} else {
			if (!f->has_inf)
				fail_msg("_count before the +Inf bucket: %s", line);
			f->has_count = true;
			f->count = v;
			if (v != f->inf_bucket)
				fail_msg("%s: _count %g != +Inf bucket %g", f->name, v,
				         f->inf_bucket);
		}
	} else if (ends_with(f->name, "_total")) {
		fail_msg("non-counter %s ends in _total", f->name);
	}
}

/* Structural checks of a whole exposition; fills d. */
static void check_exposition(const char *text, prom_doc *d)
{
	memset(d, 0, sizeof *d);
	assert_true(strlen(text) > 0 && text[strlen(text) - 1] == '\n');
	prom_fam *current = NULL;
	const char *p = text;
	while (*p) {
		const char *nl = strchr(p, '\n');
		assert_non_null(nl);
		char line[1024];
		assert_true((size_t)(nl - p) < sizeof line);
		memcpy(line, p, (size_t)(nl - p));
		line[nl - p] = '\0';
		p = nl + 1;

		char name[128], rest[512];
		if (strncmp(line, "# HELP ", 7) == 0) {
			if (sscanf(line + 7, "%127s %511[^\n]", name, rest) != 2)
				fail_msg("HELP without text: %s", line);
			if (fam_find(d, name))
				fail_msg("second HELP for %s", name);
			assert_true(d->n < MAX_FAM);
			if (current)
				current->closed = true;
			current = &d->fam[d->n++];
			snprintf(current->name, sizeof current->name, "%s", name);
		} else if (strncmp(line, "# TYPE ", 7) == 0) {
			if (sscanf(line + 7, "%127s %511s", name, rest) != 2)
				fail_msg("bad TYPE: %s", line);
			prom_fam *f = fam_find(d, name);
			if (f == NULL || f != current || f->samples > 0)
				fail_msg("TYPE of %s not right after its HELP", name);
			if (f->typed)
				fail_msg("second TYPE for %s", name);
			if (strcmp(rest, "gauge") && strcmp(rest, "counter") &&
			    strcmp(rest, "histogram"))
				fail_msg("unexpected type %s", rest);
			snprintf(f->type, sizeof f->type, "%.15s", rest);
			f->typed = true;
		} else if (line[0] == '#' || line[0] == '\0') {
			fail_msg("unexpected line: \"%s\"", line);
		} else {
			check_sample(d, line, &current);
		}
	}
	for (int i = 0; i < d->n; i++) {
		prom_fam *f = &d->fam[i];
		if (!f->typed || f->samples == 0)
			fail_msg("family %s has no TYPE or no samples", f->name);
		if (strcmp(f->type, "histogram") == 0 &&
		    !(f->has_inf && f->has_sum && f->has_count))
			fail_msg("histogram %s incomplete", f->name);
	}
}

/* The value of the sample line that starts with prefix (name and labels). */
static double sample_value(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, prefix, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	fail_msg("no sample %s", prefix);
	return -1;
}

static bool has_line_prefix(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, prefix, n) == 0)
			return true;
	return false;
}

static void test_prometheus_structure(void **state)
{
	(void)state;
	pqpool_stats st;
	example_stats(&st);
	st.utilization = 25;
	st.error_rate = 1.5;
	st.avg_response_ms = 2.5;
	char *s = pqpool_render_prometheus(&st);
	prom_doc d;
	check_exposition(s, &d);

	static const struct {
		const char *name, *type;
	} want[] = {
	        {PROM_CONN_COUNT, "gauge"},
	        {"db_client_connection_max", "gauge"},
	        {"db_client_connection_idle_min", "gauge"},
	        {"db_client_connection_pending_requests", "gauge"},
	        {"db_client_connection_utilization_ratio", "gauge"},
	        {"db_client_connection_recent_error_ratio", "gauge"},
	        {"db_client_connection_recent_response_time_seconds", "gauge"},
	        {"db_client_connection_acquires_total", "counter"},
	        {"db_client_connection_timeouts_total", "counter"},
	        {"db_client_connection_opened_total", "counter"},
	        {"db_client_connection_connect_failures_total", "counter"},
	        {"db_client_connection_closed_total", "counter"},
	        {"db_client_connection_queries_total", "counter"},
	        {"db_client_connection_query_errors_total", "counter"},
	        {"db_client_connection_query_timeouts_total", "counter"},
	        {"db_client_connection_rollbacks_total", "counter"},
	        {"db_client_connection_retries_total", "counter"},
	        {"db_client_connection_lease_warnings_total", "counter"},
	        {"db_client_connection_errors_total", "counter"},
	        {"db_client_connection_wait_time_seconds", "histogram"},
	        {"db_client_operation_duration_seconds", "histogram"},
	        {"db_client_connection_create_time_seconds", "histogram"},
	        {"db_client_connection_pipeline_depth", "histogram"},
	        {"db_client_connection_pipeline_wait_time_seconds", "histogram"},
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		prom_fam *f = fam_find(&d, want[i].name);
		if (f == NULL)
			fail_msg("family %s missing", want[i].name);
		assert_string_equal(f->type, want[i].type);
	}

	assert_true(sample_value(s, PROM_CONN_COUNT "{state=\"idle\"}") == 4);
	assert_true(sample_value(s, PROM_CONN_COUNT "{state=\"used\"}") == 1);
	assert_true(sample_value(s, "db_client_connection_max") == 20);
	assert_true(sample_value(s, "db_client_connection_idle_min") == 5);
	assert_true(sample_value(s, "db_client_connection_pending_requests") == 0);
	assert_true(sample_value(s, "db_client_connection_utilization_ratio") == 0.25);
	assert_true(sample_value(s, "db_client_connection_recent_error_ratio") == 0.015);
	assert_true(
	        sample_value(s, "db_client_connection_recent_response_time_seconds") ==
	        0.0025);
	assert_true(sample_value(s, "db_client_connection_acquires_total") == 1000);
	assert_true(sample_value(s, "db_client_connection_timeouts_total") == 2);
	for (int r = 0; r < PQPOOL_CLOSE_REASONS; r++) {
		char pfx[128];
		snprintf(pfx, sizeof pfx,
		         "db_client_connection_closed_total{reason=\"%s\"}",
		         pqpool_close_reason_text((pqpool_close_reason)r));
		assert_true(sample_value(s, pfx) == (double)st.closed_by[r]);
	}
	assert_true(sample_value(s, "db_client_connection_errors_total{class=\"08\"}") ==
	            5);
	assert_true(sample_value(s, "db_client_connection_errors_total{class=\"23\"}") ==
	            1);
	assert_true(
	        sample_value(s, "db_client_connection_errors_total{class=\"client\"}") ==
	        1);
	assert_int_equal(fam_find(&d, "db_client_connection_errors_total")->samples, 3);

	/* le in seconds from the ms bounds, cumulative, _count == +Inf */
	const char *h = "db_client_operation_duration_seconds";
	char pfx[160];
	snprintf(pfx, sizeof pfx, "%s_bucket{le=\"0.0001\"}", h);
	assert_true(sample_value(s, pfx) == 10);
	snprintf(pfx, sizeof pfx, "%s_bucket{le=\"0.00025\"}", h);
	assert_true(sample_value(s, pfx) == 25);
	snprintf(pfx, sizeof pfx, "%s_bucket{le=\"0.05\"}", h);
	assert_true(sample_value(s, pfx) == 5000);
	snprintf(pfx, sizeof pfx, "%s_bucket{le=\"5\"}", h);
	assert_true(sample_value(s, pfx) == 10000);
	snprintf(pfx, sizeof pfx, "%s_bucket{le=\"+Inf\"}", h);
	assert_true(sample_value(s, pfx) == 10000);
	snprintf(pfx, sizeof pfx, "%s_count", h);
	assert_true(sample_value(s, pfx) == 10000);
	snprintf(pfx, sizeof pfx, "%s_sum", h);
	assert_near(sample_value(s, pfx), 500.05, 1e-9);
	assert_int_equal(fam_find(&d, h)->samples, PQPOOL_HIST_BUCKETS + 2);
	assert_true(sample_value(s, "db_client_connection_create_time_seconds_count") ==
	            7);

	/* depth buckets in statements, cumulative; the wait in seconds */
	static const struct {
		const char *sample;
		double want;
	} pipe[] = {
	        {"db_client_connection_pipeline_depth_bucket{le=\"1\"}", 100},
	        {"db_client_connection_pipeline_depth_bucket{le=\"2\"}", 100},
	        {"db_client_connection_pipeline_depth_bucket{le=\"4\"}", 400},
	        {"db_client_connection_pipeline_depth_bucket{le=\"64\"}", 1000},
	        {"db_client_connection_pipeline_depth_bucket{le=\"+Inf\"}", 1000},
	        {"db_client_connection_pipeline_depth_sum", 100 + 300 * 3 + 600 * 64},
	        {"db_client_connection_pipeline_wait_time_seconds_bucket{le=\"0.001\"}",
	         0},
	        {"db_client_connection_pipeline_wait_time_seconds_bucket{le=\"0.0025\"}",
	         400},
	        {"db_client_connection_pipeline_wait_time_seconds_count", 400},
	};
	for (size_t i = 0; i < sizeof pipe / sizeof pipe[0]; i++)
		if (sample_value(s, pipe[i].sample) != pipe[i].want)
			fail_msg("%s: %g, expected %g", pipe[i].sample,
			         sample_value(s, pipe[i].sample), pipe[i].want);
	assert_near(
	        sample_value(s, "db_client_connection_pipeline_wait_time_seconds_sum"),
	        0.8, 1e-9);
	assert_int_equal(fam_find(&d, "db_client_connection_pipeline_depth")->samples,
	                 PQPOOL_DEPTH_BUCKETS + 2);
	rfree(s);
}

static void test_prometheus_edge_values(void **state)
{
	(void)state;
	pqpool_stats st = {0};
	st.utilization = NAN;
	st.error_rate = INFINITY;
	st.avg_response_ms = -INFINITY;
	st.wait.sum_ms = NAN;
	st.idle = -1; /* a nonsense count is not printed as a huge unsigned */
	/* class names that need escaping, or are not text at all */
	strcpy(st.error_class[0], "a\"b\\c");
	st.errors_by_class[0] = 1;
	strcpy(st.error_class[1], "x\ny");
	st.errors_by_class[1] = 2;
	/* counts disagreeing with the buckets, as a racy snapshot might */
	st.query.count = 5;
	st.query.buckets[3] = 4;
	st.queries = UINT64_MAX;
	char *s = pqpool_render_prometheus(&st);
	prom_doc d;
	check_exposition(s, &d);
	assert_null(strstr(s, "NaN"));
	assert_null(strstr(s, "Inf "));
	assert_true(sample_value(s, "db_client_connection_utilization_ratio") == 0);
	assert_true(sample_value(s, "db_client_connection_recent_error_ratio") == 0);
	assert_true(sample_value(s, PROM_CONN_COUNT "{state=\"idle\"}") == 0);
	assert_true(has_line_prefix(
	        s, "db_client_connection_errors_total{class=\"a\\\"b\\\\c\"} 1\n"));
	assert_true(has_line_prefix(
	        s, "db_client_connection_errors_total{class=\"x?y\"} 2\n"));
	assert_true(has_line_prefix(
	        s, "db_client_connection_queries_total 18446744073709551615\n"));
	assert_true(sample_value(s, "db_client_operation_duration_seconds_count") == 4);
	rfree(s);

	/* no error class yet: no errors_total family at all, rather than a
	 * family without samples */
	memset(&st, 0, sizeof st);
	s = pqpool_render_prometheus(&st);
	check_exposition(s, &d);
	assert_null(fam_find(&d, "db_client_connection_errors_total"));
	assert_non_null(fam_find(&d, "db_client_connection_closed_total"));
	assert_int_equal(fam_find(&d, "db_client_connection_closed_total")->samples,
	                 PQPOOL_CLOSE_REASONS);
	rfree(s);
}

/* The escaping helpers on inputs the renderers never produce today. */
static void test_prometheus_escaping(void **state)
{
	(void)state;
	pqc_sbuf b = PQC_SBUF_INIT;
	prom_label(&b, "k", "a\\b\"c\nd");
	prom_help(&b, "m", "gauge", "line\\one\nline two");
	char *s = pqc_sbuf_finish(&b);
	assert_string_equal(s, "{k=\"a\\\\b\\\"c\\nd\"}"
	                       "# HELP m line\\\\one\\nline two\n# TYPE m gauge\n");
	rfree(s);
}

/* Runs promtool check metrics on text; returns its exit status and its
 * output (owned) in *out. */
static int run_promtool(const char *text, char **out)
{
	char path[] = "/tmp/test_render_promXXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	size_t len = strlen(text);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);

	char cmd[256];
	snprintf(cmd, sizeof cmd, "promtool check metrics < %s 2>&1", path);
	FILE *pf = popen(cmd, "r");
	assert_non_null(pf);
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	assert_non_null(buf);
	size_t got;
	while ((got = fread(buf + n, 1, cap - n - 1, pf)) > 0) {
		n += got;
		if (cap - n - 1 == 0) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
	}
	buf[n] = '\0';
	int rc = pclose(pf);
	unlink(path);
	*out = buf;
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void require_promtool(void)
{
	if (system("command -v promtool >/dev/null 2>&1") != 0)
		fail_msg("promtool not found in PATH: install the Debian package "
		         "\"prometheus\" (scripts/deps.sh does)");
}

static void check_with_promtool(const pqpool_stats *st)
{
	char *s = pqpool_render_prometheus(st);
	char *out;
	int rc;
	assert_non_null(s);
	/* the whole exposition passes the linter with nothing to say */
	rc = run_promtool(s, &out);
	if (rc != 0 || out[0] != '\0')
		fail_msg("promtool exit %d, output:\n%s\n--- input:\n%s", rc, out, s);
	free(out);
	rfree(s);
}

static void test_prometheus_promtool(void **state)
{
	(void)state;
	require_promtool();

	/* promtool itself must be able to fail, or this test proves nothing */
	char *out;
	int rc = run_promtool(
	        "# HELP x_total X.\n# TYPE x_total gauge\nx_total{a=\"b} 1\n", &out);
	assert_int_not_equal(rc, 0);
	free(out);

	pqpool_stats st;
	example_stats(&st);
	check_with_promtool(&st);
	memset(&st, 0, sizeof st);
	check_with_promtool(&st);
	strcpy(st.error_class[0], "a\"b\\c");
	st.errors_by_class[0] = 1;
	st.utilization = NAN;
	check_with_promtool(&st);
	/* several hosts, one with a name to escape */
	example_stats(&st);
	st.nhosts = 2;
	st.hosts[0] = (pqpool_host){
	        "db1:5432", PQPOOL_ROLE_PRIMARY, PQPOOL_HOST_UP, 4, 1, 3, 0, -1};
	st.hosts[1] = (pqpool_host){"d\"b\\2:5432",
	                            PQPOOL_ROLE_STANDBY,
	                            PQPOOL_HOST_BANNED,
	                            2,
	                            0,
	                            2,
	                            3,
	                            1500};
	check_with_promtool(&st);
	char *text = pqpool_render_prometheus(&st);
	assert_non_null(strstr(text,
	                       "db_client_connections_usage_by_host{host=\"db1:5432\","
	                       "role=\"primary\",state=\"idle\"} 3\n"));
	assert_non_null(strstr(text, "db_client_host_up{host=\"d\\\"b\\\\2:5432\","
	                             "role=\"standby\"} 0\n"));
	assert_non_null(strstr(text,
	                       "db_client_host_replication_lag_seconds{host=\"d\\\"b"
	                       "\\\\2:5432\",role=\"standby\"} 1.5\n"));
	assert_null(strstr(text, "db_client_host_replication_lag_seconds{host=\"db1"));
	rfree(text);
}

/* ---- allocation failures ---- */

typedef char *(*render_fn)(const void *arg);

static char *r_prom(const void *arg)
{
	return pqpool_render_prometheus(arg);
}

/* Fails each allocation in turn: the renderer returns NULL or the same
 * text as without failures, and frees everything it took either way. */
static void fault_loop(render_fn fn, const void *arg)
{
	fi_fail_at = -1;
	fi_count = 0;
	fi_live = 0;
	char *ref = fn(arg);
	assert_non_null(ref);
	long total = fi_count;
	assert_true(total > 0);
	int nulls = 0;
	for (long k = 0; k < total; k++) {
		fi_fail_at = k;
		fi_count = 0;
		fi_hit = false;
		char *s = fn(arg);
		assert_true(fi_hit);
		if (s == NULL)
			nulls++;
		else {
			assert_string_equal(s, ref);
			rfree(s);
		}
		if (fi_live != 1) /* only ref is still out */
			fail_msg("allocation %ld of %ld failed: %ld blocks leaked", k,
			         total, fi_live - 1);
	}
	assert_true(nulls > 0);
	fi_fail_at = -1;
	rfree(ref);
	assert_int_equal(fi_live, 0);
}

static void test_alloc_failures(void **state)
{
	(void)state;
	pqpool_stats st;
	example_stats(&st);
	st.waiting = 2;
	st.utilization = 90;
	fault_loop(r_prom, &st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_prometheus_structure),
	        cmocka_unit_test(test_prometheus_edge_values),
	        cmocka_unit_test(test_prometheus_escaping),
	        cmocka_unit_test(test_prometheus_promtool),
	        cmocka_unit_test(test_alloc_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
