/* latency.c — a log-linear latency histogram (about 3 % resolution from 1 ns
 * to centuries) that threads fill without allocating, merged at the end. */
#include "bench.h"
#include "clock.h"

#include <string.h>
#include <sys/resource.h>

void lat_init(lat_hist *h)
{
	memset(h, 0, sizeof *h);
	h->min_ns = UINT64_MAX;
}

/* Bucket of v: below LAT_SUB, one per value; above, the power of two and
 * the next log2(LAT_SUB) bits. */
static int bucket_of(uint64_t v)
{
	int e;
	if (v < LAT_SUB)
		return (int)v;
	e = 63 - __builtin_clzll(v); /* v in [2^e, 2^(e+1)) */
	return (e - 4) * LAT_SUB + (int)((v >> (e - 5)) & (LAT_SUB - 1));
}

/* The smallest value of bucket b (inverse of bucket_of). */
static uint64_t bucket_low(int b)
{
	int e;
	if (b < LAT_SUB)
		return (uint64_t)b;
	e = b / LAT_SUB + 4;
	return ((uint64_t)1 << e) | ((uint64_t)(b % LAT_SUB) << (e - 5));
}

void lat_add(lat_hist *h, uint64_t ns)
{
	int b = bucket_of(ns);
	if (b >= LAT_BUCKETS)
		b = LAT_BUCKETS - 1;
	h->b[b]++;
	h->count++;
	h->sum_ns += ns;
	if (ns < h->min_ns)
		h->min_ns = ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
}

void lat_merge(lat_hist *into, const lat_hist *from)
{
	for (int i = 0; i < LAT_BUCKETS; i++)
		into->b[i] += from->b[i];
	into->count += from->count;
	into->sum_ns += from->sum_ns;
	if (from->count && from->min_ns < into->min_ns)
		into->min_ns = from->min_ns;
	if (from->max_ns > into->max_ns)
		into->max_ns = from->max_ns;
}

uint64_t lat_quantile(const lat_hist *h, double q)
{
	uint64_t rank, seen = 0;
	if (h->count == 0)
		return 0;
	if (q <= 0)
		return h->min_ns;
	if (q >= 1)
		return h->max_ns;
	rank = (uint64_t)(q * (double)h->count);
	if (rank >= h->count)
		rank = h->count - 1;
	for (int i = 0; i < LAT_BUCKETS; i++) {
		seen += h->b[i];
		if (seen > rank) {
			/* the middle of the bucket, within the observed range */
			uint64_t lo = bucket_low(i),
			         hi = i + 1 < LAT_BUCKETS ? bucket_low(i + 1) : lo;
			uint64_t v = lo + (hi - lo) / 2;
			if (v < h->min_ns)
				v = h->min_ns;
			if (v > h->max_ns)
				v = h->max_ns;
			return v;
		}
	}
	return h->max_ns;
}

double lat_mean_ns(const lat_hist *h)
{
	return h->count ? (double)h->sum_ns / (double)h->count : 0;
}

double bench_now(void)
{
	return (double)pqc_now_ns() / 1e9;
}

double bench_cpu_self(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}
