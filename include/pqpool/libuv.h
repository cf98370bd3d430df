/*
 * pqpool/libuv.h — pqpool_loop on a libuv loop. Header only; link libuv.
 *
 *   pqpool_uv a;                       // lives until its handles are closed
 *   pqpool_uv_attach(&a, uv_default_loop(), pool);
 *   pqpool_submit(a.loop, sql, n, params, 0, done, arg);
 *   uv_run(uv_default_loop(), UV_RUN_DEFAULT);
 *   ...
 *   pqpool_uv_detach(&a);              // then let uv_run close the handles
 *   uv_run(uv_default_loop(), UV_RUN_DEFAULT);
 *
 * Each connection's socket is watched with a uv_poll_t (the descriptor is
 * the loop's own, so no other handle polls it), the deadlines with one
 * uv_timer_t. Everything runs on the libuv loop's thread.
 */
#ifndef PQPOOL_LIBUV_H
#define PQPOOL_LIBUV_H

#include <stdlib.h>
#include <uv.h>

#include <pqpool.h>

typedef struct pqpool_uv {
	pqpool_loop *loop;
	uv_loop_t *uv;
	uv_timer_t timer;
} pqpool_uv;

typedef struct pqpool_uv__watch {
	uv_poll_t poll;
	pqpool_uv *a;
	void *token;
} pqpool_uv__watch;

static inline void pqpool_uv__on_poll(uv_poll_t *h, int status, int events)
{
	pqpool_uv__watch *w = (pqpool_uv__watch *)h->data;
	unsigned ready = 0;
	if (status < 0 || (events & (UV_READABLE | UV_DISCONNECT)))
		ready |= PQPOOL_EV_READ; /* an error is read as one */
	if (events & UV_WRITABLE)
		ready |= PQPOOL_EV_WRITE;
	pqpool_loop_ready(w->a->loop, w->token, ready);
}

static inline void pqpool_uv__on_close(uv_handle_t *h)
{
	free(h->data);
}

static inline int pqpool_uv__watch_fn(void *host, int fd, unsigned events, void *token,
                                      void **handle)
{
	pqpool_uv *a = (pqpool_uv *)host;
	pqpool_uv__watch *w = (pqpool_uv__watch *)*handle;
	int flags = ((events & PQPOOL_EV_READ) ? UV_READABLE : 0) |
	            ((events & PQPOOL_EV_WRITE) ? UV_WRITABLE : 0);

	if (events == 0) {
		if (w) {
			uv_poll_stop(&w->poll); /* no callback of it after this */
			uv_close((uv_handle_t *)&w->poll, pqpool_uv__on_close);
			*handle = NULL;
		}
		return 0;
	}
	if (!w) {
		if (!(w = (pqpool_uv__watch *)malloc(sizeof *w)))
			return -1;
		if (uv_poll_init(a->uv, &w->poll, fd) != 0) {
			free(w);
			return -1;
		}
		w->poll.data = w;
		w->a = a;
		w->token = token;
		*handle = w;
	}
	return uv_poll_start(&w->poll, flags, pqpool_uv__on_poll) == 0 ? 0 : -1;
}

static inline void pqpool_uv__on_timer(uv_timer_t *t)
{
	pqpool_uv *a = (pqpool_uv *)t->data;
	pqpool_loop_timeout(a->loop);
}

static inline void pqpool_uv__timer_fn(void *host, int ms)
{
	pqpool_uv *a = (pqpool_uv *)host;
	if (ms < 0)
		uv_timer_stop(&a->timer);
	else
		uv_timer_start(&a->timer, pqpool_uv__on_timer, (uint64_t)ms, 0);
}

/* A loop on pool driven by uv. PQPOOL_OK, or as pqpool_loop_new. */
static inline int pqpool_uv_attach(pqpool_uv *a, uv_loop_t *uv, pqpool *pool)
{
	pqpool_adapter ad;
	int rc;
	a->loop = NULL;
	a->uv = uv;
	if (uv_timer_init(uv, &a->timer) != 0)
		return PQPOOL_ENOMEM;
	a->timer.data = a;
	ad.host = a;
	ad.watch = pqpool_uv__watch_fn;
	ad.timer = pqpool_uv__timer_fn;
	if ((rc = pqpool_loop_new(pool, &ad, &a->loop)) != PQPOOL_OK)
		uv_close((uv_handle_t *)&a->timer, NULL);
	return rc;
}

/* Frees the loop (see pqpool_loop_free) and closes the adapter's handles;
 * a must stay alive until uv has run their close callbacks. */
static inline void pqpool_uv_detach(pqpool_uv *a)
{
	pqpool_loop_free(a->loop);
	a->loop = NULL;
	uv_close((uv_handle_t *)&a->timer, NULL);
}

#endif
