/* fuzz_config.c — the environment → configuration path, and the .env.local parser.
 *
 * The input is a set of NAME=value lines (split at the first '='), served to
 * pqpool_config_from_env() through its lookup callback; the same bytes are also
 * read as a .env.local text by dotenv_parse(). Beyond "no crash", it checks:
 * - a configuration from_env accepted passes pqpool_config_validate(), can be
 *   masked and turned into connection parameters, and with several hosts
 *   into each host's;
 * - an error message is one line, without control characters;
 * - when POSTGRES_PASSWORD is the only value looked up that holds a 'Q' (the
 *   marker of a secret here), no 'Q' reaches the masked URL, nor an error
 *   (but in the names DB_QUERY_TIMEOUT, DB_HEALTH_QUERY and the word SQL);
 * - a .env.local warning is "path:N: [NAME: ]reason; line ignored" and so
 *   never repeats a value.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dotenv.h"
#include "conninfo.h"
#include "error.h"
#include "pqpool.h"

#define MAX_VARS 64
#define ENV_PATH ".env.local"

typedef struct vars {
	const char *name[MAX_VARS], *value[MAX_VARS];
	int n;
	bool q_elsewhere; /* a value other than POSTGRES_PASSWORD's, looked up, has a 'Q'
	                   */
	bool pw_set;
} vars;

static const char *lookup(void *arg, const char *name)
{
	vars *v = arg;

	/* the last line for a name wins, as in a .env file */
	for (int i = v->n - 1; i >= 0; i--) {
		if (strcmp(v->name[i], name) != 0)
			continue;
		if (strcmp(name, "POSTGRES_PASSWORD") == 0)
			v->pw_set = v->value[i][0] != '\0';
		else if (strchr(v->value[i], 'Q'))
			v->q_elsewhere = true;
		return v->value[i];
	}
	return NULL;
}

static void check_one_line(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			__builtin_trap();
}

static void no_q(const char *s)
{
	if (strchr(s, 'Q'))
		__builtin_trap();
}

/* No 'Q' in an error but those of our own words (DB_QUERY_TIMEOUT,
 * DB_HEALTH_QUERY, "an SQL statement"). */
static void no_q_in_error(const char *msg)
{
	static const char *const ours[] = {"QUERY", "SQL"};
	char copy[PQPOOL__ERRLEN + 1];

	snprintf(copy, sizeof copy, "%s", msg);
	for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++)
		for (char *p = copy; (p = strstr(p, ours[i]));)
			memset(p, '-', strlen(ours[i]));
	no_q(copy);
}

static void check_config(char *text)
{
	pqpool_config cfg;
	pqpool__params params;
	vars v;
	char err[PQPOOL__ERRLEN], masked[1024];
	int rc;

	memset(&v, 0, sizeof v);
	for (char *line = text; line && v.n < MAX_VARS;) {
		char *next = strchr(line, '\n'), *eq;

		if (next)
			*next++ = '\0';
		if ((eq = strchr(line, '='))) {
			*eq = '\0';
			v.name[v.n] = line;
			v.value[v.n++] = eq + 1;
		}
		line = next;
	}

	rc = pqpool_config_from_env(&cfg, lookup, &v, err, sizeof err);
	/* the real environment is never consulted: only our lookup */
	if (rc != PQPOOL_OK) {
		if (rc != PQPOOL_EINVAL && rc != PQPOOL_ENOMEM)
			__builtin_trap();
		check_one_line(err);
		if (v.pw_set && !v.q_elsewhere) {
			no_q_in_error(err);
			no_q_in_error(pqpool_errmsg());
		}
		/* cleared on failure: nothing owned */
		if (cfg.priv_ || cfg.conninfo)
			__builtin_trap();
		return;
	}
	if (err[0])
		__builtin_trap();
	if (pqpool_config_validate(&cfg, err, sizeof err) != PQPOOL_OK)
		__builtin_trap(); /* from_env accepted what validate refuses */
	rc = pqpool_mask_conninfo(cfg.conninfo, masked, sizeof masked);
	if (rc < 0)
		__builtin_trap();
	if (v.pw_set && !v.q_elsewhere && (size_t)rc < sizeof masked)
		no_q(masked);
	if (pqpool__params_build(&cfg, &params, err, sizeof err) != PQPOOL_OK)
		__builtin_trap();
	if (v.pw_set && !v.q_elsewhere)
		no_q(params.masked);
	/* several hosts: each one's parameters, masked like the whole */
	if (params.nhosts < 1)
		__builtin_trap();
	for (int i = 0; params.nhosts > 1 && i < params.nhosts && i < PQPOOL_MAX_HOSTS;
	     i++) {
		pqpool__params hp;
		if (pqpool__params_for_host(&params, i, &hp) != PQPOOL_OK)
			__builtin_trap();
		if (v.pw_set && !v.q_elsewhere)
			no_q(hp.masked);
		pqpool__params_free(&hp);
	}
	pqpool__params_free(&params);
	pqpool_config_clear(&cfg);
}

static bool known_reason(const char *s, size_t n)
{
	static const char *const reasons[] = {
	        "contains a NUL byte",
	        "expected NAME=VALUE, NAME made of letters, digits and _",
	        "unterminated quote (values cannot span lines)",
	        "unexpected text after the closing quote",
	};
	for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
		if (strlen(reasons[i]) == n && memcmp(reasons[i], s, n) == 0)
			return true;
	return false;
}

/* "path:N: [NAME: ]reason; line ignored", nothing else. */
static void check_warning(const char *w)
{
	static const char tail[] = "; line ignored";
	size_t plen = strlen(ENV_PATH), n = strlen(w), digits, name;
	const char *p;

	if (strncmp(w, ENV_PATH ":", plen + 1) != 0 || n < sizeof tail - 1 ||
	    strcmp(w + n - (sizeof tail - 1), tail) != 0)
		__builtin_trap();
	p = w + plen + 1;
	digits = strspn(p, "0123456789");
	if (digits == 0 || strncmp(p + digits, ": ", 2) != 0)
		__builtin_trap();
	p += digits + 2;
	n = (size_t)(w + n - (sizeof tail - 1) - p);
	if (known_reason(p, n))
		return;
	name = strspn(p,
	              "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_");
	if (!dotenv_name_valid(p, name) || strncmp(p + name, ": ", 2) != 0 ||
	    !known_reason(p + name + 2, n - name - 2))
		__builtin_trap();
}

static void check_env_file(const uint8_t *data, size_t size)
{
	dotenv_file *f;

	if (dotenv_parse(ENV_PATH, (const char *)data, size, &f) != 0)
		return; /* out of memory */
	if (strcmp(dotenv_path(f), ENV_PATH) != 0)
		__builtin_trap();
	for (size_t i = 0; i < dotenv_warning_count(f); i++)
		check_warning(dotenv_warning(f, i));
	if (dotenv_warning(f, dotenv_warning_count(f)) != NULL)
		__builtin_trap();
	/* a few names the service reads: a value, when there is one, is a string */
	static const char *const names[] = {"DATABASE_URL", "POSTGRES_PASSWORD",
	                                    "DB_POOL_MAX", "PORT", "A"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		const char *val = dotenv_get(f, names[i]);
		if (val && strchr(val, '\n'))
			__builtin_trap(); /* a value never spans lines */
	}
	dotenv_free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;

	if (size > 8192)
		return 0;
	check_env_file(data, size);
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	check_config(text);
	free(text);
	return 0;
}
