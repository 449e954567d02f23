"""The tls transport through real molerat processes on 127.0.0.1
(protocol.md#p-tls): TCP and UDP services, bulk data, many connections and
half-close over TLS; TLS 1.3 between two molerats and TLS 1.2 against
`openssl s_server` / `s_client` as the other end; and each failure with its
one clear line in the right process's stderr while the client stays up and
retries. Certificates come from tlsutil (the openssl command), made once per
module."""
import asyncio
import hashlib
import os
import re
import socket
import subprocess
import threading
import time

import pytest

import mrlib
import tlsutil
import udp_helpers as uh
from mrlib import HOST


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return tlsutil.Pki(tmp_path_factory.mktemp("pki"))


def tls_tunnel(procs, pki, services, p12=None, trusted_root="ca", hostname=None):
    """A Tunnel whose server and client use the tls transport."""
    ca = pki.ca_pem if trusted_root == "ca" else trusted_root
    return mrlib.Tunnel(procs, services,
                        server_extra={"extra": tlsutil.server_tls_extra(p12 or pki.good_p12)},
                        client_extra={"extra": tlsutil.client_tls_extra(ca, hostname)})


def clear_lines(m, text):
    """The lines of m's stderr (not debug or trace) that contain text."""
    return [ln for ln in m.stderr().splitlines()
            if text in ln and " DEBUG " not in ln and " TRACE " not in ln]


def wait_lines(m, text, n=1, timeout=8.0):
    """Waits until m's stderr holds n clear lines containing text; returns
    them (AssertionError with the log otherwise)."""
    deadline = time.monotonic() + mrlib.slow(timeout)
    while time.monotonic() < deadline:
        got = clear_lines(m, text)
        if len(got) >= n:
            return got
        time.sleep(0.05)
    raise AssertionError(f"{m.name}: fewer than {n} lines with {text!r} after {mrlib.slow(timeout)}s\n{m.tail(30)}")


def tls_versions(m):
    """The protocol versions of m's finished TLS handshakes (debug log)."""
    return re.findall(r"tls: fd \d+: (TLSv1\.\d)", m.stderr())


# ==========================================================================
# working tunnels


def test_tcp_bulk_64mib_each_way(procs, pki, echo):
    """64 MiB (16 MiB under ASan) to an echo service and back at once over
    TLS 1.3; sha256 of what was sent equals that of what came back."""
    total = mrlib.scale(64 << 20)
    t = tls_tunnel(procs, pki, [{"name": "bulk", "local": echo.port}]).start()
    s = socket.create_connection((HOST, t.svc_port["bulk"]), timeout=5)
    sent_hash = hashlib.sha256()
    errs = []

    def sender():
        try:
            for blk in mrlib.block_stream(total, seed=77):
                sent_hash.update(blk)
                s.sendall(blk)
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            errs.append(e)

    t0 = time.monotonic()
    th = threading.Thread(target=sender, daemon=True)
    th.start()
    got_hash = hashlib.sha256()
    got = 0
    buf = bytearray(1 << 20)
    limit = mrlib.slow(30)
    try:
        while True:
            left = t0 + limit - time.monotonic()
            assert left > 0, f"not done after {limit}s: received {got} of {total}"
            s.settimeout(left)
            n = s.recv_into(buf)
            if n == 0:
                break
            got_hash.update(memoryview(buf)[:n])
            got += n
    finally:
        took = time.monotonic() - t0
        s.close()
        th.join(10)
    assert not errs, errs
    assert got == total
    assert got_hash.hexdigest() == sent_hash.hexdigest()
    print(f"tls bulk: {2 * total / took / 1e6:.0f} MB/s (both ways) in {took:.1f}s")
    # TLS 1.3 between two molerats, on both ends
    assert "TLSv1.3" in tls_versions(t.server) and "TLSv1.3" in tls_versions(t.client)
    assert "TLSv1.2" not in tls_versions(t.server) + tls_versions(t.client)
    assert t.server.alive() and t.client.alive()


def test_udp_roundtrip(procs, pki):
    """A UDP service over tls: datagrams of several sizes come back whole."""
    e = uh.UdpEcho()
    try:
        t = tls_tunnel(procs, pki, [{"name": "udp", "type": "udp", "local": e.port}])
        t.start_server()
        t.start_client()
        uh.wait_udp_ready(HOST, t.svc_port["udp"])
        v = uh.visitor()
        try:
            for size in (0, 1, 1400, 9000, 65507):
                data = mrlib.payload(size + 5, size)
                got = uh.exchange(v, data, (HOST, t.svc_port["udp"]), timeout=mrlib.slow(3))
                assert got is not None, f"no echo of {size} bytes"
                assert mrlib.sha(got) == mrlib.sha(data), f"{size} bytes sent, {len(got)} came back"
        finally:
            v.close()
    finally:
        e.close()


def test_200_concurrent_connections(procs, pki, echo):
    """200 visitors at once, each with its own payload, each echoed whole:
    200 data channels, each with its own TLS handshake."""
    n = 200
    t = tls_tunnel(procs, pki, [{"name": "many", "local": echo.port}]).start()
    port = t.svc_port["many"]

    def data_of(i):
        return mrlib.payload(5000 + i, 1000 + (i * 7919) % 30000)

    async def one(i, ready, count):
        data = data_of(i)
        r, w = await asyncio.wait_for(asyncio.open_connection(HOST, port), 10)
        try:
            count[0] += 1
            if count[0] == n:
                ready.set()
            await asyncio.wait_for(ready.wait(), 15)
            w.write(data)
            await w.drain()
            w.write_eof()
            return hashlib.sha256(await r.read()).hexdigest()
        finally:
            w.close()

    async def main():
        ready, count = asyncio.Event(), [0]
        return await asyncio.wait_for(
            asyncio.gather(*(one(i, ready, count) for i in range(n)), return_exceptions=True),
            mrlib.slow(40))

    results = asyncio.run(main())
    bad = [(i, r) for i, r in enumerate(results) if r != hashlib.sha256(data_of(i)).hexdigest()]
    assert not bad, f"{len(bad)} of {n} wrong, first: {bad[:3]}"
    assert t.server.alive() and t.client.alive()


def test_half_close(procs, pki, services):
    """The visitor shuts its write side and still gets the whole reply of a
    service that answers only after EOF: close_notify one way, data the
    other."""
    svc = services.reply(tag=b"T")
    t = tls_tunnel(procs, pki, [{"name": "half", "local": svc.port}])
    t.start(expect=svc.expect)
    for size in (5, 200_000, mrlib.scale(4 << 20)):
        data = mrlib.payload(size, size)
        s = socket.create_connection((HOST, t.svc_port["half"]), timeout=5)
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            got = mrlib.recv_all(s, timeout=mrlib.slow(20))
        finally:
            s.close()
        assert mrlib.sha(got) == mrlib.sha(svc.expect(data)), f"size {size}: {len(got)} bytes back"


# ==========================================================================
# TLS 1.2 against the openssl command


def run_s_client(port, args, timeout=10):
    return subprocess.run(["openssl", "s_client", "-connect", f"{HOST}:{port}"] + args,
                          input=b"", stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=mrlib.slow(timeout))


def test_server_speaks_tls12_to_s_client(procs, pki):
    """`openssl s_client -tls1_2` (a TLS 1.2-only client, as old ones are)
    completes a handshake with the molerat server and verifies its chain;
    TLS 1.3 is offered too. The server then sees no Hello (fine)."""
    t = tls_tunnel(procs, pki, [{"name": "x", "local": mrlib.free_port()}])
    t.start_server()
    for flag, want in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
        r = run_s_client(t.server_port, [flag, "-CAfile", pki.ca_pem, "-verify_return_error",
                                         "-verify_hostname", "localhost", "-servername", "localhost",
                                         "-brief"])
        out = r.stdout.decode(errors="replace")
        assert f"Protocol version: {want}" in out, out
        assert "Verification: OK" in out, out
    assert t.server.alive()


def test_client_speaks_tls12_to_s_server(procs, pki, tmp_path):
    """The molerat client against `openssl s_server -tls1_2` (as a rathole
    server, which speaks TLS 1.2 only) completes the handshake, verifies
    the chain and sends its Hello inside TLS."""
    port = mrlib.free_port()
    out_path = tmp_path / "s_server.out"
    with open(out_path, "wb") as out:
        srv = subprocess.Popen(["openssl", "s_server", "-tls1_2", "-accept", f"{HOST}:{port}",
                                "-cert", pki.leaf[1], "-key", pki.leaf[0], "-cert_chain", pki.ca_pem,
                                "-brief"],
                               stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT)
    try:
        # s_server goes on accepting after the probe (a failed handshake)
        assert mrlib.wait_port(port, 5, proc=srv), out_path.read_text()
        c = procs.client(mrlib.client_toml(port, [{"name": "svc", "local": mrlib.free_port(), "token": "t"}],
                                           extra=tlsutil.client_tls_extra(pki.ca_pem)))
        # the control channel's Hello: tag 0 (control), version 1, sha256(name)
        hello = b"\x00\x00\x00\x00\x01" + hashlib.sha256(b"svc").digest()
        deadline = time.monotonic() + mrlib.slow(8)
        while time.monotonic() < deadline and hello not in out_path.read_bytes():
            time.sleep(0.05)
        text = out_path.read_bytes()
        assert b"Protocol version: TLSv1.2" in text, text
        assert hello in text, text
        assert "TLSv1.2" in tls_versions(c), c.tail()
        assert c.alive()
    finally:
        srv.kill()
        srv.wait(5)


# ==========================================================================
# failures: one clear line, in the right process; the client keeps retrying


def start_pair(procs, pki, server_p12=None, client_extra=None, client_env=None, server_extra=None):
    """A server and a client with one TCP service; returns (tunnel, client)."""
    t = mrlib.Tunnel(procs, [{"name": "svc", "local": mrlib.free_port()}],
                     server_extra={"extra": server_extra if server_extra is not None
                                   else tlsutil.server_tls_extra(server_p12 or pki.good_p12)},
                     client_extra={"extra": client_extra if client_extra is not None
                                   else tlsutil.client_tls_extra(pki.ca_pem)})
    t.start_server()
    c = procs.client(t.client_toml(), env=client_env)
    return t, c


def test_untrusted_self_signed(procs, pki):
    t, c = start_pair(procs, pki, server_p12=pki.self_p12, client_extra=tlsutil.client_tls_extra(),
                      client_env=tlsutil.no_system_roots(pki))
    lines = wait_lines(c, "set trusted_root to the CA that signed the server's certificate", n=2)
    assert "self-signed certificate" in lines[0], lines[0]
    assert "retrying in" in lines[0], lines[0]
    wait_lines(t.server, "the client does not trust our certificate")
    assert c.alive() and t.server.alive()


def test_expired(procs, pki):
    t, c = start_pair(procs, pki, server_p12=pki.expired_p12)
    lines = wait_lines(c, "certificate has expired", n=2)
    assert "renew the server's certificate" in lines[0], lines[0]
    wait_lines(t.server, "the client says our certificate has expired")
    assert c.alive() and t.server.alive()


def test_wrong_host_name_fixed_by_hostname(procs, pki, echo):
    """A certificate for DNS:localhost only, remote_addr 127.0.0.1: the
    client says which names the certificate has; hostname = "localhost"
    fixes it."""
    t, c = start_pair(procs, pki, server_p12=pki.localhost_only_p12)
    lines = wait_lines(c, "the certificate is for DNS:localhost, not 127.0.0.1; set hostname", n=2)
    assert "retrying in" in lines[0]
    wait_lines(t.server, "the client rejected our certificate")
    assert c.alive()
    c.stop()
    t.services[0]["local"] = echo.port
    c2 = procs.client(mrlib.client_toml(t.server_port, t.services,
                                        extra=tlsutil.client_tls_extra(pki.ca_pem, hostname="localhost")))
    t.wait_ready("svc")
    assert not clear_lines(c2, "certificate verify failed")


def test_plain_tcp_client_on_tls_server(procs, pki):
    t, c = start_pair(procs, pki, client_extra="")
    wait_lines(t.server, "the client is not speaking TLS")
    wait_lines(t.server, "is its transport.type \"tcp\"?")
    time.sleep(mrlib.slow(1.5))
    assert c.alive() and t.server.alive()


def test_tls_client_on_plain_tcp_server(procs, pki):
    t, c = start_pair(procs, pki, server_extra="")
    lines = wait_lines(c, "is its transport.type \"tls\"?", n=2)
    assert "retrying in" in lines[0], lines[0]
    assert c.alive() and t.server.alive()


def test_wrong_pkcs12_password_exits(procs, pki):
    port = mrlib.free_port()
    toml = mrlib.server_toml(port, [{"name": "svc", "port": mrlib.free_port(), "token": "t"}],
                             extra=tlsutil.server_tls_extra(pki.good_p12, password="not-it"))
    m = procs.server(toml)
    m.expect_exit = True
    rc = m.wait(mrlib.slow(5))
    assert rc is not None and rc != 0, f"rc={rc}\n{m.tail()}"
    lines = [ln for ln in m.stderr().splitlines() if " ERROR " in ln and "transport.tls" in ln]
    assert len(lines) == 1, m.stderr()
    assert "server.transport.tls.pkcs12_password: wrong password for " + pki.good_p12 in lines[0]


def test_missing_pkcs12_exits(procs, pki, tmp_path):
    missing = str(tmp_path / "nope.p12")
    toml = mrlib.server_toml(mrlib.free_port(), [{"name": "svc", "port": mrlib.free_port(), "token": "t"}],
                             extra=tlsutil.server_tls_extra(missing))
    m = procs.server(toml)
    m.expect_exit = True
    rc = m.wait(mrlib.slow(5))
    assert rc is not None and rc != 0
    lines = [ln for ln in m.stderr().splitlines() if " ERROR " in ln and "transport.tls" in ln]
    assert len(lines) == 1, m.stderr()
    assert f"server.transport.tls.pkcs12: cannot read {missing}: No such file or directory" in lines[0]
