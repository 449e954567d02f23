/* udp_sendq: datagrams queued for one UDP socket and sent together.
 *
 * The UDP forwarders parse many frames out of one read of the data channel.
 * Sending each with its own send() cost a syscall, a wake-up of the receiver
 * and often a preemption per datagram; the queue sends them with one
 * sendmmsg(2). Consecutive datagrams to the same address with the same
 * size (the last of a run may be shorter) are also coalesced into one
 * message with UDP_SEGMENT (UDP GSO, Linux 4.18+): the kernel walks the
 * socket, route and loopback path once per run instead of once per
 * datagram, which costs about a third of the CPU per datagram (measured on
 * loopback, 1,400-byte datagrams). The receiver still gets the datagrams
 * one by one, with their original boundaries.
 *
 * When the kernel or the path refuses a coalesced message (no GSO support,
 * a segment larger than the path MTU allows), that run is resent datagram
 * by datagram and later runs of that size or larger are not coalesced.
 *
 * Ownership: the queue is a plain struct embedded in its owner (about
 * 70 KiB: the datagrams are copied in); it holds no fd and allocates
 * nothing. The fd passed to add() must stay open until flush(). */
#ifndef MOLERAT_UDP_SENDQ_H
#define MOLERAT_UDP_SENDQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "codec/addr.h"

enum {
	UDP_SENDQ_MSGS = 64,          /* messages per sendmmsg */
	UDP_SENDQ_BYTES = 64 * 1024,  /* their payloads */
	UDP_SENDQ_GSO_SEGS = 64,      /* datagrams per coalesced message (the kernel's UDP_MAX_SEGMENTS) */
	UDP_SENDQ_GSO_BYTES = 65000,  /* payload per coalesced message (under the IPv4/IPv6 limits) */
};

/* A frame's payload length is a u16: any datagram fits an empty queue. */
_Static_assert(UDP_SENDQ_BYTES >= 65535, "the send queue must hold the largest datagram");

struct udp_sendq {
	int fd;                       /* the socket of the queued datagrams */
	unsigned n;                   /* messages queued */
	unsigned dgrams;              /* datagrams queued (a message holds 1 or more) */
	size_t used;                  /* bytes of buf in use */
	size_t gso_max;               /* largest segment coalesced; 0: never coalesce */
	struct mmsghdr msg[UDP_SENDQ_MSGS];
	struct iovec iov[UDP_SENDQ_MSGS];
	struct sockaddr_storage to[UDP_SENDQ_MSGS];
	uint16_t seg[UDP_SENDQ_MSGS];  /* size of each datagram of the message but the last */
	uint16_t nseg[UDP_SENDQ_MSGS]; /* datagrams in the message */
	union {
		char buf[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} ctl[UDP_SENDQ_MSGS];
	uint8_t buf[UDP_SENDQ_BYTES];
};

/* An empty queue that coalesces (gso true) or never does. */
void udp_sendq_init(struct udp_sendq *q, bool gso);

/* Copies a datagram in. false when it does not fit (flush first) or goes
 * to another socket than those queued; never false on an empty queue.
 * to == NULL on a connected socket. */
bool udp_sendq_add(struct udp_sendq *q, int fd, const struct addr *to, const uint8_t *p, size_t len);

/* Told that message i (ndrop datagrams of it, to q->to[i] or the connected
 * peer) failed with errno err. Returns false to give up on the rest of the
 * queue (the socket is gone): flush counts those in *dropped itself. */
typedef bool (*udp_sendq_err_fn)(void *owner, const struct udp_sendq *q, unsigned i, int err, unsigned ndrop);

/* Sends everything queued and empties the queue. Returns the datagrams
 * sent; adds their payload bytes to *bytes and the datagrams given up on
 * after a false from on_err to *dropped. */
unsigned udp_sendq_flush(struct udp_sendq *q, udp_sendq_err_fn on_err, void *owner, size_t *bytes,
			 uint64_t *dropped);

#endif
