/* async_libevent.c — 10 000 statements from one thread on a libevent
 * event_base (include/pqpool/libevent.h). */
#include <pqpool/libevent.h>

#include "async_work.h"

static struct work w;

int main(void)
{
	pqpool *pool = work_pool();
	struct event_base *base = event_base_new();
	pqpool_event a;
	int rc;
	if (!pool || !base)
		return 2;
	if (pqpool_event_attach(&a, base, pool) != PQPOOL_OK) {
		fprintf(stderr, "loop: %s\n", pqpool_errmsg());
		pqpool_close(pool, 1000);
		return 1;
	}
	work_start(&w, a.loop);
	event_base_dispatch(base); /* returns once no event is pending */
	rc = work_report(&w, "libevent");
	pqpool_event_detach(&a);
	event_base_free(base);
	pqpool_close(pool, 5000);
	return rc;
}
