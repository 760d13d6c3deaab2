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
