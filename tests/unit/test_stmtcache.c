/* test_stmtcache.c — stmtcache.c: names are never given twice, lookups
 * survive removals inside probe chains, a full table runs statements
 * unnamed. */
#include "testenv.h"
#include "stmtcache.h"

#include <stdio.h>
#include <string.h>

static int find(pqpool__stmts **t, const char *sql, char *name)
{
	int r = pqpool__stmt_find(t, sql, name);
	assert_true(r >= 0);
	return r;
}

static void test_names(void **state)
{
	pqpool__stmts *t = NULL;
	char name[PQPOOL__STMT_NAMELEN], again[PQPOOL__STMT_NAMELEN];
	(void)state;
	assert_int_equal(find(&t, "SELECT 1", name), PQPOOL__STMT_PREPARE);
	assert_non_null(t); /* made on first use */
	assert_string_equal(name, "pqpool_1");
	assert_status(PQPOOL_OK, pqpool__stmt_add(t, "SELECT 1"));
	assert_int_equal(find(&t, "SELECT 1", again), PQPOOL__STMT_CACHED);
	assert_string_equal(again, "pqpool_1");
	assert_int_equal(find(&t, "SELECT 2", name), PQPOOL__STMT_PREPARE);
	assert_string_equal(name, "pqpool_2");
	/* a forgotten statement's name is not given again */
	pqpool__stmt_forget(t, "SELECT 1");
	assert_int_equal(find(&t, "SELECT 1", name), PQPOOL__STMT_PREPARE);
	assert_string_equal(name, "pqpool_2");
	assert_status(PQPOOL_OK, pqpool__stmt_add(t, "SELECT 1"));
	assert_int_equal(find(&t, "SELECT 2", name), PQPOOL__STMT_PREPARE);
	assert_string_equal(name, "pqpool_3");
	pqpool__stmt_forget(t, "never added"); /* harmless */
	pqpool__stmt_forget(NULL, "x");
	pqpool__stmts_free(t);
	pqpool__stmts_free(NULL);
}

static void test_full_and_chains(void **state)
{
	pqpool__stmts *t = NULL;
	char name[PQPOOL__STMT_NAMELEN], sql[64];
	(void)state;
	for (int i = 0; i < PQPOOL__STMT_MAX; i++) {
		snprintf(sql, sizeof sql, "SELECT %d", i);
		assert_int_equal(find(&t, sql, name), PQPOOL__STMT_PREPARE);
		assert_status(PQPOOL_OK, pqpool__stmt_add(t, sql));
	}
	assert_int_equal(find(&t, "SELECT -1", name), PQPOOL__STMT_UNNAMED);
	/* removing every other entry keeps the rest findable, whatever chains
	 * they sat in */
	for (int i = 0; i < PQPOOL__STMT_MAX; i += 2) {
		snprintf(sql, sizeof sql, "SELECT %d", i);
		pqpool__stmt_forget(t, sql);
	}
	for (int i = 0; i < PQPOOL__STMT_MAX; i++) {
		char want[PQPOOL__STMT_NAMELEN];
		snprintf(sql, sizeof sql, "SELECT %d", i);
		snprintf(want, sizeof want, "pqpool_%d", i + 1);
		if (i % 2) {
			assert_int_equal(find(&t, sql, name), PQPOOL__STMT_CACHED);
			assert_string_equal(name, want);
		} else {
			assert_int_equal(find(&t, sql, name), PQPOOL__STMT_PREPARE);
		}
	}
	/* room again */
	assert_int_equal(find(&t, "SELECT -1", name), PQPOOL__STMT_PREPARE);
	pqpool__stmts_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_names),
	        cmocka_unit_test(test_full_and_chains),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
