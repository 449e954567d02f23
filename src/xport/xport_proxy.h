/* xport_proxy: the client's proxy step (protocol.md#p-proxy) as a layer of
 * the transport stack: over a tcp layer connected to the proxy, its
 * handshake asks the proxy for a tunnel to the server (SOCKS5 CONNECT,
 * RFC 1928/1929, or HTTP CONNECT with Basic auth), and from then on it is
 * out of the way: reads, writes and shutdown go straight to the lower
 * layer, and its splice_fd and flags become the lower layer's. The layers
 * above it (tls, noise, websocket, or none) start their handshakes after
 * it.
 *
 * A struct proxy_conf is built once per client from the proxy URL and
 * remote_addr (proxy_conf_new), with protocol.md#q12's allowed fixes:
 * credentials percent-decoded, an IP-literal target sent as an address
 * (SOCKS5 ATYP 1 or 4; brackets kept in an HTTP authority), a name left to
 * the proxy to resolve. A URL without a port (or with the scheme's
 * default, which the URL library reports as none) makes rathole panic;
 * molerat then dials port 80 for http and 1080 for socks5. The requests
 * (greeting, user/password, CONNECT) are built there once, since they are
 * the same for every connection; the bytes are codec/proxy_proto.h's.
 *
 * Handshake states, in order (a SOCKS5 proxy skips the auth pair when it
 * chose "no authentication"):
 *   SOCKS5: send greeting, read method, [send auth, read auth], send
 *           CONNECT, read its reply (exactly: no byte of the tunnel is
 *           taken), open
 *   HTTP:   send CONNECT, read the response head (at most 4,096 bytes, 16
 *           header lines, a 2xx status, nothing after the blank line:
 *           the client speaks first), open
 * Before open, splice_fd is -1 and flags 0; from open on they are the
 * lower layer's, so the plain-tcp relay still splices through a proxy.
 * The handshake has no timer of its own: the owner's deadline bounds it.
 *
 * Failures (refused, an auth method molerat lacks, wrong credentials,
 * garbage, EOF) end that connection with MR_EPROXY; last_error() gives one
 * line naming the proxy and what it said ("proxy socks5://127.0.0.1:1080
 * refused the connection to example.com:2333: connection refused (reply
 * 5)"). Passwords never appear in a log line. While the handshake waits,
 * last_error() says where it stands, for an owner whose deadline ran out
 * ("proxy socks5://127.0.0.1:1080 has not answered the SOCKS5 greeting");
 * once open it is the lower layer's.
 *
 * Ownership: a struct proxy_conf is refcounted: proxy_conf_new returns
 * one reference (the stack's, xport/stack.c), every layer takes its own,
 * and the last proxy_conf_unref wipes the decoded credentials
 * (OPENSSL_cleanse) and frees it. xport_proxy_new takes lower (closed also
 * on failure). */
#ifndef MOLERAT_XPORT_PROXY_H
#define MOLERAT_XPORT_PROXY_H

#include "codec/conf_url.h"
#include "xport/xport.h"

struct proxy_conf;

/* From the parsed proxy URL (scheme socks5 or http) and the client's
 * remote_addr. On failure (another scheme, no host, a target that is not
 * host:port or whose host is longer than 255 bytes, credentials longer
 * than 255 bytes each once decoded, out of memory) logs one line
 * (client.transport.tcp.proxy: ...) and returns NULL. */
struct proxy_conf *proxy_conf_new(const struct conf_url *u, const char *remote_addr);
void proxy_conf_ref(struct proxy_conf *pc);
void proxy_conf_unref(struct proxy_conf *pc);
/* "host:port" of the proxy itself, for the dial (brackets kept for IPv6). */
const char *proxy_conf_dial_addr(const struct proxy_conf *pc);

struct xport *xport_proxy_new(struct proxy_conf *pc, struct xport *lower);

#endif
