"""Operator tooling: the ``qbsync`` commands for status, history, failures, retries, dead letters, manual syncs,
preflight checks, and the generated Grafana dashboard and AsyncAPI document."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the operator commands to the ``qbsync`` application."""
    from qbsync_cli.ops import commands, dlq, generated

    app.command("status")(commands.status)
    app.command("history")(commands.history)
    app.command("failed")(commands.failed)
    app.command("retry")(commands.retry)
    app.command("retry-all")(commands.retry_all)
    app.command("sync")(commands.sync)
    app.command("doctor")(commands.doctor)
    app.add_typer(dlq.dlq_app, name="dlq")
    app.add_typer(generated.dashboard_app, name="dashboard")
    app.add_typer(generated.asyncapi_app, name="asyncapi")
