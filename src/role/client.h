/* client: the client role (control plane). One control channel per service
 * (protocol.md#p-control-client) with rathole's reconnect backoff (protocol.md#p-backoff, protocol.md#p-backoff-uses; a 100 ms floor
 * instead of protocol.md#q7's busy loop); for each CreateDataChannel a data channel
 * (protocol.md#p-data-client) that, on StartForwardTcp, connects local_addr and hands both ends
 * to a relay.
 *
 * Ownership: the client points into the conf it was given (see server.h):
 * the conf_client and every conf_service added must outlive it. client_free
 * closes every control channel and every data channel not yet relaying;
 * running relays finish on their own (protocol.md#p-reload-apply). */
#ifndef MOLERAT_CLIENT_H
#define MOLERAT_CLIENT_H

#include "codec/conf.h"
#include "role/runtime.h"

struct client;

int client_new(const struct runtime *rt, const struct conf_client *cfg, struct client **out);
void client_free(struct client *c);

/* Hot reload: start (or restart) one service; stop one service. */
int client_add_service(struct client *c, const struct conf_service *svc);
void client_remove_service(struct client *c, const struct conf_service *svc);
/* After a reload that changed no general key: points the client and each
 * of its services at the equal settings in cfg (see server_rebind). */
void client_rebind(struct client *c, const struct conf_client *cfg);
/* Builds the transport stack again from the same settings (a trust root
 * whose content changed); see server_renew_stack. */
int client_renew_stack(struct client *c);

/* The admin endpoint's view (role/metrics.h); see server_status. */
size_t client_status(const struct client *c, struct svc_status *out, size_t cap);
size_t client_n_services(const struct client *c);

#endif
