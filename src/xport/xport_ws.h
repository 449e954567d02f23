/* xport_ws: the websocket transport's layer (protocol.md#p-websocket): an
 * HTTP/1.1 upgrade (client request, server 101) and then RFC 6455 Binary
 * frames, over a lower layer (tcp, or tls when [*.transport.websocket]
 * tls = true). The codecs are pure modules: codec/http_head.h (the
 * upgrade's heads) and codec/ws_frame.h (frames, the accept key, the
 * client's Host value).
 *
 * Client: sends the upgrade request exactly as rathole does (order and
 * case of the headers, Host as ws_host_header() made it from
 * remote_addr), then sends nothing until a valid 101 has arrived; bytes
 * after the 101 are the start of the frame stream. Every write is one
 * Binary frame (FIN, masked with a fresh random key).
 * Server: checks the request as rathole does (GET, HTTP/1.1 or later,
 * Connection holds the token upgrade, Upgrade: websocket, version 13, a
 * key; early data after the request fails it) and answers rathole's exact
 * 101; every write is one unmasked Binary frame.
 * Both: reading concatenates Binary payloads (empty and fragmented
 * messages accepted); a Close frame is end of stream for reading; a TCP
 * EOF without Close is also end of stream (logged at debug); Text frames,
 * a wrong mask bit, reserved bits, oversized frames or messages fail the
 * connection with MR_EWS and one line from last_error(). shutdown_wr sends
 * a Close frame with an empty payload and then the lower layer's
 * shutdown_wr; after it, frames the peer sends are still delivered.
 *
 * Ownership: xport_ws_new takes lower (closed also on failure) and returns
 * a layer owned by the caller; host is copied. */
#ifndef MOLERAT_XPORT_WS_H
#define MOLERAT_XPORT_WS_H

#include <stdbool.h>

#include "xport/xport.h"

/* server: answer upgrades; else send one. host: the client's Host header
 * value (ignored by a server). NULL only on out-of-memory. */
struct xport *xport_ws_new(bool server, const char *host, struct xport *lower);

#endif
