/* classify.c — the leading keyword of a statement, and whether it may be
 * pipelined. Pure: no libpq, no allocation. */
#include "classify.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

/* Skips blanks, -- line comments and nested block comments. NULL when a
 * block comment does not end. */
static const char *skip_noise(const char *s)
{
	for (;;) {
		while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' ||
		       *s == '\f' || *s == '\v')
			s++;
		if (s[0] == '-' && s[1] == '-') {
			while (*s && *s != '\n')
				s++;
			continue;
		}
		if (s[0] == '/' && s[1] == '*') {
			int depth = 1;

			s += 2;
			while (depth > 0) {
				if (!*s)
					return NULL;
				if (s[0] == '/' && s[1] == '*') {
					depth++;
					s += 2;
				} else if (s[0] == '*' && s[1] == '/') {
					depth--;
					s += 2;
				} else {
					s++;
				}
			}
			continue;
		}
		return s;
	}
}

static bool is_word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '$' || (unsigned char)c >= 0x80;
}

bool pqpool__pipelinable(const char *sql)
{
	static const char *const words[] = {"SELECT", "WITH",   "VALUES", "TABLE",
	                                    "INSERT", "UPDATE", "DELETE"};
	const char *s = sql ? skip_noise(sql) : NULL;
	size_t n = 0;

	if (!s)
		return false;
	while (is_word_char(s[n]))
		n++;
	/* "(SELECT 1)" and other forms start with no word: not pipelined */
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
		if (strlen(words[i]) == n && strncasecmp(s, words[i], n) == 0)
			return true;
	}
	return false;
}
