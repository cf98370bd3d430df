/* parse.h — strict parsing of settings: integers and booleans. */
#ifndef PQC_PARSE_H
#define PQC_PARSE_H

#include <stdbool.h>

/* Plain decimal digits (no sign, blank, suffix or overflow) within
 * [min, max], max <= INT_MAX. True with *out set, else false and *out
 * untouched. */
bool pqc_parse_int(const char *s, int min, int max, int *out);

/* true/false, 1/0, yes/no, on/off, in any case. True with *out set. */
bool pqc_parse_bool(const char *s, bool *out);

#endif
