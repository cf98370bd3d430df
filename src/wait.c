/* wait.c — how a caller waits for a connection. A plain waiter sleeps on its
 * own futex word, so a release wakes exactly the waiter it hands a
 * connection to. A waiter with a continuation sleeps in its thread's epoll
 * set instead: its granter starts the waiter's work on the connection and
 * arms the connection's socket there, so the waiter wakes once, when the
 * answer has arrived. */
#include "wait.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "fdwait.h"

struct pqpool__waitset {
	int epfd, evfd;
};

static pthread_key_t waitset_key;
static pthread_once_t waitset_once = PTHREAD_ONCE_INIT;
static bool waitset_ok;
static __thread pqpool__waitset *tl_ws;

static void waitset_free(void *arg)
{
	pqpool__waitset *c = arg;
	close(c->epfd);
	close(c->evfd);
	free(c);
}

static void waitset_init(void)
{
	waitset_ok = pthread_key_create(&waitset_key, waitset_free) == 0;
}

/* This thread's wait set, made on first need (two descriptors, freed when
 * the thread exits); NULL when it cannot be made: the thread then waits
 * like any other. */
static pqpool__waitset *waitset_get(void)
{
	pqpool__waitset *c;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	if (tl_ws)
		return tl_ws;
	pthread_once(&waitset_once, waitset_init);
	if (!waitset_ok || !(c = malloc(sizeof *c)))
		return NULL;
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	c->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->epfd < 0 || c->evfd < 0 ||
	    epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->evfd, &ev) != 0 ||
	    pthread_setspecific(waitset_key, c) != 0) {
		if (c->epfd >= 0)
			close(c->epfd);
		if (c->evfd >= 0)
			close(c->evfd);
		free(c);
		return NULL;
	}
	tl_ws = c;
	return c;
}

/* Wakes a waiter whose grant is complete. A waiter with a wait set sees
 * `signaled`, then waits for `done`, which its granter stores last: its
 * descriptors (and its thread) stay alive while we use them. Touch nothing
 * of w after. */
void pqpool__waiter_wake(pqpool__waiter *w)
{
	if (w->ws) {
		uint64_t one = 1;
		atomic_store_explicit(&w->signaled, 1, memory_order_release);
		if (write(w->ws->evfd, &one, sizeof one) < 0) {
			/* counter overflow only: it is readable anyway */
		}
		atomic_store_explicit(&w->done, 1, memory_order_release);
	} else {
		pqc_event_set(&w->ev);
	}
}

void pqpool__waiter_init(pqpool__waiter *w, pqpool__grant_fn then, void *arg)
{
	w->next = NULL;
	atomic_init(&w->kind, PQPOOL__GRANT_NONE);
	w->slot = NULL;
	pqc_event_init(&w->ev);
	w->ws = then ? waitset_get() : NULL;
	w->then = w->ws ? then : NULL;
	w->then_arg = arg;
	atomic_init(&w->signaled, 0);
	atomic_init(&w->done, 0);
}

void pqpool__waiter_arm(pqpool__waiter *w, int fd)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.ptr = w->slot};
	int epfd = w->ws->epfd;
	atomic_store_explicit(&w->kind, PQPOOL__GRANT_TAKEN, memory_order_relaxed);
	/* signaled before the event can fire, so the woken waiter sees it; it
	 * then waits for `done`, so its wait set outlives our use of it */
	atomic_store_explicit(&w->signaled, 1, memory_order_release);
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) != 0 &&
	    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		/* cannot arm it: wake the waiter now; it polls the socket */
		uint64_t one = 1;
		if (write(w->ws->evfd, &one, sizeof one) < 0) {
			/* overflow only */
		}
	}
	atomic_store_explicit(&w->done, 1, memory_order_release);
}

/* Waits until the waiter is signaled or the monotonic deadline passes.
 * Returns 1 when signaled. */
int pqpool__waiter_sleep(pqpool__waiter *w, int64_t deadline)
{
	if (!w->ws)
		return pqc_event_wait(&w->ev, deadline);
	while (!atomic_load_explicit(&w->signaled, memory_order_acquire)) {
		struct epoll_event evs[4];
		int n, ms = pqc_ms_until(deadline);
		if (ms == 0)
			return 0;
		n = epoll_wait(w->ws->epfd, evs, 4, ms);
		for (int i = 0; i < n; i++) {
			uint64_t v;
			if (evs[i].data.ptr == NULL &&
			    read(w->ws->evfd, &v, sizeof v) < 0) {
				/* drained already */
			}
			/* a socket that fired is either ours (signaled is set)
			 * or left armed by an earlier wait: its one shot is spent */
		}
	}
	/* the granter may still be in a system call on our wait set */
	while (!atomic_load_explicit(&w->done, memory_order_acquire))
		sched_yield();
	return 1;
}
