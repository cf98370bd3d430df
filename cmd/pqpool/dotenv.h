/* dotenv.h — the .env.local loader: KEY=VALUE settings the real environment overrides. */
#ifndef PQPOOL_CLI_DOTENV_H
#define PQPOOL_CLI_DOTENV_H

#include <stdbool.h>
#include <stddef.h>

/* The settings read from one file, kept in the loader's own table: the
 * process environment is never modified. */
typedef struct dotenv_file dotenv_file;

/* Where dotenv_lookup() finds a name. */
typedef enum dotenv_source {
	DOTENV_UNSET,        /* nowhere (or empty): the default applies */
	DOTENV_FROM_ENVIRON, /* the process environment */
	DOTENV_FROM_FILE     /* the file, the environment not having it */
} dotenv_source;

/*
 * Reads the file at path into *out. A missing file gives an empty table.
 * Lines are `KEY=VALUE`, `export KEY=VALUE`, `# comments` or blank; the value
 * may be wrapped in single or double quotes, taken literally (no escapes, no
 * expansion); unquoted, a " #" starts a comment. A later line for the same
 * name wins. A malformed line is skipped and recorded as a warning naming
 * path:line but never the value (it may be a password).
 * Returns 0, or -1 with errno set when the file exists but cannot be read or
 * memory runs out (then *out is NULL). *out is owned: dotenv_free() it.
 */
int dotenv_load(const char *path, dotenv_file **out);

/*
 * The same for len bytes of text already in memory (NUL bytes included, as
 * a file may hold them); path only names it in warnings. Returns 0, or -1
 * with errno set when memory runs out (then *out is NULL).
 */
int dotenv_parse(const char *path, const char *text, size_t len, dotenv_file **out);

/* Frees the table. f may be NULL. */
void dotenv_free(dotenv_file *f);

/* The path given to dotenv_load(). Borrowed from f. */
const char *dotenv_path(const dotenv_file *f);

/* The value the file gives name, or NULL. Borrowed from f. */
const char *dotenv_get(const dotenv_file *f, const char *name);

/* Warnings about skipped lines ("path:3: ..."), in file order. Borrowed. */
size_t dotenv_warning_count(const dotenv_file *f);
const char *dotenv_warning(const dotenv_file *f, size_t i);

/*
 * A pqpool_getenv_fn: the real environment first (a variable set there wins
 * even when empty, as a shell's `VAR=` is a deliberate choice), then the
 * file's value. arg is the dotenv_file (may be NULL: environment only).
 */
const char *dotenv_lookup(void *arg, const char *name);

/* Where dotenv_lookup(f, name) gets its value; an empty value counts as unset,
 * as it does for pqpool_config_from_env(). */
dotenv_source dotenv_source_of(const dotenv_file *f, const char *name);

/* True when name matches [A-Za-z_][A-Za-z0-9_]* (len bytes of it). */
bool dotenv_name_valid(const char *name, size_t len);

#endif
