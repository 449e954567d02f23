"""TCP forwarding through a real molerat server and client (protocol.md#p-tcp-pairing, protocol.md#p-tcp-relay,
protocol.md#p-interop-checklist items 5, 6). Every test runs with the splice relay and the copy relay."""
import asyncio
import hashlib
import os
import socket
import threading
import time

import pytest

import mrlib
from mrlib import HOST


def test_bulk_256mib_each_way(procs, relay, echo):
    """256 MiB (64 MiB under ASan) to an echo service and back at the same
    time; sha256 of what was sent equals sha256 of what came back."""
    total = mrlib.scale(256 << 20)
    t = mrlib.Tunnel(procs, [{"name": "bulk", "local": echo.port}], relay=relay).start()
    limit = mrlib.slow(60)

    s = socket.create_connection((HOST, t.svc_port["bulk"]), timeout=5)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sent_hash = hashlib.sha256()
    sent = [0]
    errs = []

    def sender():
        try:
            for blk in mrlib.block_stream(total, seed=1234):
                sent_hash.update(blk)
                s.sendall(blk)
                sent[0] += len(blk)
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            errs.append(e)

    t0 = time.monotonic()
    th = threading.Thread(target=sender, daemon=True)
    th.start()
    got_hash = hashlib.sha256()
    got = 0
    buf = bytearray(1 << 20)
    mv = memoryview(buf)
    try:
        while True:
            left = t0 + limit - time.monotonic()
            assert left > 0, f"bulk transfer not done after {limit}s: sent {sent[0]}, received {got}"
            s.settimeout(left)
            n = s.recv_into(buf)
            if n == 0:
                break
            got_hash.update(mv[:n])
            got += n
    finally:
        took = time.monotonic() - t0
        s.close()
        th.join(10)
    assert not errs, f"sender failed: {errs}"
    assert sent[0] == total
    assert got == total, f"received {got} bytes, sent {total}"
    assert got_hash.hexdigest() == sent_hash.hexdigest()
    print(f"bulk {relay}: {2 * total / took / 1e6:.0f} MB/s (both ways) in {took:.1f}s")
    assert t.server.alive() and t.client.alive()


def conc_payload(i):
    size = 1024 + (i * 7919) % (63 * 1024)
    return mrlib.payload(100000 + i, size)


def concurrent_echo(port, n, limit):
    """n visitors connect first, then all send their own payload (1-64 KiB,
    distinct sizes and content) and read the echo until EOF. Returns the
    list of (index, sent length, what came back) that went wrong."""

    async def main():
        connected = 0
        all_in = asyncio.Event()
        results = [None] * n

        async def one(i):
            nonlocal connected
            data = conc_payload(i)
            r, w = await asyncio.wait_for(asyncio.open_connection(HOST, port), 10)
            try:
                connected += 1
                if connected == n:
                    all_in.set()
                await asyncio.wait_for(all_in.wait(), 15)
                w.write(data)
                await w.drain()
                w.write_eof()
                got = await r.read()
                results[i] = (len(got), hashlib.sha256(got).hexdigest())
            finally:
                w.close()

        await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True), limit)
        return results

    results = asyncio.run(main())
    bad = []
    for i, r in enumerate(results):
        data = conc_payload(i)
        if r != (len(data), hashlib.sha256(data).hexdigest()):
            bad.append((i, len(data), r))
    return bad


def test_500_concurrent_connections(procs, relay, echo):
    """500 visitors at once, each with its own payload, each echoed whole."""
    n = 500
    t = mrlib.Tunnel(procs, [{"name": "many", "local": echo.port}], relay=relay).start()
    bad = concurrent_echo(t.svc_port["many"], n, mrlib.slow(40))
    assert not bad, f"{len(bad)} of {n} connections wrong, first: {bad[:5]}"
    assert echo.accepted >= n
    assert t.server.alive() and t.client.alive()


def test_burst_beyond_handshake_limit(procs, echo):
    """A burst of visitors asks for more data channels at once than the
    server lets handshake at a time (lowered to 4 here; 1,024 normally):
    a handshake whose Hello is already in its socket is never evicted, so
    the extra data channels wait in the listen backlog instead of being
    refused or cut, and every visitor is served (protocol.md#q30)."""
    n = 200
    t = mrlib.Tunnel(procs, [{"name": "burst", "local": echo.port}],
                     server_env={"MOLERAT_TEST_MAX_HANDSHAKES": "4"}).start()
    bad = concurrent_echo(t.svc_port["burst"], n, mrlib.slow(40))
    assert not bad, f"{len(bad)} of {n} connections wrong, first: {bad[:5]}\n{procs.dump()}"
    assert "handshakes in progress" in t.server.stderr(), "the limit was never reached"
    assert "refused" not in t.server.stderr()
    assert t.server.alive() and t.client.alive()


def test_half_close(procs, relay, services):
    """The visitor sends, shuts its write side, and still receives the whole
    reply of a service that answers only after EOF (protocol.md#p-tcp-relay)."""
    svc = services.reply(tag=b"H")
    t = mrlib.Tunnel(procs, [{"name": "half", "local": svc.port}], relay=relay)
    t.start(expect=svc.expect)
    port = t.svc_port["half"]
    for size in (3, 100_000, mrlib.scale(8 << 20)):
        data = mrlib.payload(size, size)
        s = socket.create_connection((HOST, port), timeout=5)
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            got = mrlib.recv_all(s, timeout=mrlib.slow(20))
        finally:
            s.close()
        want = svc.expect(data)
        assert len(got) == len(want), f"size {size}: got {len(got)} bytes, want {len(want)}"
        assert got[:33] == want[:33], f"size {size}: reply header {got[:33].hex()}"
        assert hashlib.sha256(got).digest() == hashlib.sha256(want).digest()


def test_local_service_down_then_up(procs, relay, services):
    """local_addr refuses: the visitor gets EOF (or a reset) without data;
    once the local service listens, the next visitor gets through."""
    local = mrlib.free_port()
    t = mrlib.Tunnel(procs, [{"name": "late", "local": local}], relay=relay)
    t.start_server()
    t.start_client()
    port = t.svc_port["late"]
    assert mrlib.wait_port(port, mrlib.slow(8)), f"service port never opened\n{procs.dump()}"

    for i in range(2):
        s = socket.create_connection((HOST, port), timeout=5)
        try:
            s.sendall(b"hello nobody %d" % i)
            got = mrlib.wait_closed(s, timeout=mrlib.slow(10))
        finally:
            s.close()
        assert got == b"", f"visitor {i} got {got!r} from a service that does not exist"
    assert t.server.alive() and t.client.alive()

    svc = services.echo(local)
    data = os.urandom(50_000)
    got = mrlib.roundtrip(port, data, timeout=mrlib.slow(10))
    assert mrlib.sha(got) == mrlib.sha(data), f"got {len(got)} bytes"
    assert svc.accepted == 1


def test_multiple_services(procs, relay, services):
    """Three services on one client/server pair, one of them using
    default_token, each reaching its own local service."""
    e1 = services.echo()
    r2 = services.reply(tag=b"2")
    r3 = services.reply(tag=b"3")
    svcs = [
        {"name": "alpha", "local": e1.port},
        {"name": "beta", "local": r2.port},
        {"name": "gamma", "local": r3.port, "token": None},
    ]
    t = mrlib.Tunnel(procs, svcs, relay=relay,
                     server_extra={"default_token": "shared-default"},
                     client_extra={"default_token": "shared-default"})
    t.start(ready=[])
    t.wait_ready("alpha")
    t.wait_ready("beta", expect=r2.expect)
    t.wait_ready("gamma", expect=r3.expect)
    for round_ in range(3):
        for name, expect in (("alpha", mrlib.echo_expect), ("beta", r2.expect), ("gamma", r3.expect)):
            data = mrlib.payload(f"{name}{round_}", 20_000 + round_)
            got = mrlib.roundtrip(t.svc_port[name], data, timeout=mrlib.slow(10))
            assert got == expect(data), f"{name} round {round_}: {got[:40]!r}"


def ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_loopback(), reason="no ::1 on this machine")
def test_ipv6_everywhere(procs, relay):
    """Server bind_addr, service bind_addr, client remote_addr and
    local_addr all on [::1]."""
    e = mrlib.EchoServer(host="::1")
    try:
        bind, svc = mrlib.free_port(), mrlib.free_port()
        procs.server(f'[server]\nbind_addr = "[::1]:{bind}"\n[server.services.v6]\n'
                     f'bind_addr = "[::1]:{svc}"\ntoken = "six"\n', env=mrlib.relay_env(relay))
        assert mrlib.wait_port(bind, mrlib.slow(5), host="::1"), procs.dump()
        procs.client(f'[client]\nremote_addr = "[::1]:{bind}"\n[client.services.v6]\n'
                     f'local_addr = "[::1]:{e.port}"\ntoken = "six"\n', env=mrlib.relay_env(relay))
        ok, last, _ = mrlib.wait_roundtrip(svc, mrlib.echo_expect, timeout=mrlib.slow(8), host="::1")
        assert ok, f"{last!r}\n{procs.dump()}"
        data = mrlib.payload(66, 3 << 20)
        got = mrlib.roundtrip(svc, data, timeout=mrlib.slow(20), host="::1")
        assert mrlib.sha(got) == mrlib.sha(data)
        assert mrlib.port_refuses(svc), "service bound on IPv4 too: expected [::1] only"
    finally:
        e.close()


def test_host_names_resolved(procs, relay):
    """remote_addr and local_addr given as host names: the client resolves
    them with c-ares inside its loop (remote_addr per control-channel
    attempt, local_addr per visitor) and the bytes still cross intact. The
    names are "localhost" (/etc/hosts: a loopback address on every machine)."""
    e = mrlib.EchoServer(host="127.0.0.1")
    try:
        bind, svc = mrlib.free_port(), mrlib.free_port()
        procs.server(f'[server]\nbind_addr = "127.0.0.1:{bind}"\n[server.services.named]\n'
                     f'bind_addr = "127.0.0.1:{svc}"\ntoken = "name"\n', env=mrlib.relay_env(relay))
        assert mrlib.wait_port(bind, mrlib.slow(5)), procs.dump()
        procs.client(f'[client]\nremote_addr = "localhost:{bind}"\n[client.services.named]\n'
                     f'local_addr = "localhost:{e.port}"\ntoken = "name"\n', env=mrlib.relay_env(relay))
        ok, last, _ = mrlib.wait_roundtrip(svc, mrlib.echo_expect, timeout=mrlib.slow(8))
        assert ok, f"{last!r}\n{procs.dump()}"
        for i in range(3):
            data = mrlib.payload(70 + i, 1 << 20)
            got = mrlib.roundtrip(svc, data, timeout=mrlib.slow(20))
            assert mrlib.sha(got) == mrlib.sha(data)
    finally:
        e.close()
