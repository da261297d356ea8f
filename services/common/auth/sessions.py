"""Browser sign-in: server-side sessions, the sign-in form's CSRF token, and its rate limit.

A session lives in the store (collection `sessions` of the reporting database), so every
replica sees it and signing out ends it everywhere: the cookie holds only the session's random
id, signed (a forged or altered cookie is nobody, without a store read). A session opened with a
token from the tokens file remembers a keyed fingerprint of the token (never the token) and
takes its scope from the file on every request, so a revoked or expired token ends its sessions
at once; one opened with an OIDC token keeps that token's scope until the token's `exp`. A
session ends after 8 hours in any case.

The sign-in form carries a CSRF token: a random value in a short-lived, strict, HttpOnly cookie
and its signature in a hidden field; a POST without both, or where they disagree, is refused.

Failed sign-ins are counted per client address (in memory, per replica): past the limit within
the window, sign-in answers 429 with `Retry-After` until the oldest failure has left the window,
whatever the form holds.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from pymongo.asynchronous.collection import AsyncCollection

from services.common.auth.principal import Principal, parse_scope
from services.common.auth.tokens import TokenBook

SESSION_COOKIE = "taskforce_session"
SESSION_MAX_AGE_S = 8 * 3600
CSRF_COOKIE = "taskforce_csrf"
CSRF_FIELD = "csrf_token"
CSRF_MAX_AGE_S = 3600
#: Clients whose failures are remembered at once; the longest idle are forgotten first.
MAX_TRACKED_CLIENTS = 10_000


class SessionStore:
    def __init__(self, collection: AsyncCollection[dict[str, Any]], secret: str, tokens: TokenBook,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.collection = collection
        self.serializer = URLSafeTimedSerializer(secret, salt="taskforce-session")
        self.key = hashlib.sha256(b"taskforce-session-fingerprint" + secret.encode()).digest()
        self.tokens = tokens
        self.clock = clock

    async def setup(self) -> None:
        """Sessions past their end are removed by the store (a TTL index); reads check anyway."""
        await self.collection.create_index("expires_at", expireAfterSeconds=0)

    def _fingerprint(self, hex_digest: str) -> str:
        return hmac.new(self.key, hex_digest.encode(), hashlib.sha256).hexdigest()

    async def open(self, principal: Principal, token_digest: str | None) -> str:
        """A new session for a principal that just signed in; returns the cookie's value."""
        now = self.clock()
        expires_at = now + timedelta(seconds=SESSION_MAX_AGE_S)
        if principal.expires_at is not None:
            expires_at = min(expires_at, principal.expires_at)
        session_id = secrets.token_urlsafe(32)
        document: dict[str, Any] = {
            "_id": session_id, "kind": principal.kind, "principal_id": principal.id,
            "created_at": now, "expires_at": expires_at,
        }
        if token_digest is not None:
            document["credential"] = self._fingerprint(token_digest)
        else:
            document.update(scope=principal.scope_list, issuer=principal.issuer)
        await self.collection.insert_one(document)
        return self.serializer.dumps({"sid": session_id})

    def _session_id(self, cookie: str) -> str | None:
        try:
            data = self.serializer.loads(cookie, max_age=SESSION_MAX_AGE_S)
        except BadSignature:
            return None
        session_id = data.get("sid") if isinstance(data, dict) else None
        return session_id if isinstance(session_id, str) else None

    async def read(self, cookie: str) -> Principal | None:
        """The principal of a live session, with its scope as of now; None for anything else."""
        session_id = self._session_id(cookie)
        if session_id is None:
            return None
        document = await self.collection.find_one({"_id": session_id})
        if document is None:
            return None
        expires_at = document["expires_at"]
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        if self.clock() >= expires_at:
            return None
        if document["kind"] == "token":
            return self._token_principal(str(document.get("credential", "")))
        return Principal("oidc", str(document["principal_id"]), parse_scope(document.get("scope")),
                         via="session", issuer=document.get("issuer"), expires_at=expires_at)

    def _token_principal(self, credential: str) -> Principal | None:
        for hex_digest in self.tokens.entries():
            if hmac.compare_digest(self._fingerprint(hex_digest), credential):
                principal = self.tokens.current(hex_digest).principal
                return principal.seen_via("session") if principal is not None else None
        return None

    async def close(self, cookie: str) -> bool:
        """End a session (sign-out): its cookie is worth nothing from now on, on every replica."""
        session_id = self._session_id(cookie)
        if session_id is None:
            return False
        result = await self.collection.delete_one({"_id": session_id})
        return result.deleted_count > 0


class Csrf:
    """The sign-in form's token: a random value in a cookie, its signature in the form."""

    def __init__(self, secret: str) -> None:
        self.serializer = URLSafeTimedSerializer(secret, salt="taskforce-csrf")

    def issue(self) -> tuple[str, str]:
        """(cookie value, form value)."""
        nonce = secrets.token_urlsafe(24)
        return nonce, self.serializer.dumps(nonce)

    def valid(self, cookie: str | None, form: str | None) -> bool:
        if not cookie or not form:
            return False
        try:
            signed = self.serializer.loads(form, max_age=CSRF_MAX_AGE_S)
        except BadSignature:
            return False
        return isinstance(signed, str) and hmac.compare_digest(signed.encode(), cookie.encode())


class SignInLimiter:
    """Failed sign-ins per client address within a sliding window."""

    def __init__(self, max_failures: int, window_s: float, clock: Callable[[], float] = time.monotonic,
                 max_clients: int = MAX_TRACKED_CLIENTS) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.clock = clock
        self.max_clients = max_clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, client: str) -> deque[float]:
        failures = self._failures.get(client)
        if failures is None:
            return deque()
        cutoff = self.clock() - self.window_s
        while failures and failures[0] <= cutoff:
            failures.popleft()
        if not failures:
            del self._failures[client]
        return failures

    def retry_after(self, client: str) -> int | None:
        """Seconds until this client may try again, or None when it may now."""
        failures = self._recent(client)
        if len(failures) < self.max_failures:
            return None
        return max(1, math.ceil(failures[-self.max_failures] + self.window_s - self.clock()))

    def failed(self, client: str) -> None:
        failures = self._recent(client)
        self._failures[client] = failures
        self._failures.move_to_end(client)
        failures.append(self.clock())
        while len(failures) > self.max_failures:
            failures.popleft()
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)
