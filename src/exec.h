/* exec.h — a statement on a slot's connection: sent, waited for with a
 * deadline, cancelled past it, its outcome recorded. */
#ifndef PQPOOL_EXEC_H
#define PQPOOL_EXEC_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "slot.h"

/* How long a cancelled query gets to answer before its connection is given
 * up as unusable. */
#define PQPOOL__CANCEL_GRACE_MS 2000

/* pqpool_exec with an explicit monotonic deadline (0: query_timeout_ms from
 * now) and grace (0: none, for callers whose deadline is hard). */
int pqpool__exec(pqpool__slot *s, const char *sql, int nparams, const char *const *params,
                 PGresult **res, int64_t deadline_ns, int grace_ms);

/* Waits for the results of a sent command until deadline_ns; cancels past
 * it, then gives grace_ms more. what names the call in messages. */
int pqpool__wait_result(pqpool__slot *s, int64_t deadline_ns, int grace_ms,
                        PGresult **res, const char *what);

/* Asks the server to cancel the slot's running query, spending at most until
 * deadline_ns on reaching it; a failure is logged. */
void pqpool__cancel_query(pqpool__slot *s, int64_t deadline_ns);

/* Marks the connection broken and fails with ECONNLOST and libpq's reason. */
int pqpool__conn_lost(pqpool__slot *s, const char *what, const char *sqlstate);

/* Keeps r or *last as PQexec would: the last result, an error first. */
void pqpool__keep_result(PGresult **last, PGresult *r);

/* The status of a finished command from its kept result (consumed; on
 * success handed to *res when res is not NULL). cancelled_t0: when we
 * cancelled it, the time it started, else 0. */
int pqpool__result_status(pqpool__slot *s, PGresult *last, int64_t cancelled_t0,
                          PGresult **res, const char *what);

/* Counts a query that started at t0 and ended with status (the failure, if
 * any, recorded on the lease for pqpool_run). */
void pqpool__note_query(pqpool__slot *s, int64_t t0, int status);

/* Sends q without waiting: the cached prepared statement when there is one;
 * with prepared statements on and none cached, a Prepare instead (*preparing
 * set; once its result is in, pqpool__prepared() tells what next); else
 * the unnamed statement. */
int pqpool__send_query(pqpool__slot *s, const pqpool__qreq *q, bool *preparing);

/* The Prepare that pqpool__send_query() sent for q finished with the kept
 * result *last: on success *last is freed (NULL) and the statement sent for
 * execution (the status of that send; the answer comes next); otherwise the
 * statement is forgotten, *last kept (it says why) and PQPOOL_EQUERY
 * returned. */
int pqpool__prepared(pqpool__slot *s, const pqpool__qreq *q, PGresult **last,
                     bool *preparing);

/* Sends q as pqpool_exec would run it, without waiting and without
 * preparing: the cached prepared statement, or the unnamed one when prepared
 * statements are off. PQPOOL_EAGAIN when it would first have to be prepared.
 * The caller's error is not touched on EAGAIN. */
int pqpool__send_ready(pqpool__slot *s, const pqpool__qreq *q);

/* Waits for the answer of a statement sent at t0 and counts it: the second
 * half of pqpool_exec. */
int pqpool__finish_sent(pqpool__slot *s, int64_t t0, PGresult **res);

#endif
