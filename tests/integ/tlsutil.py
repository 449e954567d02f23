"""Certificates for the tls transport's tests, made with the `openssl`
command into a directory the test owns (pytest's tmp_path): a CA, leaves
signed by it (SAN DNS:localhost, IP:127.0.0.1 by default), an expired leaf,
a self-signed one, a leaf for another name, and PKCS#12 files with the
chain. EC P-256 keys: fast to make.
"""
import os
import subprocess

OPENSSL = "openssl"
KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
DEFAULT_SAN = "DNS:localhost,IP:127.0.0.1"


def _run(args, cwd):
    r = subprocess.run([OPENSSL] + args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=30)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{r.stdout.decode(errors='replace')}")


def make_ca(d, name="ca", cn="molerat test CA"):
    """A self-signed CA: returns (key path, cert path)."""
    key, pem = os.path.join(d, name + ".key"), os.path.join(d, name + ".pem")
    _run(["req", "-x509"] + KEY + ["-keyout", key, "-out", pem, "-subj", "/CN=" + cn, "-days", "30",
          "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign"], d)
    return key, pem


def make_leaf(d, ca, name, san=DEFAULT_SAN, days=30, cn="localhost"):
    """A leaf signed by ca = (key, cert). days=-1 makes it expired (it ends
    a day before it starts). Returns (key path, cert path)."""
    key, csr, pem = (os.path.join(d, name + s) for s in (".key", ".csr", ".pem"))
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n")
    _run(["req"] + KEY + ["-keyout", key, "-out", csr, "-subj", "/CN=" + cn], d)
    _run(["x509", "-req", "-in", csr, "-CA", ca[1], "-CAkey", ca[0], "-days", str(days),
          "-extfile", ext, "-out", pem], d)
    return key, pem


def make_self_signed(d, name, san=DEFAULT_SAN, cn="localhost"):
    key, pem = os.path.join(d, name + ".key"), os.path.join(d, name + ".pem")
    _run(["req", "-x509"] + KEY + ["-keyout", key, "-out", pem, "-subj", "/CN=" + cn, "-days", "30",
          "-addext", "subjectAltName=" + san], d)
    return key, pem


def make_p12(d, name, leaf, chain=(), password="pw", legacy=False):
    """A PKCS#12 file with leaf = (key, cert) and the chain's certificates."""
    out = os.path.join(d, name + ".p12")
    args = ["pkcs12", "-export", "-inkey", leaf[0], "-in", leaf[1], "-passout", "pass:" + password,
            "-out", out]
    if chain:
        bundle = os.path.join(d, name + ".chain.pem")
        with open(bundle, "w") as f:
            for c in chain:
                with open(c) as src:
                    f.write(src.read())
        args += ["-certfile", bundle]
    if legacy:
        args.append("-legacy")
    _run(args, d)
    return out


class Pki:
    """Everything the tests use, made once into directory d:
    ca (key, pem); leaf, expired, localhost_only (SAN DNS:localhost only),
    self_signed as (key, pem); and good_p12, expired_p12, self_p12,
    localhost_only_p12 (password "pw", chain included)."""

    PASSWORD = "pw"

    def __init__(self, d):
        os.makedirs(d, exist_ok=True)
        self.dir = str(d)
        self.ca = make_ca(self.dir)
        self.ca_pem = self.ca[1]
        self.leaf = make_leaf(self.dir, self.ca, "leaf")
        self.expired = make_leaf(self.dir, self.ca, "expired", days=-1)
        self.localhost_only = make_leaf(self.dir, self.ca, "localhost_only", san="DNS:localhost")
        self.self_signed = make_self_signed(self.dir, "self")
        self.good_p12 = make_p12(self.dir, "good", self.leaf, [self.ca_pem])
        self.expired_p12 = make_p12(self.dir, "expired", self.expired, [self.ca_pem])
        self.localhost_only_p12 = make_p12(self.dir, "localhost_only", self.localhost_only, [self.ca_pem])
        self.self_p12 = make_p12(self.dir, "self", self.self_signed)
        # an empty store for clients that must not trust the system's roots
        self.empty_store = os.path.join(self.dir, "empty-store.pem")
        open(self.empty_store, "w").close()


def server_tls_extra(p12, password=Pki.PASSWORD, trusted_root=None):
    """The [server.transport] tables for server_toml(extra=...)."""
    out = ['[server.transport]', 'type = "tls"', '[server.transport.tls]', f'pkcs12 = "{p12}"',
           f'pkcs12_password = "{password}"']
    if trusted_root:
        out.append(f'trusted_root = "{trusted_root}"')
    return "\n".join(out) + "\n"


def client_tls_extra(trusted_root=None, hostname=None):
    """The [client.transport] tables for client_toml(extra=...)."""
    out = ['[client.transport]', 'type = "tls"', '[client.transport.tls]']
    if trusted_root:
        out.append(f'trusted_root = "{trusted_root}"')
    if hostname:
        out.append(f'hostname = "{hostname}"')
    return "\n".join(out) + "\n"


def no_system_roots(pki):
    """A client environment that trusts nothing from the system store."""
    return {"SSL_CERT_FILE": pki.empty_store, "SSL_CERT_DIR": os.path.join(pki.dir, "no-such-dir")}
