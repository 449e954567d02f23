/* admin_client: `molerat status` (docs/admin.md#molerat-status): one GET
 * of /api/v1/status from the admin endpoint a config names, with its
 * token, over a blocking socket bounded by a timeout (the command line
 * may block; the daemon never calls this), then the document read with
 * codec/json.h and printed: one line per service, or the raw JSON.
 *
 * Ownership: nothing is kept between calls; the conf is borrowed. */
#ifndef MOLERAT_ADMIN_CLIENT_H
#define MOLERAT_ADMIN_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "codec/conf.h"

enum {
	ADMIN_CLIENT_TIMEOUT_MS = 5000,      /* connect, send and the whole answer */
	ADMIN_CLIENT_MAX_BYTES = 64 << 20,   /* of the answer */
	ADMIN_STATUS_UP = 0,                 /* every service is up */
	ADMIN_STATUS_NOT_UP = 1,             /* some service is not */
	ADMIN_STATUS_UNREACHABLE = 2,        /* no answer, a refusal (401), or not a status document */
};

/* GET path from the endpoint at bind_addr (a wildcard address is asked on
 * loopback), "Authorization: Bearer token" when token is not NULL. Returns
 * 0 with *status and the body (*body, malloc'd, NUL-terminated, *len
 * bytes), or a negative error with why (errcap bytes) filled. */
int admin_http_get(const char *bind_addr, const char *token, size_t token_len, const char *path,
		   int timeout_ms, int *status, char **body, size_t *len, char *why, size_t errcap);

/* Queries the endpoint of one section (role "server" or "client"; a the
 * section's [*.admin], present) and prints to out: json ? the document as
 * it came : one line per service. Errors are one line on err. Returns an
 * ADMIN_STATUS_* value. */
int admin_status(const char *role, const struct conf_admin *a, bool json, FILE *out, FILE *err);

/* The human listing of a status document already parsed (also for the
 * unit tests); now is the unix time to measure ages from. Returns
 * ADMIN_STATUS_UP or ADMIN_STATUS_NOT_UP, or ADMIN_STATUS_UNREACHABLE
 * when doc is not a status document. */
struct json;
int admin_status_print(const struct json *doc, long long now, FILE *out);

#endif
