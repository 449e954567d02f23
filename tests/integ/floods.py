"""Flood helpers for the hostile-conditions tests: many idle connections,
a background re-opener that keeps N of them open, a burst of concurrent
visitors, and readings of a process's RSS, descriptors and TCP states from
/proc. Everything on 127.0.0.1, every wait bounded.

Flood sockets are closed with an RST (SO_LINGER 0): the test process then
keeps no TIME_WAIT entries and the ephemeral port range is not used up by
thousands of churned connections.
"""
import collections
import errno
import os
import selectors
import socket
import struct
import threading
import time

import mrlib

HOST = mrlib.HOST


def _nb_connect(port, host=HOST):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    err = s.connect_ex((host, port))
    if err not in (0, errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK):
        s.close()
        raise OSError(err, os.strerror(err))
    return s


def open_many(port, n, send=b"", timeout=10.0, host=HOST):
    """Opens n connections to port (non-blocking connects, so a full listen
    backlog does not serialise them) and sends `send` on each once it is
    connected. Returns the list of sockets that connected within timeout;
    the others are closed. Caller closes them (close_all)."""
    sel = selectors.DefaultSelector()
    pending = {}
    done = []
    try:
        for _ in range(n):
            try:
                s = _nb_connect(port, host)
            except OSError:
                continue
            pending[s] = True
            sel.register(s, selectors.EVENT_WRITE)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for key, _ in sel.select(min(0.2, max(0.0, deadline - time.monotonic()))):
                s = key.fileobj
                sel.unregister(s)
                del pending[s]
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    mrlib.rst_close(s)
                    continue
                if send:
                    try:
                        s.send(send)
                    except OSError:
                        mrlib.rst_close(s)
                        continue
                done.append(s)
        for s in pending:
            mrlib.rst_close(s)
    finally:
        sel.close()
    return done


def silent(port, n, **kw):
    """n connections that send nothing."""
    return open_many(port, n, b"", **kw)


def one_byte(port, n, byte=b"\x00", **kw):
    """n connections that send one byte and then nothing."""
    return open_many(port, n, byte, **kw)


def close_all(socks):
    for s in socks:
        mrlib.rst_close(s)
    del socks[:]


class Reopener:
    """Keeps n connections to port open for `duration` seconds (or until
    stop()), re-opening each one as it is closed or refused, in a
    background thread. Each connection sends `send` once connected (b"":
    silent). Re-opens are capped at max_rate per second so a server that
    resets at once does not make the test spin. Counters: opened,
    connected, closed_by_peer (EOF or reset), failed (connect errors),
    alive (now), max_alive."""

    def __init__(self, port, n, send=b"", duration=None, max_rate=5000, host=HOST, name=None):
        self.port = port
        self.host = host
        self.n = n
        self.send = send
        self.duration = duration
        self.max_rate = max_rate
        self.opened = 0
        self.connected = 0
        self.closed_by_peer = 0
        self.failed = 0
        self.max_alive = 0
        self.errors = []
        self._socks = {}          # sock -> "connecting" | "open"
        self._stop = threading.Event()
        self._sel = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self.started = None
        self.stopped = None
        self._thread = threading.Thread(target=self._run, name=name or f"reopener:{port}", daemon=True)

    def start(self):
        self.started = time.monotonic()
        self._thread.start()
        return self

    @property
    def alive(self):
        with self._lock:
            return sum(1 for v in self._socks.values() if v == "open")

    @property
    def in_flight(self):
        with self._lock:
            return len(self._socks)

    def stats(self):
        return {"opened": self.opened, "connected": self.connected, "closed_by_peer": self.closed_by_peer,
                "failed": self.failed, "alive": self.alive, "max_alive": self.max_alive}

    def wait_alive(self, k, timeout=10.0):
        """Waits until at least k connections are established."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.alive >= k:
                return True
            time.sleep(0.05)
        return self.alive >= k

    def _open_one(self):
        try:
            s = _nb_connect(self.port, self.host)
        except OSError as e:
            self.failed += 1
            if e.errno in (errno.EMFILE, errno.ENFILE):
                self.errors.append(e)
            return False
        self.opened += 1
        with self._lock:
            self._socks[s] = "connecting"
        self._sel.register(s, selectors.EVENT_WRITE)
        return True

    def _drop(self, s):
        try:
            self._sel.unregister(s)
        except (KeyError, ValueError):
            pass
        with self._lock:
            self._socks.pop(s, None)
        mrlib.rst_close(s)

    def _run(self):
        budget = float(self.max_rate)
        last = time.monotonic()
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if self.duration is not None and now - self.started >= self.duration:
                    break
                budget = min(float(self.max_rate), budget + (now - last) * self.max_rate)
                last = now
                with self._lock:
                    missing = self.n - len(self._socks)
                while missing > 0 and budget >= 1:
                    if not self._open_one():
                        break
                    missing -= 1
                    budget -= 1
                for key, ev in self._sel.select(0.05):
                    s = key.fileobj
                    with self._lock:
                        state = self._socks.get(s)
                    if state == "connecting":
                        if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                            self.failed += 1
                            self._drop(s)
                            continue
                        self.connected += 1
                        if self.send:
                            try:
                                s.send(self.send)
                            except OSError:
                                self.closed_by_peer += 1
                                self._drop(s)
                                continue
                        with self._lock:
                            self._socks[s] = "open"
                            alive = sum(1 for v in self._socks.values() if v == "open")
                        self.max_alive = max(self.max_alive, alive)
                        self._sel.modify(s, selectors.EVENT_READ)
                    elif state == "open":
                        try:
                            data = s.recv(4096)
                        except BlockingIOError:
                            continue
                        except OSError:
                            data = b""
                        if not data:
                            self.closed_by_peer += 1
                            self._drop(s)
                        # bytes sent back (an Ack, a nonce...) are ignored
        except Exception as e:  # surfaced through .errors
            self.errors.append(e)
        finally:
            with self._lock:
                socks = list(self._socks)
                self._socks.clear()
            for s in socks:
                try:
                    self._sel.unregister(s)
                except (KeyError, ValueError):
                    pass
                mrlib.rst_close(s)
            self._sel.close()
            self.stopped = time.monotonic()

    def stop(self, timeout=10.0):
        """Stops and RSTs every connection it holds. Bounded."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return self.stats()

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()


# --------------------------------------------------------------------------
# Visitors


class BurstResult:
    def __init__(self):
        self.ok = 0
        self.bad = []            # (index, what)
        self.latencies = []      # seconds, served visitors
        self.ends = []           # (index, ok, what, seconds) for every visitor that ended
        self.took = 0.0

    @property
    def n(self):
        return self.ok + len(self.bad)

    def record(self, i, ok, what, dt):
        """One visitor (index i) ended: served (ok) or not (what says why)."""
        self.ends.append((i, ok, what, dt))
        if ok:
            self.ok += 1
            self.latencies.append(dt)
        else:
            self.bad.append((i, what))

    def __repr__(self):
        lat = sorted(self.latencies)
        p = (lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan"))
        kinds = collections.Counter(w.split(":")[0] for _, w in self.bad)
        return (f"<burst {self.ok}/{self.n} ok in {self.took:.2f}s, p50={p(0.5):.3f}s max={p(1.0):.3f}s, "
                f"failures={dict(kinds)} first={self.bad[:3]}>")


def visitor(port, data, expect, timeout=5.0, connect_timeout=3.0, host=HOST):
    """One visitor: connect, send data, half-close, read to EOF; returns
    (ok, what, seconds)."""
    t0 = time.monotonic()
    try:
        got = mrlib.roundtrip(port, data, timeout=timeout, connect_timeout=connect_timeout, host=host)
    except socket.timeout as e:
        return False, f"timeout: {e}", time.monotonic() - t0
    except OSError as e:
        return False, f"{type(e).__name__}: {e}", time.monotonic() - t0
    dt = time.monotonic() - t0
    want = expect(data)
    if got == want:
        return True, "", dt
    if not got:
        return False, "closed: no byte", dt
    return False, f"wrong: {len(got)} bytes, sha {mrlib.sha(got)[:12]} != {mrlib.sha(want)[:12]}", dt


def visitor_burst(port, n, size=1024, expect=mrlib.echo_expect, timeout=5.0, connect_timeout=3.0,
                  seed=0, host=HOST, stagger=0.0):
    """n concurrent visitors (a thread each), each sending its own random
    payload of `size` bytes and checking the reply (expect(data)). All start
    together (a barrier). Returns a BurstResult."""
    res = BurstResult()
    lock = threading.Lock()
    barrier = threading.Barrier(n + 1)

    def one(i):
        data = mrlib.payload(seed * 100003 + i, size)
        try:
            barrier.wait(10)
        except threading.BrokenBarrierError:
            pass
        if stagger:
            time.sleep(stagger * i)
        ok, what, dt = visitor(port, data, expect, timeout, connect_timeout, host)
        with lock:
            res.record(i, ok, what, dt)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    try:
        barrier.wait(10)
    except threading.BrokenBarrierError:
        pass
    for t in threads:
        t.join(timeout + connect_timeout + stagger * n + 5)
    res.took = time.monotonic() - t0
    with lock:
        missing = n - res.ok - len(res.bad)
    for _ in range(missing):
        res.bad.append((-1, "hung: thread still running"))
    return res


def visitors_in_row(port, n, size=256, expect=mrlib.echo_expect, timeout=3.0, seed=0, stop_after=None):
    """n visitors one after another; returns a BurstResult. stop_after: give
    up after that many failures (the rest are not attempted; res.n says how
    many were)."""
    res = BurstResult()
    t0 = time.monotonic()
    for i in range(n):
        if stop_after is not None and len(res.bad) >= stop_after:
            break
        ok, what, dt = visitor(port, mrlib.payload(seed * 100003 + i, size), expect, timeout)
        res.record(i, ok, what, dt)
    res.took = time.monotonic() - t0
    return res


def hold_visitors(port, n, timeout=10.0, host=HOST):
    """n visitors that connect and hold (send nothing): the sockets."""
    return open_many(port, n, b"", timeout=timeout, host=host)


# --------------------------------------------------------------------------
# Process readings


def rss_kib(pid):
    """VmRSS of pid in KiB (None when the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def fd_count(pid):
    """Open descriptors of pid (None when the process is gone)."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def socket_inodes(pid):
    """The inodes of pid's sockets."""
    out = set()
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for n in names:
        try:
            t = os.readlink(f"/proc/{pid}/fd/{n}")
        except OSError:
            continue
        if t.startswith("socket:["):
            out.add(int(t[8:-1]))
    return out


TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
              6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING"}


def tcp_sockets(pid):
    """pid's TCP sockets from /proc/net/tcp{,6}: list of dicts with local
    and remote (host, port), state name."""
    inodes = socket_inodes(pid)
    out = []
    for path in (f"/proc/{pid}/net/tcp", f"/proc/{pid}/net/tcp6"):
        try:
            with open(path) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) < 10:
                continue
            inode = int(parts[9])
            if inode == 0 or inode not in inodes:
                continue
            out.append({"local": _hexaddr(parts[1]), "remote": _hexaddr(parts[2]),
                        "state": TCP_STATES.get(int(parts[3], 16), parts[3])})
    return out


def _hexaddr(s):
    h, p = s.split(":")
    port = int(p, 16)
    if len(h) == 8:
        host = socket.inet_ntop(socket.AF_INET, struct.pack("<I", int(h, 16)))
    else:
        host = h
    return host, port


def tcp_states(pid, local_port=None, remote_port=None):
    """Counter of pid's TCP socket states, optionally only those with that
    local port (e.g. a service's bind port: the visitor sockets) or remote
    port."""
    c = collections.Counter()
    for s in tcp_sockets(pid):
        if local_port is not None and s["local"][1] != local_port:
            continue
        if remote_port is not None and s["remote"][1] != remote_port:
            continue
        c[s["state"]] += 1
    return c


def wait_for(cond, timeout, step=0.1):
    """Polls cond() until it returns a true value or timeout; returns
    (value, seconds)."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    v = cond()
    while not v and time.monotonic() < deadline:
        time.sleep(step)
        v = cond()
    return v, time.monotonic() - t0


def settle(read, timeout=5.0, step=0.25, stable=4):
    """Reads read() every step until the same value comes `stable` times in
    a row (or timeout); returns the last value."""
    deadline = time.monotonic() + timeout
    last = read()
    same = 1
    while time.monotonic() < deadline and same < stable:
        time.sleep(step)
        v = read()
        same = same + 1 if v == last else 1
        last = v
    return last


def log_lines(m, since=0):
    """Lines of molerat process m's stderr from line index `since`."""
    return m.stderr().splitlines()[since:]


# --------------------------------------------------------------------------
# A local echo service for thousands of connections (one thread, a selector)


class SelectEcho:
    """Echoes every byte, for many connections at once on one thread (the
    EchoServer in mrlib runs a thread and a 1 MiB buffer per connection).
    On EOF it shuts its write side once everything is echoed and closes."""

    def __init__(self, port=0):
        self.sock = mrlib.listen_socket(port, backlog=4096)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.errors = []
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.sock, selectors.EVENT_READ, None)
        self._out = {}
        self._eof = set()
        self._stop = False
        self._t = threading.Thread(target=self._run, name=f"select-echo:{self.port}", daemon=True)
        self._t.start()

    @property
    def conns(self):
        return len(self._out)

    def _run(self):
        try:
            while not self._stop:
                for key, ev in self._sel.select(0.2):
                    s = key.fileobj
                    if s is self.sock:
                        for _ in range(256):
                            try:
                                c, _ = self.sock.accept()
                            except (BlockingIOError, InterruptedError):
                                break
                            except OSError as e:
                                self.errors.append(e)
                                break
                            c.setblocking(False)
                            self.accepted += 1
                            self._out[c] = bytearray()
                            self._sel.register(c, selectors.EVENT_READ, None)
                        continue
                    self._io(s, ev)
        except Exception as e:
            self.errors.append(e)
        finally:
            mrlib.close_quietly(*self._out)
            self._out.clear()

    def _drop(self, c):
        try:
            self._sel.unregister(c)
        except (KeyError, ValueError):
            pass
        self._out.pop(c, None)
        self._eof.discard(c)
        mrlib.close_quietly(c)

    def _io(self, c, ev):
        buf = self._out.get(c)
        if buf is None:
            return
        if ev & selectors.EVENT_READ and c not in self._eof:
            try:
                d = c.recv(65536)
            except BlockingIOError:
                d = None
            except OSError:
                self._drop(c)
                return
            if d == b"":
                self._eof.add(c)
            elif d:
                buf += d
        if buf:
            try:
                n = c.send(buf)
                del buf[:n]
            except BlockingIOError:
                pass
            except OSError:
                self._drop(c)
                return
        if c in self._eof and not buf:
            try:
                c.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            self._drop(c)
            return
        want = (0 if c in self._eof or len(buf) > (1 << 20) else selectors.EVENT_READ) | \
            (selectors.EVENT_WRITE if buf else 0)
        self._sel.modify(c, want or selectors.EVENT_READ, None)

    def close(self):
        self._stop = True
        self._t.join(5)
        mrlib.close_quietly(self.sock, self._sel)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def hold_echoed(port, n, size=64, timeout=20.0, seed=1, host=HOST):
    """n visitors that each send one message of `size` bytes and read its
    echo, then stay open. Returns (sockets, ok_count, bad list). The
    caller closes the sockets (close_all)."""
    socks = open_many(port, n, b"", timeout=timeout, host=host)
    msgs = {s: mrlib.payload(seed * 1000003 + i, size) for i, s in enumerate(socks)}
    got = {s: bytearray() for s in socks}
    sel = selectors.DefaultSelector()
    bad = []
    ok = 0
    try:
        for s in socks:
            try:
                s.send(msgs[s])
            except OSError as e:
                bad.append(f"send: {e}")
                continue
            sel.register(s, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        waiting = len(sel.get_map())
        while waiting and time.monotonic() < deadline:
            for key, _ in sel.select(0.2):
                s = key.fileobj
                try:
                    d = s.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    d = b""
                if not d:
                    bad.append(f"closed after {len(got[s])} bytes")
                    sel.unregister(s)
                    waiting -= 1
                    continue
                got[s] += d
                if len(got[s]) >= size:
                    sel.unregister(s)
                    waiting -= 1
                    if bytes(got[s]) == msgs[s]:
                        ok += 1
                    else:
                        bad.append("wrong bytes")
        if waiting:
            bad.extend(["timeout"] * waiting)
    finally:
        sel.close()
    return socks, ok, bad
