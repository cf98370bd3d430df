/* test_config.c — config.c: the configuration from an injected environment,
 * strict validation, defaults, clearing; every allocation failed in turn. */
#include "testenv.h"

#include <libpq-fe.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- fault injection ----
 * The code under test is compiled into this test with its allocator
 * redirected (see failalloc.h), so that each allocation it makes can be
 * failed in turn. */
#include "failalloc.h"

#define malloc  fi_malloc
#define realloc fi_realloc
#define free    fi_free
#include "../../src/config.c"
#include "../../src/conninfo.c"
#include "../../src/secret.c"
#include "../../common/sbuf.c"
#undef malloc
#undef realloc
#undef free

/* ---- an injected environment: NULL-terminated name, value pairs ---- */

#define ENV(...) ((const char *const[]){__VA_ARGS__, NULL})

static const char *table_lookup(void *arg, const char *name)
{
	for (const char *const *p = arg; *p; p += 2)
		if (strcmp(p[0], name) == 0)
			return p[1];
	return NULL;
}

static int load(pqpool_config *cfg, const char *const *env, char *err, size_t errlen)
{
	return pqpool_config_from_env(cfg, table_lookup, (void *)env, err, errlen);
}

/* Loads env, which must succeed; the result must also pass validation. */
static void load_ok(pqpool_config *cfg, const char *const *env)
{
	char err[PQPOOL__ERRLEN] = "untouched";
	assert_status(PQPOOL_OK, load(cfg, env, err, sizeof err));
	assert_string_equal(err, "");
	assert_string_equal(pqpool_errmsg(), "");
	assert_non_null(cfg->priv_);
	assert_status(PQPOOL_OK, pqpool_config_validate(cfg, NULL, 0));
}

/* A failed load leaves *cfg exactly as pqpool_config_init() makes it. */
static void assert_cleared(const pqpool_config *cfg)
{
	pqpool_config def;
	pqpool_config_init(&def);
	if (memcmp(cfg, &def, sizeof def) != 0)
		fail_msg("config not left cleared after a failure");
}

/* Loads env, which must fail with exactly `want` in err and pqpool_errmsg(). */
static void expect_error(const char *const *env, const char *want)
{
	pqpool_config cfg;
	char err[PQPOOL__ERRLEN];
	memset(&cfg, 0x5a, sizeof cfg); /* garbage: the call must reset it */
	int st = load(&cfg, env, err, sizeof err);
	if (st != PQPOOL_EINVAL)
		fail_msg("status %d for an env that should fail with: %s", st, want);
	if (strcmp(err, want) != 0)
		fail_msg("err \"%s\" != expected \"%s\"", err, want);
	assert_string_equal(pqpool_errmsg(), want);
	assert_cleared(&cfg);
}

/* Loads env, which must fail; returns the message (static) for more checks,
 * after checking that `secret` appears neither in it nor in pqpool_errmsg(). */
static const char *expect_failure_hiding(const char *const *env, const char *secret)
{
	static char err[PQPOOL__ERRLEN];
	pqpool_config cfg;
	assert_status(PQPOOL_EINVAL, load(&cfg, env, err, sizeof err));
	assert_cleared(&cfg);
	assert_string_equal(pqpool_errmsg(), err);
	if (strstr(err, secret))
		fail_msg("secret \"%s\" leaked into \"%s\"", secret, err);
	for (const char *c = err; *c; c++)
		if ((unsigned char)*c < 0x20)
			fail_msg("control character in \"%s\"", err);
	return err;
}

static int int_field(const pqpool_config *cfg, size_t off)
{
	return *(const int *)(const void *)((const char *)cfg + off);
}

static const char *opt_value(PQconninfoOption *o, const char *kw)
{
	for (; o->keyword; o++)
		if (strcmp(o->keyword, kw) == 0)
			return o->val;
	return NULL;
}

/* The value libpq itself reads for kw from conninfo; static copy, NULL if unset. */
static const char *libpq_reads(const char *conninfo, const char *kw)
{
	static char out[512];
	char *perr = NULL;
	PQconninfoOption *o = PQconninfoParse(conninfo, &perr);
	if (!o)
		fail_msg("libpq cannot parse \"%s\": %s", conninfo, perr ? perr : "?");
	const char *v = opt_value(o, kw);
	if (v)
		snprintf(out, sizeof out, "%s", v);
	PQconninfoFree(o);
	return v ? out : NULL;
}

/* ---- integers ---- */

#define OFF(f) offsetof(pqpool_config, f)
static const struct int_var {
	const char *env;
	size_t off;
	int min, max, def;
	const char *other, *other_val; /* a companion setting that the bounds need */
} int_vars[] = {
        {"DB_POOL_MAX", OFF(pool_max), 1, 10000, 20, "DB_POOL_MIN", "0"},
        {"DB_POOL_MIN", OFF(pool_min), 0, 10000, 5, "DB_POOL_MAX", "10000"},
        {"DB_IDLE_TIMEOUT", OFF(idle_timeout_ms), 0, 86400000, 30000, "NODE_ENV", "test"},
        {"DB_CONNECTION_TIMEOUT", OFF(connection_timeout_ms), 1, 3600000, 5000,
         "NODE_ENV", "test"},
        {"DB_STATEMENT_TIMEOUT", OFF(statement_timeout_ms), 0, INT_MAX, 30000, "NODE_ENV",
         "test"},
        {"DB_QUERY_TIMEOUT", OFF(query_timeout_ms), 0, INT_MAX, 30000, "NODE_ENV",
         "test"},
        {"DB_MAX_LIFETIME", OFF(max_lifetime_ms), 0, INT_MAX, 1800000, "NODE_ENV",
         "test"},
        {"DB_LEASE_WARN", OFF(lease_warn_ms), 0, INT_MAX, 60000, "NODE_ENV", "test"},
        {"DB_RETRY_ATTEMPTS", OFF(retry_attempts), 1, 100, 3, "NODE_ENV", "test"},
        {"DB_RETRY_BASE_DELAY", OFF(retry_base_delay_ms), 0, 600000, 1000, "NODE_ENV",
         "test"},
        {"DB_RETRY_MAX_DELAY", OFF(retry_max_delay_ms), 0, 3600000, 30000, "NODE_ENV",
         "test"},
        {"DB_RETRY_DEADLINE", OFF(retry_deadline_ms), 1, INT_MAX, 60000, "NODE_ENV",
         "test"},
        {"DB_HEALTH_SLOW", OFF(health_slow_ms), 1, INT_MAX, 1000, "NODE_ENV", "test"},
};
#define N_INT_VARS (sizeof int_vars / sizeof int_vars[0])

static void test_defaults(void **state)
{
	(void)state;
	pqpool_config cfg;
	memset(&cfg, 0x5a, sizeof cfg);
	pqpool_config_init(&cfg);
	assert_int_equal(cfg.pool_max, 20);
	assert_int_equal(cfg.pool_min, 5);
	assert_int_equal(cfg.idle_timeout_ms, 30000);
	assert_int_equal(cfg.connection_timeout_ms, 5000);
	assert_int_equal(cfg.statement_timeout_ms, 30000);
	assert_int_equal(cfg.query_timeout_ms, 30000);
	assert_int_equal(cfg.max_lifetime_ms, 1800000);
	assert_int_equal(cfg.validate_after_ms, 1000);
	assert_int_equal(cfg.lease_warn_ms, 60000);
	assert_int_equal(cfg.retry_attempts, 3);
	assert_int_equal(cfg.retry_base_delay_ms, 1000);
	assert_int_equal(cfg.retry_max_delay_ms, 30000);
	assert_int_equal(cfg.retry_deadline_ms, 60000);
	assert_int_equal(cfg.health_slow_ms, 1000);
	assert_true(cfg.health_share);
	assert_false(cfg.fail_fast);
	assert_null(cfg.conninfo);
	assert_null(cfg.ssl_mode);
	assert_null(cfg.ssl_cert);
	assert_null(cfg.ssl_key);
	assert_null(cfg.ssl_root_cert);
	assert_null(cfg.health_query);
	assert_null(cfg.log_fn);
	assert_null(cfg.log_arg);
	assert_null(cfg.priv_);
	assert_status(PQPOOL_OK, pqpool_config_validate(&cfg, NULL, 0));
}

/* An empty environment gives the defaults and the spec's default target. */
static void test_env_empty(void **state)
{
	(void)state;
	pqpool_config cfg;
	const char *const none[] = {NULL};
	load_ok(&cfg, none);
	for (size_t i = 0; i < N_INT_VARS; i++)
		assert_int_equal(int_field(&cfg, int_vars[i].off), int_vars[i].def);
	assert_true(cfg.health_share);
	assert_false(cfg.fail_fast);
	assert_null(cfg.health_query);
	assert_string_equal(libpq_reads(cfg.conninfo, "host"), "localhost");
	assert_string_equal(libpq_reads(cfg.conninfo, "port"), "5432");
	assert_string_equal(libpq_reads(cfg.conninfo, "dbname"), "hyperpage");
	assert_string_equal(libpq_reads(cfg.conninfo, "user"), "hyperpage");
	assert_string_equal(libpq_reads(cfg.conninfo, "password"), "password");
	assert_string_equal(cfg.ssl_mode, "disable");
	assert_null(cfg.ssl_cert);
	assert_null(cfg.ssl_key);
	assert_null(cfg.ssl_root_cert);
	pqpool_config_clear(&cfg);
	assert_cleared(&cfg);
}

static void test_env_ints_good(void **state)
{
	(void)state;
	char v[32];
	for (size_t i = 0; i < N_INT_VARS; i++) {
		const struct int_var *iv = &int_vars[i];
		pqpool_config cfg;
		const int good[] = {iv->min, iv->max, iv->min + 1};
		for (size_t j = 0; j < 3; j++) {
			snprintf(v, sizeof v, "%d", good[j]);
			load_ok(&cfg, ENV(iv->env, v, iv->other, iv->other_val));
			if (int_field(&cfg, iv->off) != good[j])
				fail_msg("%s=%s read as %d", iv->env, v,
				         int_field(&cfg, iv->off));
			pqpool_config_clear(&cfg);
		}
		/* leading zeros are still plain decimal */
		snprintf(v, sizeof v, "00%d", iv->min + 1);
		load_ok(&cfg, ENV(iv->env, v, iv->other, iv->other_val));
		assert_int_equal(int_field(&cfg, iv->off), iv->min + 1);
		pqpool_config_clear(&cfg);
		/* empty means unset */
		load_ok(&cfg, ENV(iv->env, "", iv->other, iv->other_val));
		assert_int_equal(int_field(&cfg, iv->off), iv->def);
		pqpool_config_clear(&cfg);
	}
}

static void test_env_ints_bad(void **state)
{
	(void)state;
	char above[32], below[32], want[PQPOOL__ERRLEN];
	for (size_t i = 0; i < N_INT_VARS; i++) {
		const struct int_var *iv = &int_vars[i];
		snprintf(above, sizeof above, "%lld", (long long)iv->max + 1);
		snprintf(below, sizeof below, "%lld", (long long)iv->min - 1);
		const char *bad_values[] = {"abc",
		                            "20abc",
		                            "20 ",
		                            " 20",
		                            "+5",
		                            "-1",
		                            "-0",
		                            "0x10",
		                            "1e3",
		                            "1.5",
		                            "1_000",
		                            "99999999999999999999",
		                            "18446744073709551617",
		                            "4294967297",
		                            above,
		                            below};
		for (size_t j = 0; j < sizeof bad_values / sizeof bad_values[0]; j++) {
			snprintf(want, sizeof want,
			         "%s=\"%s\": expected an integer from %d to %d", iv->env,
			         bad_values[j], iv->min, iv->max);
			expect_error(
			        ENV(iv->env, bad_values[j], iv->other, iv->other_val),
			        want);
		}
	}
}

static void test_env_pool_bounds(void **state)
{
	(void)state;
	pqpool_config cfg;
	expect_error(ENV("DB_POOL_MIN", "30"),
	             "DB_POOL_MIN=30 is greater than DB_POOL_MAX=20");
	expect_error(ENV("DB_POOL_MAX", "7", "DB_POOL_MIN", "8"),
	             "DB_POOL_MIN=8 is greater than DB_POOL_MAX=7");
	load_ok(&cfg, ENV("DB_POOL_MAX", "8", "DB_POOL_MIN", "8"));
	assert_int_equal(cfg.pool_min, 8);
	assert_int_equal(cfg.pool_max, 8);
	pqpool_config_clear(&cfg);
	/* an unset minimum follows a maximum below its default */
	load_ok(&cfg, ENV("DB_POOL_MAX", "3"));
	assert_int_equal(cfg.pool_max, 3);
	assert_int_equal(cfg.pool_min, 3);
	pqpool_config_clear(&cfg);
	load_ok(&cfg, ENV("DB_POOL_MAX", "3", "DB_POOL_MIN", ""));
	assert_int_equal(cfg.pool_min, 3);
	pqpool_config_clear(&cfg);
	/* a bad maximum is reported as such, not as a bound conflict */
	expect_error(ENV("DB_POOL_MAX", "0", "DB_POOL_MIN", "30"),
	             "DB_POOL_MAX=\"0\": expected an integer from 1 to 10000");
}

/* ---- booleans and strings ---- */

static void test_env_bools(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		bool value;
	} good[] = {{"true", true},   {"TRUE", true},   {"True", true}, {"1", true},
	            {"yes", true},    {"YES", true},    {"on", true},   {"On", true},
	            {"false", false}, {"FALSE", false}, {"0", false},   {"no", false},
	            {"No", false},    {"off", false},   {"OFF", false}};
	const char *names[] = {"DB_HEALTH_SHARE", "DB_FAIL_FAST",
	                       "DB_PREPARED_STATEMENTS"};
	const size_t offs[] = {OFF(health_share), OFF(fail_fast), OFF(prepare)};
	char want[PQPOOL__ERRLEN];
	for (size_t n = 0; n < 3; n++) {
		for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
			pqpool_config cfg;
			load_ok(&cfg, ENV(names[n], good[i].text));
			bool got = *(bool *)((char *)&cfg + offs[n]);
			if (got != good[i].value)
				fail_msg("%s=%s read as %d", names[n], good[i].text, got);
			pqpool_config_clear(&cfg);
		}
		const char *bad_values[] = {"maybe", "2", " true",   "true ",
		                            "t",     "y", "enabled", "-1"};
		for (size_t i = 0; i < sizeof bad_values / sizeof bad_values[0]; i++) {
			snprintf(want, sizeof want, "%s=\"%s\": expected true or false",
			         names[n], bad_values[i]);
			expect_error(ENV(names[n], bad_values[i]), want);
		}
	}
	pqpool_config cfg;
	load_ok(&cfg, ENV("DB_HEALTH_SHARE", "", "DB_FAIL_FAST", "",
	                  "DB_PREPARED_STATEMENTS", ""));
	assert_true(cfg.health_share);
	assert_false(cfg.fail_fast);
	assert_true(cfg.prepare);
	pqpool_config_clear(&cfg);
}

static void test_env_health_query(void **state)
{
	(void)state;
	pqpool_config cfg;
	const char *q = "SELECT 1 FROM pg_database LIMIT 1";
	const char *const *env = ENV("DB_HEALTH_QUERY", q);
	load_ok(&cfg, env);
	assert_string_equal(cfg.health_query, q);
	assert_ptr_not_equal(cfg.health_query, q); /* a copy, owned by cfg */
	pqpool_config_clear(&cfg);
	assert_null(cfg.health_query);
	load_ok(&cfg, ENV("DB_HEALTH_QUERY", ""));
	assert_null(cfg.health_query);
	pqpool_config_clear(&cfg);
	expect_error(ENV("DB_HEALTH_QUERY", "  \t "),
	             "DB_HEALTH_QUERY=\"  ? \": expected an SQL statement");
}

/* DB_READ_TARGET takes one of three words; DB_MAX_REPLICA_LAG a bound. */
static void test_env_read_target(void **state)
{
	(void)state;
	pqpool_config cfg;
	const char *words[] = {"prefer-standby", "standby", "any"};
	for (int k = 0; k < 3; k++) {
		load_ok(&cfg,
		        ENV("DB_READ_TARGET", words[k], "DB_MAX_REPLICA_LAG", "250"));
		assert_int_equal(cfg.read_target, k);
		assert_int_equal(cfg.max_replica_lag_ms, 250);
		pqpool_config_clear(&cfg);
	}
	load_ok(&cfg, ENV("DB_POOL_MAX", "5"));
	assert_int_equal(cfg.read_target, PQPOOL_READ_PREFER_STANDBY);
	assert_int_equal(cfg.max_replica_lag_ms, 0);
	pqpool_config_clear(&cfg);
	expect_error(
	        ENV("DB_READ_TARGET", "Standby"),
	        "DB_READ_TARGET=\"Standby\": expected prefer-standby, standby or any");
	expect_error(
	        ENV("DB_MAX_REPLICA_LAG", "-1"),
	        "DB_MAX_REPLICA_LAG=\"-1\": expected an integer from 0 to 2147483647");
	pqpool_config_init(&cfg);
	cfg.read_target = 3;
	{
		char err[PQPOOL__ERRLEN];
		assert_int_equal(pqpool_config_validate(&cfg, err, sizeof err),
		                 PQPOOL_EINVAL);
		assert_non_null(strstr(err, "read_target (DB_READ_TARGET)=3"));
	}
}

/* Values are quoted safely: no control characters, bounded length. */
static void test_env_value_shown_safely(void **state)
{
	(void)state;
	char long_value[300], want[PQPOOL__ERRLEN];
	expect_error(ENV("DB_POOL_MAX", "1\n2"),
	             "DB_POOL_MAX=\"1?2\": expected an integer from 1 to 10000");
	expect_error(ENV("DB_FAIL_FAST", "yes\r\nFAKE LOG LINE\x1b[31m"),
	             "DB_FAIL_FAST=\"yes??FAKE LOG LINE?[31m\": expected true or false");
	memset(long_value, 'x', sizeof long_value - 1);
	long_value[sizeof long_value - 1] = '\0';
	snprintf(want, sizeof want, "SSL_MODE=\"%.*s...\": expected %s", PQPOOL__SHOW_MAX,
	         long_value, PQPOOL__SSL_MODES_TEXT);
	expect_error(ENV("SSL_MODE", long_value), want);
	/* exactly PQPOOL__SHOW_MAX characters are shown whole */
	long_value[PQPOOL__SHOW_MAX] = '\0';
	snprintf(want, sizeof want, "SSL_MODE=\"%s\": expected %s", long_value,
	         PQPOOL__SSL_MODES_TEXT);
	expect_error(ENV("SSL_MODE", long_value), want);
	/* a cut never splits a UTF-8 sequence: 63 ASCII then "é" (2 bytes) */
	memset(long_value, 'y', 63);
	strcpy(long_value + 63, "\xc3\xa9zzzz");
	snprintf(want, sizeof want, "SSL_MODE=\"%.63s...\": expected %s", long_value,
	         PQPOOL__SSL_MODES_TEXT);
	expect_error(ENV("SSL_MODE", long_value), want);
}

/* The first bad variable in the documented order is the one reported. */
static void test_env_error_order(void **state)
{
	(void)state;
	expect_error(ENV("DB_FAIL_FAST", "maybe", "DB_POOL_MAX", "abc", "SSL_MODE", "x"),
	             "DB_POOL_MAX=\"abc\": expected an integer from 1 to 10000");
	expect_error(ENV("DB_HEALTH_SLOW", "0", "DB_RETRY_DEADLINE", "0"),
	             "DB_RETRY_DEADLINE=\"0\": expected an integer from 1 to 2147483647");
	expect_error(ENV("SSL_MODE", "x", "DB_HEALTH_SHARE", "maybe"),
	             "DB_HEALTH_SHARE=\"maybe\": expected true or false");
	expect_error(ENV("SSL_CA_PATH", "/nonexistent/ca.pem", "SSL_CERT_PATH",
	                 "/nonexistent/cert.pem"),
	             "SSL_CERT_PATH=\"/nonexistent/cert.pem\": expected a readable file");
	expect_error(ENV("DB_POOL_MAX", "abc", "POSTGRES_PORT", "x"),
	             "POSTGRES_PORT=\"x\": expected an integer from 1 to 65535");
	expect_error(
	        ENV("DB_POOL_MAX", "abc", "DATABASE_URL", "postgresql://h/d?bogus=1"),
	        "DATABASE_URL: invalid URI query parameter: \"bogus\"");
}

static void test_env_err_buffer(void **state)
{
	(void)state;
	pqpool_config cfg;
	char small[11];
	memset(small, '#', sizeof small);
	assert_status(PQPOOL_EINVAL,
	              load(&cfg, ENV("DB_POOL_MAX", "abc"), small, sizeof small));
	assert_string_equal(small, "DB_POOL_MA");
	assert_string_equal(pqpool_errmsg(),
	                    "DB_POOL_MAX=\"abc\": expected an integer from 1 to 10000");
	/* err may be NULL, or of length 0 (left untouched) */
	assert_status(PQPOOL_EINVAL, load(&cfg, ENV("DB_POOL_MAX", "abc"), NULL, 0));
	assert_string_equal(pqpool_errmsg(),
	                    "DB_POOL_MAX=\"abc\": expected an integer from 1 to 10000");
	small[0] = '#';
	assert_status(PQPOOL_EINVAL, load(&cfg, ENV("DB_POOL_MAX", "abc"), small, 0));
	assert_int_equal(small[0], '#');
	/* success clears the thread's message */
	assert_status(PQPOOL_OK, load(&cfg, ENV("DB_POOL_MAX", "21"), NULL, 0));
	assert_string_equal(pqpool_errmsg(), "");
	pqpool_config_clear(&cfg);
	assert_status(PQPOOL_EINVAL,
	              pqpool_config_from_env(NULL, table_lookup, (void *)ENV("X", "y"),
	                                     NULL, 0));
	assert_string_not_equal(pqpool_errmsg(), "");
}

/* lookup NULL reads the real environment; compared with an explicit getenv
 * lookup rather than by changing the environment. */
static const char *real_getenv(void *arg, const char *name)
{
	(void)arg;
	return getenv(name);
}

static void test_env_default_lookup(void **state)
{
	(void)state;
	pqpool_config a, b;
	char ea[PQPOOL__ERRLEN], eb[PQPOOL__ERRLEN];
	int sa = pqpool_config_from_env(&a, NULL, NULL, ea, sizeof ea);
	int sb = pqpool_config_from_env(&b, real_getenv, NULL, eb, sizeof eb);
	assert_int_equal(sa, sb);
	assert_string_equal(ea, eb);
	if (sa == PQPOOL_OK) {
		assert_string_equal(a.conninfo, b.conninfo);
		assert_int_equal(a.pool_max, b.pool_max);
		assert_int_equal(a.statement_timeout_ms, b.statement_timeout_ms);
	}
	pqpool_config_clear(&a);
	pqpool_config_clear(&b);
}

/* All strings of a loaded config live in the one block on priv_. */
static void test_env_one_allocation(void **state)
{
	(void)state;
	char path[] = "/tmp/pqpool-test-cert-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	pqpool_config cfg;
	fi_live = 0;
	load_ok(&cfg, ENV("SSL_CERT_PATH", path, "SSL_KEY_PATH", path, "SSL_CA_PATH",
	                  path, "DB_HEALTH_QUERY", "SELECT 2", "NODE_ENV", "production"));
	assert_int_equal(fi_live, 1);
	const char *start = cfg.priv_;
	const char *end = start + malloc_usable_size(cfg.priv_);
	const char *strs[] = {cfg.conninfo, cfg.ssl_mode,      cfg.ssl_cert,
	                      cfg.ssl_key,  cfg.ssl_root_cert, cfg.health_query};
	for (size_t i = 0; i < 6; i++) {
		assert_non_null(strs[i]);
		assert_true(strs[i] >= start && strs[i] + strlen(strs[i]) < end);
	}
	pqpool_config_clear(&cfg);
	assert_int_equal(fi_live, 0);
	unlink(path);
}

/* ---- the connection target ---- */

static void test_env_postgres_parts(void **state)
{
	(void)state;
	pqpool_config cfg;
	load_ok(&cfg, ENV("POSTGRES_HOST", "db.internal", "POSTGRES_PORT", "6543",
	                  "POSTGRES_DB", "app db", "POSTGRES_USER", "svc",
	                  "POSTGRES_PASSWORD", "pw"));
	assert_string_equal(libpq_reads(cfg.conninfo, "host"), "db.internal");
	assert_string_equal(libpq_reads(cfg.conninfo, "port"), "6543");
	assert_string_equal(libpq_reads(cfg.conninfo, "dbname"), "app db");
	assert_string_equal(libpq_reads(cfg.conninfo, "user"), "svc");
	assert_string_equal(libpq_reads(cfg.conninfo, "password"), "pw");
	/* built as key=value, never as a hand-made URL */
	assert_false(is_uri(cfg.conninfo));
	pqpool_config_clear(&cfg);

	/* empty parts fall back to their defaults one by one */
	load_ok(&cfg, ENV("POSTGRES_HOST", "", "POSTGRES_USER", "only-user"));
	assert_string_equal(libpq_reads(cfg.conninfo, "host"), "localhost");
	assert_string_equal(libpq_reads(cfg.conninfo, "user"), "only-user");
	assert_string_equal(libpq_reads(cfg.conninfo, "password"), "password");
	pqpool_config_clear(&cfg);

	load_ok(&cfg, ENV("POSTGRES_PORT", "1"));
	assert_string_equal(libpq_reads(cfg.conninfo, "port"), "1");
	pqpool_config_clear(&cfg);
	load_ok(&cfg, ENV("POSTGRES_PORT", "65535"));
	assert_string_equal(libpq_reads(cfg.conninfo, "port"), "65535");
	pqpool_config_clear(&cfg);
	const char *bad_ports[] = {
	        "abc", "0", "65536", "-1", "+1", "5432 ", "99999999999999999999"};
	char want[PQPOOL__ERRLEN];
	for (size_t i = 0; i < sizeof bad_ports / sizeof bad_ports[0]; i++) {
		snprintf(want, sizeof want,
		         "POSTGRES_PORT=\"%s\": expected an integer from 1 to 65535",
		         bad_ports[i]);
		expect_error(ENV("POSTGRES_PORT", bad_ports[i]), want);
	}
}

/* Any password survives the built conninfo exactly, and masking hides it. */
static void test_env_password_round_trip(void **state)
{
	(void)state;
	const char *passwords[] = {"it's",
	                           "back\\slash",
	                           "trailing\\",
	                           "with space",
	                           "at@and:colon/",
	                           "'",
	                           "\\",
	                           "\\'",
	                           "q'\"; DROP TABLE x; --",
	                           "  padded  ",
	                           "pass=word key=v",
	                           "%41%zz?#&",
	                           "unicodé ✓",
	                           "tab\there"};
	for (size_t i = 0; i < sizeof passwords / sizeof passwords[0]; i++) {
		pqpool_config cfg;
		char masked[256];
		load_ok(&cfg, ENV("POSTGRES_PASSWORD", passwords[i], "POSTGRES_USER",
		                  "u s'er"));
		const char *got = libpq_reads(cfg.conninfo, "password");
		if (!got || strcmp(got, passwords[i]) != 0)
			fail_msg("password \"%s\" came back as \"%s\"", passwords[i],
			         got ? got : "(null)");
		assert_string_equal(libpq_reads(cfg.conninfo, "user"), "u s'er");
		assert_true(pqpool_mask_conninfo(cfg.conninfo, masked, sizeof masked) >
		            0);
		assert_string_equal(
		        masked, "postgresql://u%20s%27er:****@localhost:5432/hyperpage");
		pqpool_config_clear(&cfg);
	}
}

static void test_env_database_url(void **state)
{
	(void)state;
	pqpool_config cfg;
	const char *url =
	        "postgresql://app:s3cr3t@db.example.com:6000/appdb?application_name=web";
	/* the URL wins over the parts, which are then not used or judged */
	load_ok(&cfg, ENV("DATABASE_URL", url, "POSTGRES_HOST", "elsewhere",
	                  "POSTGRES_PORT", "not-a-port"));
	assert_string_equal(cfg.conninfo, url);
	assert_ptr_not_equal(cfg.conninfo, url);
	pqpool_config_clear(&cfg);

	const char *kv = "host=h1 port=5433 dbname=d user=u password='s3cr3t pw'";
	load_ok(&cfg, ENV("DATABASE_URL", kv));
	assert_string_equal(cfg.conninfo, kv);
	assert_string_equal(libpq_reads(cfg.conninfo, "password"), "s3cr3t pw");
	pqpool_config_clear(&cfg);

	load_ok(&cfg, ENV("DATABASE_URL", "postgres://u@h/d"));
	assert_string_equal(cfg.conninfo, "postgres://u@h/d");
	pqpool_config_clear(&cfg);

	/* empty DATABASE_URL means unset */
	load_ok(&cfg, ENV("DATABASE_URL", "", "POSTGRES_HOST", "parts-host"));
	assert_string_equal(libpq_reads(cfg.conninfo, "host"), "parts-host");
	pqpool_config_clear(&cfg);

	/* multiple hosts and an empty port item are valid libpq */
	load_ok(&cfg, ENV("DATABASE_URL", "postgresql://h1:5432,h2/d"));
	pqpool_config_clear(&cfg);
}

static void test_env_database_url_bad(void **state)
{
	(void)state;
	const char *pw = "s3cr3tpw";
	const char *m;
	expect_error(
	        ENV("DATABASE_URL", "postgresql://u:s3cr3tpw@host:notaport/db"),
	        "DATABASE_URL: port \"notaport\": expected an integer from 1 to 65535");
	expect_error(ENV("DATABASE_URL", "postgresql://u:s3cr3tpw@host:70000/db"),
	             "DATABASE_URL: port \"70000\": expected an integer from 1 to 65535");
	expect_error(ENV("DATABASE_URL", "postgresql://host/db?port=0"),
	             "DATABASE_URL: port \"0\": expected an integer from 1 to 65535");
	expect_error(ENV("DATABASE_URL", "postgresql://u:s3cr3tpw@host/db?bogus=1"),
	             "DATABASE_URL: invalid URI query parameter: \"bogus\"");
	expect_error(ENV("DATABASE_URL", "postgresql://host/db?sslmode=bogus"),
	             "DATABASE_URL: sslmode \"bogus\": expected " PQPOOL__SSL_MODES_TEXT);
	expect_error(ENV("DATABASE_URL", "host=h bogus=1"),
	             "DATABASE_URL: invalid connection option \"bogus\"");
	expect_error(ENV("DATABASE_URL", "hyperpage"),
	             "DATABASE_URL: missing \"=\" after \"hyperpage\" in connection info "
	             "string");

	/* libpq echoes the whole URI here: the password must be scrubbed out */
	m = expect_failure_hiding(ENV("DATABASE_URL", "postgresql://u:s3cr3tpw@[::1/db"),
	                          pw);
	assert_non_null(strstr(m, "postgresql://u:****@[::1/db"));
	/* not a URI for libpq (leading space): echoed as a key */
	m = expect_failure_hiding(ENV("DATABASE_URL", " postgresql://u:s3cr3tpw@h/db"),
	                          pw);
	assert_non_null(strstr(m, "postgresql://u:****@h/db"));
	/* the percent-decoded form is scrubbed too */
	m = expect_failure_hiding(ENV("DATABASE_URL", "postgres://u:s3cr%33tpw%zz@h/db"),
	                          pw);
	assert_null(strstr(m, "s3cr%33tpw"));
	assert_true(strncmp(m, "DATABASE_URL: invalid percent-encoded token", 43) == 0);
	/* a password given as a query parameter */
	m = expect_failure_hiding(
	        ENV("DATABASE_URL", "postgresql://[::1/db?password=s3cr3tpw"), pw);
	assert_non_null(strstr(m, "password=****"));
	/* key=value, unquoted with a space libpq splits on: the second word is
	 * echoed as a keyword */
	m = expect_failure_hiding(ENV("DATABASE_URL", "password=s3cr3tpw pw2nd host=h"),
	                          "pw2nd");
	assert_string_equal(
	        m, "DATABASE_URL: missing \"=\" after \"****\" in connection info "
	           "string");
	/* an unencoded '@' or '/' in the password would put part of it in the host
	 * or the database name: refused, without echoing anything */
	m = expect_failure_hiding(ENV("DATABASE_URL", "postgresql://u:s3cr@3tpw@host/db"),
	                          "3tpw");
	assert_non_null(strstr(m, "%40"));
	m = expect_failure_hiding(ENV("DATABASE_URL", "postgresql://u:s3cr/3tpw@host/db"),
	                          "3tpw");
	assert_non_null(strstr(m, "%2F"));
	m = expect_failure_hiding(ENV("DATABASE_URL", "postgresql://u:/s3cr3tpw@host/db"),
	                          pw);
	assert_true(strncmp(m, "DATABASE_URL: ", 14) == 0);
}

/* ---- SSL ---- */

static void expect_ssl(const char *const *env, const char *want)
{
	pqpool_config cfg;
	load_ok(&cfg, env);
	if (want == NULL ? cfg.ssl_mode != NULL
	                 : (cfg.ssl_mode == NULL || strcmp(cfg.ssl_mode, want) != 0))
		fail_msg("ssl_mode \"%s\", expected \"%s\"",
		         cfg.ssl_mode ? cfg.ssl_mode : "NULL", want ? want : "NULL");
	pqpool_config_clear(&cfg);
}

static void test_env_ssl_mode(void **state)
{
	(void)state;
	const char *url = "postgresql://u:p@h/d";
	expect_ssl(ENV("DATABASE_URL", url), "disable");
	expect_ssl(ENV("NODE_ENV", "development"), "disable");
	expect_ssl(ENV("NODE_ENV", "Production"),
	           "disable"); /* exact, as the spec's === */
	expect_ssl(ENV("NODE_ENV", "production"), "require");
	expect_ssl(ENV("NODE_ENV", "production", "DATABASE_URL", url), "require");
	expect_ssl(ENV("NODE_ENV", "production", "SSL_MODE", "prefer"), "prefer");
	expect_ssl(ENV("NODE_ENV", "production", "SSL_MODE", "disable"), "disable");
	expect_ssl(ENV("NODE_ENV", "", "SSL_MODE", ""), "disable");
	for (size_t i = 0; i < sizeof ssl_modes / sizeof ssl_modes[0]; i++)
		expect_ssl(ENV("SSL_MODE", ssl_modes[i]), ssl_modes[i]);
	/* the URL's own sslmode is kept outside production */
	expect_ssl(ENV("DATABASE_URL", "postgresql://h/d?sslmode=require"), NULL);
	expect_ssl(ENV("DATABASE_URL", "host=h sslmode=prefer"), NULL);
	/* in production, verification asked by the URL is stronger and kept */
	expect_ssl(ENV("NODE_ENV", "production", "DATABASE_URL",
	               "postgresql://h/d?sslmode=verify-full"),
	           NULL);
	expect_ssl(
	        ENV("NODE_ENV", "production", "DATABASE_URL", "host=h sslmode=verify-ca"),
	        NULL);
	expect_ssl(ENV("NODE_ENV", "production", "DATABASE_URL",
	               "postgresql://h/d?sslmode=disable"),
	           "require");
	expect_ssl(ENV("NODE_ENV", "production", "DATABASE_URL",
	               "postgresql://h/d?sslmode=prefer"),
	           "require");
	/* SSL_MODE wins over the URL */
	expect_ssl(ENV("SSL_MODE", "verify-ca", "DATABASE_URL",
	               "postgresql://h/d?sslmode=disable"),
	           "verify-ca");
	const char *bad_modes[] = {"bogus", "REQUIRE", "require ", "verify_full"};
	char want[PQPOOL__ERRLEN];
	for (size_t i = 0; i < sizeof bad_modes / sizeof bad_modes[0]; i++) {
		snprintf(want, sizeof want, "SSL_MODE=\"%s\": expected %s", bad_modes[i],
		         PQPOOL__SSL_MODES_TEXT);
		expect_error(ENV("SSL_MODE", bad_modes[i]), want);
	}
	assert_string_equal(PQPOOL__SSL_MODES_TEXT,
	                    "disable, allow, prefer, require, verify-ca or verify-full");
}

static void test_env_ssl_paths(void **state)
{
	(void)state;
	char path[] = "/tmp/pqpool-test-ssl-XXXXXX", want[PQPOOL__ERRLEN];
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x\n", 2), 2);
	close(fd);
	const char *names[] = {"SSL_CERT_PATH", "SSL_KEY_PATH", "SSL_CA_PATH"};
	for (size_t i = 0; i < 3; i++) {
		pqpool_config cfg;
		load_ok(&cfg, ENV(names[i], path));
		const char *got[] = {cfg.ssl_cert, cfg.ssl_key, cfg.ssl_root_cert};
		for (size_t j = 0; j < 3; j++) {
			if (j == i) {
				assert_non_null(got[j]);
				assert_string_equal(got[j], path);
				assert_ptr_not_equal(got[j], path);
			} else {
				assert_null(got[j]);
			}
		}
		pqpool_config_clear(&cfg);
		snprintf(want, sizeof want, "%s=\"%s.missing\": expected a readable file",
		         names[i], path);
		char missing[64];
		snprintf(missing, sizeof missing, "%s.missing", path);
		expect_error(ENV(names[i], missing), want);
		snprintf(want, sizeof want, "%s=\"/tmp\": expected a readable file",
		         names[i]);
		expect_error(ENV(names[i], "/tmp"), want);
		snprintf(want, sizeof want, "%s=\"/tmp/a?b\": expected a readable file",
		         names[i]);
		expect_error(ENV(names[i], "/tmp/a\nb"), want);
		load_ok(&cfg, ENV(names[i], ""));
		assert_null(cfg.ssl_cert);
		assert_null(cfg.ssl_key);
		assert_null(cfg.ssl_root_cert);
		pqpool_config_clear(&cfg);
	}
	unlink(path);
}

/* ---- clear and validate ---- */

static void test_clear(void **state)
{
	(void)state;
	pqpool_config cfg;
	pqpool_config_clear(NULL);
	load_ok(&cfg, ENV("DB_POOL_MAX", "42", "DB_HEALTH_QUERY", "SELECT 3"));
	pqpool_config_clear(&cfg);
	assert_cleared(&cfg);
	pqpool_config_clear(&cfg); /* idempotent */
	assert_cleared(&cfg);
	/* strings set by hand are not ours to free (valgrind would say so) */
	char mine[] = "host=h";
	cfg.conninfo = mine;
	cfg.health_query = mine;
	cfg.pool_max = 7;
	pqpool_config_clear(&cfg);
	assert_cleared(&cfg);
	assert_string_equal(mine, "host=h");
}

static void expect_invalid(const pqpool_config *cfg, const char *want)
{
	char err[PQPOOL__ERRLEN];
	assert_status(PQPOOL_EINVAL, pqpool_config_validate(cfg, err, sizeof err));
	if (strcmp(err, want) != 0)
		fail_msg("err \"%s\" != expected \"%s\"", err, want);
	assert_string_equal(pqpool_errmsg(), want);
}

static void test_validate(void **state)
{
	(void)state;
	pqpool_config cfg;
	char want[PQPOOL__ERRLEN], err[PQPOOL__ERRLEN];
	pqpool_config_init(&cfg);
	assert_status(PQPOOL_OK, pqpool_config_validate(&cfg, err, sizeof err));
	assert_string_equal(err, "");

	for (size_t i = 0; i < NFIELDS; i++) {
		const field *f = &fields[i];
		if (f->kind != F_INT)
			continue;
		const long long probes[] = {(long long)f->min - 1, (long long)f->max + 1};
		for (size_t j = 0; j < 2; j++) {
			if (probes[j] < INT_MIN || probes[j] > INT_MAX)
				continue;
			pqpool_config_init(&cfg);
			cfg.pool_min = 0; /* so that pool_max alone is judged */
			*int_at(&cfg, f) = (int)probes[j];
			if (f->env)
				snprintf(
				        want, sizeof want,
				        "%s (%s)=%lld: expected an integer from %d to %d",
				        f->name, f->env, probes[j], f->min, f->max);
			else
				snprintf(want, sizeof want,
				         "%s=%lld: expected an integer from %d to %d",
				         f->name, probes[j], f->min, f->max);
			expect_invalid(&cfg, want);
			/* the bounds themselves are fine */
			*int_at(&cfg, f) = probes[j] < f->min ? f->min : f->max;
			if (f->off == OFF(pool_min))
				cfg.pool_max = 10000;
			assert_status(PQPOOL_OK, pqpool_config_validate(&cfg, NULL, 0));
		}
	}
	pqpool_config_init(&cfg);
	cfg.pool_max = 0;
	expect_invalid(&cfg,
	               "pool_max (DB_POOL_MAX)=0: expected an integer from 1 to 10000");
	cfg.pool_max = -5;
	expect_invalid(&cfg,
	               "pool_max (DB_POOL_MAX)=-5: expected an integer from 1 to 10000");
	pqpool_config_init(&cfg);
	cfg.validate_after_ms = -1;
	expect_invalid(&cfg,
	               "validate_after_ms=-1: expected an integer from 0 to 2147483647");

	pqpool_config_init(&cfg);
	cfg.pool_min = 30;
	expect_invalid(
	        &cfg,
	        "pool_min (DB_POOL_MIN)=30 is greater than pool_max (DB_POOL_MAX)=20");
	cfg.pool_max = 30;
	assert_status(PQPOOL_OK, pqpool_config_validate(&cfg, NULL, 0));

	pqpool_config_init(&cfg);
	cfg.ssl_mode = "required";
	expect_invalid(
	        &cfg,
	        "ssl_mode (SSL_MODE)=\"required\": expected " PQPOOL__SSL_MODES_TEXT);
	for (size_t i = 0; i < sizeof ssl_modes / sizeof ssl_modes[0]; i++) {
		cfg.ssl_mode = ssl_modes[i];
		assert_status(PQPOOL_OK, pqpool_config_validate(&cfg, NULL, 0));
	}

	pqpool_config_init(&cfg);
	cfg.health_query = "";
	expect_invalid(
	        &cfg,
	        "health_query (DB_HEALTH_QUERY) is empty: expected an SQL statement");
	cfg.health_query = " \n";
	expect_invalid(
	        &cfg,
	        "health_query (DB_HEALTH_QUERY) is empty: expected an SQL statement");
	cfg.health_query = "SELECT 1";
	assert_status(PQPOOL_OK, pqpool_config_validate(&cfg, NULL, 0));

	pqpool_config_init(&cfg);
	cfg.conninfo = "postgresql://u:s3cr3tpw@h/db?bogus=1";
	expect_invalid(&cfg, "conninfo: invalid URI query parameter: \"bogus\"");
	cfg.conninfo = "postgresql://u:s3cr3tpw@[::1/db";
	assert_status(PQPOOL_EINVAL, pqpool_config_validate(&cfg, err, sizeof err));
	assert_null(strstr(err, "s3cr3tpw"));
	assert_null(strstr(pqpool_errmsg(), "s3cr3tpw"));
	assert_non_null(strstr(err, "u:****@"));
	cfg.conninfo = "postgresql://u:pw@h:notaport/db";
	expect_invalid(
	        &cfg, "conninfo: port \"notaport\": expected an integer from 1 to 65535");
	cfg.conninfo = "host=h sslmode=on";
	expect_invalid(&cfg,
	               "conninfo: sslmode \"on\": expected " PQPOOL__SSL_MODES_TEXT);
	cfg.conninfo = "postgresql://u:s3cr3tpw@h:5432/db?sslmode=require";
	assert_status(PQPOOL_OK, pqpool_config_validate(&cfg, err, sizeof err));

	/* the first problem in order: conninfo before the numbers */
	cfg.conninfo = "nonsense";
	cfg.pool_max = 0;
	assert_status(PQPOOL_EINVAL, pqpool_config_validate(&cfg, err, sizeof err));
	assert_true(strncmp(err, "conninfo: ", 10) == 0);

	assert_status(PQPOOL_EINVAL, pqpool_config_validate(NULL, err, sizeof err));
	assert_string_equal(err, "config_validate: cfg is NULL");
}

/* ---- allocation failures ---- */

/* Fails each allocation of fn in turn: it must report PQPOOL_ENOMEM and leave
 * nothing allocated; without failures it must succeed. */
typedef int (*alloc_fn)(void *arg);

static void fault_loop(alloc_fn fn, void *arg, void (*cleanup)(void *arg))
{
	fi_fail_at = -1;
	fi_count = 0;
	fi_live = 0;
	assert_status(PQPOOL_OK, fn(arg));
	long total = fi_count;
	cleanup(arg);
	assert_int_equal(fi_live, 0);
	assert_true(total > 0);
	for (long k = 0; k < total; k++) {
		fi_fail_at = k;
		fi_count = 0;
		int st = fn(arg);
		if (st != PQPOOL_ENOMEM)
			fail_msg("allocation %ld of %ld failed: status %d", k, total, st);
		if (fi_live != 0)
			fail_msg("allocation %ld of %ld failed: %ld blocks leaked", k,
			         total, fi_live);
		assert_string_not_equal(pqpool_errmsg(), "");
		cleanup(arg);
	}
	fi_fail_at = -1;
}

static char fault_cert[] = "/tmp/pqpool-test-fi-XXXXXX";
static pqpool_config fault_cfg;

static int fi_from_env(void *arg)
{
	(void)arg;
	int st = load(&fault_cfg,
	              ENV("POSTGRES_PASSWORD", "p w", "SSL_CERT_PATH", fault_cert,
	                  "DB_HEALTH_QUERY", "SELECT 1", "NODE_ENV", "production"),
	              NULL, 0);
	if (st != PQPOOL_OK)
		assert_cleared(&fault_cfg);
	return st;
}

static void fi_clear_cfg(void *arg)
{
	(void)arg;
	pqpool_config_clear(&fault_cfg);
}

static void test_alloc_failures(void **state)
{
	(void)state;
	int fd = mkstemp(fault_cert);
	assert_true(fd >= 0);
	close(fd);
	fault_loop(fi_from_env, NULL, fi_clear_cfg);
	unlink(fault_cert);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_defaults),
	        cmocka_unit_test(test_env_empty),
	        cmocka_unit_test(test_env_ints_good),
	        cmocka_unit_test(test_env_ints_bad),
	        cmocka_unit_test(test_env_pool_bounds),
	        cmocka_unit_test(test_env_bools),
	        cmocka_unit_test(test_env_health_query),
	        cmocka_unit_test(test_env_read_target),
	        cmocka_unit_test(test_env_value_shown_safely),
	        cmocka_unit_test(test_env_error_order),
	        cmocka_unit_test(test_env_err_buffer),
	        cmocka_unit_test(test_env_default_lookup),
	        cmocka_unit_test(test_env_one_allocation),
	        cmocka_unit_test(test_env_postgres_parts),
	        cmocka_unit_test(test_env_password_round_trip),
	        cmocka_unit_test(test_env_database_url),
	        cmocka_unit_test(test_env_database_url_bad),
	        cmocka_unit_test(test_env_ssl_mode),
	        cmocka_unit_test(test_env_ssl_paths),
	        cmocka_unit_test(test_clear),
	        cmocka_unit_test(test_validate),
	        cmocka_unit_test(test_alloc_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
