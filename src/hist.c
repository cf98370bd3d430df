/* hist.c — latency histograms: fixed bucket bounds, classifying a duration
 * without floating point, and quantiles by interpolation. */
#include "hist.h"

#include <limits.h>
#include <math.h>

static const double hist_bounds_ms[PQPOOL_HIST_BUCKETS] = {
        0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, INFINITY,
};

/* The same finite bounds in integer ns, so that classifying a duration on
 * the query path needs no floating point. */
static const int64_t hist_bounds_ns[PQPOOL_HIST_BUCKETS - 1] = {
        100000,    250000,    500000,     1000000,    2500000,
        5000000,   10000000,  25000000,   50000000,   100000000,
        250000000, 500000000, 1000000000, 2500000000, 5000000000,
};

const double *pqpool_hist_bounds_ms(void)
{
	return hist_bounds_ms;
}

int pqpool__hist_bucket(int64_t ns)
{
	/* The bounds are sorted, so the number of bounds below ns is the index of
	 * the first bound >= ns. Counting without branches costs the same for
	 * every duration and the compiler can vectorise it. */
	int idx = 0;
	for (int i = 0; i < PQPOOL_HIST_BUCKETS - 1; i++)
		idx += ns > hist_bounds_ns[i];
	return idx;
}

void pqpool__hist_add(pqpool_hist *h, int64_t ns)
{
	if (ns < 0) /* a clock that stepped back is not a negative duration */
		ns = 0;
	h->count++;
	h->sum_ms += (double)ns / 1e6;
	h->buckets[pqpool__hist_bucket(ns)]++;
}

double pqpool_hist_quantile(const pqpool_hist *h, double q)
{
	if (h == NULL || !(q > 0 && q < 1))
		return 0;
	/* Rank against the sum of the buckets rather than h->count: a snapshot
	 * summed from relaxed counters may differ by a sample or two, and the
	 * buckets are what the interpolation walks. */
	uint64_t total = 0;
	for (int i = 0; i < PQPOOL_HIST_BUCKETS; i++)
		total += h->buckets[i];
	if (total == 0)
		return 0;

	double rank = q * (double)total;
	uint64_t below = 0;
	for (int i = 0; i < PQPOOL_HIST_BUCKETS; i++) {
		uint64_t n = h->buckets[i];
		if (n == 0 || (double)(below + n) < rank) {
			below += n;
			continue;
		}
		double lo = i == 0 ? 0 : hist_bounds_ms[i - 1];
		if (i == PQPOOL_HIST_BUCKETS - 1)
			return lo; /* no upper bound to interpolate towards */
		double frac = (rank - (double)below) / (double)n;
		return lo + (hist_bounds_ms[i] - lo) * frac;
	}
	/* Rounding left the rank above the last sample: the largest bound seen. */
	return hist_bounds_ms[PQPOOL_HIST_BUCKETS - 2];
}

/* Pipeline depths: powers of two up to 256, then +Inf. */
static const int depth_bounds[PQPOOL_DEPTH_BUCKETS] = {1,  2,  4,   8,   16,
                                                       32, 64, 128, 256, INT_MAX};

const int *pqpool_depth_bounds(void)
{
	return depth_bounds;
}

int pqpool__depth_bucket(int depth)
{
	int idx = 0;
	for (int i = 0; i < PQPOOL_DEPTH_BUCKETS - 1; i++)
		idx += depth > depth_bounds[i];
	return idx;
}

int pqpool_depth_quantile(const pqpool_depth_hist *h, double q)
{
	if (h == NULL || !(q > 0 && q < 1))
		return 0;
	uint64_t total = 0, below = 0;
	for (int i = 0; i < PQPOOL_DEPTH_BUCKETS; i++)
		total += h->buckets[i];
	if (total == 0)
		return 0;
	double rank = q * (double)total;
	for (int i = 0; i < PQPOOL_DEPTH_BUCKETS - 1; i++) {
		below += h->buckets[i];
		if ((double)below >= rank)
			return depth_bounds[i];
	}
	return depth_bounds[PQPOOL_DEPTH_BUCKETS - 2];
}
