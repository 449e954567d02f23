/* udp_server: the server side of UDP forwarding. See udp.h for the
 * contract.
 *
 * Owns the service's one unconnected UDP socket and a data channel
 * (udp_chan.h) that attach replaces. Visitor datagrams are received
 * straight into the channel's output queue (the frame header size is the
 * socket family's); frames from the channel go out through a send queue
 * (udp_sendq.h) to the address they name. A failed send drops that
 * datagram; only the data channel's own failures end the channel and call
 * lost(). */
#include "plane/udp.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/err.h"
#include "base/log.h"
#include "base/sock.h"
#include "codec/proto.h"
#include "codec/udp_frame.h"
#include "plane/rxmod.h"
#include "plane/udp_chan.h"
#include "plane/udp_sendq.h"

enum udp_server_state {
	USRV_DETACHED = 0,  /* no channel: the socket is not read */
	USRV_ATTACHED,      /* forwarding */
	USRV_CLOSED,        /* freed: memory deferred */
};

struct udp_server {
	struct udp_common cm;
	enum udp_server_state state;
	int fd;
	int family;              /* the socket's: AF_INET or AF_INET6 */
	int hlen;                /* header size of the frames it produces */
	struct io_watcher sw;
	struct rxmod rxm;             /* receive moderation of the socket */
	struct timer nap;             /* its pause: the socket is read again after it */
	struct udp_chan ch;
	struct udp_sendq sq;          /* replies towards visitors */
};

static void usrv_on_sock(struct loop *loop, struct io_watcher *w, unsigned revents);
static void usrv_on_nap(struct loop *loop, struct timer *t);
static void usrv_on_frame(void *owner, const struct udp_frame *f);
static void usrv_on_burst(void *owner);
static void usrv_on_room(void *owner);
static void usrv_on_fail(void *owner, int err);

static void usrv_free_mem(void *arg)
{
	struct udp_server *u = arg;
	udp_chan_release(&u->ch);
	free(u);
}

int udp_server_new(const struct udp_env *env, int sock_fd, struct udp_server **out)
{
	struct udp_server *u = calloc(1, sizeof(*u));
	if (!u) {
		close(sock_fd);
		return -ENOMEM;
	}
	udp_common_init(&u->cm, env);
	udp_sendq_init(&u->sq, !env->no_gso);
	u->fd = sock_fd;
	loop_io_init(&u->sw, usrv_on_sock, u);
	loop_timer_init(&u->nap, usrv_on_nap, u);
	size_t maxq = env->max_queued_bytes ? env->max_queued_bytes : UDP_MAX_QUEUED_BYTES;
	int r = udp_chan_init(&u->ch, &u->cm, maxq, usrv_on_frame, usrv_on_burst, usrv_on_fail, u);
	u->ch.on_room = usrv_on_room;
	struct addr local;
	if (r == 0)
		r = sock_local_addr(sock_fd, &local);
	if (r == 0) {
		u->family = local.ss.ss_family;
		r = proto_udp_hdr_len(&local);
	}
	if (r < 0) {
		close(sock_fd);
		relay_counters_unref(u->cm.counters);
		udp_chan_release(&u->ch);
		free(u);
		return r;
	}
	u->hlen = r;
	u->state = USRV_DETACHED;
	*out = u;
	return 0;
}

int udp_server_attach(struct udp_server *u, struct xport *dc)
{
	if (u->state == USRV_CLOSED) {
		xport_close(dc);
		return MR_ECLOSED;
	}
	int r = udp_chan_attach(&u->ch, dc);
	if (r == 0 && !loop_io_active(&u->sw)) {
		r = loop_io_start(u->cm.loop, &u->sw, u->fd, LOOP_READ);
		if (r < 0)
			udp_chan_detach(&u->ch);
	} else if (r == 0) {
		loop_io_set(u->cm.loop, &u->sw, LOOP_READ);   /* paused while the old one was behind */
	}
	if (r < 0) {
		u->state = USRV_DETACHED;
		loop_io_stop(u->cm.loop, &u->sw);
		return r;
	}
	u->state = USRV_ATTACHED;
	return 0;
}

int udp_server_attached(const struct udp_server *u)
{
	return u->state == USRV_ATTACHED;
}

void udp_server_stats(const struct udp_server *u, struct udp_stats *st)
{
	*st = u->cm.st;
	st->queued_bytes = u->ch.out.len;
}

void udp_server_free(struct udp_server *u)
{
	if (!u || u->state == USRV_CLOSED)
		return;
	u->state = USRV_CLOSED;
	udp_chan_detach(&u->ch);
	loop_io_stop(u->cm.loop, &u->sw);
	loop_timer_stop(u->cm.loop, &u->nap);
	close(u->fd);
	u->fd = -1;
	relay_counters_unref(u->cm.counters);
	u->cm.counters = NULL;
	loop_defer(u->cm.loop, usrv_free_mem, u);
}

static void usrv_on_fail(void *owner, int err)
{
	struct udp_server *u = owner;
	log_debug("udp service %s: data channel ended: %s", u->cm.label, mr_strerror(err));
	u->state = USRV_DETACHED;
	loop_io_stop(u->cm.loop, &u->sw);
	loop_timer_stop(u->cm.loop, &u->nap);
	if (u->cm.lost)
		u->cm.lost(u->cm.arg, err);
}

/* Visitor datagrams become frames. */
static void usrv_on_sock(struct loop *loop, struct io_watcher *w, unsigned revents)
{
	struct udp_server *u = w->data;
	unsigned taken = 0;
	int i;
	for (i = 0; i < UDP_BATCH && u->state == USRV_ATTACHED; i++) {
		uint8_t *p = udp_chan_frame_space(&u->ch, u->hlen);
		if (!p && u->ch.starved) {
			/* the data channel is behind: leave the datagrams in the
			 * socket's buffer (SOCK_UDP_BUF) until the queue has room
			 * again (usrv_on_room); the kernel drops only past both */
			loop_io_set(loop, w, 0);
			return;
		}
		struct addr from;
		ssize_t n = udp_common_recv(u->fd, p ? p + 1 + u->hlen : NULL, p ? UDP_RECV_MAX : 0, &from);
		if (n == -EAGAIN)
			break;
		taken++;
		if (n < 0) {
			/* a pending socket error, read and so cleared */
			log_debug("udp service %s: receive error: %s", u->cm.label, mr_strerror((int)n));
			continue;
		}
		if (!p) {
			udp_common_count_drop(&u->cm, &from, UDP_DROP_QUEUE_FULL, "the data channel's queue is full");
			continue;
		}
		if ((size_t)n > UDP_RECV_MAX || !udp_chan_frame_commit(&u->ch, p, u->hlen, &from, (size_t)n)) {
			udp_common_count_drop(&u->cm, &from,
					      (size_t)n > UDP_RECV_MAX ? UDP_DROP_TOO_LARGE : UDP_DROP_QUEUE_FULL,
					      (size_t)n > UDP_RECV_MAX ? "too large" :
					      "the data channel's queue is full");
			continue;
		}
		udp_common_count_dgrams(&u->cm, 0, 1);
		udp_common_count_bytes(&u->cm, 0, (size_t)n);
	}
	if (u->state == USRV_ATTACHED)
		udp_common_moderate(loop, w, &u->rxm, &u->nap, taken, i == UDP_BATCH);
}

static void usrv_on_nap(struct loop *loop, struct timer *t)
{
	struct udp_server *u = t->data;
	if (u->state == USRV_ATTACHED && loop_io_active(&u->sw))
		loop_io_set(loop, &u->sw, LOOP_READ);
}

/* The address to send to on the server's socket: v4-mapped addresses and
 * plain v4 convert as the socket's family needs. false when it cannot be
 * reached from this socket. */
static bool usrv_dest(const struct udp_server *u, const struct addr *from, struct addr *to)
{
	memset(to, 0, sizeof(*to));
	int fam = from->ss.ss_family;
	if (fam == u->family) {
		*to = *from;
		return true;
	}
	if (u->family == AF_INET && fam == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&from->ss;
		if (!IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			return false;
		struct sockaddr_in *s4 = (struct sockaddr_in *)&to->ss;
		s4->sin_family = AF_INET;
		s4->sin_port = s6->sin6_port;
		memcpy(&s4->sin_addr, &s6->sin6_addr.s6_addr[12], 4);
		to->len = sizeof(*s4);
		return true;
	}
	if (u->family == AF_INET6 && fam == AF_INET) {
		/* reaches v4 visitors when the socket is dual-stack; a V6ONLY
		 * socket's sendto fails and the packet is dropped */
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&from->ss;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&to->ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = s4->sin_port;
		s6->sin6_addr.s6_addr[10] = 0xff;
		s6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(&s6->sin6_addr.s6_addr[12], &s4->sin_addr, 4);
		to->len = sizeof(*s6);
		return true;
	}
	return false;
}

/* Frames from the client go to the visitor they name (rathole trusts the
 * address: the protocol, protocol.md#q8). */
static bool usrv_send_err(void *owner, const struct udp_sendq *q, unsigned i, int err,
			  unsigned ndrop)
{
	struct udp_server *u = owner;
	struct addr who;
	memcpy(&who.ss, &q->to[i], sizeof(who.ss));
	who.len = q->msg[i].msg_hdr.msg_namelen;
	char why[96];
	snprintf(why, sizeof(why), "sendto: %s", strerror(err));
	udp_common_count_drops(&u->cm, &who, UDP_DROP_SEND_FAILED, why, ndrop);
	return true;   /* one visitor's error: the others still get theirs */
}

static void usrv_on_room(void *owner)
{
	struct udp_server *u = owner;
	if (loop_io_active(&u->sw))
		loop_io_set(u->cm.loop, &u->sw, LOOP_READ);
}

static void usrv_on_burst(void *owner)
{
	struct udp_server *u = owner;
	if (!u->sq.n)
		return;
	size_t bytes = 0;
	uint64_t left = 0;
	udp_common_count_dgrams(&u->cm, 1, udp_sendq_flush(&u->sq, usrv_send_err, u, &bytes, &left));
	udp_common_count_flush_drops(&u->cm, left);
	udp_common_count_bytes(&u->cm, 1, bytes);
}

static void usrv_on_frame(void *owner, const struct udp_frame *f)
{
	struct udp_server *u = owner;
	struct addr to;
	if (!usrv_dest(u, &f->from, &to)) {
		udp_common_count_drop(&u->cm, &f->from, UDP_DROP_UNREACHABLE,
				      "its address family does not match the service socket's");
		return;
	}
	if (!udp_sendq_add(&u->sq, u->fd, &to, f->payload, f->len)) {
		usrv_on_burst(u);   /* full: send what is queued, then it fits */
		udp_sendq_add(&u->sq, u->fd, &to, f->payload, f->len);
	}
}
