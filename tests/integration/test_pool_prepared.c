/* test_pool_prepared.c — statements prepared once per connection: reused,
 * re-prepared when the server invalidates them, bounded in number, and off
 * when DB_PREPARED_STATEMENTS says so. */
#include "testenv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pqpool *open_one(bool prepare)
{
	pqpool_config cfg;
	pqpool *p = NULL;
	testenv_config(&cfg);
	cfg.pool_min = 1;
	cfg.pool_max = 1;
	cfg.prepare = prepare;
	assert_status(PQPOOL_OK, pqpool_open(&cfg, &p));
	return p;
}

/* Statements this connection holds, seen from the connection itself. */
static int prepared_count(pqpool_conn *c)
{
	PGresult *r =
	        PQexec(pqpool_conn_pg(c), "SELECT count(*) FROM pg_prepared_statements");
	int n = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	return n;
}

static void test_prepared_once_and_reused(void **state)
{
	pqpool *p = open_one(true);
	pqpool_conn *c;
	PGresult *r;
	const char *params[] = {"5"};
	(void)state;
	assert_status(PQPOOL_OK, pqpool_acquire(p, -1, &c));
	assert_int_equal(prepared_count(c), 0);
	for (int i = 0; i < 3; i++) {
		assert_status(PQPOOL_OK,
		              pqpool_exec(c, "SELECT $1::int * 2", 1, params, &r));
		assert_string_equal(PQgetvalue(r, 0, 0), "10");
		PQclear(r);
	}
	assert_int_equal(prepared_count(c), 1);
	r = PQexec(pqpool_conn_pg(c),
	           "SELECT name, statement FROM pg_prepared_statements");
	assert_string_equal(PQgetvalue(r, 0, 0), "pqpool_1");
	assert_string_equal(PQgetvalue(r, 0, 1), "SELECT $1::int * 2");
	PQclear(r);
	/* syntax errors are reported, and nothing is cached for them */
	assert_status(PQPOOL_EQUERY, pqpool_exec(c, "SELEC 1", 0, NULL, NULL));
	assert_string_equal(pqpool_errcode(), "42601");
	assert_int_equal(prepared_count(c), 1);
	pqpool_release(c);
	assert_status(PQPOOL_OK, pqpool_close(p, 1000));
}

static void test_stale_statements_are_prepared_again(void **state)
{
	pqpool *p = open_one(true);
	pqpool_conn *c;
	PGresult *r;
	(void)state;
	testenv_admin("DROP TABLE IF EXISTS prep_t");
	testenv_admin("CREATE TABLE prep_t(a int)");
	testenv_admin("INSERT INTO prep_t VALUES (1)");
	testenv_admin("GRANT ALL ON prep_t TO hyperpage");
	assert_status(PQPOOL_OK, pqpool_acquire(p, -1, &c));
	assert_status(PQPOOL_OK, pqpool_exec(c, "SELECT * FROM prep_t", 0, NULL, &r));
	assert_int_equal(PQnfields(r), 1);
	PQclear(r);

	/* the result type changes under the cached plan */
	testenv_admin("ALTER TABLE prep_t ADD COLUMN b int DEFAULT 7");
	assert_status(PQPOOL_OK, pqpool_exec(c, "SELECT * FROM prep_t", 0, NULL, &r));
	assert_int_equal(PQnfields(r), 2);
	assert_string_equal(PQgetvalue(r, 0, 1), "7");
	PQclear(r);
	assert_int_equal(prepared_count(c), 1); /* the stale one was deallocated */

	/* the statements vanish behind our back */
	PQclear(PQexec(pqpool_conn_pg(c), "DEALLOCATE ALL"));
	assert_status(PQPOOL_OK, pqpool_exec(c, "SELECT * FROM prep_t", 0, NULL, &r));
	assert_int_equal(PQnfields(r), 2);
	PQclear(r);

	/* inside a transaction nothing is run again: the error is the caller's */
	testenv_admin("ALTER TABLE prep_t ADD COLUMN c int");
	assert_status(PQPOOL_OK, pqpool_exec(c, "BEGIN", 0, NULL, NULL));
	assert_status(PQPOOL_EQUERY,
	              pqpool_exec(c, "SELECT * FROM prep_t", 0, NULL, NULL));
	assert_string_equal(pqpool_errcode(), "0A000");
	pqpool_release(c); /* rolled back */
	assert_status(PQPOOL_OK, pqpool_acquire(p, -1, &c));
	assert_status(PQPOOL_OK, pqpool_exec(c, "SELECT * FROM prep_t", 0, NULL, &r));
	assert_int_equal(PQnfields(r), 3);
	PQclear(r);
	pqpool_release(c);
	testenv_admin("DROP TABLE prep_t");
	assert_status(PQPOOL_OK, pqpool_close(p, 1000));
}

static void test_statement_cache_is_bounded(void **state)
{
	pqpool *p = open_one(true);
	pqpool_conn *c;
	PGresult *r;
	char sql[64];
	(void)state;
	assert_status(PQPOOL_OK, pqpool_acquire(p, -1, &c));
	for (int i = 0; i < 140; i++) {
		snprintf(sql, sizeof sql, "SELECT %d", i);
		assert_status(PQPOOL_OK, pqpool_exec(c, sql, 0, NULL, &r));
		assert_int_equal(atoi(PQgetvalue(r, 0, 0)), i);
		PQclear(r);
	}
	assert_int_equal(prepared_count(c), 128);
	/* the first ones are still cached and used */
	assert_status(PQPOOL_OK, pqpool_exec(c, "SELECT 0", 0, NULL, NULL));
	assert_int_equal(prepared_count(c), 128);
	pqpool_release(c);
	assert_status(PQPOOL_OK, pqpool_close(p, 1000));
}

static void test_prepared_statements_off(void **state)
{
	pqpool *p = open_one(false);
	pqpool_conn *c;
	const char *params[] = {"5"};
	(void)state;
	assert_status(PQPOOL_OK, pqpool_acquire(p, -1, &c));
	for (int i = 0; i < 3; i++)
		assert_status(PQPOOL_OK,
		              pqpool_exec(c, "SELECT $1::int", 1, params, NULL));
	assert_int_equal(prepared_count(c), 0);
	pqpool_release(c);
	/* and the one-shot query path */
	assert_status(PQPOOL_OK, pqpool_query(p, "SELECT $1::int", 1, params, 0, NULL));
	assert_status(PQPOOL_OK, pqpool_acquire(p, -1, &c));
	assert_int_equal(prepared_count(c), 0);
	pqpool_release(c);
	assert_status(PQPOOL_OK, pqpool_close(p, 1000));
}

/* A replaced connection starts with no statements cached. */
static void test_cache_follows_the_connection(void **state)
{
	pqpool *p = open_one(true);
	pqpool_conn *c;
	(void)state;
	assert_status(PQPOOL_OK, pqpool_acquire(p, -1, &c));
	assert_status(PQPOOL_OK, pqpool_exec(c, "SELECT 42", 0, NULL, NULL));
	testenv_admin("SELECT pg_terminate_backend(%d)", PQbackendPID(pqpool_conn_pg(c)));
	testenv_sleep_ms(50);
	assert_status(PQPOOL_ECONNLOST, pqpool_exec(c, "SELECT 42", 0, NULL, NULL));
	pqpool_release(c);
	assert_status(PQPOOL_OK, pqpool_query(p, "SELECT 42", 0, NULL, 0, NULL));
	assert_status(PQPOOL_OK, pqpool_acquire(p, -1, &c));
	assert_int_equal(prepared_count(c), 1);
	pqpool_release(c);
	assert_status(PQPOOL_OK, pqpool_close(p, 1000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_prepared_once_and_reused),
	        cmocka_unit_test(test_stale_statements_are_prepared_again),
	        cmocka_unit_test(test_statement_cache_is_bounded),
	        cmocka_unit_test(test_prepared_statements_off),
	        cmocka_unit_test(test_cache_follows_the_connection),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
