"""Connection settings: the one function every Kafka client takes its arguments from, the
`_FILE` variants, and errors that name a setting without its value (issue 24).

Real TLS, mutual TLS and SASL against servers: tests/integration/test_secure_connections.py.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from faststream.kafka.security import parse_security
from pydantic import SecretStr

from services.common.connections import (
    KafkaConnection,
    _store_hosts,
    _store_tls,
    as_connection,
    kafka_connection,
)
from services.common.secret_files import SettingsError, read_secret_file
from services.common.settings import Settings
from services.common.store import mongo_client

pytestmark = pytest.mark.unit

SECRET = "s3cret-value-never-shown"
VARIABLES = ("KAFKA_BOOTSTRAP_SERVERS", "KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM",
             "KAFKA_SASL_USERNAME", "KAFKA_SASL_USERNAME_FILE", "KAFKA_SASL_PASSWORD",
             "KAFKA_SASL_PASSWORD_FILE", "KAFKA_SSL_CAFILE", "KAFKA_SSL_CERTFILE", "KAFKA_SSL_KEYFILE",
             "MONGODB_URL", "MONGODB_URL_FILE",
             "TASKFORCE_SESSION_SECRET", "TASKFORCE_SESSION_SECRET_FILE", "TASKFORCE_SECURE_COOKIES",
             "TASKFORCE_HTTP_HOST")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def settings(**values: object) -> Settings:
    return Settings(**values)  # type: ignore[arg-type]


def sasl(protocol: str = "SASL_SSL", mechanism: str = "SCRAM-SHA-512", **more: object) -> Settings:
    return settings(KAFKA_SECURITY_PROTOCOL=protocol, KAFKA_SASL_MECHANISM=mechanism,
                    KAFKA_SASL_USERNAME="svc-user", KAFKA_SASL_PASSWORD=SECRET, **more)


def test_without_new_variables_nothing_changes():
    kafka = kafka_connection(settings(KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9092"))
    assert kafka.client_args() == {"bootstrap_servers": "127.0.0.1:9092", "security_protocol": "PLAINTEXT"}
    assert kafka.security() is None
    assert not kafka.tls and not kafka.sasl


@pytest.mark.parametrize("protocol", ["SSL", "SASL_PLAINTEXT", "SASL_SSL", "PLAINTEXT"])
@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_faststream_gets_exactly_what_aiokafka_gets(protocol: str, mechanism: str):
    given = (sasl(protocol, mechanism) if protocol.startswith("SASL")
             else settings(KAFKA_SECURITY_PROTOCOL=protocol))
    kafka = kafka_connection(given)
    expected = kafka.connection_args()
    got = parse_security(kafka.security())
    if protocol == "PLAINTEXT":
        assert got == {} and expected == {"security_protocol": "PLAINTEXT"}
        return
    assert got.pop("ssl_context") is kafka.ssl_context
    assert got == {k: v for k, v in expected.items() if k != "ssl_context"}
    if kafka.tls:
        context = kafka.ssl_context
        assert isinstance(context, ssl.SSLContext)
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
        assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    if kafka.sasl:
        assert expected["sasl_mechanism"] == mechanism and expected["sasl_plain_password"] == SECRET


def test_protocol_and_mechanism_are_case_insensitive_and_blank_is_unset():
    kafka = kafka_connection(settings(KAFKA_SECURITY_PROTOCOL="sasl_ssl",
                                      KAFKA_SASL_MECHANISM="scram-sha-256", KAFKA_SASL_USERNAME="u",
                                      KAFKA_SASL_PASSWORD="p", KAFKA_SSL_CAFILE=""))
    assert (kafka.security_protocol, kafka.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-256")
    assert kafka_connection(settings(KAFKA_SECURITY_PROTOCOL="")).security_protocol == "PLAINTEXT"


@pytest.mark.parametrize(("values", "named"), [
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": SECRET},
     "KAFKA_SASL_MECHANISM"),
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "PLAIN",
      "KAFKA_SASL_PASSWORD": SECRET}, "KAFKA_SASL_USERNAME"),
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "PLAIN",
      "KAFKA_SASL_USERNAME": "u"}, "KAFKA_SASL_PASSWORD"),
    ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": SECRET},
     "KAFKA_SASL_USERNAME"),
    ({"KAFKA_SECURITY_PROTOCOL": "PLAINTEXT", "KAFKA_SSL_CAFILE": "/etc/ssl/ca.pem"}, "KAFKA_SSL_CAFILE"),
    ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"}, "KAFKA_SSL_CAFILE"),
    ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_KEYFILE": "/nonexistent/client.key"},
     "KAFKA_SSL_CERTFILE"),
    ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERTFILE": "/nonexistent/client.pem"},
     "KAFKA_SSL_CERTFILE"),
    ({"KAFKA_BOOTSTRAP_SERVERS": " "}, "KAFKA_BOOTSTRAP_SERVERS"),
])
def test_a_combination_that_cannot_work_names_the_setting_not_the_secret(values: dict[str, str], named: str):
    with pytest.raises(SettingsError) as raised:
        kafka_connection(settings(**values))
    assert raised.value.setting.startswith(named), str(raised.value)
    assert str(raised.value).startswith(named) and "\n" not in str(raised.value)
    assert SECRET not in str(raised.value)


def test_a_ca_file_that_is_not_pem_is_named(tmp_path: Path):
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(SettingsError, match=r"^KAFKA_SSL_CAFILE: cannot load"):
        kafka_connection(settings(KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CAFILE=str(bad)))


def test_an_invalid_value_from_the_environment_is_named_without_the_value(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "TLS-please")
    with pytest.raises(SettingsError) as raised:
        kafka_connection()
    assert "KAFKA_SECURITY_PROTOCOL" in str(raised.value)
    assert "TLS-PLEASE" not in str(raised.value).upper()


def test_file_variants_win_and_are_stripped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    files = {"password": f"  {SECRET}\n", "user": "svc-from-file\n",
             "url": "mongodb://u:p@db.example.org/?tls=true\n", "session": "signing-key\n"}
    for name, value in files.items():
        (tmp_path / name).write_text(value)
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "from-the-variable")
    monkeypatch.setenv("MONGODB_URL", "mongodb://127.0.0.1:1")
    given = settings(KAFKA_SECURITY_PROTOCOL="SASL_SSL", KAFKA_SASL_MECHANISM="SCRAM-SHA-256",
                     KAFKA_SASL_USERNAME_FILE=str(tmp_path / "user"),
                     KAFKA_SASL_PASSWORD_FILE=str(tmp_path / "password"),
                     MONGODB_URL_FILE=str(tmp_path / "url"),
                     TASKFORCE_SESSION_SECRET_FILE=str(tmp_path / "session"))
    assert given.kafka_sasl_password is not None and given.kafka_sasl_password.get_secret_value() == SECRET
    assert given.kafka_sasl_username == "svc-from-file"
    assert given.mongodb_url == "mongodb://u:p@db.example.org/?tls=true"
    assert given.session_secret == "signing-key"
    kafka = kafka_connection(given)
    assert kafka.client_args()["sasl_plain_password"] == SECRET
    for shown in (repr(given), str(given), repr(kafka), str(kafka)):
        assert SECRET not in shown and "svc-from-file" not in repr(kafka)


@pytest.mark.parametrize("variable", ["KAFKA_SASL_PASSWORD_FILE", "MONGODB_URL_FILE",
                                      "TASKFORCE_SESSION_SECRET_FILE", "KAFKA_SASL_USERNAME_FILE"])
def test_an_unreadable_secret_file_is_named(tmp_path: Path, variable: str):
    with pytest.raises(SettingsError, match=f"^{variable}: cannot read .*missing"):
        settings(**{variable: str(tmp_path / "missing")})
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(SettingsError, match=f"^{variable}: .* is empty"):
        settings(**{variable: str(empty)})


def test_a_secret_file_is_read_as_text(tmp_path: Path):
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(SettingsError, match="not UTF-8"):
        read_secret_file(binary, "X_FILE")


@pytest.mark.parametrize(("host", "given", "secure"), [
    ("127.0.0.1", None, False), ("localhost", None, False), ("::1", None, False),
    ("0.0.0.0", None, True), ("10.1.2.3", None, True),
    ("0.0.0.0", "false", False), ("127.0.0.1", "true", True),
])
def test_session_cookies_are_secure_by_default_outside_loopback(host: str, given: str | None, secure: bool,
                                                                monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TASKFORCE_HTTP_HOST", host)
    if given is not None:
        monkeypatch.setenv("TASKFORCE_SECURE_COOKIES", given)
    loaded = Settings()
    assert loaded.session_cookies_secure is secure
    if "secure_cookies" in Settings.model_fields:  # declared with the HTTP access settings
        assert loaded.secure_cookies is secure


def test_bootstrap_addresses():
    kafka = KafkaConnection("b-1.example.org:9096, b-2.example.org:9096,[::1]:9093,plainhost")
    assert kafka.addresses() == [("b-1.example.org", 9096), ("b-2.example.org", 9096), ("::1", 9093),
                                 ("plainhost", 9092)]


def test_a_bootstrap_address_takes_the_rest_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SSL")
    kafka = as_connection("broker.example.org:9093")
    assert kafka.bootstrap_servers == "broker.example.org:9093" and kafka.tls
    given = KafkaConnection("x:1")
    assert as_connection(given) is given


def test_store_url_reading():
    assert _store_hosts("mongodb://user:p%40ss@a.example.org:27018,b.example.org/db?tls=true") == [
        ("a.example.org", 27018), ("b.example.org", 27017)]
    assert _store_hosts("mongodb+srv://u:p@cluster0.abcde.mongodb.net/") == []
    assert _store_tls("mongodb://h/?tls=true") and _store_tls("mongodb://h/?ssl=true")
    assert _store_tls("mongodb+srv://cluster0.abcde.mongodb.net/") and not _store_tls("mongodb://h/")
    assert not _store_tls("mongodb+srv://c.example.net/?tls=false")


def test_a_url_the_driver_refuses_is_named_without_the_url(tmp_path: Path):
    for url in ("mongodb://user:" + SECRET + "@h:notaport/", "http://user:" + SECRET + "@h/",
                f"mongodb://user:{SECRET}@h/?tls=true&tlsCAFile={tmp_path / 'missing.pem'}"):
        with pytest.raises(SettingsError) as raised:
            mongo_client(url)
        assert raised.value.setting == "MONGODB_URL" and SECRET not in str(raised.value)


def test_secret_str_password_is_not_in_settings_repr():
    given = sasl()
    assert isinstance(given.kafka_sasl_password, SecretStr)
    assert SECRET not in repr(given) and SECRET not in repr(kafka_connection(given))
