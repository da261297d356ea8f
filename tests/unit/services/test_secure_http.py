"""The reporting app over HTTPS by default outside loopback: `Secure` cookies and HSTS (issue 24)."""

from __future__ import annotations

import httpx
import pytest

from services.common.settings import load_settings
from services.reporting.app import create

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("host", "secure_cookies", "https"), [
    ("127.0.0.1", None, False), ("0.0.0.0", None, True), ("0.0.0.0", "false", False),
    ("127.0.0.1", "true", True),
])
async def test_hsts_and_secure_cookies_follow_the_bind_address(host: str, secure_cookies: str | None,
                                                               https: bool, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("TASKFORCE_SECURE_COOKIES", raising=False)
    if secure_cookies is not None:
        monkeypatch.setenv("TASKFORCE_SECURE_COOKIES", secure_cookies)
    settings = load_settings("reporting", TASKFORCE_HTTP_HOST=host, TASKFORCE_SESSION_SECRET="x" * 32,
                             MONGODB_URL="mongodb://127.0.0.1:1/?directConnection=true")
    assert settings.session_cookies_secure is https
    app, _runtime = create(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://reporting") as client:
        page = await client.get("/login")  # no lifespan: nothing connects
    assert page.status_code == 200
    assert ("Strict-Transport-Security" in page.headers) is https
    if https:
        assert page.headers["Strict-Transport-Security"] == "max-age=31536000"
    cookies = page.headers.get_list("set-cookie")
    assert cookies, "the sign-in form sets its CSRF cookie"
    assert all(("secure" in c.lower().split("; ")) is https for c in cookies), cookies
