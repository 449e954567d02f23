"""The websocket transport (protocol.md#p-websocket, protocol.md#q10,
protocol.md#p-tcp-relay's half-close), with real processes on 127.0.0.1:

1. a molerat server and a molerat client over websocket and websocket over
   tls: TCP bulk both ways (32 MiB, and 256 MiB over plain websocket), UDP
   datagrams, 500 concurrent visitors, each checked by sha256;
2. half-close between two molerat ends, both directions (a Close frame is
   the end of one direction only: rathole loses the reply here, molerat
   must not);
3. an independent peer: python3-websockets (10.4, asyncio API) as the
   CLIENT of a molerat server and as the SERVER of a molerat client,
   speaking rathole's control and data channels in Binary messages; and a
   raw-socket peer (ws_peer.py) checking the bytes a library hides: the
   exact upgrade request and 101, the mask of every frame, one Binary frame
   per write, an empty Close and then a FIN;
4. hostile peers against the server (garbage, a tcp Hello, a huge head,
   slowloris, and after a valid upgrade an unmasked frame, a Text frame, a
   2^63 length, RSV bits, 1 GiB announced then EOF) and against the client
   (403, a wrong accept value, Connection: close, garbage): one line, that
   connection dropped, the process goes on (rathole's client aborts: Q10);
5. a Ping from the peer (molerat answers with a Pong,
   docs/internals/transports.md) does not disturb the stream;
6. transport mismatches (websocket against tcp, tls against plain
   websocket), each side one clear line, retries, no crash.

Certificates for tls = true come from tlsutil (the openssl command)."""
import asyncio
import base64
import os
import re
import socket
import ssl
import struct
import subprocess
import threading
import time

import pytest
import websockets

import mrlib
import tlsutil
import udp_helpers as uh
import ws_peer as wp
from mrlib import HOST, digest, hello, session_key, wait_closed
from test_tls import bulk_echo
from test_tunnel_tcp import concurrent_echo
from test_wire_peer import CREATE, OK, START_TCP

TOKEN = "ws-token-\u00e9"
TLS_IDS = ["ws", "wss"]

# ==========================================================================
# configurations


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return tlsutil.Pki(tmp_path_factory.mktemp("pki"))


def ws_server_extra(tls=False, pki=None, p12=None):
    """[server.transport] type = "websocket", its websocket table, and for
    tls = true the [server.transport.tls] table (as type = "tls" has it)."""
    out = ['[server.transport]', 'type = "websocket"', '[server.transport.websocket]',
           f'tls = {"true" if tls else "false"}']
    if tls:
        out += ['[server.transport.tls]', f'pkcs12 = {mrlib.q(p12 or pki.good_p12)}',
                f'pkcs12_password = {mrlib.q(tlsutil.Pki.PASSWORD)}']
    return "\n".join(out) + "\n"


def ws_client_extra(tls=False, pki=None, hostname=None):
    out = ['[client.transport]', 'type = "websocket"', '[client.transport.websocket]',
           f'tls = {"true" if tls else "false"}']
    if tls:
        out += ['[client.transport.tls]', f'trusted_root = {mrlib.q(pki.ca_pem)}']
        if hostname:
            out.append(f'hostname = {mrlib.q(hostname)}')
    return "\n".join(out) + "\n"


def ws_tunnel(procs, services, tls=False, pki=None, relay="splice"):
    """A mrlib.Tunnel whose server and client use the websocket transport
    (over tls when tls is true)."""
    return mrlib.Tunnel(procs, services, relay=relay,
                        server_extra={"extra": ws_server_extra(tls, pki)},
                        client_extra={"extra": ws_client_extra(tls, pki)})


def start_ws_server(procs, services, tls=False, pki=None, bind=None, name="server"):
    """A molerat websocket server alone; waits until bind_addr accepts (a
    port probe: connect and close, logged at debug). Returns (proc, bind)."""
    bind = bind or mrlib.free_port()
    m = procs.server(mrlib.server_toml(bind, services, extra=ws_server_extra(tls, pki)), name=name)
    assert mrlib.wait_port(bind, mrlib.slow(5), proc=m), f"server not listening on {bind}\n{m.tail()}"
    return m, bind


# ==========================================================================
# logs


_LOG_LINE = re.compile(r"^\S+\s+(ERROR|WARN)\s")


def mark(m):
    """A position in m's stderr, for problem_lines(since=)."""
    return len(m.stderr())


def problem_lines(m, *words, since=0):
    """m's WARN and ERROR lines from offset `since` holding every word
    (case-insensitive; a word may be a tuple of alternatives)."""
    out = []
    for line in m.stderr()[since:].splitlines():
        if not _LOG_LINE.match(line):
            continue
        low = line.lower()
        if all(any(a.lower() in low for a in (w if isinstance(w, tuple) else (w,))) for w in words):
            out.append(line)
    return out


def wait_problem_line(m, *words, timeout=5.0, since=0):
    """Polls until a WARN/ERROR line with every word appears; returns the
    matching lines (empty at the timeout)."""
    deadline = time.monotonic() + mrlib.slow(timeout)
    while True:
        lines = problem_lines(m, *words, since=since)
        if lines or time.monotonic() >= deadline:
            return lines
        time.sleep(0.05)


def one_line(m, since, *words, timeout=5.0):
    """Exactly one new WARN/ERROR line in m's stderr after `since`, and it
    holds every word. Returns it."""
    lines = wait_problem_line(m, *words, timeout=timeout, since=since)
    assert lines, f"{m.name}: no WARN/ERROR line with {words}\n{m.tail(30)}"
    time.sleep(0.3)      # nothing more comes
    every = problem_lines(m, since=since)
    assert len(every) == 1, f"{m.name}: {len(every)} WARN/ERROR lines, want one:\n" + "\n".join(every)
    return every[0]


def roundtrip_ok(port, seed, size=200_000):
    data = mrlib.payload(seed, size)
    got = mrlib.roundtrip(port, data, timeout=mrlib.slow(10))
    assert len(got) == size and mrlib.sha(got) == mrlib.sha(data), f"{len(got)} of {size} bytes came back"


def test_check_accepts_websocket_configs(tmp_path, pki):
    """`molerat check` accepts a websocket server and client, with tls =
    false and true, and names the transport."""
    port = mrlib.free_port()
    svc = [{"name": "a", "port": mrlib.free_port(), "local": 9, "token": "t"}]
    for tls in (False, True):
        for role, text in (("server", mrlib.server_toml(port, svc, extra=ws_server_extra(tls, pki))),
                           ("client", mrlib.client_toml(port, svc, extra=ws_client_extra(tls, pki)))):
            path = tmp_path / f"{role}-{tls}.toml"
            path.write_text(text)
            r = subprocess.run([mrlib.molerat_bin(), "check", str(path)], capture_output=True,
                               timeout=mrlib.slow(10))
            out = r.stdout.decode() + r.stderr.decode()
            assert r.returncode == 0, f"check {role} tls={tls}: {out}"
            assert "websocket" in out.lower(), out


# ==========================================================================
# 1. molerat server + molerat client


@pytest.mark.parametrize("tls", [False, True], ids=TLS_IDS)
def test_tcp_bulk_32mib_each_way(procs, pki, echo, tls):
    """32 MiB (8 MiB under ASan) to an echo service and back at the same
    time over websocket (and websocket over tls); sha256 both ways."""
    total = mrlib.scale(32 << 20)
    t = ws_tunnel(procs, [{"name": "bulk", "local": echo.port}], tls, pki).start()
    sent, got_sha, got, took = bulk_echo(t.svc_port["bulk"], total, 32 + tls, mrlib.slow(40))
    assert got == total, f"received {got} bytes, sent {total}"
    assert got_sha == sent
    print(f"websocket tls={tls} bulk: {2 * total / took / 1e6:.0f} MB/s (both ways) in {took:.1f}s")
    assert t.server.alive() and t.client.alive()


def test_tcp_bulk_256mib_each_way(procs, echo):
    """256 MiB each way at once over plain websocket (64 MiB under ASan):
    thousands of 64 KiB frames each way, masked one way."""
    total = mrlib.scale(256 << 20)
    t = ws_tunnel(procs, [{"name": "bulk", "local": echo.port}]).start()
    sent, got_sha, got, took = bulk_echo(t.svc_port["bulk"], total, 256, mrlib.slow(90))
    assert got == total, f"received {got} bytes, sent {total}"
    assert got_sha == sent
    print(f"websocket bulk 256 MiB: {2 * total / took / 1e6:.0f} MB/s (both ways) in {took:.1f}s")
    assert t.server.alive() and t.client.alive()


@pytest.mark.parametrize("tls", [False, True], ids=TLS_IDS)
def test_udp_round_trip(procs, pki, tls):
    """A UDP service over websocket: datagrams from empty to 65,507 bytes
    come back whole and unchanged (a UDP frame is three writes, so three
    Binary messages)."""
    e = uh.UdpEcho(HOST)
    try:
        t = ws_tunnel(procs, [{"name": "udp", "local": e.port, "type": "udp"}], tls, pki)
        t.start(ready=[])
        port = t.svc_port["udp"]
        uh.wait_udp_ready(HOST, port)
        v = uh.visitor()
        try:
            for i, size in enumerate([0, 1, 37, 1472, 2049, 9000, 65507]):
                data = mrlib.payload(f"wsudp{tls}{i}", size)
                got = uh.exchange(v, data, (HOST, port), timeout=mrlib.slow(3))
                assert got is not None, f"no echo of a {size}-byte datagram"
                assert len(got) == size and mrlib.sha(got) == mrlib.sha(data), \
                    f"{size} bytes sent, {len(got)} came back"
        finally:
            v.close()
        assert t.server.alive() and t.client.alive()
    finally:
        e.close()


@pytest.mark.parametrize("tls", [False, True], ids=TLS_IDS)
def test_500_concurrent_visitors(procs, pki, echo, tls):
    """500 visitors at once, each with its own payload (1 to 64 KiB), each
    echoed whole: 500 data channels, each with its own upgrade (and TLS
    handshake)."""
    n = 500
    t = ws_tunnel(procs, [{"name": "many", "local": echo.port}], tls, pki).start()
    t0 = time.monotonic()
    bad = concurrent_echo(t.svc_port["many"], n, mrlib.slow(40))
    took = time.monotonic() - t0
    assert not bad, f"{len(bad)} of {n} connections wrong, first: {bad[:5]}"
    assert echo.accepted >= n
    print(f"websocket tls={tls}: {n} concurrent visitors in {took:.1f}s")
    assert t.server.alive() and t.client.alive()


# ==========================================================================
# 2. half-close between two molerat ends


class SpeakFirstServer(mrlib._TcpService):
    """Sends `size` bytes, shuts its write side at once, then reads until
    EOF; what each connection read is appended to .got."""

    def __init__(self, size):
        self.size = size
        self.banner = mrlib.payload(f"banner{size}", size)
        self.got = []
        super().__init__()

    def handle(self, c):
        c.sendall(self.banner)
        c.shutdown(socket.SHUT_WR)
        buf = bytearray()
        while True:
            try:
                chunk = c.recv(1 << 20)
            except ConnectionResetError:
                break
            if not chunk:
                break
            buf += chunk
        with self.lock:
            self.got.append(bytes(buf))


@pytest.mark.parametrize("tls", [False, True], ids=TLS_IDS)
def test_half_close_visitor_first(procs, pki, services, tls):
    """The visitor sends, shuts its write side, and still receives the whole
    reply of a service that answers only after EOF: the server's Close
    frame ends one direction, the reply comes back the other way (between
    two rathole ends nothing comes back: Q10)."""
    svc = services.reply(tag=b"W")
    t = ws_tunnel(procs, [{"name": "half", "local": svc.port}], tls, pki)
    t.start(expect=svc.expect)
    for size in (3, 100_000, mrlib.scale(8 << 20)):
        data = mrlib.payload(size, size)
        s = socket.create_connection((HOST, t.svc_port["half"]), timeout=5)
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            got = mrlib.recv_all(s, timeout=mrlib.slow(20))
        finally:
            s.close()
        want = svc.expect(data)
        assert len(got) == len(want), f"size {size}: got {len(got)} bytes, want {len(want)}"
        assert got[:33] == want[:33], f"size {size}: reply header {got[:33].hex()}"
        assert mrlib.sha(got) == mrlib.sha(want)
    # then many at once: every reply still whole (the end of each data
    # channel must not cut what is still in flight the other way)
    n, size = 24, mrlib.scale(2 << 20)
    results = [None] * n

    def one(i):
        data = mrlib.payload(f"many{i}", size + i)
        try:
            s = socket.create_connection((HOST, t.svc_port["half"]), timeout=5)
            try:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
                got = mrlib.recv_all(s, timeout=mrlib.slow(30))
            finally:
                s.close()
            results[i] = (len(got), mrlib.sha(got)) == (len(svc.expect(data)), mrlib.sha(svc.expect(data))) \
                or f"{len(got)} bytes back, want {len(svc.expect(data))}"
        except OSError as e:
            results[i] = repr(e)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(mrlib.slow(40))
    bad = [(i, r) for i, r in enumerate(results) if r is not True]
    assert not bad, f"{len(bad)} of {n} half-closed visitors got a wrong reply: {bad[:5]}"
    assert t.server.alive() and t.client.alive()


@pytest.mark.parametrize("tls", [False, True], ids=TLS_IDS)
def test_half_close_service_first(procs, pki, tls):
    """The other direction: the local service sends its bytes and shuts its
    write side first (the client's Close frame); the visitor reads them to
    EOF, and only then sends its own bytes, which still reach the service
    whole."""
    sizes = (3, 100_000, mrlib.scale(4 << 20))
    svcs = {size: SpeakFirstServer(size) for size in sizes}
    try:
        t = ws_tunnel(procs, [{"name": f"first{size}", "local": svc.port} for size, svc in svcs.items()],
                      tls, pki)
        t.start(ready=[])
        for size, svc in svcs.items():
            port = t.svc_port[f"first{size}"]
            ok, last, _ = mrlib.wait_roundtrip(port, lambda d: svc.banner, data=b"probe",
                                               timeout=mrlib.slow(8))
            assert ok, f"service {size} not reachable: {last!r}"
            data = mrlib.payload(f"after{size}", size + 11)
            s = socket.create_connection((HOST, port), timeout=5)
            try:
                first = mrlib.recv_all(s, timeout=mrlib.slow(20))
                assert mrlib.sha(first) == mrlib.sha(svc.banner), f"size {size}: {len(first)} bytes"
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
                rest = mrlib.recv_all(s, timeout=mrlib.slow(20))
                assert rest == b""
            finally:
                s.close()
            want = mrlib.sha(data)
            deadline = time.monotonic() + mrlib.slow(20)
            while time.monotonic() < deadline:
                with svc.lock:
                    seen = [len(g) for g in svc.got if g != b"probe"]
                    if any(mrlib.sha(g) == want for g in svc.got):
                        break
                time.sleep(0.05)
            else:
                pytest.fail(f"size {size}: the service never read the visitor's {len(data)} bytes "
                            f"and EOF (it read {seen})")
        assert t.server.alive() and t.client.alive()
    finally:
        for svc in svcs.values():
            svc.close()


# ==========================================================================
# 3. python3-websockets as the peer


def run(coro, limit):
    """Runs an asyncio scenario with an overall bound."""
    async def bounded():
        return await asyncio.wait_for(coro, limit)
    return asyncio.run(bounded())


def client_ssl(pki):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki.ca_pem)
    return ctx


def server_ssl(pki):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.leaf[1], pki.leaf[0])
    return ctx


async def peer_connect(port, tls, pki):
    """python3-websockets' client: ws://127.0.0.1:PORT/ (wss:// with the
    test CA over tls)."""
    kw = wp.ws_options(open_timeout=mrlib.slow(5))
    if tls:
        kw["ssl"] = client_ssl(pki)
    uri = f"{'wss' if tls else 'ws'}://{HOST}:{port}/"
    ws = await asyncio.wait_for(websockets.connect(uri, **kw), mrlib.slow(6))
    return wp.WsStream(ws)


async def peer_control(port, tls, pki, name="echo"):
    """The peer as a rathole client: Hello, nonce, Auth, Ack Ok, and the
    pool's 8 CreateDataChannel. Returns (stream, session key)."""
    c = await peer_connect(port, tls, pki)
    await c.send(hello(0, digest(name)))
    h = await c.recv_exact(37, timeout=mrlib.slow(5))
    assert h[:5] == b"\x00\x00\x00\x00\x01", f"server Hello {h.hex()}"
    assert c.sizes[0] == 37, f"the server's Hello came in messages of {c.sizes}: one write, one frame"
    key = session_key(TOKEN, h[5:])
    await c.send(key)
    ack = await c.recv_exact(4, timeout=mrlib.slow(5))
    assert ack == OK, f"Ack {ack.hex()}"
    pool = await c.recv_exact(32, timeout=mrlib.slow(5))
    assert pool == CREATE * 8, f"pool pre-fill {pool.hex()}"
    return c, key


async def ping_checked(stream, payload):
    """A Ping from the peer; molerat answers with a Pong of the same
    payload (docs/internals/transports.md); the library matches it."""
    waiter = await stream.ws.ping(payload)
    await asyncio.wait_for(waiter, mrlib.slow(3))


async def peer_client_flow(bind, svc_port, tls, pki, ping):
    ctl, key = await peer_control(bind, tls, pki)
    if ping:
        await ping_checked(ctl, b"control?")
    d = await peer_connect(bind, tls, pki)
    await d.send(hello(1, key))
    # the service port is bound before the Ack (an IP literal): no probe,
    # a probe would be a visitor and take the data channel
    r, w = await asyncio.wait_for(asyncio.open_connection(HOST, svc_port), 5)
    try:
        cmd = await d.recv_exact(4, timeout=mrlib.slow(5))
        assert cmd == START_TCP, cmd.hex()
        up = mrlib.payload(f"up{tls}{ping}", (1 << 20) + 5)
        down = mrlib.payload(f"down{tls}{ping}", (1 << 20) + 17)

        async def visitor():
            w.write(up)
            await w.drain()
            got = await asyncio.wait_for(r.read(), mrlib.slow(15))     # the peer's bytes, to EOF
            w.write_eof()                # only now: the peer may no longer send after a Close
            rest = await asyncio.wait_for(r.read(), mrlib.slow(15))
            return got + rest

        async def peer():
            half = len(down) // 2
            await d.send_stream(down[:half], chunk=100_000)
            if ping:
                await ping_checked(d, b"data?")
            await d.send_stream(down[half:], chunk=100_000)
            # a Close with a status code (1000): the end of our direction only;
            # close() waits for molerat's Close, which comes after the visitor's EOF
            await asyncio.wait_for(d.ws.close(), mrlib.slow(15))
            return await d.recv_all(timeout=mrlib.slow(5))

        at_visitor, at_peer = await asyncio.gather(visitor(), peer())
        assert len(at_peer) == len(up) and mrlib.sha(at_peer) == mrlib.sha(up), \
            f"{len(at_peer)} bytes at the peer, {len(up)} sent by the visitor"
        assert len(at_visitor) == len(down) and mrlib.sha(at_visitor) == mrlib.sha(down), \
            f"{len(at_visitor)} bytes at the visitor, {len(down)} sent by the peer"
        assert d.ws.close_rcvd is not None and d.ws.close_rcvd.code == 1005, \
            f"molerat's Close: {d.ws.close_rcvd} (want an empty payload)"
        assert max(d.sizes) <= 65536, f"a message of {max(d.sizes)} bytes (one frame of at most 64 KiB per write)"
    finally:
        w.close()
    # one more CreateDataChannel for that visitor
    assert await ctl.recv_exact(4, timeout=mrlib.slow(3)) == CREATE
    await asyncio.wait_for(ctl.ws.close(), mrlib.slow(5))


@pytest.mark.parametrize("tls", [False, True], ids=TLS_IDS)
def test_peer_client_against_molerat_server(procs, pki, tls):
    """python3-websockets as the client: it upgrades (ws:// or wss://),
    speaks the control channel in Binary messages (Hello, nonce, Auth, Ack
    Ok, 8 CreateDataChannel), opens a data channel on a second connection
    (DataChannelHello with the session key), and a visitor's bytes cross
    both ways; the peer ends its direction with a Close (status 1000), the
    visitor still gets everything, molerat sends its own empty Close after
    the visitor's EOF."""
    svc_port = mrlib.free_port()
    m, bind = start_ws_server(procs, [{"name": "echo", "port": svc_port, "token": TOKEN}], tls, pki)
    run(peer_client_flow(bind, svc_port, tls, pki, ping=False), mrlib.slow(40))
    assert m.alive()


def check_upgrade_headers(ws, port, host="127.0.0.1"):
    """The request molerat's client sent, as python3-websockets saw it: path
    /, rathole's headers in rathole's order and case, Host as rathole makes
    it from remote_addr."""
    assert ws.path == "/", ws.path
    raw = list(ws.request_headers.raw_items())
    names = [k for k, _ in raw]
    assert names == ["Host", "Connection", "Upgrade", "Sec-WebSocket-Version", "Sec-WebSocket-Key"], raw
    vals = dict(raw)
    assert vals["Host"] == f"{host}:{port}", raw
    assert vals["Connection"] == "Upgrade" and vals["Upgrade"] == "websocket", raw
    assert vals["Sec-WebSocket-Version"] == "13", raw
    assert len(base64.b64decode(vals["Sec-WebSocket-Key"], validate=True)) == 16, raw
    return vals["Sec-WebSocket-Key"]


async def peer_server_flow(procs, echo, tls, pki, ping):
    conns = asyncio.Queue()
    finished = asyncio.Event()

    async def handler(ws):
        await conns.put(ws)
        await finished.wait()

    port = mrlib.free_port()
    kw = wp.ws_options()
    if tls:
        kw["ssl"] = server_ssl(pki)
    server = await websockets.serve(handler, HOST, port, **kw)
    try:
        toml = mrlib.client_toml(port, [{"name": "echo", "local": echo.port, "token": TOKEN}],
                                 extra=ws_client_extra(tls, pki))
        m = procs.client(toml)
        ctl_ws = await asyncio.wait_for(conns.get(), mrlib.slow(8))
        k1 = check_upgrade_headers(ctl_ws, port)
        ctl = wp.WsStream(ctl_ws)
        h = await ctl.recv_exact(37, timeout=mrlib.slow(5))
        assert h == hello(0, digest("echo")), f"client Hello {h.hex()}"
        nonce = os.urandom(32)
        await ctl.send(hello(0, nonce))
        key = session_key(TOKEN, nonce)
        auth = await ctl.recv_exact(32, timeout=mrlib.slow(5))
        assert auth == key, f"Auth {auth.hex()}, expected {key.hex()}"
        assert ctl.sizes == [37, 32], f"client messages {ctl.sizes}: one write, one frame"
        if ping:
            await ping_checked(ctl, b"ctl")
        await ctl.send(OK)
        await ctl.send(CREATE)
        d_ws = await asyncio.wait_for(conns.get(), mrlib.slow(8))
        k2 = check_upgrade_headers(d_ws, port)
        assert k1 != k2, "the same Sec-WebSocket-Key twice"
        d = wp.WsStream(d_ws)
        dh = await d.recv_exact(37, timeout=mrlib.slow(5))
        assert dh == hello(1, key), f"DataChannelHello {dh.hex()}"
        await d.send(START_TCP)
        data = mrlib.payload(f"srv{tls}{ping}", (2 << 20) + 3)
        half = len(data) // 2
        await d.send_stream(data[:half], chunk=70_000)
        if ping:
            await ping_checked(d, b"in the middle")
        await d.send_stream(data[half:], chunk=70_000)
        # our Close: the echo sees EOF, echoes the rest, and molerat's Close follows
        await asyncio.wait_for(d_ws.close(), mrlib.slow(15))
        got = await d.recv_all(timeout=mrlib.slow(5))
        assert len(got) == len(data) and mrlib.sha(got) == mrlib.sha(data), f"{len(got)} bytes back"
        assert d_ws.close_rcvd is not None and d_ws.close_rcvd.code == 1005, d_ws.close_rcvd
        assert echo.accepted == 1
        # the client never writes on the control channel after Auth
        await ctl.recv_nothing(0.3)
        assert m.alive()
    finally:
        finished.set()
        server.close()
        await asyncio.wait_for(server.wait_closed(), 10)


@pytest.mark.parametrize("tls", [False, True], ids=TLS_IDS)
def test_peer_server_with_molerat_client(procs, pki, echo, tls):
    """python3-websockets as the server (websockets.serve, ws or wss): the
    molerat client's upgrade (path /, rathole's headers, Host
    127.0.0.1:PORT, version 13), its Hello and Auth each in one message,
    CreateDataChannel, its data channel, StartForwardTcp, 2 MiB to the
    client's local echo and back, ended by our Close."""
    run(peer_server_flow(procs, echo, tls, pki, ping=False), mrlib.slow(40))


# ==========================================================================
# 3b. the raw bytes


def test_raw_client_against_molerat_server(procs):
    """A raw-socket client sends rathole's request with the RFC 6455 key and
    gets rathole's 101 byte for byte; then protocol.md's example frame (the
    Hello of "my_nas_ssh", mask 37fa213d), the server's Hello in one
    unmasked 37-byte frame, the Ack exactly `82 04 00000000`; a data
    channel; the server's frames all unmasked Binary; our empty Close ends
    one direction, and after the visitor's EOF the server sends `88 00` and
    a FIN."""
    assert wp.mask_bytes(wp.EXAMPLE_HELLO_FRAME[6:], bytes.fromhex("37fa213d")) == hello(0, digest("my_nas_ssh"))
    svc_port = mrlib.free_port()
    m, bind = start_ws_server(procs, [{"name": "my_nas_ssh", "port": svc_port, "token": TOKEN}])
    c, head, _ = wp.raw_connect(bind, key=wp.RFC_KEY, timeout=mrlib.slow(5))
    try:
        assert head == wp.rathole_response(wp.RFC_ACCEPT), f"101: {head!r}"
        c.sock.settimeout(0.3)
        with pytest.raises(socket.timeout):
            extra = c.sock.recv(100)
            raise AssertionError(f"the server sent {extra!r} before our Hello")
        c.sock.sendall(wp.EXAMPLE_HELLO_FRAME)
        f = c.next_frame(mrlib.slow(5))
        assert f is not None and f.raw[:2] == b"\x82\x25" and len(f.raw) == 39, f"server Hello frame {f!r}"
        assert f.payload[:5] == b"\x00\x00\x00\x00\x01"
        key = session_key(TOKEN, f.payload[5:])
        c.send_binary(key)
        f = c.next_frame(mrlib.slow(5))
        assert f is not None and f.raw == wp.EXAMPLE_ACK_FRAME, f"Ack frame {f!r}"
        assert c.recv_exact(32, timeout=mrlib.slow(3)) == CREATE * 8
        d, head, _ = wp.raw_connect(bind, timeout=mrlib.slow(5))
        try:
            assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n"), head
            d.send_binary(hello(1, key))
            v = socket.create_connection((HOST, svc_port), timeout=5)
            try:
                assert d.recv_exact(4, timeout=mrlib.slow(5)) == START_TCP
                down = mrlib.payload("rawdown", 300_000)
                d.send_stream(down, chunk=70_000)
                d.send_close()
                assert mrlib.sha(mrlib.recv_all(v, timeout=mrlib.slow(10))) == mrlib.sha(down)
                up = mrlib.payload("rawup", 500_000)
                v.sendall(up)
                v.shutdown(socket.SHUT_WR)
                got = d.recv_all(timeout=mrlib.slow(10))
                assert len(got) == len(up) and mrlib.sha(got) == mrlib.sha(up), f"{len(got)} bytes"
                assert d.close_frame is not None and d.close_frame.raw == b"\x88\x00", \
                    f"the server's Close {d.close_frame!r}: want 88 00"
                # then a FIN, nothing else
                assert wait_closed(d.sock, timeout=mrlib.slow(5)) == b""
            finally:
                v.close()
            frames = c.frames + d.frames
            for f in frames[:-1]:
                assert (f.fin, f.rsv, f.opcode, f.masked) == (True, 0, wp.OP_BINARY, False), f"server frame {f!r}"
            assert max(len(f.payload) for f in frames) <= 65536
        finally:
            d.close()
    finally:
        c.close()
    assert m.alive()


def fake_accept(lsock, timeout):
    lsock.settimeout(timeout)
    s, _ = lsock.accept()
    s.settimeout(5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_upgrade(s, host_header):
    """Reads a molerat client's request; it must be rathole's, byte for
    byte, with this Host. Returns the key."""
    head = wp.read_head(s, timeout=mrlib.slow(5))
    mt = wp.REQUEST_RE.fullmatch(head)
    assert mt, f"request {head!r}"
    assert mt.group(1).decode() == host_header, f"Host {mt.group(1)!r}, want {host_header!r}"
    key = mt.group(2).decode()
    assert len(base64.b64decode(key, validate=True)) == 16
    s.settimeout(0.3)           # nothing else before the 101
    try:
        extra = s.recv(100)
        raise AssertionError(f"the client sent {extra!r} before the 101")
    except socket.timeout:
        pass
    return key


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.parametrize("remote_host,host_header", [
    ("127.0.0.1", "127.0.0.1"), ("LocalHost", "localhost"),
    pytest.param("[::1]", "[::1]", marks=pytest.mark.skipif(not ipv6_loopback(), reason="no ::1 here"))],
    ids=["ip", "name", "ipv6"])
def test_raw_server_with_molerat_client(procs, echo, remote_host, host_header):
    """A raw-socket server: the molerat client's request is rathole's byte
    for byte (Host from remote_addr, lower-cased as rathole's URL library
    does) and it waits for the 101; every frame it sends is a masked
    Binary frame with its own key, its Hello and Auth one frame each;
    bytes after our 101 are frames; an Ack and a CreateDataChannel in one
    message, an empty Binary message, a fragmented message and a Close are
    all understood; its own Close is `88 80` + key, then a FIN."""
    lsock = mrlib.listen_socket(host="::1" if remote_host == "[::1]" else HOST)
    try:
        port = lsock.getsockname()[1]
        toml = mrlib.client_toml(port, [{"name": "echo", "local": echo.port, "token": TOKEN}],
                                 extra=ws_client_extra())
        toml = toml.replace(f'remote_addr = "127.0.0.1:{port}"', f'remote_addr = "{remote_host}:{port}"')
        m = procs.client(toml)
        s = fake_accept(lsock, mrlib.slow(5))
        c = wp.RawWs(s, client=False)
        try:
            k1 = read_upgrade(s, f"{host_header}:{port}")
            s.sendall(wp.rathole_response(wp.accept_of(k1)))
            f = c.next_frame(mrlib.slow(5))
            assert f.payload == hello(0, digest("echo")) and len(f.raw) == 2 + 4 + 37, f"Hello frame {f!r}"
            nonce = os.urandom(32)
            s.sendall(wp.frame(wp.OP_BINARY, hello(0, nonce)))
            key = session_key(TOKEN, nonce)
            f = c.next_frame(mrlib.slow(5))
            assert f.payload == key and len(f.raw) == 2 + 4 + 32, f"Auth frame {f!r}"
            s.sendall(wp.frame(wp.OP_BINARY, OK + CREATE))       # boundaries mean nothing
            d_sock = fake_accept(lsock, mrlib.slow(5))
            d = wp.RawWs(d_sock, client=False)
            try:
                k2 = read_upgrade(d_sock, f"{host_header}:{port}")
                assert k2 != k1
                d_sock.sendall(wp.rathole_response(wp.accept_of(k2)))
                f = d.next_frame(mrlib.slow(5))
                assert f.payload == hello(1, key), f"DataChannelHello frame {f!r}"
                data = mrlib.payload("rawsrv", 600_000)
                parts = [wp.frame(wp.OP_BINARY, START_TCP + data[:1000]),
                         wp.frame(wp.OP_BINARY, b""),
                         wp.frame(wp.OP_BINARY, data[1000:50_000], fin=False),
                         wp.frame(wp.OP_CONT, data[50_000:51_000], fin=False),
                         wp.frame(wp.OP_CONT, data[51_000:120_000], fin=True)]
                parts += [wp.frame(wp.OP_BINARY, data[o:o + 65536]) for o in range(120_000, len(data), 65536)]
                errs = []

                def sender():
                    try:
                        for p in parts:
                            d_sock.sendall(p)
                        d_sock.sendall(wp.frame(wp.OP_CLOSE, b""))
                    except OSError as e:
                        errs.append(e)

                th = threading.Thread(target=sender, daemon=True)
                th.start()
                got = d.recv_all(timeout=mrlib.slow(10))
                th.join(5)
                assert not errs, errs
                assert len(got) == len(data) and mrlib.sha(got) == mrlib.sha(data), f"{len(got)} bytes back"
                cf = d.close_frame
                assert cf is not None and cf.raw[:2] == b"\x88\x80" and len(cf.raw) == 6, f"Close {cf!r}"
                assert wait_closed(d_sock, timeout=mrlib.slow(5)) == b"", "bytes after the Close"
                frames = c.frames + d.frames
                for f in frames[:-1]:
                    assert (f.fin, f.rsv, f.opcode, f.masked) == (True, 0, wp.OP_BINARY, True), f"client frame {f!r}"
                keys = [f.key for f in frames]
                assert len(set(keys)) >= len(keys) - 1, f"masking keys repeat: {len(set(keys))} of {len(keys)}"
                assert max(len(f.payload) for f in frames) <= 65536
            finally:
                d.close()
            s.settimeout(0.3)
            try:
                extra = s.recv(100)
                raise AssertionError(f"client sent {extra!r} on the control channel")
            except socket.timeout:
                pass
        finally:
            c.close()
    finally:
        lsock.close()
    assert m.alive()


# ==========================================================================
# 4. hostile peers against the server


def _upgraded(bind, data=b""):
    c, head, _ = wp.raw_connect(bind, timeout=mrlib.slow(5))
    assert head.startswith(b"HTTP/1.1 101 "), head
    return c.sock


def _before(bind, data):
    s = socket.create_connection((HOST, bind), timeout=5)
    s.sendall(data)
    return s


HUGE_HEAD = (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
             b"X-Pad: " + b"a" * 9000 + b"\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "
             + wp.RFC_KEY.encode() + b"\r\n\r\n")

# name: (how to make the connection, what to send on it, the words of the line)
HOSTILE = {
    "garbage": (_before, b"\x00" + mrlib.payload("wsgarbage", 4095), ("websocket", "GET")),
    "tcp_hello": (_before, hello(0, digest("svc")), ("websocket", "transport.type")),
    "plain_http_get": (_before, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", ("websocket", "upgrade")),
    "huge_head": (_before, HUGE_HEAD, ("websocket", "8192")),
    "early_data": (_before, wp.rathole_request("x", wp.RFC_KEY) + wp.frame(wp.OP_BINARY, b"hi", mask=True),
                   ("websocket", "junk")),
    "unmasked": (_upgraded, wp.frame(wp.OP_BINARY, hello(0, digest("svc"))), ("websocket", "unmasked")),
    "text": (_upgraded, wp.frame(wp.OP_TEXT, b"hello", mask=True), ("websocket", "text")),
    "len_2_63": (_upgraded, b"\x82\xff" + struct.pack(">Q", 1 << 63) + os.urandom(4) + b"x" * 16,
                 ("websocket", ("top bit", "limit"))),
    "rsv_bits": (_upgraded, wp.frame(wp.OP_BINARY, hello(0, digest("svc")), mask=True, rsv=4),
                 ("websocket", "reserved")),
    "1gib_then_eof": (_upgraded, b"\x82\xff" + struct.pack(">Q", 1 << 30) + os.urandom(4) + b"y" * 100,
                      ("websocket", ("limit", "inside a frame"))),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_client_dropped(procs, echo, case):
    """A hostile connection to the websocket port is dropped promptly with
    one WARN/ERROR line saying what was wrong; no 101 for a bad request,
    nothing after the 101 for a bad frame; the server keeps serving its
    real client."""
    how, data, words = HOSTILE[case]
    t = ws_tunnel(procs, [{"name": "h", "local": echo.port}]).start()
    since = mark(t.server)
    t0 = time.monotonic()
    s = how(t.server_port, b"")
    try:
        try:
            s.sendall(data)
            if case == "1gib_then_eof":
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass           # already reset: dropped
        try:
            got = wait_closed(s, timeout=mrlib.slow(3))
        except socket.timeout:
            pytest.fail(f"{case}: connection still open after {mrlib.slow(3)}s\n{t.server.tail()}")
        dt = time.monotonic() - t0
    finally:
        s.close()
    assert got == b"", f"{case}: the server answered {got[:200]!r}"
    assert dt < mrlib.slow(2), f"{case}: dropped after {dt:.1f}s"
    line = one_line(t.server, since, *words)
    print(f"{case}: {line}")
    assert t.server.alive() and t.client.alive()
    roundtrip_ok(t.svc_port["h"], case)


HS_DROP_BY = 12.0 if not mrlib.is_asan() else 14.0


def test_slowloris_dropped_real_client_served(procs, echo):
    """A partial upgrade request, then silence: the server closes it at its
    handshake timeout (rathole's websocket handshake has 5 s; molerat's
    budget for transport + Hello + Auth is 10 s; asserted within 12 s),
    nothing sent, one line; a real client is served meanwhile."""
    t = ws_tunnel(procs, [{"name": "slow", "local": echo.port}])
    t.start_server()
    since = mark(t.server)
    t0 = time.monotonic()
    s = socket.create_connection((HOST, t.server_port), timeout=5)
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upg")
        t.start_client()
        t.wait_ready("slow")
        roundtrip_ok(t.svc_port["slow"], "slowloris")
        served = time.monotonic() - t0
        try:
            got = wait_closed(s, timeout=max(0.5, HS_DROP_BY + 2 - (time.monotonic() - t0)))
        except socket.timeout:
            pytest.fail(f"slowloris still open after {time.monotonic() - t0:.1f}s\n{t.server.tail()}")
        dt = time.monotonic() - t0
    finally:
        s.close()
    print(f"slowloris dropped after {dt:.1f}s")
    assert got == b"", f"the server sent {got!r}"
    assert 4.0 < dt < HS_DROP_BY, f"dropped after {dt:.1f}s"
    assert served < dt
    line = one_line(t.server, since, ("time", "timeout"), timeout=2)
    print(line)
    assert t.server.alive() and t.client.alive()


# ==========================================================================
# 4b. hostile servers against the client (rathole's client aborts: Q10)


def _resp_403(key):
    return b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"


def _resp_wrong_accept(key):
    return wp.rathole_response(wp.accept_of(wp.new_key()))


def _resp_connection_close(key):
    return (b"HTTP/1.1 101 Switching Protocols\r\nConnection: close\r\nUpgrade: websocket\r\n"
            b"Sec-WebSocket-Accept: " + wp.accept_of(key).encode() + b"\r\n\r\n")


def _resp_garbage(key):
    junk = mrlib.payload("wsresp", 500).replace(b"\n", b"").replace(b"\r", b"")
    return b"\x16\x03\x01" + junk + b"\r\n\r\n"     # a whole "head" that is no HTTP


BAD_SERVERS = {
    "403": (_resp_403, ("websocket", "403")),
    "wrong_accept": (_resp_wrong_accept, ("websocket", "accept")),
    "connection_close": (_resp_connection_close, ("websocket", "connection")),
    "garbage": (_resp_garbage, ("websocket", "malformed")),
}


@pytest.mark.parametrize("case", list(BAD_SERVERS))
def test_bad_server_response_client_retries(procs, echo, case):
    """A fake server answers the upgrade wrongly: the molerat client logs
    one clear line per attempt, does not exit (rathole's aborts), retries
    with backoff (not in a busy loop); when a real molerat server takes
    the port, the tunnel works."""
    respond, words = BAD_SERVERS[case]
    lsock = mrlib.listen_socket()
    port = lsock.getsockname()[1]
    svc = [{"name": "bad", "local": echo.port, "token": TOKEN, "port": mrlib.free_port()}]
    c = procs.client(mrlib.client_toml(port, svc, extra=ws_client_extra()))
    times = []           # when each attempt arrived
    window = mrlib.slow(4)
    try:
        t0 = time.monotonic()
        while len(times) < 3 and time.monotonic() - t0 < window:
            try:
                s = fake_accept(lsock, max(0.1, t0 + window - time.monotonic()))
            except socket.timeout:
                break
            times.append(time.monotonic())
            try:
                key = read_upgrade(s, f"127.0.0.1:{port}")
                s.sendall(respond(key))
                s.shutdown(socket.SHUT_WR)
                wait_closed(s, timeout=mrlib.slow(3))    # the client hangs up
            finally:
                s.close()
        # no attempt comes in a burst: nothing more within 0.3 s of the last
        lsock.settimeout(0.3)
        try:
            extra, _ = lsock.accept()
            extra.close()
            times.append(time.monotonic())
        except socket.timeout:
            pass
    finally:
        lsock.close()
    attempts = len(times)
    assert c.alive(), f"client exited after a bad upgrade response\n{c.tail()}"
    assert attempts >= 3, f"{attempts} attempts in {window}s: the client does not retry\n{c.tail()}"
    gaps = [b - a for a, b in zip(times, times[1:])]
    # the backoff: about 0.5 s, then 1 s (the retry_interval cap), +-20%
    assert min(gaps) > 0.3, f"attempts {gaps} s apart: no backoff\n{c.tail()}"
    lines = problem_lines(c, *words)
    assert lines, f"no WARN/ERROR line with {words}\n{c.tail()}"
    print(lines[0])
    assert len(problem_lines(c)) <= attempts + 1, f"more than one line per attempt:\n{c.tail()}"
    # a real server on that port now: the client's next attempt works
    s, bind = start_ws_server(procs, svc, bind=port)
    ok, last, took = mrlib.wait_roundtrip(svc[0]["port"], mrlib.echo_expect, timeout=mrlib.slow(8))
    assert ok, f"tunnel not working {took:.1f}s after the real server came: {last!r}\n{procs.dump()}"
    roundtrip_ok(svc[0]["port"], case)
    assert c.alive() and s.alive()


def test_client_accepts_token_list_101(procs, echo):
    """A 101 with its headers in another order and case, extra headers, and
    `Connection: keep-alive, Upgrade` (rathole's client refuses the token
    list; molerat accepts it, protocol.md#p-websocket): the molerat client
    goes on with its Hello in one masked frame."""
    lsock = mrlib.listen_socket()
    try:
        port = lsock.getsockname()[1]
        c = procs.client(mrlib.client_toml(port, [{"name": "echo", "local": echo.port, "token": TOKEN}],
                                           extra=ws_client_extra()))
        s = fake_accept(lsock, mrlib.slow(5))
        try:
            key = read_upgrade(s, f"127.0.0.1:{port}")
            s.sendall(b"HTTP/1.1 101 Switching Protocols\r\nServer: test\r\nSEC-WEBSOCKET-ACCEPT: "
                      + wp.accept_of(key).encode() + b"\r\nUpgrade: WebSocket\r\n"
                      b"Connection: keep-alive, Upgrade\r\nDate: Fri, 04 Dec 2026 12:00:00 GMT\r\n\r\n")
            f = wp.read_frame(s, mrlib.slow(5))
            assert f is not None and f.masked and f.payload == hello(0, digest("echo")), f"Hello frame {f!r}"
        finally:
            s.close()
    finally:
        lsock.close()
    assert c.alive()


BAD_FRAMES = {
    "masked": (wp.frame(wp.OP_BINARY, hello(0, os.urandom(32)), mask=True), "a masked frame"),
    "text": (wp.frame(wp.OP_TEXT, b"hello"), "text"),
    "rsv_bits": (wp.frame(wp.OP_BINARY, hello(0, os.urandom(32)), rsv=2), "reserved"),
    "over_16mib": (b"\x82\x7f" + struct.pack(">Q", (16 << 20) + 1), "16 mib"),
}


@pytest.mark.parametrize("case", list(BAD_FRAMES))
def test_bad_server_frame_client_retries(procs, echo, case):
    """After a valid 101 and the client's Hello, the fake server sends a
    frame a client must refuse (masked, Text, RSV bits, over 16 MiB): the
    molerat client drops that connection with one line saying what came,
    stays up and connects again (with a fresh upgrade)."""
    data, word = BAD_FRAMES[case]
    lsock = mrlib.listen_socket()
    try:
        port = lsock.getsockname()[1]
        c = procs.client(mrlib.client_toml(port, [{"name": "echo", "local": echo.port, "token": TOKEN}],
                                           extra=ws_client_extra()))
        s = fake_accept(lsock, mrlib.slow(5))
        try:
            key = read_upgrade(s, f"127.0.0.1:{port}")
            s.sendall(wp.rathole_response(wp.accept_of(key)))
            f = wp.read_frame(s, mrlib.slow(5))
            assert f is not None and f.payload == hello(0, digest("echo")), f"Hello frame {f!r}"
            s.sendall(data)
            try:
                got = wait_closed(s, timeout=mrlib.slow(3))
            except socket.timeout:
                pytest.fail(f"{case}: the client kept the connection open\n{c.tail()}")
            assert got == b"", f"{case}: the client sent {got!r}"
        finally:
            s.close()
        line = one_line(c, 0, "echo", "websocket", word)
        print(line)
        again = fake_accept(lsock, mrlib.slow(4))
        try:
            read_upgrade(again, f"127.0.0.1:{port}")
        finally:
            again.close()
    finally:
        lsock.close()
    assert c.alive()


# ==========================================================================
# 5. a Ping from the peer


def test_ping_to_molerat_server(procs, pki):
    """python3-websockets' client pings the molerat server on the control
    channel and in the middle of a data channel's stream: each Ping gets
    its Pong, and every byte still crosses both ways (sha256)."""
    svc_port = mrlib.free_port()
    m, bind = start_ws_server(procs, [{"name": "echo", "port": svc_port, "token": TOKEN}])
    run(peer_client_flow(bind, svc_port, False, pki, ping=True), mrlib.slow(40))
    assert m.alive()


def test_ping_to_molerat_client(procs, pki, echo):
    """python3-websockets' server pings the molerat client on the control
    channel and in the middle of the echo stream: each Ping gets its Pong
    (masked, as every client frame), the stream is whole."""
    run(peer_server_flow(procs, echo, False, pki, ping=True), mrlib.slow(40))


# ==========================================================================
# 6. mismatched transports


def _mismatch(procs, server_extra, client_extra):
    svc = [{"name": "mix", "local": 9, "token": TOKEN, "port": mrlib.free_port()}]
    bind = mrlib.free_port()
    s = procs.server(mrlib.server_toml(bind, svc, extra=server_extra), name="server")
    assert mrlib.wait_port(bind, mrlib.slow(5), proc=s), s.tail()
    time.sleep(1.1)     # the probe's second is past
    c = procs.client(mrlib.client_toml(bind, svc, extra=client_extra), name="client")
    return s, c, svc[0]["port"]


def _mismatch_after(s, c, svc_port):
    time.sleep(mrlib.slow(1.5))
    assert s.alive() and c.alive(), procs_tail(s, c)
    assert mrlib.port_refuses(svc_port), "the service port is open without an authenticated client"
    # the client retried: at least two attempts logged
    assert len(problem_lines(c, "mix")) >= 2, f"the client does not retry\n{c.tail()}"


def procs_tail(*ms):
    return "\n".join(f"--- {m.name}\n{m.tail(20)}" for m in ms)


def test_websocket_client_against_tcp_server(procs):
    """A websocket client against a plain tcp server: the server reads
    "GET / HT..." as a Hello and drops it with a line; the client's upgrade
    gets no response: a line naming websocket; it retries; nobody crashes."""
    s, c, svc_port = _mismatch(procs, "", ws_client_extra())
    assert wait_problem_line(s, "hello"), f"no line about a bad Hello from the tcp server\n{s.tail()}"
    lines = wait_problem_line(c, "mix", "websocket")
    assert lines, f"no line naming websocket from the client\n{c.tail()}"
    print(lines[0])
    _mismatch_after(s, c, svc_port)


def test_tcp_client_against_websocket_server(procs):
    """A plain tcp client against a websocket server: its rathole Hello is
    no HTTP request; the server says so at once, asking whether the client
    uses transport.type = "websocket"; the client logs its failed attempt
    and retries."""
    s, c, svc_port = _mismatch(procs, ws_server_extra(), "")
    lines = wait_problem_line(s, "websocket", "transport.type")
    assert lines, f"no line from the websocket server\n{s.tail()}"
    print(lines[0])
    assert wait_problem_line(c, "mix"), f"no line from the tcp client\n{c.tail()}"
    _mismatch_after(s, c, svc_port)


def test_wss_client_against_ws_server(procs, pki):
    """A websocket-over-tls client against a plain websocket server: the
    server sees a TLS ClientHello, no GET, and says so; the client's TLS
    handshake fails with a line; it retries."""
    s, c, svc_port = _mismatch(procs, ws_server_extra(), ws_client_extra(True, pki))
    lines = wait_problem_line(s, "websocket", "GET")
    assert lines, f"no line from the websocket server\n{s.tail()}"
    print(lines[0])
    # what went wrong, not just "TLS failed": the TLS layer's own words
    lines = wait_problem_line(c, "mix", "tls", ("transport.type", "closed the connection", "not speaking"))
    assert lines, f"no line from the client saying what happened to its TLS handshake\n{c.tail()}"
    print(lines[0])
    _mismatch_after(s, c, svc_port)


def test_ws_client_against_wss_server(procs, pki):
    """A plain websocket client against a websocket-over-tls server: the
    server says the client is not speaking TLS; the client's upgrade gets
    no 101: a line naming websocket; it retries."""
    s, c, svc_port = _mismatch(procs, ws_server_extra(True, pki), ws_client_extra())
    lines = wait_problem_line(s, "not speaking TLS")
    assert lines, f"no line from the server saying the client does not speak TLS\n{s.tail()}"
    print(lines[0])
    lines = wait_problem_line(c, "mix", "websocket")
    assert lines, f"no line naming websocket from the client\n{c.tail()}"
    print(lines[0])
    _mismatch_after(s, c, svc_port)
