/* async_work.h — the work the asynchronous examples share: a pool from the
 * environment, then 10 000 statements kept 100 at a time in flight on a
 * pqpool_loop, each answer checked against its own parameter. */
#ifndef EXAMPLE_ASYNC_WORK_H
#define EXAMPLE_ASYNC_WORK_H

#include <pqpool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define WORK_TOTAL       10000
#define WORK_OUTSTANDING 100

struct work;
struct call {
	struct work *w;
	int n;
};

struct work {
	pqpool_loop *loop;
	int next, done, right, wrong;
	struct timespec t0;
	struct call calls[WORK_TOTAL];
};

static void work_submit(struct work *w);

/* Each answer is checked: twice its own parameter. */
static void work_done(void *arg, int status, const PGresult *res)
{
	struct call *c = (struct call *)arg;
	struct work *w = c->w;
	w->done++;
	if (status == PQPOOL_OK && atoi(PQgetvalue(res, 0, 0)) == 2 * c->n)
		w->right++;
	else if (w->wrong++ == 0)
		fprintf(stderr, "statement %d: %s\n", c->n,
		        status == PQPOOL_OK ? "a wrong answer" : pqpool_errmsg());
	work_submit(w); /* one more in flight, from the callback */
}

static void work_submit(struct work *w)
{
	char v[16];
	const char *params[] = {v};
	struct call *c;
	if (w->next >= WORK_TOTAL)
		return;
	c = &w->calls[w->next];
	c->w = w;
	c->n = ++w->next;
	snprintf(v, sizeof v, "%d", c->n);
	/* the parameters are copied: v may go at once */
	if (pqpool_submit(w->loop, "SELECT $1::int * 2", 1, params, 0, work_done, c) !=
	    PQPOOL_OK) {
		fprintf(stderr, "submit: %s\n", pqpool_errmsg());
		w->wrong++;
		w->done++;
	}
}

/* The first WORK_OUTSTANDING; the callbacks submit the rest. */
static void work_start(struct work *w, pqpool_loop *loop)
{
	w->loop = loop;
	w->next = w->done = w->right = w->wrong = 0;
	clock_gettime(CLOCK_MONOTONIC, &w->t0);
	for (int i = 0; i < WORK_OUTSTANDING; i++)
		work_submit(w);
}

/* Prints the outcome; 0 when every answer was right. */
static int work_report(const struct work *w, const char *name)
{
	struct timespec t1;
	double ms;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (double)(t1.tv_sec - w->t0.tv_sec) * 1e3 +
	     (double)(t1.tv_nsec - w->t0.tv_nsec) / 1e6;
	printf("%s: %d statements, %d right, %d wrong, %.0f ms (%.0f/s)\n", name,
	       WORK_TOTAL, w->right, w->wrong, ms, ms > 0 ? w->right / ms * 1e3 : 0.0);
	return w->right == WORK_TOTAL && w->wrong == 0 ? 0 : 1;
}

/* DATABASE_URL, DB_POOL_MAX, ... validated; NULL (and a message) when the
 * pool cannot be opened. */
static pqpool *work_pool(void)
{
	pqpool_config cfg;
	pqpool *pool;
	char err[512];
	if (pqpool_config_from_env(&cfg, NULL, NULL, err, sizeof err) != PQPOOL_OK) {
		fprintf(stderr, "config: %s\n", err);
		return NULL;
	}
	if (pqpool_open(&cfg, &pool) != PQPOOL_OK) {
		fprintf(stderr, "open: %s\n", pqpool_errmsg());
		pool = NULL;
	}
	pqpool_config_clear(&cfg);
	return pool;
}

#endif
