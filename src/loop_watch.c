/* loop_watch.c — what an event loop asks of its host's adapter: descriptors
 * watched, its one timer armed; and the cancel requests it sends for a
 * connection's running statement, step by step from that watch (cancel.h),
 * never blocking. */
#include "loop_int.h"

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cancel.h"
#include "clock.h"
#include "log.h"

/* ---- the adapter ---- */

/* Asks the adapter to watch fd with token for events (0: stop); false
 * when it cannot. */
static bool watch_fd(pqpool_loop *l, int fd, unsigned events, void *token,
                     unsigned *watching, void **handle)
{
	if (*watching == events || fd < 0)
		return true;
	if (l->ad.watch(l->ad.host, fd, events, token, handle) != 0) {
		*watching = 0;
		*handle = NULL;
		return events == 0;
	}
	*watching = events;
	return true;
}

void pqpool__loop_watch(lconn *c, unsigned events)
{
	if (!watch_fd(c->loop, c->fd, events, c, &c->watching, &c->handle))
		c->lost = true; /* cannot be watched: given up */
}

/* ---- cancel requests, step by step ---- */

/* c's cancel request waits on the socket the canceller has now, for
 * events (POLLIN/POLLOUT): a descriptor of our own each step, as libpq
 * may change the socket. False when it cannot be watched. */
static bool cancel_watch(lconn *c, int fd, short events)
{
	lcancel *x = &c->cx;
	watch_fd(c->loop, x->fd, 0, x, &x->watching, &x->handle);
	if (x->fd >= 0)
		close(x->fd);
	x->fd = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
	return x->fd >= 0 && watch_fd(c->loop, x->fd,
	                              events == POLLIN ? PQPOOL_EV_READ : PQPOOL_EV_WRITE,
	                              x, &x->watching, &x->handle);
}

void pqpool__loop_cancel_end(lconn *c, const char *why)
{
	lcancel *x = &c->cx;
	if (!x->cc)
		return;
	watch_fd(c->loop, x->fd, 0, x, &x->watching, &x->handle);
	if (x->fd >= 0)
		close(x->fd);
	x->fd = -1;
	pqpool__cancel_end(x->cc);
	pqpool__give_canceller(c->s, x->cc);
	x->cc = NULL;
	if (why)
		pqpool__log(&c->s->ctx->log, PQPOOL_LOG_WARN, "%s", why);
	if (!c->s->pipe.flight && c->s->pipe.cancel_sent) {
		/* what it was for was read already: what waits may go now */
		c->s->pipe.cancel_sent = false;
		c->cancel_ns = 0;
		c->dirty = c->pend != NULL;
	}
}

void pqpool__loop_cancel(pqpool_loop *l, lconn *c, int64_t until_ns)
{
	lcancel *x = &c->cx;
	char err[256];
	short events;
	int fd;

	if (x->cc)
		return; /* one is out already */
	x->tag = PQPOOL__LTAG_CANCEL;
	x->fd = -1;
	if (!(x->cc = pqpool__take_canceller(c->s))) {
		pqpool__log(&c->s->ctx->log, PQPOOL_LOG_WARN,
		            "cancel requests are unavailable with this libpq");
		return;
	}
	if (pqpool__cancel_begin(x->cc, &fd, &events, err, sizeof err) != 0) {
		pqpool__give_canceller(c->s, x->cc);
		x->cc = NULL;
		pqpool__log(&c->s->ctx->log, PQPOOL_LOG_WARN, "%s", err);
		return;
	}
	x->until_ns = until_ns;
	due_at(l, until_ns);
	if (!cancel_watch(c, fd, events))
		pqpool__loop_cancel_end(c, "cancel: its socket could not be watched");
}

void pqpool__loop_cancel_step(lconn *c)
{
	lcancel *x = &c->cx;
	char err[256];
	short events;
	int fd, r = pqpool__cancel_step(x->cc, &fd, &events, err, sizeof err);
	if (r > 0)
		pqpool__loop_cancel_end(c, NULL);
	else if (r < 0)
		pqpool__loop_cancel_end(c, err);
	else if (!cancel_watch(c, fd, events))
		pqpool__loop_cancel_end(c, "cancel: its socket could not be watched");
}

void pqpool__loop_arm(pqpool_loop *l, int64_t at_ns)
{
	int64_t now = pqc_now_ns(), ms;
	if (l->timer_ns && l->timer_ns <= at_ns && l->timer_ns > now)
		return; /* fires sooner anyway: we look again then */
	ms = at_ns <= now ? 0 : (at_ns - now + 999999) / 1000000;
	l->timer_ns = now + ms * 1000000;
	l->ad.timer(l->ad.host, ms > INT32_MAX / 2 ? INT32_MAX / 2 : (int)ms);
}
