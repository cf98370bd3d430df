/* cancel_compat.c — cancel requests for libpq older than 17, which has no
 * non-blocking cancel: its PQcancel() connects with a blocking connect() and
 * no timeout, so against a server whose packets are dropped it blocks until
 * the kernel gives up, minutes later. A cancel request is a tiny fixed
 * message (the backend's PID and secret key, sent to the server's address),
 * so we send it ourselves with a non-blocking connect.
 *
 * Before 17 libpq's API does not expose the key; it is read from the
 * PGcancel object, whose head (remote address, PID, key) is the same from
 * libpq 9.x to 16. That read is made only when the libpq running is older
 * than 17 (libpq 18 changed the struct: variable-length keys), and trusted
 * only if the PID found there equals PQbackendPID(). Otherwise cancels are
 * unavailable and a timed-out query's connection is dropped instead (its
 * statement_timeout still bounds the work left on the server). The build
 * uses cancel.c instead with libpq 17 or newer. */
#include "cancel.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The newest libpq whose PGcancel head we know. */
#define LAYOUT_KNOWN_BEFORE 170000

struct pqpool__canceller {
	struct sockaddr_storage addr; /* the server's address */
	socklen_t addrlen;
	int pid, key; /* the backend's PID and secret key */
	int fd;       /* the request's socket while one is out; -1 none */
	bool sent;    /* the request went: the server's close is awaited */
};

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

pqpool__canceller *pqpool__canceller_new(PGconn *pg)
{
	pqpool__canceller *ci;
	PGcancel *cn;
	const struct libpq_cancel_head *h;
	bool valid = false;
	if (PQlibVersion() >= LAYOUT_KNOWN_BEFORE || !(cn = PQgetCancel(pg)))
		return NULL;
	if (!(ci = calloc(1, sizeof *ci))) {
		PQfreeCancel(cn);
		return NULL;
	}
	h = (const struct libpq_cancel_head *)(const void *)cn;
	if (h->be_pid == PQbackendPID(pg) && h->be_pid != 0 && h->raddr.salen > 0 &&
	    h->raddr.salen <= sizeof ci->addr &&
	    (h->raddr.addr.ss_family == AF_INET || h->raddr.addr.ss_family == AF_INET6 ||
	     h->raddr.addr.ss_family == AF_UNIX)) {
		memcpy(&ci->addr, &h->raddr.addr, h->raddr.salen);
		ci->addrlen = h->raddr.salen;
		ci->pid = h->be_pid;
		ci->key = h->be_key;
		ci->fd = -1;
		valid = true;
	}
	PQfreeCancel(cn);
	if (!valid) {
		free(ci);
		return NULL;
	}
	return ci;
}

int pqpool__cancel_begin(pqpool__canceller *ci, int *fd, short *events, char *err,
                         size_t errlen)
{
	int r;
	if (!ci) {
		snprintf(err, errlen, "cancel requests are unavailable with this libpq");
		return -1;
	}
	ci->fd =
	        socket(ci->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ci->fd < 0) {
		snprintf(err, errlen, "cancel: socket: %s", strerror(errno));
		return -1;
	}
	r = connect(ci->fd, (const struct sockaddr *)&ci->addr, ci->addrlen);
	if (r < 0 && errno != EINPROGRESS && errno != EAGAIN) {
		snprintf(err, errlen, "cancel: connect: %s", strerror(errno));
		pqpool__cancel_end(ci);
		return -1;
	}
	ci->sent = false;
	*fd = ci->fd;
	*events = POLLOUT; /* connected, or once connected: the request goes */
	return 0;
}

int pqpool__cancel_step(pqpool__canceller *ci, int *fd, short *events, char *err,
                        size_t errlen)
{
	uint32_t msg[4];
	int soerr = 0;
	socklen_t len = sizeof soerr;
	char c;

	if (ci->sent) {
		/* The server closes the connection once it has acted on the
		 * request, as libpq waits for too. */
		(void)recv(ci->fd, &c, 1, 0);
		return 1;
	}
	getsockopt(ci->fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
	if (soerr) {
		snprintf(err, errlen, "cancel: connect: %s", strerror(soerr));
		return -1;
	}
	msg[0] = htonl(16);
	msg[1] = htonl(CANCEL_REQUEST_CODE);
	msg[2] = htonl((uint32_t)ci->pid);
	msg[3] = htonl((uint32_t)ci->key);
	if (send(ci->fd, msg, sizeof msg, MSG_NOSIGNAL) != (ssize_t)sizeof msg) {
		snprintf(err, errlen, "cancel: send: %s", strerror(errno));
		return -1;
	}
	ci->sent = true;
	*fd = ci->fd;
	*events = POLLIN;
	return 0;
}

void pqpool__cancel_end(pqpool__canceller *ci)
{
	if (ci && ci->fd >= 0) {
		close(ci->fd);
		ci->fd = -1;
	}
}

void pqpool__canceller_free(pqpool__canceller *c)
{
	free(c);
}

const char *pqpool__cancel_method(void)
{
	return PQlibVersion() < LAYOUT_KNOWN_BEFORE ? "compat" : "none";
}
