"""Text renderings of the seed's Sync Dashboard, the sync history and the failed list (rich)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from qbsync_cli.ops.hints import hint_for
from qbsync_cli.ops.ledgers import LedgerRow, OrgCounts

__all__ = ["ConnectionView", "ago", "dashboard", "failed_list", "history_table", "plural"]

#: How entity types read in sentences ("3 invoices queued").
_NOUNS = {
    "customer": ("customer", "customers"),
    "invoice": ("invoice", "invoices"),
    "credit_memo": ("credit memo", "credit memos"),
    "payment": ("payment", "payments"),
    "refund": ("refund", "refunds"),
    "item": ("item", "items"),
    "payment_status": ("payment sync", "payment syncs"),
    "tax_rate": ("tax sync", "tax syncs"),
    "pull": ("pull", "pulls"),
    "sales_order": ("sales order", "sales orders"),
}
_STATUS_STYLE = {"completed": "green", "failed": "red", "retrying": "yellow", "parked": "magenta", "ignored": "dim"}


class ConnectionView:
    """An organization's connection as the dashboard shows it."""

    def __init__(self, status: str | None, detail: str = "", since: datetime | None = None) -> None:
        self.status = status
        self.detail = detail
        self.since = since

    def render(self, now: datetime) -> Text:
        if self.status == "connected":
            return Text.assemble(("✅ Connected", "green"), f" {self.detail}".rstrip())
        if self.status in ("needs_reconnect", "lost", "disconnected"):
            when = f" since {ago(self.since, now)}" if self.since else ""
            return Text.assemble(
                ("❌ Reconnect QuickBooks", "bold red"), f" ({self.status}{when}) {self.detail}".rstrip()
            )
        return Text("⚠️ Unknown (token-manager not reachable and no service heard of it)", style="yellow")


def plural(entity_type: str, count: int) -> str:
    one, many = _NOUNS.get(entity_type, (entity_type.replace("_", " "), entity_type.replace("_", " ") + "s"))
    return f"{count} {one if count == 1 else many}"


def title(entity_type: str) -> str:
    return _NOUNS.get(entity_type, (entity_type, entity_type + "s"))[1].capitalize()


def ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    seconds = max(int((now - moment).total_seconds()), 0)
    for size, unit in ((86_400, "day"), (3_600, "hour"), (60, "minute")):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return f"{seconds} seconds ago"


def dashboard(
    counts: OrgCounts, *, name: str | None, connection: ConnectionView, now: datetime, window: str
) -> RenderableType:
    """The seed's "QuickBooks Sync Dashboard" box for one organization."""
    org = counts.organization_id
    lines: list[RenderableType] = [
        Text.assemble("Connection Status: ", connection.render(now)),
        Text(f"Last Sync: {ago(counts.last_completed, now)}"),
        Text(""),
        Text(f"Recent Syncs (last {window}):", style="bold"),
    ]
    for entity_type in sorted(counts.recent):
        statuses = counts.recent[entity_type]
        synced, failed = statuses.get("completed", 0), statuses.get("failed", 0)
        extra = f", {statuses['ignored']} ignored" if statuses.get("ignored") else ""
        style = "red" if failed else ""
        lines.append(Text(f"- {title(entity_type)}: {synced} synced, {failed} failed{extra}", style=style))
    if not counts.recent:
        lines.append(Text("- nothing synced in this window", style="dim"))
    for kind, (at, summary) in sorted(counts.pulls.items()):
        lines.append(Text(f"- Pulled {kind}: {summary.split(':', 1)[-1].strip()} ({ago(at, now)})", style="cyan"))
    lines += [Text(""), Text("Pending Syncs:", style="bold")]
    lines += [Text(f"- {plural(t, n)} queued") for t, n in sorted(counts.pending.items()) if n] or [Text("- none")]
    lines += [Text(""), Text("Failed Syncs (Last 7 Days):", style="bold")]
    if any(counts.failed.values()):
        lines += [Text(f"- {plural(t, n)} failed", style="red") for t, n in sorted(counts.failed.items()) if n]
        lines.append(Text(f"  → view details: qbsync failed --org {org}\n  → Retry All: qbsync retry-all --org {org}"))
    else:
        lines.append(Text("- none", style="green"))
    lines += [
        Text(""),
        Text("Manual Sync: ", style="bold").append(
            f"qbsync sync customers|items|invoices|payments|tax {org}", style=""
        ),
        Text("Sync History: ", style="bold").append(f"qbsync history --org {org}", style=""),
    ]
    heading = f"QuickBooks Sync Dashboard — {name or 'organization'} ({org})"
    return Panel(Group(*lines), title=heading, title_align="left", expand=False)


def history_table(rows: Sequence[LedgerRow], now: datetime) -> Table:
    table = Table("when", "service", "entity", "event", "status", "attempts", "QuickBooks", "detail", show_lines=False)
    for row in rows:
        status = Text(row.status, style=_STATUS_STYLE.get(row.status, ""))
        qbo = " #".join(v for v in (row.qbo_id, row.qbo_doc_number) if v) or "-"
        detail = row.error_message or row.action or ""
        table.add_row(
            ago(row.updated_at, now),
            row.service,
            f"{row.entity_type} {_short(row.entity_id)}",
            row.event_type,
            status,
            f"{row.attempts}/{row.max_attempts}",
            qbo,
            detail[:80],
        )
    return table


def failed_list(rows: Sequence[LedgerRow], now: datetime) -> RenderableType:
    """Every failed sync with its error and what to do about it (the seed's "View Error Details")."""
    blocks: list[RenderableType] = []
    for row in rows:
        hint = hint_for(row.error_class, row.error_code, row.hint)
        body = Text.assemble(
            ("event ", "dim"),
            str(row.event_id),
            ("  ·  ", "dim"),
            f"{row.event_type} for {row.entity_type} {row.entity_id}",
            ("  ·  org ", "dim"),
            str(row.organization_id),
            "\n",
            ("error: ", "bold red"),
            f"{row.error_class or '?'} {row.error_code or ''}".rstrip(),
            " — ",
            row.error_message or "(no message)",
            "\n",
            ("what to do: ", "bold"),
            hint.text,
            ("  (" + hint.reference + ")", "dim"),
            "\n",
            ("retry: ", "bold"),
            f"qbsync retry {row.event_id}",
        )
        when = f"failed {ago(row.updated_at, now)} after {row.attempts} attempt(s)"
        heading = f"❌ {row.service} · {title(row.entity_type)} · {when}"
        blocks.append(Panel(body, title=heading, title_align="left"))
    return Group(*blocks)


def _short(identifier: UUID | None) -> str:
    return "-" if identifier is None else str(identifier)[:8]
