"""Each service against its own OpenAPI document: schemathesis, every check, zero failures.

The four services and the ingestion gateway run in-process against the real Kafka-protocol
broker and MongoDB-protocol server, with a token for every municipality (hashed in the tokens
file). Schemathesis (pinned in the dev extra) reads each `/openapi.json`, generates requests
from it — valid and invalid parameters, unsupported methods, requests without the token — and
checks every answer against the document: status codes, content types, headers, bodies, 405s with the
right `Allow`, auth that is really enforced, no server errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.analysis.app import create as create_analysis
from services.common.auth.tokens import digest
from services.followup.app import create as create_followup
from services.gateway.app import create as create_gateway
from services.intake.app import create as create_intake
from services.reporting.app import create as create_reporting
from tests.support.services import Running, running, settings_for

pytestmark = pytest.mark.integration

TOKEN = "schemathesis-token-for-every-municipality"
CREATE = {"intake": create_intake, "analysis": create_analysis, "followup": create_followup,
          "reporting": create_reporting, "gateway": create_gateway}
#: The gateway's request body is described by its shape (an array of objects, JSON Lines as a
#: string, CloudEvents); whether each item is a valid event is the contract's, answered per
#: item (docs/contract.md, "Ingestion gateway"). So a body of the right shape whose items are
#: all invalid is a 422 by design, and one over the documented `maxItems` a 413; JSON Lines
#: bodies are sent as the generated text.
GATEWAY_CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]

[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429",
                     "5xx"]
"""
GATEWAY_HOOKS = """
import json

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(_ctx, value):
    return value.encode("utf-8", "surrogatepass") if isinstance(value, str) else json.dumps(value).encode()
"""
#: Generated cases per operation (a bound on the run's time: about a minute in all).
MAX_EXAMPLES = 40
SCHEMATHESIS_TIMEOUT_S = 420


@pytest.fixture(scope="module")
async def services(stack, tmp_path_factory) -> AsyncIterator[dict[str, Running]]:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    tokens = tmp_path_factory.mktemp("openapi") / "tokens.json"
    tokens.write_text(json.dumps({f"sha256:{digest(TOKEN)}": "*"}))
    async with contextlib.AsyncExitStack() as exits:
        started = {}
        for name, create in CREATE.items():
            settings = settings_for(name, stack, prefix, TASKFORCE_TOKENS_FILE=str(tokens),
                                    TASKFORCE_SESSION_SECRET=f"openapi-{prefix}")
            started[name] = await exits.enter_async_context(running(create, settings))
        yield started


@pytest.mark.parametrize("service", list(CREATE))
async def test_the_service_does_what_its_openapi_document_says(services, service, tmp_path: Path) -> None:
    base = services[service].base_url
    config: list[str] = []
    environment = dict(os.environ)
    if service == "gateway":
        (tmp_path / "schemathesis.toml").write_text(GATEWAY_CONFIG, encoding="utf-8")
        (tmp_path / "gateway_hooks.py").write_text(GATEWAY_HOOKS, encoding="utf-8")
        config = ["--config-file", str(tmp_path / "schemathesis.toml")]
        environment["SCHEMATHESIS_HOOKS"] = str(tmp_path / "gateway_hooks.py")
    command = [
        str(Path(sys.executable).parent / "schemathesis"), *config, "run", f"{base}/openapi.json",
        "--checks", "all", "--header", f"Authorization: Bearer {TOKEN}",
        "--max-examples", str(MAX_EXAMPLES), "--seed", "20260101", "--workers", "1",
        "--generation-database", "none", "--request-timeout", "30", "--no-color",
        "--report", "junit", "--report-dir", str(tmp_path),
    ]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path,
        env=environment)
    output, _ = await asyncio.wait_for(process.communicate(), SCHEMATHESIS_TIMEOUT_S)
    text = output.decode("utf-8", "replace")
    assert process.returncode == 0, text[-12_000:]
    # Warnings (e.g. "missing test data": generated codes rarely have data) are no failures.
    counted = re.search(r"(\d+) generated, (\d+) passed(, \d+ skipped)?\n", text)
    assert counted and int(counted.group(1)) == int(counted.group(2)) > 0, text[-4000:]
    closing = text.strip().splitlines()[-1]
    assert "failure" not in closing and "error" not in closing, text[-4000:]
