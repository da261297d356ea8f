"""Credentials without servers: scopes, the tokens file, OIDC tokens against keys made here,
the sign-in form's CSRF token and rate limit, and the audit trail's queue."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from prometheus_client import CollectorRegistry

from schemas.audit import AuditEvent
from services.common.auth.audit import AuditMetrics, AuditTrail
from services.common.auth.oidc import InvalidToken, KeysUnavailable, OidcConfig, OidcVerifier, signing_keys
from services.common.auth.principal import Principal, parse_scope
from services.common.auth.sessions import Csrf, SignInLimiter
from services.common.auth.tokens import TokenBook, digest, new_token, token_id
from services.common.settings import load_settings
from tests.support.identity import AUDIENCE, ISSUER, claims, ec_key, jwks, mint, rsa_key

pytestmark = pytest.mark.unit


# --- scopes -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("480", {"480"}), ("*", {"*"}), ("480 607", {"480", "607"}), (["480", "607"], {"480", "607"}),
    (["480", 607, None, "48", "4800", "abc"], {"480"}), (480, set()), ({"480": True}, set()), ("", set()),
    ("\u0664\u0668\u0660", set()),
])
def test_scopes_keep_only_codes_and_all(value: Any, expected: set[str]) -> None:
    assert parse_scope(value) == expected


def test_a_prefix_selects_the_claim_values_that_count() -> None:
    roles = ["municipality.480", "municipality.*", "Reader", "480"]
    assert parse_scope(roles, "municipality.") == {"480", "*"}


def test_principal_reads_its_scope_only() -> None:
    one = Principal("token", "token:abc", frozenset({"480"}))
    every = Principal("oidc", "sub", frozenset({"*"}))
    assert one.may_read("480") and not one.may_read("607") and every.may_read("607")
    assert one.label() == "kommune 480" and every.label() == "alle kommuner"
    assert Principal("token", "x", frozenset({"607", "480"})).label() == "kommuner 480, 607"


# --- the tokens file --------------------------------------------------------------------------

def write(path: Path, book: dict[str, Any]) -> None:
    path.write_text(json.dumps(book))
    stat = path.stat()  # a new mtime even within the file system's granularity
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_hashed_and_plain_entries_are_both_read(tmp_path: Path) -> None:
    token, key = new_token()
    assert key == "sha256:" + digest(token) and len(token) >= 43
    path = tmp_path / "tokens.json"
    write(path, {key: "480", "plain-token": "*"})
    book = TokenBook(path)
    hashed = book.lookup(token).principal
    assert hashed is not None and hashed.scope == {"480"} and hashed.id == token_id(digest(token))
    assert hashed.id == f"token:{key[7:19]}"
    plain = book.lookup("plain-token").principal
    assert plain is not None and plain.scope == {"*"}
    # The file's key is not a credential: whoever reads the file cannot use it.
    assert book.lookup(key).principal is None and book.lookup(key[7:]).principal is None
    assert book.lookup("").reason == "unknown_token"


def test_an_entry_may_expire(tmp_path: Path) -> None:
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    path = tmp_path / "tokens.json"
    write(path, {
        "sha256:" + digest("dated"): {"scope": ["480", "607"], "expires": "2026-06-01"},
        "sha256:" + digest("instant"): {"scope": "480", "expires": "2026-06-01T11:59:59Z"},
        "sha256:" + digest("later"): {"scope": "480", "expires": "2026-06-02T00:00:00+02:00"},
    })
    book = TokenBook(path, clock=lambda: now)
    dated = book.lookup("dated").principal  # through the end of that Danish day
    assert dated is not None and dated.scope == {"480", "607"}
    assert dated.expires_at == datetime(2026, 6, 1, 22, tzinfo=UTC)
    expired = book.lookup("instant")
    assert expired.principal is None and expired.reason == "expired"
    assert expired.known_as == token_id(digest("instant"))
    assert book.lookup("later").principal is not None


def test_unreadable_entries_are_skipped_and_never_logged_with_their_key(tmp_path: Path, caplog: Any) -> None:
    path = tmp_path / "tokens.json"
    write(path, {"good": "480", "no-scope": "", "bad-scope": "nordfyn", "sha256:xyz": "480",
                 "bad-expiry": {"scope": "480", "expires": "soon"}, "naive": {"scope": "480",
                                                                            "expires": "2026-01-01T00:00"}})
    book = TokenBook(path)
    assert set(book.entries()) == {digest("good")}
    text = caplog.text
    assert "no-scope" not in text and "bad-scope" not in text and "bad-expiry" not in text


def test_the_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    write(path, {"one": "480"})
    book = TokenBook(path)
    assert book.lookup("one").principal is not None
    write(path, {"two": "607"})
    assert book.lookup("one").principal is None and book.lookup("two").principal is not None
    path.write_text("[not json")
    assert book.entries() == {}
    path.unlink()
    assert book.lookup("two").principal is None


# --- OIDC -------------------------------------------------------------------------------------

def oidc(tmp_path: Path, document: dict[str, Any], **overrides: Any) -> OidcVerifier:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(document))
    fields = {"issuer": ISSUER, "audience": AUDIENCE, "jwks_url": None, "jwks_file": path,
              "min_refresh_s": 0.0, **overrides}
    return OidcVerifier(OidcConfig(**fields))


RSA_KEY = rsa_key("rsa-1")
EC_KEY = ec_key("ec-1")


async def test_a_good_token_gives_its_subject_and_scope(tmp_path: Path) -> None:
    verifier = oidc(tmp_path, jwks(RSA_KEY, EC_KEY))
    principal = await verifier.verify(mint(RSA_KEY, claims(["480", "607"], sub="anna")))
    assert (principal.kind, principal.id, principal.scope, principal.issuer) == (
        "oidc", "anna", {"480", "607"}, ISSUER)
    every = await verifier.verify(mint(EC_KEY, claims("*")))
    assert every.scope == {"*"}
    none = await verifier.verify(mint(EC_KEY, claims(None)))
    assert none.scope == frozenset()


@pytest.mark.parametrize(("body", "description"), [
    (claims(lifetime_s=-120), "token expired"),
    (claims(aud="someone-else"), "wrong audience"),
    (claims(iss="https://evil.test"), "wrong issuer"),
    (claims(nbf=int(datetime.now(UTC).timestamp()) + 30 * 86_400), "token not valid yet"),
    (claims(sub=None), "missing claim sub"),
    (claims(exp=None), "missing claim exp"),
    (claims(aud=None), "missing claim aud"),
])
async def test_claims_are_checked(tmp_path: Path, body: dict[str, Any], description: str) -> None:
    verifier = oidc(tmp_path, jwks(RSA_KEY))
    with pytest.raises(InvalidToken) as refused:
        await verifier.verify(mint(RSA_KEY, body))
    assert refused.value.description == description


async def test_a_small_clock_skew_is_allowed(tmp_path: Path) -> None:
    verifier = oidc(tmp_path, jwks(RSA_KEY), leeway_s=30)
    assert await verifier.verify(mint(RSA_KEY, claims(lifetime_s=-10)))
    with pytest.raises(InvalidToken):
        await verifier.verify(mint(RSA_KEY, claims(lifetime_s=-40)))


def _unsigned(header: dict[str, Any], body: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
    return f"{part(header)}.{part(body)}."


def _hs256(header: dict[str, Any], body: dict[str, Any], secret: bytes) -> str:
    def part(value: bytes) -> str:
        return base64.urlsafe_b64encode(value).rstrip(b"=").decode()
    signed = f"{part(json.dumps(header).encode())}.{part(json.dumps(body).encode())}"
    return f"{signed}.{part(hmac.new(secret, signed.encode(), hashlib.sha256).digest())}"


async def test_only_rs256_and_es256_with_the_key_named(tmp_path: Path) -> None:
    verifier = oidc(tmp_path, jwks(RSA_KEY, EC_KEY))
    public_pem = RSA_KEY.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    forged = [
        # The classic confusion: HS256 "signed" with the provider's public key as the secret.
        _hs256({"alg": "HS256", "typ": "JWT", "kid": RSA_KEY.kid}, claims(), public_pem),
        _unsigned({"alg": "none", "kid": RSA_KEY.kid}, claims()),
        jwt.encode(claims(), RSA_KEY.private, algorithm="RS512", headers={"kid": RSA_KEY.kid}),
        jwt.encode(claims(), RSA_KEY.private, algorithm="PS256", headers={"kid": RSA_KEY.kid}),
        # An ES256 header naming the RSA key, and the other way round.
        jwt.encode(claims(), EC_KEY.private, algorithm="ES256", headers={"kid": RSA_KEY.kid}),
        jwt.encode(claims(), RSA_KEY.private, algorithm="RS256", headers={"kid": EC_KEY.kid}),
        # Signed by a key the provider does not publish, under a published kid.
        mint(rsa_key(RSA_KEY.kid), claims()),
        "not.a.token", "eyJ.eyJ.", mint(RSA_KEY, claims())[:-4] + "AAAA",
    ]
    for token in forged:
        with pytest.raises(InvalidToken):
            await verifier.verify(token)
    with pytest.raises(InvalidToken):  # no kid
        await verifier.verify(jwt.encode(claims(), RSA_KEY.private, algorithm="RS256"))


def test_weak_or_unsuitable_keys_are_not_signing_keys() -> None:
    small = rsa_key("small", bits=1024)
    other_curve = ec_key("p384", ec.SECP384R1())
    encryption = {**rsa_key("enc").jwk, "use": "enc"}
    symmetric = {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}
    document = {"keys": [small.jwk, other_curve.jwk, encryption, symmetric, RSA_KEY.jwk, "junk",
                         {"kid": "no-kty"}]}
    assert set(signing_keys(document)) == {RSA_KEY.kid}
    assert signing_keys({"keys": "nope"}) == {} and signing_keys([]) == {}


async def test_an_unknown_kid_fetches_the_keys_again_at_most_every_interval() -> None:
    new = rsa_key("rsa-2")
    published = [jwks(RSA_KEY)]
    fetches = []

    async def fetch() -> object:
        fetches.append(clock[0])
        return published[0]

    clock = [1000.0]
    verifier = OidcVerifier(OidcConfig(ISSUER, AUDIENCE, "https://idp.test/keys", None, min_refresh_s=10.0),
                            clock=lambda: clock[0], fetch=fetch)
    assert await verifier.verify(mint(RSA_KEY, claims()))
    published[0] = jwks(RSA_KEY, new)  # the provider rotates
    clock[0] += 11
    assert await verifier.verify(mint(new, claims()))
    assert len(fetches) == 2
    for attempt in range(5):  # made-up key ids do not make us hammer the provider
        with pytest.raises(InvalidToken, match="unknown key id"):
            await verifier.verify(mint(EC_KEY, claims(), kid=f"made-up-{attempt}"))
    assert len(fetches) == 2
    clock[0] += 10
    with pytest.raises(InvalidToken, match="unknown key id"):
        await verifier.verify(mint(EC_KEY, claims(), kid="made-up"))
    assert len(fetches) == 3
    clock[0] += 3600
    assert await verifier.verify(mint(RSA_KEY, claims()))  # too old: fetched again
    assert len(fetches) == 4
    published[0] = {"keys": []}  # a provider that publishes nothing usable: keep what we hold
    clock[0] += 3600
    assert await verifier.verify(mint(new, claims()))
    assert len(fetches) == 5


async def test_without_keys_requests_are_unavailable_not_unauthorized(tmp_path: Path) -> None:
    verifier = OidcVerifier(OidcConfig(ISSUER, AUDIENCE, None, tmp_path / "missing.json", min_refresh_s=0))
    with pytest.raises(KeysUnavailable):
        await verifier.verify(mint(RSA_KEY, claims()))


def test_configuration_needs_audience_and_one_key_source() -> None:
    assert OidcConfig.from_settings(load_settings("intake")) is None
    with pytest.raises(ValueError, match="AUDIENCE"):
        OidcConfig.from_settings(load_settings("intake", TASKFORCE_OIDC_ISSUER=ISSUER))
    with pytest.raises(ValueError, match="one of"):
        OidcConfig.from_settings(load_settings("intake", TASKFORCE_OIDC_ISSUER=ISSUER,
                                               TASKFORCE_OIDC_AUDIENCE=AUDIENCE))
    with pytest.raises(ValueError, match="https"):
        OidcConfig.from_settings(load_settings("intake", TASKFORCE_OIDC_ISSUER=ISSUER,
                                               TASKFORCE_OIDC_AUDIENCE=AUDIENCE,
                                               TASKFORCE_OIDC_JWKS_URL="http://idp.example/keys"))
    config = OidcConfig.from_settings(load_settings(
        "intake", TASKFORCE_OIDC_ISSUER=ISSUER, TASKFORCE_OIDC_AUDIENCE=AUDIENCE,
        TASKFORCE_OIDC_JWKS_URL="http://127.0.0.1:9/keys", TASKFORCE_OIDC_SCOPE_CLAIM="roles"))
    assert config is not None and config.scope_claim == "roles"


async def test_nested_claims_and_cpr_like_subjects(tmp_path: Path) -> None:
    verifier = oidc(tmp_path, jwks(RSA_KEY), scope_claim="taskforce.municipalities")
    principal = await verifier.verify(mint(RSA_KEY, claims(None, sub="010190-1234",
                                                           taskforce={"municipalities": ["607"]})))
    assert principal.scope == {"607"}
    assert principal.id.startswith("sha256:") and "1234" not in principal.id


# --- the sign-in form -------------------------------------------------------------------------

def test_csrf_token_must_match_its_cookie() -> None:
    csrf = Csrf("secret")
    cookie, form = csrf.issue()
    other_cookie, other_form = csrf.issue()
    assert csrf.valid(cookie, form)
    assert not csrf.valid(other_cookie, form) and not csrf.valid(cookie, other_form)
    assert not csrf.valid(None, form) and not csrf.valid(cookie, "") and not csrf.valid(cookie, cookie)
    assert not Csrf("another secret").valid(cookie, form)


def test_failed_sign_ins_are_limited_per_client_within_the_window() -> None:
    now = [0.0]
    limiter = SignInLimiter(3, 60.0, clock=lambda: now[0], max_clients=2)
    for _ in range(3):
        assert limiter.retry_after("a") is None
        limiter.failed("a")
        now[0] += 1
    assert limiter.retry_after("a") == 57  # the first failure leaves the window at 60
    assert limiter.retry_after("b") is None
    now[0] = 61.0
    assert limiter.retry_after("a") is None  # two failures left the window
    limiter.failed("a")
    limiter.failed("a")
    assert limiter.retry_after("a") == 1
    limiter.failed("b")
    limiter.failed("c")  # beyond max_clients: the longest idle client is forgotten
    assert limiter.retry_after("a") is None


# --- the audit trail --------------------------------------------------------------------------

def trail(queue_size: int = 100) -> tuple[AuditTrail, CollectorRegistry]:
    registry = CollectorRegistry()
    return AuditTrail("intake", AuditMetrics("intake", registry), queue_size), registry


def read(trail: AuditTrail, **extra: Any) -> None:
    who = Principal("token", "token:abc", frozenset({"480"}))
    fields = {"action": "read", "outcome": 200, "principal": who, "via": "bearer", "municipality": "480",
              "method": "GET", "route": "/municipalities/{code}/notifications/overdue", "client": "127.0.0.1"}
    trail.record(**{**fields, **extra})


async def test_audit_events_are_produced_keyed_by_municipality(caplog: Any) -> None:
    audit, registry = trail()
    sent: list[tuple[bytes, bytes]] = []

    async def send(key: bytes, value: bytes) -> Any:
        sent.append((key, value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    caplog.set_level("INFO", logger="taskforce.audit")
    audit.start(send)
    read(audit)
    read(audit, outcome=401, principal=None, via=None, municipality="48x", reason="no_credentials",
         period="2022H3")
    await audit.stop()
    assert [key for key, _ in sent] == [b"480", b"*"]
    first, second = (AuditEvent.model_validate_json(value) for _, value in sent)
    assert first.municipality_code == "480" and first.data.principal.id == "token:abc"
    assert second.municipality_code is None and second.data.period is None
    assert second.data.reason == "no_credentials" and second.data.principal.scope == []
    assert sum("access audited" in r.getMessage() for r in caplog.records) == 2
    assert registry.get_sample_value("taskforce_audit_events_total",
                                     {"service": "intake", "action": "read", "outcome": "401"}) == 1


async def test_audit_events_that_cannot_be_produced_are_counted_never_raised() -> None:
    audit, registry = trail(queue_size=2)

    async def refuse(key: bytes, value: bytes) -> Any:
        raise RuntimeError("broker says no")

    for _ in range(3):  # not started yet: the third does not fit the queue
        read(audit)
    audit.start(refuse)
    await audit.stop()

    def lost(reason: str) -> float | None:
        labels = {"service": "intake", "reason": reason}
        return registry.get_sample_value("taskforce_audit_unproduced_total", labels)
    assert lost("queue_full") == 1 and lost("producer_error") == 2


async def test_audit_events_still_queued_when_stopping_are_counted() -> None:
    audit, registry = trail()
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def hang(key: bytes, value: bytes) -> Any:
        return never

    audit.start(hang)
    read(audit)
    read(audit)
    await asyncio.sleep(0)
    await audit.stop(grace_s=0.05)
    assert registry.get_sample_value("taskforce_audit_unproduced_total",
                                     {"service": "intake", "reason": "stopped"}) == 2
