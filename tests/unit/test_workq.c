/* test_workq.c — the service's job queue: every job runs once, in order of arrival
 * when one thread serves it, concurrently when several do, and a stop answers what is
 * left as cancelled. */
#include "testenv.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "../../cmd/pqpool/serve/workq.c"

#define N_JOBS 2000

typedef struct job {
	workq_item node; /* first: the item is the job */
	int id;
	atomic_int runs;
	atomic_bool cancelled;
} job;

static job jobs[N_JOBS];
static atomic_int order[N_JOBS], n_done, running, max_running;
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static int hold_us; /* how long each job takes */

static void reset(void)
{
	memset(jobs, 0, sizeof(jobs));
	for (int i = 0; i < N_JOBS; i++) {
		jobs[i].id = i;
		atomic_init(&jobs[i].runs, 0);
		atomic_init(&jobs[i].cancelled, false);
		atomic_init(&order[i], -1);
	}
	atomic_store(&n_done, 0);
	atomic_store(&running, 0);
	atomic_store(&max_running, 0);
	gate_open = true;
	hold_us = 0;
}

static void run_job(void *arg, workq_item *item, bool cancelled)
{
	job *j = (job *)item;
	int now = atomic_fetch_add(&running, 1) + 1;
	int max = atomic_load(&max_running);

	(void)arg;
	while (now > max && !atomic_compare_exchange_weak(&max_running, &max, now))
		;
	pthread_mutex_lock(&gate_mu);
	while (!gate_open)
		pthread_cond_wait(&gate_cv, &gate_mu);
	pthread_mutex_unlock(&gate_mu);
	if (hold_us)
		usleep((useconds_t)hold_us);
	atomic_fetch_add(&j->runs, 1);
	atomic_store(&j->cancelled, cancelled);
	atomic_store(&order[atomic_fetch_add(&n_done, 1)], j->id);
	atomic_fetch_sub(&running, 1);
}

static void set_gate(bool open)
{
	pthread_mutex_lock(&gate_mu);
	gate_open = open;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_mu);
}

static void wait_done(int n)
{
	for (int i = 0; i < 5000 && atomic_load(&n_done) < n; i++)
		usleep(1000);
	assert_int_equal(atomic_load(&n_done), n);
}

/* One thread: every job once, first come first served. */
static void test_one_thread_fifo(void **state)
{
	workq *q;

	(void)state;
	reset();
	assert_int_equal(workq_start(1, run_job, NULL, &q), 0);
	for (int i = 0; i < N_JOBS; i++)
		assert_true(workq_push(q, &jobs[i].node));
	wait_done(N_JOBS);
	workq_stop(q);
	for (int i = 0; i < N_JOBS; i++) {
		assert_int_equal(atomic_load(&jobs[i].runs), 1);
		assert_false(atomic_load(&jobs[i].cancelled));
		assert_int_equal(atomic_load(&order[i]), i);
	}
	assert_int_equal(atomic_load(&max_running), 1);
}

/* Pushers on several threads, eight workers: each job exactly once, and
 * the workers really run at once. */
static atomic_int next_job, refused;

static void *pusher(void *arg)
{
	workq *q = arg;

	for (int i; (i = atomic_fetch_add(&next_job, 1)) < N_JOBS;) {
		if (!workq_push(q, &jobs[i].node))
			atomic_fetch_add(&refused, 1); /* cmocka asserts only on main */
	}
	return NULL;
}

static void test_many_threads(void **state)
{
	workq *q;
	pthread_t p[4];

	(void)state;
	reset();
	atomic_store(&next_job, 0);
	atomic_store(&refused, 0);
	hold_us = 200;
	assert_int_equal(workq_start(8, run_job, NULL, &q), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&p[i], NULL, pusher, q), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(p[i], NULL);
	assert_int_equal(atomic_load(&refused), 0);
	wait_done(N_JOBS);
	workq_stop(q);
	for (int i = 0; i < N_JOBS; i++)
		assert_int_equal(atomic_load(&jobs[i].runs), 1);
	assert_true(atomic_load(&max_running) > 1);
	assert_true(atomic_load(&max_running) <= 8);
}

static void *stop_thread(void *q)
{
	workq_stop(q);
	return NULL;
}

/* A stop lets running jobs finish, answers the queued ones as cancelled
 * (each still exactly once) and refuses new ones. */
static void test_stop(void **state)
{
	workq *q;

	(void)state;
	reset();
	set_gate(false); /* the two threads block in their first job */
	assert_int_equal(workq_start(2, run_job, NULL, &q), 0);
	for (int i = 0; i < 10; i++)
		assert_true(workq_push(q, &jobs[i].node));
	for (int i = 0; i < 5000 && atomic_load(&running) < 2; i++)
		usleep(1000);
	assert_int_equal(atomic_load(&running), 2);

	/* stop from another thread: it waits for the blocked jobs */
	pthread_t stopper;
	assert_int_equal(pthread_create(&stopper, NULL, stop_thread, q), 0);
	/* white box: wait until the stop has begun (q stays allocated until
	 * the threads are joined, which the closed gate prevents) */
	for (bool begun = false; !begun; usleep(1000)) {
		pthread_mutex_lock(&q->mu);
		begun = q->stopping;
		pthread_mutex_unlock(&q->mu);
	}
	assert_false(workq_push(q, &jobs[10].node));
	set_gate(true);
	pthread_join(stopper, NULL);

	assert_int_equal(atomic_load(&n_done), 10);
	int cancelled = 0;
	for (int i = 0; i < 10; i++) {
		assert_int_equal(atomic_load(&jobs[i].runs), 1);
		cancelled += atomic_load(&jobs[i].cancelled);
	}
	assert_int_equal(cancelled, 8); /* all but the two that were running */
	assert_int_equal(atomic_load(&jobs[10].runs), 0);
}

static void test_stop_idle_and_null(void **state)
{
	workq *q;

	(void)state;
	reset();
	assert_int_equal(workq_start(4, run_job, NULL, &q), 0);
	usleep(10000); /* all four asleep on the idle stack */
	workq_stop(q);
	assert_int_equal(atomic_load(&n_done), 0);
	workq_stop(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_one_thread_fifo),
	        cmocka_unit_test(test_many_threads),
	        cmocka_unit_test(test_stop),
	        cmocka_unit_test(test_stop_idle_and_null),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
