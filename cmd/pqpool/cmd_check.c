/* cmd_check.c — `pqpool check`: one health check, printed as GET /api/health/database
 * answers. */
#include <stdio.h>
#include <stdlib.h>

#include "commands.h"
#include "log.h"
#include "setup.h"

/* How long close waits for leases; the check holds none once it returns. */
#define CHECK_DRAIN_MS 1000

static int run_check(const cli_args *args)
{
	setup_ctx s;
	pqpool *pool = NULL;
	pqpool_health h;
	char *url, *json;
	int rc;

	(void)args;
	rc = setup_load(&s);
	if (rc != 0) {
		setup_free(&s);
		return rc;
	}
	/* One probe needs one connection. Warming DB_POOL_MIN first would open
	 * connections nobody uses and, with a server that does not answer, make
	 * the check wait the connection timeout twice (open, then probe). */
	s.cfg.pool_min = 0;
	setup_warn_tls(&s);

	url = setup_masked_url(s.cfg.conninfo);
	log_msg(PQPOOL_LOG_DEBUG, "checking %s (timeout %d ms)", url ? url : "?",
	        s.cfg.connection_timeout_ms);
	free(url);

	rc = pqpool_open(&s.cfg, &pool);
	if (rc != PQPOOL_OK) {
		fprintf(stderr, "pqpool: %s\n",
		        *pqpool_errmsg() ? pqpool_errmsg() : pqpool_status_text(rc));
		setup_free(&s);
		return CLI_EXIT_FAIL;
	}
	rc = pqpool_check_health(pool, &h);
	if (rc != PQPOOL_OK) {
		fprintf(stderr, "pqpool: %s\n",
		        *pqpool_errmsg() ? pqpool_errmsg() : pqpool_status_text(rc));
		h.status = PQPOOL_UNHEALTHY;
	} else if ((json = pqpool_render_health_json(&h)) != NULL) {
		puts(json);
		free(json);
	} else {
		fputs("pqpool: out of memory\n", stderr);
		h.status = PQPOOL_UNHEALTHY;
	}
	pqpool_close(pool, CHECK_DRAIN_MS);
	setup_free(&s);
	return h.status == PQPOOL_UNHEALTHY ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

const cli_command check_command = {
        .name = "check",
        .summary = "run one health check and print it as JSON",
        .details = "Opens a pool with the configuration `pqpool config` shows,\n"
                   "runs one health check (DB_HEALTH_QUERY) bounded by\n"
                   "DB_CONNECTION_TIMEOUT and prints the health JSON:\n"
                   "{\"status\":...,\"data\":{\"responseTime\":...}}.\n"
                   "Exits 0 when healthy or degraded, 1 when unhealthy,\n"
                   "2 for a bad option or configuration value.",
        .run = run_check,
};
