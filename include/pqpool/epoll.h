/*
 * pqpool/epoll.h — a loop of its own for pqpool_loop, on epoll(7), for a
 * program whose work is its queries (a worker, a benchmark, a batch job).
 * Header only; Linux.
 *
 *   pqpool_epoll ep;
 *   if (pqpool_epoll_open(&ep, pool) != PQPOOL_OK) ...
 *   pqpool_submit(ep.loop, "SELECT $1::int", 1, params, 0, done, arg);
 *   pqpool_epoll_run(&ep, -1);   // until every callback has run
 *   pqpool_epoll_close(&ep);
 *
 * A thread that runs the loop for others (a service handing it work) can be
 * woken from any thread with pqpool_epoll_wake(): pqpool_epoll_run_once()
 * then returns, to look at what was handed over.
 */
#ifndef PQPOOL_EPOLL_H
#define PQPOOL_EPOLL_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <pqpool.h>

typedef struct pqpool_epoll__watch {
	struct pqpool_epoll__watch *next; /* on the list to free after a batch */
	int fd;
	void *token; /* NULL once no longer watched */
} pqpool_epoll__watch;

typedef struct pqpool_epoll {
	pqpool_loop *loop;
	int epfd;
	int wakefd;       /* an eventfd, in the set with a NULL data pointer */
	int64_t timer_ns; /* monotonic; -1: not armed */
	pqpool_epoll__watch *dead;
} pqpool_epoll;

static inline int64_t pqpool_epoll__now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static inline int pqpool_epoll__watch_fn(void *host, int fd, unsigned events, void *token,
                                         void **handle)
{
	pqpool_epoll *ep = (pqpool_epoll *)host;
	pqpool_epoll__watch *w = (pqpool_epoll__watch *)*handle;
	struct epoll_event ev;

	if (events == 0) {
		if (w) {
			epoll_ctl(ep->epfd, EPOLL_CTL_DEL, w->fd, NULL);
			w->token = NULL; /* an event of this batch may still name it */
			w->next = ep->dead;
			ep->dead = w;
			*handle = NULL;
		}
		return 0;
	}
	ev.events = ((events & PQPOOL_EV_READ) ? EPOLLIN : 0u) |
	            ((events & PQPOOL_EV_WRITE) ? EPOLLOUT : 0u);
	if (!w) {
		if (!(w = (pqpool_epoll__watch *)malloc(sizeof *w)))
			return -1;
		w->fd = fd;
		w->token = token;
		w->next = NULL;
		ev.data.ptr = w;
		if (epoll_ctl(ep->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
			free(w);
			return -1;
		}
		*handle = w;
		return 0;
	}
	ev.data.ptr = w;
	return epoll_ctl(ep->epfd, EPOLL_CTL_MOD, fd, &ev) == 0 ? 0 : -1;
}

static inline void pqpool_epoll__timer_fn(void *host, int ms)
{
	pqpool_epoll *ep = (pqpool_epoll *)host;
	ep->timer_ns = ms < 0 ? -1 : pqpool_epoll__now_ns() + (int64_t)ms * 1000000;
}

/* A loop on pool with its own epoll set. PQPOOL_OK, or as pqpool_loop_new
 * (PQPOOL_ENOMEM when the epoll set cannot be made). */
static inline int pqpool_epoll_open(pqpool_epoll *ep, pqpool *pool)
{
	pqpool_adapter ad;
	int rc;
	struct epoll_event wev;
	ep->loop = NULL;
	ep->timer_ns = -1;
	ep->dead = NULL;
	ep->wakefd = -1;
	if ((ep->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return PQPOOL_ENOMEM;
	wev.events = EPOLLIN;
	wev.data.ptr = NULL;
	if ((ep->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
	    epoll_ctl(ep->epfd, EPOLL_CTL_ADD, ep->wakefd, &wev) != 0) {
		if (ep->wakefd >= 0)
			close(ep->wakefd);
		close(ep->epfd);
		ep->epfd = ep->wakefd = -1;
		return PQPOOL_ENOMEM;
	}
	ad.host = ep;
	ad.watch = pqpool_epoll__watch_fn;
	ad.timer = pqpool_epoll__timer_fn;
	if ((rc = pqpool_loop_new(pool, &ad, &ep->loop)) != PQPOOL_OK) {
		close(ep->wakefd);
		close(ep->epfd);
		ep->epfd = ep->wakefd = -1;
	}
	return rc;
}

/* Waits once (at most max_wait_ms; -1: until something happens) and hands
 * what is ready to the loop. Returns the callbacks still to run. */
static inline int pqpool_epoll_run_once(pqpool_epoll *ep, int max_wait_ms)
{
	struct epoll_event evs[64];
	int wait = max_wait_ms, n;

	if (ep->timer_ns >= 0) {
		int64_t left = ep->timer_ns - pqpool_epoll__now_ns();
		int t = left <= 0 ? 0 : (int)((left + 999999) / 1000000);
		if (wait < 0 || t < wait)
			wait = t;
	}
	n = epoll_wait(ep->epfd, evs, 64, wait);
	for (int i = 0; i < n; i++) {
		pqpool_epoll__watch *w = (pqpool_epoll__watch *)evs[i].data.ptr;
		unsigned ready = 0;
		if (!w) { /* pqpool_epoll_wake() */
			uint64_t v;
			if (read(ep->wakefd, &v, sizeof v) < 0) {
				/* another turn read it first: fine */
			}
			continue;
		}
		if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
			ready |= PQPOOL_EV_READ;
		if (evs[i].events & EPOLLOUT)
			ready |= PQPOOL_EV_WRITE;
		if (w->token)
			pqpool_loop_ready(ep->loop, w->token, ready);
	}
	while (ep->dead) {
		pqpool_epoll__watch *w = ep->dead;
		ep->dead = w->next;
		free(w);
	}
	if (ep->timer_ns >= 0 && pqpool_epoll__now_ns() >= ep->timer_ns) {
		ep->timer_ns = -1;
		pqpool_loop_timeout(ep->loop);
	}
	return pqpool_loop_pending(ep->loop);
}

/* Runs until every submitted statement's callback has run (or max_ms
 * passed, -1: no bound). Returns the callbacks still to run. */
static inline int pqpool_epoll_run(pqpool_epoll *ep, int max_ms)
{
	int64_t end =
	        max_ms < 0 ? -1 : pqpool_epoll__now_ns() + (int64_t)max_ms * 1000000;
	while (pqpool_loop_pending(ep->loop) > 0) {
		int wait = -1;
		if (end >= 0) {
			int64_t left = end - pqpool_epoll__now_ns();
			if (left <= 0)
				break;
			wait = (int)((left + 999999) / 1000000);
		}
		pqpool_epoll_run_once(ep, wait);
	}
	return pqpool_loop_pending(ep->loop);
}

/* From any thread: the loop's thread returns from pqpool_epoll_run_once()
 * (now, or at once the next time it waits). */
static inline void pqpool_epoll_wake(pqpool_epoll *ep)
{
	uint64_t one = 1;
	if (write(ep->wakefd, &one, sizeof one) < 0) {
		/* fails only when the counter would overflow: readable anyway */
	}
}

/* Frees the loop (see pqpool_loop_free) and the epoll set. */
static inline void pqpool_epoll_close(pqpool_epoll *ep)
{
	pqpool_loop_free(ep->loop);
	ep->loop = NULL;
	while (ep->dead) {
		pqpool_epoll__watch *w = ep->dead;
		ep->dead = w->next;
		free(w);
	}
	if (ep->wakefd >= 0)
		close(ep->wakefd);
	if (ep->epfd >= 0)
		close(ep->epfd);
	ep->epfd = ep->wakefd = -1;
}

#endif
