/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "bus/bus_internal.h"
#include "bus/chunks.h"
#include "core/internal.h"
#include "http/http.h"
#include "nvcf.pb-c.h"
#include "nvcf/worker.h"
#include "request/request_internal.h"

#define SUB "worker"

/* A fetch that finds nothing returns after this long to re-check stop. */
#define FETCH_EXPIRY_MS 1000
#define NAK_DELAY_MS 1000
/* NVCF itself limits responses to 5 MiB; chunked results allow more. */
#define DEFAULT_MAX_RESPONSE_BYTES ((size_t)64 << 20)
/*
 * A request completed within this long sends no ACCEPTED result. The gateway
 * needs one only when its poll window ends first, so skipping it takes two
 * NATS hops and a gateway wake-up off the hot path.
 */
#define ACCEPT_DELAY_US 20000
/* Closer than this to the end of its poll window, ACCEPTED goes at once. */
#define ACCEPT_NOW_WINDOW_US 250000
/* The ticker keeps its short period this long after the last request. */
#define TICKER_BUSY_US 1000000
#define PROBLEM_URN "urn:inference-service:problem-details:"
/*
 * Largest body piece of a streamed response in one message. curl hands
 * over at most 16 KiB per write callback by default, so this only splits
 * what a larger CURLOPT_BUFFERSIZE would deliver.
 */
#define STREAM_PIECE_MAX ((size_t)64 * 1024)
/* NVCF ends any exchange after 3600 s + 5 s; a stream too. */
#define STREAM_MAX_US (INT64_C(3605) * 1000000)

typedef struct slot {
	struct nvcf_worker *w;
	pthread_t thread;
	bool started;
	CURL *curl;
	natsSubscription *sub;
	/* The request this thread holds; guarded by the worker lock. */
	natsMsg *held;
	char request_id[128];
	atomic_bool cancel;
	/* Monotonic end of a streamed call (0: none); set on expiry. */
	int64_t stream_deadline_us;
	bool stream_expired;
	/* ACCEPTED result not sent yet, due at accept_due_us (worker lock). */
	bool accept_pending;
	uint8_t *accept_buf; /* reused from request to request */
	size_t accept_len, accept_cap;
	char accept_subject[256];
	int64_t accept_due_us;
} slot;

struct nvcf_worker {
	nvcf_bus *bus;
	natsConnection *conn;
	jsCtx *js;
	char *function_id, *version_id, *instance_id, *nca_id;
	char *function_name, *function_url, *instance_type, *backend;
	char *region;
	char stream[128], durable[160], subject[192];
	int concurrency;
	int64_t ack_wait_ms, grace_ms;
	size_t max_response_bytes;
	size_t inline_limit; /* larger result bodies become chunks */
	size_t chunk_size;
	size_t stream_piece; /* largest body piece of a streamed response */

	pthread_mutex_t lock;
	pthread_cond_t cond;
	slot *slots;
	int running; /* fetch threads not yet exited */
	atomic_bool stopping;
	atomic_bool abort_all;
	bool stopped;

	pthread_t ticker;
	pthread_cond_t tick_cond;
	bool ticker_started;
	bool ticker_stop;
	/* Next wake-up of the ticker, and the load it last reported. */
	int64_t ticker_wake_us;
	int64_t last_busy_us;
	int reported_load;

	natsSubscription *cancel_sub;
	nvcf_worker_stats stats;
};

/* ---- results ---------------------------------------------------------- */

/* The sending side of one streamed response. */
typedef struct stream_out {
	nvcf_worker *w;
	const Nvcf__InvokeRequest *req;
	uint64_t seq; /* stream_seq of the next message */
	bool head_sent;
	uint64_t body_bytes;
	char error[256]; /* why a publish failed, or "" */
} stream_out;

typedef struct response {
	nvcf__buf body;
	Nvcf__Header **headers;
	size_t n_headers;
	size_t cap_headers;
	size_t max_body; /* a larger body aborts the call with too_large */
	bool too_large;
	long status; /* from the last status line */
	/* Set when the body goes to the caller as a stream, not into body. */
	stream_out *stream;
} response;

static void response_free(response *r)
{
	for (size_t i = 0; i < r->n_headers; i++) {
		free(r->headers[i]->name);
		free(r->headers[i]->value);
		free(r->headers[i]);
	}
	free(r->headers);
	nvcf__buf_free(&r->body);
	memset(r, 0, sizeof(*r));
}

static bool response_add_header(response *r, const char *name, size_t nlen,
				const char *value, size_t vlen)
{
	Nvcf__Header *h;

	if (r->n_headers == r->cap_headers) {
		size_t cap = r->cap_headers ? r->cap_headers * 2 : 16;
		Nvcf__Header **grown = realloc(r->headers,
					       cap * sizeof(*grown));

		if (grown == NULL)
			return false;
		r->headers = grown;
		r->cap_headers = cap;
	}
	h = malloc(sizeof(*h));
	if (h == NULL)
		return false;
	nvcf__header__init(h);
	h->name = nvcf__strndup(name, nlen);
	h->value = nvcf__strndup(value, vlen);
	if (h->name == NULL || h->value == NULL) {
		free(h->name);
		free(h->value);
		free(h);
		return false;
	}
	r->headers[r->n_headers++] = h;
	return true;
}

/* Headers that describe one hop, not the response; the gateway sets its own. */
static bool hop_by_hop(const char *name, size_t len)
{
	static const char *const names[] = {
		"connection", "keep-alive", "transfer-encoding",
		"content-length", "te", "trailer", "upgrade",
		"proxy-authenticate", "proxy-authorization"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == len &&
		    strncasecmp(names[i], name, len) == 0)
			return true;
	return false;
}

static bool stream_send_head(response *r);
static bool stream_send_body(response *r, const char *data, size_t len);

static size_t on_header(char *data, size_t size, size_t n, void *userdata)
{
	response *r = userdata;
	size_t len = size * n, nlen, vstart, vend;
	const char *colon;

	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		const char *code = memchr(data, ' ', len);

		/* A new status line (after 100 Continue): start over. */
		for (size_t i = 0; i < r->n_headers; i++) {
			free(r->headers[i]->name);
			free(r->headers[i]->value);
			free(r->headers[i]);
		}
		r->n_headers = 0;
		r->status = 0;
		if (code != NULL && (size_t)(code - data) + 4 <= len)
			r->status = strtol(code + 1, NULL, 10);
		return len;
	}
	/* The blank line that ends a final (not 1xx) head. */
	if ((len == 2 && data[0] == '\r') || (len == 1 && data[0] == '\n')) {
		if (r->stream != NULL && r->status >= 200 &&
		    !r->stream->head_sent && !stream_send_head(r))
			return 0;
		return len;
	}
	colon = memchr(data, ':', len);
	if (colon == NULL)
		return len;
	nlen = (size_t)(colon - data);
	if (hop_by_hop(data, nlen))
		return len;
	vstart = nlen + 1;
	while (vstart < len && (data[vstart] == ' ' || data[vstart] == '\t'))
		vstart++;
	vend = len;
	while (vend > vstart && (data[vend - 1] == '\r' ||
				 data[vend - 1] == '\n' ||
				 data[vend - 1] == ' '))
		vend--;
	if (!response_add_header(r, data, nlen, data + vstart, vend - vstart))
		return 0;
	return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *userdata)
{
	response *r = userdata;
	size_t len = size * n;

	if (r->stream != NULL)
		return stream_send_body(r, data, len) ? len : 0;
	if (r->body.len + len > r->max_body) {
		r->too_large = true;
		return 0;
	}
	if (nvcf__buf_append(&r->body, data, len) != NVCF_OK)
		return 0;
	return len;
}

static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow,
		       curl_off_t ultotal, curl_off_t ulnow)
{
	slot *s = userdata;

	if (atomic_load(&s->cancel) || atomic_load(&s->w->abort_all))
		return 1;
	if (s->stream_deadline_us > 0 &&
	    nvcf__mono_us() > s->stream_deadline_us) {
		s->stream_expired = true;
		return 1;
	}
	return 0;
}

static void result_init(nvcf_worker *w, Nvcf__InvokeResult *res,
			const Nvcf__InvokeRequest *req, Nvcf__ResultKind kind)
{
	nvcf__invoke_result__init(res);
	res->request_id = req->request_id;
	res->kind = kind;
	res->instance_id = w->instance_id;
	res->nca_id = req->nca_id;
	res->function_id = req->function_id;
	res->version_id = req->version_id;
	res->time_us = nvcf__now_us();
}

static uint8_t *result_pack(const Nvcf__InvokeResult *res, size_t *len_out)
{
	size_t len = nvcf__invoke_result__get_packed_size(res);
	uint8_t *buf = malloc(len ? len : 1);

	if (buf != NULL)
		nvcf__invoke_result__pack(res, buf);
	*len_out = len;
	return buf;
}

/*
 * Publishes one STREAM message of @p so to the request's reply subject on
 * core NATS. On failure it records why in so->error and returns false, so
 * that the curl callback aborts the transfer.
 */
static bool stream_publish(stream_out *so, Nvcf__InvokeResult *res)
{
	nvcf_worker *w = so->w;
	int64_t limit = natsConnection_GetMaxPayload(w->conn);
	unsigned long long seq = (unsigned long long)so->seq;
	natsStatus ns;
	uint8_t *buf;
	size_t len;

	res->stream_seq = so->seq;
	buf = result_pack(res, &len);
	if (buf == NULL) {
		snprintf(so->error, sizeof(so->error),
			 "out of memory packing stream message %llu", seq);
		return false;
	}
	if ((int64_t)len > limit) {
		snprintf(so->error, sizeof(so->error),
			 "stream message %llu of %zu bytes exceeds the NATS "
			 "max_payload of %lld bytes",
			 seq, len, (long long)limit);
		free(buf);
		return false;
	}
	ns = natsConnection_Publish(w->conn, so->req->reply_subject, buf,
				    (int)len);
	free(buf);
	if (ns != NATS_OK) {
		snprintf(so->error, sizeof(so->error),
			 "publishing stream message %llu failed: %s", seq,
			 natsStatus_GetText(ns));
		return false;
	}
	so->seq++;
	return true;
}

/* Publishes the head (stream_seq 0): the function's status and headers. */
static bool stream_send_head(response *r)
{
	stream_out *so = r->stream;
	Nvcf__InvokeResult res;

	result_init(so->w, &res, so->req,
		    NVCF__RESULT_KIND__RESULT_KIND_STREAM);
	res.status_code = (int32_t)r->status;
	res.headers = r->headers;
	res.n_headers = r->n_headers;
	if (!stream_publish(so, &res))
		return false;
	so->head_sent = true;
	return true;
}

/* Publishes body bytes at once, split into pieces of w->stream_piece. */
static bool stream_send_body(response *r, const char *data, size_t len)
{
	stream_out *so = r->stream;
	Nvcf__InvokeResult res;

	/* curl reports the blank line that ends the head before any body. */
	if (!so->head_sent && !stream_send_head(r))
		return false;
	while (len > 0) {
		size_t n = len;

		if (n > so->w->stream_piece)
			n = so->w->stream_piece;

		result_init(so->w, &res, so->req,
			    NVCF__RESULT_KIND__RESULT_KIND_STREAM);
		res.body.data = (uint8_t *)data;
		res.body.len = n;
		if (!stream_publish(so, &res))
			return false;
		so->body_bytes += n;
		data += n;
		len -= n;
	}
	return true;
}

/* "Internal Server Error" -> "internal-server-error". */
static void kebab(const char *text, char *out, size_t size)
{
	size_t n = 0;

	for (; *text != '\0' && n + 1 < size; text++) {
		if (*text == ' ')
			out[n++] = '-';
		else if (*text >= 'A' && *text <= 'Z')
			out[n++] = (char)(*text - 'A' + 'a');
		else if ((*text >= 'a' && *text <= 'z') ||
			 (*text >= '0' && *text <= '9') || *text == '-')
			out[n++] = *text;
	}
	out[n] = '\0';
}

/*
 * Builds the RFC 7807 body that replaces a function's error response.
 * The detail is @p detail when not NULL, else the "error" string of the
 * function's JSON body, else "Inference error".
 */
static char *problem_body(int status, const char *body, size_t len,
			  const char *detail)
{
	const char *reason = nvcf__http_reason((unsigned int)status);
	char kind[96], *type, *out = NULL;
	cJSON *parsed = cJSON_ParseWithLength(body, len);
	cJSON *err = cJSON_GetObjectItemCaseSensitive(parsed, "error");
	cJSON *obj = cJSON_CreateObject();

	if (detail == NULL && cJSON_IsString(err) &&
	    err->valuestring[0] != '\0')
		detail = err->valuestring;
	if (detail == NULL)
		detail = "Inference error";
	kebab(reason, kind, sizeof(kind));
	type = nvcf__asprintf("%s%s", PROBLEM_URN, kind);
	if (obj != NULL && type != NULL &&
	    cJSON_AddStringToObject(obj, "type", type) &&
	    cJSON_AddStringToObject(obj, "title", reason) &&
	    cJSON_AddNumberToObject(obj, "status", status) &&
	    cJSON_AddStringToObject(obj, "detail", detail))
		out = cJSON_PrintUnformatted(obj);
	free(type);
	cJSON_Delete(obj);
	cJSON_Delete(parsed);
	return out;
}

static void replace_content_type(response *r, const char *value)
{
	for (size_t i = 0; i < r->n_headers; i++) {
		if (strcasecmp(r->headers[i]->name, "Content-Type") == 0) {
			char *copy = nvcf__strdup(value);

			if (copy != NULL) {
				free(r->headers[i]->value);
				r->headers[i]->value = copy;
			}
			return;
		}
	}
	response_add_header(r, "Content-Type", 12, value, strlen(value));
}

/* ---- the function call ------------------------------------------------ */

static bool nvcf_header_name(const char *name)
{
	static const char *const names[] = {
		"NVCF-REQID", "NVCF-SUB", "NVCF-NCAID", "NVCF-FUNCTION-NAME",
		"NVCF-FUNCTION-ID", "NVCF-FUNCTION-VERSION-ID",
		"NVCF-INSTANCETYPE", "NVCF-BACKEND", "NVCF-REGION",
		"NVCF-MAX-RESPONSE-SIZE-BYTES", "Nvcf-Poll-Seconds",
		"Authorization", "Host", "Content-Length", "Connection",
		"Keep-Alive", "Transfer-Encoding", "TE", "Upgrade", "Expect",
		"Proxy-Authorization"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(names[i], name) == 0)
			return true;
	return false;
}

static struct curl_slist *add_header(struct curl_slist *list, bool *ok,
				     const char *name, const char *value)
{
	struct curl_slist *next;
	char *line;

	if (!*ok)
		return list;
	/* "Name:" removes a header curl adds; "Name;" sends an empty one. */
	if (value == NULL)
		line = nvcf__asprintf("%s:", name);
	else if (value[0] == '\0')
		line = nvcf__asprintf("%s;", name);
	else
		line = nvcf__asprintf("%s: %s", name, value);
	if (line == NULL) {
		*ok = false;
		return list;
	}
	next = curl_slist_append(list, line);
	free(line);
	if (next == NULL)
		*ok = false;
	return next ? next : list;
}

static struct curl_slist *request_headers(nvcf_worker *w,
					  const Nvcf__InvokeRequest *req,
					  bool *ok)
{
	struct curl_slist *h = NULL;
	char num[32];

	*ok = true;
	for (size_t i = 0; i < req->n_headers; i++) {
		const Nvcf__Header *hd = req->headers[i];

		if (hd->name == NULL || hd->name[0] == '\0' ||
		    nvcf_header_name(hd->name) ||
		    strpbrk(hd->name, ":\r\n") != NULL ||
		    (hd->value != NULL && strpbrk(hd->value, "\r\n") != NULL))
			continue;
		h = add_header(h, ok, hd->name, hd->value);
	}
	h = add_header(h, ok, "NVCF-REQID", req->request_id);
	h = add_header(h, ok, "NVCF-SUB", req->caller_subject);
	h = add_header(h, ok, "NVCF-NCAID", req->nca_id);
	h = add_header(h, ok, "NVCF-FUNCTION-NAME",
		       req->function_name && req->function_name[0] ?
		       req->function_name : w->function_name);
	h = add_header(h, ok, "NVCF-FUNCTION-ID", req->function_id);
	h = add_header(h, ok, "NVCF-FUNCTION-VERSION-ID", req->version_id);
	h = add_header(h, ok, "NVCF-INSTANCETYPE", w->instance_type);
	h = add_header(h, ok, "NVCF-BACKEND", w->backend);
	h = add_header(h, ok, "NVCF-REGION", w->region);
	snprintf(num, sizeof(num), "%zu", w->max_response_bytes);
	h = add_header(h, ok, "NVCF-MAX-RESPONSE-SIZE-BYTES", num);
	if (req->poll_deadline_us > 0) {
		int64_t left = req->poll_deadline_us - nvcf__now_us();

		snprintf(num, sizeof(num), "%lld",
			 (long long)(left > 0 ? (left + 999999) / 1000000 : 0));
		h = add_header(h, ok, "Nvcf-Poll-Seconds", num);
	}
	/* No "Expect: 100-continue" round trip for large bodies. */
	h = add_header(h, ok, "Expect", NULL);
	return h;
}

static CURLcode call_function(slot *s, const Nvcf__InvokeRequest *req,
			      response *r, long *status_out)
{
	nvcf_worker *w = s->w;
	struct curl_slist *headers;
	CURL *c = s->curl;
	CURLcode rc;
	char *url;
	bool ok;

	url = nvcf__asprintf("%s%s%s", w->function_url,
			     (req->path && req->path[0] == '/') ? "" : "/",
			     req->path ? req->path : "");
	headers = request_headers(w, req, &ok);
	if (url == NULL || !ok) {
		free(url);
		curl_slist_free_all(headers);
		return CURLE_OUT_OF_MEMORY;
	}
	/* A reset keeps the live connection, so calls reuse it. */
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, s);
	if (req->method == NULL || req->method[0] == '\0' ||
	    strcmp(req->method, "GET") == 0) {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(req->method, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else {
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)req->body.len);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS,
				 req->body.len ? (char *)req->body.data : "");
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
	}
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status_out);
	curl_slist_free_all(headers);
	free(url);
	return rc;
}

static bool unreachable(CURLcode rc)
{
	return rc == CURLE_COULDNT_CONNECT || rc == CURLE_SEND_ERROR ||
	       rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING;
}

/* ---- one request ------------------------------------------------------ */

/*
 * Tells autoscalers how many requests this instance holds, so that a
 * scale-down stops idle instances before busy ones. Core NATS, no reply:
 * a lost report only makes one choice less informed.
 */
static void report_load(nvcf_worker *w, int in_flight)
{
	char subject[256], num[16];

	snprintf(subject, sizeof(subject), "nvcf.load.%s.%s", w->version_id,
		 w->instance_id);
	snprintf(num, sizeof(num), "%d", in_flight);
	natsConnection_PublishString(w->conn, subject, num);
}

static void accept_drop(slot *s)
{
	s->accept_pending = false;
}

/*
 * Packs @p res into the slot's own buffer, which grows as needed, so the
 * hot path allocates nothing. False when out of memory.
 */
static bool accept_pack(slot *s, const Nvcf__InvokeResult *res)
{
	size_t len = nvcf__invoke_result__get_packed_size(res);

	if (len > s->accept_cap) {
		uint8_t *buf = realloc(s->accept_buf, len);

		if (buf == NULL)
			return false;
		s->accept_buf = buf;
		s->accept_cap = len;
	}
	s->accept_len = nvcf__invoke_result__pack(res, s->accept_buf);
	return true;
}

/*
 * Records @p msg as the request of slot @p s. The ACCEPTED result
 * @p accept (NULL for none) is sent at once when the poll window is nearly
 * over, otherwise by the ticker if the function still runs
 * ACCEPT_DELAY_US later. The ticker also sends the load report.
 */
static void hold(slot *s, natsMsg *msg, const Nvcf__InvokeRequest *req,
		 const Nvcf__InvokeResult *accept)
{
	nvcf_worker *w = s->w;
	int64_t now = nvcf__mono_us();
	bool send = accept != NULL && req->reply_subject != NULL &&
		    req->reply_subject[0] != '\0' && accept_pack(s, accept);
	bool now_due = req->poll_deadline_us > 0 &&
		       req->poll_deadline_us - nvcf__now_us() <
			       ACCEPT_NOW_WINDOW_US;
	bool wake_ticker = false;

	/* The slot's buffer is free here: its last request was released. */
	if (send && (now_due || strlen(req->reply_subject) >=
					sizeof(s->accept_subject))) {
		natsConnection_Publish(w->conn, req->reply_subject,
				       s->accept_buf, (int)s->accept_len);
		send = false;
	}
	pthread_mutex_lock(&w->lock);
	s->held = msg;
	snprintf(s->request_id, sizeof(s->request_id), "%s",
		 req->request_id);
	atomic_store(&s->cancel, false);
	w->stats.in_flight++;
	w->last_busy_us = now;
	if (send) {
		snprintf(s->accept_subject, sizeof(s->accept_subject), "%s",
			 req->reply_subject);
		s->accept_pending = true;
		s->accept_due_us = now + ACCEPT_DELAY_US;
		/* Wake a ticker that sleeps past the due time. */
		wake_ticker = w->ticker_wake_us >
			      s->accept_due_us + ACCEPT_DELAY_US;
	}
	if (wake_ticker)
		pthread_cond_signal(&w->tick_cond);
	pthread_mutex_unlock(&w->lock);
}

static void release(slot *s)
{
	nvcf_worker *w = s->w;

	pthread_mutex_lock(&w->lock);
	s->held = NULL;
	s->request_id[0] = '\0';
	accept_drop(s);
	w->stats.in_flight--;
	w->last_busy_us = nvcf__mono_us();
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

/*
 * True when a final result of @p request_id is already stored: the worker
 * that produced it crashed after the store and before the ack.
 */
static bool already_answered(nvcf_worker *w, natsMsg *msg,
			     const char *request_id)
{
	jsMsgMetaData *meta = NULL;
	Nvcf__InvokeResult *res;
	natsMsg *last = NULL;
	char subject[192];
	jsErrCode jerr = 0;
	bool final = false;
	uint64_t delivered = 1;

	/* A first delivery cannot have a stored result: skip the lookup. */
	if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
		delivered = meta->NumDelivered;
		jsMsgMetaData_Destroy(meta);
	}
	if (delivered <= 1)
		return false;
	nvcf__result_subject(subject, sizeof(subject), request_id);
	if (js_GetLastMsg(&last, w->js, NVCF_STREAM_RESULTS, subject, NULL,
			  &jerr) != NATS_OK)
		return false;
	res = nvcf__invoke_result__unpack(
		NULL, (size_t)natsMsg_GetDataLength(last),
		(const uint8_t *)natsMsg_GetData(last));
	final = res != NULL && res->kind == NVCF__RESULT_KIND__RESULT_KIND_FINAL;
	nvcf__invoke_result__free_unpacked(res, NULL);
	natsMsg_Destroy(last);
	return final;
}

static void stat_add(nvcf_worker *w, uint64_t *counter)
{
	pthread_mutex_lock(&w->lock);
	(*counter)++;
	pthread_mutex_unlock(&w->lock);
}

/*
 * Stores a result body over the inline limit as chunks on
 * res.{requestId}.c.{n} in NVCF_RESULTS and leaves in @p res the size,
 * chunk count and digest (in @p digest) in place of the body.
 */
static nvcf_status store_result_chunks(nvcf_worker *w,
				       const Nvcf__InvokeRequest *req,
				       Nvcf__InvokeResult *res,
				       uint8_t digest[NVCF__SHA256_LEN])
{
	char prefix[192];
	uint32_t count = 0;
	nvcf_status st;

	snprintf(prefix, sizeof(prefix), "res.%s.c", req->request_id);
	st = nvcf__body_digest(res->body.data, res->body.len, digest);
	if (st == NVCF_OK)
		st = nvcf__chunks_store(w->js, NVCF_STREAM_RESULTS, prefix,
					res->body.data, res->body.len,
					w->chunk_size, &count);
	if (st != NVCF_OK)
		return st;
	nvcf_log_debug(SUB, "request %s: stored a result body of %zu bytes "
		       "in %u chunks", req->request_id, res->body.len,
		       (unsigned int)count);
	res->body_size = res->body.len;
	res->body_chunks = count;
	res->body_sha256.data = digest;
	res->body_sha256.len = NVCF__SHA256_LEN;
	res->body.data = NULL;
	res->body.len = 0;
	return NVCF_OK;
}

static nvcf_status publish_final(nvcf_worker *w,
				 const Nvcf__InvokeRequest *req,
				 Nvcf__InvokeResult *res)
{
	uint8_t digest[NVCF__SHA256_LEN];
	char subject[192];
	uint8_t *buf;
	size_t len;
	nvcf_status st;

	/* The chunks are stored before the envelope that points to them. */
	if (res->body.len > w->inline_limit &&
	    (st = store_result_chunks(w, req, res, digest)) != NVCF_OK)
		return st;
	buf = result_pack(res, &len);
	if (buf == NULL)
		return nvcf__error_oom();

	/*
	 * Only a result with huge headers gets here: it becomes a 502 naming
	 * the limit, because handing the request back would call the
	 * function again with the same outcome.
	 */
	if ((int64_t)len > natsConnection_GetMaxPayload(w->conn)) {
		char detail[256];
		int64_t limit = natsConnection_GetMaxPayload(w->conn);

		nvcf_log_warn(SUB, "result of request %s is %zu bytes, over the "
			      "NATS max_payload of %lld; answering 502",
			      req->request_id, len, (long long)limit);
		free(buf);
		snprintf(detail, sizeof(detail),
			 "{\"type\":\"urn:inference-service:problem-details:"
			 "bad-gateway\",\"title\":\"Bad Gateway\","
			 "\"status\":502,\"detail\":\"response of %zu bytes "
			 "exceeds the limit of %lld bytes\"}",
			 len, (long long)limit);
		res->status_code = 502;
		res->n_headers = 0;
		res->headers = NULL;
		res->body.data = (uint8_t *)detail;
		res->body.len = strlen(detail);
		res->body_size = 0;
		res->body_chunks = 0;
		res->body_sha256.data = NULL;
		res->body_sha256.len = 0;
		res->error = "response exceeds the NATS max_payload";
		buf = result_pack(res, &len);
		if (buf == NULL)
			return nvcf__error_oom();
	}
	if (req->reply_subject != NULL && req->reply_subject[0] != '\0')
		natsConnection_Publish(w->conn, req->reply_subject, buf,
				       (int)len);
	nvcf__result_subject(subject, sizeof(subject), req->request_id);
	st = nvcf_bus_publish(w->bus, subject, buf, len, NULL);
	free(buf);
	return st;
}

/* Purges the body chunks of @p req, if it has any; logs a failure. */
static void drop_request_chunks(nvcf_worker *w,
				const Nvcf__InvokeRequest *req)
{
	char prefix[192];

	if (req->body_chunks == 0)
		return;
	snprintf(prefix, sizeof(prefix), "body.%s", req->request_id);
	nvcf__chunks_purge(w->js, NVCF__STREAM_BODIES, prefix);
}

/*
 * Reads the chunks of a request body stored by the gateway and checks
 * size and digest. *out gets the body (malloc). NVCF_ENOTFOUND names the
 * missing chunk; NVCF_EPROTO and NVCF_EINVAL a corrupt body or envelope.
 */
static nvcf_status fetch_request_body(nvcf_worker *w,
				      const Nvcf__InvokeRequest *req,
				      uint8_t **out)
{
	char prefix[192], what[192];
	natsMsg **msgs = NULL;
	nvcf_status st;

	*out = NULL;
	snprintf(prefix, sizeof(prefix), "body.%s", req->request_id);
	snprintf(what, sizeof(what), "body of request %s", req->request_id);
	st = nvcf__chunk_envelope_check(req->body_size, req->body_chunks,
					req->body_sha256.len, SIZE_MAX - 1,
					what);
	if (st != NVCF_OK)
		return st;
	st = nvcf__chunks_fetch(w->js, NVCF__STREAM_BODIES, prefix,
				req->body_chunks, req->body_size,
				req->body_sha256.data, req->body_sha256.len,
				what, &msgs);
	if (st != NVCF_OK)
		return st;
	st = nvcf__chunks_join(msgs, req->body_chunks, req->body_size, out);
	nvcf__chunks_free(msgs, req->body_chunks);
	return st;
}

/*
 * Releases slot @p s, acks the request in @p msg and purges its body
 * chunks, counting it in @p counter. The ack needs no reply because the
 * final result is stored first: if the ack is lost, the redelivery finds
 * that result and is acked without a call.
 */
static void acknowledge(slot *s, natsMsg *msg,
			const Nvcf__InvokeRequest *req, uint64_t *counter)
{
	nvcf_worker *w = s->w;

	release(s);
	if (natsMsg_Ack(msg, NULL) != NATS_OK)
		nvcf_log_warn(SUB, "acknowledging request %s failed; a "
			      "redelivery will find its stored result",
			      req->request_id);
	drop_request_chunks(w, req);
	stat_add(w, counter);
}

/*
 * Stores the final result @p res of the request in @p msg, then
 * acknowledges it, counting it in @p counter. A failed store hands the
 * request back instead.
 */
static void conclude(slot *s, natsMsg *msg, const Nvcf__InvokeRequest *req,
		     Nvcf__InvokeResult *res, uint64_t *counter)
{
	nvcf_worker *w = s->w;

	if (publish_final(w, req, res) != NVCF_OK) {
		nvcf_log_error(SUB, "storing the result of request %s failed: "
			       "%s; handing it back", req->request_id,
			       nvcf_error_last()->message);
		release(s);
		natsMsg_NakWithDelay(msg, NAK_DELAY_MS, NULL);
		stat_add(w, &w->stats.failed);
		return;
	}
	acknowledge(s, msg, req, counter);
}

/*
 * Responds to a request whose body chunks are missing (502) or corrupt
 * (500) with a FINAL result that names the request and the chunk, then
 * acknowledges it and purges what is left of its body.
 */
static void answer_body_error(slot *s, natsMsg *msg,
			      const Nvcf__InvokeRequest *req, nvcf_status st)
{
	nvcf_worker *w = s->w;
	int status = st == NVCF_ENOTFOUND ? 502 : 500;
	Nvcf__Header content_type = NVCF__HEADER__INIT;
	Nvcf__Header *headers[1] = {&content_type};
	Nvcf__InvokeResult res;
	char detail[512];
	char *problem;

	snprintf(detail, sizeof(detail), "%s", nvcf_error_last()->message);
	nvcf_log_warn(SUB, "%s; responding %d", detail, status);
	problem = problem_body(status, NULL, 0, detail);
	result_init(w, &res, req, NVCF__RESULT_KIND__RESULT_KIND_FINAL);
	res.status_code = status;
	res.error = detail;
	content_type.name = "Content-Type";
	content_type.value = "application/problem+json";
	res.headers = headers;
	res.n_headers = 1;
	if (problem != NULL) {
		res.body.data = (uint8_t *)problem;
		res.body.len = strlen(problem);
	}
	conclude(s, msg, req, &res, &w->stats.failed);
	free(problem);
}

/* Value of request header @p name (any case), or NULL. */
static const char *request_header(const Nvcf__InvokeRequest *req,
				  const char *name)
{
	for (size_t i = 0; i < req->n_headers; i++)
		if (req->headers[i]->name != NULL &&
		    strcasecmp(req->headers[i]->name, name) == 0)
			return req->headers[i]->value;
	return NULL;
}

/*
 * Arms the stream deadline of slot @p s: STREAM_MAX_US after the gateway
 * accepted @p req, so that a stream stops even when no gateway cancels it.
 */
static void stream_arm_deadline(slot *s, const Nvcf__InvokeRequest *req)
{
	int64_t now = nvcf__now_us();
	int64_t start = req->request_time_us > 0 && req->request_time_us < now
				? req->request_time_us
				: now;

	s->stream_deadline_us = nvcf__mono_us() + (start + STREAM_MAX_US - now);
	s->stream_expired = false;
}

/*
 * Ends a streamed response whose head went out: publishes the FINAL that
 * closes the stream (with the error, if it broke off) to the caller and
 * stores it on res.{requestId}, then acknowledges the request. The stored
 * record keeps no body. It lets a redelivery be acknowledged without
 * calling the function again, and lets a poll report that the response
 * was streamed.
 */
static void finish_stream(slot *s, natsMsg *msg,
			  const Nvcf__InvokeRequest *req, const response *r,
			  const stream_out *so, CURLcode rc)
{
	nvcf_worker *w = s->w;
	Nvcf__InvokeResult res;
	char error[320] = "";

	if (so->error[0] != '\0')
		snprintf(error, sizeof(error), "%s", so->error);
	else if (rc != CURLE_OK && s->stream_expired)
		snprintf(error, sizeof(error),
			 "stream exceeded the limit of %lld s",
			 (long long)(STREAM_MAX_US / 1000000));
	else if (rc == CURLE_ABORTED_BY_CALLBACK)
		snprintf(error, sizeof(error),
			 "worker stopped before the stream ended");
	else if (rc != CURLE_OK)
		snprintf(error, sizeof(error), "function stream failed: %s",
			 curl_easy_strerror(rc));
	if (error[0] != '\0')
		nvcf_log_warn(SUB, "request %s: %s after %llu body bytes; "
			      "ending the stream with an error",
			      req->request_id, error,
			      (unsigned long long)so->body_bytes);
	else
		nvcf_log_debug(SUB, "request %s: streamed %llu body bytes in "
			       "%llu messages", req->request_id,
			       (unsigned long long)so->body_bytes,
			       (unsigned long long)so->seq);

	result_init(w, &res, req, NVCF__RESULT_KIND__RESULT_KIND_FINAL);
	res.streamed = true;
	res.stream_seq = so->seq;
	res.status_code = (int32_t)r->status;
	if (error[0] != '\0')
		res.error = error;
	/*
	 * The caller already has the response, so a failed store still
	 * acknowledges: handing the request back would call the function
	 * a second time for a caller that no longer waits.
	 */
	if (publish_final(w, req, &res) != NVCF_OK)
		nvcf_log_error(SUB, "storing the end of the stream of request "
			       "%s failed: %s; acknowledging it anyway",
			       req->request_id, nvcf_error_last()->message);
	acknowledge(s, msg, req,
		    error[0] != '\0' ? &w->stats.failed : &w->stats.completed);
}

static void handle(slot *s, natsMsg *msg)
{
	nvcf_worker *w = s->w;
	Nvcf__InvokeRequest *req;
	Nvcf__InvokeResult res;
	ProtobufCBinaryData sent_body = {0, NULL};
	uint8_t *body = NULL;
	response r = {0};
	stream_out so = {0};
	jsErrCode jerr = 0;
	char *problem = NULL;
	long status = 0;
	bool streaming;
	CURLcode rc;
	nvcf_status st;

	req = nvcf__invoke_request__unpack(
		NULL, (size_t)natsMsg_GetDataLength(msg),
		(const uint8_t *)natsMsg_GetData(msg));
	if (req == NULL || req->request_id == NULL ||
	    req->request_id[0] == '\0') {
		nvcf_log_error(SUB, "malformed request on '%s' of version %s: "
			       "not an InvokeRequest; terminating it",
			       natsMsg_GetSubject(msg), w->version_id);
		natsMsg_Term(msg, NULL);
		nvcf__invoke_request__free_unpacked(req, NULL);
		return;
	}
	if (already_answered(w, msg, req->request_id)) {
		nvcf_log_info(SUB, "request %s already has a final result; "
			      "acknowledging the redelivery", req->request_id);
		natsMsg_AckSync(msg, NULL, &jerr);
		drop_request_chunks(w, req);
		stat_add(w, &w->stats.duplicates);
		nvcf__invoke_request__free_unpacked(req, NULL);
		return;
	}
	r.max_body = w->max_response_bytes;
	/*
	 * A streamed request sends no ACCEPTED: its gateway waits for the
	 * response head, which the stream sends as soon as curl has it.
	 */
	streaming = req->reply_subject != NULL &&
		    req->reply_subject[0] != '\0' &&
		    nvcf__accepts_event_stream(request_header(req, "Accept"));
	if (streaming) {
		so.w = w;
		so.req = req;
		r.stream = &so;
	} else {
		result_init(w, &res, req,
			    NVCF__RESULT_KIND__RESULT_KIND_ACCEPTED);
	}
	hold(s, msg, req, streaming ? NULL : &res);

	if (req->body_chunks > 0) {
		st = fetch_request_body(w, req, &body);
		if (st != NVCF_OK && st != NVCF_ENOTFOUND &&
		    st != NVCF_EPROTO && st != NVCF_EINVAL) {
			nvcf_log_warn(SUB, "%s; handing request %s back in "
				      "%d ms", nvcf_error_last()->message,
				      req->request_id, NAK_DELAY_MS);
			release(s);
			natsMsg_NakWithDelay(msg, NAK_DELAY_MS, NULL);
			stat_add(w, &w->stats.failed);
			goto out;
		}
		if (st != NVCF_OK) {
			answer_body_error(s, msg, req, st);
			goto out;
		}
		/* Restored before the request is freed: body is ours. */
		sent_body = req->body;
		req->body.data = body;
		req->body.len = (size_t)req->body_size;
	}

	if (streaming)
		stream_arm_deadline(s, req);
	rc = call_function(s, req, &r, &status);
	s->stream_deadline_us = 0;
	if (rc == CURLE_ABORTED_BY_CALLBACK && atomic_load(&s->cancel)) {
		nvcf_log_info(SUB, "request %s canceled; acknowledging it "
			      "without a result", req->request_id);
		release(s);
		natsMsg_AckSync(msg, NULL, &jerr);
		drop_request_chunks(w, req);
		stat_add(w, &w->stats.canceled);
		goto out;
	}
	if (so.head_sent) {
		finish_stream(s, msg, req, &r, &so, rc);
		goto out;
	}
	if (rc == CURLE_ABORTED_BY_CALLBACK) {
		nvcf_log_warn(SUB, "request %s still running when the grace "
			      "period ended; handing it back",
			      req->request_id);
		release(s);
		natsMsg_Nak(msg, NULL);
		goto out;
	}
	if (unreachable(rc)) {
		nvcf_log_warn(SUB, "function at %s unreachable for request "
			      "%s (%s); handing it back in %d ms",
			      w->function_url, req->request_id,
			      curl_easy_strerror(rc), NAK_DELAY_MS);
		release(s);
		natsMsg_NakWithDelay(msg, NAK_DELAY_MS, NULL);
		stat_add(w, &w->stats.failed);
		goto out;
	}

	result_init(w, &res, req, NVCF__RESULT_KIND__RESULT_KIND_FINAL);
	if (rc != CURLE_OK) {
		bool too_large = r.too_large;

		nvcf_log_warn(SUB, "calling the function for request %s "
			      "failed: %s", req->request_id,
			      too_large ? "response too large" :
			      so.error[0] != '\0' ? so.error :
			      curl_easy_strerror(rc));
		status = 502;
		response_free(&r);
		if (so.error[0] != '\0') {
			/* The head of a stream could not be sent. */
			problem = problem_body(502, NULL, 0, so.error);
		} else if (too_large) {
			char detail[160];

			snprintf(detail, sizeof(detail),
				 "response exceeds the limit of %zu bytes "
				 "(NVCF-MAX-RESPONSE-SIZE-BYTES)",
				 w->max_response_bytes);
			problem = problem_body(502, NULL, 0, detail);
		} else {
			problem = problem_body(502, NULL, 0, NULL);
		}
		res.error = so.error[0] != '\0' ? so.error :
			    too_large ? "response exceeds "
					"NVCF-MAX-RESPONSE-SIZE-BYTES" :
					(char *)curl_easy_strerror(rc);
		replace_content_type(&r, "application/problem+json");
	} else if (status >= 400) {
		problem = problem_body((int)status, r.body.data, r.body.len,
				       NULL);
		replace_content_type(&r, "application/problem+json");
	}
	res.status_code = (int32_t)status;
	res.headers = r.headers;
	res.n_headers = r.n_headers;
	if (problem != NULL) {
		res.body.data = (uint8_t *)problem;
		res.body.len = strlen(problem);
	} else {
		res.body.data = (uint8_t *)r.body.data;
		res.body.len = r.body.len;
	}
	conclude(s, msg, req, &res, &w->stats.completed);
out:
	free(problem);
	response_free(&r);
	if (body != NULL) {
		req->body = sent_body;
		free(body);
	}
	nvcf__invoke_request__free_unpacked(req, NULL);
}

/* ---- threads ---------------------------------------------------------- */

static void *fetch_main(void *arg)
{
	slot *s = arg;
	nvcf_worker *w = s->w;

	while (!atomic_load(&w->stopping)) {
		natsMsgList list = {0};
		jsErrCode jerr = 0;
		natsStatus ns;

		ns = natsSubscription_Fetch(&list, s->sub, 1, FETCH_EXPIRY_MS,
					    &jerr);
		if (ns == NATS_TIMEOUT)
			continue;
		if (ns != NATS_OK) {
			struct timespec ts;

			nvcf_log_warn(SUB, "fetching from %s failed: %s (%d); "
				      "retrying", w->durable,
				      natsStatus_GetText(ns), (int)jerr);
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 200 * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_mutex_lock(&w->lock);
			if (!atomic_load(&w->stopping))
				pthread_cond_timedwait(&w->cond, &w->lock,
						       &ts);
			pthread_mutex_unlock(&w->lock);
			continue;
		}
		for (int i = 0; i < list.Count; i++)
			handle(s, list.Msgs[i]);
		natsMsgList_Destroy(&list);
	}
	pthread_mutex_lock(&w->lock);
	w->running--;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/*
 * Sends the ACCEPTED results that are due, extends the ack deadline of
 * every held request while the function runs, and reports the instance's
 * load when it changed. The caller has the worker lock. Returns the
 * monotonic time of the next run.
 */
static int64_t tick(nvcf_worker *w, int64_t now, int64_t *next_progress,
		    int64_t period_us)
{
	int64_t wake = INT64_MAX;

	for (int i = 0; i < w->concurrency; i++) {
		slot *s = &w->slots[i];

		if (!s->accept_pending)
			continue;
		if (s->accept_due_us <= now) {
			natsConnection_Publish(w->conn, s->accept_subject,
					       s->accept_buf,
					       (int)s->accept_len);
			accept_drop(s);
		} else if (s->accept_due_us < wake) {
			wake = s->accept_due_us;
		}
	}
	if (now >= *next_progress) {
		for (int i = 0; i < w->concurrency; i++)
			if (w->slots[i].held != NULL)
				natsMsg_InProgress(w->slots[i].held, NULL);
		*next_progress = now + period_us;
	}
	if (w->stats.in_flight != w->reported_load) {
		report_load(w, w->stats.in_flight);
		w->reported_load = w->stats.in_flight;
	}
	if (*next_progress < wake)
		wake = *next_progress;
	/* While requests come and go, poll instead of being woken for each. */
	if (now - w->last_busy_us < TICKER_BUSY_US &&
	    now + ACCEPT_DELAY_US < wake)
		wake = now + ACCEPT_DELAY_US;
	return wake;
}

static void *ticker_main(void *arg)
{
	nvcf_worker *w = arg;
	int64_t period_us = w->ack_wait_ms / 3 * 1000;
	int64_t next_progress;

	if (period_us < 10000)
		period_us = 10000;
	pthread_mutex_lock(&w->lock);
	next_progress = nvcf__mono_us() + period_us;
	while (!w->ticker_stop) {
		int64_t wake = tick(w, nvcf__mono_us(), &next_progress,
				    period_us);
		struct timespec ts;

		w->ticker_wake_us = wake;
		ts.tv_sec = wake / 1000000;
		ts.tv_nsec = (wake % 1000000) * 1000;
		pthread_cond_timedwait(&w->tick_cond, &w->lock, &ts);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static void on_cancel(natsConnection *nc, natsSubscription *sub,
		      natsMsg *msg, void *closure)
{
	nvcf_worker *w = closure;
	const char *id = natsMsg_GetData(msg);
	int len = natsMsg_GetDataLength(msg);

	pthread_mutex_lock(&w->lock);
	for (int i = 0; i < w->concurrency; i++) {
		slot *s = &w->slots[i];

		if (s->held != NULL && (int)strlen(s->request_id) == len &&
		    memcmp(s->request_id, id, (size_t)len) == 0) {
			atomic_store(&s->cancel, true);
			nvcf_log_info(SUB, "cancel of request %s received",
				      s->request_id);
		}
	}
	pthread_mutex_unlock(&w->lock);
	natsMsg_Destroy(msg);
}

/* ---- lifecycle -------------------------------------------------------- */

static nvcf_status check_options(const nvcf_worker_options *o)
{
	if (o == NULL || o->version == 0 ||
	    o->version > NVCF_WORKER_OPTIONS_VERSION)
		return nvcf__error_set(NVCF_EINVAL,
				       "invalid worker options version %u: "
				       "use NVCF_WORKER_OPTIONS_INIT",
				       o ? o->version : 0);
	if (o->bus == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "worker options: bus is missing");
	if (o->function_id == NULL || o->instance_id == NULL ||
	    o->function_url == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "worker options: function id, instance "
				       "id and function URL are required");
	if (!nvcf__uuid_valid(o->version_id))
		return nvcf__error_set(NVCF_EINVAL,
				       "invalid version id '%s': use the "
				       "function version's UUID",
				       o->version_id ? o->version_id : "");
	if (strncmp(o->function_url, "http://", 7) != 0)
		return nvcf__error_set(NVCF_EINVAL,
				       "invalid function URL '%s': use "
				       "http://HOST:PORT", o->function_url);
	if (o->concurrency < 0 ||
	    o->concurrency > NVCF_WORKER_MAX_CONCURRENCY)
		return nvcf__error_set(NVCF_EINVAL,
				       "invalid concurrency %d: use 1 to %d",
				       o->concurrency,
				       NVCF_WORKER_MAX_CONCURRENCY);
	return NVCF_OK;
}

static char *dup_or_empty(const char *s)
{
	return nvcf__strdup(s ? s : "");
}

nvcf_status nvcf_worker_new(nvcf_worker **out, const nvcf_worker_options *opts)
{
	jsConsumerInfo *ci = NULL;
	jsErrCode jerr = 0;
	nvcf_worker *w;
	nvcf_status st;
	const char *queue_region;
	char cancel_subject[96];
	natsStatus ns;
	size_t url_len;

	if (out == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf_worker_new: out is NULL");
	if ((st = check_options(opts)) != NVCF_OK)
		return st;
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return nvcf__error_oom();
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	{
		pthread_condattr_t attr;

		pthread_condattr_init(&attr);
		pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
		pthread_cond_init(&w->tick_cond, &attr);
		pthread_condattr_destroy(&attr);
	}
	w->reported_load = -1;
	w->bus = opts->bus;
	w->conn = nvcf__bus_conn(opts->bus);
	w->js = nvcf__bus_js(opts->bus);
	w->function_id = dup_or_empty(opts->function_id);
	w->version_id = dup_or_empty(opts->version_id);
	w->instance_id = dup_or_empty(opts->instance_id);
	w->nca_id = dup_or_empty(opts->nca_id);
	w->function_name = dup_or_empty(opts->function_name);
	w->function_url = dup_or_empty(opts->function_url);
	w->instance_type = dup_or_empty(opts->instance_type);
	w->backend = dup_or_empty(opts->backend);
	w->region = dup_or_empty(opts->region ? opts->region :
				 nvcf_bus_region(opts->bus));
	/*
	 * The queue belongs to the control plane's region (the bus's), not
	 * to the cluster's region that NVCF-REGION reports to the function.
	 */
	queue_region = nvcf_bus_region(opts->bus);
	w->concurrency = opts->concurrency ? opts->concurrency : 1;
	w->grace_ms = opts->grace_ms > 0 ? opts->grace_ms : 8000;
	w->max_response_bytes = DEFAULT_MAX_RESPONSE_BYTES;
	w->chunk_size = nvcf__chunk_size(natsConnection_GetMaxPayload(w->conn));
	w->inline_limit = nvcf__inline_limit(
		0, natsConnection_GetMaxPayload(w->conn));
	w->stream_piece = w->chunk_size < STREAM_PIECE_MAX ? w->chunk_size :
							     STREAM_PIECE_MAX;
	/* A version 1 struct ends at grace_ms. */
	if (opts->version >= 2) {
		if (opts->max_response_bytes > 0)
			w->max_response_bytes = opts->max_response_bytes;
		w->inline_limit = nvcf__inline_limit(
			opts->inline_body_bytes,
			natsConnection_GetMaxPayload(w->conn));
	}
	w->stats.version = NVCF_WORKER_STATS_VERSION;
	w->slots = calloc((size_t)w->concurrency, sizeof(*w->slots));
	if (w->function_url == NULL || w->region == NULL ||
	    w->backend == NULL || w->slots == NULL) {
		nvcf_worker_free(w);
		return nvcf__error_oom();
	}
	url_len = strlen(w->function_url);
	while (url_len > 0 && w->function_url[url_len - 1] == '/')
		w->function_url[--url_len] = '\0';
	w->stopped = true;

	nvcf__queue_stream_name(w->stream, sizeof(w->stream), queue_region,
				w->version_id);
	nvcf__queue_consumer_name(w->durable, sizeof(w->durable), queue_region,
				  w->version_id);
	snprintf(w->subject, sizeof(w->subject), "rq.%s.%s.*", queue_region,
		 w->version_id);

	/* The consumer's own ack wait is the one JetStream enforces. */
	w->ack_wait_ms = opts->ack_wait_ms > 0 ? opts->ack_wait_ms : 30000;
	ns = js_GetConsumerInfo(&ci, w->js, w->stream, w->durable, NULL,
				&jerr);
	if (ns != NATS_OK) {
		st = nvcf__bus_error(ns, jerr, "reading request consumer",
				     w->durable);
		nvcf_worker_free(w);
		return st;
	}
	if (ci->Config != NULL && ci->Config->AckWait > 0)
		w->ack_wait_ms = ci->Config->AckWait / 1000000;
	jsConsumerInfo_Destroy(ci);

	for (int i = 0; i < w->concurrency; i++) {
		slot *s = &w->slots[i];
		jsSubOptions so;

		s->w = w;
		s->curl = curl_easy_init();
		if (s->curl == NULL) {
			nvcf_worker_free(w);
			return nvcf__error_oom();
		}
		jsSubOptions_Init(&so);
		so.Stream = w->stream;
		so.Consumer = w->durable;
		ns = js_PullSubscribe(&s->sub, w->js, w->subject, w->durable,
				      NULL, &so, &jerr);
		if (ns != NATS_OK) {
			st = nvcf__bus_error(ns, jerr, "binding to consumer",
					     w->durable);
			nvcf_worker_free(w);
			return st;
		}
	}

	snprintf(cancel_subject, sizeof(cancel_subject), "nvcf.cancel.%s",
		 w->version_id);
	ns = natsConnection_Subscribe(&w->cancel_sub, w->conn, cancel_subject,
				      on_cancel, w);
	if (ns != NATS_OK) {
		st = nvcf__bus_error(ns, 0, "subscribing to", cancel_subject);
		nvcf_worker_free(w);
		return st;
	}

	w->stopped = false;
	if (pthread_create(&w->ticker, NULL, ticker_main, w) != 0) {
		nvcf_worker_free(w);
		return nvcf__error_set(NVCF_ERROR, "cannot start a thread");
	}
	w->ticker_started = true;
	for (int i = 0; i < w->concurrency; i++) {
		if (pthread_create(&w->slots[i].thread, NULL, fetch_main,
				   &w->slots[i]) != 0) {
			nvcf_worker_free(w);
			return nvcf__error_set(NVCF_ERROR,
					       "cannot start fetch thread %d",
					       i);
		}
		w->slots[i].started = true;
		pthread_mutex_lock(&w->lock);
		w->running++;
		pthread_mutex_unlock(&w->lock);
	}
	nvcf_log_info(SUB, "instance %s serving version %s from %s with "
		      "concurrency %d (ack wait %lld ms, responses up to %zu "
		      "bytes, inline up to %zu) -> %s",
		      w->instance_id, w->version_id, w->durable,
		      w->concurrency, (long long)w->ack_wait_ms,
		      w->max_response_bytes, w->inline_limit,
		      w->function_url);
	*out = w;
	return NVCF_OK;
}

void nvcf_worker_stop(nvcf_worker *w)
{
	struct timespec deadline;

	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	if (w->stopped) {
		pthread_mutex_unlock(&w->lock);
		return;
	}
	w->stopped = true;
	atomic_store(&w->stopping, true);
	pthread_cond_broadcast(&w->cond);
	nvcf_log_info(SUB, "stopping: %d requests held, grace %lld ms",
		      w->stats.in_flight, (long long)w->grace_ms);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += w->grace_ms / 1000;
	deadline.tv_nsec += (w->grace_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	while (w->running > 0) {
		if (pthread_cond_timedwait(&w->cond, &w->lock, &deadline) ==
		    ETIMEDOUT) {
			atomic_store(&w->abort_all, true);
			break;
		}
	}
	pthread_mutex_unlock(&w->lock);
	for (int i = 0; i < w->concurrency; i++) {
		if (w->slots[i].started)
			pthread_join(w->slots[i].thread, NULL);
		w->slots[i].started = false;
	}
	pthread_mutex_lock(&w->lock);
	w->ticker_stop = true;
	pthread_cond_broadcast(&w->cond);
	pthread_cond_signal(&w->tick_cond);
	pthread_mutex_unlock(&w->lock);
	if (w->ticker_started)
		pthread_join(w->ticker, NULL);
	w->ticker_started = false;
}

void nvcf_worker_free(nvcf_worker *w)
{
	if (w == NULL)
		return;
	if (!w->stopped) {
		nvcf_worker_stop(w);
	} else {
		/* A half-built worker: its threads may have started. */
		atomic_store(&w->stopping, true);
		pthread_mutex_lock(&w->lock);
		w->ticker_stop = true;
		pthread_cond_broadcast(&w->cond);
		pthread_cond_signal(&w->tick_cond);
		pthread_mutex_unlock(&w->lock);
		for (int i = 0; w->slots && i < w->concurrency; i++)
			if (w->slots[i].started)
				pthread_join(w->slots[i].thread, NULL);
		if (w->ticker_started)
			pthread_join(w->ticker, NULL);
	}
	if (w->cancel_sub != NULL) {
		natsSubscription_Unsubscribe(w->cancel_sub);
		natsSubscription_Destroy(w->cancel_sub);
	}
	for (int i = 0; w->slots && i < w->concurrency; i++) {
		if (w->slots[i].sub != NULL) {
			natsSubscription_Unsubscribe(w->slots[i].sub);
			natsSubscription_Destroy(w->slots[i].sub);
		}
		if (w->slots[i].curl != NULL)
			curl_easy_cleanup(w->slots[i].curl);
		free(w->slots[i].accept_buf);
	}
	free(w->slots);
	free(w->function_id);
	free(w->version_id);
	free(w->instance_id);
	free(w->nca_id);
	free(w->function_name);
	free(w->function_url);
	free(w->instance_type);
	free(w->backend);
	free(w->region);
	pthread_cond_destroy(&w->cond);
	pthread_cond_destroy(&w->tick_cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

nvcf_status nvcf_worker_stats_get(nvcf_worker *w, nvcf_worker_stats *stats)
{
	if (w == NULL || stats == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf_worker_stats_get: NULL argument");
	pthread_mutex_lock(&w->lock);
	*stats = w->stats;
	pthread_mutex_unlock(&w->lock);
	return NVCF_OK;
}
