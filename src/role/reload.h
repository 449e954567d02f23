/* reload: the running instance (one server or one client) built from the
 * config file, and hot reload of it (protocol.md#p-reload). Each reload:
 * read the file, load and validate it as `molerat check` does
 * (conf_load_buffer, conf_pick_mode on a general change, conf_check_errors),
 * diff it against the running config (conf_diff), apply:
 *
 * - no change: nothing (but a TLS file whose content changed renews the
 *   transport stack for new connections);
 * - services only: the instance removes, adds and restarts those services
 *   alone, then points the untouched ones at the new config
 *   (server_rebind / client_rebind) so the old one can be freed;
 * - general: the instance is stopped and a new one started from the new
 *   config; if it cannot start (a synchronous error, or the server failing
 *   to bind), the previous config is started again, whole.
 *
 * An invalid file changes nothing: the running config stays, and a later
 * valid file applies. A retired service's relays run on for the grace
 * period (role/grace.h). One log line per reload says what changed.
 *
 * Ownership: reload_new takes the validated conf (freed by reload_free);
 * the runtime's pointers are borrowed (main owns them); the path is
 * copied. */
#ifndef MOLERAT_RELOAD_H
#define MOLERAT_RELOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "codec/conf.h"
#include "role/runtime.h"

struct reload;

struct reload_opts {
	const char *path;       /* the config file, as given on the command line */
	enum conf_mode flag;    /* --server / --client, or CONF_MODE_AUTO */
	uint64_t grace_ms;      /* role/grace.h */
};

/* Starts the instance (mode: what conf_pick_mode chose for c). rt->fatal is
 * called when the instance cannot go on outside a reload (as without
 * reload). Returns 0, or a negative error (logged; c is freed and *out is
 * NULL). */
int reload_new(const struct runtime *rt, const struct reload_opts *o, struct conf *c,
	       enum conf_mode mode, struct reload **out);
/* One reload attempt, named by trigger in the log ("SIGHUP", "file
 * change"). explicit: always try and log (a signal); else a file whose
 * bytes, and whose TLS files' bytes, are those of the last attempt is
 * passed over in silence (an event in the directory about another file).
 * While a general restart waits for the new server to listen, the attempt
 * is queued. */
void reload_request(struct reload *rl, const char *trigger, bool explicit);
/* The key files the running config names (PKCS#12, trust root): the
 * paths whose directories are worth watching too. Returns how many were
 * put in paths[0..max). Valid until the next reload. */
size_t reload_key_paths(const struct reload *rl, const char **paths, size_t max);
/* Stops the instance and frees everything (relays are left to the
 * caller's relay_set). NULL-safe. */
void reload_free(struct reload *rl);

#endif
