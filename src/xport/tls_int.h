/* tls_int: what the tls transport's two files share (private to
 * xport/tls_ctx.c and xport/xport_tls.c; see xport_tls.h). */
#ifndef MOLERAT_TLS_INT_H
#define MOLERAT_TLS_INT_H

#include <stdatomic.h>
#include <stdbool.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "xport/xport_tls.h"

/* The context: built by tls_ctx_new, shared by the role and every layer
 * (each holds a reference). Nothing in it changes after tls_ctx_new but
 * the client's session to resume. */
struct tls_ctx {
	atomic_uint refs;     /* the role's, and one per layer */
	bool server;
	bool name_is_ip;      /* client: name is an IP literal (no SNI, IP check) */
	SSL_CTX *ssl_ctx;
	char *name;           /* client: the name checked (and sent as SNI) */
	/* client: the newest session the server gave a ticket for, offered by
	 * the next connection (a resumed handshake skips the certificate's
	 * signature and its verification: most of a handshake's CPU). One
	 * reference, replaced by each new ticket; NULL before the first. */
	SSL_SESSION *resume;
};

struct tls_ctx *tls_ctx_ref(struct tls_ctx *c);
void tls_ctx_unref(struct tls_ctx *c);

/* Empties this thread's OpenSSL error queue and returns its most relevant
 * entry: with prefer_ssl the first one from the TLS library (the others
 * are the layers below reporting the same failure), else the first one; 0
 * when the queue was empty. Every failure path calls it, so one
 * connection's errors never show up on another. */
unsigned long tls_drain_errors(bool prefer_ssl);
/* The reason text of an error code, or fallback. */
const char *tls_reason_text(unsigned long e, const char *fallback);

/* The client's verify callback (xport_tls.c): on the first failure, the
 * line for the layer's last_error. */
int tls_verify_cb(int ok, X509_STORE_CTX *sc);

#endif
