"""Helpers for the UDP integration tests: a UDP echo service in a thread,
visitor sockets, bounded waits, and a tunnel with one UDP service.

Everything talks to 127.0.0.1 or ::1 only, and every wait is bounded.
"""
import os
import select
import socket
import struct
import threading
import time

import mrlib

HOST4 = "127.0.0.1"
HOST6 = "::1"
MAX_DGRAM = 65507


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def free_udp_port(host=HOST4):
    """A UDP port on host that was free a moment ago (also checked free for
    TCP on 127.0.0.1 through mrlib, so the two kinds never collide)."""
    for _ in range(200):
        port = mrlib.free_port()
        s = socket.socket(family(host), socket.SOCK_DGRAM)
        try:
            s.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free UDP port")


class UdpEcho:
    """Echoes every datagram back to its sender, from a thread. Records the
    distinct source addresses in order of first sight (sources), counts
    datagrams (received) and keeps (source, first 32 bytes) of the first
    10,000 datagrams (log)."""

    def __init__(self, host=HOST4, port=0):
        self.sock = socket.socket(family(host), socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((host, port))
        self.port = self.sock.getsockname()[1]
        self.sources = []
        self.received = 0
        self.log = []
        self.lock = threading.Lock()
        self.closing = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.closing:
            r, _, _ = select.select([self.sock], [], [], 0.1)
            if not r:
                continue
            try:
                data, src = self.sock.recvfrom(65536)
            except OSError:
                continue
            with self.lock:
                self.received += 1
                if src not in self.sources:
                    self.sources.append(src)
                if len(self.log) < 10000:
                    self.log.append((src, data[:32]))
            try:
                self.sock.sendto(data, src)
            except OSError:
                pass

    def close(self):
        self.closing = True
        self.thread.join(2)
        self.sock.close()


def visitor(host=HOST4):
    """A visitor's UDP socket bound to host:0."""
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((host, 0))
    return s


def recv_dgram(sock, timeout):
    """One datagram (bytes), or None after timeout."""
    r, _, _ = select.select([sock], [], [], max(0.0, timeout))
    if not r:
        return None
    return sock.recv(65536)


def recv_dgrams(sock, n, timeout):
    """Up to n datagrams, whatever arrived before timeout (seconds)."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        d = recv_dgram(sock, deadline - time.monotonic())
        if d is None:
            break
        got.append(d)
    return got


def exchange(sock, data, to, timeout=3.0):
    """Sends data once and returns the first datagram back (or None)."""
    sock.sendto(data, to)
    return recv_dgram(sock, timeout)


def wait_udp_ready(host, port, timeout=8.0):
    """Probes host:port (a UDP service through the tunnel to an echo) until
    an echo comes back; the probe socket is then closed, so late echoes of
    probes reach nobody. Returns seconds taken; raises AssertionError."""
    t0 = time.monotonic()
    deadline = t0 + mrlib.slow(timeout)
    s = visitor(host)
    try:
        n = 0
        while time.monotonic() < deadline:
            n += 1
            probe = b"probe-%d-" % n + os.urandom(8)
            s.sendto(probe, (host, port))
            end = min(deadline, time.monotonic() + 0.2)
            while time.monotonic() < end:
                got = recv_dgram(s, end - time.monotonic())
                if got is None:
                    break
                if got.startswith(b"probe-"):
                    return time.monotonic() - t0
        raise AssertionError(f"UDP service {mrlib.hostport(host, port)} not echoing after {mrlib.slow(timeout)}s")
    finally:
        s.close()


class UdpTunnel:
    """A molerat server and client with one UDP service 'udp' forwarding
    host:port on the server to local_host:local on the client."""

    def __init__(self, procs, local, host=HOST4, local_host=HOST4, client_env=None):
        self.procs = procs
        self.host = host
        self.bind = mrlib.free_port()
        self.port = free_udp_port(host)
        self.svc = {"name": "udp", "type": "udp", "token": "tok-udp", "port": self.port,
                    "host": host, "local": local, "local_host": local_host}
        self.client_env = client_env
        self.server = None
        self.client = None

    def start_server(self):
        toml = mrlib.server_toml(self.bind, [self.svc])
        self.server = self.procs.server(toml)
        assert mrlib.wait_port(self.bind, mrlib.slow(5), proc=self.server), \
            f"server not listening on {self.bind}\n{self.server.tail()}"
        return self.server

    def start_client(self):
        toml = mrlib.client_toml(self.bind, [self.svc])
        self.client = self.procs.client(toml, env=self.client_env)
        return self.client

    def start(self, ready=True):
        self.start_server()
        self.start_client()
        if ready:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=8.0):
        return wait_udp_ready(self.host, self.port, timeout)

    @property
    def addr(self):
        return (self.host, self.port)


# ---- frames (protocol.md#p-udp-frame), written out here from the layout


def frame(host, port, payload):
    """hlen | tag | address | port u16 LE | len u16 LE | payload."""
    if ":" in host:
        hdr = struct.pack("<I", 1) + socket.inet_pton(socket.AF_INET6, host)
    else:
        hdr = struct.pack("<I", 0) + socket.inet_aton(host)
    hdr += struct.pack("<HH", port, len(payload))
    return bytes([len(hdr)]) + hdr + payload
