/* cancel.c — cancel requests through libpq's non-blocking cancel API (libpq
 * 17 and newer: PQcancelCreate, PQcancelStart, PQcancelPoll), with our own
 * deadline. The build uses cancel_compat.c instead with an older libpq.
 *
 * The PGcancelConn is made once per connection, when it opens, on the thread
 * that opened it; from then on it holds its own copy of what a request needs
 * (the server's address and the backend's key), so it is used without the
 * PGconn, from whichever thread cancels, and reset after each request. */
#include "cancel.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>

#include "error.h"

struct pqpool__canceller {
	PGcancelConn *cc;
};

pqpool__canceller *pqpool__canceller_new(PGconn *pg)
{
	pqpool__canceller *c = malloc(sizeof *c);
	if (!c)
		return NULL;
	c->cc = PQcancelCreate(pg);
	if (!c->cc || PQcancelStatus(c->cc) == CONNECTION_BAD) {
		PQcancelFinish(c->cc);
		free(c);
		return NULL;
	}
	return c;
}

int pqpool__cancel_begin(pqpool__canceller *c, int *fd, short *events, char *err,
                         size_t errlen)
{
	if (!c) {
		snprintf(err, errlen, "cancel requests are unavailable with this libpq");
		return -1;
	}
	if (!PQcancelStart(c->cc)) {
		char msg[256];
		pqpool__trim_msg(PQcancelErrorMessage(c->cc), msg, sizeof msg);
		snprintf(err, errlen, "cancel: %s", msg);
		PQcancelReset(c->cc);
		return -1;
	}
	/* as after PQconnectStart: wait until writable, then poll */
	*fd = PQcancelSocket(c->cc);
	*events = POLLOUT;
	return 0;
}

int pqpool__cancel_step(pqpool__canceller *c, int *fd, short *events, char *err,
                        size_t errlen)
{
	PostgresPollingStatusType st = PQcancelPoll(c->cc);
	if (st == PGRES_POLLING_OK)
		return 1;
	if (st == PGRES_POLLING_FAILED) {
		char msg[256];
		pqpool__trim_msg(PQcancelErrorMessage(c->cc), msg, sizeof msg);
		snprintf(err, errlen, "cancel: %s", msg);
		return -1;
	}
	*fd = PQcancelSocket(c->cc); /* it may have changed */
	*events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
	return 0;
}

void pqpool__cancel_end(pqpool__canceller *c)
{
	if (c)
		PQcancelReset(c->cc); /* ready for the next request */
}

void pqpool__canceller_free(pqpool__canceller *c)
{
	if (!c)
		return;
	PQcancelFinish(c->cc);
	free(c);
}

const char *pqpool__cancel_method(void)
{
	return "libpq";
}
