"""The gateway's own settings (TASKFORCE_GATEWAY_*), beside the services' shared ones."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.gateway.items import MAX_BODY_BYTES, MAX_EVENTS


class GatewayConfig(BaseSettings):
    """Limits and behaviour of `POST /v1/events`. Names are the environment variables."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    #: Events per request at most (413 beyond).
    max_events: int = Field(default=MAX_EVENTS, ge=1, le=10_000, alias="TASKFORCE_GATEWAY_MAX_EVENTS")
    #: Body bytes per request at most (413 beyond).
    max_body_bytes: int = Field(default=MAX_BODY_BYTES, ge=1024, le=16 * 1024 * 1024,
                                alias="TASKFORCE_GATEWAY_MAX_BODY_BYTES")
    #: Per principal: events per second on average (a token bucket), and the bucket's size.
    rate_events_per_s: float = Field(default=2000.0, gt=0, alias="TASKFORCE_GATEWAY_RATE_EVENTS_PER_S")
    rate_burst_events: int = Field(default=5000, ge=1, alias="TASKFORCE_GATEWAY_RATE_BURST_EVENTS")
    #: A request is answered within this many seconds: reading the body, validating, and the
    #: broker's acknowledgements (an item not acknowledged by then is refused, retryable).
    deadline_s: float = Field(default=10.0, gt=0, le=300, alias="TASKFORCE_GATEWAY_DEADLINE_S")
    #: The idempotent producer: `auto` uses it where the broker supports it (the embedded one
    #: does not), `on` requires it, `off` never uses it.
    idempotence: Literal["auto", "on", "off"] = Field(default="auto", alias="TASKFORCE_GATEWAY_IDEMPOTENCE")
    #: How often the broker is asked whether it answers (readiness), and how long it may take.
    probe_every_s: float = Field(default=1.0, gt=0, alias="TASKFORCE_GATEWAY_PROBE_EVERY_S")
    probe_timeout_s: float = Field(default=2.0, gt=0, alias="TASKFORCE_GATEWAY_PROBE_TIMEOUT_S")
    #: Serve with neither a tokens file nor OIDC on a non-loopback address (every write is then
    #: refused anyway): off by default, so a misconfigured gateway does not start at all.
    allow_no_credentials: bool = Field(default=False, alias="TASKFORCE_GATEWAY_ALLOW_NO_CREDENTIALS")
