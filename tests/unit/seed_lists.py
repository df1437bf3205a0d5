"""The seeds' lists of what they define: Callr v2 operations, Callr v1 object
fields, Voxology action parameters and events.

``docs/seeds.md`` has one coverage row for each; ``test_seed_coverage.py``
keeps the rows and these lists equal. The lists are kept in
``tests/unit/data/seeds/`` so the tests run without the seeds; the functions
here read them again from a seed's text, and the tests compare the two when
the seed is on disk.
"""

from __future__ import annotations

import json
import re
from typing import Any

from seed_examples import DATA

CALLR_V2_FILE = DATA / "callr_v2_operations.json"
CALLR_V1_FILE = DATA / "callr_v1_objects.json"
VOXOLOGY_FILE = DATA / "voxology_actions.json"

CALLR_V1_OBJECTS = (
    "CDR.In",
    "CDR.Out",
    "App.Param.Vms",
    "App.Param.VmsDetect",
    "REALTIME10",
    "REALTIME10.Call.Options",
    "RT.Request",
    "RT.Response",
)
"""The seed 000 objects issue 12 names (call records, voicemail, detection, REALTIME10)."""
_UNTITLED = {"App.Param.Vms": "Outbound Voicemail Detection"}
"""Objects whose sample the seed prints without their title: the title printed after it."""
_SAMPLE_END = "Values are auto-generated"

VOXOLOGY_ACTIONS = (
    "COLLECT", "CONFERENCE", "DETECT", "DIAL", "FOREACH", "GOTO", "HANGUP", "IF", "LABEL",
    "PAUSE", "PLAY", "QUEUE", "RECORD", "RECORDMESSAGE", "REDIRECT", "REJECT", "SAY",
    "SESSIONDATA", "SMS", "STOP", "TRANSFER", "WEBHOOK",
)  # fmt: skip
_ROW_NAME = re.compile(r"^[a-z_$][A-Za-z0-9_.$]*$")
_VOXOLOGY_NOT_ROWS = {
    "QUEUE": {"offer", "poll", "poll_connect", "remove"},  # values of QUEUE's `event`
    "WEBHOOK": {"id", "email"},  # the account tables printed after the action reference
}
"""Lines of the seed's parameter tables that are not parameters."""
_VOXOLOGY_REFERENCE_END = "Methods"
"""The line after the action reference (the REST methods follow)."""


def load(path: Any) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def callr_v2_titles_match(text: str, titles: list[str]) -> list[str]:
    """What is wrong with ``titles`` as the list of seed 001's operations: each
    must be a line of the seed, in order, with exactly one ``Authorizations:``
    (how Redoc prints each operation and webhook) after it and before the next.
    The titles are not read back from the text: Redoc prints some right above
    their description, others above a list of statuses."""
    lines = text.split("\n")
    problems: list[str] = []
    at = 0
    positions: list[int] = []
    for title in titles:
        try:
            at = lines.index(title, at)
        except ValueError:
            problems.append(f"{title!r}: not a line of the seed after the previous title")
            continue
        positions.append(at)
    positions.append(len(lines))
    for title, start, end in zip(titles, positions, positions[1:], strict=False):
        count = sum(1 for line in lines[start:end] if line.startswith("Authorizations:"))
        if count != 1:
            problems.append(f"{title!r}: {count} operations before the next title")
    total = sum(1 for line in lines if line.startswith("Authorizations:"))
    if total != len(titles):
        problems.append(f"the seed has {total} operations, the list {len(titles)}")
    return problems


def callr_v1_objects(text: str) -> dict[str, list[str]]:
    """The fields of each object of :data:`CALLR_V1_OBJECTS`: the seed's index
    names it with a title (``CDR.In Inbound Call Detail Record (CDR)``); under
    that title later on, a sample prints one ``"field": value`` line each."""
    lines = text.split("\n")
    titles: dict[str, str] = {}
    for line in lines[:200]:
        name, _, title = line.partition(" ")
        if name in CALLR_V1_OBJECTS and title:
            titles[name] = title
    objects: dict[str, list[str]] = {}
    for name in CALLR_V1_OBJECTS:
        if titles[name] in lines[200:]:
            start = lines.index(titles[name], 200)
        else:  # printed without its title: the sample right above the next object's
            start = _previous_sample(lines, lines.index(_UNTITLED[name], 200))
        fields: list[str] = []
        for line in lines[start + 1 :]:
            if line.startswith(_SAMPLE_END):
                break
            match = re.match(r'^  "([a-z_0-9]+)":', line)
            if match:
                fields.append(match.group(1))
        objects[name] = fields
    return objects


def _previous_sample(lines: list[str], index: int) -> int:
    """The line before the sample that ends last before ``lines[index]``."""
    end = max(at for at in range(index) if lines[at].startswith(_SAMPLE_END))
    start = end
    while start > 0 and lines[start - 1].startswith('  "'):
        start -= 1
    return start - 1


def voxology_actions(text: str) -> dict[str, dict[str, list[str]]]:
    """Each action's parameters and events, from the seed's action reference:
    the rows of its ``Parameter Description`` and ``Event Description`` tables."""
    lines = text.split("\n")
    start = lines.index(VOXOLOGY_ACTIONS[0])
    end = lines.index(_VOXOLOGY_REFERENCE_END, start)
    found: dict[str, dict[str, list[str]]] = {}
    action = ""
    table = ""
    for line in lines[start:end]:
        if line.strip() in VOXOLOGY_ACTIONS:
            action = line.strip()
            found[action] = {"params": [], "events": []}
            table = ""
        elif line.startswith(("Parameter Description", "Property Description")):
            table = "params"
        elif line.startswith("Event Description"):
            table = "events"
        elif line.startswith(("Example", "Note", "{", "Request", "Response")):
            table = ""
        elif table and action:
            words = line.split()
            name = words[0].removeprefix("params.") if words else ""
            rows = found[action][table]
            if (
                len(words) > 1
                and _ROW_NAME.match(words[0])
                and name not in _VOXOLOGY_NOT_ROWS.get(action, ())
                and name not in rows
            ):
                rows.append(name)
    return found
