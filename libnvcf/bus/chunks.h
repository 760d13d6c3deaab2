/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Bodies too large to travel inside one NATS message. The sender stores
 * such a body as numbered chunk messages on JetStream, subjects
 * "{prefix}.0" to "{prefix}.{count - 1}", and sends an envelope with the
 * body's size, chunk count and SHA-256 digest. The receiver reads the
 * chunks back with direct gets and checks size and digest.
 *
 * Request bodies use prefix body.{requestId} in stream NVCF_BODIES, and
 * response bodies use res.{requestId}.c in NVCF_RESULTS.
 */
#ifndef NVCF_BUS_CHUNKS_H
#define NVCF_BUS_CHUNKS_H

#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

#include "core/internal.h"

/* Limits stream of request body chunks, subjects body.>. */
#define NVCF__STREAM_BODIES "NVCF_BODIES"

#define NVCF__SHA256_LEN 32

/*
 * Space left in every message for the subject, JetStream headers and, for
 * the inline limit, the request's other fields such as its headers.
 */
#define NVCF__CHUNK_HEADROOM (64 * 1024)

/* Bodies up to this size travel inline unless configured otherwise. */
#define NVCF__DEFAULT_INLINE_BODY_BYTES (256 * 1024)

/* Smallest chunk, used even when max_payload leaves less room. */
#define NVCF__MIN_CHUNK_BYTES (4 * 1024)

/*
 * Returns the chunk size for a connection whose server accepts messages
 * of @p max_payload bytes: max_payload minus NVCF__CHUNK_HEADROOM, at
 * least NVCF__MIN_CHUNK_BYTES.
 */
size_t nvcf__chunk_size(int64_t max_payload);

/*
 * Returns the largest body that travels inline: @p requested (0 means
 * NVCF__DEFAULT_INLINE_BODY_BYTES), capped by the chunk size of
 * @p max_payload.
 */
size_t nvcf__inline_limit(size_t requested, int64_t max_payload);

/* Returns how many chunks of @p chunk_size bytes hold @p len bytes. */
uint32_t nvcf__chunk_count(uint64_t len, size_t chunk_size);

/* Writes "{prefix}.{n}" into @p out of @p size bytes. */
void nvcf__chunk_subject(char *out, size_t size, const char *prefix,
			 uint32_t n);

/* Computes the SHA-256 digest of @p len bytes at @p data. */
nvcf_status nvcf__body_digest(const void *data, size_t len,
			      uint8_t out[NVCF__SHA256_LEN]);

/*
 * Checks a body split in @p count parts against an envelope's @p size
 * and @p digest (@p digest_len bytes). @p what names the body in the
 * error, for example "request 0f3c... body". NVCF_EPROTO for a size or
 * digest mismatch, NVCF_EINVAL for an envelope that cannot be right.
 */
nvcf_status nvcf__body_verify(const void *const *parts, const size_t *lens,
			      uint32_t count, uint64_t size,
			      const uint8_t *digest, size_t digest_len,
			      const char *what);

/*
 * Checks the chunk fields of an envelope before anything is read:
 * @p count chunks can hold @p size bytes, @p size is at most @p max_size
 * and the digest is a SHA-256 digest. NVCF_EINVAL names the bad field.
 */
nvcf_status nvcf__chunk_envelope_check(uint64_t size, uint32_t count,
				       size_t digest_len, uint64_t max_size,
				       const char *what);

/*
 * Stores @p len bytes of @p data as chunks of @p chunk_size bytes on
 * "{prefix}.{n}" and waits for every store. On failure it purges what it
 * stored and returns NVCF_EQUOTA when the stream is full (JetStream
 * 10077), NVCF_ENOTFOUND when no stream takes the subjects, else the
 * status of the failed store.
 */
nvcf_status nvcf__chunks_store(jsCtx *js, const char *stream,
			       const char *prefix, const void *data,
			       size_t len, size_t chunk_size,
			       uint32_t *count_out);

/*
 * Reads chunks "{prefix}.0" to "{prefix}.{count - 1}" of @p stream with
 * direct gets and checks them with nvcf__body_verify(). *msgs_out gets
 * @p count messages, released with nvcf__chunks_free(). NVCF_ENOTFOUND
 * names the first missing chunk, NVCF_EPROTO a size or digest mismatch;
 * other statuses are failures to read.
 */
nvcf_status nvcf__chunks_fetch(jsCtx *js, const char *stream,
			       const char *prefix, uint32_t count,
			       uint64_t size, const uint8_t *digest,
			       size_t digest_len, const char *what,
			       natsMsg ***msgs_out);

/* Copies fetched chunks into one buffer of @p size bytes (malloc). */
nvcf_status nvcf__chunks_join(natsMsg *const *msgs, uint32_t count,
			      uint64_t size, uint8_t **out);

/* Releases what nvcf__chunks_fetch() returned. Accepts NULL. */
void nvcf__chunks_free(natsMsg **msgs, uint32_t count);

/* Purges every "{prefix}.>" message of @p stream and logs a failure. */
nvcf_status nvcf__chunks_purge(jsCtx *js, const char *stream,
			       const char *prefix);

#endif /* NVCF_BUS_CHUNKS_H */
