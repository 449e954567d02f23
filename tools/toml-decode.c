/* toml-decode: the toml-test decoder interface. Reads TOML from standard
 * input and writes its tagged JSON to standard output (exit 0); for invalid
 * input writes "line:col: reason" to standard error and exits 1. */
#include <stdio.h>
#include <stdlib.h>

#include "codec/toml.h"
#include "toml_json.h"

/* Reads all of f, at most max + 1 bytes (so an oversized input is seen as
 * such by the parser). Returns a malloc'd buffer or NULL. */
static char *read_all(FILE *f, size_t max, size_t *len)
{
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		size_t want = cap - n;
		if (n + want > max + 1)
			want = max + 1 - n;
		size_t got = fread(buf + n, 1, want, f);
		n += got;
		if (got < want || n == max + 1)
			break;
		if (n == cap) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
	}
	if (buf && ferror(f)) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

int main(void)
{
	size_t len = 0;
	char *text = read_all(stdin, TOML_MAX_INPUT, &len);
	if (!text) {
		fprintf(stderr, "toml-decode: cannot read standard input\n");
		return 2;
	}
	struct toml_error err;
	struct toml_node *root = toml_parse(text, len, &err);
	free(text);
	if (!root) {
		fprintf(stderr, "%u:%u: %s\n", err.line, err.col, err.msg);
		return 1;
	}
	size_t need = toml_json_write(root, NULL, 0);
	char *json = malloc(need + 1);
	if (!json) {
		toml_free(root);
		fprintf(stderr, "toml-decode: out of memory\n");
		return 2;
	}
	toml_json_write(root, json, need + 1);
	toml_free(root);
	fwrite(json, 1, need, stdout);
	fputc('\n', stdout);
	free(json);
	return fflush(stdout) == 0 ? 0 : 2;
}
