/* conf_diff: hot reload (protocol.md#p-reload-diff): what changed between two validated
 * configs, by the schema's reload classes: nothing, a general key (restart
 * the instance), or only services (delete and add those).
 *
 * Ownership: a struct conf_diff owns its arrays (conf_diff_free); the
 * service pointers in them are borrowed from the two confs compared.
 * Contract: pure; neither conf is modified. */
#ifndef MOLERAT_CONF_DIFF_H
#define MOLERAT_CONF_DIFF_H

#include <stddef.h>

#include "codec/conf.h"

/* Hot reload (protocol.md#p-reload-diff): compares two validated configs.
 * CONF_SAME: nothing to do. CONF_GENERAL: a section was added or removed,
 * or a key outside the services changed (reload class general): restart
 * the instance; the lists are empty. CONF_SERVICES: only services changed;
 * apply the *_deleted lists (names gone) BEFORE the *_added lists (services
 * new or changed in any validated field: replace them).
 * The arrays are owned by the diff (conf_diff_free); the service pointers
 * are borrowed from old_c (deleted) and new_c (added), which must outlive
 * their use. Returns 0, or -ENOMEM (*out is then empty). */
enum conf_change { CONF_SAME = 0, CONF_GENERAL, CONF_SERVICES };
struct conf_diff {
	enum conf_change change;
	/* with CONF_SERVICES: names (borrowed from old / new) */
	const struct conf_service **server_deleted; size_t n_server_deleted;
	const struct conf_service **server_added;   size_t n_server_added;   /* new or changed */
	const struct conf_service **client_deleted; size_t n_client_deleted;
	const struct conf_service **client_added;   size_t n_client_added;
};
int conf_diff(const struct conf *old_c, const struct conf *new_c, struct conf_diff *out);
/* Frees the arrays and zeroes *d. NULL-safe. */
void conf_diff_free(struct conf_diff *d);

/* What d changes for an instance running as mode (CONF_MODE_SERVER or
 * CONF_MODE_CLIENT), as the one log line of a reload says it:
 * "no change", "general change", or "services added: "b"; restarted:
 * "a"; removed: "c"" (names quoted as conf_quote does; a service in the
 * added list that old_c has under the same name is "restarted"). The other
 * section's service changes are ignored by the instance: "; [client]
 * services changed, ignored by the server" is appended. Always
 * NUL-terminates out (a line too long for cap is cut). */
void conf_diff_describe(const struct conf_diff *d, const struct conf *old_c, enum conf_mode mode,
			char *out, size_t cap);

#endif
