/* fuzz_http.c — the service's HTTP stack end to end: raw request bytes into an
 * in-process libmicrohttpd daemon running http.c's callbacks, with a fake pool.
 *
 * Input: 8 bytes for the fake's answers, then the bytes a client sends (one
 * request, several pipelined, or garbage). Each input gets its own
 * connection over a socketpair, handed to the daemon with MHD_add_connection;
 * the client's side is shut for writing, and the daemon is run in this thread
 * until it closes the connection. Checks: the daemon ends the connection
 * (by itself, or at the latest when the client hangs up); whatever it sends
 * starts as an HTTP/1.x status line; every request it started is completed
 * (in-flight count back to zero).
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>

#include "../cmd/pqpool/serve/http.c"

#include "fake_env.h"

/* Rounds of MHD_run() without the connection ending, past which it counts as
 * a hang: each round does all the work that is possible at once. */
#define MAX_ROUNDS 2000

static struct MHD_Daemon *daemon_;
static http_server server;
static fake fake_;

static const char *quiet(void *arg, const char *name)
{
	(void)arg;
	/* the access log and MHD's complaints are built, not written */
	return strcmp(name, "LOG_LEVEL") == 0 ? "error" : NULL;
}

static void trap_if(bool bad)
{
	if (bad)
		__builtin_trap();
}

static void start(void)
{
	char err[128];

	signal(SIGPIPE, SIG_IGN);
	trap_if(log_configure(quiet, NULL, err, sizeof err) != 0);
	/* with METRICS_TOKEN set, so that the Authorization header's path
	 * runs too (the seed corpus holds requests with and without it) */
	server.env = (route_env){fake_health,  fake_stats,
	                         fake_service, fake_shutting_down,
	                         &fake_,       "fuzz-token-0123456789",
	                         NULL};
	http_metrics_init(&server.metrics);
	atomic_init(&server.closing, false);
	atomic_init(&server.completed, 0);
	server.access_log = true;
	/* as http_start() configures it, but driven from this thread */
	daemon_ = MHD_start_daemon(
	        MHD_USE_NO_LISTEN_SOCKET | MHD_USE_EPOLL | MHD_USE_TURBO |
	                MHD_USE_ERROR_LOG,
	        0, NULL, NULL, on_request, &server, MHD_OPTION_EXTERNAL_LOGGER,
	        on_mhd_log, &server, MHD_OPTION_CONNECTION_TIMEOUT, 0u,
	        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)4096,
	        MHD_OPTION_NOTIFY_COMPLETED, on_completed, &server,
	        MHD_OPTION_NOTIFY_CONNECTION, on_connection, &server, MHD_OPTION_END);
	trap_if(daemon_ == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char got[1 << 16];
	struct sockaddr_in peer = {.sin_family = AF_INET,
	                           .sin_port = htons(40000),
	                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	size_t sent = 0, have = 0;
	bool closed = false, stalled = false;
	int sv[2];

	if (size > 32768)
		return 0;
	if (!daemon_)
		start();
	fake_from_bytes(&fake_, &data, &size);
	atomic_store(&server.closing, fake_.shutting_down);
	trap_if(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) !=
	        0);
	if (MHD_add_connection(daemon_, sv[0], (const struct sockaddr *)&peer,
	                       sizeof peer) != MHD_YES) {
		close(sv[1]);
		return 0; /* MHD closed sv[0] */
	}
	for (int round = 0; !closed; round++) {
		if (round == MAX_ROUNDS) {
			/* libmicrohttpd 0.9.75 can stall on some malformed requests
			 * that fill the connection's memory: it neither answers nor
			 * reads the client's EOF (the service's HTTP_IDLE_TIMEOUT
			 * ends those). Hanging up must still end it, below. */
			stalled = true;
			break;
		}
		if (sent < size) {
			ssize_t n = write(sv[1], data + sent, size - sent);
			if (n > 0)
				sent += (size_t)n;
			if (sent == size)
				shutdown(sv[1], SHUT_WR);
		} else if (size == 0 && round == 0) {
			shutdown(sv[1], SHUT_WR);
		}
		MHD_run(daemon_);
		for (;;) {
			char *dst = got + (have < sizeof got ? have : 0);
			size_t room = have < sizeof got ? sizeof got - have : sizeof got;
			ssize_t n = read(sv[1], dst, room);
			if (n > 0) {
				if (have < sizeof got && have + (size_t)n <= sizeof got &&
				    have < 9 && have + (size_t)n >= 9)
					trap_if(memcmp(got, "HTTP/1.", 7) != 0);
				have += (size_t)n;
				continue;
			}
			if (n == 0)
				closed = true;
			break;
		}
	}
	close(sv[1]);
	MHD_run(daemon_); /* let it release the connection */
	for (int round = 0; stalled && atomic_load(&server.metrics.connections) != 0;
	     round++) {
		trap_if(round == MAX_ROUNDS); /* not even a hang-up ends it */
		MHD_run(daemon_);
	}
	trap_if(atomic_load(&server.metrics.in_flight) != 0);
	trap_if(atomic_load(&server.metrics.connections) != 0);
	return 0;
}
