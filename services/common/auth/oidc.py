"""OIDC bearer tokens: JWTs signed by an identity provider, verified with its published keys.

On when `TASKFORCE_OIDC_ISSUER` is set, beside the tokens file. A token is accepted when:
- its header's `alg` is RS256 or ES256 (nothing else, never `none` or an HMAC), and the key
  it names by `kid` is one of the provider's signing keys of that very type (RSA of at least
  2048 bits, or EC P-256);
- the signature verifies, and `iss`, `aud`, `exp` and `sub` are present, with `iss` and `aud`
  the configured ones and `exp`, `nbf` and `iat` right within `TASKFORCE_OIDC_LEEWAY_S`;
- the scope claim (`TASKFORCE_OIDC_SCOPE_CLAIM`, default `municipality_code`) names codes or
  "*" (no valid code: authenticated, but may read nothing).

Keys come from `TASKFORCE_OIDC_JWKS_URL` (HTTPS; plain HTTP only on a loopback address) or
`TASKFORCE_OIDC_JWKS_FILE`. They are cached by `kid`; a `kid` not in the cache fetches the
set again (at most every `TASKFORCE_OIDC_JWKS_MIN_REFRESH_S`, so made-up ids cannot make us
hammer the provider), and the set is fetched again after `TASKFORCE_OIDC_JWKS_MAX_AGE_S` in
any case. A fetch that fails keeps the keys held; with none held, requests get 503.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from schemas.cpr import contains_cpr
from services.common.auth.principal import Principal, parse_scope
from services.common.settings import Settings

log = logging.getLogger(__name__)

ALGORITHMS = ("RS256", "ES256")
REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]
MIN_RSA_BITS = 2048
FETCH_TIMEOUT_S = 5.0
MAX_JWKS_BYTES = 512 * 1024


class InvalidToken(Exception):
    """Not a token we accept; `description` is safe to send back (RFC 6750 error_description)."""

    def __init__(self, description: str, reason: str = "invalid_token", subject: str | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.reason = reason
        self.subject = subject


class KeysUnavailable(Exception):
    """No signing keys could be had from the provider: a 503, not the client's fault."""


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    audience: str
    jwks_url: str | None
    jwks_file: Path | None
    scope_claim: str = "municipality_code"
    scope_prefix: str = ""
    leeway_s: float = 30.0
    min_refresh_s: float = 10.0
    max_age_s: float = 3600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcConfig | None:
        if not settings.oidc_issuer:
            return None
        if not settings.oidc_audience:
            raise ValueError("TASKFORCE_OIDC_ISSUER is set: TASKFORCE_OIDC_AUDIENCE is needed too")
        if bool(settings.oidc_jwks_url) == bool(settings.oidc_jwks_file):
            raise ValueError("TASKFORCE_OIDC_ISSUER is set: set one of TASKFORCE_OIDC_JWKS_URL and "
                             "TASKFORCE_OIDC_JWKS_FILE")
        if settings.oidc_jwks_url:
            _check_url(settings.oidc_jwks_url)
        return cls(settings.oidc_issuer, settings.oidc_audience, settings.oidc_jwks_url,
                   settings.oidc_jwks_file, settings.oidc_scope_claim, settings.oidc_scope_prefix,
                   settings.oidc_leeway_s, settings.oidc_jwks_min_refresh_s, settings.oidc_jwks_max_age_s)


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and parts.hostname:
        try:
            if ipaddress.ip_address(parts.hostname).is_loopback:
                return
        except ValueError:
            if parts.hostname == "localhost":
                return
    raise ValueError("TASKFORCE_OIDC_JWKS_URL must be https:// (plain http only on a loopback address)")


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")


def signing_keys(document: object) -> dict[str, jwt.PyJWK]:
    """The usable signing keys of a JWKS document, by `kid`: RSA (>= 2048 bits) for RS256 and EC
    P-256 for ES256; encryption keys, symmetric keys and anything unreadable are left out."""
    keys: dict[str, jwt.PyJWK] = {}
    raw_keys = document.get("keys") if isinstance(document, dict) else None
    for raw in raw_keys if isinstance(raw_keys, list) else []:
        if not isinstance(raw, dict) or raw.get("use", "sig") != "sig" or not isinstance(raw.get("kid"), str):
            continue
        algorithm = {"RSA": "RS256", "EC": "ES256"}.get(str(raw.get("kty")))
        if algorithm is None or raw.get("alg", algorithm) != algorithm:
            continue
        try:
            key = jwt.PyJWK(raw, algorithm)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
            continue
        material = key.key
        if (isinstance(material, rsa.RSAPublicKey) and material.key_size >= MIN_RSA_BITS) or (
                isinstance(material, ec.EllipticCurvePublicKey) and material.curve.name == "secp256r1"):
            keys[raw["kid"]] = key
    return keys


class OidcVerifier:
    def __init__(self, config: OidcConfig, clock: Callable[[], float] = time.monotonic,
                 fetch: Callable[[], Awaitable[object]] | None = None) -> None:
        self.config = config
        self.clock = clock
        #: Where the key set comes from (default: the configured URL or file).
        self.fetch = fetch or self._load
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("malformed token") from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in ALGORITHMS:
            raise InvalidToken("algorithm not allowed")
        if not isinstance(kid, str):
            raise InvalidToken("no key id")
        key = await self._key(kid)
        if key is None:
            raise InvalidToken("unknown key id")
        if key.algorithm_name != algorithm:
            raise InvalidToken("algorithm does not match the key")
        try:
            claims = jwt.decode(
                token, key.key, algorithms=[algorithm], audience=self.config.audience,
                issuer=self.config.issuer, leeway=self.config.leeway_s,
                options={"require": REQUIRED_CLAIMS, "verify_signature": True})
        except jwt.ExpiredSignatureError:
            raise InvalidToken("token expired", "expired", _subject_unverified(token)) from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("wrong audience") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("wrong issuer") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("token not valid yet") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f"missing claim {exc.claim}") from None
        except jwt.PyJWTError:
            raise InvalidToken("invalid token") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise InvalidToken("missing claim sub")
        return Principal("oidc", safe_subject(subject), self._scope(claims), issuer=self.config.issuer,
                         expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC))

    def _scope(self, claims: dict[str, Any]) -> frozenset[str]:
        value: Any = claims
        for part in self.config.scope_claim.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return parse_scope(value, self.config.scope_prefix)

    async def _key(self, kid: str) -> jwt.PyJWK | None:
        now = self.clock()
        stale = self._fetched_at is None or now - self._fetched_at >= self.config.max_age_s
        if kid in self._keys and not stale:
            return self._keys[kid]
        attempted = self._attempted_at
        if attempted is None or now - attempted >= self.config.min_refresh_s:
            async with self._lock:  # one fetch at a time; who waited uses what it brought
                if self._attempted_at == attempted:
                    await self._refresh()
        if not self._keys:
            raise KeysUnavailable()
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        self._attempted_at = self.clock()
        try:
            document = await self.fetch()
        except (OSError, ValueError, httpx.HTTPError) as exc:
            log.error("cannot fetch the OIDC signing keys; keeping the ones held",
                      extra={"error": type(exc).__name__, "keys_held": len(self._keys)})
            return
        keys = signing_keys(document)
        if not keys:
            log.error("the OIDC key set has no usable signing key (RS256/ES256); keeping the ones held")
            return
        self._keys, self._fetched_at = keys, self.clock()

    async def _load(self) -> object:
        if self.config.jwks_file is not None:
            return json.loads(await asyncio.to_thread(self.config.jwks_file.read_text, encoding="utf-8"))
        assert self.config.jwks_url is not None
        async with httpx.AsyncClient(timeout=FETCH_TIMEOUT_S, follow_redirects=False) as client:
            response = await client.get(self.config.jwks_url, headers={"Accept": "application/json"})
            response.raise_for_status()
            if len(response.content) > MAX_JWKS_BYTES:
                raise ValueError("key set too large")
            return response.json()


def safe_subject(subject: str) -> str:
    """The `sub` as the audit shows it: itself, unless it is long or looks like a CPR number."""
    if len(subject) > 200 or contains_cpr(json.dumps(subject).encode()):
        return "sha256:" + hashlib.sha256(subject.encode()).hexdigest()[:16]
    return subject


def _subject_unverified(token: str) -> str | None:
    """The `sub` of a token whose signature verified but which has expired (for the audit)."""
    try:
        subject = jwt.decode(token, options={"verify_signature": False}).get("sub")
    except jwt.PyJWTError:
        return None
    return safe_subject(subject) if isinstance(subject, str) and subject else None
