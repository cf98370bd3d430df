/* test_dotenv.c — the .env.local reader: from a file and from memory, alike. */
#include "testenv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../cmd/pqpool/dotenv.c"

/* A text with every kind of line, NUL bytes and a last line without '\n'. */
static const char sample[] = "\xEF\xBB\xBF# a comment\n"
                             "export DATABASE_URL=\"postgresql://u:p#w@h/d\" # note\n"
                             "POSTGRES_PASSWORD='it''s' \n"
                             "DB_POOL_MAX = 15 # trailing comment\n"
                             "PASS=a#b\r\n"
                             "bad line s3cret\n"
                             "NUL=a\0b\n"
                             "OPEN=\"abc\n"
                             "AFTER=\"x\" y\n"
                             "DB_POOL_MAX=16\n"
                             "LAST=end";

static void expect_sample(const dotenv_file *f, const char *path)
{
	assert_string_equal(dotenv_path(f), path);
	assert_string_equal(dotenv_get(f, "DATABASE_URL"), "postgresql://u:p#w@h/d");
	assert_null(dotenv_get(f, "POSTGRES_PASSWORD")); /* text after the quote */
	assert_string_equal(dotenv_get(f, "DB_POOL_MAX"), "16"); /* the later line wins */
	assert_string_equal(dotenv_get(f, "PASS"), "a#b");
	assert_null(dotenv_get(f, "NUL"));
	assert_null(dotenv_get(f, "OPEN"));
	assert_null(dotenv_get(f, "AFTER"));
	assert_string_equal(dotenv_get(f, "LAST"), "end");
	assert_int_equal(dotenv_warning_count(f), 5);
	for (size_t i = 0; i < dotenv_warning_count(f); i++)
		assert_null(strstr(dotenv_warning(f, i), "s3cret"));
	assert_non_null(strstr(dotenv_warning(f, 0), ":3: POSTGRES_PASSWORD: "));
	assert_non_null(strstr(dotenv_warning(f, 1), ":6: expected NAME=VALUE"));
	assert_non_null(strstr(dotenv_warning(f, 2), ":7: contains a NUL byte"));
	assert_non_null(strstr(dotenv_warning(f, 3), ":8: OPEN: unterminated quote"));
	assert_non_null(strstr(dotenv_warning(f, 4), ":9: AFTER: unexpected text"));
	assert_null(dotenv_warning(f, 5));
}

static void test_parse_from_memory(void **state)
{
	dotenv_file *f;

	(void)state;
	assert_int_equal(dotenv_parse("mem", sample, sizeof sample - 1, &f), 0);
	expect_sample(f, "mem");
	dotenv_free(f);
	/* empty text: an empty table, as for a missing file */
	assert_int_equal(dotenv_parse("mem", "", 0, &f), 0);
	assert_int_equal(dotenv_warning_count(f), 0);
	assert_null(dotenv_get(f, "LAST"));
	dotenv_free(f);
}

static void test_load_reads_the_same(void **state)
{
	char path[] = "/tmp/pqpool-test-env-XXXXXX";
	int fd = mkstemp(path);
	dotenv_file *f;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, sample, sizeof sample - 1),
	                 (ssize_t)(sizeof sample - 1));
	close(fd);
	assert_int_equal(dotenv_load(path, &f), 0);
	expect_sample(f, path);
	dotenv_free(f);
	unlink(path);
	/* a missing file is an empty table */
	assert_int_equal(dotenv_load(path, &f), 0);
	assert_int_equal(dotenv_warning_count(f), 0);
	dotenv_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_parse_from_memory),
	        cmocka_unit_test(test_load_reads_the_same),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
