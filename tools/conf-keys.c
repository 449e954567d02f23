/* conf-keys: prints every key of the configuration schema
 * (conf_schema_walk), one path a line, depth first, in table order:
 * "server", "server.bind_addr", ..., "client.services.<name>.local_addr".
 *
 * With -l, each line is tab-separated: path, type, default ("none" when
 * unset), required ("yes"/"no"), reload class ("hot"/"general") and, for an
 * enum, its values. The install test uses it to check that molerat.toml(5)
 * names every key. Exit 0; 2 on a bad command line. */
#include <stdio.h>
#include <string.h>

#include "codec/conf.h"

static void print_key(void *arg, const struct conf_key_info *k)
{
	const int *long_form = arg;
	if (!*long_form) {
		printf("%s\n", k->path);
		return;
	}
	printf("%s\t%s\t%s\t%s\t%s", k->path, k->type, k->def ? k->def : "none", k->required ? "yes" : "no",
	       k->reload == CONF_RELOAD_HOT ? "hot" : "general");
	if (k->values)
		printf("\t%s", k->values);
	putchar('\n');
}

int main(int argc, char **argv)
{
	int long_form = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-l")) {
			long_form = 1;
		} else {
			fprintf(stderr, "usage: conf-keys [-l]\n");
			return 2;
		}
	}
	conf_schema_walk(print_key, &long_form);
	return fflush(stdout) == 0 ? 0 : 1;
}
