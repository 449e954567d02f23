/* envvars: the environment variables molerat reads, read once by main and
 * passed down (struct runtime), so nothing below main calls getenv.
 * MOLERAT_LOG / RUST_LOG are read by log_init_from_env, also from main.
 * An invalid value is warned about once and the default kept.
 *
 * Ownership: plain values; nothing is allocated. */
#ifndef MOLERAT_ENVVARS_H
#define MOLERAT_ENVVARS_H

#include <stdbool.h>
#include <stdint.h>

#include "plane/relay.h"

struct envvars {
	enum relay_mode relay_mode;   /* MOLERAT_RELAY: "copy" forces RELAY_COPY; unset, "", "auto", "splice": RELAY_AUTO */
	bool udp_no_gso;              /* MOLERAT_UDP_GSO=0 */
	/* MOLERAT_RELOAD_GRACE: seconds (0..86400) a retired service's
	 * connections run on after a reload; unset: 300 */
	uint64_t reload_grace_ms;
	/* test knobs, 0 when unset (the built-in value applies) */
	unsigned max_handshakes;      /* MOLERAT_TEST_MAX_HANDSHAKES, 1..1024 */
	uint64_t udp_idle_ms;         /* MOLERAT_TEST_UDP_IDLE_MS, 1..86400000 */
};

/* Fills e from the process environment. */
void envvars_read(struct envvars *e);

#endif
