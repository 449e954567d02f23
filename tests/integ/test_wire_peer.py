"""The bytes on the wire, checked by a peer written here from docs/protocol.md
(protocol.md#p-messages, protocol.md#p-control-transcript, protocol.md#p-data-transcript) with plain sockets and hashlib:

(a) a fake CLIENT against a molerat server;
(b) a fake SERVER against a molerat client.
"""
import hashlib
import socket
import struct
import threading
import time

import pytest

import mrlib
from mrlib import HOST, digest, hello, recv_exact, session_key, wait_closed

OK = mrlib.ACK_OK
CREATE = mrlib.CREATE_DATA_CHANNEL
START_TCP = b"\x00\x00\x00\x00"
START_UDP = b"\x01\x00\x00\x00"
HEARTBEAT = b"\x01\x00\x00\x00"
SERVICE_NOT_EXIST = b"\x01\x00\x00\x00"
AUTH_FAILED = b"\x02\x00\x00\x00"

TOKEN = "wire-token-\u00e9"   # non-ASCII: the token is hashed as UTF-8


# ==========================================================================
# (a) fake client against a molerat server


class FakeServerSide:
    """A molerat server with a TCP service 'echo' and a UDP service 'dns',
    heartbeat_interval = 1."""

    def __init__(self, procs, relay="splice", heartbeat=1):
        self.bind = mrlib.free_port()
        self.tcp_port = mrlib.free_port()
        self.udp_port = mrlib.free_port()
        toml = mrlib.server_toml(self.bind, [
            {"name": "echo", "port": self.tcp_port, "token": TOKEN},
            {"name": "dns", "port": self.udp_port, "token": TOKEN, "type": "udp"},
        ], heartbeat_interval=heartbeat)
        self.proc = procs.server(toml, env=mrlib.relay_env(relay))
        assert mrlib.wait_port(self.bind, mrlib.slow(5), proc=self.proc), \
            f"server not listening\n{self.proc.tail()}"

    def connect(self):
        s = socket.create_connection((HOST, self.bind), timeout=5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def control(self, name="echo", token=TOKEN):
        """Full control handshake; returns (sock, nonce, session key)."""
        s = self.connect()
        s.sendall(hello(0, digest(name)))
        h = recv_exact(s, 37)
        assert h[:5] == b"\x00\x00\x00\x00\x01", f"server Hello {h.hex()}"
        nonce = h[5:]
        key = session_key(token, nonce)
        s.sendall(key)
        ack = recv_exact(s, 4)
        assert ack == OK, f"Ack {ack.hex()}"
        return s, nonce, key


def read_cmds(s, seconds):
    """Reads 4-byte commands for `seconds`; returns [(t, cmd)]."""
    out = []
    t0 = time.monotonic()
    buf = b""
    while True:
        left = t0 + seconds - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            break
        assert chunk, f"control channel closed after {[c.hex() for _, c in out]}"
        buf += chunk
        while len(buf) >= 4:
            out.append((time.monotonic() - t0, buf[:4]))
            buf = buf[4:]
    assert buf == b"", f"partial command {buf.hex()}"
    return out


def test_server_handshake_pool_and_heartbeat(procs):
    """Exact Hello/Auth/Ack, 8 CreateDataChannel, one more per visitor, a
    HeartBeat after 1 s of silence, fresh nonces."""
    srv = FakeServerSide(procs)
    s, nonce, key = srv.control()
    try:
        assert nonce != b"\x00" * 32
        pool = recv_exact(s, 32, timeout=2)
        assert pool == CREATE * 8, f"pool pre-fill {pool.hex()}"
        t_pool = time.monotonic()
        # silence, then a heartbeat at ~1 s
        cmd = recv_exact(s, 4, timeout=3)
        dt = time.monotonic() - t_pool
        assert cmd == HEARTBEAT, f"expected HeartBeat, got {cmd.hex()}"
        assert 0.6 <= dt <= 2.0, f"HeartBeat after {dt:.2f}s, heartbeat_interval = 1"
        # the service port is open now; each visitor asks for one more channel
        visitors = [socket.create_connection((HOST, srv.tcp_port), timeout=5) for _ in range(3)]
        try:
            cmds = read_cmds(s, 1.8)
        finally:
            for v in visitors:
                v.close()
        creates = [c for _, c in cmds if c == CREATE]
        others = [c for _, c in cmds if c != CREATE]
        assert len(creates) == 3, f"commands after 3 visitors: {[c.hex() for _, c in cmds]}"
        assert all(c == HEARTBEAT for c in others)
    finally:
        s.close()
    # another handshake draws another nonce
    nonces = set([nonce])
    for _ in range(2):
        c = srv.connect()
        c.sendall(hello(0, digest("echo")))
        h = recv_exact(c, 37)
        c.close()
        assert h[:5] == b"\x00\x00\x00\x00\x01"
        nonces.add(h[5:])
    assert len(nonces) == 3, "nonces repeat"
    assert srv.proc.alive()


def test_server_udp_pool_of_two(procs):
    """A UDP service gets 2 CreateDataChannel; a datagram from a visitor
    arrives framed on a data channel after StartForwardUdp."""
    srv = FakeServerSide(procs, heartbeat=0)
    s, nonce, key = srv.control("dns")
    try:
        pool = recv_exact(s, 8, timeout=2)
        assert pool == CREATE * 2
        more = read_cmds(s, 0.7)
        assert more == [], f"more than 2 requests: {[c.hex() for _, c in more]}"
        d = srv.connect()
        d.sendall(hello(1, key))
        assert recv_exact(d, 4, timeout=3) == START_UDP
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind((HOST, 0))
        vport = u.getsockname()[1]
        try:
            u.sendto(b"hello", (HOST, srv.udp_port))
            frame = recv_exact(d, 1 + 12 + 5, timeout=3)
            want = (b"\x0c" + struct.pack("<I", 0) + socket.inet_aton(HOST) + struct.pack("<HH", vport, 5)
                    + b"hello")
            assert frame == want, frame.hex()
            # reply framed back -> datagram to the visitor
            d.sendall(want[:-5] + b"world")
            u.settimeout(3)
            got, frm = u.recvfrom(2048)
            assert got == b"world" and frm == (HOST, srv.udp_port)
        finally:
            u.close()
            d.close()
    finally:
        s.close()


def test_server_wrong_token(procs):
    srv = FakeServerSide(procs)
    s = srv.connect()
    try:
        s.sendall(hello(0, digest("echo")))
        h = recv_exact(s, 37)
        assert h[:5] == b"\x00\x00\x00\x00\x01"
        s.sendall(session_key("wrong", h[5:]))
        assert recv_exact(s, 4) == AUTH_FAILED
        assert wait_closed(s, 3) == b""
    finally:
        s.close()
    # the right token still works afterwards
    c, _, _ = srv.control()
    c.close()
    assert srv.proc.alive()


def test_server_auth_with_other_nonce_fails(procs):
    """Auth computed from a nonce of another handshake is rejected."""
    srv = FakeServerSide(procs)
    a = srv.connect()
    b = srv.connect()
    try:
        a.sendall(hello(0, digest("echo")))
        na = recv_exact(a, 37)[5:]
        b.sendall(hello(0, digest("echo")))
        nb = recv_exact(b, 37)[5:]
        assert na != nb
        b.sendall(session_key(TOKEN, na))
        assert recv_exact(b, 4) == AUTH_FAILED
    finally:
        a.close()
        b.close()


def test_server_unknown_service(procs):
    """Unknown service: the nonce Hello, then ServiceNotExist, then close."""
    srv = FakeServerSide(procs)
    s = srv.connect()
    try:
        s.sendall(hello(0, digest("no-such-service")))
        got = recv_exact(s, 41)
        assert got[:5] == b"\x00\x00\x00\x00\x01", got.hex()
        assert got[37:] == SERVICE_NOT_EXIST, got.hex()
        assert wait_closed(s, 3) == b""
    finally:
        s.close()
    assert srv.proc.alive()


@pytest.mark.parametrize("variant", ["version2", "version0", "tag2"])
def test_server_bad_hello_closed_silently(procs, variant):
    """A Hello with version 2 or 0, or an unknown tag: closed, nothing sent."""
    srv = FakeServerSide(procs)
    msg = {
        "version2": hello(0, digest("echo"), version=2),
        "version0": hello(0, digest("echo"), version=0),
        "tag2": hello(2, digest("echo")),
    }[variant]
    s = srv.connect()
    try:
        s.sendall(msg)
        assert wait_closed(s, 3) == b""
    finally:
        s.close()
    c, _, _ = srv.control()
    c.close()
    assert srv.proc.alive()


def test_server_unknown_data_channel_key(procs):
    srv = FakeServerSide(procs)
    ctl, nonce, key = srv.control()
    try:
        d = srv.connect()
        d.sendall(hello(1, hashlib.sha256(b"not a session key").digest()))
        assert wait_closed(d, 3) == b""
        d.close()
        # the digest of the service name is not a session key either
        d = srv.connect()
        d.sendall(hello(1, digest("echo")))
        assert wait_closed(d, 3) == b""
        d.close()
    finally:
        ctl.close()


def test_server_data_channel_flow(procs, relay):
    """DataChannelHello(session key); a visitor arrives; StartForwardTcp on
    that data channel; raw bytes both ways (sha256); half-close both ways."""
    srv = FakeServerSide(procs, relay=relay)
    ctl, nonce, key = srv.control()
    try:
        assert recv_exact(ctl, 32) == CREATE * 8
        d = srv.connect()
        d.sendall(hello(1, key))
        v = socket.create_connection((HOST, srv.tcp_port), timeout=5)
        try:
            cmd = recv_exact(d, 4, timeout=5)
            assert cmd == START_TCP, cmd.hex()
            up = mrlib.payload(1, 1 << 20)
            down = mrlib.payload(2, (1 << 20) + 17)
            res = {}

            def send_and_shut(sock, data):
                sock.sendall(data)
                sock.shutdown(socket.SHUT_WR)

            t1 = threading.Thread(target=send_and_shut, args=(v, up), daemon=True)
            t2 = threading.Thread(target=send_and_shut, args=(d, down), daemon=True)
            t1.start()
            t2.start()
            res["at_dc"] = mrlib.recv_all(d, timeout=10)
            res["at_visitor"] = mrlib.recv_all(v, timeout=10)
            t1.join(5)
            t2.join(5)
            assert mrlib.sha(res["at_dc"]) == mrlib.sha(up), f"{len(res['at_dc'])} bytes at the data channel"
            assert mrlib.sha(res["at_visitor"]) == mrlib.sha(down), f"{len(res['at_visitor'])} bytes at the visitor"
        finally:
            v.close()
            d.close()
        # the control channel saw one more CreateDataChannel for that visitor
        cmds = read_cmds(ctl, 0.5)
        assert [c for _, c in cmds if c == CREATE] == [CREATE]
    finally:
        ctl.close()


def test_server_early_visitor_bytes(procs, relay):
    """A visitor that sends before any data channel exists: its bytes wait
    and flow once a data channel is paired (protocol.md#p-tcp-pairing)."""
    srv = FakeServerSide(procs, relay=relay)
    ctl, nonce, key = srv.control()
    try:
        assert recv_exact(ctl, 32) == CREATE * 8
        v = socket.create_connection((HOST, srv.tcp_port), timeout=5)
        v.sendall(b"early bytes")
        time.sleep(0.3)
        d = srv.connect()
        d.sendall(hello(1, key))
        assert recv_exact(d, 4, timeout=5) == START_TCP
        assert recv_exact(d, 11, timeout=5) == b"early bytes"
        d.sendall(b"reply")
        assert recv_exact(v, 5, timeout=5) == b"reply"
        v.close()
        d.close()
    finally:
        ctl.close()


def test_server_replaces_control_channel(procs):
    """A second authenticated control channel closes the first (protocol.md#p-control-replace)."""
    srv = FakeServerSide(procs, heartbeat=0)
    first, _, _ = srv.control()
    try:
        assert recv_exact(first, 32) == CREATE * 8
        second, _, _ = srv.control()
        try:
            assert recv_exact(second, 32) == CREATE * 8
            assert wait_closed(first, 3) == b""
            # the new session owns the service port
            assert mrlib.wait_port(srv.tcp_port, 3)
        finally:
            second.close()
    finally:
        first.close()


# ==========================================================================
# (b) fake server against a molerat client


def start_client(procs, fake, local_port, relay="splice", **kw):
    toml = mrlib.client_toml(fake.port, [{"name": "echo", "local": local_port, "token": TOKEN}], **kw)
    return procs.client(toml, env=mrlib.relay_env(relay))


def test_client_handshake_and_forward(procs, relay, echo, fake_server):
    """Hello digest, Auth = sha256(token || nonce), DataChannelHello with the
    session key, StartForwardTcp, bytes to the local echo and back."""
    m = start_client(procs, fake_server, echo.port, relay=relay)
    ctl, nonce, key = fake_server.handshake("echo", TOKEN)
    try:
        d = fake_server.data_channel(ctl, key)
        try:
            d.sendall(START_TCP)
            data = mrlib.payload(5, 2 << 20)
            th = threading.Thread(target=lambda: (d.sendall(data), d.shutdown(socket.SHUT_WR)), daemon=True)
            th.start()
            got = mrlib.recv_all(d, timeout=mrlib.slow(10))
            th.join(5)
            assert mrlib.sha(got) == mrlib.sha(data), f"{len(got)} bytes back"
        finally:
            d.close()
        assert echo.accepted == 1
    finally:
        ctl.close()
    assert m.alive()


def test_client_pool_channels_each_hello(procs, echo, fake_server):
    """Three CreateDataChannel: three data connections, each with the exact
    DataChannelHello; nothing else is sent on the control channel."""
    start_client(procs, fake_server, echo.port)
    ctl, nonce, key = fake_server.handshake("echo", TOKEN)
    try:
        ctl.sendall(CREATE * 3)
        chans = []
        try:
            for _ in range(3):
                d, _ = fake_server.accept(mrlib.slow(5))
                chans.append(d)
                assert recv_exact(d, 37) == hello(1, key)
            ctl.settimeout(0.5)
            try:
                extra = ctl.recv(100)
                assert False, f"client sent {extra.hex()} on the control channel"
            except socket.timeout:
                pass
        finally:
            for d in chans:
                d.close()
    finally:
        ctl.close()


def test_client_reconnects_after_close(procs, echo, fake_server):
    """The control channel closed by the server: the client reconnects
    after about 0.5 s (first backoff step, ±20%; protocol.md#p-backoff-uses)."""
    m = start_client(procs, fake_server, echo.port)
    ctl, _, _ = fake_server.handshake("echo", TOKEN)
    time.sleep(0.2)
    ctl.close()
    t0 = time.monotonic()
    c, t1 = fake_server.accept(mrlib.slow(4))
    dt = t1 - t0
    try:
        assert recv_exact(c, 37) == hello(0, digest("echo"))
    finally:
        c.close()
    assert 0.3 <= dt <= mrlib.slow(2.0), f"reconnect after {dt:.2f}s"
    assert m.alive()


@pytest.mark.parametrize("ack", [AUTH_FAILED, SERVICE_NOT_EXIST], ids=["auth_failed", "service_not_exist"])
def test_client_retries_after_refusal(procs, echo, fake_server, ack):
    """A refused Ack: the client does not exit; it tries again (and again)."""
    m = start_client(procs, fake_server, echo.port)
    for i in range(2):
        c, _, _ = fake_server.handshake("echo", TOKEN, ack=ack)
        c.close()
    assert m.alive(), f"client exited after a refused Ack\n{m.tail()}"


def test_client_heartbeat_timeout(procs, echo, fake_server):
    """heartbeat_timeout = 2 and a silent server: the client drops the
    control channel after ~2 s and connects again."""
    m = start_client(procs, fake_server, echo.port, heartbeat_timeout=2)
    ctl, _, _ = fake_server.handshake("echo", TOKEN)
    t0 = time.monotonic()
    try:
        got = wait_closed(ctl, mrlib.slow(6))
        dt = time.monotonic() - t0
        assert got == b"", f"client sent {got.hex()}"
        assert 1.5 <= dt <= mrlib.slow(3.5), f"closed after {dt:.2f}s with heartbeat_timeout = 2"
    finally:
        ctl.close()
    c, t1 = fake_server.accept(mrlib.slow(4))
    c.close()
    assert m.alive()


def test_client_heartbeats_keep_it_alive(procs, echo, fake_server):
    """heartbeat_timeout = 2 and a HeartBeat every 0.5 s: the control
    channel stays up for 4 s."""
    start_client(procs, fake_server, echo.port, heartbeat_timeout=2)
    ctl, _, _ = fake_server.handshake("echo", TOKEN)
    try:
        for _ in range(8):
            ctl.sendall(HEARTBEAT)
            ctl.settimeout(0.5)
            try:
                got = ctl.recv(10)
                pytest.fail(f"control channel closed or client sent {got.hex()}")
            except socket.timeout:
                pass
    finally:
        ctl.close()


def test_client_local_refused_closes_data_channel(procs, fake_server):
    """local_addr refuses: after StartForwardTcp the client closes the data
    channel without sending anything (protocol.md#p-tcp-relay)."""
    dead = mrlib.free_port()
    start_client(procs, fake_server, dead)
    ctl, _, key = fake_server.handshake("echo", TOKEN)
    try:
        d = fake_server.data_channel(ctl, key)
        try:
            d.sendall(START_TCP + b"data for nobody")
            assert wait_closed(d, mrlib.slow(5)) == b""
        finally:
            d.close()
    finally:
        ctl.close()
