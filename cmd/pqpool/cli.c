/* cli.c — parses the program's and each command's options with getopt_long. */
#include "cli.h"

#include <getopt.h>
#include <stdarg.h>
#include <string.h>

/* getopt_long returns the option's `val`: long options get values above any
 * character, so the answer says directly which table entry matched. */
#define LONG_BASE 256

/* Every command and the program itself accept these, after their own. */
static const cli_option common_options[] = {
        {"help", 'h', NULL, "show this help and exit"},
        {"version", 'V', NULL, "show the version and exit"},
};
#define N_COMMON    ((int)(sizeof(common_options) / sizeof(common_options[0])))
#define OPT_HELP    0
#define OPT_VERSION 1

static int own_count(const cli_command *cmd)
{
	int n = 0;

	while (cmd->options && cmd->options[n].name)
		n++;
	return n;
}

/* Option i of cmd: its own first, then the common ones. */
static const cli_option *option_at(const cli_command *cmd, int own, int i)
{
	return i < own ? &cmd->options[i] : &common_options[i - own];
}

static void print_prog(FILE *out, const cli_command *cmd)
{
	fputs("pqpool", out);
	if (cmd && cmd->name)
		fprintf(out, " %s", cmd->name);
}

/* "pqpool config: <message>" and the hint, on stderr. */
static cli_result usage_error(const cli_command *cmd, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static cli_result usage_error(const cli_command *cmd, const char *fmt, ...)
{
	va_list ap;

	print_prog(stderr, cmd);
	fputs(": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cli_usage_hint(cmd);
	return CLI_ERROR;
}

static int short_index(const cli_command *cmd, int own, int c)
{
	for (int i = 0; i < own + N_COMMON; i++) {
		if (c != 0 && option_at(cmd, own, i)->short_name == c)
			return i;
	}
	return -1;
}

/* Reports what getopt_long rejected. optopt is a short option character, a
 * LONG_BASE value (a long option it matched), or 0 (an unknown long one). */
static cli_result reject(const cli_command *cmd, int own, char **argv, bool missing)
{
	if (optopt >= LONG_BASE) {
		const cli_option *o = option_at(cmd, own, optopt - LONG_BASE);

		if (missing)
			return usage_error(cmd, "option '--%s' needs a value (--%s=%s)",
			                   o->name, o->name, o->arg_name);
		return usage_error(cmd, "option '--%s' takes no value", o->name);
	}
	if (optopt != 0) {
		if (missing)
			return usage_error(cmd, "option '-%c' needs a value", optopt);
		return usage_error(cmd, "unknown option '-%c'", optopt);
	}
	/* An unknown long option: name it without any "=value", which could be
	 * something the user would not want echoed. */
	const char *arg = argv[optind - 1];
	return usage_error(cmd, "unknown option '%.*s'", (int)strcspn(arg, "="), arg);
}

cli_result cli_parse(const cli_command *cmd, int argc, char **argv, bool stop_at_arg,
                     cli_args *out)
{
	struct option longopts[CLI_MAX_OPTIONS + N_COMMON + 1];
	/* "+:" and up to two characters per option ("x:"), and the NUL */
	char shortopts[2 + 2 * (CLI_MAX_OPTIONS + N_COMMON) + 1];
	int own = own_count(cmd);
	size_t k = 0;
	bool help = false, version = false;
	int c;

	memset(out, 0, sizeof(*out));
	out->cmd = cmd;
	if (own > CLI_MAX_OPTIONS)
		return usage_error(cmd, "internal error: more than %d options",
		                   CLI_MAX_OPTIONS);

	if (stop_at_arg)
		shortopts[k++] = '+';
	shortopts[k++] = ':'; /* report a missing value as ':' and print nothing */
	for (int i = 0; i < own + N_COMMON; i++) {
		const cli_option *o = option_at(cmd, own, i);

		longopts[i] = (struct option){
		        o->name, o->arg_name ? required_argument : no_argument, NULL,
		        LONG_BASE + i};
		if (o->short_name) {
			shortopts[k++] = o->short_name;
			if (o->arg_name)
				shortopts[k++] = ':';
		}
	}
	memset(&longopts[own + N_COMMON], 0, sizeof(longopts[0]));
	shortopts[k] = '\0';

	/* main parses twice (the program's options, then the command's):
	 * optind = 0 makes glibc's getopt start afresh. */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		int i;

		if (c == '?' || c == ':')
			return reject(cmd, own, argv, c == ':');
		i = c >= LONG_BASE ? c - LONG_BASE : short_index(cmd, own, c);
		if (i < 0)
			return usage_error(cmd, "unknown option '-%c'", c);
		if (i == own + OPT_HELP)
			help = true;
		else if (i == own + OPT_VERSION)
			version = true;
		else
			out->value[i] = optarg ? optarg : "";
	}
	out->argc = argc - optind;
	out->argv = argv + optind;

	if (help)
		return CLI_HELP;
	if (version)
		return CLI_VERSION;
	if (stop_at_arg)
		return CLI_RUN;
	if (out->argc > cmd->max_args) {
		if (cmd->max_args == 0)
			return usage_error(cmd, "unexpected argument '%s'", out->argv[0]);
		return usage_error(cmd, "too many arguments (expected %s)",
		                   cmd->args ? cmd->args : "none");
	}
	if (out->argc < cmd->min_args)
		return usage_error(cmd, "missing %s",
		                   cmd->args ? cmd->args : "arguments");
	return CLI_RUN;
}

static int find_own(const cli_args *args, const char *name)
{
	const cli_command *cmd = args->cmd;

	for (int i = 0; cmd->options && cmd->options[i].name; i++) {
		if (strcmp(cmd->options[i].name, name) == 0)
			return i;
	}
	return -1;
}

bool cli_flag(const cli_args *args, const char *name)
{
	int i = find_own(args, name);

	return i >= 0 && args->value[i] != NULL;
}

const char *cli_value(const cli_args *args, const char *name)
{
	int i = find_own(args, name);

	return i >= 0 ? args->value[i] : NULL;
}

/* "  -h, --help" or "      --json" or "      --workers=N" */
static int format_option(char *buf, size_t len, const cli_option *o)
{
	char lead[8] = "    ";

	if (o->short_name)
		snprintf(lead, sizeof(lead), "-%c, ", o->short_name);
	return snprintf(buf, len, "  %s--%s%s%s", lead, o->name, o->arg_name ? "=" : "",
	                o->arg_name ? o->arg_name : "");
}

void cli_print_options(FILE *out, const cli_command *cmd)
{
	int own = own_count(cmd);
	int width = 0;
	char buf[96];

	for (int i = 0; i < own + N_COMMON; i++) {
		int n = format_option(buf, sizeof(buf), option_at(cmd, own, i));

		if (n > width)
			width = n;
	}
	fputs("Options:\n", out);
	for (int i = 0; i < own + N_COMMON; i++) {
		const cli_option *o = option_at(cmd, own, i);

		format_option(buf, sizeof(buf), o);
		fprintf(out, "%-*s  %s\n", width, buf, o->help);
	}
}

void cli_print_help(FILE *out, const cli_command *cmd)
{
	fputs("usage: ", out);
	print_prog(out, cmd);
	fputs(" [options]", out);
	if (cmd->args)
		fprintf(out, " %s", cmd->args);
	fputs("\n\n", out);
	if (cmd->details)
		fprintf(out, "%s\n\n", cmd->details);
	cli_print_options(out, cmd);
}

void cli_usage_hint(const cli_command *cmd)
{
	fputs("Try '", stderr);
	print_prog(stderr, cmd);
	fputs(" --help'.\n", stderr);
}
