"""Each service's command line: `serve` (the default) and `rebuild`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import typer
from fastapi import FastAPI
from pydantic import ValidationError

from services.common.runtime import Runtime, serve
from services.common.secret_files import SettingsError, describe_validation_error
from services.common.settings import Settings, load_settings

Factory = Callable[..., tuple[FastAPI, Runtime]]


def service_cli(service: str, create: Factory) -> typer.Typer:
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
            http_app, _runtime = create(settings)
        serve(http_app, settings)

    @app.command()
    def rebuild() -> None:
        """Drop the projections, replay the input topics from the start, then switch over.

        Run it with the service's replicas stopped; start them again afterwards.
        """
        from services.common.rebuild import rebuild as do_rebuild

        settings = _settings(service)
        with _settings_errors(service):
            _http_app, runtime = create(settings)
            summary: dict[str, Any] = asyncio.run(do_rebuild(runtime))
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
