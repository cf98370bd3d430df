/* sbuf.c — a growable string builder that fails once, at the end. */
#include "sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool reserve(pqc_sbuf *b, size_t extra)
{
	size_t cap;
	char *p;
	if (b->failed)
		return false;
	if (b->len + extra + 1 <= b->cap)
		return true;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra + 1)
		cap *= 2;
	if (!(p = realloc(b->p, cap))) {
		b->failed = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

void pqc_sbuf_putn(pqc_sbuf *b, const char *s, size_t n)
{
	if (!reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void pqc_sbuf_puts(pqc_sbuf *b, const char *s)
{
	pqc_sbuf_putn(b, s, strlen(s));
}

void pqc_sbuf_putc(pqc_sbuf *b, char c)
{
	pqc_sbuf_putn(b, &c, 1);
}

void pqc_sbuf_printf(pqc_sbuf *b, const char *fmt, ...)
{
	char small[128];
	va_list ap;
	int n;
	va_start(ap, fmt);
	n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = true;
		return;
	}
	if ((size_t)n < sizeof small) {
		pqc_sbuf_putn(b, small, (size_t)n);
		return;
	}
	if (!reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

char *pqc_sbuf_finish(pqc_sbuf *b)
{
	char *p;
	if (!b->failed && !b->p)
		pqc_sbuf_putn(b, "", 0);
	if (b->failed) {
		pqc_sbuf_free(b);
		return NULL;
	}
	p = b->p;
	*b = (pqc_sbuf)PQC_SBUF_INIT;
	return p;
}

void pqc_sbuf_free(pqc_sbuf *b)
{
	free(b->p);
	*b = (pqc_sbuf)PQC_SBUF_INIT;
}
