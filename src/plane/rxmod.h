/* rxmod: adaptive receive moderation for a UDP socket, as a NIC moderates
 * its interrupts.
 *
 * A UDP forwarder woken for every few datagrams spends most of its CPU on
 * the wake-ups (each also flushes the data channel, which wakes the other
 * end): at 1 Gbit/s of 1,400-byte datagrams on loopback it woke about
 * 17,000 times a second for 5 datagrams each, and with the CPUs saturated
 * the final receiver lost up to 20% of the datagrams. So when read
 * wake-ups come closer together than RXMOD_BUSY_US, the socket is left
 * alone for RXMOD_NAP_US after each one and the next read takes what
 * gathered meanwhile (measured: loss at the receiver about 1% instead of
 * 8-20%, and about 40% less CPU). Sparse traffic (a DNS query, a game's
 * tick) is never delayed: its wake-ups are further apart. A read that
 * filled its whole batch is not followed by a nap either: more is waiting.
 *
 * Pure: the caller owns the clock, the timer and the socket. */
#ifndef MOLERAT_RXMOD_H
#define MOLERAT_RXMOD_H

#include <stdbool.h>
#include <stdint.h>

enum {
	RXMOD_BUSY_US = 1000, /* wake-ups closer than this: a busy socket */
	RXMOD_NAP_US = 200,   /* the pause after each read of a busy socket */
};

struct rxmod {
	uint64_t last_us;     /* the previous read wake-up; 0: none yet */
};

/* After a read wake-up at now_us that took n datagrams (full: the read
 * stopped at its batch limit): how long to leave the socket unread, in us
 * (0: watch it again at once). */
static inline uint64_t rxmod_after_read(struct rxmod *m, uint64_t now_us, unsigned n, bool full)
{
	if (n == 0)
		return 0;
	uint64_t last = m->last_us;
	m->last_us = now_us;
	if (full)
		return 0;
	return last && now_us - last < RXMOD_BUSY_US ? RXMOD_NAP_US : 0;
}

#endif
