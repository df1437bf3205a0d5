"""``GET /metrics``: the server's counters in the Prometheus text format (version 0.0.4).

Theory of operation. Most figures are read when scraped, from the objects
that already count them: live calls from the user agent, SIP messages from
the endpoint's ``stats`` counter, webhook posts from the dispatcher's
metrics, API runs from ``Server.runs``. Two things need memory of calls that
are gone, so :class:`CallMetrics` listens to the journal's call-ended hook
(``CallJournal.on_call_ended``): it counts ended calls by direction and
outcome, hangups by cause, and adds each ended call's RTP leg counters to
running totals. The RTP figures served are those totals plus the current
counters of every call the user agent still holds, so they only grow: a
call moves from "live" to "totals" in one synchronous step (the journal hook
runs inside ``Call.finish`` just before the user agent forgets the call).

The exposition format is simple enough to write here (``# HELP``, ``# TYPE``,
one ``name{label="value"} number`` line per series, label values escaped),
which spares a dependency. Series names:

========================================  =========  ==============================
name                                      type       labels
========================================  =========  ==============================
mediaserver_calls_active                  gauge      direction
mediaserver_calls_total                   counter    direction, outcome (answered,
                                                     unanswered): calls ended
mediaserver_call_hangups_total            counter    direction, cause, source
mediaserver_sip_requests_total            counter    direction (in, out), method
mediaserver_sip_responses_total           counter    direction (in, out), status
mediaserver_sip_events_total              counter    event (malformed, overloaded...)
mediaserver_rtp_packets_total             counter    direction (in, out)
mediaserver_rtp_bytes_total               counter    direction (in, out)
mediaserver_rtp_packets_lost_total        counter
mediaserver_rtp_packets_refused_total     counter    protocol (rtp, rtcp): from a source
                                                     that may not be heard (media hijack)
mediaserver_runs_active                   gauge      kind (api, call)
mediaserver_webhook_posts_total           counter    outcome (published, delivered,
                                                     failed, retried, dropped)
mediaserver_webhook_posts_pending         gauge
mediaserver_journal_dropped_total         counter
mediaserver_start_time_seconds            gauge
========================================  =========  ==============================
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mediaserver.calls import Call
    from mediaserver.server import Server

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Label values come from the network (methods) and scenarios (hangup reasons): bounded here.
SIP_METHODS = frozenset(
    {
        *("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO", "UPDATE", "PRACK"),
        *("SUBSCRIBE", "NOTIFY", "REFER", "MESSAGE", "PUBLISH"),
    }
)
_CAUSE = re.compile(r"[a-z][a-z0-9_]{0,39}")
_STATUS = re.compile(r"[1-6][0-9]{2}")
# Leg counters summed into the RTP series: snapshot key -> (series, direction).
_RTP_KEYS = {
    "packets_in": ("packets", "in"),
    "packets_out": ("packets", "out"),
    "bytes_in": ("bytes", "in"),
    "bytes_out": ("bytes", "out"),
    "lost": ("lost", ""),
    "rtp_refused_source": ("refused", "rtp"),
    "rtcp_refused_source": ("refused", "rtcp"),
}


def _bounded(value: str | None, pattern: re.Pattern[str]) -> str:
    if value and pattern.fullmatch(value):
        return value
    return "other" if value else "none"


def rtp_counters(snapshot: Mapping[str, Any]) -> Counter[str]:
    """The counters of one leg snapshot that the RTP series add up (whole numbers only)."""
    out: Counter[str] = Counter()
    for key in _RTP_KEYS:
        value = snapshot.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            out[key] = value
    return out


class CallMetrics:
    """What is remembered of ended calls (fed by the journal's call-ended hook)."""

    def __init__(self) -> None:
        self.started_at = time.time()
        self.calls: Counter[tuple[str, str]] = Counter()  # (direction, outcome)
        self.hangups: Counter[tuple[str, str, str]] = Counter()  # (direction, cause, source)
        self.rtp: Counter[str] = Counter()  # snapshot key -> total of ended legs

    def call_ended(self, call: Call) -> None:
        direction = "inbound" if call.direction == "inbound" else "outbound"
        outcome = "answered" if call.answered_at is not None else "unanswered"
        self.calls[direction, outcome] += 1
        cause = _bounded(call.hangup_cause, _CAUSE)
        source = _bounded(call.hangup_source, _CAUSE)
        self.hangups[direction, cause, source] += 1
        self.rtp.update(rtp_counters(call.leg.snapshot()))


class Exposition:
    """Builds the text of one scrape."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def family(
        self,
        name: str,
        kind: str,
        help_text: str,
        samples: Iterable[tuple[Mapping[str, str], float]],
    ) -> None:
        self._lines.append(f"# HELP {name} {help_text}")
        self._lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            self._lines.append(f"{name}{_labels(labels)} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self._lines) + "\n"


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _sip_series(stats: Mapping[str, int]) -> tuple[Counter[tuple[str, str]], ...]:
    requests: Counter[tuple[str, str]] = Counter()
    responses: Counter[tuple[str, str]] = Counter()
    events: Counter[tuple[str, str]] = Counter()
    for key, count in stats.items():
        direction, _, what = key.partition(".")
        if direction not in ("in", "out") or not what:
            events["", key] += count
        elif what.isdigit():
            responses[direction, _bounded(what, _STATUS)] += count
        else:
            requests[direction, what if what in SIP_METHODS else "other"] += count
    return requests, responses, events


def render(server: Server, calls: CallMetrics) -> str:
    """The whole scrape for ``server``."""
    out = Exposition()
    ua = server.ua
    live = list({id(c): c for c in ua.calls.values()}.values())
    active = Counter(
        "inbound" if c.direction == "inbound" else "outbound" for c in live if not c.ended
    )
    out.family(
        "mediaserver_calls_active",
        "gauge",
        "Calls in progress.",
        [({"direction": d}, active[d]) for d in ("inbound", "outbound")],
    )
    out.family(
        "mediaserver_calls_total",
        "counter",
        "Calls ended since start, by whether they were answered.",
        [({"direction": d, "outcome": o}, n) for (d, o), n in sorted(calls.calls.items())],
    )
    out.family(
        "mediaserver_call_hangups_total",
        "counter",
        "Calls ended since start, by hangup cause and source.",
        [
            ({"direction": d, "cause": c, "source": s}, n)
            for (d, c, s), n in sorted(calls.hangups.items())
        ],
    )
    requests, responses, events = _sip_series(ua.endpoint.stats)
    out.family(
        "mediaserver_sip_requests_total",
        "counter",
        "SIP requests received (in) and sent (out), retransmissions included.",
        [({"direction": d, "method": m}, n) for (d, m), n in sorted(requests.items())],
    )
    out.family(
        "mediaserver_sip_responses_total",
        "counter",
        "SIP responses received (in) and sent (out), by status code.",
        [({"direction": d, "status": s}, n) for (d, s), n in sorted(responses.items())],
    )
    out.family(
        "mediaserver_sip_events_total",
        "counter",
        "Other SIP endpoint events: malformed input, overload refusals, stray responses.",
        [({"event": e}, n) for (_, e), n in sorted(events.items())],
    )
    rtp = Counter(calls.rtp)
    for call in live:
        rtp.update(rtp_counters(call.leg.snapshot()))
    for series, help_text in (
        ("packets", "RTP packets received (in) and sent (out) by call legs."),
        ("bytes", "RTP payload bytes received (in) and sent (out) by call legs."),
    ):
        out.family(
            f"mediaserver_rtp_{series}_total",
            "counter",
            help_text,
            [({"direction": d}, rtp[f"{series}_{d}"]) for d in ("in", "out")],
        )
    out.family(
        "mediaserver_rtp_packets_lost_total",
        "counter",
        "RTP packets the legs expected but never received (RFC 3550 A.3).",
        [({}, rtp["lost"])],
    )
    out.family(
        "mediaserver_rtp_packets_refused_total",
        "counter",
        "RTP and RTCP packets refused for their source: not the call's peer (media/latching.py).",
        [({"protocol": p}, rtp[f"{p}_refused_source"]) for p in ("rtp", "rtcp")],
    )
    call_runs = sum(1 for c in live if not c.ended and c.scenario is not None)
    out.family(
        "mediaserver_runs_active",
        "gauge",
        "Scenario runs in progress: started through the API, or serving a call.",
        [({"kind": "api"}, len(server.runs)), ({"kind": "call"}, call_runs)],
    )
    hooks = server.webhooks.metrics
    out.family(
        "mediaserver_webhook_posts_total",
        "counter",
        "Webhook posts (one per event and webhook) by what became of them.",
        [
            ({"outcome": "published"}, hooks.published),
            ({"outcome": "delivered"}, hooks.delivered),
            ({"outcome": "failed"}, hooks.failed),
            ({"outcome": "retried"}, hooks.retried),
            ({"outcome": "dropped"}, hooks.dropped),
        ],
    )
    out.family(
        "mediaserver_webhook_posts_pending",
        "gauge",
        "Webhook posts waiting or in flight.",
        [({}, server.webhooks.pending)],
    )
    out.family(
        "mediaserver_journal_dropped_total",
        "counter",
        "Call and run records lost because the journal backlog was full.",
        [({}, server.journal.dropped)],
    )
    out.family(
        "mediaserver_start_time_seconds",
        "gauge",
        "When the server started, in seconds since the Unix epoch.",
        [({}, calls.started_at)],
    )
    return out.text()
