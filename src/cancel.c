/* cancel.c — cancel requests with a deadline, sent without touching the
 * PGconn, so that a timed-out query or a pool closing past its drain time
 * is never held up by an unreachable server.
 *
 * libpq 15's PQcancel() connects with a blocking connect() and no timeout:
 * against a server whose packets are dropped it blocks until the kernel
 * gives up, minutes later. libpq 17 adds PQcancelPoll() for this; Debian 12
 * ships libpq 15. A cancel request is a tiny fixed message (the backend's
 * PID and secret key, to the server's address), so we send it ourselves
 * with a non-blocking connect. The key is not exposed by libpq's API before
 * 17; it is read from the PGcancel object, whose layout (remote address,
 * PID, key) has been stable since libpq 9.x, and the read is trusted only if
 * the PID found there equals PQbackendPID(). Otherwise cancels are
 * unavailable and a timed-out query's connection is dropped instead (its
 * statement_timeout still bounds the work left on the server). */
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The head of libpq's struct pg_cancel (libpq-int.h, 9.x to 16). */
struct libpq_cancel_head {
	struct {
		struct sockaddr_storage addr;
		socklen_t salen;
	} raddr;
	int be_pid;
	int be_key;
};

#define CANCEL_REQUEST_CODE ((1234 << 16) | 5678)

bool pqpool__cancel_info_of(PGconn *pg, pqpool__cancel_info *ci)
{
	PGcancel *cn;
	const struct libpq_cancel_head *h;
	memset(ci, 0, sizeof *ci);
	cn = PQgetCancel(pg);
	if (!cn)
		return false;
	h = (const struct libpq_cancel_head *)(const void *)cn;
	if (h->be_pid == PQbackendPID(pg) && h->be_pid != 0 && h->raddr.salen > 0 &&
	    h->raddr.salen <= sizeof ci->addr &&
	    (h->raddr.addr.ss_family == AF_INET || h->raddr.addr.ss_family == AF_INET6 ||
	     h->raddr.addr.ss_family == AF_UNIX)) {
		memcpy(&ci->addr, &h->raddr.addr, h->raddr.salen);
		ci->addrlen = h->raddr.salen;
		ci->pid = h->be_pid;
		ci->key = h->be_key;
		ci->valid = true;
	}
	PQfreeCancel(cn);
	return ci->valid;
}

static int wait_fd(int fd, short events, int64_t deadline_ns)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	for (;;) {
		int64_t left = deadline_ns - pqpool__now_ns();
		int r;
		if (left <= 0)
			return 0;
		r = poll(&pfd, 1,
		         (int)((left + 999999) / 1000000 > 100000
		                       ? 100000
		                       : (left + 999999) / 1000000));
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

int pqpool__cancel_send(const pqpool__cancel_info *ci, int64_t deadline_ns, char *err,
                        size_t errlen)
{
	uint32_t msg[4];
	int fd, r;
	char c;

	if (!ci->valid) {
		snprintf(err, errlen, "cancel requests are unavailable with this libpq");
		return -1;
	}
	fd = socket(ci->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "cancel: socket: %s", strerror(errno));
		return -1;
	}
	r = connect(fd, (const struct sockaddr *)&ci->addr, ci->addrlen);
	if (r < 0 && errno != EINPROGRESS && errno != EAGAIN) {
		snprintf(err, errlen, "cancel: connect: %s", strerror(errno));
		close(fd);
		return -1;
	}
	if (r < 0) {
		int soerr = 0;
		socklen_t len = sizeof soerr;
		if (wait_fd(fd, POLLOUT, deadline_ns) <= 0) {
			snprintf(err, errlen,
			         "cancel: timed out connecting to the server");
			close(fd);
			return -1;
		}
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
		if (soerr) {
			snprintf(err, errlen, "cancel: connect: %s", strerror(soerr));
			close(fd);
			return -1;
		}
	}
	msg[0] = htonl(16);
	msg[1] = htonl(CANCEL_REQUEST_CODE);
	msg[2] = htonl((uint32_t)ci->pid);
	msg[3] = htonl((uint32_t)ci->key);
	if (send(fd, msg, sizeof msg, MSG_NOSIGNAL) != (ssize_t)sizeof msg) {
		snprintf(err, errlen, "cancel: send: %s", strerror(errno));
		close(fd);
		return -1;
	}
	/* The server closes the connection once it has acted on the request,
	 * as libpq waits for too; past the deadline we stop waiting, the
	 * request having been sent. */
	if (wait_fd(fd, POLLIN, deadline_ns) > 0)
		(void)recv(fd, &c, 1, 0);
	close(fd);
	return 0;
}
