"""The noise transport (protocol.md#p-noise, protocol.md#p-noise-keys and
protocol.md#q18), with real
processes on 127.0.0.1:

1. a molerat server and a molerat client over Noise NK, XX and KK: TCP bulk
   both ways, UDP datagrams, 500 concurrent visitors, half-close;
2. an independent Noise peer (noise_peer.py: the framing written here from
   the contract, the cryptography from python3-dissononce) speaking the
   rathole protocol inside Noise: (a) as the client of a molerat server,
   (b) as the server of a molerat client;
3. hostile and failure cases: a wrong server key, transport mismatches, a
   silent peer, garbage, short frames, EOF inside a frame (Q18: rathole
   spins for ever there, molerat must close), a key of the wrong length in
   the configuration, and `molerat --genkey` keys in use.

Keys for the molerat pairs come from os.urandom and X25519 in
python3-cryptography (test_cli.x25519_public), so part 1 does not depend
on dissononce; the peer tests are skipped, saying so, when it is missing
(scripts/deps.sh installs it)."""
import base64
import hashlib
import os
import re
import socket
import subprocess
import threading
import time

import pytest

import mrlib
import udp_helpers as uh
from faultproxy import FaultProxy
from mrlib import HOST, digest, hello, session_key, wait_closed
from test_cli import GENKEY, x25519_public
from test_tunnel_tcp import concurrent_echo
from test_wire_peer import CREATE, OK, START_TCP

try:
    import noise_peer as npr
    _NPR_ERR = None
except ImportError as e:  # python3-dissononce missing
    npr = None
    _NPR_ERR = str(e)

needs_peer = pytest.mark.skipif(npr is None, reason=f"the Noise peer needs python3-dissononce ({_NPR_ERR}); "
                                                    "scripts/deps.sh installs it")

PATTERNS = ["NK", "XX", "KK"]
TOKEN = "noise-token-\u00e9"
HANDSHAKE_SIZES = {"NK": (48, 48), "XX": (32, 96, 64), "KK": (48, 48)}


# ==========================================================================
# keys and configurations


class Keys:
    """An X25519 key pair: 32 random bytes and X25519(priv, 9)."""

    def __init__(self, priv=None):
        self.priv = priv if priv is not None else os.urandom(32)
        self.pub = x25519_public(self.priv)

    @property
    def priv_b64(self):
        return base64.b64encode(self.priv).decode()

    @property
    def pub_b64(self):
        return base64.b64encode(self.pub).decode()


class PairKeys:
    """The server's and the client's static key pairs."""

    def __init__(self, server=None, client=None):
        self.server = server or Keys()
        self.client = client or Keys()


def proto_name(pattern):
    return f"Noise_{pattern}_25519_ChaChaPoly_BLAKE2s"


def noise_toml(role, pattern, local_private_key=None, remote_public_key=None, default_pattern=False):
    """[role.transport] type = "noise" and its noise table. default_pattern:
    leave `pattern` out (NK is the default)."""
    out = [f"[{role}.transport]", 'type = "noise"', f"[{role}.transport.noise]"]
    if not default_pattern:
        out.append(f"pattern = {mrlib.q(proto_name(pattern))}")
    if local_private_key is not None:
        out.append(f"local_private_key = {mrlib.q(local_private_key)}")
    if remote_public_key is not None:
        out.append(f"remote_public_key = {mrlib.q(remote_public_key)}")
    return "\n".join(out) + "\n"


def server_noise_keys(pattern, keys):
    """NK: the server's private key; XX: none (random per start); KK: its
    private key and the client's public key."""
    if pattern == "NK":
        return {"local_private_key": keys.server.priv_b64}
    if pattern == "KK":
        return {"local_private_key": keys.server.priv_b64, "remote_public_key": keys.client.pub_b64}
    return {}


def client_noise_keys(pattern, keys):
    """NK: the server's public key; XX: none; KK: its private key and the
    server's public key."""
    if pattern == "NK":
        return {"remote_public_key": keys.server.pub_b64}
    if pattern == "KK":
        return {"local_private_key": keys.client.priv_b64, "remote_public_key": keys.server.pub_b64}
    return {}


def server_noise(pattern, keys, **over):
    kw = server_noise_keys(pattern, keys)
    kw.update(over)
    return noise_toml("server", pattern, default_pattern=(pattern == "NK"), **kw)


def client_noise(pattern, keys, **over):
    kw = client_noise_keys(pattern, keys)
    kw.update(over)
    return noise_toml("client", pattern, **kw)


def listening(port):
    """True when a socket listens on TCP port `port` (IPv4), read from
    /proc/net/tcp. No connection is made: a probe would be a failed Noise
    handshake, a warning in the server's log, and (the log is limited to
    one such line a second) it could hide the line a test looks for."""
    want = f":{port:04X}"
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            if len(parts) > 3 and parts[1].endswith(want) and parts[3] == "0A":
                return True
    return False


def wait_listening(port, timeout, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            return False
        if listening(port):
            return True
        time.sleep(0.02)
    return False


class NoiseTunnel(mrlib.Tunnel):
    """mrlib.Tunnel whose server start waits for the listening socket
    without connecting to it (see listening())."""

    def start_server(self, timeout=5.0, keep_port=False):
        if self.server_port is None:
            self.server_port = mrlib.free_port()
        m = self.procs.server(self.server_toml(), env=mrlib.relay_env(self.relay))
        assert wait_listening(self.server_port, mrlib.slow(timeout), m), \
            f"server not listening on {self.server_port}\n{m.tail()}"
        self.server = m
        return m


def noise_tunnel(procs, services, pattern, keys=None, server_extra=None, client_extra=None):
    """A tunnel whose server and client use the noise transport with
    `pattern` (NK written without `pattern`, as the default)."""
    keys = keys or PairKeys()
    se = dict(server_extra or {})
    se["extra"] = server_noise(pattern, keys)
    ce = dict(client_extra or {})
    ce["extra"] = client_noise(pattern, keys)
    t = NoiseTunnel(procs, services, server_extra=se, client_extra=ce)
    t.keys = keys
    t.pattern = pattern
    return t


# ==========================================================================
# logs, processes


_LOG_LINE = re.compile(r"^\S+\s+(ERROR|WARN)\s")


def mark(m):
    """A position in m's stderr, for problem_lines(since=)."""
    return len(m.stderr())


def problem_lines(m, *words, since=0):
    """The WARN and ERROR log lines of m's stderr (from offset `since`) that
    contain every word (case-insensitive); a word may be a tuple of
    alternatives."""
    out = []
    for line in m.stderr()[since:].splitlines():
        if not _LOG_LINE.match(line):
            continue
        low = line.lower()
        if all(any(a.lower() in low for a in (w if isinstance(w, tuple) else (w,))) for w in words):
            out.append(line)
    return out


def wait_problem_line(m, *words, timeout=5.0, since=0):
    """Polls m's stderr until a WARN/ERROR line with every word appears;
    returns the lines (possibly empty at the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = problem_lines(m, *words, since=since)
        if lines or time.monotonic() >= deadline:
            return lines
        time.sleep(0.05)


def cpu_seconds(pid):
    """utime + stime of a process, in seconds (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(procs, pattern, keys, services, heartbeat_interval=None, name="server"):
    """A molerat noise server; waits until bind_addr accepts. Returns
    (proc, bind port). Every service dict needs name and port."""
    bind = mrlib.free_port()
    toml = mrlib.server_toml(bind, services, heartbeat_interval=heartbeat_interval,
                             extra=server_noise(pattern, keys))
    m = procs.server(toml, name=name)
    assert wait_listening(bind, mrlib.slow(5), m), f"server not listening on {bind}\n{m.tail()}"
    return m, bind


# ==========================================================================
# bulk helper


def bulk_echo(port, total, seed, limit):
    """Sends `total` bytes to an echo service through port and reads them
    back at the same time; returns (sent sha256, received sha256, bytes
    received, seconds)."""
    s = socket.create_connection((HOST, port), timeout=5)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sent_hash = hashlib.sha256()
    errs = []

    def sender():
        try:
            for blk in mrlib.block_stream(total, seed=seed):
                sent_hash.update(blk)
                s.sendall(blk)
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            errs.append(e)

    t0 = time.monotonic()
    th = threading.Thread(target=sender, daemon=True)
    th.start()
    got_hash = hashlib.sha256()
    got = 0
    buf = bytearray(1 << 20)
    mv = memoryview(buf)
    try:
        while True:
            left = t0 + limit - time.monotonic()
            assert left > 0, f"bulk transfer not done after {limit}s: received {got} of {total}"
            s.settimeout(left)
            n = s.recv_into(buf)
            if n == 0:
                break
            got_hash.update(mv[:n])
            got += n
    finally:
        took = time.monotonic() - t0
        s.close()
        th.join(10)
    assert not errs, f"sender failed: {errs}"
    return sent_hash.hexdigest(), got_hash.hexdigest(), got, took


# ==========================================================================
# 1. molerat server + molerat client


@pytest.mark.parametrize("pattern", PATTERNS)
def test_tcp_bulk_32mib_each_way(procs, echo, pattern):
    """32 MiB (8 MiB under ASan) to an echo service and back at the same
    time through a Noise tunnel; sha256 both ways."""
    total = mrlib.scale(32 << 20)
    t = noise_tunnel(procs, [{"name": "bulk", "local": echo.port}], pattern).start()
    sent, got_sha, got, took = bulk_echo(t.svc_port["bulk"], total, 32, mrlib.slow(40))
    assert got == total, f"received {got} bytes, sent {total}"
    assert got_sha == sent
    print(f"noise {pattern} bulk: {2 * total / took / 1e6:.0f} MB/s (both ways) in {took:.1f}s")
    assert t.server.alive() and t.client.alive()


@pytest.mark.skipif(mrlib.is_asan(), reason="full scale only (256 MiB each way); the ASan build runs the 32 MiB test")
def test_tcp_bulk_256mib_each_way_nk(procs, echo):
    """256 MiB each way through a Noise NK tunnel (thousands of full
    65,519-byte frames each way)."""
    total = 256 << 20
    t = noise_tunnel(procs, [{"name": "bulk", "local": echo.port}], "NK").start()
    sent, got_sha, got, took = bulk_echo(t.svc_port["bulk"], total, 256, 60)
    assert got == total, f"received {got} bytes, sent {total}"
    assert got_sha == sent
    print(f"noise NK bulk: {2 * total / took / 1e6:.0f} MB/s (both ways) in {took:.1f}s")
    assert t.server.alive() and t.client.alive()


@pytest.mark.parametrize("pattern", PATTERNS)
def test_udp_round_trip(procs, pattern):
    """A UDP service through a Noise tunnel: datagrams of several sizes
    (empty to 65,507 bytes) come back whole and unchanged."""
    e = uh.UdpEcho(HOST)
    try:
        t = noise_tunnel(procs, [{"name": "udp", "local": e.port, "type": "udp"}], pattern)
        t.start(ready=[])
        port = t.svc_port["udp"]
        uh.wait_udp_ready(HOST, port)
        v = uh.visitor()
        try:
            for i, size in enumerate([0, 1, 37, 1472, 2049, 8192, 65507]):
                data = mrlib.payload(f"udp{pattern}{i}", size)
                got = uh.exchange(v, data, (HOST, port), timeout=mrlib.slow(3))
                assert got is not None, f"no echo of a {size}-byte datagram"
                assert len(got) == size and mrlib.sha(got) == mrlib.sha(data), \
                    f"{size} bytes sent, {len(got)} came back"
        finally:
            v.close()
        assert t.server.alive() and t.client.alive()
    finally:
        e.close()


def test_500_concurrent_visitors_nk(procs, echo):
    """500 visitors at once over Noise NK, each with its own payload (1 to
    64 KiB), each echoed whole: 500 data channels, each with its own Noise
    handshake."""
    n = 500
    t = noise_tunnel(procs, [{"name": "many", "local": echo.port}], "NK").start()
    bad = concurrent_echo(t.svc_port["many"], n, mrlib.slow(40))
    assert not bad, f"{len(bad)} of {n} connections wrong, first: {bad[:5]}"
    assert echo.accepted >= n
    assert t.server.alive() and t.client.alive()


@pytest.mark.parametrize("pattern", PATTERNS)
def test_half_close(procs, services, pattern):
    """A visitor that shuts its write side still receives the whole reply
    of a service that answers only after EOF (half-close is a TCP FIN
    under Noise)."""
    svc = services.reply(tag=b"N")
    t = noise_tunnel(procs, [{"name": "half", "local": svc.port}], pattern)
    t.start(expect=svc.expect)
    port = t.svc_port["half"]
    for size in (3, 100_000, mrlib.scale(8 << 20)):
        data = mrlib.payload(size, size)
        s = socket.create_connection((HOST, port), timeout=5)
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            got = mrlib.recv_all(s, timeout=mrlib.slow(20))
        finally:
            s.close()
        want = svc.expect(data)
        assert len(got) == len(want), f"size {size}: got {len(got)} bytes, want {len(want)}"
        assert got[:33] == want[:33], f"size {size}: reply header {got[:33].hex()}"
        assert hashlib.sha256(got).digest() == hashlib.sha256(want).digest()


# ==========================================================================
# 2. an independent Noise peer (dissononce)


def initiator_keys(pattern, keys):
    """The static keys a client-side peer uses: NK: the server's public
    key; XX: its own pair; KK: both."""
    if pattern == "NK":
        return {"s": None, "rs": keys.server.pub}
    if pattern == "XX":
        return {"s": keys.client, "rs": None}
    return {"s": keys.client, "rs": keys.server.pub}


def responder_keys(pattern, keys):
    """The static keys a server-side peer uses: its own pair, and for KK the
    client's public key."""
    if pattern == "KK":
        return {"s": keys.server, "rs": keys.client.pub}
    return {"s": keys.server, "rs": None}


def expect_sizes(conn, pattern, initiator):
    """The handshake messages have the pattern's sizes, in the right
    directions."""
    want = []
    for i, n in enumerate(HANDSHAKE_SIZES[pattern]):
        ours = (i % 2 == 0) == initiator
        want.append((">" if ours else "<", n))
    assert conn.handshake_sizes == want, f"{pattern} handshake {conn.handshake_sizes}, expected {want}"


def peer_control(port, pattern, keys, name="echo", token=TOKEN):
    """The peer as a client: Noise handshake, then ControlChannelHello,
    the nonce, Auth, Ack Ok. Returns (conn, nonce, session key)."""
    c = npr.connect(port, proto_name(pattern), timeout=mrlib.slow(5), **initiator_keys(pattern, keys))
    expect_sizes(c, pattern, True)
    c.send(hello(0, digest(name)))
    h = c.recv_exact(37, timeout=mrlib.slow(5))
    assert h[:5] == b"\x00\x00\x00\x00\x01", f"server Hello {h.hex()}"
    nonce = h[5:]
    key = session_key(token, nonce)
    c.send(key)
    ack = c.recv_exact(4, timeout=mrlib.slow(5))
    assert ack == OK, f"Ack {ack.hex()}"
    return c, nonce, key


def peer_data_channel(port, pattern, keys, key):
    c = npr.connect(port, proto_name(pattern), timeout=mrlib.slow(5), **initiator_keys(pattern, keys))
    c.send(hello(1, key))
    return c


@needs_peer
def test_peer_reproduces_spec_vector():
    """The peer itself, checked against the worked example of
    protocol.md#p-noise-example (fixed ephemerals): handshake frames,
    handshake hash, and the first transport frames each way."""
    srv = Keys(bytes.fromhex("daadf4670168db6248e0d2c3b71098782c8a08a16077e3bc142d1550d83b0e8b"))
    assert srv.pub_b64 == "HN7XPmAsbw0ZFZT/gLuzaWu+oy1QIMMV1q5v/W8pVnw="
    a, b = socket.socketpair()
    res = {}

    def initiator():
        res["c"] = npr.handshake(a, "NK", True, rs=srv.pub, timeout=5, fixed_ephemeral=bytes.fromhex(
            "fc234feb891375838c1ef3f491c800c1f8b1dbe82192f95833fdec73641fd43c"))

    try:
        th = threading.Thread(target=initiator, daemon=True)
        th.start()
        r = npr.handshake(b, "NK", False, s=srv, timeout=5, fixed_ephemeral=bytes.fromhex(
            "5ae40186f9daf585a40bca469d3cd60143a92a3db1545ce1cd5ede2d720fa65e"))
        th.join(5)
        c = res["c"]
    finally:
        a.close()
        b.close()
    assert [w.hex() for w in c.handshake_wire] == [
        "3000" "5832eae22d100aaae21253ca798a08ae6165286a3699b974df9d875b7d450316"
        "ef508ff7e89b07ab1391b41728c85cea",
        "3000" "d32b79a84e0a8b8413ee562b2dcb849f46e20fdacc239f8f5f9117c4bc41f950"
        "5558648b3441e8cd2c52af2e9f07bf2b"]
    h = "4663def75de35a09af0afaafe1df12741aedc8547b4973b7d91b83f73108b69b"
    assert c.handshake_hash.hex() == h and r.handshake_hash.hex() == h
    nonce = bytes.fromhex("6b1f0e3a9c2d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7")
    auth = session_key("example-token-123", nonce)
    assert auth.hex() == "b185aa077d741280eec9abc34982ba6cf433eec9a1fc523c2aeba06613c0c247"
    assert c.encrypt(hello(0, digest("my_nas_ssh"))).hex() == (
        "3500"
        "ca5e40f3aed67c3fd3626a408b76703de9a59f05c7db897cac052a3670d179531674d4e85778ec15b9610eddfdd6fc8f4b3cb394ad")
    assert r.encrypt(hello(0, nonce)).hex() == (
        "3500"
        "fffde07f38e8857c94258ade05e0eab11f079dee06dc0f589e5e60bc20aee80ea4ba6b4a8df9fa8cdeebdd8f7f1c32b6c906644729")
    assert c.encrypt(auth).hex() == (
        "30007cb4866ce3a73f9a488fb456824e1c1fed0a90a447e8cf08a25d73849bea6f23b77bda605de168b02c8e2802562d66b0")
    assert r.encrypt(OK).hex() == "14002d9457fdf036775fd8b407a94c6e90b2f9a107ea"


@needs_peer
@pytest.mark.parametrize("pattern", PATTERNS)
def test_peer_client_against_molerat_server(procs, pattern):
    """(a) dissononce as the client: Noise handshake (the pattern's message
    sizes), then the rathole control channel inside it (Hello with the
    service digest, nonce, Auth, Ack Ok, 8 CreateDataChannel), a data
    channel (DataChannelHello with the session key), a visitor,
    StartForwardTcp, and raw bytes relayed both ways with half-close."""
    keys = PairKeys()
    svc_port = mrlib.free_port()
    m, bind = start_server(procs, pattern, keys, [{"name": "echo", "port": svc_port, "token": TOKEN}])
    ctl, nonce, key = peer_control(bind, pattern, keys)
    try:
        pool = ctl.recv_exact(32, timeout=mrlib.slow(3))
        assert pool == CREATE * 8, f"pool pre-fill {pool.hex()}"
        d = peer_data_channel(bind, pattern, keys, key)
        # the service port is bound before the Ack (an IP literal), so no
        # probe: a probe would be a visitor and take the data channel
        v = socket.create_connection((HOST, svc_port), timeout=5)
        try:
            cmd = d.recv_exact(4, timeout=mrlib.slow(5))
            assert cmd == START_TCP, cmd.hex()
            up = mrlib.payload(f"up{pattern}", 1 << 20)
            down = mrlib.payload(f"down{pattern}", (1 << 20) + 17)
            errs = []

            def visitor_send():
                try:
                    v.sendall(up)
                    v.shutdown(socket.SHUT_WR)
                except OSError as e:
                    errs.append(e)

            def peer_send():
                try:
                    d.sendall_stream(down, chunk=200_000)
                    d.shutdown_write()
                except OSError as e:
                    errs.append(e)

            t1 = threading.Thread(target=visitor_send, daemon=True)
            t2 = threading.Thread(target=peer_send, daemon=True)
            t1.start()
            t2.start()
            at_peer = d.recv_all(timeout=mrlib.slow(10))
            at_visitor = mrlib.recv_all(v, timeout=mrlib.slow(10))
            t1.join(5)
            t2.join(5)
            assert not errs, errs
            assert len(at_peer) == len(up) and mrlib.sha(at_peer) == mrlib.sha(up), \
                f"{len(at_peer)} bytes decrypted at the peer, {len(up)} sent by the visitor"
            assert len(at_visitor) == len(down) and mrlib.sha(at_visitor) == mrlib.sha(down), \
                f"{len(at_visitor)} bytes at the visitor, {len(down)} sent by the peer"
            # every frame molerat wrote carried plaintext (never an empty one)
            sizes = ctl.frame_sizes + d.frame_sizes
            assert min(sizes) > npr.TAG_LEN, f"a frame of {min(sizes)} bytes (empty plaintext)"
        finally:
            v.close()
            d.close()
        # one more CreateDataChannel for that visitor
        assert ctl.recv_exact(4, timeout=mrlib.slow(3)) == CREATE
    finally:
        ctl.close()
    assert m.alive()


@needs_peer
@pytest.mark.parametrize("pattern", PATTERNS)
def test_peer_server_with_molerat_client(procs, echo, pattern):
    """(b) dissononce as the server (responder): the molerat client's
    handshake (the pattern's sizes), its Hello, our nonce, its Auth, Ack
    Ok, CreateDataChannel, its data channel with the session key,
    StartForwardTcp, and 2 MiB to the client's local echo and back."""
    keys = PairKeys()
    lsock = mrlib.listen_socket()
    try:
        port = lsock.getsockname()[1]
        toml = mrlib.client_toml(port, [{"name": "echo", "local": echo.port, "token": TOKEN}],
                                 extra=client_noise(pattern, keys))
        m = procs.client(toml)
        rk = responder_keys(pattern, keys)
        ctl = npr.accept(lsock, proto_name(pattern), timeout=mrlib.slow(5), **rk)
        try:
            expect_sizes(ctl, pattern, False)
            if pattern == "KK":
                assert ctl.remote_static == keys.client.pub
            h = ctl.recv_exact(37, timeout=mrlib.slow(5))
            assert h == hello(0, digest("echo")), f"client Hello {h.hex()}"
            nonce = os.urandom(32)
            ctl.send(hello(0, nonce))
            key = session_key(TOKEN, nonce)
            auth = ctl.recv_exact(32, timeout=mrlib.slow(5))
            assert auth == key, f"Auth {auth.hex()}, expected {key.hex()}"
            ctl.send(OK)
            ctl.send(CREATE)
            d = npr.accept(lsock, proto_name(pattern), timeout=mrlib.slow(5), **rk)
            try:
                expect_sizes(d, pattern, False)
                dh = d.recv_exact(37, timeout=mrlib.slow(5))
                assert dh == hello(1, key), f"DataChannelHello {dh.hex()}"
                d.send(START_TCP)
                data = mrlib.payload(f"client{pattern}", 2 << 20)
                errs = []

                def sender():
                    try:
                        d.sendall_stream(data, chunk=300_000)
                        d.shutdown_write()
                    except OSError as e:
                        errs.append(e)

                th = threading.Thread(target=sender, daemon=True)
                th.start()
                got = d.recv_all(timeout=mrlib.slow(10))
                th.join(5)
                assert not errs, errs
                assert len(got) == len(data) and mrlib.sha(got) == mrlib.sha(data), f"{len(got)} bytes back"
                assert min(d.frame_sizes + ctl.frame_sizes) > npr.TAG_LEN
            finally:
                d.close()
            assert echo.accepted == 1
            # the client never writes on the control channel after Auth
            ctl.sock.settimeout(0.3)
            try:
                extra = ctl.sock.recv(100)
                assert extra == b"", f"client sent {extra.hex()} on the control channel"
            except socket.timeout:
                pass
        finally:
            ctl.close()
    finally:
        lsock.close()
    assert m.alive()


# ==========================================================================
# 3. hostile and failure cases


def test_wrong_server_key_nk_then_right_key(procs, echo):
    """NK with a remote_public_key that is not the server's: the handshake
    fails, each side says so in a line naming Noise and the key, the client
    stays up and retries with backoff (not in a busy loop); restarted with
    the right key, it works."""
    keys = PairKeys()
    t = noise_tunnel(procs, [{"name": "wk", "local": echo.port}], "NK", keys=keys)
    t.start_server()
    with FaultProxy(t.server_port) as fp:     # counts the connection attempts
        wrong = Keys()
        toml = mrlib.client_toml(fp.port, t.services,
                                 extra=client_noise("NK", keys, remote_public_key=wrong.pub_b64))
        bad = procs.client(toml, name="client-wrong-key")
        lines = wait_problem_line(bad, "noise", "key", timeout=mrlib.slow(5))
        assert lines, f"no WARN/ERROR line about the Noise key from the client\n{bad.tail()}"
        srv_lines = wait_problem_line(t.server, "noise", "key", timeout=mrlib.slow(3))
        assert srv_lines, f"no WARN/ERROR line about the Noise key from the server\n{t.server.tail()}"
        time.sleep(3.0)
        attempts = fp.stats()["accepted"]
        assert bad.alive(), f"client exited after a failed handshake\n{bad.tail()}"
        assert attempts >= 3, f"{attempts} connection attempts in ~3.5 s: the client does not retry"
        assert attempts <= 12, f"{attempts} connection attempts in ~3.5 s: no backoff"
        # one line per failed attempt, not a burst
        n_lines = len(problem_lines(bad, "wk"))
        assert 1 <= n_lines <= attempts + 1, \
            f"{n_lines} WARN/ERROR lines for {attempts} attempts:\n{bad.tail()}"
        assert mrlib.port_refuses(t.svc_port["wk"]), "service port open without an authenticated client"
        rc, killed = bad.stop()
        assert (rc, killed) == (0, False), bad.tail()
    t.start_client()
    t.wait_ready("wk")
    data = mrlib.payload("wk", 300_000)
    assert mrlib.sha(mrlib.roundtrip(t.svc_port["wk"], data, timeout=mrlib.slow(10))) == mrlib.sha(data)
    assert t.server.alive()


def test_tcp_client_against_noise_server(procs, echo):
    """A plain tcp molerat client against a noise server: its rathole Hello
    is no Noise message. The server says so in one line naming Noise, the
    client logs its failed attempt and retries; nobody crashes."""
    keys = PairKeys()
    t = noise_tunnel(procs, [{"name": "mix", "local": echo.port}], "NK", keys=keys)
    t.start_server()
    c = procs.client(mrlib.client_toml(t.server_port, t.services), name="client-tcp")
    srv = wait_problem_line(t.server, "noise", timeout=mrlib.slow(5))
    assert srv, f"no WARN/ERROR line naming Noise from the server\n{t.server.tail()}"
    cl = wait_problem_line(c, "mix", timeout=mrlib.slow(5))
    assert cl, f"no WARN/ERROR line from the tcp client about its failed attempt\n{c.tail()}"
    time.sleep(1.5)
    assert t.server.alive() and c.alive()
    assert len(problem_lines(t.server, "noise")) <= 6, "more than one line per attempt?\n" + t.server.tail()
    assert mrlib.port_refuses(t.svc_port["mix"])


def test_noise_client_against_tcp_server(procs, echo):
    """A noise client against a plain tcp server: its first Noise message is
    no rathole Hello. The server drops it with one line, the client says
    the handshake failed in a line naming Noise and retries; nobody
    crashes."""
    keys = PairKeys()
    svc = [{"name": "mix", "local": echo.port, "token": TOKEN, "port": mrlib.free_port()}]
    bind = mrlib.free_port()
    s = procs.server(mrlib.server_toml(bind, svc), name="server-tcp")
    assert wait_listening(bind, mrlib.slow(5), s), s.tail()
    c = procs.client(mrlib.client_toml(bind, svc, extra=client_noise("NK", keys)), name="client-noise")
    srv = wait_problem_line(s, "hello", timeout=mrlib.slow(5))
    assert srv, f"no WARN/ERROR line about a bad Hello from the tcp server\n{s.tail()}"
    cl = wait_problem_line(c, "mix", ("noise", "transport"), timeout=mrlib.slow(5))
    assert cl, f"no WARN/ERROR line from the client hinting at the transport (Noise)\n{c.tail()}"
    time.sleep(1.5)
    assert s.alive() and c.alive()
    assert mrlib.port_refuses(svc[0]["port"])


def test_silent_peer_dropped_real_client_served(procs, echo):
    """A connection to the noise port that sends nothing is closed by the
    server within its handshake budget (10 s; asserted < 15 s), with a
    line; meanwhile a real client on the same server connects and works."""
    t = noise_tunnel(procs, [{"name": "quiet", "local": echo.port}], "NK")
    t.start_server()
    silent = socket.create_connection((HOST, t.server_port), timeout=5)
    t0 = time.monotonic()
    try:
        t.start_client()
        t.wait_ready("quiet")
        data = mrlib.payload("quiet", 500_000)
        assert mrlib.sha(mrlib.roundtrip(t.svc_port["quiet"], data, timeout=mrlib.slow(10))) == mrlib.sha(data)
        served = time.monotonic() - t0
        try:
            got = wait_closed(silent, timeout=max(0.5, 15 - (time.monotonic() - t0)))
        except socket.timeout:
            pytest.fail(f"silent connection still open after {time.monotonic() - t0:.1f}s\n{t.server.tail()}")
        dt = time.monotonic() - t0
        assert got == b"", f"server sent {got.hex()} to a silent peer"
        assert dt < 15, f"silent connection closed after {dt:.1f}s"
        assert served < dt, f"the real client was served only after {served:.1f}s, the silent peer dropped at {dt:.1f}s"
    finally:
        silent.close()
    lines = wait_problem_line(t.server, "handshake", "time", timeout=2)
    assert lines, f"no WARN/ERROR line about the handshake timeout\n{t.server.tail()}"
    assert t.server.alive() and t.client.alive()
    assert mrlib.sha(mrlib.roundtrip(t.svc_port["quiet"], b"after", timeout=mrlib.slow(10))) == mrlib.sha(b"after")


def test_garbage_dropped(procs, echo):
    """70,000 random bytes to the noise port (whatever length the first two
    bytes claim, a whole frame is there): dropped promptly with nothing
    sent back; the server keeps serving its real client."""
    t = noise_tunnel(procs, [{"name": "g", "local": echo.port}], "NK").start()
    for seed in (1, 2):
        junk = mrlib.payload(f"garbage{seed}", 70_000)
        since = mark(t.server)
        s = socket.create_connection((HOST, t.server_port), timeout=5)
        try:
            try:
                s.sendall(junk)
            except OSError:
                pass       # already reset: dropped
            try:
                got = wait_closed(s, timeout=mrlib.slow(3))
            except socket.timeout:
                pytest.fail(f"garbage connection {seed} still open after {mrlib.slow(3)}s")
            assert got == b"", f"server answered garbage with {got[:64].hex()}"
        finally:
            s.close()
        assert wait_problem_line(t.server, "noise", timeout=2, since=since), \
            f"no WARN/ERROR line naming Noise for garbage {seed}\n{t.server.tail()}"
        time.sleep(1.1)    # handshake failures are logged at most once a second
    assert t.server.alive() and t.client.alive()
    data = mrlib.payload("g", 200_000)
    assert mrlib.sha(mrlib.roundtrip(t.svc_port["g"], data, timeout=mrlib.slow(10))) == mrlib.sha(data)


SHORT_FRAMES = [("handshake", 0), ("handshake", 5), ("transport", 0), ("transport", 5), ("transport", 15)]


@needs_peer
@pytest.mark.parametrize("stage,length", SHORT_FRAMES, ids=[f"{s}-len{n}" for s, n in SHORT_FRAMES])
def test_short_frame_dropped(procs, stage, length):
    """A frame shorter than the 16-byte tag (0 included) cannot decrypt: the
    server drops the connection at once, nothing sent, one line naming
    Noise; it keeps working."""
    keys = PairKeys()
    svc_port = mrlib.free_port()
    m, bind = start_server(procs, "NK", keys, [{"name": "echo", "port": svc_port, "token": TOKEN}])
    if stage == "handshake":
        s = socket.create_connection((HOST, bind), timeout=5)
    else:
        conn = npr.connect(bind, proto_name("NK"), rs=keys.server.pub, timeout=mrlib.slow(5))
        s = conn.sock
    since = mark(m)
    try:
        s.sendall(length.to_bytes(2, "little") + os.urandom(length))
        try:
            got = wait_closed(s, timeout=mrlib.slow(3))
        except socket.timeout:
            pytest.fail(f"{stage} frame of {length} bytes: connection still open after {mrlib.slow(3)}s")
        assert got == b"", f"server sent {got.hex()}"
    finally:
        s.close()
    assert wait_problem_line(m, "noise", timeout=2, since=since), f"no WARN/ERROR line naming Noise\n{m.tail()}"
    c, _, _ = peer_control(bind, "NK", keys)
    c.close()
    assert m.alive()


@needs_peer
def test_empty_plaintext_frame_is_eof(procs):
    """A 16-byte frame (an encrypted empty plaintext) reads as EOF
    (protocol.md#p-noise): the server, waiting for a Hello, closes the
    connection without answering."""
    keys = PairKeys()
    m, bind = start_server(procs, "NK", keys, [{"name": "echo", "port": mrlib.free_port(), "token": TOKEN}])
    conn = npr.connect(bind, proto_name("NK"), rs=keys.server.pub, timeout=mrlib.slow(5))
    try:
        conn.send(hello(0, digest("echo"))[:10])     # part of a Hello, then "EOF"
        conn.send_empty_frame()
        try:
            got = wait_closed(conn.sock, timeout=mrlib.slow(3))
        except socket.timeout:
            pytest.fail("connection still open after an empty-plaintext frame")
        assert got == b"", f"server sent {got.hex()}"
    finally:
        conn.close()
    assert m.alive()


def _eof_inside_frame(conn, where):
    """Sends the start of a frame, then FIN: one byte of the length prefix,
    or the length and 10 bytes of a 53-byte body."""
    if where == "prefix":
        conn.send_raw(b"\x35")
    else:
        conn.send_raw(b"\x35\x00" + os.urandom(10))
    conn.shutdown_write()


def _closed_promptly_without_spinning(sock, pid, who):
    """Q18: after the FIN inside a frame, the connection is closed within
    2 s and the process does not spin (CPU time over 1 s < 0.3 s)."""
    c0 = cpu_seconds(pid)
    t0 = time.monotonic()
    closed, got, err = False, b"", None
    try:
        got = wait_closed(sock, timeout=2.0)
        closed = True
    except socket.timeout as e:
        err = e
    dt = time.monotonic() - t0
    rest = t0 + 1.0 - time.monotonic()
    if rest > 0:
        time.sleep(rest)
    cpu = cpu_seconds(pid) - c0
    window = time.monotonic() - t0
    assert closed, f"{who} did not close the connection within 2 s of the FIN ({err}); CPU {cpu:.2f}s in {window:.1f}s"
    assert got == b"", f"{who} sent {got.hex()}"
    assert cpu < 0.3, f"{who} used {cpu:.2f}s of CPU in {window:.1f}s after the FIN (spinning?)"
    return dt


@needs_peer
@pytest.mark.parametrize("where", ["prefix", "body"])
def test_q18_eof_inside_frame_server(procs, where):
    """Q18: after a valid handshake, the peer sends one byte of a length
    prefix (or a length and part of the body) and then FIN. rathole spins
    for ever on the prefix case; molerat closes the connection at once and
    does not spin, and keeps serving."""
    keys = PairKeys()
    m, bind = start_server(procs, "NK", keys, [{"name": "echo", "port": mrlib.free_port(), "token": TOKEN}])
    conn = npr.connect(bind, proto_name("NK"), rs=keys.server.pub, timeout=mrlib.slow(5))
    try:
        _eof_inside_frame(conn, where)
        _closed_promptly_without_spinning(conn.sock, m.pid, "the server")
    finally:
        conn.close()
    c, _, _ = peer_control(bind, "NK", keys)
    c.close()
    assert m.alive()


@needs_peer
@pytest.mark.parametrize("where", ["prefix", "body"])
def test_q18_eof_inside_frame_client(procs, echo, where):
    """Q18 on the client: a peer server completes the handshake, reads the
    client's Hello, then sends one byte of a length prefix (or a length and
    part of a body) and FIN. The molerat client closes that connection at
    once without spinning, and connects again (rathole's never does)."""
    keys = PairKeys()
    lsock = mrlib.listen_socket()
    try:
        port = lsock.getsockname()[1]
        m = procs.client(mrlib.client_toml(port, [{"name": "echo", "local": echo.port, "token": TOKEN}],
                                           extra=client_noise("NK", keys)))
        rk = responder_keys("NK", keys)
        ctl = npr.accept(lsock, proto_name("NK"), timeout=mrlib.slow(5), **rk)
        try:
            assert ctl.recv_exact(37, timeout=mrlib.slow(5)) == hello(0, digest("echo"))
            _eof_inside_frame(ctl, where)
            _closed_promptly_without_spinning(ctl.sock, m.pid, "the client")
        finally:
            ctl.close()
        again = npr.accept(lsock, proto_name("NK"), timeout=mrlib.slow(5), **rk)
        try:
            assert again.recv_exact(37, timeout=mrlib.slow(5)) == hello(0, digest("echo"))
        finally:
            again.close()
    finally:
        lsock.close()
    assert m.alive()


# -- configuration


def _bad_key_config(role, port, port2):
    """A noise config whose key is base64 of 31 bytes (44 characters, like
    a real key). Returns (text, line, columns where the key can be
    reported: its name or its value)."""
    bad = base64.b64encode(os.urandom(31)).decode()
    assert len(bad) == 44
    if role == "server":
        key = "local_private_key"
        lines = ["[server]", f'bind_addr = "127.0.0.1:{port}"', 'default_token = "t"',
                 "[server.transport]", 'type = "noise"', "[server.transport.noise]",
                 f'{key} = "{bad}"', "[server.services.a]", f'bind_addr = "127.0.0.1:{port2}"']
    else:
        key = "remote_public_key"
        lines = ["[client]", f'remote_addr = "127.0.0.1:{port}"', 'default_token = "t"',
                 "[client.transport]", 'type = "noise"', "[client.transport.noise]",
                 f'{key} = "{bad}"', "[client.services.a]", 'local_addr = "127.0.0.1:9"']
    line = 7
    value_col = len(f"{key} = ") + 1
    return "\n".join(lines) + "\n", line, key, {1, value_col, value_col + 1}


@pytest.mark.parametrize("role", ["server", "client"])
@pytest.mark.parametrize("cmd", ["check", "run"])
def test_key_of_wrong_length_is_config_error(tmp_path, role, cmd):
    """A Noise key that decodes to 31 bytes: `molerat check` and the start
    both fail (exit 1) with one line holding FILE:LINE:COL of the key and
    saying it is not 32 bytes; nothing listens, nothing connects."""
    port, port2 = mrlib.free_port(), mrlib.free_port()
    text, line, key, cols = _bad_key_config(role, port, port2)
    path = str(tmp_path / f"badkey-{role}.toml")
    with open(path, "w") as f:
        f.write(text)
    with socket.socket() as ls:    # a client must not connect
        if role == "client":
            ls.bind((HOST, port))
            ls.listen(4)
            ls.setblocking(False)
        p = subprocess.run([mrlib.molerat_bin()] + (["check"] if cmd == "check" else []) + [path],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=mrlib.slow(10))
        out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
        assert p.returncode == 1, (p.returncode, out, err)
        lines = err.splitlines()
        assert len(lines) == 1, f"expected one line:\n{err}"
        m = re.search(re.escape(path) + r":(\d+):(\d+):", lines[0])
        assert m, f"no {path}:LINE:COL in: {lines[0]}"
        assert int(m.group(1)) == line, f"line {m.group(1)}, the key is on line {line}: {lines[0]}"
        assert int(m.group(2)) in cols, f"column {m.group(2)}, expected one of {sorted(cols)}: {lines[0]}"
        low = lines[0].lower()
        assert "key" in low and "32" in low, f"the line should say the key is not 32 bytes: {lines[0]}"
        assert "valid" not in out, out
        if role == "client":
            with pytest.raises(BlockingIOError):
                ls.accept()
    if role == "server":
        assert mrlib.port_refuses(port)


def test_genkey_pair_works_in_nk(procs, echo):
    """`molerat --genkey` output, used as is: the private key on the server,
    the public key on the client (NK, the default pattern). Both configs
    pass `molerat check` and a round trip works."""
    p = subprocess.run([mrlib.molerat_bin(), "--genkey"], capture_output=True, timeout=mrlib.slow(10))
    assert p.returncode == 0, p.stderr
    mk = GENKEY.fullmatch(p.stdout.decode())
    assert mk, f"--genkey output: {p.stdout!r}"
    priv, pub = mk.group(1), mk.group(2)
    assert x25519_public(base64.b64decode(priv)) == base64.b64decode(pub)
    t = mrlib.Tunnel(procs, [{"name": "gk", "local": echo.port}],
                     server_extra={"extra": noise_toml("server", "NK", local_private_key=priv)},
                     client_extra={"extra": noise_toml("client", "NK", remote_public_key=pub)})
    t.server_port = mrlib.free_port()
    for name, text in (("s.toml", t.server_toml()), ("c.toml", t.client_toml())):
        path = procs.write(name, text)
        c = subprocess.run([mrlib.molerat_bin(), "check", path], capture_output=True, timeout=mrlib.slow(10))
        assert c.returncode == 0, f"check {name}: {c.stdout.decode()}{c.stderr.decode()}"
        assert "noise" in c.stdout.decode().lower(), c.stdout.decode()
    t.start(ready=["gk"])
    data = mrlib.payload("genkey", 1 << 20)
    got = mrlib.roundtrip(t.svc_port["gk"], data, timeout=mrlib.slow(10))
    assert mrlib.sha(got) == mrlib.sha(data)
