/* role.c — a server that stops taking writes, seen from one connection. */
#include "role.h"

#include <string.h>

#include "clock.h"
#include "log.h"
#include "rand.h"

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

/* A member's role from what its server reports (nothing: unknown). */
static void note_role(pqpool__ctx *ctx, PGconn *pg, bool refused)
{
	int role = refused                                   ? PQPOOL__ROLE_STANDBY
	           : PQparameterStatus(pg, "in_hot_standby") ? PQPOOL__ROLE_PRIMARY
	                                                     : PQPOOL__ROLE_UNKNOWN;
	int was;
	/* on every release: read, and write only on a change, so that the
	 * callers of a host do not all write one cache line */
	if (atomic_load_explicit(&ctx->role, memory_order_relaxed) == role)
		return;
	was = atomic_exchange(&ctx->role, role);
	if (was != role && was != PQPOOL__ROLE_UNKNOWN && role != PQPOOL__ROLE_UNKNOWN)
		pqpool__log(&ctx->log, PQPOOL_LOG_WARN, "the server at %s is now a %s",
		            ctx->params.masked,
		            role == PQPOOL__ROLE_PRIMARY ? "primary"
		                                         : "standby (read-only)");
}

bool pqpool__role_check(pqpool__slot *s, const char *sqlstate)
{
	pqpool__ctx *ctx = s->ctx;
	PGconn *pg = s->link.pg;
	int64_t now, before;
	bool says, refused;

	if ((!ctx->params.need_primary && !ctx->member) || !pg)
		return false;
	says = pqpool__refuses_writes(pg);
	/* 25006 inside a block the caller opened may be of its own making
	 * (BEGIN READ ONLY); anywhere else the server refused a write */
	refused = says ||
	          (is_25006(sqlstate) && PQtransactionStatus(pg) != PQTRANS_INERROR);
	if (ctx->member) {
		/* a standby's open sessions learn of its promotion: in_hot_standby
		 * turns off; after a 25006 a stale "off" is not believed */
		if (refused || !sqlstate)
			note_role(ctx, pg, refused);
		return false;
	}
	if (!refused)
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
	/* a member's pool is one whose writers need a primary */
	return (ctx->params.need_primary || ctx->member) && is_25006(sqlstate);
}

int64_t pqpool__ban_ms(int fails, uint64_t rnd)
{
	int64_t ms = 1000;
	for (int i = 1; i < fails && ms < 60000; i++)
		ms *= 2;
	if (ms > 60000)
		ms = 60000;
	return ms - (int64_t)(rnd % (uint64_t)(ms / 10 + 1));
}

void pqpool__role_connected(pqpool__ctx *ctx, bool ok)
{
	int fails;
	if (!ctx->member)
		return;
	if (ok) {
		if (atomic_exchange(&ctx->fails, 0) > 0)
			pqpool__log(&ctx->log, PQPOOL_LOG_INFO, "%s answers again",
			            ctx->params.masked);
		atomic_store(&ctx->banned_until_ms, 0);
		return;
	}
	fails = atomic_fetch_add(&ctx->fails, 1) + 1;
	atomic_store(&ctx->lag_us, -1); /* what was measured no longer holds */
	atomic_store(&ctx->banned_until_ms,
	             pqc_now_coarse_ms() + pqpool__ban_ms(fails, pqc_rand64()));
}
