"""Helpers for molerat's integration tests: ports, processes, configs, local
services (echo, reply-after-EOF) and small socket utilities.

Everything here talks to 127.0.0.1 only, and every wait is bounded.
"""
import atexit
import errno
import hashlib
import json
import os
import random
import re
import signal
import socket
import struct
import subprocess
import threading
import time

HOST = "127.0.0.1"

# --------------------------------------------------------------------------
# Environment


def molerat_bin():
    return os.environ.get("MOLERAT_BIN", "/work/main/build/molerat")


def molerat_src():
    return os.environ.get("MOLERAT_SRC", "/work/main")


def molerat_shared():
    return os.environ.get("MOLERAT_SHARED", "/work/shared")


_asan_cache = None


def is_asan():
    """MOLERAT_ASAN=1, or a binary linked with AddressSanitizer."""
    global _asan_cache
    if os.environ.get("MOLERAT_ASAN", "") not in ("", "0"):
        return True
    if _asan_cache is None:
        _asan_cache = False
        try:
            with open(molerat_bin(), "rb") as f:
                _asan_cache = b"__asan_init" in f.read()
        except OSError:
            pass
    return _asan_cache


def scale(n):
    """Sizes shrink by 4 under ASan."""
    return n // 4 if is_asan() else n


def slow(t):
    """Time limits grow by 3 under ASan."""
    return t * 3 if is_asan() else t


# --------------------------------------------------------------------------
# Ports

_used_ports = set()
_port_lock = threading.Lock()


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago.

    Ports come from outside the kernel's ephemeral range when possible, so
    the thousands of outgoing connections a test makes can never be handed
    one of them as a source port between allocation and use. A port is
    checked by binding it (EADDRINUSE: try another one) and never handed
    out twice in one session."""
    lo, hi = _ephemeral_range()
    if lo > 12000:
        cand_lo, cand_hi = 10000, lo - 1
    elif hi < 60000:
        cand_lo, cand_hi = hi + 1, 65000
    else:
        cand_lo, cand_hi = 0, 0
    with _port_lock:
        for _ in range(2000):
            if cand_hi > cand_lo:
                port = random.randint(cand_lo, cand_hi)
            else:
                port = 0
            if port in _used_ports:
                continue
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((HOST, port))
                port = s.getsockname()[1]
            except OSError as e:
                if e.errno == errno.EADDRINUSE:
                    continue
                raise
            finally:
                s.close()
            if port in _used_ports:
                continue
            _used_ports.add(port)
            return port
    raise RuntimeError("no free port found")


def listen_socket(port=0, backlog=1024, host=HOST):
    """A listening TCP socket on 127.0.0.1 or ::1 (port 0: any)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(20):
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            s.close()
            if e.errno == errno.EADDRINUSE and port == 0:
                continue
            raise
        s.listen(backlog)
        return s
    raise RuntimeError("cannot bind a listener")


def wait_port(port, timeout=5.0, proc=None, host=HOST):
    """Waits until 127.0.0.1:port accepts a TCP connection (the probe
    connection is closed at once). Returns True, or False at the timeout or
    when proc has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def port_refuses(port, timeout=1.0):
    """True when a connect to 127.0.0.1:port is refused."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


# --------------------------------------------------------------------------
# Socket helpers


def recv_exact(sock, n, timeout=5.0):
    """Reads exactly n bytes. Raises EOFError (with .data) on early EOF or
    reset, socket.timeout when the whole read takes longer than timeout."""
    buf = bytearray()
    deadline = time.monotonic() + timeout
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout(f"recv_exact: {len(buf)}/{n} bytes after {timeout}s: {bytes(buf).hex()}")
        sock.settimeout(left)
        try:
            chunk = sock.recv(n - len(buf))
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            e = EOFError(f"EOF after {len(buf)}/{n} bytes: {bytes(buf).hex()}")
            e.data = bytes(buf)
            raise e
        buf += chunk
    return bytes(buf)


def recv_all(sock, timeout=10.0, limit=1 << 30):
    """Reads until EOF (a reset counts as EOF). Raises socket.timeout."""
    buf = bytearray()
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout(f"recv_all: no EOF after {timeout}s ({len(buf)} bytes)")
        sock.settimeout(left)
        try:
            chunk = sock.recv(1 << 20)
        except ConnectionResetError:
            return bytes(buf)
        if not chunk:
            return bytes(buf)
        buf += chunk
        if len(buf) > limit:
            raise AssertionError("recv_all: more than %d bytes" % limit)


def wait_closed(sock, timeout=5.0):
    """Waits for EOF or reset on sock and returns whatever bytes came before
    it. Raises socket.timeout if the peer keeps the connection open."""
    return recv_all(sock, timeout=timeout)


def sha(b):
    return hashlib.sha256(b).hexdigest()


def payload(seed, size):
    return random.Random(seed).randbytes(size)


def roundtrip(port, data, timeout=10.0, connect_timeout=3.0, host=HOST):
    """Visitor: connects to 127.0.0.1:port, sends data, shuts its write side
    and reads until EOF. Sending runs in a thread so large payloads cannot
    deadlock against an echo. Returns the bytes read."""
    s = socket.create_connection((host, port), timeout=connect_timeout)
    err = []

    def sender():
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            err.append(e)

    try:
        t = threading.Thread(target=sender, daemon=True)
        t.start()
        got = recv_all(s, timeout=timeout)
        t.join(timeout)
        return got
    finally:
        s.close()


def wait_roundtrip(port, expect, data=None, timeout=5.0, attempt_timeout=2.0, host=HOST):
    """Retries roundtrip() until the reply equals expect(data) (or the
    deadline). Returns (ok, last_reply_or_error, seconds_taken)."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    last = None
    n = 0
    while time.monotonic() < deadline:
        n += 1
        d = data if data is not None else b"probe-%d-" % n + os.urandom(16)
        try:
            got = roundtrip(port, d, timeout=min(attempt_timeout, max(0.2, deadline - time.monotonic())),
                            connect_timeout=1.0, host=host)
            if got == expect(d):
                return True, got, time.monotonic() - t0
            last = got
        except (OSError, socket.timeout) as e:
            last = e
        time.sleep(0.05)
    return False, last, time.monotonic() - t0


# --------------------------------------------------------------------------
# Local services run in the test process


class _TcpService:
    """Accepts on 127.0.0.1 and runs handle(conn) in a thread per
    connection. close() stops everything and joins with bounded waits."""

    def __init__(self, port=0, host=HOST):
        self.sock = listen_socket(port, host=host)
        self.port = self.sock.getsockname()[1]
        self.conns = set()
        self.accepted = 0
        self.lock = threading.Lock()
        self.closing = False
        self.errors = []
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    def _accept_loop(self):
        self.sock.settimeout(0.2)
        while not self.closing:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            c.settimeout(120)
            with self.lock:
                self.conns.add(c)
                self.accepted += 1
            threading.Thread(target=self._run, args=(c,), daemon=True).start()

    def _run(self, c):
        try:
            self.handle(c)
        except (OSError, socket.timeout) as e:
            if not self.closing:
                self.errors.append(e)
        finally:
            with self.lock:
                self.conns.discard(c)
            try:
                c.close()
            except OSError:
                pass

    def handle(self, c):
        raise NotImplementedError

    def close(self):
        self.closing = True
        try:
            self.sock.close()
        except OSError:
            pass
        self.thread.join(2)
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


class EchoServer(_TcpService):
    """Echoes every byte; on EOF shuts its write side and closes."""

    def handle(self, c):
        buf = bytearray(1 << 20)
        mv = memoryview(buf)
        while True:
            try:
                n = c.recv_into(buf)
            except ConnectionResetError:
                return
            if n == 0:
                break
            c.sendall(mv[:n])
        try:
            c.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def echo_expect(d):
    return d


class ReplyAfterEofServer(_TcpService):
    """Reads until EOF, then sends tag || sha256(data) || data and closes."""

    def __init__(self, port=0, tag=b"R", host=HOST):
        self.tag = tag
        super().__init__(port, host)

    def handle(self, c):
        buf = bytearray()
        while True:
            try:
                chunk = c.recv(1 << 20)
            except ConnectionResetError:
                return
            if not chunk:
                break
            buf += chunk
        c.sendall(self.reply(bytes(buf)))
        c.shutdown(socket.SHUT_WR)

    def reply(self, data):
        return self.tag + hashlib.sha256(data).digest() + data

    def expect(self, data):
        return self.reply(data)


# --------------------------------------------------------------------------
# Configs


def q(s):
    """A TOML basic string."""
    return json.dumps(s)


def hostport(host, port):
    """host:port, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def server_toml(bind_port, services, heartbeat_interval=None, default_token=None, extra=""):
    """services: list of dicts with name, port, and optional token, type,
    host (of bind_addr; 127.0.0.1 by default)."""
    out = ["[server]", f"bind_addr = {q(hostport(HOST, bind_port))}"]
    if default_token is not None:
        out.append(f"default_token = {q(default_token)}")
    if heartbeat_interval is not None:
        out.append(f"heartbeat_interval = {heartbeat_interval}")
    out.append(extra)
    out.append("[server.services]")
    for s in services:
        out.append(f"[server.services.{q(s['name'])}]")
        out.append(f"bind_addr = {q(hostport(s.get('host', HOST), s['port']))}")
        if s.get("token") is not None:
            out.append(f"token = {q(s['token'])}")
        if s.get("type"):
            out.append(f"type = {q(s['type'])}")
    return "\n".join(out) + "\n"


def client_toml(server_port, services, heartbeat_timeout=None, retry_interval=None,
                default_token=None, extra=""):
    """services: list of dicts with name, local (port), optional token, type,
    local_host (of local_addr; 127.0.0.1 by default)."""
    out = ["[client]", f"remote_addr = {q(hostport(HOST, server_port))}"]
    if default_token is not None:
        out.append(f"default_token = {q(default_token)}")
    if heartbeat_timeout is not None:
        out.append(f"heartbeat_timeout = {heartbeat_timeout}")
    if retry_interval is not None:
        out.append(f"retry_interval = {retry_interval}")
    out.append(extra)
    out.append("[client.services]")
    for s in services:
        out.append(f"[client.services.{q(s['name'])}]")
        out.append(f"local_addr = {q(hostport(s.get('local_host', HOST), s['local']))}")
        if s.get("token") is not None:
            out.append(f"token = {q(s['token'])}")
        if s.get("type"):
            out.append(f"type = {q(s['type'])}")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------
# molerat processes

_live = []

try:
    import ctypes
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:
    _libc = None


def _die_with_parent():
    """In the child before exec: SIGKILL when the test process dies, so a
    pytest killed by a ctest timeout leaves no molerat behind."""
    if _libc is not None:
        _libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
_live_lock = threading.Lock()


def _kill_leftovers():
    with _live_lock:
        procs = list(_live)
    for p in procs:
        if p.poll() is None:
            try:
                p.kill()
                p.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass


atexit.register(_kill_leftovers)


class Molerat:
    """One molerat process. stdout and stderr go to files in the test's
    tmp_path. stop() is bounded: SIGINT, wait, then SIGKILL."""

    def __init__(self, args, workdir, name, env_extra=None, cwd=None):
        self.args = [molerat_bin()] + list(args)
        self.name = name
        self.err_path = os.path.join(workdir, f"{name}.stderr")
        self.out_path = os.path.join(workdir, f"{name}.stdout")
        env = dict(os.environ)
        env.setdefault("MOLERAT_LOG", os.environ.get("MOLERAT_TEST_LOG", "debug"))
        env.pop("MOLERAT_RELAY", None)
        for k, v in (env_extra or {}).items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        self.env = env
        self.expect_exit = False   # the test itself checks how it ends
        self.rc = None
        with open(self.out_path, "ab") as fo, open(self.err_path, "ab") as fe:
            self.p = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=fo, stderr=fe,
                                      env=env, cwd=cwd, start_new_session=True,
                                      preexec_fn=_die_with_parent)
        with _live_lock:
            _live.append(self.p)
        self.started = time.monotonic()

    @property
    def pid(self):
        return self.p.pid

    def poll(self):
        return self.p.poll()

    def alive(self):
        return self.p.poll() is None

    def wait(self, timeout):
        """Exit status, or None if still running after timeout."""
        try:
            self.rc = self.p.wait(timeout)
            return self.rc
        except subprocess.TimeoutExpired:
            return None

    def send_signal(self, sig):
        if self.p.poll() is None:
            try:
                os.kill(self.p.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, sig=signal.SIGINT, timeout=5.0):
        """Sends sig and waits; kills after timeout. Returns (rc, killed)."""
        killed = False
        if self.p.poll() is None:
            self.send_signal(sig)
            try:
                self.p.wait(slow(timeout))
            except subprocess.TimeoutExpired:
                killed = True
                self.p.kill()
                try:
                    self.p.wait(5)
                except subprocess.TimeoutExpired:
                    pass
        self.rc = self.p.poll()
        with _live_lock:
            if self.p in _live:
                _live.remove(self.p)
        return self.rc, killed

    def stderr(self):
        try:
            with open(self.err_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stdout(self):
        try:
            with open(self.out_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def tail(self, n=40):
        lines = self.stderr().splitlines()
        return "\n".join(lines[-n:])


def relay_env(relay):
    """The environment for a relay mode id: 'splice' leaves MOLERAT_RELAY
    unset (the default path), 'copy' forces the buffered relay."""
    if relay == "copy":
        return {"MOLERAT_RELAY": "copy"}
    return {"MOLERAT_RELAY": None}


class Procs:
    """Factory fixture object: starts molerat processes in tmp_path and at
    teardown stops them all (SIGINT) and reports the ones that did not exit
    0 (a crash, a sanitizer report, a hang)."""

    def __init__(self, tmp_path):
        self.dir = str(tmp_path)
        self.procs = []
        self.count = 0

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def start(self, args, name=None, env=None, cwd=None):
        self.count += 1
        name = name or f"molerat{self.count}"
        m = Molerat(args, self.dir, f"{self.count:02d}-{name}", env, cwd=cwd)
        self.procs.append(m)
        return m

    def server(self, toml, name="server", env=None, flag="--server"):
        path = self.write(f"{name}-{self.count + 1}.toml", toml)
        args = ([flag] if flag else []) + [path]
        return self.start(args, name, env)

    def client(self, toml, name="client", env=None, flag="--client"):
        path = self.write(f"{name}-{self.count + 1}.toml", toml)
        args = ([flag] if flag else []) + [path]
        return self.start(args, name, env)

    def cleanup(self):
        problems = []
        for m in self.procs:
            was_running = m.alive()
            rc, killed = m.stop()
            if m.expect_exit:
                continue
            if killed:
                problems.append(f"{m.name}: did not exit within {slow(5)}s of SIGINT (killed)\n{m.tail()}")
            elif was_running and rc != 0:
                problems.append(f"{m.name}: exit status {rc} after SIGINT\n{m.tail()}")
            elif not was_running and rc != 0:
                problems.append(f"{m.name}: died early with status {rc}\n{m.tail()}")
        return problems

    def dump(self):
        parts = []
        for m in self.procs:
            parts.append(f"----- {m.name} ({' '.join(m.args[1:])}) rc={m.poll()} -----\n{m.tail(60)}")
        return "\n".join(parts)


class Tunnel:
    """A molerat server and client on loopback with a set of services.

    services: list of dicts: name, local (local service port), optional
    token (default: 'tok-' + name), type. Service ports on the server are
    allocated here (svc_port[name])."""

    def __init__(self, procs, services, relay="splice", server_extra=None, client_extra=None,
                 server_env=None):
        self.procs = procs
        self.relay = relay
        self.server_env = server_env or {}
        self.services = [dict(s) for s in services]
        for s in self.services:
            s.setdefault("token", "tok-" + s["name"])
            s["port"] = free_port()
        self.svc_port = {s["name"]: s["port"] for s in self.services}
        self.server_extra = server_extra or {}
        self.client_extra = client_extra or {}
        self.server_port = None
        self.server = None
        self.client = None

    def server_toml(self):
        return server_toml(self.server_port, self.services, **self.server_extra)

    def client_toml(self, services=None):
        return client_toml(self.server_port, services or self.services, **self.client_extra)

    def start_server(self, timeout=5.0, keep_port=False):
        """Starts the server and waits until bind_addr accepts. If the
        server exits at once (a port race), retries on fresh ports."""
        for attempt in range(3):
            if self.server_port is None or (attempt > 0 and not keep_port):
                self.server_port = free_port()
            m = self.procs.server(self.server_toml(), env={**relay_env(self.relay), **self.server_env})
            if wait_port(self.server_port, slow(timeout), proc=m):
                self.server = m
                return m
            if m.alive():
                raise AssertionError(f"server does not listen on {self.server_port} after {slow(timeout)}s\n{m.tail()}")
            m.expect_exit = True
            if "in use" not in m.stderr().lower():
                raise AssertionError(f"server exited with {m.poll()}\n{m.tail()}")
            for s in self.services:
                s["port"] = free_port()
            self.svc_port = {s["name"]: s["port"] for s in self.services}
        raise AssertionError("server could not bind after 3 attempts")

    def start_client(self, services=None, name="client"):
        m = self.procs.client(self.client_toml(services), name=name, env=relay_env(self.relay))
        self.client = m
        return m

    def wait_ready(self, name, expect=echo_expect, timeout=8.0):
        ok, last, took = wait_roundtrip(self.svc_port[name], expect, timeout=slow(timeout))
        assert ok, (f"service {name!r} on port {self.svc_port[name]} not working after "
                    f"{slow(timeout)}s: last={last!r}\n{self.procs.dump()}")
        return took

    def start(self, ready=None, expect=echo_expect):
        self.start_server()
        self.start_client()
        for name in (ready if ready is not None else [s["name"] for s in self.services]):
            self.wait_ready(name, expect)
        return self


# --------------------------------------------------------------------------
# Bulk data


def block_stream(total, seed, block=1 << 20):
    """Yields total bytes in blocks of `block`: one random block repeated,
    with the block counter and offset written every 64 KiB so no two blocks
    (and no two 64 KiB pieces) are equal."""
    base = random.Random(seed).randbytes(block)
    i = 0
    sent = 0
    while sent < total:
        b = bytearray(base)
        for off in range(0, block, 65536):
            struct.pack_into("<QQ", b, off, i, off)
        n = min(block, total - sent)
        yield memoryview(b)[:n]
        sent += n
        i += 1


PROTO_VERSION = 1


def hello(tag, digest, version=PROTO_VERSION):
    return struct.pack("<I", tag) + bytes([version]) + digest


def digest(s):
    if isinstance(s, str):
        s = s.encode()
    return hashlib.sha256(s).digest()


def session_key(token, nonce):
    return hashlib.sha256(token.encode() + nonce).digest()


ACK_OK = b"\x00\x00\x00\x00"
CREATE_DATA_CHANNEL = b"\x00\x00\x00\x00"


class FakeServer:
    """The server side of the protocol written from docs/protocol.md, listening on
    127.0.0.1 for a molerat client; the tests drive it message by message."""

    def __init__(self):
        self.sock = listen_socket()
        self.port = self.sock.getsockname()[1]

    def accept(self, timeout=5.0):
        """The next connection (TCP_NODELAY, 5 s timeout) and when it came."""
        self.sock.settimeout(timeout)
        c, _ = self.sock.accept()
        c.settimeout(5)
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return c, time.monotonic()

    def handshake(self, name, token, ack=ACK_OK):
        """Accepts a control channel and runs the server side; returns
        (sock, nonce, key)."""
        c, _ = self.accept(slow(5))
        h = recv_exact(c, 37)
        assert h == hello(0, digest(name)), f"client Hello {h.hex()}"
        nonce = os.urandom(32)
        c.sendall(hello(0, nonce))
        auth = recv_exact(c, 32)
        key = session_key(token, nonce)
        assert auth == key, f"Auth {auth.hex()}, expected {key.hex()}"
        c.sendall(ack)
        return c, nonce, key

    def data_channel(self, ctl, key):
        """Sends CreateDataChannel on ctl, accepts the data channel and
        checks its DataChannelHello carries the session key."""
        ctl.sendall(CREATE_DATA_CHANNEL)
        d, _ = self.accept(slow(5))
        h = recv_exact(d, 37)
        assert h == hello(1, key), f"DataChannelHello {h.hex()}"
        return d

    def close(self):
        self.sock.close()


FILE_LINE_COL = re.compile(r":(\d+):(\d+):")


def close_quietly(*objs):
    """Closes each of objs (sockets, selectors; None is skipped), ignoring
    the errors of a close that has nothing left to do (OSError, and the
    RuntimeError of a selector closed from another thread)."""
    for o in objs:
        if o is None:
            continue
        try:
            o.close()
        except (OSError, RuntimeError):
            pass


def rst_close(s):
    """Closes s with an RST instead of a FIN (SO_LINGER on, timeout 0);
    None is skipped."""
    if s is None:
        return
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    close_quietly(s)
