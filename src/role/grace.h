/* grace: how long the relays of a retired service run on. A service that a
 * reload removes or changes, or whose instance a general reload restarts,
 * stops accepting at once; the connections it is forwarding are let
 * finish, for at most the grace period, then closed
 * (protocol.md#p-reload-apply). rathole lets them run for ever.
 *
 * Ownership: a struct grace is embedded in its owner (grace_init,
 * grace_fini); it takes a reference on the counters of each retired
 * service whose relays still run, and drops it when the period ends. */
#ifndef MOLERAT_GRACE_H
#define MOLERAT_GRACE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/list.h"
#include "base/loop.h"
#include "plane/relay.h"

struct grace {
	struct loop *loop;
	struct relay_set *relays;
	uint64_t ms;          /* the period; 0 closes a retired service's relays at once */
	struct list items;    /* of the retired services with relays running */
	bool closing;         /* grace_fini started: retire nothing more */
};

void grace_init(struct grace *g, struct loop *loop, struct relay_set *relays, uint64_t ms);
/* A service is going away while relays count into c: they run on for
 * g->ms at most. Nothing when none runs. */
void grace_retire(struct grace *g, struct relay_counters *c, const char *label);
/* Forgets every pending period (the relays are not closed: the process's
 * shutdown does that). */
void grace_fini(struct grace *g);

#endif
