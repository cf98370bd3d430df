/* test_classify.c — which statements may be pipelined: the first keyword,
 * past blanks and comments, and nothing that could change the session. */
#include "testenv.h"

#include "classify.h"

static void test_pipelinable(void **state)
{
	static const char *const yes[] = {
	        "SELECT 1",
	        "select 1",
	        "  \n\tSeLeCt 1",
	        "WITH x AS (SELECT 1) SELECT * FROM x",
	        "VALUES (1)",
	        "TABLE t",
	        "INSERT INTO t VALUES (1)",
	        "UPDATE t SET a = 1",
	        "DELETE FROM t",
	        "-- a comment\nSELECT 1",
	        "/* a /* nested */ comment */ SELECT 1",
	        "/**/SELECT 1",
	};
	static const char *const no[] = {
	        "",
	        "   ",
	        "BEGIN",
	        "begin; SELECT 1",
	        "COMMIT",
	        "ROLLBACK",
	        "SET search_path = x",
	        "RESET ALL",
	        "LISTEN ch",
	        "NOTIFY ch",
	        "COPY t FROM STDIN",
	        "PREPARE p AS SELECT 1",
	        "EXECUTE p",
	        "DISCARD ALL",
	        "DO $$ BEGIN END $$",
	        "CALL p()",
	        "VACUUM t",
	        "CREATE TABLE t (a int)",
	        "EXPLAIN SELECT 1",
	        "(SELECT 1)",
	        "SELECTX 1",
	        "SELECT_1",
	        "START TRANSACTION",
	        "/* never closed SELECT 1",
	        "-- only a comment",
	        "LOCK TABLE t",
	};
	(void)state;
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
		if (!pqpool__pipelinable(yes[i]))
			fail_msg("not pipelined: \"%s\"", yes[i]);
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
		if (pqpool__pipelinable(no[i]))
			fail_msg("pipelined: \"%s\"", no[i]);
	assert_false(pqpool__pipelinable(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_pipelinable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
