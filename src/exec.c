/* exec.c — running a statement on a slot's connection with a client-side
 * deadline, cancelling it past the deadline, and recording the outcome;
 * statements prepared once per connection and reused. */
#include "exec.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "fdwait.h"
#include "role.h"

/* Asks the server to cancel the slot's running query, spending at most until
 * deadline_ns on reaching it. */
void pqpool__cancel_query(pqpool__slot *s, int64_t deadline_ns)
{
	pqpool__canceller *c = pqpool__take_canceller(s);
	char err[256];
	if (pqpool__cancel(c, deadline_ns, err, sizeof err) != 0)
		pqpool__log(&s->ctx->log, PQPOOL_LOG_WARN, "%s", err);
	if (c)
		pqpool__give_canceller(s, c);
}

int pqpool__conn_lost(pqpool__slot *s, const char *what, const char *sqlstate)
{
	char msg[PQPOOL__ERRLEN];
	s->link.broken = true;
	pqpool__trim_msg(PQerrorMessage(s->link.pg), msg, sizeof msg);
	if (!msg[0])
		snprintf(msg, sizeof msg, "connection lost");
	return pqpool__fail_code(PQPOOL_ECONNLOST, sqlstate, "%s: %s", what, msg);
}

int pqpool__wait_result(pqpool__slot *s, int64_t deadline_ns, int grace_ms,
                        PGresult **res, const char *what)
{
	PGconn *pg = s->link.pg;
	PGresult *last = NULL, *r;
	bool cancelled = false, tls = PQsslInUse(pg);
	int64_t t0 = pqc_now_ns();

	for (;;) {
		while (PQisBusy(pg)) {
			int w;
			/* TLS may hold decrypted bytes the socket no longer shows */
			if (tls) {
				if (!PQconsumeInput(pg))
					goto lost;
				if (!PQisBusy(pg))
					break;
			}
			w = pqc_wait_fd(PQsocket(pg), POLLIN, deadline_ns);
			if (w == 0) {
				/* With no grace the deadline is hard: drop the
				 * connection rather than spend time on a cancel
				 * (statement_timeout bounds what is left on the
				 * server). */
				if (cancelled || grace_ms <= 0) {
					s->link.broken = true;
					PQclear(last);
					return pqpool__fail(
					        PQPOOL_ETIMEDOUT,
					        "%s: timed out after %lld ms%s; "
					        "connection closed",
					        what,
					        (long long)((pqc_now_ns() - t0) /
					                    1000000),
					        cancelled ? ", no answer to the cancel "
					                    "request"
					                  : "");
				}
				cancelled = true;
				deadline_ns = pqc_now_ns() + (int64_t)grace_ms * 1000000;
				pqpool__cancel_query(s, deadline_ns);
				continue;
			}
			if (w < 0 || !PQconsumeInput(pg))
				goto lost;
		}
		r = PQgetResult(pg);
		if (!r)
			break;
		switch (PQresultStatus(r)) {
		case PGRES_COPY_IN:
		case PGRES_COPY_OUT:
		case PGRES_COPY_BOTH:
			/* COPY needs the caller's own libpq loop; the connection is
			 * now mid-protocol and cannot be reused. */
			PQclear(r);
			PQclear(last);
			s->link.broken = true;
			return pqpool__fail(
			        PQPOOL_EINVAL,
			        "%s: COPY is not supported here; use libpq on "
			        "pqpool_conn_pg()",
			        what);
		default:
			pqpool__keep_result(&last, r);
		}
	}
	return pqpool__result_status(s, last, cancelled ? t0 : 0, res, what);

lost:
	PQclear(last);
	return pqpool__conn_lost(s, what, NULL);
}

void pqpool__keep_result(PGresult **last, PGresult *r)
{
	/* like PQexec: the last result wins, but an error is kept */
	if (*last && PQresultStatus(*last) == PGRES_FATAL_ERROR) {
		PQclear(r);
	} else {
		PQclear(*last);
		*last = r;
	}
}

int pqpool__result_status(pqpool__slot *s, PGresult *last, int64_t cancelled_t0,
                          PGresult **res, const char *what)
{
	int status = PQPOOL_OK;
	if (!last) {
		if (PQstatus(s->link.pg) == CONNECTION_BAD)
			return pqpool__conn_lost(s, what, NULL);
		return pqpool__fail(PQPOOL_EINVAL, "%s: no result", what);
	}
	switch (PQresultStatus(last)) {
	case PGRES_COMMAND_OK:
	case PGRES_TUPLES_OK:
	case PGRES_SINGLE_TUPLE:
		break;
	case PGRES_EMPTY_QUERY:
		status = pqpool__fail(PQPOOL_EINVAL, "%s: empty query", what);
		break;
	default: {
		const char *state = PQresultErrorField(last, PG_DIAG_SQLSTATE);
		char msg[PQPOOL__ERRLEN];
		if (PQstatus(s->link.pg) == CONNECTION_BAD) {
			status = pqpool__conn_lost(s, what, state);
			break;
		}
		if (cancelled_t0 && state && strcmp(state, "57014") == 0) {
			status = pqpool__fail_code(
			        PQPOOL_ETIMEDOUT, state,
			        "%s: cancelled after %lld ms (DB_QUERY_TIMEOUT)", what,
			        (long long)((pqc_now_ns() - cancelled_t0) / 1000000));
			break;
		}
		pqpool__trim_msg(PQresultErrorMessage(last), msg, sizeof msg);
		if (state && s->ctx->cfg.prepare &&
		    (strcmp(state, "42P05") == 0 || strcmp(state, "26000") == 0) &&
		    strstr(msg, "\"pqpool_"))
			/* our own statement names: the session under us changed, as
			 * behind a pooler in transaction mode */
			status = pqpool__fail_code(
			        PQPOOL_EQUERY, state,
			        "%s: %s (a pooler in transaction mode such as PgBouncer "
			        "in "
			        "between? set DB_PREPARED_STATEMENTS=off)",
			        what, msg);
		else
			status = pqpool__fail_code(PQPOOL_EQUERY, state, "%s: %s", what,
			                           msg);
		pqpool__role_check(s, state);
	}
	}
	if (status != PQPOOL_OK) {
		PQclear(last);
		return status;
	}
	if (res)
		*res = last;
	else
		PQclear(last);
	return PQPOOL_OK;
}

static void note_failure(pqpool__slot *s, int status)
{
	const char *code = pqpool_errcode();
	s->lease.last_status = status;
	snprintf(s->lease.last_sqlstate, sizeof s->lease.last_sqlstate, "%s", code);
	pqpool__count_failure(&s->ctx->counters, status, code[0] ? code : NULL);
}

void pqpool__note_query(pqpool__slot *s, int64_t t0, int status)
{
	int64_t t1 = pqc_now_ns();
	pqpool__qstats_add(&s->q, t1, t1 - t0, status != PQPOOL_OK);
	if (status != PQPOOL_OK)
		note_failure(s, status);
}

/* ---- statements prepared once per connection ---- */

static int send_failed(pqpool__slot *s, const char *what)
{
	char msg[PQPOOL__ERRLEN];
	if (PQstatus(s->link.pg) == CONNECTION_BAD)
		return pqpool__conn_lost(s, what, NULL);
	pqpool__trim_msg(PQerrorMessage(s->link.pg), msg, sizeof msg);
	return pqpool__fail(PQPOOL_EINVAL, "%s: %s", what, msg);
}

/* A cached statement the server no longer honours: the plan's result type
 * changed under it (a table was altered), or it is gone (DISCARD ALL,
 * DEALLOCATE). Outside a transaction nothing ran, so preparing it again is
 * safe. */
static bool stale_statement(pqpool__slot *s)
{
	const char *code = pqpool_errcode();
	if (PQtransactionStatus(s->link.pg) != PQTRANS_IDLE)
		return false;
	return strcmp(code, "26000") == 0 ||
	       (strcmp(code, "0A000") == 0 &&
	        strstr(pqpool_errmsg(), "cached plan must not change result type") !=
	                NULL);
}

static int exec_prepared(pqpool__slot *s, const char *sql, int nparams,
                         const char *const *params, PGresult **r, int64_t deadline_ns,
                         int grace_ms, bool retried)
{
	PGconn *pg = s->link.pg;
	char name[PQPOOL__STMT_NAMELEN];
	int st, found = pqpool__stmt_find(&s->link.stmts, sql, name);

	if (found < 0)
		return pqpool__fail(PQPOOL_ENOMEM, "query: out of memory");
	if (found == PQPOOL__STMT_UNNAMED) /* the table is full */
		return PQsendQueryParams(pg, sql, nparams, NULL, params, NULL, NULL, 0)
		               ? pqpool__wait_result(s, deadline_ns, grace_ms, r, "query")
		               : send_failed(s, "query");
	if (found == PQPOOL__STMT_PREPARE) {
		if (pqpool__stmt_add(s->link.stmts, sql) != PQPOOL_OK)
			return pqpool__fail(PQPOOL_ENOMEM, "query: out of memory");
		if (!PQsendPrepare(pg, name, sql, nparams, NULL)) {
			pqpool__stmt_forget(s->link.stmts, sql);
			return send_failed(s, "prepare");
		}
		st = pqpool__wait_result(s, deadline_ns, grace_ms, NULL, "query");
		if (st != PQPOOL_OK) {
			pqpool__stmt_forget(s->link.stmts, sql);
			return st;
		}
	}
	if (!PQsendQueryPrepared(pg, name, nparams, params, NULL, NULL, 0))
		return send_failed(s, "query");
	st = pqpool__wait_result(s, deadline_ns, grace_ms, r, "query");
	if (st == PQPOOL_EQUERY && !retried && stale_statement(s)) {
		bool exists = strcmp(pqpool_errcode(), "26000") != 0;
		pqpool__stmt_forget(s->link.stmts, sql);
		if (exists) { /* free it on the server; a failure here is harmless */
			char sqlbuf[64];
			snprintf(sqlbuf, sizeof sqlbuf, "DEALLOCATE %s", name);
			if (PQsendQuery(pg, sqlbuf))
				pqpool__wait_result(s, deadline_ns, grace_ms, NULL,
				                    "deallocate");
		}
		pqpool__log(&s->ctx->log, PQPOOL_LOG_INFO,
		            "prepared statement %s was stale; preparing it again", name);
		return exec_prepared(s, sql, nparams, params, r, deadline_ns, grace_ms,
		                     true);
	}
	return st;
}

int pqpool__send_query(pqpool__slot *s, const pqpool__qreq *q, bool *preparing)
{
	PGconn *pg = s->link.pg;
	char name[PQPOOL__STMT_NAMELEN];
	int found = PQPOOL__STMT_UNNAMED, ok;
	*preparing = false;
	if (s->ctx->cfg.prepare &&
	    (found = pqpool__stmt_find(&s->link.stmts, q->sql, name)) < 0)
		return pqpool__fail(PQPOOL_ENOMEM, "query: out of memory");
	if (found == PQPOOL__STMT_PREPARE) {
		/* prepare first; pqpool__prepared() executes it */
		if (pqpool__stmt_add(s->link.stmts, q->sql) != PQPOOL_OK)
			return pqpool__fail(PQPOOL_ENOMEM, "query: out of memory");
		*preparing = true;
		if (PQsendPrepare(pg, name, q->sql, q->nparams, NULL))
			return PQPOOL_OK;
		pqpool__stmt_forget(s->link.stmts, q->sql);
		return send_failed(s, "prepare");
	}
	if (found == PQPOOL__STMT_CACHED)
		ok = PQsendQueryPrepared(pg, name, q->nparams, q->params, NULL, NULL, 0);
	else
		ok = PQsendQueryParams(pg, q->sql, q->nparams, NULL, q->params, NULL,
		                       NULL, 0);
	return ok ? PQPOOL_OK : send_failed(s, "query");
}

int pqpool__prepared(pqpool__slot *s, const pqpool__qreq *q, PGresult **last,
                     bool *preparing)
{
	*preparing = false;
	if (!*last || PQresultStatus(*last) != PGRES_COMMAND_OK) {
		pqpool__stmt_forget(s->link.stmts, q->sql);
		return PQPOOL_EQUERY; /* the kept result says why */
	}
	PQclear(*last);
	*last = NULL;
	return pqpool__send_query(s, q, preparing);
}

int pqpool__send_ready(pqpool__slot *s, const pqpool__qreq *q)
{
	char name[PQPOOL__STMT_NAMELEN];
	int ok;
	if (s->ctx->cfg.prepare) {
		/* only a statement already prepared here: preparing it would
		 * cost a round trip the waiter makes itself */
		if (!s->link.stmts || pqpool__stmt_find(&s->link.stmts, q->sql, name) !=
		                              PQPOOL__STMT_CACHED)
			return PQPOOL_EAGAIN;
		ok = PQsendQueryPrepared(s->link.pg, name, q->nparams, q->params, NULL,
		                         NULL, 0);
	} else {
		ok = PQsendQueryParams(s->link.pg, q->sql, q->nparams, NULL, q->params,
		                       NULL, NULL, 0);
	}
	return ok ? PQPOOL_OK : send_failed(s, "query");
}

/* The end of a query that started at t0: counted, and its result (owned)
 * handed to *res or freed. */
static int counted(pqpool__slot *s, int64_t t0, int status, PGresult *r, PGresult **res)
{
	pqpool__note_query(s, t0, status);
	if (status != PQPOOL_OK)
		return status;
	if (res)
		*res = r;
	else
		PQclear(r);
	pqpool__ok();
	return PQPOOL_OK;
}

int pqpool__finish_sent(pqpool__slot *s, int64_t t0, PGresult **res)
{
	int qt = s->ctx->cfg.query_timeout_ms;
	int64_t deadline = qt > 0 ? t0 + (int64_t)qt * 1000000 : INT64_MAX;
	PGresult *r = NULL;
	int status;
	if (res)
		*res = NULL;
	if (s->lease.deadline_cap_ns && s->lease.deadline_cap_ns < deadline)
		deadline = s->lease.deadline_cap_ns;
	/* we were woken because the answer arrived: read it before polling
	 * (a failure here shows in the wait below) */
	(void)PQconsumeInput(s->link.pg);
	status = pqpool__wait_result(s, deadline, PQPOOL__CANCEL_GRACE_MS, &r, "query");
	return counted(s, t0, status, r, res);
}

int pqpool__exec(pqpool__slot *s, const char *sql, int nparams, const char *const *params,
                 PGresult **res, int64_t deadline_ns, int grace_ms)
{
	int64_t t0 = pqc_now_ns();
	int status;
	PGresult *r = NULL;

	if (res)
		*res = NULL;
	if (!sql || nparams < 0 || (nparams > 0 && !params))
		return pqpool__fail(PQPOOL_EINVAL, "exec: NULL lease, SQL or parameters");
	if (deadline_ns == 0) {
		int qt = s->ctx->cfg.query_timeout_ms;
		deadline_ns = qt > 0 ? t0 + (int64_t)qt * 1000000 : INT64_MAX;
	}
	if (s->lease.deadline_cap_ns && s->lease.deadline_cap_ns < deadline_ns)
		deadline_ns = s->lease.deadline_cap_ns;
	/* text parameters, text results */
	if (s->ctx->cfg.prepare)
		status = exec_prepared(s, sql, nparams, params, &r, deadline_ns, grace_ms,
		                       false);
	else if (!PQsendQueryParams(s->link.pg, sql, nparams, NULL, params, NULL, NULL,
	                            0))
		status = send_failed(s, "query"); /* unnamed, as PQexecParams */
	else
		status = pqpool__wait_result(s, deadline_ns, grace_ms, &r, "query");
	return counted(s, t0, status, r, res);
}

int pqpool_exec(pqpool_conn *conn, const char *sql, int nparams,
                const char *const *params, PGresult **res)
{
	if (!conn) {
		if (res)
			*res = NULL;
		return pqpool__fail(PQPOOL_EINVAL, "exec: NULL lease, SQL or parameters");
	}
	return pqpool__exec(pqpool__slot_of_lease(conn), sql, nparams, params, res, 0,
	                    PQPOOL__CANCEL_GRACE_MS);
}

int pqpool_conn_fail(pqpool_conn *conn, const PGresult *res)
{
	pqpool__slot *s;
	char msg[PQPOOL__ERRLEN];
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	int status;
	if (!conn)
		return pqpool__fail(PQPOOL_EINVAL, "pqpool_conn_fail: NULL lease");
	s = pqpool__slot_of_lease(conn);
	if (PQstatus(s->link.pg) == CONNECTION_BAD) {
		status = pqpool__conn_lost(s, "query", state);
	} else {
		pqpool__trim_msg(res ? PQresultErrorMessage(res)
		                     : PQerrorMessage(s->link.pg),
		                 msg, sizeof msg);
		status = pqpool__fail_code(PQPOOL_EQUERY, state, "query: %s",
		                           msg[0] ? msg : "failed");
	}
	note_failure(s, status);
	return status;
}
