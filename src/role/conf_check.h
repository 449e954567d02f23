/* conf_check: what a role checks in a loaded configuration (codec/conf.h)
 * before it starts: warnings (problems rathole accepts at load but fails
 * on later, and more) and the settings this build cannot honour yet.
 * `molerat check` and a start run both.
 *
 * Ownership: borrows the conf for the call; every line is formatted into
 * a buffer of the call and passed to the callback, valid during that call
 * only. Contract: the conf is not modified; the only file-system access is
 * access(2) on the key files the conf names (conf_check_warnings); never
 * prints secrets. */
#ifndef MOLERAT_CONF_CHECK_H
#define MOLERAT_CONF_CHECK_H

#include <stddef.h>

#include "codec/conf.h"

/* Warnings beyond rathole's rules (a key file that does not exist, an
 * unusable noise key, a proxy without a port...) and the problems rathole
 * only finds at instance start (protocol.md#q14) or by panicking (protocol.md#q15): one line each,
 * "FILE:LINE:COL: key.path: what; what to do", passed to warn() (which may
 * be NULL to only count). mode CONF_MODE_SERVER / CONF_MODE_CLIENT checks that
 * section only, CONF_MODE_AUTO every section present; the cross-section checks
 * (heartbeat timeout vs interval, a service's type or token differing)
 * run whenever both sections are present. Never prints secrets. Reads the
 * file system (access(2) on key files). Returns how many. Used by
 * `molerat check` and at start. */
size_t conf_check_warnings(const struct conf *c, enum conf_mode mode,
			   void (*warn)(void *arg, const char *line), void *arg);

/* Settings molerat cannot start with although the file parses (rathole
 * accepts them too, then fails at start or at the first connection):
 * what this build cannot honour yet (the websocket transport, a client's
 * [client.transport.tcp] proxy), and a noise transport's unusable
 * protocol name, a key that is not base64 of the DH's length, a remote
 * key the pattern needs. One line each, "FILE:LINE:COL: key.path: what;
 * what to do", passed to fail() (NULL to only count), for the section(s)
 * mode selects as in conf_check_warnings. A caller treats any as an error:
 * `molerat check` and a start both refuse such a file, so a key molerat
 * accepts is a key it acts on. Returns how many. */
size_t conf_check_errors(const struct conf *c, enum conf_mode mode,
			 void (*fail)(void *arg, const char *line), void *arg);

#endif
