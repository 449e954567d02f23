/* main: process lifecycle only: command line -> config -> instance -> loop
 * -> exit status. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/dns.h"
#include "base/err.h"
#include "base/log.h"
#include "base/loop.h"
#include "base/sock.h"
#include "cli.h"
#include "codec/conf.h"
#include "codec/keygen.h"
#include "envvars.h"
#include "plane/relay.h"
#include "role/admin_client.h"
#include "role/conf_check.h"
#include "role/runtime.h"
#include "role/reload.h"
#include "role/watch.h"

struct instance {
	struct loop *loop;
	struct reload *reload;
	struct watch *watch;
	const char *config;
	int exit_code;
};

static void on_fatal(void *arg, int err)
{
	struct instance *in = arg;
	in->exit_code = CLI_EXIT_FAIL;
	loop_stop(in->loop);
}

/* After a reload: the config (a swapped symlink may point elsewhere now)
 * and the key files the running config names are watched. */
static void watch_files(struct instance *in)
{
	const char *paths[4];
	size_t n = reload_key_paths(in->reload, paths, 4);
	if (!in->watch)
		return;
	watch_add(in->watch, in->config);
	for (size_t i = 0; i < n; i++)
		watch_add(in->watch, paths[i]);
}

static void on_file_change(void *arg)
{
	struct instance *in = arg;
	reload_request(in->reload, "file change", false);
	watch_files(in);
}

static void on_signal(struct loop *loop, int signo, void *data)
{
	struct instance *in = data;
	if (signo == SIGHUP) {
		reload_request(in->reload, "SIGHUP", true);
		watch_files(in);
		return;
	}
	log_info("%s received; shutting down", signo == SIGINT ? "SIGINT" : "SIGTERM");
	loop_stop(loop);
}

static void print_warning(void *arg, const char *line)
{
	fprintf(stderr, "%s: warning: %s\n", (const char *)arg, line);
}

static void print_error(void *arg, const char *line)
{
	fprintf(stderr, "%s\n", line);
}

static void print_services(const char *role, const struct conf_service *svcs, size_t n, bool server)
{
	printf("%s: %zu service%s\n", role, n, n == 1 ? "" : "s");
	for (size_t i = 0; i < n; i++) {
		const struct conf_service *s = &svcs[i];
		printf("  %s (%s): %s %s\n", s->name, conf_svc_type_name(s->type),
		       server ? "visitors at" : "forwards to", server ? s->bind_addr : s->local_addr);
	}
}

static int cmd_check(const struct cli_opts *o)
{
	log_init_from_env();   /* a bad MOLERAT_LOG is warned about here too */
	struct conf_error err;
	struct conf *c = conf_load_file(o->config, &err);
	if (!c) {
		fprintf(stderr, "%s\n", err.msg);
		return CLI_EXIT_FAIL;
	}
	int rc = CLI_EXIT_OK;
	bool show_server = c->server && o->mode != CONF_MODE_CLIENT;
	bool show_client = c->client && o->mode != CONF_MODE_SERVER;
	if ((o->mode == CONF_MODE_SERVER && !c->server) || (o->mode == CONF_MODE_CLIENT && !c->client)) {
		conf_pick_mode(c, o->mode, &err);
		fprintf(stderr, "%s\n", err.msg);
		rc = CLI_EXIT_FAIL;
	}
	if (conf_check_errors(c, show_server && show_client ? CONF_MODE_AUTO : show_server ? CONF_MODE_SERVER : CONF_MODE_CLIENT,
				   print_error, NULL)) {
		conf_free(c);
		return CLI_EXIT_FAIL;
	}
	if (show_server) {
		printf("%s: valid; server on %s, transport %s\n", o->config, c->server->bind_addr,
		       conf_xport_type_name(c->server->transport.type));
		print_services("server", c->server->services, c->server->n_services, true);
		conf_check_warnings(c, CONF_MODE_SERVER, print_warning, (void *)o->config);
	}
	if (show_client) {
		printf("%s: valid; client of %s, transport %s\n", o->config, c->client->remote_addr,
		       conf_xport_type_name(c->client->transport.type));
		print_services("client", c->client->services, c->client->n_services, false);
		conf_check_warnings(c, CONF_MODE_CLIENT, print_warning, (void *)o->config);
	}
	conf_free(c);
	return rc;
}

/* molerat status: the admin endpoint of each section asked for (both
 * when the file has two admin tables and no flag). */
static int cmd_status(const struct cli_opts *o)
{
	struct conf_error err;
	struct conf *c = conf_load_file(o->config, &err);
	if (!c) {
		fprintf(stderr, "%s\n", err.msg);
		return ADMIN_STATUS_UNREACHABLE;
	}
	const struct conf_admin *sa = c->server && c->server->admin.present && o->mode != CONF_MODE_CLIENT
				      ? &c->server->admin : NULL;
	const struct conf_admin *ca = c->client && c->client->admin.present && o->mode != CONF_MODE_SERVER
				      ? &c->client->admin : NULL;
	int rc = ADMIN_STATUS_UP;
	if (!sa && !ca) {
		const char *sec = o->mode == CONF_MODE_CLIENT || (!c->server && c->client) ? "client" : "server";
		fprintf(stderr, "molerat status: %s has no [%s.admin] table, so there is no endpoint to ask; add one, "
				"e.g. [%s.admin] with bind_addr = \"127.0.0.1:9090\", and restart or reload\n",
			o->config, sec, sec);
		rc = ADMIN_STATUS_UNREACHABLE;
	}
	if (sa) {
		int r = admin_status("server", sa, o->json, stdout, stderr);
		rc = r > rc ? r : rc;
	}
	if (ca) {
		int r = admin_status("client", ca, o->json, stdout, stderr);
		rc = r > rc ? r : rc;
	}
	conf_free(c);
	return rc;
}

static int cmd_genkey(const struct cli_opts *o)
{
	const char *curve = o->curve ? o->curve : "x25519";
	if (!keygen_curve_known(curve)) {
		fprintf(stderr, "molerat: --genkey: unknown curve '%s'; use x25519\n", curve);
		return CLI_EXIT_USAGE;
	}
	if (!keygen_curve_supported(curve)) {
		fprintf(stderr, "molerat: --genkey: curve %s is not supported by the Noise transport; use x25519\n", curve);
		return CLI_EXIT_FAIL;
	}
	if (keygen_print_pair(stdout) < 0) {
		fprintf(stderr, "molerat: --genkey: cannot make a key pair\n");
		return CLI_EXIT_FAIL;
	}
	return CLI_EXIT_OK;
}

static void log_conf_warning(void *arg, const char *line)
{
	log_warn("%s: %s", (const char *)arg, line);
}

static int cmd_run(const struct cli_opts *o)
{
	long nofile = sock_raise_nofile();
	log_init_from_env();
	struct envvars ev;
	envvars_read(&ev);   /* the environment, read once here and passed down */
	signal(SIGPIPE, SIG_IGN);

	struct conf_error err;
	struct conf *c = conf_load_file(o->config, &err);
	if (!c) {
		fprintf(stderr, "molerat: invalid configuration: %s\n", err.msg);
		return CLI_EXIT_FAIL;
	}
	enum conf_mode mode = conf_pick_mode(c, o->mode, &err);
	if (mode == CONF_MODE_AUTO) {
		fprintf(stderr, "molerat: %s\n", err.msg);
		conf_free(c);
		return CLI_EXIT_FAIL;
	}
	if (conf_check_errors(c, mode, print_error, NULL)) {
		conf_free(c);
		return CLI_EXIT_FAIL;
	}
	conf_check_warnings(c, mode, log_conf_warning, (void *)o->config);
	log_debug("file descriptor limit: %ld", nofile);

	struct instance in = { .config = o->config };
	struct relay_set relays = { 0 };
	struct dns *dns = NULL;
	struct pipe_pool *pipes = NULL;
	int r = loop_new(&in.loop);
	if (r == 0)
		r = dns_new(in.loop, &dns);
	if (r == 0) {
		pipes = pipe_pool_new(64);
		if (!pipes)
			r = -ENOMEM;
	}
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	if (r == 0)
		r = loop_signals(in.loop, sigs, 3, on_signal, &in);
	struct runtime rt = {
		.loop = in.loop,
		.dns = dns,
		.pipes = pipes,
		.relays = &relays,
		.relay_mode = ev.relay_mode,
		.udp_no_gso = ev.udp_no_gso,
		.max_handshakes = ev.max_handshakes,
		.udp_idle_ms = ev.udp_idle_ms,
		.fatal = on_fatal,
		.arg = &in,
	};
	struct reload_opts ro = { .path = o->config, .flag = o->mode, .grace_ms = ev.reload_grace_ms };
	if (r == 0) {
		r = reload_new(&rt, &ro, c, mode, &in.reload);   /* takes c */
		c = NULL;
	}
	if (r == 0 && watch_new(in.loop, &o->config, 1, 0, on_file_change, &in, &in.watch) < 0)
		log_warn("the configuration file is not watched; SIGHUP reloads it");
	if (r == 0)
		watch_files(&in);
	if (r < 0) {
		in.exit_code = CLI_EXIT_FAIL;
	} else {
		r = loop_run(in.loop);
		if (r < 0) {
			log_error("event loop failed: %s", mr_strerror(r));
			in.exit_code = CLI_EXIT_FAIL;
		}
	}
	watch_free(in.watch);
	reload_free(in.reload);
	relay_set_close_all(&relays);
	dns_free(dns);
	loop_free(in.loop);   /* runs the deferred frees */
	pipe_pool_free(pipes);
	conf_free(c);
	return in.exit_code;
}

int main(int argc, char **argv)
{
	struct cli_opts o;
	int r = cli_parse(argc, argv, &o, stderr);
	if (r != 0)
		return r;
	switch (o.cmd) {
	case CLI_HELP:
		cli_usage(stdout);
		return CLI_EXIT_OK;
	case CLI_VERSION:
		puts("molerat " MOLERAT_VERSION);
		return CLI_EXIT_OK;
	case CLI_VERSION_LONG:
		puts("molerat " MOLERAT_VERSION "\nrathole-compatible: protocol 1 (rathole 0.5)\ntransports: tcp\n");
		return CLI_EXIT_OK;
	case CLI_GENKEY:
		return cmd_genkey(&o);
	case CLI_CHECK:
		return cmd_check(&o);
	case CLI_STATUS:
		return cmd_status(&o);
	case CLI_RUN:
	default:
		return cmd_run(&o);
	}
}
