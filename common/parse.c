/* parse.c — strict parsing of settings: integers and booleans. */
#include "parse.h"

#include <stddef.h>
#include <strings.h>

bool pqc_parse_int(const char *s, int min, int max, int *out)
{
	long long v = 0;
	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		/* max <= INT_MAX, so checking after each digit keeps v * 10 + 9
		 * far from overflowing */
		v = v * 10 + (*s - '0');
		if (v > max)
			return false;
	}
	if (v < min)
		return false;
	*out = (int)v;
	return true;
}

bool pqc_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "1", "yes", "on"};
	static const char *const no[] = {"false", "0", "no", "off"};
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}
