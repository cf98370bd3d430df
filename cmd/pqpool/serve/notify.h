/* notify.h — telling the service manager how the service is doing: sd_notify(3)'s
 * datagrams (READY=1, STOPPING=1, WATCHDOG=1), without libsystemd. */
#ifndef PQPOOL_CLI_SERVE_NOTIFY_H
#define PQPOOL_CLI_SERVE_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

/* Longest WATCHDOG_USEC accepted: its half, in nanoseconds, fits an int64_t. */
#define NOTIFY_MAX_WATCHDOG_USEC (INT64_MAX / 1000)

typedef struct notify_target {
	int fd;                  /* -1: there is no manager to tell */
	struct sockaddr_un addr; /* NOTIFY_SOCKET, resolved */
	socklen_t addrlen;
	char shown[128];       /* NOTIFY_SOCKET as log lines show it */
	int64_t watchdog_usec; /* WATCHDOG_USEC when it is ours to keep, else 0 */
	bool failing;          /* the last send failed (logged once, not per ping) */
} notify_target;

/*
 * NOTIFY_SOCKET's value as an address: an absolute path of at most
 * sizeof(sun_path) - 1 bytes, or '@' and an abstract name of 1 to
 * sizeof(sun_path) - 1 bytes. Returns 0, or -1 with the reason in err.
 */
int notify_parse_socket(const char *value, struct sockaddr_un *addr, socklen_t *addrlen,
                        char *err, size_t errlen);

/*
 * WATCHDOG_USEC and WATCHDOG_PID (either may be NULL or empty: unset).
 * usec must be plain decimal from 1 to NOTIFY_MAX_WATCHDOG_USEC; pid, when
 * set, plain decimal naming a process. Returns 1 with *usec_out set when the
 * watchdog is this process's (self) to keep; 0 when there is none, or it is
 * another process's (then err says which, for an info line, or is "");
 * -1 for a bad value, with the reason in err.
 */
int notify_parse_watchdog(const char *usec, const char *pid, pid_t self,
                          int64_t *usec_out, char *err, size_t errlen);

/*
 * Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from the process
 * environment (the manager sets them; .env.local has no say) and opens the
 * socket. Never fails: without a manager, or with a bad value (logged as a
 * warning naming the variable), the sends below do nothing, and without a
 * valid watchdog n->watchdog_usec is 0. Call notify_close() afterwards.
 */
void notify_open(notify_target *n);

/* True when there is a manager to tell. */
bool notify_enabled(const notify_target *n);

/*
 * Sends one datagram of newline-separated assignments ("READY=1\nSTATUS=...").
 * Bounded: waits at most a quarter of a second for room in the manager's
 * queue. The first failure is logged as a warning, the next success at info.
 * Returns 0, or -1 (also when there is no manager). Call from one thread.
 */
int notify_send(notify_target *n, const char *text);

/* Closes the socket. n may have been left by notify_open() in any state. */
void notify_close(notify_target *n);

#endif
