"""The phone numbers the server answers (Callr v2 "Phone Numbers"), and their webhooks.

A self-hosted server owns no numbers: it answers those its config's
``routes`` name and those attached to a scenario through the API. Those are
its "numbers" here, in the seed's shape: E.164 numbers only (SIP user names
and ``*`` in ``routes`` are routes, not phone numbers). An attachment wins
over a route, as it does for calls (:class:`~mediaserver.library.Router`).

``assigned`` is when the server started answering the number: the attach
time for an attached number; for a route's number, the start or the reload
that brought the route in. ``v2.number.assigned`` is published when a
number is attached to a scenario (and when a reload adds a route's number),
``v2.number.unassigned`` when it is detached, its scenario deleted (and when
a reload removes a route's number); numbers already in the config at start
publish nothing, as nothing changed for them. Every node sharing a database
reloads the same config: a route's event gets an id made of the event and the
new routes (:func:`reload_event_id`), the same on every node, so the webhook
outbox posts it once for the cluster (:mod:`mediaserver.store.outbox`).

Type and country come from the number itself (:mod:`mediaserver.numbering`);
every number is ``classic`` (there is no gold class on one's own server),
and what belongs to a carrier account (compliance, contract, pricing, end
user) is null.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from mediaserver.library import Router, ScenarioLibrary
from mediaserver.numbering import number_facts
from mediaserver.sms.rules import E164
from mediaserver.store import Store
from mediaserver.store.cdrs import rfc3339
from mediaserver.store.db import ID_ALPHABET
from mediaserver.webhooks.delivery import WebhookDispatcher

ASSIGNED = "v2.number.assigned"
UNASSIGNED = "v2.number.unassigned"

NumberType = Literal[
    "geographic", "mobile", "non-geographic", "personal", "platform", "sharedrevenue",
    "sms-only", "special", "tollfree", "verified",
]  # fmt: skip

# libphonenumber's types (numbering.py's names) as the seed's NumberType.
_SEED_TYPES: dict[str, NumberType] = {
    "FIXED": "geographic",
    "FIXED_OR_MOBILE": "geographic",  # NANP plans cannot tell; the number is geographic
    "MOBILE": "mobile",
    "TOLLFREE": "tollfree",
    "PREMIUM": "special",
    "SHARED_COST": "sharedrevenue",
    "VOIP": "non-geographic",
    "UAN": "non-geographic",
    "PERSONAL": "personal",
    "PAGER": "special",
    "VOICEMAIL": "special",
}


def seed_type(number: str) -> NumberType | None:
    """The seed's type of ``number``; None when the numbering plan does not say."""
    kind = number_facts(number).number_type
    return _SEED_TYPES.get(kind) if kind is not None else None


def number_sid(number: str) -> str:
    """A stable 8-character sid for a number (the seed's search has a ``sid`` filter):
    derived from the number, so it is the same across restarts without being stored."""
    digest = int.from_bytes(hashlib.sha256(number.encode()).digest()[:8], "big")
    chars = []
    for _ in range(8):
        digest, index = divmod(digest, len(ID_ALPHABET))
        chars.append(ID_ALPHABET[index])
    return "".join(chars)


@dataclass(frozen=True)
class ServedNumber:
    """A number the server answers, and where its calls go."""

    e164: str
    origin: Literal["config", "api"]
    route: str
    """The config route's target, or the attached scenario's name."""
    scenario_sid: str | None
    scenario_name: str | None
    assigned: datetime

    def as_number(self) -> dict[str, Any]:
        """The seed's phone number object, with ``sid``, ``origin`` and ``route`` added."""
        facts = number_facts(self.e164)
        scenario = None
        if self.scenario_name is not None:
            scenario = {"sid": self.scenario_sid, "name": self.scenario_name}
        return {
            "sid": number_sid(self.e164),
            "e164": self.e164,
            "class": "classic",
            "type": seed_type(self.e164),
            "assigned": rfc3339(self.assigned),
            "country": facts.country,
            "scenario": scenario,
            "compliance": None,
            "contract": None,
            "pricing": None,
            "enduser": None,
            "origin": self.origin,
            "route": self.route,
        }


@dataclass(frozen=True)
class NumberChange:
    """A number attached to (``attached``) or detached from a scenario through the API."""

    number: str
    scenario_sid: str
    scenario_name: str
    attached: bool


def reload_event_id(event_type: str, number: str, target: str, generation: str) -> str:
    """The id of a number event a reload publishes: the same on every node reloading
    the same routes (``generation``), 32 hex digits like any Callr event id."""
    text = "\n".join((event_type, number, target, generation))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def is_phone_number(key: str) -> bool:
    return E164.fullmatch(key) is not None


class NumberDirectory:
    """The numbers the server answers, from the routes and the store's attachments."""

    def __init__(
        self,
        router: Router,
        library: ScenarioLibrary,
        store: Callable[[], Store | None],
        webhooks: WebhookDispatcher | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._router = router
        self._library = library
        self._store_now = store
        self._webhooks = webhooks
        self._now = clock
        self._route_since: dict[str, datetime] = {}  # a route's number: since when
        self._route_targets: dict[str, str] = {}  # ...and where it led at the last load
        self.routes_loaded(router.routes, publish=False)

    def routes_loaded(self, routes: Mapping[str, str], *, publish: bool = True) -> None:
        """The config's routes now (start or reload): a route's number new to them is
        assigned now, one gone is unassigned."""
        now = self._now()
        numbers = {key: target for key, target in routes.items() if is_phone_number(key)}
        generation = json.dumps(sorted(routes.items()))  # what every node reloads alike
        gone = [n for n in self._route_since if n not in numbers]
        for number in gone:
            del self._route_since[number]
            old_target = self._route_targets.pop(number, "")
            if publish and number not in self._router.numbers:
                self._publish(
                    UNASSIGNED, self._route_number(number, old_target, now),
                    reload_event_id(UNASSIGNED, number, old_target, generation),
                )  # fmt: skip
        for number, target in numbers.items():
            self._route_targets[number] = target
            if number not in self._route_since:
                self._route_since[number] = now
                if publish and number not in self._router.numbers:
                    self._publish(
                        ASSIGNED, self._route_number(number, target, now),
                        reload_event_id(ASSIGNED, number, target, generation),
                    )  # fmt: skip

    def _route_number(self, number: str, target: str, since: datetime) -> ServedNumber:
        scenario = target if self._library.get(target) is not None else None
        sid = self._library.store_id(target) if scenario is not None else None
        return ServedNumber(number, "config", target, sid, scenario, since)

    async def all(self) -> list[ServedNumber]:
        """Every number the server answers (attachments first, as routing does)."""
        store = self._store_now()
        attached = await store.numbers.all() if store is not None else []
        served: dict[str, ServedNumber] = {}
        for row in attached:
            if is_phone_number(row.number):
                served[row.number] = ServedNumber(
                    row.number, "api", row.scenario_name, row.scenario_id, row.scenario_name,
                    row.attached_at,
                )  # fmt: skip
        for number, since in self._route_since.items():
            if number not in served:
                target = self._router.routes.get(number, "")
                served[number] = self._route_number(number, target, since)
        return sorted(served.values(), key=lambda n: n.e164)

    async def get(self, number: str) -> ServedNumber | None:
        for served in await self.all():
            if served.e164 == number:
                return served
        return None

    def changed(self, change: NumberChange) -> None:
        """The catalog attached or detached a number: tell the webhooks."""
        if not is_phone_number(change.number):
            return  # a SIP user name is a route, not a phone number
        served = ServedNumber(
            change.number, "api", change.scenario_name, change.scenario_sid,
            change.scenario_name, self._now(),
        )  # fmt: skip
        self._publish(ASSIGNED if change.attached else UNASSIGNED, served)

    def _publish(self, event_type: str, served: ServedNumber, event_id: str | None = None) -> None:
        if self._webhooks is not None:
            payload = served.as_number()
            self._webhooks.publish(event_type, payload["sid"], payload, event_id=event_id)
