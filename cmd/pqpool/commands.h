/* commands.h — the commands main.c dispatches to, each defined in its own cmd_*.c. */
#ifndef PQPOOL_CLI_COMMANDS_H
#define PQPOOL_CLI_COMMANDS_H

#include "cli.h"

/*
 * To add a command: write cmd_<name>.c defining `const cli_command
 * <name>_command` (name, summary, help text, options, argument counts and
 * its run function), declare it here, list it in main.c's table and add the
 * file to CMakeLists.txt. The parser, --help, --version and the usage errors
 * come with it.
 */
extern const cli_command serve_command;  /* cmd_serve.c */
extern const cli_command config_command; /* cmd_config.c */
extern const cli_command check_command;  /* cmd_check.c */
extern const cli_command bench_command;  /* cmd_bench.c */

#endif
