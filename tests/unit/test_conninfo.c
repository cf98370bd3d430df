/* test_conninfo.c — conninfo.c: the masked URL (never a password, readable
 * back by libpq, snprintf-like truncation) and the connection parameters
 * built once per pool; every allocation failed in turn. */
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
#include "../../src/conninfo.c"
#include "../../src/secret.c"
#include "../../common/sbuf.c"
#undef malloc
#undef realloc
#undef free

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

/* ---- masking ---- */

static void expect_mask(const char *conninfo, const char *want)
{
	char out[512];
	int n = pqpool_mask_conninfo(conninfo, out, sizeof out);
	if (strcmp(out, want) != 0)
		fail_msg("mask(%s) = \"%s\", expected \"%s\"",
		         conninfo ? conninfo : "NULL", out, want);
	assert_int_equal(n, (int)strlen(want));
	assert_string_equal(pqpool_errmsg(), "");
	/* the masked form is itself a valid libpq URI */
	char *perr = NULL;
	PQconninfoOption *o = PQconninfoParse(out, &perr);
	if (!o)
		fail_msg("masked \"%s\" does not parse: %s", out, perr ? perr : "?");
	PQconninfoFree(o);
}

static void test_mask(void **state)
{
	(void)state;
	expect_mask(NULL, "postgresql://hyperpage:****@localhost:5432/hyperpage");
	expect_mask(
	        "postgresql://alice:s3cret@db.example.com:6543/app?sslmode=require&"
	        "application_name=web",
	        "postgresql://alice:****@db.example.com:6543/app?application_name=web&"
	        "sslmode=require");
	expect_mask("postgres://alice@h/d", "postgresql://alice@h/d");
	expect_mask("host=h port=5 dbname=d", "postgresql://h:5/d");
	expect_mask("host=h password=zzz", "postgresql://:****@h");
	expect_mask("user=u", "postgresql://u@");
	expect_mask("", "postgresql://");
	expect_mask("host=/var/run/postgresql dbname='my db' user='a@b' password='x y'",
	            "postgresql://a%40b:****@%2Fvar%2Frun%2Fpostgresql/my%20db");
	expect_mask("host=::1 port=5432 dbname=d", "postgresql://[::1]:5432/d");
	expect_mask("host=h1,h2 port=5432,5433", "postgresql://h1:5432,h2:5433");
	expect_mask("host=h1,h2 port=6000", "postgresql://h1:6000,h2:6000");
	expect_mask("host=h1,h2", "postgresql://h1,h2");
	expect_mask("port=6000", "postgresql://:6000");
	expect_mask(
	        "hostaddr=10.0.0.1 connect_timeout=3 options='-c x=1' "
	        "sslpassword=topsecret",
	        "postgresql://?connect_timeout=3&hostaddr=10.0.0.1&options=-c%20x%3D1");
	expect_mask("postgresql://u:pw@h/d%2Fx?application_name=a%26b",
	            "postgresql://u:****@h/d%2Fx?application_name=a%26b");
	/* a bad port still renders: masking is for display */
	expect_mask("postgresql://u:pw@h:notaport/d", "postgresql://u:****@h:notaport/d");

	/* the masked host and database name read back as they were */
	char out[256];
	pqpool_mask_conninfo("host='/tmp/sock dir' dbname='a/b?c' user=x", out,
	                     sizeof out);
	assert_string_equal(libpq_reads(out, "host"), "/tmp/sock dir");
	assert_string_equal(libpq_reads(out, "dbname"), "a/b?c");
	assert_null(libpq_reads(out, "password"));
}

static void test_mask_never_shows_passwords(void **state)
{
	(void)state;
	const char *cases[] = {"postgresql://u:hunter22@h/d",
	                       "postgresql://u:hunter22@h/d?sslpassword=hunter22",
	                       "postgresql://h/d?password=hunter22",
	                       "host=h password=hunter22 sslpassword=hunter22",
	                       "host=h password='hunter22'",
	                       "postgresql://u:hunter%32%32@h/d"};
	char out[256];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		assert_true(pqpool_mask_conninfo(cases[i], out, sizeof out) > 0);
		if (strstr(out, "hunter") || strstr(out, "password"))
			fail_msg("mask(%s) = \"%s\"", cases[i], out);
		assert_non_null(strstr(out, ":****@"));
	}
}

static void test_mask_invalid_and_truncated(void **state)
{
	(void)state;
	char out[64], tiny[8];
	memset(out, '#', sizeof out);
	assert_status(PQPOOL_EINVAL,
	              pqpool_mask_conninfo("postgresql://u:hunter22@h/d?bogus=1", out,
	                                   sizeof out));
	assert_string_equal(out, "(invalid)");
	assert_string_equal(pqpool_errmsg(),
	                    "conninfo: invalid URI query parameter: \"bogus\"");
	assert_status(
	        PQPOOL_EINVAL,
	        pqpool_mask_conninfo("postgresql://u:hunter22@[::1/d", out, sizeof out));
	assert_null(strstr(pqpool_errmsg(), "hunter22"));
	assert_non_null(strstr(pqpool_errmsg(), "u:****@"));
	/* ambiguous userinfo: refused rather than half-shown */
	assert_status(PQPOOL_EINVAL, pqpool_mask_conninfo("postgresql://u:hun@ter22@h/d",
	                                                  out, sizeof out));
	assert_string_equal(out, "(invalid)");
	/* an '@' in a query that no '/' precedes: libpq reads everything before
	 * it, the query's password included, as the user name, which masking
	 * shows (found by fuzz/fuzz_mask); refused, and fine with the '/' */
	assert_status(PQPOOL_EINVAL,
	              pqpool_mask_conninfo("postgresql://h?password=hunter22&"
	                                   "application_name=a@b",
	                                   out, sizeof out));
	assert_string_equal(out, "(invalid)");
	assert_null(strstr(pqpool_errmsg(), "hunter22"));
	assert_non_null(strstr(pqpool_errmsg(), "%3F"));
	expect_mask("postgresql://h/?password=hunter22&application_name=a@b",
	            "postgresql://:****@h?application_name=a%40b");
	/* a raw '?' in the password reads the same way: encode it */
	assert_status(PQPOOL_EINVAL,
	              pqpool_mask_conninfo("postgresql://u:p?ss@h/d", out, sizeof out));
	expect_mask("postgresql://u:p%3Fss@h/d", "postgresql://u:****@h/d");
	assert_status(PQPOOL_EINVAL, pqpool_mask_conninfo("bad", tiny, sizeof tiny));
	assert_string_equal(tiny, "(invali");

	/* like snprintf: the needed length, a truncated NUL-terminated copy */
	const char *full = "postgresql://hyperpage:****@localhost:5432/hyperpage";
	memset(tiny, '#', sizeof tiny);
	assert_int_equal(pqpool_mask_conninfo(NULL, tiny, sizeof tiny),
	                 (int)strlen(full));
	assert_string_equal(tiny, "postgre");
	assert_int_equal(pqpool_mask_conninfo(NULL, NULL, 0), (int)strlen(full));
	tiny[0] = '#';
	assert_int_equal(pqpool_mask_conninfo(NULL, tiny, 0), (int)strlen(full));
	assert_int_equal(tiny[0], '#');
	char exact[64];
	assert_int_equal(pqpool_mask_conninfo(NULL, exact, strlen(full) + 1),
	                 (int)strlen(full));
	assert_string_equal(exact, full);
	assert_int_equal(pqpool_mask_conninfo(NULL, exact, strlen(full)),
	                 (int)strlen(full));
	assert_int_equal(strlen(exact), strlen(full) - 1);
}

/* ---- connection parameters ---- */

static const char *param(const pqpool__params *p, const char *kw)
{
	const char *found = NULL;
	for (int i = 0; p->keywords[i]; i++) {
		assert_non_null(p->values[i]);
		assert_true(p->values[i][0] != '\0');
		if (strcmp(p->keywords[i], kw) == 0) {
			if (found)
				fail_msg("keyword %s twice", kw);
			found = p->values[i];
		}
	}
	return found;
}

/* ---- several hosts ---- */

static void expect_host(const pqpool__params *all, int i, const char *host,
                        const char *hostaddr, const char *port, const char *masked)
{
	pqpool__params h;
	assert_status(PQPOOL_OK, pqpool__params_for_host(all, i, &h));
	if (host)
		assert_string_equal(param(&h, "host"), host);
	else
		assert_null(param(&h, "host"));
	if (hostaddr)
		assert_string_equal(param(&h, "hostaddr"), hostaddr);
	else
		assert_null(param(&h, "hostaddr"));
	if (port)
		assert_string_equal(param(&h, "port"), port);
	else
		assert_null(param(&h, "port"));
	/* a member takes its host as it is: the pool tracks roles itself */
	assert_null(param(&h, "target_session_attrs"));
	assert_string_equal(param(&h, "password"), "pw");
	assert_string_equal(h.secret, "pw");
	assert_string_equal(h.masked, masked);
	assert_null(strstr(h.masked, "pw"));
	assert_int_equal(h.nhosts, 1);
	assert_false(h.need_primary);
	pqpool__params_free(&h);
}

static void test_several_hosts(void **state)
{
	(void)state;
	pqpool_config cfg;
	pqpool__params p;
	char err[PQPOOL__ERRLEN];

	pqpool_config_init(&cfg);
	/* one host: libpq's default target, writers take what answers */
	cfg.conninfo = "postgresql://u:pw@h1:5/d";
	assert_status(PQPOOL_OK, pqpool__params_build(&cfg, &p, err, sizeof err));
	assert_int_equal(p.nhosts, 1);
	assert_false(p.need_primary);
	assert_null(param(&p, "target_session_attrs"));
	pqpool__params_free(&p);

	/* one host asked to be a primary */
	cfg.conninfo = "postgresql://u:pw@h1:5/d?target_session_attrs=primary";
	assert_status(PQPOOL_OK, pqpool__params_build(&cfg, &p, err, sizeof err));
	assert_true(p.need_primary);
	pqpool__params_free(&p);

	/* several: read-write unless told otherwise; a port per host */
	cfg.conninfo = "postgresql://u:pw@h1:5,h2:6,[::1]:7/d?sslmode=disable";
	assert_status(PQPOOL_OK, pqpool__params_build(&cfg, &p, err, sizeof err));
	assert_int_equal(p.nhosts, 3);
	assert_true(p.need_primary);
	assert_string_equal(param(&p, "target_session_attrs"), "read-write");
	assert_string_equal(p.masked,
	                    "postgresql://u:****@h1:5,h2:6,[::1]:7/d?sslmode=disable");
	expect_host(&p, 0, "h1", NULL, "5", "postgresql://u:****@h1:5/d?sslmode=disable");
	expect_host(&p, 1, "h2", NULL, "6", "postgresql://u:****@h2:6/d?sslmode=disable");
	expect_host(&p, 2, "::1", NULL, "7",
	            "postgresql://u:****@[::1]:7/d?sslmode=disable");
	pqpool__params_free(&p);

	/* one port for every host, hostaddr lists, an explicit "any" */
	cfg.conninfo = "host=a,b hostaddr=10.0.0.1,10.0.0.2 port=9 user=u password=pw "
	               "target_session_attrs=any";
	assert_status(PQPOOL_OK, pqpool__params_build(&cfg, &p, err, sizeof err));
	assert_int_equal(p.nhosts, 2);
	assert_false(p.need_primary);
	expect_host(&p, 0, "a", "10.0.0.1", "9",
	            "postgresql://u:****@a:9?hostaddr=10.0.0.1");
	expect_host(&p, 1, "b", "10.0.0.2", "9",
	            "postgresql://u:****@b:9?hostaddr=10.0.0.2");
	pqpool__params_free(&p);

	/* an empty item is the default, as in libpq */
	cfg.conninfo = "host=a, port=5,6 user=u password=pw";
	assert_status(PQPOOL_OK, pqpool__params_build(&cfg, &p, err, sizeof err));
	assert_int_equal(p.nhosts, 2);
	expect_host(&p, 1, NULL, NULL, "6", "postgresql://u:****@:6");
	pqpool__params_free(&p);
}

static void test_params_build(void **state)
{
	(void)state;
	pqpool_config cfg;
	pqpool__params p;
	char err[PQPOOL__ERRLEN];

	pqpool_config_init(&cfg);
	cfg.conninfo =
	        "postgresql://u:pw@h:5/d?options=-c%20search_path%3Dx&sslmode=require";
	cfg.statement_timeout_ms = 1234;
	cfg.ssl_mode = "verify-full";
	cfg.ssl_cert = "/c.pem";
	cfg.ssl_key = "/k.pem";
	cfg.ssl_root_cert = "/ca.pem";
	assert_status(PQPOOL_OK, pqpool__params_build(&cfg, &p, err, sizeof err));
	assert_string_equal(param(&p, "options"),
	                    "-c search_path=x -c statement_timeout=1234");
	assert_string_equal(param(&p, "sslmode"), "verify-full");
	assert_string_equal(param(&p, "sslcert"), "/c.pem");
	assert_string_equal(param(&p, "sslkey"), "/k.pem");
	assert_string_equal(param(&p, "sslrootcert"), "/ca.pem");
	assert_string_equal(param(&p, "fallback_application_name"), "pqpool");
	assert_null(param(&p, "application_name"));
	assert_string_equal(param(&p, "host"), "h");
	assert_string_equal(param(&p, "port"), "5");
	assert_string_equal(param(&p, "password"), "pw");
	assert_string_equal(p.masked,
	                    "postgresql://u:****@h:5/d?options=-c%20search_path%3Dx&"
	                    "sslmode=verify-full&sslcert=%2Fc.pem&sslkey=%2Fk.pem&"
	                    "sslrootcert=%2Fca.pem");
	/* one block holds everything */
	const char *start = p.storage_, *end = start + malloc_usable_size(p.storage_);
	assert_true((const char *)p.keywords >= start && (const char *)p.values < end);
	for (int i = 0; p.keywords[i]; i++)
		assert_true(p.keywords[i] > start &&
		            p.values[i] + strlen(p.values[i]) < end);
	assert_true(p.masked > start && p.masked + strlen(p.masked) < end);
	pqpool__params_free(&p);
	assert_null(p.keywords);
	assert_null(p.values);
	assert_null(p.masked);
	assert_null(p.storage_);
	pqpool__params_free(&p); /* idempotent */
	pqpool__params_free(NULL);

	/* no options of its own: ours alone; an application_name: no fallback */
	cfg.conninfo = "host=h application_name=web";
	cfg.ssl_mode = cfg.ssl_cert = cfg.ssl_key = cfg.ssl_root_cert = NULL;
	cfg.statement_timeout_ms = 30000;
	assert_status(PQPOOL_OK, pqpool__params_build(&cfg, &p, err, sizeof err));
	assert_string_equal(param(&p, "options"), "-c statement_timeout=30000");
	assert_string_equal(param(&p, "application_name"), "web");
	assert_null(param(&p, "fallback_application_name"));
	assert_null(param(&p, "sslmode"));
	assert_string_equal(p.masked, "postgresql://h?application_name=web");
	pqpool__params_free(&p);

	/* statement_timeout 0 leaves the server's own and the user's options */
	cfg.conninfo = "host=h options='-c work_mem=64MB' fallback_application_name=svc";
	cfg.statement_timeout_ms = 0;
	assert_status(PQPOOL_OK, pqpool__params_build(&cfg, &p, err, sizeof err));
	assert_string_equal(param(&p, "options"), "-c work_mem=64MB");
	assert_string_equal(param(&p, "fallback_application_name"), "svc");
	pqpool__params_free(&p);
	cfg.conninfo = "host=h";
	assert_status(PQPOOL_OK, pqpool__params_build(&cfg, &p, err, sizeof err));
	assert_null(param(&p, "options"));
	pqpool__params_free(&p);

	/* NULL conninfo: the default target */
	pqpool_config_init(&cfg);
	cfg.ssl_mode = "disable";
	assert_status(PQPOOL_OK, pqpool__params_build(&cfg, &p, err, sizeof err));
	assert_string_equal(param(&p, "host"), "localhost");
	assert_string_equal(param(&p, "port"), "5432");
	assert_string_equal(param(&p, "dbname"), "hyperpage");
	assert_string_equal(param(&p, "user"), "hyperpage");
	assert_string_equal(param(&p, "password"), "password");
	assert_string_equal(param(&p, "sslmode"), "disable");
	assert_string_equal(
	        p.masked,
	        "postgresql://hyperpage:****@localhost:5432/hyperpage?sslmode=disable");
	pqpool__params_free(&p);
}

static void test_params_build_errors(void **state)
{
	(void)state;
	pqpool_config cfg;
	pqpool__params p;
	char err[PQPOOL__ERRLEN];
	pqpool_config_init(&cfg);
	cfg.conninfo = "postgresql://u:hunter22@[::1/db";
	memset(&p, 0x5a, sizeof p);
	assert_status(PQPOOL_EINVAL, pqpool__params_build(&cfg, &p, err, sizeof err));
	assert_null(p.keywords);
	assert_null(p.storage_);
	assert_null(strstr(err, "hunter22"));
	assert_true(strncmp(err, "conninfo: ", 10) == 0);
	assert_string_equal(pqpool_errmsg(), err);
	pqpool__params_free(&p);
	cfg.conninfo = "host=h port=99999";
	assert_status(PQPOOL_EINVAL, pqpool__params_build(&cfg, &p, err, sizeof err));
	assert_string_equal(
	        err, "conninfo: port \"99999\": expected an integer from 1 to 65535");
	memset(&p, 0x5a, sizeof p);
	assert_status(PQPOOL_EINVAL, pqpool__params_build(NULL, &p, err, sizeof err));
	assert_string_equal(err, "params_build: NULL argument");
	assert_null(p.storage_);
	assert_status(PQPOOL_EINVAL, pqpool__params_build(&cfg, NULL, NULL, 0));
}

/* libpq itself accepts the arrays: every keyword is one it knows and every
 * value one it takes (a Unix socket in a missing directory fails to connect
 * without any network). */
static void test_params_accepted_by_libpq(void **state)
{
	(void)state;
	pqpool_config cfg;
	pqpool__params p;
	pqpool_config_init(&cfg);
	cfg.conninfo = "host=/nonexistent-pqpool-dir port=5 user=u password=pw dbname=d "
	               "options='-c work_mem=1MB'";
	cfg.ssl_mode = "prefer";
	assert_status(PQPOOL_OK, pqpool__params_build(&cfg, &p, NULL, 0));
	PGconn *c = PQconnectStartParams(p.keywords, p.values, 0);
	assert_non_null(c);
	const char *msg = PQerrorMessage(c);
	assert_int_equal(PQstatus(c), CONNECTION_BAD);
	if (strstr(msg, "invalid") || strstr(msg, "option") ||
	    !strstr(msg, "nonexistent-pqpool-dir"))
		fail_msg("libpq refused the parameters: %s", msg);
	PQfinish(c);
	pqpool__params_free(&p);
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

static pqpool__params fault_params;

static int fi_params(void *arg)
{
	pqpool_config cfg;
	pqpool_config_init(&cfg);
	cfg.conninfo = arg;
	cfg.ssl_mode = "require";
	int st = pqpool__params_build(&cfg, &fault_params, NULL, 0);
	if (st != PQPOOL_OK)
		assert_null(fault_params.storage_);
	return st;
}

static void fi_free_params(void *arg)
{
	(void)arg;
	pqpool__params_free(&fault_params);
}

static int fi_mask(void *arg)
{
	char out[128];
	int n = pqpool_mask_conninfo(arg, out, sizeof out);
	if (n < 0)
		assert_string_equal(out, "(invalid)");
	return n < 0 ? n : PQPOOL_OK;
}

static void fi_nothing(void *arg)
{
	(void)arg;
}

static pqpool__params fault_host;

/* a member's parameters, from a pool's of two hosts */
static int fi_host(void *arg)
{
	int st = fi_params(arg);
	if (st != PQPOOL_OK)
		return st;
	st = pqpool__params_for_host(&fault_params, 1, &fault_host);
	if (st != PQPOOL_OK) {
		assert_null(fault_host.storage_);
		pqpool__params_free(&fault_params);
	}
	return st;
}

static void fi_free_host(void *arg)
{
	(void)arg;
	pqpool__params_free(&fault_host);
	pqpool__params_free(&fault_params);
}

static void test_alloc_failures(void **state)
{
	(void)state;
	fault_loop(fi_host, "postgresql://u:pw@h1:5,h2:6/d?options=-c%20x%3D1",
	           fi_free_host);
	fault_loop(fi_params, "postgresql://u:pw@h/d?options=-c%20x%3D1", fi_free_params);
	fault_loop(fi_params, NULL, fi_free_params);
	fault_loop(fi_mask, "host=h user=u password=pw", fi_nothing);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_mask),
	        cmocka_unit_test(test_mask_never_shows_passwords),
	        cmocka_unit_test(test_mask_invalid_and_truncated),
	        cmocka_unit_test(test_params_build),
	        cmocka_unit_test(test_params_build_errors),
	        cmocka_unit_test(test_several_hosts),
	        cmocka_unit_test(test_params_accepted_by_libpq),
	        cmocka_unit_test(test_alloc_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
