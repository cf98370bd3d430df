/* log.h — the host's log sink, with the pool's secret kept out of it. */
#ifndef PQPOOL_LOG_H
#define PQPOOL_LOG_H

#include "pqpool.h"

typedef struct pqpool__logger {
	pqpool_log_fn fn; /* NULL: nothing is logged */
	void *arg;
	const char *secret; /* scrubbed from every line; NULL: none */
} pqpool__logger;

/* Formats a line, scrubs the secret from it and hands it to the sink. No
 * lock is held by the caller (the sink may block). */
void pqpool__log(const pqpool__logger *lg, pqpool_log_level lvl, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

#endif
