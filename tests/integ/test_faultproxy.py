"""The fault-injection proxy itself (tests/integ/faultproxy.py), against a
plain echo server in the test process: no molerat involved."""
import os
import socket
import time

import pytest

import floods
import mrlib
from faultproxy import FaultProxy
from mrlib import HOST, recv_exact


@pytest.fixture
def fp(echo):
    p = FaultProxy(echo.port)
    yield p
    p.close()
    assert not p.errors, p.errors


def test_pass_sha256(fp):
    """Bytes through pass mode arrive intact (4 MiB and a small one), both
    ways, with half-close passed on; counters add up."""
    big = mrlib.payload(1, 4 << 20)
    assert mrlib.sha(mrlib.roundtrip(fp.port, big, timeout=20)) == mrlib.sha(big)
    small = b"hello"
    assert mrlib.roundtrip(fp.port, small) == small
    assert fp.wait(lambda p: p.alive == 0, 3), fp.live()
    st = fp.stats()
    assert st["accepted"] == 2
    assert st["bytes_up"] == len(big) + len(small)
    assert st["bytes_down"] == len(big) + len(small)


def test_blackhole_stops_and_resumes(fp):
    """blackhole on an existing connection: nothing comes back, no FIN, no
    RST; back to pass, the queued bytes go through."""
    s = socket.create_connection((HOST, fp.port), timeout=3)
    s.sendall(b"one")
    assert recv_exact(s, 3) == b"one"
    assert fp.set_mode("blackhole") == 1
    s.sendall(b"two")
    s.settimeout(0.7)
    with pytest.raises(socket.timeout):
        s.recv(10)
    # a new connection in blackhole: accepted, not connected on, silent
    s2 = socket.create_connection((HOST, fp.port), timeout=3)
    s2.sendall(b"x")
    s2.settimeout(0.5)
    with pytest.raises(socket.timeout):
        s2.recv(10)
    up_before = fp.bytes_up
    fp.set_mode("pass")
    assert recv_exact(s, 3) == b"two"
    assert recv_exact(s2, 1) == b"x"
    assert fp.bytes_up == up_before + 4
    s.close()
    s2.close()


def test_drain_discards(fp):
    """drain: bytes are read and thrown away, the sender never blocks."""
    s = socket.create_connection((HOST, fp.port), timeout=3)
    fp.wait(lambda p: p.alive == 1, 2)
    fp.set_mode("drain")
    s.sendall(os.urandom(8 << 20))          # far more than the socket buffers
    s.settimeout(0.5)
    with pytest.raises(socket.timeout):
        s.recv(10)
    fp.set_mode("pass")
    s.sendall(b"after")
    assert recv_exact(s, 5) == b"after"
    s.close()


def test_reset_gives_econnreset(fp):
    """reset mode: an existing connection and a new one get an RST."""
    s = socket.create_connection((HOST, fp.port), timeout=3)
    s.sendall(b"ping")
    assert recv_exact(s, 4) == b"ping"
    fp.set_mode("reset")
    s.settimeout(2)
    with pytest.raises(ConnectionResetError):
        s.recv(10)
        s.recv(10)
    # a new one: reset as soon as accepted (on loopback the RST can even
    # beat connect()'s return)
    with pytest.raises(ConnectionResetError):
        s2 = socket.create_connection((HOST, fp.port), timeout=3)
        s2.settimeout(2)
        try:
            s2.recv(10)
            s2.recv(10)
        finally:
            s2.close()
    s.close()
    assert fp.stats()["resets"] >= 2


def test_delay_and_bytewise(fp):
    """delay: a round trip takes two delays; bytewise: the bytes arrive
    intact, one per segment."""
    fp.set_mode("delay", delay_ms=200)
    s = socket.create_connection((HOST, fp.port), timeout=3)
    t0 = time.monotonic()
    s.sendall(b"abc")
    assert recv_exact(s, 3) == b"abc"
    dt = time.monotonic() - t0
    assert 0.35 <= dt <= mrlib.slow(2.0), dt
    fp.set_mode("bytewise", gap_ms=2)
    data = os.urandom(300)
    t0 = time.monotonic()
    s.sendall(data)
    assert recv_exact(s, len(data), timeout=10) == data
    assert time.monotonic() - t0 >= 300 * 0.002 * 0.8   # both ways paced in parallel
    s.close()


def test_reset_idle_by_index(fp):
    """reset_idle resets only the idle connections the predicate chooses;
    the first connection (index 0) survives."""
    socks = [socket.create_connection((HOST, fp.port), timeout=3) for _ in range(3)]
    assert fp.wait(lambda p: p.alive == 3, 2)
    time.sleep(0.3)
    socks[2].sendall(b"k")                   # active: not idle
    assert recv_exact(socks[2], 1) == b"k"
    n = fp.reset_idle(250, which=lambda c: c.index > 0)
    assert n == 1
    socks[1].settimeout(2)
    with pytest.raises(ConnectionResetError):
        socks[1].recv(1)
        socks[1].recv(1)
    for s in (socks[0], socks[2]):
        s.sendall(b"ok")
        assert recv_exact(s, 2) == b"ok"
    # the standing policy
    fp.set_idle_reset(200, which=lambda c: c.index == 2)
    socks[2].settimeout(2)
    with pytest.raises(ConnectionResetError):
        socks[2].recv(1)
        socks[2].recv(1)
    fp.set_idle_reset(None)
    socks[0].sendall(b"still")
    assert recv_exact(socks[0], 5) == b"still"
    for s in socks:
        s.close()


def test_upstream_refused_is_reset():
    """No server behind the proxy: the accepted connection is reset."""
    port = mrlib.free_port()
    with FaultProxy(port) as p:
        s = None
        # the reset may come before our connect returns (loopback is fast)
        with pytest.raises((ConnectionResetError, EOFError)):
            s = socket.create_connection((HOST, p.port), timeout=3)
            s.settimeout(2)
            if not s.recv(1):
                raise EOFError
        if s:
            s.close()
        assert floods.wait_for(lambda: p.stats()["refused_upstream"] == 1, 2)[0], p.stats()
