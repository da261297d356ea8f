"""A service as a separate OS process, as in production."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from taskforce.servers import free_port


class ServiceProcess:
    def __init__(self, service: str, stack: object, prefix: str, log_dir: Path, **env: str) -> None:
        self.service = service
        self.port = free_port()
        self.log = log_dir / f"{service}-{self.port}.log"
        self.env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap_servers,  # type: ignore[attr-defined]
            "MONGODB_URL": stack.mongodb_url,  # type: ignore[attr-defined]
            "TASKFORCE_TOPIC_PREFIX": prefix,
            "TASKFORCE_HTTP_PORT": str(self.port),
            "TASKFORCE_LOG_FILE": str(self.log),
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def out(self) -> Path:
        """Where the process's own stdout and stderr go (the log is JSON lines in `log`)."""
        return self.log.parent / f"{self.service}-{self.port}.out"

    def launch(self) -> ServiceProcess:
        """Start the process without waiting for it to be ready."""
        with self.out.open("ab") as out:
            self.process = subprocess.Popen([sys.executable, "-m", f"services.{self.service}"], env=self.env,
                                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def start(self, ready_timeout: float = 60) -> ServiceProcess:
        self.launch()
        assert self.process is not None
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.service} exited with {self.process.returncode}; see {self.log}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.service} not ready within {ready_timeout} s")

    def terminate(self, timeout: float = 40) -> int:
        assert self.process is not None
        self.process.terminate()
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
