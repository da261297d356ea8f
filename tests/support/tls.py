"""Real TLS for tests: certificates made for the test run, and stunnel in front of the embedded servers.

The embedded broker (Tansu 0.6) cannot serve TLS itself (docs/infrastructure.md), so Debian's
stunnel terminates TLS on one loopback port and forwards to the server's plaintext port; the
broker advertises the TLS port, so clients come back through TLS for every connection.
Certificates (a CA, a server certificate for 127.0.0.1 and localhost, a client certificate,
and a second, unrelated CA with its own client certificate) are made with openssl in a
temporary directory and never leave it.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from taskforce import servers

ROOT = Path(__file__).resolve().parents[2]
ENSURE_STUNNEL = ROOT / "tools" / "ensure-stunnel"
#: A new P-256 key, unencrypted (openssl req arguments).
EC_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")


def stunnel() -> tuple[str | None, str]:
    """The stunnel binary, installing Debian's stunnel4 when this machine can (root, apt-get);
    else None and why (the reason a test skips with)."""
    found = shutil.which("stunnel4") or shutil.which("stunnel")
    if found:
        return found, ""
    done = subprocess.run([str(ENSURE_STUNNEL)], capture_output=True, text=True, timeout=600, check=False)
    found = shutil.which("stunnel4") or shutil.which("stunnel")
    if found:
        return found, ""
    said = " ".join((done.stdout + done.stderr).split())
    return None, said or "stunnel is not installed and tools/ensure-stunnel could not install it"


@dataclass(frozen=True)
class Certificates:
    directory: Path
    ca: Path
    server: Path
    server_key: Path
    client: Path
    client_key: Path
    #: The client certificate and key in one file (what MongoDB's tlsCertificateKeyFile takes).
    client_pem: Path
    #: A CA that signed nothing the servers use, and a client certificate it signed.
    other_ca: Path
    other_client: Path
    other_client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.strip()}")


def _ca(name: str, cwd: Path) -> tuple[Path, Path]:
    _openssl("req", "-x509", *EC_KEY, "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
             "-subj", f"/CN=taskforce test {name}", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=cwd)
    return cwd / f"{name}.pem", cwd / f"{name}.key"


def _leaf(name: str, ca: tuple[Path, Path], extensions: str, cwd: Path) -> tuple[Path, Path]:
    _openssl("req", *EC_KEY, "-keyout", f"{name}.key", "-out", f"{name}.csr",
             "-subj", f"/CN=taskforce test {name}", cwd=cwd)
    (cwd / f"{name}.ext").write_text(extensions + "basicConstraints=CA:FALSE\n", encoding="utf-8")
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
             "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=cwd)
    return cwd / f"{name}.pem", cwd / f"{name}.key"


def make_certificates(directory: Path) -> Certificates:
    directory.mkdir(parents=True, exist_ok=True)
    ca = _ca("ca", directory)
    server = _leaf("server", ca, "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
                   directory)
    client = _leaf("client", ca, "extendedKeyUsage=clientAuth\n", directory)
    other = _ca("other-ca", directory)
    other_client = _leaf("other-client", other, "extendedKeyUsage=clientAuth\n", directory)
    client_pem = directory / "client-with-key.pem"
    client_pem.write_text(client[0].read_text() + client[1].read_text(), encoding="utf-8")
    for key in directory.glob("*.key"):
        key.chmod(0o600)
    return Certificates(directory, ca[0], *server, *client, client_pem, other[0], *other_client)


@dataclass(frozen=True)
class Route:
    """One TLS port that stunnel forwards to a plaintext one."""

    name: str
    tls_port: int
    target_port: int
    require_client_certificate: bool = False


class Terminator:
    """stunnel with the given routes, in the foreground of its own process group."""

    def __init__(self, binary: str, certificates: Certificates, routes: list[Route], directory: Path) -> None:
        self.routes = routes
        self.log = directory / "stunnel.log"
        self.config = directory / "stunnel.conf"
        lines = ["foreground = yes", "pid =", f"output = {self.log}", "debug = notice", ""]
        for route in routes:
            lines += [f"[{route.name}]", f"accept = 127.0.0.1:{route.tls_port}",
                      f"connect = 127.0.0.1:{route.target_port}", f"cert = {certificates.server}",
                      f"key = {certificates.server_key}"]
            if route.require_client_certificate:
                lines += [f"CAfile = {certificates.ca}", "verifyChain = yes", "requireCert = yes"]
            lines.append("")
        self.config.write_text("\n".join(lines), encoding="utf-8")
        with (directory / "stunnel.out").open("ab") as out:
            self.process = subprocess.Popen([binary, str(self.config)], stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            for route in routes:
                servers.wait_for_port("127.0.0.1", route.tls_port, 20, self.process)
        except BaseException:
            self.stop()
            raise

    def accepted(self, name: str) -> int:
        """Connections stunnel accepted (TLS handshakes begun) on the route so far."""
        if not self.log.exists():
            return 0
        return self.log.read_text(errors="replace").count(f"Service [{name}] accepted connection")

    def stop(self) -> None:
        servers.stop_pid(self.process.pid, timeout=10)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=2)


@contextlib.contextmanager
def terminated(binary: str, certificates: Certificates, routes: list[Route],
               directory: Path) -> Iterator[Terminator]:
    terminator = Terminator(binary, certificates, routes, directory)
    try:
        yield terminator
    finally:
        terminator.stop()
