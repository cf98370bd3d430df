/* log.c — the CLI's and the library's events as single lines on stderr, text or JSON. */
#include "log.h"

#include "clock.h"
#include "utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Set once by log_configure() before any thread starts; read-only after. */
static pqpool_log_level min_level = PQPOOL_LOG_INFO;
static log_format format = LOG_FORMAT_TEXT;

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const char *const level_labels[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};

/* JSON_REAL_PRECISION(9): durations print as 0.52, not 0.52000000000000002 */
#define DUMP_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(9))

const char *log_level_name(pqpool_log_level level)
{
	return level >= PQPOOL_LOG_DEBUG && level <= PQPOOL_LOG_ERROR ? level_names[level]
	                                                              : "error";
}

pqpool_log_level log_min_level(void)
{
	return min_level;
}

log_format log_get_format(void)
{
	return format;
}

bool log_enabled(pqpool_log_level level)
{
	return level >= min_level;
}

/* A bad value quoted in an error message, made harmless for a terminal. */
static void quote_value(const char *v, char *out, size_t outlen)
{
	pqc_shown(v, strlen(v), 40, out, outlen);
}

int log_configure(pqpool_getenv_fn lookup, void *arg, char *err, size_t errlen)
{
	const char *lv = lookup ? lookup(arg, "LOG_LEVEL") : getenv("LOG_LEVEL");
	const char *fv = lookup ? lookup(arg, "LOG_FORMAT") : getenv("LOG_FORMAT");
	pqpool_log_level level = PQPOOL_LOG_INFO;
	log_format fmt = LOG_FORMAT_TEXT;
	char shown[48];

	if (lv && *lv) {
		int i = 0;

		while (i < 4 && strcasecmp(lv, level_names[i]) != 0)
			i++;
		if (i == 4) {
			quote_value(lv, shown, sizeof(shown));
			snprintf(err, errlen,
			         "LOG_LEVEL=\"%s\": expected debug, info, warn or error",
			         shown);
			return -1;
		}
		level = (pqpool_log_level)i;
	}
	if (fv && *fv) {
		if (strcasecmp(fv, "json") == 0) {
			fmt = LOG_FORMAT_JSON;
		} else if (strcasecmp(fv, "text") != 0) {
			quote_value(fv, shown, sizeof(shown));
			snprintf(err, errlen, "LOG_FORMAT=\"%s\": expected text or json",
			         shown);
			return -1;
		}
	}
	min_level = level;
	format = fmt;
	return 0;
}

/* The message on one line: libpq's texts end with (and may contain) line
 * breaks, and a control character must not reach a terminal. Owned. */
static char *one_line(const char *msg, bool ascii_only)
{
	char *s = strdup(msg ? msg : "");
	size_t n;

	if (!s)
		return NULL;
	for (unsigned char *p = (unsigned char *)s; *p; p++) {
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
		else if (*p < 0x20 || *p == 0x7f || (ascii_only && *p >= 0x80))
			*p = '?';
	}
	for (n = strlen(s); n > 0 && s[n - 1] == ' ';)
		s[--n] = '\0';
	return s;
}

/* A JSON string of msg; a text that is not UTF-8 (a server message in
 * another encoding) keeps its ASCII part rather than being lost. */
static json_t *json_text(const char *msg)
{
	char *line = one_line(msg, false);
	json_t *j = line ? json_string(line) : NULL;

	if (line && !j) {
		free(line);
		line = one_line(msg, true);
		j = line ? json_string(line) : NULL;
	}
	free(line);
	return j;
}

static bool needs_quotes(const char *s)
{
	if (*s == '\0')
		return true;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f)
			return true;
	}
	return false;
}

/* key=value pairs of a text line; strings are quoted (JSON-style) only
 * when they would not read back as one token. */
static void text_fields(FILE *out, json_t *fields)
{
	const char *key;
	json_t *v;

	json_object_foreach(fields, key, v)
	{
		char *dumped = NULL;

		fprintf(out, " %s=", key);
		if (json_is_string(v) && !needs_quotes(json_string_value(v))) {
			fputs(json_string_value(v), out);
			continue;
		}
		dumped = json_dumps(v, DUMP_FLAGS);
		fputs(dumped ? dumped : "?", out);
		free(dumped);
	}
}

static char *render_text(pqpool_log_level level, const char *ts, const char *msg,
                         json_t *fields)
{
	char *buf = NULL, *line = one_line(msg, false);
	size_t len = 0;
	FILE *out;

	if (!line)
		return NULL;
	out = open_memstream(&buf, &len);
	if (!out) {
		free(line);
		return NULL;
	}
	fprintf(out, "%s %s %s", ts, level_labels[level], line);
	if (json_is_object(fields))
		text_fields(out, fields);
	fputc('\n', out);
	free(line);
	if (fclose(out) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static char *render_json(pqpool_log_level level, const char *ts, const char *msg,
                         json_t *fields)
{
	json_t *obj = json_object();
	char *dumped, *line = NULL;

	if (!obj)
		return NULL;
	json_object_set_new(obj, "ts", json_string(ts));
	json_object_set_new(obj, "level", json_string(level_names[level]));
	json_object_set_new(obj, "msg", json_text(msg));
	if (json_is_object(fields))
		json_object_update_missing(obj, fields);
	dumped = json_dumps(obj, DUMP_FLAGS);
	json_decref(obj);
	if (dumped && asprintf(&line, "%s\n", dumped) < 0)
		line = NULL;
	free(dumped);
	return line;
}

void log_event(pqpool_log_level level, const char *msg, json_t *fields)
{
	char ts[PQC_ISO8601_LEN];
	char *line;

	if (level < PQPOOL_LOG_DEBUG || level > PQPOOL_LOG_ERROR)
		level = PQPOOL_LOG_ERROR;
	if (!log_enabled(level))
		return;
	pqc_iso8601(pqc_wall_ms(), ts);
	line = format == LOG_FORMAT_JSON ? render_json(level, ts, msg, fields)
	                                 : render_text(level, ts, msg, fields);
	flockfile(stderr);
	if (line)
		fputs(line, stderr);
	else /* out of memory: at least say that a line was lost */
		fprintf(stderr, "%s %s (log line lost: out of memory)\n", ts,
		        level_labels[level]);
	fflush(stderr);
	funlockfile(stderr);
	free(line);
}

void log_msg(pqpool_log_level level, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_event(level, buf, NULL);
}

void log_pqpool(void *arg, pqpool_log_level level, const char *msg)
{
	(void)arg;
	log_event(level, msg, NULL);
}
