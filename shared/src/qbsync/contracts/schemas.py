"""JSON Schema export of every contract (checked into ``docs/schemas``; a test fails when they drift).

One file per event and version: ``docs/schemas/<topic>/<EventType>.v<N>.json`` plus an ``index.json`` listing
topic, direction, entity type and description of each. The files are generated, never edited by hand:
``qbsync schemas export`` writes them, ``qbsync schemas check`` fails when they differ from the models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from qbsync.contracts.registry import all_events

__all__ = ["check_schemas", "render_schemas", "write_schemas"]

_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def render_schemas() -> dict[str, str]:
    """``{relative path: file content}`` for every schema file."""
    files: dict[str, str] = {}
    index: list[dict[str, Any]] = []
    for spec in all_events():
        schema = spec.model.model_json_schema(mode="validation")
        schema = {
            "$schema": _DIALECT,
            "$id": f"https://qbsync.dev/schemas/{spec.topic}/{spec.event_type}.v{spec.schema_version}.json",
            "x-qbsync-topic": spec.topic,
            "x-qbsync-direction": spec.direction,
            "x-qbsync-entity-type": spec.entity_type,
            **schema,
        }
        path = f"{spec.topic}/{spec.event_type}.v{spec.schema_version}.json"
        files[path] = json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        index.append(
            {
                "event_type": spec.event_type,
                "schema_version": spec.schema_version,
                "topic": spec.topic,
                "direction": spec.direction,
                "entity_type": spec.entity_type,
                "description": spec.description,
                "schema": path,
            }
        )
    files["index.json"] = json.dumps(index, indent=2, ensure_ascii=False) + "\n"
    return files


def write_schemas(directory: Path) -> list[str]:
    """Write every schema file under ``directory`` (stale files are removed). Returns the paths written."""
    files = render_schemas()
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.rglob("*.json"):
        if str(stale.relative_to(directory)) not in files:
            stale.unlink()
    for relative, content in files.items():
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    return sorted(files)


def check_schemas(directory: Path) -> list[str]:
    """Differences between the models and the files in ``directory`` (empty when they match)."""
    problems: list[str] = []
    files = render_schemas()
    for relative, content in files.items():
        target = directory / relative
        if not target.exists():
            problems.append(f"missing: {relative}")
        elif target.read_text(encoding="utf-8") != content:
            problems.append(f"differs: {relative}")
    if directory.exists():
        problems.extend(
            f"stale: {p.relative_to(directory)}"
            for p in directory.rglob("*.json")
            if str(p.relative_to(directory)) not in files
        )
    return problems
