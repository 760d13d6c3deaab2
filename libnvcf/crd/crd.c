/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the three custom resources share: names of enum values, options,
 * action lists, and the documents. YAML goes through libyaml's document
 * loader and emitter (the library under libcyaml) into the same cJSON tree
 * that JSON parses to, so one decoder per kind serves both forms. The
 * reason is that libcyaml's schemas cannot express maps with free keys
 * (labels, status.instances) or keep an opaque subtree (a launch
 * specification).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <yaml.h>

#include "crd/crd_internal.h"

/* ---- names ------------------------------------------------------------- */

#define ENUM(table, expected)                                                 \
	{(table), sizeof(table) / sizeof((table)[0]), (expected)}

static const char *const observed_names[] = {
	"absent", "starting", "running", "succeeded", "failed", "terminated"};
static const char *const ack_names[] = {"none", "ok", "retry", "rejected"};
static const char *const action_names[] = {
	"ack-message", "create-instance", "delete-instance", "report-status",
	"garbage-collect", "requeue"};
static const char *const icms_action_names[] = {
	"RequestICMSInstances", "RequestICMSInstancesForTask",
	"TerminateInstances"};
static const char *const request_status_names[] = {
	"", "RequestPending", "RequestInProgress", "RequestCachingInProgress",
	"RequestInstancesInProgress", "RequestCompleted",
	"RequestCompletionAcknowledged", "RequestFailed",
	"RequestFailureAcknowledged"};
static const char *const instance_kind_names[] = {"Pod", "MiniService"};
static const char *const phase_names[] = {
	"", "CachingInProgress", "Installing", "Installed", "Starting",
	"Running", "Completed", "InstallFailed", "Failed"};
static const char *const agent_status_names[] = {"Unknown", "Healthy",
						  "Unhealthy"};

static const crd_enum observed_enum = ENUM(observed_names, NULL);
static const crd_enum ack_enum = ENUM(ack_names, NULL);
static const crd_enum action_enum = ENUM(action_names, NULL);
const crd_enum nvcf__crd_icms_actions = ENUM(
	icms_action_names, "RequestICMSInstances, "
			   "RequestICMSInstancesForTask or TerminateInstances");
const crd_enum nvcf__crd_request_statuses = ENUM(
	request_status_names,
	"\"\" or a Request* state such as RequestPending");
const crd_enum nvcf__crd_instance_kinds = ENUM(instance_kind_names,
					       "Pod or MiniService");
const crd_enum nvcf__crd_phases = ENUM(
	phase_names, "\"\", CachingInProgress, Installing, Installed, "
		     "Starting, Running, Completed, InstallFailed or Failed");
const crd_enum nvcf__crd_agent_statuses = ENUM(
	agent_status_names, "Unknown, Healthy or Unhealthy");
#undef ENUM

static const char *name_of(const crd_enum *e, size_t v)
{
	return v < e->count ? e->names[v] : "unknown";
}

/* One public lookup per enum, each a row of this table. */
#define NAME_FUNCTION(fn, type, e)                                            \
	const char *fn(type v)                                                \
	{                                                                     \
		return name_of((e), (size_t)v);                               \
	}

NAME_FUNCTION(nvcf_crd_observed_name, nvcf_crd_observed_t, &observed_enum)
NAME_FUNCTION(nvcf_crd_ack_name, nvcf_crd_ack_t, &ack_enum)
NAME_FUNCTION(nvcf_crd_action_name, nvcf_crd_action_kind_t, &action_enum)
NAME_FUNCTION(nvcf_crd_icms_action_name, nvcf_crd_icms_action_t,
	      &nvcf__crd_icms_actions)
NAME_FUNCTION(nvcf_crd_request_status_name, nvcf_crd_request_status_t,
	      &nvcf__crd_request_statuses)
NAME_FUNCTION(nvcf_crd_instance_kind_name, nvcf_crd_instance_kind_t,
	      &nvcf__crd_instance_kinds)
NAME_FUNCTION(nvcf_crd_phase_name, nvcf_crd_phase_t, &nvcf__crd_phases)
NAME_FUNCTION(nvcf_crd_agent_status_name, nvcf_crd_agent_status_t,
	      &nvcf__crd_agent_statuses)
#undef NAME_FUNCTION

/* ---- options and observations ------------------------------------------ */

nvcf_status nvcf_crd_options_init(nvcf_crd_options *opts,
				  unsigned int version)
{
	const nvcf_crd_options defaults = NVCF_CRD_OPTIONS_INIT;

	if (opts == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf_crd_options_init: opts is NULL");
	if (version < 1 || version > NVCF_CRD_OPTIONS_VERSION)
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf_crd_options_init: unknown "
				       "version %u: use 1 to %u", version,
				       NVCF_CRD_OPTIONS_VERSION);
	*opts = defaults;
	opts->version = version;
	return NVCF_OK;
}

nvcf_status nvcf__crd_options_resolve(const nvcf_crd_options *in,
				      nvcf_crd_options *out)
{
	const nvcf_crd_options defaults = NVCF_CRD_OPTIONS_INIT;

	*out = defaults;
	if (in == NULL)
		return NVCF_OK;
	if (in->version < 1 || in->version > NVCF_CRD_OPTIONS_VERSION)
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf_crd_options version %u is "
				       "unknown: use NVCF_CRD_OPTIONS_INIT",
				       in->version);
#define TAKE(m)                                                               \
	do {                                                                  \
		if (in->m > 0)                                                \
			out->m = in->m;                                       \
	} while (0)
	TAKE(max_running_timeout_ms);
	TAKE(cleanup_window_ms);
	TAKE(ack_retry_timeout_ms);
	TAKE(report_interval_ms);
	TAKE(sync_interval_ms);
	TAKE(failure_backoff_ms);
	TAKE(failure_requeue_ms);
	TAKE(heartbeat_timeout_ms);
#undef TAKE
	return NVCF_OK;
}

nvcf_status nvcf__crd_observation_check(const nvcf_crd_observation *obs)
{
	if (obs == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "reconcile: observation is NULL: pass "
				       "one with now_ms set");
	if (obs->version < 1 || obs->version > NVCF_CRD_OBSERVATION_VERSION)
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf_crd_observation version %u is "
				       "unknown: use "
				       "NVCF_CRD_OBSERVATION_INIT",
				       obs->version);
	if (obs->instances_count > 0 && obs->instances == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "observation: instances is NULL with "
				       "instances_count %zu",
				       obs->instances_count);
	if (obs->allocations_count > 0 && obs->allocations == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "observation: allocations is NULL "
				       "with allocations_count %zu",
				       obs->allocations_count);
	return NVCF_OK;
}

const nvcf_crd_observed_instance *
nvcf__crd_observed_find(const nvcf_crd_observation *obs, const char *id)
{
	for (size_t i = 0; i < obs->instances_count; i++)
		if (obs->instances[i].id != NULL &&
		    strcmp(obs->instances[i].id, id) == 0)
			return &obs->instances[i];
	return NULL;
}

static const nvcf_crd_meta *meta_of(const crd_codec *c, const void *obj)
{
	return (const nvcf_crd_meta *)((const char *)obj + c->meta_offset);
}

nvcf_status nvcf__crd_reconcile_check(const crd_codec *c,
				      const void *actions_out,
				      const void *obj,
				      const nvcf_crd_observation *obs,
				      const nvcf_crd_options *opts,
				      nvcf_crd_options *opt)
{
	unsigned int version;
	nvcf_status st;

	if (actions_out == NULL || obj == NULL ||
	    (c->reconcile_needs_name && meta_of(c, obj)->name == NULL))
		return nvcf__error_set(NVCF_EINVAL, "%s reconcile: %s is NULL",
				       c->kind, c->reconcile_needs_name
				       ? "actions_out, obj or its metadata.name"
				       : "actions_out or obj");
	/* Every object's first member is its version. */
	version = *(const unsigned int *)obj;
	if (version < 1 || version > c->version)
		return nvcf__error_set(NVCF_EINVAL,
				       "%s reconcile: object version %u is "
				       "unknown: decode it with this library",
				       c->kind, version);
	if ((st = nvcf__crd_observation_check(obs)) != NVCF_OK)
		return st;
	return nvcf__crd_options_resolve(opts, opt);
}

nvcf_status nvcf__crd_reconcile_begin(const crd_codec *c,
				      const void *actions_out, void *obj,
				      const nvcf_crd_observation *obs,
				      const nvcf_crd_options *opts,
				      nvcf_crd_options *opt,
				      nvcf_crd_actions **acts)
{
	nvcf_crd_meta *meta;
	nvcf_status st;

	st = nvcf__crd_reconcile_check(c, actions_out, obj, obs, opts, opt);
	if (st != NVCF_OK)
		return st;
	if ((*acts = nvcf__crd_actions_new()) == NULL)
		return nvcf__error_oom();
	meta = (nvcf_crd_meta *)((char *)obj + c->meta_offset);
	if (meta->created_ms == 0)
		meta->created_ms = obs->now_ms;
	return NVCF_OK;
}

nvcf_status nvcf__crd_reconcile_end(nvcf_crd_actions **actions_out,
				    nvcf_crd_actions *acts, bool oom)
{
	if (oom) {
		nvcf_crd_actions_free(acts);
		return nvcf__error_oom();
	}
	*actions_out = acts;
	return NVCF_OK;
}

/* ---- action lists ------------------------------------------------------ */

nvcf_crd_actions *nvcf__crd_actions_new(void)
{
	nvcf_crd_actions *list = calloc(1, sizeof(*list));

	if (list != NULL)
		list->version = NVCF_CRD_ACTIONS_VERSION;
	return list;
}

void nvcf_crd_actions_free(nvcf_crd_actions *actions)
{
	if (actions == NULL)
		return;
	for (size_t i = 0; i < actions->count; i++) {
		free(actions->items[i].instance_id);
		free(actions->items[i].state);
		free(actions->items[i].reason);
	}
	free(actions->items);
	free(actions);
}

nvcf_crd_action *nvcf__crd_actions_add(nvcf_crd_actions *list,
				       nvcf_crd_action_kind_t kind,
				       const char *instance_id,
				       const char *state, const char *reason)
{
	nvcf_crd_action *items, *a;

	items = nvcf__crd_grow(list->items, list->count, sizeof(*items));
	if (items == NULL)
		return NULL;
	list->items = items;
	a = &items[list->count];
	a->kind = kind;
	a->instance_id = nvcf__strdup(instance_id);
	a->state = nvcf__strdup(state);
	a->reason = nvcf__strdup(reason);
	if ((instance_id && !a->instance_id) || (state && !a->state) ||
	    (reason && !a->reason)) {
		free(a->instance_id);
		free(a->state);
		free(a->reason);
		return NULL;
	}
	list->count++;
	return a;
}

bool nvcf__crd_requeue(nvcf_crd_actions *list, int64_t after_ms)
{
	nvcf_crd_action *a = nvcf__crd_actions_add(
		list, NVCF_CRD_ACTION_REQUEUE, NULL, NULL, NULL);

	if (a == NULL)
		return false;
	a->after_ms = after_ms;
	return true;
}

void *nvcf__crd_grow(void *items, size_t count, size_t size)
{
	char *v = realloc(items, (count + 1) * size);

	if (v != NULL)
		memset(v + count * size, 0, size);
	return v;
}

bool nvcf__crd_set_string(char **dst, const char *src)
{
	char *copy = NULL;

	if (src != NULL && (copy = strdup(src)) == NULL)
		return false;
	free(*dst);
	*dst = copy;
	return true;
}

void nvcf__crd_strings_free(char **v, size_t n)
{
	for (size_t i = 0; v != NULL && i < n; i++)
		free(v[i]);
	free(v);
}

/* ---- time -------------------------------------------------------------- */

nvcf_status nvcf__crd_time_parse(const char *text, int64_t *ms_out)
{
	int y, mo, d, h, mi, s, n = 0, off_h, off_m;
	const char *p;
	struct tm tm = {0};
	int64_t ms = 0, secs;
	char sign;

	if (sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi,
		   &s, &n) != 6 || n != 19)
		return NVCF_EINVAL;
	p = text + n;
	if (*p == '.') {
		int digits = 0;

		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 3)
				ms = ms * 10 + (*p - '0');
		if (digits == 0)
			return NVCF_EINVAL;
		for (; digits < 3; digits++)
			ms *= 10;
	}
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
	    s > 60 || y < 1970)
		return NVCF_EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	secs = (int64_t)timegm(&tm);
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if ((*p == '+' || *p == '-') &&
		   sscanf(p, "%c%2d:%2d%n", &sign, &off_h, &off_m, &n) == 3 &&
		   n == 6 && off_h < 24 && off_m < 60) {
		int64_t off = (int64_t)off_h * 3600 + off_m * 60;

		secs += sign == '+' ? -off : off;
		p += n;
	} else {
		return NVCF_EINVAL;
	}
	if (*p != '\0')
		return NVCF_EINVAL;
	*ms_out = secs * 1000 + ms;
	return *ms_out > 0 ? NVCF_OK : NVCF_EINVAL;
}

/* ---- YAML into cJSON --------------------------------------------------- */

/* Bounds that keep alias expansion ("billion laughs") and deep nesting
 * from exhausting memory or stack. */
#define YAML_MAX_DEPTH 64
#define YAML_MAX_NODES 100000

typedef struct yaml_conv {
	yaml_document_t *doc;
	const char *kind;
	size_t nodes;
} yaml_conv;

static bool all_of(const char *s, size_t n, const char *set)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\0' || strchr(set, s[i]) == NULL)
			return false;
	return true;
}

/*
 * Resolves a plain scalar as the YAML 1.2 core schema does, without the
 * octal, hexadecimal and infinity forms, which no field here uses.
 */
static cJSON *resolve_plain(const char *s, size_t n)
{
	char buf[64];
	char *end;
	double v;

	if (n == 0 || (n == 1 && s[0] == '~') ||
	    (n == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) ||
			!memcmp(s, "NULL", 4))))
		return cJSON_CreateNull();
	if (n == 4 && (!memcmp(s, "true", 4) || !memcmp(s, "True", 4) ||
		       !memcmp(s, "TRUE", 4)))
		return cJSON_CreateTrue();
	if (n == 5 && (!memcmp(s, "false", 5) || !memcmp(s, "False", 5) ||
		       !memcmp(s, "FALSE", 5)))
		return cJSON_CreateFalse();
	if (n >= sizeof(buf) || !all_of(s, n, "0123456789+-.eE"))
		return NULL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (strpbrk(buf, "0123456789") == NULL)
		return NULL;
	errno = 0;
	v = strtod(buf, &end);
	if (*end != '\0' || !isfinite(v) || errno == ERANGE)
		return NULL;
	return cJSON_CreateNumber(v);
}

static nvcf_status yaml_node_conv(yaml_conv *c, yaml_node_t *node,
				  int depth, cJSON **out)
{
	nvcf_status st;
	cJSON *item = NULL;

	if (node == NULL)
		return nvcf__error_set(NVCF_EINVAL, "%s: YAML node missing",
				       c->kind);
	if (depth > YAML_MAX_DEPTH || ++c->nodes > YAML_MAX_NODES)
		return nvcf__error_set(NVCF_EINVAL,
				       "%s: YAML document nests deeper than "
				       "%d or holds more than %d nodes",
				       c->kind, YAML_MAX_DEPTH,
				       YAML_MAX_NODES);
	switch (node->type) {
	case YAML_SCALAR_NODE: {
		const char *s = (const char *)node->data.scalar.value;
		size_t n = node->data.scalar.length;

		if (node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
			item = resolve_plain(s, n);
		if (item == NULL) {
			char *copy = nvcf__strndup(s, n);

			if (copy == NULL)
				return nvcf__error_oom();
			item = cJSON_CreateString(copy);
			free(copy);
		}
		break;
	}
	case YAML_SEQUENCE_NODE:
		item = cJSON_CreateArray();
		for (yaml_node_item_t *it = node->data.sequence.items.start;
		     item != NULL && it < node->data.sequence.items.top;
		     it++) {
			cJSON *child = NULL;

			st = yaml_node_conv(c, yaml_document_get_node(c->doc,
								      *it),
					    depth + 1, &child);
			if (st != NVCF_OK) {
				cJSON_Delete(item);
				return st;
			}
			cJSON_AddItemToArray(item, child);
		}
		break;
	case YAML_MAPPING_NODE:
		item = cJSON_CreateObject();
		for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
		     item != NULL && p < node->data.mapping.pairs.top; p++) {
			yaml_node_t *k = yaml_document_get_node(c->doc,
								p->key);
			cJSON *child = NULL;
			char *key;

			if (k == NULL || k->type != YAML_SCALAR_NODE) {
				cJSON_Delete(item);
				return nvcf__error_set(
					NVCF_EINVAL,
					"%s: a YAML mapping key is not a "
					"scalar: use plain string keys",
					c->kind);
			}
			key = nvcf__strndup((const char *)k->data.scalar.value,
					    k->data.scalar.length);
			if (key == NULL) {
				cJSON_Delete(item);
				return nvcf__error_oom();
			}
			if (cJSON_GetObjectItemCaseSensitive(item, key)) {
				st = nvcf__error_set(
					NVCF_EINVAL,
					"%s: duplicate key \"%.64s\" in a "
					"YAML mapping (line %zu): keep one",
					c->kind, key, k->start_mark.line + 1);
				free(key);
				cJSON_Delete(item);
				return st;
			}
			st = yaml_node_conv(c, yaml_document_get_node(c->doc,
								      p->value),
					    depth + 1, &child);
			if (st != NVCF_OK) {
				free(key);
				cJSON_Delete(item);
				return st;
			}
			cJSON_AddItemToObject(item, key, child);
			free(key);
		}
		break;
	default:
		return nvcf__error_set(NVCF_EINVAL, "%s: empty YAML node",
				       c->kind);
	}
	if (item == NULL)
		return nvcf__error_oom();
	*out = item;
	return NVCF_OK;
}

nvcf_status nvcf__crd_yaml_parse(const char *text, size_t len,
				 const char *kind, cJSON **out)
{
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	yaml_conv c = {&doc, kind, 0};
	nvcf_status st;

	if (text == NULL)
		return nvcf__error_set(NVCF_EINVAL, "%s: YAML text is NULL",
				       kind);
	if (!yaml_parser_initialize(&parser))
		return nvcf__error_oom();
	yaml_parser_set_input_string(&parser, (const unsigned char *)text,
				     len);
	if (!yaml_parser_load(&parser, &doc)) {
		st = nvcf__error_set(NVCF_EINVAL,
				     "%s: invalid YAML at line %zu: %s",
				     kind, parser.problem_mark.line + 1,
				     parser.problem ? parser.problem
						    : "parse error");
		yaml_parser_delete(&parser);
		return st;
	}
	if (yaml_document_get_root_node(&doc) == NULL) {
		st = nvcf__error_set(NVCF_EINVAL,
				     "%s: empty YAML document: give one "
				     "object", kind);
		goto out;
	}
	/* A second document would be silently ignored otherwise. */
	if (!yaml_parser_load(&parser, &extra)) {
		st = nvcf__error_set(NVCF_EINVAL,
				     "%s: invalid YAML at line %zu: %s",
				     kind, parser.problem_mark.line + 1,
				     parser.problem ? parser.problem
						    : "parse error");
		goto out;
	}
	if (yaml_document_get_root_node(&extra) != NULL) {
		yaml_document_delete(&extra);
		st = nvcf__error_set(NVCF_EINVAL,
				     "%s: more than one YAML document: give "
				     "one object per text", kind);
		goto out;
	}
	yaml_document_delete(&extra);
	st = yaml_node_conv(&c, yaml_document_get_root_node(&doc), 0, out);
out:
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return st;
}

nvcf_status nvcf__crd_json_parse(const char *text, size_t len,
				 const char *kind, cJSON **out)
{
	const char *end = NULL;
	cJSON *tree;

	if (text == NULL)
		return nvcf__error_set(NVCF_EINVAL, "%s: JSON text is NULL",
				       kind);
	tree = cJSON_ParseWithLengthOpts(text, len, &end, false);
	if (tree == NULL) {
		size_t at = end != NULL && end >= text ? (size_t)(end - text)
						       : 0;

		return nvcf__error_set(NVCF_EINVAL,
				       "%s: invalid JSON near byte %zu",
				       kind, at);
	}
	/* Trailing bytes other than white space mean a damaged document. */
	for (; end != NULL && (size_t)(end - text) < len; end++)
		if (*end != ' ' && *end != '\n' && *end != '\r' &&
		    *end != '\t' && *end != '\0') {
			cJSON_Delete(tree);
			return nvcf__error_set(NVCF_EINVAL,
					       "%s: trailing data after the "
					       "JSON object at byte %zu",
					       kind, (size_t)(end - text));
		}
	*out = tree;
	return NVCF_OK;
}

/* ---- cJSON into YAML --------------------------------------------------- */

static int yaml_write(void *data, unsigned char *buffer, size_t size)
{
	return nvcf__buf_append(data, buffer, size) == NVCF_OK;
}

static bool emit_scalar(yaml_emitter_t *e, const char *s, bool is_string)
{
	yaml_scalar_style_t style = YAML_ANY_SCALAR_STYLE;
	yaml_event_t ev;
	cJSON *probe;
	size_t n = strlen(s);

	/* A string that would read back as another type is quoted. */
	if (is_string) {
		probe = resolve_plain(s, n);
		if (probe != NULL) {
			style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
			cJSON_Delete(probe);
		}
	}
	if (!yaml_scalar_event_initialize(&ev, NULL, NULL,
					  (yaml_char_t *)s, (int)n, 1, 1,
					  style))
		return false;
	return yaml_emitter_emit(e, &ev) != 0;
}

static bool emit_node(yaml_emitter_t *e, const cJSON *item)
{
	yaml_event_t ev;
	char num[64];
	const cJSON *child;

	if (cJSON_IsObject(item)) {
		if (!yaml_mapping_start_event_initialize(
			    &ev, NULL, NULL, 1, YAML_ANY_MAPPING_STYLE) ||
		    !yaml_emitter_emit(e, &ev))
			return false;
		cJSON_ArrayForEach(child, item) {
			if (!emit_scalar(e, child->string, true) ||
			    !emit_node(e, child))
				return false;
		}
		return yaml_mapping_end_event_initialize(&ev) &&
		       yaml_emitter_emit(e, &ev);
	}
	if (cJSON_IsArray(item)) {
		if (!yaml_sequence_start_event_initialize(
			    &ev, NULL, NULL, 1, YAML_ANY_SEQUENCE_STYLE) ||
		    !yaml_emitter_emit(e, &ev))
			return false;
		cJSON_ArrayForEach(child, item) {
			if (!emit_node(e, child))
				return false;
		}
		return yaml_sequence_end_event_initialize(&ev) &&
		       yaml_emitter_emit(e, &ev);
	}
	if (cJSON_IsString(item))
		return emit_scalar(e, item->valuestring, true);
	if (cJSON_IsNumber(item)) {
		double v = item->valuedouble;

		if (v == floor(v) && fabs(v) < 1e15)
			snprintf(num, sizeof(num), "%.0f", v);
		else
			snprintf(num, sizeof(num), "%.17g", v);
		return emit_scalar(e, num, false);
	}
	if (cJSON_IsBool(item))
		return emit_scalar(e, cJSON_IsTrue(item) ? "true" : "false",
				   false);
	return emit_scalar(e, "null", false);
}

nvcf_status nvcf__crd_yaml_print(const cJSON *tree, char **out)
{
	yaml_emitter_t e;
	yaml_event_t ev;
	nvcf__buf buf = {0};
	bool ok;

	if (!yaml_emitter_initialize(&e))
		return nvcf__error_oom();
	yaml_emitter_set_output(&e, yaml_write, &buf);
	yaml_emitter_set_unicode(&e, 1);
	yaml_emitter_set_width(&e, -1);
	ok = yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) &&
	     yaml_emitter_emit(&e, &ev) &&
	     yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) &&
	     yaml_emitter_emit(&e, &ev) && emit_node(&e, tree) &&
	     yaml_document_end_event_initialize(&ev, 1) &&
	     yaml_emitter_emit(&e, &ev) &&
	     yaml_stream_end_event_initialize(&ev) &&
	     yaml_emitter_emit(&e, &ev) && yaml_emitter_flush(&e);
	if (!ok) {
		nvcf_status st = nvcf__error_set(
			NVCF_EINVAL, "cannot write YAML: %s",
			e.problem ? e.problem : "out of memory");

		yaml_emitter_delete(&e);
		nvcf__buf_free(&buf);
		return st;
	}
	yaml_emitter_delete(&e);
	if (buf.data == NULL && nvcf__buf_append(&buf, "", 0) != NVCF_OK)
		return nvcf__error_oom();
	*out = buf.data;
	return NVCF_OK;
}

nvcf_status nvcf__crd_json_print(const cJSON *tree, char **out)
{
	char *text = cJSON_PrintUnformatted(tree);
	char *copy;

	if (text == NULL)
		return nvcf__error_oom();
	/* cJSON's allocator may differ from the one nvcf_free() uses. */
	copy = strdup(text);
	cJSON_free(text);
	if (copy == NULL)
		return nvcf__error_oom();
	*out = copy;
	return NVCF_OK;
}

/* ---- field decoders ---------------------------------------------------- */

void nvcf__crd_describe(const cJSON *item, char out[64])
{
	char *text = item ? cJSON_PrintUnformatted(item) : NULL;

	if (text == NULL) {
		snprintf(out, 64, "nothing");
		return;
	}
	if (strlen(text) > 60)
		snprintf(out, 64, "%.56s...", text);
	else
		snprintf(out, 64, "%s", text);
	cJSON_free(text);
}

nvcf_status nvcf__crd_missing(const char *kind, const char *path,
			      const char *expected)
{
	return nvcf__error_set(NVCF_EINVAL,
			       "%s: missing field %s: set it to %s", kind,
			       path, expected);
}

nvcf_status nvcf__crd_wrong_type(const char *kind, const char *path,
				 const char *expected, const cJSON *got)
{
	char desc[64];

	nvcf__crd_describe(got, desc);
	return nvcf__error_set(NVCF_EINVAL, "%s %s: expected %s, got %s",
			       kind, path, expected, desc);
}

/* Present and not null. */
static const cJSON *member(const cJSON *obj, const char *key)
{
	const cJSON *item = cJSON_IsObject(obj)
		? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;

	return cJSON_IsNull(item) ? NULL : item;
}

static nvcf_status get_container(const char *kind, const cJSON *obj,
				 const char *key, const char *path,
				 crd_need need,
				 cJSON_bool (*is)(const cJSON *),
				 const char *expected, const cJSON **out)
{
	const cJSON *item = member(obj, key);

	if (item == NULL)
		return need == CRD_REQUIRED
			? nvcf__crd_missing(kind, path, expected)
			: NVCF_OK;
	if (!is(item))
		return nvcf__crd_wrong_type(kind, path, expected, item);
	*out = item;
	return NVCF_OK;
}

nvcf_status nvcf__crd_get_object(const char *kind, const cJSON *obj,
				 const char *key, const char *path,
				 crd_need need, const cJSON **out)
{
	return get_container(kind, obj, key, path, need, cJSON_IsObject,
			     "a mapping", out);
}

nvcf_status nvcf__crd_get_array(const char *kind, const cJSON *obj,
				const char *key, const char *path,
				crd_need need, const cJSON **out)
{
	return get_container(kind, obj, key, path, need, cJSON_IsArray,
			     "a list", out);
}

nvcf_status nvcf__crd_get_enum(const char *kind, const cJSON *obj,
			       const char *key, const char *path,
			       crd_need need, const crd_enum *e, int *out)
{
	const cJSON *item = member(obj, key);

	if (item == NULL)
		return need == CRD_REQUIRED
			? nvcf__crd_missing(kind, path, e->expected)
			: NVCF_OK;
	for (size_t i = 0; cJSON_IsString(item) && i < e->count; i++) {
		if (strcmp(item->valuestring, e->names[i]) == 0) {
			*out = (int)i;
			return NVCF_OK;
		}
	}
	return nvcf__crd_wrong_type(kind, path, e->expected, item);
}

void *nvcf__crd_calloc_items(const cJSON *arr, size_t size)
{
	return calloc((size_t)cJSON_GetArraySize(arr) + 1, size);
}

nvcf_status nvcf__crd_get_string(const char *kind, const cJSON *obj,
				 const char *key, const char *path,
				 crd_need need, char **out)
{
	const cJSON *item = member(obj, key);

	if (item == NULL)
		return need == CRD_REQUIRED
			? nvcf__crd_missing(kind, path, "a non-empty string")
			: NVCF_OK;
	if (!cJSON_IsString(item) ||
	    (need == CRD_REQUIRED && item->valuestring[0] == '\0'))
		return nvcf__crd_wrong_type(kind, path, need == CRD_REQUIRED
				  ? "a non-empty string" : "a string", item);
	if (!nvcf__crd_set_string(out, item->valuestring))
		return nvcf__error_oom();
	return NVCF_OK;
}

nvcf_status nvcf__crd_get_uint(const char *kind, const cJSON *obj,
			       const char *key, const char *path,
			       crd_need need, uint32_t min, uint32_t *out)
{
	const cJSON *item = member(obj, key);
	const char *expected = min == 0 ? "a non-negative integer"
					: "a positive integer";
	double v;

	if (item == NULL)
		return need == CRD_REQUIRED
			? nvcf__crd_missing(kind, path, expected)
			: NVCF_OK;
	if (!cJSON_IsNumber(item))
		return nvcf__crd_wrong_type(kind, path, expected, item);
	v = item->valuedouble;
	if (v != floor(v) || v < (double)min || v > 4294967295.0)
		return nvcf__crd_wrong_type(kind, path, expected, item);
	*out = (uint32_t)v;
	return NVCF_OK;
}

nvcf_status nvcf__crd_get_int64(const char *kind, const cJSON *obj,
				const char *key, const char *path,
				int64_t *out)
{
	const cJSON *item = member(obj, key);
	double v;

	if (item == NULL)
		return NVCF_OK;
	v = cJSON_IsNumber(item) ? item->valuedouble : -1;
	/* Doubles hold integers exactly only up to 2^53. */
	if (v != floor(v) || v < 0 || v > 9007199254740992.0)
		return nvcf__crd_wrong_type(kind, path,
					    "a non-negative integer", item);
	*out = (int64_t)v;
	return NVCF_OK;
}

nvcf_status nvcf__crd_get_bool(const char *kind, const cJSON *obj,
			       const char *key, const char *path, bool *out)
{
	const cJSON *item = member(obj, key);

	if (item == NULL)
		return NVCF_OK;
	if (!cJSON_IsBool(item))
		return nvcf__crd_wrong_type(kind, path, "true or false", item);
	*out = cJSON_IsTrue(item);
	return NVCF_OK;
}

nvcf_status nvcf__crd_get_time(const char *kind, const cJSON *obj,
			       const char *key, const char *path,
			       int64_t *ms_out)
{
	const cJSON *item = member(obj, key);

	if (item == NULL)
		return NVCF_OK;
	if (!cJSON_IsString(item) ||
	    nvcf__crd_time_parse(item->valuestring, ms_out) != NVCF_OK)
		return nvcf__crd_wrong_type(kind, path,
				  "an RFC 3339 UTC time such as "
				  "\"2024-05-01T12:00:00Z\"", item);
	return NVCF_OK;
}

nvcf_status nvcf__crd_get_raw(const char *kind, const cJSON *obj,
			      const char *key, const char *path, char **out)
{
	const cJSON *item = NULL;
	char *copy = NULL;
	nvcf_status st;

	st = nvcf__crd_get_object(kind, obj, key, path, CRD_OPTIONAL, &item);
	if (st != NVCF_OK || item == NULL)
		return st;
	if ((st = nvcf__crd_json_print(item, &copy)) != NVCF_OK)
		return st;
	free(*out);
	*out = copy;
	return NVCF_OK;
}

nvcf_status nvcf__crd_get_strings(const char *kind, const cJSON *obj,
				  const char *key, const char *path,
				  crd_need need, char ***out, size_t *count)
{
	const cJSON *arr = NULL, *item;
	char **v;
	size_t n = 0;
	nvcf_status st;
	char sub[160];

	st = nvcf__crd_get_array(kind, obj, key, path, need, &arr);
	if (st != NVCF_OK || arr == NULL)
		return st;
	v = nvcf__crd_calloc_items(arr, sizeof(*v));
	if (v == NULL)
		return nvcf__error_oom();
	cJSON_ArrayForEach(item, arr) {
		if (!cJSON_IsString(item)) {
			snprintf(sub, sizeof(sub), "%s[%zu]", path, n);
			nvcf__crd_strings_free(v, n);
			return nvcf__crd_wrong_type(kind, sub, "a string",
						    item);
		}
		if ((v[n] = strdup(item->valuestring)) == NULL) {
			nvcf__crd_strings_free(v, n);
			return nvcf__error_oom();
		}
		n++;
	}
	nvcf__crd_strings_free(*out, *count);
	*out = v;
	*count = n;
	return NVCF_OK;
}

nvcf_status nvcf__crd_check_header(const cJSON *root, const char *kind,
				   const char *api_version)
{
	const cJSON *k, *v;
	char desc[64];

	if (!cJSON_IsObject(root)) {
		nvcf__crd_describe(root, desc);
		return nvcf__error_set(NVCF_EINVAL,
				       "%s: expected a mapping at the top "
				       "level, got %s", kind, desc);
	}
	k = member(root, "kind");
	if (k == NULL)
		return nvcf__crd_missing(kind, "kind", kind);
	if (!cJSON_IsString(k) || strcmp(k->valuestring, kind) != 0) {
		nvcf__crd_describe(k, desc);
		return nvcf__error_set(NVCF_EINVAL,
				       "wrong kind %s, expected %s",
				       cJSON_IsString(k) ? k->valuestring
							 : desc, kind);
	}
	v = member(root, "apiVersion");
	if (v == NULL)
		return nvcf__crd_missing(kind, "apiVersion", api_version);
	if (!cJSON_IsString(v) || strcmp(v->valuestring, api_version) != 0) {
		nvcf__crd_describe(v, desc);
		return nvcf__error_set(NVCF_EINVAL,
				       "%s: wrong apiVersion %s, expected %s",
				       kind, cJSON_IsString(v)
				       ? v->valuestring : desc, api_version);
	}
	return NVCF_OK;
}

/* ---- metadata ---------------------------------------------------------- */

nvcf_status nvcf__crd_meta_decode(const char *kind, const cJSON *root,
				  nvcf_crd_meta *meta)
{
	const cJSON *m = NULL, *labels = NULL, *item;
	nvcf_status st;
	size_t n = 0;
	char path[160];

	if ((st = nvcf__crd_get_object(kind, root, "metadata", "metadata",
				       CRD_REQUIRED, &m)) != NVCF_OK ||
	    (st = nvcf__crd_get_string(kind, m, "name", "metadata.name",
				       CRD_REQUIRED, &meta->name)) != NVCF_OK ||
	    (st = nvcf__crd_get_string(kind, m, "namespace",
				       "metadata.namespace", CRD_OPTIONAL,
				       &meta->namespace_name)) != NVCF_OK ||
	    (st = nvcf__crd_get_time(kind, m, "creationTimestamp",
				     "metadata.creationTimestamp",
				     &meta->created_ms)) != NVCF_OK ||
	    (st = nvcf__crd_get_int64(kind, m, "generation",
				      "metadata.generation",
				      &meta->generation)) != NVCF_OK ||
	    (st = nvcf__crd_get_object(kind, m, "labels", "metadata.labels",
				       CRD_OPTIONAL, &labels)) != NVCF_OK)
		return st;
	if (labels == NULL)
		return NVCF_OK;
	meta->labels = nvcf__crd_calloc_items(labels, sizeof(*meta->labels));
	if (meta->labels == NULL)
		return nvcf__error_oom();
	cJSON_ArrayForEach(item, labels) {
		nvcf_crd_label *l = &meta->labels[n];

		if (!cJSON_IsString(item)) {
			snprintf(path, sizeof(path), "metadata.labels.%.64s",
				 item->string);
			return nvcf__crd_wrong_type(kind, path, "a string",
						    item);
		}
		l->key = strdup(item->string);
		l->value = strdup(item->valuestring);
		meta->labels_count = ++n;
		if (l->key == NULL || l->value == NULL)
			return nvcf__error_oom();
	}
	return NVCF_OK;
}

bool nvcf__crd_meta_encode(cJSON *root, const nvcf_crd_meta *meta)
{
	cJSON *m = nvcf__crd_add_object(root, "metadata"), *labels;

	if (m == NULL || !nvcf__crd_add_string(m, "name", meta->name) ||
	    !nvcf__crd_add_string(m, "namespace", meta->namespace_name) ||
	    !nvcf__crd_add_time(m, "creationTimestamp", meta->created_ms))
		return false;
	if (meta->generation > 0 &&
	    !nvcf__crd_add_number(m, "generation", (double)meta->generation))
		return false;
	if (meta->labels_count == 0)
		return true;
	if ((labels = nvcf__crd_add_object(m, "labels")) == NULL)
		return false;
	for (size_t i = 0; i < meta->labels_count; i++)
		if (!nvcf__crd_add_string(labels, meta->labels[i].key,
					  meta->labels[i].value))
			return false;
	return true;
}

void nvcf__crd_meta_clear(nvcf_crd_meta *meta)
{
	free(meta->name);
	free(meta->namespace_name);
	for (size_t i = 0; i < meta->labels_count; i++) {
		free(meta->labels[i].key);
		free(meta->labels[i].value);
	}
	free(meta->labels);
	memset(meta, 0, sizeof(*meta));
}

/* ---- encoders ---------------------------------------------------------- */

bool nvcf__crd_add_string(cJSON *obj, const char *key, const char *value)
{
	return value == NULL ||
	       cJSON_AddStringToObject(obj, key, value) != NULL;
}

bool nvcf__crd_add_time(cJSON *obj, const char *key, int64_t ms)
{
	char text[32];

	if (ms == 0)
		return true;
	nvcf__iso8601(ms * 1000, text);
	return cJSON_AddStringToObject(obj, key, text) != NULL;
}

bool nvcf__crd_add_number(cJSON *obj, const char *key, double value)
{
	return cJSON_AddNumberToObject(obj, key, value) != NULL;
}

bool nvcf__crd_add_raw(cJSON *obj, const char *key, const char *json)
{
	cJSON *item;

	if (json == NULL)
		return true;
	item = cJSON_Parse(json);
	if (item == NULL)
		return false;
	cJSON_AddItemToObject(obj, key, item);
	return true;
}

bool nvcf__crd_add_strings(cJSON *obj, const char *key, char *const *v,
			   size_t n)
{
	cJSON *arr = cJSON_AddArrayToObject(obj, key);

	if (arr == NULL)
		return false;
	for (size_t i = 0; i < n; i++) {
		cJSON *s = cJSON_CreateString(v[i]);

		if (s == NULL)
			return false;
		cJSON_AddItemToArray(arr, s);
	}
	return true;
}

cJSON *nvcf__crd_add_object(cJSON *obj, const char *key)
{
	return cJSON_AddObjectToObject(obj, key);
}

cJSON *nvcf__crd_add_item(cJSON *arr)
{
	cJSON *item = cJSON_CreateObject();

	if (item != NULL)
		cJSON_AddItemToArray(arr, item);
	return item;
}

/* ---- documents of any kind --------------------------------------------- */

nvcf_status nvcf__crd_decode_text(const crd_codec *c, void *out,
				  crd_form form, const char *text,
				  size_t len)
{
	cJSON *root = NULL;
	nvcf_status st;
	void *o;

	if (out == NULL)
		return nvcf__error_set(NVCF_EINVAL, "%s: out is NULL", c->kind);
	st = form == CRD_YAML
		? nvcf__crd_yaml_parse(text, len, c->kind, &root)
		: nvcf__crd_json_parse(text, len, c->kind, &root);
	if (st != NVCF_OK)
		return st;
	if ((o = calloc(1, c->size)) == NULL) {
		cJSON_Delete(root);
		return nvcf__error_oom();
	}
	/* Every object's first member is its version. */
	*(unsigned int *)o = c->version;
	if ((st = nvcf__crd_check_header(root, c->kind, c->api_version)) !=
		    NVCF_OK ||
	    (st = nvcf__crd_meta_decode(c->kind, root,
					(nvcf_crd_meta *)((char *)o +
							  c->meta_offset))) !=
		    NVCF_OK ||
	    (st = c->decode(root, o)) != NVCF_OK) {
		c->free(o);
		cJSON_Delete(root);
		return st;
	}
	cJSON_Delete(root);
	c->store(out, o);
	return NVCF_OK;
}

static nvcf_status encode_tree(const crd_codec *c, const void *obj,
			       cJSON **out)
{
	cJSON *root;

	if (obj == NULL || meta_of(c, obj)->name == NULL ||
	    (c->complete != NULL && !c->complete(obj)))
		return nvcf__error_set(NVCF_EINVAL,
				       "%s: %s is NULL: encode a decoded "
				       "object", c->kind, c->encode_needs);
	root = cJSON_CreateObject();
	if (root == NULL ||
	    !nvcf__crd_add_string(root, "apiVersion", c->api_version) ||
	    !nvcf__crd_add_string(root, "kind", c->kind) ||
	    !nvcf__crd_meta_encode(root, meta_of(c, obj)) ||
	    !c->encode(root, obj)) {
		cJSON_Delete(root);
		if (c->encode_error == NULL)
			return nvcf__error_oom();
		return nvcf__error_set(NVCF_ENOMEM, "%s: %s", c->kind,
				       c->encode_error);
	}
	*out = root;
	return NVCF_OK;
}

nvcf_status nvcf__crd_encode_text(const crd_codec *c, char **out,
				  crd_form form, const void *obj)
{
	cJSON *tree = NULL;
	nvcf_status st;

	if (out == NULL)
		return nvcf__error_set(NVCF_EINVAL, "%s: out is NULL", c->kind);
	if ((st = encode_tree(c, obj, &tree)) != NVCF_OK)
		return st;
	st = form == CRD_YAML ? nvcf__crd_yaml_print(tree, out)
			      : nvcf__crd_json_print(tree, out);
	cJSON_Delete(tree);
	return st;
}
