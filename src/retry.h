/* retry.h — the retry loop of pqpool_run and pqpool_query. */
#ifndef PQPOOL_RETRY_H
#define PQPOOL_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

struct pqpool;

/* What one attempt reports to the loop. */
typedef struct pqpool__attempt {
	int status;
	bool retryable;
	char sqlstate[6];
	char msg[PQPOOL__ERRLEN];
} pqpool__attempt;

/* One attempt; deadline_ns is the whole loop's, which no attempt outlives. */
typedef int (*pqpool__attempt_fn)(struct pqpool *p, void *arg, int64_t deadline_ns,
                                  pqpool__attempt *a);

/* Runs fn until it succeeds, fails for good, or retry_attempts or
 * retry_deadline_ms are spent, backing off between attempts; the final
 * message reads "database <context> failed after N attempts: <last>". */
int pqpool__retry(struct pqpool *p, const char *context, pqpool__attempt_fn fn,
                  void *arg);

/* Records the calling thread's last error in a as the attempt's failure. */
void pqpool__attempt_failed(pqpool__attempt *a, int status);

/* An attempt's acquire deadline: connection_timeout_ms, within the loop's. */
int64_t pqpool__acquire_deadline(struct pqpool *p, int64_t loop_deadline);

#endif
