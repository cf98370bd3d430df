/* role.c — a server that stops taking writes, seen from one connection. */
#include "role.h"

#include <string.h>

#include "clock.h"
#include "log.h"

static bool on(PGconn *pg, const char *param)
{
	const char *v = PQparameterStatus(pg, param);
	return v && strcmp(v, "on") == 0;
}

bool pqpool__refuses_writes(PGconn *pg)
{
	return pg &&
	       (on(pg, "in_hot_standby") || on(pg, "default_transaction_read_only"));
}

static bool is_25006(const char *sqlstate)
{
	return sqlstate && strcmp(sqlstate, "25006") == 0;
}

bool pqpool__role_check(pqpool__slot *s, const char *sqlstate)
{
	pqpool__ctx *ctx = s->ctx;
	PGconn *pg = s->link.pg;
	int64_t now, before;
	bool says;

	if (!ctx->params.need_primary || !pg)
		return false;
	says = pqpool__refuses_writes(pg);
	/* 25006 inside a block the caller opened may be of its own making
	 * (BEGIN READ ONLY); anywhere else the server refused a write */
	if (!says && !(is_25006(sqlstate) && PQtransactionStatus(pg) != PQTRANS_INERROR))
		return false;
	if (pqpool__retired(s))
		return true; /* seen already */
	now = pqc_now_coarse_ms();
	before = atomic_load(&ctx->retire_before_ms);
	while (before < now &&
	       !atomic_compare_exchange_weak(&ctx->retire_before_ms, &before, now))
		;
	if (before < now)
		pqpool__log(
		        &ctx->log, PQPOOL_LOG_WARN,
		        "the server at %s:%s no longer takes writes (%s): retiring the "
		        "connections opened until now; new ones look for the primary",
		        PQhost(pg) ? PQhost(pg) : "?", PQport(pg) ? PQport(pg) : "?",
		        says ? (on(pg, "in_hot_standby")
		                        ? "in_hot_standby is on"
		                        : "default_transaction_read_only "
		                          "is on")
		             : "SQLSTATE 25006, read-only transaction");
	return true;
}

bool pqpool__retry_refused(const pqpool__ctx *ctx, const char *sqlstate)
{
	return ctx->params.need_primary && is_25006(sqlstate);
}
