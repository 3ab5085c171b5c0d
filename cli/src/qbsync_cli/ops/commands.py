"""The operator commands: status, history, failed, retry, retry-all, sync, doctor (wired into ``qbsync``).

Every command reads the settings once (``Settings()``: the same environment the services use), talks to the
services' ledgers read-only, and to Kafka only to publish commands or retries and to read the answers.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar
from uuid import UUID

import httpx
import typer
from aiokafka.errors import KafkaError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from qbsync.runtime.kafka import Publisher, record_for
from qbsync.settings import SERVICE_NAMES, Settings
from qbsync.tokens.api import ConnectionListBody, connections_path
from qbsync_cli.ops.ledgers import LedgerRow, Ledgers
from qbsync_cli.ops.manual import SyncKind, command_for, owner_of
from qbsync_cli.ops.render import ConnectionView, dashboard, failed_list, history_table
from qbsync_cli.ops.results import Answer, ResultWatcher
from qbsync_cli.ops.retry import RetryOutcome, retry_rows

__all__ = ["doctor", "failed", "history", "parse_since", "retry", "retry_all", "status", "sync"]

console = Console()
err = Console(stderr=True)
T = TypeVar("T")

OrgOption = Annotated[UUID | None, typer.Option("--org", help="Only this organization.")]
ServiceOption = Annotated[str | None, typer.Option("--service", help=f"Only this service: {', '.join(SERVICE_NAMES)}.")]
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


class BadArgument(typer.BadParameter):
    pass


def parse_since(text: str, *, now: datetime) -> datetime:
    """``30m``, ``24h``, ``7d``, ``2w`` before ``now``, or an ISO-8601 time with a timezone."""
    match = _DURATION.match(text.strip())
    if match:
        return now - timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadArgument(f"{text!r} is neither a duration (30m, 24h, 7d) nor an ISO-8601 time") from None
    if moment.tzinfo is None:
        raise BadArgument(f"{text!r} has no timezone (add Z or +00:00)")
    return moment


def check_service(service: str | None) -> str | None:
    if service is not None and service not in SERVICE_NAMES:
        raise BadArgument(f"unknown service {service!r}; expected one of {', '.join(SERVICE_NAMES)}")
    return service


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; turn unreachable infrastructure into a clear one-line error."""
    try:
        return asyncio.run(coroutine)
    except LookupError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    except OSError as exc:
        err.print(f"[red]error:[/red] cannot reach a database or the broker: {exc}", highlight=False)
        raise typer.Exit(1) from None
    except KafkaError as exc:
        err.print(f"[red]error:[/red] Kafka: {type(exc).__name__}: {exc}", highlight=False)
        raise typer.Exit(1) from None


# ---- status / history / failed --------------------------------------------------------------------------------------
def status(
    organization: Annotated[
        UUID | None, typer.Argument(help="The organization (default: every one in the ledgers).")
    ] = None,
    window: Annotated[str, typer.Option(help="What 'recent' means: 30m, 24h, 7d...")] = "24h",
) -> None:
    """The seed's Sync Dashboard as text, per organization: connection, last sync, counts, queue, failures."""
    settings = Settings()
    now = datetime.now(UTC)
    since = parse_since(window, now=now)
    run(_status(settings, organization, since, window, now))


async def _status(settings: Settings, organization: UUID | None, since: datetime, window: str, now: datetime) -> None:
    connections = await asyncio.to_thread(_connections_from_token_manager, settings)
    async with await Ledgers.open(settings.database) as ledgers:
        _note_absent(ledgers)
        orgs = [organization] if organization else await ledgers.organizations()
        if connections is not None and organization is None:
            orgs = sorted(set(orgs) | set(connections), key=str)
        if not orgs:
            console.print("No organization has synced anything yet.")
            return
        names = await ledgers.organization_names()
        learnt = await ledgers.connection_states()
        for org in orgs:
            counts = await ledgers.counts(org, recent_since=since, failed_since=now - timedelta(days=7))
            view = _connection_view(org, connections, learnt)
            console.print(dashboard(counts, name=names.get(org), connection=view, now=now, window=window))


def _connection_view(
    org: UUID, connections: dict[UUID, Any] | None, learnt: dict[UUID, tuple[str, datetime]]
) -> ConnectionView:
    if connections is not None and org in connections:
        item = connections[org]
        detail = f"to {item.company_name or 'QuickBooks company'} (realm {item.realm_id})"
        if item.refresh_token_expiring_soon:
            detail += " — refresh token ends soon: reconnect"
        return ConnectionView(item.status, detail, item.status_changed_at)
    if org in learnt:
        state, changed = learnt[org]
        return ConnectionView(state, "(as the sync services last heard)", changed)
    return ConnectionView(None)


def _connections_from_token_manager(settings: Settings) -> dict[UUID, Any] | None:
    tm = settings.token_manager
    headers = {"Authorization": f"Bearer {tm.service_token.get_secret_value()}", "Accept": "application/json"}
    try:
        response = httpx.get(tm.url.rstrip("/") + connections_path(), headers=headers, timeout=5)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    return {c.organization_id: c for c in ConnectionListBody.model_validate_json(response.content).connections}


def history(
    organization: OrgOption = None,
    service: ServiceOption = None,
    entity: Annotated[
        str | None, typer.Option("--entity", help="Only this entity type (customer, invoice...).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many syncs.")] = 100,
) -> None:
    """The sync history: the last 100 syncs (every service), newest first."""
    settings = Settings()
    check_service(service)

    async def go() -> list[LedgerRow]:
        async with await Ledgers.open(settings.database) as ledgers:
            _note_absent(ledgers)
            return await ledgers.history(organization_id=organization, service=service, entity_type=entity, limit=limit)

    rows = run(go())
    console.print(history_table(rows, datetime.now(UTC)))
    console.print(f"{len(rows)} sync(s)", highlight=False)


def failed(
    organization: OrgOption = None,
    service: ServiceOption = None,
    since: Annotated[str, typer.Option(help="How far back: 7d (the seed's window), 24h, or an ISO time.")] = "7d",
) -> None:
    """Failed syncs (last 7 days) with the error details and what to do about each."""
    settings = Settings()
    check_service(service)
    moment = parse_since(since, now=datetime.now(UTC))

    async def go() -> list[LedgerRow]:
        async with await Ledgers.open(settings.database) as ledgers:
            _note_absent(ledgers)
            return await ledgers.failed(since=moment, organization_id=organization, service=service)

    rows = run(go())
    if not rows:
        console.print("✅ No failed syncs.")
        return
    console.print(failed_list(rows, datetime.now(UTC)))
    console.print(f"{len(rows)} failed sync(s). Retry all: qbsync retry-all", highlight=False)


# ---- retry ----------------------------------------------------------------------------------------------------------
TimeoutOption = Annotated[float, typer.Option(min=1, help="Seconds to wait for the outcomes.")]


def retry(
    identifier: Annotated[UUID, typer.Argument(metavar="ID", help="The failed sync: its event id (or ledger id).")],
    timeout: TimeoutOption = 60,
) -> None:
    """Retry one failed sync now and show the outcome (the seed's "Retry" button)."""
    settings = Settings()

    async def go() -> list[RetryOutcome]:
        async with await Ledgers.open(settings.database) as ledgers:
            rows = await ledgers.find(identifier)
        if not rows:
            raise LookupError(f"no sync with id {identifier} in any service's ledger")
        retryable = [r for r in rows if r.status == "failed"]
        if not retryable:
            states = ", ".join(f"{r.service}: {r.status}" for r in rows)
            raise LookupError(f"{identifier} has not failed ({states}); nothing to retry")
        with console.status(f"retrying {identifier}…"):
            return await retry_rows(settings, retryable, wait_seconds=timeout)

    outcomes = run(go())
    for outcome in outcomes:
        console.print(_describe(outcome), highlight=False)
    if not all(o.succeeded for o in outcomes):
        raise typer.Exit(1)


def retry_all(
    organization: OrgOption = None,
    service: ServiceOption = None,
    since: Annotated[str, typer.Option(help="Failed within: 7d (default), 24h...")] = "7d",
    timeout: TimeoutOption = 120,
) -> None:
    """Retry every failed sync (last 7 days): progress "3/10 retried…", then "7 succeeded, 3 still failed"."""
    settings = Settings()
    check_service(service)
    moment = parse_since(since, now=datetime.now(UTC))

    async def go() -> list[RetryOutcome]:
        async with await Ledgers.open(settings.database) as ledgers:
            rows = await ledgers.failed(since=moment, organization_id=organization, service=service)
        if not rows:
            return []
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        ) as progress:
            queued = progress.add_task("queued", total=len(rows))
            answered = progress.add_task("retried…", total=len(rows))

            def on_answer(_answer: Answer, done: int, total: int) -> None:
                progress.update(answered, completed=done, description=f"{done}/{len(rows)} retried…")

            return await retry_rows(
                settings,
                rows,
                wait_seconds=timeout,
                on_queued=lambda n, _total: progress.update(queued, completed=n),
                on_answer=on_answer,
            )

    outcomes = run(go())
    if not outcomes:
        console.print("✅ No failed syncs to retry.")
        return
    for outcome in outcomes:
        if not outcome.succeeded:
            console.print(_describe(outcome), highlight=False)
    succeeded = sum(1 for o in outcomes if o.succeeded)
    console.print(f"{succeeded} succeeded, {len(outcomes) - succeeded} still failed", style="bold", highlight=False)
    if succeeded < len(outcomes):
        raise typer.Exit(1)


def _describe(outcome: RetryOutcome) -> str:
    row = outcome.row
    what = f"{row.service} {row.event_type} {row.event_id}"
    if outcome.problem:
        return f"❌ {what}: not retried: {outcome.problem}"
    answer = outcome.answer
    if answer is None:
        return f"⏳ {what}: queued, no outcome yet (still running?)"
    if answer.succeeded:
        qbo = f" (QuickBooks id {answer.qbo_id})" if answer.qbo_id else ""
        return f"✅ {what}: {answer.verdict} {answer.message}{qbo}".rstrip()
    return f"❌ {what}: still failed — {answer.verdict}: {answer.message}"


# ---- manual syncs ---------------------------------------------------------------------------------------------------
def sync(
    kind: Annotated[SyncKind, typer.Argument(help="customers | items | invoices | payments | tax")],
    organization: Annotated[UUID, typer.Argument(metavar="ORG", help="The organization.")],
    everything: Annotated[
        bool, typer.Option("--all", help="Every customer/invoice (not only unsynced), or a full reload of a pull.")
    ] = False,
    wait: Annotated[bool, typer.Option(help="Wait for the service's answer.")] = True,
    timeout: TimeoutOption = 60,
) -> None:
    """Manual sync: "Sync Customers / Items / Invoices / Payments / Tax Now" for one organization."""
    settings = Settings()
    command = command_for(kind, organization, everything=everything)
    owner = owner_of(kind)

    async def go() -> Answer | None:
        publisher = Publisher(settings.kafka, client_id="ops-sync", topic_prefix=settings.topics.prefix)
        async with ResultWatcher(settings) as watcher:
            await publisher.start()
            try:
                await publisher.send(record_for(command))
            finally:
                await publisher.stop()
            console.print(f"published {command.event_type} {command.event_id} for {organization}", highlight=False)
            if not wait:
                return None
            with console.status(f"waiting for {owner}…"):
                answers = await watcher.wait([(command.event_id, owner)], wait_seconds=timeout)
            return answers.get((command.event_id, owner))

    answer = run(go())
    if not wait:
        return
    if answer is None:
        err.print(f"[yellow]no answer from {owner} within {timeout:.0f}s[/yellow] (is it running?)", highlight=False)
        raise typer.Exit(1)
    console.print(f"{'✅' if answer.succeeded else '❌'} {owner}: {answer.verdict} {answer.message}", highlight=False)
    for line in answer.warnings:
        console.print(f"   {line}", highlight=False)
    if not answer.succeeded:
        raise typer.Exit(1)


def _note_absent(ledgers: Ledgers) -> None:
    if ledgers.absent:
        err.print(f"[dim]no ledger (yet) for: {', '.join(ledgers.absent)}[/dim]", highlight=False)


def doctor(
    organization: Annotated[UUID, typer.Argument(metavar="ORG", help="The organization to check.")],
) -> None:
    """Check the organization's QuickBooks set-up for what breaks the sync (custom numbers, sales tax, accounts)."""
    from qbsync.qbo import QboClient, QboError
    from qbsync.tokens import TokenManagerClient
    from qbsync_cli.ops.doctor import diagnose, read_company

    settings = Settings()

    async def go() -> Any:
        async with TokenManagerClient(settings.token_manager) as tokens, QboClient(settings.qbo, tokens) as qbo:
            return await read_company(qbo.company(organization))

    try:
        facts = run(go())
    except QboError as exc:
        err.print(f"[red]error:[/red] cannot read the company: {type(exc).__name__}: {exc}", highlight=False)
        raise typer.Exit(1) from None
    console.print(f"QuickBooks company: {facts.company_name or '(no name)'}", highlight=False)
    findings = diagnose(facts)
    marks = {"ok": "✅", "warning": "⚠️ ", "error": "❌"}
    for finding in findings:
        console.print(f"{marks[finding.severity]} {finding.check}: {finding.message}", highlight=False)
    errors = sum(1 for f in findings if f.severity == "error")
    if errors:
        console.print(f"{errors} problem(s) will break the sync: fix them in QuickBooks.", style="red")
        raise typer.Exit(1)
    console.print("The company is set up for qbsync.", style="green")
