/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Validation of control-plane request bodies, with NVCF's rules and
 * defaults (reference nvcf-api.md sections 1.5 and 1.7). Every rejection
 * names the field, the value and the rule, because a client fixing its
 * request has nothing else to go on.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nvcf/routing.h"

#include "api/api_internal.h"

#define reject nvcf__api_reject
#define invalid nvcf__api_invalid
#define blank nvcf__api_blank
#define opt_string nvcf__api_opt_string
#define req_string nvcf__api_req_string
#define opt_array nvcf__api_opt_array

#define NAME_RULE "must match ^[a-z0-9A-Z][a-z0-9A-Z\\-_]*$"

typedef nvcf__api_vctx vctx;

/* Rejected values are cut at 256 characters, as NVCF cuts them. */
static void rejected_text(const cJSON *v, char out[260])
{
	char *printed = NULL;
	const char *text;

	if (v == NULL) {
		snprintf(out, 260, "null");
		return;
	}
	if (cJSON_IsString(v)) {
		text = v->valuestring;
	} else {
		printed = cJSON_PrintUnformatted(v);
		text = printed ? printed : "?";
	}
	snprintf(out, 260, "%.256s", text);
	free(printed);
}

nvcf_status nvcf__api_reject(vctx *c, const char *field, const cJSON *v,
			     const char *rule)
{
	char rej[260];

	rejected_text(v, rej);
	c->framework = true;
	snprintf(c->detail, c->size,
		 "Validation failed: field=%s, rejected=%s, message=%s", field,
		 rej, rule);
	return nvcf__error_set(NVCF_EINVAL, "%s", c->detail);
}

nvcf_status nvcf__api_invalid(vctx *c, const char *what)
{
	c->framework = false;
	snprintf(c->detail, c->size, "Invalid request: %s", what);
	return nvcf__error_set(NVCF_EINVAL, "%s", c->detail);
}

static bool name_char(char ch)
{
	return isalnum((unsigned char)ch) || ch == '-' || ch == '_';
}

static bool name_valid(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max || !isalnum((unsigned char)s[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!name_char(s[i]))
			return false;
	return true;
}

static bool tag_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 128)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!name_char(s[i]) && s[i] != ':' && s[i] != '=')
			return false;
	return true;
}

static bool secret_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 48 || !isalnum((unsigned char)s[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!name_char(s[i]) && s[i] != '.')
			return false;
	return true;
}

bool nvcf__api_blank(const char *s)
{
	for (; *s != '\0'; s++)
		if (!isspace((unsigned char)*s))
			return false;
	return true;
}

/* A comma list of <count>-<S|M|H|D> with no period twice ("5-S,300-H"). */
static bool rate_valid(const char *s)
{
	bool seen[4] = {false};
	const char *periods = "SMHD";

	for (;;) {
		const char *p;

		if (*s < '1' || *s > '9')
			return false;
		while (isdigit((unsigned char)*s))
			s++;
		if (*s++ != '-' || *s == '\0' ||
		    (p = strchr(periods, *s)) == NULL)
			return false;
		if (seen[p - periods])
			return false;
		seen[p - periods] = true;
		s++;
		if (*s == '\0')
			return true;
		if (*s++ != ',')
			return false;
		while (isspace((unsigned char)*s))
			s++;
	}
}

static bool is_int(const cJSON *v)
{
	return cJSON_IsNumber(v) && v->valuedouble == (double)(long long)
			v->valuedouble && v->valuedouble > -1e15 &&
	       v->valuedouble < 1e15;
}

nvcf_status nvcf__api_opt_string(vctx *c, const cJSON *obj,
				 const char *field, const char *path,
				 const cJSON **out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, field);

	*out = NULL;
	if (v == NULL || cJSON_IsNull(v))
		return NVCF_OK;
	if (!cJSON_IsString(v))
		return reject(c, path, v, "must be a string");
	*out = v;
	return NVCF_OK;
}

nvcf_status nvcf__api_req_string(vctx *c, const cJSON *obj,
				 const char *field, const char *path,
				 const cJSON **out)
{
	nvcf_status st = opt_string(c, obj, field, path, out);

	if (st != NVCF_OK)
		return st;
	if (*out == NULL)
		return reject(c, path, NULL, "must not be null");
	if (blank((*out)->valuestring))
		return reject(c, path, *out, "must not be blank");
	return NVCF_OK;
}

nvcf_status nvcf__api_opt_array(vctx *c, const cJSON *obj,
				const char *field, const cJSON **out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, field);

	*out = NULL;
	if (v == NULL || cJSON_IsNull(v))
		return NVCF_OK;
	if (!cJSON_IsArray(v))
		return reject(c, field, v, "must be an array");
	*out = v;
	return NVCF_OK;
}

/* Matches @p v case-insensitively against @p values; NULL if none. */
static const char *enum_match(const cJSON *v, const char *const *values)
{
	for (; *values != NULL; values++)
		if (strcasecmp(v->valuestring, *values) == 0)
			return *values;
	return NULL;
}

static cJSON *dup_into(cJSON *out, const char *name, const cJSON *v)
{
	cJSON *copy = cJSON_Duplicate(v, true);

	if (copy != NULL)
		cJSON_AddItemToObject(out, name, copy);
	return copy;
}

static nvcf_status check_health(vctx *c, const cJSON *h, cJSON *out)
{
	static const char *const protocols[] = {"HTTP", "gRPC", NULL};
	const cJSON *proto, *uri, *timeout, *port, *code;
	const char *p;
	int64_t ms;
	nvcf_status st;
	cJSON *o;

	if (!cJSON_IsObject(h))
		return reject(c, "health", h, "must be an object");
	if ((st = req_string(c, h, "protocol", "health.protocol", &proto)) ||
	    (st = req_string(c, h, "uri", "health.uri", &uri)) ||
	    (st = req_string(c, h, "timeout", "health.timeout", &timeout)))
		return st;
	if ((p = enum_match(proto, protocols)) == NULL)
		return reject(c, "health.protocol", proto,
			      "must be one of HTTP, gRPC");
	if (nvcf__duration_parse(timeout->valuestring, &ms) != NVCF_OK)
		return reject(c, "health.timeout", timeout,
			      "must be an ISO-8601 duration such as PT10S");
	port = cJSON_GetObjectItemCaseSensitive(h, "port");
	if (port == NULL || cJSON_IsNull(port))
		return reject(c, "health.port", NULL, "must not be null");
	if (!is_int(port) || port->valuedouble < 1 ||
	    port->valuedouble > 65535)
		return reject(c, "health.port", port,
			      "must be an integer from 1 to 65535");
	code = cJSON_GetObjectItemCaseSensitive(h, "expectedStatusCode");
	if (code == NULL || cJSON_IsNull(code))
		return reject(c, "health.expectedStatusCode", NULL,
			      "must not be null");
	if (!is_int(code) || code->valuedouble < 100 ||
	    code->valuedouble > 599)
		return reject(c, "health.expectedStatusCode", code,
			      "must be an HTTP status from 100 to 599");
	if ((o = cJSON_AddObjectToObject(out, "health")) == NULL)
		return nvcf__error_oom();
	cJSON_AddStringToObject(o, "protocol", p);
	cJSON_AddStringToObject(o, "uri", uri->valuestring);
	cJSON_AddNumberToObject(o, "port", port->valuedouble);
	cJSON_AddStringToObject(o, "timeout", timeout->valuestring);
	cJSON_AddNumberToObject(o, "expectedStatusCode", code->valuedouble);
	return NVCF_OK;
}

static nvcf_status check_env(vctx *c, const cJSON *env)
{
	const cJSON *e;

	cJSON_ArrayForEach(e, env) {
		const cJSON *k, *v;
		nvcf_status st;

		if (!cJSON_IsObject(e))
			return reject(c, "containerEnvironment", e,
				      "each entry must be {\"key\",\"value\"}");
		if ((st = req_string(c, e, "key", "containerEnvironment.key",
				     &k)) != NVCF_OK)
			return st;
		if ((st = opt_string(c, e, "value",
				     "containerEnvironment.value", &v)) !=
		    NVCF_OK)
			return st;
		if (v == NULL)
			return reject(c, "containerEnvironment.value", NULL,
				      "must not be null");
	}
	return NVCF_OK;
}

static nvcf_status check_tags(vctx *c, const cJSON *tags)
{
	const cJSON *t;

	if (cJSON_GetArraySize(tags) > 64)
		return reject(c, "tags", tags, "size must be at most 64");
	cJSON_ArrayForEach(t, tags) {
		if (!cJSON_IsString(t) || !tag_valid(t->valuestring))
			return reject(c, "tags", t,
				      "each tag must match [a-zA-Z0-9\\-_:=]+ "
				      "and be at most 128 characters");
	}
	return NVCF_OK;
}

static nvcf_status check_resources(vctx *c, const cJSON *res)
{
	static const char *const members[] = {"name", "version", "uri"};
	const cJSON *r;

	cJSON_ArrayForEach(r, res) {
		if (!cJSON_IsObject(r))
			return reject(c, "resources", r,
				      "each entry must be an object");
		for (size_t i = 0; i < 3; i++) {
			char path[32];
			const cJSON *v;
			nvcf_status st;

			snprintf(path, sizeof(path), "resources.%s",
				 members[i]);
			if ((st = req_string(c, r, members[i], path, &v)) !=
			    NVCF_OK)
				return st;
		}
	}
	return NVCF_OK;
}

static bool names_unique(const cJSON *arr, const char *member)
{
	const cJSON *a, *b;

	cJSON_ArrayForEach(a, arr) {
		const cJSON *na = cJSON_GetObjectItemCaseSensitive(a, member);

		for (b = a->next; b != NULL; b = b->next) {
			const cJSON *nb =
				cJSON_GetObjectItemCaseSensitive(b, member);

			if (cJSON_IsString(na) && cJSON_IsString(nb) &&
			    strcmp(na->valuestring, nb->valuestring) == 0)
				return false;
		}
	}
	return true;
}

static nvcf_status check_secrets(vctx *c, const cJSON *secrets, cJSON *out)
{
	const cJSON *s;
	cJSON *names = NULL;

	cJSON_ArrayForEach(s, secrets) {
		const cJSON *name, *value;
		nvcf_status st;
		size_t vlen;

		if (!cJSON_IsObject(s))
			return reject(c, "secrets", s,
				      "each entry must be {\"name\",\"value\"}");
		if ((st = req_string(c, s, "name", "secrets.name", &name)) !=
		    NVCF_OK)
			return st;
		if (!secret_name_valid(name->valuestring))
			return reject(c, "secrets.name", name,
				      "must match ^[a-z0-9A-Z][a-z0-9A-Z_.\\-]*$"
				      " and be at most 48 characters");
		value = cJSON_GetObjectItemCaseSensitive(s, "value");
		if (cJSON_IsString(value)) {
			vlen = strlen(value->valuestring);
		} else if (cJSON_IsObject(value)) {
			char *p = cJSON_PrintUnformatted(value);

			vlen = p ? strlen(p) : 0;
			free(p);
		} else {
			return reject(c, "secrets.value", value,
				      "must be a string or an object");
		}
		if (vlen < 1 || vlen > 32768)
			return reject(c, "secrets.value", NULL,
				      "length must be from 1 to 32768");
	}
	if (!names_unique(secrets, "name"))
		return invalid(c, "Duplicate secrets keys in the payload");
	/* Values are write-only: only the names are kept and shown. */
	cJSON_ArrayForEach(s, secrets) {
		if (names == NULL &&
		    (names = cJSON_AddArrayToObject(out, "secrets")) == NULL)
			return nvcf__error_oom();
		cJSON_AddItemToArray(names, cJSON_CreateString(
			cJSON_GetObjectItemCaseSensitive(s, "name")
				->valuestring));
	}
	return NVCF_OK;
}

static nvcf_status check_models(vctx *c, const cJSON *models, bool llm)
{
	const cJSON *m;

	cJSON_ArrayForEach(m, models) {
		const cJSON *name, *version, *uri, *llmc, *uris;
		nvcf_status st;

		if (!cJSON_IsObject(m))
			return reject(c, "models", m,
				      "each entry must be an object");
		if ((st = req_string(c, m, "name", "models.name", &name)) ||
		    (st = opt_string(c, m, "version", "models.version",
				     &version)) ||
		    (st = opt_string(c, m, "uri", "models.uri", &uri)))
			return st;
		llmc = cJSON_GetObjectItemCaseSensitive(m, "llmConfig");
		if (llm) {
			uris = cJSON_GetObjectItemCaseSensitive(llmc, "uris");
			if (!cJSON_IsArray(uris) ||
			    cJSON_GetArraySize(uris) == 0)
				return invalid(c, "LLM models need a non-empty "
						  "llmConfig.uris");
		} else if (version == NULL || uri == NULL) {
			return invalid(c, "every model needs 'version' and "
					  "'uri'");
		}
	}
	if (!names_unique(models, "name"))
		return invalid(c, "model names must be unique");
	return NVCF_OK;
}

static nvcf_status check_rate_limit(vctx *c, const cJSON *rl)
{
	const cJSON *rate, *user, *per, *exempt, *sync, *e;
	nvcf_status st;

	if (!cJSON_IsObject(rl))
		return reject(c, "rateLimit", rl, "must be an object");
	if ((st = opt_string(c, rl, "rateLimit", "rateLimit.rateLimit",
			     &rate)) ||
	    (st = opt_string(c, rl, "perUserRate", "rateLimit.perUserRate",
			     &user)))
		return st;
	if (rate != NULL && !rate_valid(rate->valuestring))
		return reject(c, "rateLimit.rateLimit", rate,
			      "must be a comma list of <count>-<S|M|H|D> "
			      "with no period twice, such as 5-S,300-H");
	if (user != NULL && !rate_valid(user->valuestring))
		return reject(c, "rateLimit.perUserRate", user,
			      "must be a comma list of <count>-<S|M|H|D>");
	per = cJSON_GetObjectItemCaseSensitive(rl, "perNcaIdRate");
	if (per != NULL && !cJSON_IsNull(per)) {
		if (!cJSON_IsObject(per) || cJSON_GetArraySize(per) > 32)
			return reject(c, "rateLimit.perNcaIdRate", per,
				      "must be an object of at most 32 "
				      "ncaId-to-rate entries");
		cJSON_ArrayForEach(e, per) {
			if (!cJSON_IsString(e) || !rate_valid(e->valuestring))
				return reject(c, "rateLimit.perNcaIdRate", e,
					      "must be <count>-<S|M|H|D> "
					      "rates");
		}
	} else {
		per = NULL;
	}
	exempt = cJSON_GetObjectItemCaseSensitive(rl, "exemptedNcaIds");
	if (exempt != NULL && !cJSON_IsNull(exempt)) {
		if (!cJSON_IsArray(exempt) || cJSON_GetArraySize(exempt) > 32)
			return reject(c, "rateLimit.exemptedNcaIds", exempt,
				      "must be an array of at most 32 ids");
		cJSON_ArrayForEach(e, exempt) {
			if (!cJSON_IsString(e))
				return reject(c, "rateLimit.exemptedNcaIds", e,
					      "must hold strings");
			if (per != NULL && cJSON_GetObjectItemCaseSensitive(
						   per, e->valuestring))
				return invalid(c, "an ncaId cannot be both "
						  "exempted and in "
						  "perNcaIdRate");
		}
		if (cJSON_GetArraySize(exempt) > 0 && rate == NULL)
			return invalid(c, "exemptedNcaIds needs rateLimit");
	}
	sync = cJSON_GetObjectItemCaseSensitive(rl, "syncCheck");
	if (sync != NULL && !cJSON_IsNull(sync) && !cJSON_IsBool(sync))
		return reject(c, "rateLimit.syncCheck", sync,
			      "must be a boolean");
	if (rate == NULL && per == NULL && user == NULL)
		return invalid(c, "rateLimit needs at least one of rateLimit, "
				  "perNcaIdRate, perUserRate");
	return NVCF_OK;
}

static nvcf_status check_function(vctx *c, const cJSON *req, cJSON *out)
{
	static const char *const types[] = {"DEFAULT", "STREAMING", "LLM",
					    NULL};
	static const char *const formats[] = {"PREDICT_V2", "CUSTOM", NULL};
	const cJSON *name, *url, *port, *image, *helm, *helm_svc, *args, *env,
		*models, *res, *tags, *desc, *secrets, *ftype, *fmt, *health,
		*health_uri, *rl, *v;
	const char *type_s = "DEFAULT", *fmt_s = "CUSTOM";
	nvcf_status st;
	double port_v = 8000;

	if (!cJSON_IsObject(req)) {
		c->framework = true;
		snprintf(c->detail, c->size,
			 "JSON parse error: the request body must be a JSON "
			 "object");
		return nvcf__error_set(NVCF_EINVAL, "%s", c->detail);
	}
	if ((st = req_string(c, req, "name", "name", &name)))
		return st;
	if (!name_valid(name->valuestring, 128))
		return reject(c, "name", name,
			      NAME_RULE " and be 1 to 128 characters");
	if ((st = req_string(c, req, "inferenceUrl", "inferenceUrl", &url)))
		return st;
	if (url->valuestring[0] != '/' || strpbrk(url->valuestring, " \t\r\n"))
		return reject(c, "inferenceUrl", url,
			      "must be a URI path starting with '/'");
	port = cJSON_GetObjectItemCaseSensitive(req, "inferencePort");
	if (port != NULL && !cJSON_IsNull(port)) {
		if (!is_int(port) || port->valuedouble < 1 ||
		    port->valuedouble > 65535)
			return reject(c, "inferencePort", port,
				      "must be an integer from 1 to 65535");
		port_v = port->valuedouble;
	} else {
		port = NULL;
	}
	if ((st = opt_string(c, req, "containerImage", "containerImage",
			     &image)) ||
	    (st = opt_string(c, req, "helmChart", "helmChart", &helm)) ||
	    (st = opt_string(c, req, "helmChartServiceName",
			     "helmChartServiceName", &helm_svc)) ||
	    (st = opt_string(c, req, "containerArgs", "containerArgs",
			     &args)) ||
	    (st = opt_string(c, req, "description", "description", &desc)) ||
	    (st = opt_string(c, req, "functionType", "functionType",
			     &ftype)) ||
	    (st = opt_string(c, req, "apiBodyFormat", "apiBodyFormat",
			     &fmt)) ||
	    (st = opt_string(c, req, "healthUri", "healthUri", &health_uri)) ||
	    (st = opt_array(c, req, "containerEnvironment", &env)) ||
	    (st = opt_array(c, req, "models", &models)) ||
	    (st = opt_array(c, req, "resources", &res)) ||
	    (st = opt_array(c, req, "tags", &tags)) ||
	    (st = opt_array(c, req, "secrets", &secrets)))
		return st;
	if (image != NULL && blank(image->valuestring))
		return reject(c, "containerImage", image, "must not be blank");
	if (helm != NULL && blank(helm->valuestring))
		return reject(c, "helmChart", helm, "must not be blank");
	if (desc != NULL && strlen(desc->valuestring) > 256)
		return reject(c, "description", desc,
			      "size must be at most 256");
	if (ftype != NULL && (type_s = enum_match(ftype, types)) == NULL)
		return reject(c, "functionType", ftype,
			      "must be one of DEFAULT, STREAMING, LLM");
	if (fmt != NULL && (fmt_s = enum_match(fmt, formats)) == NULL)
		return reject(c, "apiBodyFormat", fmt,
			      "must be one of PREDICT_V2, CUSTOM");
	if (env != NULL && (st = check_env(c, env)))
		return st;
	if (tags != NULL && (st = check_tags(c, tags)))
		return st;
	if (res != NULL && (st = check_resources(c, res)))
		return st;
	if (image == NULL && helm == NULL &&
	    (models == NULL || cJSON_GetArraySize(models) == 0))
		return invalid(c, "one of containerImage, models or helmChart "
				  "is required");
	if (helm != NULL && (image != NULL || args != NULL || env != NULL))
		return invalid(c, "helmChart excludes containerImage, "
				  "containerArgs and containerEnvironment");
	if (helm != NULL && helm_svc == NULL)
		return invalid(c, "helmChartServiceName is required with "
				  "helmChart: name the chart's Service that "
				  "serves inference");
	if (helm == NULL && helm_svc != NULL)
		return invalid(c, "helmChartServiceName applies only with "
				  "helmChart: set helmChart or remove it");
	if (helm_svc != NULL && blank(helm_svc->valuestring))
		return reject(c, "helmChartServiceName", helm_svc,
			      "must not be blank");
	if (strcmp(type_s, "LLM") == 0 && models == NULL)
		return invalid(c, "functionType LLM requires models");
	if (models != NULL &&
	    (st = check_models(c, models, strcmp(type_s, "LLM") == 0)))
		return st;
	rl = cJSON_GetObjectItemCaseSensitive(req, "rateLimit");
	if (rl != NULL && !cJSON_IsNull(rl) && (st = check_rate_limit(c, rl)))
		return st;

	/* Only now build the record, in FunctionDto order. */
	cJSON_AddStringToObject(out, "name", name->valuestring);
	cJSON_AddStringToObject(out, "inferenceUrl", url->valuestring);
	if (port != NULL)
		cJSON_AddNumberToObject(out, "inferencePort", port_v);
	if (args != NULL)
		dup_into(out, "containerArgs", args);
	if (env != NULL && cJSON_GetArraySize(env) > 0)
		dup_into(out, "containerEnvironment", env);
	if (models != NULL && cJSON_GetArraySize(models) > 0)
		dup_into(out, "models", models);
	if (image != NULL)
		dup_into(out, "containerImage", image);
	cJSON_AddStringToObject(out, "apiBodyFormat", fmt_s);
	if (helm != NULL) {
		dup_into(out, "helmChart", helm);
		dup_into(out, "helmChartServiceName", helm_svc);
	}
	if (res != NULL && cJSON_GetArraySize(res) > 0)
		dup_into(out, "resources", res);
	if (tags != NULL && cJSON_GetArraySize(tags) > 0)
		dup_into(out, "tags", tags);
	cJSON_AddStringToObject(out, "description",
				desc ? desc->valuestring : name->valuestring);
	health = cJSON_GetObjectItemCaseSensitive(req, "health");
	if (health != NULL && !cJSON_IsNull(health)) {
		if ((st = check_health(c, health, out)))
			return st;
		v = cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(out, "health"), "uri");
		cJSON_AddStringToObject(out, "healthUri", v->valuestring);
	} else {
		cJSON *h = cJSON_AddObjectToObject(out, "health");
		const char *uri = health_uri && !blank(health_uri->valuestring)
					  ? health_uri->valuestring
					  : "/v2/health/ready";

		if (h == NULL)
			return nvcf__error_oom();
		cJSON_AddStringToObject(h, "protocol",
					strcmp(url->valuestring, "/grpc") == 0
						? "gRPC"
						: "HTTP");
		cJSON_AddStringToObject(h, "uri", uri);
		cJSON_AddNumberToObject(h, "port", port_v);
		cJSON_AddStringToObject(h, "timeout", "PT10S");
		cJSON_AddNumberToObject(h, "expectedStatusCode", 200);
		cJSON_AddStringToObject(out, "healthUri", uri);
	}
	cJSON_AddStringToObject(out, "functionType", type_s);
	if (secrets != NULL && (st = check_secrets(c, secrets, out)))
		return st;
	if (rl != NULL && !cJSON_IsNull(rl))
		dup_into(out, "rateLimit", rl);
	v = cJSON_GetObjectItemCaseSensitive(req, "llmInvocationConfig");
	if (cJSON_IsObject(v))
		dup_into(out, "llmInvocationConfig", v);
	return NVCF_OK;
}

nvcf_status nvcf__api_validate_function(const char *json, size_t len,
					cJSON **out, char *detail,
					size_t detail_size,
					bool *framework_out)
{
	char scratch[NVCF_API_DETAIL_MAX];
	vctx c = {detail ? detail : scratch,
		  detail ? detail_size : sizeof(scratch), false};
	cJSON *req, *dto;
	nvcf_status st;

	if (out != NULL)
		*out = NULL;
	c.detail[0] = '\0';
	req = json ? cJSON_ParseWithLength(json, len) : NULL;
	if (req == NULL) {
		c.framework = true;
		snprintf(c.detail, c.size,
			 "JSON parse error: the request body is not valid "
			 "JSON");
		st = nvcf__error_set(NVCF_EINVAL, "%s", c.detail);
		goto done;
	}
	if ((dto = cJSON_CreateObject()) == NULL) {
		cJSON_Delete(req);
		return nvcf__error_oom();
	}
	st = check_function(&c, req, dto);
	cJSON_Delete(req);
	if (st == NVCF_OK && out != NULL)
		*out = dto;
	else
		cJSON_Delete(dto);
done:
	if (framework_out != NULL)
		*framework_out = c.framework;
	return st;
}

static nvcf_status check_count(vctx *c, const cJSON *spec, const char *field,
			       const char *path, int lo, int hi, int dflt,
			       bool required, int *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(spec, field);
	char rule[64];

	if (v == NULL || cJSON_IsNull(v)) {
		if (required)
			return reject(c, path, NULL, "must not be null");
		*out = dflt;
		return NVCF_OK;
	}
	snprintf(rule, sizeof(rule), "must be an integer from %d to %d", lo,
		 hi);
	if (!is_int(v) || v->valuedouble < lo || v->valuedouble > hi)
		return reject(c, path, v, rule);
	*out = (int)v->valuedouble;
	return NVCF_OK;
}

static nvcf_status check_string_set(vctx *c, const cJSON *spec,
				    const char *field, const char *path)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(spec, field), *e;

	if (arr == NULL || cJSON_IsNull(arr))
		return NVCF_OK;
	if (!cJSON_IsArray(arr))
		return reject(c, path, arr, "must be an array of strings");
	cJSON_ArrayForEach(e, arr) {
		if (!cJSON_IsString(e) || blank(e->valuestring))
			return reject(c, path, e,
				      "must hold non-blank strings");
	}
	return NVCF_OK;
}

static nvcf_status check_spec(vctx *c, const cJSON *spec, cJSON *out)
{
	static const char *const copied[] = {
		"backend", "clusters", "regions", "attributes",
		"availabilityZones", "autoscalingConfiguration", NULL};
	const cJSON *gpu, *itype, *backend, *clusters, *conf;
	int min, max, conc;
	nvcf_status st;
	char id[NVCF_UUID_LEN + 1];

	if (!cJSON_IsObject(spec))
		return reject(c, "deploymentSpecifications", spec,
			      "each entry must be an object");
	if ((st = req_string(c, spec, "gpu", "deploymentSpecifications.gpu",
			     &gpu)) ||
	    (st = req_string(c, spec, "instanceType",
			     "deploymentSpecifications.instanceType",
			     &itype)) ||
	    (st = opt_string(c, spec, "backend",
			     "deploymentSpecifications.backend", &backend)) ||
	    (st = check_string_set(c, spec, "clusters",
				   "deploymentSpecifications.clusters")) ||
	    (st = check_string_set(c, spec, "regions",
				   "deploymentSpecifications.regions")) ||
	    (st = check_string_set(c, spec, "attributes",
				   "deploymentSpecifications.attributes")))
		return st;
	if ((st = check_count(c, spec, "minInstances",
			      "deploymentSpecifications.minInstances", 0,
			      1000000, 0, true, &min)) ||
	    (st = check_count(c, spec, "maxInstances",
			      "deploymentSpecifications.maxInstances", 1,
			      1000000, 0, true, &max)) ||
	    (st = check_count(c, spec, "maxRequestConcurrency",
			      "deploymentSpecifications.maxRequestConcurrency",
			      1, 16384, 1, false, &conc)))
		return st;
	if (min > max)
		return reject(c, "deploymentSpecifications.minInstances",
			      cJSON_GetObjectItemCaseSensitive(spec,
							       "minInstances"),
			      "must be less than or equal to maxInstances");
	clusters = cJSON_GetObjectItemCaseSensitive(spec, "clusters");
	if (backend != NULL && cJSON_IsArray(clusters) &&
	    cJSON_GetArraySize(clusters) > 0)
		return invalid(c, "backend and clusters cannot both be set in "
				  "a deployment specification");
	conf = cJSON_GetObjectItemCaseSensitive(spec, "configuration");
	if ((conf != NULL && !cJSON_IsNull(conf)) ||
	    cJSON_GetObjectItemCaseSensitive(spec, "helmValidationPolicy"))
		return invalid(c, "configuration and helmValidationPolicy are "
				  "only for Helm functions");
	if ((st = nvcf__uuid_new(id)) != NVCF_OK)
		return st;
	cJSON_AddStringToObject(out, "gpuSpecificationId", id);
	cJSON_AddStringToObject(out, "gpu", gpu->valuestring);
	cJSON_AddStringToObject(out, "instanceType", itype->valuestring);
	cJSON_AddNumberToObject(out, "minInstances", min);
	cJSON_AddNumberToObject(out, "maxInstances", max);
	cJSON_AddNumberToObject(out, "maxRequestConcurrency", conc);
	for (size_t i = 0; copied[i] != NULL; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(spec,
								  copied[i]);

		if (v != NULL && !cJSON_IsNull(v))
			dup_into(out, copied[i], v);
	}
	return NVCF_OK;
}

nvcf_status nvcf__api_validate_deployment(const char *json, size_t len,
					  cJSON **specs_out, char *detail,
					  size_t detail_size)
{
	vctx c = {detail, detail_size, false};
	cJSON *req, *specs = NULL;
	const cJSON *in, *spec;
	nvcf_status st = NVCF_OK;

	if (specs_out != NULL)
		*specs_out = NULL;
	req = json ? cJSON_ParseWithLength(json, len) : NULL;
	if (!cJSON_IsObject(req)) {
		snprintf(detail, detail_size,
			 "JSON parse error: the request body must be a JSON "
			 "object");
		st = nvcf__error_set(NVCF_EINVAL, "%s", detail);
		goto done;
	}
	in = cJSON_GetObjectItemCaseSensitive(req, "deploymentSpecifications");
	if (!cJSON_IsArray(in) || cJSON_GetArraySize(in) == 0) {
		st = reject(&c, "deploymentSpecifications", in,
			    "must be a non-empty array");
		goto done;
	}
	if ((specs = cJSON_CreateArray()) == NULL) {
		st = nvcf__error_oom();
		goto done;
	}
	cJSON_ArrayForEach(spec, in) {
		cJSON *o = cJSON_CreateObject();

		if (o == NULL) {
			st = nvcf__error_oom();
			break;
		}
		cJSON_AddItemToArray(specs, o);
		if ((st = check_spec(&c, spec, o)) != NVCF_OK)
			break;
	}
done:
	cJSON_Delete(req);
	if (st == NVCF_OK && specs_out != NULL)
		*specs_out = specs;
	else
		cJSON_Delete(specs);
	return st;
}

nvcf_status nvcf__api_validate_patch(const char *json, size_t len,
				     const cJSON *spec, int *min_out,
				     int *max_out, char *detail,
				     size_t detail_size)
{
	vctx c = {detail, detail_size, false};
	const cJSON *vmin, *vmax;
	cJSON *req;
	nvcf_status st = NVCF_OK;
	int min, max;

	req = json ? cJSON_ParseWithLength(json, len) : NULL;
	if (!cJSON_IsObject(req)) {
		snprintf(detail, detail_size,
			 "JSON parse error: the request body must be a JSON "
			 "object");
		st = nvcf__error_set(NVCF_EINVAL, "%s", detail);
		goto done;
	}
	vmin = cJSON_GetObjectItemCaseSensitive(req, "minInstances");
	vmax = cJSON_GetObjectItemCaseSensitive(req, "maxInstances");
	if ((vmin == NULL || cJSON_IsNull(vmin)) &&
	    (vmax == NULL || cJSON_IsNull(vmax)) &&
	    !cJSON_GetObjectItemCaseSensitive(req,
					      "autoscalingConfiguration")) {
		st = invalid(&c, "the body must set minInstances, "
				 "maxInstances or autoscalingConfiguration");
		goto done;
	}
	min = cJSON_GetObjectItemCaseSensitive(spec, "minInstances")
		      ->valueint;
	max = cJSON_GetObjectItemCaseSensitive(spec, "maxInstances")
		      ->valueint;
	if ((st = check_count(&c, req, "minInstances", "minInstances", 0,
			      1000000, min, false, &min)) ||
	    (st = check_count(&c, req, "maxInstances", "maxInstances", 1,
			      1000000, max, false, &max)))
		goto done;
	if (min > max) {
		char rule[96];

		snprintf(rule, sizeof(rule),
			 "must be less than or equal to maxInstances (%d)",
			 max);
		st = reject(&c, "minInstances",
			    vmin ? vmin : cJSON_GetObjectItemCaseSensitive(
						  spec, "minInstances"),
			    rule);
		goto done;
	}
	*min_out = min;
	*max_out = max;
done:
	cJSON_Delete(req);
	return st;
}

/* ---- placement against the cluster inventory ------------------------- */

/* Collects the string entries of a spec's array member, skipping others. */
static const char **string_list(const cJSON *spec, const char *name,
				size_t *count)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(spec, name), *e;
	const char **out;
	size_t n = 0;

	*count = 0;
	if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0)
		return NULL;
	out = calloc((size_t)cJSON_GetArraySize(arr), sizeof(*out));
	if (out == NULL)
		return NULL;
	cJSON_ArrayForEach(e, arr) {
		if (cJSON_IsString(e))
			out[n++] = e->valuestring;
	}
	*count = n;
	return out;
}

/*
 * Copies the list after @p marker in @p msg into @p out without the
 * brackets routing puts around it; "none" when there is no list.
 */
static const char *after(const char *msg, const char *marker, char *out,
			 size_t size)
{
	const char *p = strstr(msg, marker);
	size_t n;

	if (p == NULL)
		return "none";
	p += strlen(marker);
	n = strlen(p);
	if (n >= 2 && p[0] == '[' && p[n - 1] == ']') {
		p++;
		n -= 2;
	}
	snprintf(out, size, "%.*s", (int)n, p);
	return out;
}

nvcf_status nvcf__api_validate_placement(const nvcf_inventory *inv,
					 const cJSON *spec, char *detail,
					 size_t detail_size)
{
	nvcf_placement_spec ps = NVCF_PLACEMENT_SPEC_INIT;
	const char **clusters, **regions, **attributes;
	const cJSON *backend = cJSON_GetObjectItemCaseSensitive(spec,
								"backend");
	char err[NVCF_API_DETAIL_MAX], list[NVCF_API_DETAIL_MAX];
	nvcf_status st;

	ps.gpu = cJSON_GetStringValue(
		cJSON_GetObjectItemCaseSensitive(spec, "gpu"));
	ps.instance_type = cJSON_GetStringValue(
		cJSON_GetObjectItemCaseSensitive(spec, "instanceType"));
	ps.backend = cJSON_GetStringValue(backend);
	clusters = string_list(spec, "clusters", &ps.clusters_count);
	regions = string_list(spec, "regions", &ps.regions_count);
	attributes = string_list(spec, "attributes", &ps.attributes_count);
	ps.clusters = clusters;
	ps.regions = regions;
	ps.attributes = attributes;
	ps.instance_count = 1;
	st = nvcf_inventory_validate_spec(inv, &ps, err, sizeof(err));
	free(clusters);
	free(regions);
	free(attributes);
	if (st == NVCF_OK || st == NVCF_ENOMEM) {
		if (st == NVCF_ENOMEM)
			snprintf(detail, detail_size, "out of memory");
		return st;
	}
	/*
	 * The routing message leads with the field it rejects; GPU and
	 * instance type keep the wording NVCF clients already match on.
	 */
	if (nvcf_inventory_count(inv) == 0)
		snprintf(detail, detail_size,
			 "Invalid request: no healthy cluster is registered, "
			 "so no GPU can be deployed; start a cluster agent "
			 "(nvca)");
	else if (strncmp(err, "gpu:", 4) == 0)
		snprintf(detail, detail_size,
			 "Invalid request: gpu '%s' is not offered by any "
			 "healthy cluster; offered GPUs: %s",
			 ps.gpu ? ps.gpu : "",
			 after(err, "GPUs: ", list, sizeof(list)));
	else if (strncmp(err, "instanceType:", 13) == 0)
		snprintf(detail, detail_size,
			 "Invalid request: instanceType '%s' is not offered "
			 "for gpu '%s'; offered instance types: %s",
			 ps.instance_type ? ps.instance_type : "",
			 ps.gpu ? ps.gpu : "",
			 after(err, "instance types: ", list, sizeof(list)));
	else
		snprintf(detail, detail_size,
			 "Invalid request: no healthy cluster offers gpu '%s' "
			 "with instanceType '%s' within the given backend, "
			 "clusters and regions: %s",
			 ps.gpu ? ps.gpu : "",
			 ps.instance_type ? ps.instance_type : "", err);
	return nvcf__error_set(NVCF_EINVAL, "%s", detail);
}
