/* fdwait.h — waiting for one descriptor with a monotonic deadline. */
#ifndef PQC_FDWAIT_H
#define PQC_FDWAIT_H

#include <stdint.h>

/* Milliseconds from now until the monotonic deadline_ns, rounded up, for
 * poll(2) and epoll_wait(2): 0 when past, at most 1000000 (a wait that long
 * wakes up and asks again). */
int pqc_ms_until(int64_t deadline_ns);

/* Waits until fd has one of events (POLLIN, POLLOUT) or the monotonic
 * deadline passes, resuming after signals. 1: ready (or in error: the next
 * read or write says which), 0: the deadline passed, -1: poll failed. */
int pqc_wait_fd(int fd, short events, int64_t deadline_ns);

#endif
