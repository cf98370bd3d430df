/* test_common.c — common/: the wake-up event, clocks and time stamps, the
 * random source, the string builder, UTF-8 and shown text, strict parsing. */
#include "testenv.h"
#include "clock.h"
#include "event.h"
#include "parse.h"
#include "rand.h"
#include "sbuf.h"
#include "utf8.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct setter {
	pqc_event *ev;
	int delay_ms;
};

static void *set_later(void *arg)
{
	struct setter *s = arg;
	testenv_sleep_ms(s->delay_ms);
	pqc_event_set(s->ev);
	return NULL;
}

static void test_event_wait(void **state)
{
	pqc_event ev;
	pthread_t th;
	struct setter s = {&ev, 50};
	int64_t t0, el;
	(void)state;
	/* times out at the deadline, not before */
	pqc_event_init(&ev);
	t0 = testenv_now_ms();
	assert_int_equal(pqc_event_wait(&ev, pqc_now_ns() + 100000000), 0);
	el = testenv_now_ms() - t0;
	assert_true(el >= 99);
	assert_true(el < 400);
	/* wakes when set from another thread, well before the deadline */
	pqc_event_init(&ev);
	pthread_create(&th, NULL, set_later, &s);
	t0 = testenv_now_ms();
	assert_int_equal(pqc_event_wait(&ev, pqc_now_ns() + 5000000000LL), 1);
	el = testenv_now_ms() - t0;
	pthread_join(th, NULL);
	assert_true(el >= 40);
	assert_true(el < 2000);
	/* already set: returns at once, even with a past deadline */
	assert_int_equal(pqc_event_wait(&ev, 0), 1);
}

static void test_clock(void **state)
{
	char buf[PQC_ISO8601_LEN];
	int64_t a, b, t0;
	(void)state;
	assert_string_equal(pqc_iso8601(1795701600123LL, buf),
	                    "2026-11-26T14:00:00.123Z");
	assert_string_equal(pqc_iso8601(0, buf), "1970-01-01T00:00:00.000Z");
	/* before the epoch: the millisecond part stays in [0, 999] */
	assert_string_equal(pqc_iso8601(-1, buf), "1969-12-31T23:59:59.999Z");
	a = pqc_now_ns();
	b = pqc_now_ns();
	assert_true(b >= a);
	assert_true(pqc_now_coarse_ms() > 0);
	assert_true(pqc_wall_ms() > 1700000000000LL);
	assert_true(pqc_rand64() != pqc_rand64());
	t0 = testenv_now_ms();
	pqc_sleep_ms(30);
	assert_true(testenv_now_ms() - t0 >= 29);
	pqc_sleep_ms(-5); /* returns at once */
}

static void test_sbuf(void **state)
{
	pqc_sbuf b = PQC_SBUF_INIT;
	char *s, big[1000];
	(void)state;
	s = pqc_sbuf_finish(&b);
	assert_string_equal(s, ""); /* nothing appended is still a string */
	free(s);
	pqc_sbuf_puts(&b, "a");
	pqc_sbuf_putc(&b, '=');
	pqc_sbuf_printf(&b, "%d;", 42);
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	pqc_sbuf_printf(&b, "%s", big); /* past the printf's small buffer */
	pqc_sbuf_putn(&b, "yz", 1);
	assert_int_equal(b.len, 5 + 999 + 1);
	s = pqc_sbuf_finish(&b);
	assert_int_equal(strncmp(s, "a=42;xxx", 8), 0);
	assert_int_equal(s[strlen(s) - 1], 'y');
	assert_null(b.p); /* handed over */
	free(s);
	/* once failed, appends are no-ops and finish gives NULL */
	pqc_sbuf_puts(&b, "kept?");
	b.failed = true;
	pqc_sbuf_puts(&b, "no");
	assert_null(pqc_sbuf_finish(&b));
	assert_null(b.p);
}

static void test_utf8(void **state)
{
	pqc_sbuf b = PQC_SBUF_INIT;
	char *s;
	(void)state;
	assert_int_equal(pqc_utf8_len((const unsigned char *)"a", 1), 1);
	assert_int_equal(pqc_utf8_len((const unsigned char *)"\xc3\xa9", 2), 2);
	assert_int_equal(pqc_utf8_len((const unsigned char *)"\xe2\x82\xac", 3), 3);
	assert_int_equal(pqc_utf8_len((const unsigned char *)"\xf0\x9f\x98\x80", 4), 4);
	assert_int_equal(pqc_utf8_len((const unsigned char *)"\xe2\x82\xac", 2), 0);
	assert_int_equal(pqc_utf8_len((const unsigned char *)"\xc0\xaf", 2),
	                 0); /* overlong */
	assert_int_equal(pqc_utf8_len((const unsigned char *)"\xed\xa0\x80", 3),
	                 0); /* surrogate */
	assert_int_equal(pqc_utf8_len((const unsigned char *)"\xf4\x90\x80\x80", 4), 0);
	assert_int_equal(pqc_utf8_len((const unsigned char *)"\x80", 1), 0);
	assert_int_equal(pqc_utf8_len((const unsigned char *)"", 0), 0);
	assert_int_equal(pqc_utf8_start("a\xe2\x82\xac", 3), 1);
	assert_int_equal(pqc_utf8_start("a\xe2\x82\xac", 1), 1);
	assert_int_equal(pqc_utf8_start("\x80\x80", 1), 0);
	pqc_utf8_clean(&b, "a\xff\xc3\xa9\0z", 6);
	s = pqc_sbuf_finish(&b);
	assert_string_equal(s, "a\xef\xbf\xbd\xc3\xa9\xef\xbf\xbdz");
	free(s);
}

static void test_shown(void **state)
{
	char out[16];
	(void)state;
	assert_string_equal(pqc_shown("abc", 3, 10, out, sizeof out), "abc");
	assert_string_equal(pqc_shown("abcdefghijk", 11, 10, out, sizeof out),
	                    "abcdefghij...");
	/* control characters and bad bytes never reach a log line */
	assert_string_equal(pqc_shown("a\nb\x1b\xff", 5, 10, out, sizeof out), "a?b??");
	/* a cut never splits a character */
	assert_string_equal(pqc_shown("\xe2\x82\xac\xe2\x82\xac", 6, 4, out, sizeof out),
	                    "\xe2\x82\xac...");
	/* the buffer bounds max */
	assert_string_equal(pqc_shown("abcdefgh", 8, 100, out, 8), "abcd...");
	assert_string_equal(pqc_shown("abc", 3, 10, out, 3), "");
	assert_string_equal(pqc_shown("", 0, 10, out, sizeof out), "");
	/* for JSON: control characters stay (the encoder escapes them), bad
	 * bytes do not, and the same cuts apply */
	assert_string_equal(pqc_shown_json("a\nb\x1b\xff", 5, 10, out, sizeof out),
	                    "a\nb\x1b?");
	assert_string_equal(pqc_shown_json("abcdefghijk", 11, 10, out, sizeof out),
	                    "abcdefghij...");
}

static void test_parse(void **state)
{
	int v = -1;
	bool b = false;
	(void)state;
	assert_true(pqc_parse_int("0", 0, 10, &v));
	assert_int_equal(v, 0);
	assert_true(pqc_parse_int("2147483647", 0, INT_MAX, &v));
	assert_int_equal(v, INT_MAX);
	v = 7;
	assert_false(pqc_parse_int("2147483648", 0, INT_MAX, &v));
	assert_false(pqc_parse_int("99999999999999999999999", 0, INT_MAX, &v));
	assert_false(pqc_parse_int("", 0, 10, &v));
	assert_false(pqc_parse_int("-1", 0, 10, &v));
	assert_false(pqc_parse_int("+1", 0, 10, &v));
	assert_false(pqc_parse_int(" 1", 0, 10, &v));
	assert_false(pqc_parse_int("1 ", 0, 10, &v));
	assert_false(pqc_parse_int("1k", 0, 10, &v));
	assert_false(pqc_parse_int("11", 0, 10, &v));
	assert_false(pqc_parse_int("4", 5, 10, &v));
	assert_int_equal(v, 7); /* untouched on failure */
	assert_true(pqc_parse_bool("TRUE", &b) && b);
	assert_true(pqc_parse_bool("off", &b) && !b);
	assert_true(pqc_parse_bool("Yes", &b) && b);
	assert_true(pqc_parse_bool("0", &b) && !b);
	assert_false(pqc_parse_bool("", &b));
	assert_false(pqc_parse_bool("truee", &b));
	assert_false(pqc_parse_bool("2", &b));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_event_wait), cmocka_unit_test(test_clock),
	        cmocka_unit_test(test_sbuf),       cmocka_unit_test(test_utf8),
	        cmocka_unit_test(test_shown),      cmocka_unit_test(test_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
