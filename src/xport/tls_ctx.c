/* tls_ctx: the tls transport's context (see xport_tls.h): the files of
 * [*.transport.tls] read once at start, into one SSL_CTX per role that
 * every connection shares. Each failure is one log line naming the key,
 * the file and what to do. */
#include "xport/tls_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/x509v3.h>

#include "base/log.h"

enum {
	TLS_FILE_MAX = 16 << 20,   /* a pkcs12 or PEM file larger than this is refused */
};

/* ------------------------------------------------------------------ */
/* OpenSSL's error queue */

unsigned long tls_drain_errors(bool prefer_ssl)
{
	unsigned long e, first = 0, ssl = 0;
	while ((e = ERR_get_error()) != 0) {
		if (!first)
			first = e;
		if (!ssl && ERR_GET_LIB(e) == ERR_LIB_SSL)
			ssl = e;
	}
	return prefer_ssl && ssl ? ssl : first;
}

const char *tls_reason_text(unsigned long e, const char *fallback)
{
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	return r ? r : fallback;
}

/* ------------------------------------------------------------------ */
/* The context */

struct tls_ctx *tls_ctx_ref(struct tls_ctx *c)
{
	atomic_fetch_add(&c->refs, 1);
	return c;
}

void tls_ctx_unref(struct tls_ctx *c)
{
	if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	SSL_SESSION_free(c->resume);
	SSL_CTX_free(c->ssl_ctx);
	free(c->name);
	free(c);
}

/* Client: a session ticket arrived; keep the newest for the next
 * connection. Returns 1: OpenSSL's reference is now ours. */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct tls_ctx *c = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	if (!c || !SSL_SESSION_is_resumable(sess))
		return 0;
	SSL_SESSION_free(c->resume);
	c->resume = sess;
	return 1;
}

void tls_ctx_free(struct tls_ctx *c)
{
	tls_ctx_unref(c);
}

/* One start-up error line: "server.transport.tls.pkcs12: ...". */
static void ctx_error(const char *sec, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void ctx_error(const char *sec, const char *key, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_error("%s.transport.tls.%s: %s", sec, key, msg);
}

/* Reads a whole file (at most TLS_FILE_MAX bytes). 0, or -errno
 * (-EFBIG when too large). */
static int read_file(const char *path, unsigned char **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	if (S_ISDIR(st.st_mode)) {
		close(fd);
		return -EISDIR;
	}
	size_t cap = 4096, n = 0;
	unsigned char *buf = malloc(cap);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		if (n == cap) {
			if (cap >= TLS_FILE_MAX) {
				free(buf);
				close(fd);
				return -EFBIG;
			}
			unsigned char *b = realloc(buf, cap * 2);
			if (!b) {
				free(buf);
				close(fd);
				return -ENOMEM;
			}
			buf = b;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = -errno;
			free(buf);
			close(fd);
			return e;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	*out = buf;
	*len = n;
	return 0;
}

/* Reads path and logs why not: "cannot read PATH: No such file or
 * directory; ...". */
static unsigned char *load_file(const char *sec, const char *key, const char *path, size_t *len)
{
	unsigned char *data = NULL;
	int r = read_file(path, &data, len);
	if (r == -EFBIG) {
		ctx_error(sec, key, "%s is larger than %d MiB; is it the right file?", path, TLS_FILE_MAX >> 20);
		return NULL;
	}
	if (r < 0) {
		ctx_error(sec, key, "cannot read %s: %s; check the path (a relative path starts from the "
			  "working directory) and its permissions", path, strerror(-r));
		return NULL;
	}
	if (*len == 0) {
		ctx_error(sec, key, "%s is empty", path);
		free(data);
		return NULL;
	}
	return data;
}

static int no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf; (void)size; (void)rwflag; (void)u;
	return -1;
}

/* The first certificate of a PEM file (rathole: Certificate::from_pem),
 * or NULL after logging why. */
static X509 *load_first_pem_cert(const char *sec, const char *path)
{
	size_t len = 0;
	unsigned char *data = load_file(sec, "trusted_root", path, &len);
	if (!data)
		return NULL;
	X509 *cert = NULL;
	BIO *b = BIO_new_mem_buf(data, (int)len);
	if (b)
		cert = PEM_read_bio_X509(b, NULL, no_password, NULL);
	BIO_free(b);
	free(data);
	unsigned long e = tls_drain_errors(false);
	if (!cert)
		ctx_error(sec, "trusted_root", "%s holds no PEM certificate (%s); it must be a PEM file "
			  "beginning with the CA's \"-----BEGIN CERTIFICATE-----\"", path,
			  tls_reason_text(e, "no certificate found"));
	return cert;
}

/* The settings both sides share. */
static void ctx_common(SSL_CTX *s)
{
	SSL_CTX_set_min_proto_version(s, TLS1_2_VERSION);
	/* EOF without close_notify reads as EOF (rathole's peers may just
	 * FIN); kTLS where the kernel has it; no renegotiation (neither side
	 * ever asks for one) */
	SSL_CTX_set_options(s, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_ENABLE_KTLS | SSL_OP_NO_RENEGOTIATION);
	/* a write may take fewer bytes and be retried from another address;
	 * idle connections hold no record buffers */
	SSL_CTX_set_mode(s, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				    SSL_MODE_RELEASE_BUFFERS);
	/* read several records per recv(2); pending() accounts for them. The
	 * read buffer holds four full records, so a relay's 64 KiB read costs
	 * one recv(2), not four (the buffer is released when idle) */
	SSL_CTX_set_read_ahead(s, 1);
	SSL_CTX_set_default_read_buffer_len(s, 4 * SSL3_RT_MAX_PACKET_SIZE);
}

/* PKCS#12 files written by OpenSSL 1.x (and by many tools still) use RC2 or
 * 3DES, which OpenSSL 3 keeps in the legacy provider: loaded for the retry
 * of the parse only (the default provider stays), then unloaded. */
static OSSL_PROVIDER *load_legacy_provider(void)
{
	OSSL_PROVIDER *p = OSSL_PROVIDER_try_load(NULL, "legacy", 1);
	tls_drain_errors(false);
	if (!p)
		log_debug("tls: the OpenSSL legacy provider is not available");
	return p;
}

/* A server's identity into s. 0, or -1 after logging why. */
static int load_identity(SSL_CTX *s, const struct conf_tls *t, const char *sec)
{
	const char *path = t->pkcs12;
	if (!path) {
		ctx_error(sec, "pkcs12", "not set: a tls server needs its identity, a PKCS#12 file with "
			  "its certificate, key and chain; add pkcs12 = \"identity.pfx\"");
		return -1;
	}
	size_t len = 0;
	unsigned char *data = load_file(sec, "pkcs12", path, &len);
	if (!data)
		return -1;
	const unsigned char *p = data;
	PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
	free(data);
	if (!p12) {
		unsigned long e = tls_drain_errors(false);
		ctx_error(sec, "pkcs12", "%s is not a PKCS#12 file (%s); make one with \"openssl pkcs12 "
			  "-export -inkey key.pem -in cert.pem -certfile ca.pem -out %s\"", path,
			  tls_reason_text(e, "cannot decode it"), path);
		return -1;
	}
	const char *pass = t->pkcs12_password;
	/* the MAC check first, which tells a wrong password apart; an empty
	 * password is tried as none and as "", as PKCS12_parse does */
	if (PKCS12_mac_present(p12)) {
		bool ok = pass && *pass ? PKCS12_verify_mac(p12, pass, -1)
					: PKCS12_verify_mac(p12, NULL, 0) || PKCS12_verify_mac(p12, "", 0);
		tls_drain_errors(false);
		if (!ok) {
			if (!pass)
				ctx_error(sec, "pkcs12_password", "not set, and %s needs a password; set "
					  "pkcs12_password to the password of the file", path);
			else
				ctx_error(sec, "pkcs12_password", "wrong password for %s (its integrity "
					  "check fails); set pkcs12_password to the password the file "
					  "was exported with", path);
			PKCS12_free(p12);
			return -1;
		}
	}
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	STACK_OF(X509) *chain = NULL;
	int ok = PKCS12_parse(p12, pass, &key, &cert, &chain);
	unsigned long e = tls_drain_errors(false);
	OSSL_PROVIDER *legacy = ok ? NULL : load_legacy_provider();
	if (legacy) {
		ok = PKCS12_parse(p12, pass, &key, &cert, &chain);
		e = tls_drain_errors(false);
		log_debug("tls: %s: %s with OpenSSL's legacy provider", path, ok ? "read" : "unreadable even");
		OSSL_PROVIDER_unload(legacy);
	}
	PKCS12_free(p12);
	int rc = -1;
	if (!ok)
		ctx_error(sec, "pkcs12", "cannot decrypt %s (%s); export it again with \"openssl pkcs12 "
			  "-export\" from OpenSSL 3", path, tls_reason_text(e, "unknown error"));
	else if (!key)
		ctx_error(sec, "pkcs12", "%s holds no private key; export it with -inkey key.pem", path);
	else if (!cert)
		ctx_error(sec, "pkcs12", "%s holds no certificate for its key; it must hold the server's "
			  "certificate and key (and the chain)", path);
	else if (SSL_CTX_use_cert_and_key(s, cert, key, chain, 1) != 1)
		ctx_error(sec, "pkcs12", "cannot use the certificate and key of %s (%s)", path,
			  tls_reason_text(tls_drain_errors(false), "unknown error"));
	else
		rc = 0;
	if (rc == 0)
		log_debug("tls: %s: certificate and key, %d chain certificate%s", path,
			  chain ? sk_X509_num(chain) : 0, chain && sk_X509_num(chain) == 1 ? "" : "s");
	EVP_PKEY_free(key);
	X509_free(cert);
	sk_X509_pop_free(chain, X509_free);
	tls_drain_errors(false);
	return rc;
}

/* Is s an IP literal (v4 or v6, without brackets)? */
static bool is_ip_literal(const char *s)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* The name a client checks: hostname, else remote_addr's host (the part
 * before the last ':'; the brackets of an IPv6 literal are stripped, a
 * deliberate fix of protocol.md#q11). NULL after logging why. */
static char *client_name(const struct conf_tls *t, const char *remote_addr, const char *sec)
{
	if (t->hostname) {
		if (!t->hostname[0]) {
			ctx_error(sec, "hostname", "is empty; set it to a name in the server's certificate, "
				  "or remove it to use the host of remote_addr");
			return NULL;
		}
		return strdup(t->hostname);
	}
	const char *colon = remote_addr ? strrchr(remote_addr, ':') : NULL;
	size_t n = colon ? (size_t)(colon - remote_addr) : (remote_addr ? strlen(remote_addr) : 0);
	const char *h = remote_addr;
	if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
		h++;
		n -= 2;
	}
	if (n == 0) {
		ctx_error(sec, "hostname", "not set, and %s.remote_addr \"%s\" has no host to check the "
			  "server's certificate against; set hostname", sec, remote_addr ? remote_addr : "");
		return NULL;
	}
	char *name = malloc(n + 1);
	if (name) {
		memcpy(name, h, n);
		name[n] = 0;
	}
	return name;
}

static int setup_client(struct tls_ctx *c, const struct conf_tls *t, const char *remote_addr,
			const char *sec)
{
	SSL_CTX *s = c->ssl_ctx;
	c->name = client_name(t, remote_addr, sec);
	if (!c->name)
		return -1;
	c->name_is_ip = is_ip_literal(c->name);
	/* the system store (SSL_CERT_FILE / SSL_CERT_DIR honoured) ... */
	if (SSL_CTX_set_default_verify_paths(s) != 1)
		log_debug("tls: cannot set the default verify paths: %s",
			  tls_reason_text(tls_drain_errors(false), "unknown error"));
	tls_drain_errors(false);
	/* ... plus the first certificate of trusted_root (protocol.md#q17) */
	if (t->trusted_root) {
		X509 *ca = load_first_pem_cert(sec, t->trusted_root);
		if (!ca)
			return -1;
		int r = X509_STORE_add_cert(SSL_CTX_get_cert_store(s), ca);
		X509_free(ca);
		unsigned long e = tls_drain_errors(false);
		if (r != 1 && ERR_GET_REASON(e) != X509_R_CERT_ALREADY_IN_HASH_TABLE) {
			ctx_error(sec, "trusted_root", "cannot trust the certificate of %s (%s)",
				  t->trusted_root, tls_reason_text(e, "unknown error"));
			return -1;
		}
	}
	if (t->pkcs12)
		log_debug("tls: %s.transport.tls.pkcs12 is not used by a client; ignored", sec);
	/* sessions: the newest kept in c->resume (not OpenSSL's cache) and
	 * offered by the next connection */
	SSL_CTX_set_app_data(s, c);
	SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
	SSL_CTX_sess_set_new_cb(s, on_new_session);
	SSL_CTX_set_verify(s, SSL_VERIFY_PEER, tls_verify_cb);
	X509_VERIFY_PARAM *vp = SSL_CTX_get0_param(s);
	X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	int r = c->name_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, c->name)
			      : X509_VERIFY_PARAM_set1_host(vp, c->name, 0);
	if (r != 1) {
		ctx_error(sec, "hostname", "cannot check certificates against \"%s\" (%s)", c->name,
			  tls_reason_text(tls_drain_errors(false), "invalid name"));
		return -1;
	}
	log_debug("tls: the server's certificate is checked against %s %s%s", c->name_is_ip ? "IP" : "name",
		  c->name, t->trusted_root ? " (system roots and trusted_root)" : " (system roots)");
	return 0;
}

static int setup_server(struct tls_ctx *c, const struct conf_tls *t, const char *sec)
{
	SSL_CTX *s = c->ssl_ctx;
	if (load_identity(s, t, sec) < 0)
		return -1;
	/* rathole reads the server's trusted_root too: it must parse */
	if (t->trusted_root) {
		X509 *ca = load_first_pem_cert(sec, t->trusted_root);
		if (!ca)
			return -1;
		X509_free(ca);
	}
	/* no client certificate (SSL_VERIFY_NONE, the default), no ALPN, no
	 * servername callback: SNI, an IP literal too, is ignored. Session
	 * resumption by stateless tickets only (one per handshake, keys made
	 * per start): a client's data channels resume the control channel's
	 * session and skip the signature, and the server keeps no cache that
	 * grows with every handshake */
	SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(s, 1);
	return 0;
}

struct tls_ctx *tls_ctx_new(const struct conf_tls *t, bool server, const char *remote_addr,
			    const char *sec)
{
	ERR_clear_error();
	struct tls_ctx *c = calloc(1, sizeof(*c));
	if (!c) {
		log_error("%s.transport.tls: out of memory", sec);
		return NULL;
	}
	atomic_init(&c->refs, 1);
	c->server = server;
	c->ssl_ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!c->ssl_ctx) {
		log_error("%s.transport.tls: cannot create a TLS context: %s", sec,
			  tls_reason_text(tls_drain_errors(false), "unknown error"));
		free(c);
		return NULL;
	}
	ctx_common(c->ssl_ctx);
	int r = server ? setup_server(c, t, sec) : setup_client(c, t, remote_addr, sec);
	tls_drain_errors(false);
	if (r < 0) {
		tls_ctx_unref(c);
		return NULL;
	}
	return c;
}
