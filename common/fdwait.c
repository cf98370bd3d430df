/* fdwait.c — waiting for one descriptor with a monotonic deadline. */
#include "fdwait.h"

#include <errno.h>
#include <poll.h>

#include "clock.h"

int pqc_ms_until(int64_t deadline_ns)
{
	int64_t left = deadline_ns - pqc_now_ns();
	if (left <= 0)
		return 0;
	left = (left + 999999) / 1000000;
	return left > 1000000 ? 1000000 : (int)left;
}

int pqc_wait_fd(int fd, short events, int64_t deadline_ns)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	for (;;) {
		int ms = pqc_ms_until(deadline_ns), r;
		if (ms == 0)
			return 0;
		r = poll(&pfd, 1, ms);
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}
