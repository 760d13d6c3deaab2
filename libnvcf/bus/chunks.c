/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "bus/bus_internal.h"
#include "bus/chunks.h"

/* ---- sizes and names ---------------------------------------------------- */

size_t nvcf__chunk_size(int64_t max_payload)
{
	if (max_payload < NVCF__CHUNK_HEADROOM + NVCF__MIN_CHUNK_BYTES)
		return NVCF__MIN_CHUNK_BYTES;
	return (size_t)(max_payload - NVCF__CHUNK_HEADROOM);
}

size_t nvcf__inline_limit(size_t requested, int64_t max_payload)
{
	size_t limit = requested ? requested : NVCF__DEFAULT_INLINE_BODY_BYTES;
	size_t chunk = nvcf__chunk_size(max_payload);

	return limit < chunk ? limit : chunk;
}

uint32_t nvcf__chunk_count(uint64_t len, size_t chunk_size)
{
	uint64_t n;

	if (chunk_size == 0)
		return 0;
	n = (len + chunk_size - 1) / chunk_size;
	return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

void nvcf__chunk_subject(char *out, size_t size, const char *prefix,
			 uint32_t n)
{
	snprintf(out, size, "%s.%u", prefix, (unsigned int)n);
}

/* ---- digests ------------------------------------------------------------- */

nvcf_status nvcf__body_digest(const void *data, size_t len,
			      uint8_t out[NVCF__SHA256_LEN])
{
	unsigned int n = 0;

	if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 ||
	    n != NVCF__SHA256_LEN)
		return nvcf__error_set(NVCF_ERROR,
				       "computing a SHA-256 digest failed");
	return NVCF_OK;
}

nvcf_status nvcf__chunk_envelope_check(uint64_t size, uint32_t count,
				       size_t digest_len, uint64_t max_size,
				       const char *what)
{
	if (count == 0 || size == 0)
		return nvcf__error_set(NVCF_EINVAL,
				       "%s: invalid envelope with %llu bytes "
				       "in %u chunks",
				       what, (unsigned long long)size,
				       (unsigned int)count);
	if (count > size)
		return nvcf__error_set(NVCF_EINVAL,
				       "%s: invalid envelope: %u chunks cannot "
				       "hold only %llu bytes",
				       what, (unsigned int)count,
				       (unsigned long long)size);
	if (size > max_size)
		return nvcf__error_set(NVCF_EINVAL,
				       "%s: body of %llu bytes exceeds the "
				       "limit of %llu bytes",
				       what, (unsigned long long)size,
				       (unsigned long long)max_size);
	if (digest_len != NVCF__SHA256_LEN)
		return nvcf__error_set(NVCF_EINVAL,
				       "%s: invalid envelope: digest of %zu "
				       "bytes, expected a %d-byte SHA-256",
				       what, digest_len, NVCF__SHA256_LEN);
	return NVCF_OK;
}

nvcf_status nvcf__body_verify(const void *const *parts, const size_t *lens,
			      uint32_t count, uint64_t size,
			      const uint8_t *digest, size_t digest_len,
			      const char *what)
{
	uint8_t got[EVP_MAX_MD_SIZE];
	unsigned int got_len = 0;
	uint64_t total = 0;
	EVP_MD_CTX *ctx;
	bool ok;

	if (digest == NULL || digest_len != NVCF__SHA256_LEN)
		return nvcf__error_set(NVCF_EINVAL,
				       "%s: digest of %zu bytes, expected a "
				       "%d-byte SHA-256",
				       what, digest_len, NVCF__SHA256_LEN);
	for (uint32_t i = 0; i < count; i++)
		total += lens[i];
	if (total != size)
		return nvcf__error_set(NVCF_EPROTO,
				       "%s: chunks add up to %llu bytes, the "
				       "envelope announced %llu",
				       what, (unsigned long long)total,
				       (unsigned long long)size);

	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		return nvcf__error_oom();
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
	for (uint32_t i = 0; ok && i < count; i++)
		ok = EVP_DigestUpdate(ctx, parts[i], lens[i]) == 1;
	ok = ok && EVP_DigestFinal_ex(ctx, got, &got_len) == 1;
	EVP_MD_CTX_free(ctx);
	if (!ok || got_len != NVCF__SHA256_LEN)
		return nvcf__error_set(NVCF_ERROR,
				       "%s: computing the SHA-256 digest failed",
				       what);
	if (memcmp(got, digest, NVCF__SHA256_LEN) != 0)
		return nvcf__error_set(NVCF_EPROTO,
				       "%s: SHA-256 digest of the %llu bytes "
				       "read does not match the envelope's",
				       what, (unsigned long long)size);
	return NVCF_OK;
}

/* ---- JetStream ------------------------------------------------------------ */

nvcf_status nvcf__chunks_purge(jsCtx *js, const char *stream,
			       const char *prefix)
{
	char filter[256];
	jsErrCode jerr = 0;
	jsOptions o;
	natsStatus s;

	snprintf(filter, sizeof(filter), "%s.>", prefix);
	jsOptions_Init(&o);
	o.Stream.Purge.Subject = filter;
	s = js_PurgeStream(js, stream, &o, &jerr);
	if (s == NATS_OK || s == NATS_NOT_FOUND)
		return NVCF_OK;
	nvcf_log_warn("bus", "purging %s from %s failed: %s (JetStream error "
		      "%d)", filter, stream, natsStatus_GetText(s), (int)jerr);
	return nvcf__bus_error(s, jerr, "purging chunks", filter);
}

nvcf_status nvcf__chunks_store(jsCtx *js, const char *stream,
			       const char *prefix, const void *data,
			       size_t len, size_t chunk_size,
			       uint32_t *count_out)
{
	uint32_t count = nvcf__chunk_count(len, chunk_size);
	const uint8_t *bytes = data;
	char subject[256], message[512];
	nvcf_status st;

	*count_out = 0;
	if (count == 0 || chunk_size > INT32_MAX)
		return nvcf__error_set(NVCF_EINVAL,
				       "cannot store %zu bytes as chunks of "
				       "%zu bytes on %s",
				       len, chunk_size, prefix);
	for (uint32_t i = 0; i < count; i++) {
		size_t off = (size_t)i * chunk_size;
		size_t n = len - off < chunk_size ? len - off : chunk_size;
		jsErrCode jerr = 0;
		jsPubAck *ack = NULL;
		natsStatus s;

		nvcf__chunk_subject(subject, sizeof(subject), prefix, i);
		s = js_Publish(&ack, js, subject, bytes + off, (int)n, NULL,
			       &jerr);
		if (s == NATS_OK) {
			jsPubAck_Destroy(ack);
			continue;
		}
		if (s == NATS_NO_RESPONDERS)
			st = nvcf__error_set(NVCF_ENOTFOUND,
					     "no stream takes subject '%s'",
					     subject);
		else
			st = nvcf__bus_error(s, jerr, "storing chunk",
					     subject);
		/* The caller gets the store's error, not the purge's. */
		snprintf(message, sizeof(message), "%s",
			 nvcf_error_last()->message);
		nvcf__chunks_purge(js, stream, prefix);
		return nvcf__error_set(st, "%s", message);
	}
	*count_out = count;
	return NVCF_OK;
}

void nvcf__chunks_free(natsMsg **msgs, uint32_t count)
{
	if (msgs == NULL)
		return;
	for (uint32_t i = 0; i < count; i++)
		natsMsg_Destroy(msgs[i]);
	free(msgs);
}

nvcf_status nvcf__chunks_fetch(jsCtx *js, const char *stream,
			       const char *prefix, uint32_t count,
			       uint64_t size, const uint8_t *digest,
			       size_t digest_len, const char *what,
			       natsMsg ***msgs_out)
{
	const void **parts = NULL;
	size_t *lens = NULL;
	natsMsg **msgs;
	char subject[256];
	nvcf_status st = NVCF_OK;

	*msgs_out = NULL;
	msgs = calloc(count ? count : 1, sizeof(*msgs));
	if (msgs == NULL)
		return nvcf__error_oom();
	for (uint32_t i = 0; i < count; i++) {
		jsDirectGetMsgOptions dg;
		natsStatus s;

		nvcf__chunk_subject(subject, sizeof(subject), prefix, i);
		jsDirectGetMsgOptions_Init(&dg);
		dg.LastBySubject = subject;
		s = js_DirectGetMsg(&msgs[i], js, stream, NULL, &dg);
		if (s == NATS_NOT_FOUND) {
			st = nvcf__error_set(NVCF_ENOTFOUND,
					     "%s: chunk %u of %u (%s in %s) "
					     "not found",
					     what, (unsigned int)i + 1,
					     (unsigned int)count, subject,
					     stream);
			goto fail;
		}
		if (s != NATS_OK) {
			st = nvcf__bus_error(s, 0, "reading chunk", subject);
			goto fail;
		}
	}

	parts = calloc(count ? count : 1, sizeof(*parts));
	lens = calloc(count ? count : 1, sizeof(*lens));
	if (parts == NULL || lens == NULL) {
		st = nvcf__error_oom();
		goto fail;
	}
	for (uint32_t i = 0; i < count; i++) {
		parts[i] = natsMsg_GetData(msgs[i]);
		lens[i] = (size_t)natsMsg_GetDataLength(msgs[i]);
	}
	st = nvcf__body_verify(parts, lens, count, size, digest, digest_len,
			       what);
	if (st != NVCF_OK)
		goto fail;
	free(parts);
	free(lens);
	*msgs_out = msgs;
	return NVCF_OK;

fail:
	free(parts);
	free(lens);
	nvcf__chunks_free(msgs, count);
	return st;
}

nvcf_status nvcf__chunks_join(natsMsg *const *msgs, uint32_t count,
			      uint64_t size, uint8_t **out)
{
	size_t off = 0;
	uint8_t *buf;

	*out = NULL;
	if (size > SIZE_MAX - 1)
		return nvcf__error_set(NVCF_EINVAL,
				       "body of %llu bytes does not fit in "
				       "memory",
				       (unsigned long long)size);
	buf = malloc(size ? (size_t)size : 1);
	if (buf == NULL)
		return nvcf__error_oom();
	for (uint32_t i = 0; i < count; i++) {
		size_t n = (size_t)natsMsg_GetDataLength(msgs[i]);

		if (off + n > size) {
			free(buf);
			return nvcf__error_set(NVCF_EPROTO,
					       "chunks hold more than the %llu "
					       "bytes announced",
					       (unsigned long long)size);
		}
		memcpy(buf + off, natsMsg_GetData(msgs[i]), n);
		off += n;
	}
	*out = buf;
	return NVCF_OK;
}
