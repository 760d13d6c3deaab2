/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "http/http.h"

struct nvcf__http_server {
	struct MHD_Daemon *daemon;
	nvcf__http_config config;
	uint16_t port;
};

typedef enum req_phase {
	PHASE_READING,   /* body still arriving */
	PHASE_HANDLED,   /* handler ran, response queued or suspended */
} req_phase;

struct nvcf__http_req {
	nvcf__http_server *server;
	struct MHD_Connection *conn;
	req_phase phase;
	bool headers_seen; /* the first callback carries headers only */
	char *target; /* raw request target: path and query */
	char *path;   /* decoded path as libmicrohttpd parsed it */
	const char *method;
	nvcf__buf body;
	bool too_large;
	uint64_t body_received; /* counted on past max_body for the 413 */
	int64_t start_us;

	/* Staged response, queued from inside the access callback. */
	struct MHD_Response *response;
	unsigned int status;
	atomic_bool answered;

	void *state;
	nvcf__http_done_cb done;
};

/* ---- responses ------------------------------------------------------------- */

const char *nvcf__http_reason(unsigned int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 302: return "Found";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 402: return "Payment Required";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Unknown";
	}
}

struct MHD_Response *nvcf__http_response(const char *content_type,
					 const void *body, size_t len)
{
	struct MHD_Response *r;

	r = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body,
					    MHD_RESPMEM_MUST_COPY);
	if (r != NULL && content_type != NULL)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
					content_type);
	return r;
}

/* Appends @p s to @p out as a JSON string literal. */
static void json_quote(nvcf__buf *out, const char *s)
{
	nvcf__buf_append(out, "\"", 1);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			nvcf__buf_printf(out, "\\%c", c);
		else if (c < 0x20)
			nvcf__buf_printf(out, "\\u%04x", c);
		else
			nvcf__buf_append(out, s, 1);
	}
	nvcf__buf_append(out, "\"", 1);
}

struct MHD_Response *nvcf__http_problem_response(unsigned int status,
						 const char *type_urn,
						 const char *detail,
						 const char *instance)
{
	const char *reason = nvcf__http_reason(status);
	struct MHD_Response *r;
	nvcf__buf body = {0};

	nvcf__buf_append(&body, "{", 1);
	if (type_urn == NULL) {
		char kebab[64];
		size_t i;

		for (i = 0; reason[i] != '\0' && i < sizeof(kebab) - 1; i++)
			kebab[i] = reason[i] == ' '
					   ? '-'
					   : (char)(reason[i] >= 'A' &&
								    reason[i] <= 'Z'
							    ? reason[i] + 32
							    : reason[i]);
		kebab[i] = '\0';
		nvcf__buf_printf(&body,
				 "\"type\":\"urn:nv-boot:problem-details:%s\",",
				 kebab);
	} else if (type_urn[0] != '\0') {
		nvcf__buf_append(&body, "\"type\":", 7);
		json_quote(&body, type_urn);
		nvcf__buf_append(&body, ",", 1);
	}
	nvcf__buf_append(&body, "\"title\":", 8);
	json_quote(&body, reason);
	nvcf__buf_printf(&body, ",\"status\":%u", status);
	if (detail != NULL) {
		nvcf__buf_append(&body, ",\"detail\":", 10);
		json_quote(&body, detail);
	}
	if (instance != NULL) {
		nvcf__buf_append(&body, ",\"instance\":", 12);
		json_quote(&body, instance);
	}
	nvcf__buf_append(&body, "}", 1);
	if (body.data == NULL)
		return NULL;
	r = nvcf__http_response("application/problem+json", body.data,
				body.len);
	nvcf__buf_free(&body);
	return r;
}

void nvcf__http_send(nvcf__http_req *req, unsigned int status,
		     struct MHD_Response *response)
{
	bool expected = false;

	if (!atomic_compare_exchange_strong(&req->answered, &expected, true)) {
		if (response != NULL)
			MHD_destroy_response(response);
		return;
	}
	req->status = status;
	req->response = response;
}

void nvcf__http_send_json(nvcf__http_req *req, unsigned int status,
			  const char *json)
{
	nvcf__http_send(req, status,
			nvcf__http_response("application/json", json,
					    strlen(json)));
}

void nvcf__http_send_text(nvcf__http_req *req, unsigned int status,
			  const char *text)
{
	nvcf__http_send(req, status,
			nvcf__http_response("text/plain; charset=utf-8", text,
					    strlen(text)));
}

void nvcf__http_send_problem(nvcf__http_req *req, unsigned int status,
			     const char *type_urn, const char *fmt, ...)
{
	char detail[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	nvcf__http_send(req, status,
			nvcf__http_problem_response(status, type_urn, detail,
						    req->path));
}

void nvcf__http_suspend(nvcf__http_req *req)
{
	MHD_suspend_connection(req->conn);
}

bool nvcf__http_resume(nvcf__http_req *req, unsigned int status,
		       struct MHD_Response *response)
{
	bool expected = false;

	if (!atomic_compare_exchange_strong(&req->answered, &expected, true)) {
		if (response != NULL)
			MHD_destroy_response(response);
		return false;
	}
	req->status = status;
	req->response = response;
	MHD_resume_connection(req->conn);
	return true;
}

void nvcf__http_reader_suspend(nvcf__http_req *req)
{
	MHD_suspend_connection(req->conn);
}

void nvcf__http_reader_resume(nvcf__http_req *req)
{
	MHD_resume_connection(req->conn);
}

void nvcf__http_reader_abort(nvcf__http_req *req)
{
	const union MHD_ConnectionInfo *info = MHD_get_connection_info(
		req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);

	if (info != NULL)
		shutdown(info->connect_fd, SHUT_RDWR);
}

/* ---- request accessors ------------------------------------------------------ */

const char *nvcf__http_method(const nvcf__http_req *req)
{
	return req->method;
}

const char *nvcf__http_path(const nvcf__http_req *req)
{
	return req->path;
}

const char *nvcf__http_target(const nvcf__http_req *req)
{
	return req->target;
}

const char *nvcf__http_header(const nvcf__http_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *nvcf__http_query(const nvcf__http_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND,
					   name);
}

const char *nvcf__http_body(const nvcf__http_req *req, size_t *len_out)
{
	if (len_out != NULL)
		*len_out = req->body.len;
	return req->body.data ? req->body.data : "";
}

int64_t nvcf__http_start_us(const nvcf__http_req *req)
{
	return req->start_us;
}

typedef struct header_iter {
	bool (*cb)(const char *, const char *, void *);
	void *userdata;
} header_iter;

static enum MHD_Result header_visit(void *cls, enum MHD_ValueKind kind,
				    const char *key, const char *value)
{
	header_iter *it = cls;

	return it->cb(key, value ? value : "", it->userdata) ? MHD_YES
							      : MHD_NO;
}

void nvcf__http_foreach_header(const nvcf__http_req *req,
			       bool (*cb)(const char *name, const char *value,
					  void *userdata),
			       void *userdata)
{
	header_iter it = {cb, userdata};

	MHD_get_connection_values(req->conn, MHD_HEADER_KIND, header_visit,
				  &it);
}

void nvcf__http_set_state(nvcf__http_req *req, void *state,
			  nvcf__http_done_cb done)
{
	req->state = state;
	req->done = done;
}

/* ---- libmicrohttpd callbacks ------------------------------------------------- */

/* Runs first for every request: keeps the raw target, query included. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	nvcf__http_req *req = calloc(1, sizeof(*req));

	if (req == NULL)
		return NULL;
	req->server = cls;
	req->conn = conn;
	req->target = strdup(uri ? uri : "/");
	req->start_us = nvcf__mono_us();
	atomic_init(&req->answered, false);
	return req;
}

static enum MHD_Result queue_staged(nvcf__http_req *req)
{
	enum MHD_Result rc;

	if (req->response == NULL) {
		/* The handler ran out of memory building its response. */
		req->response = MHD_create_response_from_buffer(
			0, NULL, MHD_RESPMEM_PERSISTENT);
		req->status = 500;
		if (req->response == NULL)
			return MHD_NO;
	}
	rc = MHD_queue_response(req->conn, req->status, req->response);
	MHD_destroy_response(req->response);
	req->response = NULL;
	return rc;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn,
				 const char *url, const char *method,
				 const char *version, const char *upload_data,
				 size_t *upload_data_size, void **con_cls)
{
	nvcf__http_server *server = cls;
	nvcf__http_req *req = *con_cls;

	if (req == NULL || req->target == NULL)
		return MHD_NO;
	req->conn = conn;

	if (req->phase == PHASE_READING) {
		/*
		 * libmicrohttpd calls once with the headers alone, then once
		 * per body chunk, then once with no data: only that last call
		 * means the body is complete.
		 */
		if (!req->headers_seen) {
			req->headers_seen = true;
			return MHD_YES;
		}
		if (*upload_data_size > 0) {
			req->body_received += *upload_data_size;
			if (req->too_large ||
			    req->body.len + *upload_data_size >
				    server->config.max_body) {
				/* The rest is read and dropped. */
				req->too_large = true;
				nvcf__buf_free(&req->body);
			} else if (nvcf__buf_append(&req->body, upload_data,
						    *upload_data_size) !=
				   NVCF_OK) {
				return MHD_NO;
			}
			*upload_data_size = 0;
			return MHD_YES;
		}
		req->phase = PHASE_HANDLED;
		req->method = method;
		req->path = strdup(url ? url : "/");
		if (req->path == NULL)
			return MHD_NO;
		if (req->too_large)
			nvcf__http_send_problem(
				req, 413, NULL,
				"request body of %llu bytes exceeds the limit "
				"of %zu bytes",
				(unsigned long long)req->body_received,
				server->config.max_body);
		else
			server->config.handler(req, server->config.userdata);
	}

	/* The handler responded, or a resumed request has its response. */
	if (atomic_load(&req->answered) &&
	    (req->response != NULL || req->status != 0)) {
		enum MHD_Result rc = queue_staged(req);

		req->status = 0;
		return rc;
	}
	return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn,
			 void **con_cls, enum MHD_RequestTerminationCode toe)
{
	nvcf__http_req *req = *con_cls;

	if (req == NULL)
		return;
	if (req->done != NULL)
		req->done(req, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK,
			  req->state);
	if (req->response != NULL)
		MHD_destroy_response(req->response);
	nvcf__buf_free(&req->body);
	free(req->target);
	free(req->path);
	free(req);
	*con_cls = NULL;
}

/* ---- server ---------------------------------------------------------------- */

nvcf_status nvcf__http_server_new(nvcf__http_server **out,
				  const nvcf__http_config *config)
{
	struct sockaddr_in addr;
	const union MHD_DaemonInfo *info;
	nvcf__http_server *server;
	const char *bind_address;

	*out = NULL;
	server = calloc(1, sizeof(*server));
	if (server == NULL)
		return nvcf__error_oom();
	server->config = *config;
	if (server->config.threads == 0)
		server->config.threads = 2;
	if (server->config.max_body == 0)
		server->config.max_body = 16u << 20;
	if (server->config.connection_timeout_s == 0)
		server->config.connection_timeout_s = 120;

	bind_address = config->bind_address ? config->bind_address
					    : "127.0.0.1";
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons(config->port);
	if (inet_pton(AF_INET, bind_address, &addr.sin_addr) != 1) {
		free(server);
		return nvcf__error_set(NVCF_EINVAL,
				       "invalid IPv4 listen address '%s'",
				       bind_address);
	}

	server->daemon = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
			MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO,
		config->port, NULL, NULL, on_access, server,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
		MHD_OPTION_THREAD_POOL_SIZE, server->config.threads,
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, server,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, server,
		MHD_OPTION_CONNECTION_TIMEOUT,
		server->config.connection_timeout_s,
		MHD_OPTION_CONNECTION_LIMIT, 60000u,
		MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_END);
	if (server->daemon == NULL) {
		free(server);
		return nvcf__error_set(NVCF_EUNAVAILABLE,
				       "cannot listen on %s:%u (port in use or "
				       "not permitted)",
				       bind_address, (unsigned)config->port);
	}
	info = MHD_get_daemon_info(server->daemon, MHD_DAEMON_INFO_BIND_PORT);
	server->port = info ? info->port : config->port;
	*out = server;
	return NVCF_OK;
}

void nvcf__http_server_free(nvcf__http_server *server)
{
	if (server == NULL)
		return;
	if (server->daemon != NULL)
		MHD_stop_daemon(server->daemon);
	free(server);
}

uint16_t nvcf__http_server_port(const nvcf__http_server *server)
{
	return server->port;
}
