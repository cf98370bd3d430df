/* utf8.h — UTF-8 well-formedness, and text made safe to show. */
#ifndef PQC_UTF8_H
#define PQC_UTF8_H

#include <stddef.h>

#include "sbuf.h"

/* Length of the well-formed UTF-8 sequence at s, of the avail bytes there
 * (RFC 3629, jansson's rules: no overlong forms, surrogates or code points
 * past U+10FFFF), or 0 when it is not one. */
size_t pqc_utf8_len(const unsigned char *s, size_t avail);

/* The start of the sequence byte i of s belongs to (i itself unless it is
 * a continuation byte): where a cut at i leaves whole characters. */
size_t pqc_utf8_start(const char *s, size_t i);

/* Appends the len bytes of s to out with each byte that is not part of a
 * well-formed sequence (and each NUL) replaced by U+FFFD: text a JSON
 * encoder accepts, from text in any encoding. */
void pqc_utf8_clean(pqc_sbuf *out, const char *s, size_t len);

/* Room pqc_shown() needs past max: "..." and the NUL. */
#define PQC_SHOWN_EXTRA 4

/*
 * Copies at most max bytes of the len bytes of s into out (outlen >= max +
 * PQC_SHOWN_EXTRA; less shortens max) for an error message or a log line:
 * cut on a character boundary with "..." added when cut, each byte that is
 * not well-formed UTF-8 and each control character replaced by '?', so that
 * a hostile value can neither flood a line nor forge another. Returns out.
 */
char *pqc_shown(const char *s, size_t len, size_t max, char *out, size_t outlen);

/* pqc_shown() that keeps control characters, for text a JSON encoder will
 * escape (a 404 body repeats a path with its "\n" visible as such). */
char *pqc_shown_json(const char *s, size_t len, size_t max, char *out, size_t outlen);

#endif
