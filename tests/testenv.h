/* testenv.h — helpers shared by the tests: the fixture's cluster, admin SQL,
 * and assertions that print both values. */
#ifndef PQPOOL_TESTENV_H
#define PQPOOL_TESTENV_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "pqpool.h"

/* Value of KEY from the fixture's env file (PQPOOL_TEST_ENV), or NULL.
 * Static storage. Fails the test when the file is missing. */
const char *testenv_get(const char *key);
/* The fixture's DATABASE_URL. */
const char *testenv_url(void);
/* Runs SQL as the superuser over the Unix socket; returns the first
 * column of the first row (static buffer) or "" ; fails the test on error. */
const char *testenv_admin(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The server's count of the hyperpage role's sessions once it equals want,
 * or after 3 s: a closed connection's backend takes a moment to exit, so
 * sessions of earlier tests may still be counted for a few milliseconds. */
int testenv_backends_settled(int want);
/* Runs "pgcluster.sh ctl <datadir> <args>" (e.g. "restart -m fast -w");
 * returns the exit status. */
int testenv_pgctl(const char *args);
/* A config for the test cluster: defaults, conninfo = the fixture URL;
 * behind PgBouncer (testenv_bouncer), no statement_timeout in the startup
 * packet, which PgBouncer refuses, and one Sync in flight per connection. */
void testenv_config(pqpool_config *cfg);
/* A pool for a terminate test: the fixture URL with application_name=app
 * (conninfo, of n bytes, holds it), pool_max max, a short retry backoff. */
pqpool *testenv_open_app(const char *app, int max, char *conninfo, size_t n);
/* Waves of pg_terminate_backend of every session named app: sleeps every_ms,
 * terminates, stores the time (testenv_now_ms) in *last_ms; killed[i] the
 * sessions each wave ended. */
void testenv_terminate_waves(const char *app, int waves, int every_ms, int *killed,
                             _Atomic int64_t *last_ms);

/* True when the env file says DATABASE_URL is a PgBouncer in transaction
 * mode (PQPOOL_TEST_BOUNCER=1, tests/sh/test_pgbouncer.sh): no prepared
 * statements, no session state. */
bool testenv_bouncer(void);
/* Runs only the tests whose name matches PQPOOL_TEST_FILTER (a cmocka glob),
 * when it is set; for main(), before cmocka_run_group_tests. */
void testenv_filter(void);
/* A log callback for pools under test: fails the test if a message contains
 * the fixture's password, and keeps the messages for testenv_log_has().
 * testenv_config() installs it. */
void testenv_log(void *arg, pqpool_log_level level, const char *msg);
/* True when a captured log message contains needle. */
int testenv_log_has(const char *needle);
/* Number of captured log messages containing needle. */
int testenv_log_count(const char *needle);
void testenv_log_reset(void);
/* A loopback TCP port that accepts connections (the kernel does) but never
 * answers: a database that hangs. Writes the port; returns the listening
 * socket (close it when done). */
int testenv_blackhole(int *port);
/* A fault case's one-line summary ("FAULT name: k=v ...\n"): printed, and
 * appended to PQPOOL_FAULTS_SUMMARY when set (make test-faults shows them). */
void testenv_fault_line(const char *line);
/* A health verdict a callback got (pqpool_loop_check_health), and how
 * many: testenv_health_done is the callback, a testenv_verdict its arg. */
typedef struct testenv_verdict {
	int n;
	pqpool_health h;
} testenv_verdict;
void testenv_health_done(void *arg, const pqpool_health *h);
/* Monotonic ms. */
int64_t testenv_now_ms(void);
void testenv_sleep_ms(int ms);

#define assert_status(expected, actual)                                                  \
	do {                                                                             \
		int a_ = (actual), e_ = (expected);                                      \
		if (a_ != e_)                                                            \
			fail_msg("status %d (%s) != expected %d (%s): %s", a_,           \
			         pqpool_status_text(a_), e_, pqpool_status_text(e_),     \
			         pqpool_errmsg());                                       \
	} while (0)

#endif
