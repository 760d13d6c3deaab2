/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "nvcf/version.h"

const char *nvcf_status_name(nvcf_status status)
{
	switch (status) {
#define NVCF__STATUS_NAME(name, value, text)                                  \
	case name:                                                            \
		return #name;
		NVCF_STATUS_MAP(NVCF__STATUS_NAME)
#undef NVCF__STATUS_NAME
	}
	return "NVCF_UNKNOWN";
}

const char *nvcf_status_str(nvcf_status status)
{
	switch (status) {
#define NVCF__STATUS_TEXT(name, value, text)                                  \
	case name:                                                            \
		return text;
		NVCF_STATUS_MAP(NVCF__STATUS_TEXT)
#undef NVCF__STATUS_TEXT
	}
	return "unknown status";
}

int nvcf_version(void)
{
	return NVCF_VERSION_NUMBER;
}

const char *nvcf_version_string(void)
{
	return NVCF_VERSION_STRING;
}

void nvcf_free(void *ptr)
{
	free(ptr);
}

/* ---- error detail ------------------------------------------------------ */

typedef struct error_slot {
	nvcf_error error;
	char message[512];
} error_slot;

static _Thread_local error_slot error_tls = {
	{NVCF_ERROR_VERSION, NVCF_OK, 0, 0, NULL}, "success"};

static nvcf_status error_vset(nvcf_status status, int http_status,
			      int jetstream_code, const char *fmt, va_list ap)
{
	error_slot *slot = &error_tls;

	vsnprintf(slot->message, sizeof(slot->message), fmt, ap);
	slot->error.version = NVCF_ERROR_VERSION;
	slot->error.status = status;
	slot->error.http_status = http_status;
	slot->error.jetstream_code = jetstream_code;
	slot->error.message = slot->message;
	return status;
}

nvcf_status nvcf__error_set(nvcf_status status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_vset(status, 0, 0, fmt, ap);
	va_end(ap);
	return status;
}

nvcf_status nvcf__error_set_ext(nvcf_status status, int http_status,
				int jetstream_code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_vset(status, http_status, jetstream_code, fmt, ap);
	va_end(ap);
	return status;
}

nvcf_status nvcf__error_oom(void)
{
	error_slot *slot = &error_tls;

	strcpy(slot->message, "out of memory");
	slot->error.status = NVCF_ENOMEM;
	slot->error.http_status = 0;
	slot->error.jetstream_code = 0;
	slot->error.message = slot->message;
	return NVCF_ENOMEM;
}

const nvcf_error *nvcf_error_last(void)
{
	error_slot *slot = &error_tls;

	if (slot->error.message == NULL)
		slot->error.message = slot->message;
	return &slot->error;
}

void nvcf_error_clear(void)
{
	error_slot *slot = &error_tls;

	strcpy(slot->message, "success");
	slot->error.version = NVCF_ERROR_VERSION;
	slot->error.status = NVCF_OK;
	slot->error.http_status = 0;
	slot->error.jetstream_code = 0;
	slot->error.message = slot->message;
}
