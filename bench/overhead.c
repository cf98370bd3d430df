/* overhead.c — the pool's own cost: acquire + release of an open connection,
 * no query, with 1, 8 and 64 threads on a pool of 20. */
#include <pqpool.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

struct run {
	pqpool *p;
	_Atomic int *go;
	_Atomic int *stop;
	uint64_t cycles;
	uint64_t failures;
};

static void *spin(void *arg)
{
	struct run *r = arg;
	while (!atomic_load(r->go))
		;
	while (!atomic_load_explicit(r->stop, memory_order_relaxed)) {
		/* 64 cycles between looks at the stop flag */
		for (int i = 0; i < 64; i++) {
			pqpool_conn *c;
			if (pqpool_acquire(r->p, 10000, &c) != PQPOOL_OK) {
				r->failures++;
				continue;
			}
			pqpool_release(c);
			r->cycles++;
		}
	}
	return NULL;
}

static void measure(pqpool *p, int threads, double seconds)
{
	pthread_t *th = calloc((size_t)threads, sizeof *th);
	struct run *r = calloc((size_t)threads, sizeof *r);
	_Atomic int go = 0, stop = 0;
	uint64_t total = 0, failures = 0;
	int64_t t0, t1;
	struct timespec d = {(time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9)};
	for (int i = 0; i < threads; i++) {
		r[i] = (struct run){p, &go, &stop, 0, 0};
		pthread_create(&th[i], NULL, spin, &r[i]);
	}
	t0 = pqc_now_ns();
	atomic_store(&go, 1);
	nanosleep(&d, NULL);
	atomic_store(&stop, 1);
	for (int i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		total += r[i].cycles;
		failures += r[i].failures;
	}
	t1 = pqc_now_ns();
	printf("%3d thread(s): %12.0f cycles/s  %8.1f ns/cycle (wall, all threads)  "
	       "failures %llu\n",
	       threads, (double)total * 1e9 / (double)(t1 - t0),
	       (double)(t1 - t0) / (double)total, (unsigned long long)failures);
	free(th);
	free(r);
}

int main(int argc, char **argv)
{
	pqpool_config cfg;
	pqpool *p;
	char err[512];
	double seconds = argc > 1 ? atof(argv[1]) : 2.0;
	if (pqpool_config_from_env(&cfg, NULL, NULL, err, sizeof err) != PQPOOL_OK) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	cfg.pool_max = 20;
	cfg.pool_min = 20;
	if (pqpool_open(&cfg, &p) != PQPOOL_OK) {
		fprintf(stderr, "%s\n", pqpool_errmsg());
		return 1;
	}
	pqpool_config_clear(&cfg);
	measure(p, 1, seconds);
	measure(p, 8, seconds);
	measure(p, 64, seconds);
	pqpool_close(p, 1000);
	return 0;
}
