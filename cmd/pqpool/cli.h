/* cli.h — the one option parser shared by every pqpool command. */
#ifndef PQPOOL_CLI_CLI_H
#define PQPOOL_CLI_CLI_H

#include <stdbool.h>
#include <stdio.h>

/* Exit statuses (README: "The command line"). */
enum { CLI_EXIT_OK = 0, CLI_EXIT_FAIL = 1, CLI_EXIT_USAGE = 2 };

/* Options a command declares, besides -h/--help and -V/--version which every
 * command (and the program itself) gets from the parser. */
#define CLI_MAX_OPTIONS 16

typedef struct cli_option {
	const char *name;     /* long name without "--"; NULL ends a table */
	char short_name;      /* single letter, or 0 for none */
	const char *arg_name; /* NULL: a flag; else it takes a value ("N") */
	const char *help;     /* one line for --help */
} cli_option;

struct cli_args;

/*
 * One command: what `pqpool --help` lists, what `pqpool <name> --help`
 * prints, which options and how many positional arguments it takes, and the
 * function that runs it. Each command file defines one of these; main.c
 * lists them.
 */
typedef struct cli_command {
	const char *name;          /* NULL for the program itself */
	const char *summary;       /* one line for the command list */
	const char *args;          /* positional arguments in the usage line, e.g.
	                            * "<workload>"; NULL when none */
	const char *details;       /* paragraph(s) for --help; may be NULL */
	const cli_option *options; /* ends with a NULL name; may be NULL */
	int min_args, max_args;    /* positional arguments accepted */
	int (*run)(const struct cli_args *args); /* returns the exit status */
} cli_command;

/* The result of parsing one command's arguments. */
typedef struct cli_args {
	const cli_command *cmd;
	/* Per entry of cmd->options: NULL when absent, the value when given
	 * (the last one wins), "" for a flag that was given. */
	const char *value[CLI_MAX_OPTIONS];
	int argc;    /* positional arguments, in order */
	char **argv; /* borrowed from main's argv */
} cli_args;

typedef enum cli_result {
	CLI_RUN,     /* parsed: go on */
	CLI_HELP,    /* -h/--help was given */
	CLI_VERSION, /* -V/--version was given */
	CLI_ERROR    /* a usage error, already reported on stderr */
} cli_result;

/*
 * Parses argv[1..argc) for cmd (argv[0] is the program or command name).
 * stop_at_arg: stop at the first positional argument and leave it and the
 * rest in out->argv (how the program's own options are separated from the
 * command); otherwise options and arguments may be mixed, "--" ends options,
 * and the positional count is checked against cmd->min_args..max_args.
 * On CLI_ERROR one line naming the problem and a hint have been printed.
 * Not reentrant (getopt_long keeps global state); argv may be permuted.
 */
cli_result cli_parse(const cli_command *cmd, int argc, char **argv, bool stop_at_arg,
                     cli_args *out);

/* True when the flag `name` of args->cmd was given. */
bool cli_flag(const cli_args *args, const char *name);

/* The value given for option `name`, or NULL when absent. Borrowed. */
const char *cli_value(const cli_args *args, const char *name);

/* Prints "usage: pqpool <name> [options] <args>", the details and the
 * options of cmd, as `--help` shows them. */
void cli_print_help(FILE *out, const cli_command *cmd);

/* Prints the option list of cmd (its own and the common ones). */
void cli_print_options(FILE *out, const cli_command *cmd);

/* Prints "Try 'pqpool [<name>] --help'." on stderr. cmd NULL: the program. */
void cli_usage_hint(const cli_command *cmd);

#endif
