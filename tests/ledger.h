/* ledger.h — the rows writers were told were inserted, (t, n) pairs, and
 * their check against a table afterwards: what is missing (an acknowledged
 * write lost) and what is there twice (a write run twice). Thread-safe to
 * fill; checked once the writers are done. */
#ifndef PQPOOL_TEST_LEDGER_H
#define PQPOOL_TEST_LEDGER_H

#include <libpq-fe.h>

typedef struct ledger_check {
	long acked;      /* rows acknowledged */
	long rows;       /* rows in the table */
	long missing;    /* acknowledged, not in the table */
	long duplicates; /* (t, n) in the table more than once */
} ledger_check;

/* Room for max rows; fails the test when out of memory. */
void ledger_init(long max);
void ledger_free(void);
/* A writer was told (t, n) was inserted. */
void ledger_ack(int t, int n);
/* Compares with table (columns t and n) as pg sees it. */
ledger_check ledger_compare(PGconn *pg, const char *table);

#endif
