/* xport_noise: the noise transport (protocol.md#p-noise): a Noise
 * handshake (codec/noise.h) and then rathole's framing, a little-endian
 * u16 length before every message, during and after the handshake.
 *
 * A struct noise_ident is built once per role from [*.transport.noise]:
 * the protocol, the local static key pair (from local_private_key, or made
 * at start when it is absent), and the remote static public key. The
 * client is the initiator, the server the responder; prologue and every
 * handshake payload are empty.
 *
 * Transport mode: every write becomes one frame of at most 65,519
 * plaintext bytes (never an empty one); a reader accepts frames up to
 * 65,535 bytes; a frame shorter than the AEAD tag, a frame that does not
 * decrypt, or a stream that ends inside a frame or inside a length prefix
 * ends the connection with MR_ENOISE. A frame of exactly the tag (empty
 * plaintext) is end of stream, as rathole reads it. Half-close is the
 * lower layer's (a FIN).
 *
 * Ownership: noise_ident is reference-counted; the role holds one
 * reference (noise_ident_unref) and every layer another. Keys are wiped
 * when the last reference goes. xport_noise_new takes lower (closed also
 * on failure) and returns a layer owned by the caller. */
#ifndef MOLERAT_XPORT_NOISE_H
#define MOLERAT_XPORT_NOISE_H

#include <stdbool.h>

#include "codec/conf.h"
#include "xport/xport.h"

struct noise_ident;

/* On failure logs one line ("client.transport.noise.remote_public_key:
 * ...; what to do") and returns NULL. */
struct noise_ident *noise_ident_new(const struct conf_noise *n, bool server, const char *sec);
void noise_ident_unref(struct noise_ident *id);

struct xport *xport_noise_new(struct noise_ident *id, struct xport *lower);

#endif
