/*
 * pqpool/libevent.h — pqpool_loop on a libevent event_base. Header only;
 * link libevent (libevent_core is enough).
 *
 *   pqpool_event a;
 *   pqpool_event_attach(&a, base, pool);
 *   pqpool_submit(a.loop, sql, n, params, 0, done, arg);
 *   event_base_dispatch(base);
 *   pqpool_event_detach(&a);
 *
 * Each connection's socket is one persistent event (the descriptor is the
 * loop's own), the deadlines one timer event. Everything runs on the
 * event_base's thread.
 */
#ifndef PQPOOL_LIBEVENT_H
#define PQPOOL_LIBEVENT_H

#include <event2/event.h>
#include <stdlib.h>

#include <pqpool.h>

typedef struct pqpool_event {
	pqpool_loop *loop;
	struct event_base *base;
	struct event *timer;
} pqpool_event;

typedef struct pqpool_event__watch {
	struct event *ev;
	pqpool_event *a;
	void *token;
} pqpool_event__watch;

static inline void pqpool_event__on_fd(evutil_socket_t fd, short what, void *arg)
{
	pqpool_event__watch *w = (pqpool_event__watch *)arg;
	unsigned ready = 0;
	(void)fd;
	if (what & EV_READ)
		ready |= PQPOOL_EV_READ;
	if (what & EV_WRITE)
		ready |= PQPOOL_EV_WRITE;
	pqpool_loop_ready(w->a->loop, w->token, ready);
}

static inline int pqpool_event__watch_fn(void *host, int fd, unsigned events, void *token,
                                         void **handle)
{
	pqpool_event *a = (pqpool_event *)host;
	pqpool_event__watch *w = (pqpool_event__watch *)*handle;
	short what = (short)(EV_PERSIST | ((events & PQPOOL_EV_READ) ? EV_READ : 0) |
	                     ((events & PQPOOL_EV_WRITE) ? EV_WRITE : 0));

	if (events == 0) {
		if (w) {
			event_free(w->ev); /* deleted: no callback of it after this */
			free(w);
			*handle = NULL;
		}
		return 0;
	}
	if (!w) {
		if (!(w = (pqpool_event__watch *)malloc(sizeof *w)))
			return -1;
		w->a = a;
		w->token = token;
		if (!(w->ev = event_new(a->base, fd, what, pqpool_event__on_fd, w))) {
			free(w);
			return -1;
		}
		*handle = w;
	} else {
		event_del(w->ev);
		if (event_assign(w->ev, a->base, fd, what, pqpool_event__on_fd, w) != 0)
			return -1;
	}
	return event_add(w->ev, NULL) == 0 ? 0 : -1;
}

static inline void pqpool_event__on_timer(evutil_socket_t fd, short what, void *arg)
{
	pqpool_event *a = (pqpool_event *)arg;
	(void)fd;
	(void)what;
	pqpool_loop_timeout(a->loop);
}

static inline void pqpool_event__timer_fn(void *host, int ms)
{
	pqpool_event *a = (pqpool_event *)host;
	if (ms < 0) {
		evtimer_del(a->timer);
	} else {
		struct timeval tv;
		tv.tv_sec = ms / 1000;
		tv.tv_usec = (ms % 1000) * 1000;
		evtimer_add(a->timer, &tv);
	}
}

/* A loop on pool driven by base. PQPOOL_OK, or as pqpool_loop_new. */
static inline int pqpool_event_attach(pqpool_event *a, struct event_base *base,
                                      pqpool *pool)
{
	pqpool_adapter ad;
	int rc;
	a->loop = NULL;
	a->base = base;
	if (!(a->timer = evtimer_new(base, pqpool_event__on_timer, a)))
		return PQPOOL_ENOMEM;
	ad.host = a;
	ad.watch = pqpool_event__watch_fn;
	ad.timer = pqpool_event__timer_fn;
	if ((rc = pqpool_loop_new(pool, &ad, &a->loop)) != PQPOOL_OK) {
		event_free(a->timer);
		a->timer = NULL;
	}
	return rc;
}

/* Frees the loop (see pqpool_loop_free) and the adapter's events. */
static inline void pqpool_event_detach(pqpool_event *a)
{
	pqpool_loop_free(a->loop);
	a->loop = NULL;
	if (a->timer)
		event_free(a->timer);
	a->timer = NULL;
}

#endif
