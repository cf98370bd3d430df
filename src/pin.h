/* pin.h — what keeps a pool allocated, and freeing it when the last goes. */
#ifndef PQPOOL_PIN_H
#define PQPOOL_PIN_H

#include <stdbool.h>

struct pqpool;

/* Keeps the pool allocated while the calling thread is inside a call that
 * does not own a slot the whole time; no lock. */
void pqpool__pin(struct pqpool *p);
void pqpool__unpin(struct pqpool *p);

/* Under p->mu, after a slot emptied or a user left: tells a waiting closer,
 * or returns true when the caller must free the pool (after unlocking). */
bool pqpool__last_one_locked(struct pqpool *p);

/* Frees everything of a pool nothing holds any more. */
void pqpool__pool_free(struct pqpool *p);

#endif
