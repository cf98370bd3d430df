/* setup.c — .env.local, logging and the validated configuration, in that order. */
#include "setup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "cli.h"

/* "pqpool: <msg>", plus where the variable it names came from when that was
 * .env.local: a user reading DB_POOL_MAX="abc" may not think of the file. */
void setup_report_error(const dotenv_file *env, const char *msg)
{
	char name[64];
	size_t n = 0;

	while (n + 1 < sizeof(name) &&
	       ((msg[n] >= 'A' && msg[n] <= 'Z') || (msg[n] >= '0' && msg[n] <= '9') ||
	        msg[n] == '_')) {
		name[n] = msg[n];
		n++;
	}
	name[n] = '\0';
	if (n > 0 && (msg[n] == '=' || msg[n] == ':') &&
	    dotenv_source_of(env, name) == DOTENV_FROM_FILE)
		fprintf(stderr, "pqpool: %s (set in %s)\n", msg, dotenv_path(env));
	else
		fprintf(stderr, "pqpool: %s\n", msg);
}

int setup_load(setup_ctx *s)
{
	char err[512] = "";
	int rc;

	memset(s, 0, sizeof(*s));
	pqpool_config_init(&s->cfg);
	if (dotenv_load(SETUP_ENV_FILE, &s->env) != 0) {
		fprintf(stderr, "pqpool: cannot read %s: %s\n", SETUP_ENV_FILE,
		        strerror(errno));
		return CLI_EXIT_USAGE;
	}
	if (log_configure(dotenv_lookup, s->env, err, sizeof(err)) != 0) {
		setup_report_error(s->env, err);
		return CLI_EXIT_USAGE;
	}
	for (size_t i = 0; i < dotenv_warning_count(s->env); i++)
		log_msg(PQPOOL_LOG_WARN, "%s", dotenv_warning(s->env, i));

	rc = pqpool_config_from_env(&s->cfg, dotenv_lookup, s->env, err, sizeof(err));
	if (rc != PQPOOL_OK) {
		if (!*err)
			snprintf(err, sizeof(err), "%s",
			         *pqpool_errmsg() ? pqpool_errmsg()
			                          : pqpool_status_text(rc));
		setup_report_error(s->env, err);
		return CLI_EXIT_USAGE;
	}
	s->cfg.log_fn = log_pqpool;
	s->cfg.log_arg = NULL;
	return 0;
}

void setup_free(setup_ctx *s)
{
	pqpool_config_clear(&s->cfg);
	dotenv_free(s->env);
	s->env = NULL;
}

/* The sslmode libpq will use and what set it; NULL mode = libpq's default. */
static const char *effective_sslmode(const setup_ctx *s, const char **from, char *own,
                                     size_t ownlen)
{
	const char *node_env = dotenv_lookup(s->env, "NODE_ENV");
	PQconninfoOption *opts, *o;

	if (s->cfg.ssl_mode) {
		const char *v = dotenv_lookup(s->env, "SSL_MODE");

		*from = v && *v ? "SSL_MODE"
		        : node_env && strcmp(node_env, "production") == 0
		                ? "NODE_ENV=production"
		                : "the default for NODE_ENV other than production";
		return s->cfg.ssl_mode;
	}
	*from = "the connection URL";
	opts = PQconninfoParse(s->cfg.conninfo ? s->cfg.conninfo : "", NULL);
	own[0] = '\0';
	for (o = opts; o && o->keyword; o++)
		if (strcmp(o->keyword, "sslmode") == 0 && o->val)
			snprintf(own, ownlen, "%s", o->val);
	PQconninfoFree(opts);
	if (own[0])
		return own;
	*from = "libpq's default";
	return "prefer";
}

void setup_warn_tls(const setup_ctx *s)
{
	char own[16];
	const char *from, *mode = effective_sslmode(s, &from, own, sizeof(own));

	if (strcmp(mode, "require") == 0)
		log_msg(PQPOOL_LOG_WARN,
		        "TLS without verification: sslmode=require (from %s) "
		        "encrypts the connection, but the server's identity is not "
		        "checked: a man in the middle can present any certificate. "
		        "Use SSL_MODE=verify-full with SSL_CA_PATH",
		        from);
	else if (strcmp(mode, "prefer") == 0 || strcmp(mode, "allow") == 0)
		log_msg(PQPOOL_LOG_WARN,
		        "TLS without verification: sslmode=%s (from %s) uses TLS only "
		        "if the server agrees, and the server's identity is not "
		        "checked: a man in the middle can turn TLS off or present any "
		        "certificate. Use SSL_MODE=verify-full with SSL_CA_PATH",
		        mode, from);
}

char *setup_masked_url(const char *conninfo)
{
	char small[256];
	char *big;
	int n = pqpool_mask_conninfo(conninfo, small, sizeof(small));

	if (n < 0)
		return strdup("(invalid)");
	if ((size_t)n < sizeof(small))
		return strdup(small);
	big = malloc((size_t)n + 1);
	if (big && pqpool_mask_conninfo(conninfo, big, (size_t)n + 1) < 0) {
		free(big);
		return strdup("(invalid)");
	}
	return big;
}
