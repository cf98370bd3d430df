/*
 * pqpool.h — a thread-safe pool of libpq connections with strict
 * configuration, health checks, live metrics and safe retry.
 *
 * This is the one public header. Conventions, as in libpq and SQLite:
 *  - Opaque handles, one type per role: pqpool (a pool), pqpool_conn (a
 *    lease: a connection taken from the pool), pqpool_inflight (a query in
 *    flight without blocking) and pqpool_probe (a health probe in flight).
 *  - Functions that can fail return a status code (PQPOOL_OK == 0, failures
 *    negative). pqpool_status_text() gives a fixed text for a code and
 *    pqpool_status_name() its name; the message of the last failing call on
 *    the calling thread, which names what failed, is pqpool_errmsg().
 *    Nothing here prints, exits or aborts.
 *  - Enumerations are named in text by pqpool_<enum>_text().
 *  - "owned" means the caller frees it; "borrowed" means valid until the
 *    event named. Destructors accept NULL.
 *  - The library starts no threads or timers and installs no signal handlers.
 *    Lifetime limits and liveness checks apply when a connection is handed
 *    out; idle reaping runs lazily from releases (at most once a second); the
 *    pool grows on demand, and refills to pool_min when the host calls
 *    pqpool_maintain().
 *  - No password ever appears in a message, a log line or a rendering.
 */
#ifndef PQPOOL_H
#define PQPOOL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define PQPOOL_API __attribute__((visibility("default")))
#else
#define PQPOOL_API
#endif

#define PQPOOL_VERSION "0.2.0"

/* ------------------------------------------------------------------ */
/* Status codes                                                         */
/* ------------------------------------------------------------------ */

typedef enum pqpool_status {
	PQPOOL_OK = 0,
	PQPOOL_EINVAL = -1,    /* bad argument or configuration value */
	PQPOOL_ENOMEM = -2,    /* out of memory */
	PQPOOL_ETIMEDOUT = -3, /* a deadline passed (acquire, query, drain) */
	PQPOOL_ECLOSED = -4,   /* the pool is closed or closing */
	PQPOOL_ECONNECT = -5,  /* could not open a connection to the server */
	PQPOOL_EQUERY = -6,    /* the server reported an error (SQLSTATE set) */
	PQPOOL_ECONNLOST = -7, /* the connection broke during the call */
	PQPOOL_ECALLBACK = -8, /* a caller's function reported failure */
	PQPOOL_EBUSY = -9,     /* leases were still out when close gave up */
	PQPOOL_EAGAIN = -10    /* would have to wait: try again, or another way */
} pqpool_status;

/* Fixed English text for a status code ("timed out"); "unknown status" for a
 * value that is not one. Never NULL; static storage. */
PQPOOL_API const char *pqpool_status_text(int status);

/* The code's name as written here without the prefix ("ETIMEDOUT", "OK"),
 * for logs and metrics labels; "UNKNOWN" for a value that is not one. Never
 * NULL; static storage. */
PQPOOL_API const char *pqpool_status_name(int status);

/* The name of pqpool_status_text() before 0.2; removed in 0.3. */
PQPOOL_API const char *pqpool_strstatus(int status)
        __attribute__((deprecated("use pqpool_status_text")));

/*
 * The message of the last call that failed on this thread, naming what
 * failed ("acquire: timed out after 5000 ms waiting for a connection (20 of
 * 20 in use)"). Borrowed: valid until the next pqpool call on this thread.
 * Empty string when the last call succeeded or none was made.
 */
PQPOOL_API const char *pqpool_errmsg(void);

/*
 * SQLSTATE of the last failing call on this thread when the server reported
 * one (e.g. "57014"), else "" (client-side failures have no SQLSTATE).
 * Borrowed like pqpool_errmsg().
 */
PQPOOL_API const char *pqpool_errcode(void);

/* ------------------------------------------------------------------ */
/* Configuration                                                        */
/* ------------------------------------------------------------------ */

typedef enum pqpool_log_level {
	PQPOOL_LOG_DEBUG = 0,
	PQPOOL_LOG_INFO = 1,
	PQPOOL_LOG_WARN = 2,
	PQPOOL_LOG_ERROR = 3
} pqpool_log_level;

/*
 * Log callback. Called from whichever thread triggered the event, with no
 * pool lock held; msg is borrowed for the duration of the call and never
 * contains a password. Must be thread-safe.
 */
typedef void (*pqpool_log_fn)(void *log_arg, pqpool_log_level level, const char *msg);

/*
 * Pool configuration. Initialise with pqpool_config_init() (defaults of the
 * specification) or pqpool_config_from_env(), then adjust fields.
 * All durations are milliseconds. String fields are borrowed by pqpool_open(),
 * which copies what it needs: they may be freed once it returns.
 */
typedef struct pqpool_config {
	/* libpq connection string: a postgresql:// URI or key=value pairs.
	 * NULL means the one built from the POSTGRES_* defaults. */
	const char *conninfo;
	/* Overrides applied on top of conninfo when non-NULL (libpq sslmode,
	 * sslcert, sslkey, sslrootcert). */
	const char *ssl_mode;
	const char *ssl_cert;
	const char *ssl_key;
	const char *ssl_root_cert;

	int pool_max;              /* DB_POOL_MAX, 20; 1..10000 */
	int pool_min;              /* DB_POOL_MIN, 5; 0..pool_max */
	int idle_timeout_ms;       /* DB_IDLE_TIMEOUT, 30000; 0 = never reap */
	int connection_timeout_ms; /* DB_CONNECTION_TIMEOUT, 5000; bounds acquire */
	int statement_timeout_ms;  /* DB_STATEMENT_TIMEOUT, 30000; 0 = server's */
	int query_timeout_ms;      /* DB_QUERY_TIMEOUT, 30000; 0 = none */
	int max_lifetime_ms;       /* DB_MAX_LIFETIME, 1800000; 0 = unlimited.
	                            * Each connection gets up to 10 % less, at
	                            * random, so they do not all expire at once. */
	int validate_after_ms;     /* check an idle connection before handing it
	                            * out when idle longer than this; 1000 */
	int lease_warn_ms;         /* DB_LEASE_WARN, 60000: log once, with file
	                            * and line, a lease held longer; 0 = off */

	int retry_attempts;      /* DB_RETRY_ATTEMPTS, 3; 1..100 */
	int retry_base_delay_ms; /* DB_RETRY_BASE_DELAY, 1000 */
	int retry_max_delay_ms;  /* DB_RETRY_MAX_DELAY, 30000: cap of one wait */
	int retry_deadline_ms;   /* DB_RETRY_DEADLINE, 60000: whole retry loop */

	const char *health_query; /* DB_HEALTH_QUERY; NULL = "SELECT 1" */
	int health_slow_ms;       /* DB_HEALTH_SLOW, 1000: slower → degraded */
	bool health_share;        /* DB_HEALTH_SHARE, true: concurrent checks
	                           * share one probe in flight */

	bool prepare; /* DB_PREPARED_STATEMENTS, true: pqpool_exec and
	               * pqpool_query prepare each statement once per
	               * connection (named, up to 128 per connection)
	               * and reuse it; false for PgBouncer transaction
	               * pooling without prepared statement support */

	bool pipeline;          /* DB_PIPELINE, true: concurrent pqpool_query calls
	                         * of pipelinable statements share a connection's
	                         * round trips (README: "Pipelining"); false: one
	                         * statement per connection at a time */
	int pipeline_depth;     /* DB_PIPELINE_DEPTH, 32; 1..1024: statements one
	                         * connection carries at once */
	bool pipeline_one_sync; /* DB_PIPELINE_ONE_SYNC, false: at most one
	                         * group (one Sync) in flight per connection,
	                         * for a pooler in transaction mode (PgBouncer
	                         * 1.18) that hands the server connection on at
	                         * each ReadyForQuery */
	int read_target;        /* DB_READ_TARGET, PQPOOL_READ_PREFER_STANDBY:
	                         * where PQPOOL_READ goes with several hosts */
	int max_replica_lag_ms; /* DB_MAX_REPLICA_LAG, 0 (no bound); with several
	                         * hosts, a standby whose replay lag was last
	                         * measured above it gets no reads */

	bool fail_fast; /* pqpool_open fails if the database cannot be
	                 * reached; default false: open succeeds with an
	                 * empty pool that fills once it answers */

	pqpool_log_fn log_fn; /* NULL: the library logs nothing */
	void *log_arg;

	/* Private: storage owned by pqpool_config_from_env(); freed by
	 * pqpool_config_clear(). Do not touch. */
	void *priv_;
} pqpool_config;

/* Fills *cfg with the defaults listed above. cfg must not be NULL. */
PQPOOL_API void pqpool_config_init(pqpool_config *cfg);

/*
 * Environment lookup used by pqpool_config_from_env(): returns the value of
 * name or NULL when unset. The returned string is borrowed for the duration
 * of the call that asked for it.
 */
typedef const char *(*pqpool_getenv_fn)(void *arg, const char *name);

/*
 * Builds a validated configuration from environment variables, lookup NULL
 * meaning getenv(3):
 *  - DATABASE_URL, a libpq URI or key=value string parsed with libpq's
 *    PQconninfoParse; when unset, one built from POSTGRES_HOST (localhost),
 *    POSTGRES_PORT (5432), POSTGRES_DB, POSTGRES_USER (both hyperpage) and
 *    POSTGRES_PASSWORD (password);
 *  - SSL_MODE, SSL_CERT_PATH, SSL_KEY_PATH, SSL_CA_PATH (libpq's sslmode,
 *    sslcert, sslkey, sslrootcert; the paths must be readable files);
 *    without SSL_MODE, NODE_ENV=production means sslmode=require unless the
 *    URL asks for verify-ca or verify-full, and otherwise the URL's own
 *    sslmode or disable;
 *  - one DB_* variable per tunable of pqpool_config, named beside each
 *    field above (DB_POOL_MAX, DB_POOL_MIN, ...), with the ranges given
 *    there; an unset DB_POOL_MIN follows a smaller DB_POOL_MAX.
 *
 * An empty value is treated as unset (the default applies), as shells often
 * export VAR= to clear a setting. Every other value is validated strictly:
 * integers are plain decimal, without sign, spaces or suffix, and in range.
 *
 * Returns PQPOOL_OK, or PQPOOL_EINVAL with a message naming the variable and
 * what was expected (DB_POOL_MAX="abc": expected an integer from 1 to 10000)
 * in err (NUL-terminated, truncated to errlen; may be NULL) and in
 * pqpool_errmsg(). On failure *cfg is left cleared (nothing to free).
 * On success the strings in *cfg are owned by cfg: release them with
 * pqpool_config_clear(). Not thread-safe with concurrent setenv(3).
 */
PQPOOL_API int pqpool_config_from_env(pqpool_config *cfg, pqpool_getenv_fn lookup,
                                      void *arg, char *err, size_t errlen);

/*
 * Frees what pqpool_config_from_env() allocated and resets *cfg to defaults.
 * Strings you assigned yourself are never freed. cfg may be NULL.
 */
PQPOOL_API void pqpool_config_clear(pqpool_config *cfg);

/*
 * Checks the numeric fields and that conninfo parses. Returns PQPOOL_OK or
 * PQPOOL_EINVAL with the reason in err / pqpool_errmsg().
 */
PQPOOL_API int pqpool_config_validate(const pqpool_config *cfg, char *err, size_t errlen);

/*
 * Writes the connection target of conninfo (NULL = the default) as a URL with
 * the password masked: "postgresql://hyperpage:****@localhost:5432/hyperpage".
 * Returns the length it needed (excluding the NUL), like snprintf, or
 * PQPOOL_EINVAL when conninfo does not parse (then out holds "(invalid)").
 */
PQPOOL_API int pqpool_mask_conninfo(const char *conninfo, char *out, size_t outlen);

/*
 * Opens one connection outside any pool exactly as a pool of cfg would open
 * it (cfg NULL: defaults): the same parameters (conninfo with the SSL
 * overrides, statement_timeout, the application name) and the same deadline
 * over the whole connect, name resolution aside. For what a pool cannot
 * share: a LISTEN consumer, a replication client, a tool that measures the
 * pool against plain libpq. timeout_ms < 0 means cfg->connection_timeout_ms.
 * Server notices go to libpq's default processor (stderr) until you set
 * your own with PQsetNoticeReceiver(). Blocking; thread-safe.
 * Returns PQPOOL_OK with *out owned (PQfinish() it), PQPOOL_EINVAL for a
 * bad cfg, PQPOOL_ENOMEM, or PQPOOL_ECONNECT with libpq's reason in
 * pqpool_errmsg() (the password scrubbed).
 */
PQPOOL_API int pqpool_connect(const pqpool_config *cfg, int timeout_ms, PGconn **out);

/* ------------------------------------------------------------------ */
/* Pool lifecycle                                                       */
/* ------------------------------------------------------------------ */

typedef struct pqpool pqpool;
typedef struct pqpool_conn pqpool_conn;         /* a lease */
typedef struct pqpool_inflight pqpool_inflight; /* a query sent, not finished */
typedef struct pqpool_probe pqpool_probe;       /* a health probe in flight */

/*
 * Opens a pool. cfg NULL means defaults. Warms up to pool_min connections,
 * opened in parallel within connection_timeout_ms. When the database cannot
 * be reached the pool still opens (empty, unhealthy) unless cfg->fail_fast.
 * Blocks for at most connection_timeout_ms.
 * On success *out is an owned handle: close it with pqpool_close().
 */
PQPOOL_API int pqpool_open(const pqpool_config *cfg, pqpool **out);

/*
 * Closes the pool. New acquires fail with PQPOOL_ECLOSED at once, waiters
 * wake with PQPOOL_ECLOSED, idle connections are closed, and leases still
 * out get up to drain_ms to be released (each is closed as it comes back).
 * Past drain_ms, the queries of the leases still out are cancelled and their
 * sockets shut down, so their holders' next libpq call fails fast; the pool
 * then returns PQPOOL_EBUSY and frees itself when the last of them is
 * released and the last call still inside it has returned. Otherwise returns
 * PQPOOL_OK, with everything freed.
 * Other threads may be inside pqpool calls on this pool when close is
 * called: they end promptly (acquires with PQPOOL_ECLOSED) and close waits
 * for them, up to drain_ms, like for leases. Once close has been called, new
 * calls may only come from threads that hold a lease (and releasing leases
 * is always valid); the handle must not be used at all after close returned
 * PQPOOL_OK. pool may be NULL (returns PQPOOL_OK). Call it once.
 */
PQPOOL_API int pqpool_close(pqpool *pool, int drain_ms);

/*
 * Lazy upkeep that a host may drive from its own loop (e.g. once a second):
 * closes connections idle past idle_timeout_ms (never below pool_min) or
 * past their lifetime, logs leases held past lease_warn_ms, and opens
 * connections up to pool_min (blocking up to connection_timeout_ms).
 * Returns PQPOOL_OK, or the status of a failed refill. Thread-safe.
 */
PQPOOL_API int pqpool_maintain(pqpool *pool);

/* ------------------------------------------------------------------ */
/* Leases                                                               */
/* ------------------------------------------------------------------ */

/*
 * Takes a connection from the pool. timeout_ms < 0 means the pool's
 * connection_timeout_ms; the timeout bounds the whole call, both waiting for
 * a free connection and opening a new one. Waiters are served first come,
 * first served. A connection idle for a while is checked first; a dead one
 * is replaced without an error. Thread-safe.
 * Returns PQPOOL_OK with *out a lease (owned: give it back with
 * pqpool_release() or pqpool_discard()), or PQPOOL_ETIMEDOUT (all
 * connections in use until the timeout), PQPOOL_ECONNECT (a new connection
 * could not be opened, in time or at all), PQPOOL_ECLOSED, PQPOOL_ENOMEM,
 * PQPOOL_EINVAL. Host names are resolved by libpq synchronously, outside the
 * timeout's control: use an address or a local resolver when that matters.
 * The macro records the caller's file and line for the lease_warn_ms log.
 */
#define pqpool_acquire(pool, timeout_ms, out)                                            \
	pqpool_acquire_loc((pool), (timeout_ms), (out), __FILE__, __LINE__)
/* pqpool_acquire() with the source location to log given explicitly (file is
 * borrowed for the lease's lifetime: a string literal, like __FILE__). */
PQPOOL_API int pqpool_acquire_loc(pqpool *pool, int timeout_ms, pqpool_conn **out,
                                  const char *file, int line);
/* A lease for reading only: with several hosts, on a standby (PQPOOL_READ);
 * the same as pqpool_acquire() with one host. */
#define pqpool_acquire_read(pool, timeout_ms, out)                                       \
	pqpool_acquire_for((pool), PQPOOL_READ, (timeout_ms), (out), __FILE__, __LINE__)
/* pqpool_acquire() with flags (0 or PQPOOL_READ). */
PQPOOL_API int pqpool_acquire_for(pqpool *pool, unsigned flags, int timeout_ms,
                                  pqpool_conn **out, const char *file, int line);

/*
 * The lease's libpq connection. Borrowed: valid until the lease is released.
 * Use the whole libpq API on it, from one thread at a time. Do not PQfinish
 * or PQreset it, and leave it in blocking mode. conn may be NULL (NULL).
 */
PQPOOL_API PGconn *pqpool_conn_pg(pqpool_conn *conn);

/*
 * Gives a lease back. The connection is kept only when it is CONNECTION_OK
 * and idle in no transaction; an open or failed transaction is rolled back
 * first (a round trip bounded by query_timeout_ms, or connection_timeout_ms
 * when that is 0); anything else
 * (a command in progress, a broken connection, an expired lifetime) is
 * closed and counted. If callers are waiting, the oldest gets it directly.
 * conn may be NULL. Thread-safe; the lease is invalid afterwards.
 */
PQPOOL_API void pqpool_release(pqpool_conn *conn);

/* Gives a lease back and closes its connection, e.g. after you changed
 * session state you cannot undo. conn may be NULL. */
PQPOOL_API void pqpool_discard(pqpool_conn *conn);

/*
 * Runs one statement on a lease, like PQexecParams with text parameters and
 * text results, bounded by query_timeout_ms: past it a cancel request is sent
 * and PQPOOL_ETIMEDOUT returned once the server confirms, or after 2 s more
 * with the connection given up (it is closed on release). Inside pqpool_run,
 * also bounded by retry_deadline_ms. Counts toward the query metrics.
 * params may be NULL when nparams is 0; a NULL element is SQL NULL.
 * On PQPOOL_OK, *res (if res is not NULL) is an owned result of status
 * PGRES_COMMAND_OK or PGRES_TUPLES_OK: free it with PQclear(). On failure
 * *res is NULL and the status is PQPOOL_EQUERY (pqpool_errcode() holds the
 * SQLSTATE), PQPOOL_ECONNLOST, PQPOOL_ETIMEDOUT or PQPOOL_EINVAL.
 */
PQPOOL_API int pqpool_exec(pqpool_conn *conn, const char *sql, int nparams,
                           const char *const *params, PGresult **res);

/* ------------------------------------------------------------------ */
/* One-shot queries and retry                                           */
/* ------------------------------------------------------------------ */

/* Flags for pqpool_query(). */
#define PQPOOL_IDEMPOTENT  0x1 /* safe to run again if the outcome is unknown */
#define PQPOOL_NO_PIPELINE 0x2 /* run alone on its connection, never pipelined */
/* A read: with several hosts, run on a standby (at random among those that
 * answer), or on the primary when no standby does. Without it a statement
 * goes to the primary. Ignored with one host. */
#define PQPOOL_READ 0x4

/*
 * The specification's pool.query(sql, params): acquires a lease, runs the
 * statement as pqpool_exec() does, releases the lease. Failures before the
 * statement was sent (PQPOOL_ECONNECT: no connection could be opened) are
 * retried with backoff; failures after it (connection lost, server shutting
 * down, serialization failure) are retried only with PQPOOL_IDEMPOTENT,
 * because the statement may already have taken effect. Errors such as syntax
 * or constraint violations are never retried, nor is PQPOOL_ETIMEDOUT (all
 * connections busy: retrying would only add load). Attempts, backoffs and
 * the queries themselves all end by retry_deadline_ms. The final message
 * reads "database query failed after N attempts: <last error>".
 * With cfg.pipeline (DB_PIPELINE, the default), a statement starting with
 * SELECT, WITH, VALUES, TABLE, INSERT, UPDATE or DELETE may share its
 * connection's round trips with other callers' (README: "Pipelining"): it
 * commits with the statements of its group, its result is delivered once
 * the group committed, and it is sent again if another statement of the
 * group fails. PQPOOL_NO_PIPELINE keeps it alone on its connection.
 * Thread-safe. Blocking.
 * On PQPOOL_OK, *res (if not NULL) is owned: PQclear() it.
 */
PQPOOL_API int pqpool_query(pqpool *pool, const char *sql, int nparams,
                            const char *const *params, unsigned flags, PGresult **res);

/*
 * Caller's function for pqpool_run(): does its work on the lease and returns
 * PQPOOL_OK, or a failure status. Run queries with pqpool_exec() so that
 * failures are classified by their SQLSTATE; after raw libpq calls, report a
 * failed result with pqpool_conn_fail() before returning.
 */
typedef int (*pqpool_fn)(pqpool_conn *conn, void *arg);

/*
 * Records a failed result on the lease for pqpool_run()'s classification and
 * for the error metrics. res is borrowed (not freed). Returns PQPOOL_EQUERY,
 * or PQPOOL_ECONNLOST when the connection is broken, for convenience:
 *   return pqpool_conn_fail(conn, res);
 */
PQPOOL_API int pqpool_conn_fail(pqpool_conn *conn, const PGresult *res);

/*
 * The specification's executeWithRetry(operation, context): acquires a lease,
 * calls fn, releases the lease; on a retryable failure (connection lost or
 * not opened; SQLSTATE class 08 but 08007, 57P01-57P03, 53300, 40001, 40P01;
 * the classification uses the last failure pqpool_exec or pqpool_conn_fail
 * recorded on the lease)
 * waits an exponential backoff with full jitter and tries again, up to
 * retry_attempts within retry_deadline_ms (which also cuts short queries
 * run through pqpool_exec). fn runs as a whole unit, so it
 * should be one transaction (or idempotent). A non-retryable failure is
 * returned after one attempt. The final message reads
 * "database <context> failed after N attempts: <last error>".
 * context may be NULL ("operation"). Thread-safe. Blocking.
 * Returns PQPOOL_OK or the last failure's status.
 */
PQPOOL_API int pqpool_run(pqpool *pool, const char *context, pqpool_fn fn, void *arg);

/*
 * Queries without blocking, for hosts with their own event loop (one thread
 * keeping many queries in flight, as pgbench does):
 *  - pqpool_send() takes a connection that is free right now (it never
 *    waits and never connects) and sends sql on it, as pqpool_exec() would
 *    run it (prepared once per connection unless DB_PREPARED_STATEMENTS is
 *    off). sql and params are borrowed until pqpool_finish().
 *    PQPOOL_OK: *out is the query in flight, which holds a connection of the
 *    pool until finished; wait until pqpool_inflight_socket(*out) is
 *    readable, or pqpool_poll_timeout_ms() has passed. PQPOOL_EAGAIN: no
 *    connection free at once: send it when one of yours is finished (or use
 *    pqpool_query() where blocking is fine).
 *    Other failures as pqpool_exec(); nothing is left to finish.
 *  - pqpool_poll() reads what has arrived, without blocking: PQPOOL_EAGAIN
 *    while the answer is incomplete and its deadline (query_timeout_ms) is
 *    not past; PQPOOL_OK when it is time for pqpool_finish().
 *  - pqpool_finish() returns what pqpool_exec() would (on PQPOOL_OK, *res
 *    if not NULL is owned: PQclear() it) and gives the lease back; a query
 *    past its deadline is PQPOOL_ETIMEDOUT and its connection closed. Stop
 *    watching the socket first.
 * A query in flight belongs to one thread at a time, like any lease; its
 * connection is the pool's: the libpq API is not for it.
 */
PQPOOL_API int pqpool_send(pqpool *pool, const char *sql, int nparams,
                           const char *const *params, pqpool_inflight **out);
/* The socket to watch for reading; -1 for NULL. */
PQPOOL_API int pqpool_inflight_socket(const pqpool_inflight *query);
PQPOOL_API int pqpool_poll(pqpool_inflight *query);
/* Milliseconds left before the query's deadline: 0 when past, -1 when it
 * has none (query_timeout_ms is 0). */
PQPOOL_API int pqpool_poll_timeout_ms(const pqpool_inflight *query);
PQPOOL_API int pqpool_finish(pqpool_inflight *query, PGresult **res);

/* ------------------------------------------------------------------ */
/* The asynchronous API: submit with a callback, on the host's loop     */
/* ------------------------------------------------------------------ */

/*
 * A pqpool_loop is one event loop's share of the pool: any number of
 * queries outstanding, queued and pipelined onto the connections the loop
 * takes from the pool (at most pipeline_depth statements on each; one Sync
 * per group of statements submitted together, a failed group's other
 * statements sent again, alone, as pqpool_query does). The host tells the
 * loop when a descriptor is ready and when its timer fires, through an
 * adapter: include/pqpool/epoll.h (a loop of its own on epoll), libuv.h
 * and libevent.h are small headers that do it for those libraries.
 *
 * One thread at a time: pqpool_submit, pqpool_loop_ready,
 * pqpool_loop_timeout and pqpool_loop_free on one loop are called from the
 * loop's thread (several loops, one per thread, share one pool). Free every
 * loop before pqpool_close.
 */
typedef struct pqpool_loop pqpool_loop;

#define PQPOOL_EV_READ  0x1u /* the descriptor is readable / watch for it */
#define PQPOOL_EV_WRITE 0x2u /* writable */

typedef struct pqpool_adapter {
	void *host; /* the adapter's own state, passed back to its functions */
	/* Watch fd for events (PQPOOL_EV_READ and/or PQPOOL_EV_WRITE), in
	 * place of what was watched; events 0: stop watching it and free what
	 * *handle holds. *handle is the adapter's per-descriptor state: NULL
	 * on the first call for a descriptor, kept by the loop after. When fd
	 * is ready, call pqpool_loop_ready(loop, token, ready). Returns 0, or
	 * -1 when fd cannot be watched (the loop then gives its connection
	 * up). */
	int (*watch)(void *host, int fd, unsigned events, void *token, void **handle);
	/* Arm the loop's one timer: call pqpool_loop_timeout(loop) in ms
	 * milliseconds (0: as soon as possible), replacing the time armed
	 * before; ms < 0 disarms it. */
	void (*timer)(void *host, int ms);
} pqpool_adapter;

/*
 * The completion of a submitted statement, called on the loop's thread,
 * exactly once per pqpool_submit that returned PQPOOL_OK. status is what
 * pqpool_query would return; res (on PQPOOL_OK, else NULL) is borrowed:
 * freed when the callback returns. During the callback pqpool_errmsg() and
 * pqpool_errcode() describe a failure. The callback may submit more.
 */
typedef void (*pqpool_done_fn)(void *arg, int status, const PGresult *res);

/* A loop on pool with the host's adapter (copied). PQPOOL_OK and *out, or
 * PQPOOL_EINVAL / PQPOOL_ENOMEM / PQPOOL_ECLOSED. */
PQPOOL_API int pqpool_loop_new(pqpool *pool, const pqpool_adapter *adapter,
                               pqpool_loop **out);

/*
 * Submits sql with nparams text parameters; done(arg, ...) is called when
 * it is finished. sql and params are copied: the caller's may go at once.
 * Never blocks on the database: when the pool has room and no connection
 * is idle, the loop opens one without blocking (its statements wait for
 * it, connection_timeout_ms at most; when the open fails they fail with
 * PQPOOL_ECONNECT, or go again after a backoff as pqpool_query's attempts
 * do, and the loop waits 50 ms to 0.8 s before it opens another). With
 * several hosts and no primary known, finding one still asks the hosts,
 * which blocks up to connection_timeout_ms. The statement is pipelined when
 * pqpool_query would pipeline it (flags as there: PQPOOL_NO_PIPELINE keeps
 * it alone on a connection of its own); statements that are not run
 * alone, on a connection no other statement shares while it runs.
 * Deadlines: query_timeout_ms from submission (its callback then gets
 * PQPOOL_ETIMEDOUT at once, and a cancel request goes out, sent without
 * blocking from the loop's watch), and
 * connection_timeout_ms for a connection when the pool has none to give.
 * A statement that may have taken effect is never sent again after a
 * failure of its connection, unless flagged PQPOOL_IDEMPOTENT: then a
 * failure worth trying again (the connection lost, or a SQLSTATE of
 * pqpool_sqlstate_retryable) sends it again after a backoff, as
 * pqpool_query does (retry_attempts, retry_deadline_ms; counted as
 * retries), before its callback runs. PQPOOL_OK, or PQPOOL_EINVAL / PQPOOL_ENOMEM /
 * PQPOOL_ECLOSED (the pool is closing), and then done is never called.
 */
PQPOOL_API int pqpool_submit(pqpool_loop *loop, const char *sql, int nparams,
                             const char *const *params, unsigned flags,
                             pqpool_done_fn done, void *arg);

/* From the adapter: the descriptor watched with token is ready (ready: the
 * PQPOOL_EV_* flags seen; errors and hang-ups count as readable). */
PQPOOL_API void pqpool_loop_ready(pqpool_loop *loop, void *token, unsigned ready);

/* From the adapter: the timer armed fired. */
PQPOOL_API void pqpool_loop_timeout(pqpool_loop *loop);

/* Statements submitted whose callback has not run yet. */
PQPOOL_API int pqpool_loop_pending(const pqpool_loop *loop);

/* Frees the loop: statements not yet sent get PQPOOL_ECLOSED, those in
 * flight PQPOOL_ECLOSED too (they may have run; their connections are
 * closed); connections go back to the pool. From a callback, it is done
 * when the callback returns. NULL is a no-op. */
PQPOOL_API void pqpool_loop_free(pqpool_loop *loop);

/* ------------------------------------------------------------------ */
/* Health                                                               */
/* ------------------------------------------------------------------ */

typedef enum pqpool_health_status {
	PQPOOL_HEALTHY = 0,
	PQPOOL_DEGRADED = 1,
	PQPOOL_UNHEALTHY = 2
} pqpool_health_status;

/* Where reads (PQPOOL_READ) go with several hosts (DB_READ_TARGET). */
enum {
	PQPOOL_READ_PREFER_STANDBY = 0, /* "prefer-standby": a standby at random,
	                                 * the primary when none answers */
	PQPOOL_READ_STANDBY = 1,        /* "standby": a standby, or fail */
	PQPOOL_READ_ANY = 2             /* "any": the primary or a standby */
};

/* The most hosts one DATABASE_URL may name. */
#define PQPOOL_MAX_HOSTS 16

/* A host's role, as its connections last showed it. */
typedef enum pqpool_role {
	PQPOOL_ROLE_UNKNOWN = 0,
	PQPOOL_ROLE_PRIMARY, /* takes writes */
	PQPOOL_ROLE_STANDBY  /* in recovery, or read-only */
} pqpool_role;

/* A host's state: up; banned after failed connects (skipped until the ban
 * ends, which grows to a minute); down: its connects fail but it is not
 * banned (the last usable host never is, and a ban that ended awaits its
 * next try). */
typedef enum pqpool_host_state {
	PQPOOL_HOST_UP = 0,
	PQPOOL_HOST_BANNED,
	PQPOOL_HOST_DOWN
} pqpool_host_state;

/* One host of a pool whose DATABASE_URL names several. */
typedef struct pqpool_host {
	char address[128]; /* host:port as the URL names it (no credentials) */
	pqpool_role role;
	pqpool_host_state state;
	int connections, active, idle;
	int failures;  /* connects failed in a row */
	double lag_ms; /* a standby's replay lag when last measured; -1 unknown */
} pqpool_host;

PQPOOL_API const char *pqpool_role_text(pqpool_role role);
PQPOOL_API const char *pqpool_host_state_text(pqpool_host_state state);

/* Fills out with the pool's hosts (up to max) and returns how many it has:
 * 0 for a pool of one host. Thread-safe, no I/O. */
PQPOOL_API int pqpool_hosts_get(pqpool *pool, pqpool_host *out, int max);

typedef struct pqpool_health {
	pqpool_health_status status;
	double response_ms;    /* monotonic-clock time of the probe, ms */
	int connection_count;  /* open connections after the probe */
	int64_t checked_at_ms; /* wall clock, ms since the Unix epoch */
	char error[256];       /* why unhealthy or degraded; "" otherwise */
	/* with several hosts, each of them (the probe ran on the primary);
	 * degraded while one is not up */
	int nhosts;
	pqpool_host hosts[PQPOOL_MAX_HOSTS];
} pqpool_health;

/* "healthy", "degraded" or "unhealthy". */
PQPOOL_API const char *pqpool_health_text(pqpool_health_status status);

/*
 * Runs the health query through the pool, bounded by connection_timeout_ms
 * in all (acquire and query). healthy; degraded when reachable but slower
 * than health_slow_ms, callers are waiting, or the recent error rate is at
 * least 5 %; unhealthy with the error otherwise. With health_share,
 * concurrent calls share one probe in flight and all get its result.
 * Fills *out and returns PQPOOL_OK whatever the status (the database being
 * down is a result, not a failure of this call); PQPOOL_EINVAL for NULLs.
 * Thread-safe. Blocking.
 */
PQPOOL_API int pqpool_check_health(pqpool *pool, pqpool_health *out);

/*
 * pqpool_check_health() within a bound of the caller's: the probe ends
 * within timeout_ms (acquire and query), and a caller that joins a probe in
 * flight waits for its result no longer than that (then: unhealthy, "timed
 * out"). For hosts whose callers already waited, e.g. in a queue, and were
 * promised an answer within connection_timeout_ms of their arrival.
 * timeout_ms <= 0 or above connection_timeout_ms means connection_timeout_ms.
 */
PQPOOL_API int pqpool_check_health_within(pqpool *pool, int timeout_ms,
                                          pqpool_health *out);

/*
 * The same probe without blocking, for hosts with their own event loop
 * (never shared with other checks):
 *  - pqpool_probe_start() takes an idle connection if one is free right now
 *    (it never waits and never connects) and sends the health query on it.
 *    PQPOOL_OK: *out is the probe, which holds a connection of the pool
 *    until finished; wait until pqpool_probe_socket(*out) is readable or
 *    pqpool_probe_timeout_ms() has passed. PQPOOL_EAGAIN: no connection free at once; run
 *    pqpool_check_health() where blocking is fine. Other failures: likewise.
 *  - pqpool_probe_poll() reads what has arrived, without blocking:
 *    PQPOOL_EAGAIN while the answer is incomplete and the probe's deadline
 *    (connection_timeout_ms from the start) is not past; PQPOOL_OK when it
 *    is time for pqpool_probe_finish().
 *  - pqpool_probe_finish() judges the answer as pqpool_check_health() does
 *    (a probe past its deadline is unhealthy and its connection closed),
 *    fills *out and gives the lease back: stop watching its socket first.
 * A probe belongs to one thread at a time, like any lease.
 */
PQPOOL_API int pqpool_probe_start(pqpool *pool, pqpool_probe **out);
/* The socket to watch for reading; -1 for NULL. */
PQPOOL_API int pqpool_probe_socket(const pqpool_probe *probe);
PQPOOL_API int pqpool_probe_poll(pqpool_probe *probe);
/* Milliseconds left before the probe's deadline (0 when past). */
PQPOOL_API int pqpool_probe_timeout_ms(const pqpool_probe *probe);
PQPOOL_API void pqpool_probe_finish(pqpool_probe *probe, pqpool_health *out);

/*
 * The health check on an event loop (pqpool_loop_new), for hosts that must
 * never block: the health query goes out like a pqpool_submit statement
 * (a connection the pool has to open is opened without blocking too), and
 * done(arg, h) is called on the loop's thread, exactly once per call that
 * returned PQPOOL_OK, with the verdict pqpool_check_health_within(pool,
 * timeout_ms, ...) would give: unhealthy with the error once it failed or
 * timeout_ms passed, waiting for a connection included (timeout_ms <= 0 or
 * above connection_timeout_ms: connection_timeout_ms; query_timeout_ms
 * bounds it too). A connection the server had closed is replaced and the
 * query sent again at once, 3 times at most. With health_share, the checks
 * of one loop made while one is in flight get its verdict. Unlike the
 * blocking check it does not measure the standbys' replay lag, which
 * pqpool_maintain() measures (h->hosts shows the last figures). h is
 * borrowed for the callback. PQPOOL_OK, or PQPOOL_EINVAL / PQPOOL_ENOMEM /
 * PQPOOL_ECLOSED (then done is never called).
 */
typedef void (*pqpool_health_fn)(void *arg, const pqpool_health *h);
PQPOOL_API int pqpool_loop_check_health(pqpool_loop *loop, int timeout_ms,
                                        pqpool_health_fn done, void *arg);

/* ------------------------------------------------------------------ */
/* Metrics                                                              */
/* ------------------------------------------------------------------ */

/* Upper bounds (ms) of the latency histogram buckets; the last is +Inf. */
#define PQPOOL_HIST_BUCKETS 16
PQPOOL_API const double *pqpool_hist_bounds_ms(void);

typedef struct pqpool_hist {
	uint64_t count;                        /* samples */
	double sum_ms;                         /* their total, ms */
	uint64_t buckets[PQPOOL_HIST_BUCKETS]; /* per bucket, not cumulative */
} pqpool_hist;

/* Estimated quantile (0 < q < 1) of a histogram, in ms; 0 when empty. */
PQPOOL_API double pqpool_hist_quantile(const pqpool_hist *h, double q);

/* Upper bounds (statements) of the pipeline-depth histogram's buckets:
 * 1, 2, 4, ... 256; the last bucket (INT_MAX) is +Inf. */
#define PQPOOL_DEPTH_BUCKETS 10
PQPOOL_API const int *pqpool_depth_bounds(void);

typedef struct pqpool_depth_hist {
	uint64_t count;                         /* samples */
	uint64_t sum;                           /* their total, statements */
	uint64_t buckets[PQPOOL_DEPTH_BUCKETS]; /* per bucket, not cumulative */
} pqpool_depth_hist;

/* The upper bound of the bucket holding quantile q (0 < q < 1), the
 * largest finite bound for the +Inf bucket; 0 when empty. */
PQPOOL_API int pqpool_depth_quantile(const pqpool_depth_hist *h, double q);

/* Reasons a connection was closed, for the closed-by-reason counters. */
typedef enum pqpool_close_reason {
	PQPOOL_CLOSE_IDLE = 0,    /* idle past idle_timeout_ms */
	PQPOOL_CLOSE_LIFETIME,    /* past its maximum lifetime */
	PQPOOL_CLOSE_BROKEN,      /* found dead, or broke while leased */
	PQPOOL_CLOSE_UNCLEAN,     /* released busy, or rollback failed */
	PQPOOL_CLOSE_DISCARDED,   /* pqpool_discard() */
	PQPOOL_CLOSE_POOL_CLOSED, /* pqpool_close() */
	PQPOOL_CLOSE_READ_ONLY,   /* its server stopped taking writes (writers
	                           * need a primary: see target_session_attrs) */
	PQPOOL_CLOSE_REASONS
} pqpool_close_reason;

PQPOOL_API const char *pqpool_close_reason_text(pqpool_close_reason r);

/* Error classes counted separately; anything else counts as "other". */
#define PQPOOL_ERROR_CLASSES 12

/*
 * A snapshot of the pool. The connection counts come from one pass over the
 * pool's slots, so total == active + idle always holds (connections being
 * opened count as active: they are taken by a caller).
 */
typedef struct pqpool_stats {
	int total, active, idle, waiting, max, min;
	double utilization; /* active / max * 100 */
	bool closed;

	uint64_t acquires; /* successful acquires */
	uint64_t acquire_timeouts;
	uint64_t acquire_errors; /* connect failures seen by acquirers */
	uint64_t opened;         /* connections opened */
	uint64_t connect_failures;
	uint64_t closed_by[PQPOOL_CLOSE_REASONS];
	uint64_t queries; /* through pqpool_exec / query / health */
	uint64_t query_errors;
	uint64_t query_timeouts; /* cancelled at the client deadline */
	uint64_t rollbacks;      /* transactions rolled back on release */
	uint64_t retries;        /* extra attempts made by pqpool_run/query */
	uint64_t lease_warnings;

	/* errors by SQLSTATE class; class[i] is "08", "23", ..., or "other";
	 * client-side failures without SQLSTATE count as "client". */
	char error_class[PQPOOL_ERROR_CLASSES][8];
	uint64_t errors_by_class[PQPOOL_ERROR_CLASSES];

	/* over the recent window (window_s seconds) of queries */
	double window_s;
	uint64_t window_queries;
	double avg_response_ms;
	double error_rate; /* percent */

	pqpool_hist wait;    /* time to acquire, all acquires */
	pqpool_hist query;   /* query durations */
	pqpool_hist connect; /* time to open a connection */

	int64_t last_activity_ms; /* wall clock of the last acquire/release */
	int64_t started_ms;       /* wall clock when the pool opened */

	/* Pipelining: at each Sync sent, the statements in flight on that
	 * connection (this group's included); for each pipelined statement,
	 * the time it waited behind earlier groups on its connection (from its
	 * send until the group before it was read to its Sync; 0 when nothing
	 * was ahead). Both empty with DB_PIPELINE=off. */
	pqpool_depth_hist pipeline_depth;
	pqpool_hist pipeline_wait;

	/* with several hosts, each of them (pqpool_hosts_get); 0 otherwise */
	int nhosts;
	pqpool_host hosts[PQPOOL_MAX_HOSTS];
} pqpool_stats;

/* Fills *out with a snapshot. Thread-safe, non-blocking (no I/O). */
PQPOOL_API int pqpool_stats_get(pqpool *pool, pqpool_stats *out);

/* The specification's getPoolStatus(). */
typedef struct pqpool_pool_status {
	bool healthy;            /* error_rate < 5 */
	const char *utilization; /* "low", "medium", "high" or "critical" */
	int n_recommendations;
	const char *recommendations[4]; /* static strings */
} pqpool_pool_status;

/* Derives the specification's pool status from a snapshot. Pure. */
PQPOOL_API void pqpool_pool_status_of(const pqpool_stats *st, pqpool_pool_status *out);

/*
 * Renders the specification's JSON bodies. pqpool_render_metrics_json():
 *   {"metrics":{"totalConnections","activeConnections","idleConnections",
 *               "waitingConnections","poolUtilization" (percent),
 *               "averageResponseTime" (ms),"errorRate" (percent),
 *               "lastActivity" (ISO 8601)},
 *    "status":{"healthy","utilization","recommendations":[...]},
 *    "timestamp":...}
 * with the status of pqpool_pool_status_of(); pqpool_render_health_json():
 *   {"status":"healthy"|"degraded"|"unhealthy",
 *    "data":{"responseTime" (ms),"connectionCount","lastCheck",
 *            "error" (only when there is one)}}.
 * now_ms is the wall clock to print as "timestamp" (0 = now). Returns an
 * owned NUL-terminated string (free() it), or NULL on allocation failure.
 * Pure: no pool access.
 */
PQPOOL_API char *pqpool_render_metrics_json(const pqpool_stats *st, int64_t now_ms);
PQPOOL_API char *pqpool_render_health_json(const pqpool_health *h);

/*
 * Renders everything else the snapshot holds, beyond the specification's
 * shape: {"pool":{max, min, closed, startedAt, counters (closed by reason
 * included), errorsByClass, window, wait / query / connect with count,
 * mean, p50, p95, p99 in ms}, "timestamp":...}. Owned string, or NULL on
 * allocation failure. Pure.
 */
PQPOOL_API char *pqpool_render_pool_json(const pqpool_stats *st, int64_t now_ms);

/*
 * Renders the snapshot in the Prometheus text exposition format 0.0.4 with
 * db_client_connection_* names; durations in seconds. Returns an owned
 * string (free() it), or NULL on allocation failure. Pure.
 */
PQPOOL_API char *pqpool_render_prometheus(const pqpool_stats *st);

/* ------------------------------------------------------------------ */
/* Retry helpers (pure; exposed for hosts with their own loops)         */
/* ------------------------------------------------------------------ */

/* True when a failure with this SQLSTATE may succeed if tried again:
 * class 08 except 08007, 57P01, 57P02, 57P03, 53300, 40001, 40P01.
 * sqlstate may be NULL (false). */
PQPOOL_API bool pqpool_sqlstate_retryable(const char *sqlstate);

/*
 * Backoff before attempt number `attempt` + 1 (attempt >= 1 failed): a
 * uniformly random delay in [0, min(max_ms, base_ms * 2^(attempt-1))]
 * ("full jitter"). rnd is a random 64-bit value supplied by the caller.
 */
PQPOOL_API int pqpool_backoff_ms(int attempt, int base_ms, int max_ms, uint64_t rnd);

#ifdef __cplusplus
}
#endif
#endif /* PQPOOL_H */
