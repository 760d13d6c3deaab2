/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The invocation gateway. A request costs one JetStream publish: keys and
 * function records come from memory (cache.c), the connection is then
 * suspended, and one core subscription per process receives the results
 * of every waiting request. One timer thread ends poll windows, so a
 * waiting request occupies no thread.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "bus/chunks.h"
#include "gateway/gateway_internal.h"
#include "gateway/stream_queue.h"
#include "http/http.h"
#include "nvcf.pb-c.h"
#include "nvcf/gateway.h"
#include "nvcf/request.h"
#include "request/request_internal.h"

#define SUB "gateway"
#define PENDING_BUCKETS 4096u
#define PEXEC_FUNCTIONS "/v2/nvcf/pexec/functions/"
#define PEXEC_STATUS "/v2/nvcf/pexec/status/"
#define MAX_CODE 600
#define FINAL NVCF__RESULT_KIND__RESULT_KIND_FINAL
#define PROGRESS NVCF__RESULT_KIND__RESULT_KIND_PROGRESS
#define STREAM NVCF__RESULT_KIND__RESULT_KIND_STREAM
/* NVCF ends any exchange after 3600 s + 5 s; a stream too. */
#define STREAM_MAX_US (INT64_C(3605) * 1000000)
/*
 * Body bytes a stream buffers for a slow caller before it is cut off.
 * NOTE: core NATS has no flow control, so a function that writes more than
 * this faster than the gateway sends it also loses its stream, even to a
 * caller that reads at once. The streaming tests saw this with 64 KiB
 * events written in a loop by a Python function on 2 shared CPUs.
 */
#define STREAM_BUFFER_MAX ((size_t)1 << 20)
/* Preferred block size of a stream's content reader (advisory for MHD). */
#define STREAM_READ_BLOCK (32 * 1024)
/* JetStream error of a publish past a discard-new stream's limits. */
#define JS_ERR_STREAM_FULL 10077
/* Requests being stored at once; past it js_PublishAsync stalls. */
#define MAX_PUBLISHES_IN_FLIGHT 65536

/*
 * PEND_STREAM is an invocation whose response head arrived: its connection
 * sends the stream, and its deadline is the end of STREAM_MAX_US.
 */
typedef enum pend_kind { PEND_INVOKE, PEND_POLL, PEND_STREAM } pend_kind;

typedef struct gw_stream gw_stream;

/* One suspended connection waiting for a result or the end of its window. */
typedef struct pending {
	struct pending *next; /* chain of the request id's bucket */
	size_t heap_idx;      /* SIZE_MAX once taken out */
	int64_t deadline_us;  /* monotonic */
	nvcf__http_req *req;
	pend_kind kind;
	bool accepted; /* a worker took it */
	bool grace;    /* window over; a worker still has the extra wait */
	bool chunked;  /* the request body is stored as chunks */
	bool wants_stream; /* Accept lists text/event-stream */
	gw_stream *stream; /* PEND_STREAM: the stream it feeds (own ref) */
	int percent;   /* last progress seen, or -1 */
	char request_id[NVCF_UUID_LEN + 1];
	char function_id[NVCF_UUID_LEN + 1];
	char version_id[NVCF_UUID_LEN + 1];
	char nca_id[NVCF_NCA_ID_MAX + 1];
} pending;

struct nvcf_gateway {
	nvcf_gateway_options opts;
	char *nats_url, *listen_address, *region;
	nvcf_bus *bus;
	natsConnection *conn;
	jsCtx *js;
	jsCtx *pub_js; /* asynchronous request publishes; see invoke() */
	nvcf__gw_cache *cache;
	nvcf__http_server *http;
	char instance_id[NVCF_UUID_LEN + 1];
	char reply_subject[64];
	natsSubscription *reply_sub;
	/*
	 * res.* subscription for polls, held only while polls wait (and for
	 * STORED_SUB_IDLE_US after), because every result stored by any
	 * gateway's workers arrives on it. stored_lock orders its creation
	 * and removal and is taken before lock.
	 */
	pthread_mutex_t stored_lock;
	natsSubscription *stored_sub;
	int polls;                /* polls registered, guarded by lock */
	int64_t polls_idle_since; /* monotonic us when polls reached 0 */
	int64_t timer_wake_us; /* when the sleeping timer wakes on its own */

	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC: earliest deadline moved */
	pthread_t timer;
	bool timer_running;
	bool stopping;
	bool started;
	pending *table[PENDING_BUCKETS];
	pending **heap; /* min-heap on deadline_us */
	size_t heap_len, heap_cap;

	atomic_int suspended; /* suspended connections not yet completed */
	atomic_int chunk_readers; /* threads reading result chunks */
	atomic_int streams;       /* streamed responses being sent */
	size_t inline_limit;      /* larger request bodies become chunks */
	size_t chunk_size;        /* bytes per request body chunk */
	atomic_uint_fast64_t by_code[MAX_CODE];
	atomic_uint_fast64_t publish_errors;
};

#define STORED_SUB_IDLE_US (30 * INT64_C(1000000))
/* Maximum sleep of the window timer, equal to the minimum poll window. */
#define TIMER_IDLE_US INT64_C(1000000)

/* ---- pending table and deadline heap (gw->lock held) ------------------ */

static unsigned int rid_bucket(const char *rid)
{
	uint32_t h = 2166136261u;

	for (; *rid != '\0'; rid++)
		h = (h ^ (unsigned char)*rid) * 16777619u;
	return h % PENDING_BUCKETS;
}

static void heap_swap(nvcf_gateway *gw, size_t a, size_t b)
{
	pending *t = gw->heap[a];

	gw->heap[a] = gw->heap[b];
	gw->heap[b] = t;
	gw->heap[a]->heap_idx = a;
	gw->heap[b]->heap_idx = b;
}

static void heap_up(nvcf_gateway *gw, size_t i)
{
	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (gw->heap[parent]->deadline_us <= gw->heap[i]->deadline_us)
			break;
		heap_swap(gw, i, parent);
		i = parent;
	}
}

static void heap_down(nvcf_gateway *gw, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < gw->heap_len &&
		    gw->heap[l]->deadline_us < gw->heap[m]->deadline_us)
			m = l;
		if (r < gw->heap_len &&
		    gw->heap[r]->deadline_us < gw->heap[m]->deadline_us)
			m = r;
		if (m == i)
			return;
		heap_swap(gw, i, m);
		i = m;
	}
}

static bool heap_push(nvcf_gateway *gw, pending *p)
{
	if (gw->heap_len == gw->heap_cap) {
		size_t cap = gw->heap_cap ? gw->heap_cap * 2 : 256;
		pending **h = realloc(gw->heap, cap * sizeof(*h));

		if (h == NULL)
			return false;
		gw->heap = h;
		gw->heap_cap = cap;
	}
	p->heap_idx = gw->heap_len;
	gw->heap[gw->heap_len++] = p;
	heap_up(gw, p->heap_idx);
	return true;
}

static void heap_remove(nvcf_gateway *gw, pending *p)
{
	size_t i = p->heap_idx;

	if (i == SIZE_MAX)
		return;
	if (i != gw->heap_len - 1) {
		heap_swap(gw, i, gw->heap_len - 1);
		gw->heap_len--;
		heap_down(gw, i);
		heap_up(gw, i);
	} else {
		gw->heap_len--;
	}
	p->heap_idx = SIZE_MAX;
}

/*
 * Wakes the timer when @p p's deadline comes before the timer would wake
 * on its own. The timer never sleeps longer than TIMER_IDLE_US, so a
 * request parked on an idle gateway, whose window is at least a second,
 * costs no wake-up.
 */
static void timer_notify(nvcf_gateway *gw, const pending *p)
{
	if (p->heap_idx == 0 && p->deadline_us < gw->timer_wake_us)
		pthread_cond_signal(&gw->cond);
}

/* Moves @p p to a new deadline and wakes the timer when it came first. */
static void pending_reschedule(nvcf_gateway *gw, pending *p, int64_t deadline)
{
	p->deadline_us = deadline;
	heap_down(gw, p->heap_idx);
	heap_up(gw, p->heap_idx);
	timer_notify(gw, p);
}

static bool pending_insert(nvcf_gateway *gw, pending *p)
{
	unsigned int b = rid_bucket(p->request_id);

	if (!heap_push(gw, p))
		return false;
	p->next = gw->table[b];
	gw->table[b] = p;
	timer_notify(gw, p);
	return true;
}

static void table_unlink(nvcf_gateway *gw, pending *p)
{
	pending **pp;

	for (pp = &gw->table[rid_bucket(p->request_id)]; *pp != NULL;
	     pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			if (p->kind == PEND_POLL && --gw->polls == 0)
				gw->polls_idle_since = nvcf__mono_us();
			break;
		}
	}
	heap_remove(gw, p);
}

static pending *pending_find(nvcf_gateway *gw, const char *rid)
{
	pending *p;

	for (p = gw->table[rid_bucket(rid)]; p != NULL; p = p->next)
		if (strcmp(p->request_id, rid) == 0)
			return p;
	return NULL;
}

/*
 * Takes @p p out of the table if it is still there. Only the caller that
 * took it responds on its connection and frees it, so that happens once.
 */
static bool pending_take(nvcf_gateway *gw, pending *p)
{
	bool present;

	pthread_mutex_lock(&gw->lock);
	present = p->heap_idx != SIZE_MAX;
	if (present)
		table_unlink(gw, p);
	pthread_mutex_unlock(&gw->lock);
	return present;
}

/*
 * Like pending_take(), for a caller that parked @p p and may race with the
 * result callback or the timer, which free it once they took it: @p p is
 * only compared, never read, unless it is still in the table.
 */
static bool pending_take_parked(nvcf_gateway *gw, const char *rid, pending *p)
{
	pending *q;
	bool present = false;

	pthread_mutex_lock(&gw->lock);
	for (q = gw->table[rid_bucket(rid)]; q != NULL; q = q->next) {
		if (q == p) {
			table_unlink(gw, p);
			present = true;
			break;
		}
	}
	pthread_mutex_unlock(&gw->lock);
	return present;
}

/* Records progress on @p p if it is still parked. */
static void pending_set_percent(nvcf_gateway *gw, const char *rid, pending *p,
				int percent)
{
	pending *q;

	pthread_mutex_lock(&gw->lock);
	for (q = gw->table[rid_bucket(rid)]; q != NULL; q = q->next)
		if (q == p)
			p->percent = percent;
	pthread_mutex_unlock(&gw->lock);
}

static void pending_free(pending *p)
{
	free(p);
}

/* ---- responses -------------------------------------------------------- */

static void count_code(nvcf_gateway *gw, unsigned int status)
{
	if (status < MAX_CODE)
		atomic_fetch_add_explicit(&gw->by_code[status], 1,
					  memory_order_relaxed);
}

static void send_text(nvcf_gateway *gw, nvcf__http_req *req,
		      unsigned int status, const char *text)
{
	count_code(gw, status);
	nvcf_log_debug(SUB, "%s %s: %u %s", nvcf__http_method(req),
		       nvcf__http_path(req), status, text);
	nvcf__http_send_text(req, status, text);
}

/* Problem details without "type", as NVCF's invocation service sends. */
#define send_problem(gw, req, status, ...)                                    \
	do {                                                                  \
		count_code(gw, status);                                       \
		nvcf_log_debug(SUB, "%s %s: %u", nvcf__http_method(req),      \
			       nvcf__http_path(req), (unsigned int)(status)); \
		nvcf__http_send_problem(req, status, "", __VA_ARGS__);        \
	} while (0)

static void add_reqid_headers(struct MHD_Response *r, const char *rid,
			      unsigned int status)
{
	MHD_add_response_header(r, "NVCF-REQID", rid);
	MHD_add_response_header(r, "NVCF-STATUS",
				nvcf_request_status_header((int)status));
}

/* Builds an empty response after queueing: 202 in progress, 504, 503. */
static struct MHD_Response *reqid_response(const char *rid,
					   unsigned int status)
{
	struct MHD_Response *r = nvcf__http_response(NULL, "", 0);

	if (r == NULL)
		return NULL;
	add_reqid_headers(r, rid, status);
	MHD_add_response_header(r, "Access-Control-Expose-Headers",
				"nvcf-reqid");
	return r;
}

static bool header_dropped(const char *name)
{
	static const char *const dropped[] = {
		"Connection", "Keep-Alive", "Proxy-Connection",
		"Proxy-Authenticate", "Proxy-Authorization", "TE", "Trailer",
		"Transfer-Encoding", "Upgrade", "Content-Length", "Date",
		"NVCF-REQID", "NVCF-STATUS",
	};

	for (size_t i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++)
		if (strcasecmp(name, dropped[i]) == 0)
			return true;
	return false;
}

/*
 * Adds the function's headers of a FINAL result and the NVCF ones to
 * @p r; returns the HTTP status for the caller.
 */
static unsigned int final_headers(struct MHD_Response *r, const char *rid,
				  const Nvcf__InvokeResult *res)
{
	unsigned int status = res->status_code >= 100 &&
					      res->status_code < MAX_CODE
				      ? (unsigned int)res->status_code
				      : 500;
	const char *expose = NULL;

	for (size_t i = 0; i < res->n_headers; i++) {
		const Nvcf__Header *h = res->headers[i];

		if (header_dropped(h->name))
			continue;
		if (strcasecmp(h->name, "Access-Control-Expose-Headers") == 0) {
			expose = h->value;
			continue;
		}
		MHD_add_response_header(r, h->name, h->value);
	}
	if (expose != NULL && expose[0] != '\0') {
		char *v = nvcf__asprintf("%s, nvcf-reqid", expose);

		MHD_add_response_header(r, "Access-Control-Expose-Headers",
					v ? v : "nvcf-reqid");
		free(v);
	} else {
		MHD_add_response_header(r, "Access-Control-Expose-Headers",
					"nvcf-reqid");
	}
	add_reqid_headers(r, rid, status);
	return status;
}

/* Builds the caller's response from a FINAL result with an inline body. */
static struct MHD_Response *final_response(const char *rid,
					   const Nvcf__InvokeResult *res,
					   unsigned int *status_out)
{
	struct MHD_Response *r;

	r = MHD_create_response_from_buffer(res->body.len, res->body.data,
					    MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return NULL;
	*status_out = final_headers(r, rid, res);
	return r;
}

/* Responds on a taken pending entry's connection and frees the entry. */
static void pending_answer(nvcf_gateway *gw, pending *p, unsigned int status,
			   struct MHD_Response *r)
{
	count_code(gw, status);
	nvcf__http_resume(p->req, status, r);
	pending_free(p);
}

static bool start_chunk_reader(nvcf_gateway *gw, pending *p,
			       const Nvcf__InvokeResult *res);
static void pending_answer_streamed(nvcf_gateway *gw, pending *p,
				    const Nvcf__InvokeResult *res);

static void pending_answer_final(nvcf_gateway *gw, pending *p,
				 const Nvcf__InvokeResult *res)
{
	struct MHD_Response *r;
	unsigned int status = 500;

	if (res->streamed) {
		pending_answer_streamed(gw, p, res);
		return;
	}
	/* A chunked body is read on its own thread, never on this one. */
	if (res->body_chunks > 0) {
		if (!start_chunk_reader(gw, p, res))
			pending_answer(gw, p, 503,
				       nvcf__http_problem_response(
					       503, "",
					       "cannot start reading the "
					       "result; retry later",
					       NULL));
		return;
	}
	r = final_response(p->request_id, res, &status);

	nvcf_log_trace(SUB, "request %s: status %u after %lld us",
		       p->request_id, status,
		       (long long)(nvcf__mono_us() -
				   nvcf__http_start_us(p->req)));
	pending_answer(gw, p, status, r);
}

static void pending_answer_progress(nvcf_gateway *gw, pending *p)
{
	struct MHD_Response *r = reqid_response(p->request_id, 202);

	if (r != NULL && p->percent >= 0) {
		char pct[16];

		snprintf(pct, sizeof(pct), "%d", p->percent);
		MHD_add_response_header(r, "NVCF-PERCENT-COMPLETE", pct);
	}
	pending_answer(gw, p, 202, r);
}

/* ---- JetStream helpers ------------------------------------------------ */

/* Purges every message of @p subject from @p stream; best effort. */
static void purge_subject(nvcf_gateway *gw, const char *stream,
			  const char *subject)
{
	jsOptions o;
	jsErrCode jerr = 0;
	natsStatus s;

	jsOptions_Init(&o);
	o.Stream.Purge.Subject = subject;
	s = js_PurgeStream(gw->js, stream, &o, &jerr);
	if (s != NATS_OK && s != NATS_NOT_FOUND)
		nvcf_log_warn(SUB, "failed to purge %s from %s: %s (JetStream "
			      "error %d)",
			      subject, stream, natsStatus_GetText(s),
			      (int)jerr);
}

/* Purges the body chunks of a request no worker will read. */
static void drop_body_chunks(nvcf_gateway *gw, const pending *p)
{
	char prefix[64];

	if (!p->chunked)
		return;
	snprintf(prefix, sizeof(prefix), "body.%s", p->request_id);
	nvcf__chunks_purge(gw->js, NVCF__STREAM_BODIES, prefix);
}

/*
 * Reads the last result stored for @p rid. NVCF_ENOTFOUND when there is
 * none. The caller frees *out with nvcf__invoke_result__free_unpacked().
 */
static nvcf_status last_result(nvcf_gateway *gw, const char *rid,
			       Nvcf__InvokeResult **out)
{
	char subject[64];
	natsMsg *msg = NULL;
	jsErrCode jerr = 0;
	natsStatus s;

	*out = NULL;
	nvcf__result_subject(subject, sizeof(subject), rid);
	s = js_GetLastMsg(&msg, gw->js, NVCF_STREAM_RESULTS, subject, NULL,
			  &jerr);
	if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr)
		return NVCF_ENOTFOUND;
	if (s != NATS_OK)
		return nvcf__bus_error(s, jerr, "reading result", subject);
	*out = nvcf__invoke_result__unpack(
		NULL, (size_t)natsMsg_GetDataLength(msg),
		(const uint8_t *)natsMsg_GetData(msg));
	natsMsg_Destroy(msg);
	if (*out == NULL)
		return nvcf__error_set(NVCF_EPROTO,
				       "stored result of request %s is not an "
				       "InvokeResult",
				       rid);
	return NVCF_OK;
}

/*
 * Stores a PENDING result for a request a worker holds, so that any
 * gateway can serve its polls. ExpectNoMessage keeps a FINAL that the
 * worker stored first from being hidden, and NVCF_EEXISTS reports that case.
 */
static nvcf_status store_pending(nvcf_gateway *gw, const pending *p)
{
	Nvcf__InvokeResult res = NVCF__INVOKE_RESULT__INIT;
	char subject[64];
	uint8_t buf[512];
	jsPubOptions po;
	jsErrCode jerr = 0;
	jsPubAck *ack = NULL;
	natsStatus s;
	size_t len;

	res.request_id = (char *)p->request_id;
	res.kind = NVCF__RESULT_KIND__RESULT_KIND_PENDING;
	res.status_code = 202;
	res.nca_id = (char *)p->nca_id;
	res.function_id = (char *)p->function_id;
	res.version_id = (char *)p->version_id;
	res.time_us = nvcf__now_us();
	len = nvcf__invoke_result__get_packed_size(&res);
	if (len > sizeof(buf))
		return nvcf__error_set(NVCF_EINVAL, "pending record too large");
	nvcf__invoke_result__pack(&res, buf);
	nvcf__result_subject(subject, sizeof(subject), p->request_id);
	jsPubOptions_Init(&po);
	po.ExpectNoMessage = true;
	s = js_Publish(&ack, gw->js, subject, buf, (int)len, &po, &jerr);
	if (s == NATS_OK) {
		jsPubAck_Destroy(ack);
		return NVCF_OK;
	}
	if (jerr == JSStreamWrongLastSequenceErr)
		return NVCF_EEXISTS;
	return nvcf__bus_error(s, jerr, "storing pending result", subject);
}

/* ---- chunked results -------------------------------------------------- */

/* A FINAL result whose body is in chunks, read for one connection. */
typedef struct chunk_reader {
	nvcf_gateway *gw;
	pending *p;
	Nvcf__InvokeResult *res; /* own copy of the envelope */
	natsMsg **msgs;
	uint32_t count;
	uint32_t index;      /* chunk that contains position index_start */
	uint64_t index_start;
} chunk_reader;

static void chunk_reader_free(void *cls)
{
	chunk_reader *cr = cls;

	nvcf__chunks_free(cr->msgs, cr->count);
	nvcf__invoke_result__free_unpacked(cr->res, NULL);
	free(cr);
}

/* Copies body bytes from @p pos on into @p buf for libmicrohttpd. */
static ssize_t chunk_reader_read(void *cls, uint64_t pos, char *buf,
				 size_t max)
{
	chunk_reader *cr = cls;
	size_t len = 0, off, n;

	while (cr->index < cr->count) {
		len = (size_t)natsMsg_GetDataLength(cr->msgs[cr->index]);
		if (pos < cr->index_start + len)
			break;
		cr->index_start += len;
		cr->index++;
	}
	if (cr->index == cr->count || pos < cr->index_start)
		return MHD_CONTENT_READER_END_OF_STREAM;
	off = (size_t)(pos - cr->index_start);
	n = len - off < max ? len - off : max;
	memcpy(buf, natsMsg_GetData(cr->msgs[cr->index]) + off, n);
	return (ssize_t)n;
}

/*
 * Reads the chunks of one result, checks size and digest, then resumes
 * the connection with a response that streams them from memory. A
 * missing or corrupt chunk becomes 502. A poll purges the chunks with
 * the result, so the request is not pollable again. After a live response
 * they stay until the results stream expires them, like an inline result.
 */
static void *chunk_reader_main(void *arg)
{
	chunk_reader *cr = arg;
	nvcf_gateway *gw = cr->gw;
	pending *p = cr->p;
	const Nvcf__InvokeResult *res = cr->res;
	char prefix[96], what[96];
	struct MHD_Response *r;
	unsigned int status;
	nvcf_status st;

	snprintf(prefix, sizeof(prefix), "res.%s.c", p->request_id);
	snprintf(what, sizeof(what), "result of request %s", p->request_id);
	st = nvcf__chunk_envelope_check(res->body_size, res->body_chunks,
					res->body_sha256.len, UINT64_MAX,
					what);
	if (st == NVCF_OK)
		st = nvcf__chunks_fetch(gw->js, NVCF_STREAM_RESULTS, prefix,
					res->body_chunks, res->body_size,
					res->body_sha256.data,
					res->body_sha256.len, what, &cr->msgs);
	if (st != NVCF_OK) {
		nvcf_log_warn(SUB, "%s; responding 502",
			      nvcf_error_last()->message);
		r = nvcf__http_problem_response(502, "",
						nvcf_error_last()->message,
						NULL);
		if (r != NULL)
			add_reqid_headers(r, p->request_id, 502);
		pending_answer(gw, p, 502, r);
		chunk_reader_free(cr);
		goto out;
	}
	cr->count = res->body_chunks;
	if (p->kind == PEND_POLL)
		nvcf__chunks_purge(gw->js, NVCF_STREAM_RESULTS, prefix);

	/* 64 KiB blocks: libmicrohttpd copies each into its send buffer. */
	r = MHD_create_response_from_callback(res->body_size, 64 * 1024,
					      chunk_reader_read, cr,
					      chunk_reader_free);
	if (r == NULL) {
		chunk_reader_free(cr);
		pending_answer(gw, p, 503, reqid_response(p->request_id, 503));
		goto out;
	}
	status = final_headers(r, p->request_id, res);
	nvcf_log_debug(SUB, "request %s: status %u with a body of %llu bytes "
		       "in %u chunks",
		       p->request_id, status,
		       (unsigned long long)res->body_size,
		       (unsigned int)res->body_chunks);
	pending_answer(gw, p, status, r);
out:
	atomic_fetch_sub(&gw->chunk_readers, 1);
	return NULL;
}

/*
 * Starts a thread that responds on @p p (taken) with the chunked body of
 * @p res. Returns false when it could not start, and @p p is then still
 * the caller's.
 *
 * NOTE: one thread per chunked response, and nothing caps how many run at
 * once; a burst of large responses costs as many threads and buffers.
 */
static bool start_chunk_reader(nvcf_gateway *gw, pending *p,
			       const Nvcf__InvokeResult *res)
{
	size_t len = nvcf__invoke_result__get_packed_size(res);
	chunk_reader *cr = calloc(1, sizeof(*cr));
	uint8_t *buf = malloc(len ? len : 1);
	pthread_attr_t attr;
	pthread_t thread;
	int rc;

	if (cr == NULL || buf == NULL) {
		free(cr);
		free(buf);
		return false;
	}
	/* The caller frees @p res when this returns: keep a copy. */
	nvcf__invoke_result__pack(res, buf);
	cr->res = nvcf__invoke_result__unpack(NULL, len, buf);
	free(buf);
	if (cr->res == NULL) {
		free(cr);
		return false;
	}
	cr->gw = gw;
	cr->p = p;
	atomic_fetch_add(&gw->chunk_readers, 1);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&thread, &attr, chunk_reader_main, cr);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		atomic_fetch_sub(&gw->chunk_readers, 1);
		nvcf__invoke_result__free_unpacked(cr->res, NULL);
		free(cr);
		nvcf_log_warn(SUB, "request %s: cannot start a thread to read "
			      "its result chunks (error %d)",
			      p->request_id, rc);
		return false;
	}
	return true;
}

/* ---- streamed responses ---------------------------------------------- */

/*
 * A response sent to the caller as its pieces arrive on the reply subject.
 * Three references keep it alive: the PEND_STREAM entry that routes pieces
 * to it, the libmicrohttpd response whose content reader drains it, and
 * the connection's done callback.
 */
struct gw_stream {
	nvcf_gateway *gw;
	pthread_mutex_t lock;
	atomic_int refs;
	/* The fields below are guarded by lock. */
	nvcf__http_req *req; /* NULL once the connection ended */
	nvcf__stream_queue queue;
	bool paused; /* the content reader suspended the connection */
	bool ended;  /* no more bytes will be queued */
	bool failed; /* ended early: close without the last chunk */
	uint64_t sent; /* body bytes handed to libmicrohttpd */
	char request_id[NVCF_UUID_LEN + 1];
	char version_id[NVCF_UUID_LEN + 1];
};

static void stream_unref(gw_stream *st)
{
	if (atomic_fetch_sub(&st->refs, 1) != 1)
		return;
	atomic_fetch_sub(&st->gw->streams, 1);
	nvcf__stream_queue_clear(&st->queue);
	pthread_mutex_destroy(&st->lock);
	free(st);
}

/* Frees a PEND_STREAM entry taken out of the table, and its reference. */
static void stream_entry_free(pending *p)
{
	gw_stream *st = p->stream;

	pending_free(p);
	stream_unref(st);
}

/* Publishes a cancel of @p request_id, so its worker stops the call. */
static void publish_cancel(nvcf_gateway *gw, const char *version_id,
			   const char *request_id)
{
	char subject[96];

	snprintf(subject, sizeof(subject), "nvcf.cancel.%s", version_id);
	natsConnection_PublishString(gw->conn, subject, request_id);
}

/* Content reader: hands queued bytes to libmicrohttpd, or waits for some. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	gw_stream *st = cls;
	ssize_t rc;
	size_t n;

	(void)pos;
	pthread_mutex_lock(&st->lock);
	n = nvcf__stream_queue_read(&st->queue, buf, max);
	if (n > 0) {
		st->sent += n;
		rc = (ssize_t)n;
	} else if (st->ended && st->failed) {
		nvcf__http_reader_abort(st->req);
		rc = MHD_CONTENT_READER_END_WITH_ERROR;
	} else if (st->ended) {
		rc = MHD_CONTENT_READER_END_OF_STREAM;
	} else {
		/*
		 * Suspended under the lock, so the thread that queues the next
		 * piece finds paused set only after the suspension and resumes
		 * the connection exactly once.
		 */
		st->paused = true;
		nvcf__http_reader_suspend(st->req);
		rc = 0;
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

static void stream_reader_free(void *cls)
{
	stream_unref(cls);
}

/*
 * Clears paused and returns the request to resume once st->lock is
 * released, or NULL when the content reader does not wait.
 */
static nvcf__http_req *stream_wake_locked(gw_stream *st)
{
	if (!st->paused)
		return NULL;
	st->paused = false;
	return st->req;
}

/*
 * Ends @p st early: the caller gets what is buffered unless @p drop, then
 * the connection closes without the final chunk, so the caller sees a
 * truncated response. Logs @p reason, and cancels the request at its worker
 * when @p cancel.
 */
static void stream_fail(nvcf_gateway *gw, gw_stream *st, const char *reason,
			bool drop, bool cancel)
{
	nvcf__http_req *wake;
	bool was_ended;

	pthread_mutex_lock(&st->lock);
	was_ended = st->ended;
	if (!was_ended) {
		st->ended = true;
		st->failed = true;
		if (drop)
			nvcf__stream_queue_clear(&st->queue);
	}
	wake = stream_wake_locked(st);
	pthread_mutex_unlock(&st->lock);
	if (wake != NULL)
		nvcf__http_reader_resume(wake);
	if (was_ended)
		return;
	nvcf_log_warn(SUB, "request %s: %s; closing its stream%s",
		      st->request_id, reason,
		      cancel ? " and canceling the request" : "");
	if (cancel)
		publish_cancel(gw, st->version_id, st->request_id);
}

/* Queues one body piece (stream_seq 1 and up) of @p res on @p st. */
static void stream_push(nvcf_gateway *gw, gw_stream *st,
			const Nvcf__InvokeResult *res)
{
	nvcf__http_req *wake = NULL;
	nvcf_status s = NVCF_OK;
	char reason[256];

	pthread_mutex_lock(&st->lock);
	if (!st->ended) {
		s = nvcf__stream_queue_push(&st->queue, res->stream_seq,
					    res->body.data, res->body.len);
		if (s == NVCF_OK)
			wake = stream_wake_locked(st);
		else
			snprintf(reason, sizeof(reason), "%s",
				 nvcf_error_last()->message);
	}
	pthread_mutex_unlock(&st->lock);
	if (wake != NULL)
		nvcf__http_reader_resume(wake);
	/* A gap keeps the bytes before it; a slow caller gets no more. */
	if (s != NVCF_OK)
		stream_fail(gw, st, reason, s == NVCF_EQUOTA, true);
}

/*
 * Ends @p st on the FINAL that closes it: normally once the buffered bytes
 * are sent, with an error when messages were lost or the worker reports
 * that the function's stream broke off.
 */
static void stream_end(nvcf_gateway *gw, gw_stream *st,
		       const Nvcf__InvokeResult *res)
{
	nvcf__http_req *wake = NULL;
	bool complete, already;
	uint64_t expected;
	char reason[512];

	pthread_mutex_lock(&st->lock);
	already = st->ended;
	expected = st->queue.next_seq;
	complete = res->streamed && res->stream_seq == expected &&
		   (res->error == NULL || res->error[0] == '\0');
	if (!already && complete) {
		st->ended = true;
		wake = stream_wake_locked(st);
	}
	pthread_mutex_unlock(&st->lock);
	if (wake != NULL)
		nvcf__http_reader_resume(wake);
	if (already || complete)
		return;
	if (!res->streamed || res->stream_seq != expected)
		snprintf(reason, sizeof(reason),
			 "the stream ended after %llu messages, but only "
			 "%llu arrived",
			 (unsigned long long)res->stream_seq,
			 (unsigned long long)expected);
	else
		snprintf(reason, sizeof(reason), "the stream broke off at the "
			 "worker: %s", res->error);
	stream_fail(gw, st, reason, false, false);
}

/*
 * Connection done callback of a stream: a caller that went away before
 * the end cancels the request, and later pieces find no entry.
 */
static void stream_on_done(nvcf__http_req *req, bool answered, void *state)
{
	gw_stream *st = state;
	nvcf_gateway *gw = st->gw;
	pending *p, *entry = NULL;
	uint64_t sent;
	bool ended;

	(void)req;
	(void)answered;
	pthread_mutex_lock(&st->lock);
	ended = st->ended;
	sent = st->sent;
	st->ended = true;
	st->req = NULL;
	st->paused = false;
	nvcf__stream_queue_clear(&st->queue);
	pthread_mutex_unlock(&st->lock);

	pthread_mutex_lock(&gw->lock);
	for (p = gw->table[rid_bucket(st->request_id)]; p != NULL;
	     p = p->next) {
		if (p->kind == PEND_STREAM && p->stream == st) {
			entry = p;
			table_unlink(gw, p);
			break;
		}
	}
	pthread_mutex_unlock(&gw->lock);
	if (entry != NULL)
		stream_entry_free(entry);
	if (!ended) {
		nvcf_log_info(SUB, "request %s: the caller disconnected after "
			      "%llu streamed bytes; canceling the request",
			      st->request_id, (unsigned long long)sent);
		publish_cancel(gw, st->version_id, st->request_id);
	}
	atomic_fetch_sub(&gw->suspended, 1);
	stream_unref(st);
}

/*
 * Responds on @p p, already taken out of the table, with the status and
 * headers of the stream head @p res and a chunked body. The next STREAM
 * messages feed that body, and they find @p p because it goes back into
 * the table as PEND_STREAM. From here on only STREAM_MAX_US bounds the
 * exchange.
 */
static void stream_start(nvcf_gateway *gw, pending *p,
			 const Nvcf__InvokeResult *res)
{
	gw_stream *st = calloc(1, sizeof(*st));
	struct MHD_Response *r = NULL;
	unsigned int status;
	bool ok;

	if (st != NULL) {
		st->gw = gw;
		pthread_mutex_init(&st->lock, NULL);
		atomic_init(&st->refs, 3);
		atomic_fetch_add(&gw->streams, 1);
		st->req = p->req;
		memcpy(st->request_id, p->request_id, sizeof(st->request_id));
		memcpy(st->version_id, p->version_id, sizeof(st->version_id));
		nvcf__stream_queue_init(&st->queue, 1, STREAM_BUFFER_MAX);
		r = MHD_create_response_from_callback(
			MHD_SIZE_UNKNOWN, STREAM_READ_BLOCK, stream_read, st,
			stream_reader_free);
		if (r == NULL)
			atomic_store(&st->refs, 1);
	}
	if (r == NULL) {
		if (st != NULL)
			stream_unref(st);
		nvcf_log_warn(SUB, "request %s: out of memory starting its "
			      "stream; responding 503 and canceling it",
			      p->request_id);
		publish_cancel(gw, p->version_id, p->request_id);
		pending_answer(gw, p, 503, reqid_response(p->request_id, 503));
		return;
	}
	status = final_headers(r, p->request_id, res);
	p->kind = PEND_STREAM;
	p->stream = st;
	p->deadline_us = nvcf__http_start_us(p->req) + STREAM_MAX_US;
	pthread_mutex_lock(&gw->lock);
	ok = !gw->stopping && pending_insert(gw, p);
	pthread_mutex_unlock(&gw->lock);
	if (!ok) {
		/* The response's reference goes with it, then the other two. */
		MHD_destroy_response(r);
		stream_unref(st);
		stream_unref(st);
		p->kind = PEND_INVOKE;
		p->stream = NULL;
		publish_cancel(gw, p->version_id, p->request_id);
		pending_answer(gw, p, 503, reqid_response(p->request_id, 503));
		return;
	}
	nvcf_log_debug(SUB, "request %s: streaming status %u after %lld us",
		       p->request_id, status,
		       (long long)(nvcf__mono_us() -
				   nvcf__http_start_us(p->req)));
	/* Set before the resume: the connection cannot end while suspended. */
	nvcf__http_set_state(st->req, st, stream_on_done);
	count_code(gw, status);
	nvcf__http_resume(st->req, status, r);
}

/*
 * Responds to a poll, or to an invocation whose stream head never arrived,
 * from the FINAL of a streamed response. Its body went only to the connection
 * that invoked it and is not kept.
 */
static void pending_answer_streamed(nvcf_gateway *gw, pending *p,
				    const Nvcf__InvokeResult *res)
{
	struct MHD_Response *r;
	unsigned int status;
	char detail[512];

	if (p->kind == PEND_POLL) {
		status = 404;
		snprintf(detail, sizeof(detail),
			 "request %s streamed its response to the connection "
			 "that invoked it; a streamed response is not kept "
			 "for polls",
			 p->request_id);
	} else {
		bool has_error = res->error != NULL && res->error[0] != '\0';

		status = 502;
		snprintf(detail, sizeof(detail),
			 "the stream of request %s ended before its response "
			 "head arrived%s%s",
			 p->request_id, has_error ? ": " : "",
			 has_error ? res->error : "");
		nvcf_log_warn(SUB, "%s; responding 502", detail);
	}
	r = nvcf__http_problem_response(status, "", detail, NULL);
	if (r != NULL)
		add_reqid_headers(r, p->request_id, status);
	pending_answer(gw, p, status, r);
}

/* ---- results ---------------------------------------------------------- */

/*
 * First entry of @p rid that a FINAL completes. Streams take their FINAL
 * only from the reply subject: the copy stored on res.* arrives on another
 * subscription and may overtake the last pieces.
 */
static pending *pending_find_final(nvcf_gateway *gw, const char *rid,
				   bool from_reply)
{
	pending *p;

	for (p = gw->table[rid_bucket(rid)]; p != NULL; p = p->next)
		if (strcmp(p->request_id, rid) == 0 &&
		    (p->kind != PEND_STREAM || from_reply))
			return p;
	return NULL;
}

/* The invocation or stream of @p rid that a STREAM message is for. */
static pending *pending_find_streaming(nvcf_gateway *gw, const char *rid)
{
	pending *p;

	for (p = gw->table[rid_bucket(rid)]; p != NULL; p = p->next)
		if (strcmp(p->request_id, rid) == 0 && p->kind != PEND_POLL)
			return p;
	return NULL;
}

/*
 * Responds 502 to an invocation whose first stream message is not the
 * head, and cancels it.
 */
static void stream_lost_head(nvcf_gateway *gw, pending *p,
			     const Nvcf__InvokeResult *res)
{
	struct MHD_Response *r;
	char detail[256];

	snprintf(detail, sizeof(detail),
		 "stream message %llu of request %s arrived before its "
		 "response head",
		 (unsigned long long)res->stream_seq, p->request_id);
	nvcf_log_warn(SUB, "%s; responding 502 and canceling the request",
		      detail);
	publish_cancel(gw, p->version_id, p->request_id);
	r = nvcf__http_problem_response(502, "", detail, NULL);
	if (r != NULL)
		add_reqid_headers(r, p->request_id, 502);
	pending_answer(gw, p, 502, r);
}

/*
 * Handles a result from the reply subject (@p from_reply) or, for polls,
 * from res.*. Takes @p msg.
 */
static void handle_result(nvcf_gateway *gw, natsMsg *msg, bool from_reply)
{
	Nvcf__InvokeResult *res;
	pending *taken = NULL, *started = NULL;
	gw_stream *feed = NULL;
	pending *p;

	res = nvcf__invoke_result__unpack(
		NULL, (size_t)natsMsg_GetDataLength(msg),
		(const uint8_t *)natsMsg_GetData(msg));
	if (res == NULL)
		nvcf_log_warn(SUB, "dropping an invalid result on %s: not an "
			      "InvokeResult", natsMsg_GetSubject(msg));
	natsMsg_Destroy(msg);
	if (res == NULL)
		return;
	if (strlen(res->request_id) != NVCF_UUID_LEN)
		goto out;

	pthread_mutex_lock(&gw->lock);
	switch (res->kind) {
	case NVCF__RESULT_KIND__RESULT_KIND_FINAL:
		/* Every connection waiting for this id gets the final result. */
		while ((p = pending_find_final(gw, res->request_id,
					       from_reply)) != NULL) {
			table_unlink(gw, p);
			p->next = taken;
			taken = p;
		}
		break;
	case NVCF__RESULT_KIND__RESULT_KIND_ACCEPTED:
	case NVCF__RESULT_KIND__RESULT_KIND_PROGRESS:
		for (p = gw->table[rid_bucket(res->request_id)]; p != NULL;
		     p = p->next) {
			if (strcmp(p->request_id, res->request_id) != 0 ||
			    p->kind == PEND_STREAM)
				continue;
			p->accepted = true;
			if (res->kind == PROGRESS)
				p->percent = res->percent_complete;
			/*
			 * Past the window: respond 202 now, not at +2 s. A
			 * stream waits the extra time for its head instead.
			 */
			if (p->grace && !p->wants_stream)
				pending_reschedule(gw, p, 0);
		}
		break;
	case STREAM:
		/* Pieces travel only on the reply subject, never stored. */
		p = from_reply ? pending_find_streaming(gw, res->request_id)
			       : NULL;
		if (p != NULL && p->kind == PEND_STREAM) {
			feed = p->stream;
			atomic_fetch_add(&feed->refs, 1);
		} else if (p != NULL) {
			table_unlink(gw, p);
			started = p;
		}
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&gw->lock);

	if (feed != NULL) {
		stream_push(gw, feed, res);
		stream_unref(feed);
	}
	if (started != NULL && res->stream_seq == 0)
		stream_start(gw, started, res);
	else if (started != NULL)
		stream_lost_head(gw, started, res);

	while (taken != NULL) {
		bool purge = taken->kind == PEND_POLL;
		char subject[64];

		p = taken;
		taken = p->next;
		if (p->kind == PEND_STREAM) {
			stream_end(gw, p->stream, res);
			stream_entry_free(p);
			continue;
		}
		nvcf__result_subject(subject, sizeof(subject), p->request_id);
		pending_answer_final(gw, p, res);
		/* After a poll returned the final result, the request is not pollable again. */
		if (purge)
			purge_subject(gw, NVCF_STREAM_RESULTS, subject);
	}
out:
	nvcf__invoke_result__free_unpacked(res, NULL);
}

/* Receives the results of this gateway's requests on its reply subject. */
static void on_result(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
		      void *closure)
{
	(void)nc;
	(void)sub;
	handle_result(closure, msg, true);
}

/*
 * Receives every result stored on res.* and passes on only those a parked
 * poll waits for. The request id is read from the subject, so the others
 * are dropped without decoding.
 * NOTE: every gateway replica receives every stored result; that traffic
 * grows with the number of replicas.
 */
static void on_stored_result(natsConnection *nc, natsSubscription *sub,
			     natsMsg *msg, void *closure)
{
	nvcf_gateway *gw = closure;
	const char *subject = natsMsg_GetSubject(msg);
	const char *rid = subject + strlen("res.");
	bool wanted = false;
	pending *p;

	if (strlen(subject) != strlen("res.") + NVCF_UUID_LEN) {
		natsMsg_Destroy(msg);
		return;
	}
	pthread_mutex_lock(&gw->lock);
	if (gw->polls > 0) {
		for (p = gw->table[rid_bucket(rid)]; p != NULL; p = p->next) {
			if (p->kind == PEND_POLL &&
			    strcmp(p->request_id, rid) == 0) {
				wanted = true;
				break;
			}
		}
	}
	pthread_mutex_unlock(&gw->lock);
	if (wanted)
		handle_result(gw, msg, false);
	else
		natsMsg_Destroy(msg);
}

/*
 * Registers one more poll and makes sure the res.* subscription exists
 * before the poll parks, so that no result stored after the park is
 * missed. A single subscription replaces one per poll, because creating
 * and destroying subscriptions at the poll rate crashed the reader thread
 * of nats.c 3.4.1 under load.
 */
static nvcf_status polls_acquire(nvcf_gateway *gw)
{
	natsSubscription *sub = NULL;
	natsStatus s = NATS_OK;

	/* stored_lock keeps two polls from both creating a subscription. */
	pthread_mutex_lock(&gw->stored_lock);
	pthread_mutex_lock(&gw->lock);
	sub = gw->stored_sub;
	pthread_mutex_unlock(&gw->lock);
	if (sub == NULL) {
		s = natsConnection_Subscribe(&sub, gw->conn, "res.*",
					     on_stored_result, gw);
		if (s == NATS_OK)
			s = natsSubscription_SetPendingLimits(sub, -1, -1);
		if (s != NATS_OK) {
			natsSubscription_Destroy(sub);
			sub = NULL;
		}
	}
	if (s == NATS_OK) {
		pthread_mutex_lock(&gw->lock);
		gw->stored_sub = sub;
		gw->polls++;
		pthread_mutex_unlock(&gw->lock);
	}
	pthread_mutex_unlock(&gw->stored_lock);
	if (s != NATS_OK)
		return nvcf__bus_error(s, 0, "subscribing to", "res.*");
	return NVCF_OK;
}

/* Undoes polls_acquire() for a poll that never parked. */
static void polls_release_unparked(nvcf_gateway *gw)
{
	pthread_mutex_lock(&gw->lock);
	if (--gw->polls == 0)
		gw->polls_idle_since = nvcf__mono_us();
	pthread_mutex_unlock(&gw->lock);
}

/* Drops the res.* subscription once no poll has waited for a while. */
static void polls_drop_idle_subscription(nvcf_gateway *gw)
{
	natsSubscription *sub = NULL;

	pthread_mutex_lock(&gw->stored_lock);
	pthread_mutex_lock(&gw->lock);
	if (gw->stored_sub != NULL && gw->polls == 0 &&
	    nvcf__mono_us() - gw->polls_idle_since >= STORED_SUB_IDLE_US) {
		sub = gw->stored_sub;
		gw->stored_sub = NULL;
	}
	pthread_mutex_unlock(&gw->lock);
	if (sub != NULL) {
		natsSubscription_Unsubscribe(sub);
		natsSubscription_Destroy(sub);
		nvcf_log_debug(SUB, "no poll waited for %lld s: dropped the "
			       "res.* subscription",
			       (long long)(STORED_SUB_IDLE_US / 1000000));
	}
	pthread_mutex_unlock(&gw->stored_lock);
}

/* ---- window ends ------------------------------------------------------ */

static void window_end(nvcf_gateway *gw, pending *p)
{
	Nvcf__InvokeResult *res = NULL;
	char subject[160], stream[96];
	nvcf_status st;

	if (p->kind == PEND_POLL) {
		pending_answer_progress(gw, p);
		return;
	}
	if (p->kind == PEND_STREAM) {
		snprintf(subject, sizeof(subject),
			 "the stream reached the limit of %lld s",
			 (long long)(STREAM_MAX_US / 1000000));
		stream_fail(gw, p->stream, subject, true, true);
		stream_entry_free(p);
		return;
	}
	/*
	 * With no ready instance the version is scaling from zero: the
	 * request stays queued for the instance that is starting, and the
	 * caller polls for its result like for an accepted one. A streamed
	 * request gets no 202, as in NVCF: only its response head ends the
	 * wait, so it falls through to the 504.
	 */
	if (!p->wants_stream &&
	    (p->accepted ||
	     nvcf__gw_ready_instances(gw->cache, p->version_id) == 0)) {
		st = store_pending(gw, p);
		if (st == NVCF_EEXISTS &&
		    last_result(gw, p->request_id, &res) == NVCF_OK &&
		    res->kind == NVCF__RESULT_KIND__RESULT_KIND_FINAL) {
			pending_answer_final(gw, p, res);
			nvcf__invoke_result__free_unpacked(res, NULL);
			return;
		}
		if (res != NULL)
			nvcf__invoke_result__free_unpacked(res, NULL);
		if (st != NVCF_OK && st != NVCF_EEXISTS)
			nvcf_log_warn(SUB, "request %s: %s; its polls will "
				      "get 404", p->request_id,
				      nvcf_error_last()->message);
		pending_answer_progress(gw, p);
		return;
	}

	/* No worker took it: NVCF cancels and purges it, then responds 504. */
	if (p->wants_stream)
		nvcf_log_info(SUB, "request %s for version %s: no stream head "
			      "in time; answering 504", p->request_id,
			      p->version_id);
	else
		nvcf_log_info(SUB, "request %s for version %s: no worker took "
			      "it in time; answering 504", p->request_id,
			      p->version_id);
	nvcf__queue_subject(subject, sizeof(subject), gw->region,
			    p->version_id, p->request_id);
	nvcf__queue_stream_name(stream, sizeof(stream), gw->region,
				p->version_id);
	purge_subject(gw, stream, subject);
	drop_body_chunks(gw, p);
	snprintf(subject, sizeof(subject), "nvcf.cancel.%s", p->version_id);
	natsConnection_PublishString(gw->conn, subject, p->request_id);
	pending_answer(gw, p, 504, reqid_response(p->request_id, 504));
}

static void *timer_main(void *arg)
{
	nvcf_gateway *gw = arg;
	int64_t extra_us = (int64_t)gw->opts.extra_wait_seconds * 1000000;

	pthread_mutex_lock(&gw->lock);
	while (!gw->stopping) {
		pending *p;
		int64_t now;

		now = nvcf__mono_us();
		if (gw->polls == 0 && gw->stored_sub != NULL &&
		    now - gw->polls_idle_since >= STORED_SUB_IDLE_US) {
			pthread_mutex_unlock(&gw->lock);
			polls_drop_idle_subscription(gw);
			pthread_mutex_lock(&gw->lock);
			continue;
		}
		if (gw->heap_len == 0 || gw->heap[0]->deadline_us > now) {
			/* Wakes at the next deadline, and at least every
			 * TIMER_IDLE_US (see timer_notify). */
			int64_t wake = gw->heap_len ? gw->heap[0]->deadline_us
						    : INT64_MAX;
			struct timespec ts;

			if (wake > now + TIMER_IDLE_US)
				wake = now + TIMER_IDLE_US;
			gw->timer_wake_us = wake;
			ts.tv_sec = wake / 1000000;
			ts.tv_nsec = (wake % 1000000) * 1000;
			pthread_cond_timedwait(&gw->cond, &gw->lock, &ts);
			continue;
		}
		p = gw->heap[0];
		/* A stream waits the extra time for its head, taken or not. */
		if (p->kind == PEND_INVOKE &&
		    (!p->accepted || p->wants_stream) && !p->grace &&
		    extra_us > 0) {
			p->grace = true;
			pending_reschedule(gw, p, now + extra_us);
			continue;
		}
		table_unlink(gw, p);
		pthread_mutex_unlock(&gw->lock);
		window_end(gw, p);
		pthread_mutex_lock(&gw->lock);
	}
	pthread_mutex_unlock(&gw->lock);
	return NULL;
}

/* ---- request handling ------------------------------------------------- */

static void on_done(nvcf__http_req *req, bool answered, void *state)
{
	nvcf_gateway *gw = state;

	(void)req;
	(void)answered;
	atomic_fetch_sub(&gw->suspended, 1);
}

/* Suspends @p req and registers @p p for it; false when out of memory. */
static bool pending_park(nvcf_gateway *gw, nvcf__http_req *req, pending *p,
			 int poll_seconds)
{
	bool ok;

	p->req = req;
	p->percent = -1;
	p->heap_idx = SIZE_MAX;
	p->deadline_us = nvcf__mono_us() + (int64_t)poll_seconds * 1000000;
	atomic_fetch_add(&gw->suspended, 1);
	nvcf__http_set_state(req, gw, on_done);
	nvcf__http_suspend(req);
	pthread_mutex_lock(&gw->lock);
	ok = !gw->stopping && pending_insert(gw, p);
	pthread_mutex_unlock(&gw->lock);
	return ok;
}

/*
 * Checks Authorization and the invoke scope. On failure it answers and
 * returns false. Called after the presence check and id validation.
 */
static bool authenticate(nvcf_gateway *gw, nvcf__http_req *req,
			 nvcf__key_record *rec)
{
	const char *token = nvcf__bearer_token(
		nvcf__http_header(req, "Authorization"));
	nvcf_status st;

	if (token == NULL) {
		send_problem(gw, req, 401,
			     "Authorization must be 'Bearer <API key>'");
		return false;
	}
	st = nvcf__gw_key_lookup(gw->cache, token, rec);
	if (st == NVCF_EUNAUTHENTICATED) {
		send_problem(gw, req, 401, "%s", nvcf_error_last()->message);
		return false;
	}
	if (st != NVCF_OK) {
		send_problem(gw, req, 503, "cannot check the API key: %s",
			     nvcf_error_last()->message);
		return false;
	}
	if (!(rec->scopes & NVCF_SCOPE_INVOKE_FUNCTION)) {
		send_problem(gw, req, 403,
			     "API key lacks the invoke_function scope");
		return false;
	}
	return true;
}

static bool has_authorization(nvcf_gateway *gw, nvcf__http_req *req)
{
	if (nvcf__http_header(req, "Authorization") != NULL)
		return true;
	send_text(gw, req, 401, "Header of type `authorization` was missing");
	return false;
}

/* Outcome of the embedder's authentication callback. */
typedef enum hook_result {
	HOOK_CONTINUE, /* no callback, or it requested the key check */
	HOOK_ALLOWED,  /* rec contains the account it chose */
	HOOK_ANSWERED  /* denied or misused, and the caller got a response */
} hook_result;

struct nvcf_gateway_request {
	const nvcf__http_req *req;
};

const char *nvcf_gateway_request_header(const nvcf_gateway_request *request,
					const char *name)
{
	if (request == NULL || name == NULL)
		return NULL;
	return nvcf__http_header(request->req, name);
}

/*
 * Runs opts.auth_cb, if any, on a recognised invocation route. On
 * HOOK_ALLOWED, @p hide contains a header not to forward, or "".
 */
static hook_result run_auth_hook(nvcf_gateway *gw, nvcf__http_req *req,
				 nvcf__key_record *rec, char hide[64])
{
	nvcf_gateway_request request = {req};
	nvcf_gateway_auth_verdict v;
	nvcf_gateway_auth_action action;
	unsigned int status;

	hide[0] = '\0';
	if (gw->opts.auth_cb == NULL)
		return HOOK_CONTINUE;
	memset(&v, 0, sizeof(v));
	v.version = NVCF_GATEWAY_AUTH_VERDICT_VERSION;
	action = gw->opts.auth_cb(nvcf__http_method(req), nvcf__http_path(req),
				  &request, &v, gw->opts.auth_userdata);
	/* The callback may have filled the buffers to the last byte. */
	v.nca_id[sizeof(v.nca_id) - 1] = '\0';
	v.subject[sizeof(v.subject) - 1] = '\0';
	v.message[sizeof(v.message) - 1] = '\0';
	v.hide_header[sizeof(v.hide_header) - 1] = '\0';
	switch (action) {
	case NVCF_GATEWAY_AUTH_CONTINUE:
		return HOOK_CONTINUE;
	case NVCF_GATEWAY_AUTH_ALLOW_AS:
		if (!nvcf__nca_id_valid(v.nca_id)) {
			nvcf_log_error(SUB, "the authentication callback "
				       "allowed %s %s as invalid account id "
				       "'%s': return 1 to 64 letters, "
				       "digits, '-' or '_'",
				       nvcf__http_method(req),
				       nvcf__http_path(req), v.nca_id);
			send_problem(gw, req, 500, "authentication failed");
			return HOOK_ANSWERED;
		}
		memset(rec, 0, sizeof(*rec));
		snprintf(rec->nca_id, sizeof(rec->nca_id), "%s", v.nca_id);
		snprintf(rec->subject, sizeof(rec->subject), "%s", v.subject);
		rec->scopes = NVCF_SCOPE_ALL;
		memcpy(hide, v.hide_header, sizeof(v.hide_header));
		return HOOK_ALLOWED;
	case NVCF_GATEWAY_AUTH_DENY:
		status = v.http_status == 0 ? 401 : v.http_status;
		if (status < 400 || status > 599) {
			nvcf_log_error(SUB, "the authentication callback "
				       "denied %s %s with invalid status %u: "
				       "return 400 to 599, or 0 for 401",
				       nvcf__http_method(req),
				       nvcf__http_path(req), status);
			status = 500;
		}
		send_problem(gw, req, status, "%s",
			     v.message[0] != '\0' ? v.message : "denied");
		return HOOK_ANSWERED;
	}
	nvcf_log_error(SUB, "the authentication callback returned %d for %s "
		       "%s: return an nvcf_gateway_auth_action",
		       (int)action, nvcf__http_method(req),
		       nvcf__http_path(req));
	send_problem(gw, req, 500, "authentication failed");
	return HOOK_ANSWERED;
}

typedef struct header_list {
	Nvcf__Header *items;
	Nvcf__Header **ptrs;
	size_t len, cap;
	const char *hide; /* from the authentication callback, or "" */
} header_list;

static bool collect_header(const char *name, const char *value, void *ud)
{
	header_list *hl = ud;

	if (!nvcf_request_header_forwardable(name) ||
	    strcasecmp(name, hl->hide) == 0)
		return true;
	if (hl->len == hl->cap)
		return false;
	nvcf__header__init(&hl->items[hl->len]);
	hl->items[hl->len].name = (char *)name;
	hl->items[hl->len].value = (char *)value;
	hl->ptrs[hl->len] = &hl->items[hl->len];
	hl->len++;
	return true;
}

/*
 * Stores a request body over the inline limit as chunks on
 * body.{requestId}.{n} and records size, count and digest in @p msg,
 * whose body stays empty. @p digest is the caller's buffer that @p msg
 * points to. On failure it responds 429 (stream full) or 503 and returns
 * false, and the store has purged what it stored.
 */
static bool store_body_chunks(nvcf_gateway *gw, nvcf__http_req *req,
			      pending *p, const char *body, size_t body_len,
			      Nvcf__InvokeRequest *msg,
			      uint8_t digest[NVCF__SHA256_LEN])
{
	char prefix[64];
	uint32_t count = 0;
	int64_t started = nvcf__mono_us();
	nvcf_status st;

	snprintf(prefix, sizeof(prefix), "body.%s", p->request_id);
	st = nvcf__body_digest(body, body_len, digest);
	if (st == NVCF_OK)
		st = nvcf__chunks_store(gw->js, NVCF__STREAM_BODIES, prefix,
					body, body_len, gw->chunk_size,
					&count);
	if (st == NVCF_EQUOTA) {
		nvcf_log_info(SUB, "request %s: stream %s is full; responding "
			      "429", p->request_id, NVCF__STREAM_BODIES);
		count_code(gw, 429);
		nvcf__http_send(req, 429,
				nvcf__http_problem_response(
					429, "",
					"no room to store the request body; "
					"retry later",
					nvcf__http_path(req)));
		return false;
	}
	if (st != NVCF_OK) {
		nvcf_log_warn(SUB, "request %s: storing its body of %zu bytes "
			      "failed: %s", p->request_id, body_len,
			      nvcf_error_last()->message);
		send_problem(gw, req, 503,
			     "the request body could not be stored; retry "
			     "later");
		return false;
	}
	p->chunked = true;
	msg->body_size = body_len;
	msg->body_chunks = count;
	msg->body_sha256.data = digest;
	msg->body_sha256.len = NVCF__SHA256_LEN;
	nvcf_log_debug(SUB, "request %s: stored a body of %zu bytes in %u "
		       "chunks in %lld us",
		       p->request_id, body_len, (unsigned int)count,
		       (long long)(nvcf__mono_us() - started));
	return true;
}

#define MAX_FORWARDED_HEADERS 128

/*
 * Queues one invocation and suspends the connection until its result.
 * In @p header_mode the function receives the caller's method, path and
 * query; otherwise POST to the version's inferenceUrl. The function
 * does not see header @p hide, which carried the embedder's credential.
 */
static void invoke(nvcf_gateway *gw, nvcf__http_req *req,
		   const nvcf__key_record *rec, const char *hide,
		   const char *function_id, const char *version_id,
		   bool header_mode)
{
	Nvcf__InvokeRequest msg = NVCF__INVOKE_REQUEST__INIT;
	Nvcf__Header items[MAX_FORWARDED_HEADERS];
	Nvcf__Header *ptrs[MAX_FORWARDED_HEADERS];
	header_list hl = {items, ptrs, 0, MAX_FORWARDED_HEADERS, hide};
	uint8_t stackbuf[8192], *buf = stackbuf;
	char subject[160];
	jsPubOptions po;
	natsStatus s;
	nvcf__gw_target target;
	int poll_seconds;
	uint8_t digest[NVCF__SHA256_LEN];
	size_t body_len, len;
	const char *body;
	pending *p;
	nvcf_status st;
	int64_t now;

	const char *accept = nvcf__http_header(req, "Accept");
	const char *poll_header = nvcf__http_header(req, "NVCF-POLL-SECONDS");

	if (nvcf_request_poll_seconds(poll_header, &poll_seconds) != NVCF_OK) {
		send_problem(gw, req, 400, "%s", nvcf_error_last()->message);
		return;
	}
	if (poll_header == NULL && nvcf__accept_is_event_stream(accept))
		poll_seconds = NVCF_SSE_POLL_SECONDS_DEFAULT;
	st = nvcf__gw_resolve(gw->cache, rec->nca_id, function_id,
			      version_id, &target);
	if (st == NVCF_EUNAVAILABLE) {
		send_problem(gw, req, 400,
			     "Function id '%s': DEGRADED function cannot be "
			     "invoked",
			     function_id);
		return;
	}
	if (st != NVCF_OK) {
		if (version_id != NULL)
			send_problem(gw, req, 404,
				     "Function id '%s' version '%s' not found "
				     "or not ACTIVE",
				     function_id, version_id);
		else
			send_problem(gw, req, 404,
				     "Function id '%s' not found or has no "
				     "ACTIVE version",
				     function_id);
		return;
	}

	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		send_problem(gw, req, 503, "out of memory");
		return;
	}
	p->kind = PEND_INVOKE;
	p->wants_stream = nvcf__accepts_event_stream(accept);
	if (nvcf_request_id_new(p->request_id) != NVCF_OK) {
		free(p);
		send_problem(gw, req, 500, "no random bytes for a request id");
		return;
	}
	memcpy(p->function_id, function_id, sizeof(p->function_id));
	memcpy(p->version_id, target.version_id, sizeof(p->version_id));
	memcpy(p->nca_id, rec->nca_id, sizeof(p->nca_id));

	nvcf__http_foreach_header(req, collect_header, &hl);
	body = nvcf__http_body(req, &body_len);
	now = nvcf__now_us();
	msg.request_id = p->request_id;
	msg.nca_id = p->nca_id;
	msg.function_id = p->function_id;
	msg.version_id = p->version_id;
	msg.function_name = target.name;
	msg.method = (char *)(header_mode ? nvcf__http_method(req) : "POST");
	msg.path = (char *)(header_mode ? nvcf__http_target(req)
				       : target.inference_url);
	msg.n_headers = hl.len;
	msg.headers = ptrs;
	if (body_len > gw->inline_limit) {
		if (!store_body_chunks(gw, req, p, body, body_len, &msg,
				       digest)) {
			free(p);
			return;
		}
	} else {
		msg.body.data = (uint8_t *)body;
		msg.body.len = body_len;
	}
	msg.reply_subject = gw->reply_subject;
	msg.request_time_us = now;
	msg.poll_deadline_us = now + (int64_t)poll_seconds * 1000000;
	msg.caller_subject = (char *)rec->subject;
	len = nvcf__invoke_request__get_packed_size(&msg);
	/*
	 * The body is at most inline_limit here, which leaves 64 KiB of
	 * max_payload for the rest, so only a request with that much in
	 * headers gets this 413.
	 */
	if ((int64_t)len > natsConnection_GetMaxPayload(gw->conn)) {
		int64_t limit = natsConnection_GetMaxPayload(gw->conn);

		drop_body_chunks(gw, p);
		free(p);
		send_problem(gw, req, 413,
			     "request message of %zu bytes exceeds the limit "
			     "of %lld bytes (max_payload of the NATS server); "
			     "send fewer or shorter headers",
			     len, (long long)limit);
		return;
	}
	if (len > sizeof(stackbuf) && (buf = malloc(len)) == NULL) {
		drop_body_chunks(gw, p);
		free(p);
		send_problem(gw, req, 503, "out of memory");
		return;
	}
	nvcf__invoke_request__pack(&msg, buf);

	/* Parked before publishing: a worker can answer within microseconds. */
	if (!pending_park(gw, req, p, poll_seconds)) {
		if (buf != stackbuf)
			free(buf);
		drop_body_chunks(gw, p);
		pending_answer(gw, p, 503, reqid_response(p->request_id, 503));
		return;
	}
	nvcf__queue_subject(subject, sizeof(subject), gw->region,
			    p->version_id, p->request_id);
	jsPubOptions_Init(&po);
	po.MsgId = p->request_id;
	s = js_PublishAsync(gw->pub_js, subject, buf, (int)len, &po);
	if (buf != stackbuf)
		free(buf);
	if (s == NATS_OK) {
		/* Scale from zero starts now, not on the autoscaler's tick. */
		if (nvcf__gw_ready_instances(gw->cache, p->version_id) == 0) {
			snprintf(subject, sizeof(subject), "nvcf.wake.%s",
				 p->version_id);
			natsConnection_PublishString(gw->conn, subject,
						     p->request_id);
		}
		return;
	}
	nvcf_log_warn(SUB, "request %s for version %s: publish failed: %s",
		      p->request_id, p->version_id, natsStatus_GetText(s));
	atomic_fetch_add_explicit(&gw->publish_errors, 1,
				  memory_order_relaxed);
	if (pending_take(gw, p)) {
		drop_body_chunks(gw, p);
		pending_answer(gw, p, 503,
			       nvcf__http_problem_response(
				       503, "",
				       "the request could not be queued; "
				       "retry later",
				       nvcf__http_path(req)));
	}
}

/*
 * Handles a request publish that JetStream rejected. No worker will see
 * that request, so the caller gets 429 for a full queue, else 503.
 */
static void on_publish_error(jsCtx *js, jsPubAckErr *pae, void *closure)
{
	nvcf_gateway *gw = closure;
	const char *subject = natsMsg_GetSubject(pae->Msg);
	size_t n = subject ? strlen(subject) : 0;
	struct MHD_Response *r;
	unsigned int status;
	pending *p;

	(void)js;
	atomic_fetch_add_explicit(&gw->publish_errors, 1,
				  memory_order_relaxed);
	if (n < NVCF_UUID_LEN)
		return;
	pthread_mutex_lock(&gw->lock);
	p = pending_find(gw, subject + n - NVCF_UUID_LEN);
	if (p != NULL && p->kind == PEND_INVOKE)
		table_unlink(gw, p);
	else
		p = NULL;
	pthread_mutex_unlock(&gw->lock);
	if (p == NULL)
		return;
	drop_body_chunks(gw, p);

	if (pae->ErrCode == JS_ERR_STREAM_FULL) {
		nvcf_log_info(SUB, "request %s: queue of version %s is full; "
			      "answering 429", p->request_id, p->version_id);
		status = 429;
		r = nvcf__http_problem_response(
			status, "",
			"the request queue of this function version is full; "
			"retry later",
			nvcf__http_path(p->req));
		if (r != NULL)
			MHD_add_response_header(r, "Retry-After", "1");
	} else {
		nvcf_log_warn(SUB, "request %s for version %s: JetStream did "
			      "not store it: %s (JetStream error %d: %s)",
			      p->request_id, p->version_id,
			      natsStatus_GetText(pae->Err), (int)pae->ErrCode,
			      pae->ErrText ? pae->ErrText : "");
		status = 503;
		r = nvcf__http_problem_response(
			status, "",
			pae->Err == NATS_NO_RESPONDERS
				? "this function version has no request "
				  "queue; deploy it again"
				: "the request could not be queued; retry "
				  "later",
			nvcf__http_path(p->req));
	}
	pending_answer(gw, p, status, r);
}

static void poll_status(nvcf_gateway *gw, nvcf__http_req *req,
			const char *rid)
{
	Nvcf__InvokeResult *res = NULL;
	nvcf__key_record rec;
	char subject[64];
	int poll_seconds;
	pending *p;
	nvcf_status st;
	char hide[64];
	hook_result hook = run_auth_hook(gw, req, &rec, hide);

	if (hook == HOOK_ANSWERED ||
	    (hook == HOOK_CONTINUE && !has_authorization(gw, req)))
		return;
	if (!nvcf_request_id_valid(rid)) {
		send_text(gw, req, 400,
			  "Invalid URL: requestId is not a UUID");
		return;
	}
	if (hook == HOOK_CONTINUE && !authenticate(gw, req, &rec))
		return;
	if (nvcf_request_poll_seconds(nvcf__http_header(req,
							"NVCF-POLL-SECONDS"),
				      &poll_seconds) != NVCF_OK) {
		send_problem(gw, req, 400, "%s", nvcf_error_last()->message);
		return;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		send_problem(gw, req, 503, "out of memory");
		return;
	}
	p->kind = PEND_POLL;
	snprintf(p->request_id, sizeof(p->request_id), "%s", rid);
	snprintf(p->nca_id, sizeof(p->nca_id), "%s", rec.nca_id);

	/*
	 * Parked, then the stored result read: a FINAL stored before the park
	 * is found by the read, and one stored after it reaches this
	 * connection through the shared res.* subscription. Once parked, the
	 * result callback or the timer may answer and free p at any moment,
	 * so from then on p is only used through pending_take_parked() and
	 * pending_set_percent().
	 */
	nvcf__result_subject(subject, sizeof(subject), rid);
	if (polls_acquire(gw) != NVCF_OK) {
		nvcf_log_warn(SUB, "poll of request %s: %s", rid,
			      nvcf_error_last()->message);
		free(p);
		send_problem(gw, req, 503, "cannot watch the result of request "
			     "%s; retry later", rid);
		return;
	}
	if (!pending_park(gw, req, p, poll_seconds)) {
		polls_release_unparked(gw);
		pending_answer(gw, p, 503, reqid_response(rid, 503));
		return;
	}
	st = last_result(gw, rid, &res);
	if (st == NVCF_OK && strcmp(res->nca_id, rec.nca_id) != 0)
		st = NVCF_ENOTFOUND; /* another account's request */
	if (st == NVCF_OK && res->kind == FINAL) {
		if (pending_take_parked(gw, rid, p)) {
			pending_answer_final(gw, p, res);
			purge_subject(gw, NVCF_STREAM_RESULTS, subject);
		}
	} else if (st == NVCF_OK) {
		if (res->kind == NVCF__RESULT_KIND__RESULT_KIND_PROGRESS)
			pending_set_percent(gw, rid, p, res->percent_complete);
	} else if (pending_take_parked(gw, rid, p)) {
		pending_answer(
			gw, p, st == NVCF_ENOTFOUND ? 404 : 503,
			nvcf__http_problem_response(
				st == NVCF_ENOTFOUND ? 404 : 503, "",
				st == NVCF_ENOTFOUND
					? "request id not found"
					: "cannot read the result; retry later",
				nvcf__http_path(req)));
	}
	if (res != NULL)
		nvcf__invoke_result__free_unpacked(res, NULL);
}

/* Copies a UUID path segment into @p out; false when it is not a UUID. */
static bool take_uuid(const char **pp, char out[NVCF_UUID_LEN + 1])
{
	const char *s = *pp;
	size_t n = strcspn(s, "/");

	if (n != NVCF_UUID_LEN)
		return false;
	memcpy(out, s, NVCF_UUID_LEN);
	out[NVCF_UUID_LEN] = '\0';
	if (!nvcf_request_id_valid(out))
		return false;
	*pp = s + n;
	return true;
}

static void route_pexec(nvcf_gateway *gw, nvcf__http_req *req,
			const char *rest)
{
	char fid[NVCF_UUID_LEN + 1], vid[NVCF_UUID_LEN + 1];
	nvcf__key_record rec;
	bool has_version = false;
	char hide[64];
	hook_result hook;
	const char *seg;

	/* Only the shapes NVCF serves exist; the rest is 404. */
	seg = rest + strcspn(rest, "/");
	if (*seg != '\0') {
		if (strncmp(seg, "/versions/", 10) != 0 || seg[10] == '\0' ||
		    strchr(seg + 10, '/') != NULL) {
			send_problem(gw, req, 404, "route not found");
			return;
		}
		has_version = true;
	}
	if (strcmp(nvcf__http_method(req), "POST") != 0) {
		send_problem(gw, req, 404, "route not found");
		return;
	}
	hook = run_auth_hook(gw, req, &rec, hide);
	if (hook == HOOK_ANSWERED ||
	    (hook == HOOK_CONTINUE && !has_authorization(gw, req)))
		return;
	if (!take_uuid(&rest, fid) ||
	    (has_version && (rest += 10, !take_uuid(&rest, vid)))) {
		send_text(gw, req, 400,
			  "Invalid URL: function id and version id must be "
			  "UUIDs");
		return;
	}
	if (hook == HOOK_CONTINUE && !authenticate(gw, req, &rec))
		return;
	invoke(gw, req, &rec, hide, fid, has_version ? vid : NULL, false);
}

static void route_header(nvcf_gateway *gw, nvcf__http_req *req,
			 const char *fid_header)
{
	const char *vid_header = nvcf__http_header(req, "function-version-id");
	nvcf__key_record rec;
	char hide[64];
	hook_result hook = run_auth_hook(gw, req, &rec, hide);

	if (hook == HOOK_ANSWERED ||
	    (hook == HOOK_CONTINUE && !has_authorization(gw, req)))
		return;
	if (!nvcf_request_id_valid(fid_header) ||
	    (vid_header != NULL && !nvcf_request_id_valid(vid_header))) {
		send_text(gw, req, 400,
			  "Invalid header: function-id and "
			  "function-version-id must be UUIDs");
		return;
	}
	if (hook == HOOK_CONTINUE && !authenticate(gw, req, &rec))
		return;
	invoke(gw, req, &rec, hide, fid_header, vid_header, true);
}

static void serve_metrics(nvcf_gateway *gw, nvcf__http_req *req)
{
	nvcf__buf out = {0};
	size_t waiting;

	pthread_mutex_lock(&gw->lock);
	waiting = gw->heap_len;
	pthread_mutex_unlock(&gw->lock);
	nvcf__buf_printf(&out,
			 "# HELP nvcf_gateway_requests_total Responses "
			 "sent, by HTTP status.\n"
			 "# TYPE nvcf_gateway_requests_total counter\n");
	for (unsigned int c = 100; c < MAX_CODE; c++) {
		uint64_t n = atomic_load_explicit(&gw->by_code[c],
						  memory_order_relaxed);

		if (n > 0)
			nvcf__buf_printf(&out,
					 "nvcf_gateway_requests_total"
					 "{code=\"%u\"} %llu\n",
					 c, (unsigned long long)n);
	}
	nvcf__buf_printf(
		&out,
		"# HELP nvcf_gateway_pending_requests Connections waiting "
		"for a result.\n"
		"# TYPE nvcf_gateway_pending_requests gauge\n"
		"nvcf_gateway_pending_requests %zu\n"
		"# HELP nvcf_gateway_publish_errors_total Requests "
		"JetStream did not store.\n"
		"# TYPE nvcf_gateway_publish_errors_total counter\n"
		"nvcf_gateway_publish_errors_total %llu\n"
		"# HELP nvcf_gateway_streams Streamed responses being "
		"sent.\n"
		"# TYPE nvcf_gateway_streams gauge\n"
		"nvcf_gateway_streams %d\n",
		waiting,
		(unsigned long long)atomic_load(&gw->publish_errors),
		atomic_load(&gw->streams));
	nvcf__http_send(req, 200,
			nvcf__http_response("text/plain; version=0.0.4",
					    out.data ? out.data : "",
					    out.len));
	nvcf__buf_free(&out);
}

static void handle(nvcf__http_req *req, void *userdata)
{
	nvcf_gateway *gw = userdata;
	const char *path = nvcf__http_path(req);
	const char *method = nvcf__http_method(req);
	const char *fid_header = nvcf__http_header(req, "function-id");

	if (fid_header != NULL) {
		route_header(gw, req, fid_header);
	} else if (strncmp(path, PEXEC_FUNCTIONS,
			   strlen(PEXEC_FUNCTIONS)) == 0) {
		route_pexec(gw, req, path + strlen(PEXEC_FUNCTIONS));
	} else if (strncmp(path, PEXEC_STATUS, strlen(PEXEC_STATUS)) == 0 &&
		   strcmp(method, "GET") == 0 &&
		   strchr(path + strlen(PEXEC_STATUS), '/') == NULL) {
		poll_status(gw, req, path + strlen(PEXEC_STATUS));
	} else if (strcmp(path, "/health") == 0 &&
		   strcmp(method, "GET") == 0) {
		bool up = natsConnection_Status(gw->conn) ==
			  NATS_CONN_STATUS_CONNECTED;

		nvcf__http_send_json(req, up ? 200 : 503,
				     up ? "{\"status\":\"OK\"}"
					: "{\"status\":\"NATS unreachable\"}");
	} else if (strcmp(path, "/metrics") == 0 &&
		   strcmp(method, "GET") == 0) {
		serve_metrics(gw, req);
	} else {
		send_problem(gw, req, 404, "route not found");
	}
}

/* ---- object ----------------------------------------------------------- */

nvcf_status nvcf_gateway_new(nvcf_gateway **out,
			     const nvcf_gateway_options *opts)
{
	nvcf_bus_options bo = NVCF_BUS_OPTIONS_INIT;
	pthread_condattr_t ca;
	jsOptions jo;
	nvcf_gateway *gw;
	nvcf_status st;
	natsStatus s;

	if (out == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf_gateway_new: out is NULL");
	*out = NULL;
	if (opts != NULL && (opts->version == 0 ||
			     opts->version > NVCF_GATEWAY_OPTIONS_VERSION))
		return nvcf__error_set(NVCF_EINVAL,
				       "unsupported nvcf_gateway_options "
				       "version %u: use "
				       "NVCF_GATEWAY_OPTIONS_INIT",
				       opts->version);
	gw = calloc(1, sizeof(*gw));
	if (gw == NULL)
		return nvcf__error_oom();
	if (opts != NULL && opts->version == 1) {
		/* A version 1 struct ends before auth_cb; the rest stays 0. */
		memcpy(&gw->opts, opts,
		       offsetof(nvcf_gateway_options, auth_cb));
	} else if (opts != NULL && opts->version == 2) {
		/* A version 2 struct ends before inline_body_bytes. */
		memcpy(&gw->opts, opts,
		       offsetof(nvcf_gateway_options, inline_body_bytes));
	} else if (opts != NULL) {
		gw->opts = *opts;
	} else {
		nvcf_gateway_options d = NVCF_GATEWAY_OPTIONS_INIT;

		gw->opts = d;
	}
	gw->opts.version = NVCF_GATEWAY_OPTIONS_VERSION;
	if (gw->opts.threads == 0)
		gw->opts.threads = 2;
	if (gw->opts.max_body_bytes == 0)
		gw->opts.max_body_bytes = (size_t)64 << 20;
	if (gw->opts.extra_wait_seconds < 0)
		gw->opts.extra_wait_seconds = 2;
	gw->nats_url = nvcf__strdup(gw->opts.nats_url
					    ? gw->opts.nats_url
					    : "nats://127.0.0.1:4222");
	gw->listen_address = nvcf__strdup(
		gw->opts.listen_address ? gw->opts.listen_address
					: "127.0.0.1");
	gw->region = nvcf__strdup(gw->opts.region ? gw->opts.region
						  : "local");
	pthread_mutex_init(&gw->lock, NULL);
	pthread_mutex_init(&gw->stored_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&gw->cond, &ca);
	pthread_condattr_destroy(&ca);
	atomic_init(&gw->suspended, 0);
	atomic_init(&gw->chunk_readers, 0);
	atomic_init(&gw->streams, 0);
	if (gw->nats_url == NULL || gw->listen_address == NULL ||
	    gw->region == NULL) {
		nvcf_gateway_free(gw);
		return nvcf__error_oom();
	}
	gw->opts.nats_url = gw->nats_url;
	gw->opts.listen_address = gw->listen_address;
	gw->opts.region = gw->region;

	if ((st = nvcf__uuid_new(gw->instance_id)) != NVCF_OK)
		goto fail;
	snprintf(gw->reply_subject, sizeof(gw->reply_subject), "nvcf.gw.%s",
		 gw->instance_id);
	bo.url = gw->nats_url;
	bo.name = "nvcf-invocation";
	bo.region = gw->region;
	if ((st = nvcf_bus_new(&gw->bus, &bo)) != NVCF_OK)
		goto fail;
	gw->conn = nvcf__bus_conn(gw->bus);
	gw->js = nvcf__bus_js(gw->bus);
	gw->chunk_size = nvcf__chunk_size(
		natsConnection_GetMaxPayload(gw->conn));
	gw->inline_limit = nvcf__inline_limit(
		gw->opts.inline_body_bytes,
		natsConnection_GetMaxPayload(gw->conn));
	jsOptions_Init(&jo);
	jo.PublishAsync.ErrHandler = on_publish_error;
	jo.PublishAsync.ErrHandlerClosure = gw;
	jo.PublishAsync.MaxPending = MAX_PUBLISHES_IN_FLIGHT;
	s = natsConnection_JetStream(&gw->pub_js, gw->conn, &jo);
	if (s != NATS_OK) {
		st = nvcf__bus_error(s, 0, "JetStream context for",
				     "publishes");
		goto fail;
	}
	if ((st = nvcf_bus_ensure_control(gw->bus)) != NVCF_OK ||
	    (st = nvcf__gw_cache_new(&gw->cache, gw->bus)) != NVCF_OK)
		goto fail;
	s = natsConnection_Subscribe(&gw->reply_sub, gw->conn,
				     gw->reply_subject, on_result, gw);
	if (s == NATS_OK)
		s = natsSubscription_SetPendingLimits(gw->reply_sub, -1, -1);
	if (s != NATS_OK) {
		st = nvcf__bus_error(s, 0, "subscribing to",
				     gw->reply_subject);
		goto fail;
	}
	*out = gw;
	return NVCF_OK;
fail:
	nvcf_gateway_free(gw);
	return st;
}

nvcf_status nvcf_gateway_start(nvcf_gateway *gw)
{
	nvcf__http_config hc = {0};
	nvcf_status st;

	if (gw == NULL || gw->started)
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf_gateway_start: gateway is NULL "
				       "or already started");
	if ((st = nvcf__gw_cache_start(gw->cache, 5000)) != NVCF_OK)
		return st;
	if (pthread_create(&gw->timer, NULL, timer_main, gw) != 0)
		return nvcf__error_set(NVCF_ENOMEM,
				       "cannot start the gateway's timer "
				       "thread");
	gw->timer_running = true;
	hc.bind_address = gw->listen_address;
	hc.port = gw->opts.port;
	hc.threads = gw->opts.threads;
	hc.max_body = gw->opts.max_body_bytes;
	hc.handler = handle;
	hc.userdata = gw;
	if ((st = nvcf__http_server_new(&gw->http, &hc)) != NVCF_OK) {
		nvcf_gateway_stop(gw);
		return st;
	}
	gw->started = true;
	nvcf_log_info(SUB, "listening on %s:%u, region %s, results on %s, "
		      "bodies up to %zu bytes (inline up to %zu)",
		      gw->listen_address,
		      (unsigned)nvcf__http_server_port(gw->http), gw->region,
		      gw->reply_subject, gw->opts.max_body_bytes,
		      gw->inline_limit);
	return NVCF_OK;
}

uint16_t nvcf_gateway_port(const nvcf_gateway *gw)
{
	return gw != NULL && gw->http != NULL
		       ? nvcf__http_server_port(gw->http)
		       : 0;
}

nvcf_status nvcf_gateway_stop(nvcf_gateway *gw)
{
	pending *all = NULL, *p;
	int64_t until;

	if (gw == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf_gateway_stop: gateway is NULL");
	pthread_mutex_lock(&gw->lock);
	gw->stopping = true;
	pthread_cond_broadcast(&gw->cond);
	while (gw->heap_len > 0) {
		p = gw->heap[0];
		table_unlink(gw, p);
		p->next = all;
		all = p;
	}
	pthread_mutex_unlock(&gw->lock);
	if (gw->timer_running) {
		pthread_join(gw->timer, NULL);
		gw->timer_running = false;
	}
	while ((p = all) != NULL) {
		all = p->next;
		if (p->kind == PEND_STREAM) {
			stream_fail(gw, p->stream, "the gateway is stopping",
				    true, true);
			stream_entry_free(p);
			continue;
		}
		pending_answer(gw, p, 503,
			       reqid_response(p->request_id, 503));
	}
	/*
	 * A chunk reader resumes its connection when it is done, and
	 * libmicrohttpd must not be stopped with suspended connections.
	 */
	until = nvcf__mono_us() + 10000000;
	while (atomic_load(&gw->chunk_readers) > 0 &&
	       nvcf__mono_us() < until) {
		struct timespec ts = {0, 5000000};

		nanosleep(&ts, NULL);
	}
	if (atomic_load(&gw->chunk_readers) > 0)
		nvcf_log_error(SUB, "stopping with %d result chunk readers "
			       "still running after 10 s",
			       atomic_load(&gw->chunk_readers));
	until = nvcf__mono_us() + 2000000;
	while (atomic_load(&gw->suspended) > 0 && nvcf__mono_us() < until) {
		struct timespec ts = {0, 5000000};

		nanosleep(&ts, NULL);
	}
	if (gw->http != NULL) {
		nvcf__http_server_free(gw->http);
		gw->http = NULL;
		nvcf_log_info(SUB, "stopped");
	}
	gw->started = false;
	return NVCF_OK;
}

void nvcf_gateway_free(nvcf_gateway *gw)
{
	if (gw == NULL)
		return;
	nvcf_gateway_stop(gw);
	if (gw->stored_sub != NULL) {
		natsSubscription_Unsubscribe(gw->stored_sub);
		natsSubscription_Destroy(gw->stored_sub);
	}
	if (gw->reply_sub != NULL) {
		natsSubscription_Unsubscribe(gw->reply_sub);
		natsSubscription_Destroy(gw->reply_sub);
	}
	nvcf__gw_cache_free(gw->cache);
	jsCtx_Destroy(gw->pub_js);
	nvcf_bus_free(gw->bus);
	pthread_mutex_destroy(&gw->lock);
	pthread_mutex_destroy(&gw->stored_lock);
	pthread_cond_destroy(&gw->cond);
	free(gw->heap);
	free(gw->nats_url);
	free(gw->listen_address);
	free(gw->region);
	free(gw);
}
