/* udp: UDP services over a stream data channel (protocol.md#p-udp-frame, protocol.md#p-udp), both
 * roles, without rathole's 2,048-byte truncation (protocol.md#q8): datagrams up to
 * 65,507 bytes cross whole, empty ones as empty frames.
 *
 * Frames on the data channel: hlen:u8 | SocketAddr + len:u16 (proto.h's
 * UDP header) | payload. The data channel is a byte stream: frames may be
 * split or merged anyhow by the transport. codec/udp_frame.h reads them.
 *
 * The modules: udp_server.c and udp_client.c (the two roles, this API),
 * udp_chan.c (what they share: the data channel, its output queue, drop
 * accounting; internal header udp_chan.h), udp_sendq.c (batched sends),
 * codec/udp_frame.c (the pure frame reader).
 *
 * Server side (udp_server_*): owns the service's bound UDP socket for the
 * whole session. Datagrams from visitors become frames on the attached
 * data channel (from = the visitor); frames from the channel are sent to
 * the address they name (a frame whose address family the socket cannot
 * reach is dropped and counted). With no channel attached the socket is not
 * read: visitor datagrams wait in the kernel's socket buffer (bounded by
 * SO_RCVBUF; the kernel drops beyond it) and flow once a channel is
 * attached, as in rathole, where nothing reads before the first channel.
 * Unreachable frame addresses are dropped and counted: a v6 address (not
 * v4-mapped) on a v4 socket; a v4 address on a v6 socket is sent as
 * v4-mapped (fails, and is dropped, only on a V6ONLY socket).
 * When the attached channel breaks, lost() is called and the session
 * attaches another one (the spare pooled channel, protocol.md#p-pool) with
 * udp_server_attach, so UDP recovers without a control-channel reconnect.
 *
 * Client side (udp_client_*): one forwarder per data channel; a mapping
 * per visitor address to its own connected UDP socket towards local_addr
 * (resolved per new mapping, first address), expiring after the idle time
 * (60 s) with no packet either way; replies go back as frames through one
 * bounded writer. When the channel ends, lost() is called and every
 * mapping is closed at once.
 *
 * Errors are contained: a failed sendto, or an ICMP error on one mapping,
 * drops that packet or that mapping, never the service. Bounds: mappings
 * per forwarder, packets queued per mapping, bytes queued towards the data
 * channel; beyond them packets are dropped and counted.
 *
 * Ownership: *_new/attach take the xport (and the server's fd), also when
 * they fail (it is then closed); the owner ends a forwarder with
 * udp_*_free (no callback runs after it; the memory is released through
 * loop_defer, so free may be called from inside lost() or any callback,
 * and the loop must run once more or be freed afterwards). lost() runs
 * from the loop, never from inside a udp_* call; the owner may free the
 * forwarder, or (server) attach another channel, inside it. The env's
 * counters get a reference of their own (relay_counters_ref).
 *
 * The data channel: at most UDP_READ_BUDGET bytes are read per wake-up
 * (xport_pending() is honoured with a 0 ms resume timer); frames towards it
 * are encoded into one bounded output queue (UDP_MAX_QUEUED_BYTES) that is
 * flushed once per loop iteration (loop_defer), and on -EAGAIN when the
 * transport is ready again. A full queue drops new datagrams (counted)
 * while the UDP sockets keep being read. A frame is never cut: what was
 * queued is written whole. */
#ifndef MOLERAT_UDP_H
#define MOLERAT_UDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/dns.h"
#include "base/loop.h"
#include "plane/relay.h"
#include "xport/xport.h"

struct udp_server;
struct udp_client;

enum {
	UDP_MAX_DATAGRAM = 65507,
	UDP_IDLE_MS = 60000,          /* client mapping idle timeout (UDP_TIMEOUT) */
	UDP_MAX_MAPPINGS = 4096,      /* per client forwarder */
	UDP_MAX_QUEUED_PER_MAPPING = 256,
	UDP_MAX_QUEUED_BYTES = 4 << 20, /* towards the data channel */
	/* client: payload bytes held for all mappings whose local_addr is
	 * still resolving */
	UDP_MAX_PENDING_BYTES = 4 << 20,
	UDP_RECV_MAX = 65535,         /* receive space per datagram: nothing is cut */
	UDP_BATCH = 32,               /* datagrams read per socket per wake-up */
	UDP_READ_BUDGET = 256 * 1024, /* data channel bytes read per wake-up */
};

struct udp_stats {
	uint64_t datagrams_in;    /* visitor -> service */
	uint64_t datagrams_out;   /* service -> visitor */
	uint64_t dropped;         /* over a bound, no channel, or a failed send */
	uint64_t mappings_active; /* client only */
	uint64_t queued_bytes;    /* gauge: bytes waiting for the data channel */
	uint64_t mappings_total;  /* client only: mappings ever created */
};

struct udp_env {
	struct loop *loop;
	struct dns *dns;                   /* client: resolves local_addr */
	const char *label;                 /* service name, for logs; copied */
	struct relay_counters *counters;   /* optional; bytes[0] in, bytes[1] out */
	void (*lost)(void *arg, int err);  /* the data channel ended */
	void *arg;
	/* client: idle timeout of a mapping in ms (0 = UDP_IDLE_MS). Not a
	 * user-facing setting: the process sets it from the test-only
	 * environment variable MOLERAT_TEST_UDP_IDLE_MS. */
	uint64_t idle_ms;
	/* true: datagrams towards UDP sockets are sent one by one, not
	 * coalesced with UDP GSO (udp_sendq.h); the process sets it from
	 * MOLERAT_UDP_GSO=0. This module reads no environment variable. */
	bool no_gso;
	/* bounds, 0 = the defaults above (tests lower them) */
	unsigned max_mappings;             /* client: UDP_MAX_MAPPINGS */
	size_t max_queued_bytes;           /* UDP_MAX_QUEUED_BYTES */
};

/* Server: sock_fd is the service's bound UDP socket (taken: closed also on
 * failure). env is copied (label too). Returns 0, -ENOMEM or -errno from
 * getsockname. */
int udp_server_new(const struct udp_env *env, int sock_fd, struct udp_server **out);
/* Attaches a data channel on which StartForwardUdp has been written (the
 * xport is taken; a channel already attached is closed first, and any
 * bytes queued for it are discarded). The socket is read from now on.
 * Returns 0, or -errno when the loop cannot watch an fd (dc closed). May
 * be called from inside lost(). */
int udp_server_attach(struct udp_server *u, struct xport *dc);
/* 1 while a data channel is attached, else 0. */
int udp_server_attached(const struct udp_server *u);
/* Copies the counters (mappings_* are 0 on the server). */
void udp_server_stats(const struct udp_server *u, struct udp_stats *st);
/* Closes the socket and the channel; no callback runs after it. NULL is a
 * no-op. */
void udp_server_free(struct udp_server *u);

/* Client: dc is the data channel after StartForwardUdp was read (taken,
 * closed also on failure); local_addr is "host:port" (copied). A numeric
 * host is parsed once; a name is resolved (env->dns, required then) for
 * each new mapping, its first address used, as rathole does; packets that
 * arrive meanwhile wait (UDP_MAX_QUEUED_PER_MAPPING, UDP_MAX_PENDING_BYTES).
 * Returns 0, MR_EFORMAT (local_addr not host:port, or a name with no dns),
 * -ENOMEM, or -errno from the loop. */
int udp_client_new(const struct udp_env *env, const char *local_addr, struct xport *dc,
		   struct udp_client **out);
/* Copies the counters. */
void udp_client_stats(const struct udp_client *u, struct udp_stats *st);
/* Closes every mapping and the channel; no callback runs after it. NULL
 * is a no-op. */
void udp_client_free(struct udp_client *u);

#endif
