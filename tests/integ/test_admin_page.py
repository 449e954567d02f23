"""The admin endpoint's status page (src/role/admin_page.c) in a real
browser: headless chromium loads http://127.0.0.1:<admin port>/#token=...
from a molerat server and client after a sha256-checked 8 MiB echo (and
1 MiB to a service that answers 33 bytes, so the two directions differ),
lets the page poll /api/v1/status (--virtual-time-budget runs its timers
and waits for its fetches), and the test reads the DOM it leaves
(--dump-dom): each service's element, its state and its byte counters,
the banner. A screenshot at phone size (412x900) is kept in the test's
directory for a person to look at (the path is printed).

chromium comes from Debian (scripts/deps.sh); without it the tests skip,
or fail when CI=true."""
import html.parser
import os
import signal
import struct

import pytest

import admin_tools as at
import mrlib
from test_tls import bulk_echo

SERVICE = "bulk"
# a name the page must show as text, never as markup
HTML_NAME = '<img src=x onerror=alert(1)> & "q"'
PAGE_C = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "role", "admin_page.c")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@pytest.fixture
def digest_server():
    """An admin_tools.DigestServer, closed after the test."""
    s = at.DigestServer(tag=b"D")
    yield s
    s.close()


class Node:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent = tag, dict(attrs), parent
        self.children = []
        self.text_parts = []

    def text(self):
        return "".join(self.text_parts + [c.text() for c in self.children])

    def walk(self):
        yield self
        for c in self.children:
            yield from c.walk()

    def find_all(self, pred):
        return [n for n in self.walk() if pred(n)]

    def classes(self):
        return (self.attrs.get("class") or "").split()


class _Tree(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {}, None)
        self.cur = self.root

    def handle_starttag(self, tag, attrs):
        n = Node(tag, attrs, self.cur)
        self.cur.children.append(n)
        if tag not in VOID:
            self.cur = n

    def handle_startendtag(self, tag, attrs):
        self.cur.children.append(Node(tag, attrs, self.cur))

    def handle_endtag(self, tag):
        n = self.cur
        while n is not self.root and n.tag != tag:
            n = n.parent
        if n is not self.root:
            self.cur = n.parent

    def handle_data(self, data):
        self.cur.text_parts.append(data)


def parse_dom(text):
    p = _Tree()
    p.feed(text)
    p.close()
    return p.root


def by_id(root, ident):
    got = root.find_all(lambda n: n.attrs.get("id") == ident)
    assert len(got) == 1, f"{len(got)} elements with id {ident}"
    return got[0]


def cards(root):
    """{service name: element} of the page's service elements."""
    out = {}
    for n in root.find_all(lambda n: "data-service" in n.attrs):
        assert n.attrs["data-service"] not in out, f"two elements for {n.attrs['data-service']!r}"
        out[n.attrs["data-service"]] = n
    return out


def byte_attr(card, cls):
    got = card.find_all(lambda n: cls in n.classes())
    assert len(got) == 1, f"{len(got)} elements of class {cls} in {card.attrs}"
    b = got[0].attrs.get("data-bytes")
    assert b is not None and b.isdigit(), f"{cls}: data-bytes={b!r}"
    return int(b)


def banner(root):
    """The banner's text, or None while it is hidden."""
    b = by_id(root, "banner")
    return None if "hidden" in b.attrs else b.text()


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def page_url(port, token=None):
    return f"http://{mrlib.HOST}:{port}/" + (f"#token={token}" if token is not None else "")


def test_page_shows_the_tunnel(procs, echo, digest_server, tmp_path):
    """GET / is the page of admin_page.c byte for byte, without a token.
    After an 8 MiB echo on one service and 1 MiB to a service that answers
    33 bytes on another (named with markup), the server's page (token from
    #token=) and the client's (no token) show both services up with the
    exact byte counts of /api/v1/status (8 MiB or more each way; 1 MiB to
    the service and under 4 KiB back), the role, a chart, no banner; the
    name with markup shows as text (no <img> in the DOM). With the client
    killed the server's page shows the service down."""
    browser = at.Chromium(str(tmp_path))
    total = 8 << 20
    token = "pg-" + os.urandom(12).hex()
    t = at.AdminTunnel(procs, [{"name": SERVICE, "local": echo.port}, {"name": HTML_NAME, "local": digest_server.port}],
                       server_token=token).start(expects={HTML_NAME: digest_server.expect})
    sent, got_sha, got, took = bulk_echo(t.svc_port[SERVICE], total, 41, mrlib.slow(30))
    assert got == total and got_sha == sent, f"echo: {got} of {total} bytes, sha256 equal: {got_sha == sent}"
    at.digest_transfer(t.svc_port[HTML_NAME], digest_server, 1 << 20, 42)

    status, headers, body = at.http_get(t.server_admin, "/")
    assert status == 200, f"GET / without a token: {status}"
    assert headers.get("content-type", "").startswith("text/html"), headers
    assert body.decode("utf-8") == at.c_string_literal(PAGE_C, "admin_page_html"), \
        "GET / is not the page of src/role/admin_page.c"

    for role, port, tok in (("server", t.server_admin, token), ("client", t.client_admin, None)):
        def counted(d):
            bulk, odd = at.service_status(d, SERVICE) or {}, at.service_status(d, HTML_NAME) or {}
            return (bulk.get("state") == "up" and bulk.get("bytes_to_visitor", 0) >= total
                    and odd.get("bytes_to_service", 0) >= 1 << 20)
        doc = at.wait_status(port, tok, counted, f"{role}: the transfers counted")
        root = parse_dom(browser.dump_dom(page_url(port, tok)))
        assert banner(root) is None, f"{role}: banner: {banner(root)!r}"
        assert by_id(root, "role").text() == role
        c = cards(root)
        assert set(c) == {SERVICE, HTML_NAME}, f"{role}: services on the page: {list(c)}"
        for name, lo_s, lo_v, hi_v in ((SERVICE, total, total, total + 65536), (HTML_NAME, 1 << 20, 33, 4096)):
            assert c[name].attrs.get("data-state") == "up", f"{role}: {name}: {c[name].attrs}"
            tos, tov = byte_attr(c[name], "bytes-to-service"), byte_attr(c[name], "bytes-to-visitor")
            assert tos >= lo_s and lo_v <= tov <= hi_v, f"{role}: {name}: data-bytes {tos} / {tov}"
            # nothing crossed since the status was read: the page shows the same counts
            api = at.service_status(doc, name)
            assert (tos, tov) == (api["bytes_to_service"], api["bytes_to_visitor"]), \
                f"{role}: {name}: page {tos}/{tov}, /api/v1/status {api['bytes_to_service']}/{api['bytes_to_visitor']}"
        assert not root.find_all(lambda n: n.tag == "img"), f"{role}: a service name became markup"
        assert HTML_NAME in c[HTML_NAME].text()
        assert c[SERVICE].find_all(lambda n: n.tag == "canvas"), f"{role}: no throughput chart"

    shot = browser.screenshot(page_url(t.server_admin, token), str(tmp_path / "admin-page-server.png"))
    assert png_size(shot) == (412, 900)
    assert os.path.getsize(shot) > 5000, "the screenshot is (nearly) empty"
    print(f"screenshot of the status page (412x900): {shot}")

    t.client.expect_exit = True
    t.client.stop(signal.SIGKILL)
    at.wait_status(t.server_admin, token, lambda d: at.service_status(d, SERVICE)["state"] != "up",
                   "the server's service not up once the client is gone")
    root = parse_dom(browser.dump_dom(page_url(t.server_admin, token)))
    state = cards(root)[SERVICE].attrs.get("data-state")
    api_state = at.service_status(at.status_json(t.server_admin, token), SERVICE)["state"]
    assert state == api_state and state in ("down", "connecting"), f"page {state}, /api/v1/status {api_state}"


def test_page_without_the_token_shows_the_banner(procs, echo, tmp_path):
    """With a wrong token in #token=, or none, /api/v1/status answers 401
    and the page shows the banner saying the token is required, and no
    service; with the right one, the service and no banner."""
    browser = at.Chromium(str(tmp_path))
    token = "pg-" + os.urandom(12).hex()
    t = at.AdminTunnel(procs, [{"name": SERVICE, "local": echo.port}], server_token=token).start()
    assert at.http_get(t.server_admin, "/api/v1/status", "wrong")[0] == 401
    for tok in ("wrong", None):
        root = parse_dom(browser.dump_dom(page_url(t.server_admin, tok)))
        b = banner(root)
        assert b is not None and "token required: open /#token=" in b, f"token {tok!r}: banner {b!r}"
        assert cards(root) == {}, f"token {tok!r}: services shown without the token: {list(cards(root))}"
    root = parse_dom(browser.dump_dom(page_url(t.server_admin, token)))
    assert banner(root) is None, banner(root)
    assert list(cards(root)) == [SERVICE]
