"""Who is asking: a bearer token (tokens file or OIDC JWT) or a browser session.

`Guard.authenticate` finds the principal or raises `Unauthorized` (401, with an RFC 6750
`WWW-Authenticate` challenge) or `Unavailable` (503: the provider's keys cannot be had). The
FastAPI dependencies `case_data` and `case_data_or_session` put it in front of a route: they
declare nothing but the request (and the security schemes, for the OpenAPI document), so
they run, and refuse, before any path parameter is validated; a principal without the
route's `{code}` in its scope gets `Forbidden` (403, empty body).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Request, Security
from fastapi.security import APIKeyCookie, HTTPBearer

from services.common.auth.oidc import InvalidToken, KeysUnavailable, OidcVerifier, looks_like_jwt
from services.common.auth.principal import Principal
from services.common.auth.sessions import SESSION_COOKIE, SessionStore
from services.common.auth.tokens import TokenBook

if TYPE_CHECKING:
    from services.common.auth.access import Access

REALM = "taskforce"
#: Where the audit middleware leaves its slot in the request's state.
AUDIT_SLOT = "taskforce_audit"


class Unauthorized(Exception):
    """401. `error` is RFC 6750's (None when no credentials were presented at all)."""

    def __init__(self, reason: str, description: str | None = None, who: Principal | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.description = description
        self.who = who

    @property
    def challenge(self) -> str:
        if self.description is None:
            return f'Bearer realm="{REALM}"'
        return f'Bearer realm="{REALM}", error="invalid_token", error_description="{self.description}"'


class Forbidden(Exception):
    """403 with an empty body: nothing about the data. A bearer gets RFC 6750's insufficient_scope."""

    def __init__(self, bearer: bool) -> None:
        super().__init__("not in scope")
        self.bearer = bearer


class Unavailable(Exception):
    """503: the OIDC provider's signing keys cannot be had (not the client's fault)."""


@dataclass
class AuditSlot:
    """What a request's handling decided, for the audit middleware to write once answered."""

    action: str | None = None
    route: str | None = None
    municipalities: list[str | None] = field(default_factory=lambda: [None])
    period: str | None = None
    principal: Principal | None = None
    via: str | None = None
    reason: str | None = None


def audit_slot(request: Request) -> AuditSlot:
    """The request's audit slot (a stray one when no audit middleware is installed)."""
    slot = request.scope.setdefault("state", {}).setdefault(AUDIT_SLOT, AuditSlot())
    assert isinstance(slot, AuditSlot)
    return slot


class Guard:
    def __init__(self, tokens: TokenBook, oidc: OidcVerifier | None = None,
                 sessions: SessionStore | None = None) -> None:
        self.tokens = tokens
        self.oidc = oidc
        self.sessions = sessions

    async def audited(self, request: Request, slot: AuditSlot) -> Principal:
        """`authenticate`, noting on the request's audit slot what was presented, who it was
        and, when refused, why."""
        slot.via = self.presented(request)
        try:
            principal = await self.authenticate(request)
        except Unauthorized as exc:
            slot.reason, slot.principal = exc.reason, exc.who
            raise
        except Unavailable:
            slot.reason = "keys_unavailable"
            raise
        slot.principal = principal
        return principal

    async def bearer(self, token: str) -> Principal:
        """The principal of a bearer token: a JWT when OIDC is on and it looks like one, else
        an entry of the tokens file."""
        if self.oidc is not None and looks_like_jwt(token):
            try:
                return await self.oidc.verify(token)
            except InvalidToken as exc:
                who = Principal("oidc", exc.subject, frozenset(), issuer=self.oidc.config.issuer) \
                    if exc.subject else None
                raise Unauthorized(exc.reason, exc.description, who) from None
            except KeysUnavailable:
                raise Unavailable() from None
        lookup = self.tokens.lookup(token)
        if lookup.principal is not None:
            return lookup.principal
        who = Principal("token", lookup.known_as, frozenset()) if lookup.known_as else None
        raise Unauthorized(lookup.reason or "unknown_token",
                           "token expired" if lookup.reason == "expired" else "unknown token", who)

    async def authenticate(self, request: Request) -> Principal:
        """The principal of a request: its bearer token if it has one, else its session."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            token = token.strip()
            if not token:
                raise Unauthorized("invalid_token", "empty bearer token")
            return await self.bearer(token)
        cookie = request.cookies.get(SESSION_COOKIE) if self.sessions is not None else None
        if cookie and self.sessions is not None:
            principal = await self.sessions.read(cookie)
            if principal is None:
                raise Unauthorized("no_session")
            return principal
        raise Unauthorized("no_credentials")

    def presented(self, request: Request) -> str | None:
        """How the request offers credentials: "bearer", "session" or None."""
        if request.headers.get("authorization", "").partition(" ")[0].lower() == "bearer":
            return "bearer"
        if self.sessions is not None and request.cookies.get(SESSION_COOKIE):
            return "session"
        return None

    async def optional(self, request: Request) -> Principal | None:
        """The principal, or None for a request without valid credentials (the index page)."""
        try:
            return await self.authenticate(request)
        except Unauthorized:
            return None


_BEARER = HTTPBearer(auto_error=False, scheme_name="bearer", description=(
    "A token from the tokens file, or an OIDC access token (JWT, RS256/ES256) from the "
    "configured identity provider."))
_SESSION = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, scheme_name="session", description=(
    "The browser session cookie set by POST /login."))


async def _require(request: Request) -> Principal:
    access: Access = request.app.state.access
    slot = audit_slot(request)
    route = request.scope.get("route")
    code = request.path_params.get("code")
    slot.action, slot.route = "read", getattr(route, "path", None)
    slot.municipalities, slot.period = [code], request.path_params.get("period")
    principal = await access.guard.audited(request, slot)
    if code is not None and not principal.may_read(str(code)):
        slot.reason = "not_in_scope"
        raise Forbidden(bearer=principal.via == "bearer")
    return principal


_BEARER_CREDENTIALS = Security(_BEARER)
_SESSION_CREDENTIALS = Security(_SESSION)


async def case_data(request: Request, _bearer: Any = _BEARER_CREDENTIALS) -> Principal:
    """Dependency of a case-data route that takes bearer tokens."""
    return await _require(request)


async def case_data_or_session(request: Request, _bearer: Any = _BEARER_CREDENTIALS,
                               _session: Any = _SESSION_CREDENTIALS) -> Principal:
    """Dependency of a case-data route that takes bearer tokens or a browser session."""
    return await _require(request)
