/* reload: see reload.h. The one module that drives both roles (the layering
 * check lets it include server.h and client.h). */
#include "role/reload.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "base/log.h"
#include "codec/conf_diff.h"
#include "role/admin.h"
#include "role/client.h"
#include "role/conf_check.h"
#include "role/grace.h"
#include "role/server.h"

enum { MAX_FILE_BYTES = 16 << 20, MAX_KEY_FILES = 2 };

enum rl_state {
	RL_STARTING = 0, /* an instance was started; the server has not said it listens */
	RL_RUNNING,      /* the instance is up */
	RL_ROLLBACK,     /* the new instance failed to start: going back (from the loop) */
};

/* The bytes of one file (a config or a key file); NULL data: unreadable. */
struct blob {
	char *data;
	size_t len;
	int err;        /* 0, or why it could not be read */
};

struct reload {
	struct runtime rt;          /* main's, with fatal/started/retire ours */
	void (*fatal)(void *arg, int err);   /* main's */
	void *fatal_arg;
	char *path;
	enum conf_mode flag;
	enum rl_state state;
	struct conf *cur;           /* the running config (owned) */
	enum conf_mode mode;        /* what the instance runs as */
	struct server *srv;         /* one of the two */
	struct client *cli;
	struct conf *prev;          /* a general restart's way back (owned), until the new one is up */
	enum conf_mode prev_mode;
	struct timer act;           /* runs the rollback from the loop */
	int start_err;
	bool pending;               /* a reload asked for while RL_STARTING */
	bool pending_explicit;
	const char *pending_trigger;
	struct blob last;           /* the config bytes of the last attempt */
	char *key_path[MAX_KEY_FILES];     /* the key files the running stack was built from */
	struct blob key[MAX_KEY_FILES];
	struct grace grace;
	/* the admin endpoint (role/admin.h): started and stopped with the
	 * instance; what it reports about the process outlives instances */
	struct admin *admin;
	struct role_counters stats;  /* runtime.stats of every instance */
	uint64_t reloads[2];         /* [RELOAD_APPLIED], [RELOAD_REJECTED] */
	int64_t started;             /* unix s */
	struct svc_status *snap;     /* a scrape's view, reused */
	size_t snap_cap;
};

/* ---------------------------------------------------------------- files */

static void blob_free(struct blob *b)
{
	if (b->data) {
		explicit_bzero(b->data, b->len);   /* tokens, keys */
		free(b->data);
	}
	memset(b, 0, sizeof(*b));
}

static void blob_read(const char *path, struct blob *b)
{
	memset(b, 0, sizeof(*b));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		b->err = -errno;
		if (fd >= 0)
			close(fd);
		return;
	}
	if (st.st_size > MAX_FILE_BYTES) {
		b->err = -EFBIG;
		close(fd);
		return;
	}
	size_t cap = (size_t)st.st_size + 1, len = 0;
	char *p = malloc(cap);
	while (p) {
		if (len == cap - 1) {   /* grew since fstat */
			char *q = cap > MAX_FILE_BYTES ? NULL : realloc(p, cap * 2);
			if (!q) {
				explicit_bzero(p, len);
				free(p);
				p = NULL;
				break;
			}
			p = q;
			cap *= 2;
		}
		ssize_t n = read(fd, p + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			b->err = -errno;
			explicit_bzero(p, len);
			free(p);
			close(fd);
			return;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (!p) {
		b->err = -ENOMEM;
		return;
	}
	p[len] = '\0';
	b->data = p;
	b->len = len;
}

static bool blob_equal(const struct blob *a, const struct blob *b)
{
	if (!a->data || !b->data)
		return !a->data && !b->data && a->err == b->err;
	return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

/* The files the running role's transport reads at start. */
static size_t conf_key_files(const struct conf *c, enum conf_mode mode, const char **out)
{
	const struct conf_transport *t =
		mode == CONF_MODE_SERVER ? &c->server->transport : &c->client->transport;
	size_t n = 0;
	if (!t->tls.present)
		return 0;
	if (t->tls.pkcs12)
		out[n++] = t->tls.pkcs12;
	if (t->tls.trusted_root)
		out[n++] = t->tls.trusted_root;
	return n;
}

static void keys_forget(struct reload *rl)
{
	for (size_t i = 0; i < MAX_KEY_FILES; i++) {
		free(rl->key_path[i]);
		rl->key_path[i] = NULL;
		blob_free(&rl->key[i]);
	}
}

/* Records the key files the instance's stack was just built from. */
static void keys_snapshot(struct reload *rl)
{
	keys_forget(rl);
	const char *paths[MAX_KEY_FILES];
	size_t n = conf_key_files(rl->cur, rl->mode, paths);
	for (size_t i = 0; i < n; i++) {
		rl->key_path[i] = strdup(paths[i]);
		blob_read(paths[i], &rl->key[i]);
	}
}

/* Whether a key file of the running stack has other bytes now. */
static bool keys_changed(const struct reload *rl)
{
	bool changed = false;
	for (size_t i = 0; i < MAX_KEY_FILES && !changed; i++) {
		if (!rl->key_path[i])
			continue;
		struct blob now;
		blob_read(rl->key_path[i], &now);
		changed = !blob_equal(&now, &rl->key[i]);
		blob_free(&now);
	}
	return changed;
}

size_t reload_key_paths(const struct reload *rl, const char **paths, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < MAX_KEY_FILES && n < max; i++)
		if (rl->key_path[i])
			paths[n++] = rl->key_path[i];
	return n;
}

/* ---------------------------------------------------------------- the instance */

static const char *mode_name(enum conf_mode m)
{
	return m == CONF_MODE_SERVER ? "server" : "client";
}

static void on_started(void *arg);

/* The admin endpoint's snapshot (role/admin.h): the running instance's
 * services, the counters kept here. */
static void on_snapshot(void *arg, struct status *st)
{
	struct reload *rl = arg;
	size_t n = rl->srv ? server_n_services(rl->srv) : rl->cli ? client_n_services(rl->cli) : 0;
	if (n > rl->snap_cap) {
		struct svc_status *p = realloc(rl->snap, n * sizeof(*p));
		if (p) {
			rl->snap = p;
			rl->snap_cap = n;
		}
	}
	if (n > rl->snap_cap)
		n = rl->snap_cap;   /* out of memory: fewer services */
	const struct conf_transport *t =
		rl->mode == CONF_MODE_SERVER ? &rl->cur->server->transport : &rl->cur->client->transport;
	st->role = mode_name(rl->mode);
	st->version = MOLERAT_VERSION;
	st->transport = conf_xport_type_name(t->type);
	st->started = rl->started;
	st->svcs = rl->snap;
	st->n_svcs = rl->srv ? server_status(rl->srv, rl->snap, n) : rl->cli ? client_status(rl->cli, rl->snap, n) : 0;
	st->counters = &rl->stats;
	st->reloads[RELOAD_APPLIED] = rl->reloads[RELOAD_APPLIED];
	st->reloads[RELOAD_REJECTED] = rl->reloads[RELOAD_REJECTED];
}

/* Starts the admin endpoint of the running config, if it has one. */
static int admin_start(struct reload *rl)
{
	const struct conf_admin *ac = rl->mode == CONF_MODE_SERVER ? &rl->cur->server->admin : &rl->cur->client->admin;
	if (!ac->present)
		return 0;
	struct admin_cfg cfg = {
		.loop = rl->rt.loop,
		.bind_addr = ac->bind_addr,
		.token = ac->token,
		.token_len = ac->token_len,
		.src = { .snapshot = on_snapshot, .arg = rl },
	};
	return admin_new(&cfg, &rl->admin);
}

static void instance_stop(struct reload *rl)
{
	admin_free(rl->admin);
	rl->admin = NULL;
	server_free(rl->srv);
	client_free(rl->cli);
	rl->srv = NULL;
	rl->cli = NULL;
}

static int instance_start(struct reload *rl)
{
	int r;
	rl->state = RL_STARTING;
	if (rl->mode == CONF_MODE_SERVER)
		r = server_new(&rl->rt, rl->cur->server, &rl->srv);
	else
		r = client_new(&rl->rt, rl->cur->client, &rl->cli);
	if (r == 0)
		r = admin_start(rl);
	if (r < 0) {
		instance_stop(rl);
		return r;
	}
	keys_snapshot(rl);
	if (rl->cli)
		on_started(rl);   /* up at once: its server may come later */
	return 0;
}

static void run_pending(struct reload *rl)
{
	if (rl->state != RL_RUNNING || !rl->pending)
		return;
	rl->pending = false;
	reload_request(rl, rl->pending_trigger, rl->pending_explicit);
}

static void on_started(void *arg)
{
	struct reload *rl = arg;
	if (rl->state != RL_STARTING)
		return;
	rl->state = RL_RUNNING;
	if (rl->prev) {
		conf_free(rl->prev);
		rl->prev = NULL;
	}
	run_pending(rl);
}

/* Back to the previous config after a general restart failed, from the
 * loop (the failing server may be inside its own callback). */
static void on_rollback(struct loop *loop, struct timer *t)
{
	struct reload *rl = t->data;
	instance_stop(rl);
	conf_free(rl->cur);
	rl->cur = rl->prev;
	rl->mode = rl->prev_mode;
	rl->prev = NULL;
	log_error("reload rejected: the new configuration cannot start (%s); running the previous one again",
		  mr_strerror(rl->start_err));
	rl->reloads[RELOAD_APPLIED]--;
	rl->reloads[RELOAD_REJECTED]++;
	int r = instance_start(rl);
	if (r < 0) {
		log_error("cannot start the %s again: %s", mode_name(rl->mode), mr_strerror(r));
		rl->fatal(rl->fatal_arg, r);
		return;
	}
	run_pending(rl);
}

static void on_fatal(void *arg, int err)
{
	struct reload *rl = arg;
	if (rl->state == RL_STARTING && rl->prev) {
		rl->state = RL_ROLLBACK;
		rl->start_err = err;
		loop_timer_start(rl->rt.loop, &rl->act, 0);
		return;
	}
	if (rl->state != RL_ROLLBACK)
		rl->fatal(rl->fatal_arg, err);
}

static void on_retire(void *arg, struct relay_counters *c, const char *label)
{
	struct reload *rl = arg;
	grace_retire(&rl->grace, c, label);
}

/* ---------------------------------------------------------------- one reload */

/* The first error line of a validation (and how many there were). */
struct first_error {
	char line[400];
	size_t n;
};

static void keep_first_error(void *arg, const char *line)
{
	struct first_error *fe = arg;
	if (fe->n++ == 0)
		snprintf(fe->line, sizeof(fe->line), "%s", line);
}

static void log_conf_warning(void *arg, const char *line)
{
	log_warn("%s: %s", (const char *)arg, line);
}

/* Applies a services-only diff to the instance, then points it at c. */
static int apply_services(struct reload *rl, const struct conf_diff *d, const struct conf *c)
{
	int r = 0;
	if (rl->mode == CONF_MODE_SERVER) {
		for (size_t i = 0; i < d->n_server_deleted; i++)
			server_remove_service(rl->srv, d->server_deleted[i]);
		for (size_t i = 0; r == 0 && i < d->n_server_added; i++)
			r = server_add_service(rl->srv, d->server_added[i]);
		if (r == 0)
			server_rebind(rl->srv, c->server);
	} else {
		for (size_t i = 0; i < d->n_client_deleted; i++)
			client_remove_service(rl->cli, d->client_deleted[i]);
		for (size_t i = 0; r == 0 && i < d->n_client_added; i++)
			r = client_add_service(rl->cli, d->client_added[i]);
		if (r == 0)
			client_rebind(rl->cli, c->client);
	}
	return r;
}

/* A general restart: stop the instance, start one from c; the previous
 * config stays until the new instance is up. Returns 0, or an error after
 * the previous config runs again. */
static int apply_general(struct reload *rl, struct conf *c, enum conf_mode mode)
{
	instance_stop(rl);
	rl->prev = rl->cur;
	rl->prev_mode = rl->mode;
	rl->cur = c;
	rl->mode = mode;
	int r = instance_start(rl);
	if (r == 0)
		return 0;
	rl->state = RL_ROLLBACK;
	rl->start_err = r;
	on_rollback(rl->rt.loop, &rl->act);
	return r;
}

static int renew_stack(struct reload *rl)
{
	int r = rl->srv ? server_renew_stack(rl->srv) : client_renew_stack(rl->cli);
	if (r == 0)
		keys_snapshot(rl);
	return r;
}

void reload_request(struct reload *rl, const char *trigger, bool explicit)
{
	if (rl->state != RL_RUNNING) {
		rl->pending = true;
		rl->pending_trigger = trigger;
		rl->pending_explicit |= explicit;
		return;
	}
	rl->pending_explicit = false;
	struct blob now;
	blob_read(rl->path, &now);
	bool keys = keys_changed(rl);
	if (!explicit && !keys && blob_equal(&now, &rl->last)) {
		blob_free(&now);
		log_debug("reload (%s): %s unchanged", trigger, rl->path);
		return;
	}
	blob_free(&rl->last);
	rl->last = now;
	if (!now.data) {
		log_error("reload (%s) rejected: cannot read %s: %s; the running configuration stays",
			  trigger, rl->path, mr_strerror(now.err));
		rl->reloads[RELOAD_REJECTED]++;
		return;
	}

	struct conf_error err;
	struct conf *c = conf_load_buffer(rl->path, now.data, now.len, &err);
	if (!c) {
		log_error("reload (%s) rejected: %s; the running configuration stays", trigger, err.msg);
		rl->reloads[RELOAD_REJECTED]++;
		return;
	}
	struct conf_diff d;
	int r = conf_diff(rl->cur, c, &d);
	enum conf_mode mode = rl->mode;
	if (r == 0 && d.change == CONF_GENERAL) {
		mode = conf_pick_mode(c, rl->flag, &err);
		if (mode == CONF_MODE_AUTO) {
			log_error("reload (%s) rejected: %s; the running configuration stays", trigger, err.msg);
			rl->reloads[RELOAD_REJECTED]++;
			conf_diff_free(&d);
			conf_free(c);
			return;
		}
	}
	struct first_error fe = { .n = 0 };
	if (r == 0 && d.change != CONF_SAME)
		conf_check_errors(c, mode, keep_first_error, &fe);
	if (r < 0 || fe.n) {
		if (r < 0)
			snprintf(fe.line, sizeof(fe.line), "%s", mr_strerror(r));
		log_error("reload (%s) rejected: %s%s; the running configuration stays", trigger, fe.line,
			  fe.n > 1 ? " (and more errors: see molerat check)" : "");
		rl->reloads[RELOAD_REJECTED]++;
		conf_diff_free(&d);
		conf_free(c);
		return;
	}

	char what[512];
	conf_diff_describe(&d, rl->cur, rl->mode, what, sizeof(what));
	if (d.change != CONF_SAME)
		conf_check_warnings(c, mode, log_conf_warning, rl->path);
	const char *tls = "";
	enum conf_change change = d.change;
	if (change == CONF_GENERAL) {
		log_info("reload (%s): %s; restarting the %s%s", trigger, what, mode_name(mode),
			 mode != rl->mode ? " (the mode changed)" : "");
		conf_diff_free(&d);
		rl->reloads[RELOAD_APPLIED]++;   /* a start failure counts as rejected too (on_rollback) */
		apply_general(rl, c, mode);
		return;
	}
	if (change == CONF_SERVICES) {
		r = apply_services(rl, &d, c);
		conf_diff_free(&d);
		if (r < 0) {
			/* the instance is half changed: a fresh one from c */
			log_error("reload (%s): %s failed (%s); restarting the %s", trigger, what,
				  mr_strerror(r), mode_name(mode));
			rl->reloads[RELOAD_APPLIED]++;
			apply_general(rl, c, mode);
			return;
		}
		conf_free(rl->cur);
		rl->cur = c;
	} else {
		conf_diff_free(&d);
		conf_free(c);
	}
	if (keys) {
		r = renew_stack(rl);
		tls = r == 0 ? "; TLS identity reloaded for new connections"
			     : "; the changed TLS file cannot be used: the previous identity stays";
	}
	if (change != CONF_SAME || keys)
		rl->reloads[RELOAD_APPLIED]++;
	if (explicit || change != CONF_SAME || keys)
		log_info("reload (%s): %s%s", trigger, what, tls);
}

/* ---------------------------------------------------------------- lifetime */

int reload_new(const struct runtime *rt, const struct reload_opts *o, struct conf *c,
	       enum conf_mode mode, struct reload **out)
{
	*out = NULL;
	struct reload *rl = calloc(1, sizeof(*rl));
	if (rl)
		rl->path = strdup(o->path);
	if (!rl || !rl->path) {
		free(rl);
		conf_free(c);
		return -ENOMEM;
	}
	rl->rt = *rt;
	rl->fatal = rt->fatal;
	rl->fatal_arg = rt->arg;
	rl->rt.fatal = on_fatal;
	rl->rt.started = on_started;
	rl->rt.retire = on_retire;
	rl->rt.arg = rl;
	rl->rt.stats = &rl->stats;
	rl->started = metrics_unix_now();
	rl->flag = o->flag;
	rl->cur = c;
	rl->mode = mode;
	loop_timer_init(&rl->act, on_rollback, rl);
	grace_init(&rl->grace, rt->loop, rt->relays, o->grace_ms);
	blob_read(rl->path, &rl->last);
	int r = instance_start(rl);
	if (r < 0) {
		log_error("cannot start the %s: %s", mode_name(mode), mr_strerror(r));
		reload_free(rl);
		return r;
	}
	*out = rl;
	return 0;
}

void reload_free(struct reload *rl)
{
	if (!rl)
		return;
	rl->grace.closing = true;
	instance_stop(rl);
	grace_fini(&rl->grace);
	loop_timer_stop(rl->rt.loop, &rl->act);
	conf_free(rl->cur);
	conf_free(rl->prev);
	blob_free(&rl->last);
	keys_forget(rl);
	free(rl->snap);
	free(rl->path);
	free(rl);
}
