/* test_role.c — role.c's pure part: how long a host that fails to connect
 * is banned. */
#include "testenv.h"

#include <stdint.h>

#include "role.h"

static void test_ban_grows_to_a_minute(void **state)
{
	(void)state;
	/* without jitter: 1 s doubling, capped at 60 s */
	int64_t want[] = {1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000};
	for (int f = 1; f <= 8; f++)
		assert_int_equal(pqpool__ban_ms(f, 0), want[f - 1]);
	assert_int_equal(pqpool__ban_ms(1000, 0), 60000);
	/* the jitter takes up to a tenth off, never more, whatever the draw */
	for (uint64_t r = 0; r < 20000; r += 7) {
		int64_t b = pqpool__ban_ms(1, r), m = pqpool__ban_ms(9, r);
		assert_true(b <= 1000 && b >= 900);
		assert_true(m <= 60000 && m >= 54000);
	}
	assert_int_equal(pqpool__ban_ms(1, 100), 900);
	assert_int_equal(pqpool__ban_ms(1, 101), 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_ban_grows_to_a_minute),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
