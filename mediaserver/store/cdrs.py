"""Call records (CDRs): written as a call progresses, searched and exported as CSV.

Theory of operation. A record is inserted ``live`` when a call starts
(:meth:`CallRecords.create`), stamped when it is answered, linked to its run
and closed once by :meth:`CallRecords.finish` with the hangup cause, source,
final SIP status and each leg's media statistics (``media_stats`` is a JSON
object keyed by leg name). A record still ``live`` when the server starts
again belonged to a server that died: start-up marks it ``interrupted``
(:mod:`mediaserver.store.recovery`). Every step is its own committed
transaction, so a crash loses at most the step in flight.

Searching filters on exact values (direction, from, to, our number,
scenario, status) and an inclusive start-time range, newest first, with
limit/offset paging and the total count. The CSV export walks the same
filters in batches keyed on ``(started_at, id)``: memory stays flat however
many rows match, and no read transaction is held open between batches.

Mapping to the Callr v1 CDR objects (``seeds/000``), done by
:meth:`CallRecord.as_cdr`:

=========================  =======================================================
Callr field                here
=========================  =======================================================
``callid``                 ``id`` (8 of ``[a-z0-9]``, not an integer)
``callid_in`` (Out)        ``parent_call_id``: the inbound call that dialled it
``start``                  ``started_at``
``answer``                 ``answered_at``
``hangup``                 ``ended_at``
``duration``               ``duration_ms`` (start to hangup), rounded to seconds
``duration_answered``      ``duration_answered_ms`` (answer to hangup), in seconds
``hangupcause``            ``hangup_cause_code`` (Q.850 cause number)
``hangupsource``           ``hangup_source`` upper-cased (``CALLER``, ``CALLEE``,
                           ``SERVER``)
``cli_number``             ``from_number`` (From user)
``cli_name``               ``from_name`` (From display name)
``did_intl_number`` (In)   ``number``: our number or SIP user that was called
``number`` (Out)           ``to_number``: the destination dialled
``dialstatus`` (Out)       ``dial_status``
``scenario_hash``          ``scenario_id``
``scenario_name``          ``scenario_name``
``cli_pres``               ``cli_pres``: from the INVITE's Privacy, From and
                           P-Asserted-Identity (:mod:`mediaserver.sip.presentation`)
``customer_field``         ``customer_field``: the run's ``customer_field``
                           variable when the call ended (32 characters at most)
``cli_country_code`` (In)  the country of ``from_number`` (:mod:`mediaserver.numbering`)
``cli_number_type`` (In)   the type of ``from_number`` (``MOBILE``, ``FIXED``...)
``number_country_code``    the country of ``to_number`` (Out)
``number_type`` (Out)      the type of ``to_number``
``did_hash`` (In)          :func:`did_hash` of ``number``
=========================  =======================================================

The number facts are derived when the record is read (an E.164 number, ``+``
first; a SIP user name tells nothing: ``None``). ``dialstatus`` is the
Asterisk-style upper-case status Callr prints (:data:`CALLR_DIAL_STATUS`).

Not kept: the ``billing_*`` money fields, ``duration_billed`` and
``package_name`` (no billing here). Added: ``direction``, ``status``,
``to_number`` (inbound: the To user), ``hangup_cause`` (the cause by name,
as Call Control's ``hangup_cause``), ``sip_status`` (the final SIP status,
Call Control's ``sip_hangup_cause``), ``sip_call_id``, ``run_id`` and
``media_stats``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from mediaserver.numbering import number_facts
from mediaserver.store.db import (
    Database,
    Order,
    Page,
    Row,
    Session,
    Where,
    dump_json,
    from_ms,
    opt_from_ms,
    order_sql,
    to_ms,
)
from mediaserver.store.errors import Conflict, UnknownReference

Direction = Literal["inbound", "outbound"]
CallStatus = Literal["live", "ended", "interrupted"]

_COLUMNS = (
    "id, direction, status, from_number, from_name, to_number, number, scenario_id,"
    " scenario_name, run_id, parent_call_id, sip_call_id, started_at, answered_at, ended_at,"
    " duration_ms, duration_answered_ms, hangup_cause, hangup_cause_code, hangup_source,"
    " sip_status, dial_status, media_stats, cli_pres, customer_field, node"
)

CSV_COLUMNS: tuple[str, ...] = (
    "id",
    "direction",
    "status",
    "from",
    "from_name",
    "to",
    "number",
    "scenario_id",
    "scenario_name",
    "run_id",
    "parent_call_id",
    "sip_call_id",
    "started_at",
    "answered_at",
    "ended_at",
    "duration",
    "duration_answered",
    "hangup_cause",
    "hangup_cause_code",
    "hangup_source",
    "sip_status",
    "dial_status",
    "media_stats",
    "cli_pres",
    "customer_field",
)
"""The header of :meth:`CallRecords.export_rows`; times RFC 3339, durations in seconds."""

EXPORT_BATCH = 500


@dataclass(frozen=True)
class NewCall:
    """A call that starts: what is known when its record is created."""

    direction: Direction
    from_number: str
    to_number: str
    started_at: datetime
    from_name: str | None = None
    number: str | None = None
    """Ours: the number or SIP user called (inbound) or calling on our behalf (outbound)."""
    scenario_id: str | None = None
    scenario_name: str | None = None
    run_id: str | None = None
    parent_call_id: str | None = None
    sip_call_id: str | None = None
    cli_pres: str | None = None
    """Callr's ``allowed_passed_screen`` or ``prohib_passed_screen``."""
    id: str | None = None
    """None: the store picks a fresh, unused id (preferred)."""


@dataclass(frozen=True)
class CallEnd:
    """How a call ended, for :meth:`CallRecords.finish`."""

    ended_at: datetime
    hangup_cause: str | None = None
    """By name, e.g. ``normal_clearing``, ``busy``, ``originator_cancel``."""
    hangup_source: str | None = None
    """``caller``, ``callee`` or ``server``."""
    hangup_cause_code: int | None = None
    """Q.850 cause number (16 normal clearing, 17 busy, ...)."""
    sip_status: int | None = None
    dial_status: str | None = None
    media_stats: dict[str, Any] = field(default_factory=dict)
    customer_field: str | None = None
    """Per leg (``{"a": {...}, "b": {...}}``): the legs' statistics snapshots."""


@dataclass(frozen=True)
class CallRecord:
    id: str
    direction: Direction
    status: CallStatus
    from_number: str
    from_name: str | None
    to_number: str
    number: str | None
    scenario_id: str | None
    scenario_name: str | None
    run_id: str | None
    parent_call_id: str | None
    sip_call_id: str | None
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    duration_ms: int | None
    """Start to hangup; None while live."""
    duration_answered_ms: int | None
    """Answer to hangup, 0 if never answered; None while live."""
    hangup_cause: str | None
    hangup_cause_code: int | None
    hangup_source: str | None
    sip_status: int | None
    dial_status: str | None
    media_stats: dict[str, Any]
    cli_pres: str | None = None
    customer_field: str | None = None
    node: str = ""
    """The server (``node.name``) that holds or held the call."""

    def as_cdr(self) -> dict[str, Any]:
        """The Callr v1 ``CDR.In`` or ``CDR.Out`` object (mapping in the module doc)."""
        cdr: dict[str, Any] = {
            "callid": self.id,
            "start": _callr_time(self.started_at),
            "answer": _callr_time(self.answered_at),
            "hangup": _callr_time(self.ended_at),
            "duration": _seconds(self.duration_ms),
            "duration_answered": _seconds(self.duration_answered_ms),
            "hangupcause": self.hangup_cause_code,
            "hangupsource": self.hangup_source.upper() if self.hangup_source else None,
            "cli_number": self.from_number,
            "cli_name": self.from_name,
            "scenario_hash": self.scenario_id,
            "scenario_name": self.scenario_name,
            "cli_pres": self.cli_pres,
            "customer_field": self.customer_field,
        }
        if self.direction == "inbound":
            caller = number_facts(self.from_number)
            cdr["cli_country_code"] = caller.country
            cdr["cli_number_type"] = caller.number_type
            cdr["did_intl_number"] = self.number
            cdr["did_hash"] = did_hash(self.number) if self.number else None
        else:
            called = number_facts(self.to_number)
            cdr["callid_in"] = self.parent_call_id
            cdr["number"] = self.to_number
            cdr["number_country_code"] = called.country
            cdr["number_type"] = called.number_type
            cdr["dialstatus"] = CALLR_DIAL_STATUS.get(self.dial_status or "", self.dial_status)
        return cdr

    def as_record(self) -> dict[str, Any]:
        """The record as ``GET /api/cdrs/{callid}`` shows it (and the call webhooks'
        ``record``): the native names, RFC 3339 times, durations in seconds."""
        scenario = None
        if self.scenario_id is not None or self.scenario_name is not None:
            scenario = {"sid": self.scenario_id, "name": self.scenario_name}
        return {
            "callid": self.id,
            "direction": self.direction,
            "status": self.status,
            "from": self.from_number,
            "fromName": self.from_name,
            "to": self.to_number,
            "number": self.number,
            "scenario": scenario,
            "runid": self.run_id,
            "parentCallid": self.parent_call_id,
            "sipCallId": self.sip_call_id,
            "started": rfc3339(self.started_at),
            "answered": rfc3339(self.answered_at),
            "ended": rfc3339(self.ended_at),
            "duration": _float_seconds(self.duration_ms),
            "durationAnswered": _float_seconds(self.duration_answered_ms),
            "hangupCause": self.hangup_cause,
            "hangupCauseCode": self.hangup_cause_code,
            "hangupSource": self.hangup_source,
            "sipStatus": self.sip_status,
            "dialStatus": self.dial_status,
            "media": self.media_stats,
            "cliPres": self.cli_pres,
            "customerField": self.customer_field,
        }

    def csv_row(self) -> list[str]:
        """The values of :data:`CSV_COLUMNS` as text (empty for missing)."""
        values: list[Any] = [
            self.id,
            self.direction,
            self.status,
            self.from_number,
            self.from_name,
            self.to_number,
            self.number,
            self.scenario_id,
            self.scenario_name,
            self.run_id,
            self.parent_call_id,
            self.sip_call_id,
            rfc3339(self.started_at),
            rfc3339(self.answered_at),
            rfc3339(self.ended_at),
            _decimal_seconds(self.duration_ms),
            _decimal_seconds(self.duration_answered_ms),
            self.hangup_cause,
            self.hangup_cause_code,
            self.hangup_source,
            self.sip_status,
            self.dial_status,
            dump_json(self.media_stats) if self.media_stats else None,
            self.cli_pres,
            self.customer_field,
        ]
        return ["" if value is None else str(value) for value in values]


@dataclass(frozen=True)
class CallFilter:
    """Search filters; None means any. ``since``/``until`` bound the start, inclusive."""

    direction: Direction | None = None
    from_number: str | None = None
    to_number: str | None = None
    number: str | None = None
    scenario_id: str | None = None
    run_id: str | None = None
    status: CallStatus | None = None
    since: datetime | None = None
    until: datetime | None = None

    def where(self) -> Where:
        where = Where()
        where.equal("direction", self.direction)
        where.equal("from_number", self.from_number)
        where.equal("to_number", self.to_number)
        where.equal("number", self.number)
        where.equal("scenario_id", self.scenario_id)
        where.equal("run_id", self.run_id)
        where.equal("status", self.status)
        where.between("started_at", self.since, self.until)
        return where


class CallRecords:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, call: NewCall) -> CallRecord:
        """Insert the ``live`` record of a call that starts.

        :class:`Conflict` on ``id`` if a given id is taken;
        :class:`UnknownReference` on ``run_id``/``parent_call_id`` when they do not exist.
        """
        async with self.db.transaction() as tx:
            if call.id is None:
                call_id = await tx.unique_id("calls")
            elif await tx.fetch_one("SELECT 1 FROM calls WHERE id = ?", (call.id,)) is not None:
                raise Conflict("id", f"a call record {call.id!r} already exists")
            else:
                call_id = call.id
            await _check_reference(tx, "runs", "run_id", call.run_id)
            await _check_reference(tx, "calls", "parent_call_id", call.parent_call_id)
            await tx.execute(
                "INSERT INTO calls (id, direction, status, from_number, from_name, to_number,"
                " number, scenario_id, scenario_name, run_id, parent_call_id, sip_call_id,"
                " started_at, cli_pres, node)"
                " VALUES (?, ?, 'live', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    call_id,
                    call.direction,
                    call.from_number,
                    call.from_name,
                    call.to_number,
                    call.number,
                    call.scenario_id,
                    call.scenario_name,
                    call.run_id,
                    call.parent_call_id,
                    call.sip_call_id,
                    to_ms(call.started_at),
                    call.cli_pres,
                    self.db.node,
                ),
            )
            return await _load(tx, call_id)

    async def get(self, call_id: str) -> CallRecord | None:
        row = await self.db.fetch_one(f"SELECT {_COLUMNS} FROM calls WHERE id = ?", (call_id,))
        return None if row is None else _record(row)

    async def answered(self, call_id: str, at: datetime) -> bool:
        """Stamp the answer time of a live call (first answer wins)."""
        async with self.db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE calls SET answered_at = ?"
                " WHERE id = ? AND status = 'live' AND answered_at IS NULL",
                (to_ms(at), call_id),
            )
            return changed > 0

    async def finish(self, call_id: str, end: CallEnd) -> CallRecord | None:
        """Close a live record; the closed record, or None if unknown or already closed."""
        stats = dump_json(end.media_stats)
        async with self.db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE calls SET status = 'ended', ended_at = ?, hangup_cause = ?,"
                " hangup_cause_code = ?, hangup_source = ?, sip_status = ?, dial_status = ?,"
                " media_stats = ?, customer_field = ? WHERE id = ? AND status = 'live'",
                (
                    to_ms(end.ended_at),
                    end.hangup_cause,
                    end.hangup_cause_code,
                    end.hangup_source,
                    end.sip_status,
                    end.dial_status,
                    stats,
                    end.customer_field,
                    call_id,
                ),
            )
            return await _load(tx, call_id) if changed else None

    async def search(
        self,
        filters: CallFilter | None = None,
        *,
        order: Order = "desc",
        limit: int = 10,
        offset: int = 0,
    ) -> Page[CallRecord]:
        """Matching records by start time, newest first by default."""
        where = (filters or CallFilter()).where()
        direction = order_sql(order)
        async with self.db.snapshot() as snap:
            return await snap.page(
                f"SELECT {_COLUMNS} FROM calls",
                "SELECT count(*) FROM calls",
                where,
                f"started_at {direction}, id {direction}",
                limit,
                offset,
                _record,
            )

    async def export_rows(
        self,
        filters: CallFilter | None = None,
        *,
        order: Order = "asc",
        batch: int = EXPORT_BATCH,
    ) -> AsyncGenerator[list[str], None]:
        """The header, then one row per matching record, oldest first by default.

        Rows are read ``batch`` at a time, each batch resuming after the last
        ``(started_at, id)`` seen, so rows inserted meanwhile are not repeated.
        """
        if batch < 1:
            raise ValueError(f"batch must be >= 1, not {batch}")
        direction = order_sql(order)
        after = ">" if order == "asc" else "<"
        yield list(CSV_COLUMNS)
        last: tuple[int, str] | None = None
        while True:
            where = (filters or CallFilter()).where()
            if last is not None:
                where.add(f"(started_at, id) {after} (?, ?)", *last)
            rows = await self.db.fetch_all(
                f"SELECT {_COLUMNS} FROM calls{where.sql}"
                f" ORDER BY started_at {direction}, id {direction} LIMIT ?",
                [*where.params, batch],
            )
            for row in rows:
                yield _record(row).csv_row()
            if len(rows) < batch:
                return
            last = (int(rows[-1]["started_at"]), str(rows[-1]["id"]))

    async def export_csv(
        self,
        filters: CallFilter | None = None,
        *,
        order: Order = "asc",
        batch: int = EXPORT_BATCH,
    ) -> AsyncGenerator[str, None]:
        """:meth:`export_rows` as CSV text (RFC 4180: quoted as needed, CRLF), a line a chunk."""
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        async with aclosing(self.export_rows(filters, order=order, batch=batch)) as rows:
            async for row in rows:
                writer.writerow(row)
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()


CALLR_DIAL_STATUS: dict[str, str] = {
    "answered": "ANSWER",
    "busy": "BUSY",
    "no-answer": "NOANSWER",
    "canceled": "CANCEL",
    "failed": "CHANUNAVAIL",
}
"""dial@v1's statuses as Callr's ``dialstatus`` prints them (the seed's ``"BUSY"``:
Asterisk's ``DIALSTATUS`` names, which Callr's platform reports)."""


def did_hash(number: str) -> str:
    """A stable id of a called number (Callr's ``did_hash``): the same number gives
    the same 8 characters on every server and after every restart."""
    return hashlib.sha256(f"did:{number}".encode()).hexdigest()[:8]


def rfc3339(moment: datetime | None) -> str | None:
    """``2024-04-24T17:42:28.123Z`` (UTC, milliseconds), or None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _callr_time(moment: datetime | None) -> str | None:
    """The seed's datetime format: ``YYYY-MM-DD HH:MM:SS`` in UTC."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _float_seconds(ms: int | None) -> float | None:
    return None if ms is None else round(ms / 1000, 3)


def _decimal_seconds(ms: int | None) -> str | None:
    return None if ms is None else f"{ms / 1000:.3f}"


def _seconds(ms: int | None) -> int | None:
    return None if ms is None else (ms + 500) // 1000


async def _check_reference(session: Session, table: str, name: str, value: str | None) -> None:
    if value is None:
        return
    if await session.fetch_one(f"SELECT 1 FROM {table} WHERE id = ?", (value,)) is None:
        raise UnknownReference(name, f"no {table[:-1]} {value!r}")


async def _load(session: Session, call_id: str) -> CallRecord:
    sql = f"SELECT {_COLUMNS} FROM calls WHERE id = ?"
    return _record(await session.fetch_written(sql, (call_id,), f"call record {call_id}"))


def _record(row: Row) -> CallRecord:
    return CallRecord(
        id=row["id"],
        direction=row["direction"],
        status=row["status"],
        from_number=row["from_number"],
        from_name=row["from_name"],
        to_number=row["to_number"],
        number=row["number"],
        scenario_id=row["scenario_id"],
        scenario_name=row["scenario_name"],
        run_id=row["run_id"],
        parent_call_id=row["parent_call_id"],
        sip_call_id=row["sip_call_id"],
        started_at=from_ms(row["started_at"]),
        answered_at=opt_from_ms(row["answered_at"]),
        ended_at=opt_from_ms(row["ended_at"]),
        duration_ms=row["duration_ms"],
        duration_answered_ms=row["duration_answered_ms"],
        hangup_cause=row["hangup_cause"],
        hangup_cause_code=row["hangup_cause_code"],
        hangup_source=row["hangup_source"],
        sip_status=row["sip_status"],
        dial_status=row["dial_status"],
        media_stats=json.loads(row["media_stats"]),
        cli_pres=row["cli_pres"],
        customer_field=row["customer_field"],
        node=row["node"],
    )
