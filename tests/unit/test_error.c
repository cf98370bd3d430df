/* test_error.c — error.c: status texts and names, the thread-local last
 * error, message trimming. */
#include "testenv.h"
#include "error.h"

#include <pthread.h>
#include <string.h>

static void test_status_texts(void **state)
{
	(void)state;
	for (int s = PQPOOL_EAGAIN; s <= PQPOOL_OK; s++) {
		assert_string_not_equal(pqpool_status_text(s), "unknown status");
		assert_string_not_equal(pqpool_status_name(s), "UNKNOWN");
	}
	assert_string_equal(pqpool_status_text(-100), "unknown status");
	assert_string_equal(pqpool_status_text(1), "unknown status");
	assert_string_equal(pqpool_status_text(PQPOOL_ECLOSED), "pool closed");
	assert_string_equal(pqpool_status_name(PQPOOL_OK), "OK");
	assert_string_equal(pqpool_status_name(PQPOOL_ETIMEDOUT), "ETIMEDOUT");
	assert_string_equal(pqpool_status_name(PQPOOL_EAGAIN), "EAGAIN");
	assert_string_equal(pqpool_status_name(-11), "UNKNOWN");
}

static void *other_thread(void *arg)
{
	(void)arg;
	pqpool__fail(PQPOOL_ENOMEM, "theirs");
	return NULL;
}

static void test_last_error(void **state)
{
	char buf[64];
	pqpool__saved_error e;
	pthread_t th;
	(void)state;
	assert_int_equal(pqpool__fail_code(PQPOOL_EQUERY, "23505", "query: %s", "dup"),
	                 PQPOOL_EQUERY);
	assert_string_equal(pqpool_errmsg(), "query: dup");
	assert_string_equal(pqpool_errcode(), "23505");
	/* thread-local: another thread's failure is not ours */
	pthread_create(&th, NULL, other_thread, NULL);
	pthread_join(th, NULL);
	assert_string_equal(pqpool_errmsg(), "query: dup");
	/* saved and restored around work that fails on its own */
	pqpool__error_save(&e);
	pqpool__fail(PQPOOL_ETIMEDOUT, "rollback: timed out");
	pqpool__error_restore(&e);
	assert_string_equal(pqpool_errmsg(), "query: dup");
	assert_string_equal(pqpool_errcode(), "23505");
	/* a SQLSTATE must have five characters */
	pqpool__fail_code(PQPOOL_EQUERY, "235", "x");
	assert_string_equal(pqpool_errcode(), "");
	pqpool__ok();
	assert_string_equal(pqpool_errmsg(), "");
	assert_string_equal(pqpool_errcode(), "");
	pqpool__trim_msg("ERROR:  x\nDETAIL:  y\n\n", buf, sizeof buf);
	assert_string_equal(buf, "ERROR:  x DETAIL:  y");
	pqpool__trim_msg("a\tb\x1b[31mc \r\n", buf, sizeof buf);
	assert_string_equal(buf, "a b [31mc");
	pqpool__trim_msg(NULL, buf, sizeof buf);
	assert_string_equal(buf, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_status_texts),
	        cmocka_unit_test(test_last_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
