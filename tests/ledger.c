/* ledger.c — acknowledged rows, checked against a table. */
#include "ledger.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

struct row {
	int t, n;
};

static struct row *rows;
static long cap;
static _Atomic long nrows;

void ledger_init(long max)
{
	rows = calloc((size_t)max, sizeof *rows);
	assert_non_null(rows);
	cap = max;
	atomic_store(&nrows, 0);
}

void ledger_free(void)
{
	free(rows);
	rows = NULL;
}

void ledger_ack(int t, int n)
{
	long i = atomic_fetch_add(&nrows, 1);
	if (i < cap)
		rows[i] = (struct row){t, n};
}

static int cmp_row(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	return x->t != y->t ? (x->t > y->t) - (x->t < y->t)
	                    : (x->n > y->n) - (x->n < y->n);
}

ledger_check ledger_compare(PGconn *pg, const char *table)
{
	ledger_check c = {atomic_load(&nrows), 0, 0, 0};
	char sql[256];
	PGresult *res;
	long j = 0;

	if (c.acked > cap)
		fail_msg("ledger: %ld rows acknowledged, room for %ld", c.acked, cap);
	qsort(rows, (size_t)c.acked, sizeof *rows, cmp_row);
	snprintf(sql, sizeof sql, "SELECT t, n FROM %s ORDER BY t, n", table);
	res = PQexec(pg, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		fail_msg("ledger: %s: %s", sql, PQerrorMessage(pg));
	c.rows = PQntuples(res);
	for (long k = 1; k < c.rows; k++)
		if (cmp_row(&(struct row){atoi(PQgetvalue(res, (int)k, 0)),
		                          atoi(PQgetvalue(res, (int)k, 1))},
		            &(struct row){atoi(PQgetvalue(res, (int)k - 1, 0)),
		                          atoi(PQgetvalue(res, (int)k - 1, 1))}) == 0)
			c.duplicates++;
	/* both sorted: walk the table once */
	for (long i = 0; i < c.acked; i++) {
		struct row got = {0, 0};
		while (j < c.rows) {
			got = (struct row){atoi(PQgetvalue(res, (int)j, 0)),
			                   atoi(PQgetvalue(res, (int)j, 1))};
			if (cmp_row(&got, &rows[i]) >= 0)
				break;
			j++;
		}
		if (j < c.rows && cmp_row(&got, &rows[i]) == 0)
			j++;
		else
			c.missing++;
	}
	PQclear(res);
	return c;
}
