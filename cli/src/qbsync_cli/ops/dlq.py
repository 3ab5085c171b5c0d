"""``qbsync dlq list | show | replay``: the dead-letter topics for operators (see ``deadletters`` for the rules)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

import typer
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

from qbsync.settings import SERVICE_NAMES, Settings
from qbsync_cli.ops.commands import BadArgument, parse_since, run
from qbsync_cli.ops.deadletters import DeadLetter, Filters, ReplayPlan, read_dead_letters, replay
from qbsync_cli.ops.ledgers import Ledgers
from qbsync_cli.ops.render import ago

__all__ = ["dlq_app"]

console = Console()
dlq_app = typer.Typer(help="Dead-letter topics: list, show and replay failed records.", no_args_is_help=True)

ServiceOption = Annotated[
    str, typer.Option("--service", "-s", help=f"Whose dead-letter topic: {', '.join(SERVICE_NAMES)}.")
]
ErrorClassOption = Annotated[
    list[str] | None,
    typer.Option("--error-class", help="transient, dependency, internal, permanent, malformed (repeatable)."),
]
ErrorCodeOption = Annotated[list[str] | None, typer.Option("--error-code", help="e.g. 6240, timeout (repeatable).")]
OrgOption = Annotated[UUID | None, typer.Option("--org", help="Only this organization.")]
EventTypeOption = Annotated[list[str] | None, typer.Option("--event-type", help="e.g. InvoiceCreated (repeatable).")]
SinceOption = Annotated[str | None, typer.Option(help="Failed at or after: 2h, 7d, or an ISO time.")]
UntilOption = Annotated[str | None, typer.Option(help="Failed at or before: 30m, or an ISO time.")]
_CLASSES = ("transient", "dependency", "internal", "auth_lost", "permanent", "malformed")


def _filters(
    error_class: list[str] | None,
    error_code: list[str] | None,
    organization: UUID | None,
    event_type: list[str] | None,
    since: str | None,
    until: str | None,
) -> Filters:
    unknown = sorted(set(error_class or ()) - set(_CLASSES))
    if unknown:
        raise BadArgument(f"unknown error class {', '.join(unknown)}; expected one of {', '.join(_CLASSES)}")
    now = datetime.now(UTC)
    start = parse_since(since, now=now) if since else None
    end = parse_since(until, now=now) if until else None
    if start is not None and end is not None and start > end:
        raise BadArgument("--since is after --until")
    return Filters(tuple(error_class or ()), tuple(error_code or ()), organization, tuple(event_type or ()), start, end)


def _service(service: str) -> str:
    if service not in SERVICE_NAMES:
        raise BadArgument(f"unknown service {service!r}; expected one of {', '.join(SERVICE_NAMES)}")
    return service


@dlq_app.command("list")
def list_dead_letters(
    service: ServiceOption,
    error_class: ErrorClassOption = None,
    error_code: ErrorCodeOption = None,
    organization: OrgOption = None,
    event_type: EventTypeOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many (newest).")] = 100,
) -> None:
    """The records in a service's dead-letter topic (newest first); "replayed" marks those behind the cursor."""
    settings = Settings()
    filters = _filters(error_class, error_code, organization, event_type, since, until)
    letters, cursor, states = run(_read_with_states(settings, _service(service)))
    listing = dataclasses.replace(filters, include_malformed=True)  # listing shows malformed records too
    chosen = [r for r in letters if listing.matches(r)]
    chosen.sort(key=lambda r: r.failed_at, reverse=True)
    now = datetime.now(UTC)
    table = Table("position", "failed", "event type", "organization", "error", "message", "replayed", "ledger now")
    for record in chosen[:limit]:
        replayed = "yes" if record.offset < cursor.get(record.partition, 0) else ""
        table.add_row(
            record.position,
            ago(record.failed_at, now),
            record.event_type,
            record.organization[:36],
            f"{record.error_class} {record.error_code}".strip(),
            record.error_message[:70],
            replayed,
            states.get(record.event_id, "-"),
        )
    console.print(table)
    console.print(
        f"{len(chosen)} matching of {len(letters)} record(s) in {service}'s dead-letter topic", highlight=False
    )


async def _read_with_states(
    settings: Settings, service: str
) -> tuple[list[DeadLetter], dict[int, int], dict[str, str]]:
    """The dead letters, the replay cursor, and each event's current ledger status (e.g. completed after a replay)."""
    letters, cursor = await read_dead_letters(settings, service)
    ids = {UUID(r.event_id) for r in letters if _is_uuid(r.event_id)}
    async with await Ledgers.open(settings.database, [service]) as ledgers:
        states = await ledgers.states(service, ids)
    return letters, cursor, {str(event_id): status for event_id, (status, _at) in states.items()}


def _is_uuid(text: str) -> bool:
    try:
        UUID(text)
    except ValueError:
        return False
    return True


@dlq_app.command("show")
def show(
    service: ServiceOption,
    which: Annotated[str, typer.Argument(metavar="POSITION|EVENT_ID", help="partition:offset, or the event id.")],
) -> None:
    """One dead-lettered record: headers (why, where from) and the event itself."""
    settings = Settings()
    letters, _cursor = run(read_dead_letters(settings, _service(service)))
    matching = [r for r in letters if which in (r.position, r.event_id)]
    if not matching:
        raise BadArgument(f"no record {which!r} in {service}'s dead-letter topic (use `qbsync dlq list`)")
    for record in matching:
        table = Table("header", "value", title=f"{record.topic} {record.position}", title_justify="left")
        for name, value in sorted(record.headers.items()):
            table.add_row(name, value)
        table.add_row("(key)", record.organization)
        console.print(table)
        try:
            body = json.dumps(json.loads(record.value), indent=2, ensure_ascii=False)
        except (ValueError, UnicodeDecodeError):
            body = record.value.decode("utf-8", "replace")
        console.print(Syntax(body, "json", word_wrap=True))


@dlq_app.command("replay")
def replay_command(
    service: ServiceOption,
    error_class: ErrorClassOption = None,
    error_code: ErrorCodeOption = None,
    organization: OrgOption = None,
    event_type: EventTypeOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be replayed; send nothing.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Also replay events the ledger shows as completed or retrying since.")
    ] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="Replay at most this many records.")] = None,
    throttle: Annotated[float | None, typer.Option(min=0.1, help="At most this many records per second.")] = None,
) -> None:
    """Send dead letters back to the service (first retry tier, fresh ladder); commits only acknowledged sends."""
    settings = Settings()
    filters = _filters(error_class, error_code, organization, event_type, since, until)

    def on_sent(record: DeadLetter, index: int, total: int) -> None:
        console.print(
            f"{index}/{total} replayed {record.event_type} {record.event_id} ({record.position})", highlight=False
        )

    plan = run(
        replay(
            settings,
            _service(service),
            filters,
            limit=limit,
            throttle_per_second=throttle,
            dry_run=dry_run,
            force=force,
            on_sent=on_sent,
        )
    )
    _summary(plan, dry_run)


def _summary(plan: ReplayPlan, dry_run: bool) -> None:
    if dry_run:
        for record in plan.to_replay:
            console.print(
                f"would replay {record.position} {record.event_type} {record.event_id} "
                f"({record.error_class} {record.error_code}: {record.error_message[:60]})",
                highlight=False,
            )
    verb = "would replay" if dry_run else "replayed"
    console.print(
        f"{plan.service}: scanned {plan.scanned} record(s) after the cursor; {verb} {len(plan.to_replay)}, "
        f"{len(plan.superseded)} superseded by a later copy, {len(plan.handled)} already handled, "
        f"{plan.skipped} left out by the filters",
        highlight=False,
    )
