/* loadgen.c — a steady, bounded HTTP load for the fault tests: N threads,
 * each on its own keep-alive HTTP/1.1 connection, send GET <path> on a fixed
 * schedule (rate requests/s in all) for at most a duration, or until SIGTERM
 * or SIGINT. Every request is written as one line
 *     <sent_ms> <done_ms> <status>
 * (wall-clock ms since the epoch, so that a test script can compare them with
 * its own `date` readings; status 0 when there was no HTTP answer: refused,
 * reset, or no answer within the request timeout), and a summary line goes
 * to stdout. A thread that falls behind skips the slots it missed rather
 * than bursting to catch up, so a slow server sees no more than the rate.
 *
 * usage: loadgen -p PORT [-h 127.0.0.1] [-P /path] [-c 4] [-r 200]
 *                [-d 30000] [-t 5000] -o FILE
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct rec {
	int64_t sent_ms, done_ms;
	int status;
} rec;

typedef struct worker {
	pthread_t thread;
	int index;
	rec *recs;
	size_t n, cap;
} worker;

static struct sockaddr_in addr;
static const char *path = "/livez";
static const char *host = "127.0.0.1";
static int nthreads = 4, rate = 200, duration_ms = 30000, timeout_ms = 5000;
static atomic_bool stop;
static int64_t start_ns;

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&stop, true);
}

static int connect_to(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	/* a blocking connect to loopback or a veth is refused or done at
	 * once; a SYN that goes unanswered is bounded by SO_SNDTIMEO */
	{
		struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	}
	if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads one response within the deadline (monotonic ns). Returns its
 * status, or 0 when none came complete; *keep false when the connection
 * cannot carry another request. */
static int read_response(int fd, int64_t deadline, bool *keep)
{
	char buf[16384];
	size_t len = 0, need = 0;
	int status = 0;
	bool have_head = false;
	*keep = false;
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int64_t left = (deadline - mono_ns()) / 1000000;
		ssize_t r;
		if (left <= 0)
			return 0;
		if (poll(&pfd, 1, (int)left) <= 0)
			continue; /* re-checks the deadline (or EINTR) */
		r = read(fd, buf + len, sizeof buf - 1 - len);
		if (r <= 0)
			return 0;
		len += (size_t)r;
		buf[len] = '\0';
		if (!have_head) {
			char *end = strstr(buf, "\r\n\r\n"), *cl, *line;
			bool close_hdr = false;
			if (!end) {
				if (len >= sizeof buf - 1)
					return 0;
				continue;
			}
			have_head = true;
			if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
				return 0;
			need = (size_t)(end + 4 - buf);
			/* headers we care about: Content-Length, Connection */
			for (line = strstr(buf, "\r\n"); line && line < end;
			     line = strstr(line + 2, "\r\n")) {
				cl = line + 2;
				if (strncasecmp(cl, "Content-Length:", 15) == 0)
					need += (size_t)strtoul(cl + 15, NULL, 10);
				else if (strncasecmp(cl, "Connection:", 11) == 0) {
					char *eol = strstr(cl, "\r\n");
					*eol = '\0';
					close_hdr = strcasestr(cl, "close") != NULL;
					*eol = '\r';
				}
			}
			*keep = !close_hdr;
			if (need > sizeof buf - 1) {
				*keep = false; /* not ours to buffer: bodies here are
				                  small */
				return status;
			}
		}
		if (len >= need) {
			if (len > need)
				*keep = false; /* pipelining garbage: start afresh */
			return status;
		}
	}
}

static void record(worker *w, int64_t sent, int status)
{
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 1024;
		rec *r = realloc(w->recs, cap * sizeof *r);
		if (!r)
			return;
		w->recs = r;
		w->cap = cap;
	}
	w->recs[w->n++] = (rec){sent, wall_ms(), status};
}

static void *run(void *arg)
{
	worker *w = arg;
	char req[1024];
	int len = snprintf(
	        req, sizeof req,
	        "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: pqpool-loadgen\r\n\r\n", path,
	        host);
	int64_t interval = (int64_t)1000000000 * nthreads / rate;
	/* threads start spread over one interval, so the load is even */
	int64_t next = start_ns + interval * w->index / nthreads;
	int64_t end = start_ns + (int64_t)duration_ms * 1000000;
	int fd = -1;
	while (!atomic_load(&stop)) {
		int64_t now = mono_ns(), sent;
		int status = 0;
		bool keep = false;
		if (next >= end)
			break;
		if (now < next) {
			struct timespec ts = {(next - now) / 1000000000,
			                      (next - now) % 1000000000};
			nanosleep(&ts, NULL);
			continue; /* re-checks stop */
		}
		sent = wall_ms();
		if (fd < 0)
			fd = connect_to();
		if (fd >= 0 && write(fd, req, (size_t)len) == len)
			status = read_response(
			        fd, mono_ns() + (int64_t)timeout_ms * 1000000, &keep);
		if (!keep && fd >= 0) {
			close(fd);
			fd = -1;
		}
		record(w, sent, status);
		next += interval;
		now = mono_ns();
		if (next < now) /* behind: skip what was missed */
			next = now + (interval - (now - next) % interval);
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	const rec *x = a, *y = b;
	return x->sent_ms < y->sent_ms ? -1 : x->sent_ms > y->sent_ms;
}

int main(int argc, char **argv)
{
	const char *out = NULL;
	int port = 0, opt;
	worker *ws;
	rec *all;
	size_t total = 0, ok = 0, failed = 0;
	int64_t first_fail = 0, last_fail = 0;
	FILE *f;
	struct sigaction sa;

	while ((opt = getopt(argc, argv, "h:p:P:c:r:d:t:o:")) != -1) {
		switch (opt) {
		case 'h':
			host = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'P':
			path = optarg;
			break;
		case 'c':
			nthreads = atoi(optarg);
			break;
		case 'r':
			rate = atoi(optarg);
			break;
		case 'd':
			duration_ms = atoi(optarg);
			break;
		case 't':
			timeout_ms = atoi(optarg);
			break;
		case 'o':
			out = optarg;
			break;
		default:
			goto usage;
		}
	}
	if (port <= 0 || port > 65535 || !out || nthreads < 1 || nthreads > 256 ||
	    rate < 1 || rate > 100000 || duration_ms < 1 || duration_ms > 600000 ||
	    timeout_ms < 1)
		goto usage;
	memset(&addr, 0, sizeof addr);
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
		goto usage;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	ws = calloc((size_t)nthreads, sizeof *ws);
	if (!ws)
		return 1;
	start_ns = mono_ns();
	for (int i = 0; i < nthreads; i++) {
		ws[i].index = i;
		if (pthread_create(&ws[i].thread, NULL, run, &ws[i]) != 0) {
			fprintf(stderr, "loadgen: pthread_create failed\n");
			return 1;
		}
	}
	for (int i = 0; i < nthreads; i++) {
		pthread_join(ws[i].thread, NULL);
		total += ws[i].n;
	}
	all = malloc((total ? total : 1) * sizeof *all);
	if (!all)
		return 1;
	total = 0;
	for (int i = 0; i < nthreads; i++) {
		memcpy(all + total, ws[i].recs, ws[i].n * sizeof *all);
		total += ws[i].n;
		free(ws[i].recs);
	}
	qsort(all, total, sizeof *all, cmp);
	if (!(f = fopen(out, "w"))) {
		perror(out);
		return 1;
	}
	for (size_t i = 0; i < total; i++) {
		fprintf(f, "%lld %lld %d\n", (long long)all[i].sent_ms,
		        (long long)all[i].done_ms, all[i].status);
		if (all[i].status >= 200 && all[i].status < 300) {
			ok++;
		} else {
			failed++;
			if (!first_fail)
				first_fail = all[i].sent_ms;
			last_fail =
			        all[i].done_ms > last_fail ? all[i].done_ms : last_fail;
		}
	}
	if (fclose(f) != 0) {
		perror(out);
		return 1;
	}
	printf("loadgen: sent=%zu ok=%zu failed=%zu first_fail_ms=%lld "
	       "last_fail_ms=%lld\n",
	       total, ok, failed, (long long)first_fail, (long long)last_fail);
	free(all);
	free(ws);
	return 0;
usage:
	fprintf(stderr,
	        "usage: loadgen -p PORT [-h ADDR] [-P /path] [-c threads] [-r req/s] "
	        "[-d ms] [-t timeout_ms] -o FILE\n");
	return 2;
}
