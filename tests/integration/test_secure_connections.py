"""Services and the `taskforce` command over real TLS, mutual TLS and SASL (issue 24).

Debian's stunnel terminates TLS in front of the embedded broker and store (the broker cannot
serve TLS itself, and advertises the terminator's port, so every connection a client makes
goes through TLS); the certificates are made for the run. Four brokers: TLS; TLS that
requires a client certificate; and two that require SASL (`--authentication`), one behind
TLS. The SASL brokers of this build accept no login at all (their credential store keeps
nothing, PLAIN is not offered: docs/infrastructure.md), so SASL is tested up to the
broker's refusal: the SCRAM exchange happens, and the client fails fast, naming the
setting, without the password.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from aiokafka.conn import AIOKafkaConnection, create_conn

from schemas import topics
from services.common.connections import KafkaConnection, diagnose_store, kafka_connection
from services.common.settings import load_settings
from services.common.store import mongo_client
from taskforce import servers
from taskforce.settle import wait_until_settled
from tests.support.events import assessed, received
from tests.support.kafka import read_until
from tests.support.processes import ServiceProcess
from tests.support.tls import Certificates, Route, Terminator, make_certificates, stunnel

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RUN_DIR = ROOT / "run" / "tests" / "tls"
#: A password no output may show (nor the user name).
PASSWORD = "pw-must-never-be-shown-7Qx"
USERNAME = "user-not-shown-either"
FAIL_FAST_S = 15.0


@dataclass
class Secure:
    certs: Certificates
    terminator: Terminator
    directory: Path
    tls: str          # a broker behind TLS
    tls_plain: str    # the same broker's own (plaintext) port
    mtls: str         # a broker behind TLS that requires a client certificate
    sasl_tls: str     # a broker that requires SASL, behind TLS
    sasl_plain: str   # a broker that requires SASL, plaintext
    store_tls: int    # the store behind TLS
    store_mtls: int   # the store behind TLS that requires a client certificate
    store_plain: int

    def store_url(self, port: int | None = None, *, ca: Path | None = None, client: bool = False,
                  tls: bool = True) -> str:
        port = port or self.store_tls
        if not tls:
            return f"mongodb://127.0.0.1:{port}/?directConnection=true"
        url = f"mongodb://127.0.0.1:{port}/?directConnection=true&tls=true&tlsCAFile={ca or self.certs.ca}"
        return url + (f"&tlsCertificateKeyFile={self.certs.client_pem}" if client else "")

    def kafka_env(self, address: str, protocol: str = "SSL", *, ca: Path | None = None, client: bool = False,
                  **more: str) -> dict[str, str]:
        env = {"KAFKA_BOOTSTRAP_SERVERS": address, "KAFKA_SECURITY_PROTOCOL": protocol}
        if protocol in ("SSL", "SASL_SSL"):
            env["KAFKA_SSL_CAFILE"] = str(ca or self.certs.ca)
        if client:
            env |= {"KAFKA_SSL_CERTFILE": str(self.certs.client),
                    "KAFKA_SSL_KEYFILE": str(self.certs.client_key)}
        return env | more

    def connection(self, env: dict[str, str]) -> KafkaConnection:
        """The test's own clients, built from the same variables by the same function."""
        return kafka_connection(load_settings("intake", **env))


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secure]:
    binary, why = stunnel()
    if binary is None:
        pytest.skip(f"no TLS terminator: {why}")
    directory = tmp_path_factory.mktemp("tls")
    certs = make_certificates(directory / "certs")
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    ports = {name: servers.free_port() for name in (
        "tls", "tls_plain", "mtls", "mtls_plain", "sasl_tls", "sasl_tls_plain", "sasl_plain",
        "store_tls", "store_mtls", "store_plain")}
    started: list[servers.Server] = []
    terminator = None
    try:
        for name, authentication in (("tls", False), ("mtls", False), ("sasl_tls", True)):
            started.append(servers.start_kafka(ports[f"{name}_plain"], RUN_DIR / f"tansu-{name}.log",
                                               advertised_port=ports[name], authentication=authentication))
        started.append(servers.start_kafka(ports["sasl_plain"], RUN_DIR / "tansu-sasl.log",
                                           authentication=True))
        started.append(servers.start_mongo(ports["store_plain"], RUN_DIR / "nx-tls.log"))
        terminator = Terminator(binary, certs, [
            Route("kafka-tls", ports["tls"], ports["tls_plain"]),
            Route("kafka-mtls", ports["mtls"], ports["mtls_plain"], require_client_certificate=True),
            Route("kafka-sasl", ports["sasl_tls"], ports["sasl_tls_plain"]),
            Route("store-tls", ports["store_tls"], ports["store_plain"]),
            Route("store-mtls", ports["store_mtls"], ports["store_plain"], require_client_certificate=True),
        ], directory)
        address = {name: f"127.0.0.1:{port}" for name, port in ports.items()}
        yield Secure(certs, terminator, directory, address["tls"], address["tls_plain"], address["mtls"],
                     address["sasl_tls"], address["sasl_plain"], ports["store_tls"], ports["store_mtls"],
                     ports["store_plain"])
    finally:
        if terminator is not None:
            terminator.stop()
        for server in reversed(started):
            server.stop()


def clean_environment(**env: str) -> dict[str, str]:
    """This process's environment without any Kafka, MongoDB or taskforce settings, plus `env`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "MONGODB_", "TASKFORCE_"))}
    return base | {"COLUMNS": "200"} | env


def cli(*args: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    """The real `taskforce` command in its own process; (result, seconds taken)."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "taskforce.cli", *args], env=clean_environment(**env),
                          capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
    return done, time.monotonic() - started


def feed(path: Path, prefix: str) -> Path:
    events = [received(f"{prefix}n1", "2022-03-01T10:00:00+01:00"),
              assessed(f"{prefix}n1", "2022-03-01T16:00:00+01:00"),
              received(f"{prefix}n2", "2022-03-02T10:00:00+01:00")]
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return path


def assert_fails_fast(result: tuple[subprocess.CompletedProcess[str], float], *names: str) -> str:
    """Exit code 2 within FAIL_FAST_S, one line naming the settings, no traceback, no secret."""
    done, seconds = result
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 2, output
    assert seconds < FAIL_FAST_S, f"took {seconds:.1f} s: {output}"
    assert len(output.splitlines()) == 1, output
    assert "Traceback" not in output
    for name in names:
        assert name in output, output
    assert PASSWORD not in output and USERNAME not in output
    return output


def log_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def stack_for(address: str, mongodb_url: str) -> Any:
    return SimpleNamespace(bootstrap_servers=address, mongodb_url=mongodb_url)


# ----------------------------------------------------------------------------- TLS works


@pytest.mark.e2e
async def test_services_and_cli_work_over_tls_with_ca_verification(secure: Secure, prefix, tmp_path):
    env = secure.kafka_env(secure.tls)
    url_file = tmp_path / "mongodb_url"
    url_file.write_text(secure.store_url() + "\n")  # a mounted Secret, as in Kubernetes
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"tls-test-token": "*"}))
    service_env = env | {"MONGODB_URL_FILE": str(url_file), "TASKFORCE_TOKENS_FILE": str(tokens)}
    # MONGODB_URL_FILE wins over MONGODB_URL: this one would never become ready.
    broken = stack_for(secure.tls, "mongodb://127.0.0.1:1/?directConnection=true")
    kafka_before = secure.terminator.accepted("kafka-tls")
    store_before = secure.terminator.accepted("store-tls")
    running = [ServiceProcess(name, broken, prefix, tmp_path, **service_env)
               for name in ("intake", "reporting")]
    try:
        for service in running:
            service.start(ready_timeout=90)
        path = feed(tmp_path / "feed.jsonl", prefix)
        published, _ = await asyncio.to_thread(cli, "publish", str(path), "--topic-prefix", prefix, env=env)
        assert published.returncode == 0, published.stdout + published.stderr
        assert f"{prefix}{topics.NOTIFICATIONS}" in published.stdout
        await wait_until_settled(secure.connection(env), prefix, quiet_s=0.5, timeout_s=90)

        api = ("--api", f"http://127.0.0.1:{running[1].port}", "--token", "tls-test-token")
        shown, _ = await asyncio.to_thread(cli, "summaries", "-m", "480", "--period", "2022H1", "--json",
                                           *api, env=env)
        assert shown.returncode == 0, shown.stdout + shown.stderr
        (row,) = json.loads(shown.stdout)
        assert row["notifications"]["received"] == 2 and row["notifications"]["assessed"] == 1
        written, _ = await asyncio.to_thread(cli, "reports", "-m", "480", "--out", str(tmp_path / "reports"),
                                             *api, env=env)
        assert written.returncode == 0, written.stdout + written.stderr
        assert (tmp_path / "reports" / "480-2022H1.html").is_file()
    finally:
        for service in running:
            service.kill()
    # Everything went through the terminator: the broker advertises only its TLS port.
    assert secure.terminator.accepted("kafka-tls") > kafka_before
    assert secure.terminator.accepted("store-tls") > store_before
    for service in running:
        errors = [r for r in log_records(service.log) if r["level"] == "error"]
        assert not errors, errors


# ----------------------------------------------------------------------------- mutual TLS


async def test_mutual_tls_works_with_a_client_certificate_and_is_required(secure: Secure, prefix, tmp_path):
    path = feed(tmp_path / "feed.jsonl", prefix)
    with_certificate = secure.kafka_env(secure.mtls, client=True)
    done, _ = await asyncio.to_thread(cli, "publish", str(path), "--topic-prefix", prefix,
                                      env=with_certificate)
    assert done.returncode == 0, done.stdout + done.stderr
    records = await read_until(secure.connection(with_certificate), prefix + topics.NOTIFICATIONS,
                               lambda rs: len(rs) >= 3, timeout=30)
    assert len(records) == 3

    without = secure.kafka_env(secure.mtls)
    output = assert_fails_fast(await asyncio.to_thread(cli, "publish", str(path), env=without),
                               "KAFKA_SSL_CERTFILE")
    assert "requires a client certificate" in output
    foreign = secure.kafka_env(secure.mtls, KAFKA_SSL_CERTFILE=str(secure.certs.other_client),
                               KAFKA_SSL_KEYFILE=str(secure.certs.other_client_key))
    output = assert_fails_fast(await asyncio.to_thread(cli, "publish", str(path), env=foreign),
                               "KAFKA_SSL_CERTFILE")
    assert "client certificate" in output


@pytest.mark.e2e
def test_a_service_connects_with_client_certificates_to_broker_and_store(secure: Secure, prefix, tmp_path):
    env = secure.kafka_env(secure.mtls, client=True)
    store = secure.store_url(secure.store_mtls, client=True)
    service = ServiceProcess("intake", stack_for(secure.mtls, store), prefix, tmp_path, **env)
    try:
        service.start(ready_timeout=90)
    finally:
        service.kill()


async def test_the_store_names_the_url_option_that_is_wrong(secure: Secure):
    cases = {
        "tlsCAFile": secure.store_url(ca=secure.certs.other_ca),
        "expects TLS: add tls=true": secure.store_url(tls=False),
        "does not complete a TLS handshake": secure.store_url(secure.store_plain),
        "tlsCertificateKeyFile": secure.store_url(secure.store_mtls),
    }
    for expected, url in cases.items():
        client = mongo_client(url)
        try:
            problem = await diagnose_store(client, url)
        finally:
            await client.close()
        assert problem is not None and expected in str(problem), (expected, problem)
        assert problem.setting.startswith("MONGODB_URL") and url not in str(problem)
    client = mongo_client(secure.store_url(secure.store_mtls, client=True))
    try:
        assert await diagnose_store(client, "") is None
    finally:
        await client.close()


# ----------------------------------------------------------------------------- failing fast


@pytest.mark.parametrize(("case", "setting", "saying"), [
    ("wrong CA", "KAFKA_SSL_CAFILE", "is not trusted"),
    ("plaintext client at the TLS port", "KAFKA_SECURITY_PROTOCOL", "expects TLS"),
    ("TLS client at a plaintext port", "KAFKA_SECURITY_PROTOCOL", "TLS handshake"),
    ("TLS options without TLS", "KAFKA_SSL_CAFILE", "does not use TLS"),
    ("a CA file that is not there", "KAFKA_SSL_CAFILE", "does not exist"),
])
def test_a_wrong_setting_fails_fast_in_one_line_naming_it(secure: Secure, prefix, tmp_path, case, setting,
                                                          saying):
    env = {
        "wrong CA": secure.kafka_env(secure.tls, ca=secure.certs.other_ca),
        "plaintext client at the TLS port": secure.kafka_env(secure.tls, "PLAINTEXT"),
        "TLS client at a plaintext port": secure.kafka_env(secure.tls_plain),
        "TLS options without TLS": secure.kafka_env(secure.tls, "PLAINTEXT",
                                                    KAFKA_SSL_CAFILE=str(secure.certs.ca)),
        "a CA file that is not there": secure.kafka_env(secure.tls, ca=tmp_path / "missing.pem"),
    }[case]
    path = feed(tmp_path / "feed.jsonl", prefix)
    output = assert_fails_fast(cli("publish", str(path), "--topic-prefix", prefix, env=env), setting)
    assert saying in output


@pytest.mark.e2e
@pytest.mark.parametrize("case", ["wrong CA for Kafka", "plaintext URL for a TLS store", "SCRAM refused"])
def test_a_service_with_a_wrong_setting_stays_not_ready_and_says_so_once(secure: Secure, prefix, tmp_path,
                                                                         case):
    password_file = tmp_path / "kafka_sasl_password"
    password_file.write_text(PASSWORD + "\n")
    kafka, url, setting = {
        "wrong CA for Kafka": (secure.kafka_env(secure.tls, ca=secure.certs.other_ca), secure.store_url(),
                               "KAFKA_SSL_CAFILE"),
        "plaintext URL for a TLS store": (secure.kafka_env(secure.tls), secure.store_url(tls=False),
                                          "MONGODB_URL"),
        "SCRAM refused": (secure.kafka_env(secure.sasl_tls, "SASL_SSL", KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
                                           KAFKA_SASL_USERNAME=USERNAME,
                                           KAFKA_SASL_PASSWORD_FILE=str(password_file)),
                          secure.store_url(), "KAFKA_SASL_PASSWORD"),
    }[case]
    service = ServiceProcess("intake", stack_for(kafka["KAFKA_BOOTSTRAP_SERVERS"], url), prefix, tmp_path,
                             **kafka)
    service.launch()
    try:
        deadline = time.monotonic() + 60
        while not any(r["level"] == "error" for r in log_records(service.log)):
            assert service.process is not None and service.process.poll() is None, service.out.read_text()
            assert time.monotonic() < deadline, f"no error logged: {log_records(service.log)}"
            time.sleep(0.2)
        time.sleep(3)  # and then: still there, still not serving, nothing more said
        assert service.process is not None and service.process.poll() is None, "the service exited"
        with pytest.raises(httpx.HTTPError):  # not ready: it waits before serving anything
            httpx.get(f"http://127.0.0.1:{service.port}/readyz", timeout=1).raise_for_status()
    finally:
        service.kill()
    records = log_records(service.log)
    errors = [r for r in records if r["level"] == "error"]
    assert len(errors) == 1, records
    assert setting in errors[0]["msg"] and setting in errors[0]["setting"]
    assert len(records) <= 4, f"busy: {records}"
    text = service.log.read_text() + service.out.read_text()
    assert PASSWORD not in text and USERNAME not in text and "Traceback" not in text


def test_a_setting_that_cannot_work_stops_the_service_at_once(secure: Secure, prefix, tmp_path):
    """Static configuration errors (here: SASL without a mechanism) end the process with exit
    code 2 and one line: no restart cures them."""
    service = ServiceProcess("intake", stack_for(secure.sasl_tls, secure.store_url()), prefix, tmp_path,
                             **secure.kafka_env(secure.sasl_tls, "SASL_SSL", KAFKA_SASL_USERNAME=USERNAME,
                                                KAFKA_SASL_PASSWORD=PASSWORD))
    with pytest.raises(RuntimeError, match="exited with 2"):
        service.start(ready_timeout=30)
    out = service.out.read_text().strip()
    assert out.splitlines() == [out] and "KAFKA_SASL_MECHANISM: is required" in out
    assert PASSWORD not in out and USERNAME not in out


# ----------------------------------------------------------------------------- SASL


@pytest.mark.parametrize(("mechanism", "protocol"), [
    ("SCRAM-SHA-256", "SASL_SSL"), ("SCRAM-SHA-512", "SASL_SSL"), ("SCRAM-SHA-256", "SASL_PLAINTEXT")])
def test_scram_credentials_the_broker_refuses_fail_fast_without_showing_them(secure: Secure, prefix, tmp_path,
                                                                            mechanism, protocol):
    address = secure.sasl_tls if protocol == "SASL_SSL" else secure.sasl_plain
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD)
    env = secure.kafka_env(address, protocol, KAFKA_SASL_MECHANISM=mechanism, KAFKA_SASL_USERNAME=USERNAME,
                           KAFKA_SASL_PASSWORD_FILE=str(password_file))
    path = feed(tmp_path / "feed.jsonl", prefix)
    output = assert_fails_fast(cli("publish", str(path), "--topic-prefix", prefix, env=env),
                               "KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD")
    assert f"refused the credentials ({mechanism})" in output


def test_a_client_without_sasl_at_a_sasl_listener_is_told_so(secure: Secure, prefix, tmp_path):
    path = feed(tmp_path / "feed.jsonl", prefix)
    output = assert_fails_fast(cli("publish", str(path), env=secure.kafka_env(secure.sasl_tls)),
                               "KAFKA_SECURITY_PROTOCOL")
    assert "requires SASL" in output
    plain = secure.kafka_env(secure.sasl_plain, "SASL_PLAINTEXT", KAFKA_SASL_MECHANISM="PLAIN",
                             KAFKA_SASL_USERNAME=USERNAME, KAFKA_SASL_PASSWORD=PASSWORD)
    output = assert_fails_fast(cli("publish", str(path), env=plain), "KAFKA_SASL_MECHANISM")
    assert "during SASL PLAIN authentication" in output


async def test_scram_exchange_reaches_the_broker(secure: Secure, monkeypatch):
    """The SCRAM client really talks SCRAM to the broker (handshake, client-first, client-final)
    before the refusal: the embedded broker answers the final message with e=unknown-user,
    since this build keeps no credentials (docs/infrastructure.md)."""
    connection = secure.connection(secure.kafka_env(
        secure.sasl_plain, "SASL_PLAINTEXT", KAFKA_SASL_MECHANISM="SCRAM-SHA-256",
        KAFKA_SASL_USERNAME=USERNAME, KAFKA_SASL_PASSWORD=PASSWORD))
    host, port = connection.addresses()[0]
    seen: list[bytes] = []
    original = AIOKafkaConnection.send

    async def recording(self: AIOKafkaConnection, request: Any, *args: Any, **kwargs: Any) -> Any:
        response = await original(self, request, *args, **kwargs)
        if hasattr(response, "sasl_auth_bytes"):
            seen.append(response.sasl_auth_bytes)
        return response

    monkeypatch.setattr(AIOKafkaConnection, "send", recording)
    with pytest.raises(KeyError):  # aiokafka 0.14 does not parse a server-final "e=" message
        await asyncio.wait_for(create_conn(host, port, **connection.connection_args()), 10)
    assert len(seen) == 2 and seen[0].startswith(b"r=") and b",s=" in seen[0] and b",i=" in seen[0]
    assert seen[1] == b"e=unknown-user"
