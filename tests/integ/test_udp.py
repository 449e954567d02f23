"""UDP services through real molerat server and client processes on
loopback (protocol.md#p-udp, issue 5): datagrams of every size up to 65,507 bytes
cross whole in both directions (rathole cuts them at 2,048), visitors are
kept apart, client mappings expire and come back, a missing local service
hurts only its own mapping, restarts of either end recover, IPv6 works;
and the bytes of protocol.md#p-udp-frame/protocol.md#p-udp checked against a peer written here from the
spec (a fake server against the molerat client, a fake client against the
molerat server)."""
import os
import socket
import struct
import time

import pytest

import mrlib
from mrlib import HOST, digest, hello, recv_exact, session_key, wait_closed
import udp_helpers as uh

SIZES = [0, 1, 1472, 2049, 8192, 65507]
CREATE = mrlib.CREATE_DATA_CHANNEL
OK = mrlib.ACK_OK
START_UDP = b"\x01\x00\x00\x00"


@pytest.fixture
def udp_echo():
    started = []

    def make(host=uh.HOST4, port=0):
        e = uh.UdpEcho(host, port)
        started.append(e)
        return e

    yield make
    for e in started:
        e.close()


def payload_for(seed, n):
    return mrlib.payload(seed, n)


# ==========================================================================
# through molerat server + client


@pytest.mark.parametrize("size", SIZES)
def test_udp_echo_sizes(procs, udp_echo, size):
    """One datagram of each size crosses whole, both ways, bytes checked."""
    e = udp_echo()
    t = uh.UdpTunnel(procs, e.port).start()
    v = uh.visitor()
    try:
        for seed in range(3):
            data = payload_for(seed * 1000 + size, size)
            got = uh.exchange(v, data, t.addr, timeout=mrlib.slow(3))
            assert got is not None, f"no echo of a {size}-byte datagram"
            assert len(got) == size, f"{size} bytes sent, {len(got)} came back"
            assert got == data
    finally:
        v.close()


def test_udp_all_sizes_one_visitor_in_a_burst(procs, udp_echo):
    """All sizes sent back to back from one visitor come back whole."""
    e = udp_echo()
    t = uh.UdpTunnel(procs, e.port).start()
    v = uh.visitor()
    try:
        sent = {}
        for i, size in enumerate(SIZES):
            data = bytes([i]) * size if size else b""
            sent[size] = data
            v.sendto(data, t.addr)
        got = uh.recv_dgrams(v, len(SIZES), mrlib.slow(5))
        assert sorted(len(d) for d in got) == sorted(SIZES)
        for d in got:
            assert d == sent[len(d)]
    finally:
        v.close()


def test_udp_train_of_equal_datagrams_keeps_boundaries(procs, udp_echo):
    """40 datagrams of 1,200 bytes and a shorter one, back to back from one
    visitor: the runs molerat coalesces on the way (UDP GSO, both ways)
    reach the service and come back as the same 41 datagrams, each whole."""
    e = udp_echo()
    t = uh.UdpTunnel(procs, e.port).start()
    v = uh.visitor()
    try:
        sent = [struct.pack("!H", i) + payload_for(7000 + i, 1198) for i in range(40)]
        sent.append(struct.pack("!H", 40) + payload_for(7040, 298))
        for d in sent:
            v.sendto(d, t.addr)
        got = uh.recv_dgrams(v, len(sent), mrlib.slow(5))
        assert len(got) == len(sent), f"{len(got)} of {len(sent)} datagrams came back"
        assert sorted(got) == sorted(sent)
    finally:
        v.close()


def test_udp_50_visitors(procs, udp_echo):
    """50 visitors at once: each gets only its own replies; the local
    service sees 50 distinct mappings. (A round is 50 datagrams, one per
    visitor, so no socket buffer on the way overflows: UDP may drop.)"""
    e = udp_echo()
    t = uh.UdpTunnel(procs, e.port).start()
    vs = [uh.visitor() for _ in range(50)]
    try:
        for rnd in range(3):
            for i, v in enumerate(vs):
                v.sendto(b"visitor %d round %d " % (i, rnd) + os.urandom(i * 20), t.addr)
            for i, v in enumerate(vs):
                d = uh.recv_dgram(v, mrlib.slow(5))
                assert d is not None, f"visitor {i}: no reply in round {rnd}"
                assert d.startswith(b"visitor %d round %d " % (i, rnd)), f"visitor {i} got {d[:30]!r}"
                assert len(d) == len(b"visitor %d round %d " % (i, rnd)) + i * 20
        for i, v in enumerate(vs):
            assert uh.recv_dgram(v, 0.02) is None, f"visitor {i} got an extra datagram"
        # one mapping (source address at the service) per visitor, the
        # same in every round (a visitor socket may reuse the port of the
        # readiness probe's, and with it the probe's mapping: not counted
        # against the sources seen before)
        src_of = {}
        for src, head in e.log:
            if head.startswith(b"visitor "):
                i = int(head.split(b" ")[1])
                src_of.setdefault(i, set()).add(src)
        assert sorted(src_of) == list(range(50))
        assert all(len(s) == 1 for s in src_of.values()), src_of
        assert len({next(iter(s)) for s in src_of.values()}) == 50
    finally:
        for v in vs:
            v.close()


def test_udp_mapping_expires_and_comes_back(procs, udp_echo):
    """With MOLERAT_TEST_UDP_IDLE_MS=300 on the client, a visitor's mapping
    lives while used and expires after 300 ms idle; the next datagram makes
    a fresh one (the local service sees a new source port)."""
    e = udp_echo()
    t = uh.UdpTunnel(procs, e.port, client_env={"MOLERAT_TEST_UDP_IDLE_MS": "300"}).start()
    v = uh.visitor()

    def sources_of(prefix):
        return {src for src, head in list(e.log) if head.startswith(prefix)}

    try:
        for i in range(6):   # 6 x 150 ms: busy, one mapping
            assert uh.exchange(v, b"keep %d" % i, t.addr, mrlib.slow(3)) == b"keep %d" % i
            time.sleep(0.15)
        busy = sources_of(b"keep ")
        assert len(busy) == 1, f"mappings while busy: {busy}"
        time.sleep(0.3 + mrlib.slow(0.5))
        assert uh.exchange(v, b"later", t.addr, mrlib.slow(3)) == b"later"
        later = sources_of(b"later")
        assert len(later) == 1 and later != busy, f"source before: {busy}, after: {later}"
    finally:
        v.close()


def test_udp_local_service_absent(procs, udp_echo):
    """Nothing listens at local_addr: the ICMP port unreachable drops that
    mapping only; the service stays up, and once a local service appears
    every visitor gets through, with the same control channel."""
    local = uh.free_udp_port()
    t = uh.UdpTunnel(procs, local).start(ready=False)
    a = uh.visitor()
    b = uh.visitor()
    try:
        # the UDP socket is bound once the control channel is up; until the
        # local service exists nothing comes back
        time.sleep(mrlib.slow(1.0))
        for i in range(5):
            assert uh.exchange(a, b"nobody %d" % i, t.addr, 0.2) is None
        assert t.server.alive() and t.client.alive()
        e = udp_echo(port=local)
        assert uh.exchange(b, b"for b", t.addr, mrlib.slow(3)) == b"for b"
        assert uh.exchange(a, b"for a", t.addr, mrlib.slow(3)) == b"for a"
    finally:
        a.close()
        b.close()
    # the client kept its one control channel and its one UDP data channel
    err = t.client.stderr()
    assert err.count("control channel established") == 1, err
    assert err.count("UDP forwarding to") == 1, err
    assert t.server.alive() and t.client.alive()
    _ = e


def test_udp_refused_mapping_does_not_hurt_others(procs, udp_echo):
    """One visitor's mapping fails (its datagrams reach a local service
    that went away and came back): a second visitor keeps working through
    it all."""
    e = udp_echo()
    port = e.port
    t = uh.UdpTunnel(procs, port).start()
    a = uh.visitor()
    b = uh.visitor()
    try:
        assert uh.exchange(a, b"a1", t.addr, mrlib.slow(3)) == b"a1"
        assert uh.exchange(b, b"b1", t.addr, mrlib.slow(3)) == b"b1"
        e.close()
        # a's datagram meets a closed port: ICMP -> a's mapping ends
        a.sendto(b"into the void", t.addr)
        time.sleep(0.3)
        e2 = udp_echo(port=port)
        assert uh.exchange(b, b"b2", t.addr, mrlib.slow(3)) in (b"b2", None)
        # b may have lost its mapping too if its datagram hit the gap; the
        # next one goes through either way
        for who, s in (("a", a), ("b", b)):
            ok = False
            for i in range(5):
                d = b"%s-after-%d" % (who.encode(), i)
                got = uh.exchange(s, d, t.addr, mrlib.slow(1))
                while got is not None and got != d:
                    got = uh.recv_dgram(s, 0.5)
                if got == d:
                    ok = True
                    break
            assert ok, f"visitor {who} gets no echo after the local service came back"
        _ = e2
    finally:
        a.close()
        b.close()
    assert t.server.alive() and t.client.alive()


@pytest.mark.parametrize("end", ["server", "client"])
def test_udp_restart(procs, udp_echo, end):
    """The server (on the same ports) or the client stops and starts again:
    the client reconnects or the server takes the new one, and UDP flows
    again."""
    e = udp_echo()
    t = uh.UdpTunnel(procs, e.port).start()
    v = uh.visitor()
    try:
        assert uh.exchange(v, b"before", t.addr, mrlib.slow(3)) == b"before"
        rc, killed = getattr(t, end).stop()
        assert rc == 0 and not killed
        getattr(t, "start_" + end)()
        t.wait_ready(timeout=10)
        assert uh.exchange(v, b"after", t.addr, mrlib.slow(3)) == b"after"
    finally:
        v.close()


def test_udp_ipv6(procs, udp_echo):
    """IPv6 visitors on [::1] and a local service on [::1]."""
    e = udp_echo(host=uh.HOST6)
    t = uh.UdpTunnel(procs, e.port, host=uh.HOST6, local_host=uh.HOST6).start()
    vs = [uh.visitor(uh.HOST6) for _ in range(3)]
    try:
        for i, v in enumerate(vs):
            for size in (0, 5, 2049, 65507):
                data = payload_for(i * 100 + size, size)
                got = uh.exchange(v, data, t.addr, mrlib.slow(3))
                assert got == data, f"visitor {i}, {size} bytes: {None if got is None else len(got)}"
        assert all(src[0] == uh.HOST6 for src in e.sources)
    finally:
        for v in vs:
            v.close()


def test_udp_ipv4_visitors_ipv6_local(procs, udp_echo):
    """IPv4 visitors and an IPv6 local service (the mapping sockets follow
    the local service's family)."""
    e = udp_echo(host=uh.HOST6)
    t = uh.UdpTunnel(procs, e.port, host=uh.HOST4, local_host=uh.HOST6).start()
    v = uh.visitor()
    try:
        data = payload_for(7, 8192)
        assert uh.exchange(v, data, t.addr, mrlib.slow(3)) == data
    finally:
        v.close()


# ==========================================================================
# wire bytes: a fake server against the molerat client


TOKEN = "udp-wire-token"


def read_frame(sock, timeout=5.0):
    """One frame's bytes, read as protocol.md's reader does: hlen, header,
    payload."""
    hlen = recv_exact(sock, 1, timeout)
    hdr = recv_exact(sock, hlen[0], timeout)
    n = struct.unpack("<H", hdr[-2:])[0]
    return hlen + hdr + recv_exact(sock, n, timeout)


def test_wire_fake_server_against_client(procs, udp_echo, fake_server):
    """protocol.md#p-udp transcript: after StartForwardUdp, the frame for "hello" from a
    visitor comes back (through the local echo) as the same bytes; so do
    frames of every size, IPv6 `from`s, and an empty datagram."""
    e = udp_echo()
    svc = {"name": "udpsvc", "type": "udp", "token": TOKEN, "local": e.port}
    m = procs.client(mrlib.client_toml(fake_server.port, [svc]))
    ctl, _, key = fake_server.handshake("udpsvc", TOKEN)
    try:
        d = fake_server.data_channel(ctl, key)
        try:
            d.sendall(START_UDP)
            # protocol.md's frame, with a 127.0.0.1 visitor address
            f = bytes.fromhex("0c 00000000 7f000001 6cca 0500 68656c6c6f")
            assert f == uh.frame("127.0.0.1", 51820, b"hello")
            d.sendall(f)
            assert read_frame(d) == f
            # protocol.md's own 203.0.113.7:51820 frame: `from` is only a key
            f = bytes.fromhex("0c00000000cb0071076cca050068656c6c6f")
            d.sendall(f)
            assert read_frame(d) == f
            # IPv6 from (protocol.md#p-udp-frame example)
            f = bytes.fromhex("180100000020010db8000000000000000000000001bb010300010203")
            d.sendall(f)
            assert read_frame(d) == f
            for size in SIZES:
                f = uh.frame("198.51.100.9", 4000 + size % 1000, payload_for(size, size))
                # as rathole writes it: length byte, header, payload apart
                d.sendall(f[:1])
                d.sendall(f[1:13])
                d.sendall(f[13:])
                got = read_frame(d, mrlib.slow(5))
                assert len(got) == len(f) and got == f, f"{size}-byte frame"
        finally:
            d.close()
    finally:
        ctl.close()
    assert m.alive()


def test_wire_fake_server_malformed_frame_closes(procs, udp_echo, fake_server):
    """A frame whose header does not decode (address tag 2) ends the UDP
    data channel: the client closes it (it may close at once, protocol.md#p-udp)."""
    e = udp_echo()
    svc = {"name": "udpsvc", "type": "udp", "token": TOKEN, "local": e.port}
    m = procs.client(mrlib.client_toml(fake_server.port, [svc]))
    ctl, _, key = fake_server.handshake("udpsvc", TOKEN)
    try:
        d = fake_server.data_channel(ctl, key)
        try:
            d.sendall(START_UDP + bytes.fromhex("0c 02000000 7f000001 6cca 0500 68656c6c6f"))
            assert wait_closed(d, mrlib.slow(5)) == b""
        finally:
            d.close()
    finally:
        ctl.close()
    assert m.alive()


# ==========================================================================
# wire bytes: a fake client against the molerat server


class UdpServerSide:
    def __init__(self, procs):
        self.bind = mrlib.free_port()
        self.udp_port = uh.free_udp_port()
        toml = mrlib.server_toml(self.bind, [
            {"name": "dns", "type": "udp", "token": TOKEN, "port": self.udp_port},
        ], heartbeat_interval=0)
        self.proc = procs.server(toml)
        assert mrlib.wait_port(self.bind, mrlib.slow(5), proc=self.proc), self.proc.tail()

    def connect(self):
        s = socket.create_connection((HOST, self.bind), timeout=5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def control(self):
        s = self.connect()
        s.sendall(hello(0, digest("dns")))
        h = recv_exact(s, 37)
        assert h[:5] == b"\x00\x00\x00\x00\x01", h.hex()
        key = session_key(TOKEN, h[5:])
        s.sendall(key)
        assert recv_exact(s, 4) == OK
        return s, key

    def data_channel(self, key):
        d = self.connect()
        d.sendall(hello(1, key))
        return d


def test_wire_fake_client_against_server(procs):
    """Two CreateDataChannel; StartForwardUdp on the first data channel;
    visitor datagrams arrive as exact frames (all sizes, no truncation);
    frames sent back reach the visitor they name."""
    srv = UdpServerSide(procs)
    ctl, key = srv.control()
    try:
        assert recv_exact(ctl, 8, timeout=3) == CREATE * 2
        d = srv.data_channel(key)
        v = uh.visitor()
        vport = v.getsockname()[1]
        try:
            assert recv_exact(d, 4, timeout=3) == START_UDP
            for size in [5] + SIZES:
                data = b"hello" if size == 5 else payload_for(size + 1, size)
                v.sendto(data, (HOST, srv.udp_port))
                want = uh.frame(HOST, vport, data)
                got = read_frame(d, mrlib.slow(5))
                assert got == want, f"{size}-byte datagram: frame of {len(got)} bytes, want {len(want)}"
                # and back, to the visitor named in the frame
                back = payload_for(size + 2, size)
                d.sendall(uh.frame(HOST, vport, back))
                v.settimeout(mrlib.slow(3))
                got, frm = v.recvfrom(65536)
                assert got == back and frm == (HOST, srv.udp_port)
            # protocol.md's exact transcript bytes for "hello" from this visitor
            v.sendto(b"hello", (HOST, srv.udp_port))
            got = read_frame(d)
            assert got == bytes.fromhex("0c00000000" + "7f000001") + struct.pack("<H", vport) \
                + bytes.fromhex("0500 68656c6c6f")
        finally:
            v.close()
            d.close()
    finally:
        ctl.close()


def test_wire_fake_client_spare_channel_takes_over(procs):
    """The UDP data channel breaks: the server moves to the spare pooled
    channel (StartForwardUdp on it) without a new control channel."""
    srv = UdpServerSide(procs)
    ctl, key = srv.control()
    try:
        assert recv_exact(ctl, 8, timeout=3) == CREATE * 2
        d1 = srv.data_channel(key)
        assert recv_exact(d1, 4, timeout=3) == START_UDP
        d2 = srv.data_channel(key)
        time.sleep(0.2)
        v = uh.visitor()
        vport = v.getsockname()[1]
        try:
            d1.close()
            assert recv_exact(d2, 4, timeout=mrlib.slow(3)) == START_UDP
            v.sendto(b"still here", (HOST, srv.udp_port))
            assert read_frame(d2, mrlib.slow(3)) == uh.frame(HOST, vport, b"still here")
            # the control channel stays open and asks for a new spare
            ctl.settimeout(mrlib.slow(2))
            assert recv_exact(ctl, 4, timeout=mrlib.slow(2)) == CREATE
        finally:
            v.close()
            d2.close()
    finally:
        ctl.close()
    assert srv.proc.alive()
