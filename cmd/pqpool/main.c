/* main.c — `pqpool <command> [options]`: the command table and the dispatch. */
#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "cli.h"
#include "pqpool.h"

/* The commands, in the order `pqpool --help` lists them. */
static const cli_command *const commands[] = {
        &serve_command,
        &check_command,
        &bench_command,
        &config_command,
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

/* The program's own options are only the common -h and -V. */
static const cli_command program = {.name = NULL};

static void print_usage(FILE *out)
{
	fputs("usage: pqpool <command> [options]\n\n"
	      "A pool of libpq connections to PostgreSQL, with health checks\n"
	      "and metrics.\n\n"
	      "Commands:\n",
	      out);
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(out, "  %-8s  %s\n", commands[i]->name, commands[i]->summary);
	fputc('\n', out);
	cli_print_options(out, &program);
	fputs("\nRun 'pqpool <command> --help' for the options of a command.\n"
	      "Settings come from the environment and from ./.env.local,\n"
	      "the environment winning; see .env.local.sample.\n",
	      out);
}

static void print_version(void)
{
	int v = PQlibVersion();

	/* 150004 is 15.4; before version 10, 90605 was 9.6.5 */
	if (v >= 100000)
		printf("pqpool %s (libpq %d.%d)\n", PQPOOL_VERSION, v / 10000, v % 10000);
	else
		printf("pqpool %s (libpq %d.%d.%d)\n", PQPOOL_VERSION, v / 10000,
		       v / 100 % 100, v % 100);
}

static const cli_command *find_command(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++) {
		if (strcmp(commands[i]->name, name) == 0)
			return commands[i];
	}
	return NULL;
}

/* Output that could not be written (a full disk, a closed pipe) must not
 * pass for success. */
static int finish(int status)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "pqpool: cannot write the output: %s\n", strerror(errno));
		return status ? status : CLI_EXIT_FAIL;
	}
	return status;
}

/* Parses the options of `cmd` (the program itself when cmd is &program) and
 * handles -h and -V. Returns -1 to go on, or the exit status. */
static int parse(const cli_command *cmd, int argc, char **argv, cli_args *args)
{
	switch (cli_parse(cmd, argc, argv, cmd == &program, args)) {
	case CLI_RUN:
		return -1;
	case CLI_HELP:
		if (cmd == &program)
			print_usage(stdout);
		else
			cli_print_help(stdout, cmd);
		return finish(CLI_EXIT_OK);
	case CLI_VERSION:
		print_version();
		return finish(CLI_EXIT_OK);
	case CLI_ERROR:
		break;
	}
	return CLI_EXIT_USAGE;
}

int main(int argc, char **argv)
{
	const cli_command *cmd;
	cli_args global, args;
	int status;

	status = parse(&program, argc, argv, &global);
	if (status >= 0)
		return status;
	if (global.argc == 0) {
		print_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	cmd = find_command(global.argv[0]);
	if (!cmd) {
		fprintf(stderr, "pqpool: unknown command '%s'\n", global.argv[0]);
		cli_usage_hint(NULL);
		return CLI_EXIT_USAGE;
	}
	/* the command's own argv: its name, then everything after it */
	status = parse(cmd, global.argc, global.argv, &args);
	if (status >= 0)
		return status;
	return finish(cmd->run(&args));
}
