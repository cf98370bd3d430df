/* classify.h — which one-shot statements may share a pipeline with other
 * callers' statements. */
#ifndef PQPOOL_CLASSIFY_H
#define PQPOOL_CLASSIFY_H

#include <stdbool.h>

/*
 * True when sql starts (after blanks and comments) with a keyword whose
 * statement cannot change session state and can run inside the implicit
 * transaction a pipeline group shares: SELECT, WITH, VALUES, TABLE, INSERT,
 * UPDATE, DELETE. Anything else (BEGIN, COMMIT, SET, LISTEN, COPY, PREPARE,
 * DISCARD, DO, CALL, VACUUM, an unknown word, an unterminated comment) is
 * not. Conservative: a false answer only costs the pipelining. The extended
 * protocol refuses several statements in one string, so the first keyword
 * decides. What it cannot see (a function that takes a session-level
 * advisory lock, set_config(..., false)) README lists as not to be sent
 * one-shot.
 */
bool pqpool__pipelinable(const char *sql);

#endif
