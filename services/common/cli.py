"""Each service's command line: `serve` (the default) and `rebuild`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import typer
from pydantic import ValidationError

from services.common.secret_files import SettingsError, describe_validation_error
from services.common.service import Service
from services.common.serving import build_app, serve
from services.common.settings import Settings, load_settings

#: A service's composition root (`services.<name>.app.compose`).
Compose = Callable[[Settings], Service]


def service_cli(service: str, compose: Compose) -> typer.Typer:
    app = typer.Typer(add_completion=False, help=f"The taskforce {service} service.")

    @app.callback(invoke_without_command=True)
    def main(ctx: typer.Context) -> None:
        if ctx.invoked_subcommand is None:
            run()

    @app.command()
    def run() -> None:
        """Consume, project and serve HTTP until SIGTERM."""
        settings = _settings(service)
        with _settings_errors(service):
            http_app = build_app(compose(settings))
        serve(http_app, settings)

    @app.command()
    def rebuild() -> None:
        """Drop the projections, replay the input topics from the start, then switch over.

        Run it with the service's replicas stopped; start them again afterwards.
        """
        from services.common.rebuild import rebuild as do_rebuild

        settings = _settings(service)
        with _settings_errors(service):
            summary: dict[str, Any] = asyncio.run(do_rebuild(compose(settings)))
        typer.echo(summary)

    return app


def _settings(service: str) -> Settings:
    with _settings_errors(service):
        return load_settings(service)
    raise AssertionError("unreachable")  # pragma: no cover (the context manager raises)


@contextlib.contextmanager
def _settings_errors(service: str) -> Iterator[None]:
    """A setting that cannot work ends the process with one line naming it (never its value)
    and exit code 2: a configuration error, which no restart cures."""
    try:
        yield
    except SettingsError as exc:
        typer.echo(f"taskforce {service}: configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
    except ValidationError as exc:
        typer.echo(f"taskforce {service}: configuration error: {describe_validation_error(exc)}", err=True)
        raise typer.Exit(2) from None
