/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small layer over libmicrohttpd shared by the REST services: it collects
 * the request body, hands a complete request to one handler, and lets the
 * handler respond at once or suspend the connection and respond later from
 * any thread, so that a long poll holds no thread.
 */
#ifndef NVCF_HTTP_H
#define NVCF_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

#include "core/internal.h"

typedef struct nvcf__http_server nvcf__http_server;
typedef struct nvcf__http_req nvcf__http_req;

/*
 * Called once per complete request, on a server thread. The handler calls
 * nvcf__http_send() or nvcf__http_suspend() once; a second send is ignored.
 */
typedef void (*nvcf__http_handler_cb)(nvcf__http_req *req, void *userdata);

/* Called when the connection of a request ends, with or without a response. */
typedef void (*nvcf__http_done_cb)(nvcf__http_req *req, bool answered,
				   void *state);

typedef struct nvcf__http_config {
	const char *bind_address; /* NULL means 127.0.0.1 */
	uint16_t port;            /* 0 picks a free port */
	unsigned int threads;     /* 0 means 2 */
	size_t max_body;          /* larger bodies get 413; 0 means 16 MiB */
	unsigned int connection_timeout_s; /* idle keep-alive; 0 means 120 */
	nvcf__http_handler_cb handler;
	void *userdata;
} nvcf__http_config;

nvcf_status nvcf__http_server_new(nvcf__http_server **out,
				  const nvcf__http_config *config);
void nvcf__http_server_free(nvcf__http_server *server);
uint16_t nvcf__http_server_port(const nvcf__http_server *server);

/* Request accessors; every returned pointer lives as long as the request. */
const char *nvcf__http_method(const nvcf__http_req *req);
const char *nvcf__http_path(const nvcf__http_req *req);   /* no query */
const char *nvcf__http_target(const nvcf__http_req *req); /* path?query */
const char *nvcf__http_header(const nvcf__http_req *req, const char *name);
const char *nvcf__http_query(const nvcf__http_req *req, const char *name);
const char *nvcf__http_body(const nvcf__http_req *req, size_t *len_out);

/* Calls @p cb for every request header; stops when it returns false. */
void nvcf__http_foreach_header(const nvcf__http_req *req,
			       bool (*cb)(const char *name, const char *value,
					  void *userdata),
			       void *userdata);

/* Attaches handler state, released through @p done after the connection. */
void nvcf__http_set_state(nvcf__http_req *req, void *state,
			  nvcf__http_done_cb done);

/* Builds a response with a copy of @p body; NULL on out-of-memory. */
struct MHD_Response *nvcf__http_response(const char *content_type,
					 const void *body, size_t len);

/* Queues @p response (takes ownership) with @p status on a live request. */
void nvcf__http_send(nvcf__http_req *req, unsigned int status,
		     struct MHD_Response *response);

/* Convenience: a JSON body (NUL-terminated) with @p status. */
void nvcf__http_send_json(nvcf__http_req *req, unsigned int status,
			  const char *json);

/*
 * Sends an RFC 7807 problem body. @p type_urn may be NULL for the default
 * "urn:nv-boot:problem-details:<kebab reason>"; pass "" to omit "type".
 */
void nvcf__http_send_problem(nvcf__http_req *req, unsigned int status,
			     const char *type_urn, const char *fmt, ...)
	NVCF_PRINTF(4, 5);

/* Plain text body, as some invocation rejections are. */
void nvcf__http_send_text(nvcf__http_req *req, unsigned int status,
			  const char *text);

/* Builds the problem body used by nvcf__http_send_problem(). */
struct MHD_Response *nvcf__http_problem_response(unsigned int status,
						 const char *type_urn,
						 const char *detail,
						 const char *instance);

/* Suspends the connection until nvcf__http_resume() sends the response. */
void nvcf__http_suspend(nvcf__http_req *req);

/*
 * Answers a suspended request from any thread. Returns false when the
 * request was already answered (the response is then destroyed).
 */
bool nvcf__http_resume(nvcf__http_req *req, unsigned int status,
		       struct MHD_Response *response);

/*
 * Suspends the connection of @p req from inside the content reader
 * callback of its response, which then returns 0 because it has no data
 * yet. libmicrohttpd 0.9.75 documents this as the way to wait inside a
 * content reader without busy polling. A suspended connection does not
 * notice that the caller went away until it is resumed and writes.
 */
void nvcf__http_reader_suspend(nvcf__http_req *req);

/*
 * Resumes, from any thread, a connection that nvcf__http_reader_suspend()
 * suspended, so that its content reader runs again. Call it once per
 * suspension and only after the suspension happened.
 */
void nvcf__http_reader_resume(nvcf__http_req *req);

/*
 * Shuts the socket of @p req down, from inside a content reader that is
 * about to return MHD_CONTENT_READER_END_WITH_ERROR, so that the caller
 * sees the truncated response at once. With MHD_USE_TURBO, libmicrohttpd
 * 0.9.75 closes the socket only at the connection's next event, which for
 * a caller that waits for data never comes (seen with a test program).
 */
void nvcf__http_reader_abort(nvcf__http_req *req);

/* Reason phrase for a status ("Not Found"). */
const char *nvcf__http_reason(unsigned int status);

/* Microseconds (monotonic) when the request's first byte arrived. */
int64_t nvcf__http_start_us(const nvcf__http_req *req);

#endif /* NVCF_HTTP_H */
