/* log.h — one line per event on stderr, as text or JSON (LOG_LEVEL, LOG_FORMAT). */
#ifndef PQPOOL_CLI_LOG_H
#define PQPOOL_CLI_LOG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "pqpool.h"

typedef enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON } log_format;

/*
 * Reads LOG_LEVEL (debug|info|warn|error, default info) and LOG_FORMAT
 * (text|json, default text) through lookup (NULL: getenv); an empty value is
 * the default. Returns 0, or -1 with a message naming the variable in err.
 * The settings are process-wide: call before starting threads.
 */
int log_configure(pqpool_getenv_fn lookup, void *arg, char *err, size_t errlen);

pqpool_log_level log_min_level(void);
log_format log_get_format(void);

/* "debug", "info", "warn", "error". */
const char *log_level_name(pqpool_log_level level);

/* True when events of this level are written. */
bool log_enabled(pqpool_log_level level);

/*
 * Writes one event as one line on stderr, in a single write so that lines
 * of concurrent threads do not interleave. fields (borrowed, may be NULL) is
 * a JSON object of extra fields: merged into the JSON line, or appended as
 * key=value pairs to the text line (an access log: method, path, status,
 * duration_ms). Line breaks in msg become spaces. Thread-safe.
 * The caller makes sure msg and fields hold no password.
 */
void log_event(pqpool_log_level level, const char *msg, json_t *fields);

/* log_event() with a printf-style message and no fields. */
void log_msg(pqpool_log_level level, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* A pqpool_log_fn for pqpool_config.log_fn; arg is unused. */
void log_pqpool(void *arg, pqpool_log_level level, const char *msg);

#endif
