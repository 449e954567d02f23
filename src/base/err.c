#include "base/err.h"

#include <string.h>

const char *mr_strerror(int err)
{
	switch (err) {
	case MR_EPROTO_TAG: return "invalid message (unknown tag)";
	case MR_EPROTO_VERSION: return "protocol versions do not match";
	case MR_EPROTO_SHORT: return "message too short";
	case MR_EPROTO_UNEXPECTED: return "unexpected message";
	case MR_ESERVICE: return "Service not exist";
	case MR_EAUTH: return "Incorrect token";
	case MR_ETIMEDOUT_HS: return "handshake timed out";
	case MR_EHEARTBEAT: return "heartbeat timed out";
	case MR_ESTALE: return "belongs to a stale control channel";
	case MR_EDNS: return "name did not resolve";
	case MR_ELIMIT: return "limit reached";
	case MR_EFORMAT: return "malformed input";
	case MR_ECRYPTO: return "cryptographic operation failed";
	case MR_EEOF: return "connection closed by peer";
	case MR_ECLOSED: return "connection closed";
	case MR_EUNSUPPORTED: return "not supported by this build";
	case MR_ETLS: return "TLS failed";
	case MR_ENOISE: return "Noise failed";
	case MR_EWS: return "WebSocket failed";
	case MR_EPROXY: return "the proxy failed";
	case MR_ECONFIG: return "invalid configuration";
	default: break;
	}
	if (err < 0 && err > -4096)
		return strerror(-err);
	return "unknown error";
}
