/* error.c — status texts and the thread-local message of the last failure. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

static __thread char tl_msg[PQPOOL__ERRLEN];
static __thread char tl_code[6];

const char *pqpool_strstatus(int status)
{
	switch (status) {
	case PQPOOL_OK:
		return "ok";
	case PQPOOL_EINVAL:
		return "invalid argument or configuration";
	case PQPOOL_ENOMEM:
		return "out of memory";
	case PQPOOL_ETIMEDOUT:
		return "timed out";
	case PQPOOL_ECLOSED:
		return "pool closed";
	case PQPOOL_ECONNECT:
		return "could not connect to the database";
	case PQPOOL_EQUERY:
		return "the database reported an error";
	case PQPOOL_ECONNLOST:
		return "connection to the database lost";
	case PQPOOL_ECALLBACK:
		return "the caller's function failed";
	case PQPOOL_EBUSY:
		return "leases still out";
	case PQPOOL_EAGAIN:
		return "would have to wait";
	default:
		return "unknown status";
	}
}

const char *pqpool_errmsg(void)
{
	return tl_msg;
}

const char *pqpool_errcode(void)
{
	return tl_code;
}

void pqpool__ok(void)
{
	tl_msg[0] = '\0';
	tl_code[0] = '\0';
}

static int vfail(int status, const char *sqlstate, const char *fmt, va_list ap)
{
	vsnprintf(tl_msg, sizeof tl_msg, fmt, ap);
	if (sqlstate && strlen(sqlstate) == 5)
		memcpy(tl_code, sqlstate, 6);
	else
		tl_code[0] = '\0';
	return status;
}

int pqpool__fail(int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(status, NULL, fmt, ap);
	va_end(ap);
	return status;
}

int pqpool__fail_code(int status, const char *sqlstate, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(status, sqlstate, fmt, ap);
	va_end(ap);
	return status;
}

void pqpool__trim_msg(const char *msg, char *out, size_t outlen)
{
	size_t n;
	if (outlen == 0)
		return;
	if (!msg)
		msg = "";
	snprintf(out, outlen, "%s", msg);
	n = strlen(out);
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' '))
		out[--n] = '\0';
	/* libpq messages may span lines (DETAIL, HINT); keep them on one */
	for (size_t i = 0; i < n; i++)
		if (out[i] == '\n' || out[i] == '\t')
			out[i] = ' ';
}
