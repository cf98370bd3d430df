/* test_notify.c — the service manager's notifications: NOTIFY_SOCKET's address rules
 * (paths and abstract names at sun_path's bounds), WATCHDOG_USEC and WATCHDOG_PID
 * parsed strictly, and datagrams as they arrive at a socket the test binds. */
#include "testenv.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../cmd/pqpool/log.c"
#include "../../cmd/pqpool/serve/notify.c"

#define PATH_ROOM (sizeof(((struct sockaddr_un *)0)->sun_path)) /* 108 */

/* n bytes: the prefix, then 'x' up to n. Static storage. */
static const char *filled(const char *prefix, size_t n)
{
	static char buf[512];
	size_t k = strlen(prefix);

	assert_true(n < sizeof(buf) && k <= n);
	memcpy(buf, prefix, k);
	memset(buf + k, 'x', n - k);
	buf[n] = '\0';
	return buf;
}

static void test_socket_paths(void **state)
{
	struct sockaddr_un a;
	socklen_t len = 0;
	char err[512];
	const char *v;

	(void)state;
	assert_int_equal(
	        notify_parse_socket("/run/systemd/notify", &a, &len, err, sizeof err), 0);
	assert_int_equal(a.sun_family, AF_UNIX);
	assert_string_equal(a.sun_path, "/run/systemd/notify");
	assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) +
	                              strlen("/run/systemd/notify") + 1);

	/* the longest path leaves room for its NUL */
	v = filled("/", PATH_ROOM - 1);
	assert_int_equal(notify_parse_socket(v, &a, &len, err, sizeof err), 0);
	assert_int_equal(len, sizeof(struct sockaddr_un));
	assert_string_equal(a.sun_path, v);
	v = filled("/", PATH_ROOM);
	assert_int_equal(notify_parse_socket(v, &a, &len, err, sizeof err), -1);
	assert_non_null(strstr(err, "NOTIFY_SOCKET=\"/xxx"));
	assert_non_null(strstr(err, "expected an absolute path of at most 107 bytes"));

	for (size_t i = 0; i < 4; i++) {
		static const char *const bad[] = {"", "run/notify", "vsock:2:1234",
		                                  "./n"};
		assert_int_equal(notify_parse_socket(bad[i], &a, &len, err, sizeof err),
		                 -1);
		assert_non_null(strstr(err, "NOTIFY_SOCKET=\""));
	}
}

static void test_socket_abstract(void **state)
{
	struct sockaddr_un a;
	socklen_t len = 0;
	char err[512];
	const char *v;

	(void)state;
	assert_int_equal(notify_parse_socket("@sd", &a, &len, err, sizeof err), 0);
	assert_int_equal(a.sun_path[0], '\0');
	assert_memory_equal(a.sun_path + 1, "sd", 2);
	/* no NUL counted: the name is exactly its bytes */
	assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + 3);

	v = filled("@", PATH_ROOM); /* '@' and 107 bytes of name */
	assert_int_equal(notify_parse_socket(v, &a, &len, err, sizeof err), 0);
	assert_int_equal(len, sizeof(struct sockaddr_un));
	assert_int_equal(notify_parse_socket(filled("@", PATH_ROOM + 1), &a, &len, err,
	                                     sizeof err),
	                 -1);
	/* "@" alone would be an unnamed (autobind) address */
	assert_int_equal(notify_parse_socket("@", &a, &len, err, sizeof err), -1);
}

static void test_socket_shown(void **state)
{
	struct sockaddr_un a;
	socklen_t len;
	char err[512];

	(void)state;
	/* a hostile value is cut and cannot start a line of its own */
	assert_int_equal(
	        notify_parse_socket(filled("x\nWARN  ", 300), &a, &len, err, sizeof err),
	        -1);
	assert_null(strchr(err, '\n'));
	assert_non_null(strstr(err, "x?WARN  xxx"));
	assert_non_null(strstr(err, "...\": expected"));
}

static void test_watchdog(void **state)
{
	int64_t us = -7;
	char err[512];

	(void)state;
	assert_int_equal(notify_parse_watchdog(NULL, NULL, 42, &us, err, sizeof err), 0);
	assert_int_equal(notify_parse_watchdog("", "", 42, &us, err, sizeof err), 0);
	assert_string_equal(err, "");
	assert_int_equal(us, -7);

	assert_int_equal(notify_parse_watchdog("400000", NULL, 42, &us, err, sizeof err),
	                 1);
	assert_int_equal(us, 400000);
	assert_int_equal(notify_parse_watchdog("1", "", 42, &us, err, sizeof err), 1);
	assert_int_equal(us, 1);
	assert_int_equal(
	        notify_parse_watchdog("9223372036854775", NULL, 42, &us, err, sizeof err),
	        1);
	assert_int_equal(us, NOTIFY_MAX_WATCHDOG_USEC);

	for (size_t i = 0; i < 11; i++) {
		static const char *const bad[] = {"0",
		                                  "-1",
		                                  "+1",
		                                  " 1",
		                                  "1 ",
		                                  "1e6",
		                                  "0x10",
		                                  "abc",
		                                  "9223372036854776",
		                                  "18446744073709551615",
		                                  "184467440737095516160"};
		us = -7;
		assert_int_equal(
		        notify_parse_watchdog(bad[i], NULL, 42, &us, err, sizeof err),
		        -1);
		assert_int_equal(us, -7);
		assert_non_null(strstr(err, "WATCHDOG_USEC=\""));
		assert_non_null(
		        strstr(err, "expected an integer from 1 to 9223372036854775"));
	}
}

static void test_watchdog_pid(void **state)
{
	int64_t us = 0;
	char err[512];

	(void)state;
	assert_int_equal(notify_parse_watchdog("400000", "42", 42, &us, err, sizeof err),
	                 1);
	assert_int_equal(us, 400000);

	us = 0;
	assert_int_equal(notify_parse_watchdog("400000", "43", 42, &us, err, sizeof err),
	                 0);
	assert_int_equal(us, 0);
	assert_string_equal(
	        err, "WATCHDOG_PID=43 is not this process (42): no watchdog pings");

	for (size_t i = 0; i < 5; i++) {
		static const char *const bad[] = {"0", "-42", "42x", "2147483648", " 42"};
		assert_int_equal(
		        notify_parse_watchdog("400000", bad[i], 42, &us, err, sizeof err),
		        -1);
		assert_non_null(strstr(err, "WATCHDOG_PID=\""));
	}
}

/* A receiver on an abstract name of the test's own. */
static int bind_abstract(char name[64])
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	size_t n;

	assert_true(fd >= 0);
	n = (size_t)snprintf(name, 64, "@pqpool-test-notify-%ld", (long)getpid());
	memcpy(a.sun_path + 1, name + 1, n - 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&a,
	                      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)),
	                 0);
	return fd;
}

static void test_send(void **state)
{
	notify_target n;
	char name[64], buf[256];
	char pid[16];
	int rx;
	ssize_t got;

	(void)state;
	unsetenv("NOTIFY_SOCKET");
	notify_open(&n);
	assert_false(notify_enabled(&n));
	assert_int_equal(notify_send(&n, "READY=1"), -1); /* nobody to tell: no error */
	notify_close(&n);

	rx = bind_abstract(name);
	setenv("NOTIFY_SOCKET", name, 1);
	setenv("WATCHDOG_USEC", "30000000", 1);
	snprintf(pid, sizeof pid, "%ld", (long)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	notify_open(&n);
	assert_true(notify_enabled(&n));
	assert_int_equal(n.watchdog_usec, 30000000);
	assert_int_equal(
	        notify_send(&n, "READY=1\nSTATUS=listening on http://127.0.0.1:3000"), 0);
	got = recv(rx, buf, sizeof buf - 1, MSG_DONTWAIT);
	assert_true(got > 0);
	buf[got] = '\0';
	assert_string_equal(buf, "READY=1\nSTATUS=listening on http://127.0.0.1:3000");
	assert_int_equal(notify_send(&n, "WATCHDOG=1"), 0);
	got = recv(rx, buf, sizeof buf - 1, MSG_DONTWAIT);
	assert_int_equal(got, 10);
	assert_memory_equal(buf, "WATCHDOG=1", 10);

	/* the receiver gone: a failure, flagged once; back: flag cleared */
	close(rx);
	assert_int_equal(notify_send(&n, "WATCHDOG=1"), -1);
	assert_true(n.failing);
	assert_int_equal(notify_send(&n, "WATCHDOG=1"), -1);
	rx = bind_abstract(name);
	assert_int_equal(notify_send(&n, "WATCHDOG=1"), 0);
	assert_false(n.failing);
	notify_close(&n);
	assert_false(notify_enabled(&n));
	notify_close(&n); /* twice is harmless */
	close(rx);

	/* a bad watchdog leaves the notifications on */
	setenv("WATCHDOG_USEC", "12x", 1);
	notify_open(&n);
	assert_true(notify_enabled(&n));
	assert_int_equal(n.watchdog_usec, 0);
	notify_close(&n);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_socket_paths),
	        cmocka_unit_test(test_socket_abstract),
	        cmocka_unit_test(test_socket_shown),
	        cmocka_unit_test(test_watchdog),
	        cmocka_unit_test(test_watchdog_pid),
	        cmocka_unit_test(test_send),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
