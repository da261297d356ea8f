"""`python -m services.gateway`: serve until SIGTERM (a setting that cannot work: exit 2)."""

from __future__ import annotations

import typer
from pydantic import ValidationError

from services.common.secret_files import SettingsError, describe_validation_error
from services.common.serving import serve
from services.common.settings import load_settings


def run() -> None:
    """Validate and produce events over HTTP until SIGTERM."""
    from services.gateway.app import create
    from services.gateway.config import GatewayConfig

    try:
        settings = load_settings("gateway")
        app, _runtime = create(settings, GatewayConfig())
    except SettingsError as exc:
        typer.echo(f"taskforce gateway: configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
    except ValidationError as exc:
        typer.echo(f"taskforce gateway: configuration error: {describe_validation_error(exc)}", err=True)
        raise typer.Exit(2) from None
    serve(app, settings)


def main() -> None:
    typer.run(run)
