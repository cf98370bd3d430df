/* rand.h — a cheap per-thread pseudo-random source (not for secrets). */
#ifndef PQC_RAND_H
#define PQC_RAND_H

#include <stdint.h>

/* The next value of this thread's xorshift64* sequence, seeded on first use
 * from the clock and the thread's address. Jitter only, never secrets. */
uint64_t pqc_rand64(void);

#endif
