/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>
#include <string.h>

#include "agent_internal.h"

typedef struct words {
	char **argv;
	size_t argc;
	size_t cap;
} words;

static nvcf_status words_push(words *w, nvcf__buf *word)
{
	char *copy;

	if (w->argc + 2 > w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 8;
		char **grown = realloc(w->argv, cap * sizeof(*grown));

		if (grown == NULL)
			return nvcf__error_oom();
		w->argv = grown;
		w->cap = cap;
	}
	copy = nvcf__strndup(word->data ? word->data : "", word->len);
	if (copy == NULL)
		return nvcf__error_oom();
	w->argv[w->argc++] = copy;
	w->argv[w->argc] = NULL;
	word->len = 0;
	if (word->data)
		word->data[0] = '\0';
	return NVCF_OK;
}

/*
 * Expands $PORT or ${PORT} at text[*i] (which is '$'). Returns true and
 * advances *i past the reference when one is there.
 */
static bool expand_port(const char *text, size_t *i, const char *port,
			nvcf__buf *word, nvcf_status *st)
{
	const char *p = text + *i + 1;
	size_t skip;

	if (strncmp(p, "{PORT}", 6) == 0) {
		skip = 7;
	} else if (strncmp(p, "PORT", 4) == 0 &&
		   !(p[4] == '_' || (p[4] >= 'A' && p[4] <= 'Z') ||
		     (p[4] >= 'a' && p[4] <= 'z') ||
		     (p[4] >= '0' && p[4] <= '9'))) {
		skip = 5;
	} else {
		return false;
	}
	*st = nvcf__buf_append(word, port, strlen(port));
	*i += skip;
	return true;
}

void nvcf__shell_free(char **argv)
{
	if (argv == NULL)
		return;
	for (size_t i = 0; argv[i] != NULL; i++)
		free(argv[i]);
	free(argv);
}

nvcf_status nvcf__shell_split(const char *text, const char *port,
			      char ***argv_out, size_t *argc_out)
{
	words w = {0};
	nvcf__buf word = {0};
	nvcf_status st = NVCF_OK;
	bool in_word = false;
	size_t i = 0;

	if (text == NULL || argv_out == NULL)
		return nvcf__error_set(NVCF_EINVAL,
				       "nvcf__shell_split: NULL argument");
	if (port == NULL)
		port = "";
	while (st == NVCF_OK && text[i] != '\0') {
		char c = text[i];

		if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			if (in_word)
				st = words_push(&w, &word);
			in_word = false;
			i++;
		} else if (c == '\'') {
			size_t start = i;
			const char *end = strchr(text + i + 1, '\'');

			if (end == NULL) {
				st = nvcf__error_set(NVCF_EINVAL,
					"unterminated single quote at offset "
					"%zu of '%s': add the closing quote",
					start, text);
				break;
			}
			st = nvcf__buf_append(&word, text + i + 1,
					      (size_t)(end - text) - i - 1);
			in_word = true;
			i = (size_t)(end - text) + 1;
		} else if (c == '"') {
			size_t start = i++;

			in_word = true;
			while (st == NVCF_OK && text[i] != '"') {
				if (text[i] == '\0') {
					st = nvcf__error_set(NVCF_EINVAL,
						"unterminated double quote at "
						"offset %zu of '%s': add the "
						"closing quote", start, text);
					break;
				}
				if (text[i] == '\\' &&
				    text[i + 1] != '\0' &&
				    strchr("\"\\$`\n", text[i + 1])) {
					if (text[i + 1] != '\n')
						st = nvcf__buf_append(
							&word, text + i + 1, 1);
					i += 2;
				} else if (text[i] == '$' &&
					   expand_port(text, &i, port, &word,
						       &st)) {
					continue;
				} else {
					st = nvcf__buf_append(&word, text + i,
							      1);
					i++;
				}
			}
			if (st == NVCF_OK)
				i++;
		} else if (c == '\\') {
			if (text[i + 1] == '\0') {
				st = nvcf__error_set(NVCF_EINVAL,
					"trailing backslash at offset %zu of "
					"'%s': escape it as \\\\ or remove it",
					i, text);
				break;
			}
			/* Backslash-newline joins lines, as in a shell. */
			if (text[i + 1] != '\n') {
				st = nvcf__buf_append(&word, text + i + 1, 1);
				in_word = true;
			}
			i += 2;
		} else if (c == '$' && expand_port(text, &i, port, &word,
						   &st)) {
			in_word = true;
		} else {
			st = nvcf__buf_append(&word, text + i, 1);
			in_word = true;
			i++;
		}
	}
	if (st == NVCF_OK && in_word)
		st = words_push(&w, &word);
	if (st == NVCF_OK && w.argv == NULL) {
		w.argv = calloc(1, sizeof(char *));
		if (w.argv == NULL)
			st = nvcf__error_oom();
	}
	nvcf__buf_free(&word);
	if (st != NVCF_OK) {
		nvcf__shell_free(w.argv);
		return st;
	}
	*argv_out = w.argv;
	if (argc_out != NULL)
		*argc_out = w.argc;
	return NVCF_OK;
}

/* ---- environments --------------------------------------------------------- */

void nvcf__env_set(nvcf__env *e, const char *name, const char *value)
{
	size_t nlen = strlen(name);
	char *entry = nvcf__asprintf("%s=%s", name, value ? value : "");

	if (entry == NULL)
		return;
	for (size_t i = 0; i < e->n; i++) {
		if (strncmp(e->v[i], name, nlen) == 0 && e->v[i][nlen] == '=') {
			free(e->v[i]);
			e->v[i] = entry;
			return;
		}
	}
	if (e->n + 1 >= e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 32;
		char **v = realloc(e->v, cap * sizeof(char *));

		if (v == NULL) {
			free(entry);
			return;
		}
		e->v = v;
		e->cap = cap;
	}
	e->v[e->n++] = entry;
	e->v[e->n] = NULL;
}

void nvcf__env_free(nvcf__env *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i]);
	free(e->v);
	e->v = NULL;
	e->n = e->cap = 0;
}
