/* flight.c — one health probe in flight, shared by the callers that ask while
 * it runs: a burst of checks costs one query, and each caller waits no longer
 * than its own bound. */
#include "flight.h"

#include <errno.h>
#include <time.h>

void pqpool__flight_init(pqpool__flight *f)
{
	pthread_condattr_t ca;
	pthread_mutex_init(&f->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&f->cv, &ca);
	pthread_condattr_destroy(&ca);
	f->running = false;
	f->gen = 0;
}

void pqpool__flight_destroy(pqpool__flight *f)
{
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cv);
}

enum pqpool__boarding pqpool__flight_board(pqpool__flight *f, int64_t deadline_ns,
                                           pqpool_health *out)
{
	struct timespec ts = {(time_t)(deadline_ns / 1000000000),
	                      (long)(deadline_ns % 1000000000)};
	enum pqpool__boarding how = PQPOOL__FLIGHT_JOINED;
	uint64_t gen;
	pthread_mutex_lock(&f->mu);
	if (!f->running) {
		f->running = true;
		pthread_mutex_unlock(&f->mu);
		return PQPOOL__FLIGHT_LEAD;
	}
	/* its result is as fresh as ours would be */
	gen = f->gen;
	while (f->gen == gen && how == PQPOOL__FLIGHT_JOINED)
		if (pthread_cond_timedwait(&f->cv, &f->mu, &ts) == ETIMEDOUT &&
		    f->gen == gen)
			how = PQPOOL__FLIGHT_LATE;
	if (how == PQPOOL__FLIGHT_JOINED)
		*out = f->last;
	pthread_mutex_unlock(&f->mu);
	return how;
}

void pqpool__flight_land(pqpool__flight *f, const pqpool_health *result)
{
	pthread_mutex_lock(&f->mu);
	f->last = *result;
	f->running = false;
	f->gen++;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}
