/* error.h — the thread-local message and SQLSTATE of the last failure. */
#ifndef PQPOOL_ERROR_H
#define PQPOOL_ERROR_H

#include <stddef.h>

#include "pqpool.h"

/* The longest message kept (longer ones are cut). */
#define PQPOOL__ERRLEN 512

/* Sets this thread's last error (printf-style) and returns status. The text
 * must already be free of secrets. */
int pqpool__fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The same with a SQLSTATE (may be NULL or not five characters: none). */
int pqpool__fail_code(int status, const char *sqlstate, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Clears this thread's last error. */
void pqpool__ok(void);

/* Copies a libpq message into out on one line: trailing line breaks and
 * blanks dropped, other control characters (DETAIL and HINT lines) made
 * spaces. */
void pqpool__trim_msg(const char *msg, char *out, size_t outlen);

/* The caller's error, kept across work that may set another (a release
 * that rolls back or logs): save, do the work, restore. */
typedef struct pqpool__saved_error {
	char msg[PQPOOL__ERRLEN];
	char code[6];
} pqpool__saved_error;
void pqpool__error_save(pqpool__saved_error *e);
void pqpool__error_restore(const pqpool__saved_error *e);

#endif
