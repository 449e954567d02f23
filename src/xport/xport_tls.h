/* xport_tls: the tls transport (protocol.md#p-tls) over OpenSSL 3.
 *
 * A struct tls_ctx is built once per role from [*.transport.tls]:
 *   server: the identity from pkcs12 + pkcs12_password (leaf, key and the
 *           chain in the file, all sent); TLS 1.2 and 1.3; no client
 *           certificate, no ALPN; never depends on SNI (an IP literal as
 *           SNI is accepted). trusted_root, if set, is read and must parse.
 *   client: trust = the system store (SSL_CERT_FILE / SSL_CERT_DIR
 *           honoured) plus the first certificate of trusted_root; the name
 *           checked is hostname, else the host part of remote_addr (an IP
 *           literal is checked as an IP address and sent as no SNI);
 *           TLS 1.2 minimum, so a rathole server (1.2 only) works.
 *
 * The layer sits directly on tcp (or on a finished proxy step, which holds
 * nothing), so it reads and writes the socket itself: that lets OpenSSL
 * hand the record layer to the kernel (kTLS) where the kernel has it.
 * Idle record buffers are released (SSL_MODE_RELEASE_BUFFERS). Half-close
 * is close_notify (shutdown_wr); a close_notify from the peer reads as end
 * of stream.
 *
 * Ownership: tls_ctx_new returns a context the role owns (tls_ctx_free);
 * each layer keeps its own reference to what it needs, so the context may
 * be freed while connections run. xport_tls_new takes lower (closed also
 * on failure) and returns a layer owned by the caller. */
#ifndef MOLERAT_XPORT_TLS_H
#define MOLERAT_XPORT_TLS_H

#include <stdbool.h>

#include "codec/conf.h"
#include "xport/xport.h"

struct tls_ctx;

/* Loads the files. On failure logs one line naming the key and the file
 * (sec is "server" or "client", for "server.transport.tls.pkcs12: ...")
 * and what to do, and returns NULL. */
struct tls_ctx *tls_ctx_new(const struct conf_tls *t, bool server, const char *remote_addr,
			    const char *sec);
void tls_ctx_free(struct tls_ctx *c);

/* A TLS layer over lower: a server layer answers, a client layer starts
 * the handshake. Failures are MR_ETLS with xport_last_error() saying why. */
struct xport *xport_tls_new(struct tls_ctx *c, struct xport *lower);

#endif
