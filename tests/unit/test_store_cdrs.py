"""Call records: lifecycle, the Callr CDR mapping, search filters and paging, CSV export."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mediaserver.store import (
    CSV_COLUMNS,
    CallEnd,
    CallFilter,
    CallRecord,
    Conflict,
    NewCall,
    Store,
    UnknownReference,
)
from mediaserver.store.cdrs import did_hash
from tests.unit.conftest import integrity_error

T0 = datetime(2024, 4, 24, 17, 42, 28, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
async def store(database_target: str | Path) -> AsyncIterator[Store]:
    opened = await Store.open(database_target, clock=lambda: T0)
    yield opened
    await opened.close()


async def finished_call(
    store: Store,
    *,
    start: float = 0,
    direction: str = "inbound",
    from_number: str = "+33612345678",
    to_number: str = "+33199001234",
    number: str | None = "+33199001234",
    scenario_id: str | None = None,
    answered: float | None = 1,
    length: float = 10,
    from_name: str | None = None,
) -> CallRecord:
    call = await store.calls.create(
        NewCall(
            direction=direction,  # type: ignore[arg-type]
            from_number=from_number,
            to_number=to_number,
            number=number,
            from_name=from_name,
            scenario_id=scenario_id,
            started_at=at(start),
        )
    )
    if answered is not None:
        await store.calls.answered(call.id, at(start + answered))
    ended = await store.calls.finish(call.id, CallEnd(ended_at=at(start + length)))
    assert ended is not None
    return ended


async def test_a_call_record_from_start_to_hangup(store: Store) -> None:
    scenario = await store.scenarios.create("ivr", "x")
    run = await store.runs.create(scenario.id, "inbound-call")
    live = await store.calls.create(
        NewCall(
            direction="inbound",
            from_number="+33612345678",
            from_name="Alice",
            to_number="+33199001234",
            number="+33199001234",
            sip_call_id="a84b4c76e66710@pc33.example.com",
            started_at=T0,
            scenario_id=scenario.id,
            scenario_name="ivr",
            run_id=run.id,
        )
    )
    assert re.fullmatch(r"[a-z0-9]{8}", live.id)
    assert (live.status, live.ended_at, live.duration_ms, live.duration_answered_ms) == (
        "live",
        None,
        None,
        None,
    )
    assert await store.calls.answered(live.id, at(2.5))
    assert not await store.calls.answered(live.id, at(3))  # the first answer counts
    stats = {"a": {"packets_in": 500, "lost": 2, "jitter_ms": 1.25, "rtt_ms": None}}
    ended = await store.calls.finish(
        live.id,
        CallEnd(
            ended_at=at(62.7),
            hangup_cause="normal_clearing",
            hangup_cause_code=16,
            hangup_source="caller",
            sip_status=200,
            media_stats=stats,
        ),
    )
    assert ended is not None
    assert ended == await store.calls.get(live.id)
    assert (ended.status, ended.run_id, ended.scenario_id, ended.scenario_name) == (
        "ended",
        run.id,
        scenario.id,
        "ivr",
    )
    assert (ended.started_at, ended.answered_at, ended.ended_at) == (T0, at(2.5), at(62.7))
    assert (ended.duration_ms, ended.duration_answered_ms) == (62700, 60200)
    assert (ended.hangup_cause, ended.hangup_cause_code, ended.hangup_source) == (
        "normal_clearing",
        16,
        "caller",
    )
    assert (ended.sip_status, ended.media_stats) == (200, stats)
    assert await store.calls.finish(live.id, CallEnd(ended_at=at(99))) is None  # only once
    assert not await store.calls.answered(live.id, at(99))
    assert await store.calls.get("nosuchid") is None


async def test_an_unanswered_call_has_zero_answered_duration(store: Store) -> None:
    record = await finished_call(store, answered=None, length=4)
    assert (record.answered_at, record.duration_ms, record.duration_answered_ms) == (
        None,
        4000,
        0,
    )


async def test_given_ids_and_references_are_checked(store: Store) -> None:
    first = await store.calls.create(NewCall("inbound", "a", "b", T0, id="k3j9x0aa"))
    assert first.id == "k3j9x0aa"
    with pytest.raises(Conflict) as taken:
        await store.calls.create(NewCall("inbound", "a", "b", T0, id="k3j9x0aa"))
    assert taken.value.field == "id"
    with pytest.raises(UnknownReference) as no_run:
        await store.calls.create(NewCall("inbound", "a", "b", T0, run_id="api:nosuchid"))
    assert no_run.value.field == "run_id"
    with pytest.raises(UnknownReference) as no_parent:
        await store.calls.create(NewCall("outbound", "a", "b", T0, parent_call_id="nosuchid"))
    assert no_parent.value.field == "parent_call_id"
    assert (await store.calls.search()).total == 1


async def test_inbound_record_as_a_callr_cdr_in(store: Store) -> None:
    scenario = await store.scenarios.create("ivr", "x")
    live = await store.calls.create(
        NewCall(
            "inbound",
            "+447890123456",
            "+33612345678",
            T0,
            from_name="Bob",
            number="+33612345678",
            scenario_id=scenario.id,
            scenario_name="ivr",
            cli_pres="prohib_passed_screen",
        )
    )
    await store.calls.answered(live.id, at(2))
    record = await store.calls.finish(
        live.id,
        CallEnd(
            at(62.6), "normal_clearing", "caller", hangup_cause_code=16, customer_field="ACME42"
        ),
    )
    assert record is not None
    assert record.as_cdr() == {
        "callid": live.id,
        "start": "2024-04-24 17:42:28",
        "answer": "2024-04-24 17:42:30",
        "hangup": "2024-04-24 17:43:30",
        "duration": 63,
        "duration_answered": 61,
        "hangupcause": 16,
        "hangupsource": "CALLER",
        "cli_number": "+447890123456",
        "cli_name": "Bob",
        "cli_pres": "prohib_passed_screen",
        "cli_country_code": "GB",
        "cli_number_type": "MOBILE",
        "customer_field": "ACME42",
        "did_intl_number": "+33612345678",
        "did_hash": did_hash("+33612345678"),
        "scenario_hash": scenario.id,
        "scenario_name": "ivr",
    }
    assert (record.as_record()["cliPres"], record.as_record()["customerField"]) == (
        "prohib_passed_screen",
        "ACME42",
    )


async def test_outbound_record_as_a_callr_cdr_out(store: Store) -> None:
    parent = await store.calls.create(NewCall("inbound", "+331", "+332", T0))
    live = await store.calls.create(
        NewCall("outbound", "+332", "+15551230000", at(1), parent_call_id=parent.id)
    )
    record = await store.calls.finish(
        live.id,
        CallEnd(at(31), "busy", "callee", hangup_cause_code=17, sip_status=486, dial_status="busy"),
    )
    assert record is not None
    cdr = record.as_cdr()
    assert (cdr["callid"], cdr["callid_in"], cdr["number"], cdr["dialstatus"]) == (
        live.id,
        parent.id,
        "+15551230000",
        "BUSY",
    )
    assert (cdr["answer"], cdr["duration"], cdr["duration_answered"]) == (None, 30, 0)
    assert (cdr["hangupcause"], cdr["hangupsource"]) == (17, "CALLEE")
    assert "did_intl_number" not in cdr
    live_cdr = (await store.calls.create(NewCall("outbound", "a", "b", T0))).as_cdr()
    assert (live_cdr["hangup"], live_cdr["duration"], live_cdr["hangupsource"]) == (
        None,
        None,
        None,
    )


# -- search ---------------------------------------------------------------------------------


async def test_search_filters(store: Store) -> None:
    ivr = await store.scenarios.create("ivr", "x")
    a = await finished_call(store, start=0, scenario_id=ivr.id)
    b = await finished_call(store, start=10, direction="outbound", to_number="+15551230000")
    c = await finished_call(store, start=20, from_number="alice", number="alice-line")
    d = await store.calls.create(NewCall("inbound", "bob", "+33199001234", at(30)))

    async def ids(**filters: object) -> list[str]:
        page = await store.calls.search(CallFilter(**filters), limit=100)  # type: ignore[arg-type]
        assert page.total == len(page.hits)
        return [r.id for r in page.hits]

    assert await ids() == [d.id, c.id, b.id, a.id]  # newest first
    assert await ids(direction="outbound") == [b.id]
    assert await ids(direction="inbound") == [d.id, c.id, a.id]
    assert await ids(from_number="alice") == [c.id]
    assert await ids(to_number="+15551230000") == [b.id]
    assert await ids(number="alice-line") == [c.id]
    assert await ids(scenario_id=ivr.id) == [a.id]
    assert await ids(status="live") == [d.id]
    assert await ids(status="ended", direction="inbound", from_number="alice") == [c.id]
    assert await ids(from_number="nobody") == []
    # Date range: both bounds inclusive, to the millisecond.
    assert await ids(since=at(10), until=at(20)) == [c.id, b.id]
    assert await ids(since=at(10.001), until=at(19.999)) == []
    assert await ids(since=at(20)) == [d.id, c.id]
    assert await ids(until=at(0)) == [a.id]


async def test_search_paging_edges(store: Store) -> None:
    records = [await finished_call(store, start=i) for i in range(7)]
    newest_first = [r.id for r in reversed(records)]

    first = await store.calls.search(limit=3)
    assert ([r.id for r in first.hits], first.total, first.has_more) == (
        newest_first[:3],
        7,
        True,
    )
    middle = await store.calls.search(limit=3, offset=3)
    assert [r.id for r in middle.hits] == newest_first[3:6]
    last = await store.calls.search(limit=3, offset=6)
    assert ([r.id for r in last.hits], last.has_more) == (newest_first[6:], False)
    exact = await store.calls.search(limit=7)
    assert (len(exact.hits), exact.has_more) == (7, False)
    past = await store.calls.search(limit=3, offset=7)
    assert (past.hits, past.total, past.has_more) == ([], 7, False)
    none = await store.calls.search(limit=0)
    assert (none.hits, none.total) == ([], 7)
    oldest_first = await store.calls.search(order="asc", limit=2, offset=1)
    assert [r.id for r in oldest_first.hits] == [records[1].id, records[2].id]
    empty = await store.calls.search(CallFilter(direction="outbound"))
    assert (empty.hits, empty.total, empty.has_more) == ([], 0, False)


async def test_calls_starting_at_the_same_instant_page_without_loss(store: Store) -> None:
    records = [await finished_call(store, start=5) for _ in range(9)]
    seen: list[str] = []
    for offset in range(0, 9, 2):
        seen += [r.id for r in (await store.calls.search(limit=2, offset=offset)).hits]
    assert sorted(seen) == sorted(r.id for r in records)
    assert seen == sorted(seen, reverse=True)  # ties broken by id


# -- CSV export ------------------------------------------------------------------------------


async def export(store: Store, filters: CallFilter | None = None, batch: int = 500) -> str:
    return "".join([chunk async for chunk in store.calls.export_csv(filters, batch=batch)])


async def test_export_has_a_header_and_one_row_per_record(store: Store) -> None:
    assert await export(store) == ",".join(CSV_COLUMNS) + "\r\n"
    a = await finished_call(store, start=0)
    b = await finished_call(store, start=1.5, answered=None, length=2)
    rows = list(csv.DictReader(io.StringIO(await export(store))))
    assert [row["id"] for row in rows] == [a.id, b.id]  # oldest first
    assert rows[0]["started_at"] == "2024-04-24T17:42:28.000Z"
    assert rows[0]["answered_at"] == "2024-04-24T17:42:29.000Z"
    assert (rows[0]["duration"], rows[0]["duration_answered"]) == ("10.000", "9.000")
    assert (rows[1]["answered_at"], rows[1]["duration_answered"]) == ("", "0.000")
    assert rows[1]["from"] == "+33612345678"


async def test_export_quotes_commas_quotes_and_newlines(store: Store) -> None:
    nasty = 'Smith, "Bob"\nSales\r\nline 3'
    call = await store.calls.create(
        NewCall("inbound", "+331", "sip:a,b@x", T0, from_name=nasty, number='"q"')
    )
    await store.calls.finish(
        call.id,
        CallEnd(at(1), hangup_cause="x,y", media_stats={"a": {"note": 'he said "hi", then\n'}}),
    )
    text = await export(store)
    assert text.count("\r\n") >= 2
    header, row = list(csv.reader(io.StringIO(text, newline="")))
    fields = dict(zip(header, row, strict=True))
    assert fields["from_name"] == nasty
    assert fields["to"] == "sip:a,b@x"
    assert fields["number"] == '"q"'
    assert fields["hangup_cause"] == "x,y"
    assert fields["media_stats"] == '{"a":{"note":"he said \\"hi\\", then\\n"}}'


async def test_export_streams_in_batches_and_filters(store: Store) -> None:
    records = [await finished_call(store, start=i // 3) for i in range(10)]  # ties on start
    await finished_call(store, start=2, direction="outbound")
    for batch in (1, 3, 4, 10, 11, 500):
        rows = list(csv.DictReader(io.StringIO(await export(store, CallFilter("inbound"), batch))))
        assert sorted(row["id"] for row in rows) == sorted(r.id for r in records), batch
        keys = [(row["started_at"], row["id"]) for row in rows]
        assert keys == sorted(keys)
    newest = [row async for row in store.calls.export_rows(order="desc", batch=4)][1:]
    assert len(newest) == 11
    assert [row[0] for row in newest] == [r.id for r in (await store.calls.search(limit=50)).hits]
    windowed = list(
        csv.DictReader(io.StringIO(await export(store, CallFilter(since=at(3), until=at(3)))))
    )
    assert [row["id"] for row in windowed] == [records[9].id]


async def test_export_is_lazy(store: Store) -> None:
    for i in range(5):
        await finished_call(store, start=i)
    rows = store.calls.export_rows(batch=2)
    header = await anext(rows)
    first = await anext(rows)
    assert header == list(CSV_COLUMNS)
    assert first[0] == (await store.calls.search(order="asc", limit=1)).hits[0].id
    await rows.aclose()
    with pytest.raises(ValueError, match="batch"):
        await anext(store.calls.export_rows(batch=0))


_text = st.text(st.characters(codec="utf-8"), max_size=30)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(names=st.lists(st.one_of(st.none(), _text), min_size=1, max_size=4), number=_text)
def test_export_round_trips_any_text(names: list[str | None], number: str) -> None:
    async def scenario(path: Path) -> None:
        store = await Store.open(path)
        try:
            for name in names:
                await store.calls.create(
                    NewCall("inbound", number, number, T0, from_name=name, number=number)
                )
            rows = list(csv.DictReader(io.StringIO(await export(store), newline="")))
        finally:
            await store.close()
        assert sorted(row["from_name"] for row in rows) == sorted(n or "" for n in names)
        assert {row["from"] for row in rows} == {number}

    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(scenario(Path(directory) / "store.db"))


async def test_the_schema_refuses_values_outside_its_vocabulary(store: Store, engine: str) -> None:
    with pytest.raises(integrity_error(engine), match=r"(?i)check"):
        await store.calls.create(NewCall("sideways", "a", "b", T0))  # type: ignore[arg-type]
    assert (await store.calls.search()).total == 0
