"""An independent Noise peer for molerat's integration tests: rathole's
`noise` transport (protocol.md#p-noise)
over a plain socket, with python3-dissononce doing all the cryptography.

The framing is written out here from the contract, not from molerat:

    +----------------------+----------------------------------+
    | len: u16 LITTLE-end. | len bytes of one Noise message   |
    +----------------------+----------------------------------+

- the prologue is empty and every handshake payload is empty;
- the client is the initiator and writes first; each handshake message is
  one frame;
- after Split() the initiator sends with the first CipherState, the
  responder with the second; nonces count from 0; the associated data is
  empty; no rekey;
- each write is one frame of at most 65,519 plaintext bytes (65,535 of
  ciphertext); an empty write sends nothing (an empty plaintext would read
  as EOF on the other side).

Only 25519 / ChaChaPoly / BLAKE2s with the NK, XX and KK patterns (the
ones a rathole-compatible implementation MUST support) are offered.

Every wait is bounded: each call takes a timeout (seconds).
"""
import base64
import socket
import struct
import time

from dissononce.cipher.chachapoly import ChaChaPolyCipher
from dissononce.dh.x25519.private import PrivateKey
from dissononce.dh.x25519.public import PublicKey
from dissononce.dh.x25519.x25519 import X25519DH
from dissononce.exceptions.decrypt import DecryptFailedException
from dissononce.extras.dh.dangerous.dh_nogen import NoGenDH
from dissononce.hash.blake2s import Blake2sHash
from dissononce.processing.handshakepatterns.interactive.KK import KKHandshakePattern
from dissononce.processing.handshakepatterns.interactive.NK import NKHandshakePattern
from dissononce.processing.handshakepatterns.interactive.XX import XXHandshakePattern
from dissononce.processing.impl.cipherstate import CipherState
from dissononce.processing.impl.handshakestate import HandshakeState
from dissononce.processing.impl.symmetricstate import SymmetricState

TAG_LEN = 16
MAX_FRAME = 65535                   # ciphertext bytes in one frame (u16)
MAX_PLAIN = MAX_FRAME - TAG_LEN     # 65,519
DEFAULT_PATTERN = "Noise_NK_25519_ChaChaPoly_BLAKE2s"

_PATTERNS = {"NK": NKHandshakePattern, "XX": XXHandshakePattern, "KK": KKHandshakePattern}

# Handshake message sizes (without the 2-byte length) with 25519,
# ChaChaPoly and empty payloads, in the order they are sent.
HANDSHAKE_SIZES = {"NK": (48, 48), "XX": (32, 96, 64), "KK": (48, 48)}


class HandshakeError(Exception):
    """The Noise handshake failed: EOF, a reset, or a message that did not
    decrypt. .sizes holds the frame sizes seen so far."""

    def __init__(self, msg, sizes=()):
        super().__init__(msg)
        self.sizes = list(sizes)


def protocol_name(short):
    """'NK' -> 'Noise_NK_25519_ChaChaPoly_BLAKE2s'."""
    return f"Noise_{short}_25519_ChaChaPoly_BLAKE2s"


def short_name(name):
    """'Noise_NK_25519_ChaChaPoly_BLAKE2s' -> 'NK' (or 'NK' -> 'NK')."""
    if name in _PATTERNS:
        return name
    parts = name.split("_")
    if (len(parts) != 5 or parts[0] != "Noise" or parts[2:] != ["25519", "ChaChaPoly", "BLAKE2s"]
            or parts[1] not in _PATTERNS):
        raise ValueError(f"noise_peer: unsupported protocol {name!r}")
    return parts[1]


# ------------------------------------------------------------------ keys


def b64(raw):
    """Standard base64 with padding, as rathole and molerat write keys."""
    return base64.b64encode(raw).decode()


class Keys:
    """An X25519 static key pair: .priv and .pub (32 raw bytes each) and
    their base64 forms .priv_b64 and .pub_b64."""

    def __init__(self, priv=None):
        kp = X25519DH().generate_keypair(PrivateKey(priv) if priv is not None else None)
        self.priv = kp.private.data
        self.pub = kp.public.data

    @property
    def priv_b64(self):
        return b64(self.priv)

    @property
    def pub_b64(self):
        return b64(self.pub)


def public_of(priv):
    return Keys(priv).pub


# ------------------------------------------------------------------ framing


def frame(msg):
    """One frame: u16 little-endian length, then the message."""
    assert len(msg) <= MAX_FRAME, len(msg)
    return struct.pack("<H", len(msg)) + msg


def _recv_exact(sock, n, deadline, what):
    """Exactly n bytes before deadline. EOF (or a reset) raises EOFError
    with .data (what came first); the deadline raises socket.timeout."""
    buf = bytearray()
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout(f"noise_peer: {what}: {len(buf)}/{n} bytes before the deadline")
        sock.settimeout(left)
        try:
            chunk = sock.recv(n - len(buf))
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            e = EOFError(f"noise_peer: {what}: EOF after {len(buf)}/{n} bytes")
            e.data = bytes(buf)
            raise e
        buf += chunk
    return bytes(buf)


def read_frame(sock, deadline, what="frame"):
    """One frame's message bytes. Returns None at EOF before its first
    byte; EOF inside a frame raises EOFError."""
    try:
        hdr = _recv_exact(sock, 2, deadline, what + " length")
    except EOFError as e:
        if not e.data:
            return None
        raise
    (n,) = struct.unpack("<H", hdr)
    return _recv_exact(sock, n, deadline, what + f" body ({n} bytes)")


# ------------------------------------------------------------------ handshake


def _handshake_state(fixed_ephemeral=None):
    dh = X25519DH()
    if fixed_ephemeral is not None:       # test vectors only
        dh = NoGenDH(dh, PrivateKey(fixed_ephemeral))
    return HandshakeState(SymmetricState(CipherState(ChaChaPolyCipher()), Blake2sHash()), dh)


def handshake(sock, pattern=DEFAULT_PATTERN, initiator=True, s=None, rs=None, timeout=5.0,
              fixed_ephemeral=None):
    """Runs the Noise handshake on a connected socket and returns a
    NoiseConn in transport mode.

    s: our static key pair, any object with .priv (32 raw bytes; made up
    when the pattern needs one and none is given, e.g. XX); rs: the peer's static public key (32 bytes) when the
    pattern has it in advance (NK initiator, KK both). Raises
    HandshakeError (EOF, reset, decrypt failure) or socket.timeout."""
    short = short_name(pattern)
    pat = _PATTERNS[short]()
    if s is None and (short in ("XX", "KK") or (short == "NK" and not initiator)):
        s = Keys()
    hs = _handshake_state(fixed_ephemeral)
    s_kp = X25519DH().generate_keypair(PrivateKey(bytes(s.priv))) if s is not None else None
    hs.initialize(pat, initiator, b"", s=s_kp, rs=PublicKey(bytes(rs)) if rs is not None else None)
    deadline = time.monotonic() + timeout
    sizes = []           # (direction, length): '>' sent, '<' received
    wire = []            # the frames as sent or received, for vectors
    n_msgs = len(pat.message_patterns)
    result = None
    for i in range(n_msgs):
        ours = (i % 2 == 0) == initiator
        if ours:
            buf = bytearray()
            result = hs.write_message(b"", buf)
            f = frame(bytes(buf))
            try:
                sock.sendall(f)
            except OSError as e:
                raise HandshakeError(f"noise_peer: sending handshake message {i + 1}: {e}", sizes)
            sizes.append((">", len(buf)))
            wire.append(f)
        else:
            try:
                msg = read_frame(sock, deadline, f"handshake message {i + 1}")
            except EOFError as e:
                raise HandshakeError(str(e), sizes)
            except OSError as e:
                if isinstance(e, socket.timeout):
                    raise
                raise HandshakeError(f"noise_peer: reading handshake message {i + 1}: {e}", sizes)
            if msg is None:
                raise HandshakeError(f"noise_peer: EOF before handshake message {i + 1}", sizes)
            sizes.append(("<", len(msg)))
            wire.append(frame(msg))
            payload = bytearray()
            try:
                result = hs.read_message(msg, payload)
            except (DecryptFailedException, ValueError, AssertionError) as e:
                raise HandshakeError(f"noise_peer: handshake message {i + 1} ({len(msg)} bytes) "
                                     f"rejected: {e!r}", sizes)
            if payload:
                raise HandshakeError(f"noise_peer: handshake message {i + 1} carries a "
                                     f"{len(payload)}-byte payload; rathole's are empty", sizes)
    assert result is not None
    c1, c2 = result
    tx, rx = (c1, c2) if initiator else (c2, c1)
    conn = NoiseConn(sock, tx, rx)
    conn.handshake_sizes = sizes
    conn.handshake_wire = wire
    conn.handshake_hash = hs.symmetricstate.get_handshake_hash()
    conn.remote_static = hs.rs.data if hs.rs is not None else None
    return conn


def connect(port, pattern=DEFAULT_PATTERN, s=None, rs=None, timeout=5.0, host="127.0.0.1"):
    """TCP connect (TCP_NODELAY) and the initiator's handshake."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        return handshake(sock, pattern, True, s=s, rs=rs, timeout=timeout)
    except BaseException:
        sock.close()
        raise


def accept(lsock, pattern=DEFAULT_PATTERN, s=None, rs=None, timeout=5.0):
    """Accepts one connection on a listening socket and runs the
    responder's handshake."""
    lsock.settimeout(timeout)
    sock, _ = lsock.accept()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        return handshake(sock, pattern, False, s=s, rs=rs, timeout=timeout)
    except BaseException:
        sock.close()
        raise


# ------------------------------------------------------------------ transport


class NoiseConn:
    """A Noise connection in transport mode: a byte stream over frames.

    One thread may send while another receives (each direction has its own
    CipherState). The received frame sizes are kept in .frame_sizes (the
    first 10,000)."""

    def __init__(self, sock, tx, rx):
        self.sock = sock
        self.tx = tx
        self.rx = rx
        self.rbuf = bytearray()
        self.eof = False
        self.frame_sizes = []
        self.handshake_sizes = []
        self.handshake_wire = []
        self.handshake_hash = None
        self.remote_static = None

    # -- sending

    def encrypt(self, plaintext):
        """One frame (length included) carrying plaintext; advances the
        send nonce."""
        assert len(plaintext) <= MAX_PLAIN
        return frame(self.tx.encrypt_with_ad(b"", bytes(plaintext)))

    def send(self, data):
        """Sends data as frames of at most 65,519 plaintext bytes (nothing
        for empty data), written together in one sendall."""
        mv = memoryview(bytes(data))
        out = bytearray()
        for off in range(0, len(mv), MAX_PLAIN):
            out += self.encrypt(mv[off:off + MAX_PLAIN])
        if out:
            self.sock.sendall(out)

    def sendall_stream(self, data, chunk=1 << 20):
        """send() in pieces of `chunk` bytes (bounded memory for bulk)."""
        mv = memoryview(data)
        for off in range(0, len(mv), chunk):
            self.send(mv[off:off + chunk])

    def send_empty_frame(self):
        """A 16-byte frame: an encrypted empty plaintext (reads as EOF in
        rathole; never sent by a well-behaved writer)."""
        self.sock.sendall(frame(self.tx.encrypt_with_ad(b"", b"")))

    def send_raw(self, raw):
        """Raw bytes on the socket, outside any framing."""
        self.sock.sendall(raw)

    def shutdown_write(self):
        """Half-close: a TCP FIN (Noise has no close message)."""
        self.sock.shutdown(socket.SHUT_WR)

    # -- receiving

    def recv_frame(self, timeout=5.0):
        """The plaintext of the next frame; None at a clean EOF (between
        frames). EOF inside a frame raises EOFError, a frame that does not
        decrypt DecryptFailedException."""
        msg = read_frame(self.sock, time.monotonic() + timeout)
        if msg is None:
            return None
        if len(self.frame_sizes) < 10000:
            self.frame_sizes.append(len(msg))
        return self.rx.decrypt_with_ad(b"", msg)

    def _fill(self, deadline):
        """Decrypts the next frame into rbuf; False at EOF."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("noise_peer: read deadline passed")
        pt = self.recv_frame(left)
        if pt is None:
            self.eof = True
            return False
        self.rbuf += pt
        return True

    def recv_exact(self, n, timeout=5.0):
        """Exactly n plaintext bytes. Raises EOFError (.data) at an early
        EOF, socket.timeout at the deadline."""
        deadline = time.monotonic() + timeout
        while len(self.rbuf) < n:
            if not self._fill(deadline):
                e = EOFError(f"noise_peer: EOF after {len(self.rbuf)}/{n} bytes: {bytes(self.rbuf).hex()}")
                e.data = bytes(self.rbuf)
                raise e
        out = bytes(self.rbuf[:n])
        del self.rbuf[:n]
        return out

    def recv_all(self, timeout=10.0, sink=None):
        """Plaintext until EOF (a reset counts as EOF). With sink (a
        callable), each piece goes to sink and the byte count is returned
        instead of the bytes."""
        deadline = time.monotonic() + timeout
        out = bytearray()
        total = 0
        while True:
            if self.rbuf:
                piece = bytes(self.rbuf)
                self.rbuf.clear()
                total += len(piece)
                if sink is not None:
                    sink(piece)
                else:
                    out += piece
            try:
                if not self._fill(deadline):
                    break
            except ConnectionResetError:
                break
        return total if sink is not None else bytes(out)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
