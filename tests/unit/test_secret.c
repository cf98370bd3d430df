/* test_secret.c — secret.c: scrubbing a known secret, and whatever may be one
 * from libpq's messages about a conninfo it refused. */
#include "testenv.h"

#include <stdio.h>
#include <string.h>

/* ---- fault injection ----
 * The code under test is compiled into this test with its allocator
 * redirected (see failalloc.h), so that each allocation it makes can be
 * failed in turn. */
#include "failalloc.h"

#define malloc  fi_malloc
#define realloc fi_realloc
#define free    fi_free
#include "../../src/secret.c"
#include "../../common/sbuf.c"
#undef malloc
#undef realloc
#undef free

/* ---- scrubbing ---- */

static void test_scrub(void **state)
{
	(void)state;
	char m1[] = "password hunter22 and hunter22!";
	pqpool__scrub(m1, "hunter22");
	assert_string_equal(m1, "password **** and ****!");
	char m2[] = "xabyab";
	pqpool__scrub(m2, "ab");
	assert_string_equal(m2, "x**y**");
	char m3[] = "abcd";
	pqpool__scrub(m3, "abcd");
	assert_string_equal(m3, "****");
	char m4[] = "unchanged";
	pqpool__scrub(m4, NULL);
	pqpool__scrub(m4, "");
	pqpool__scrub(m4, "absent");
	assert_string_equal(m4, "unchanged");
	pqpool__scrub(NULL, "x");
	char m5[] = "a**b";
	pqpool__scrub(m5, "**"); /* a secret of stars must not loop */
	assert_string_equal(m5, "a**b");
	char m6[] = "aaaaaa";
	pqpool__scrub(m6, "aaa");
	assert_string_equal(m6, "******");
	char m7[] = "longlonglong";
	pqpool__scrub(m7, "longlong");
	assert_string_equal(m7, "****long");
}

/* White-box: the candidates found in a conninfo libpq refused. */
static void test_scrub_unparsed(void **state)
{
	(void)state;
	char m[256];
	snprintf(m, sizeof m, "echo: postgresql://u:p%%40ss@h/d and p@ss and s3c");
	pqpool__scrub_unparsed(m, "postgresql://u:p%40ss@h/d");
	assert_string_equal(m, "echo: postgresql://u:****@h/d and **** and s3c");
	snprintf(m, sizeof m, "it's a'b and a\\'b");
	pqpool__scrub_unparsed(m, "host=h password='a\\'b'");
	assert_string_equal(m, "it's *** and ****");
	snprintf(m, sizeof m, "x=\"two\" x=\"words\"");
	pqpool__scrub_unparsed(m, "password=two words bogus=1");
	assert_string_equal(m, "x=\"***\" x=\"****\"");
	/* without memory for the candidates, the whole message goes */
	snprintf(m, sizeof m, "secret");
	fi_count = 0;
	fi_fail_at = 0;
	pqpool__scrub_unparsed(m, "password=secret");
	fi_fail_at = -1;
	assert_string_equal(m, "******");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_scrub),
	        cmocka_unit_test(test_scrub_unparsed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
