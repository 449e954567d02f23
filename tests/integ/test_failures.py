"""Failures, restarts and process lifecycle (protocol.md#p-control-server to
protocol.md#p-control-replace, protocol.md#p-tcp-pairing, protocol.md#p-signals,
protocol.md#p-interop-checklist items 8, 9, 12)."""
import os
import re
import signal
import socket
import ssl
import time

import pytest

import mrlib
from mrlib import HOST, recv_exact


def tls_client_hello():
    """The first flight of a real TLS client (Python's ssl over a memory BIO)."""
    ctx = ssl.create_default_context()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="example.invalid")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    data = out.read()
    assert data[:1] == b"\x16" and len(data) > 100
    return data


def test_wrong_token(procs, relay, services):
    """A client with a wrong token never gets its service port opened; the
    server stays up and a correct service on the same client works."""
    good = services.echo()
    bad_local = services.echo()
    t = mrlib.Tunnel(procs, [{"name": "good", "local": good.port},
                             {"name": "bad", "local": bad_local.port}], relay=relay)
    t.start_server()
    wrong = [dict(s) for s in t.services]
    wrong[1]["token"] = "not-the-token"
    t.start_client(services=wrong)
    t.wait_ready("good")
    # several client retries happen in this window (backoff 0.5 s, 1 s, ...)
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        assert mrlib.port_refuses(t.svc_port["bad"]), "service with a wrong token got its port opened"
        time.sleep(0.2)
    assert bad_local.accepted == 0
    assert t.server.alive(), t.server.tail()
    assert t.client.alive(), "client must keep retrying, not exit"
    data = os.urandom(10_000)
    assert mrlib.roundtrip(t.svc_port["good"], data) == data


def test_unknown_service(procs, relay, services):
    """A client service the server does not know keeps being refused; the
    known one works, both processes stay up."""
    good = services.echo()
    t = mrlib.Tunnel(procs, [{"name": "known", "local": good.port}], relay=relay)
    t.start_server()
    extra = t.services + [{"name": "ghost", "local": good.port, "token": "x", "port": 0}]
    t.start_client(services=extra)
    t.wait_ready("known")
    time.sleep(1.5)
    assert t.server.alive() and t.client.alive()
    data = os.urandom(30_000)
    assert mrlib.roundtrip(t.svc_port["known"], data) == data


@pytest.mark.parametrize("junk", ["random", "tls", "http", "short"])
def test_garbage_on_bind_addr(procs, relay, echo, junk):
    """Garbage, a TLS ClientHello, an HTTP request or 10 bytes then EOF sent
    to server.bind_addr: that connection is dropped (nothing useful sent
    back), and the server keeps serving the real client and visitors."""
    t = mrlib.Tunnel(procs, [{"name": "svc", "local": echo.port}], relay=relay).start()
    data = {
        "random": mrlib.payload(7, 4096),
        "tls": tls_client_hello(),
        "http": b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: integ-test\r\nAccept: */*\r\n\r\n",
        "short": b"\x00\x00\x00\x00\x01\x02\x03\x04\x05\x06",
    }[junk]
    socks = []
    for _ in range(3):
        s = socket.create_connection((HOST, t.server_port), timeout=5)
        s.sendall(data)
        if junk == "short":
            s.shutdown(socket.SHUT_WR)
        socks.append(s)
    for s in socks:
        try:
            got = mrlib.wait_closed(s, timeout=mrlib.slow(5))
        finally:
            s.close()
        assert got == b"", f"server answered {junk} with {got[:64].hex()}"
    assert t.server.alive(), t.server.tail()
    msg = os.urandom(100_000)
    assert mrlib.roundtrip(t.svc_port["svc"], msg) == msg
    # a fresh client connection (the real client reconnecting) still works
    t.client.stop()
    t.start_client(name="client2")
    t.wait_ready("svc")


def test_half_sent_hello_does_not_block(procs, echo):
    """A connection that sent 20 of the 37 Hello bytes, and one that sent
    nothing, do not block the real client; the server drops both later
    (handshake timeout, within ~10 s). Runs once: the relay mode plays no
    part and the test waits for the timeout."""
    t = mrlib.Tunnel(procs, [{"name": "svc", "local": echo.port}])
    t.start_server()
    t0 = time.monotonic()
    partial = socket.create_connection((HOST, t.server_port), timeout=5)
    partial.sendall(mrlib.hello(0, mrlib.digest("svc"))[:20])
    silent = socket.create_connection((HOST, t.server_port), timeout=5)
    t.start_client()
    t.wait_ready("svc", timeout=5)
    for name, s in (("partial", partial), ("silent", silent)):
        left = max(0.5, t0 + mrlib.slow(12) - time.monotonic())
        try:
            got = mrlib.wait_closed(s, timeout=left)
        except socket.timeout:
            pytest.fail(f"{name} handshake still open {time.monotonic() - t0:.1f}s after connect")
        finally:
            s.close()
        assert got == b"", f"{name}: server sent {got.hex()}"
    assert t.server.alive()
    msg = os.urandom(1000)
    assert mrlib.roundtrip(t.svc_port["svc"], msg) == msg


def test_server_restart(procs, relay, echo):
    """Restarting the server: the client reconnects by itself and traffic
    flows again within 5 s of the new server's start (protocol.md#p-backoff-uses, protocol.md#p-interop-checklist item 8)."""
    t = mrlib.Tunnel(procs, [{"name": "svc", "local": echo.port}], relay=relay).start()
    rc, killed = t.server.stop()
    assert (rc, killed) == (0, False)
    assert mrlib.port_refuses(t.svc_port["svc"])
    time.sleep(0.3)
    t.start_server(keep_port=True)
    ok, last, took = mrlib.wait_roundtrip(t.svc_port["svc"], mrlib.echo_expect, timeout=mrlib.slow(5))
    assert ok, f"no traffic {took:.1f}s after the server restart: {last!r}\n{procs.dump()}"
    assert t.client.alive()


def test_client_restart(procs, relay, echo):
    """Restarting the client: the server takes the new control channel and
    traffic flows again within 5 s."""
    t = mrlib.Tunnel(procs, [{"name": "svc", "local": echo.port}], relay=relay).start()
    rc, killed = t.client.stop()
    assert (rc, killed) == (0, False)
    t.start_client(name="client2")
    ok, last, took = mrlib.wait_roundtrip(t.svc_port["svc"], mrlib.echo_expect, timeout=mrlib.slow(5))
    assert ok, f"no traffic {took:.1f}s after the client restart: {last!r}\n{procs.dump()}"
    assert t.server.alive()


def test_second_client_newest_wins(procs, relay, services):
    """A second client for the same service takes over (newest wins,
    protocol.md#p-control-replace); the service keeps working; with the first client gone, the
    second one serves every visitor."""
    a = services.reply(tag=b"A")
    b = services.reply(tag=b"B")
    t = mrlib.Tunnel(procs, [{"name": "svc", "local": a.port}], relay=relay)
    t.start(expect=a.expect)
    port = t.svc_port["svc"]
    client_a = t.client
    svc_b = [dict(t.services[0], local=b.port)]
    client_b = t.start_client(services=svc_b, name="clientB")
    ok, last, took = mrlib.wait_roundtrip(port, b.expect, timeout=mrlib.slow(5))
    assert ok, f"second client never took over: {last!r}\n{procs.dump()}"
    # while both run they may evict each other (protocol.md#q21); every answer must be
    # correct from one of them
    good = 0
    for i in range(10):
        data = mrlib.payload(i, 3000 + i)
        try:
            got = mrlib.roundtrip(port, data, timeout=mrlib.slow(3), connect_timeout=2)
        except OSError:
            continue
        if got == b"":
            continue  # closed during a takeover
        assert got in (a.expect(data), b.expect(data)), f"corrupt reply {got[:40]!r}"
        good += 1
    assert good >= 1
    rc, killed = client_a.stop()
    assert (rc, killed) == (0, False)
    ok, last, took = mrlib.wait_roundtrip(port, b.expect, timeout=mrlib.slow(5))
    assert ok, f"no traffic through the second client: {last!r}"
    for i in range(5):
        data = mrlib.payload(100 + i, 5000)
        got = mrlib.roundtrip(port, data, timeout=mrlib.slow(5))
        assert got == b.expect(data), f"visitor {i} after the first client left: {got[:40]!r}"
    assert client_b.alive() and t.server.alive()


def test_visitor_without_client(procs, relay, echo):
    """The service port is open only while a control channel lives: refused
    before any client, open with it, refused again soon after the client
    stops (a visitor in between gets EOF, never data)."""
    t = mrlib.Tunnel(procs, [{"name": "svc", "local": echo.port}], relay=relay)
    t.start_server()
    port = t.svc_port["svc"]
    for _ in range(3):
        assert mrlib.port_refuses(port), "service port open with no client"
        time.sleep(0.1)
    t.start_client()
    t.wait_ready("svc")
    rc, killed = t.client.stop()
    assert (rc, killed) == (0, False)
    deadline = time.monotonic() + mrlib.slow(5)
    refused = False
    while time.monotonic() < deadline:
        try:
            s = socket.create_connection((HOST, port), timeout=1)
        except ConnectionRefusedError:
            refused = True
            break
        try:
            s.sendall(b"anyone?")
            got = mrlib.wait_closed(s, timeout=2)
            assert got == b"", f"got {got!r} with no client connected"
        except socket.timeout:
            pass
        except OSError:
            pass
        finally:
            s.close()
        time.sleep(0.1)
    assert refused, "service port still accepting 5 s after the client left"
    assert t.server.alive()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_exit_zero(procs, echo, sig):
    """SIGINT and SIGTERM make both server and client exit 0 promptly."""
    t = mrlib.Tunnel(procs, [{"name": "svc", "local": echo.port}]).start()
    # an open visitor connection must not delay the exit
    v = socket.create_connection((HOST, t.svc_port["svc"]), timeout=5)
    v.sendall(b"x")
    try:
        assert recv_exact(v, 1) == b"x"  # relays running on both ends
        bad = []
        for m in (t.client, t.server):
            m.expect_exit = True  # checked here
            t0 = time.monotonic()
            m.send_signal(sig)
            rc = m.wait(mrlib.slow(3))
            if rc != 0:
                bad.append(f"{m.name}: status {rc} {time.monotonic() - t0:.1f}s after {sig.name}\n{m.tail()}")
        assert not bad, "\n".join(bad)
    finally:
        v.close()


BAD_CONFIGS = {
    # name: (text, expected line or None)
    "syntax": ("[server]\nbind_addr = \"127.0.0.1:1\"\ndefault_token = \n[server.services]\n", 3),
    "unknown_key": ("[server]\nbind_addr = \"127.0.0.1:1\"\nfoo_bar = 1\n[server.services]\n", 3),
    "int_port": ("[server]\nbind_addr = 2333\n[server.services]\n", 2),
    "upper_type": ("[client]\nremote_addr = \"127.0.0.1:1\"\n[client.services.a]\n"
                   "type = \"TCP\"\nlocal_addr = \"127.0.0.1:2\"\ntoken = \"t\"\n", 4),
    "negative": ("[client]\nremote_addr = \"127.0.0.1:1\"\nheartbeat_timeout = -1\n[client.services]\n", 3),
}


@pytest.mark.parametrize("kind", sorted(BAD_CONFIGS))
def test_bad_config_exit_1(procs, kind):
    """An invalid config: exit 1 at once with file:line:col on stderr."""
    text, line = BAD_CONFIGS[kind]
    path = procs.write(f"bad-{kind}.toml", text)
    m = procs.start([path], name=f"bad-{kind}")
    m.expect_exit = True
    rc = m.wait(mrlib.slow(5))
    err = m.stderr()
    assert rc == 1, f"status {rc}\n{err}"
    mo = re.search(re.escape(path) + r":(\d+):(\d+):", err)
    assert mo, f"no {path}:line:col: in stderr:\n{err}"
    if line is not None:
        assert int(mo.group(1)) == line, f"line {mo.group(1)}, expected {line}:\n{err}"
    assert int(mo.group(2)) >= 1


def test_start_failure_bind_in_use(procs):
    """server.bind_addr already taken: one clear error and a non-zero exit
    within a few seconds (no idling, no abort)."""
    holder = mrlib.listen_socket()
    port = holder.getsockname()[1]
    try:
        toml = mrlib.server_toml(port, [{"name": "svc", "port": mrlib.free_port(), "token": "t"}])
        m = procs.server(toml)
        m.expect_exit = True
        rc = m.wait(mrlib.slow(5))
    finally:
        holder.close()
    err = m.stderr()
    assert rc is not None, f"server still running with its bind_addr in use\n{err}"
    assert rc not in (0, -signal.SIGABRT, -signal.SIGSEGV), f"status {rc}\n{err}"
    assert rc > 0, f"status {rc} (killed by a signal)\n{err}"
    assert str(port) in err, f"the error does not name the address:\n{err}"
