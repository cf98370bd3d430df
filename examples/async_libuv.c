/* async_libuv.c — 10 000 statements from one thread on a libuv loop
 * (include/pqpool/libuv.h). */
#include <pqpool/libuv.h>

#include "async_work.h"

static struct work w;

int main(void)
{
	pqpool *pool = work_pool();
	uv_loop_t *uv = uv_default_loop();
	pqpool_uv a;
	int rc;
	if (!pool)
		return 2;
	if (pqpool_uv_attach(&a, uv, pool) != PQPOOL_OK) {
		fprintf(stderr, "loop: %s\n", pqpool_errmsg());
		pqpool_close(pool, 1000);
		return 1;
	}
	work_start(&w, a.loop);
	uv_run(uv, UV_RUN_DEFAULT); /* returns once nothing is watched */
	rc = work_report(&w, "libuv");
	pqpool_uv_detach(&a);
	uv_run(uv, UV_RUN_DEFAULT); /* closes the adapter's handles */
	uv_loop_close(uv);
	pqpool_close(pool, 5000);
	return rc;
}
