/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The nvcf command-line client: one dispatcher (main.c) and one entry
 * point per command group. Every cmd_* function receives the arguments
 * that follow "nvcf", so argv[0] is the group name ("key", "function").
 * It returns the process exit status: 0 on success, 1 when the server or
 * a daemon reported an error, 2 for a usage error.
 */
#ifndef NVCF_CLI_H
#define NVCF_CLI_H

#include <stdbool.h>
#include <stddef.h>

#define CLI_EXIT_OK 0
#define CLI_EXIT_ERROR 1
#define CLI_EXIT_USAGE 2

/* nvcf key create ... (key.c) */
int cmd_key(int argc, char **argv);

/* nvcf up / down / status (up.c) */
int cmd_up(int argc, char **argv);
int cmd_down(int argc, char **argv);
int cmd_status(int argc, char **argv);

/* Client commands over the REST API (client.c). */
int cmd_function(int argc, char **argv);
int cmd_deploy(int argc, char **argv);
int cmd_cluster_groups(int argc, char **argv);
int cmd_cluster(int argc, char **argv);
int cmd_invoke(int argc, char **argv);

/* ---- helpers shared by the commands (util.c) ------------------------- */

/* Prints "nvcf: " and the message to stderr. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* True when @p arg is "-h" or "--help". */
bool cli_is_help(const char *arg);

/*
 * Matches "--name VALUE" and "--name=VALUE" at argv[*i]; on a match sets
 * *value, advances *i past the value and returns true. A flag without its
 * value prints an error and sets *value to NULL.
 */
bool cli_flag(int argc, char **argv, int *i, const char *name,
	      const char **value);

/* Parses a non-negative integer. Returns false when @p text is not one. */
bool cli_parse_int(const char *text, long *out);

/* Writes the directory of the running nvcf executable into out[4096]. */
bool cli_self_dir(char out[4096]);

/*
 * Reads DIR/env (lines "export NAME=VALUE") into the process environment,
 * overriding variables already set. Returns false with a message printed
 * when the file cannot be read.
 */
bool cli_load_env(const char *state_dir);

/*
 * snprintf into @p out; returns false when the text did not fit (and was
 * cut), which callers treat as a path too long to use.
 */
bool cli_fmt(char *out, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Monotonic seconds. */
double cli_now(void);

#endif /* NVCF_CLI_H */
