"""The ``qbsync demo`` command: start the stack, run the demo (live or ``--once``), stop everything."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import Counter
from typing import Annotated

import httpx
import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from qbsync.runtime.kafka import Publisher
from qbsync.settings import DEFAULT_HTTP_PORTS, SERVICE_NAMES, Settings
from qbsync_cli.demo.run import DemoRun, Problem
from qbsync_cli.demo.scenario import DemoWorld

__all__ = ["demo"]

console = Console()
err = Console(stderr=True)


def demo(
    once: Annotated[
        bool, typer.Option("--once", help="Play one day, print a summary, exit 1 if anything is wrong.")
    ] = False,
    organizations: Annotated[int, typer.Option("--orgs", min=1, max=20, help="How many organizations.")] = 3,
    days: Annotated[int, typer.Option(min=1, help="Days to play (live mode stops earlier on Ctrl-C).")] = 1_000,
    pace: Annotated[float, typer.Option(min=0, help="Seconds between two days (live mode).")] = 10.0,
    seed: Annotated[int, typer.Option(help="Seed of the Batchly simulator.")] = 2026,
    wait_seconds: Annotated[float, typer.Option("--wait", min=5, help="Longest wait for a day's outcomes.")] = 120.0,
) -> None:
    """Run the platform with a Batchly simulator and the emulator's accountant; show it live (or --once)."""
    from qbsync.embedded.broker import BrokerError
    from qbsync_cli.stack import Stack, StackError

    _demo_environment()
    settings = Settings()
    log: list[str] = []
    stack = Stack(settings, with_emulator=True, echo=console.print if once else log.append, quiet_children=True)
    code = 1
    try:
        console.print("starting the platform (broker, emulator, four services)…")
        stack.start()
        if stack.broker is not None:  # the embedded broker's address (the port offset applies to it)
            kafka = settings.kafka.model_copy(update={"bootstrap_servers": stack.broker.bootstrap_servers})
            settings = settings.model_copy(update={"kafka": kafka})
        world = DemoWorld(seed, organizations)
        run = DemoRun(settings, world, _emulator_url(settings), _service_url(settings, "token-manager"), console.print)
        code = asyncio.run(_play(run, once=once, days=1 if once else days, pace=pace, wait_seconds=wait_seconds))
    except (StackError, BrokerError) as exc:
        err.print(f"[red]error:[/red] {exc}")
    except KeyboardInterrupt:
        code = 0
    finally:
        stack.stop()
    raise typer.Exit(code)


def _demo_environment() -> None:
    """Defaults that make the demo lively and consistent with the stack's ports (the services inherit them)."""
    offset = int(os.environ.get("QBSYNC_EMBEDDED__PORT_OFFSET", "0") or 0)
    tm = f"http://127.0.0.1:{DEFAULT_HTTP_PORTS['token-manager'] + offset}"
    os.environ.setdefault("QBSYNC_TOKEN_MANAGER__URL", tm)
    os.environ.setdefault("QBSYNC_TOKEN_MANAGER__REDIRECT_URI", f"{tm}/oauth/callback")
    # Short retry tiers: a customer's first invoice that overtakes its customer is retried in seconds, not minutes.
    os.environ.setdefault("QBSYNC_RUNTIME__RETRY_DELAYS_SECONDS", "[2, 5]")


def _emulator_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.embedded.emulator_port + settings.embedded.port_offset}"


def _service_url(settings: Settings, service: str) -> str:
    return f"http://127.0.0.1:{DEFAULT_HTTP_PORTS[service] + settings.embedded.port_offset}"


async def _play(run: DemoRun, *, once: bool, days: int, pace: float, wait_seconds: float) -> int:
    settings = run.settings
    publisher = Publisher(settings.kafka, client_id="demo", topic_prefix=settings.topics.prefix)
    await publisher.start()
    await run.tracker.start()
    problems: list[Problem] = []
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            await run.set_up(http)
            if once:
                problems = await run.play_day(http, publisher, wait_seconds=wait_seconds)
            else:
                problems = await _live(run, http, publisher, days=days, pace=pace, wait_seconds=wait_seconds)
            metrics = await _metrics(http, settings)
    finally:
        await run.tracker.stop()
        await publisher.stop()
    console.print(_summary(run, metrics))
    for problem in problems[:20]:
        console.print(f"[red]✗[/red] {problem.what}", highlight=False)
    if problems:
        console.print(f"[red]{len(problems)} event(s) did not end as expected[/red]")
        return 1
    console.print("[green]every event ended as expected[/green]")
    return 0


async def _live(
    run: DemoRun, http: httpx.AsyncClient, publisher: Publisher, *, days: int, pace: float, wait_seconds: float
) -> list[Problem]:
    lines: list[str] = []
    problems: list[Problem] = []
    run.say = lines.append
    metrics: dict[str, Counter[str]] = {}
    with Live(console=console, refresh_per_second=2, transient=False) as live:

        async def refresh() -> None:
            nonlocal metrics
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    metrics = await _metrics(http, run.settings)
                live.update(Group(_summary(run, metrics), "\n".join(lines[-8:])))
                await asyncio.sleep(1)

        painter = asyncio.create_task(refresh())
        try:
            for _ in range(days):
                today = await run.play_day(http, publisher, wait_seconds=wait_seconds)
                lines.extend(f"✗ {p.what}" for p in today[:5])
                problems.extend(today)
                await asyncio.sleep(pace)
        finally:
            painter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await painter
    return problems


async def _metrics(http: httpx.AsyncClient, settings: Settings) -> dict[str, Counter[str]]:
    """Per service: events by outcome and QuickBooks requests, from its /metrics."""
    found: dict[str, Counter[str]] = {}
    for service in SERVICE_NAMES:
        counts: Counter[str] = Counter()
        with contextlib.suppress(httpx.HTTPError):
            text = (await http.get(f"{_service_url(settings, service)}/metrics")).text
            for line in text.splitlines():
                if line.startswith("qbsync_events_total{"):
                    outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
                    counts[outcome] += int(float(line.rsplit(" ", 1)[1]))
                elif line.startswith("qbsync_qbo_requests_total{"):
                    counts["qbo requests"] += int(float(line.rsplit(" ", 1)[1]))
        found[service] = counts
    return found


def _summary(run: DemoRun, metrics: dict[str, Counter[str]]) -> Group:
    orgs = Table(
        "organization",
        "customers",
        "invoices",
        "orders",
        "payments",
        "pending",
        title="QuickBooks sync, per organization",
    )
    for organization_id in run.world.organization_ids:
        counts: Counter[tuple[str, str]] = Counter()
        pending = 0
        for event_id, (org, entity, _expected) in run.expected.items():
            if org != organization_id:
                continue
            got = run.tracker.outcomes.get(event_id)
            status = got.status if got is not None else "pending"
            counts[(entity, status)] += 1
            pending += status not in ("completed", "failed", "ignored")
        payments = run.tracker.changes[(organization_id, "InvoicePaymentChanged")]
        orgs.add_row(
            run.world.name_of(organization_id),
            _cell(counts, "customer"),
            _cell(counts, "invoice"),
            f"{counts[('sales_order', 'ignored')]} kept in Batchly",
            f"{payments} updated",
            str(pending),
        )
    services = Table(
        "service", "completed", "ignored", "retries", "dead letters", "duplicates", "QBO requests", title="/metrics"
    )
    for service, numbers in metrics.items():
        services.add_row(
            service,
            *(str(numbers[k]) for k in ("completed", "ignored", "retry", "dead_letter", "duplicate", "qbo requests")),
        )
    return Group(orgs, services)


def _cell(counts: Counter[tuple[str, str]], entity: str) -> str:
    synced, failed = counts[(entity, "completed")], counts[(entity, "failed")]
    return f"{synced} synced, {failed} failed" if failed else f"{synced} synced"
