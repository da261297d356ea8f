"""Secrets read from files (the `*_FILE` variables), and the error for a setting that cannot work.

Kubernetes and Compose mount secrets as files; a variable `NAME_FILE` names such a file and
its content is the value of `NAME` (surrounding whitespace and a final newline removed).
Neither these helpers nor `SettingsError` ever put a secret's value into a message: they
name the setting (and a file's path, which is not secret).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

#: The largest secret file read (a tokens file is not read here; URLs and passwords are short).
MAX_SECRET_BYTES = 64 * 1024


class SettingsError(Exception):
    """A setting (or combination) that cannot work: names the setting, never its value.

    `setting` is the variable to look at, e.g. "KAFKA_SSL_CAFILE"; str() is one line.
    """

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        self.problem = problem
        super().__init__(f"{setting}: {problem}")


def read_secret_file(path: Path, variable: str) -> str:
    """The secret in `path` (named by `variable`, e.g. "KAFKA_SASL_PASSWORD_FILE"), stripped."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_SECRET_BYTES + 1)
    except OSError as exc:
        raise SettingsError(variable, f"cannot read {path} ({exc.strerror or type(exc).__name__})") from None
    if len(raw) > MAX_SECRET_BYTES:
        raise SettingsError(variable, f"{path} is larger than {MAX_SECRET_BYTES} bytes: not a secret value")
    try:
        value = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise SettingsError(variable, f"{path} is not UTF-8 text") from None
    if not value:
        raise SettingsError(variable, f"{path} is empty")
    return value


def describe_validation_error(error: ValidationError) -> str:
    """A pydantic-settings error as one line naming each variable, without the values given
    (pydantic's own text repeats every input, and an input may be a secret)."""
    parts = [f"{'.'.join(str(part) for part in e['loc']) or 'settings'}: {e['msg']}"
             for e in error.errors(include_input=False, include_url=False)]
    return "; ".join(parts) or "invalid settings"

