/* http.c — libmicrohttpd glue: the socket, limits, a request's life, the access log. */
#include "http.h"

#include <errno.h>
#include <limits.h>
#include <microhttpd.h>
#include <stddef.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "clock.h"
#include "http_metrics.h"
#include "log.h"
#include "parse.h"
#include "probes.h"
#include "routes.h"

/* None of the routes takes a body; one this small is read and dropped so
 * that a POST gets its 405, a larger one is refused with 413. */
#define BODY_MAX (64 * 1024)
/* The most of a method repeated in the access log. */
#define METHOD_SHOWN_MAX 16

struct http_server {
	struct MHD_Daemon *daemon;
	probes *probes; /* the threads whose event loops check the database */
	pqpool *pool;
	route_env env;
	http_metrics metrics;
	route_memo memo; /* the metrics body between requests */
	atomic_bool closing;
	atomic_uint_fast64_t completed;
	int listen_fd; /* ours again after MHD_quiesce_daemon, else MHD's */
	bool quiesced;
	int port;
	int threads, db_threads;
	int wait_limit_ms; /* see http_options */
	bool access_log;   /* LOG_LEVEL lets info lines through */
};

/* Where a request that waits on the database is. */
enum {
	REQ_NEW,    /* headers read, nothing decided */
	REQ_QUEUED, /* suspended, with a database thread (queued or running) */
	REQ_READY   /* rep holds the answer: queue it */
};

/* One request, from its headers to its completion (MHD's *con_cls). */
typedef struct request {
	probe_item node;
	int64_t start_ns;
	uint64_t body_bytes;
	route_id route;
	int status; /* 0 until an answer is queued */
	atomic_int state;
	/* for the database thread: MHD keeps these until the request ends */
	struct MHD_Connection *conn;
	const char *method_in, *url_in;
	route_reply rep;
	char method[METHOD_SHOWN_MAX + 4];
	char path[ROUTE_PATH_SHOWN_MAX + 4];
} request;

/* ---- what the routes ask of the process -------------------------------- */

/* A request that waited in line gets what is left of its
 * DB_CONNECTION_TIMEOUT (deadline_ns), not a whole one more. */
static int env_check_health(void *arg, int64_t deadline_ns, pqpool_health *out)
{
	int ms = 0; /* no deadline: the pool's own bound */

	if (deadline_ns) {
		int64_t left = deadline_ns - pqc_now_ns();
		ms = left > 1000000 ? (int)((left + 999999) / 1000000) : 1;
	}
	return pqpool_check_health_within(((http_server *)arg)->pool, ms, out);
}

static int env_stats(void *arg, pqpool_stats *out)
{
	return pqpool_stats_get(((http_server *)arg)->pool, out);
}

static char *env_service_metrics(void *arg)
{
	return http_metrics_render(&((http_server *)arg)->metrics);
}

static bool env_shutting_down(void *arg)
{
	return atomic_load(&((http_server *)arg)->closing);
}

/* ---- answering ------------------------------------------------------------ */

static enum MHD_Result queue(http_server *s, struct MHD_Connection *conn, request *rq,
                             route_reply *rep)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(rep->body_len, rep->body,
	                                       rep->body_owned ? MHD_RESPMEM_MUST_FREE
	                                                       : MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		route_reply_free(rep);
		return MHD_NO; /* out of memory: MHD closes the connection */
	}
	/* the body now belongs to the response */
	rep->body = NULL;
	rep->body_owned = false;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, rep->content_type);
	/* health and metrics are live values: no cache may answer for us */
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	if (rep->allow)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, rep->allow);
	if (rep->www_authenticate)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
		                        rep->www_authenticate);
	if (rep->csp)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_SECURITY_POLICY,
		                        rep->csp);
	/* during a drain, keep-alive clients should reconnect elsewhere */
	if (atomic_load(&s->closing) || rep->status == MHD_HTTP_CONTENT_TOO_LARGE)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	rq->status = rep->status;
	rq->route = rep->route;
	ret = MHD_queue_response(conn, (unsigned)rep->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static bool body_too_large(struct MHD_Connection *conn)
{
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	                                             MHD_HTTP_HEADER_CONTENT_LENGTH);
	int n;

	/* a length that is not plain decimal, or past INT_MAX, is too large */
	return cl && (!pqc_parse_int(cl, 0, INT_MAX, &n) || n > BODY_MAX);
}

/* False for a Transfer-Encoding other than chunked: the body's end
 * cannot be found, and libmicrohttpd would wait for it until the peer
 * hangs up. */
static bool framing_known(struct MHD_Connection *conn)
{
	const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	                                             MHD_HTTP_HEADER_TRANSFER_ENCODING);
	return !te || strcasecmp(te, "chunked") == 0;
}

/* On a database thread: the verdict of the request's check, as the answer
 * of its route, then the connection back to its event thread, which calls
 * on_request() again to send it. */
static void probe_done(void *arg, probe_item *item, const pqpool_health *h, bool cancelled)
{
	http_server *s = arg;
	request *rq = (request *)(void *)((char *)item - offsetof(request, node));

	if (cancelled)
		route_error(MHD_HTTP_SERVICE_UNAVAILABLE, "Service shutting down",
		            &rq->rep);
	else if (rq->route == ROUTE_READYZ)
		route_ready_reply(&s->env, PQPOOL_OK, h, &rq->rep);
	else
		route_health_reply(PQPOOL_OK, h, &rq->rep);
	rq->rep.route = rq->route;
	atomic_store_explicit(&rq->state, REQ_READY, memory_order_release);
	MHD_resume_connection(rq->conn);
}

/* A check waits for the database, up to DB_CONNECTION_TIMEOUT. MHD binds
 * each connection to the event thread that accepted it, so a check waited
 * for there would hold up that thread's other connections, /livez
 * included: the request is suspended and its check goes to a database
 * thread, whose event loop keeps every check in flight at once. */
static enum MHD_Result offload(http_server *s, struct MHD_Connection *conn, request *rq)
{
	rq->conn = conn;
	rq->node.since_ns = rq->start_ns;
	atomic_store_explicit(&rq->state, REQ_QUEUED, memory_order_relaxed);
	/* before the push: the thread may resume it at once */
	MHD_suspend_connection(conn);
	if (!probes_push(s->probes, &rq->node)) {
		/* stopping: answer from here, through the same path */
		route_error(MHD_HTTP_SERVICE_UNAVAILABLE, "Service shutting down",
		            &rq->rep);
		rq->rep.route = rq->route;
		atomic_store_explicit(&rq->state, REQ_READY, memory_order_release);
		MHD_resume_connection(conn);
	}
	return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
	http_server *s = cls;
	request *rq = *con_cls;
	route_reply rep;

	(void)version;
	(void)upload_data;
	if (!rq) {
		/* The first call only has the headers. Answering now would make
		 * MHD 0.9.75 close the connection after the answer (it cannot
		 * know the body was read), so every request would pay for a new
		 * TCP connection: the answer waits for the next call. */
		rq = calloc(1, sizeof(*rq));
		if (!rq)
			return MHD_NO;
		rq->start_ns = pqc_now_ns();
		rq->route = route_match(url);
		atomic_init(&rq->state, REQ_NEW);
		if (s->access_log) {
			route_shown(method, METHOD_SHOWN_MAX, true, rq->method,
			            sizeof(rq->method));
			route_shown(url, ROUTE_PATH_SHOWN_MAX, false, rq->path,
			            sizeof(rq->path));
		}
		*con_cls = rq;
		atomic_fetch_add_explicit(&s->metrics.in_flight, 1, memory_order_relaxed);
		if (body_too_large(conn)) {
			/* here closing is what we want: the body is never read */
			route_error(MHD_HTTP_CONTENT_TOO_LARGE, "Payload too large",
			            &rep);
			rep.route = rq->route;
			return queue(s, conn, rq, &rep);
		}
		if (!framing_known(conn)) {
			/* a body whose end cannot be found (RFC 9112 6.3: a
			 * request's Transfer-Encoding must end in chunked) */
			route_error(MHD_HTTP_BAD_REQUEST, "Bad request", &rep);
			rep.route = rq->route;
			return queue(s, conn, rq, &rep);
		}
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		rq->body_bytes += *upload_data_size;
		*upload_data_size = 0;
		/* a chunked body gives no length up front: hang up past the limit */
		return rq->body_bytes > BODY_MAX ? MHD_NO : MHD_YES;
	}
	if (rq->status != 0)
		return MHD_YES; /* answered already (413) */
	switch (atomic_load_explicit(&rq->state, memory_order_acquire)) {
	case REQ_READY:
		return queue(s, conn, rq, &rq->rep);
	case REQ_QUEUED:
		return MHD_YES; /* not resumed yet: nothing to do */
	default:
		break;
	}
	/* readiness while shutting down needs no check */
	if (s->probes && route_blocking(method, url) &&
	    !(rq->route == ROUTE_READYZ && atomic_load(&s->closing)))
		return offload(s, conn, rq);
	/* the blocking routes above (health, readyz) are never protected */
	route_handle(&s->env,
	             &(route_request){
	                     method, url,
	                     MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	                                                 MHD_HTTP_HEADER_AUTHORIZATION),
	                     0},
	             &rep);
	return queue(s, conn, rq, &rep);
}

/* ---- completion: metrics and the access log -------------------------------- */

static const char *termination_text(enum MHD_RequestTerminationCode toe)
{
	switch (toe) {
	case MHD_REQUEST_TERMINATED_COMPLETED_OK:
		return NULL;
	case MHD_REQUEST_TERMINATED_WITH_ERROR:
		return "error";
	case MHD_REQUEST_TERMINATED_TIMEOUT_REACHED:
		return "timeout";
	case MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN:
		return "shutdown";
	case MHD_REQUEST_TERMINATED_READ_ERROR:
		return "read error";
	case MHD_REQUEST_TERMINATED_CLIENT_ABORT:
		return "client abort";
	}
	return "unknown";
}

static void access_log(const request *rq, double ms, enum MHD_RequestTerminationCode toe)
{
	const char *ended = termination_text(toe);
	json_t *fields;

	/* microseconds are as much as a log line can say honestly */
	fields = json_pack("{s:s, s:s, s:i, s:f}", "method", rq->method, "path", rq->path,
	                   "status", rq->status, "duration_ms",
	                   (double)(int64_t)(ms * 1000) / 1000);
	if (fields && ended)
		json_object_set_new(fields, "ended", json_string(ended));
	log_event(PQPOOL_LOG_INFO, "request", fields);
	json_decref(fields);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	http_server *s = cls;
	request *rq = *con_cls;
	int64_t dur;

	(void)conn;
	if (!rq)
		return;
	*con_cls = NULL;
	route_reply_free(&rq->rep); /* only if never handed to MHD */
	dur = pqc_now_ns() - rq->start_ns;
	if (rq->status != 0)
		http_metrics_observe(&s->metrics, rq->route, rq->status, dur);
	if (s->access_log)
		access_log(rq, (double)dur / 1e6, toe);
	free(rq);
	atomic_fetch_add(&s->completed, 1);
	/* last: the drain's count reaches zero only after the log line */
	atomic_fetch_sub(&s->metrics.in_flight, 1);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
	http_server *s = cls;

	(void)conn;
	(void)socket_context;
	atomic_fetch_add_explicit(&s->metrics.connections,
	                          toe == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1,
	                          memory_order_relaxed);
}

/* MHD's own complaints (the connection limit reached, a broken client). */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	log_msg(PQPOOL_LOG_WARN, "http: %s", buf);
}

/* ---- start and stop ----------------------------------------------------------- */

/* Our own socket rather than MHD's: a bind failure gets its real reason,
 * an IPv6 address binds to IPv6 only, and port 0 can be read back. */
static int listen_on(const http_options *o, int *port, char *err, size_t errlen)
{
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
		struct sockaddr_storage ss;
	} bound;
	socklen_t len = sizeof(bound);
	int one = 1, backlog, fd;

	memset(&bound, 0, sizeof(bound));
	fd = socket(o->addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	/* a restart must not wait for the last run's TIME_WAIT connections */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (o->addr->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	/* the kernel caps it at net.core.somaxconn */
	backlog = o->max_connections < 128 ? 128 : o->max_connections;
	if (bind(fd, o->addr, o->addrlen) != 0 || listen(fd, backlog) != 0 ||
	    getsockname(fd, &bound.sa, &len) != 0) {
		snprintf(err, errlen, "cannot listen: %s", strerror(errno));
		close(fd);
		return -1;
	}
	*port = ntohs(bound.sa.sa_family == AF_INET6 ? bound.in6.sin6_port
	                                             : bound.in.sin_port);
	return fd;
}

int http_start(const http_options *o, pqpool *pool, http_server **out, char *err,
               size_t errlen)
{
	http_server *s = calloc(1, sizeof(*s));
	unsigned per_ip, flags;

	*out = NULL;
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s->pool = pool;
	s->env = (route_env){
	        env_check_health, env_stats, env_service_metrics, env_shutting_down, s,
	        o->metrics_token, NULL};
	http_metrics_init(&s->metrics);
	atomic_init(&s->closing, false);
	atomic_init(&s->completed, 0);
	s->access_log = log_enabled(PQPOOL_LOG_INFO);
	/* MHD splits the connection limit between the threads: each needs one */
	s->threads = o->threads < o->max_connections ? o->threads : o->max_connections;
	/* one client cannot take every connection, yet a load generator or a
	 * proxy on one address still gets most of them */
	per_ip = o->max_connections > 1 ? (unsigned)o->max_connections / 2 : 1;

	s->db_threads = o->db_threads;
	s->wait_limit_ms = o->wait_limit_ms;
	if (o->db_threads > 0 && probes_start(pool, o->db_threads, o->wait_limit_ms,
	                                      probe_done, s, &s->probes) != 0) {
		snprintf(err, errlen, "cannot start %d database threads: %s",
		         o->db_threads, strerror(errno));
		free(s);
		return -1;
	}
	s->listen_fd = listen_on(o, &s->port, err, errlen);
	if (s->listen_fd < 0) {
		probes_stop(s->probes);
		free(s);
		return -1;
	}
	/* ITC (a wake-up pipe per thread) is needed by MHD_quiesce_daemon, and
	 * implied by suspend/resume */
	route_memo_init(&s->memo);
	s->env.memo = &s->memo;
	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO |
	        MHD_USE_ITC | MHD_USE_ERROR_LOG;
	if (s->probes)
		flags |= MHD_ALLOW_SUSPEND_RESUME;
	s->daemon = MHD_start_daemon(
	        flags, 0, NULL, NULL, on_request, s,
	        /* first, or MHD prints what it finds before it on its own */
	        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s, MHD_OPTION_LISTEN_SOCKET,
	        s->listen_fd, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->threads,
	        MHD_OPTION_CONNECTION_LIMIT, (unsigned)o->max_connections,
	        MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip, MHD_OPTION_CONNECTION_TIMEOUT,
	        (unsigned)o->idle_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	        (size_t)o->max_header_bytes, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
	        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_END);
	if (!s->daemon) {
		snprintf(err, errlen, "cannot start the HTTP server (libmicrohttpd)");
		close(s->listen_fd);
		probes_stop(s->probes);
		route_memo_destroy(&s->memo);
		free(s);
		return -1;
	}
	*out = s;
	return 0;
}

int http_port(const http_server *s)
{
	return s->port;
}

int http_threads(const http_server *s)
{
	return s->threads;
}

int http_db_threads(const http_server *s)
{
	return s->db_threads;
}

void http_quiesce(http_server *s)
{
	MHD_socket fd;

	atomic_store(&s->closing, true);
	fd = MHD_quiesce_daemon(s->daemon);
	if (fd == MHD_INVALID_SOCKET)
		return;
	s->quiesced = true;
	/* No worker polls the socket any more, but the kernel would still
	 * complete handshakes into its backlog, leaving clients hanging until
	 * the exit. Shut down, it refuses them at once; it stays open (MHD's
	 * threads may still hold it) until http_stop(). */
	shutdown(fd, SHUT_RDWR);
}

int http_in_flight(http_server *s)
{
	return atomic_load(&s->metrics.in_flight);
}

uint64_t http_completed(http_server *s)
{
	return atomic_load(&s->completed);
}

void http_stop(http_server *s)
{
	if (!s)
		return;
	/* first: MHD must not stop with a connection suspended, and each check
	 * resumes its own (those never started are answered 503) */
	probes_stop(s->probes);
	MHD_stop_daemon(s->daemon);
	if (s->quiesced) /* MHD gave it back to us */
		close(s->listen_fd);
	route_memo_destroy(&s->memo);
	free(s);
}
