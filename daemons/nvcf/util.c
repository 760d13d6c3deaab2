/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

void cli_err(const char *fmt, ...)
{
	va_list ap;

	fputs("nvcf: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

bool cli_is_help(const char *arg)
{
	return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

bool cli_flag(int argc, char **argv, int *i, const char *name,
	      const char **value)
{
	const char *arg = argv[*i];
	size_t n = strlen(name);

	if (strncmp(arg, name, n) != 0)
		return false;
	if (arg[n] == '=') {
		*value = arg + n + 1;
		return true;
	}
	if (arg[n] != '\0')
		return false;
	if (*i + 1 >= argc) {
		cli_err("%s needs a value", name);
		*value = NULL;
		return true;
	}
	*i += 1;
	*value = argv[*i];
	return true;
}

bool cli_parse_int(const char *text, long *out)
{
	char *end;
	long v;

	if (text == NULL || *text == '\0')
		return false;
	errno = 0;
	v = strtol(text, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0)
		return false;
	*out = v;
	return true;
}

bool cli_self_dir(char out[4096])
{
	ssize_t n = readlink("/proc/self/exe", out, 4095);
	char *slash;

	if (n <= 0)
		return false;
	out[n] = '\0';
	slash = strrchr(out, '/');
	if (slash == NULL)
		return false;
	*slash = '\0';
	return true;
}

/* Removes one level of single or double quotes around @p v, in place. */
static char *unquote(char *v)
{
	size_t n = strlen(v);

	while (n > 0 && (v[n - 1] == '\n' || v[n - 1] == '\r'))
		v[--n] = '\0';
	if (n >= 2 && (v[0] == '\'' || v[0] == '"') && v[n - 1] == v[0]) {
		v[n - 1] = '\0';
		return v + 1;
	}
	return v;
}

bool cli_load_env(const char *state_dir)
{
	char path[PATH_MAX], line[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/env", state_dir);
	f = fopen(path, "r");
	if (f == NULL) {
		cli_err("cannot read %s: %s (run 'nvcf up --state-dir %s' "
			"first)", path, strerror(errno), state_dir);
		return false;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *p = line, *eq;

		if (strncmp(p, "export ", 7) == 0)
			p += 7;
		eq = strchr(p, '=');
		if (*p == '#' || eq == NULL)
			continue;
		*eq = '\0';
		setenv(p, unquote(eq + 1), 1);
	}
	fclose(f);
	return true;
}

bool cli_fmt(char *out, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, size, fmt, ap);
	va_end(ap);
	return n >= 0 && (size_t)n < size;
}

double cli_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
