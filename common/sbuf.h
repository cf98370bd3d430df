/* sbuf.h — a growable string builder that fails once, at the end.
 *
 * After the first failed allocation every append is a no-op and
 * pqc_sbuf_finish() returns NULL, so a caller checks once, when done. The
 * text is always NUL-terminated once anything was appended. */
#ifndef PQC_SBUF_H
#define PQC_SBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct pqc_sbuf {
	char *p; /* owned; NULL until the first append */
	size_t len, cap;
	bool failed;
} pqc_sbuf;

#define PQC_SBUF_INIT                                                                    \
	{                                                                                \
		NULL, 0, 0, false                                                        \
	}

void pqc_sbuf_putn(pqc_sbuf *b, const char *s, size_t n);
void pqc_sbuf_puts(pqc_sbuf *b, const char *s);
void pqc_sbuf_putc(pqc_sbuf *b, char c);
void pqc_sbuf_printf(pqc_sbuf *b, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* Hands the text (owned: free() it) to the caller, "" when nothing was
 * appended; NULL, with everything freed, when an allocation failed. */
char *pqc_sbuf_finish(pqc_sbuf *b);

/* Frees the text and resets b. */
void pqc_sbuf_free(pqc_sbuf *b);

#endif
