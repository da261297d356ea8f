"""`make up` / `make down`: embedded broker and store, the four services and the gateway, in the background.

Pid files and logs live under one ignored run directory (`run/`, or `TASKFORCE_RUN_DIR`).
When `KAFKA_BOOTSTRAP_SERVERS` / `MONGODB_URL` (or `MONGODB_URL_FILE`) are set, those servers are
used and nothing embedded is started; their TLS and SASL settings (KAFKA_SECURITY_PROTOCOL, ...)
pass through to every client. `up` returns only when every service answers `/readyz`.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import typer
from rich.console import Console

from services.common.kafka import ensure_topics
from services.common.secret_files import SettingsError
from services.common.settings import DEFAULT_PORTS
from taskforce import servers

SERVICES = ("intake", "analysis", "followup", "reporting", "gateway")
console = Console(stderr=True)
app = typer.Typer(add_completion=False, help="Start and stop the local taskforce stack.")


def run_dir() -> Path:
    return Path(os.environ.get("TASKFORCE_RUN_DIR", "run")).resolve()


def _pid_file(name: str) -> Path:
    return run_dir() / "pids" / f"{name}.pid"


def _running_pid(name: str) -> int | None:
    path = _pid_file(name)
    if not path.exists():
        return None
    pid = int(path.read_text())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        path.unlink()
        return None
    return pid


def _record(name: str, pid: int) -> None:
    path = _pid_file(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(pid))


def service_port(service: str) -> int:
    return int(os.environ.get(f"TASKFORCE_{service.upper()}_PORT", DEFAULT_PORTS[service]))


def tokens_file() -> Path:
    """The API tokens; made on first use: one for every municipality ("*")."""
    configured = os.environ.get("TASKFORCE_TOKENS_FILE")
    path = Path(configured) if configured else run_dir() / "tokens.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({secrets.token_urlsafe(24): "*"}, indent=2) + "\n")
        path.chmod(0o600)
    return path


def admin_token() -> str | None:
    tokens = json.loads(tokens_file().read_text())
    return next((token for token, scope in tokens.items() if scope == "*"), None)


def _secret() -> str:
    path = run_dir() / "session_secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text()


def _ensure_server(name: str, label: str, port_variable: str, default_port: int,
                   start: Callable[[int, Path], servers.Server]) -> int:
    """Start the embedded server `name` unless it runs already; return its port."""
    port = int(os.environ.get(port_variable, str(default_port)))
    if _running_pid(name) is None:
        if servers.port_open("127.0.0.1", port):
            raise typer.Exit(_fail(f"port {port} is taken by something else; set {port_variable}"))
        _record(name, start(port, run_dir() / "logs" / f"{name}.log").process.pid)
        console.print(f"[green]✓[/] {label} on 127.0.0.1:{port}")
    return port


def ensure_servers() -> tuple[str, str]:
    """Bootstrap address and Mongo URL: from the environment, or embedded ones we start."""
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or "127.0.0.1:{}".format(_ensure_server(
        "kafka", "Kafka-protocol broker (Tansu)", "TASKFORCE_KAFKA_PORT", 9092, servers.start_kafka))
    if os.environ.get("MONGODB_URL_FILE"):
        mongo_url = ""  # a store of your own, named in a file: the services read it themselves
    else:
        mongo_url = os.environ.get("MONGODB_URL") or "mongodb://127.0.0.1:{}".format(_ensure_server(
            "mongodb", "MongoDB-protocol store (nx-27017)", "TASKFORCE_MONGO_PORT", 27017,
            servers.start_mongo))
    try:
        asyncio.run(ensure_topics(bootstrap, os.environ.get("TASKFORCE_TOPIC_PREFIX", "")))
    except SettingsError as exc:  # TLS or SASL settings that cannot work (never their values)
        raise typer.Exit(_fail(str(exc))) from None
    return bootstrap, mongo_url


def _fail(message: str) -> int:
    console.print(f"[red]✗[/] {message}")
    return 1


def start_service(service: str, bootstrap: str, mongo_url: str) -> None:
    if _running_pid(service) is not None:
        return
    logs = run_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "MONGODB_URL": mongo_url,
        "TASKFORCE_HTTP_PORT": str(service_port(service)),
        "TASKFORCE_TOKENS_FILE": str(tokens_file()),
        "TASKFORCE_SESSION_SECRET": os.environ.get("TASKFORCE_SESSION_SECRET", _secret()),
        "TASKFORCE_LOG_FILE": str(logs / f"{service}.log"),
    }
    with (logs / f"{service}.out").open("ab") as out:
        process = subprocess.Popen([sys.executable, "-m", f"services.{service}"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    _record(service, process.pid)


def wait_ready(service: str, timeout: float = 90.0) -> None:
    url = f"http://127.0.0.1:{service_port(service)}/readyz"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _running_pid(service) is None:
            raise typer.Exit(_fail(f"{service} exited; see {run_dir() / 'logs' / (service + '.out')}"))
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise typer.Exit(_fail(f"{service} not ready after {timeout:.0f} s; see {run_dir() / 'logs'}"))


@app.command()
def up() -> None:
    """Start broker, store, the four services and the gateway in the background; return when all are ready."""
    bootstrap, mongo_url = ensure_servers()
    for service in SERVICES:
        start_service(service, bootstrap, mongo_url)
    for service in SERVICES:
        wait_ready(service)
        console.print(f"[green]✓[/] {service} ready on http://127.0.0.1:{service_port(service)}")
    console.print(f"Logs and pid files: {run_dir()}   Stop everything: [bold]make down[/]")


@app.command()
def down() -> None:
    """Stop everything `up` started (services first, then store and broker)."""
    for name in (*reversed(SERVICES), "mongodb", "kafka"):
        pid = _running_pid(name)
        if pid is not None:
            servers.stop_pid(pid, timeout=30)
            console.print(f"[yellow]■[/] stopped {name} (pid {pid})")
        _pid_file(name).unlink(missing_ok=True)


@app.command()
def status() -> None:
    """Which parts are running."""
    for name in ("kafka", "mongodb", *SERVICES):
        pid = _running_pid(name)
        console.print(f"{name:10} {'running, pid ' + str(pid) if pid else 'stopped'}")


if __name__ == "__main__":
    app()
