/* writers.h — threads that insert numbered rows (t, n) one-shot through a
 * pool until told to stop, each acknowledged row kept in the ledger
 * (ledger.h), failures counted by status, and the first success after a
 * moment the test marks (a promotion, the end of a fence). */
#ifndef PQPOOL_TEST_WRITERS_H
#define PQPOOL_TEST_WRITERS_H

#include <stdint.h>

#include "pqpool.h"

typedef struct writers_result {
	long ok, failed, lost;     /* lost: PQPOOL_ECONNLOST, the outcome unknown */
	long lost_again;           /* of those, after the same writer's first */
	int64_t first_lost_ms, last_lost_ms; /* testenv_now_ms; 0 when none */
	long refused;              /* failed with SQLSTATE 25006 */
	long other;                /* failed any other way */
	char first_other[400];     /* the first of those */
	int64_t first_ok_after_ms; /* first success at or after the mark; 0 none */
} writers_result;

/* Starts n threads inserting into table (columns t, n) with t = t0 + i. */
void writers_start(pqpool *pool, const char *table, int n, int t0);
/* From now on (testenv_now_ms) successes count as after the mark. */
void writers_mark(void);
int64_t writers_marked_ms(void);
/* Stops and joins them (none left: nothing to do). */
writers_result writers_stop(void);

#endif
