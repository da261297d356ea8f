"""Service settings from the environment (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.rules import GRACE_DAYS
from services.common.secret_files import read_secret_file

DEFAULT_PORTS: dict[str, int] = {"reporting": 8000, "intake": 8001, "analysis": 8002, "followup": 8003,
                                 "gateway": 8004}
#: Bind addresses that only this machine reaches: session cookies need not be `Secure` there.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class Settings(BaseSettings):
    """Everything a service is told from outside. Names are the environment variables."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    service: str = Field(default="intake", alias="TASKFORCE_SERVICE")
    kafka_bootstrap_servers: str = Field(default="127.0.0.1:9092", alias="KAFKA_BOOTSTRAP_SERVERS")
    mongodb_url: str = Field(default="mongodb://127.0.0.1:27017", alias="MONGODB_URL")
    http_host: str = Field(default="127.0.0.1", alias="TASKFORCE_HTTP_HOST")
    http_port: int | None = Field(default=None, alias="TASKFORCE_HTTP_PORT")
    #: Prefixes every topic, consumer group and database name: isolates tests and tenants.
    topic_prefix: str = Field(default="", alias="TASKFORCE_TOPIC_PREFIX")
    tokens_file: Path | None = Field(default=None, alias="TASKFORCE_TOKENS_FILE")
    session_secret: str | None = Field(default=None, alias="TASKFORCE_SESSION_SECRET")
    grace_days: int = Field(default=GRACE_DAYS, ge=0, alias="TASKFORCE_GRACE_DAYS")
    batch_max_records: int = Field(default=2000, ge=1, alias="TASKFORCE_BATCH_MAX_RECORDS")
    batch_timeout_ms: int = Field(default=50, ge=1, alias="TASKFORCE_BATCH_TIMEOUT_MS")
    #: How long the broker may hold a fetch when no records are waiting. aiokafka's 500 ms
    #: adds up to half a second per hop; the embedded broker always waits it out.
    fetch_max_wait_ms: int = Field(default=100, ge=1, alias="TASKFORCE_FETCH_MAX_WAIT_MS")
    #: While records wait on a municipality's partition, its summaries are recomputed once the
    #: partition is caught up, but at least this often (0: after every batch).
    summary_max_delay_ms: int = Field(default=1000, ge=0, alias="TASKFORCE_SUMMARY_MAX_DELAY_MS")
    #: Reporting: the memory for the rows of recently used (kind, municipality, period)
    #: buckets (`services.reporting.row_cache`), least recently used out beyond it.
    replica_cache_mb: int = Field(default=128, ge=1, alias="TASKFORCE_REPLICA_CACHE_MB")
    #: The largest request the producer sends (aiokafka's max_request_size): set it to the
    #: broker's message.max.bytes. A record over it is refused for good and dead-lettered.
    producer_max_request_bytes: int = Field(default=1024 * 1024, ge=64 * 1024,
                                            alias="TASKFORCE_PRODUCER_MAX_REQUEST_BYTES")
    #: How often consumer lag is measured for every owned partition (one end-offsets request),
    #: beside after each batch: an idle or stuck consumer's lag stays current.
    lag_refresh_s: float = Field(default=10.0, gt=0, alias="TASKFORCE_LAG_REFRESH_S")
    log_level: str = Field(default="INFO", alias="TASKFORCE_LOG_LEVEL")
    log_file: Path | None = Field(default=None, alias="TASKFORCE_LOG_FILE")
    group_suffix: str = Field(default="", alias="TASKFORCE_GROUP_SUFFIX")
    # --- access: who may read what (services.common.auth; docs/operations.md "Access") ---
    #: OIDC bearer tokens (JWT, RS256/ES256) beside the tokens file; on when the issuer is set.
    oidc_issuer: str | None = Field(default=None, alias="TASKFORCE_OIDC_ISSUER")
    oidc_audience: str | None = Field(default=None, alias="TASKFORCE_OIDC_AUDIENCE")
    oidc_jwks_url: str | None = Field(default=None, alias="TASKFORCE_OIDC_JWKS_URL")
    oidc_jwks_file: Path | None = Field(default=None, alias="TASKFORCE_OIDC_JWKS_FILE")
    #: The claim naming the municipalities a token may read: a code, a list of codes, or "*"
    #: (a dotted path reaches into objects, e.g. "taskforce.municipalities").
    oidc_scope_claim: str = Field(default="municipality_code", alias="TASKFORCE_OIDC_SCOPE_CLAIM")
    #: Only claim values with this prefix count, the prefix cut off (e.g. "municipality." for
    #: Entra ID app roles "municipality.480", "municipality.*").
    oidc_scope_prefix: str = Field(default="", alias="TASKFORCE_OIDC_SCOPE_PREFIX")
    oidc_leeway_s: float = Field(default=30.0, ge=0, le=300, alias="TASKFORCE_OIDC_LEEWAY_S")
    #: An unknown key id re-fetches the key set, at most this often.
    oidc_jwks_min_refresh_s: float = Field(default=10.0, ge=0, alias="TASKFORCE_OIDC_JWKS_MIN_REFRESH_S")
    #: Keys are re-fetched at least this often (a key the provider dropped stops working).
    oidc_jwks_max_age_s: float = Field(default=3600.0, gt=0, alias="TASKFORCE_OIDC_JWKS_MAX_AGE_S")
    #: Failed sign-ins per client address within the window before sign-in answers 429.
    signin_max_failures: int = Field(default=5, ge=1, alias="TASKFORCE_SIGNIN_MAX_FAILURES")
    signin_window_s: float = Field(default=300.0, gt=0, alias="TASKFORCE_SIGNIN_WINDOW_S")
    #: Session and sign-in cookies only over HTTPS (set it behind a TLS-terminating proxy).
    secure_cookies: bool = Field(default=False, alias="TASKFORCE_SECURE_COOKIES")
    #: Audit events waiting for the producer; past this they are counted and logged, not sent.
    audit_queue_size: int = Field(default=10_000, ge=1, alias="TASKFORCE_AUDIT_QUEUE_SIZE")

    # Secured connections (docs/operations.md, "Connecting to a managed Kafka and MongoDB").
    # Kafka: every client takes its arguments from services.common.connections.kafka_connection.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", alias="KAFKA_SECURITY_PROTOCOL")
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        default=None, alias="KAFKA_SASL_MECHANISM")
    kafka_sasl_username: str | None = Field(default=None, alias="KAFKA_SASL_USERNAME")
    kafka_sasl_username_file: Path | None = Field(default=None, alias="KAFKA_SASL_USERNAME_FILE")
    kafka_sasl_password: SecretStr | None = Field(default=None, alias="KAFKA_SASL_PASSWORD")
    kafka_sasl_password_file: Path | None = Field(default=None, alias="KAFKA_SASL_PASSWORD_FILE")
    #: The CA that signed the brokers' certificates (PEM); unset: the system's CA store.
    kafka_ssl_cafile: Path | None = Field(default=None, alias="KAFKA_SSL_CAFILE")
    #: A client certificate (PEM) for mutual TLS, with its unencrypted key (or both in the certfile).
    kafka_ssl_certfile: Path | None = Field(default=None, alias="KAFKA_SSL_CERTFILE")
    kafka_ssl_keyfile: Path | None = Field(default=None, alias="KAFKA_SSL_KEYFILE")
    #: MONGODB_URL from a file (a mounted Secret); wins over MONGODB_URL. TLS and credentials are
    #: the URL's own options (tls=true, tlsCAFile, tlsCertificateKeyFile, authSource).
    mongodb_url_file: Path | None = Field(default=None, alias="MONGODB_URL_FILE")
    session_secret_file: Path | None = Field(default=None, alias="TASKFORCE_SESSION_SECRET_FILE")

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism", mode="before")
    @classmethod
    def _upper_or_unset(cls, value: Any, info: ValidationInfo) -> Any:
        """`sasl_ssl` means SASL_SSL; an empty value (a blank ConfigMap key) means the default."""
        if isinstance(value, str):
            value = value.strip().upper()
            if not value:
                return "PLAINTEXT" if info.field_name == "kafka_security_protocol" else None
        return value

    @field_validator("kafka_sasl_username", "kafka_sasl_username_file", "kafka_sasl_password",
                     "kafka_sasl_password_file", "kafka_ssl_cafile", "kafka_ssl_certfile",
                     "kafka_ssl_keyfile", "mongodb_url_file", "session_secret_file", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _read_secret_files(self) -> Settings:
        """`NAME_FILE` wins over `NAME`: the file's content (stripped) becomes the value. An
        unreadable file raises SettingsError (not a pydantic error, whose text repeats inputs)."""
        if self.kafka_sasl_username_file is not None:
            self.kafka_sasl_username = read_secret_file(self.kafka_sasl_username_file,
                                                        "KAFKA_SASL_USERNAME_FILE")
        if self.kafka_sasl_password_file is not None:
            self.kafka_sasl_password = SecretStr(
                read_secret_file(self.kafka_sasl_password_file, "KAFKA_SASL_PASSWORD_FILE"))
        if self.mongodb_url_file is not None:
            self.mongodb_url = read_secret_file(self.mongodb_url_file, "MONGODB_URL_FILE")
        if self.session_secret_file is not None:
            self.session_secret = read_secret_file(self.session_secret_file, "TASKFORCE_SESSION_SECRET_FILE")
        return self

    @model_validator(mode="after")
    def _secure_cookies_by_default(self) -> Settings:
        """TASKFORCE_SECURE_COOKIES unset: on unless the HTTP server binds a loopback address."""
        if "secure_cookies" in type(self).model_fields and "secure_cookies" not in self.model_fields_set:
            self.secure_cookies = self.session_cookies_secure
        return self

    @property
    def session_cookies_secure(self) -> bool:
        """Whether session cookies are `Secure`: TASKFORCE_SECURE_COOKIES when it is set, and
        otherwise on unless the HTTP server binds a loopback address (a browser reaches
        anything else over a network, where the cookie must only travel over HTTPS)."""
        if "secure_cookies" in self.model_fields_set:
            return bool(getattr(self, "secure_cookies", False))
        return self.http_host.strip("[]") not in LOOPBACK_HOSTS

    @property
    def port(self) -> int:
        return self.http_port if self.http_port is not None else DEFAULT_PORTS[self.service]

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def unprefixed(self, topic: str) -> str:
        return topic.removeprefix(self.topic_prefix)

    @property
    def group_id(self) -> str:
        return f"{self.topic_prefix}{self.service}{self.group_suffix}"

    @property
    def database(self) -> str:
        return f"{self.topic_prefix}{self.service}".replace(".", "_")


def load_settings(service: str, **overrides: object) -> Settings:
    """Settings for `service`, from the environment, with explicit overrides on top."""
    return Settings(TASKFORCE_SERVICE=service, **overrides)  # type: ignore[arg-type]  # fields by name, checked by the model
