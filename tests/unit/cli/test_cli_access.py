"""`taskforce token new` and the audit command's pure parts; the CLI reading hashed tokens."""

from __future__ import annotations

import json
import re
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.common.auth.tokens import TokenBook
from taskforce import access, cli
from taskforce.summaries_view import ApiError, resolve_token

pytestmark = pytest.mark.unit


def test_a_new_token_is_printed_once_with_its_hashed_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli.app, ["token", "new", "-m", "480"])
    assert result.exit_code == 0, result.output
    token = re.search(r"^  (\S{43})$", result.output, re.M)
    line = re.search(r'^  ("sha256:[0-9a-f]{64}": "480")$', result.output, re.M)
    assert token and line, result.output
    path = tmp_path / "tokens.json"
    path.write_text("{" + line.group(1) + "}")
    principal = TokenBook(path).lookup(token.group(1)).principal
    assert principal is not None and principal.scope == {"480"}
    assert f"In the audit trail it is {principal.id}." in result.output
    assert token.group(1) not in path.read_text()


def test_a_new_token_may_expire_and_be_added_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "tokens.json"
    first = CliRunner().invoke(cli.app, ["token", "new", "-m", "607", "-m", "480", "--expires", "2026-12-31",
                                         "--tokens-file", str(path)])
    second = CliRunner().invoke(cli.app, ["token", "new", "-m", "*", "--tokens-file", str(path)])
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    book = json.loads(path.read_text())
    assert sorted(map(str, book.values())) == sorted(
        ["*", str({"scope": ["480", "607"], "expires": "2026-12-31"})])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = re.search(r"^  (\S{43})$", first.output, re.M)
    assert token
    entry = TokenBook(path, clock=lambda: datetime(2027, 1, 1, tzinfo=UTC)).lookup(token.group(1))
    assert entry.reason == "expired"


@pytest.mark.parametrize("arguments", [["-m", "48"], ["-m", "480", "--expires", "soon"],
                                       ["-m", "480", "--expires", "2026-12-31T12:00"]])
def test_token_new_refuses_what_the_tokens_file_would_not_read(arguments: list[str]) -> None:
    result = CliRunner().invoke(cli.app, ["token", "new", *arguments])
    assert result.exit_code == 2 and "sha256:" not in result.output


def test_audit_times_are_danish_unless_they_say_otherwise() -> None:
    assert access.instant("2026-01-01") == datetime(2025, 12, 31, 23, tzinfo=UTC)
    assert access.instant("2026-07-01T08:00") == datetime(2026, 7, 1, 6, tzinfo=UTC)
    assert access.instant("2026-07-01T08:00+00:00") == datetime(2026, 7, 1, 8, tzinfo=UTC)
    with pytest.raises(access.AccessError):
        access.instant("yesterday")
    result = CliRunner().invoke(cli.app, ["audit", "-m", "48"])
    assert result.exit_code == 2


def test_the_cli_uses_plain_text_tokens_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = tmp_path / "tokens.json"
    monkeypatch.setenv("TASKFORCE_TOKENS_FILE", str(tokens))
    monkeypatch.delenv("TASKFORCE_TOKEN", raising=False)
    tokens.write_text(json.dumps({"sha256:" + "a" * 64: "*"}))
    with pytest.raises(ApiError, match="plain-text"):
        resolve_token(None)
    tokens.write_text(json.dumps({"sha256:" + "a" * 64: "*", "plain": "*"}))
    assert resolve_token(None) == "plain"
