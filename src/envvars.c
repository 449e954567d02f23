/* envvars: see envvars.h. */
#include "envvars.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

enum {
	MAX_HANDSHAKES_MAX = 1024,            /* the server's built-in limit */
	UDP_IDLE_MS_MAX = 24 * 3600 * 1000,
};

static enum relay_mode read_relay_mode(void)
{
	const char *v = getenv("MOLERAT_RELAY");
	if (!v || !*v || strcmp(v, "auto") == 0 || strcmp(v, "splice") == 0)
		return RELAY_AUTO;
	if (strcmp(v, "copy") == 0)
		return RELAY_COPY;
	log_warn("MOLERAT_RELAY=\"%.64s\" is not one of copy, splice, auto: using auto", v);
	return RELAY_AUTO;
}

static bool read_no_gso(void)
{
	const char *v = getenv("MOLERAT_UDP_GSO");
	if (!v || !*v || strcmp(v, "1") == 0)
		return false;
	if (strcmp(v, "0") == 0)
		return true;
	log_warn("MOLERAT_UDP_GSO=\"%.64s\" is not 0 or 1: using GSO", v);
	return false;
}

/* A test knob: 1..max, else 0 (unset, or invalid: warned). */
static uint64_t read_knob(const char *name, uint64_t max)
{
	const char *s = getenv(name);
	if (!s || !*s)
		return 0;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v == 0 || v > max || s[0] == '-') {
		log_warn("ignoring %s=\"%.64s\" (want 1..%llu)", name, s, (unsigned long long)max);
		return 0;
	}
	return v;
}

enum { RELOAD_GRACE_DEFAULT_S = 300, RELOAD_GRACE_MAX_S = 86400 };

static uint64_t read_reload_grace_ms(void)
{
	const char *s = getenv("MOLERAT_RELOAD_GRACE");
	if (!s || !*s)
		return RELOAD_GRACE_DEFAULT_S * 1000ull;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v > RELOAD_GRACE_MAX_S || s[0] == '-') {
		log_warn("ignoring MOLERAT_RELOAD_GRACE=\"%.64s\" (want 0..%d seconds): using %d",
			 s, RELOAD_GRACE_MAX_S, RELOAD_GRACE_DEFAULT_S);
		return RELOAD_GRACE_DEFAULT_S * 1000ull;
	}
	return v * 1000ull;
}

void envvars_read(struct envvars *e)
{
	e->reload_grace_ms = read_reload_grace_ms();
	e->relay_mode = read_relay_mode();
	e->udp_no_gso = read_no_gso();
	e->max_handshakes = (unsigned)read_knob("MOLERAT_TEST_MAX_HANDSHAKES", MAX_HANDSHAKES_MAX);
	e->udp_idle_ms = read_knob("MOLERAT_TEST_UDP_IDLE_MS", UDP_IDLE_MS_MAX);
}
