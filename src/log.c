/* log.c — the host's log sink, with the pool's secret kept out of it. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

#include "secret.h"

void pqpool__log(const pqpool__logger *lg, pqpool_log_level lvl, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	if (!lg->fn)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	pqpool__scrub(buf, lg->secret);
	lg->fn(lg->arg, lvl, buf);
}
