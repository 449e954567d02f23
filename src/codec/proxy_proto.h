/* proxy_proto: the bytes of the client's proxy step (protocol.md#p-proxy,
 * with protocol.md#q12's allowed fixes), pure: no I/O, no resolver, no
 * allocation. xport/xport_proxy.c sends what the builders write and feeds
 * what the proxy answers to the decoders; fuzz/fuzz_proxy_reply.c feeds
 * them anything.
 *
 *   SOCKS5 (RFC 1928, user/password RFC 1929):
 *     C->P  05 01 00 | 05 02 00 02            greeting (02 only with credentials)
 *     P->C  05 00 | 05 02                      the method chosen (FF: none acceptable)
 *     C->P  01 ulen user plen pass            [method 02] each at most 255 bytes
 *     P->C  01 00                              status 00 = accepted
 *     C->P  05 01 00 atyp addr port           CONNECT; port big-endian
 *     P->C  05 rep 00 atyp addr port          rep 00 = success; addr: atyp 1 four
 *                                              bytes, 3 a length byte and a name,
 *                                              4 sixteen bytes; read whole, ignored
 *   HTTP CONNECT (RFC 9110 9.3.6, Basic auth RFC 7617):
 *     CONNECT host:port HTTP/1.1\r\n
 *     Host: host:port\r\n
 *     Proxy-Connection: Keep-Alive\r\n
 *     [Proxy-Authorization: Basic base64(user:pass)\r\n]
 *     \r\n
 *   and a response head (at most 4,096 bytes, 16 header lines) with a 2xx
 *   status (rathole takes only 200; every 2xx means "tunnel open").
 *
 * molerat's choices (protocol.md#q12): credentials are percent-DECODED
 * (rathole sends them as written in the URL); an IP literal target goes
 * to a SOCKS5 proxy as an address (atyp 1 or 4, IPv6 brackets stripped)
 * and a name as a name (atyp 3, never resolved here); the HTTP authority
 * is the host as in remote_addr, an IPv6 literal in brackets.
 *
 * Ownership: every struct here is a plain value; nothing allocates. A
 * struct proxy_creds holds a password: wipe it (OPENSSL_cleanse) when
 * done. */
#ifndef MOLERAT_PROXY_PROTO_H
#define MOLERAT_PROXY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum {
	PROXY_CRED_MAX = 255,          /* RFC 1929: a length byte each */
	PROXY_HOST_MAX = 255,          /* atyp 3: a length byte */
	PROXY_AUTHORITY_MAX = PROXY_HOST_MAX + 2 + 6,  /* "[host]:65535" */
	SOCKS5_GREETING_MAX = 4,
	SOCKS5_AUTH_MAX = 3 + 2 * PROXY_CRED_MAX,
	SOCKS5_CONNECT_MAX = 5 + PROXY_HOST_MAX + 2,
	/* the request line and Host (two authorities), the fixed text, and
	 * Basic of 255 + 1 + 255 bytes (684 characters of base64) */
	HTTP_CONNECT_REQ_MAX = 2 * PROXY_AUTHORITY_MAX + 96 + 4 * ((2 * PROXY_CRED_MAX + 1 + 2) / 3),
	HTTP_CONNECT_HEAD_MAX = 4096,  /* the response head, blank line included */
	HTTP_CONNECT_LINES_MAX = 16,   /* its header lines */
};

/* SOCKS5 address types (RFC 1928 5). */
enum socks5_atyp {
	SOCKS5_ATYP_IPV4 = 1,
	SOCKS5_ATYP_DOMAIN = 3,
	SOCKS5_ATYP_IPV6 = 4,
};

/* The server as the proxy is asked for it, from client.remote_addr. */
struct proxy_target {
	char host[PROXY_HOST_MAX + 1];  /* NUL-terminated; no brackets */
	uint16_t port;
	enum socks5_atyp atyp;          /* what inet_pton makes of host */
	uint8_t addr[16];               /* atyp IPV4 (4 bytes) or IPV6 (16) */
	char authority[PROXY_AUTHORITY_MAX + 1]; /* "host:port", "[v6]:port" */
};

/* Splits remote_addr at its last ':' (addr_split_host_port: "[::1]:80"
 * and "::1:80" both give "::1"), decides the address type and writes the
 * authority. Returns 0, or MR_EFORMAT (no port, bad port, empty host, a
 * host longer than PROXY_HOST_MAX). */
int proxy_target_parse(const char *remote_addr, struct proxy_target *t);

/* Decoded credentials: lengths, not strings (a %00 decodes to a NUL). */
struct proxy_creds {
	bool present;                  /* a non-empty user or any password */
	uint8_t user[PROXY_CRED_MAX];
	size_t user_len;
	uint8_t pass[PROXY_CRED_MAX];
	size_t pass_len;
};

/* Percent-decodes the NUL-terminated s into out (cap bytes) as the URL
 * Standard does: "%" and two hex digits give that byte, any other "%"
 * stays as it is. Returns the length, or MR_ELIMIT when it needs more
 * than cap bytes. */
ssize_t proxy_pct_decode(const char *s, uint8_t *out, size_t cap);
/* The credentials of a proxy URL (conf_url's username, "" for none, and
 * password, NULL for none), decoded. Returns 0, or MR_ELIMIT when either
 * decodes to more than PROXY_CRED_MAX bytes (*which is then "user name"
 * or "password"). */
int proxy_creds_set(struct proxy_creds *c, const char *user, const char *pass, const char **which);

/* ---- SOCKS5 requests: each returns its length (nothing fails: the sizes
 * are bounded by the structs). */
size_t socks5_greeting(bool creds, uint8_t out[static SOCKS5_GREETING_MAX]);
size_t socks5_auth_request(const struct proxy_creds *c, uint8_t out[static SOCKS5_AUTH_MAX]);
size_t socks5_connect_request(const struct proxy_target *t, uint8_t out[static SOCKS5_CONNECT_MAX]);

/* ---- SOCKS5 replies: one decoder for the three, fed in pieces of any
 * size. The layer reads exactly socks5_dec_need() bytes at a time, so it
 * never takes a byte that is not the reply's (whatever follows belongs to
 * the transport above). */
enum socks5_reply_kind {
	SOCKS5_METHOD_REPLY = 0,  /* VER METHOD */
	SOCKS5_AUTH_REPLY,        /* VER STATUS */
	SOCKS5_CONNECT_REPLY,     /* VER REP RSV ATYP ADDR PORT */
};

enum socks5_dec_state {
	S5D_HEAD = 0,      /* the fixed start: 2 bytes (method, auth), 4 (connect) */
	S5D_NAME_LEN,      /* connect, atyp 3: the name's length byte */
	S5D_TAIL,          /* connect: the bound address and port, skipped */
	S5D_DONE,          /* a reply that says yes */
	S5D_FAILED,        /* see err; for good */
};

/* Why a reply failed; the bytes that said it are in the decoder. */
enum socks5_dec_err {
	S5E_NONE = 0,
	S5E_VERSION,       /* not 05 (01 for auth): ver holds the byte */
	S5E_NO_METHOD,     /* FF: none of the offered methods */
	S5E_NEED_AUTH,     /* 02 while no credentials were offered */
	S5E_BAD_METHOD,    /* a method that was not offered: code */
	S5E_AUTH_DENIED,   /* auth status not 00: code */
	S5E_REFUSED,       /* connect rep not 00: code */
	S5E_ATYP,          /* connect: unknown address type: code */
};

struct socks5_dec {
	enum socks5_reply_kind kind;
	enum socks5_dec_state state;
	enum socks5_dec_err err;
	bool creds_offered;            /* method reply: 02 is acceptable */
	uint8_t head[4];
	size_t have;                   /* bytes of head gathered (S5D_HEAD) */
	size_t left;                   /* bytes still to skip (S5D_TAIL) */
	uint8_t ver;                   /* the version byte received */
	uint8_t code;                  /* method, status or rep, or the atyp for S5E_ATYP */
};

void socks5_dec_init(struct socks5_dec *d, enum socks5_reply_kind kind, bool creds_offered);
/* Bytes the reply still needs before the next decision: > 0 in the
 * gathering states, 0 once DONE or FAILED. */
size_t socks5_dec_need(const struct socks5_dec *d);
/* Feeds in[0..len). Returns the bytes consumed (never more than the
 * reply needs: the rest is not the reply's), with the state DONE when the
 * reply is whole and says yes, or MR_EPROXY (state FAILED, err set) as
 * soon as a byte says no. Feeding a DONE or FAILED decoder consumes
 * nothing (0, or MR_EPROXY when failed). */
ssize_t socks5_dec_feed(struct socks5_dec *d, const uint8_t *in, size_t len);
/* What a failed reply said, for a log line that starts with the proxy's
 * name ("rejected the user name and password (status 0x01)", "refused the
 * connection to TARGET: connection refused (reply 5)"), into buf (a
 * truncated text when cap is short); returns buf. */
const char *socks5_dec_strerror(const struct socks5_dec *d, const char *target, char *buf, size_t cap);
/* The RFC 1928 name of a reply code ("connection refused" for 5), or NULL
 * for a code it does not name. */
const char *socks5_reply_name(uint8_t rep);

/* ---- HTTP CONNECT */

/* Writes the request (not NUL-terminated) into out. Returns its length. */
size_t http_connect_request(const struct proxy_target *t, const struct proxy_creds *c,
			    char out[static HTTP_CONNECT_REQ_MAX]);

enum http_connect_res {
	HCR_MORE = 0,      /* the head is not complete yet */
	HCR_OPEN,          /* a 2xx head, nothing after it */
	HCR_STATUS,        /* a complete head with another status */
	HCR_GARBAGE,       /* not an HTTP response, malformed, or bytes after the head */
	HCR_TOO_BIG,       /* no end within HTTP_CONNECT_HEAD_MAX bytes, or more than
			    * HTTP_CONNECT_LINES_MAX header lines */
};

struct http_connect_reply {
	int status;                    /* HCR_OPEN, HCR_STATUS */
	char reason[64];               /* printable ASCII of the reason phrase, may be cut */
	const char *why;               /* HCR_GARBAGE, HCR_TOO_BIG: a static reason */
	size_t extra;                  /* HCR_GARBAGE: bytes after the head (0: not the reason) */
};

/* Looks at the response so far, buf[0..len) (all bytes the proxy sent):
 * decides as soon as the bytes allow (a first byte that cannot start
 * "HTTP/" is garbage at once). */
enum http_connect_res http_connect_check(const char *buf, size_t len, struct http_connect_reply *r);

#endif
