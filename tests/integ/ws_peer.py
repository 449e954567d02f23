"""An independent WebSocket peer for molerat's integration tests: rathole's
`websocket` transport (protocol.md#p-websocket) in two forms.

1. Raw bytes on a plain socket, written out here from RFC 6455 and the
   contract, for the checks a library hides: the exact upgrade request and
   101 response, the mask bit and key of every frame, one Binary frame per
   write, and the hostile frames a library refuses to send (unmasked from
   a client, Text, RSV bits, absurd lengths).

       0                   1                   2                   3
      +-+-+-+-+-------+-+-------------+-------------------------------+
      |F|R|R|R| opcode|M| payload len |  extended length (16 or 64)   |
      |I|S|S|S|  (4)  |A|     (7)     |  when len is 126 or 127       |
      |N|V|V|V|       |S|             |                               |
      +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
      | masking key (4 bytes, when MASK) | payload (XOR key[i % 4])   |

2. python3-websockets (10.4, the asyncio API in websockets.legacy) as the
   real, independent implementation: WsStream turns its messages back into
   the byte stream rathole's protocol runs on (message boundaries mean
   nothing).

Every wait is bounded: each call takes a timeout (seconds).
"""
import asyncio
import base64
import hashlib
import os
import re
import socket
import struct
import time

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

# the RFC 6455 example key and its accept value (protocol.md#p-websocket)
RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

# protocol.md#p-websocket's worked example: the 37-byte ControlChannelHello
# of service "my_nas_ssh" in one client frame, mask 37fa213d; the server's
# Ack Ok; the client's empty Close.
EXAMPLE_HELLO_FRAME = bytes.fromhex(
    "82a537fa213d37fa213d36182768a0912a152a5c638e9b3b179bda1b8a1143d29eb608c11fa401b61348a3")
EXAMPLE_ACK_FRAME = bytes.fromhex("820400000000")
EXAMPLE_CLOSE_FRAME = bytes.fromhex("888037fa213d")

HEAD_MAX = 16384          # bytes of a head this peer reads before giving up


# ------------------------------------------------------------------ handshake


def accept_of(key):
    """base64(SHA-1(key || GUID)): the Sec-WebSocket-Accept for a key."""
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def new_key():
    return base64.b64encode(os.urandom(16)).decode()


def rathole_request(host, key):
    """The upgrade request exactly as rathole's client sends it: this order,
    this letter case."""
    return (f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n").encode()


def rathole_response(accept):
    """The 101 exactly as rathole's server sends it (lower-case names)."""
    return (f"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: websocket\r\n"
            f"sec-websocket-accept: {accept}\r\n\r\n").encode()


# the request a molerat (or rathole) client sends: group 1 is Host, 2 the key
REQUEST_RE = re.compile(rb"GET / HTTP/1\.1\r\nHost: ([^\r\n]*)\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                        rb"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ([A-Za-z0-9+/]{22}==)\r\n\r\n")


def read_head(sock, timeout=5.0, limit=HEAD_MAX):
    """Reads up to and including the first blank line (CRLF CRLF), one byte
    at a time so nothing after the head is consumed. Returns the head;
    EOFError (.data) at EOF before the end; socket.timeout at the
    deadline."""
    buf = bytearray()
    deadline = time.monotonic() + timeout
    while not buf.endswith(b"\r\n\r\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout(f"ws_peer: no complete head after {timeout}s: {bytes(buf)!r}")
        if len(buf) > limit:
            raise AssertionError(f"ws_peer: head over {limit} bytes")
        sock.settimeout(left)
        try:
            b = sock.recv(1)
        except ConnectionResetError:
            b = b""
        if not b:
            e = EOFError(f"ws_peer: EOF inside a head after {len(buf)} bytes: {bytes(buf)!r}")
            e.data = bytes(buf)
            raise e
        buf += b
    return bytes(buf)


# ------------------------------------------------------------------ frames


def mask_bytes(data, key):
    """XOR data with the 4-byte key repeated (masking and unmasking)."""
    if not data:
        return b""
    n = len(data)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def frame(opcode, payload=b"", mask=None, fin=True, rsv=0, length=None):
    """One frame. mask: None (unmasked), True (a fresh random key) or 4
    bytes. length: the length to claim (default len(payload)); a lie makes
    a hostile frame. The shortest length form is used, as RFC 6455 asks."""
    if mask is True:
        mask = os.urandom(4)
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv & 7) << 4 | opcode
    mbit = 0x80 if mask is not None else 0
    if n < 126:
        hdr = bytes([b0, mbit | n])
    elif n < 1 << 16:
        hdr = bytes([b0, mbit | 126]) + struct.pack(">H", n)
    else:
        hdr = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
    if mask is not None:
        return hdr + mask + mask_bytes(payload, mask)
    return hdr + payload


class Frame:
    """A frame as read: fin, rsv, opcode, masked, key (or None), payload
    (unmasked), and raw (the bytes on the wire)."""

    def __init__(self, fin, rsv, opcode, masked, key, payload, raw):
        self.fin, self.rsv, self.opcode, self.masked, self.key = fin, rsv, opcode, masked, key
        self.payload, self.raw = payload, raw

    def __repr__(self):
        return (f"Frame(fin={self.fin}, rsv={self.rsv}, op={self.opcode:#x}, masked={self.masked}, "
                f"len={len(self.payload)}, head={self.raw[:16].hex()})")


def _recv_exact(sock, n, deadline, what):
    buf = bytearray()
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout(f"ws_peer: {what}: {len(buf)}/{n} bytes before the deadline")
        sock.settimeout(left)
        try:
            chunk = sock.recv(min(n - len(buf), 1 << 20))
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            e = EOFError(f"ws_peer: {what}: EOF after {len(buf)}/{n} bytes")
            e.data = bytes(buf)
            raise e
        buf += chunk
    return bytes(buf)


def read_frame(sock, timeout=5.0, max_len=64 << 20):
    """The next frame from sock; None at a clean EOF (before its first
    byte). EOF inside a frame raises EOFError."""
    deadline = time.monotonic() + timeout
    try:
        h = _recv_exact(sock, 2, deadline, "frame header")
    except EOFError as e:
        if not e.data:
            return None
        raise
    fin, rsv, op = bool(h[0] & 0x80), (h[0] >> 4) & 7, h[0] & 0x0F
    masked, n = bool(h[1] & 0x80), h[1] & 0x7F
    raw = bytearray(h)
    if n == 126:
        ext = _recv_exact(sock, 2, deadline, "16-bit length")
        raw += ext
        (n,) = struct.unpack(">H", ext)
    elif n == 127:
        ext = _recv_exact(sock, 8, deadline, "64-bit length")
        raw += ext
        (n,) = struct.unpack(">Q", ext)
    assert n <= max_len, f"ws_peer: a frame of {n} bytes"
    key = None
    if masked:
        key = _recv_exact(sock, 4, deadline, "masking key")
        raw += key
    body = _recv_exact(sock, n, deadline, f"payload ({n} bytes)")
    raw += body
    return Frame(fin, rsv, op, masked, key, mask_bytes(body, key) if masked else body, bytes(raw))


class RawWs:
    """A WebSocket connection on a plain socket after the upgrade, as the
    client (masked frames out, unmasked frames expected in) or the server
    (the reverse). Every frame read is kept in .frames (the first 20,000)
    for the tests' checks; .stream_eof is set by a Close or a clean EOF."""

    def __init__(self, sock, client):
        self.sock = sock
        self.client = client
        self.frames = []
        self.rbuf = bytearray()
        self.close_frame = None
        self.stream_eof = False

    def send_binary(self, data):
        self.sock.sendall(frame(OP_BINARY, bytes(data), mask=True if self.client else None))

    def send_stream(self, data, chunk=60000):
        """data as Binary frames of `chunk` bytes."""
        mv = memoryview(data)
        for off in range(0, len(mv), chunk):
            self.send_binary(mv[off:off + chunk])

    def send_close(self, payload=b""):
        self.sock.sendall(frame(OP_CLOSE, payload, mask=True if self.client else None))

    def next_frame(self, timeout=5.0):
        f = read_frame(self.sock, timeout)
        if f is not None and len(self.frames) < 20000:
            self.frames.append(f)
        return f

    def _fill(self, deadline):
        """Reads frames until a Binary payload arrives (True) or the stream
        ends (False). Anything but Binary and Close is an AssertionError."""
        while not self.stream_eof:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("ws_peer: read deadline passed")
            f = self.next_frame(left)
            if f is None:
                self.stream_eof = True
                return False
            if f.opcode == OP_CLOSE:
                self.close_frame = f
                self.stream_eof = True
                return False
            assert f.opcode in (OP_BINARY, OP_CONT), f"ws_peer: unexpected frame {f!r}"
            if f.payload:
                self.rbuf += f.payload
                return True
        return False

    def recv_exact(self, n, timeout=5.0):
        deadline = time.monotonic() + timeout
        while len(self.rbuf) < n:
            if not self._fill(deadline):
                e = EOFError(f"ws_peer: end of stream after {len(self.rbuf)}/{n} bytes")
                e.data = bytes(self.rbuf)
                raise e
        out = bytes(self.rbuf[:n])
        del self.rbuf[:n]
        return out

    def recv_all(self, timeout=10.0):
        """Binary payloads until a Close or EOF."""
        deadline = time.monotonic() + timeout
        while self._fill(deadline):
            pass
        out = bytes(self.rbuf)
        self.rbuf.clear()
        return out

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def raw_connect(port, host_header=None, key=None, timeout=5.0, host="127.0.0.1", sock=None):
    """TCP connect (or use sock, e.g. an ssl socket), send rathole's upgrade
    request, read the 101. Returns (RawWs, the response head, the key)."""
    if sock is None:
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = key or new_key()
    try:
        sock.sendall(rathole_request(host_header or f"{host}:{port}", key))
        head = read_head(sock, timeout)
    except BaseException:
        sock.close()
        raise
    return RawWs(sock, client=True), head, key


# ------------------------------------------------------------------ python3-websockets


def ws_options(**over):
    """Options for websockets.connect / websockets.serve: no keepalive
    pings (rathole fails on a Ping), no permessage-deflate (rathole
    negotiates no extension), no message size or queue limit (molerat's
    frames are up to 64 KiB, but a test may hold many)."""
    opts = dict(ping_interval=None, ping_timeout=None, compression=None, max_size=None, max_queue=None,
                close_timeout=30)
    opts.update(over)
    return opts


class WsStream:
    """A python3-websockets connection seen as a byte stream: Binary
    message payloads in order (a Text message is an AssertionError). The
    sizes of the messages received are kept in .sizes (the first 20,000).
    Every wait is bounded by its timeout."""

    def __init__(self, ws):
        self.ws = ws
        self.rbuf = bytearray()
        self.sizes = []
        self.eof = False

    async def send(self, data):
        await self.ws.send(bytes(data))

    async def send_stream(self, data, chunk=65536):
        mv = memoryview(data)
        for off in range(0, len(mv), chunk):
            await self.ws.send(bytes(mv[off:off + chunk]))

    async def _fill(self, deadline):
        import websockets
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise asyncio.TimeoutError("ws_peer: read deadline passed")
        try:
            m = await asyncio.wait_for(self.ws.recv(), left)
        except websockets.exceptions.ConnectionClosed:
            self.eof = True
            return False
        assert isinstance(m, bytes), f"ws_peer: a Text message from molerat: {m!r}"
        if len(self.sizes) < 20000:
            self.sizes.append(len(m))
        self.rbuf += m
        return True

    async def recv_exact(self, n, timeout=5.0):
        deadline = time.monotonic() + timeout
        while len(self.rbuf) < n:
            if not await self._fill(deadline):
                e = EOFError(f"ws_peer: closed after {len(self.rbuf)}/{n} bytes: {bytes(self.rbuf[:64]).hex()}")
                e.data = bytes(self.rbuf)
                raise e
        out = bytes(self.rbuf[:n])
        del self.rbuf[:n]
        return out

    async def recv_all(self, timeout=10.0):
        """Payload bytes until the connection closes."""
        deadline = time.monotonic() + timeout
        while await self._fill(deadline):
            pass
        out = bytes(self.rbuf)
        self.rbuf.clear()
        return out

    async def recv_nothing(self, seconds):
        """Asserts that no message arrives within `seconds` (the connection
        may stay open)."""
        try:
            m = await asyncio.wait_for(self.ws.recv(), seconds)
        except asyncio.TimeoutError:
            return
        raise AssertionError(f"ws_peer: unexpected message {m!r}")
