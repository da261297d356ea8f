"""Who is asking, and which municipalities they may read."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

CODE = re.compile(r"[0-9]{3}")
PERIOD = re.compile(r"[0-9]{4}H[12]")
ALL = "*"

Kind = Literal["token", "oidc"]
Via = Literal["bearer", "session", "form"]


@dataclass(frozen=True)
class Principal:
    """The bearer of a valid credential.

    `id` names the credential without revealing it: `token:<12 hex>` (the start of the token's
    SHA-256) for the tokens file, the `sub` claim for OIDC. `scope` holds municipality codes,
    or "*" for all of them; an empty scope reads nothing.
    """

    kind: Kind
    id: str
    scope: frozenset[str]
    via: Via = "bearer"
    issuer: str | None = None
    #: When the credential stops being valid (a token's expiry, a JWT's `exp`), if it does.
    expires_at: datetime | None = None

    def may_read(self, code: str) -> bool:
        return ALL in self.scope or code in self.scope

    @property
    def scope_list(self) -> list[str]:
        return [ALL] if ALL in self.scope else sorted(self.scope)

    def label(self) -> str:
        """The scope in the index page's words."""
        if ALL in self.scope:
            return "alle kommuner"
        codes = self.scope_list
        return f"kommune {codes[0]}" if len(codes) == 1 else f"kommuner {', '.join(codes)}"

    def seen_via(self, via: Via) -> Principal:
        return replace(self, via=via)


def parse_scope(value: object, prefix: str = "") -> frozenset[str]:
    """A scope from a tokens-file entry or a claim: "*", "480", "480 607" or a list of those.

    Anything else (other strings, numbers, objects) is left out: a malformed scope grants
    nothing rather than failing the request.
    """
    items: Iterable[object]
    if isinstance(value, str):
        items = value.split()
    elif isinstance(value, list | tuple):
        items = value
    else:
        return frozenset()
    codes: set[str] = set()
    for item in items:
        if not isinstance(item, str) or not item.startswith(prefix):
            continue
        code = item[len(prefix):]
        if code == ALL or CODE.fullmatch(code):
            codes.add(code)
    return frozenset(codes)
