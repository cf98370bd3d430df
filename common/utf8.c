/* utf8.c — UTF-8 well-formedness, and text made safe to show. */
#include "utf8.h"

#include <stdbool.h>
#include <string.h>

size_t pqc_utf8_len(const unsigned char *s, size_t avail)
{
	unsigned char c, lo = 0x80, hi = 0xBF; /* range of the second byte */
	size_t n;
	if (avail == 0)
		return 0;
	c = s[0];
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else {
		return 0;
	}
	if (avail < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if ((s[i] & 0xC0) != 0x80)
			return 0;
	return n;
}

size_t pqc_utf8_start(const char *s, size_t i)
{
	while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80)
		i--;
	return i;
}

void pqc_utf8_clean(pqc_sbuf *out, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < len;) {
		size_t n = pqc_utf8_len(u + i, len - i);
		if (n == 0 || u[i] == 0) {
			pqc_sbuf_puts(out, "\xEF\xBF\xBD");
			i++;
		} else {
			pqc_sbuf_putn(out, s + i, n);
			i += n;
		}
	}
}

static char *shown(const char *s, size_t len, size_t max, char *out, size_t outlen,
                   bool keep_controls)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t o = 0, i = 0;
	if (outlen < PQC_SHOWN_EXTRA) {
		if (outlen > 0)
			out[0] = '\0';
		return out;
	}
	if (max > outlen - PQC_SHOWN_EXTRA)
		max = outlen - PQC_SHOWN_EXTRA;
	while (i < len) {
		size_t n = pqc_utf8_len(u + i, len - i);
		if (o + (n ? n : 1) > max) {
			strcpy(out + o, "...");
			return out;
		}
		if (!keep_controls && n == 1 && (u[i] < 0x20 || u[i] == 0x7f))
			n = 0;
		if (n) {
			memcpy(out + o, s + i, n);
			o += n;
			i += n;
		} else {
			out[o++] = '?';
			i++;
		}
	}
	out[o] = '\0';
	return out;
}

char *pqc_shown(const char *s, size_t len, size_t max, char *out, size_t outlen)
{
	return shown(s, len, max, out, outlen, false);
}

char *pqc_shown_json(const char *s, size_t len, size_t max, char *out, size_t outlen)
{
	return shown(s, len, max, out, outlen, true);
}
