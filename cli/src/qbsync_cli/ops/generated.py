"""``qbsync dashboard export|check`` and ``qbsync asyncapi export|check``: generated files with a drift check."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from qbsync_cli.ops.asyncapi import ASYNCAPI_PATH, check_asyncapi, render_asyncapi
from qbsync_cli.ops.dashboard import DASHBOARD_PATH, check_dashboard, render_dashboard

__all__ = ["asyncapi_app", "dashboard_app"]

console = Console()
err = Console(stderr=True)
dashboard_app = typer.Typer(help="The Grafana Sync Dashboard (deploy/grafana/dashboards).", no_args_is_help=True)
asyncapi_app = typer.Typer(help="The AsyncAPI document of every topic and message.", no_args_is_help=True)


def _commands(app: typer.Typer, default: Path, render: Callable[[], str], check: Callable[[Path], list[str]]) -> None:
    @app.command("export")
    def export(path: Annotated[Path, typer.Option(help="File to write.")] = default) -> None:
        """Write the generated file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(), encoding="utf-8")
        console.print(f"wrote {path}", highlight=False)

    @app.command("check")
    def check_command(path: Annotated[Path, typer.Option(help="File to compare.")] = default) -> None:
        """Exit 1 if the checked-in file differs from what the code generates."""
        problems = check(path)
        for problem in problems:
            err.print(problem, highlight=False)
        if problems:
            err.print(f"{path} drifted from the code: run `qbsync {app.info.name} export`", highlight=False)
            raise typer.Exit(1)
        console.print(f"{path} matches the code", highlight=False)


dashboard_app.info.name = "dashboard"
asyncapi_app.info.name = "asyncapi"
_commands(dashboard_app, DASHBOARD_PATH, render_dashboard, check_dashboard)
_commands(asyncapi_app, ASYNCAPI_PATH, render_asyncapi, check_asyncapi)
