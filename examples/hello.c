/* hello.c — the README's example: a pool from the environment, a one-shot
 * parameterized query, a lease for a transaction, a health check. */
#include <pqpool.h>
#include <stdio.h>
#include <stdlib.h>

/* Runs as one unit under pqpool_run, which retries it on connection loss,
 * serialization failures and deadlocks. */
static int transfer(pqpool_conn *conn, void *arg)
{
	const char *params[] = {arg};
	int rc = pqpool_exec(conn, "BEGIN", 0, NULL, NULL);
	if (rc == PQPOOL_OK)
		rc = pqpool_exec(conn, "SELECT $1::int + 1", 1, params, NULL);
	if (rc == PQPOOL_OK)
		rc = pqpool_exec(conn, "COMMIT", 0, NULL, NULL);
	return rc; /* on failure the release rolls the transaction back */
}

int main(void)
{
	pqpool_config cfg;
	pqpool *pool;
	pqpool_health health;
	PGresult *res;
	const char *params[] = {"42"};
	char err[512];

	/* DATABASE_URL, DB_POOL_MAX, ... validated; the password never printed */
	if (pqpool_config_from_env(&cfg, NULL, NULL, err, sizeof err) != PQPOOL_OK) {
		fprintf(stderr, "config: %s\n", err);
		return 2;
	}
	if (pqpool_open(&cfg, &pool) != PQPOOL_OK) {
		fprintf(stderr, "open: %s\n", pqpool_errmsg());
		pqpool_config_clear(&cfg);
		return 1;
	}
	pqpool_config_clear(&cfg); /* the pool keeps its own copy */

	/* the spec's pool.query(sql, params); safe to retry, so say so */
	if (pqpool_query(pool, "SELECT $1::int AS test, now() AS timestamp", 1, params,
	                 PQPOOL_IDEMPOTENT, &res) != PQPOOL_OK) {
		fprintf(stderr, "%s\n", pqpool_errmsg());
		pqpool_close(pool, 1000);
		return 1;
	}
	printf("test=%s\n", PQgetvalue(res, 0, 0));
	PQclear(res);

	/* the spec's executeWithRetry(operation, "transfer") */
	if (pqpool_run(pool, "transfer", transfer, "41") != PQPOOL_OK)
		fprintf(stderr, "%s\n", pqpool_errmsg());

	pqpool_check_health(pool, &health);
	printf("health=%s responseTime=%.3f ms connections=%d\n",
	       pqpool_health_text(health.status), health.response_ms,
	       health.connection_count);

	pqpool_close(pool, 5000); /* waits up to 5 s for leases still out */
	return health.status == PQPOOL_UNHEALTHY;
}
