/* workq.c — a FIFO of jobs, handed to the most recently idle of a fixed set of threads.
 */
#include "workq.h"
#include "event.h" /* one futex word per sleeper */

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

/* One thread, asleep on its own event while on the idle stack. The pusher
 * sets it after unlocking, and the woken thread takes its job without the
 * queue's lock: under load the lock was the busiest thing in the process
 * (a condition variable makes each woken thread take it again). */
typedef struct worker {
	workq *q;
	pthread_t thread;
	pqc_event ev;
	workq_item *handed; /* a job given directly, or NULL */
	struct worker *next_idle;
} worker;

struct workq {
	pthread_mutex_t mu;
	workq_item *head, *tail; /* jobs no thread was free for */
	/* Idle threads, the most recently idle on top: a job goes to the
	 * thread whose caches (and whose pool connection, which the pool
	 * prefers to give the thread that released it) are warm, and under a
	 * light load a few threads do the work instead of all in turn. */
	worker *idle;
	bool stopping;
	workq_fn fn;
	void *arg;
	int nthreads;
	worker workers[];
};

static void *run(void *p)
{
	worker *w = p;
	workq *q = w->q;

	pthread_mutex_lock(&q->mu);
	for (;;) {
		workq_item *it = q->head;
		bool cancelled = q->stopping; /* a job left when the stop began */

		if (it) {
			q->head = it->next;
			if (!q->head)
				q->tail = NULL;
		} else if (q->stopping) {
			break;
		} else {
			w->next_idle = q->idle;
			q->idle = w;
			w->handed = NULL;
			pqc_event_init(&w->ev);
			pthread_mutex_unlock(&q->mu);
			pqc_event_wait(&w->ev, INT64_MAX);
			it = w->handed; /* written before the event was set */
			if (!it) {      /* stopping: workq_stop() emptied the stack */
				pthread_mutex_lock(&q->mu);
				continue;
			}
			q->fn(q->arg, it, false);
			pthread_mutex_lock(&q->mu);
			continue;
		}
		pthread_mutex_unlock(&q->mu);
		q->fn(q->arg, it, cancelled);
		pthread_mutex_lock(&q->mu);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

int workq_start(int threads, workq_fn fn, void *arg, workq **out)
{
	workq *q;
	sigset_t all, old;
	int rc = 0;

	*out = NULL;
	q = calloc(1, sizeof(*q) + (size_t)threads * sizeof(worker));
	if (!q)
		return -1;
	pthread_mutex_init(&q->mu, NULL);
	q->fn = fn;
	q->arg = arg;
	/* the threads take no signals: the host waits for them in one place */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (; q->nthreads < threads; q->nthreads++) {
		worker *w = &q->workers[q->nthreads];

		w->q = q;
		rc = pthread_create(&w->thread, NULL, run, w);
		if (rc != 0)
			break;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		workq_stop(q);
		errno = rc;
		return -1;
	}
	*out = q;
	return 0;
}

bool workq_push(workq *q, workq_item *item)
{
	worker *w;

	item->next = NULL;
	pthread_mutex_lock(&q->mu);
	if (q->stopping) {
		pthread_mutex_unlock(&q->mu);
		return false;
	}
	w = q->idle;
	if (w) { /* straight to a sleeping thread: no queue, no race for it */
		q->idle = w->next_idle;
		w->handed = item;
	} else {
		if (q->tail)
			q->tail->next = item;
		else
			q->head = item;
		q->tail = item;
	}
	pthread_mutex_unlock(&q->mu);
	if (w)
		pqc_event_set(&w->ev);
	return true;
}

void workq_stop(workq *q)
{
	if (!q)
		return;
	worker *idle;

	pthread_mutex_lock(&q->mu);
	q->stopping = true;
	idle = q->idle;
	q->idle = NULL;
	pthread_mutex_unlock(&q->mu);
	while (idle) {
		worker *next = idle->next_idle; /* read before it can wake */
		pqc_event_set(&idle->ev);
		idle = next;
	}
	for (int i = 0; i < q->nthreads; i++)
		pthread_join(q->workers[i].thread, NULL);
	pthread_mutex_destroy(&q->mu);
	free(q);
}
