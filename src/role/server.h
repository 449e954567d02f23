/* server: the server role (control plane). Accepts client connections on
 * server.bind_addr, authenticates control channels (protocol.md#p-control-server), keeps one
 * session per service (its visitor listener, its pool of data channels,
 * heartbeats), and pairs visitors with data channels FIFO (protocol.md#p-tcp-pairing); each pair
 * is handed to a relay, which lives on by itself.
 *
 * Ownership: the server points into the conf it was given (the config is
 * one immutable object: a reload will swap it): the conf_server and every
 * conf_service added must outlive the server, or the service, which keeps
 * no copies. server_free closes the listener, every handshake,
 * every session (listeners, pooled data channels, waiting visitors); relays
 * already running are not touched and finish on their own (protocol.md#p-reload-apply). */
#ifndef MOLERAT_SERVER_H
#define MOLERAT_SERVER_H

#include "codec/conf.h"
#include "role/runtime.h"

struct server;

/* Resolves and binds server.bind_addr, then accepts. Returns 0 or a
 * negative error (out of memory, malformed address); a failure to bind is
 * reported later through rt->fatal. */
int server_new(const struct runtime *rt, const struct conf_server *cfg, struct server **out);
void server_free(struct server *s);

/* Hot reload of services: removes, then adds (or replaces) the named
 * services; a removed or replaced service's control channel is dropped
 * (protocol.md#p-reload-apply). */
void server_remove_service(struct server *s, const struct conf_service *svc);
int server_add_service(struct server *s, const struct conf_service *svc);
/* After a reload that changed no general key: points the server and each of
 * its services at the equal settings in cfg (found by name), so the
 * previous conf may be freed. Call after the removals and additions. */
void server_rebind(struct server *s, const struct conf_server *cfg);
/* Builds the transport stack again from the same settings (a PKCS#12 file
 * whose content changed: protocol.md#p-reload-apply); new connections use
 * it, established ones keep theirs. On failure (logged) the old one stays.
 * Returns 0 or a negative error. */
int server_renew_stack(struct server *s);

/* The admin endpoint's view (role/metrics.h): one svc_status per service
 * (at most cap) into out; the pointers in it are valid until the server
 * next runs or changes. Returns how many. */
size_t server_status(const struct server *s, struct svc_status *out, size_t cap);
size_t server_n_services(const struct server *s);

#endif
