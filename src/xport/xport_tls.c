/* xport_tls: the tls layer (see xport_tls.h): one SSL per connection on
 * the socket's fd, over a context from tls_ctx.c. Every failure leaves
 * one line for xport_last_error(), built from what OpenSSL says (the
 * verify callback, the error queue) and what to do about it. */
#include "xport/tls_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "base/err.h"
#include "base/log.h"
#include "base/loop.h"

enum {
	TLS_ERR_MAX = 400,         /* last_error's buffer */
	TLS_NAMES_MAX = 120,       /* a certificate's names, as shown in a message */
	TLS_COALESCE = 16384,      /* writev gathers up to one record's worth */
};

/* ------------------------------------------------------------------ */
/* The layer */

struct xport_tls {
	struct xport base;       /* first: a struct xport * is a struct xport_tls * */
	struct tls_ctx *ctx;     /* a reference */
	SSL *ssl;
	unsigned want;           /* LOOP_READ or LOOP_WRITE: what the last -EAGAIN needed */
	bool hs_done;
	bool shut_sent;          /* close_notify sent (or queued and flushed) */
	bool read_starved;       /* the last read wanted the socket: buffered bytes
				  * (SSL_has_pending) are a partial record */
	bool wr_stuck;           /* a record is queued in OpenSSL, not yet on the socket */
	int result;              /* sticky: 1 = end of stream seen, < 0 = failed */
	bool result_told;        /* the read that returns result happened */
	char *err;               /* last_error, allocated on the first failure */
};

static struct xport_tls *to_tls(struct xport *x)
{
	return (struct xport_tls *)x;
}

static const char *peer_word(const struct xport_tls *t)
{
	return t->ctx->server ? "client" : "server";
}

static void set_err(struct xport_tls *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(struct xport_tls *t, const char *fmt, ...)
{
	if (!t->err && !(t->err = malloc(TLS_ERR_MAX)))
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->err, TLS_ERR_MAX, fmt, ap);
	va_end(ap);
}

/* Peer-controlled text (certificate names) made safe for a log line. */
static void clean_text(char *dst, size_t cap, const unsigned char *src, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 1 < cap; i++)
		dst[o++] = src[i] >= 0x20 && src[i] < 0x7f && src[i] != '"' ? (char)src[i] : '?';
	dst[o] = 0;
}

static void append(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t cap, const char *fmt, ...)
{
	size_t o = strlen(buf);
	if (o + 1 >= cap)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf + o, cap - o, fmt, ap);
	va_end(ap);
}

/* A certificate's common name ("CN=x"), or "(no common name)". */
static void cert_cn(X509 *c, char *buf, size_t cap)
{
	char cn[128];
	int n = c ? X509_NAME_get_text_by_NID(X509_get_subject_name(c), NID_commonName, cn, sizeof(cn)) : -1;
	if (n < 0) {
		snprintf(buf, cap, "(no common name)");
		return;
	}
	char clean[41];   /* a long name would push the advice out of the line */
	clean_text(clean, sizeof(clean), (const unsigned char *)cn, (size_t)n);
	snprintf(buf, cap, "CN=%s%s", clean, (size_t)n >= sizeof(clean) ? "..." : "");
}

/* The names a certificate is for: its subjectAltNames (DNS:x, IP:y), else
 * its common name. */
static void cert_names(X509 *c, char *buf, size_t cap)
{
	buf[0] = 0;
	GENERAL_NAMES *gens = c ? X509_get_ext_d2i(c, NID_subject_alt_name, NULL, NULL) : NULL;
	int shown = 0, total = gens ? sk_GENERAL_NAME_num(gens) : 0;
	for (int i = 0; i < total; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		char one[96];
		if (g->type == GEN_DNS) {
			char clean[80];
			clean_text(clean, sizeof(clean), ASN1_STRING_get0_data(g->d.dNSName),
				   (size_t)ASN1_STRING_length(g->d.dNSName));
			snprintf(one, sizeof(one), "DNS:%s", clean);
		} else if (g->type == GEN_IPADD) {
			char ip[INET6_ADDRSTRLEN] = "?";
			int l = ASN1_STRING_length(g->d.iPAddress);
			const unsigned char *d = ASN1_STRING_get0_data(g->d.iPAddress);
			if (l == 4 || l == 16)
				inet_ntop(l == 4 ? AF_INET : AF_INET6, d, ip, sizeof(ip));
			snprintf(one, sizeof(one), "IP:%s", ip);
		} else {
			continue;
		}
		if (shown == 4) {
			append(buf, cap, ", ...");
			break;
		}
		append(buf, cap, "%s%s", shown ? ", " : "", one);
		shown++;
	}
	GENERAL_NAMES_free(gens);
	if (!shown)
		cert_cn(c, buf, cap);
}

static void fmt_time(const ASN1_TIME *at, char *buf, size_t cap)
{
	struct tm tm;
	if (!at || ASN1_TIME_to_tm(at, &tm) != 1 || strftime(buf, cap, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(buf, cap, "(unreadable date)");
}

/* The client's verify callback: on the first failure, the line saying what
 * is wrong with the server's certificate and what to do. The result is
 * OpenSSL's (a failure stays a failure). */
int tls_verify_cb(int ok, X509_STORE_CTX *sc)
{
	if (ok)
		return ok;
	SSL *ssl = X509_STORE_CTX_get_ex_data(sc, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct xport_tls *t = ssl ? SSL_get_app_data(ssl) : NULL;
	if (!t || t->err)
		return ok;
	int err = X509_STORE_CTX_get_error(sc);
	int depth = X509_STORE_CTX_get_error_depth(sc);
	X509 *cur = X509_STORE_CTX_get_current_cert(sc);
	X509 *leaf = X509_STORE_CTX_get0_cert(sc);
	const char *what = X509_verify_cert_error_string(err);
	char names[TLS_NAMES_MAX], cn[TLS_NAMES_MAX], when[48];
	switch (err) {
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_CERT_UNTRUSTED: {
		char other[TLS_NAMES_MAX + 64] = "";
		cert_cn(leaf, cn, sizeof(cn));
		if (err == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT) {
			snprintf(other, sizeof(other), "is self-signed");
		} else if (err == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN) {
			cert_cn(cur, names, sizeof(names));
			snprintf(other, sizeof(other), "chains to %s, not trusted here", names);
		} else {
			char icn[128];
			int n = cur ? X509_NAME_get_text_by_NID(X509_get_issuer_name(cur), NID_commonName,
								 icn, sizeof(icn)) : -1;
			char clean[80] = "(no common name)";
			if (n >= 0) {
				char c2[41];
				clean_text(c2, sizeof(c2), (const unsigned char *)icn, (size_t)n);
				snprintf(clean, sizeof(clean), "CN=%s", c2);
			}
			snprintf(other, sizeof(other), "is issued by %s, not trusted here", clean);
		}
		set_err(t, "certificate verify failed: %s (%s %s); set trusted_root to the CA that signed the "
			   "server's certificate", what, cn, other);
		break;
	}
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CERT_NOT_YET_VALID:
		cert_cn(cur, cn, sizeof(cn));
		if (err == X509_V_ERR_CERT_HAS_EXPIRED)
			fmt_time(cur ? X509_get0_notAfter(cur) : NULL, when, sizeof(when));
		else
			fmt_time(cur ? X509_get0_notBefore(cur) : NULL, when, sizeof(when));
		set_err(t, "certificate verify failed: %s (%s %s is valid %s %s); %s", what,
			depth ? "the CA certificate" : "the server's certificate", cn,
			err == X509_V_ERR_CERT_HAS_EXPIRED ? "until" : "from", when,
			err == X509_V_ERR_CERT_HAS_EXPIRED
				? "renew the server's certificate, or check this machine's clock"
				: "check the clocks of this machine and of the server");
		break;
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		cert_names(leaf, names, sizeof(names));
		set_err(t, "certificate verify failed: %s: the certificate is for %s, not %s; set hostname "
			   "to a name in the certificate", what, names, t->ctx->name);
		break;
	default:
		cert_cn(cur, cn, sizeof(cn));
		set_err(t, "certificate verify failed: %s (certificate %s at depth %d of the server's chain)",
			what, cn, depth);
		break;
	}
	return ok;
}

/* A TLS alert the peer sent, from an error reason (SSL_AD_REASON_OFFSET +
 * the alert); -1 when the reason is not a received alert. */
static int received_alert(int reason)
{
	return reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256
		       ? reason - SSL_AD_REASON_OFFSET : -1;
}

/* The line for a failed handshake that OpenSSL reports as SSL_ERROR_SSL. */
static void explain_ssl_error(struct xport_tls *t, unsigned long e)
{
	int reason = ERR_GET_REASON(e);
	const char *text = tls_reason_text(e, "unknown error");
	const char *peer = peer_word(t);
	int alert = received_alert(reason);
	if (alert >= 0) {
		const char *an = SSL_alert_desc_string_long(alert);
		if (alert == SSL_AD_PROTOCOL_VERSION)
			set_err(t, "the %s refused our TLS versions (alert \"%s\"): molerat speaks TLS 1.2 and "
				   "1.3", peer, an);
		else if (!t->ctx->server)
			set_err(t, "the server ended the TLS handshake with alert \"%s\"%s", an,
				alert == SSL_AD_HANDSHAKE_FAILURE ? ": no cipher or version in common" : "");
		else if (alert == SSL_AD_UNKNOWN_CA || alert == SSL_AD_CERTIFICATE_UNKNOWN)
			set_err(t, "the client does not trust our certificate (it sent alert \"%s\"); set the "
				   "client's trusted_root to the CA that signed our certificate", an);
		else if (alert == SSL_AD_BAD_CERTIFICATE)
			set_err(t, "the client rejected our certificate (alert \"%s\"), most likely its name: "
				   "set the client's hostname to a name in our certificate", an);
		else if (alert == SSL_AD_CERTIFICATE_EXPIRED)
			set_err(t, "the client says our certificate has expired (alert \"%s\"); renew "
				   "server.transport.tls.pkcs12", an);
		else
			set_err(t, "the client ended the TLS handshake with alert \"%s\"", an);
		return;
	}
	switch (reason) {
	case SSL_R_CERTIFICATE_VERIFY_FAILED:
		if (!t->err) /* the callback did not run: say what OpenSSL says */
			set_err(t, "certificate verify failed: %s; set trusted_root to the CA that signed the "
				   "server's certificate",
				X509_verify_cert_error_string(SSL_get_verify_result(t->ssl)));
		return;
	case SSL_R_WRONG_VERSION_NUMBER:
	case SSL_R_HTTP_REQUEST:
	case SSL_R_HTTPS_PROXY_REQUEST:
	case SSL_R_UNKNOWN_PROTOCOL:
	case SSL_R_PACKET_LENGTH_TOO_LONG:
	case SSL_R_RECORD_LENGTH_MISMATCH:
		set_err(t, "the %s is not speaking TLS (%s); is its transport.type \"tcp\"? Both ends must "
			   "use type = \"tls\"", peer, text);
		return;
	case SSL_R_UNSUPPORTED_PROTOCOL:
	case SSL_R_NO_PROTOCOLS_AVAILABLE:
	case SSL_R_VERSION_TOO_LOW:
	case SSL_R_VERSION_TOO_HIGH:
	case SSL_R_WRONG_SSL_VERSION:
	case SSL_R_UNSUPPORTED_SSL_VERSION:
		set_err(t, "the %s offers no TLS version we accept (%s): molerat needs TLS 1.2 or 1.3", peer,
			text);
		return;
	case SSL_R_UNEXPECTED_EOF_WHILE_READING:
		break;  /* below, with the other ends of stream */
	default:
		set_err(t, "TLS handshake failed: %s", text);
		return;
	}
	set_err(t, "the %s closed the connection during the TLS handshake%s", peer,
		t->ctx->server ? "" : "; is its transport.type \"tls\"?");
}

/* Called after an SSL call returned r <= 0 (errno saved right after it).
 * Returns -EAGAIN (want recorded), 0 for the end of stream, or the error:
 * MR_ETLS, or -errno for a socket error after the handshake. */
static ssize_t tls_failed(struct xport_tls *t, int r, int saved_errno)
{
	int code = SSL_get_error(t->ssl, r);
	unsigned long e = tls_drain_errors(true);
	switch (code) {
	case SSL_ERROR_WANT_READ:
		t->want = LOOP_READ;
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		t->want = LOOP_WRITE;
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		if (t->hs_done)
			return 0;
		set_err(t, "the %s closed the connection during the TLS handshake%s", peer_word(t),
			t->ctx->server ? "" : "; is its transport.type \"tls\"?");
		return MR_ETLS;
	case SSL_ERROR_SYSCALL:
		if (!saved_errno || saved_errno == EAGAIN) {
			if (t->hs_done)
				return 0;  /* an end of stream without close_notify */
			set_err(t, "the %s closed the connection during the TLS handshake%s", peer_word(t),
				t->ctx->server ? "" : "; is its transport.type \"tls\"?");
			return MR_ETLS;
		}
		if (t->hs_done) {
			set_err(t, "TLS connection: %s", strerror(saved_errno));
			return -saved_errno;
		}
		set_err(t, "TLS handshake: %s%s", strerror(saved_errno),
			saved_errno == ECONNRESET && !t->ctx->server
				? " (the server dropped our TLS hello: is its transport.type \"tls\"?)" : "");
		return MR_ETLS;
	case SSL_ERROR_SSL:
		if (!t->hs_done) {
			explain_ssl_error(t, e);
		} else {
			int alert = received_alert(ERR_GET_REASON(e));
			if (alert >= 0)
				set_err(t, "the %s ended the TLS session with alert \"%s\"", peer_word(t),
					SSL_alert_desc_string_long(alert));
			else
				set_err(t, "TLS record error: %s", tls_reason_text(e, "unknown error"));
		}
		return MR_ETLS;
	default:
		set_err(t, "TLS failed (OpenSSL error %d: %s)", code, tls_reason_text(e, "unknown error"));
		return MR_ETLS;
	}
}

static int tls_handshake(struct xport *x)
{
	struct xport_tls *t = to_tls(x);
	if (t->hs_done)
		return 0;
	if (t->result < 0)
		return t->result;
	/* a proxy step below may land later: finish it first */
	int r = xport_handshake(x->lower);
	if (r == -EAGAIN) {
		t->want = xport_want(x->lower);
		return r;
	}
	if (r < 0)
		return r;
	ERR_clear_error();
	errno = 0;
	r = SSL_do_handshake(t->ssl);
	int saved = errno;
	if (r == 1) {
		t->hs_done = true;
		tls_drain_errors(false);
		if (log_enabled(LOGL_DEBUG)) {
			bool ktx = BIO_get_ktls_send(SSL_get_wbio(t->ssl));
			bool krx = BIO_get_ktls_recv(SSL_get_rbio(t->ssl));
			log_debug("tls: fd %d: %s %s%s, kTLS send %s, receive %s", x->fd, SSL_get_version(t->ssl),
				  SSL_get_cipher_name(t->ssl), SSL_session_reused(t->ssl) ? ", resumed" : "",
				  ktx ? "on" : "off", krx ? "on" : "off");
		}
		return 0;
	}
	ssize_t e = tls_failed(t, r, saved);
	if (e != -EAGAIN) {
		if (e >= 0)  /* never "done" from a failure */
			e = MR_ETLS;
		if (t->ctx->server && BIO_number_read(SSL_get_rbio(t->ssl)) == 0)
			/* closed before sending a byte: a port probe, not a
			 * TLS problem */
			e = MR_EEOF;
		t->result = (int)e;
		t->result_told = true;
	}
	return (int)e;
}

static ssize_t tls_read(struct xport *x, void *buf, size_t len)
{
	struct xport_tls *t = to_tls(x);
	if (t->result) {
		t->result_told = true;
		return t->result > 0 ? 0 : t->result;
	}
	if (!t->hs_done)
		return -EAGAIN;   /* an owner that reads before the handshake: nothing yet */
	size_t got = 0;
	while (got < len) {
		size_t n = 0;
		ERR_clear_error();
		errno = 0;
		int r = SSL_read_ex(t->ssl, (char *)buf + got, len - got, &n);
		int saved = errno;
		if (r == 1) {
			got += n;
			t->read_starved = false;
			/* more without the socket only while records are buffered */
			if (!SSL_has_pending(t->ssl))
				break;
			continue;
		}
		ssize_t e = tls_failed(t, r, saved);
		if (e == -EAGAIN) {
			t->read_starved = true;
			if (got)
				break;
			return e;
		}
		/* the end of stream or an error: returned now, or by the next
		 * read (pending() says there is something to read) */
		t->result = e == 0 ? 1 : (int)e;
		if (got)
			break;
		t->result_told = true;
		return e;
	}
	return (ssize_t)got;
}

static ssize_t tls_write(struct xport *x, const void *buf, size_t len)
{
	struct xport_tls *t = to_tls(x);
	if (t->result < 0)
		return t->result;
	if (!t->hs_done) {
		t->want = LOOP_WRITE;
		return -EAGAIN;
	}
	size_t done = 0;
	while (done < len) {
		size_t n = 0;
		ERR_clear_error();
		errno = 0;
		/* one record per call (partial writes): on -EAGAIN the record
		 * holding buf[done..] is queued in OpenSSL, and the owner's
		 * retry starts with the same bytes */
		int r = SSL_write_ex(t->ssl, (const char *)buf + done, len - done, &n);
		int saved = errno;
		if (r == 1) {
			done += n;
			t->wr_stuck = false;
			continue;
		}
		ssize_t e = tls_failed(t, r, saved);
		if (e == -EAGAIN) {
			t->wr_stuck = true;
			break;
		}
		if (e == 0) /* a write never reads an end of stream; be safe */
			e = -EPIPE;
		t->result = (int)e;
		break;
	}
	if (done)
		return (ssize_t)done;
	return t->result < 0 ? t->result : -EAGAIN;
}

/* Gathers small buffers into one record (rathole's messages are a few
 * bytes each; a record each would cost 22 bytes and a MAC per message). */
static ssize_t tls_writev(struct xport *x, const struct iovec *iov, int iovcnt)
{
	int first = 0;
	while (first < iovcnt && !iov[first].iov_len)
		first++;
	if (first == iovcnt)
		return 0;
	if (iovcnt - first == 1 || iov[first].iov_len >= TLS_COALESCE)
		return tls_write(x, iov[first].iov_base, iov[first].iov_len);
	unsigned char gather[TLS_COALESCE];
	size_t n = 0;
	for (int i = first; i < iovcnt && n < sizeof(gather); i++) {
		size_t take = iov[i].iov_len < sizeof(gather) - n ? iov[i].iov_len : sizeof(gather) - n;
		memcpy(gather + n, iov[i].iov_base, take);
		n += take;
	}
	return tls_write(x, gather, n);
}

static int tls_shutdown_wr(struct xport *x)
{
	struct xport_tls *t = to_tls(x);
	if (t->result < 0)
		return t->result;
	if (t->shut_sent)
		return 0;
	if (!t->hs_done) {
		t->want = LOOP_WRITE;
		return -EAGAIN;
	}
	ERR_clear_error();
	errno = 0;
	/* once: sends close_notify; the peer's is not waited for (a second
	 * call would wait for it). -1 with WANT_WRITE: the alert is queued,
	 * the next call flushes it */
	int r = SSL_shutdown(t->ssl);
	int saved = errno;
	if (r >= 0) {
		tls_drain_errors(false);
		t->shut_sent = true;
		return 0;
	}
	ssize_t e = tls_failed(t, r, saved);
	if (e == 0)
		e = -EPIPE;
	if (e != -EAGAIN)
		t->result = (int)e;
	return (int)e;
}

static unsigned tls_want(struct xport *x)
{
	return to_tls(x)->want;
}

static size_t tls_pending(struct xport *x)
{
	struct xport_tls *t = to_tls(x);
	if (t->result)   /* an end of stream or error read but not yet returned */
		return t->result_told ? 0 : 1;
	if (!t->hs_done)
		return 0;
	size_t n = (size_t)SSL_pending(t->ssl);
	if (n)
		return n;
	/* whole records read ahead, not yet decrypted; a partial one (the
	 * last read wanted the socket) needs the socket first */
	return !t->read_starved && SSL_has_pending(t->ssl) ? 1 : 0;
}

static const char *tls_last_error(struct xport *x)
{
	struct xport_tls *t = to_tls(x);
	if (t->err)
		return t->err;
	return x->lower ? xport_last_error(x->lower) : NULL;
}

static void tls_close(struct xport *x)
{
	struct xport_tls *t = to_tls(x);
	if (t->ssl) {
		/* a best-effort close_notify, as a FIN on tcp: one non-blocking
		 * try, never with a record still queued (it would go first) */
		if (t->hs_done && !t->shut_sent && !t->wr_stuck && t->result >= 0) {
			ERR_clear_error();
			SSL_shutdown(t->ssl);
		}
		tls_drain_errors(false);
		SSL_free(t->ssl);
	}
	tls_ctx_unref(t->ctx);
	free(t->err);
	xport_close(x->lower);
	free(t);
}

static const struct xport_ops tls_ops = {
	.name = "tls",
	.handshake = tls_handshake,
	.read = tls_read,
	.write = tls_write,
	.writev = tls_writev,
	.shutdown_wr = tls_shutdown_wr,
	.want = tls_want,
	.pending = tls_pending,
	.close = tls_close,
	.last_error = tls_last_error,
};

struct xport *xport_tls_new(struct tls_ctx *c, struct xport *lower)
{
	if (!lower)
		return NULL;
	struct xport_tls *t = calloc(1, sizeof(*t));
	if (!t) {
		xport_close(lower);
		return NULL;
	}
	ERR_clear_error();
	t->ssl = SSL_new(c->ssl_ctx);
	/* the socket itself, so OpenSSL may hand the records to the kernel
	 * (kTLS); the fd stays the lower layer's (BIO_NOCLOSE) */
	if (!t->ssl || SSL_set_fd(t->ssl, lower->fd) != 1 ||
	    (!c->server && !c->name_is_ip && SSL_set_tlsext_host_name(t->ssl, c->name) != 1)) {
		log_warn("tls: cannot set up a TLS connection: %s",
			 tls_reason_text(tls_drain_errors(false), "out of memory"));
		SSL_free(t->ssl);
		free(t);
		xport_close(lower);
		return NULL;
	}
	SSL_set_app_data(t->ssl, t);
	if (!c->server && c->resume)
		SSL_set_session(t->ssl, c->resume);  /* offered; a full handshake if refused */
	if (c->server)
		SSL_set_accept_state(t->ssl);
	else
		SSL_set_connect_state(t->ssl);
	t->ctx = tls_ctx_ref(c);
	t->base.ops = &tls_ops;
	t->base.lower = lower;
	t->base.fd = lower->fd;
	/* no splice, even when kTLS is on: see xport_tls.h */
	t->base.splice_fd = -1;
	t->base.flags = 0;
	t->want = c->server ? LOOP_READ : LOOP_WRITE;
	return &t->base;
}
