/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "core/internal.h"

/* ---- identifiers ------------------------------------------------------- */

nvcf_status nvcf__uuid_new(char out[NVCF_UUID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	size_t pos = 0;

	if (nvcf__random_bytes(b, sizeof(b)) != NVCF_OK)
		return NVCF_ERROR;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[pos++] = '-';
		out[pos++] = hex[b[i] >> 4];
		out[pos++] = hex[b[i] & 0x0f];
	}
	out[pos] = '\0';
	return NVCF_OK;
}

bool nvcf__uuid_valid(const char *s)
{
	if (s == NULL || strlen(s) != NVCF_UUID_LEN)
		return false;
	for (int i = 0; i < NVCF_UUID_LEN; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!isxdigit((unsigned char)s[i])) {
			return false;
		}
	}
	return true;
}

nvcf_status nvcf__random_bytes(void *out, size_t len)
{
	if (len > (size_t)INT32_MAX || RAND_bytes(out, (int)len) != 1)
		return nvcf__error_set(NVCF_ERROR,
				       "OpenSSL RAND_bytes failed to produce "
				       "%zu random bytes",
				       len);
	return NVCF_OK;
}

nvcf_status nvcf__sha256_hex(const void *data, size_t len, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int digest_len = 0;

	if (EVP_Digest(data, len, digest, &digest_len, EVP_sha256(), NULL) != 1 ||
	    digest_len != 32)
		return nvcf__error_set(NVCF_ERROR, "OpenSSL SHA-256 failed");
	for (unsigned int i = 0; i < digest_len; i++) {
		out[2 * i] = hex[digest[i] >> 4];
		out[2 * i + 1] = hex[digest[i] & 0x0f];
	}
	out[64] = '\0';
	return NVCF_OK;
}

/* ---- time ---------------------------------------------------------------- */

int64_t nvcf__now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t nvcf__mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void nvcf__deadline_after(struct timespec *ts, int64_t ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

void nvcf__iso8601(int64_t epoch_us, char out[32])
{
	/* Years beyond 9999 do not occur; the cast keeps the width known. */
	time_t secs = (time_t)(epoch_us / 1000000);
	int millis = (int)((epoch_us % 1000000) / 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		 (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
		 tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
		 tm.tm_sec % 100, millis % 1000);
}

nvcf_status nvcf__duration_parse(const char *text, int64_t *ms_out)
{
	const char *p = text;
	bool in_time = false, any = false;
	double total_ms = 0;

	if (text == NULL || *p != 'P')
		goto invalid;
	p++;
	while (*p != '\0') {
		char *end;
		double value;

		if (*p == 'T') {
			if (in_time)
				goto invalid;
			in_time = true;
			p++;
			continue;
		}
		if (!isdigit((unsigned char)*p))
			goto invalid;
		errno = 0;
		value = strtod(p, &end);
		if (errno != 0 || end == p || !isfinite(value))
			goto invalid;
		p = end;
		switch (*p) {
		case 'D':
			if (in_time)
				goto invalid;
			total_ms += value * 86400000.0;
			break;
		case 'H':
			if (!in_time)
				goto invalid;
			total_ms += value * 3600000.0;
			break;
		case 'M':
			if (!in_time)
				goto invalid;
			total_ms += value * 60000.0;
			break;
		case 'S':
			if (!in_time)
				goto invalid;
			total_ms += value * 1000.0;
			break;
		default:
			goto invalid;
		}
		any = true;
		p++;
	}
	if (!any || total_ms > 9.0e15)
		goto invalid;
	*ms_out = (int64_t)llround(total_ms);
	return NVCF_OK;

invalid:
	return nvcf__error_set(NVCF_EINVAL,
			       "invalid ISO-8601 duration '%s': expected a "
			       "form such as PT10S or PT1H30M",
			       text ? text : "(null)");
}

void nvcf__duration_format(int64_t ms, char out[48])
{
	int64_t hours = ms / 3600000, minutes = (ms / 60000) % 60;
	int64_t seconds = (ms / 1000) % 60, millis = ms % 1000;
	size_t n = 0;

	n += (size_t)snprintf(out + n, 48 - n, "PT");
	if (hours > 0)
		n += (size_t)snprintf(out + n, 48 - n, "%lldH", (long long)hours);
	if (minutes > 0)
		n += (size_t)snprintf(out + n, 48 - n, "%lldM",
				      (long long)minutes);
	if (millis > 0)
		snprintf(out + n, 48 - n, "%lld.%03lldS", (long long)seconds,
			 (long long)millis);
	else if (seconds > 0 || (hours == 0 && minutes == 0))
		snprintf(out + n, 48 - n, "%lldS", (long long)seconds);
}

/* ---- strings and buffers ------------------------------------------------- */

char *nvcf__strdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

char *nvcf__strndup(const char *s, size_t n)
{
	return s ? strndup(s, n) : NULL;
}

char *nvcf__asprintf(const char *fmt, ...)
{
	va_list ap;
	char *out = NULL;
	int rc;

	va_start(ap, fmt);
	rc = vasprintf(&out, fmt, ap);
	va_end(ap);
	return rc < 0 ? NULL : out;
}

static nvcf_status buf_reserve(nvcf__buf *buf, size_t extra)
{
	size_t need = buf->len + extra + 1, cap = buf->cap ? buf->cap : 256;
	char *data;

	if (need <= buf->cap)
		return NVCF_OK;
	while (cap < need)
		cap *= 2;
	data = realloc(buf->data, cap);
	if (data == NULL)
		return nvcf__error_oom();
	buf->data = data;
	buf->cap = cap;
	return NVCF_OK;
}

nvcf_status nvcf__buf_append(nvcf__buf *buf, const void *data, size_t len)
{
	if (buf_reserve(buf, len) != NVCF_OK)
		return NVCF_ENOMEM;
	if (len > 0)
		memcpy(buf->data + buf->len, data, len);
	buf->len += len;
	buf->data[buf->len] = '\0';
	return NVCF_OK;
}

nvcf_status nvcf__buf_printf(nvcf__buf *buf, const char *fmt, ...)
{
	va_list ap, ap2;
	int n;

	va_start(ap, fmt);
	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || buf_reserve(buf, (size_t)n) != NVCF_OK) {
		va_end(ap2);
		return nvcf__error_oom();
	}
	vsnprintf(buf->data + buf->len, (size_t)n + 1, fmt, ap2);
	va_end(ap2);
	buf->len += (size_t)n;
	return NVCF_OK;
}

void nvcf__buf_free(nvcf__buf *buf)
{
	free(buf->data);
	buf->data = NULL;
	buf->len = buf->cap = 0;
}
