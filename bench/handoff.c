/* handoff.c — what one wake-up of a sleeping thread costs on this machine.
 *
 * Two threads hand a token back and forth, each sleeping on its own futex
 * word until the other wakes it: the least a blocking caller of any pool
 * pays per statement (it sleeps until its result is in, and is woken once).
 * Prints wall time and CPU time (getrusage, both threads) per hand-off.
 *
 *   build/bench/bench_handoff [hand-offs]           (default 400000)
 *   taskset -c 0 build/bench/bench_handoff          both threads on one core
 *
 * Linux only (futex); no database. BENCHMARKS.md quotes it.
 */
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static _Atomic unsigned word[2];
static long rounds;

static void sleep_on(int i)
{
	while (atomic_load(&word[i]) == 0)
		syscall(SYS_futex, &word[i], FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	atomic_store(&word[i], 0);
}

static void wake(int i)
{
	atomic_store(&word[i], 1);
	syscall(SYS_futex, &word[i], FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void *partner(void *arg)
{
	(void)arg;
	for (long n = 0; n < rounds; n++) {
		sleep_on(1);
		wake(0);
	}
	return NULL;
}

static double seconds(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
	long handoffs = argc > 1 ? strtol(argv[1], NULL, 10) : 400000;
	struct timespec t0, t1;
	struct rusage ru;
	pthread_t th;
	double wall, cpu;

	if (handoffs < 2) {
		fprintf(stderr, "usage: %s [hand-offs, at least 2]\n", argv[0]);
		return 2;
	}
	rounds = handoffs / 2;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (pthread_create(&th, NULL, partner, NULL) != 0) {
		perror("pthread_create");
		return 1;
	}
	for (long n = 0; n < rounds; n++) {
		wake(1);
		sleep_on(0);
	}
	pthread_join(th, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	getrusage(RUSAGE_SELF, &ru);
	wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	cpu = seconds(ru.ru_utime) + seconds(ru.ru_stime);
	printf("%ld hand-offs: %.2f us wall, %.2f us CPU each\n", 2 * rounds,
	       wall * 1e6 / (double)(2 * rounds), cpu * 1e6 / (double)(2 * rounds));
	return 0;
}
