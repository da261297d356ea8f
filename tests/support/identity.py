"""A stand-in identity provider for tests: keys made here, tokens signed here, and a JWKS
served on a loopback port (nothing leaves this machine)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://idp.test/realms/taskforce"
AUDIENCE = "taskforce-api"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str  # "RS256" or "ES256"
    private: Any

    @property
    def jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        exported = (RSAAlgorithm if self.algorithm == "RS256" else ECAlgorithm).to_jwk(public, as_dict=True)
        return {**exported, "kid": self.kid, "use": "sig", "alg": self.algorithm}


def rsa_key(kid: str, bits: int = 2048) -> SigningKey:
    return SigningKey(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=bits))


def ec_key(kid: str, curve: ec.EllipticCurve | None = None) -> SigningKey:
    return SigningKey(kid, "ES256", ec.generate_private_key(curve or ec.SECP256R1()))


def claims(scope: Any = "480", *, sub: str | None = "user-1", lifetime_s: float = 86_400,
           **extra: Any) -> dict[str, Any]:
    """A token's claims, valid from now for a day by default: tests that mint at collection
    time run minutes later in a full suite, and must not find their token expired."""
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "nbf": now, "exp": now + int(lifetime_s),
            "municipality_code": scope}
    body.update(extra)
    return {k: v for k, v in body.items() if v is not None}


def mint(key: SigningKey, body: dict[str, Any], **headers: Any) -> str:
    return jwt.encode(body, key.private, algorithm=key.algorithm, headers={"kid": key.kid, **headers})


def jwks(*keys: SigningKey) -> dict[str, Any]:
    return {"keys": [k.jwk for k in keys]}


@dataclass
class JwksServer:
    """Serves `document` at /jwks on 127.0.0.1; counts the fetches."""

    document: dict[str, Any]
    fetches: int = 0
    url: str = ""
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)


@contextmanager
def serve_jwks(document: dict[str, Any]) -> Iterator[JwksServer]:
    state = JwksServer(document)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/jwks":
                self.send_error(404)
                return
            state.fetches += 1
            body = json.dumps(state.document).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/jwks"
    state._server = server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
