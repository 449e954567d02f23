#include "cli.h"

#include <string.h>

void cli_usage(FILE *out)
{
	fputs("molerat " MOLERAT_VERSION ": a NAT-traversal reverse proxy, a drop-in replacement for rathole 0.5\n"
	      "\n"
	      "Usage:\n"
	      "  molerat [--server|--client] CONFIG        run as the file says (or as the flag says)\n"
	      "  molerat check [--server|--client] CONFIG  validate CONFIG as rathole would, print its services\n"
	      "  molerat status [--json] [--server|--client] CONFIG\n"
	      "                                            ask the running instance's admin endpoint\n"
	      "                                            ([server.admin] / [client.admin]) how its services are\n"
	      "  molerat --genkey [x25519]                 print a new Noise key pair\n"
	      "  molerat --help | -V | --version\n"
	      "\n"
	      "Options:\n"
	      "  -s, --server        run the [server] section (needed when CONFIG has both)\n"
	      "  -c, --client        run the [client] section\n"
	      "      --genkey [CURVE] print a key pair (CURVE: x25519, the default)\n"
	      "      --json          status: print the status document (JSON) as it came\n"
	      "  -h, --help          this text\n"
	      "  -V, --version       the version\n"
	      "\n"
	      "Environment:\n"
	      "  MOLERAT_LOG     log level: error, warn, info (default), debug, trace, off\n"
	      "  RUST_LOG        read when MOLERAT_LOG is unset (rathole's EnvFilter: LEVEL or rathole=LEVEL)\n"
	      "  MOLERAT_RELAY   copy: force the buffered relay instead of splice(2)\n"
	      "  MOLERAT_UDP_GSO 0: send UDP datagrams one by one instead of in GSO batches\n"
	      "  MOLERAT_RELOAD_GRACE  seconds a reloaded-away service's connections run on (300)\n"
	      "  MOLERAT_TEST_MAX_HANDSHAKES, MOLERAT_TEST_UDP_IDLE_MS\n"
	      "                  for tests only: lower the server's concurrent handshake limit (1024)\n"
	      "                  and the UDP mapping idle timeout (60000 ms)\n"
	      "\n"
	      "Signals: SIGINT and SIGTERM stop the process (exit 0); SIGHUP reloads CONFIG\n"
	      "(which is also watched: a change is applied by itself).\n"
	      "\n"
	      "Exit status:\n"
	      "  0  success (or stopped by SIGINT/SIGTERM)\n"
	      "  1  invalid configuration, instance start failure (e.g. bind_addr in use), --genkey failure\n"
	      "  2  bad command line\n"
	      "  status: 0 every service up, 1 some service not up, 2 the endpoint cannot be\n"
	      "  reached (or refused the token), or CONFIG has no admin table\n", out);
}

int cli_parse(int argc, char **argv, struct cli_opts *o, FILE *err)
{
	memset(o, 0, sizeof(*o));
	o->cmd = CLI_RUN;
	o->mode = CONF_MODE_AUTO;
	bool genkey = false, check = false, status = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-s") || !strcmp(a, "--server") || !strcmp(a, "-c") || !strcmp(a, "--client")) {
			enum conf_mode m = (a[1] == 's' || !strcmp(a, "--server")) ? CONF_MODE_SERVER : CONF_MODE_CLIENT;
			if (o->mode != CONF_MODE_AUTO && o->mode != m) {
				fprintf(err, "molerat: --server and --client cannot be used together\n");
				return CLI_EXIT_USAGE;
			}
			o->mode = m;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			o->cmd = CLI_HELP;
			return 0;
		} else if (!strcmp(a, "-V")) {
			o->cmd = CLI_VERSION;
			return 0;
		} else if (!strcmp(a, "--version")) {
			o->cmd = CLI_VERSION_LONG;
			return 0;
		} else if (!strcmp(a, "--genkey")) {
			genkey = true;
			/* the value is optional: the next argument, unless it is an option */
			if (i + 1 < argc && argv[i + 1][0] != '-')
				o->curve = argv[++i];
		} else if (!strncmp(a, "--genkey=", 9)) {
			genkey = true;
			o->curve = a + 9;
		} else if (!strcmp(a, "check") && !check && !status && !o->config && !genkey) {
			check = true;
		} else if (!strcmp(a, "status") && !check && !status && !o->config && !genkey) {
			status = true;
		} else if (!strcmp(a, "--json")) {
			o->json = true;
		} else if (a[0] == '-' && a[1]) {
			fprintf(err, "molerat: unknown option '%s'; see molerat --help\n", a);
			return CLI_EXIT_USAGE;
		} else if (!o->config) {
			o->config = a;
		} else {
			fprintf(err, "molerat: unexpected argument '%s'; see molerat --help\n", a);
			return CLI_EXIT_USAGE;
		}
	}
	if (o->json && !status) {
		fprintf(err, "molerat: --json goes with status only; see molerat --help\n");
		return CLI_EXIT_USAGE;
	}
	if (genkey) {
		if (o->config || check || status) {
			fprintf(err, "molerat: --genkey cannot be combined with a config file\n");
			return CLI_EXIT_USAGE;
		}
		o->cmd = CLI_GENKEY;
		return 0;
	}
	if (!o->config) {
		fprintf(err, "molerat: a config file is required; usage: molerat [--server|--client] CONFIG (see --help)\n");
		return CLI_EXIT_USAGE;
	}
	o->cmd = check ? CLI_CHECK : status ? CLI_STATUS : CLI_RUN;
	return 0;
}
