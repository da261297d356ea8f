"""Who may read which municipality's summaries.

Tokens come from the JSON file named by `TASKFORCE_TOKENS_FILE`: `{"<token>": "<code or *>"}`.
API clients send `Authorization: Bearer <token>`; browsers sign in once and carry a signed,
expiring, HttpOnly session cookie instead. No or unknown token: 401. A token for another
municipality: 403 with an empty body, so a refusal says nothing about the data.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from fastapi import HTTPException, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer

log = logging.getLogger(__name__)

SESSION_COOKIE = "taskforce_session"
SESSION_MAX_AGE_S = 8 * 3600


@dataclass(frozen=True)
class Principal:
    """The bearer of a valid token: one municipality's code, or "*" for all."""

    scope: str

    def may_read(self, code: str) -> bool:
        return self.scope in ("*", code)


class TokenBook:
    """The tokens file, re-read when it changes (so tokens rotate without a restart)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._mtime: float | None = None
        self._tokens: dict[str, str] = {}

    def _load(self) -> dict[str, str]:
        if self.path is None or not self.path.exists():
            return {}
        mtime = self.path.stat().st_mtime
        if mtime != self._mtime:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            self._tokens = {str(t): str(s) for t, s in raw.items()}
            self._mtime = mtime
        return self._tokens

    def lookup(self, token: str) -> Principal | None:
        for known, scope in self._load().items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return Principal(scope)
        return None

    def tokens(self) -> dict[str, str]:
        return dict(self._load())


class Sessions:
    """Signed, expiring session cookies that name the token they were opened with.

    The cookie holds a keyed fingerprint of the token (never the token), and every request
    looks it up in the current tokens file: a revoked token ends its sessions at once, and
    a changed scope applies at once.
    """

    def __init__(self, secret: str, tokens: TokenBook) -> None:
        self.serializer = URLSafeTimedSerializer(secret, salt="taskforce-session")
        self.key = secret.encode()
        self.tokens = tokens

    def _fingerprint(self, token: str) -> str:
        return hmac.new(self.key, token.encode(), hashlib.sha256).hexdigest()

    def issue(self, token: str) -> str:
        return self.serializer.dumps({"token": self._fingerprint(token)})

    def read(self, cookie: str) -> Principal | None:
        try:
            data = self.serializer.loads(cookie, max_age=SESSION_MAX_AGE_S)
        except BadSignature:
            return None
        fingerprint = str(data.get("token", ""))
        for token, scope in self.tokens.tokens().items():
            if hmac.compare_digest(self._fingerprint(token), fingerprint):
                return Principal(scope)
        return None


class Guard:
    def __init__(self, tokens: TokenBook, sessions: Sessions) -> None:
        self.tokens = tokens
        self.sessions = sessions

    def principal(self, request: Request) -> Principal | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token:
            return self.tokens.lookup(token.strip())
        cookie = request.cookies.get(SESSION_COOKIE)
        return self.sessions.read(cookie) if cookie else None

    def require(self, request: Request, code: str | None = None) -> Principal:
        principal = self.principal(request)
        if principal is None:
            raise HTTPException(401, "authentication required", headers={"WWW-Authenticate": "Bearer"})
        if code is not None and not principal.may_read(code):
            raise Forbidden()
        return principal


class Forbidden(Exception):
    """Turned into a bare 403 by the app: no body, nothing about the data."""
