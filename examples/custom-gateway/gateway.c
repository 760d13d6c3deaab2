/* SPDX-License-Identifier: Apache-2.0 */
/*
 * custom-gateway: an invocation gateway that embeds libnvcf and adds its
 * own authentication rule in front of NVCF API keys.
 *
 * Callers present "X-Team-Token: <token>". The token file lists one
 * "<token> <ncaId> [subject]" per line, and '#' starts a comment. A known
 * token is served as its account, as if that account's API key had been
 * sent. The function sees the subject (default "team:<ncaId>") as
 * NVCF-SUB but never the token. An unknown token gets 401. A request
 * with no team token falls back to "Authorization: Bearer <API key>",
 * which the library checks, and one with neither gets 401.
 *
 * Build against an installed libnvcf:
 *
 *   cc -o custom-gateway gateway.c $(pkg-config --cflags --libs libnvcf)
 *
 * Run next to a stack that nvcf up (or the daemons) started:
 *
 *   ./custom-gateway --nats nats://127.0.0.1:4222 --listen 8090 \
 *       --token-file teams.txt
 *   curl -X POST -H 'X-Team-Token: s3cret' -d '{"x":1}' \
 *       http://127.0.0.1:8090/v2/nvcf/pexec/functions/<function id>
 *
 * Options may also come from the environment: NVCF_NATS_URL,
 * CUSTOM_GATEWAY_LISTEN and CUSTOM_GATEWAY_TOKEN_FILE. Once listening, it
 * prints "listening on ADDRESS:PORT" on stdout; SIGINT or SIGTERM stops
 * it.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nvcf/nvcf.h>

#define TOKEN_HEADER "X-Team-Token"
#define TOKEN_MAX 256
#define SUBJECT_MAX 127

typedef struct team {
	char token[TOKEN_MAX + 1];
	size_t token_len;
	char nca_id[NVCF_GATEWAY_NCA_ID_MAX + 1];
	char subject[SUBJECT_MAX + 1];
} team;

typedef struct teams {
	team *items;
	size_t len;
} teams;

static const char *prog = "custom-gateway";

static void on_log(nvcf_log_level_t level, const char *subsystem,
		   const char *message, void *userdata)
{
	(void)userdata;
	/* One fprintf per record: stdio locks the stream, so lines from
	 * several library threads do not interleave. */
	fprintf(stderr, "%s: %s %s: %s\n", prog, nvcf_log_level_name(level),
		subsystem, message);
}

/*
 * Compares the presented token with every known one, always to the end,
 * so that the time taken does not tell how many leading bytes matched or
 * which entry did. Returns the matching entry or NULL.
 */
static const team *team_find(const teams *t, const char *token)
{
	size_t len = strnlen(token, TOKEN_MAX + 1);
	const team *found = NULL;

	if (len == 0 || len > TOKEN_MAX)
		return NULL;
	for (size_t i = 0; i < t->len; i++) {
		const team *e = &t->items[i];
		volatile unsigned char diff = e->token_len != len;

		for (size_t j = 0; j < len; j++)
			diff |= (unsigned char)(token[j] ^
						e->token[j % e->token_len]);
		if (diff == 0)
			found = e;
	}
	return found;
}

static nvcf_gateway_auth_action authenticate(
	const char *method, const char *path,
	const nvcf_gateway_request *request,
	nvcf_gateway_auth_verdict *verdict, void *userdata)
{
	const teams *t = userdata;
	const char *token = nvcf_gateway_request_header(request,
							 TOKEN_HEADER);
	const team *e;

	(void)method;
	(void)path;
	if (token == NULL) {
		if (nvcf_gateway_request_header(request, "Authorization"))
			return NVCF_GATEWAY_AUTH_CONTINUE;
		verdict->http_status = 401;
		snprintf(verdict->message, sizeof(verdict->message),
			 "send your team token as '" TOKEN_HEADER
			 ": <token>', or an NVCF API key as "
			 "'Authorization: Bearer <key>'");
		return NVCF_GATEWAY_AUTH_DENY;
	}
	e = team_find(t, token);
	if (e == NULL) {
		verdict->http_status = 401;
		snprintf(verdict->message, sizeof(verdict->message),
			 "unknown team token in " TOKEN_HEADER
			 "; ask the gateway's operator for one");
		return NVCF_GATEWAY_AUTH_DENY;
	}
	snprintf(verdict->nca_id, sizeof(verdict->nca_id), "%s", e->nca_id);
	snprintf(verdict->subject, sizeof(verdict->subject), "%s",
		 e->subject);
	/* Keeps the caller's secret away from the function's code. */
	snprintf(verdict->hide_header, sizeof(verdict->hide_header), "%s",
		 TOKEN_HEADER);
	return NVCF_GATEWAY_AUTH_ALLOW_AS;
}

/* Checks an ncaId as the library does: 1 to 64 of [A-Za-z0-9_-]. */
static int nca_id_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > NVCF_GATEWAY_NCA_ID_MAX || s[0] == '-' ||
	    s[0] == '_')
		return 0;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz"
			 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == n;
}

/* Reads "<token> <ncaId> [subject]" lines. Returns 0, or -1 after a message. */
static int teams_load(teams *t, const char *path)
{
	char line[1024];
	unsigned int lineno = 0;
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		fprintf(stderr, "%s: cannot open token file %s: %s\n", prog,
			path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *save = NULL, *token, *nca_id, *subject;
		team *items, *e;

		lineno++;
		line[strcspn(line, "#\r\n")] = '\0';
		token = strtok_r(line, " \t", &save);
		if (token == NULL)
			continue;
		nca_id = strtok_r(NULL, " \t", &save);
		subject = strtok_r(NULL, " \t", &save);
		if (nca_id == NULL || strtok_r(NULL, " \t", &save) != NULL ||
		    strlen(token) > TOKEN_MAX ||
		    !nca_id_valid(nca_id) ||
		    (subject != NULL && strlen(subject) > SUBJECT_MAX)) {
			fprintf(stderr, "%s: %s:%u: expected '<token> <ncaId> "
				"[subject]': a token of at most %d "
				"characters, an ncaId of 1 to %d letters, "
				"digits, '-' or '_'\n",
				prog, path, lineno, TOKEN_MAX,
				NVCF_GATEWAY_NCA_ID_MAX);
			fclose(f);
			return -1;
		}
		items = realloc(t->items, (t->len + 1) * sizeof(*items));
		if (items == NULL) {
			fprintf(stderr, "%s: out of memory\n", prog);
			fclose(f);
			return -1;
		}
		t->items = items;
		e = &items[t->len++];
		snprintf(e->token, sizeof(e->token), "%s", token);
		e->token_len = strlen(token);
		snprintf(e->nca_id, sizeof(e->nca_id), "%s", nca_id);
		if (subject != NULL)
			snprintf(e->subject, sizeof(e->subject), "%s",
				 subject);
		else
			snprintf(e->subject, sizeof(e->subject), "team:%.64s",
				 nca_id);
	}
	fclose(f);
	if (t->len == 0) {
		fprintf(stderr, "%s: token file %s lists no token; add "
			"'<token> <ncaId>' lines\n", prog, path);
		return -1;
	}
	return 0;
}

/* Splits "[ADDRESS:]PORT". Returns 0, or -1 after a message. */
static int parse_listen(const char *arg, char *addr, size_t addr_size,
			uint16_t *port)
{
	const char *colon = strrchr(arg, ':');
	const char *num = colon ? colon + 1 : arg;
	char *end;
	long v;

	errno = 0;
	v = strtol(num, &end, 10);
	if (*num == '\0' || *end != '\0' || errno != 0 || v < 0 ||
	    v > 65535 || (colon != NULL &&
			  (size_t)(colon - arg) >= addr_size)) {
		fprintf(stderr, "%s: --listen '%s' is not [ADDRESS:]PORT with "
			"a port from 0 to 65535\n", prog, arg);
		return -1;
	}
	if (colon != NULL && colon != arg)
		snprintf(addr, addr_size, "%.*s", (int)(colon - arg), arg);
	*port = (uint16_t)v;
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: %s --token-file PATH [--nats URL] "
		"[--listen [ADDRESS:]PORT] [--log-level LEVEL]\n"
		"  --token-file  lines of '<token> <ncaId> [subject]' "
		"(env CUSTOM_GATEWAY_TOKEN_FILE)\n"
		"  --nats        NATS server of the stack; default "
		"nats://127.0.0.1:4222 (env NVCF_NATS_URL)\n"
		"  --listen      default 127.0.0.1:8090; port 0 picks one "
		"(env CUSTOM_GATEWAY_LISTEN)\n"
		"  --log-level   error, warn, info (default), debug or "
		"trace\n",
		prog);
}

static int parse_level(const char *s, nvcf_log_level_t *out)
{
	for (int l = NVCF_LOG_ERROR; l <= NVCF_LOG_TRACE; l++) {
		if (strcmp(s, nvcf_log_level_name((nvcf_log_level_t)l)) == 0) {
			*out = (nvcf_log_level_t)l;
			return 0;
		}
	}
	fprintf(stderr, "%s: --log-level '%s': use error, warn, info, debug "
		"or trace\n", prog, s);
	return -1;
}

int main(int argc, char **argv)
{
	nvcf_gateway_options opts = NVCF_GATEWAY_OPTIONS_INIT;
	const char *nats_url = getenv("NVCF_NATS_URL");
	const char *listen_arg = getenv("CUSTOM_GATEWAY_LISTEN");
	const char *token_file = getenv("CUSTOM_GATEWAY_TOKEN_FILE");
	nvcf_log_level_t level = NVCF_LOG_INFO;
	char addr[64] = "127.0.0.1";
	uint16_t port = 8090;
	teams t = {NULL, 0};
	nvcf_gateway *gw = NULL;
	sigset_t stop_signals;
	nvcf_status st;
	int sig = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		}
		if (i + 1 >= argc) {
			usage(stderr);
			return 2;
		}
		if (strcmp(a, "--nats") == 0) {
			nats_url = argv[++i];
		} else if (strcmp(a, "--listen") == 0) {
			listen_arg = argv[++i];
		} else if (strcmp(a, "--token-file") == 0) {
			token_file = argv[++i];
		} else if (strcmp(a, "--log-level") == 0) {
			if (parse_level(argv[++i], &level) != 0)
				return 2;
		} else {
			fprintf(stderr, "%s: unknown option '%s'\n", prog, a);
			usage(stderr);
			return 2;
		}
	}
	if (token_file == NULL) {
		fprintf(stderr, "%s: no token file: pass --token-file PATH or "
			"set CUSTOM_GATEWAY_TOKEN_FILE\n", prog);
		return 2;
	}
	if (listen_arg != NULL &&
	    parse_listen(listen_arg, addr, sizeof(addr), &port) != 0)
		return 2;
	if (teams_load(&t, token_file) != 0)
		return 1;

	nvcf_log_set_handler(level, on_log, NULL);

	/*
	 * Blocked before the gateway starts its threads, which inherit the
	 * mask, so the signals reach only sigwait() below.
	 */
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

	opts.nats_url = nats_url;
	opts.listen_address = addr;
	opts.port = port;
	opts.auth_cb = authenticate;
	opts.auth_userdata = &t;
	st = nvcf_gateway_new(&gw, &opts);
	if (st == NVCF_OK)
		st = nvcf_gateway_start(gw);
	if (st != NVCF_OK) {
		fprintf(stderr, "%s: %s: %s\n", prog, nvcf_status_name(st),
			nvcf_error_last()->message);
		nvcf_gateway_free(gw);
		free(t.items);
		return 1;
	}
	printf("listening on %s:%u\n", addr,
	       (unsigned int)nvcf_gateway_port(gw));
	fflush(stdout);

	if (sigwait(&stop_signals, &sig) == 0)
		fprintf(stderr, "%s: signal %d: stopping\n", prog, sig);
	nvcf_gateway_stop(gw);
	nvcf_gateway_free(gw);
	nvcf_log_set_handler(NVCF_LOG_ERROR, NULL, NULL);
	free(t.items);
	return 0;
}
