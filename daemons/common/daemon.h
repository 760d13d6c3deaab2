/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Start-up pieces shared by the daemons' mains: a log handler that writes
 * one line per record to stderr, SIGTERM and SIGINT handling, flag parsing,
 * the /health and /metrics server and the port file through which a
 * launcher learns the port bound for port 0.
 */
#ifndef NVCF_DAEMON_H
#define NVCF_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/http.h"
#include "nvcf/common.h"

/* The largest millisecond value a flag accepts: one day. */
#define DAEMON_MS_MAX 86400000

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

/*
 * Parses @p text as a decimal integer from @p lo to @p hi; returns false,
 * leaving @p out alone, when it is empty, not a number or out of range.
 * It prints nothing: each daemon words its own complaint.
 */
bool daemon_parse_num(const char *text, long long lo, long long hi,
		      long long *out);

/* Parses a number of milliseconds from 1 to DAEMON_MS_MAX, silently. */
bool daemon_parse_ms(const char *text, int64_t *out);

/*
 * Parses the millisecond value of @p flag; on failure prints
 * "PROG: invalid FLAG 'TEXT': use milliseconds from 1 to 86400000".
 */
bool daemon_flag_ms(const char *prog, const char *flag, const char *text,
		    int64_t *out);

/* The largest byte count a flag takes: 4 GiB. */
#define DAEMON_BYTES_MAX (1LL << 32)

/*
 * Parses the byte count of @p flag; on failure prints
 * "PROG: invalid FLAG 'TEXT': use a number of bytes from 1 to 4294967296".
 */
bool daemon_flag_bytes(const char *prog, const char *flag, const char *text,
		       size_t *out);

/*
 * Parses --log-level; on failure prints "PROG: --log-level 'TEXT' is
 * unknown: use error, warn, info, debug or trace".
 */
bool daemon_flag_log_level(const char *prog, const char *text,
			   nvcf_log_level_t *out);

/*
 * Parses --listen; on failure prints "PROG: --listen 'TEXT' is not
 * HOST:PORT".
 */
bool daemon_flag_listen(const char *prog, const char *text,
			char host_out[64], uint16_t *port_out);

/* Prints "PROG VERSION" to stdout for --version. */
void daemon_print_version(const char *prog);

/*
 * Writes the port file when @p path is not NULL; on failure prints
 * "PROG: cannot write the port file 'PATH'" and returns false.
 */
bool daemon_port_file_publish(const char *prog, const char *path,
			      uint16_t port);

/*
 * Waits for SIGTERM or SIGINT, then prints "PROG: signal N, stopping" and
 * returns the signal number.
 */
int daemon_wait_stop(const char *prog);

/*
 * Renders the Prometheus text of a daemon's object into a string the
 * server releases with nvcf_free().
 */
typedef nvcf_status (*daemon_metrics_fn)(void *obj, char **text_out);

/* What the /health and /metrics server of a daemon answers from. */
typedef struct daemon_status {
	daemon_metrics_fn metrics;
	void *obj;
} daemon_status;

/*
 * Serves GET /health ({"status":"ok"}) and GET /metrics (the text of
 * @p status->metrics) on @p host:@p port; anything else is a 404 problem.
 * @p status must outlive the server, which the caller frees with
 * nvcf__http_server_free(). Returns what nvcf__http_server_new() returns.
 */
nvcf_status daemon_status_serve(nvcf__http_server **out, const char *host,
				uint16_t port, daemon_status *status);

#endif /* NVCF_DAEMON_H */
