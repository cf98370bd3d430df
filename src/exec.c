/* exec.c — running a statement on a lease with a client-side deadline,
 * cancelling it past the deadline, and recording the outcome. */
#include "internal.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How long a cancelled query gets, by default, to report back before the
 * connection is given up as unusable. */
#define CANCEL_GRACE_MS PQPOOL__CANCEL_GRACE_MS

static int wait_readable(PGconn *pg, int64_t deadline_ns)
{
	struct pollfd pfd = {.fd = PQsocket(pg), .events = POLLIN};
	for (;;) {
		int64_t left = deadline_ns - pqpool__now_ns();
		int r, ms;
		if (left <= 0)
			return 0;
		ms = left > (int64_t)1000000 * 1000000 ? 1000000
		                                       : (int)((left + 999999) / 1000000);
		r = poll(&pfd, 1, ms);
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

/* Asks the server to cancel the lease's running query, spending at most
 * until deadline_ns on reaching it. */
static void cancel_query(struct pqpool_conn *c, int64_t deadline_ns)
{
	char err[256];
	if (pqpool__cancel_send(&c->ci, deadline_ns, err, sizeof err) != 0)
		pqpool__log(c->pool, PQPOOL_LOG_WARN, "%s", err);
}

int pqpool__conn_lost(struct pqpool_conn *c, const char *what, const char *sqlstate)
{
	char msg[PQPOOL__ERRLEN];
	c->broken = true;
	pqpool__trim_msg(PQerrorMessage(c->pg), msg, sizeof msg);
	if (!msg[0])
		snprintf(msg, sizeof msg, "connection lost");
	return pqpool__fail_code(PQPOOL_ECONNLOST, sqlstate, "%s: %s", what, msg);
}

int pqpool__wait_result(struct pqpool_conn *c, int64_t deadline_ns, int grace_ms,
                        PGresult **res, const char *what)
{
	PGconn *pg = c->pg;
	PGresult *last = NULL, *r;
	bool cancelled = false, tls = PQsslInUse(pg);
	int64_t t0 = pqpool__now_ns();

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
			w = wait_readable(pg, deadline_ns);
			if (w == 0) {
				/* With no grace the deadline is hard: drop the
				 * connection rather than spend time on a cancel
				 * (statement_timeout bounds what is left on the
				 * server). */
				if (cancelled || grace_ms <= 0) {
					c->broken = true;
					PQclear(last);
					return pqpool__fail(
					        PQPOOL_ETIMEDOUT,
					        "%s: timed out after %lld ms%s; "
					        "connection closed",
					        what,
					        (long long)((pqpool__now_ns() - t0) /
					                    1000000),
					        cancelled ? ", no answer to the cancel "
					                    "request"
					                  : "");
				}
				cancelled = true;
				deadline_ns =
				        pqpool__now_ns() + (int64_t)grace_ms * 1000000;
				cancel_query(c, deadline_ns);
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
			c->broken = true;
			return pqpool__fail(
			        PQPOOL_EINVAL,
			        "%s: COPY is not supported here; use libpq on "
			        "pqpool_conn_pg()",
			        what);
		default:
			pqpool__keep_result(&last, r);
		}
	}
	return pqpool__result_status(c, last, cancelled ? t0 : 0, res, what);

lost:
	PQclear(last);
	return pqpool__conn_lost(c, what, NULL);
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

int pqpool__result_status(struct pqpool_conn *c, PGresult *last, int64_t cancelled_t0,
                          PGresult **res, const char *what)
{
	int status = PQPOOL_OK;
	if (!last) {
		if (PQstatus(c->pg) == CONNECTION_BAD)
			return pqpool__conn_lost(c, what, NULL);
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
		if (PQstatus(c->pg) == CONNECTION_BAD) {
			status = pqpool__conn_lost(c, what, state);
			break;
		}
		if (cancelled_t0 && state && strcmp(state, "57014") == 0) {
			status = pqpool__fail_code(
			        PQPOOL_ETIMEDOUT, state,
			        "%s: cancelled after %lld ms (DB_QUERY_TIMEOUT)", what,
			        (long long)((pqpool__now_ns() - cancelled_t0) / 1000000));
			break;
		}
		pqpool__trim_msg(PQresultErrorMessage(last), msg, sizeof msg);
		status = pqpool__fail_code(PQPOOL_EQUERY, state, "%s: %s", what, msg);
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

static void note_failure(struct pqpool_conn *c, int status)
{
	const char *code = pqpool_errcode();
	c->last_status = status;
	snprintf(c->last_sqlstate, sizeof c->last_sqlstate, "%s", code);
	if (status == PQPOOL_ETIMEDOUT) {
		pthread_mutex_lock(&c->pool->stats_mu);
		c->pool->query_timeouts++;
		pthread_mutex_unlock(&c->pool->stats_mu);
	}
	pqpool__count_error(c->pool, code[0] ? code : NULL);
}

void pqpool__note_query(struct pqpool_conn *c, int64_t t0, int status)
{
	int64_t t1 = pqpool__now_ns();
	pqpool__qstats_add(&c->q, t1, t1 - t0, status != PQPOOL_OK);
	if (status != PQPOOL_OK)
		note_failure(c, status);
}

/* ---- statements prepared once per connection ---- */

void pqpool__stmts_free(pqpool__stmts *st)
{
	if (!st)
		return;
	for (int i = 0; i < PQPOOL__STMT_SLOTS; i++)
		free(st->e[i].sql);
	free(st);
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

/* The entry for sql, or the free entry where it would go (sql == NULL). */
static pqpool__stmt *stmt_find(pqpool__stmts *st, const char *sql, uint64_t h)
{
	for (unsigned i = 0; i < PQPOOL__STMT_SLOTS; i++) {
		pqpool__stmt *e = &st->e[(h + i) & (PQPOOL__STMT_SLOTS - 1)];
		if (!e->sql || (e->hash == h && strcmp(e->sql, sql) == 0))
			return e;
	}
	return NULL; /* cannot happen: at most STMT_MAX of STMT_SLOTS are used */
}

/* Removes an entry, re-inserting the probe chain after it. */
static void stmt_remove(pqpool__stmts *st, pqpool__stmt *gone)
{
	unsigned i = (unsigned)(gone - st->e);
	free(gone->sql);
	gone->sql = NULL;
	st->n--;
	for (unsigned k = 1; k < PQPOOL__STMT_SLOTS; k++) {
		pqpool__stmt *e = &st->e[(i + k) & (PQPOOL__STMT_SLOTS - 1)], moved;
		if (!e->sql)
			break;
		moved = *e;
		e->sql = NULL;
		*stmt_find(st, moved.sql, moved.hash) = moved;
	}
}

static int send_failed(struct pqpool_conn *c, const char *what)
{
	char msg[PQPOOL__ERRLEN];
	if (PQstatus(c->pg) == CONNECTION_BAD)
		return pqpool__conn_lost(c, what, NULL);
	pqpool__trim_msg(PQerrorMessage(c->pg), msg, sizeof msg);
	return pqpool__fail(PQPOOL_EINVAL, "%s: %s", what, msg);
}

/* A cached statement the server no longer honours: the plan's result type
 * changed under it (a table was altered), or it is gone (DISCARD ALL,
 * DEALLOCATE). Outside a transaction nothing ran, so preparing it again is
 * safe. */
static bool stale_statement(struct pqpool_conn *c)
{
	const char *code = pqpool_errcode();
	if (PQtransactionStatus(c->pg) != PQTRANS_IDLE)
		return false;
	return strcmp(code, "26000") == 0 ||
	       (strcmp(code, "0A000") == 0 &&
	        strstr(pqpool_errmsg(), "cached plan must not change result type") !=
	                NULL);
}

static int exec_prepared(struct pqpool_conn *c, const char *sql, int nparams,
                         const char *const *params, PGresult **r, int64_t deadline_ns,
                         int grace_ms, bool retried)
{
	uint64_t h = fnv1a(sql);
	pqpool__stmt *e;
	char name[32];
	int st;

	if (!c->stmts && !(c->stmts = calloc(1, sizeof *c->stmts)))
		return pqpool__fail(PQPOOL_ENOMEM, "query: out of memory");
	e = stmt_find(c->stmts, sql, h);
	if (!e->sql) {
		char *copy;
		if (c->stmts->n >= PQPOOL__STMT_MAX) /* full: this one goes unnamed */
			return PQsendQueryParams(c->pg, sql, nparams, NULL, params, NULL,
			                         NULL, 0)
			               ? pqpool__wait_result(c, deadline_ns, grace_ms, r,
			                                     "query")
			               : send_failed(c, "query");
		if (!(copy = strdup(sql)))
			return pqpool__fail(PQPOOL_ENOMEM, "query: out of memory");
		snprintf(name, sizeof name, "pqpool_%u", ++c->stmts->next_id);
		if (!PQsendPrepare(c->pg, name, sql, nparams, NULL)) {
			free(copy);
			return send_failed(c, "prepare");
		}
		st = pqpool__wait_result(c, deadline_ns, grace_ms, NULL, "query");
		if (st != PQPOOL_OK) {
			free(copy);
			return st;
		}
		e->hash = h;
		e->sql = copy;
		e->id = c->stmts->next_id;
		c->stmts->n++;
	}
	snprintf(name, sizeof name, "pqpool_%u", e->id);
	if (!PQsendQueryPrepared(c->pg, name, nparams, params, NULL, NULL, 0))
		return send_failed(c, "query");
	st = pqpool__wait_result(c, deadline_ns, grace_ms, r, "query");
	if (st == PQPOOL_EQUERY && !retried && stale_statement(c)) {
		bool exists = strcmp(pqpool_errcode(), "26000") != 0;
		stmt_remove(c->stmts, e);
		if (exists) { /* free it on the server; a failure here is harmless */
			char sqlbuf[64];
			snprintf(sqlbuf, sizeof sqlbuf, "DEALLOCATE %s", name);
			if (PQsendQuery(c->pg, sqlbuf))
				pqpool__wait_result(c, deadline_ns, grace_ms, NULL,
				                    "deallocate");
		}
		pqpool__log(c->pool, PQPOOL_LOG_INFO,
		            "prepared statement %s was stale; preparing it again", name);
		return exec_prepared(c, sql, nparams, params, r, deadline_ns, grace_ms,
		                     true);
	}
	return st;
}

int pqpool__send_query(struct pqpool_conn *c, const pqpool__qreq *q, bool *preparing)
{
	const char *sql = q->sql;
	pqpool__stmt *e = NULL;
	char name[32];
	int ok;
	*preparing = false;
	if (c->pool->cfg.prepare) {
		if (!c->stmts && !(c->stmts = calloc(1, sizeof *c->stmts)))
			return pqpool__fail(PQPOOL_ENOMEM, "query: out of memory");
		e = stmt_find(c->stmts, sql, fnv1a(sql));
		if (!e->sql && c->stmts->n < PQPOOL__STMT_MAX) {
			/* prepare first, under the name stmt_prepared() will give it */
			snprintf(name, sizeof name, "pqpool_%u", c->stmts->next_id + 1);
			*preparing = true;
			return PQsendPrepare(c->pg, name, sql, q->nparams, NULL)
			               ? PQPOOL_OK
			               : send_failed(c, "prepare");
		}
		if (!e->sql)
			e = NULL;
	}
	if (e) {
		snprintf(name, sizeof name, "pqpool_%u", e->id);
		ok = PQsendQueryPrepared(c->pg, name, q->nparams, q->params, NULL, NULL,
		                         0);
	} else {
		ok = PQsendQueryParams(c->pg, sql, q->nparams, NULL, q->params, NULL,
		                       NULL, 0);
	}
	return ok ? PQPOOL_OK : send_failed(c, "query");
}

int pqpool__send_params(struct pqpool_conn *c, const pqpool__qreq *q)
{
	int ok;
	if (c->pool->cfg.prepare) {
		pqpool__stmt *e =
		        c->stmts ? stmt_find(c->stmts, q->sql, fnv1a(q->sql)) : NULL;
		char name[32];
		if (!e || !e->sql)
			return PQPOOL_EAGAIN; /* first use here: the waiter prepares it */
		snprintf(name, sizeof name, "pqpool_%u", e->id);
		ok = PQsendQueryPrepared(c->pg, name, q->nparams, q->params, NULL, NULL,
		                         0);
	} else {
		ok = PQsendQueryParams(c->pg, q->sql, q->nparams, NULL, q->params, NULL,
		                       NULL, 0);
	}
	return ok ? PQPOOL_OK : send_failed(c, "query");
}

/* The end of a query that started at t0: counted, and its result (owned)
 * handed to *res or freed. */
static int counted(struct pqpool_conn *c, int64_t t0, int status, PGresult *r,
                   PGresult **res)
{
	pqpool__note_query(c, t0, status);
	if (status != PQPOOL_OK)
		return status;
	if (res)
		*res = r;
	else
		PQclear(r);
	pqpool__ok();
	return PQPOOL_OK;
}

int pqpool__finish_sent(struct pqpool_conn *c, int64_t t0, PGresult **res)
{
	int qt = c->pool->cfg.query_timeout_ms;
	int64_t deadline = qt > 0 ? t0 + (int64_t)qt * 1000000 : INT64_MAX;
	PGresult *r = NULL;
	int status;
	if (res)
		*res = NULL;
	if (c->deadline_cap_ns && c->deadline_cap_ns < deadline)
		deadline = c->deadline_cap_ns;
	/* we were woken because the answer arrived: read it before polling
	 * (a failure here shows in the wait below) */
	(void)PQconsumeInput(c->pg);
	status = pqpool__wait_result(c, deadline, CANCEL_GRACE_MS, &r, "query");
	return counted(c, t0, status, r, res);
}

int pqpool__stmt_prepared(struct pqpool_conn *c, const char *sql)
{
	uint64_t h = fnv1a(sql);
	pqpool__stmt *e = stmt_find(c->stmts, sql, h);
	char *copy = strdup(sql);
	if (!copy)
		return pqpool__fail(PQPOOL_ENOMEM, "query: out of memory");
	e->hash = h;
	e->sql = copy;
	e->id = ++c->stmts->next_id;
	c->stmts->n++;
	return PQPOOL_OK;
}

int pqpool__exec(struct pqpool_conn *c, const char *sql, int nparams,
                 const char *const *params, PGresult **res, int64_t deadline_ns,
                 int grace_ms)
{
	int64_t t0 = pqpool__now_ns();
	int status;
	PGresult *r = NULL;

	if (res)
		*res = NULL;
	if (!c || !sql || nparams < 0 || (nparams > 0 && !params))
		return pqpool__fail(PQPOOL_EINVAL, "exec: NULL lease, SQL or parameters");
	if (deadline_ns == 0) {
		int qt = c->pool->cfg.query_timeout_ms;
		deadline_ns = qt > 0 ? t0 + (int64_t)qt * 1000000 : INT64_MAX;
	}
	if (c->deadline_cap_ns && c->deadline_cap_ns < deadline_ns)
		deadline_ns = c->deadline_cap_ns;
	/* text parameters, text results */
	if (c->pool->cfg.prepare)
		status = exec_prepared(c, sql, nparams, params, &r, deadline_ns, grace_ms,
		                       false);
	else if (!PQsendQueryParams(c->pg, sql, nparams, NULL, params, NULL, NULL, 0))
		status = send_failed(
		        c, "query"); /* the unnamed statement, as PQexecParams */
	else
		status = pqpool__wait_result(c, deadline_ns, grace_ms, &r, "query");
	return counted(c, t0, status, r, res);
}

int pqpool_exec(pqpool_conn *conn, const char *sql, int nparams,
                const char *const *params, PGresult **res)
{
	return pqpool__exec(conn, sql, nparams, params, res, 0, CANCEL_GRACE_MS);
}

int pqpool_conn_fail(pqpool_conn *c, const PGresult *res)
{
	char msg[PQPOOL__ERRLEN];
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	int status;
	if (!c)
		return pqpool__fail(PQPOOL_EINVAL, "pqpool_conn_fail: NULL lease");
	if (PQstatus(c->pg) == CONNECTION_BAD) {
		status = pqpool__conn_lost(c, "query", state);
	} else {
		pqpool__trim_msg(res ? PQresultErrorMessage(res) : PQerrorMessage(c->pg),
		                 msg, sizeof msg);
		status = pqpool__fail_code(PQPOOL_EQUERY, state, "query: %s",
		                           msg[0] ? msg : "failed");
	}
	note_failure(c, status);
	return status;
}
