"""How every client connects to Kafka and MongoDB: TLS, SASL, and what to say when a setting is wrong.

`kafka_connection` is the one function that turns the settings (KAFKA_BOOTSTRAP_SERVERS,
KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_*) into connection arguments. Every Kafka
client the project makes takes them from there: the services' FastStream broker
(`KafkaConnection.security`) and aiokafka producer, topic creation, offset commits, rebuild,
the `taskforce` command and the benchmark (`KafkaConnection.client_args`). MongoDB takes
everything from its URL (MONGODB_URL or MONGODB_URL_FILE): `tls=true`, `tlsCAFile`,
`tlsCertificateKeyFile`, `authSource` are the driver's own options.

When a connection fails, `diagnose_kafka` and `diagnose_store` tell a setting that cannot
work (an untrusted certificate, a plaintext client at a TLS port, a missing client
certificate, refused credentials) from an outage, by probing the server themselves: the
clients only say that they could not connect. A `SettingsError` names the setting and never
holds a secret (no password, no URL, no username).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pymongo
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaError, SaslAuthenticationFailed, UnsupportedSaslMechanismError
from aiokafka.protocol.metadata import MetadataRequest
from pydantic import SecretStr, ValidationError
from pymongo.errors import ConfigurationError, OperationFailure, PyMongoError

from services.common.secret_files import SettingsError, describe_validation_error

if TYPE_CHECKING:
    from faststream.security import BaseSecurity
    from pymongo import AsyncMongoClient

    from services.common.settings import Settings

__all__ = ["KafkaConnection", "SettingsError", "as_connection", "diagnose_kafka", "diagnose_store",
           "kafka_connection", "wait_for_servers"]

log = logging.getLogger(__name__)

TLS_PROTOCOLS = frozenset({"SSL", "SASL_SSL"})
SASL_PROTOCOLS = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})
#: How long a probe waits for a TCP connection, a TLS handshake or an answer.
PROBE_TIMEOUT_S = 5.0
#: How long the store's probe waits for a ping (the client's server selection gives up after 2 s).
STORE_PING_S = 3.0
#: A setting that cannot work is checked again this often while a service waits at startup.
SETTINGS_RETRY_S = 30.0
_CREDENTIALS = "KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD"


@dataclass(frozen=True)
class KafkaConnection:
    """Where the brokers are and how to talk to them; never printed with its secrets."""

    bootstrap_servers: str
    security_protocol: str = "PLAINTEXT"
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)
    sasl_mechanism: str | None = None
    sasl_username: str | None = field(default=None, repr=False)
    sasl_password: SecretStr | None = field(default=None, repr=False)
    #: For messages: whether a CA file / client certificate was configured (not their paths' content).
    cafile: Path | None = None
    client_certificate: bool = False

    @property
    def tls(self) -> bool:
        return self.security_protocol in TLS_PROTOCOLS

    @property
    def sasl(self) -> bool:
        return self.security_protocol in SASL_PROTOCOLS

    def connection_args(self) -> dict[str, Any]:
        """What aiokafka's clients (and its `create_conn`) take besides the bootstrap address."""
        args: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.tls:
            args["ssl_context"] = self.ssl_context
        if self.sasl:
            args["sasl_mechanism"] = self.sasl_mechanism
            args["sasl_plain_username"] = self.sasl_username
            password = self.sasl_password
            args["sasl_plain_password"] = password.get_secret_value() if password else None
        return args

    def client_args(self) -> dict[str, Any]:
        """Keyword arguments for AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient."""
        return {"bootstrap_servers": self.bootstrap_servers, **self.connection_args()}

    def security(self) -> BaseSecurity | None:
        """The same for FastStream's KafkaBroker (its `security=`), which turns it back into
        exactly `connection_args()` (a unit test holds the two together)."""
        from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

        if self.sasl:
            kind = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256,
                    "SCRAM-SHA-512": SASLScram512}[self.sasl_mechanism or ""]
            password = self.sasl_password.get_secret_value() if self.sasl_password else ""
            return kind(self.sasl_username or "", password, ssl_context=self.ssl_context, use_ssl=self.tls)
        if self.tls:
            return BaseSecurity(ssl_context=self.ssl_context, use_ssl=True)
        return None

    def addresses(self) -> list[tuple[str, int]]:
        """The bootstrap addresses as (host, port); 9092 when a port is missing."""
        found = []
        for item in self.bootstrap_servers.split(","):
            item = item.strip()
            if not item:
                continue
            host, sep, port = item.rpartition(":")
            if not sep or not port.isdigit() or host.endswith(":"):  # no port (or a bare IPv6 address)
                host, port = item, "9092"
            found.append((host.strip("[]"), int(port)))
        return found


def kafka_connection(settings: Settings | None = None, *,
                     bootstrap_servers: str | None = None) -> KafkaConnection:
    """THE connection arguments of every Kafka client, from the settings (default: the environment).

    `bootstrap_servers` overrides KAFKA_BOOTSTRAP_SERVERS (the CLI's --bootstrap-servers).
    Raises SettingsError for a setting or combination that cannot work, naming it.
    """
    if settings is None:
        from services.common.settings import Settings

        try:
            settings = Settings()
        except ValidationError as exc:
            raise SettingsError("settings", describe_validation_error(exc)) from None
    protocol = settings.kafka_security_protocol or "PLAINTEXT"
    bootstrap = (bootstrap_servers or settings.kafka_bootstrap_servers).strip()
    if not bootstrap:
        raise SettingsError("KAFKA_BOOTSTRAP_SERVERS", "is empty")
    tls, sasl = protocol in TLS_PROTOCOLS, protocol in SASL_PROTOCOLS
    cafile, certfile, keyfile = (settings.kafka_ssl_cafile, settings.kafka_ssl_certfile,
                                 settings.kafka_ssl_keyfile)
    tls_files = {"KAFKA_SSL_CAFILE": cafile, "KAFKA_SSL_CERTFILE": certfile, "KAFKA_SSL_KEYFILE": keyfile}
    if not tls:
        given = [name for name, value in tls_files.items() if value is not None]
        if given:
            raise SettingsError(given[0], f"is set, but KAFKA_SECURITY_PROTOCOL={protocol} does not use TLS "
                                          "(SSL or SASL_SSL do)")
    sasl_given = {"KAFKA_SASL_MECHANISM": settings.kafka_sasl_mechanism,
                  "KAFKA_SASL_USERNAME": settings.kafka_sasl_username,
                  "KAFKA_SASL_PASSWORD": settings.kafka_sasl_password}
    if not sasl:
        given = [name for name, value in sasl_given.items() if value]
        if given:
            raise SettingsError(given[0], f"is set, but KAFKA_SECURITY_PROTOCOL={protocol} does not use SASL "
                                          "(SASL_SSL or SASL_PLAINTEXT do)")
    else:
        for name, value in sasl_given.items():
            if not value or (isinstance(value, SecretStr) and not value.get_secret_value()):
                hint = " (or KAFKA_SASL_PASSWORD_FILE)" if name == "KAFKA_SASL_PASSWORD" else ""
                choices = ": PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512" if name == "KAFKA_SASL_MECHANISM" else ""
                raise SettingsError(name, f"is required{hint} with "
                                          f"KAFKA_SECURITY_PROTOCOL={protocol}{choices}")
    context = None
    if tls:
        context = tls_context(cafile, certfile, keyfile)
    return KafkaConnection(
        bootstrap, protocol, context,
        settings.kafka_sasl_mechanism if sasl else None,
        settings.kafka_sasl_username if sasl else None,
        settings.kafka_sasl_password if sasl else None,
        cafile, certfile is not None)


def as_connection(kafka: str | KafkaConnection) -> KafkaConnection:
    """A connection as given, or for a bootstrap address: that address, the rest from the environment."""
    return kafka if isinstance(kafka, KafkaConnection) else kafka_connection(bootstrap_servers=kafka)


def tls_context(cafile: Path | None, certfile: Path | None, keyfile: Path | None) -> ssl.SSLContext:
    """A client context that verifies the server (certificate chain and host name; TLS 1.2 or
    newer), trusting `cafile` or else the system's CA store, with a client certificate when given."""
    try:
        context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    except FileNotFoundError:
        raise SettingsError("KAFKA_SSL_CAFILE", f"{cafile} does not exist") from None
    except (OSError, ssl.SSLError) as exc:
        raise SettingsError("KAFKA_SSL_CAFILE", f"cannot load {cafile} as PEM certificates "
                                                f"({_ssl_reason(exc)})") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if keyfile is not None and certfile is None:
        raise SettingsError("KAFKA_SSL_CERTFILE", "is required with KAFKA_SSL_KEYFILE "
                                                  "(mutual TLS needs both)")
    if certfile is not None:
        def no_passphrase() -> bytes:  # an encrypted key must not make OpenSSL prompt on a terminal
            raise SettingsError("KAFKA_SSL_KEYFILE", "the key is encrypted; give it unencrypted "
                                                     "(mounted from a Secret)")

        for name, path in (("KAFKA_SSL_CERTFILE", certfile), ("KAFKA_SSL_KEYFILE", keyfile)):
            if path is not None and not path.is_file():
                raise SettingsError(name, f"{path} does not exist")
        try:
            context.load_cert_chain(str(certfile), str(keyfile) if keyfile else None, password=no_passphrase)
        except (OSError, ssl.SSLError) as exc:
            what = "KAFKA_SSL_CERTFILE, KAFKA_SSL_KEYFILE" if keyfile else "KAFKA_SSL_CERTFILE"
            raise SettingsError(what, "cannot load the client certificate and its key as PEM "
                                      f"({_ssl_reason(exc)})") from None
    return context


def _ssl_reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None)
    return str(reason) if reason else type(exc).__name__


# --------------------------------------------------------------------------------- diagnosis


def _api_versions_frame() -> bytes:
    """An ApiVersions v0 request (correlation id 1): every Kafka broker answers it, before any
    authentication, and no version is too old for it."""
    client_id = b"taskforce-probe"
    body = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id
    return struct.pack(">i", len(body)) + body


async def _kafka_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Send ApiVersions; True when a Kafka response frame comes back."""
    writer.write(_api_versions_frame())
    await writer.drain()
    size = struct.unpack(">i", await asyncio.wait_for(reader.readexactly(4), PROBE_TIMEOUT_S))[0]
    if not 4 <= size <= 1024 * 1024:
        return False
    response = await asyncio.wait_for(reader.readexactly(size), PROBE_TIMEOUT_S)
    return struct.unpack(">i", response[:4])[0] == 1


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), 1.0)


Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _open_unverified_tls(host: str, port: int) -> Streams | None:
    """A TLS connection to host:port for a probe (the certificate not checked), or None when
    no handshake completes within the probe's time (ssl.SSLError is an OSError)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        return await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context, server_hostname=host or None), PROBE_TIMEOUT_S)
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return None


async def speaks_tls(host: str, port: int) -> bool:
    """Whether the server at host:port completes a TLS handshake (certificate not checked)."""
    opened = await _open_unverified_tls(host, port)
    if opened is None:
        return False
    await _close(opened[1])
    return True


def _alert(exc: BaseException) -> str:
    return (getattr(exc, "reason", None) or str(exc) or type(exc).__name__).upper()


_CLIENT_CERT_MISSING = ("CERTIFICATE_REQUIRED", "HANDSHAKE_FAILURE")
_CLIENT_CERT_REFUSED = ("UNKNOWN_CA", "BAD_CERTIFICATE", "CERTIFICATE_UNKNOWN", "UNSUPPORTED_CERTIFICATE",
                        "CERTIFICATE_EXPIRED", "CERTIFICATE_REVOKED", "ACCESS_DENIED", "DECRYPT_ERROR")


def _client_certificate_problem(kafka: KafkaConnection, address: str, detail: str) -> SettingsError:
    if kafka.client_certificate:
        return SettingsError("KAFKA_SSL_CERTFILE", f"the broker at {address} refused the client certificate "
                                                   f"({detail}): is it signed by a CA the broker trusts?")
    return SettingsError("KAFKA_SSL_CERTFILE, KAFKA_SSL_KEYFILE",
                         f"the broker at {address} requires a client certificate (mutual TLS; {detail})")


async def _tls_problem(kafka: KafkaConnection, host: str, port: int) -> SettingsError | None:
    address = f"{host}:{port}"
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=kafka.ssl_context, server_hostname=host),
            PROBE_TIMEOUT_S)
    except ssl.SSLCertVerificationError as exc:
        message = exc.verify_message or "certificate verify failed"
        if exc.verify_code in (62, 64):  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
            return SettingsError("KAFKA_BOOTSTRAP_SERVERS",
                                 f"the certificate of the broker at {address} is not valid for {host} "
                                 f"({message})")
        trusted = (f"the CA in {kafka.cafile}" if kafka.cafile
                   else "the system's CA store (no KAFKA_SSL_CAFILE)")
        return SettingsError("KAFKA_SSL_CAFILE", f"the certificate of the broker at {address} is not "
                                                 f"trusted by {trusted} ({message})")
    except ssl.SSLError as exc:
        alert = _alert(exc)
        if any(name in alert for name in _CLIENT_CERT_MISSING + _CLIENT_CERT_REFUSED):
            return _client_certificate_problem(kafka, address, alert.lower())
        return _not_tls(kafka, address, alert.lower())
    except (TimeoutError, asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError):
        return _not_tls(kafka, address, "no TLS handshake")
    except OSError:
        return None  # unreachable: an outage, not a setting
    try:
        if await _kafka_answers(reader, writer):
            return None
        return SettingsError("KAFKA_BOOTSTRAP_SERVERS", f"{address} answers TLS, but not as a Kafka broker")
    except ssl.SSLError as exc:  # TLS 1.3: the server's verdict on our certificate comes after the handshake
        return _client_certificate_problem(kafka, address, _alert(exc).lower())
    except (TimeoutError, asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError):
        return _client_certificate_problem(kafka, address,
                                           "the connection was closed after the TLS handshake")
    except OSError:
        return None
    finally:
        await _close(writer)


def _not_tls(kafka: KafkaConnection, address: str, detail: str) -> SettingsError:
    return SettingsError("KAFKA_SECURITY_PROTOCOL",
                         f"{kafka.security_protocol} needs TLS, but the TLS handshake with {address} failed "
                         f"({detail}): is it a plaintext listener (PLAINTEXT or SASL_PLAINTEXT)?")


async def _plaintext_problem(kafka: KafkaConnection, host: str, port: int) -> SettingsError | None:
    address = f"{host}:{port}"
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), PROBE_TIMEOUT_S)
    except (OSError, TimeoutError):
        return None
    try:
        if await _kafka_answers(reader, writer):
            return None
    except (OSError, TimeoutError, asyncio.IncompleteReadError, struct.error):
        pass
    finally:
        await _close(writer)
    if await speaks_tls(host, port):
        wanted = "SASL_SSL" if kafka.sasl else "SSL (or SASL_SSL)"
        return SettingsError("KAFKA_SECURITY_PROTOCOL",
                             f"is {kafka.security_protocol}, but the broker at {address} expects TLS: "
                             f"use {wanted}")
    return None


async def diagnose_kafka(kafka: KafkaConnection) -> SettingsError | None:
    """Which setting keeps a client from the first bootstrap broker, or None (it works, or the
    broker cannot be reached at all: an outage, not a setting).

    Probes in the order a connection is made: TCP; TLS (certificate trust, host name, client
    certificate) or, for a plaintext protocol, whether the port expects TLS; a Kafka answer
    (ApiVersions); then aiokafka's own connection with SASL and a Metadata request.
    """
    addresses = kafka.addresses()
    if not addresses:
        return SettingsError("KAFKA_BOOTSTRAP_SERVERS", "names no broker")
    host, port = addresses[0]
    address = f"{host}:{port}"
    problem = await (_tls_problem if kafka.tls else _plaintext_problem)(kafka, host, port)
    if problem is not None:
        return problem
    conn = None
    try:
        conn = await create_conn(host, port, client_id="taskforce-probe",
                                 request_timeout_ms=int(PROBE_TIMEOUT_S * 1000), **kafka.connection_args())
        await conn.send(MetadataRequest([]))
    except UnsupportedSaslMechanismError:
        return SettingsError("KAFKA_SASL_MECHANISM", f"the broker at {address} does not offer "
                                                     f"{kafka.sasl_mechanism}")
    except SaslAuthenticationFailed:
        return SettingsError(_CREDENTIALS, f"the broker at {address} refused the credentials "
                                           f"({kafka.sasl_mechanism})")
    except (KafkaError, OSError, TimeoutError) as exc:
        if not kafka.sasl and "closed" in str(exc).lower():
            return SettingsError("KAFKA_SECURITY_PROTOCOL",
                                 f"is {kafka.security_protocol}, but the broker at {address} answers "
                                 "ApiVersions and then closes the connection: its listener requires SASL "
                                 "(SASL_SSL or SASL_PLAINTEXT)")
        if kafka.sasl and "closed" in str(exc).lower():
            return SettingsError(f"KAFKA_SASL_MECHANISM, {_CREDENTIALS}",
                                 f"the broker at {address} closed the connection during SASL "
                                 f"{kafka.sasl_mechanism} authentication")
        return None
    except Exception:  # aiokafka's SCRAM client fails on a server's "e=" answer with a KeyError
        if kafka.sasl:
            return SettingsError(_CREDENTIALS, f"the broker at {address} refused the credentials "
                                               f"({kafka.sasl_mechanism})")
        return None
    finally:
        if conn is not None:
            conn.close()
    return None


# --------------------------------------------------------------------------------- MongoDB


def _store_hosts(url: str) -> list[tuple[str, int]]:
    """The hosts of a mongodb:// URL (none for mongodb+srv://: DNS names them)."""
    parts = urlsplit(url)
    if parts.scheme != "mongodb":
        return []
    hosts = []
    for item in parts.netloc.rpartition("@")[2].split(","):
        host, sep, port = item.rpartition(":")
        if not sep or not port.isdigit():
            host, port = item, "27017"
        if host:
            hosts.append((host.strip("[]"), int(port)))
    return hosts


def _store_tls(url: str) -> bool:
    parts = urlsplit(url)
    options = {k.lower(): v for k, v in parse_qs(parts.query).items()}
    flag = (options.get("tls") or options.get("ssl") or [""])[-1].lower()
    return flag == "true" or (parts.scheme == "mongodb+srv" and flag != "false")


async def diagnose_store(client: AsyncMongoClient[dict[str, Any]], url: str) -> SettingsError | None:
    """Which part of MONGODB_URL keeps the client from the store, or None (it answers a ping,
    or cannot be reached at all). The URL itself never appears in the message."""
    try:
        with pymongo.timeout(STORE_PING_S):
            await client.admin.command("ping")
        return None
    except OperationFailure as exc:
        if exc.code in (18, 13):  # AuthenticationFailed, Unauthorized
            return SettingsError("MONGODB_URL", "the store refused the credentials in the URL "
                                                "(user, password or authSource)")
        return None
    except ConfigurationError as exc:
        return SettingsError("MONGODB_URL", f"the driver refused the URL's options ({type(exc).__name__})")
    except (PyMongoError, OSError) as exc:
        return await _store_transport_problem(url, str(exc))


_VERIFY = re.compile(r"certificate verify failed: ([^(\]]+)", re.I)


async def _store_transport_problem(url: str, error: str) -> SettingsError | None:
    text = error.upper()
    tls = _store_tls(url)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        found = _VERIFY.search(error)
        detail = found.group(1).strip() if found else "certificate verify failed"
        if "MISMATCH" in text:
            return SettingsError("MONGODB_URL", f"the store's certificate is not valid for the host in the "
                                                f"URL ({detail}); tlsAllowInvalidHostnames is not the fix")
        return SettingsError("MONGODB_URL (tlsCAFile)", f"the store's certificate is not trusted ({detail}): "
                                                        "name the CA that signed it with tlsCAFile")
    if "CERTIFICATE_REQUIRED" in text or "CERTIFICATE REQUIRED" in text:
        return SettingsError("MONGODB_URL (tlsCertificateKeyFile)", "the store requires a client certificate")
    if any(alert in text for alert in ("UNKNOWN_CA", "UNKNOWN CA", "BAD_CERTIFICATE", "BAD CERTIFICATE")):
        return SettingsError("MONGODB_URL (tlsCertificateKeyFile)",
                             "the store refused the client certificate")
    hosts = _store_hosts(url)
    if tls and any(mark in text for mark in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "WRONG VERSION",
                                             "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST")):
        return SettingsError("MONGODB_URL", "has tls=true, but the store does not speak TLS")
    for host, port in hosts:
        if not await _accepts_tcp(host, port):
            continue  # down: an outage
        if not tls and await speaks_tls(host, port):
            return SettingsError("MONGODB_URL", f"the store at {host}:{port} expects TLS: add tls=true "
                                                "to the URL (and tlsCAFile=... for a private CA)")
        if tls and not await speaks_tls(host, port):
            return SettingsError("MONGODB_URL", f"has tls=true, but the store at {host}:{port} does not "
                                                "complete a TLS handshake")
        if tls and await _closes_after_handshake(host, port):  # TLS 1.3: the verdict on our certificate
            if "tlscertificatekeyfile" in url.lower():
                return SettingsError("MONGODB_URL (tlsCertificateKeyFile)",
                                     "the store refused the client certificate")
            return SettingsError("MONGODB_URL (tlsCertificateKeyFile)",
                                 "the store requires a client certificate")
    return None


async def _closes_after_handshake(host: str, port: int) -> bool:
    """Whether the server ends a TLS connection without a client certificate right after the
    handshake (a server waiting for a request says nothing and keeps it open)."""
    opened = await _open_unverified_tls(host, port)
    if opened is None:
        return False
    reader, writer = opened
    try:
        return await asyncio.wait_for(reader.read(1), 1.0) == b""
    except TimeoutError:
        return False
    except (ssl.SSLError, OSError):
        return True
    finally:
        await _close(writer)


async def _accepts_tcp(host: str, port: int) -> bool:
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), PROBE_TIMEOUT_S)
    except (OSError, TimeoutError):
        return False
    await _close(writer)
    return True


# --------------------------------------------------------------------------------- startup


async def wait_for_servers(kafka: KafkaConnection, mongo: AsyncMongoClient[dict[str, Any]], mongodb_url: str,
                           *, service: str = "", retry_s: float = SETTINGS_RETRY_S) -> None:
    """A service's first step: wait while a connection setting cannot work.

    A problem is logged once, as one line naming the setting (again only when it changes),
    and checked again every `retry_s` seconds; meanwhile the service does not start (it is
    not ready) and makes no other connection attempts. An outage is not waited out here:
    the startup steps after this one retry through it as before.
    """
    reported: str | None = None
    while True:
        problem = await diagnose_kafka(kafka) or await diagnose_store(mongo, mongodb_url)
        if problem is None:
            if reported is not None:
                log.warning("the connection settings work now; starting", extra={"service": service})
            return
        if str(problem) != reported:
            log.error(f"cannot connect: {problem}; not ready, checking again every {retry_s:g} s",
                      extra={"setting": problem.setting})
            reported = str(problem)
        await asyncio.sleep(retry_s)
