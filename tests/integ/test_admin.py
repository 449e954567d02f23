"""The admin endpoint ([server.admin] / [client.admin], docs/admin.md) with
real processes on 127.0.0.1: /metrics, /api/v1/status and /healthz move
after a sha256-checked transfer and fall when the client is killed;
`molerat status` and its exit codes; the token; a non-loopback bind_addr
without a token refused at start; hostile clients (a 100 KiB head,
slowloris on 200 connections, garbage, a client that never reads) each
dropped while a transfer through the tunnel stays byte-exact; a scrape of
1,000 services timed; the reload counters surviving a restart."""
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

import mrlib
from mrlib import HOST

TOKEN = "admin-secret-token"


def admin_toml(section, port, token=None, host=HOST):
    out = [f"[{section}.admin]", f"bind_addr = {mrlib.q(mrlib.hostport(host, port))}"]
    if token is not None:
        out.append(f"token = {mrlib.q(token)}")
    return "\n".join(out) + "\n"


def http(port, path, token=None, method="GET", timeout=5.0, raw=None):
    """One request; returns (status, headers dict (lower-case names), body)."""
    s = socket.create_connection((HOST, port), timeout=timeout)
    try:
        if raw is None:
            auth = f"Authorization: Bearer {token}\r\n" if token is not None else ""
            raw = f"{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}\r\n".encode()
        s.sendall(raw)
        data = mrlib.recv_all(s, timeout=timeout)
    finally:
        s.close()
    if not data.startswith(b"HTTP/1."):
        # closed without an answer (e.g. the endpoint restarting with its instance)
        raise ConnectionError(f"no HTTP answer: {data[:80]!r}")
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def metrics(port, token=None):
    st, h, body = http(port, "/metrics", token)
    assert st == 200, (st, body[:200])
    assert h["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    out = {}
    for ln in body.decode().splitlines():
        if not ln or ln.startswith("#"):
            continue
        name_labels, _, v = ln.rpartition(" ")
        out[name_labels] = float(v)
    return out


def status(port, token=None):
    st, h, body = http(port, "/api/v1/status", token)
    assert st == 200 and h["content-type"] == "application/json", (st, body[:200])
    return json.loads(body)


def wait_for(pred, what, timeout):
    deadline = time.monotonic() + mrlib.slow(timeout)
    last = None
    while time.monotonic() < deadline:
        try:
            last = pred()
            if last:
                return last
        except (OSError, AssertionError, ValueError) as e:
            last = e
        time.sleep(0.1)
    raise AssertionError(f"{what}: not after {mrlib.slow(timeout)}s (last: {last!r})")


def run_status(*args, timeout=15):
    p = subprocess.run([mrlib.molerat_bin(), "status"] + list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=mrlib.slow(timeout))
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def admin_tunnel(procs, services, server_token=TOKEN, client_token=None):
    sport, cport = mrlib.free_port(), mrlib.free_port()
    t = mrlib.Tunnel(procs, services,
                     server_extra={"extra": admin_toml("server", sport, server_token)},
                     client_extra={"extra": admin_toml("client", cport, client_token)})
    t.server_admin, t.client_admin = sport, cport
    return t


def transfer(port, size, seed):
    data = mrlib.payload(seed, size)
    got = mrlib.roundtrip(port, data, timeout=mrlib.slow(60))
    assert len(got) == size and hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


def test_metrics_status_healthz_and_status_command(procs, echo):
    t = admin_tunnel(procs, [{"name": "echo", "local": echo.port}]).start()
    size = mrlib.scale(4 << 20)
    transfer(t.svc_port["echo"], size, seed=7)

    def settled():
        m = metrics(t.server_admin, TOKEN)
        ok = (m['molerat_service_bytes_total{service="echo",direction="to_service"}'] >= size and
              m['molerat_service_bytes_total{service="echo",direction="to_visitor"}'] >= size and
              m['molerat_visitors_active{service="echo"}'] == 0)
        return m if ok else None
    m = wait_for(settled, "server metrics after the transfer", 5)
    assert m['molerat_service_up{service="echo"}'] == 1
    assert m['molerat_visitors_total{service="echo"}'] >= 1
    assert m['molerat_control_channel_connects_total{service="echo",result="ok"}'] == 1
    assert m['molerat_data_channels_pooled{service="echo"}'] >= 1
    assert m['molerat_build_info{version="0.1.0",role="server"}'] == 1
    assert m["molerat_process_open_fds"] > 3
    assert abs(m["molerat_start_time_seconds"] - time.time()) < 120

    cm = metrics(t.client_admin)   # no token on the client's loopback endpoint
    assert cm['molerat_service_bytes_total{service="echo",direction="to_service"}'] >= size
    assert cm['molerat_service_bytes_total{service="echo",direction="to_visitor"}'] >= size

    doc = status(t.server_admin, TOKEN)
    assert doc["role"] == "server" and doc["version"] == "0.1.0"
    (svc,) = doc["services"]
    assert svc["name"] == "echo" and svc["state"] == "up" and svc["peer"].startswith("127.0.0.1:")
    assert svc["bytes_to_service"] >= size and svc["bytes_to_visitor"] >= size
    assert svc["visitors_total"] >= 1 and svc["reconnects"] == 0 and svc["last_error"] is None
    assert isinstance(svc["since"], int) and svc["pooled_channels"] >= 1
    cdoc = status(t.client_admin)
    assert cdoc["role"] == "client" and cdoc["services"][0]["peer"] == f"127.0.0.1:{t.server_port}"

    st, h, body = http(t.server_admin, "/healthz", TOKEN)
    assert st == 200 and body == b"echo up\n"

    scfg = t.server.args[-1]
    ccfg = t.client.args[-1]
    rc, out, err = run_status(scfg)
    assert rc == 0, (out, err)
    assert re.search(r"^  echo  up for \d+s  visitors 0 active, \d+ total  bytes to service [\d.]+ MiB", out, re.M), out
    rc, out, err = run_status("--json", ccfg)
    assert rc == 0 and json.loads(out)["role"] == "client"

    # the client goes away: up falls to 0, healthz 503, status 1 (server) and 2 (client)
    t.client.p.kill()
    t.client.p.wait(5)
    t.client.expect_exit = True
    wait_for(lambda: http(t.server_admin, "/healthz", TOKEN)[0] == 503, "healthz 503", 10)
    st, h, body = http(t.server_admin, "/healthz", TOKEN)
    assert body.startswith(b"echo down: no control channel"), body
    m = metrics(t.server_admin, TOKEN)
    assert m['molerat_service_up{service="echo"}'] == 0
    doc = status(t.server_admin, TOKEN)
    assert doc["services"][0]["state"] == "down"
    assert doc["services"][0]["last_error"]["message"].startswith("control channel ended")
    rc, out, err = run_status(scfg)
    assert rc == 1 and "echo  down" in out, (out, err)
    rc, out, err = run_status(ccfg)
    assert rc == 2 and "cannot be reached" in err, (out, err)


def test_token_and_routes(procs, echo):
    t = admin_tunnel(procs, [{"name": "echo", "local": echo.port}], client_token="ctok").start()
    p = t.server_admin
    for tok in (None, "wrong", TOKEN + "x", TOKEN[:-1]):
        st, h, _ = http(p, "/metrics", tok)
        assert st == 401 and h["www-authenticate"].startswith("Bearer"), (tok, st)
    st, _, _ = http(p, "/api/v1/status", None)
    assert st == 401
    st, _, _ = http(p, "/nothing", None)
    assert st == 401
    st, h, body = http(p, "/", None)   # the page holds no data: no token
    assert st == 200 and h["content-type"] == "text/html; charset=utf-8" and b"<html" in body.lower()
    st, _, _ = http(p, "/nothing", TOKEN)
    assert st == 404
    st, h, _ = http(p, "/metrics", TOKEN, method="POST")
    assert st == 405 and "GET" in h["allow"]
    st, h, body = http(p, "/metrics", TOKEN, method="HEAD")
    assert st == 200 and body == b"" and int(h["content-length"]) > 100
    st, _, _ = http(t.client_admin, "/metrics", "wrong")
    assert st == 401
    # molerat status with a config whose token is not the running one's: 2
    cfg = procs.write("wrongtoken.toml", mrlib.server_toml(t.server_port, t.services,
                                                           extra=admin_toml("server", p, "nope")))
    rc, out, err = run_status(cfg)
    assert rc == 2 and "401" in err, (out, err)


def test_non_loopback_without_token_refused(procs):
    aport = mrlib.free_port()
    toml = mrlib.server_toml(mrlib.free_port(), [{"name": "a", "port": mrlib.free_port(), "token": "t"}],
                             extra=admin_toml("server", aport, None, host="0.0.0.0"))
    m = procs.server(toml)
    rc = m.wait(mrlib.slow(10))
    m.expect_exit = True
    assert rc == 1, m.tail()
    err = m.stderr()
    assert re.search(r"server-\d+\.toml:\d+:\d+: server\.admin\.bind_addr: \"0\.0\.0\.0:\d+\" is not a loopback "
                     r"address, so the admin endpoint needs a token", err), err
    assert len([ln for ln in err.splitlines() if ln.strip()]) == 1, err
    assert mrlib.port_refuses(aport)
    p = subprocess.run([mrlib.molerat_bin(), "check", m.args[-1]], capture_output=True, timeout=10)
    assert p.returncode == 1 and b"server.admin.bind_addr" in p.stderr


def test_status_without_admin_table(procs):
    cfg = procs.write("plain.toml", mrlib.client_toml(1, [{"name": "a", "local": 1, "token": "t"}]))
    rc, out, err = run_status(cfg)
    assert rc == 2 and "has no [client.admin] table" in err and "bind_addr" in err, err


def test_hostile_clients_tunnel_unaffected(procs, echo):
    # enough services that /metrics does not fit in the socket buffers
    services = [{"name": "echo", "local": echo.port}] + [{"name": f"idle{i:03d}", "local": 1}
                                                         for i in range(300)]
    t = admin_tunnel(procs, services)
    t.start(ready=["echo"])
    p = t.server_admin
    errs = []
    size = mrlib.scale(64 << 20)

    def bulk():
        try:
            for i in range(3):
                transfer(t.svc_port["echo"], size // 3, seed=100 + i)
        except Exception as e:   # noqa: BLE001 - reported below
            errs.append(e)
    th = threading.Thread(target=bulk, daemon=True)
    th.start()

    # garbage: 400, then closed
    st, _, _ = http(p, None, raw=b"\x16\x03\x01\x02\x00garbage\r\n\r\n")
    assert st == 400
    # a 100 KiB head: 431 (or a reset once it stopped reading)
    s = socket.create_connection((HOST, p), timeout=5)
    try:
        s.sendall(b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * (100 << 10) + b"\r\n\r\n")
    except OSError:
        pass
    got = mrlib.recv_all(s, timeout=5)
    s.close()
    assert got == b"" or got.startswith(b"HTTP/1.1 431 "), got[:80]
    # a client that never reads its (large) response
    lazy = socket.socket()
    lazy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    lazy.connect((HOST, p))
    lazy.sendall(f"GET /metrics HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
    # slowloris: 200 connections sending half a head
    slow = []
    for _ in range(200):
        c = socket.create_connection((HOST, p), timeout=5)
        c.sendall(b"GET /metrics HTTP/1.1\r\nX-Slow: ")
        slow.append(c)
    t0 = time.monotonic()
    # the server closes them all: the ones past 64 at once, the rest after the 5 s head timeout
    closed = 0
    deadline = t0 + mrlib.slow(15)
    for c in slow:
        c.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            if c.recv(100) == b"":
                closed += 1
        except ConnectionResetError:
            closed += 1
        except socket.timeout:
            pass
        c.close()
    assert closed == 200, f"{closed} of 200 slowloris connections closed"
    took = time.monotonic() - t0
    assert took >= 4.0, f"slowloris connections closed after {took:.1f}s, before the 5 s head timeout"
    # served again
    m = wait_for(lambda: metrics(p, TOKEN), "a scrape after the slowloris", 5)
    assert m['molerat_service_up{service="echo"}'] == 1
    # the reader that never reads is dropped once its response makes no progress for 10 s
    wait_for(lambda: "the response is not being read" in t.server.stderr(), "the lazy reader dropped", 15)
    lazy.close()
    th.join(mrlib.slow(120))
    assert not th.is_alive() and not errs, errs
    err = t.server.stderr()
    assert "request head over 8192 bytes; 431" in err
    assert "not an HTTP request; 400" in err
    assert "connections already open; dropped" in err
    assert t.server.alive() and t.client.alive()


def test_thousand_services_scrape(procs):
    n = 1000
    services = [{"name": f"svc-{i:04d}", "port": 1, "token": "t"} for i in range(n)]
    aport = mrlib.free_port()
    sport = mrlib.free_port()
    m = procs.server(mrlib.server_toml(sport, services, extra=admin_toml("server", aport, TOKEN)))
    assert mrlib.wait_port(aport, mrlib.slow(10), proc=m), m.tail()
    best = None
    for _ in range(5):
        t0 = time.monotonic()
        st, h, body = http(aport, "/metrics", TOKEN, timeout=mrlib.slow(10))
        took = time.monotonic() - t0
        best = took if best is None else min(best, took)
        assert st == 200
    lines = body.decode().splitlines()
    ups = [ln for ln in lines if ln.startswith("molerat_service_up{")]
    assert len(ups) == n and all(ln.endswith(" 0") for ln in ups)
    print(f"1,000 services: /metrics {len(body)} bytes, best of 5 scrapes {best * 1000:.1f} ms (request to last byte)")
    doc = status(aport, TOKEN)
    assert len(doc["services"]) == n
    st, _, body = http(aport, "/healthz", TOKEN)
    assert st == 503 and body.count(b"\n") == n


def test_responses_that_overlap_or_are_cut(procs):
    """A response's buffer is reused by the next one: requests that reset
    before their answer is written, and answers still being written while
    the next request comes (300 services: /metrics outgrows the socket
    buffers), leave the endpoint answering, whole, with or without the
    token (a crash here needs none)."""
    services = [{"name": f"svc-{i:03d}", "port": 1, "token": "t"} for i in range(300)]
    aport, sport = mrlib.free_port(), mrlib.free_port()
    m = procs.server(mrlib.server_toml(sport, services, extra=admin_toml("server", aport, TOKEN)))
    assert mrlib.wait_port(aport, mrlib.slow(10), proc=m), m.tail()
    st, _, full = http(aport, "/metrics", TOKEN)
    assert st == 200
    for i in range(20):
        # reset right after the request: the write of the answer fails
        r = socket.create_connection((HOST, aport), timeout=5)
        r.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        r.sendall(b"GET / HTTP/1.1\r\n\r\n" if i % 2 else
                  f"GET /metrics HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
        r.close()
        # a large answer left unread while two more requests are answered
        slow = socket.create_connection((HOST, aport), timeout=5)
        slow.sendall(f"GET /metrics HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
        time.sleep(0.02)
        assert http(aport, "/metrics")[0] == 401, m.tail()
        st, _, body = http(aport, "/metrics", TOKEN)
        assert st == 200 and body.count(b"\n") == full.count(b"\n"), m.tail()
        got = b""
        while True:
            b = slow.recv(1 << 16)
            if not b:
                break
            got += b
        slow.close()
        assert got.startswith(b"HTTP/1.1 200") and got.count(b"\n") > full.count(b"\n"), len(got)
    assert m.alive(), m.tail()


def test_reload_counters_survive_restart(procs):
    aport = mrlib.free_port()
    sport = mrlib.free_port()
    services = [{"name": "a", "port": mrlib.free_port(), "token": "t"}]
    m = procs.server(mrlib.server_toml(sport, services, extra=admin_toml("server", aport, "one")))
    assert mrlib.wait_port(aport, mrlib.slow(10), proc=m), m.tail()
    cfg = m.args[-1]
    # a general change (the admin token): the instance and its endpoint restart
    with open(cfg, "w") as f:
        f.write(mrlib.server_toml(sport, services, extra=admin_toml("server", aport, "two")))
    m.send_signal(signal.SIGHUP)
    wait_for(lambda: http(aport, "/metrics", "two")[0] == 200, "the new token", 10)
    assert http(aport, "/metrics", "one")[0] == 401
    # an invalid file: rejected, counted
    with open(cfg, "w") as f:
        f.write("[server]\nbind_addr = 1\n")
    m.send_signal(signal.SIGHUP)
    wait_for(lambda: metrics(aport, "two").get('molerat_config_reloads_total{result="rejected"}') == 1,
             "a rejected reload counted", 10)
    mm = metrics(aport, "two")
    assert mm['molerat_config_reloads_total{result="applied"}'] == 1
