/* dotenv.c — reads .env.local into a private table; lookups prefer the real environment.
 */
#include "dotenv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct env_entry {
	char *name;
	char *value;
} env_entry;

struct dotenv_file {
	char *path;
	env_entry *entries;
	size_t n, cap;
	char **warnings;
	size_t nwarn, capwarn;
};

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_name_start(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool is_name_char(char c)
{
	return is_name_start(c) || (c >= '0' && c <= '9');
}

bool dotenv_name_valid(const char *name, size_t len)
{
	if (len == 0 || !is_name_start(name[0]))
		return false;
	for (size_t i = 1; i < len; i++) {
		if (!is_name_char(name[i]))
			return false;
	}
	return true;
}

static char *skip_blanks(char *p)
{
	while (is_blank(*p))
		p++;
	return p;
}

/* Why a line was skipped. `named` problems are found after "NAME=", so the
 * name is worth reporting; before that the line may be anything, even a
 * stray password, and is not quoted at all. */
typedef struct line_error {
	const char *reason;
	bool named;
} line_error;

/*
 * Parses one line in place. Returns true with *name == NULL for a blank or
 * comment line, true with *name and *value pointing into line for a setting,
 * false with *err filled for a malformed line.
 */
static bool parse_line(char *line, size_t len, char **name, char **value, line_error *err)
{
	char *p, *name_end, *v;

	*name = NULL;
	*value = NULL;
	if (strlen(line) != len) {
		*err = (line_error){"contains a NUL byte", false};
		return false;
	}
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		line[--len] = '\0';

	p = skip_blanks(line);
	if (*p == '\0' || *p == '#')
		return true;
	if (strncmp(p, "export", 6) == 0 && is_blank(p[6]))
		p = skip_blanks(p + 6);

	*name = p;
	while (is_name_char(*p))
		p++;
	name_end = p;
	p = skip_blanks(p);
	if (*p != '=' || !dotenv_name_valid(*name, (size_t)(name_end - *name))) {
		*name = NULL;
		*err = (line_error){
		        "expected NAME=VALUE, NAME made of letters, digits and _", false};
		return false;
	}
	*name_end = '\0';
	p = skip_blanks(p + 1);

	if (*p == '\'' || *p == '"') {
		char *close = strchr(p + 1, *p);

		if (!close) {
			*err = (line_error){
			        "unterminated quote (values cannot span lines)", true};
			return false;
		}
		*close = '\0';
		v = skip_blanks(close + 1);
		if (*v != '\0' && *v != '#') {
			*err = (line_error){"unexpected text after the closing quote",
			                    true};
			return false;
		}
		*value = p + 1;
		return true;
	}

	/* Unquoted: a '#' after a blank starts a comment; elsewhere it is part
	 * of the value, as passwords may contain it. */
	*value = p;
	for (v = p; *v; v++) {
		if (*v == '#' && v > p && is_blank(v[-1])) {
			*v = '\0';
			break;
		}
	}
	for (v = p + strlen(p); v > p && is_blank(v[-1]); v--)
		v[-1] = '\0';
	return true;
}

static int add_warning(dotenv_file *f, unsigned lineno, const char *name,
                       const char *reason)
{
	char *w;
	int n;

	if (f->nwarn == f->capwarn) {
		size_t cap = f->capwarn ? 2 * f->capwarn : 4;
		char **nw = realloc(f->warnings, cap * sizeof(*nw));

		if (!nw)
			return -1;
		f->warnings = nw;
		f->capwarn = cap;
	}
	if (name)
		n = asprintf(&w, "%s:%u: %s: %s; line ignored", f->path, lineno, name,
		             reason);
	else
		n = asprintf(&w, "%s:%u: %s; line ignored", f->path, lineno, reason);
	if (n < 0)
		return -1;
	f->warnings[f->nwarn++] = w;
	return 0;
}

static int set_entry(dotenv_file *f, const char *name, const char *value)
{
	char *copy = strdup(value);

	if (!copy)
		return -1;
	for (size_t i = 0; i < f->n; i++) {
		if (strcmp(f->entries[i].name, name) == 0) {
			free(f->entries[i].value);
			f->entries[i].value = copy;
			return 0;
		}
	}
	if (f->n == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 16;
		env_entry *ne = realloc(f->entries, cap * sizeof(*ne));

		if (!ne) {
			free(copy);
			return -1;
		}
		f->entries = ne;
		f->cap = cap;
	}
	f->entries[f->n].name = strdup(name);
	if (!f->entries[f->n].name) {
		free(copy);
		return -1;
	}
	f->entries[f->n++].value = copy;
	return 0;
}

/* One line as getline(3) gives it: len bytes, '\n' included when present,
 * NUL-terminated, writable. */
static int take_line(dotenv_file *f, unsigned lineno, char *text, size_t len)
{
	char *name, *value;
	line_error err;

	/* editors on some systems start UTF-8 files with a byte order mark */
	if (lineno == 1 && strncmp(text, "\xEF\xBB\xBF", 3) == 0) {
		text += 3;
		len -= 3;
	}
	if (!parse_line(text, len, &name, &value, &err))
		return add_warning(f, lineno, err.named ? name : NULL, err.reason);
	if (name)
		return set_entry(f, name, value);
	return 0;
}

static int read_lines(dotenv_file *f, FILE *in)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	unsigned lineno = 0;
	int rc = 0;

	while (rc == 0 && (len = getline(&line, &cap, in)) >= 0)
		rc = take_line(f, ++lineno, line, (size_t)len);
	if (rc == 0 && ferror(in))
		rc = -1;
	free(line);
	return rc;
}

/* Lines split as getline(3) splits a file, so both entry points read a
 * text alike. */
static int parse_text(dotenv_file *f, const char *text, size_t len)
{
	char *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0;
	int rc = 0;

	while (rc == 0 && len > 0) {
		const char *nl = memchr(text, '\n', len);
		size_t n = nl ? (size_t)(nl - text) + 1 : len;

		if (n + 1 > cap) {
			char *bigger = realloc(line, n + 1);

			if (!bigger) {
				rc = -1;
				break;
			}
			line = bigger;
			cap = n + 1;
		}
		memcpy(line, text, n);
		line[n] = '\0';
		rc = take_line(f, ++lineno, line, n);
		text += n;
		len -= n;
	}
	free(line);
	return rc;
}

static dotenv_file *new_table(const char *path)
{
	dotenv_file *f = calloc(1, sizeof(*f));

	if (f && !(f->path = strdup(path))) {
		free(f);
		f = NULL;
	}
	return f;
}

static int finish_load(dotenv_file *f, int rc, dotenv_file **out)
{
	if (rc != 0) {
		int saved = errno;
		dotenv_free(f);
		errno = saved;
		return -1;
	}
	*out = f;
	return 0;
}

int dotenv_load(const char *path, dotenv_file **out)
{
	dotenv_file *f;
	FILE *in;
	int rc = 0;

	*out = NULL;
	if (!(f = new_table(path)))
		return -1;
	in = fopen(path, "r");
	if (in) {
		rc = read_lines(f, in);
		int saved = errno;
		fclose(in);
		errno = saved;
	} else if (errno != ENOENT) {
		rc = -1;
	}
	return finish_load(f, rc, out);
}

int dotenv_parse(const char *path, const char *text, size_t len, dotenv_file **out)
{
	dotenv_file *f;

	*out = NULL;
	if (!(f = new_table(path)))
		return -1;
	return finish_load(f, parse_text(f, text, len), out);
}

void dotenv_free(dotenv_file *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++) {
		free(f->entries[i].name);
		free(f->entries[i].value);
	}
	for (size_t i = 0; i < f->nwarn; i++)
		free(f->warnings[i]);
	free(f->entries);
	free(f->warnings);
	free(f->path);
	free(f);
}

const char *dotenv_path(const dotenv_file *f)
{
	return f->path;
}

const char *dotenv_get(const dotenv_file *f, const char *name)
{
	for (size_t i = 0; f && i < f->n; i++) {
		if (strcmp(f->entries[i].name, name) == 0)
			return f->entries[i].value;
	}
	return NULL;
}

size_t dotenv_warning_count(const dotenv_file *f)
{
	return f ? f->nwarn : 0;
}

const char *dotenv_warning(const dotenv_file *f, size_t i)
{
	return i < dotenv_warning_count(f) ? f->warnings[i] : NULL;
}

const char *dotenv_lookup(void *arg, const char *name)
{
	const char *v = getenv(name);

	return v ? v : dotenv_get(arg, name);
}

dotenv_source dotenv_source_of(const dotenv_file *f, const char *name)
{
	const char *v = getenv(name);

	if (v)
		return *v ? DOTENV_FROM_ENVIRON : DOTENV_UNSET;
	v = dotenv_get(f, name);
	return v && *v ? DOTENV_FROM_FILE : DOTENV_UNSET;
}
