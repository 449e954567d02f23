"""The installed tree: `cmake --install` lays out the binary, the man pages,
the systemd units and the documentation; the man pages name every option,
environment variable and configuration key, and render without warnings;
systemd-analyze accepts the installed units.

The build directory is the one of MOLERAT_BIN (build/molerat -> build/);
the schema's keys come from build/conf-keys (tools/conf-keys.c)."""
import os
import re
import shutil
import subprocess

import pytest

import mrlib

SRC = mrlib.molerat_src()
BIN = mrlib.molerat_bin()
BUILD = os.path.dirname(os.path.abspath(BIN))
MAN1 = os.path.join(SRC, "man", "molerat.1")
MAN5 = os.path.join(SRC, "man", "molerat.toml.5")
PREFIX = "/usr/local"
UNITS = ("molerat-server@.service", "molerat-client@.service")

# the highest `systemd-analyze security --offline=true` exposure accepted
# (0 best, 10 worst); measured: server 1.4, client 1.1 (docs/install.md)
MAX_EXPOSURE = {"molerat-server@.service": 1.6, "molerat-client@.service": 1.3}


def run(cmd, env=None, timeout=120, check=True):
    e = dict(os.environ)
    if env:
        e.update(env)
    p = subprocess.run(cmd, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
    if check:
        assert p.returncode == 0, f"{cmd} exited {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p


def need(tool, package):
    path = shutil.which(tool)
    if not path:
        pytest.skip(f"{tool} is not installed (Debian package {package}; scripts/deps.sh installs it)")
    return path


# --------------------------------------------------------------------------
# roff: just enough of the man macros to find sections and .TP tags


def roff_plain(s):
    """A roff line's text without font changes and escapes."""
    s = re.sub(r"\\f[BIRP]|\\f\([A-Z]{2}|\\f\[[A-Z]*\]", "", s)
    s = s.replace(r"\(dq", '"').replace(r"\-", "-").replace(r"\&", "").replace(r"\e", "\\")
    s = s.replace(r"\c", "")
    return s


def macro_args(line):
    """The arguments of a macro line (.B a "b c" -> ['a', 'b c']), plain."""
    rest = line.split(None, 1)[1] if " " in line else ""
    args = re.findall(r'"((?:[^"]|"")*)"|(\S+)', rest)
    return [roff_plain(q.replace('""', '"') if q else w) for q, w in args]


def tag_text(line):
    """The text a .TP tag line shows: a macro line's arguments joined the
    way .B/.BR/.BI/... join them (alternating fonts, no spaces), or a text
    line as is."""
    if line.startswith("."):
        name = line.split()[0]
        args = macro_args(line)
        return " ".join(args) if name in (".B", ".I") else "".join(args)
    return roff_plain(line)


def man_sections(path):
    """{SECTION: [(subsection or None, [tag text of each .TP])...]}, and
    the plain text of each section."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    sections, text = {}, {}
    sh = ss = None
    for i, line in enumerate(lines):
        if line.startswith(".SH"):
            sh = " ".join(macro_args(line))
            ss = None
            sections[sh] = [(None, [])]
            text[sh] = []
        elif line.startswith(".SS") and sh:
            ss = " ".join(macro_args(line))
            sections[sh].append((ss, []))
        elif line.startswith((".TP", ".TQ")) and sh and i + 1 < len(lines):
            sections[sh][-1][1].append(tag_text(lines[i + 1]))
        if sh and not line.startswith(".\\\""):
            text[sh].append(" ".join(macro_args(line)) if line.startswith(".") else roff_plain(line))
    return sections, {k: "\n".join(v) for k, v in text.items()}


def all_tags(sections, name):
    return [t for _, tags in sections.get(name, []) for t in tags]


# --------------------------------------------------------------------------
# (a) the schema in molerat.toml(5)


def schema_keys():
    tool = os.path.join(BUILD, "conf-keys")
    assert os.access(tool, os.X_OK), f"{tool} is missing: build tools/conf-keys.c (scripts/build.sh)"
    out = run([tool, "-l"]).stdout
    keys = []
    for line in out.splitlines():
        f = line.split("\t")
        keys.append({"path": f[0], "type": f[1], "def": f[2], "required": f[3] == "yes"})
    return keys


def expected_tag(k):
    """How molerat.toml(5) shows a key: "KEY (TYPE, required)",
    "KEY (TYPE, required; DEFAULT)" or "KEY (TYPE, default DEFAULT)"."""
    key = k["path"].rsplit(".", 1)[-1]
    if k["required"]:
        return f"{key} ({k['type']}, required)" if k["def"] == "none" else \
            f"{key} ({k['type']}, required; {k['def']})"
    return f"{key} ({k['type']}, default {k['def']})"


def test_man5_names_every_schema_key():
    keys = schema_keys()
    assert len(keys) > 40, keys
    sections, _ = man_sections(MAN5)
    assert "KEYS" in sections, "molerat.toml.5 has no KEYS section"
    # table path -> the tags of its subsection; a subsection "[a], [b]"
    # documents both tables, "Top level" the keys of no table
    tables = {}
    for title, tags in sections["KEYS"]:
        if title is None:
            continue
        names = re.findall(r"\[([^\]]+)\]", title) or ([""] if title == "Top level" else [])
        assert names, f"molerat.toml.5: subsection {title!r} names no table"
        for n in names:
            tables.setdefault(n, []).extend(tags)
    problems = []
    documented = set()
    for k in keys:
        table, _, key = k["path"].rpartition(".")
        want = expected_tag(k)
        tags = tables.get(table)
        if tags is None:
            problems.append(f"{k['path']}: no subsection [{table}] in KEYS")
            continue
        mine = [t for t in tags if t.split(" ", 1)[0] == key]
        if not mine:
            problems.append(f"{k['path']}: no .TP entry {key!r} under [{table}]")
        elif want not in mine:
            problems.append(f"{k['path']}: documented as {mine[0]!r}, the schema says {want!r}")
        documented.add((table, key))
    for table, tags in tables.items():
        for t in tags:
            if (table, t.split(" ", 1)[0]) not in documented:
                problems.append(f"molerat.toml.5 documents [{table}] {t!r}, which the schema does not have")
    assert not problems, "\n".join(problems)


def test_man5_marks_nothing_unsupported():
    """Every transport and the proxy are built: molerat.toml(5) marks none of
    them as unsupported."""
    _, text = man_sections(MAN5)
    keys = re.sub(r"\s+", " ", text["KEYS"])
    assert "not supported" not in keys.lower(), "molerat.toml.5 still marks a key as not supported"
    for sub in ("[server.transport.websocket]", "[server.transport.tls]", "[server.transport.noise]", "proxy (url"):
        assert sub in keys, f"molerat.toml.5 lacks {sub}"


# --------------------------------------------------------------------------
# (b) the command line in molerat(1)


def help_text():
    p = run([BIN, "--help"])
    return p.stdout


def help_blocks(h):
    """{'Usage': text, 'Options': text, 'Environment': text, ...}"""
    blocks, cur = {}, None
    for line in h.splitlines():
        m = re.match(r"^(\w[\w ]*):(.*)$", line)
        if m and not line.startswith(" "):
            cur = m.group(1)
            blocks[cur] = m.group(2) + "\n"
        elif cur:
            blocks[cur] += line + "\n"
    return blocks


def test_man1_names_every_option_and_variable():
    h = help_text()
    blocks = help_blocks(h)
    for b in ("Usage", "Options", "Environment", "Exit status"):
        assert b in blocks, f"molerat --help has no {b}: section:\n{h}"
    options = set(re.findall(r"(?<![\w-])(--?[A-Za-z][A-Za-z0-9-]*)", blocks["Usage"] + blocks["Options"]))
    envs = set(re.findall(r"\b([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)\b", blocks["Environment"]))
    assert {"--server", "--client", "--genkey", "--help", "-V", "--version"} <= options, options
    assert {"MOLERAT_LOG", "RUST_LOG"} <= envs, envs
    sections, _ = man_sections(MAN1)
    problems = []

    def tokens(section):
        return {w for t in all_tags(sections, section) for w in re.split(r"[\s,|\[\]]+", t) if w}

    opt_tags = tokens("OPTIONS")
    for o in sorted(options):
        if o not in opt_tags:
            problems.append(f"option {o} (molerat --help) has no entry in molerat.1 OPTIONS")
    env_tags = tokens("ENVIRONMENT")
    for e in sorted(envs):
        if e not in env_tags:
            problems.append(f"variable {e} (molerat --help) has no entry in molerat.1 ENVIRONMENT")
    if "check" in blocks["Usage"] and "check" not in tokens("COMMANDS"):
        problems.append("command check has no entry in molerat.1 COMMANDS")
    for sig in re.findall(r"\bSIG[A-Z]+\b", h):
        if sig not in tokens("SIGNALS"):
            problems.append(f"signal {sig} has no entry in molerat.1 SIGNALS")
    for code in re.findall(r"^\s+(\d+)\s", blocks["Exit status"], re.M):
        if code not in tokens("EXIT STATUS"):
            problems.append(f"exit status {code} has no entry in molerat.1 EXIT STATUS")
    for s in ("NAME", "SYNOPSIS", "DESCRIPTION", "FILES", "SYSTEMD", "SEE ALSO"):
        if s not in sections:
            problems.append(f"molerat.1 has no {s} section")
    assert not problems, "\n".join(problems) + "\n--help:\n" + h


# --------------------------------------------------------------------------
# (c) both pages render without warnings


@pytest.mark.parametrize("page", [MAN1, MAN5], ids=["molerat.1", "molerat.toml.5"])
def test_man_renders_without_warnings(page):
    man = need("man", "man-db")
    env = {"LC_ALL": "C.UTF-8", "MANWIDTH": "80", "MANPAGER": "cat", "PAGER": "cat", "MAN_KEEP_FORMATTING": ""}
    p = run([man, "--warnings", "-l", page], env=env)
    assert p.stderr == "", f"man --warnings -l {page}:\n{p.stderr}"
    assert len(p.stdout.splitlines()) > 50, p.stdout
    if shutil.which("groff"):
        # every groff warning, not only man-db's default set
        q = run(["groff", "-t", "-man", "-ww", "-z", "-Tutf8", page], env=env)
        assert q.stderr == "", f"groff -ww {page}:\n{q.stderr}"


# --------------------------------------------------------------------------
# (d) cmake --install with DESTDIR


def cmake_install(destdir, prefix):
    cmake = need("cmake", "cmake")
    run([cmake, "--install", BUILD, "--prefix", prefix], env={"DESTDIR": str(destdir)}, timeout=300)
    return str(destdir) + prefix


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The tree `DESTDIR=tmp cmake --install BUILD --prefix /usr/local` makes:
    (destdir, destdir/usr/local)."""
    d = tmp_path_factory.mktemp("destdir")
    return str(d), cmake_install(d, PREFIX)


def test_install_layout(installed):
    destdir, root = installed
    examples = sorted(f for f in os.listdir(os.path.join(SRC, "examples")) if f.endswith(".toml"))
    assert examples
    want = {
        "bin/molerat",
        "share/man/man1/molerat.1",
        "share/man/man5/molerat.toml.5",
        "lib/systemd/system/molerat-server@.service",
        "lib/systemd/system/molerat-client@.service",
        "share/doc/molerat/LICENSE",
        "share/doc/molerat/README.md",
        "share/doc/molerat/configuration.md",
        "share/doc/molerat/install.md",
    } | {"share/doc/molerat/examples/" + e for e in examples}
    got = set()
    for dirpath, _, files in os.walk(destdir):
        for f in files:
            full = os.path.join(dirpath, f)
            assert full.startswith(root + "/"), f"{full} installed outside the prefix {PREFIX} under DESTDIR"
            got.add(os.path.relpath(full, root))
    assert got == want, f"missing: {sorted(want - got)}; unexpected: {sorted(got - want)}"

    b = os.path.join(root, "bin/molerat")
    assert os.access(b, os.X_OK)
    assert run([b, "-V"]).stdout.startswith("molerat ")
    for page in ("share/man/man1/molerat.1", "share/man/man5/molerat.toml.5"):
        assert oct(os.stat(os.path.join(root, page)).st_mode & 0o777) == "0o644"
    with open(os.path.join(root, "share/doc/molerat/LICENSE")) as f:
        assert "Apache License" in f.read()
    for unit in UNITS:
        with open(os.path.join(root, "lib/systemd/system", unit)) as f:
            text = f.read()
        assert "@BINDIR@" not in text
        role = "server" if "server" in unit else "client"
        assert f"\nExecStart={PREFIX}/bin/molerat --{role} /etc/molerat/%i.toml\n" in text, text


def test_install_units_follow_the_prefix(tmp_path):
    """ExecStart is set at install time: --prefix at install changes it."""
    root = cmake_install(tmp_path, "/opt/molerat")
    with open(os.path.join(root, "lib/systemd/system/molerat-client@.service")) as f:
        assert "\nExecStart=/opt/molerat/bin/molerat --client /etc/molerat/%i.toml\n" in f.read()


def test_installed_man_pages_found_by_man(installed):
    man = need("man", "man-db")
    _, root = installed
    env = {"LC_ALL": "C.UTF-8", "MANWIDTH": "80", "MANPAGER": "cat", "PAGER": "cat",
           "MANPATH": os.path.join(root, "share/man")}
    assert "molerat.toml" in run([man, "5", "molerat.toml"], env=env).stdout
    assert "--genkey" in run([man, "1", "molerat"], env=env).stdout


# --------------------------------------------------------------------------
# (e) systemd-analyze on the installed units


def units_for_analysis(installed, tmp_path):
    """Copies of the installed units whose ExecStart names the binary in
    the DESTDIR tree: `verify` checks that the binary exists, and
    --root=DESTDIR would look for everything there, sysinit.target and
    /bin/kill included."""
    destdir, root = installed
    out = []
    for unit in UNITS:
        with open(os.path.join(root, "lib/systemd/system", unit)) as f:
            text = f.read()
        text = text.replace(f"ExecStart={PREFIX}/bin/molerat ", f"ExecStart={root}/bin/molerat ")
        p = tmp_path / unit
        p.write_text(text)
        out.append(str(p))
    return out


def test_systemd_analyze_verify(installed, tmp_path):
    sa = need("systemd-analyze", "systemd")
    _, root = installed
    units = units_for_analysis(installed, tmp_path)
    # MANPATH: Documentation=man:... must name the installed pages
    env = {"MANPATH": os.path.join(root, "share/man"), "SYSTEMD_LOG_LEVEL": "notice", "LC_ALL": "C.UTF-8"}
    p = run([sa, "verify"] + units, env=env, check=False)
    assert p.returncode == 0 and p.stderr.strip() == "" and p.stdout.strip() == "", \
        f"systemd-analyze verify exited {p.returncode}:\n{p.stdout}{p.stderr}"


def test_systemd_analyze_security(installed, tmp_path):
    sa = need("systemd-analyze", "systemd")
    for unit in units_for_analysis(installed, tmp_path):
        p = run([sa, "security", "--offline=true", "--no-pager", unit], env={"LC_ALL": "C.UTF-8"}, check=False)
        m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", p.stdout)
        assert m, f"systemd-analyze security --offline=true {unit}: no score\n{p.stdout}{p.stderr}"
        score = float(m.group(1))
        name = os.path.basename(unit)
        assert score <= MAX_EXPOSURE[name], \
            f"{name}: exposure {score} > {MAX_EXPOSURE[name]}; a hardening setting was lost?\n{p.stdout}"
