/* admin_page: the status page the admin endpoint serves at GET / (one
 * self-contained HTML document: inline CSS and script, nothing fetched
 * from elsewhere). It polls GET /api/v1/status every second, sending
 * "Authorization: Bearer <token>" when the URL carries #token=<token>,
 * and shows each service's state, peer, visitors, pooled channels, bytes
 * each way and a throughput chart of the last 60 polls; a banner when the
 * poll fails (401: the token is required).
 *
 * Hooks for tests and scripts: each service is an element with
 * data-service="<name>" and data-state="up|down|connecting"; inside it the
 * elements of class bytes-to-service and bytes-to-visitor carry the exact
 * counters in data-bytes. The banner is #banner.
 *
 * Static data, served as text/html; charset=utf-8. */
#ifndef MOLERAT_ADMIN_PAGE_H
#define MOLERAT_ADMIN_PAGE_H

#include <stddef.h>

extern const char admin_page_html[];
extern const size_t admin_page_html_len;   /* strlen(admin_page_html) */

#endif
