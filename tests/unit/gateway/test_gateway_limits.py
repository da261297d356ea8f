"""The gateway's per-principal rate limit and its refusal to serve unguarded beyond loopback."""

from __future__ import annotations

import pytest

from services.common.secret_files import SettingsError
from services.common.settings import load_settings
from services.gateway.app import check_credentials
from services.gateway.config import GatewayConfig
from services.gateway.limits import RateLimiter

pytestmark = pytest.mark.unit


def test_bucket_grants_a_burst_then_asks_to_wait() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=100, burst=1000, clock=lambda: now[0])
    assert limiter.take("a", 1000) is None
    assert limiter.take("a", 200) == 2  # 200 events at 100/s
    assert limiter.take("b", 1000) is None  # per principal
    now[0] = 2.0
    assert limiter.take("a", 200) is None


def test_a_request_larger_than_the_bucket_waits_for_a_full_bucket() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=10, burst=50, clock=lambda: now[0])
    assert limiter.take("a", 1000) is None
    assert limiter.take("a", 1000) == 5


def test_refuses_to_serve_unguarded_beyond_loopback(tmp_path: object) -> None:
    config = GatewayConfig()
    check_credentials(load_settings("gateway"), config)  # loopback: fine
    with pytest.raises(SettingsError):
        check_credentials(load_settings("gateway", TASKFORCE_HTTP_HOST="0.0.0.0"), config)
    check_credentials(load_settings("gateway", TASKFORCE_HTTP_HOST="0.0.0.0",
                                    TASKFORCE_TOKENS_FILE="/run/secrets/tokens.json"), config)
    check_credentials(load_settings("gateway", TASKFORCE_HTTP_HOST="0.0.0.0"),
                      GatewayConfig(TASKFORCE_GATEWAY_ALLOW_NO_CREDENTIALS=True))
