/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Subject and durable consumer names of a cluster's creation and
 * termination queues (DESIGN.md section 3).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "routing/routing_internal.h"

/*
 * True for 1 to @p max letters, digits, '-' or '_', and '.' as well when
 * @p dots: the characters that stay one token of a NATS subject once
 * '.' becomes '|'.
 */
static bool token_valid(const char *s, size_t max, bool dots)
{
	size_t n = 0;

	if (s == NULL || *s == '\0')
		return false;
	for (; s[n] != '\0'; n++) {
		char c = s[n];

		if (n >= max)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      (dots && c == '.')))
			return false;
	}
	return true;
}

static nvcf_status check_token(const char *what, const char *s, size_t max,
			       bool dots)
{
	if (token_valid(s, max, dots))
		return NVCF_OK;
	return nvcf__error_set(NVCF_EINVAL,
			       "%s '%s' must be 1 to %zu letters, digits, "
			       "'-' or '_'%s",
			       what, s ? s : "(null)", max,
			       dots ? " or '.'" : "");
}

static nvcf_status write_name(char *buf, size_t len, const char *fmt, ...)
	NVCF_PRINTF(3, 4);

static nvcf_status write_name(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (buf == NULL)
		return nvcf__error_set(NVCF_EINVAL, "name buffer is NULL");
	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len) {
		if (len > 0)
			buf[0] = '\0';
		return nvcf__error_set(NVCF_EINVAL,
				       "name buffer of %zu bytes is too small; "
				       "it needs %d (NVCF_ROUTING_NAME_MAX "
				       "always fits)",
				       len, n + 1);
	}
	return NVCF_OK;
}

nvcf_status nvcf_routing_create_subject(nvcf_workload_kind kind,
					const char *cluster_id,
					const char *gpu,
					const char *instance_type, char *buf,
					size_t len)
{
	char type[129];
	nvcf_status st;

	if (kind != NVCF_WORKLOAD_FUNCTION && kind != NVCF_WORKLOAD_TASK)
		return nvcf__error_set(NVCF_EINVAL,
				       "workload kind %d is unknown; use "
				       "NVCF_WORKLOAD_FUNCTION or _TASK",
				       (int)kind);
	if ((st = check_token("cluster id", cluster_id, 64, false)) ||
	    (st = check_token("GPU name", gpu, 64, false)) ||
	    (st = check_token("instance type", instance_type, 128, true)))
		return st;
	/* '.' separates subject tokens, so the type carries '|' instead. */
	snprintf(type, sizeof(type), "%s", instance_type);
	for (char *p = type; *p != '\0'; p++)
		if (*p == '.')
			*p = '|';
	return write_name(buf, len, "Create.NVCA.%s.%s.%s.%s",
			  kind == NVCF_WORKLOAD_TASK ? "Task" : "Function",
			  cluster_id, gpu, type);
}

nvcf_status nvcf_routing_create_consumer(const char *cluster_id, char *buf,
					 size_t len)
{
	nvcf_status st = check_token("cluster id", cluster_id, 64, false);

	return st ? st
		  : write_name(buf, len, "CreateNvcaFunctionTaskStream-%s",
			       cluster_id);
}

nvcf_status nvcf_routing_create_filter(const char *cluster_id, char *buf,
				       size_t len)
{
	nvcf_status st = check_token("cluster id", cluster_id, 64, false);

	return st ? st
		  : write_name(buf, len, "Create.NVCA.*.%s.*.*", cluster_id);
}

nvcf_status nvcf_routing_terminate_subject(const char *cluster_id, char *buf,
					   size_t len)
{
	nvcf_status st = check_token("cluster id", cluster_id, 64, false);

	return st ? st : write_name(buf, len, "Terminate.NVCA.%s", cluster_id);
}

nvcf_status nvcf_routing_terminate_consumer(const char *cluster_id, char *buf,
					    size_t len)
{
	nvcf_status st = check_token("cluster id", cluster_id, 64, false);

	return st ? st
		  : write_name(buf, len, "TerminateNvcaStream-%s", cluster_id);
}
