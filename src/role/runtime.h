/* runtime: what both roles run on, made once by main and shared: the loop,
 * the resolver, the relays' pipe pool and relay set, and the settings read
 * from the environment (read once, in main: nothing below main calls
 * getenv). Neither role includes the other; both take a struct runtime.
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
	void *arg;
};

#endif
