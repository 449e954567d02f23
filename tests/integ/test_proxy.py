"""The client's proxy step (protocol.md#p-proxy, protocol.md#q12) through
REAL proxies from Debian packages, started here on 127.0.0.1 on free
ports, in the test's tmp dir:

- dante-server (danted): SOCKS5 with `socksmethod: none`, and with
  `socksmethod: username` against a throwaway system user made here with
  useradd/chpasswd (root only; skipped with the reason otherwise), whose
  password needs percent-encoding in the URL (molerat decodes it:
  protocol.md#q12's allowed fix);
- tinyproxy: HTTP CONNECT, without and with `BasicAuth` (tinyproxy's
  config grammar allows only [-a-z0-9._] in BasicAuth values, so the user
  name is percent-encoded in the URL to prove decoding there).

Every transport (tcp, tls, noise, websocket) goes through each proxy with a
sha256-checked round trip to an echo service; a UDP service goes through
one of each. Failures: the proxy down (one line naming the proxy, retries,
works once it is up), a wrong password (one clear line, retries, nobody
crashes), the proxy refusing the target (tinyproxy's ConnectPort, dante's
`socks block`), and fake proxies that answer garbage or never answer
(dropped after the client's handshake deadline). No log line of molerat
ever holds the proxy password. Every wait is bounded."""
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse

import pytest

import mrlib
import tlsutil
import udp_helpers as uh
from mrlib import HOST
from test_noise import NoiseTunnel, PairKeys, client_noise, server_noise

DANTED = "/usr/sbin/danted"
TINYPROXY = "/usr/bin/tinyproxy"
TRANSPORTS = ["tcp", "tls", "noise", "websocket"]
PASSWORD = "s3cr@t:pw/x"          # dante user: needs %40 %3A %2F in the URL
TINY_USER, TINY_PASS = "alice", "t1ny.pass-word"
HS_DEADLINE = 10                  # the client's connect + handshake deadline (role/client.c)

needs_dante = pytest.mark.skipif(not os.access(DANTED, os.X_OK),
                                 reason="dante-server (danted) is not installed; scripts/deps.sh installs it")
needs_tiny = pytest.mark.skipif(shutil.which(TINYPROXY) is None,
                                reason="tinyproxy is not installed; scripts/deps.sh installs it")


# ==========================================================================
# the proxies


class _Daemon:
    """A proxy daemon started in its own session (danted forks workers);
    stop() ends that session's process group, bounded."""

    def __init__(self, args, log):
        self.log = log
        self.out = open(log + ".out", "ab")
        self.p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.out, stderr=subprocess.STDOUT,
                                  start_new_session=True)

    def wait_up(self, port, what):
        if not mrlib.wait_port(port, mrlib.slow(5), proc=self.p):
            raise AssertionError(f"{what} did not listen on {port} (rc={self.p.poll()}):\n{self.text()}")

    def text(self):
        out = []
        for path in (self.log, self.log + ".out"):
            try:
                with open(path, "rb") as f:
                    out.append(f.read().decode("utf-8", "replace"))
            except OSError:
                pass
        return "\n".join(out)

    def stop(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.p.wait(5)
        self.out.close()


class Dante(_Daemon):
    """danted on 127.0.0.1:port. method "none" or "username"; block_port:
    a `socks block` rule for connections to 127.0.0.1:block_port."""

    def __init__(self, d, port, method="none", block_port=None):
        self.port = port
        name = f"danted-{port}"
        conf = os.path.join(d, name + ".conf")
        log = os.path.join(d, name + ".log")
        rules = []
        if block_port is not None:
            rules.append(f"socks block {{\n  from: 0.0.0.0/0 to: 127.0.0.1/32 port = {block_port}\n"
                         "  log: connect error\n}")
        rules.append("socks pass {\n  from: 127.0.0.0/8 to: 0.0.0.0/0\n  command: connect\n"
                     "  log: connect error\n}")
        with open(conf, "w") as f:
            f.write(f"logoutput: {log}\n"
                    f"internal: 127.0.0.1 port = {port}\n"
                    "external: 127.0.0.1\n"
                    f"socksmethod: {method}\n"
                    "clientmethod: none\n"
                    "user.privileged: root\n"
                    "user.unprivileged: nobody\n"
                    "client pass {\n  from: 127.0.0.0/8 to: 0.0.0.0/0\n}\n" + "\n".join(rules) + "\n")
        super().__init__([DANTED, "-f", conf, "-p", os.path.join(d, name + ".pid")], log)
        self.wait_up(port, "danted")


class Tinyproxy(_Daemon):
    """tinyproxy -d on 127.0.0.1:port. connect_ports: ConnectPort lines
    (none: every port); auth: (user, password) for BasicAuth."""

    def __init__(self, d, port, connect_ports=None, auth=None):
        self.port = port
        name = f"tinyproxy-{port}"
        conf = os.path.join(d, name + ".conf")
        log = os.path.join(d, name + ".log")
        lines = [f"Port {port}", "Listen 127.0.0.1", "Timeout 60", "Allow 127.0.0.1", "LogLevel Info",
                 f'LogFile "{log}"', f'PidFile "{os.path.join(d, name + ".pid")}"', "MaxClients 200"]
        lines += [f"ConnectPort {p}" for p in (connect_ports or [])]
        if auth:
            lines.append(f"BasicAuth {auth[0]} {auth[1]}")
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        super().__init__([TINYPROXY, "-d", "-c", conf], log)
        self.wait_up(port, "tinyproxy")


@pytest.fixture
def proxies(tmp_path):
    """Starts proxies for one test; stops them all at teardown."""
    started = []

    class _P:
        def dante(self, port=None, **kw):
            p = Dante(str(tmp_path), port or mrlib.free_port(), **kw)
            started.append(p)
            return p

        def tiny(self, port=None, **kw):
            p = Tinyproxy(str(tmp_path), port or mrlib.free_port(), **kw)
            started.append(p)
            return p

    yield _P()
    for p in started:
        p.stop()


@pytest.fixture(scope="module")
def sysuser():
    """A throwaway system user (no home, no shell) with PASSWORD, for
    dante's username method (it checks the system's password database);
    removed after the module."""
    if os.geteuid() != 0:
        pytest.skip("dante's username method checks system users: making one needs root")
    if shutil.which("useradd") is None or shutil.which("chpasswd") is None:
        pytest.skip("useradd/chpasswd missing (package passwd)")
    name = "mrpx" + secrets.token_hex(4)
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True,
                   timeout=30, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        subprocess.run(["chpasswd"], input=f"{name}:{PASSWORD}\n".encode(), check=True, timeout=30)
        yield name
    finally:
        subprocess.run(["userdel", name], timeout=30, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return tlsutil.Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module", autouse=True)
def _proxy_wired(tmp_path_factory):
    """Skips the module while this build does not use the proxy: a client
    whose proxy is a listener here must connect to that listener (an
    unwired build dials remote_addr, where nothing listens)."""
    d = tmp_path_factory.mktemp("wired")
    lsock = mrlib.listen_socket()
    port = lsock.getsockname()[1]
    path = os.path.join(d, "c.toml")
    with open(path, "w") as f:
        f.write(mrlib.client_toml(mrlib.free_port(), [{"name": "s", "local": 2, "token": "t"}],
                                  extra=transport_extra("tcp", f"socks5://127.0.0.1:{port}")[1]))
    r = subprocess.run([mrlib.molerat_bin(), "check", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=30)
    if r.returncode != 0:
        lsock.close()
        pytest.skip("`molerat check` refuses client.transport.tcp.proxy: "
                    + r.stdout.decode(errors="replace").strip().splitlines()[-1])
    err = open(os.path.join(d, "client.stderr"), "wb")
    p = subprocess.Popen([mrlib.molerat_bin(), "--client", path], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=err)
    try:
        lsock.settimeout(mrlib.slow(3))
        try:
            c, _ = lsock.accept()
            c.close()
            wired = True
        except socket.timeout:
            wired = False
    finally:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
        err.close()
        lsock.close()
    if not wired:
        pytest.skip("this build of molerat does not dial the proxy yet (the proxy layer is not wired into "
                    "xport/stack.c and the client's dial)")


def ws_refused():
    """`molerat check` refuses a websocket client config (not built yet)."""
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(mrlib.client_toml(1, [{"name": "s", "local": 2, "token": "t"}],
                                  extra=transport_extra("websocket", "socks5://127.0.0.1:1080")[1]))
        path = f.name
    try:
        r = subprocess.run([mrlib.molerat_bin(), "check", path], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30)
        return r.returncode != 0
    finally:
        os.unlink(path)


# ==========================================================================
# tunnels through a proxy


def proxy_table(url):
    return f"[client.transport.tcp]\nproxy = {mrlib.q(url)}\n"


def transport_extra(transport, url, pki=None, keys=None):
    """(server extra, client extra) for client_toml/server_toml: the
    transport's tables on both ends, the client's with the proxy."""
    if transport == "tcp":
        return "", '[client.transport]\ntype = "tcp"\n' + proxy_table(url)
    if transport == "tls":
        return (tlsutil.server_tls_extra(pki.good_p12),
                tlsutil.client_tls_extra(pki.ca_pem) + proxy_table(url))
    if transport == "noise":
        return server_noise("NK", keys), client_noise("NK", keys) + proxy_table(url)
    if transport == "websocket":
        return ('[server.transport]\ntype = "websocket"\n[server.transport.websocket]\ntls = false\n',
                '[client.transport]\ntype = "websocket"\n[client.transport.websocket]\ntls = false\n'
                + proxy_table(url))
    raise ValueError(transport)


def proxy_tunnel(procs, services, transport, url, pki=None):
    """A tunnel (not started) whose client reaches the server through url.
    The server start waits for its listening socket without a probe."""
    se, ce = transport_extra(transport, url, pki, PairKeys())
    return NoiseTunnel(procs, services, server_extra={"extra": se}, client_extra={"extra": ce})


def duplex_roundtrip(port, data, timeout):
    """Sends data (from a thread) and reads as many bytes back, then
    closes: no half-close, which tinyproxy does not pass on (an EOF from
    either side closes both of its connections)."""
    s = socket.create_connection((HOST, port), timeout=min(timeout, 3))
    try:
        th = threading.Thread(target=lambda: s.sendall(data), daemon=True)
        th.start()
        got = mrlib.recv_exact(s, len(data), timeout=timeout)
        th.join(timeout)
        return got
    finally:
        s.close()


def wait_duplex(port, timeout=8.0):
    """Retries a small duplex round trip until it works (bounded)."""
    deadline = time.monotonic() + mrlib.slow(timeout)
    last = None
    while time.monotonic() < deadline:
        d = os.urandom(32)
        try:
            if duplex_roundtrip(port, d, 2.0) == d:
                return
        except (OSError, EOFError, socket.timeout) as e:
            last = e
        time.sleep(0.1)
    raise AssertionError(f"no round trip through port {port} after {mrlib.slow(timeout)}s: {last!r}")


def start(t, name="echo", timeout=8.0):
    t.start_server()
    t.start_client()
    wait_duplex(t.svc_port[name], timeout)
    return t


def roundtrip_ok(port, seed, size=300_000):
    data = mrlib.payload(seed, size)
    got = duplex_roundtrip(port, data, mrlib.slow(15))
    assert len(got) == size and mrlib.sha(got) == mrlib.sha(data), f"{len(got)} of {size} bytes came back"


def no_password(m, *secrets_):
    """No line of m's stderr (every level) holds a secret."""
    text = m.stderr()
    for s in secrets_:
        assert s not in text, f"{m.name}'s log shows the proxy password {s!r}"


_LEVEL = (" ERROR ", " WARN ")


def problem_lines(m, text, since=0):
    return [ln for ln in m.stderr()[since:].splitlines() if any(lv in ln for lv in _LEVEL) and text in ln]


def wait_lines(m, text, n=1, timeout=8.0, since=0):
    deadline = time.monotonic() + mrlib.slow(timeout)
    while time.monotonic() < deadline:
        got = problem_lines(m, text, since)
        if len(got) >= n:
            return got
        time.sleep(0.05)
    raise AssertionError(f"{m.name}: fewer than {n} WARN/ERROR lines with {text!r} after "
                         f"{mrlib.slow(timeout)}s\n{m.tail(30)}")


def dante_url(d, user=None):
    if user is None:
        return f"socks5://127.0.0.1:{d.port}"
    return f"socks5://{user}:{urllib.parse.quote(PASSWORD, safe='')}@127.0.0.1:{d.port}"


def tiny_url(t, auth=False):
    if not auth:
        return f"http://127.0.0.1:{t.port}"
    # %61 is "a": rathole would send "%61lice" as written; molerat decodes
    return f"http://%61{TINY_USER[1:]}:{TINY_PASS}@127.0.0.1:{t.port}"


def start_proxy(kind, proxies, user):
    """(proxy, url) for kind: dante, dante-auth, tinyproxy, tinyproxy-auth."""
    if kind == "dante":
        d = proxies.dante()
        return d, dante_url(d)
    if kind == "dante-auth":
        d = proxies.dante(method="username")
        return d, dante_url(d, user)
    if kind == "tinyproxy":
        t = proxies.tiny()
        return t, tiny_url(t)
    t = proxies.tiny(auth=(TINY_USER, TINY_PASS))
    return t, tiny_url(t, auth=True)


def proxy_saw(p, server_port):
    """The proxy's log names a connection to the molerat server."""
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        if f"127.0.0.1:{server_port}" in p.text() or f"127.0.0.1.{server_port}" in p.text():
            return True
        time.sleep(0.05)
    return False


# ==========================================================================
# working tunnels


@needs_dante
@needs_tiny
@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("kind", ["dante", "dante-auth", "tinyproxy", "tinyproxy-auth"])
def test_transport_through_proxy(request, procs, proxies, pki, echo, transport, kind):
    """Every transport through every proxy (with and without
    credentials): 300 kB to an echo service and back, sha256-equal, on
    two connections; the proxy's log shows the tunnels; no password in
    molerat's log."""
    if transport == "websocket" and ws_refused():
        pytest.skip("`molerat check` refuses the websocket transport in this build")
    user = request.getfixturevalue("sysuser") if kind == "dante-auth" else None
    p, url = start_proxy(kind, proxies, user)
    t = start(proxy_tunnel(procs, [{"name": "echo", "local": echo.port}], transport, url, pki))
    roundtrip_ok(t.svc_port["echo"], 1)
    roundtrip_ok(t.svc_port["echo"], 2)
    assert proxy_saw(p, t.server_port), f"the proxy's log does not show 127.0.0.1:{t.server_port}:\n{p.text()}"
    if transport == "tcp":
        # the proxy layer hands its socket on: the client's relays may splice
        relays = [ln for ln in t.client.stderr().splitlines() if "relay echo: started" in ln]
        assert relays and all("splice for bulk" in ln for ln in relays), relays
    assert t.client.alive() and t.server.alive()
    no_password(t.client, PASSWORD, urllib.parse.quote(PASSWORD, safe=""), TINY_PASS)


@needs_dante
@needs_tiny
@pytest.mark.parametrize("kind", ["dante-auth", "tinyproxy"])
def test_udp_through_proxy(request, procs, proxies, kind):
    """A UDP service over a proxied data channel: datagrams of several
    sizes come back whole."""
    user = request.getfixturevalue("sysuser") if kind == "dante-auth" else None
    p, url = start_proxy(kind, proxies, user)
    e = uh.UdpEcho()
    try:
        t = proxy_tunnel(procs, [{"name": "udp", "type": "udp", "local": e.port}], "tcp", url)
        t.start_server()
        t.start_client()
        uh.wait_udp_ready(HOST, t.svc_port["udp"])
        v = uh.visitor()
        try:
            for size in (0, 1, 1400, 9000, 65507):
                data = mrlib.payload(size + 9, size)
                got = uh.exchange(v, data, (HOST, t.svc_port["udp"]), timeout=mrlib.slow(3))
                assert got is not None, f"no echo of {size} bytes"
                assert mrlib.sha(got) == mrlib.sha(data), f"{size} bytes sent, {len(got)} came back"
        finally:
            v.close()
    finally:
        e.close()
    assert t.client.alive() and t.server.alive()


@needs_dante
def test_half_close_through_dante(procs, proxies, echo):
    """dante passes a half-close on (tinyproxy does not): a visitor that
    shuts its write side still gets the whole echo."""
    d = proxies.dante()
    t = start(proxy_tunnel(procs, [{"name": "echo", "local": echo.port}], "tcp", dante_url(d)))
    data = mrlib.payload(7, 200_000)
    got = mrlib.roundtrip(t.svc_port["echo"], data, timeout=mrlib.slow(15))
    assert mrlib.sha(got) == mrlib.sha(data), f"{len(got)} of {len(data)} bytes came back"


@needs_dante
def test_many_visitors_through_proxy(procs, proxies, echo):
    """100 visitors at once through dante: 100 proxied data channels."""
    from test_tunnel_tcp import concurrent_echo
    d = proxies.dante()
    t = start(proxy_tunnel(procs, [{"name": "many", "local": echo.port}], "tcp", dante_url(d)), "many")
    bad = concurrent_echo(t.svc_port["many"], 100, mrlib.slow(30))
    assert not bad, f"{len(bad)} of 100 connections wrong"
    assert t.client.alive() and t.server.alive()


# ==========================================================================
# failures


@needs_dante
def test_proxy_down_then_up(procs, proxies, echo):
    """Nothing listens on the proxy's port: the client logs a line naming
    the proxy and retries; once dante starts there, the tunnel works."""
    port = mrlib.free_port()
    url = f"socks5://127.0.0.1:{port}"
    t = proxy_tunnel(procs, [{"name": "echo", "local": echo.port}], "tcp", url)
    t.start_server()
    c = t.start_client()
    lines = wait_lines(c, f"127.0.0.1:{port}", timeout=8)
    assert any("proxy" in ln for ln in lines), lines
    proxies.dante(port=port)
    wait_duplex(t.svc_port["echo"], timeout=20)
    roundtrip_ok(t.svc_port["echo"], 3)


@needs_dante
def test_dante_wrong_password(procs, proxies, echo, sysuser):
    """A wrong password: one clear line naming the proxy (and the user,
    never the password), retried; nobody crashes."""
    d = proxies.dante(method="username")
    url = f"socks5://{sysuser}:{urllib.parse.quote('wrong-' + PASSWORD, safe='')}@127.0.0.1:{d.port}"
    t = proxy_tunnel(procs, [{"name": "echo", "local": echo.port}], "tcp", url)
    t.start_server()
    c = t.start_client()
    lines = wait_lines(c, "rejected the user name and password", n=2, timeout=15)
    assert f"proxy socks5://127.0.0.1:{d.port}" in lines[0] and f'"{sysuser}"' in lines[0], lines[0]
    no_password(c, "wrong-" + PASSWORD, urllib.parse.quote("wrong-" + PASSWORD, safe=""))
    assert c.alive() and t.server.alive()
    assert d.p.poll() is None, "danted died"


@needs_tiny
def test_tinyproxy_wrong_password(procs, proxies, echo):
    """tinyproxy answers wrong Basic credentials with 401: one clear line,
    retried."""
    tp = proxies.tiny(auth=(TINY_USER, TINY_PASS))
    url = f"http://{TINY_USER}:wrong.{TINY_PASS}@127.0.0.1:{tp.port}"
    t = proxy_tunnel(procs, [{"name": "echo", "local": echo.port}], "tcp", url)
    t.start_server()
    c = t.start_client()
    lines = wait_lines(c, "rejected the credentials", n=2, timeout=15)
    assert f"proxy http://127.0.0.1:{tp.port}" in lines[0] and "401" in lines[0], lines[0]
    no_password(c, "wrong." + TINY_PASS)
    assert c.alive() and t.server.alive()


@needs_tiny
def test_tinyproxy_no_credentials(procs, proxies, echo):
    """A proxy that wants credentials, none in the URL: 407 and a hint."""
    tp = proxies.tiny(auth=(TINY_USER, TINY_PASS))
    t = proxy_tunnel(procs, [{"name": "echo", "local": echo.port}], "tcp", tiny_url(tp))
    t.start_server()
    c = t.start_client()
    line = wait_lines(c, "asks for credentials", timeout=10)[0]
    assert "407" in line and "http://USER:PASSWORD@" in line, line


@needs_tiny
def test_tinyproxy_refuses_target(procs, proxies, echo):
    """tinyproxy allows CONNECT to another port only: one clear line with
    its status; the client keeps retrying."""
    tp = proxies.tiny(connect_ports=[443])
    t = proxy_tunnel(procs, [{"name": "echo", "local": echo.port}], "tcp", tiny_url(tp))
    t.start_server()
    c = t.start_client()
    line = wait_lines(c, "refused the connection to", timeout=10)[0]
    assert f"proxy http://127.0.0.1:{tp.port} refused the connection to 127.0.0.1:{t.server_port}: 403" in line, line
    assert c.alive()


@needs_dante
def test_dante_blocks_target(procs, proxies, echo):
    """A `socks block` rule for the server's port: SOCKS5 reply 2."""
    server_port = mrlib.free_port()
    d = proxies.dante(block_port=server_port)
    t = proxy_tunnel(procs, [{"name": "echo", "local": echo.port}], "tcp", dante_url(d))
    t.server_port = server_port
    t.start_server()
    c = t.start_client()
    line = wait_lines(c, "refused the connection to", timeout=10)[0]
    assert (f"proxy socks5://127.0.0.1:{d.port} refused the connection to 127.0.0.1:{server_port}: "
            "connection not allowed by ruleset (reply 2)") in line, line
    assert c.alive()


class FakeProxy(mrlib._TcpService):
    """Accepts, reads the request, then answers `reply` (None: never
    answers, until the client gives up). Records when each connection
    ended."""

    def __init__(self, reply):
        self.reply = reply
        self.ended = []
        super().__init__()

    def handle(self, c):
        c.settimeout(60)
        t0 = time.monotonic()
        try:
            c.recv(4096)
            if self.reply is not None:
                c.sendall(self.reply)
            while c.recv(4096):
                pass
        except OSError:
            pass
        self.ended.append(time.monotonic() - t0)


@pytest.mark.parametrize("scheme,reply,text", [
    ("socks5", b"HTTP/1.1 400 Bad Request\r\n\r\n", "does not speak SOCKS5"),
    ("socks5", b"\x05\x00\x04\x00\x00\x01\x00\x00\x00\x00\x00\x00", "version byte 0x04"),
    ("http", b"\x05\x00", "garbage (not an HTTP response)"),
    ("http", b"HTTP/1.1 200 OK\r\n\r\nSSH-2.0-surprise\r\n", "before the client spoke"),
])
def test_fake_proxy_garbage(procs, echo, scheme, reply, text):
    """A proxy that answers garbage: one clear line naming it, retried."""
    fp = FakeProxy(reply)
    try:
        url = f"{scheme}://127.0.0.1:{fp.port}"
        t = proxy_tunnel(procs, [{"name": "echo", "local": echo.port}], "tcp", url)
        t.start_server()
        c = t.start_client()
        lines = wait_lines(c, text, n=2, timeout=15)
        assert f"proxy {url}" in lines[0], lines[0]
        assert c.alive()
    finally:
        fp.close()


def test_fake_proxy_silent(procs, echo):
    """A proxy that never answers: the client drops it at its handshake
    deadline with one line, and tries again."""
    fp = FakeProxy(None)
    try:
        url = f"socks5://127.0.0.1:{fp.port}"
        t = proxy_tunnel(procs, [{"name": "echo", "local": echo.port}], "tcp", url)
        t.start_server()
        c = t.start_client()
        deadline = time.monotonic() + mrlib.slow(HS_DEADLINE + 10)
        while not fp.ended and time.monotonic() < deadline:
            time.sleep(0.1)
        assert fp.ended, "the client never dropped the silent proxy"
        assert fp.ended[0] >= HS_DEADLINE - 1, f"dropped after {fp.ended[0]:.1f}s, before the deadline"
        lines = [ln for ln in c.stderr().splitlines() if any(lv in ln for lv in _LEVEL)]
        assert lines, c.tail()
        # the line names the proxy and what it has not done
        assert any(f"proxy socks5://127.0.0.1:{fp.port} has not answered" in ln for ln in lines), c.tail()
        assert c.alive()
        # and it tries again
        t1 = time.monotonic() + mrlib.slow(15)
        while fp.accepted < 2 and time.monotonic() < t1:
            time.sleep(0.1)
        assert fp.accepted >= 2, "no second attempt"
    finally:
        fp.close()
