"""Half-open forwarded connections end (docs/configuration.md, "Dead and
half-open connections"): once one direction has ended, the other may be
silent for half_close_timeout seconds before both are closed, on the
server's side and on the client's; a reply that keeps moving is never cut,
and 0 keeps rathole's wait for ever."""
import hashlib
import socket
import threading
import time

import pytest

import floods
import mrlib
from mrlib import HOST


class SilentAfterEof(mrlib._TcpService):
    """Reads until EOF, then neither answers nor closes (a service that
    hangs); the connection is held until the test closes the service."""

    def __init__(self):
        self.eofs = 0
        self.released = threading.Event()
        super().__init__()

    def handle(self, c):
        while c.recv(65536):
            pass
        self.eofs += 1
        self.released.wait(60)


class SlowReplyAfterEof(mrlib._TcpService):
    """After EOF, answers `total` bytes in chunks every `gap` seconds (a
    reply that keeps moving, for longer than the timeout in all)."""

    def __init__(self, total, gap):
        self.total, self.gap = total, gap
        super().__init__()

    def handle(self, c):
        while c.recv(65536):
            pass
        sent = 0
        while sent < self.total:
            time.sleep(self.gap)
            c.sendall(mrlib.payload(sent, 1000)[:min(1000, self.total - sent)])
            sent += 1000
        c.shutdown(socket.SHUT_WR)


def start_tunnel(t):
    """Starts t without a probe visitor (these services never echo) and
    waits for its control channel and a settled pool."""
    t.start(ready=[])
    ok, _ = floods.wait_for(lambda: "control channel established" in t.server.stderr(), mrlib.slow(8))
    assert ok, t.procs.dump()
    floods.settle(lambda: floods.fd_count(t.server.pid))


def eof_within(port, seconds):
    """A visitor sends a request and shuts its write side; returns (what it
    got, seconds until EOF, or None if no EOF within `seconds`)."""
    s = socket.create_connection((HOST, port), timeout=5)
    try:
        s.sendall(b"request")
        s.shutdown(socket.SHUT_WR)
        s.settimeout(seconds)
        t0 = time.monotonic()
        got = b""
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    return got, time.monotonic() - t0
                got += b
        except socket.timeout:
            return got, None
        except ConnectionResetError:
            return got, time.monotonic() - t0
    finally:
        s.close()


@pytest.mark.parametrize("relay", ["splice", "copy"])
def test_silent_after_half_close_ends(procs, relay):
    """The visitor half-closes, the service hangs: both are closed after
    half_close_timeout (2 s here), and the server's and client's descriptors
    come back (no CLOSE-WAIT visitor, no data channel left behind)."""
    svc = SilentAfterEof()
    t = mrlib.Tunnel(procs, [{"name": "h", "local": svc.port}], relay=relay,
                     server_extra={"extra": "half_close_timeout = 2"}, client_extra={"extra": "half_close_timeout = 2"})
    try:
        start_tunnel(t)
        port = t.svc_port["h"]
        srv0, cli0 = floods.fd_count(t.server.pid), floods.fd_count(t.client.pid)
        got, took = eof_within(port, mrlib.slow(10))
        assert got == b"" and took is not None, f"no EOF within {mrlib.slow(10)} s"
        assert 1.5 <= took <= mrlib.slow(5), f"EOF after {took:.2f} s (timeout 2 s)"
        back, _ = floods.wait_for(lambda: floods.fd_count(t.server.pid) <= srv0 + 1 and
                                  floods.fd_count(t.client.pid) <= cli0 + 1, mrlib.slow(5))
        assert back, (srv0, floods.fd_count(t.server.pid), cli0, floods.fd_count(t.client.pid))
        assert svc.eofs == 1
    finally:
        svc.released.set()
        svc.close()


def test_moving_reply_is_not_cut(procs):
    """A reply after the visitor's half-close that lasts longer than the
    timeout in all, but never pauses that long, arrives whole."""
    total = 6000
    svc = SlowReplyAfterEof(total, 0.5)   # 3 s in all, 0.5 s gaps; timeout 2 s
    t = mrlib.Tunnel(procs, [{"name": "m", "local": svc.port}],
                     server_extra={"extra": "half_close_timeout = 2"}, client_extra={"extra": "half_close_timeout = 2"})
    try:
        start_tunnel(t)
        got, took = eof_within(t.svc_port["m"], mrlib.slow(15))
        want = b"".join(mrlib.payload(k, 1000)[:min(1000, total - k)] for k in range(0, total, 1000))
        assert took is not None
        assert hashlib.sha256(got).digest() == hashlib.sha256(want).digest(), (len(got), len(want))
    finally:
        svc.close()


def test_zero_waits_for_ever(procs):
    """half_close_timeout = 0 is rathole's behaviour: the half-closed
    connection is still open well past the default's scale used above."""
    svc = SilentAfterEof()
    t = mrlib.Tunnel(procs, [{"name": "z", "local": svc.port}],
                     server_extra={"extra": "half_close_timeout = 0"}, client_extra={"extra": "half_close_timeout = 0"})
    try:
        start_tunnel(t)
        got, took = eof_within(t.svc_port["z"], 4)
        assert took is None, f"closed after {took:.2f} s with half_close_timeout = 0"
    finally:
        svc.released.set()
        svc.close()
