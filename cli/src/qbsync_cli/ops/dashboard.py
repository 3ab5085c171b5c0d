"""The Grafana Sync Dashboard, built from code and checked in (``deploy/grafana/dashboards/``).

It is the seed's "QuickBooks Sync Dashboard" over Prometheus: connection status, last sync per entity type, synced
and failed counts per entity type, the pending queue, failures in the last 7 days, latency percentiles, retries and
dead letters, consumer lag and the QuickBooks API. Entity types are never listed here: every panel groups by the
``entity_type`` label, so a service that starts syncing a new kind of entity shows up without a change.

Generated, never edited by hand: ``qbsync dashboard export`` writes the JSON, ``qbsync dashboard check`` fails when
it differs from this module (a test runs the check, and another evaluates every query against a real Prometheus).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DASHBOARD_PATH",
    "DATASOURCE_UID",
    "Panel",
    "build_dashboard",
    "check_dashboard",
    "panel_queries",
    "render_dashboard",
]

DASHBOARD_PATH = Path("deploy/grafana/dashboards/qbsync-sync-dashboard.json")
DATASOURCE_UID = "qbsync-prometheus"
_DATASOURCE = {"type": "prometheus", "uid": DATASOURCE_UID}
_SVC = 'service=~"$service"'


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    instant: bool = False


@dataclass(frozen=True)
class Panel:
    title: str
    kind: str  # stat | timeseries | bargauge | table
    queries: tuple[Query, ...]
    width: int = 6
    height: int = 6
    unit: str = "short"
    description: str = ""
    thresholds: tuple[tuple[float | None, str], ...] = ((None, "green"),)
    options: dict[str, Any] = field(default_factory=dict)


def _q(expr: str, legend: str = "", *, instant: bool = False) -> Query:
    return Query(" ".join(expr.split()), legend, instant)


def _rows() -> list[tuple[str, list[Panel]]]:
    red_above_zero = ((None, "green"), (1, "red"))
    return [
        (
            "Connection",
            [
                Panel(
                    "Connected organizations",
                    "stat",
                    (_q('sum(qbsync_connections{status="connected"})', instant=True),),
                    description="QuickBooks connections token-manager holds (seed: Connection Status).",
                ),
                Panel(
                    "Must reconnect QuickBooks",
                    "stat",
                    (_q('sum(qbsync_connections{status="needs_reconnect"})', instant=True),),
                    thresholds=red_above_zero,
                    description="Organizations whose refresh failed: show the 'Reconnect QuickBooks' banner.",
                ),
                Panel(
                    "Token refreshes by outcome",
                    "timeseries",
                    (_q("sum by (outcome) (increase(qbsync_token_refreshes_total[$__rate_interval]))", "{{outcome}}"),),
                ),
                Panel(
                    "Services up",
                    "stat",
                    (_q('up{job="qbsync", ' + _SVC + "}", "{{service}}", instant=True),),
                    thresholds=((None, "red"), (1, "green")),
                ),
            ],
        ),
        (
            "Recent syncs",
            [
                Panel(
                    "Last sync per entity type",
                    "bargauge",
                    (
                        _q(
                            "time() - max by (entity_type) (qbsync_last_sync_timestamp_seconds{" + _SVC + "})",
                            "{{entity_type}}",
                            instant=True,
                        ),
                    ),
                    unit="s",
                    description="Seconds since the newest completed sync of each entity type (seed: Last Sync).",
                ),
                Panel(
                    "Synced per entity type",
                    "bargauge",
                    (
                        _q(
                            'sum by (entity_type) (increase(qbsync_sync_latency_seconds_count{outcome="completed", '
                            + _SVC
                            + "}[$__range]))",
                            "{{entity_type}}",
                            instant=True,
                        ),
                    ),
                    description="Completed syncs in the selected time range (seed: Recent Syncs).",
                ),
                Panel(
                    "Failed per entity type",
                    "bargauge",
                    (
                        _q(
                            'sum by (entity_type) (increase(qbsync_sync_latency_seconds_count{outcome="failed", '
                            + _SVC
                            + "}[$__range]))",
                            "{{entity_type}}",
                            instant=True,
                        ),
                    ),
                    thresholds=red_above_zero,
                    description="Syncs that ended in the dead-letter topic in the selected range.",
                ),
                Panel(
                    "Success rate",
                    "stat",
                    (
                        _q(
                            'sum(increase(qbsync_sync_latency_seconds_count{outcome="completed", '
                            + _SVC
                            + "}[$__range])) / sum(increase(qbsync_sync_latency_seconds_count"
                            + '{outcome=~"completed|failed", '
                            + _SVC
                            + "}[$__range]))",
                            instant=True,
                        ),
                    ),
                    unit="percentunit",
                    thresholds=((None, "red"), (0.99, "green")),
                    description="Seed target: 99%+.",
                ),
            ],
        ),
        (
            "Queue",
            [
                Panel(
                    "Pending syncs",
                    "bargauge",
                    (
                        _q(
                            'sum by (entity_type, status) (qbsync_ledger_records{status=~"pending|retrying|parked", '
                            + _SVC
                            + "})",
                            "{{entity_type}} {{status}}",
                            instant=True,
                        ),
                    ),
                    description="Records waiting for their next attempt or for a reconnect (seed: Pending Syncs).",
                ),
                Panel(
                    "Failed syncs (last 7 days)",
                    "bargauge",
                    (
                        _q(
                            "sum by (entity_type) (qbsync_ledger_failed_last_7d{" + _SVC + "})",
                            "{{entity_type}}",
                            instant=True,
                        ),
                    ),
                    thresholds=red_above_zero,
                    description="`qbsync failed` lists them with details; `qbsync retry-all` retries them.",
                ),
                Panel(
                    "Awaiting manual retry",
                    "stat",
                    (_q('sum(qbsync_ledger_records{status="failed", ' + _SVC + "})", instant=True),),
                    thresholds=red_above_zero,
                ),
                Panel(
                    "Parked (connection lost)",
                    "stat",
                    (_q("sum(qbsync_parked_records{" + _SVC + "})", instant=True),),
                    thresholds=((None, "green"), (1, "orange")),
                ),
            ],
        ),
        (
            "Latency and reliability",
            [
                Panel(
                    "Sync latency (event to outcome)",
                    "timeseries",
                    tuple(
                        _q(
                            f"histogram_quantile({quantile}, sum by (le, entity_type) "
                            '(rate(qbsync_sync_latency_seconds_bucket{outcome="completed", '
                            + _SVC
                            + "}[$__rate_interval])))",
                            f"p{label} {{{{entity_type}}}}",
                        )
                        for quantile, label in (("0.5", "50"), ("0.95", "95"), ("0.99", "99"))
                    ),
                    width=12,
                    height=8,
                    unit="s",
                    description="Seed target: invoices < 5 minutes (alert on p99).",
                ),
                Panel(
                    "Events by outcome",
                    "timeseries",
                    (
                        _q(
                            "sum by (outcome) (rate(qbsync_events_total{" + _SVC + "}[$__rate_interval]))",
                            "{{outcome}}",
                        ),
                    ),
                    width=12,
                    height=8,
                    unit="ops",
                ),
                Panel(
                    "Retries by tier",
                    "timeseries",
                    (
                        _q(
                            "sum by (service, tier) (increase(qbsync_retries_total{" + _SVC + "}[$__rate_interval]))",
                            "{{service}} tier {{tier}}",
                        ),
                    ),
                    width=12,
                    height=8,
                ),
                Panel(
                    "Dead letters by error class",
                    "timeseries",
                    (
                        _q(
                            "sum by (service, error_class) "
                            "(increase(qbsync_dead_letters_total{" + _SVC + "}[$__rate_interval]))",
                            "{{service}} {{error_class}}",
                        ),
                    ),
                    width=12,
                    height=8,
                ),
            ],
        ),
        (
            "Kafka and QuickBooks",
            [
                Panel(
                    "Consumer lag",
                    "timeseries",
                    (_q("sum by (service, topic) (qbsync_consumer_lag{" + _SVC + "})", "{{service}} {{topic}}"),),
                    width=12,
                    height=8,
                ),
                Panel(
                    "QuickBooks requests by status",
                    "timeseries",
                    (
                        _q(
                            "sum by (service, status) (rate(qbsync_qbo_requests_total{"
                            + _SVC
                            + "}[$__rate_interval]))",
                            "{{service}} {{status}}",
                        ),
                    ),
                    width=12,
                    height=8,
                    unit="reqps",
                ),
                Panel(
                    "QuickBooks request duration p95",
                    "timeseries",
                    (
                        _q(
                            "histogram_quantile(0.95, sum by (le, operation) "
                            "(rate(qbsync_qbo_request_duration_seconds_bucket{" + _SVC + "}[$__rate_interval])))",
                            "{{operation}}",
                        ),
                    ),
                    width=12,
                    height=8,
                    unit="s",
                ),
                Panel(
                    "Rate-budget waits p95",
                    "timeseries",
                    (
                        _q(
                            "histogram_quantile(0.95, sum by (le, service) "
                            "(rate(qbsync_qbo_throttle_wait_seconds_bucket{" + _SVC + "}[$__rate_interval])))",
                            "{{service}}",
                        ),
                    ),
                    width=12,
                    height=8,
                    unit="s",
                    description="Time requests waited for the per-company budget (500/min, 10 concurrent).",
                ),
            ],
        ),
    ]


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    targets = [
        {
            "datasource": _DATASOURCE,
            "expr": q.expr,
            "legendFormat": q.legend or "__auto",
            "instant": q.instant,
            "range": not q.instant,
            "refId": chr(ord("A") + i),
        }
        for i, q in enumerate(panel.queries)
    ]
    steps = [{"color": color, "value": value} for value, color in panel.thresholds]
    document: dict[str, Any] = {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "datasource": _DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {
            "defaults": {"unit": panel.unit, "thresholds": {"mode": "absolute", "steps": steps}},
            "overrides": [],
        },
        "options": panel.options or _default_options(panel.kind),
        "targets": targets,
    }
    if panel.description:
        document["description"] = panel.description
    return document


def _default_options(kind: str) -> dict[str, Any]:
    reduce = {"calcs": ["lastNotNull"], "fields": "", "values": False}
    if kind == "stat":
        return {"reduceOptions": reduce, "colorMode": "value", "graphMode": "none", "textMode": "auto"}
    if kind == "bargauge":
        return {"reduceOptions": reduce, "orientation": "horizontal", "displayMode": "basic", "showUnfilled": True}
    return {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}}


def build_dashboard() -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    panel_id, y = 1, 0
    for title, row in _rows():
        panels.append(
            {
                "id": panel_id,
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
            }
        )
        panel_id, y, x, row_height = panel_id + 1, y + 1, 0, 0
        for panel in row:
            if x + panel.width > 24:
                x, y, row_height = 0, y + row_height, 0
            panels.append(_panel_json(panel, panel_id, x, y))
            panel_id, x, row_height = panel_id + 1, x + panel.width, max(row_height, panel.height)
        y += row_height
    return {
        "uid": "qbsync-sync",
        "title": "qbsync — QuickBooks Sync Dashboard",
        "description": "The seed's Sync Dashboard: connection, recent syncs, queue, failures, latency, retries.",
        "tags": ["qbsync", "quickbooks"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "time": {"from": "now-24h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "service",
                    "label": "Service",
                    "type": "query",
                    "datasource": _DATASOURCE,
                    "query": {"query": "label_values(qbsync_events_total, service)", "refId": "service"},
                    "definition": "label_values(qbsync_events_total, service)",
                    "includeAll": True,
                    "allValue": ".*",
                    "multi": True,
                    "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                    "refresh": 2,
                    "sort": 1,
                }
            ]
        },
        "annotations": {"list": []},
        "links": [],
        "panels": panels,
    }


def render_dashboard() -> str:
    return json.dumps(build_dashboard(), indent=2, ensure_ascii=False) + "\n"


def check_dashboard(path: Path = DASHBOARD_PATH) -> list[str]:
    """Differences between the checked-in dashboard and this module (empty when they match)."""
    if not path.exists():
        return [f"missing: {path}"]
    return [] if path.read_text(encoding="utf-8") == render_dashboard() else [f"differs: {path}"]


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """``(panel title, PromQL)`` of every query in a dashboard document."""
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        if panel.get("type") != "row"
        for target in panel.get("targets", [])
    ]
