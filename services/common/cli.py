"""Each service's command line: `serve` (the default) and `rebuild`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import typer
from fastapi import FastAPI

from services.common.runtime import Runtime, serve
from services.common.settings import load_settings

Factory = Callable[..., tuple[FastAPI, Runtime]]


def service_cli(service: str, create: Factory, input_topics: list[str]) -> typer.Typer:
    app = typer.Typer(add_completion=False, help=f"The taskforce {service} service.")

    @app.callback(invoke_without_command=True)
    def main(ctx: typer.Context) -> None:
        if ctx.invoked_subcommand is None:
            run()

    @app.command()
    def run() -> None:
        """Consume, project and serve HTTP until SIGTERM."""
        settings = load_settings(service)
        http_app, _runtime = create(settings)
        serve(http_app, settings)

    @app.command()
    def rebuild() -> None:
        """Drop the projections, replay the input topics from the start, then switch over.

        Run it with the service's replicas stopped; start them again afterwards.
        """
        from services.common.rebuild import rebuild as do_rebuild

        settings = load_settings(service)
        _http_app, runtime = create(settings)
        summary: dict[str, Any] = asyncio.run(do_rebuild(runtime))
        typer.echo(summary)

    return app
