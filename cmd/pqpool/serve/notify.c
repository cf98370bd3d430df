/* notify.c — sd_notify(3)'s datagram protocol to $NOTIFY_SOCKET, written out so that
 * the binary needs no libsystemd: validated addresses, bounded sends. */
#include "notify.h"

#include "log.h"
#include "parse.h"
#include "utf8.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* How much of a bad value a warning repeats: a whole sun_path fits. */
#define SHOW_MAX 120

/* The manager reads its queue at once; a full one means it is stuck, and
 * the service's own loop must not be (a WATCHDOG=1 lost then is harmless). */
#define SEND_TIMEOUT_US 250000

static const char *shown(const char *v, char out[SHOW_MAX + PQC_SHOWN_EXTRA])
{
	return pqc_shown(v, strlen(v), SHOW_MAX, out, SHOW_MAX + PQC_SHOWN_EXTRA);
}

int notify_parse_socket(const char *value, struct sockaddr_un *addr, socklen_t *addrlen,
                        char *err, size_t errlen)
{
	size_t len = strlen(value), max = sizeof(addr->sun_path) - 1;
	char show[SHOW_MAX + PQC_SHOWN_EXTRA];

	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	if (value[0] == '/' && len <= max) {
		/* with its NUL, as the kernel and systemd count a path */
		memcpy(addr->sun_path, value, len + 1);
		*addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
		return 0;
	}
	if (value[0] == '@' && len >= 2 && len - 1 <= max) {
		/* abstract: a leading NUL, then the name, no NUL counted */
		memcpy(addr->sun_path + 1, value + 1, len - 1);
		*addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
		return 0;
	}
	snprintf(err, errlen,
	         "NOTIFY_SOCKET=\"%s\": expected an absolute path of at most %zu bytes, "
	         "or @ and an abstract socket name of 1 to %zu bytes",
	         shown(value, show), max, max);
	return -1;
}

/* Plain decimal digits from 1 to max, without overflow. */
static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return false;
	for (; *s; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (d > 9 || v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (v == 0)
		return false;
	*out = v;
	return true;
}

int notify_parse_watchdog(const char *usec, const char *pid, pid_t self,
                          int64_t *usec_out, char *err, size_t errlen)
{
	char show[SHOW_MAX + PQC_SHOWN_EXTRA];
	uint64_t us;
	int p;

	err[0] = '\0';
	if (!usec || !*usec)
		return 0;
	if (!parse_u64(usec, NOTIFY_MAX_WATCHDOG_USEC, &us)) {
		snprintf(err, errlen,
		         "WATCHDOG_USEC=\"%s\": expected an integer from 1 to %lld "
		         "(microseconds)",
		         shown(usec, show), (long long)NOTIFY_MAX_WATCHDOG_USEC);
		return -1;
	}
	if (pid && *pid) {
		if (!pqc_parse_int(pid, 1, INT_MAX, &p)) {
			snprintf(err, errlen,
			         "WATCHDOG_PID=\"%s\": expected a process id, an integer "
			         "from "
			         "1 to %d",
			         shown(pid, show), INT_MAX);
			return -1;
		}
		/* the manager watches another process (we were started by a
		 * wrapper that did not exec us): pinging would not be heard */
		if ((pid_t)p != self) {
			snprintf(err, errlen,
			         "WATCHDOG_PID=%d is not this process (%ld): no watchdog "
			         "pings",
			         p, (long)self);
			return 0;
		}
	}
	*usec_out = (int64_t)us;
	return 1;
}

void notify_open(notify_target *n)
{
	const char *sock = getenv("NOTIFY_SOCKET");
	struct timeval tv = {0, SEND_TIMEOUT_US};
	char err[512];
	int rc;

	memset(n, 0, sizeof(*n));
	n->fd = -1;
	if (!sock || !*sock)
		return; /* not started by a service manager */
	if (notify_parse_socket(sock, &n->addr, &n->addrlen, err, sizeof(err)) != 0) {
		log_msg(PQPOOL_LOG_WARN, "%s; not notifying the service manager", err);
		return;
	}
	shown(sock, n->shown);
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (n->fd < 0) {
		log_msg(PQPOOL_LOG_WARN,
		        "NOTIFY_SOCKET=%s: cannot create a socket: %s; not notifying the "
		        "service manager",
		        n->shown, strerror(errno));
		return;
	}
	(void)setsockopt(n->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

	rc = notify_parse_watchdog(getenv("WATCHDOG_USEC"), getenv("WATCHDOG_PID"),
	                           getpid(), &n->watchdog_usec, err, sizeof(err));
	if (rc < 0)
		log_msg(PQPOOL_LOG_WARN, "%s; no watchdog pings", err);
	else if (rc == 0 && err[0])
		log_msg(PQPOOL_LOG_INFO, "%s", err);
}

bool notify_enabled(const notify_target *n)
{
	return n->fd >= 0;
}

int notify_send(notify_target *n, const char *text)
{
	struct iovec iov = {.iov_base = (void *)text, .iov_len = strlen(text)};
	struct msghdr msg = {
	        .msg_name = &n->addr,
	        .msg_namelen = n->addrlen,
	        .msg_iov = &iov,
	        .msg_iovlen = 1,
	};
	ssize_t sent;

	if (n->fd < 0)
		return -1;
	/* addressed each time, not connected: a manager that re-executes
	 * itself binds the path anew */
	do
		sent = sendmsg(n->fd, &msg, MSG_NOSIGNAL);
	while (sent < 0 && errno == EINTR);
	if (sent == (ssize_t)iov.iov_len) {
		if (n->failing)
			log_msg(PQPOOL_LOG_INFO,
			        "NOTIFY_SOCKET=%s: the service manager hears "
			        "us again",
			        n->shown);
		n->failing = false;
		return 0;
	}
	if (!n->failing)
		log_msg(PQPOOL_LOG_WARN,
		        "NOTIFY_SOCKET=%s: cannot notify the service manager: %s "
		        "(further "
		        "failures are not logged)",
		        n->shown, sent < 0 ? strerror(errno) : "short send");
	n->failing = true;
	return -1;
}

void notify_close(notify_target *n)
{
	if (n->fd >= 0)
		close(n->fd);
	n->fd = -1;
}
