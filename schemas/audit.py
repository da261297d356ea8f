"""The audit event `access.audited` on `taskforce.audit`: who read (or tried to read) what.

One event per access decision on case data, written by the service that decided: a read of a
municipality's data (200, 401, 403, 404, 422), a listing of periods (one event per municipality
shown), a sign-in (success or failure) and a sign-out. The record key is the municipality code,
or "*" when the request named no single municipality (a sign-in, or a path whose code was not
a code). Never a token, never a cookie: a token-file principal is named by `token:` and the
first 12 hex digits of the token's SHA-256 (the tokens file's hashed entries start with the
same digits), an OIDC principal by its `sub` claim.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.common import EnvelopeFields, Frozen, MunicipalityCode, Timestamp

AUDIT_SCHEMA_VERSION = 1
#: The record key of an event that concerns no single municipality.
NO_MUNICIPALITY = "*"

Action = Literal["read", "list", "sign_in", "sign_out", "write"]
Reason = Literal[
    "no_credentials", "unknown_token", "expired", "invalid_token", "keys_unavailable",
    "not_in_scope", "no_session", "csrf", "rate_limited",
]


class AuditPrincipal(Frozen):
    kind: Literal["token", "oidc"] | None = Field(
        description="Where the credential came from: the tokens file or the OIDC provider; null "
        "when none was presented or it was not recognised.")
    id: str | None = Field(
        max_length=200,
        description="`token:<12 hex digits of the token's SHA-256>` for the tokens file, the JWT "
        "`sub` for OIDC (`sha256:<16 hex>` in its place if it looked like a CPR number); null when "
        "unknown. Never the token itself.", examples=["token:3f2a9c0d41b7", "a1b2c3d4-e5f6"])
    via: Literal["bearer", "session", "form"] | None = Field(
        description="`Authorization: Bearer`, a browser session cookie, or the sign-in form.")
    issuer: str | None = Field(default=None, max_length=200, description="The JWT `iss`, for OIDC.")
    scope: list[str] = Field(
        max_length=200, description="The municipality codes the principal may read, or [\"*\"]; "
        "empty when not authenticated.", examples=[["480"], ["*"]])


class AccessAudited(Frozen):
    action: Action = Field(description="`read` one municipality's data, `list` the periods on the "
                           "index page, `sign_in`, `sign_out`, `write` events for a municipality "
                           "through the ingestion gateway.")
    outcome: int = Field(ge=100, le=599, description="The HTTP status answered.", examples=[200, 403])
    reason: Reason | None = Field(
        description="Why it was refused (null when it was not, and for 404/422).")
    principal: AuditPrincipal
    service: str = Field(max_length=40, description="The service that answered.", examples=["reporting"])
    method: str = Field(max_length=10, examples=["GET"])
    route: str = Field(max_length=200, description="The route template, never the raw path.",
                       examples=["/municipalities/{code}/summaries/{period}"])
    period: str | None = Field(pattern=r"^[0-9]{4}H[12]$", description="The half-year asked for, if any.")
    client: str | None = Field(max_length=100, description="The client's address as the service saw it "
                               "(behind a proxy: as the proxy reported it, see FORWARDED_ALLOW_IPS).")


class AuditEvent(EnvelopeFields):
    """`access.audited`: one access decision on case data, on `taskforce.audit`."""

    event_type: Literal["access.audited"]
    schema_version: int = Field(ge=AUDIT_SCHEMA_VERSION, le=AUDIT_SCHEMA_VERSION,
                                description="Version of the audit event, 1.")
    occurred_at: Timestamp
    municipality_code: MunicipalityCode | None = Field(  # type: ignore[assignment]  # wider than the envelope's: may be None
        description="The municipality whose data was asked for; null when none (the key is then \"*\").")
    data: AccessAudited
