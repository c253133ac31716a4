/*
 * replay.c - run a fuzz target over files, without libFuzzer: the seed
 * corpus (and any crash a fuzzing session found) becomes a regular test
 * under meson, with whatever compiler and sanitizers the build uses.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long len;

	if (!f)
		return -1;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	buf = malloc((size_t)len + 1);
	if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	/* The input, and two truncations of it: the cheapest mutation there is,
	 * and the one a network most often makes. */
	LLVMFuzzerTestOneInput(buf, (size_t)len);
	LLVMFuzzerTestOneInput(buf, (size_t)len / 2);
	if (len > 0)
		LLVMFuzzerTestOneInput(buf, (size_t)len - 1);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	int n = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "replay: %s: not found\n", argv[i]);
			return 1;
		}
		if (S_ISDIR(st.st_mode)) {
			DIR *d = opendir(argv[i]);
			struct dirent *de;
			char path[4096];
			while (d && (de = readdir(d)) != NULL) {
				if (de->d_name[0] == '.')
					continue;
				snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
				if (run_file(path) == 0)
					n++;
			}
			if (d)
				closedir(d);
		} else if (run_file(argv[i]) == 0) {
			n++;
		}
	}
	printf("replayed %d inputs\n", n);
	return n > 0 ? 0 : 1;
}
