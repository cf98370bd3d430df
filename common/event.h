/* event.h — a one-shot wake-up object for one waiter: each sleeper has its
 * own word, so a waker wakes exactly the one it means. */
#ifndef PQC_EVENT_H
#define PQC_EVENT_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct pqc_event {
	_Atomic uint32_t word; /* 0 = not set, 1 = set */
} pqc_event;

void pqc_event_init(pqc_event *ev);

/* Sets the event and wakes its waiter. The waiter may return and reuse the
 * memory as soon as the word is set: setting touches nothing else after. */
void pqc_event_set(pqc_event *ev);

/* Waits until set or until the monotonic deadline (ns; INT64_MAX: none).
 * Returns 1 when set, 0 when the deadline passed first. */
int pqc_event_wait(pqc_event *ev, int64_t deadline_ns);

#endif
