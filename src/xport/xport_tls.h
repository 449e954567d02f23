/* xport_tls: the tls transport (protocol.md#p-tls) over OpenSSL 3.
 *
 * A struct tls_ctx is built once per role from [*.transport.tls]:
 *   server: the identity from pkcs12 + pkcs12_password (leaf, key and the
 *           chain in the file, all sent; a file of OpenSSL 1.x's legacy
 *           algorithms loads OpenSSL's legacy provider); TLS 1.2 and 1.3;
 *           no client certificate, no ALPN; never depends on SNI (an IP
 *           literal as SNI is accepted). No session cache; one stateless
 *           session ticket per handshake, for resumption. trusted_root,
 *           if set, is read and must parse.
 *   client: trust = the system store (SSL_CERT_FILE / SSL_CERT_DIR
 *           honoured) plus the first certificate of trusted_root; the name
 *           checked is hostname, else the host part of remote_addr (before
 *           its last ':'; the brackets of an IPv6 literal are stripped, a
 *           deliberate fix of protocol.md#q11). An IP literal is checked as
 *           an IP address and sent as no SNI. TLS 1.2 minimum, so a rathole
 *           server (1.2 only) works. Verification is always on. A pkcs12 on
 *           the client is ignored (rathole loads it and uses nothing).
 *           The newest session the server gave a ticket for is offered by
 *           the next connection (a resumed handshake skips the signature
 *           and the certificate checks, done once for the session).
 *
 * The layer sits directly on tcp, or on a finished proxy step, which holds
 * nothing: so it reads and writes the socket itself (SSL_set_fd on
 * lower->fd; the fd stays the lower layer's to close). Its handshake op
 * first drives xport_handshake(lower) to 0 for a step that lands later.
 * That lets OpenSSL hand the record layer to the kernel (kTLS,
 * SSL_OP_ENABLE_KTLS) where the kernel has it; whether it did is logged
 * at debug after each handshake. Like tcp under splice, the process must
 * ignore SIGPIPE (OpenSSL writes the socket with write(2)).
 *
 * Non-blocking throughout. Semantics an owner relies on:
 *   - write: one record (16 KiB) or more per call, maybe fewer bytes than
 *     asked; after -EAGAIN a record holding the first bytes is queued
 *     inside OpenSSL, so the next write must start with the same bytes
 *     (at least as many; the buffer may move). chan, the relay and the UDP
 *     forwarder all retry that way. writev gathers small buffers into one
 *     record.
 *   - read: records are read ahead; pending() is SSL_pending(), or 1 while
 *     whole undecrypted records, or an end of stream / error not yet
 *     returned, wait inside the layer (a read then returns without the fd
 *     becoming readable). A partial record counts for nothing.
 *   - a close_notify from the peer, and an end of stream without one
 *     (rathole's peers may just FIN), read as 0; the other direction goes
 *     on. shutdown_wr sends close_notify once, without waiting for the
 *     peer's (-EAGAIN while it cannot be flushed). close sends one too, a
 *     best-effort like tcp's FIN, when shutdown_wr did not.
 *   - idle connections hold no record buffers (SSL_MODE_RELEASE_BUFFERS).
 *   - never XPORT_F_SHORT_IO_EXACT (records are held above the kernel).
 *   - splice_fd is always -1, even when kTLS is on both ways. The relay
 *     moves a direction by copy, then by splice after a full read, and
 *     back; a copy read through SSL_read may leave decrypted bytes inside
 *     OpenSSL (SSL_pending), which the next splice read from the socket
 *     would jump over, reordering the stream. (A splice read that meets a
 *     record other than data, a close_notify or a TLS 1.3 KeyUpdate,
 *     fails with EINVAL, which the relay already takes as "copy from now
 *     on": that part would be safe.) Splicing a kTLS socket needs the
 *     relay to check pending() before each splice read; and this
 *     machine's kernel has no tls ULP to test it on. OpenSSL 3.0 turns on
 *     kTLS receive for TLS 1.2 only anyway; kTLS send still moves the
 *     encryption into the kernel under SSL_write, without splice.
 *
 * Errors: a failed handshake is MR_ETLS, and so is a TLS failure after it
 * (a bad record, an alert); a socket error after the handshake is -errno,
 * as on tcp. Each failure leaves one line in xport_last_error(): what went
 * wrong and what to do ("certificate verify failed: self-signed
 * certificate (...); set trusted_root to the CA that signed the server's
 * certificate", "the client is not speaking TLS (wrong version number);
 * is its transport.type \"tcp\"? ..."). OpenSSL's per-thread error queue
 * is emptied after every call, so one connection's errors never show up
 * on another.
 *
 * Ownership: tls_ctx_new returns a context the role owns (tls_ctx_free);
 * each layer keeps a reference to it, so the context may be freed while
 * connections run. xport_tls_new takes lower (closed also on failure) and
 * returns a layer owned by the caller. One thread at a time per layer;
 * the context's reference count is atomic.
 *
 * Code: xport/tls_ctx.c (the context), xport/xport_tls.c (the layer and
 * its error lines), xport/tls_int.h (what the two share). */
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
 * the handshake. Failures are MR_ETLS with xport_last_error() saying why.
 * NULL only on out-of-memory (lower is closed then). */
struct xport *xport_tls_new(struct tls_ctx *c, struct xport *lower);

#endif
