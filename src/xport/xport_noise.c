/* xport_noise: see xport_noise.h. (being written) */
#include "xport/xport_noise.h"

#include "base/log.h"

struct noise_ident *noise_ident_new(const struct conf_noise *n, bool server, const char *sec)
{
	(void)n; (void)server;
	log_error("%s.transport.type = \"noise\" is not supported by this build of molerat yet", sec);
	return NULL;
}

void noise_ident_unref(struct noise_ident *id) { (void)id; }

struct xport *xport_noise_new(struct noise_ident *id, struct xport *lower)
{
	(void)id;
	xport_close(lower);
	return NULL;
}
