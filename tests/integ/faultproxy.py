"""A TCP proxy that the tests control, for fault injection between a molerat
client and its server (the client's remote_addr points at the proxy, the
proxy forwards to the server's bind_addr).

One thread runs a selector loop; the test thread changes modes at run time,
for new connections and for existing ones (all of them or a chosen set):

  pass        forward both ways (half-close and reset are passed on)
  blackhole   stop forwarding both ways, no FIN, no RST: the sockets stay
              open and are neither read nor written (the peers' kernel
              buffers fill, as on a path that lost every packet). A
              connection accepted in this mode is not connected upstream
              until forwarding resumes (a SYN that is retransmitted until
              the path comes back).
  drain       a blackhole that reads and discards what arrives: both peers
              can keep writing, nothing gets through, EOFs are swallowed.
  delay       forward every chunk `delay_ms` after it was read.
  bytewise    forward one byte per send (TCP_NODELAY, `gap_ms` apart).
  reset       RST every connection (SO_LINGER 0, then close), existing
              ones when the mode is set and new ones as they come.

Plus one-shot actions: reset(which) and reset_idle(ms, which) send RSTs to
both ends of chosen connections, and counters (accepted, alive, bytes each
way). `which` is a predicate on Conn (index: accept order from 0, age,
idle, bytes up/down). Everything binds 127.0.0.1 and every wait is bounded;
close() stops the thread and closes every socket.

Example:
    with FaultProxy(server_port) as fp:
        ... client remote_addr = 127.0.0.1:fp.port ...
        fp.set_mode("blackhole"); ...; fp.set_mode("pass")
        fp.reset_idle(500, which=lambda c: c.index > 0)
"""
import collections
import errno
import queue
import selectors
import socket
import threading
import time

import mrlib

HOST = "127.0.0.1"
MODES = ("pass", "blackhole", "drain", "delay", "bytewise", "reset")
CHUNK = 65536
BUF_LIMIT = 1 << 20          # per direction: stop reading above this


class _Dir:
    """One direction of a connection: bytes read from src, queued for dst."""

    def __init__(self):
        self.q = collections.deque()   # (release_time, bytes)
        self.queued = 0
        self.eof = False               # src reached EOF
        self.shut = False              # dst got its SHUT_WR
        self.bytes = 0                 # bytes written to dst
        self.next_byte_at = 0.0        # bytewise pacing


class Conn:
    """One proxied connection. down: the accepted socket (the client side);
    up: the socket to the target (the server side). up_dir: bytes from down
    to up; down_dir: bytes from up to down."""

    def __init__(self, proxy, index, down, mode, params):
        self.proxy = proxy
        self.index = index
        self.down = down
        self.up = None
        self.connecting = False
        self.mode = mode
        self.params = dict(params)
        self.accepted_at = time.monotonic()
        self.last_activity = self.accepted_at
        self.up_dir = _Dir()
        self.down_dir = _Dir()
        self.closed = False
        self.how_closed = None
        self.peer = None
        try:
            self.peer = down.getpeername()
        except OSError:
            pass

    # read-only views for predicates
    @property
    def age(self):
        return time.monotonic() - self.accepted_at

    @property
    def idle(self):
        """Seconds since a byte last moved (or was read) either way."""
        return time.monotonic() - self.last_activity

    @property
    def bytes_up(self):
        return self.up_dir.bytes

    @property
    def bytes_down(self):
        return self.down_dir.bytes

    def __repr__(self):
        return (f"<Conn #{self.index} {self.mode} up={self.bytes_up} down={self.bytes_down} "
                f"age={self.age:.1f}s idle={self.idle:.1f}s{' closed:' + str(self.how_closed) if self.closed else ''}>")


class FaultProxy:
    """Listens on 127.0.0.1:port (free by default) and forwards to
    target_host:target_port. Thread-safe control methods; close() is
    bounded."""

    def __init__(self, target_port, target_host=HOST, port=0, mode="pass", **params):
        self.target = (target_host, target_port)
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((HOST, port))
        self.lsock.listen(1024)
        self.lsock.setblocking(False)
        self.port = self.lsock.getsockname()[1]
        self.mode = mode
        self.params = {"delay_ms": 100, "gap_ms": 1}
        self.params.update(params)
        self.conns = []             # every connection ever accepted (Conn)
        self.accepted = 0
        self.refused_upstream = 0
        self.resets_sent = 0
        self.errors = []
        self._sel = selectors.DefaultSelector()
        self._wr, self._ww = socket.socketpair()
        self._wr.setblocking(False)
        self._ww.setblocking(False)
        self._cmds = queue.Queue()
        self._stop = False
        self._reg = {}              # sock -> events registered
        self._idle_policy = None    # (seconds, which) for set_idle_reset
        self._sel.register(self.lsock, selectors.EVENT_READ, ("listen", None))
        self._sel.register(self._wr, selectors.EVENT_READ, ("wake", None))
        self._thread = threading.Thread(target=self._run, name=f"faultproxy:{self.port}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ control

    def _call(self, fn, timeout=5.0):
        """Runs fn() in the proxy thread and returns its result."""
        if not self._thread.is_alive():
            raise RuntimeError("faultproxy thread is not running")
        done = threading.Event()
        box = {}

        def wrapped():
            try:
                box["r"] = fn()
            except BaseException as e:  # noqa: B902 - handed back to the caller
                box["e"] = e
            done.set()
        self._cmds.put(wrapped)
        self._wake()
        if not done.wait(timeout):
            raise TimeoutError("faultproxy: command not run within %.1fs" % timeout)
        if "e" in box:
            raise box["e"]
        return box.get("r")

    def _wake(self):
        try:
            self._ww.send(b"x")
        except OSError:
            pass

    def set_mode(self, mode, which=None, new=None, **params):
        """Sets mode (and params such as delay_ms, gap_ms) on existing
        connections chosen by which (all of them when None) and, when new
        is True (default: which is None), for connections accepted later.
        Returns the number of existing connections changed."""
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} not in {MODES}")
        if new is None:
            new = which is None

        def do():
            if new:
                self.mode = mode
                self.params.update(params)
            n = 0
            for c in self._live():
                if which is None or which(c):
                    c.mode = mode
                    c.params.update(params)
                    n += 1
                    if mode == "reset":
                        self._reset_conn(c, "mode reset")
                    elif mode != "blackhole" and c.up is None and not c.connecting:
                        self._connect_up(c)
            return n
        return self._call(do)

    def reset(self, which=None):
        """RSTs both ends of the live connections chosen by which (all when
        None). Returns how many."""
        def do():
            n = 0
            for c in self._live():
                if which is None or which(c):
                    self._reset_conn(c, "reset()")
                    n += 1
            return n
        return self._call(do)

    def reset_idle(self, ms, which=None):
        """RSTs the live connections that carried no byte for ms
        milliseconds (and match which). Returns how many."""
        return self.reset(lambda c: c.idle * 1000.0 >= ms and (which is None or which(c)))

    def set_idle_reset(self, ms, which=None):
        """A standing policy: from now on, RST every connection that has
        been idle for ms (None: off), checked every 50 ms."""
        def do():
            self._idle_policy = None if ms is None else (ms / 1000.0, which)
        self._call(do)

    def live(self, which=None):
        """A snapshot list of the live connections (Conn objects)."""
        return self._call(lambda: [c for c in self._live() if which is None or which(c)])

    def stats(self):
        """accepted, alive, bytes_up (client to server), bytes_down, resets."""
        def do():
            return {
                "accepted": self.accepted,
                "alive": len(self._live()),
                "bytes_up": sum(c.bytes_up for c in self.conns),
                "bytes_down": sum(c.bytes_down for c in self.conns),
                "resets": self.resets_sent,
                "refused_upstream": self.refused_upstream,
            }
        return self._call(do)

    @property
    def alive(self):
        return self.stats()["alive"]

    @property
    def bytes_up(self):
        return self.stats()["bytes_up"]

    @property
    def bytes_down(self):
        return self.stats()["bytes_down"]

    def wait(self, cond, timeout=5.0, step=0.05):
        """Polls cond(self) until true; returns whether it became true."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond(self):
                return True
            time.sleep(step)
        return bool(cond(self))

    def close(self):
        """Stops the thread and closes every socket (a FIN to each live
        peer). Bounded."""
        if self._thread.is_alive():
            self._stop = True
            self._wake()
            self._thread.join(5)
        for c in self.conns:
            if not c.closed:
                self._close_conn(c, "proxy closed")
        mrlib.close_quietly(self.lsock, self._wr, self._ww, self._sel)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    # ------------------------------------------------------------ loop

    def _live(self):
        return [c for c in self.conns if not c.closed]

    def _run(self):
        try:
            while not self._stop:
                timeout = self._update_interest()
                for key, ev in self._sel.select(timeout):
                    kind, c = key.data
                    if kind == "wake":
                        try:
                            while self._wr.recv(4096):
                                pass
                        except OSError:
                            pass
                    elif kind == "listen":
                        self._accept()
                    else:
                        if c.closed:
                            continue
                        self._on_event(c, key.fileobj, ev)
                while True:
                    try:
                        fn = self._cmds.get_nowait()
                    except queue.Empty:
                        break
                    fn()
                self._pump_all()
                self._apply_idle_policy()
        except Exception as e:  # pragma: no cover - surfaced by tests
            self.errors.append(e)
            raise

    def _accept(self):
        for _ in range(64):
            try:
                s, _ = self.lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self.errors.append(e)
                    return
                continue
            s.setblocking(False)
            c = Conn(self, self.accepted, s, self.mode, self.params)
            self.accepted += 1
            self.conns.append(c)
            if c.mode == "reset":
                self._reset_conn(c, "reset mode")
                continue
            if c.mode != "blackhole":
                self._connect_up(c)

    def _connect_up(self, c):
        u = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        u.setblocking(False)
        err = u.connect_ex(self.target)
        c.up = u
        if err in (0,):
            c.connecting = False
        elif err in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
            c.connecting = True
        else:
            self.refused_upstream += 1
            self._reset_conn(c, f"upstream connect: {errno.errorcode.get(err, err)}")
            return
        self._apply_nodelay(c)

    def _apply_nodelay(self, c):
        for s in (c.down, c.up):
            if s is None:
                continue
            try:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    def _want(self, c, sock):
        """Selector events wanted on sock (down or up) of c."""
        ev = 0
        if c.closed or sock is None:
            return 0
        if sock is c.up and c.connecting:
            return selectors.EVENT_WRITE
        mode = c.mode
        if mode == "blackhole" or mode == "reset":
            return 0
        # reading: src of a direction
        rdir = c.up_dir if sock is c.down else c.down_dir
        wdir = c.down_dir if sock is c.down else c.up_dir
        up_ready = c.up is not None and not c.connecting
        if mode == "drain":
            if not rdir.eof:
                ev |= selectors.EVENT_READ
            return ev
        if not rdir.eof and rdir.queued < BUF_LIMIT and up_ready:
            ev |= selectors.EVENT_READ
        if up_ready and wdir.q and wdir.q[0][0] <= time.monotonic():
            if mode != "bytewise" or wdir.next_byte_at <= time.monotonic():
                ev |= selectors.EVENT_WRITE
        return ev

    def _update_interest(self):
        """Re-registers every socket with the events it needs; returns the
        select timeout (next delayed chunk, byte pacing, idle policy)."""
        now = time.monotonic()
        timeout = 0.5
        if self._idle_policy is not None:
            timeout = 0.05
        for c in self._live():
            for sock in (c.down, c.up):
                if sock is None:
                    continue
                ev = self._want(c, sock)
                old = self._reg.get(sock, 0)
                if ev != old:
                    if old == 0:
                        self._sel.register(sock, ev, ("conn", c))
                    elif ev == 0:
                        self._sel.unregister(sock)
                    else:
                        self._sel.modify(sock, ev, ("conn", c))
                    if ev:
                        self._reg[sock] = ev
                    else:
                        self._reg.pop(sock, None)
            if c.mode in ("blackhole", "reset", "drain"):
                continue
            for d in (c.up_dir, c.down_dir):
                if d.q:
                    t = d.q[0][0]
                    if c.mode == "bytewise":
                        t = max(t, d.next_byte_at)
                    if t > now:
                        timeout = min(timeout, t - now)
        return max(0.0, timeout)

    def _unreg(self, sock):
        if sock is not None and self._reg.pop(sock, 0):
            try:
                self._sel.unregister(sock)
            except (KeyError, ValueError, OSError):
                pass

    def _on_event(self, c, sock, ev):
        if sock is c.up and c.connecting:
            err = c.up.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self.refused_upstream += 1
                self._reset_conn(c, f"upstream connect: {errno.errorcode.get(err, err)}")
                return
            c.connecting = False
            return
        if ev & selectors.EVENT_READ:
            rdir = c.up_dir if sock is c.down else c.down_dir
            try:
                data = sock.recv(CHUNK)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError as e:
                # a reset from one end: passed on as a reset to the other
                # (in drain mode the reset is swallowed like a FIN)
                if c.mode == "drain":
                    rdir.eof = True
                else:
                    self._reset_conn(c, f"{'down' if sock is c.down else 'up'}: {e}")
                return
            if data is not None:
                if not data:
                    rdir.eof = True
                else:
                    c.last_activity = time.monotonic()
                    if c.mode != "drain":
                        rel = time.monotonic()
                        if c.mode == "delay":
                            rel += c.params.get("delay_ms", 0) / 1000.0
                        rdir.q.append((rel, data))
                        rdir.queued += len(data)
        if ev & selectors.EVENT_WRITE and not c.closed:
            self._flush(c, c.down_dir if sock is c.down else c.up_dir, sock)

    def _flush(self, c, d, dst):
        now = time.monotonic()
        while d.q and d.q[0][0] <= now:
            rel, data = d.q[0]
            if c.mode == "bytewise":
                if d.next_byte_at > now:
                    return
                piece = data[:1]
            else:
                piece = data
            try:
                n = dst.send(piece)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self._reset_conn(c, f"send: {e}")
                return
            c.last_activity = now
            d.bytes += n
            d.queued -= n
            if n == len(data):
                d.q.popleft()
            else:
                d.q[0] = (rel, data[n:])
            if c.mode == "bytewise":
                d.next_byte_at = now + c.params.get("gap_ms", 1) / 1000.0
                return
            if n < len(piece):
                return

    def _pump_all(self):
        """Flushes what is due, passes on EOFs, closes finished conns."""
        for c in self._live():
            if c.mode in ("blackhole", "drain", "reset") or c.up is None or c.connecting:
                continue
            for d, dst in ((c.up_dir, c.up), (c.down_dir, c.down)):
                if d.q and d.q[0][0] <= time.monotonic() and not c.closed:
                    self._flush(c, d, dst)
                if c.closed:
                    break
                if d.eof and not d.q and not d.shut:
                    d.shut = True
                    try:
                        dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
            if not c.closed and c.up_dir.shut and c.down_dir.shut:
                self._close_conn(c, "both sides closed")

    def _apply_idle_policy(self):
        if self._idle_policy is None:
            return
        secs, which = self._idle_policy
        for c in self._live():
            if c.idle >= secs and (which is None or which(c)):
                self._reset_conn(c, "idle policy")

    def _reset_conn(self, c, why):
        if c.closed:
            return
        self._unreg(c.down)
        self._unreg(c.up)
        mrlib.rst_close(c.down)
        mrlib.rst_close(c.up)
        self.resets_sent += 1
        c.closed = True
        c.how_closed = "reset: " + why

    def _close_conn(self, c, why):
        if c.closed:
            return
        for s in (c.down, c.up):
            self._unreg(s)
            mrlib.close_quietly(s)
        c.closed = True
        c.how_closed = why
