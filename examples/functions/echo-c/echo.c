/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A minimal NVCF function in C for the gateway benchmark: an HTTP server
 * on libmicrohttpd (epoll, two threads) listening on 127.0.0.1:$PORT.
 * GET /health returns 200 "ok" and POST /echo returns the request body.
 * It does as little as possible so that a benchmark measures the platform
 * and not the function.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#define MAX_BODY (8u << 20)

struct body {
	char *data;
	size_t len;
	bool too_large;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int code,
			     const char *type, void *data, size_t len,
			     enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, data, mode);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn,
			      const char *url, const char *method,
			      const char *version, const char *upload,
			      size_t *upload_size, void **state)
{
	struct body *b = *state;
	const char *type;

	if (strcmp(method, "GET") == 0 && strcmp(url, "/health") == 0)
		return reply(conn, MHD_HTTP_OK, "text/plain", "ok", 2,
			     MHD_RESPMEM_PERSISTENT);
	if (strcmp(method, "POST") != 0 || strcmp(url, "/echo") != 0)
		return reply(conn, MHD_HTTP_NOT_FOUND, "application/json",
			     "{\"error\":\"not found\"}", 21,
			     MHD_RESPMEM_PERSISTENT);
	if (b == NULL) {
		b = calloc(1, sizeof(*b));
		if (b == NULL)
			return MHD_NO;
		*state = b;
		return MHD_YES;
	}
	if (*upload_size > 0) {
		if (b->len + *upload_size > MAX_BODY) {
			b->too_large = true;
		} else {
			char *grown = realloc(b->data, b->len + *upload_size);

			if (grown == NULL)
				return MHD_NO;
			memcpy(grown + b->len, upload, *upload_size);
			b->data = grown;
			b->len += *upload_size;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (b->too_large)
		return reply(conn, MHD_HTTP_CONTENT_TOO_LARGE,
			     "application/json",
			     "{\"error\":\"body over 8 MiB\"}", 27,
			     MHD_RESPMEM_PERSISTENT);
	type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
					   "Content-Type");
	if (type == NULL)
		type = "application/octet-stream";
	return reply(conn, MHD_HTTP_OK, type, b->data ? b->data : "", b->len,
		     MHD_RESPMEM_MUST_COPY);
}

static void completed(void *cls, struct MHD_Connection *conn, void **state,
		      enum MHD_RequestTerminationCode code)
{
	struct body *b = *state;

	if (b != NULL) {
		free(b->data);
		free(b);
	}
	*state = NULL;
}

int main(void)
{
	struct timespec born;
	const char *port_text = getenv("PORT");
	struct sockaddr_in sa = {0};
	struct MHD_Daemon *d;
	sigset_t set;
	long port;
	int sig;

	/* First thing: bench/scaling.sh measures the platform up to here. */
	clock_gettime(CLOCK_REALTIME, &born);
	fprintf(stderr, "echo-c: started at %lld.%09ld\n",
		(long long)born.tv_sec, born.tv_nsec);
	port = port_text ? strtol(port_text, NULL, 10) : 0;
	if (port <= 0 || port > 65535) {
		fprintf(stderr, "echo-c: PORT must be set to a port number "
			"(got '%s')\n", port_text ? port_text : "");
		return 2;
	}
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	d = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG,
			     0, NULL, NULL, handle, NULL,
			     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
			     MHD_OPTION_THREAD_POOL_SIZE, 2u,
			     MHD_OPTION_CONNECTION_LIMIT, 4096u,
			     MHD_OPTION_CONNECTION_TIMEOUT, 60u,
			     MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
			     MHD_OPTION_END);
	if (d == NULL) {
		fprintf(stderr, "echo-c: cannot listen on 127.0.0.1:%ld\n",
			port);
		return 1;
	}
	fprintf(stderr, "echo-c: listening on 127.0.0.1:%ld\n", port);
	sigwait(&set, &sig);
	MHD_stop_daemon(d);
	return 0;
}
