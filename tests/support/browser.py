"""Signing in as a browser does: the form first (its CSRF cookie and hidden field), then the POST."""

from __future__ import annotations

import re
from typing import Any

import httpx

_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def csrf_token(page: str) -> str:
    found = _CSRF.search(page)
    assert found, "the sign-in form has no csrf_token field"
    return found.group(1)


async def sign_in(browser: httpx.AsyncClient, token: str, next_url: str | None = None,
                  **kwargs: Any) -> httpx.Response:
    """GET /login, then POST the form with its CSRF token: the sign-in's response."""
    form = await browser.get("/login", **kwargs)
    assert form.status_code == 200, form.status_code
    data = {"token": token, "csrf_token": csrf_token(form.text)}
    if next_url is not None:
        data["next"] = next_url
    return await browser.post("/login", data=data, **kwargs)
