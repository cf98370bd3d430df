/* test_health.c — health.c's judgement of a probe that answered, and the
 * status texts. */
#include "testenv.h"
#include "health.h"

#include <string.h>

static void test_health_thresholds(void **state)
{
	char why[128];
	(void)state;
	assert_int_equal(pqpool__judge_health(0.4, 1000, 0, 0.0, 60, why, sizeof why),
	                 PQPOOL_HEALTHY);
	assert_string_equal(why, "");
	assert_int_equal(pqpool__judge_health(1000.0, 1000, 0, 0.0, 60, why, sizeof why),
	                 PQPOOL_HEALTHY);
	assert_int_equal(pqpool__judge_health(1000.1, 1000, 0, 0.0, 60, why, sizeof why),
	                 PQPOOL_DEGRADED);
	assert_non_null(strstr(why, "slow"));
	assert_int_equal(pqpool__judge_health(0.4, 1000, 1, 0.0, 60, why, sizeof why),
	                 PQPOOL_DEGRADED);
	assert_non_null(strstr(why, "1 caller(s) waiting"));
	assert_int_equal(pqpool__judge_health(0.4, 1000, 0, 4.99, 60, why, sizeof why),
	                 PQPOOL_HEALTHY);
	assert_int_equal(pqpool__judge_health(0.4, 1000, 0, 5.0, 60, why, sizeof why),
	                 PQPOOL_DEGRADED);
	assert_non_null(strstr(why, "5.0 %"));
	assert_string_equal(pqpool_health_text(PQPOOL_HEALTHY), "healthy");
	assert_string_equal(pqpool_health_text(PQPOOL_DEGRADED), "degraded");
	assert_string_equal(pqpool_health_text(PQPOOL_UNHEALTHY), "unhealthy");
	assert_string_equal(pqpool_health_text((pqpool_health_status)42), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_health_thresholds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
