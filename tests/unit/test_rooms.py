"""The typed registries calls share by name: conference rooms, call queues, attached numbers."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from media_fakes import ManualClock
from test_conference import FakeLeg

from mediaserver.calls.conferences import Conferences
from mediaserver.calls.queues import CallQueues, Waiter
from mediaserver.library import Router
from mediaserver.media.conference import Member


async def test_a_room_is_made_on_first_use_and_forgotten_once_empty() -> None:
    conferences, clock = Conferences(), ManualClock()
    room = conferences.room("sales", clock)  # type: ignore[arg-type]
    assert conferences.room("sales", clock) is room  # type: ignore[arg-type]
    leg = FakeLeg("a", 1)
    room.join(Member(leg, "call-a", beep_on_enter=False, beep_on_exit=False))  # type: ignore[arg-type]
    assert [s["name"] for s in conferences.snapshots()] == ["sales"]
    room.leave(leg, "key")  # type: ignore[arg-type]
    assert conferences.get("sales") is None and conferences.snapshots() == []
    assert conferences.room("sales", clock) is not room  # type: ignore[arg-type]


async def test_dropping_an_old_room_spares_the_new_one_of_the_same_name() -> None:
    conferences, clock = Conferences(), ManualClock()
    old = conferences.room("x", clock)  # type: ignore[arg-type]
    conferences.drop(old)
    new = conferences.room("x", clock)  # type: ignore[arg-type]
    conferences.drop(old)
    assert conferences.get("x") is new


def _waiter(call_id: str) -> Waiter:
    call: Any = SimpleNamespace(id=call_id)
    return Waiter(call)


async def test_a_queue_is_listed_while_someone_waits_and_forgotten_after() -> None:
    queues = CallQueues()
    queue = queues.join("support")
    assert queues.join("support") is queue and queues.snapshots() == []
    waiter = _waiter("c1")
    queue.waiting.append(waiter)
    queues.drop_if_empty(queue)
    assert queues.get("support") is queue
    assert [(s["name"], s["calls"]) for s in queues.snapshots()] == [("support", ["c1"])]
    queue.waiting.remove(waiter)
    queues.drop_if_empty(queue)
    assert queues.get("support") is None


def test_attached_numbers_follow_their_scenario_and_are_read_only() -> None:
    router = Router({"*": "welcome"})
    router.attach("+331", "sales")
    router.attach("+332", "sales")
    assert router("+331") == "sales" and router("+339") == "welcome"
    router.rename("sales", "ventes")
    assert dict(router.numbers) == {"+331": "ventes", "+332": "ventes"}
    router.detach("+332")
    router.forget("ventes")
    assert dict(router.numbers) == {} and router("+331") == "welcome"
    with pytest.raises(TypeError):
        router.numbers["+333"] = "x"  # type: ignore[index]
