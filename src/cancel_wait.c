/* cancel_wait.c — a cancel request sent and waited for until a deadline,
 * from the steps of whichever cancel.c or cancel_compat.c is built. */
#include "cancel.h"

#include <poll.h>
#include <stdio.h>

#include "fdwait.h"

int pqpool__cancel(pqpool__canceller *c, int64_t deadline_ns, char *err, size_t errlen)
{
	short events;
	int fd, r;

	if (pqpool__cancel_begin(c, &fd, &events, err, errlen) != 0)
		return -1;
	for (;;) {
		int w = pqc_wait_fd(fd, events, deadline_ns);
		if (w <= 0) {
			snprintf(err, errlen, "cancel: %s",
			         w == 0 ? "timed out reaching the server"
			                : "poll failed");
			r = -1;
			break;
		}
		if ((r = pqpool__cancel_step(c, &fd, &events, err, errlen)) != 0)
			break;
	}
	pqpool__cancel_end(c);
	return r < 0 ? -1 : 0;
}
