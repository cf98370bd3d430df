/* event.c — a one-shot wake-up object: each waiter sleeps on its own word, so
 * a waker wakes exactly the waiter it means. */
#include "event.h"

#include "clock.h"

#include <errno.h>
#include <time.h>

#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

void pqc_event_init(pqc_event *ev)
{
	atomic_store_explicit(&ev->word, 0, memory_order_relaxed);
}

void pqc_event_set(pqc_event *ev)
{
	atomic_store_explicit(&ev->word, 1, memory_order_release);
	/* The waiter may already have seen the word and gone; waking a futex
	 * word nobody waits on is harmless. */
	syscall(SYS_futex, &ev->word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

int pqc_event_wait(pqc_event *ev, int64_t deadline_ns)
{
	while (atomic_load_explicit(&ev->word, memory_order_acquire) == 0) {
		struct timespec ts;
		if (pqc_now_ns() >= deadline_ns)
			return 0;
		ts.tv_sec = deadline_ns / 1000000000;
		ts.tv_nsec = deadline_ns % 1000000000;
		/* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline,
		 * so spurious wake-ups do not stretch the wait. */
		if (syscall(SYS_futex, &ev->word, FUTEX_WAIT_BITSET_PRIVATE, 0, &ts, NULL,
		            FUTEX_BITSET_MATCH_ANY) == -1 &&
		    errno == ETIMEDOUT)
			return atomic_load_explicit(&ev->word, memory_order_acquire) != 0;
	}
	return 1;
}

#else /* portable fallback: spin-sleep; correct, not fast */

void pqc_event_init(pqc_event *ev)
{
	atomic_store_explicit(&ev->word, 0, memory_order_relaxed);
}

void pqc_event_set(pqc_event *ev)
{
	atomic_store_explicit(&ev->word, 1, memory_order_release);
}

int pqc_event_wait(pqc_event *ev, int64_t deadline_ns)
{
	while (atomic_load_explicit(&ev->word, memory_order_acquire) == 0) {
		struct timespec ts = {0, 50000};
		if (pqc_now_ns() >= deadline_ns)
			return 0;
		nanosleep(&ts, NULL);
	}
	return 1;
}
#endif
