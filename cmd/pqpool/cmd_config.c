/* cmd_config.c — `pqpool config`: the effective settings and where each came from. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "commands.h"
#include "log.h"
#include "settings.h"
#include "setup.h"

/* Values longer than this do not push the "# source" column further right. */
#define ALIGN_MAX 40

static const char *source_name(dotenv_source src)
{
	switch (src) {
	case DOTENV_FROM_ENVIRON:
		return "environment";
	case DOTENV_FROM_FILE:
		return SETUP_ENV_FILE;
	case DOTENV_UNSET:
		break;
	}
	return "default";
}

/* Why a variable that is set still shows its default. */
static const char *empty_note(const dotenv_file *env, const char *name)
{
	const char *v = getenv(name);

	if (v)
		return *v ? NULL : "empty in the environment";
	v = dotenv_get(env, name);
	return v && !*v ? "empty in " SETUP_ENV_FILE : NULL;
}

/* Adds {"value": value, "source": ..., "note": ...} under name; takes value. */
static void add(json_t *rows, const dotenv_file *env, const char *name, json_t *value,
                const char *note)
{
	json_t *row = json_object();

	json_object_set_new(row, "value", value ? value : json_null());
	json_object_set_new(row, "source",
	                    json_string(source_name(dotenv_source_of(env, name))));
	if (!note)
		note = empty_note(env, name);
	if (note)
		json_object_set_new(row, "note", json_string(note));
	json_object_set_new(rows, name, row);
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* Where a default SSL_MODE comes from: the library derives it from NODE_ENV. */
static const char *ssl_note(const setup_ctx *s)
{
	const char *node_env = dotenv_lookup(s->env, "NODE_ENV");

	if (!s->cfg.ssl_mode || dotenv_source_of(s->env, "SSL_MODE") != DOTENV_UNSET)
		return NULL;
	if (node_env && strcmp(node_env, "production") == 0)
		return "from NODE_ENV=production";
	return "NODE_ENV is not production";
}

/* The rows in the order of README's "Configuration" table, then the library's further
 * DB_* settings, then the service's and the log's. NULL when out of memory. */
static json_t *collect(const setup_ctx *s, const serve_settings *ss)
{
	static const struct {
		const char *name, *def;
	} parts[] = {
	        {"POSTGRES_HOST", "localhost"}, {"POSTGRES_PORT", "5432"},
	        {"POSTGRES_DB", "hyperpage"},   {"POSTGRES_USER", "hyperpage"},
	        {"POSTGRES_PASSWORD", NULL},
	};
	const pqpool_config *c = &s->cfg;
	const dotenv_file *env = s->env;
	json_t *rows = json_object();
	char *url = setup_masked_url(c->conninfo);
	bool url_set = dotenv_source_of(env, "DATABASE_URL") != DOTENV_UNSET;

	if (!rows || !url) {
		json_decref(rows);
		free(url);
		return NULL;
	}
	add(rows, env, "DATABASE_URL", json_string(url),
	    url_set ? NULL : "built from POSTGRES_*");
	free(url);
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		const char *v = dotenv_lookup(s->env, parts[i].name);

		if (!parts[i].def) /* the password: never shown, whether set or not */
			v = "****";
		else if (!v || !*v)
			v = parts[i].def;
		add(rows, env, parts[i].name, json_string(v),
		    url_set ? "unused: DATABASE_URL is set" : NULL);
	}
	add(rows, env, "NODE_ENV", str_or_null(dotenv_lookup(s->env, "NODE_ENV")), NULL);
	add(rows, env, "DB_POOL_MAX", json_integer(c->pool_max), NULL);
	add(rows, env, "DB_POOL_MIN", json_integer(c->pool_min), NULL);
	add(rows, env, "DB_IDLE_TIMEOUT", json_integer(c->idle_timeout_ms), NULL);
	add(rows, env, "DB_CONNECTION_TIMEOUT", json_integer(c->connection_timeout_ms),
	    NULL);
	add(rows, env, "DB_STATEMENT_TIMEOUT", json_integer(c->statement_timeout_ms),
	    NULL);
	add(rows, env, "DB_QUERY_TIMEOUT", json_integer(c->query_timeout_ms), NULL);
	add(rows, env, "SSL_MODE", str_or_null(c->ssl_mode), ssl_note(s));
	add(rows, env, "SSL_CERT_PATH", str_or_null(c->ssl_cert), NULL);
	add(rows, env, "SSL_KEY_PATH", str_or_null(c->ssl_key), NULL);
	add(rows, env, "SSL_CA_PATH", str_or_null(c->ssl_root_cert), NULL);

	add(rows, env, "DB_MAX_LIFETIME", json_integer(c->max_lifetime_ms), NULL);
	add(rows, env, "DB_LEASE_WARN", json_integer(c->lease_warn_ms), NULL);
	add(rows, env, "DB_RETRY_ATTEMPTS", json_integer(c->retry_attempts), NULL);
	add(rows, env, "DB_RETRY_BASE_DELAY", json_integer(c->retry_base_delay_ms), NULL);
	add(rows, env, "DB_RETRY_MAX_DELAY", json_integer(c->retry_max_delay_ms), NULL);
	add(rows, env, "DB_RETRY_DEADLINE", json_integer(c->retry_deadline_ms), NULL);
	add(rows, env, "DB_HEALTH_QUERY",
	    json_string(c->health_query ? c->health_query : "SELECT 1"), NULL);
	add(rows, env, "DB_HEALTH_SLOW", json_integer(c->health_slow_ms), NULL);
	add(rows, env, "DB_HEALTH_SHARE", json_boolean(c->health_share), NULL);
	add(rows, env, "DB_PREPARED_STATEMENTS", json_boolean(c->prepare), NULL);
	add(rows, env, "DB_PIPELINE", json_boolean(c->pipeline), NULL);
	add(rows, env, "DB_PIPELINE_DEPTH", json_integer(c->pipeline_depth), NULL);
	add(rows, env, "DB_PIPELINE_ONE_SYNC", json_boolean(c->pipeline_one_sync), NULL);
	add(rows, env, "DB_READ_TARGET",
	    json_string(c->read_target == PQPOOL_READ_STANDBY ? "standby"
	                : c->read_target == PQPOOL_READ_ANY   ? "any"
	                                                      : "prefer-standby"),
	    NULL);
	add(rows, env, "DB_MAX_REPLICA_LAG", json_integer(c->max_replica_lag_ms),
	    c->max_replica_lag_ms == 0 ? "no bound" : NULL);
	add(rows, env, "DB_FAIL_FAST", json_boolean(c->fail_fast), NULL);

	add(rows, env, "HOST", json_string(ss->host), NULL);
	add(rows, env, "PORT", json_integer(ss->port),
	    ss->port == 0 ? "any free port" : NULL);
	add(rows, env, "HTTP_THREADS", json_integer(ss->threads),
	    dotenv_source_of(env, "HTTP_THREADS") == DOTENV_UNSET
	            ? "the number of CPUs, at least 2"
	            : NULL);
	add(rows, env, "HTTP_DB_THREADS", json_integer(ss->db_threads),
	    dotenv_source_of(env, "HTTP_DB_THREADS") == DOTENV_UNSET
	            ? "one event loop for every check"
	            : NULL);
	add(rows, env, "HTTP_MAX_CONNECTIONS", json_integer(ss->max_connections), NULL);
	add(rows, env, "HTTP_IDLE_TIMEOUT", json_integer(ss->idle_timeout_s), NULL);
	add(rows, env, "HTTP_MAX_HEADER_BYTES", json_integer(ss->max_header_bytes), NULL);
	add(rows, env, "SHUTDOWN_TIMEOUT", json_integer(ss->shutdown_timeout_ms), NULL);
	/* a secret, masked as the password is */
	add(rows, env, "METRICS_TOKEN",
	    ss->metrics_token[0] ? json_string("****") : json_null(),
	    ss->metrics_token[0] ? NULL : "unset: the metrics routes are open");

	add(rows, env, "LOG_LEVEL", json_string(log_level_name(log_min_level())), NULL);
	add(rows, env, "LOG_FORMAT",
	    json_string(log_get_format() == LOG_FORMAT_JSON ? "json" : "text"), NULL);
	return rows;
}

/* A value as .env.local would hold it: quoted only when it would not read
 * back as itself (blanks, '#', a leading quote). Owned. */
static char *env_value(json_t *v)
{
	char *out = NULL;
	const char *s;

	if (json_is_null(v))
		return strdup("");
	if (json_is_boolean(v))
		return strdup(json_is_true(v) ? "true" : "false");
	if (json_is_integer(v)) {
		if (asprintf(&out, "%lld", (long long)json_integer_value(v)) < 0)
			return NULL;
		return out;
	}
	s = json_string_value(v);
	if (!s)
		return strdup("");
	if (strpbrk(s, " \t#") == NULL && s[0] != '\'' && s[0] != '"')
		return strdup(s);
	if (asprintf(&out, strchr(s, '\'') ? "\"%s\"" : "'%s'", s) < 0)
		return NULL;
	return out;
}

static int print_text(json_t *rows)
{
	const char *name;
	json_t *row;
	int width = 0;

	json_object_foreach(rows, name, row)
	{
		char *v = env_value(json_object_get(row, "value"));
		int n = v ? (int)(strlen(name) + 1 + strlen(v)) : 0;

		if (n > width && n <= ALIGN_MAX)
			width = n;
		free(v);
	}
	json_object_foreach(rows, name, row)
	{
		char *v = env_value(json_object_get(row, "value"));
		const char *note = json_string_value(json_object_get(row, "note"));
		int n;

		if (!v)
			return -1;
		n = printf("%s=%s", name, v);
		printf("%*s  # %s", n < width ? width - n : 0, "",
		       json_string_value(json_object_get(row, "source")));
		if (note)
			printf(" (%s)", note);
		putchar('\n');
		free(v);
	}
	return 0;
}

static int print_json(json_t *rows)
{
	char *s = json_dumps(rows, JSON_INDENT(2));

	if (!s)
		return -1;
	puts(s);
	free(s);
	return 0;
}

static int run_config(const cli_args *args)
{
	setup_ctx s;
	serve_settings ss;
	json_t *rows;
	char err[512];
	int rc = setup_load(&s);

	if (rc == 0 && serve_settings_load(&ss, dotenv_lookup, s.env, err,
	                                   sizeof(err)) != 0) {
		setup_report_error(s.env, err);
		rc = CLI_EXIT_USAGE;
	}
	if (rc == 0) {
		rows = collect(&s, &ss);
		if (!rows ||
		    (cli_flag(args, "json") ? print_json(rows) : print_text(rows)) != 0) {
			fputs("pqpool: out of memory\n", stderr);
			rc = CLI_EXIT_FAIL;
		}
		json_decref(rows);
	}
	setup_free(&s);
	return rc;
}

static const cli_option config_options[] = {
        {"json", 0, NULL, "print a JSON object {NAME: {value, source, note}} instead"},
        {NULL, 0, NULL, NULL},
};

const cli_command config_command = {
        .name = "config",
        .summary = "print the effective configuration (password masked)",
        .details = "Prints the configuration pqpool would use, one NAME=value\n"
                   "per line, each with where it came from: the environment,\n"
                   "./.env.local (the environment wins) or the default.\n"
                   "The password is never shown. A bad value exits with\n"
                   "status 2 and a message naming the variable.",
        .options = config_options,
        .run = run_config,
};
