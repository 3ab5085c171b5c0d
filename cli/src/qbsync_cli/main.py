"""The ``qbsync`` command line.

qbsync up                 run the platform on its embedded defaults (broker, emulator, four services)
qbsync schemas export     write the contracts' JSON Schemas to docs/schemas
qbsync schemas check      fail if docs/schemas differs from the models
qbsync topics create      create every topic with explicit partition counts (real Kafka)
qbsync db upgrade         run database migrations for a service
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from qbsync.contracts.schemas import check_schemas, write_schemas
from qbsync.settings import SERVICE_NAMES, Settings
from qbsync_cli import connections
from qbsync_cli.demo import demo
from qbsync_cli.ops import register as register_ops

app = typer.Typer(
    name="qbsync",
    help="qbsync: keep Batchly and QuickBooks Online in step.",
    no_args_is_help=True,
    add_completion=False,
)
schemas_app = typer.Typer(help="Event contract JSON Schemas.", no_args_is_help=True)
topics_app = typer.Typer(help="Kafka topics.", no_args_is_help=True)
db_app = typer.Typer(help="Service databases.", no_args_is_help=True)
app.add_typer(schemas_app, name="schemas")
app.add_typer(topics_app, name="topics")
app.add_typer(db_app, name="db")
app.command("connect")(connections.connect)
app.command("disconnect")(connections.disconnect)
app.command("connections")(connections.list_connections)
register_ops(app)
app.command("demo")(demo)

console = Console()
err = Console(stderr=True)

DEFAULT_SCHEMA_DIR = Path("docs/schemas")


@app.command()
def up(
    emulator: Annotated[bool, typer.Option(help="Start the QBO emulator (seeded with a demo company).")] = True,
    check: Annotated[
        bool, typer.Option("--check", help="Start, verify every /health, stop and exit (a smoke test).")
    ] = False,
    quiet: Annotated[bool, typer.Option(help="Do not echo the processes' logs (they still go to var/log).")] = False,
) -> None:
    """Run the whole platform on this machine (127.0.0.1 only). Ctrl-C stops everything."""
    from qbsync.embedded.broker import BrokerError
    from qbsync_cli.stack import Stack, StackError

    settings = Settings()
    stack = Stack(
        settings,
        with_emulator=emulator,
        echo=lambda line: console.print(line, markup=False, highlight=False),
        quiet_children=quiet,
    )
    code = 0
    try:
        stack.start()
        if check:
            console.print("every process answered /health; stopping (--check)")
        else:
            code = stack.run_until_signalled()
    except (StackError, BrokerError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        code = 1
    except KeyboardInterrupt:
        code = 0
    finally:
        stack.stop()
    raise typer.Exit(code)


@schemas_app.command("export")
def schemas_export(
    out: Annotated[Path, typer.Option(help="Directory to write to.")] = DEFAULT_SCHEMA_DIR,
) -> None:
    """Write every event's JSON Schema (and index.json)."""
    written = write_schemas(out)
    console.print(f"wrote {len(written)} files to {out}")


@schemas_app.command("check")
def schemas_check(
    directory: Annotated[Path, typer.Option(help="Directory to compare.")] = DEFAULT_SCHEMA_DIR,
) -> None:
    """Exit 1 if the checked-in schemas differ from the models (run `qbsync schemas export`)."""
    problems = check_schemas(directory)
    for problem in problems:
        err.print(problem)
    if problems:
        err.print("schemas drifted from the models: run `qbsync schemas export`")
        raise typer.Exit(1)
    console.print("schemas match the models")


@topics_app.command("create")
def topics_create() -> None:
    """Create every platform topic that does not exist yet (explicit partitions, configured replication)."""
    from qbsync.runtime.kafka import ensure_topics
    from qbsync.service import platform_topics

    settings = Settings()
    created = asyncio.run(ensure_topics(settings.kafka, settings.topics, platform_topics(settings), client_id="cli"))
    console.print(f"created {len(created)} topic(s)" + (": " + ", ".join(created) if created else ""))


@db_app.command("upgrade")
def db_upgrade(
    service: Annotated[str, typer.Argument(help=f"One of: {', '.join(SERVICE_NAMES)}")],
) -> None:
    """Run the migrations of SERVICE's database (what services otherwise do at start-up): `<service> migrate`."""
    import subprocess
    import sys

    if service not in SERVICE_NAMES:
        err.print(f"unknown service {service!r}; expected one of {', '.join(SERVICE_NAMES)}")
        raise typer.Exit(2)
    module = service.replace("-", "_")
    code = subprocess.call([sys.executable, "-m", module, "migrate"])  # noqa: S603 - our own module
    if code:
        raise typer.Exit(code)
    console.print(f"{service}: database at head")


if __name__ == "__main__":
    app()
