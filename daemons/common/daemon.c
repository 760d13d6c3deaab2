/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "nvcf/version.h"

static const char *log_name = "nvcf";
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static void log_to_stderr(nvcf_log_level_t level, const char *subsystem,
			  const char *message, void *userdata)
{
	struct timespec ts;
	struct tm tm;
	char stamp[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	pthread_mutex_lock(&log_lock);
	fprintf(stderr, "%s.%03ldZ %s[%d] %-5s %s: %s\n", stamp,
		ts.tv_nsec / 1000000, log_name, (int)getpid(),
		nvcf_log_level_name(level), subsystem, message);
	pthread_mutex_unlock(&log_lock);
}

void daemon_log_init(const char *name, nvcf_log_level_t level)
{
	log_name = name;
	nvcf_log_set_handler(level, log_to_stderr, NULL);
}

bool daemon_log_level_parse(const char *text, nvcf_log_level_t *out)
{
	static const nvcf_log_level_t levels[] = {
		NVCF_LOG_ERROR, NVCF_LOG_WARN, NVCF_LOG_INFO, NVCF_LOG_DEBUG,
		NVCF_LOG_TRACE};

	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		if (strcmp(text, nvcf_log_level_name(levels[i])) == 0) {
			*out = levels[i];
			return true;
		}
	}
	return false;
}

static sigset_t daemon_sigset(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	return set;
}

void daemon_signals_block(void)
{
	sigset_t set = daemon_sigset();

	signal(SIGPIPE, SIG_IGN);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int daemon_signals_wait(void)
{
	sigset_t set = daemon_sigset();
	int sig = 0;

	while (sigwait(&set, &sig) != 0)
		;
	return sig;
}

int daemon_port_file_write(const char *path, uint16_t port)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	f = fopen(tmp, "w");
	if (f == NULL)
		return -errno;
	fprintf(f, "%u\n", (unsigned)port);
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		int err = errno;

		unlink(tmp);
		return -err;
	}
	return 0;
}

bool daemon_listen_parse(const char *text, char host_out[64],
			 uint16_t *port_out)
{
	const char *colon = strrchr(text, ':');
	char *end;
	long port;

	if (colon == NULL || colon == text || (size_t)(colon - text) >= 64)
		return false;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || end == colon + 1 || port < 0 ||
	    port > 65535)
		return false;
	memcpy(host_out, text, (size_t)(colon - text));
	host_out[colon - text] = '\0';
	*port_out = (uint16_t)port;
	return true;
}

bool daemon_parse_num(const char *text, long long lo, long long hi,
		      long long *out)
{
	char *end;
	long long v = strtoll(text, &end, 10);

	if (*text == '\0' || *end != '\0' || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

bool daemon_parse_ms(const char *text, int64_t *out)
{
	long long v;

	if (!daemon_parse_num(text, 1, DAEMON_MS_MAX, &v))
		return false;
	*out = v;
	return true;
}

bool daemon_flag_ms(const char *prog, const char *flag, const char *text,
		    int64_t *out)
{
	if (daemon_parse_ms(text, out))
		return true;
	fprintf(stderr, "%s: invalid %s '%s': use milliseconds from 1 to "
		"86400000\n", prog, flag, text);
	return false;
}

bool daemon_flag_bytes(const char *prog, const char *flag, const char *text,
		       size_t *out)
{
	long long v;

	if (daemon_parse_num(text, 1, DAEMON_BYTES_MAX, &v)) {
		*out = (size_t)v;
		return true;
	}
	fprintf(stderr, "%s: invalid %s '%s': use a number of bytes from 1 "
		"to %lld\n", prog, flag, text, DAEMON_BYTES_MAX);
	return false;
}

bool daemon_flag_log_level(const char *prog, const char *text,
			   nvcf_log_level_t *out)
{
	if (daemon_log_level_parse(text, out))
		return true;
	fprintf(stderr, "%s: --log-level '%s' is unknown: use error, warn, "
		"info, debug or trace\n", prog, text);
	return false;
}

bool daemon_flag_listen(const char *prog, const char *text,
			char host_out[64], uint16_t *port_out)
{
	if (daemon_listen_parse(text, host_out, port_out))
		return true;
	fprintf(stderr, "%s: --listen '%s' is not HOST:PORT\n", prog, text);
	return false;
}

void daemon_print_version(const char *prog)
{
	printf("%s %s\n", prog, nvcf_version_string());
}

bool daemon_port_file_publish(const char *prog, const char *path,
			      uint16_t port)
{
	if (path == NULL || daemon_port_file_write(path, port) == 0)
		return true;
	fprintf(stderr, "%s: cannot write the port file '%s'\n", prog, path);
	return false;
}

int daemon_wait_stop(const char *prog)
{
	int sig = daemon_signals_wait();

	fprintf(stderr, "%s: signal %d, stopping\n", prog, sig);
	return sig;
}

static void status_handler(nvcf__http_req *req, void *userdata)
{
	daemon_status *status = userdata;
	const char *path = nvcf__http_path(req);
	char *text = NULL;

	if (strcmp(path, "/health") == 0) {
		nvcf__http_send_json(req, 200, "{\"status\":\"ok\"}");
	} else if (strcmp(path, "/metrics") == 0 &&
		   status->metrics(status->obj, &text) == NVCF_OK) {
		nvcf__http_send(req, 200,
				nvcf__http_response("text/plain; "
						    "version=0.0.4", text,
						    strlen(text)));
		nvcf_free(text);
	} else {
		nvcf__http_send_problem(req, 404, NULL, "no route for %s",
					path);
	}
}

nvcf_status daemon_status_serve(nvcf__http_server **out, const char *host,
				uint16_t port, daemon_status *status)
{
	nvcf__http_config cfg = {0};

	cfg.bind_address = host;
	cfg.port = port;
	cfg.handler = status_handler;
	cfg.userdata = status;
	return nvcf__http_server_new(out, &cfg);
}
