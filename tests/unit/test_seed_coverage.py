"""docs/seeds.md tells, for every operation, field, parameter and event the seeds
define, what this server does with it; this keeps it true.

Each table has one row per item of the seed's list (:mod:`seed_lists`), no
more, no less. A row marked ``done`` is checked against the code where a
check can be made without a call: a Callr v2 operation names the method and
path serving it, which must be in the OpenAPI document; a webhook type must be
published by the server; a Voxology parameter or event must be accepted by
the Call Flow parser (not refused as unsupported or unknown). Rows not done
must say why in their notes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from seed_examples import load_callflow_examples, seed_file
from seed_lists import (
    CALLR_V1_FILE,
    CALLR_V2_FILE,
    VOXOLOGY_FILE,
    callr_v1_objects,
    callr_v2_titles_match,
    load,
    voxology_actions,
)

from mediaserver.api.app import create_app
from mediaserver.callflow.actions import parse_list
from mediaserver.config import Config, HttpConfig
from mediaserver.server import Server

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "seeds.md"
STATUSES = {"done", "partial", "not applicable", "not yet"}

Row = dict[str, str]


def _tables(text: str) -> dict[str, list[Row]]:
    """Every table of the document under the heading above it, rows as
    {column: cell} with the cells' backticks removed."""
    tables: dict[str, list[Row]] = {}
    heading = ""
    columns: list[str] = []
    for line in text.split("\n"):
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
            columns = []
        elif line.startswith("|"):
            cells = [cell.strip().replace("`", "") for cell in line.strip().strip("|").split("|")]
            if not columns:
                columns = cells
            elif not set(line) <= set("|-: "):
                tables.setdefault(heading, []).append(dict(zip(columns, cells, strict=True)))
        else:
            columns = [] if line.strip() == "" and not tables.get(heading) else columns
    return tables


TABLES = _tables(DOC.read_text(encoding="utf-8"))
CALLR_V2 = TABLES["Callr REST API v2 (seed 001)"]
VOXOLOGY = TABLES["Voxology Call Flow actions (seed 003)"]


def _check_statuses(rows: list[Row]) -> list[str]:
    problems = []
    for row in rows:
        first = next(iter(row.values()))
        if row["status"] not in STATUSES:
            problems.append(f"{first}: status {row['status']!r} is not one of {sorted(STATUSES)}")
        elif row["status"] != "done" and not row["notes"]:
            problems.append(f"{first}: {row['status']} without a note saying why")
    return problems


def test_the_kept_lists_are_the_seeds_lists() -> None:
    checked = 0
    if (callr_v2 := seed_file("001_")) is not None:
        text = callr_v2.read_text(encoding="utf-8")
        assert callr_v2_titles_match(text, load(CALLR_V2_FILE)) == []
        checked += 1
    if (callr_v1 := seed_file("000_")) is not None:
        assert callr_v1_objects(callr_v1.read_text(encoding="utf-8")) == load(CALLR_V1_FILE)
        checked += 1
    if (voxology := seed_file("003_")) is not None:
        assert voxology_actions(voxology.read_text(encoding="utf-8")) == load(VOXOLOGY_FILE)
        checked += 1
    if not checked:
        pytest.skip("the seeds are not beside this checkout")


def test_callr_v2_has_one_row_per_operation_and_webhook() -> None:
    assert [row["operation"] for row in CALLR_V2] == load(CALLR_V2_FILE)
    assert _check_statuses(CALLR_V2) == []


def _openapi_operations(tmp_path: Path) -> set[str]:
    config = Config(
        path=tmp_path / "config.yaml",
        http=HttpConfig("127.0.0.1", 0, ("the-key",)),
        scenarios_dir=REPO / "tests" / "integration" / "scenarios",
        data_dir=tmp_path,
    )
    document: dict[str, Any] = create_app(Server(config)).openapi()
    return {
        f"{method.upper()} {re.sub(r'{[^}]+}', '{}', path)}"
        for path, operations in document["paths"].items()
        for method in operations
    }


async def test_every_callr_v2_operation_done_is_served(tmp_path: Path) -> None:
    served = _openapi_operations(tmp_path)
    missing = []
    for row in CALLR_V2:
        if row["status"] != "done" or row["operation"].endswith(" Webhook"):
            continue
        for operation in row["here"].split(","):
            method, _, path = operation.strip().partition(" ")
            if f"{method} {re.sub(r'{[^}]+}', '{}', path)}" not in served:
                missing.append(f"{row['operation']}: {operation.strip()}")
    assert missing == []


def test_every_callr_v2_webhook_done_is_published() -> None:
    files = (REPO / "mediaserver").rglob("*.py")
    source = "\n".join(path.read_text(encoding="utf-8") for path in files)

    def published(event: str) -> bool:
        """Named whole, or built as journal.py builds v2.call.{direction}.started."""
        family = event.split(".")[1]
        return f'"{event}"' in source or f'f"v2.{family}.{{' in source

    unpublished = [
        row["here"]
        for row in CALLR_V2
        if row["operation"].endswith(" Webhook")
        and row["status"] == "done"
        and not published(row["here"])
    ]
    assert unpublished == []


@pytest.mark.parametrize("name", sorted(load(CALLR_V1_FILE)))
def test_callr_v1_has_one_row_per_field(name: str) -> None:
    rows = TABLES[name]
    assert [row["field"] for row in rows] == load(CALLR_V1_FILE)[name]
    assert _check_statuses(rows) == []


def test_voxology_has_one_row_per_parameter_and_event() -> None:
    expected = [
        (action, name if kind == "params" else f"events.{name}")
        for action, lists in load(VOXOLOGY_FILE).items()
        for kind in ("params", "events")
        for name in lists[kind]
    ]
    assert [(row["action"], row["field"]) for row in VOXOLOGY] == expected
    assert _check_statuses(VOXOLOGY) == []


def _example_values() -> dict[tuple[str, str], Any]:
    """A value the seed's own examples give each (action, parameter)."""
    values: dict[tuple[str, str], Any] = {}

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item)
        elif isinstance(node, dict):
            kind = node.get("type")
            if isinstance(kind, str):
                for key, value in (node.get("params") or {}).items():
                    values.setdefault((kind, key), value)
                for key in ("condition", "then", "orElse", "actions"):
                    if key in node:
                        values.setdefault((kind, key), node[key])
            for value in node.values():
                visit(value)

    visit([example["json"] for example in load_callflow_examples()])
    return values


_REFUSAL = re.compile(r"not supported by this server|unknown field|unknown event")


def _refusals(action: dict[str, Any], field: str) -> list[str]:
    problems: list[str] = []
    parse_list([action], "actions", problems)
    return [problem for problem in problems if field in problem and _REFUSAL.search(problem)]


def test_every_voxology_parameter_and_event_done_is_accepted() -> None:
    examples = _example_values()
    refused = []
    for row in VOXOLOGY:
        if row["status"] != "done":
            continue
        action, field = row["action"], row["field"]
        if field.startswith("events."):
            event = field.removeprefix("events.")
            problems = _refusals({"type": action, "events": {event: []}}, field)
        else:
            value = examples.get((action, field), "1")
            problems = _refusals({"type": action, "params": {field: value}}, f"params.{field}")
            if problems:  # a field kept beside `type` (IF's `condition`, `then`...)
                problems = _refusals({"type": action, field: value}, f"{field}:")
        refused += problems
    assert refused == []
