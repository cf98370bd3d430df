/* async_epoll.c — 10 000 statements from one thread on pqpool's own epoll
 * loop (include/pqpool/epoll.h). */
#include <pqpool/epoll.h>

#include "async_work.h"

static struct work w;

int main(void)
{
	pqpool *pool = work_pool();
	pqpool_epoll ep;
	int rc;
	if (!pool)
		return 2;
	if (pqpool_epoll_open(&ep, pool) != PQPOOL_OK) {
		fprintf(stderr, "loop: %s\n", pqpool_errmsg());
		pqpool_close(pool, 1000);
		return 1;
	}
	work_start(&w, ep.loop);
	pqpool_epoll_run(&ep, 60000); /* until every callback ran, at most 60 s */
	rc = work_report(&w, "epoll");
	pqpool_epoll_close(&ep);
	pqpool_close(pool, 5000);
	return rc;
}
