/* stmtcache.c — the statements prepared on one connection: an open-addressing
 * table keyed by the SQL text, made on first use, freed with the connection. */
#include "stmtcache.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pqpool.h"

/* twice the most entries: probe chains stay short */
#define SLOTS 256

typedef struct stmt {
	uint64_t hash;
	char *sql;   /* owned; NULL = free entry */
	unsigned id; /* the statement is named pqpool_<id> */
} stmt;

struct pqpool__stmts {
	int n;
	unsigned next_id;
	stmt e[SLOTS];
};

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

/* The entry for sql, or the free entry where it would go (sql == NULL). At
 * most PQPOOL__STMT_MAX of SLOTS entries are used, so there is always one. */
static stmt *lookup(pqpool__stmts *t, const char *sql, uint64_t h)
{
	for (unsigned i = 0;; i++) {
		stmt *e = &t->e[(h + i) & (SLOTS - 1)];
		if (!e->sql || (e->hash == h && strcmp(e->sql, sql) == 0))
			return e;
	}
}

int pqpool__stmt_find(pqpool__stmts **tab, const char *sql,
                      char name[PQPOOL__STMT_NAMELEN])
{
	stmt *e;
	if (!*tab && !(*tab = calloc(1, sizeof **tab)))
		return PQPOOL_ENOMEM;
	e = lookup(*tab, sql, fnv1a(sql));
	if (e->sql) {
		snprintf(name, PQPOOL__STMT_NAMELEN, "pqpool_%u", e->id);
		return PQPOOL__STMT_CACHED;
	}
	if ((*tab)->n >= PQPOOL__STMT_MAX)
		return PQPOOL__STMT_UNNAMED;
	snprintf(name, PQPOOL__STMT_NAMELEN, "pqpool_%u", (*tab)->next_id + 1);
	return PQPOOL__STMT_PREPARE;
}

int pqpool__stmt_add(pqpool__stmts *t, const char *sql)
{
	uint64_t h = fnv1a(sql);
	stmt *e = lookup(t, sql, h);
	char *copy;
	if (e->sql)
		return PQPOOL_OK;
	if (!(copy = strdup(sql)))
		return PQPOOL_ENOMEM;
	e->hash = h;
	e->sql = copy;
	e->id = ++t->next_id;
	t->n++;
	return PQPOOL_OK;
}

void pqpool__stmt_forget(pqpool__stmts *t, const char *sql)
{
	stmt *gone;
	unsigned i;
	if (!t || !(gone = lookup(t, sql, fnv1a(sql)))->sql)
		return;
	i = (unsigned)(gone - t->e);
	free(gone->sql);
	gone->sql = NULL;
	t->n--;
	/* re-insert the rest of the probe chain, which may have passed here */
	for (unsigned k = 1; k < SLOTS; k++) {
		stmt *e = &t->e[(i + k) & (SLOTS - 1)], moved;
		if (!e->sql)
			break;
		moved = *e;
		e->sql = NULL;
		*lookup(t, moved.sql, moved.hash) = moved;
	}
}

void pqpool__stmts_free(pqpool__stmts *t)
{
	if (!t)
		return;
	for (int i = 0; i < SLOTS; i++)
		free(t->e[i].sql);
	free(t);
}
