/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Start-up pieces shared by the daemons' mains: a log handler that writes
 * one line per record to stderr, SIGTERM and SIGINT handling, and the port
 * file through which a launcher learns the port bound for port 0.
 */
#ifndef NVCF_DAEMON_H
#define NVCF_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

#include "nvcf/common.h"

/* Installs the stderr log handler; @p name prefixes every line. */
void daemon_log_init(const char *name, nvcf_log_level_t level);

/* Parses "error", "warn", "info", "debug" or "trace". */
bool daemon_log_level_parse(const char *text, nvcf_log_level_t *out);

/* Blocks SIGTERM, SIGINT and SIGPIPE in the calling thread and its children. */
void daemon_signals_block(void);

/* Waits until SIGTERM or SIGINT arrives; returns the signal number. */
int daemon_signals_wait(void);

/* Writes @p port to @p path atomically (temporary file and rename). */
int daemon_port_file_write(const char *path, uint16_t port);

/* Splits "HOST:PORT" into its parts; returns false when malformed. */
bool daemon_listen_parse(const char *text, char host_out[64],
			 uint16_t *port_out);

#endif /* NVCF_DAEMON_H */
