"""The tokens file: `TASKFORCE_TOKENS_FILE`, a JSON object of tokens and what they may read.

    {"sha256:<64 hex>": "480",                                        # hashed (recommended)
     "sha256:<64 hex>": {"scope": ["480", "607"], "expires": "2026-12-31"},
     "<token>": "*"}                                                  # plain text (still read)

A key is either `sha256:` and the hex SHA-256 of the token (`taskforce token new` prints one),
so the file never holds a usable credential, or the token itself. A value is the scope (a code,
several separated by spaces, a list, or "*") or an object with `scope` and an optional
`expires`: an RFC 3339 instant with its offset, or a date, meaning through the end of that
day in Danish time. An entry that cannot be read is skipped and logged, never fatal.

The file is re-read when it changes, so tokens rotate and expire without a restart.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from services.common.auth.principal import Principal, parse_scope

log = logging.getLogger(__name__)

HASHED = "sha256:"
_HEX = re.compile(r"[0-9a-f]{64}")
DANISH = ZoneInfo("Europe/Copenhagen")
#: Random bytes in a new token (256 bits; URL-safe base64 makes 43 characters).
TOKEN_BYTES = 32


def digest(token: str) -> str:
    """The hex SHA-256 of a token: what a hashed entry stores after `sha256:`."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_id(hex_digest: str) -> str:
    """A token's name in logs and the audit: never the token, and too short to find it by."""
    return f"token:{hex_digest[:12]}"


def new_token() -> tuple[str, str]:
    """A new random token and its tokens-file key (`sha256:<hex>`)."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, HASHED + digest(token)


def parse_expiry(value: str) -> datetime:
    """`expires`: an instant with an offset, or a date (valid through that Danish day)."""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        day = date.fromisoformat(value) + timedelta(days=1)
        return datetime.combine(day, time(), DANISH).astimezone(UTC)
    instant = datetime.fromisoformat(value)
    if instant.tzinfo is None:
        raise ValueError("an expiry needs its offset")
    return instant.astimezone(UTC)


@dataclass(frozen=True)
class TokenEntry:
    digest: str
    scope: frozenset[str]
    expires_at: datetime | None

    def principal(self) -> Principal:
        return Principal("token", token_id(self.digest), self.scope, expires_at=self.expires_at)

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at


@dataclass(frozen=True)
class Lookup:
    """A token's standing: its principal, or why there is none ("unknown_token", "expired")."""

    principal: Principal | None
    reason: str | None = None
    #: The token's id when it is known but refused (expired), for the audit.
    known_as: str | None = None


class TokenBook:
    """The tokens file, by the SHA-256 of each token; re-read when it changes."""

    def __init__(self, path: Path | None, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.path = path
        self.clock = clock
        self._version: tuple[int, int] | None = None
        self._entries: dict[str, TokenEntry] = {}

    def entries(self) -> dict[str, TokenEntry]:
        """Every readable entry, by hex digest."""
        if self.path is None:
            return {}
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._entries, self._version = {}, None
            return {}
        version = (stat.st_mtime_ns, stat.st_size)
        if version != self._version:
            self._entries = self._read()
            self._version = version
        return self._entries

    def _read(self) -> dict[str, TokenEntry]:
        assert self.path is not None
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.error("cannot read the tokens file; no token is valid until it is fixed",
                      extra={"path": str(self.path), "error": type(exc).__name__})
            return {}
        if not isinstance(raw, dict):
            log.error("the tokens file is not a JSON object; no token is valid",
                      extra={"path": str(self.path)})
            return {}
        entries: dict[str, TokenEntry] = {}
        for number, (key, value) in enumerate(raw.items(), start=1):
            try:
                entry = _entry(str(key), value)
            except (TypeError, ValueError) as exc:  # never the key in the log: it may be a token
                log.warning("tokens file entry skipped", extra={"entry": number, "problem": str(exc)})
                continue
            entries[entry.digest] = entry
        return entries

    def lookup(self, token: str) -> Lookup:
        """A presented token's standing. A hashed entry's key (`sha256:...`) is not a token."""
        if not token or token.startswith(HASHED):
            return Lookup(None, "unknown_token")
        return self.current(digest(token))

    def current(self, hex_digest: str) -> Lookup:
        """The standing now of the token with this digest (for the sessions it opened)."""
        entry = self.entries().get(hex_digest)
        if entry is None:
            return Lookup(None, "unknown_token")
        if entry.expired(self.clock()):
            return Lookup(None, "expired", token_id(entry.digest))
        return Lookup(entry.principal())


def _entry(key: str, value: object) -> TokenEntry:
    if key.startswith(HASHED):
        hex_digest = key[len(HASHED):].lower()
        if not _HEX.fullmatch(hex_digest):
            raise ValueError("a sha256: key needs 64 hex digits")
    elif key:
        hex_digest = digest(key)
    else:
        raise ValueError("an empty token")
    expires_at = None
    if isinstance(value, dict):
        if not isinstance(value.get("expires", ""), str):
            raise ValueError("expires must be a string")
        if value.get("expires"):
            expires_at = parse_expiry(value["expires"])
        value = value.get("scope")
    scope = parse_scope(value)
    if not scope:
        raise ValueError("no scope: a municipality code, several, or \"*\"")
    return TokenEntry(hex_digest, scope, expires_at)
