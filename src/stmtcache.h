/* stmtcache.h — the statements prepared on one connection, by SQL text. */
#ifndef PQPOOL_STMTCACHE_H
#define PQPOOL_STMTCACHE_H

typedef struct pqpool__stmts pqpool__stmts;

/* Most statements kept per connection; past it, statements run unnamed. */
#define PQPOOL__STMT_MAX 128
/* Room for a statement name ("pqpool_<n>"). */
#define PQPOOL__STMT_NAMELEN 32

enum pqpool__stmt_found {
	PQPOOL__STMT_CACHED,  /* prepared already: execute it under name */
	PQPOOL__STMT_PREPARE, /* not yet: pqpool__stmt_add() it, prepare it as name */
	PQPOOL__STMT_UNNAMED  /* the table is full: run it unnamed */
};

/* Looks sql up in *tab, making the table on first use. Returns an
 * enum pqpool__stmt_found with name filled for CACHED and PREPARE, or
 * PQPOOL_ENOMEM. */
int pqpool__stmt_find(pqpool__stmts **tab, const char *sql,
                      char name[PQPOOL__STMT_NAMELEN]);

/* Records sql under the name the last find gave it, before it is prepared,
 * so that the name is never given twice; forget it if the prepare fails.
 * PQPOOL_OK or PQPOOL_ENOMEM. */
int pqpool__stmt_add(pqpool__stmts *tab, const char *sql);

/* Removes sql (a statement the server no longer has, or failed to
 * prepare); its name is not given again. */
void pqpool__stmt_forget(pqpool__stmts *tab, const char *sql);

/* Frees the table (the server's statements go with the connection). tab
 * may be NULL. */
void pqpool__stmts_free(pqpool__stmts *tab);

#endif
