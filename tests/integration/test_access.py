"""Who may read what, on every service, against the running services and the real servers.

The four services run in-process with a tokens file (hashed entries, one expired) and OIDC on:
keys generated here, their JWKS served on a loopback port. Every case-data route of every
service answers 200 to a principal scoped to the municipality, 403 (empty body) to one scoped
to another, 401 (RFC 6750) to no, unknown or expired credentials and to JWTs that are expired,
for another audience, signed with another algorithm or by an unknown key — before the path is
validated; a key the provider adds later is fetched when a token names it. Health routes and
metrics stay open. Each decision is an event on `taskforce.audit` and a JSON log line.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from schemas import topics
from services.analysis.app import create as create_analysis
from services.common.auth.tokens import DANISH, digest
from services.followup.app import create as create_followup
from services.intake.app import create as create_intake
from services.reporting.app import create as create_reporting
from taskforce import cli
from tests.support.events import assessed, event, received, review
from tests.support.identity import (
    AUDIENCE,
    ISSUER,
    JwksServer,
    claims,
    ec_key,
    jwks,
    mint,
    rsa_key,
    serve_jwks,
)
from tests.support.kafka import produce, read_until
from tests.support.services import Running, running, settings_for

pytestmark = pytest.mark.integration

NORDFYN, FREDERICIA, EXPIRED = "nordfyn-hashed-token", "fredericia-hashed-token", "expired-token"
RSA, EC, LATER = rsa_key("rsa-1"), ec_key("ec-1"), rsa_key("rsa-later")
CREATE = {"intake": create_intake, "analysis": create_analysis, "followup": create_followup,
          "reporting": create_reporting}
#: Every case-data route, for Nordfyn (480): each must answer 200 once the data is there.
ROUTES = {
    "intake": ["/municipalities/480/notifications/overdue"],
    "analysis": ["/municipalities/480/reviews/changes"],
    "followup": ["/municipalities/480/plan/status"],
    "reporting": ["/municipalities/480/summaries", "/municipalities/480/summaries/2022H1",
                  "/municipalities/480/summaries/2022H1/report"],
}
MALFORMED = {"intake": "/municipalities/48x/notifications/overdue",
             "analysis": "/municipalities/%3Cb%3E/reviews/changes",
             "followup": "/municipalities/4800/plan/status",
             "reporting": "/municipalities/480/summaries/2022H3/report"}


@dataclass
class Stack:
    services: dict[str, Running]
    idp: JwksServer
    prefix: str
    bootstrap: str


def feed() -> dict[str, list[dict[str, Any]]]:
    plan = {"plan_id": "p1", "course_id": "c1", "goals": [{"goal_id": "g1", "title": "Mål", "milestones": [
        {"milestone_id": "m1", "title": "Skabelon", "due_on": "2022-06-01"}]}]}
    return {
        topics.NOTIFICATIONS: [received("n1", "2022-03-01T10:00:00+01:00"),
                               assessed("n1", "2022-03-01T16:00:00+01:00")],
        topics.CASE_REVIEWS: [review("b1", "2022-03-01T10:00:00+01:00", "baseline", (1, 2, 2, 3), case="k1")],
        topics.MILESTONES: [event("development_plan.adopted", "2022-05-01T10:00:00+02:00", plan)],
    }


@pytest.fixture(scope="module")
async def world(stack, tmp_path_factory) -> AsyncIterator[Stack]:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    tokens = tmp_path_factory.mktemp("access") / "tokens.json"
    tokens.write_text(json.dumps({
        f"sha256:{digest(NORDFYN)}": "480",
        f"sha256:{digest(FREDERICIA)}": {"scope": ["607"], "expires": "2999-12-31"},
        f"sha256:{digest(EXPIRED)}": {"scope": "*", "expires": "2021-01-01T00:00:00Z"},
    }))
    with serve_jwks(jwks(RSA, EC)) as idp:
        async with contextlib.AsyncExitStack() as exits:
            started = {}
            for name, create in CREATE.items():
                settings = settings_for(
                    name, stack, prefix, TASKFORCE_TOKENS_FILE=str(tokens),
                    TASKFORCE_SESSION_SECRET=f"access-{prefix}", TASKFORCE_OIDC_ISSUER=ISSUER,
                    TASKFORCE_OIDC_AUDIENCE=AUDIENCE, TASKFORCE_OIDC_JWKS_URL=idp.url,
                    TASKFORCE_OIDC_JWKS_MIN_REFRESH_S=0)
                started[name] = await exits.enter_async_context(running(create, settings))
            for topic, events in feed().items():
                await produce(stack.bootstrap_servers, prefix + topic, events)
            world = Stack(started, idp, prefix, stack.bootstrap_servers)
            await _until_served(world)
            yield world


async def _until_served(world: Stack, timeout: float = 60.0) -> None:
    """Until every route answers 200 to an all-municipalities JWT (the data has flowed)."""
    token = mint(RSA, claims("*", sub="setup"))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pending = {(s, path) for s, paths in ROUTES.items() for path in paths}
    while pending:
        for service, path in sorted(pending):
            async with world.services[service].client(headers=bearer(token)) as http:
                if (await http.get(path)).status_code == 200:
                    pending.discard((service, path))
        if loop.time() > deadline:
            raise TimeoutError(f"not served: {sorted(pending)}")
        await asyncio.sleep(0.2)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


INVALID = 'Bearer realm="taskforce", error="invalid_token"'
INSUFFICIENT = 'Bearer realm="taskforce", error="insufficient_scope"'
ALL_ROUTES = [(service, path) for service, paths in ROUTES.items() for path in paths]


@pytest.mark.parametrize(("service", "path"), ALL_ROUTES)
async def test_a_principal_of_the_municipality_reads_and_others_do_not(world, service, path):
    good = {"hashed token": NORDFYN, "RS256 JWT": mint(RSA, claims("480")),
            "ES256 JWT with a list": mint(EC, claims(["607", "480"]))}
    other = {"hashed token": FREDERICIA, "JWT": mint(RSA, claims(["607"])), "JWT without codes": mint(
        RSA, claims(None)), "JWT with a bad scope": mint(RSA, claims("Nordfyn"))}
    async with world.services[service].client() as http:
        for name, token in good.items():
            response = await http.get(path, headers=bearer(token))
            assert response.status_code == 200, (name, response.status_code)
        for name, token in other.items():
            response = await http.get(path, headers=bearer(token))
            assert (response.status_code, response.content) == (403, b""), name
            assert response.headers["www-authenticate"] == INSUFFICIENT


def _hs256_with_public_key() -> str:
    """The algorithm-confusion attack: an HS256 token keyed with the provider's public key."""
    def part(value: bytes) -> str:
        return base64.urlsafe_b64encode(value).rstrip(b"=").decode()
    pem = RSA.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    signed = (f"{part(json.dumps({'alg': 'HS256', 'kid': RSA.kid}).encode())}."
              f"{part(json.dumps(claims('*')).encode())}")
    return f"{signed}.{part(hmac.new(pem, signed.encode(), hashlib.sha256).digest())}"


REFUSED_TOKENS = {
    "unknown token": ("unknown-token", "unknown token"),
    "expired tokens-file entry": (EXPIRED, "token expired"),
    "file key as token": (f"sha256:{digest(NORDFYN)}", "unknown token"),
    "expired JWT": (mint(RSA, claims("*", lifetime_s=-600)), "token expired"),
    "JWT for another audience": (mint(RSA, claims("*", aud="another-api")), "wrong audience"),
    "JWT from another issuer": (mint(RSA, claims("*", iss="https://evil.test")), "wrong issuer"),
    "JWT not valid yet": (mint(RSA, claims("*", nbf=4102444800)), "token not valid yet"),
    "JWT by an unknown key": (mint(rsa_key("stranger"), claims("*")), "unknown key id"),
    "JWT by another key under a known kid": (mint(rsa_key(RSA.kid), claims("*")), "invalid token"),
    "HS256 keyed with the public key": (_hs256_with_public_key(), "algorithm not allowed"),
    "RS512": (jwt.encode(claims("*"), RSA.private, algorithm="RS512", headers={"kid": RSA.kid}),
              "algorithm not allowed"),
}


@pytest.mark.parametrize(("service", "path"), ALL_ROUTES)
async def test_no_or_bad_credentials_are_401_before_the_path_is_validated(world, service, path):
    async with world.services[service].client() as http:
        for attempt in (path, MALFORMED[service]):
            response = await http.get(attempt)
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == 'Bearer realm="taskforce"'
            for name, (token, description) in REFUSED_TOKENS.items():
                refused = await http.get(attempt, headers=bearer(token))
                assert refused.status_code == 401, name
                challenge = f'{INVALID}, error_description="{description}"'
                assert refused.headers["www-authenticate"] == challenge, name
            for header in ("Bearer", "Bearer x y", f"Basic {NORDFYN}", NORDFYN, f"Token {NORDFYN}"):
                assert (await http.get(attempt, headers={"Authorization": header})).status_code == 401
        # Malformed paths reach validation only with credentials that may read them.
        assert (await http.get(MALFORMED[service], headers=bearer(FREDERICIA))).status_code == 403
        star = mint(RSA, claims("*"))
        assert (await http.get(MALFORMED[service], headers=bearer(star))).status_code == 422


async def test_a_key_the_provider_adds_later_is_fetched_when_a_token_names_it(world):
    token = mint(LATER, claims("480", sub="rotated"))
    async with world.services["intake"].client() as http:
        assert (await http.get(ROUTES["intake"][0], headers=bearer(token))).status_code == 401
        fetches = world.idp.fetches
        world.idp.document = jwks(RSA, EC, LATER)  # the provider rotates its keys
        assert (await http.get(ROUTES["intake"][0], headers=bearer(token))).status_code == 200
        assert world.idp.fetches == fetches + 1
        assert (await http.get(ROUTES["intake"][0], headers=bearer(token))).status_code == 200
        assert world.idp.fetches == fetches + 1  # now held: no fetch per request


@pytest.mark.parametrize("service", list(CREATE))
async def test_health_and_metrics_stay_open_and_hold_no_ids(world, service):
    async with world.services[service].client() as http:
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/readyz")).status_code == 200
        metrics = await http.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    assert "taskforce_audit_events_total" in metrics.text
    labels = re.findall(r'="([^"]*)"', metrics.text)
    for identifier in ("token:", "user-1", "rotated", "auditor-", "480", "607", "127.0.0.1"):
        assert not [value for value in labels if identifier in value], identifier
    assert "token:" not in metrics.text and "auditor-" not in metrics.text


async def test_each_decision_is_audited_on_the_topic_and_in_the_log(world, caplog):
    caplog.set_level(logging.INFO, logger="taskforce.audit")
    sub = f"auditor-{uuid.uuid4().hex[:8]}"
    own, other = mint(RSA, claims("480", sub=sub)), mint(RSA, claims("607", sub=sub))
    expired = mint(RSA, claims("480", sub=sub, lifetime_s=-600))
    for service, paths in ROUTES.items():
        async with world.services[service].client() as http:
            assert (await http.get(paths[0], headers=bearer(own))).status_code == 200
            assert (await http.get(paths[0], headers=bearer(other))).status_code == 403
            assert (await http.get(paths[0], headers=bearer(expired))).status_code == 401

    def ours(records: list[Any]) -> list[dict[str, Any]]:
        return [e for r in records if (e := json.loads(r.value))["data"]["principal"]["id"] == sub]

    records = await read_until(world.bootstrap, world.prefix + topics.AUDIT, lambda rs: len(ours(rs)) >= 12,
                               timeout=30)
    events = ours(records)
    seen = {(e["data"]["service"], e["data"]["outcome"], e["data"]["reason"]) for e in events}
    for service in ROUTES:
        assert {(service, 200, None), (service, 403, "not_in_scope"), (service, 401, "expired")} <= seen
    for e in events:
        assert e["municipality_code"] == "480" and e["data"]["principal"]["kind"] == "oidc"
        assert e["data"]["principal"]["issuer"] == ISSUER
        assert e["data"]["principal"]["via"] == "bearer" and e["data"]["client"] == "127.0.0.1"
    assert all(r.key == b"480" for r in records if json.loads(r.value)["data"]["principal"]["id"] == sub)
    everything = b"".join(r.value for r in records)
    for secret in (own, other, expired, NORDFYN, FREDERICIA):
        assert secret.encode() not in everything
    logged = [r for r in caplog.records if r.name == "taskforce.audit" and r.getMessage() == "access audited"
              and r.audit["data"]["principal"]["id"] == sub]  # type: ignore[attr-defined]
    assert len(logged) == 12


async def test_taskforce_audit_lists_a_municipality_s_accesses(world):
    sub = f"cli-{uuid.uuid4().hex[:8]}"
    async with world.services["followup"].client() as http:
        for scope, status in (("480", 200), ("607", 403)):
            token = mint(EC, claims(scope, sub=sub))
            assert (await http.get(ROUTES["followup"][0], headers=bearer(token))).status_code == status
    today = datetime.now(DANISH).date().isoformat()
    common = ["--bootstrap-servers", world.bootstrap, "--topic-prefix", world.prefix, "--since", today]
    runner = CliRunner()
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        listed = await asyncio.to_thread(runner.invoke, cli.app, ["audit", "-m", "480", "--json", *common])
        assert listed.exit_code == 0, listed.output
        events = [json.loads(line) for line in listed.output.splitlines()]
        mine = [e for e in events if e["data"]["principal"]["id"] == sub]
        if len(mine) == 2 or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.5)
    assert sorted(e["data"]["outcome"] for e in mine) == [200, 403]
    assert all(e["municipality_code"] == "480" for e in events)
    assert [e["occurred_at"] for e in events] == sorted(e["occurred_at"] for e in events)
    other = await asyncio.to_thread(runner.invoke, cli.app, ["audit", "-m", "607", "--json", *common])
    assert sub not in other.output
    later = await asyncio.to_thread(runner.invoke, cli.app,
                                    ["audit", "-m", "480", *common[:4], "--since", "2999-01-01"])
    assert later.exit_code == 0 and "No audit events" in later.output
    table = await asyncio.to_thread(runner.invoke, cli.app, ["audit", "-m", "480", *common])
    assert table.exit_code == 0 and sub in table.output and "not_in_scope" in table.output
