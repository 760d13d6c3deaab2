/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Replays files through a libFuzzer target without libFuzzer, so that the
 * seed corpus runs as an ordinary test under any compiler. Arguments are
 * files or directories of files. A target may also define
 * fuzz_expectation() to check a seed's outcome from its file name.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Checks what a seed should produce; returns non-zero with a message on
 * stderr when it does not. The default expects nothing beyond not crashing.
 */
__attribute__((weak)) int fuzz_expectation(const char *path, const char *name,
					   const uint8_t *data, size_t size);

__attribute__((weak)) int fuzz_expectation(const char *path, const char *name,
					   const uint8_t *data, size_t size)
{
	(void)path;
	(void)name;
	(void)data;
	(void)size;
	return 0;
}

static int run_file(const char *path)
{
	const char *name = strrchr(path, '/');
	FILE *f = fopen(path, "rb");
	uint8_t *data;
	long size;
	int rc;

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
	rc = fuzz_expectation(path, name ? name + 1 : path, data, (size_t)size);
	free(data);
	return rc;
}

static int run_path(const char *path, int *count)
{
	struct stat st;
	struct dirent *e;
	DIR *d;
	int rc = 0;

	if (stat(path, &st) != 0) {
		fprintf(stderr, "cannot stat %s\n", path);
		return 1;
	}
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return run_file(path);
	}
	d = opendir(path);
	if (d == NULL)
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
	if (count == 0) {
		fprintf(stderr, "no seed files found\n");
		return 1;
	}
	printf("%d passed, %d failed\n", rc ? 0 : count, rc ? 1 : 0);
	return rc;
}
