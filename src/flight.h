/* flight.h — one health probe in flight, shared by the callers that ask
 * while it runs. */
#ifndef PQPOOL_FLIGHT_H
#define PQPOOL_FLIGHT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "pqpool.h"

typedef struct pqpool__flight {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* a flight landed */
	bool running;
	uint64_t gen; /* flights landed */
	pqpool_health last;
} pqpool__flight;

void pqpool__flight_init(pqpool__flight *f);
void pqpool__flight_destroy(pqpool__flight *f);

enum pqpool__boarding {
	PQPOOL__FLIGHT_LEAD,   /* none in flight: the caller runs it, then lands it */
	PQPOOL__FLIGHT_JOINED, /* one was in flight: *out is its result */
	PQPOOL__FLIGHT_LATE    /* one was in flight and did not land by the deadline */
};

/* Joins the flight in progress, waiting for its result no later than the
 * monotonic deadline_ns, or makes the caller its pilot. */
enum pqpool__boarding pqpool__flight_board(pqpool__flight *f, int64_t deadline_ns,
                                           pqpool_health *out);

/* The pilot's result, for every caller that joined. */
void pqpool__flight_land(pqpool__flight *f, const pqpool_health *result);

#endif
