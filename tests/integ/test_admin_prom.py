"""The admin endpoint's /metrics read by the real tools
(docs/admin.md): a `prometheus` server scraping a molerat server (with a
token) and client (without) through a tunnel that carried a sha256-checked
8 MiB echo and 4 MiB one way only, queried through its HTTP API; and `promtool check metrics` on
the bodies of both roles, and of a config with several services, one of
them UDP, one named with a quote, a backslash and a non-ASCII letter, one
the client does not run.

prometheus and promtool come from Debian's prometheus package
(scripts/deps.sh); without them the tests skip, or fail when CI=true."""
import os
import signal
import time

import pytest

import admin_tools as at
import mrlib
import udp_helpers as uh
from test_tls import bulk_echo

SERVICE = "bulk"
DIGEST = "digest"
ODD = 'odd "name" \\ \u00e9'


@pytest.fixture
def digest_server():
    """An admin_tools.DigestServer, closed after the test."""
    s = at.DigestServer(tag=b"D")
    yield s
    s.close()


def transfer(port, total, seed):
    sent, got_sha, got, took = bulk_echo(port, total, seed, mrlib.slow(30))
    assert got == total, f"received {got} bytes of {total}"
    assert got_sha == sent, "the echo came back different (sha256)"
    return took


def test_prometheus_scrapes_server_and_client(procs, echo, digest_server, tmp_path):
    """prometheus scrapes both roles every second (the server with its
    bearer token; the same target without it is refused: up 0). After an
    8 MiB echo on one service and 4 MiB to a service that answers 33
    bytes on another, molerat_service_bytes_total in prometheus has, for
    both roles, 8 MiB each way on the first (plus the readiness probes, at
    most 64 KiB) and 4 MiB to_service but under 4 KiB to_visitor on the
    second; build_info names each role and the start times are now;
    killing the client brings the server's molerat_service_up to 0 and
    the client target's up to 0."""
    at.need_tool("prometheus")
    total, small = 8 << 20, 4 << 20
    token = "srv-" + os.urandom(12).hex()
    t_before = time.time()
    t = at.AdminTunnel(procs, [{"name": SERVICE, "local": echo.port}, {"name": DIGEST, "local": digest_server.port}],
                       server_token=token).start(expects={DIGEST: digest_server.expect})
    t_after = time.time()
    prom = at.Prometheus(str(tmp_path), [
        {"name": "mr-server", "port": t.server_admin, "token": token},
        {"name": "mr-client", "port": t.client_admin},
        {"name": "mr-server-notoken", "port": t.server_admin},
    ]).start()
    try:
        def up_is(want):
            return lambda r: {m["job"]: v for m, v in r} == want
        prom.wait("up", up_is({"mr-server": 1, "mr-client": 1, "mr-server-notoken": 0}),
                  "both roles scraped, the server refusing a scrape without its token")

        took = transfer(t.svc_port[SERVICE], total, 16)
        print(f"8 MiB echo through the tunnel in {took:.2f}s")
        at.digest_transfer(t.svc_port[DIGEST], digest_server, small, 17)

        want = {SERVICE: {"to_service": (total, total + 65536), "to_visitor": (total, total + 65536)},
                DIGEST: {"to_service": (small, small + 65536), "to_visitor": (33, 4096)}}

        def moved(r):
            got = {(m.get("job"), m.get("service"), m.get("direction")): v for m, v in r}
            return len(got) == 8 and all(v >= want[k[1]][k[2]][0] for k, v in got.items())
        r = prom.wait("molerat_service_bytes_total", moved,
                      "molerat_service_bytes_total of both services at their transfers, both directions, both roles")
        got = {(m["job"], m["service"], m["direction"]): v for m, v in r}
        assert set(got) == {(j, svc, d) for j in ("mr-server", "mr-client") for svc in (SERVICE, DIGEST)
                            for d in ("to_service", "to_visitor")}, got
        for (job, svc, d), v in got.items():
            lo, hi = want[svc][d]
            assert lo <= v <= hi, f"{job}: {svc} {d}: {v} bytes counted, expected {lo}..{hi}"

        info = {m["job"]: (m.get("role"), v) for m, v in prom.query("molerat_build_info")}
        assert info.get("mr-server") == ("server", 1) and info.get("mr-client") == ("client", 1), info
        svc_up = f'molerat_service_up{{service="{SERVICE}"}}'
        prom.wait(svc_up, lambda r: {m["job"]: v for m, v in r} == {"mr-server": 1, "mr-client": 1},
                  "the service up on both roles")
        starts = {m["job"]: v for m, v in prom.query("molerat_start_time_seconds")}
        assert set(starts) == {"mr-server", "mr-client"}, starts
        for job, v in starts.items():
            assert t_before - 2 <= v <= t_after + 2, \
                f"{job}: molerat_start_time_seconds {v}, started between {t_before:.0f} and {t_after:.0f}"

        t.client.expect_exit = True
        t.client.stop(signal.SIGKILL)
        prom.wait(f'molerat_service_up{{job="mr-server",service="{SERVICE}"}}',
                  lambda r: len(r) == 1 and r[0][1] == 0, "the server's service down once the client is gone")
        prom.wait('up{job="mr-client"}', lambda r: len(r) == 1 and r[0][1] == 0,
                  "the killed client's target down")
        assert t.server.alive(), t.server.tail()
    finally:
        prom.stop()


def lint(body, tmp_path, label):
    rc, out = at.promtool_check(body, str(tmp_path), label)
    assert rc == 0 and out == "", \
        f"promtool check metrics on {label}: exit {rc}\n{out}\n(body: {tmp_path}/metrics-{label}.txt)"


def test_promtool_accepts_both_roles(procs, echo, tmp_path):
    """/metrics of a server (token) and a client (none) after traffic pass
    `promtool check metrics` with no finding; every family of docs/admin.md
    is there, as a counter or a gauge; the bytes counted match the 1 MiB
    echo on both roles."""
    at.need_tool("promtool")
    token = "srv-" + os.urandom(12).hex()
    t = at.AdminTunnel(procs, [{"name": SERVICE, "local": echo.port}], server_token=token).start()
    transfer(t.svc_port[SERVICE], 1 << 20, 3)
    assert at.http_get(t.server_admin, "/metrics")[0] == 401, "the server's /metrics answered without its token"
    for role, port, tok in (("server", t.server_admin, token), ("client", t.client_admin, None)):
        # the counters settle when the relay has closed on both ends
        at.wait_status(port, tok, lambda d: (at.service_status(d, SERVICE) or {}).get("bytes_to_visitor", 0) >= 1 << 20,
                       f"{role}: the echo counted")
        status, headers, body = at.http_get(port, "/metrics", tok)
        assert status == 200, f"{role}: /metrics {status}"
        assert headers.get("content-type", "").startswith("text/plain"), headers
        assert "version=0.0.4" in headers.get("content-type", ""), headers
        lint(body, tmp_path, role)
        text = body.decode()
        types = at.metric_types(text)
        counters = ["molerat_control_channel_connects_total", "molerat_heartbeat_timeouts_total",
                    "molerat_data_channel_failures_total", "molerat_visitors_total", "molerat_service_bytes_total",
                    "molerat_udp_datagrams_total", "molerat_udp_drops_total", "molerat_handshake_failures_total",
                    "molerat_auth_failures_total", "molerat_config_reloads_total"]
        gauges = ["molerat_build_info", "molerat_start_time_seconds", "molerat_service_up",
                  "molerat_data_channels_pooled", "molerat_visitors_active", "molerat_process_open_fds",
                  "molerat_process_resident_memory_bytes"]
        for fam in counters:
            assert types.get(fam) == "counter", f"{role}: {fam}: {types.get(fam)}"
        for fam in gauges:
            assert types.get(fam) == "gauge", f"{role}: {fam}: {types.get(fam)}"
        m = at.parse_metrics(text)
        assert at.value(m, "molerat_build_info", role=role) == 1
        assert at.value(m, "molerat_service_up", service=SERVICE) == 1
        for d in ("to_service", "to_visitor"):
            v = at.value(m, "molerat_service_bytes_total", service=SERVICE, direction=d)
            assert (1 << 20) <= v <= (1 << 20) + 65536, f"{role}: {d}: {v}"
        assert at.value(m, "molerat_visitors_total", service=SERVICE) >= 1
        assert at.value(m, "molerat_visitors_active", service=SERVICE) == 0
        assert at.value(m, "molerat_process_open_fds") > 3
        assert at.value(m, "molerat_process_resident_memory_bytes") > 1 << 20


@pytest.fixture
def udp_echo():
    e = uh.UdpEcho()
    yield e
    e.close()


def test_promtool_accepts_udp_and_several_services(procs, echo, udp_echo, tmp_path):
    """A server with four services (two TCP, one UDP, one the client does
    not run) and a client with three, one of them named with a quote, a
    backslash and an é: after traffic on each, both bodies pass
    `promtool check metrics` with no finding; the odd name comes back
    whole from the label's escapes; the UDP datagrams are counted each
    way; the service without a client is down on the server."""
    at.need_tool("promtool")
    services = [{"name": "web", "local": echo.port}, {"name": ODD, "local": echo.port},
                {"name": "dns", "type": "udp", "local": udp_echo.port}, {"name": "absent", "local": echo.port}]
    t = at.AdminTunnel(procs, services, client_token="cli-" + os.urandom(8).hex())
    t.start_server()
    t.start_client(services=[s for s in t.services if s["name"] != "absent"])
    for port, m in ((t.server_admin, t.server), (t.client_admin, t.client)):
        assert mrlib.wait_port(port, mrlib.slow(5), proc=m), m.tail()
    for name in ("web", ODD):
        t.wait_ready(name)
        data = os.urandom(100000)
        assert mrlib.roundtrip(t.svc_port[name], data) == data
    uh.wait_udp_ready(mrlib.HOST, t.svc_port["dns"])
    v = uh.visitor()
    try:
        for i in range(20):
            d = b"dgram-%d-" % i + os.urandom(200)
            assert uh.exchange(v, d, (mrlib.HOST, t.svc_port["dns"]), timeout=mrlib.slow(3)) == d
    finally:
        v.close()

    for role, port, tok in (("server", t.server_admin, None), ("client", t.client_admin, t.client_token)):
        at.wait_status(port, tok, lambda d: all((at.service_status(d, n) or {}).get("bytes_to_visitor", 0) >= 100000
                                                for n in ("web", ODD)), f"{role}: both echoes counted")
        body = at.get_ok(port, "/metrics", tok)
        lint(body, tmp_path, f"{role}-several")
        m = at.parse_metrics(body.decode())
        names = {lb["service"] for n, lb, _ in m if n == "molerat_service_up"}
        want = {"web", ODD, "dns"} | ({"absent"} if role == "server" else set())
        assert names == want, f"{role}: molerat_service_up for {names}, expected {want}"
        assert at.value(m, "molerat_service_up", service=ODD) == 1
        assert at.value(m, "molerat_service_bytes_total", service=ODD, direction="to_visitor") >= 100000
        if role == "server":
            assert at.value(m, "molerat_service_up", service="absent") == 0
        for d in ("to_service", "to_visitor"):
            assert at.value(m, "molerat_udp_datagrams_total", service="dns", direction=d) >= 20, \
                f"{role}: udp datagrams {d}"
        assert f'service="{at.prom_escape(ODD)}"' in body.decode(), \
            "the odd service name is not escaped as the text format says"
