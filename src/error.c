/* error.c — status texts and names, and the thread-local message of the last
 * failure. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static __thread char tl_msg[PQPOOL__ERRLEN];
static __thread char tl_code[6];

static const struct {
	const char *name, *text;
} statuses[] = {
        /* indexed by -status */
        {"OK", "ok"},
        {"EINVAL", "invalid argument or configuration"},
        {"ENOMEM", "out of memory"},
        {"ETIMEDOUT", "timed out"},
        {"ECLOSED", "pool closed"},
        {"ECONNECT", "could not connect to the database"},
        {"EQUERY", "the database reported an error"},
        {"ECONNLOST", "connection to the database lost"},
        {"ECALLBACK", "the caller's function failed"},
        {"EBUSY", "leases still out"},
        {"EAGAIN", "would have to wait"},
};
#define NSTATUSES ((int)(sizeof statuses / sizeof statuses[0]))

const char *pqpool_status_text(int status)
{
	return status <= 0 && status > -NSTATUSES ? statuses[-status].text
	                                          : "unknown status";
}

const char *pqpool_status_name(int status)
{
	return status <= 0 && status > -NSTATUSES ? statuses[-status].name : "UNKNOWN";
}

const char *pqpool_strstatus(int status)
{
	return pqpool_status_text(status);
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

static void vfail(const char *sqlstate, const char *fmt, va_list ap)
{
	vsnprintf(tl_msg, sizeof tl_msg, fmt, ap);
	if (sqlstate && strlen(sqlstate) == 5)
		memcpy(tl_code, sqlstate, 6);
	else
		tl_code[0] = '\0';
}

int pqpool__fail(int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(NULL, fmt, ap);
	va_end(ap);
	return status;
}

int pqpool__fail_code(int status, const char *sqlstate, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(sqlstate, fmt, ap);
	va_end(ap);
	return status;
}

void pqpool__trim_msg(const char *msg, char *out, size_t outlen)
{
	size_t n;
	if (outlen == 0)
		return;
	snprintf(out, outlen, "%s", msg ? msg : "");
	n = strlen(out);
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' '))
		out[--n] = '\0';
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
			out[i] = ' ';
}

void pqpool__error_save(pqpool__saved_error *e)
{
	memcpy(e->msg, tl_msg, sizeof e->msg);
	memcpy(e->code, tl_code, sizeof e->code);
}

void pqpool__error_restore(const pqpool__saved_error *e)
{
	memcpy(tl_msg, e->msg, sizeof tl_msg);
	memcpy(tl_code, e->code, sizeof tl_code);
}
