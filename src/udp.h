/* udp: UDP services over a stream data channel (spec §3.7, §5.6), both
 * roles, without rathole's 2,048-byte truncation (Q8): datagrams up to
 * 65,507 bytes cross whole, empty ones as empty frames.
 *
 * Frames on the data channel: hlen:u8 | SocketAddr + len:u16 (proto.h's
 * UDP header) | payload. The data channel is a byte stream: frames may be
 * split or merged anyhow by the transport.
 *
 * Server side (udp_server_*): owns the service's bound UDP socket for the
 * whole session. Datagrams from visitors become frames on the attached
 * data channel (from = the visitor); frames from the channel are sent to
 * the address they name. With no channel attached, visitor datagrams are
 * dropped and counted. When the attached channel breaks, lost() is called
 * and the session attaches another one (the spare pooled channel, §5.1) with
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
 * Ownership: *_start/attach take the xport (and the server's fd); the
 * owner ends a forwarder with udp_*_free (no callback runs after it).
 * lost() runs from the loop; the owner may free the forwarder inside it. */
#ifndef MOLERAT_UDP_H
#define MOLERAT_UDP_H

#include <stdint.h>

#include "dns.h"
#include "loop.h"
#include "relay.h"
#include "xport.h"

struct udp_server;
struct udp_client;

enum {
	UDP_MAX_DATAGRAM = 65507,
	UDP_IDLE_MS = 60000,          /* client mapping idle timeout (UDP_TIMEOUT) */
	UDP_MAX_MAPPINGS = 4096,      /* per client forwarder */
	UDP_MAX_QUEUED_PER_MAPPING = 256,
	UDP_MAX_QUEUED_BYTES = 4 << 20, /* towards the data channel */
};

struct udp_stats {
	uint64_t datagrams_in;    /* visitor -> service */
	uint64_t datagrams_out;   /* service -> visitor */
	uint64_t dropped;         /* over a bound, no channel, or a failed send */
	uint64_t mappings_active; /* client only */
};

struct udp_env {
	struct loop *loop;
	struct dns *dns;                   /* client: resolves local_addr */
	const char *label;                 /* service name, for logs; copied */
	struct relay_counters *counters;   /* optional; bytes[0] in, bytes[1] out */
	void (*lost)(void *arg, int err);  /* the data channel ended */
	void *arg;
	/* client: idle timeout of a mapping in ms (0 = UDP_IDLE_MS). The
	 * environment variable MOLERAT_TEST_UDP_IDLE_MS overrides it, for
	 * tests only; it is not a user-facing setting. */
	uint64_t idle_ms;
};

/* Server: sock_fd is the service's bound UDP socket (taken). */
int udp_server_new(const struct udp_env *env, int sock_fd, struct udp_server **out);
/* Attaches a data channel on which StartForwardUdp has been written (the
 * xport is taken; a channel already attached is closed first). */
int udp_server_attach(struct udp_server *u, struct xport *dc);
int udp_server_attached(const struct udp_server *u);
void udp_server_stats(const struct udp_server *u, struct udp_stats *st);
void udp_server_free(struct udp_server *u);

/* Client: dc is the data channel after StartForwardUdp was read (taken);
 * local_addr is "host:port" (copied). */
int udp_client_new(const struct udp_env *env, const char *local_addr, struct xport *dc,
		   struct udp_client **out);
void udp_client_stats(const struct udp_client *u, struct udp_stats *st);
void udp_client_free(struct udp_client *u);

#endif
