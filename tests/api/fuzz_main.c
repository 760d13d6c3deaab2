/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Replays seed files through the create-function fuzz target without
 * libFuzzer, so that CI runs them as a unit test under any compiler.
 * A file named "ok-*" must also be accepted by the validator and one
 * named "bad-*" rejected, so that the seeds double as regression cases.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/api_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int check_file(const char *path, const char *base)
{
	char detail[NVCF_API_DETAIL_MAX];
	FILE *f = fopen(path, "rb");
	uint8_t *data;
	long size;
	nvcf_status st;
	int rc = 0;

	if (f == NULL) {
		fprintf(stderr, "cannot open %s\n", path);
		return 1;
	}
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, 0, SEEK_SET);
	data = malloc(size > 0 ? (size_t)size : 1);
	if (data == NULL || fread(data, 1, (size_t)size, f) != (size_t)size) {
		fprintf(stderr, "cannot read %s\n", path);
		fclose(f);
		free(data);
		return 1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(data, (size_t)size);
	detail[0] = '\0';
	st = nvcf__api_validate_function((const char *)data, (size_t)size,
					 NULL, detail, sizeof(detail), NULL);
	if (strncmp(base, "ok-", 3) == 0 && st != NVCF_OK) {
		fprintf(stderr, "%s: rejected: %s\n", path, detail);
		rc = 1;
	} else if (strncmp(base, "bad-", 4) == 0 && st == NVCF_OK) {
		fprintf(stderr, "%s: accepted, expected a rejection\n", path);
		rc = 1;
	} else if (st != NVCF_OK) {
		printf("%s: %s\n", base, detail);
	}
	free(data);
	return rc;
}

static int run_path(const char *path, int *count)
{
	struct stat sb;
	struct dirent *e;
	DIR *d;
	int rc = 0;

	if (stat(path, &sb) != 0) {
		fprintf(stderr, "cannot stat %s\n", path);
		return 1;
	}
	if (!S_ISDIR(sb.st_mode)) {
		const char *base = strrchr(path, '/');

		(*count)++;
		return check_file(path, base ? base + 1 : path);
	}
	if ((d = opendir(path)) == NULL)
		return 1;
	while ((e = readdir(d)) != NULL) {
		char child[4096];

		if (e->d_name[0] == '.')
			continue;
		snprintf(child, sizeof(child), "%s/%s", path, e->d_name);
		rc |= run_path(child, count);
	}
	closedir(d);
	return rc;
}

int main(int argc, char **argv)
{
	int rc = 0, count = 0;

	for (int i = 1; i < argc; i++)
		rc |= run_path(argv[i], &count);
	printf("%d seed files, %s\n", count, rc ? "FAILED" : "all as expected");
	return rc != 0 || count == 0;
}
