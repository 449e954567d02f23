/* cli: the command line (rathole-compatible, protocol.md#p-cli, plus `check`).
 * Pure parsing: no I/O besides writing usage errors to the given stream. */
#ifndef MOLERAT_CLI_H
#define MOLERAT_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "codec/conf.h"

enum cli_cmd {
	CLI_RUN = 0,     /* molerat [--server|--client] CONFIG */
	CLI_CHECK,       /* molerat check [--server|--client] CONFIG */
	CLI_STATUS,      /* molerat status [--json] [--server|--client] CONFIG */
	CLI_GENKEY,      /* molerat --genkey [CURVE] */
	CLI_HELP,        /* -h, --help */
	CLI_VERSION,     /* -V (short) */
	CLI_VERSION_LONG,/* --version */
};

struct cli_opts {
	enum cli_cmd cmd;
	enum conf_mode mode;     /* CONF_MODE_AUTO unless --server / --client */
	const char *config;      /* borrowed from argv */
	const char *curve;       /* --genkey value or NULL */
	bool json;               /* status --json */
};

/* Exit codes, as documented in --help and the README. */
enum {
	CLI_EXIT_OK = 0,
	CLI_EXIT_FAIL = 1,    /* invalid config, instance start failure, --genkey failure */
	CLI_EXIT_USAGE = 2,   /* bad command line */
};

/* Parses argv. Returns 0, or CLI_EXIT_USAGE after writing one line to err. */
int cli_parse(int argc, char **argv, struct cli_opts *o, FILE *err);
void cli_usage(FILE *out);

#endif
