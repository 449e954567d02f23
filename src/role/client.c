#include "role/client.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/backoff.h"
#include "base/err.h"
#include "base/list.h"
#include "base/log.h"
#include "base/sock.h"
#include "base/util.h"
#include "codec/proto.h"
#include "plane/udp.h"
#include "role/chan.h"
#include "xport/dial.h"
#include "xport/stack.h"

enum {
	CONNECT_TIMEOUT_MS = 10000,   /* per address tried */
	HANDSHAKE_MS = 10000,         /* connect + handshake + Ack (protocol.md#q5: rathole has none) */
	MAX_DATA_CHANNELS = 8192,     /* data channels connecting or pooled, per client */
};

enum cs_state {
	CS_WAIT_RETRY = 0,  /* sleeping before the next attempt */
	CS_DIALING,         /* resolving and connecting remote_addr */
	CS_HELLO,           /* transport handshake, then our Hello; waiting for the nonce */
	CS_AUTH,            /* Auth sent; waiting for the Ack */
	CS_READY,           /* established: reading commands */
	CS_STOPPED,         /* removed; waiting to be freed */
};

struct client;

/* One service's control channel. */
struct csvc {
	struct client *cl;
	const struct conf_service *cfg;  /* borrowed: name, token, local_addr, type, ... */
	uint8_t digest[PROTO_DIGEST_LEN];
	uint8_t key[PROTO_DIGEST_LEN];
	enum cs_state state;
	struct dial *dial;
	struct chan *chan;
	struct timer retry;      /* the backoff sleep */
	struct timer deadline;   /* handshake deadline, then the heartbeat timeout */
	struct backoff bo;
	uint64_t attempt_start;
	char server[ADDR_STRLEN];   /* the address this session connected to */
	struct relay_counters *counters;
	struct svc_stats *st;       /* control-plane counters (role/metrics.h) */
};

enum dc_state {
	DC_DIALING = 0,   /* connecting to the server */
	DC_WAIT_RETRY,    /* connect failed; backoff sleep */
	DC_HELLO,         /* transport handshake, Hello sent; waiting for the command */
	DC_LOCAL,         /* StartForwardTcp read; connecting local_addr */
};

/* One data channel until it is relaying (the relay owns it afterwards). */
struct dchan {
	struct list_link link;    /* in client's dchans */
	struct client *cl;
	enum dc_state state;
	char *label;              /* service name */
	char *local_addr;
	char *server;             /* "ip:port" of the session's server */
	enum conf_svc_type type;
	int nodelay;
	uint8_t key[PROTO_DIGEST_LEN];
	struct dial *dial;
	struct chan *chan;
	struct xport *x;          /* the data channel while local_addr connects */
	struct timer retry;
	struct backoff bo;
	struct relay_counters *counters;
	struct svc_stats *st;     /* the service's, shared */
	bool pooled;              /* counted in st->pooled (Hello sent, no command yet) */
};

/* A UDP forwarder on one data channel (owned by the client). */
struct cudp {
	struct list_link link;    /* in client's udps */
	struct client *cl;
	struct udp_client *u;
	char *label;
};

struct client {
	struct runtime env;
	const struct conf_client *cfg;   /* borrowed: remote_addr, ... */
	struct xport_stack stack;        /* from cfg->transport */
	struct list udps;                /* of struct cudp, newest first */
	uint64_t heartbeat_timeout_ms;
	struct csvc **svcs;
	size_t n_svcs;
	struct list dchans;        /* of struct dchan, newest first; n: open or opening */
	uint64_t last_warn;        /* rate limit of the data-channel cap warning */
	const char *dial_addr;     /* remote_addr, or the proxy's host:port */
	char dial_what[XPORT_STACK_HOST_MAX + 64]; /* "cannot connect to the server" or to the proxy */
};

static void cs_attempt(struct csvc *s);

/* ---------------------------------------------------------------- data channels */

/* The data channel leaves the pool (a command came, or it ends). */
static void dc_unpool(struct dchan *d)
{
	if (d->pooled)
		d->st->pooled--;
	d->pooled = false;
}

/* Counts a failure of a data channel not yet carrying a visitor. */
static void dc_failed(struct dchan *d, enum dc_fail_reason r)
{
	if (d->st)
		d->st->dc_failures[r]++;
}

static void dc_free(struct dchan *d)
{
	struct client *cl = d->cl;
	struct loop *loop = cl->env.loop;
	dc_unpool(d);
	svc_stats_unref(d->st);
	list_remove(&cl->dchans, &d->link);
	if (d->dial)
		dial_cancel(d->dial);
	if (d->chan)
		chan_close(d->chan);
	xport_close(d->x);
	loop_timer_stop(loop, &d->retry);
	relay_counters_unref(d->counters);
	free(d->label);
	free(d->local_addr);
	free(d->server);
	free(d);
}

static void dc_dial(struct dchan *d);

static void dc_on_local(void *arg, int fd, int err, const struct addr *peer)
{
	struct dchan *d = arg;
	d->dial = NULL;
	if (fd < 0) {
		log_error("service %s: cannot connect local_addr %s: %s; closing the visitor's connection",
			  d->label, d->local_addr, mr_strerror(err));
		dc_failed(d, DCF_LOCAL);
		svc_stats_error(d->st, "cannot connect local_addr %s: %s", d->local_addr, mr_strerror(err));
		dc_free(d);
		return;
	}
	struct xport *lx = xport_stack_plain(fd);
	struct xport *dx = d->x;
	d->x = NULL;
	if (!lx) {
		xport_close(dx);
		dc_free(d);
		return;
	}
	struct relay_cfg rc = {
		.loop = d->cl->env.loop,
		.pipes = d->cl->env.pipes,
		.mode = d->cl->env.relay_mode,
		.set = d->cl->env.relays,
		.counters = d->counters,
		.label = d->label,
		/* the local service was connected a moment ago */
		.idle_at_start = RELAY_SIDE_B,
		.half_close_ms = secs_to_ms(d->cl->cfg->half_close_timeout),
	};
	int r = relay_start(&rc, dx, lx);
	if (r < 0)
		log_warn("service %s: cannot start relay: %s", d->label, mr_strerror(r));
	dc_free(d);
}

static void cudp_free(struct cudp *u)
{
	struct client *cl = u->cl;
	list_remove(&cl->udps, &u->link);
	udp_client_free(u->u);
	free(u->label);
	free(u);
}

static void cudp_lost(void *arg, int err)
{
	struct cudp *u = arg;
	log_warn("service %s: UDP data channel ended: %s", u->label, mr_strerror(err));
	cudp_free(u);
}

/* StartForwardUdp: the data channel now carries the service's datagrams. */
static void dc_start_udp(struct dchan *d, struct xport *x)
{
	struct client *cl = d->cl;
	struct cudp *u = calloc(1, sizeof(*u));
	if (u)
		u->label = strdup(d->label);
	if (!u || !u->label) {
		free(u);
		xport_close(x);
		return;
	}
	struct udp_env ue = {
		.loop = cl->env.loop,
		.dns = cl->env.dns,
		.label = d->label,
		.counters = d->counters,
		.lost = cudp_lost,
		.arg = u,
		.idle_ms = cl->env.udp_idle_ms,
		.no_gso = cl->env.udp_no_gso,
	};
	u->cl = cl;
	int r = udp_client_new(&ue, d->local_addr, x, &u->u);
	if (r < 0) {
		log_error("service %s: cannot start UDP forwarding: %s", d->label, mr_strerror(r));
		free(u->label);
		free(u);
		return;
	}
	list_push_front(&cl->udps, &u->link);
	log_info("service %s: UDP forwarding to %s", d->label, d->local_addr);
}

static void dc_on_msg(struct chan *c, void *owner, const uint8_t *msg, size_t len)
{
	struct dchan *d = owner;
	enum proto_data_cmd cmd;
	dc_unpool(d);
	int r = proto_decode_data_cmd(msg, len, &cmd);
	if (r < 0) {
		log_error("service %s: invalid data channel command: %s", d->label, mr_strerror(r));
		dc_failed(d, DCF_PROTOCOL);
		dc_free(d);
		return;
	}
	if ((cmd == PROTO_DATA_START_TCP) != (d->type == CONF_SVC_TCP)) {
		log_error("service %s: the server asks to forward %s but the service is %s here; check `type` on both ends",
			  d->label, cmd == PROTO_DATA_START_TCP ? "TCP" : "UDP", conf_svc_type_name(d->type));
		dc_failed(d, DCF_PROTOCOL);
		svc_stats_error(d->st, "the server asks to forward %s but the service is %s here",
				cmd == PROTO_DATA_START_TCP ? "TCP" : "UDP", conf_svc_type_name(d->type));
		dc_free(d);
		return;
	}
	if (cmd == PROTO_DATA_START_UDP) {
		dc_start_udp(d, chan_detach(c));
		d->chan = NULL;
		dc_free(d);
		return;
	}
	d->x = chan_detach(c);
	d->chan = NULL;
	d->state = DC_LOCAL;
	int err = 0;
	d->dial = dial_start(d->cl->env.loop, d->cl->env.dns, d->local_addr, CONNECT_TIMEOUT_MS,
			     dc_on_local, d, &err);
	if (!d->dial) {
		log_error("service %s: cannot connect local_addr %s: %s", d->label, d->local_addr, mr_strerror(err));
		dc_failed(d, DCF_LOCAL);
		dc_free(d);
	}
}

static void dc_on_open(struct chan *c, void *owner)
{
	struct dchan *d = owner;
	uint8_t hello[PROTO_HELLO_LEN];
	proto_encode_hello(hello, PROTO_HELLO_DATA, d->key);
	chan_send(c, hello, sizeof(hello));
	chan_expect(c, PROTO_CMD_LEN);   /* no timeout: a pooled channel may wait for hours (protocol.md#q25) */
	if (!d->pooled) {
		d->pooled = true;
		d->st->pooled++;
	}
}

static void dc_on_error(struct chan *c, void *owner, int err)
{
	struct dchan *d = owner;
	if (err == MR_EEOF)
		log_debug("service %s: data channel closed by the server before use", d->label);
	else {
		log_warn("service %s: data channel: %s", d->label, chan_strerror(c, err));
		dc_failed(d, DCF_CLOSED);
	}
	dc_free(d);
}

static const struct chan_cbs dc_cbs = {
	.on_open = dc_on_open,
	.on_msg = dc_on_msg,
	.on_error = dc_on_error,
};

static void dc_retry(struct loop *loop, struct timer *t)
{
	dc_dial(t->data);
}

static void dc_on_server(void *arg, int fd, int err, const struct addr *peer)
{
	struct dchan *d = arg;
	struct loop *loop = d->cl->env.loop;
	d->dial = NULL;
	if (fd < 0) {
		uint64_t delay;
		if (backoff_next(&d->bo, loop_now(loop), &delay) != 0) {
			log_warn("service %s: gave up opening a data channel to %s: %s", d->label, d->server,
				 mr_strerror(err));
			dc_failed(d, DCF_CONNECT);
			svc_stats_error(d->st, "cannot open a data channel to %s: %s", d->server, mr_strerror(err));
			dc_free(d);
			return;
		}
		log_debug("service %s: data channel connect failed: %s; retrying in %llu ms", d->label,
			  mr_strerror(err), (unsigned long long)delay);
		d->state = DC_WAIT_RETRY;
		loop_timer_start(loop, &d->retry, delay);
		return;
	}
	struct xport *x = xport_stack_outbound(&d->cl->stack, fd, d->nodelay);
	d->chan = x ? chan_new(loop, x, &dc_cbs, d) : NULL;
	if (!d->chan) {
		dc_free(d);
		return;
	}
	d->state = DC_HELLO;
}

static void dc_dial(struct dchan *d)
{
	int err = 0;
	d->state = DC_DIALING;
	d->dial = dial_start(d->cl->env.loop, d->cl->env.dns, d->server, CONNECT_TIMEOUT_MS, dc_on_server, d, &err);
	if (!d->dial) {
		log_warn("service %s: cannot open a data channel: %s", d->label, mr_strerror(err));
		dc_failed(d, DCF_CONNECT);
		dc_free(d);
	}
}

static void dc_start(struct csvc *s)
{
	struct client *cl = s->cl;
	if (cl->dchans.n >= MAX_DATA_CHANNELS) {
		uint64_t now = loop_now(cl->env.loop);
		if (cl->last_warn && now - cl->last_warn < 1000)
			return;
		cl->last_warn = now;
		log_warn("service %s: %zu data channels already open or opening; ignoring CreateDataChannel",
			  s->cfg->name, cl->dchans.n);
		s->st->dc_failures[DCF_LIMIT]++;
		return;
	}
	struct dchan *d = calloc(1, sizeof(*d));
	if (!d)
		return;
	d->cl = cl;
	d->label = strdup(s->cfg->name);
	d->local_addr = strdup(s->cfg->local_addr);
	d->server = strdup(s->server);
	d->type = s->cfg->type;
	d->nodelay = s->cfg->nodelay;
	memcpy(d->key, s->key, PROTO_DIGEST_LEN);
	d->counters = relay_counters_ref(s->counters);
	d->st = svc_stats_ref(s->st);
	loop_timer_init(&d->retry, dc_retry, d);
	struct backoff_params bp = backoff_params_data_channel();
	backoff_init(&d->bo, &bp, loop_now(cl->env.loop), NULL, NULL);
	list_push_front(&cl->dchans, &d->link);
	if (!d->label || !d->local_addr || !d->server) {
		dc_free(d);
		return;
	}
	dc_dial(d);
}

/* ---------------------------------------------------------------- control channel */

static void cs_close_conn(struct csvc *s)
{
	if (s->dial)
		dial_cancel(s->dial);
	s->dial = NULL;
	if (s->chan)
		chan_close(s->chan);
	s->chan = NULL;
	loop_timer_stop(s->cl->env.loop, &s->deadline);
}

/* A failed attempt: close, then sleep for the next backoff interval (protocol.md#p-control-client
 * step 9). */
static void cs_fail_why(struct csvc *s, const char *what, const char *why)
{
	struct loop *loop = s->cl->env.loop;
	cs_close_conn(s);
	if (s->state == CS_READY)
		s->st->since = metrics_unix_now();
	else
		s->st->connects_failed++;
	s->st->peer[0] = '\0';
	svc_stats_error(s->st, "%s: %s", what, why);
	uint64_t now = loop_now(loop);
	if (now - s->attempt_start > BACKOFF_CTRL_RESET_MS)
		backoff_reset(&s->bo, now);
	uint64_t delay = 1000;
	backoff_next(&s->bo, now, &delay);
	log_error("service %s: %s: %s; retrying in %llu ms", s->cfg->name, what, why,
		  (unsigned long long)delay);
	s->state = CS_WAIT_RETRY;
	loop_timer_start(loop, &s->retry, delay);
}

static void cs_fail(struct csvc *s, const char *what, int err)
{
	cs_fail_why(s, what, mr_strerror(err));
}

static void cs_on_deadline(struct loop *loop, struct timer *t)
{
	struct csvc *s = t->data;
	if (s->state == CS_READY) {
		s->st->heartbeat_timeouts++;
		cs_fail(s, "control channel", MR_EHEARTBEAT);
	} else {   /* a proxy step still waiting says which proxy and what for */
		runtime_count_hs(&s->cl->env, HSF_TIMEOUT);
		char why[400];   /* the chan goes with the connection cs_fail closes */
		snprintf(why, sizeof(why), "%s",
			 s->chan ? chan_strerror(s->chan, MR_ETIMEDOUT_HS) : mr_strerror(MR_ETIMEDOUT_HS));
		cs_fail_why(s, "handshake with the server", why);
	}
}

static void cs_on_msg(struct chan *c, void *owner, const uint8_t *msg, size_t len)
{
	struct csvc *s = owner;
	struct client *cl = s->cl;
	struct loop *loop = cl->env.loop;
	int r;
	switch (s->state) {
	case CS_HELLO: {
		enum proto_hello_kind kind;
		uint8_t nonce[PROTO_DIGEST_LEN];
		r = proto_decode_hello(msg, len, &kind, nonce);
		if (r == 0 && kind != PROTO_HELLO_CONTROL)
			r = MR_EPROTO_UNEXPECTED;
		if (r < 0) {
			runtime_count_hs(&cl->env, HSF_PROTOCOL);
			cs_fail(s, "invalid Hello from the server", r);
			return;
		}
		proto_session_key(s->cfg->token, s->cfg->token_len, nonce, s->key);
		chan_send(c, s->key, PROTO_AUTH_LEN);
		s->state = CS_AUTH;
		chan_expect(c, PROTO_CMD_LEN);
		return;
	}
	case CS_AUTH: {
		enum proto_ack ack;
		r = proto_decode_ack(msg, len, &ack);
		if (r < 0) {
			runtime_count_hs(&cl->env, HSF_PROTOCOL);
			cs_fail(s, "invalid Ack from the server", r);
			return;
		}
		if (ack != PROTO_ACK_OK) {
			if (ack != PROTO_ACK_SERVICE_NOT_EXIST && cl->env.stats)
				cl->env.stats->auth_failures++;
			cs_fail(s, "authentication failed",
				ack == PROTO_ACK_SERVICE_NOT_EXIST ? MR_ESERVICE : MR_EAUTH);
			return;
		}
		s->state = CS_READY;
		s->st->connects_ok++;
		s->st->since = metrics_unix_now();
		s->st->last_heartbeat = 0;
		snprintf(s->st->peer, sizeof(s->st->peer), "%s", s->server);
		log_info("service %s: control channel established with %s", s->cfg->name, s->server);
		if (cl->heartbeat_timeout_ms)
			loop_timer_start(loop, &s->deadline, cl->heartbeat_timeout_ms);
		else
			loop_timer_stop(loop, &s->deadline);
		chan_expect(c, PROTO_CMD_LEN);
		return;
	}
	case CS_READY: {
		enum proto_ctrl_cmd cmd;
		r = proto_decode_ctrl_cmd(msg, len, &cmd);
		if (r < 0) {
			cs_fail(s, "invalid command from the server", r);
			return;
		}
		if (cl->heartbeat_timeout_ms)
			loop_timer_start(loop, &s->deadline, cl->heartbeat_timeout_ms);
		s->st->last_heartbeat = metrics_unix_now();
		if (cmd == PROTO_CMD_CREATE_DATA_CHANNEL)
			dc_start(s);
		else
			log_trace("service %s: heartbeat", s->cfg->name);
		chan_expect(c, PROTO_CMD_LEN);
		return;
	}
	default:
		return;
	}
}

static void cs_on_open(struct chan *c, void *owner)
{
	struct csvc *s = owner;
	uint8_t hello[PROTO_HELLO_LEN];
	proto_encode_hello(hello, PROTO_HELLO_CONTROL, s->digest);
	chan_send(c, hello, sizeof(hello));
	chan_expect(c, PROTO_HELLO_LEN);
}

static void cs_on_error(struct chan *c, void *owner, int err)
{
	struct csvc *s = owner;
	char why[400];  /* the chan goes with the connection cs_fail closes */
	snprintf(why, sizeof(why), "%s", chan_strerror(c, err));
	if (s->state != CS_READY)
		runtime_count_hs(&s->cl->env, HSF_TRANSPORT);
	cs_fail_why(s, s->state == CS_READY ? "control channel lost" : "handshake with the server", why);
}

static const struct chan_cbs cs_cbs = {
	.on_open = cs_on_open,
	.on_msg = cs_on_msg,
	.on_error = cs_on_error,
};

static void cs_on_dial(void *arg, int fd, int err, const struct addr *peer)
{
	struct csvc *s = arg;
	struct loop *loop = s->cl->env.loop;
	s->dial = NULL;
	if (fd < 0) {
		cs_fail(s, s->cl->dial_what, err);
		return;
	}
	addr_str(peer, s->server, sizeof(s->server));
	/* connecting is bounded per address by the dial; this bounds the
	 * handshake up to the Ack */
	loop_timer_start(loop, &s->deadline, HANDSHAKE_MS);
	struct xport *x = xport_stack_outbound(&s->cl->stack, fd, 1);
	s->chan = x ? chan_new(loop, x, &cs_cbs, s) : NULL;
	if (!s->chan) {
		cs_fail(s, "cannot set up the control channel", -ENOMEM);
		return;
	}
	s->state = CS_HELLO;
}

static void cs_attempt(struct csvc *s)
{
	struct client *cl = s->cl;
	struct loop *loop = cl->env.loop;
	int err = 0;
	s->attempt_start = loop_now(loop);
	s->state = CS_DIALING;
	s->dial = dial_start(loop, cl->env.dns, cl->dial_addr, CONNECT_TIMEOUT_MS, cs_on_dial, s, &err);
	if (!s->dial)
		cs_fail(s, cl->dial_what, err);
}

static void cs_on_retry(struct loop *loop, struct timer *t)
{
	cs_attempt(t->data);
}

static void csvc_free_mem(void *arg)
{
	struct csvc *s = arg;
	relay_counters_unref(s->counters);
	svc_stats_unref(s->st);
	free(s);
}

static void csvc_stop(struct csvc *s)
{
	struct loop *loop = s->cl->env.loop;
	cs_close_conn(s);
	loop_timer_stop(loop, &s->retry);
	if (s->cl->env.retire)
		s->cl->env.retire(s->cl->env.arg, s->counters, s->cfg->name);
	s->state = CS_STOPPED;
	loop_defer(loop, csvc_free_mem, s);
}

static struct csvc *csvc_new(struct client *cl, const struct conf_service *c)
{
	struct csvc *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->cl = cl;
	s->cfg = c;
	s->counters = relay_counters_new();
	s->st = svc_stats_new();
	if (!s->counters || !s->st) {
		csvc_free_mem(s);
		return NULL;
	}
	proto_service_digest(c->name, c->name_len, s->digest);
	loop_timer_init(&s->retry, cs_on_retry, s);
	loop_timer_init(&s->deadline, cs_on_deadline, s);
	struct backoff_params bp = backoff_params_control(c->retry_interval);
	backoff_init(&s->bo, &bp, loop_now(cl->env.loop), NULL, NULL);
	return s;
}

/* ---------------------------------------------------------------- client */

void client_remove_service(struct client *cl, const struct conf_service *c)
{
	for (size_t i = 0; i < cl->n_svcs; i++) {
		struct csvc *s = cl->svcs[i];
		if (s->cfg->name_len == c->name_len && memcmp(s->cfg->name, c->name, c->name_len) == 0) {
			log_info("service %s: stopped", s->cfg->name);
			csvc_stop(s);
			cl->svcs[i] = cl->svcs[--cl->n_svcs];
			return;
		}
	}
}

int client_add_service(struct client *cl, const struct conf_service *c)
{
	client_remove_service(cl, c);
	struct csvc *s = csvc_new(cl, c);
	if (!s)
		return -ENOMEM;
	struct csvc **nv = realloc(cl->svcs, (cl->n_svcs + 1) * sizeof(*nv));
	if (!nv) {
		csvc_free_mem(s);
		return -ENOMEM;
	}
	cl->svcs = nv;
	cl->svcs[cl->n_svcs++] = s;
	/* start from the loop, like every other attempt */
	s->state = CS_WAIT_RETRY;
	loop_timer_start(cl->env.loop, &s->retry, 0);
	return 0;
}

/* The client gives up a control channel after heartbeat_timeout without a
 * command; its sockets give up unacknowledged data as soon. */
static int client_stack_build(const struct client *cl, struct xport_stack *st)
{
	return xport_stack_init(st, &cl->cfg->transport, false, cl->cfg->remote_addr,
				tunnel_user_timeout_ms(cl->cfg->heartbeat_timeout, 0));
}

/* What the client dials (remote_addr or the proxy) and how a failed dial is
 * named; both point into cl->stack, so they are set again after a swap. */
static void client_set_dial(struct client *cl)
{
	const struct conf_client *cfg = cl->cfg;
	cl->dial_addr = xport_stack_dial_addr(&cl->stack, cfg->remote_addr);
	if (cl->stack.proxy)
		snprintf(cl->dial_what, sizeof(cl->dial_what), "cannot connect to the proxy %s://%s",
			 cfg->transport.tcp.proxy_url.scheme, cl->dial_addr);
	else
		snprintf(cl->dial_what, sizeof(cl->dial_what), "cannot connect to the server");
}

void client_rebind(struct client *cl, const struct conf_client *cfg)
{
	cl->cfg = cfg;
	for (size_t i = 0; i < cl->n_svcs; i++) {
		struct csvc *s = cl->svcs[i];
		const struct conf_service *c = conf_service_find(cfg->services, cfg->n_services,
								 s->cfg->name, s->cfg->name_len);
		if (c)
			s->cfg = c;
	}
	client_set_dial(cl);   /* dial_addr may point into the old config */
}

static int client_stack_init(struct client *cl)
{
	int r = client_stack_build(cl, &cl->stack);
	if (r == 0)
		client_set_dial(cl);
	return r;
}

int client_renew_stack(struct client *cl)
{
	struct xport_stack st;
	int r = xport_stack_swap(&cl->stack, &st, client_stack_build(cl, &st));
	client_set_dial(cl);
	return r;
}

int client_new(const struct runtime *rt, const struct conf_client *cfg, struct client **out)
{
	struct client *cl = calloc(1, sizeof(*cl));
	if (!cl)
		return -ENOMEM;
	cl->env = *rt;
	cl->cfg = cfg;
	cl->heartbeat_timeout_ms = secs_to_ms(cfg->heartbeat_timeout);
	int r = client_stack_init(cl);
	char host[256];
	uint16_t port;
	if (r == 0 && addr_split_host_port(cfg->remote_addr, host, sizeof(host), &port) < 0) {
		log_error("client.remote_addr \"%s\" is not host:port", cfg->remote_addr);
		r = MR_EFORMAT;
	}
	for (size_t i = 0; r == 0 && i < cfg->n_services; i++)
		r = client_add_service(cl, &cfg->services[i]);
	if (r < 0) {
		client_free(cl);
		return r;
	}
	log_info("client for %s%s%s started (%zu service%s)", cfg->remote_addr,
		 cl->stack.proxy ? " through the proxy " : "", cl->stack.proxy ? cl->dial_addr : "",
		 cfg->n_services, cfg->n_services == 1 ? "" : "s");
	*out = cl;
	return 0;
}

void client_free(struct client *cl)
{
	if (!cl)
		return;
	for (size_t i = 0; i < cl->n_svcs; i++)
		csvc_stop(cl->svcs[i]);
	while (list_first(&cl->dchans))
		dc_free(list_first_entry(&cl->dchans, struct dchan, link));
	while (list_first(&cl->udps))
		cudp_free(list_first_entry(&cl->udps, struct cudp, link));
	free(cl->svcs);
	xport_stack_fini(&cl->stack);
	free(cl);
}

size_t client_status(const struct client *cl, struct svc_status *out, size_t cap)
{
	size_t n = 0;
	for (size_t i = 0; i < cl->n_svcs && n < cap; i++) {
		const struct csvc *s = cl->svcs[i];
		const struct relay_counters *rc = s->counters;
		struct svc_status *o = &out[n++];
		memset(o, 0, sizeof(*o));
		o->name = s->cfg->name;
		o->name_len = s->cfg->name_len;
		o->udp = s->cfg->type == CONF_SVC_UDP;
		o->state = s->state == CS_READY ? SVC_UP
			   : s->state == CS_DIALING || s->state == CS_HELLO || s->state == CS_AUTH ? SVC_CONNECTING
			   : SVC_DOWN;
		o->pooled = s->st->pooled;
		o->st = s->st;
		o->rc = rc;
		/* TCP: relay side a is the data channel, b the local service;
		 * UDP: the forwarder counts [0] visitor -> service */
		o->bytes_to_service = rc->bytes[0];
		o->bytes_to_visitor = rc->bytes[1];
		o->visitors_active = o->udp ? rc->udp_mappings_active : rc->relays_active;
		o->visitors_total = o->udp ? rc->udp_mappings_total : rc->relays_total;
	}
	return n;
}

size_t client_n_services(const struct client *cl)
{
	return cl->n_svcs;
}
