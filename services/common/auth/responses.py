"""What the routes answer besides 200, for the OpenAPI documents (so generated clients work)."""

from __future__ import annotations

from typing import Any

_DETAIL: dict[str, Any] = {"type": "object", "properties": {"detail": {"type": "string"}}}
_JSON_DETAIL = {"application/json": {"schema": _DETAIL}}
_HTML = {"text/html": {"schema": {"type": "string"}}}
_LOCATION = {"Location": {"description": "Where to go next.", "required": True, "schema": {"type": "string"}}}

UNAUTHORIZED: dict[int | str, dict[str, Any]] = {401: {
    "description": "No credentials, or not valid ones: a missing, unknown, expired or malformed "
                   "token, a JWT that fails verification, or no live session.",
    "headers": {"WWW-Authenticate": {
        "description": 'RFC 6750: `Bearer realm="taskforce"`, with `error="invalid_token"` when a '
                       "token was presented and refused.",
        "required": True, "schema": {"type": "string"}}},
    "content": _JSON_DETAIL}}
FORBIDDEN: dict[int | str, dict[str, Any]] = {403: {
    "description": "The principal may not read this municipality. The body is empty: a refusal says "
                   "nothing about the data."}}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {
    "description": "Nothing there: no such data for the municipality, or a path that names none.",
    "content": _JSON_DETAIL}}
UNAVAILABLE: dict[int | str, dict[str, Any]] = {503: {
    "description": "The identity provider's signing keys cannot be had now (OIDC only).",
    "headers": {"Retry-After": {"description": "Seconds.", "required": True, "schema": {"type": "integer"}}},
    "content": _JSON_DETAIL}}

#: Every case-data route (422 is documented by FastAPI itself, from the path parameters).
CASE_DATA: dict[int | str, dict[str, Any]] = {**UNAUTHORIZED, **FORBIDDEN, **NOT_FOUND, **UNAVAILABLE}

REDIRECT: dict[int | str, dict[str, Any]] = {303: {"description": "See Other.", "headers": _LOCATION}}
HTML_PAGE = _HTML
SIGN_IN: dict[int | str, dict[str, Any]] = {
    303: {"description": "Signed in: the session cookie is set; on to `next` (a local path).",
          "headers": {**_LOCATION, "Set-Cookie": {"description": "The session cookie.", "required": True,
                                                  "schema": {"type": "string"}}}},
    401: {"description": "Unknown or expired token: the form again, with the error.", "content": _HTML},
    403: {"description": "The form's CSRF token is missing, expired or does not match its cookie: the "
                         "form again, with a fresh one.", "content": _HTML},
    429: {"description": "Too many failed sign-ins from this client: the form again.",
          "headers": {"Retry-After": {"description": "Seconds until sign-in is possible again.",
                                      "required": True, "schema": {"type": "integer"}}},
          "content": _HTML},
}
PROMETHEUS: dict[int | str, dict[str, Any]] = {200: {
    "description": "Prometheus text exposition format.",
    "content": {"text/plain": {"schema": {"type": "string"}}}}}
READINESS: dict[int | str, dict[str, Any]] = {503: {
    "description": "Not ready: the same body, with the checks that failed set to false.",
    "content": {"application/json": {"schema": {"type": "object"}}}}}
