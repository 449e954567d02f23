/* runtime: what both roles run on, made once by main and shared: the loop,
 * the resolver, the relays' pipe pool and relay set, and the settings read
 * from the environment (read once, in main: nothing below main calls
 * getenv). Neither role includes the other; both take a struct runtime.
 *
 * A role counts what happens per service in a struct svc_stats of its
 * own (role/metrics.h) and per instance in *stats.
 *
 * Ownership: main owns everything a runtime points to and frees it after
 * the roles (server_free / client_free); a role copies the struct and
 * borrows the pointers. */
#ifndef MOLERAT_RUNTIME_H
#define MOLERAT_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>

#include "base/dns.h"
#include "base/loop.h"
#include "plane/relay.h"
#include "role/metrics.h"

/* TCP_USER_TIMEOUT of the tunnel's sockets when the config sets no
 * liveness window (heartbeats off), and its floor and ceiling (ms). */
enum {
	TUNNEL_USER_TIMEOUT_MS = 40000,
	TUNNEL_USER_TIMEOUT_MIN_MS = 5000,
	TUNNEL_USER_TIMEOUT_MAX_MS = 600000,
};

/* The tunnel sockets' TCP_USER_TIMEOUT for a liveness window of secs
 * seconds (0: none configured) plus slack_ms. */
static inline unsigned tunnel_user_timeout_ms(uint64_t secs, unsigned slack_ms)
{
	if (secs == 0)
		return TUNNEL_USER_TIMEOUT_MS;
	uint64_t ms = secs > TUNNEL_USER_TIMEOUT_MAX_MS / 1000 ? TUNNEL_USER_TIMEOUT_MAX_MS : secs * 1000 + slack_ms;
	if (ms < TUNNEL_USER_TIMEOUT_MIN_MS)
		ms = TUNNEL_USER_TIMEOUT_MIN_MS;
	return (unsigned)(ms > TUNNEL_USER_TIMEOUT_MAX_MS ? TUNNEL_USER_TIMEOUT_MAX_MS : ms);
}

struct runtime {
	struct loop *loop;
	struct dns *dns;
	struct pipe_pool *pipes;
	struct relay_set *relays;
	enum relay_mode relay_mode;   /* MOLERAT_RELAY */
	bool udp_no_gso;              /* MOLERAT_UDP_GSO=0: UDP datagrams one by one */
	/* test knobs: 0 = the built-in value */
	unsigned max_handshakes;      /* MOLERAT_TEST_MAX_HANDSHAKES (server) */
	uint64_t udp_idle_ms;         /* MOLERAT_TEST_UDP_IDLE_MS (client) */
	/* called (from the loop) when the instance cannot go on, e.g. its
	 * bind_addr cannot be bound; a log line has been written */
	void (*fatal)(void *arg, int err);
	/* optional, called (from the loop) once the instance is up: the
	 * server listens on bind_addr; the client has started its services */
	void (*started)(void *arg);
	/* optional: a service is going away (removed, replaced, or its
	 * instance stopping) while relays it started still count into c;
	 * the callee may take a reference to bound how long they run on
	 * (protocol.md#p-reload-apply). label: the service's name (copy it) */
	void (*retire)(void *arg, struct relay_counters *c, const char *label);
	void *arg;
	/* the instance's counters (role/metrics.h), kept by role/reload.c
	 * across restarts; NULL: not counted */
	struct role_counters *stats;
};

/* Counts one handshake failure of the instance (rt->stats may be NULL). */
static inline void runtime_count_hs(const struct runtime *rt, enum hs_fail_reason r)
{
	if (rt->stats)
		rt->stats->handshake_failures[r]++;
}

#endif
