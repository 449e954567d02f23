/* err: the project's error convention.
 *
 * Functions return 0 (or a byte count) on success and a negative value on
 * failure: -errno for system errors, and the MR_E* range below for protocol
 * and format errors. -EAGAIN is a normal "not now", never an error.
 * mr_strerror() gives the text for either kind. */
#ifndef MOLERAT_ERR_H
#define MOLERAT_ERR_H

enum mr_err {
	MR_EBASE = 10000,
	MR_EPROTO_TAG = -10001,      /* unknown enum tag in a message */
	MR_EPROTO_VERSION = -10002,  /* Hello carries a protocol version other than 1 */
	MR_EPROTO_SHORT = -10003,    /* input shorter than the message */
	MR_EPROTO_UNEXPECTED = -10004, /* a valid message where another was expected */
	MR_ESERVICE = -10005,        /* server: service does not exist */
	MR_EAUTH = -10006,           /* server: incorrect token */
	MR_ETIMEDOUT_HS = -10007,    /* handshake took too long */
	MR_EHEARTBEAT = -10008,      /* no command within heartbeat_timeout */
	MR_ESTALE = -10009,          /* data channel for a control channel that is gone */
	MR_EDNS = -10010,            /* name did not resolve */
	MR_ELIMIT = -10011,          /* a configured or built-in bound was reached */
	MR_EFORMAT = -10012,         /* malformed input (config value, address, base64) */
	MR_ECRYPTO = -10013,         /* a cryptographic operation failed */
	MR_EEOF = -10014,            /* the peer closed before the message was complete */
	MR_ECLOSED = -10015,         /* the connection was closed by us (shutdown, replacement) */
	MR_EUNSUPPORTED = -10016,    /* a setting this build cannot honour yet (a transport) */
	MR_ETLS = -10017,            /* TLS failed (handshake, certificate, record); details from xport_last_error */
	MR_ENOISE = -10018,          /* Noise failed (handshake, decryption, framing); details from xport_last_error */
	MR_ECONFIG = -10019,         /* a setting could not be used (logged where it was found) */
	MR_EWS = -10020,             /* WebSocket failed (upgrade, framing); details from xport_last_error */
	MR_EPROXY = -10021,          /* the proxy step failed (refused, auth, garbage); details from xport_last_error */
};

const char *mr_strerror(int err);

#endif
