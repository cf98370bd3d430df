/* failalloc.h — an allocator for white-box unit tests that fails the Nth
 * allocation and counts the blocks still live, so that a test can fail each
 * allocation of the code under test in turn and see that it returns an error
 * and leaks nothing (a leak fails the test even outside valgrind).
 *
 * Include it, then redirect the code under test to it before including that
 * code's .c file:
 *   #define malloc fi_malloc / realloc fi_realloc / free fi_free
 * Static state: one set per test program. */
#ifndef PQPOOL_FAILALLOC_H
#define PQPOOL_FAILALLOC_H

#include <stdbool.h>
#include <stdlib.h>

static long fi_fail_at = -1; /* index of the allocation that fails; -1 none */
static long fi_count;        /* allocations attempted since the last reset */
static long fi_live;         /* blocks handed out and not yet freed */
static bool fi_hit;          /* the failing allocation was reached */

static inline void *fi_malloc(size_t n)
{
	if (fi_count++ == fi_fail_at) {
		fi_hit = true;
		return NULL;
	}
	void *p = malloc(n);
	if (p)
		fi_live++;
	return p;
}

static inline void *fi_realloc(void *old, size_t n)
{
	if (fi_count++ == fi_fail_at) {
		fi_hit = true;
		return NULL;
	}
	void *p = realloc(old, n);
	if (p && old == NULL)
		fi_live++;
	return p;
}

static inline void fi_free(void *p)
{
	if (p)
		fi_live--;
	free(p);
}

#endif
