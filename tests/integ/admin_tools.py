"""Helpers for the admin endpoint's tests that drive outside tools: a
tunnel with [server.admin] and [client.admin], plain HTTP requests to the
endpoint, a parser for the Prometheus text format, a real `prometheus`
process, and one-shot headless `chromium` runs.

The tools come from Debian (scripts/deps.sh). A missing one skips the test,
or fails it when CI=true. Everything listens on 127.0.0.1 on free ports;
every wait is bounded, and each tool runs in its own process group, killed
whole at the end (and with the test process, through PR_SET_PDEATHSIG)."""
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.parse

import pytest

import mrlib
from mrlib import HOST, q

# --------------------------------------------------------------------------
# Tools


def need_tool(name):
    """The path of the executable name; skips the test when it is missing,
    fails it when CI=true (CI installs every tool)."""
    path = shutil.which(name)
    if path:
        return path
    msg = f"{name} is not installed (scripts/deps.sh installs it)"
    if os.environ.get("CI") == "true":
        pytest.fail(msg + "; CI=true, so a missing tool is a failure", pytrace=False)
    pytest.skip(msg)


def _tail(path, n=40):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def _killpg(p, sig):
    try:
        os.killpg(p.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class Group:
    """A tool started in a new session (its own process group), output to
    log; stop() ends the whole group: SIGTERM, then SIGKILL."""

    def __init__(self, args, log, env=None):
        self.args = list(args)
        self.log = log
        with open(log, "ab") as f:
            self.p = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                      env=env, start_new_session=True, preexec_fn=mrlib._die_with_parent)

    def alive(self):
        return self.p.poll() is None

    def stop(self, timeout=5.0):
        if self.p.poll() is None:
            _killpg(self.p, signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        _killpg(self.p, signal.SIGKILL)   # the group's leftovers too
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:
            pass
        return self.p.poll()

    def tail(self, n=40):
        return _tail(self.log, n)


def run_group(args, timeout, stdout_path, log, env=None):
    """Runs args to completion in its own process group, stdout to
    stdout_path and stderr to log. Kills the group when it exits (helpers
    left behind) or after timeout seconds (AssertionError). Returns the
    exit status."""
    with open(stdout_path, "wb") as out, open(log, "ab") as err:
        p = subprocess.Popen(list(args), stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                             start_new_session=True, preexec_fn=mrlib._die_with_parent)
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            _killpg(p, signal.SIGKILL)
            p.wait(5)
            raise AssertionError(f"{os.path.basename(args[0])} still running after {timeout}s (killed)\n"
                                 f"{_tail(log)}")
        finally:
            _killpg(p, signal.SIGKILL)
    return rc


# --------------------------------------------------------------------------
# A tunnel with admin endpoints


def admin_toml(section, port, token=None):
    """[<section>.admin] on 127.0.0.1:port, with token when given."""
    out = [f"[{section}.admin]", f"bind_addr = {q(mrlib.hostport(HOST, port))}"]
    if token is not None:
        out.append(f"token = {q(token)}")
    return "\n".join(out) + "\n"


class AdminTunnel(mrlib.Tunnel):
    """mrlib.Tunnel whose server and client each serve the admin endpoint
    on a free port (server_admin, client_admin), with the given tokens
    (None: no token, allowed on loopback)."""

    def __init__(self, procs, services, server_token=None, client_token=None, **kw):
        self.server_admin = mrlib.free_port()
        self.client_admin = mrlib.free_port()
        self.server_token = server_token
        self.client_token = client_token
        super().__init__(procs, services,
                         server_extra={"extra": admin_toml("server", self.server_admin, server_token)},
                         client_extra={"extra": admin_toml("client", self.client_admin, client_token)}, **kw)

    def start(self, expects=None):
        """Starts both, waits for both admin endpoints and for every TCP
        service to answer a probe as expects[name] says (an echo by
        default)."""
        self.start_server()
        self.start_client()
        for port, m in ((self.server_admin, self.server), (self.client_admin, self.client)):
            assert mrlib.wait_port(port, mrlib.slow(5), proc=m), \
                f"{m.name}: admin endpoint not listening on {port}\n{self.procs.dump()}"
        for s in self.services:
            if s.get("type", "tcp") == "tcp":
                self.wait_ready(s["name"], (expects or {}).get(s["name"], mrlib.echo_expect))
        return self


class DigestServer(mrlib.ReplyAfterEofServer):
    """Reads until EOF, then answers tag || sha256(data) (33 bytes) and
    closes: traffic that is large one way and tiny the other, so that a
    counter of the wrong direction shows."""

    def reply(self, data):
        return self.tag + hashlib.sha256(data).digest()


def digest_transfer(port, server, size, seed):
    """Sends size bytes through port to a DigestServer and checks the
    sha256 that comes back."""
    data = mrlib.payload(seed, size)
    got = mrlib.roundtrip(port, data, timeout=mrlib.slow(20))
    assert got == server.reply(data), f"{size} bytes sent, the digest back is {got[:40].hex()}"


def http_get(port, path, token=None, timeout=5.0):
    """GET http://127.0.0.1:port/path, with a bearer token when given.
    Returns (status, headers with lower-case names, body bytes)."""
    c = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        c.request("GET", path, headers=headers)
        r = c.getresponse()
        body = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body
    finally:
        c.close()


def get_ok(port, path, token=None, timeout=5.0):
    """The body of a GET that must answer 200."""
    status, _, body = http_get(port, path, token, timeout)
    assert status == 200, f"GET {path} on {port}: {status} {body[:300]!r}"
    return body


def status_json(port, token=None):
    return json.loads(get_ok(port, "/api/v1/status", token))


def service_status(doc, name):
    """The entry of service name in a /api/v1/status document (None)."""
    for s in doc.get("services", []):
        if s.get("name") == name:
            return s
    return None


def wait_status(port, token, pred, what, timeout=8.0):
    """Polls /api/v1/status until pred(doc) holds; returns doc
    (AssertionError with the last document at the timeout)."""
    deadline = time.monotonic() + mrlib.slow(timeout)
    doc = None
    while True:
        try:
            doc = status_json(port, token)
            if pred(doc):
                return doc
        except (OSError, AssertionError, ValueError) as e:
            doc = e
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {mrlib.slow(timeout)}s; last /api/v1/status: {doc!r}")
        time.sleep(0.1)


# --------------------------------------------------------------------------
# The Prometheus text format (0.0.4)

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|(?=\}))')
_UNESC = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def parse_metrics(text):
    """The samples of an exposition: a list of (name, labels dict, value).
    Raises ValueError on a line it cannot read (promtool is the full check;
    this only reads values)."""
    out = []
    for ln in text.splitlines():
        if not ln.strip() or ln.startswith("#"):
            continue
        m = _NAME.match(ln)
        if not m:
            raise ValueError(f"no metric name: {ln!r}")
        name, pos, labels = m.group(0), m.end(), {}
        if ln[pos:pos + 1] == "{":
            pos += 1
            while ln[pos:pos + 1] != "}":
                lm = _LABEL.match(ln, pos)
                if not lm:
                    raise ValueError(f"bad labels at {pos}: {ln!r}")
                labels[lm.group(1)] = re.sub(r'\\[\\"n]', lambda e: _UNESC[e.group(0)], lm.group(2))
                pos = lm.end()
            pos += 1
        parts = ln[pos:].split()
        if len(parts) not in (1, 2):
            raise ValueError(f"bad value: {ln!r}")
        out.append((name, labels, float(parts[0])))
    return out


def prom_escape(s):
    """A label value escaped as the text format writes it."""
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def samples(parsed, name, **labels):
    """The (labels, value) of the samples of name whose labels include
    labels."""
    return [(lb, v) for n, lb, v in parsed
            if n == name and all(lb.get(k) == val for k, val in labels.items())]


def value(parsed, name, **labels):
    """The one sample of name matching labels; AssertionError when there is
    none or more than one."""
    got = samples(parsed, name, **labels)
    assert len(got) == 1, f"{name}{labels}: {len(got)} samples: {got}"
    return got[0][1]


def metric_types(text):
    """{family: type} from the # TYPE lines."""
    return dict(re.findall(r"^# TYPE (\S+) (\S+)", text, re.M))


def promtool_check(body, workdir, label):
    """Runs `promtool check metrics` on body; returns (exit status, output).
    The body is kept in workdir as metrics-<label>.txt."""
    promtool = need_tool("promtool")
    path = os.path.join(workdir, f"metrics-{label}.txt")
    with open(path, "wb") as f:
        f.write(body)
    with open(path, "rb") as f:
        r = subprocess.run([promtool, "check", "metrics"], stdin=f, capture_output=True, timeout=30)
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace").strip()


# --------------------------------------------------------------------------
# prometheus


class Prometheus:
    """A prometheus server on 127.0.0.1:<free port>, its data in workdir,
    scraping every second. jobs: list of dicts with name, port (a target
    on 127.0.0.1), optional token (a bearer token in the scrape)."""

    def __init__(self, workdir, jobs):
        self.bin = need_tool("prometheus")
        self.port = mrlib.free_port()
        self.dir = os.path.join(workdir, "prometheus")
        os.makedirs(self.dir, exist_ok=True)
        scrape = []
        for j in jobs:
            sc = {"job_name": j["name"], "scrape_interval": "1s", "scrape_timeout": "1s",
                  "static_configs": [{"targets": [mrlib.hostport(HOST, j["port"])]}]}
            if j.get("token") is not None:
                sc["authorization"] = {"type": "Bearer", "credentials": j["token"]}
            scrape.append(sc)
        cfg = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
               "scrape_configs": scrape}
        self.config = os.path.join(self.dir, "prometheus.yml")
        with open(self.config, "w") as f:
            json.dump(cfg, f, indent=1)   # JSON is YAML
        self.proc = None

    def start(self, timeout=20.0):
        """Starts prometheus and waits until /-/ready answers 200."""
        self.proc = Group([self.bin, f"--config.file={self.config}",
                           f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
                           f"--web.listen-address={mrlib.hostport(HOST, self.port)}",
                           "--storage.tsdb.retention.time=1h", "--log.level=info"],
                          os.path.join(self.dir, "prometheus.log"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.alive(), f"prometheus exited with {self.proc.p.poll()}\n{self.proc.tail()}"
            try:
                if http_get(self.port, "/-/ready", timeout=2)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"prometheus not ready on {self.port} after {timeout}s\n{self.proc.tail()}")

    def stop(self):
        if self.proc is not None:
            self.proc.stop()

    def query(self, expr):
        """An instant query: a list of (labels, value)."""
        status, _, body = http_get(self.port, "/api/v1/query?query=" + urllib.parse.quote(expr), timeout=5)
        assert status == 200, f"query {expr!r}: {status} {body[:300]!r}"
        doc = json.loads(body)
        assert doc.get("status") == "success", f"query {expr!r}: {doc}"
        return [(r["metric"], float(r["value"][1])) for r in doc["data"]["result"]]

    def wait(self, expr, pred, what, timeout=20.0):
        """Polls the query expr until pred(result) holds; returns the
        result (AssertionError with the last one at the timeout)."""
        deadline = time.monotonic() + mrlib.slow(timeout)
        last = None
        while True:
            try:
                last = self.query(expr)
                if pred(last):
                    return last
            except (OSError, ValueError) as e:
                last = e
            if time.monotonic() > deadline:
                raise AssertionError(f"prometheus: {what}: not after {mrlib.slow(timeout)}s; "
                                     f"{expr} = {last!r}\n{self.targets()}")
            time.sleep(0.25)

    def targets(self):
        """The scrape targets' health and last error, for messages."""
        try:
            doc = json.loads(http_get(self.port, "/api/v1/targets", timeout=5)[2])
            return "\n".join(f"target {t['labels'].get('job')} {t['scrapeUrl']}: {t['health']} {t.get('lastError', '')}"
                             for t in doc["data"]["activeTargets"])
        except (OSError, ValueError, KeyError) as e:
            return f"(targets: {e!r})"


# --------------------------------------------------------------------------
# headless chromium


def chromium_bin():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return need_tool("chromium")


class Chromium:
    """One-shot headless chromium runs, each with a fresh profile under
    workdir and HOME there too (nothing written outside the test's
    directory). --no-sandbox: the tests may run as root."""

    FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-default-apps", "--mute-audio", "--hide-scrollbars", "--force-device-scale-factor=1"]

    def __init__(self, workdir):
        self.bin = chromium_bin()
        self.dir = os.path.join(workdir, "chromium")
        os.makedirs(self.dir, exist_ok=True)
        self.n = 0
        self.env = dict(os.environ, HOME=self.dir, XDG_CONFIG_HOME=os.path.join(self.dir, "config"),
                        XDG_CACHE_HOME=os.path.join(self.dir, "cache"))

    def _run(self, extra, url, budget_ms, timeout):
        self.n += 1
        profile = os.path.join(self.dir, f"profile-{self.n}")
        out = os.path.join(self.dir, f"run-{self.n}.out")
        log = os.path.join(self.dir, f"run-{self.n}.log")
        args = [self.bin] + self.FLAGS + [f"--user-data-dir={profile}",
                                          f"--virtual-time-budget={budget_ms}"] + extra + [url]
        rc = run_group(args, mrlib.slow(timeout), out, log, env=self.env)
        assert rc == 0, f"chromium exited with {rc}: {' '.join(args)}\n{_tail(log)}"
        failed = [ln for ln in _tail(log, 200).splitlines() if "Page load failed" in ln]
        assert not failed, f"chromium could not load {url}: {failed[-1]}"
        with open(out, "rb") as f:
            return f.read().decode("utf-8", "replace"), log

    def dump_dom(self, url, budget_ms=3000, timeout=30):
        """The page's DOM (serialized) after budget_ms of virtual time: the
        page's timers run, and virtual time waits for its fetches."""
        dom, _ = self._run(["--dump-dom"], url, budget_ms, timeout)
        return dom

    def screenshot(self, url, path, width=412, height=900, budget_ms=3000, timeout=30):
        """A PNG of the page at width x height into path."""
        self._run([f"--screenshot={path}", f"--window-size={width},{height}"], url, budget_ms, timeout)
        assert os.path.isfile(path), f"chromium wrote no screenshot to {path}"
        return path


def c_string_literal(path, symbol):
    """The value of `const char symbol[] = "..." "...";` in a C file: the
    concatenated literals with their escapes (\\n \\t \\" \\\\ \\?)
    decoded."""
    with open(path, encoding="utf-8") as f:
        src = f.read()
    m = re.search(r"\b" + re.escape(symbol) + r"\[\]\s*=\s*(.*?);\s*$", src, re.S | re.M)
    assert m, f"{path}: no {symbol}[] = ...;"
    esc = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "?": "?", "'": "'"}
    out = []
    for lit in re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1)):
        out.append(re.sub(r"\\(.)", lambda e: esc[e.group(1)], lit))
    return "".join(out)
