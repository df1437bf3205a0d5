"""Phone numbers as the seed shows them: type from the numbering plan, a stable sid,
and the numbers a reload adds or removes told to the webhooks."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mediaserver.library import Router, ScenarioLibrary
from mediaserver.numbers import (
    NumberChange,
    NumberDirectory,
    is_phone_number,
    number_sid,
    seed_type,
)

T0 = datetime(2024, 4, 24, 17, 42, 28, tzinfo=UTC)


@pytest.mark.parametrize(
    ("number", "kind"),
    [
        ("+33199001234", "geographic"),  # FR fixed line
        ("+14155550123", "geographic"),  # NANP: fixed or mobile, geographic either way
        ("+33612345678", "mobile"),
        ("+33800123456", "tollfree"),
        ("+33899123456", "special"),  # premium rate
        ("+15551230000", None),  # not a valid number: the plan says nothing
    ],
)
def test_the_seed_type_comes_from_the_numbering_plan(number: str, kind: str | None) -> None:
    assert seed_type(number) == kind


def test_a_number_sid_is_stable_and_looks_like_a_sid() -> None:
    sid = number_sid("+33199001234")
    assert sid == number_sid("+33199001234") != number_sid("+33199001235")
    assert len(sid) == 8 and sid.isalnum() and sid == sid.lower()


def test_only_e164_keys_are_phone_numbers() -> None:
    assert is_phone_number("+33199001234")
    for key in ("echo", "*", "33199001234", "+0123456", "+1234"):
        assert not is_phone_number(key)


class Hooks:
    """Collects what would be posted to the webhooks."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, dict[str, Any]]] = []
        self.event_ids: list[str | None] = []

    def publish(
        self,
        event_type: str,
        subject_sid: str,
        payload: Mapping[str, Any],
        event_id: str | None = None,
    ) -> int:
        self.posted.append((event_type, dict(payload)))
        self.event_ids.append(event_id)
        return 1


def directory(tmp_path: Path, routes: dict[str, str], hooks: Hooks) -> NumberDirectory:
    return NumberDirectory(
        Router(routes), ScenarioLibrary(tmp_path), lambda: None, hooks,  # type: ignore[arg-type]
        clock=lambda: T0,
    )  # fmt: skip


async def test_routes_at_start_publish_nothing_and_a_reload_publishes_the_change(
    tmp_path: Path,
) -> None:
    hooks = Hooks()
    numbers = directory(tmp_path, {"+33199001234": "welcome", "echo": "echo"}, hooks)
    assert hooks.posted == []
    assert [n.e164 for n in await numbers.all()] == ["+33199001234"]
    numbers.routes_loaded({"+33612345678": "call-control:app", "echo": "echo"})
    assert [(kind, p["e164"]) for kind, p in hooks.posted] == [
        ("v2.number.unassigned", "+33199001234"),
        ("v2.number.assigned", "+33612345678"),
    ]
    assert hooks.posted[1][1]["scenario"] is None  # a route to no scenario
    assert hooks.posted[1][1]["route"] == "call-control:app"


def test_nodes_reloading_the_same_routes_publish_the_same_event_ids(tmp_path: Path) -> None:
    # Every node of a cluster reloads the same config: the outbox posts the event once.
    nodes = [Hooks(), Hooks()]
    for hooks in nodes:
        numbers = directory(tmp_path, {"+33199001234": "welcome"}, hooks)
        numbers.routes_loaded({"+33612345678": "echo"})
    first, second = (hooks.event_ids for hooks in nodes)
    assert first == second and len(first) == 2 and len(set(first)) == 2
    assert all(re.fullmatch(r"[0-9a-f]{32}", str(event_id)) for event_id in first)
    # The same number assigned by a later, different reload is another event.
    later = Hooks()
    numbers = directory(tmp_path, {}, later)
    numbers.routes_loaded({"+33612345678": "echo", "+33199001235": "echo"})
    assert later.event_ids[0] not in first


def test_attach_and_detach_are_published(tmp_path: Path) -> None:
    hooks = Hooks()
    numbers = directory(tmp_path, {}, hooks)
    numbers.changed(NumberChange("+33612345678", "k3x9a0pq", "sales", attached=True))
    numbers.changed(NumberChange("alice", "k3x9a0pq", "sales", attached=True))  # a user: no
    numbers.changed(NumberChange("+33612345678", "k3x9a0pq", "sales", attached=False))
    assert [(kind, p["scenario"]) for kind, p in hooks.posted] == [
        ("v2.number.assigned", {"sid": "k3x9a0pq", "name": "sales"}),
        ("v2.number.unassigned", {"sid": "k3x9a0pq", "name": "sales"}),
    ]
    payload = hooks.posted[0][1]
    assert payload["assigned"] == "2024-04-24T17:42:28.000Z"
    assert (payload["type"], payload["country"], payload["class"]) == ("mobile", "FR", "classic")
