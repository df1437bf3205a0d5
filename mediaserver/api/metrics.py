"""``GET /metrics``: the server's figures in the Prometheus text format, via ``prometheus_client``.

Theory of operation. Each :class:`Server` has its own
:class:`~prometheus_client.CollectorRegistry` (never the global one: tests
run several servers in one process). Three kinds of figures live in it:

* Read when scraped (:class:`ServerCollector`), from the objects that
  already count them: live calls from the user agent, SIP messages from the
  endpoint's ``stats`` counter, webhook posts from the dispatcher's metrics,
  API runs from ``Server.runs`` (``Runs.live``). Every key of the endpoint's ``stats`` is
  served: ``in.METHOD``/``out.METHOD`` as SIP requests, ``in.NNN``/``out.NNN``
  as responses, anything else as
  ``mediaserver_sip_events_total{event=KEY}``, so a counter added there later
  shows up without touching this module.
* Remembered of calls that are gone (:class:`CallMetrics`, fed by the
  journal's call-started and call-ended hooks): calls started and ended, hangup
  causes, running RTP totals, and the histograms observed as each call ends
  (set-up time, duration, jitter, loss). The RTP figures served are the
  totals plus the current counters of every call the user agent still holds,
  so they only grow: a call moves from "live" to "totals" in one synchronous
  step (the journal hook runs inside ``Call.finish`` just before the user
  agent forgets the call).
* Observed as they happen: HTTP requests (:class:`HttpMetrics`, fed by the
  app's request middleware), webhook attempt latency (the dispatcher's
  ``on_attempt`` hook), event-loop lag (:class:`LoopLag`, a timer callback
  measuring how late it runs), plus ``process_*`` (Linux ``/proc``) and
  ``mediaserver_build_info``.

Series (the ``_total``, ``_bucket``/``_sum``/``_count`` suffixes as Prometheus adds them):

==============================================  =========  =========================="""

from __future__ import annotations

import asyncio
import platform
import re
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mediaserver import __version__

if TYPE_CHECKING:
    from mediaserver.calls import Call
    from mediaserver.server import Server
    from mediaserver.webhooks.delivery import DeliveryRecord

# The classic text format, which every Prometheus version reads (generate_latest writes it).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# ``*_created`` series (a timestamp per histogram and counter) only double the scrape here.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Label values come from the network (methods) and scenarios (hangup reasons): bounded here.
SIP_METHODS = frozenset(
    {
        *("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO", "UPDATE", "PRACK"),
        *("SUBSCRIBE", "NOTIFY", "REFER", "MESSAGE", "PUBLISH"),
    }
)
_CAUSE = re.compile(r"[a-z][a-z0-9_]{0,39}")
_STATUS = re.compile(r"[1-6][0-9]{2}")
_EVENT = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,63}")
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
DIRECTIONS = ("inbound", "outbound")

# Buckets: set-up spans ringing (seconds to a minute); calls last seconds to hours.
SETUP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60)
DURATION_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
# ITU-T G.114 / common VoIP practice: jitter under 30 ms is good, over 100 ms is bad.
JITTER_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5)
LOSS_BUCKETS = (0.0, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
WEBHOOK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def _bounded(value: str | None, pattern: re.Pattern[str]) -> str:
    if value and pattern.fullmatch(value):
        return value
    return "other" if value else "none"


def _direction(call: Call) -> str:
    return "inbound" if call.direction == "inbound" else "outbound"


def rtp_counters(snapshot: Mapping[str, Any]) -> Counter[str]:
    """The counters of one leg snapshot that the RTP series add up (whole numbers only)."""
    out: Counter[str] = Counter()
    for key in _RTP_KEYS:
        value = snapshot.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            out[key] = value
    return out


def _number(snapshot: Mapping[str, Any], key: str) -> float | None:
    value = snapshot.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


class CallMetrics:
    """What is remembered of calls (fed by the journal's call-started and call-ended hooks)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry if registry is not None else CollectorRegistry()
        self.started_at = time.time()
        self.started: Counter[str] = Counter()  # direction
        self.calls: Counter[tuple[str, str]] = Counter()  # (direction, outcome)
        self.hangups: Counter[tuple[str, str, str]] = Counter()  # (direction, cause, source)
        self.rtp: Counter[str] = Counter()  # snapshot key -> total of ended legs
        self.setup = Histogram(
            "mediaserver_call_setup_seconds",
            "Time from a call's start (INVITE) to its answer, for answered calls.",
            ["direction"],
            buckets=SETUP_BUCKETS,
            registry=registry,
        )
        self.duration = Histogram(
            "mediaserver_call_duration_seconds",
            "Time from a call's answer to its end, for answered calls.",
            ["direction"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.jitter = Histogram(
            "mediaserver_call_jitter_seconds",
            "Interarrival jitter of a call's received RTP when it ended (RFC 3550 6.4.1).",
            ["direction"],
            buckets=JITTER_BUCKETS,
            registry=registry,
        )
        self.loss = Histogram(
            "mediaserver_call_loss_ratio",
            "Fraction of a call's expected RTP packets never received (RFC 3550 A.3).",
            ["direction"],
            buckets=LOSS_BUCKETS,
            registry=registry,
        )

    def call_started(self, call: Call) -> None:
        self.started[_direction(call)] += 1

    def call_ended(self, call: Call) -> None:
        direction = _direction(call)
        outcome = "answered" if call.answered_at is not None else "unanswered"
        self.calls[direction, outcome] += 1
        cause = _bounded(call.hangup_cause, _CAUSE)
        source = _bounded(call.hangup_source, _CAUSE)
        self.hangups[direction, cause, source] += 1
        snapshot = call.leg.snapshot()
        self.rtp.update(rtp_counters(snapshot))
        if call.answered_at is not None:
            self.setup.labels(direction).observe(max(0.0, call.answered_at - call.started_at))
            ended = call.ended_at if call.ended_at is not None else time.time()
            self.duration.labels(direction).observe(max(0.0, ended - call.answered_at))
        if rtp_counters(snapshot)["packets_in"] > 0:  # no media received: nothing to judge
            jitter_ms = _number(snapshot, "jitter_ms")
            if jitter_ms is not None:
                self.jitter.labels(direction).observe(jitter_ms / 1000)
            loss = _number(snapshot, "fraction_lost")
            if loss is not None:
                self.loss.labels(direction).observe(min(loss, 1.0))


class HttpMetrics:
    """HTTP requests by route template (never the raw path: ids would explode the series)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Histogram(
            "mediaserver_http_request_duration_seconds",
            "Time to answer an HTTP API request, by route template.",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=registry,
        )
        self.counts: Counter[tuple[str, str, str]] = Counter()  # (method, route, status)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in _HTTP_METHODS else "other"
        self.counts[method, route, str(status)] += 1
        self.requests.labels(method, route).observe(seconds)


_HTTP_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


class LoopLag:
    """Event-loop lag: a callback asks to run every ``interval`` s and records how late it ran.

    A loop busy with one long step (a blocking call, a huge JSON body) delays
    every timer, RTP pacing included; this shows it before callers hear it."""

    def __init__(self, registry: CollectorRegistry, interval: float = 0.5) -> None:
        self.interval = interval
        self.histogram = Histogram(
            "mediaserver_event_loop_lag_seconds",
            "How late a timer callback ran on the server's event loop (sampled every 0.5 s).",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0
        self.last = 0.0  # seconds late, the latest sample (the console's health page)
        self.worst = 0.0

    def start(self) -> None:
        """Start sampling on the running loop (a timer callback, not a task: nothing to await)."""
        loop = asyncio.get_running_loop()
        self._due = loop.time() + self.interval
        self._handle = loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self.last = max(0.0, now - self._due)
        self.worst = max(self.worst, self.last)
        self.histogram.observe(self.last)
        self._due = now + self.interval
        self._handle = loop.call_at(self._due, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


def _sip_series(stats: Mapping[str, int]) -> tuple[Counter[tuple[str, str]], ...]:
    """The endpoint's ``stats`` keys split into requests, responses and other events."""
    requests: Counter[tuple[str, str]] = Counter()
    responses: Counter[tuple[str, str]] = Counter()
    events: Counter[tuple[str, str]] = Counter()
    for key, count in stats.items():
        direction, _, what = key.partition(".")
        if direction not in ("in", "out") or not what:
            events["", _bounded(key, _EVENT)] += count
        elif what.isdigit():
            responses[direction, _bounded(what, _STATUS)] += count
        else:
            requests[direction, what if what in SIP_METHODS else "other"] += count
    return requests, responses, events


def _family(
    kind: type[CounterMetricFamily] | type[GaugeMetricFamily],
    name: str,
    help_text: str,
    labels: Iterable[str],
    samples: Iterable[tuple[Iterable[str], float]],
) -> Metric:
    family = kind(name, help_text, labels=list(labels))
    for values, value in samples:
        family.add_metric(list(values), value)
    return family


class ServerCollector(Collector):
    """The figures read from the server's own objects at each scrape."""

    def __init__(self, server: Server, calls: CallMetrics, http: HttpMetrics) -> None:
        self.server = server
        self.calls = calls
        self.http = http

    def collect(self) -> Iterable[Metric]:
        server, calls = self.server, self.calls
        switch = server.switch
        live = list({id(c): c for c in switch.calls.values()}.values())
        active = Counter(_direction(c) for c in live if not c.ended)
        c, g = CounterMetricFamily, GaugeMetricFamily
        yield _family(g, "mediaserver_calls_active", "Calls in progress.", ["direction"],
                      [((d,), active[d]) for d in DIRECTIONS])  # fmt: skip
        yield _family(c, "mediaserver_calls_started", "Calls started since start.",
                      ["direction"], [((d,), calls.started[d]) for d in DIRECTIONS])  # fmt: skip
        yield _family(
            c, "mediaserver_calls", "Calls ended since start, by whether they were answered.",
            ["direction", "outcome"], sorted(calls.calls.items()),
        )  # fmt: skip
        yield _family(
            c, "mediaserver_call_hangups", "Calls ended since start, by hangup cause and source.",
            ["direction", "cause", "source"], sorted(calls.hangups.items()),
        )  # fmt: skip
        refused = [
            (("inbound", _bounded(why, _EVENT)), n) for why, n in switch.refusals.counts.items()
        ]
        yield _family(
            c, "mediaserver_calls_refused", "Inbound calls refused before a scenario ran.",
            ["direction", "reason"], sorted(refused),
        )  # fmt: skip
        requests, responses, events = _sip_series(server.endpoint.stats)
        yield _family(
            c, "mediaserver_sip_requests",
            "SIP requests received (in) and sent (out), retransmissions included.",
            ["direction", "method"], sorted(requests.items()),
        )  # fmt: skip
        yield _family(
            c, "mediaserver_sip_responses",
            "SIP responses received (in) and sent (out), by status code.",
            ["direction", "status"], sorted(responses.items()),
        )  # fmt: skip
        yield _family(
            c, "mediaserver_sip_events",
            "Other SIP endpoint events: malformed input, overload refusals, stray responses.",
            ["event"], [((e,), n) for (_, e), n in sorted(events.items())],
        )  # fmt: skip
        rtp = Counter(calls.rtp)
        for call in live:
            rtp.update(rtp_counters(call.leg.snapshot()))
        for series, help_text in (
            ("packets", "RTP packets received (in) and sent (out) by call legs."),
            ("bytes", "RTP payload bytes received (in) and sent (out) by call legs."),
        ):
            yield _family(c, f"mediaserver_rtp_{series}", help_text, ["direction"],
                          [((d,), rtp[f"{series}_{d}"]) for d in ("in", "out")])  # fmt: skip
        yield _family(
            c, "mediaserver_rtp_packets_lost",
            "RTP packets the legs expected but never received (RFC 3550 A.3).",
            [], [((), rtp["lost"])],
        )  # fmt: skip
        yield _family(
            c, "mediaserver_rtp_packets_refused",
            "RTP and RTCP packets refused for their source: not the call's peer.",
            ["protocol"], [((p,), rtp[f"{p}_refused_source"]) for p in ("rtp", "rtcp")],
        )  # fmt: skip
        relays = server.relay_workers
        yield _family(g, "mediaserver_relay_workers", "Relay worker processes running.",
                      [], [((), relays.running)])  # fmt: skip
        yield _family(g, "mediaserver_relay_worker_legs",
                      "Call legs whose bridge a relay worker carries now.",
                      [], [((), relays.carried_legs)])  # fmt: skip
        yield _family(
            c, "mediaserver_relay_worker_handoffs",
            "Bridges handed to a relay worker (handoff), given back (return), and refused "
            "by a worker's full queue (refused, retried later) since start.",
            ["event"],
            [(("handoff",), relays.handoffs), (("return",), relays.returns),
             (("refused",), relays.refused)],
        )  # fmt: skip
        yield _family(c, "mediaserver_relay_worker_restarts",
                      "Relay workers that died (their calls came back to the main process).",
                      [], [((), relays.restarts)])  # fmt: skip
        call_runs = sum(1 for call in live if not call.ended and call.scenario is not None)
        yield _family(
            g, "mediaserver_runs_active",
            "Scenario runs in progress: started through the API, or serving a call.",
            ["kind"], [(("api",), len(server.runs.live())), (("call",), call_runs)],
        )  # fmt: skip
        hooks = server.webhooks.metrics
        outcomes = ("published", "delivered", "failed", "retried", "dropped", "elsewhere")
        yield _family(
            c, "mediaserver_webhook_posts",
            "Webhook posts (one per event and webhook) by what became of them.",
            ["outcome"], [((o,), getattr(hooks, o)) for o in outcomes],
        )  # fmt: skip
        yield _family(g, "mediaserver_webhook_posts_pending", "Webhook posts waiting or in flight.",
                      [], [((), server.webhooks.pending)])  # fmt: skip
        yield _family(
            c, "mediaserver_journal_dropped",
            "Call and run records lost because the journal backlog was full.",
            [], [((), server.journal.dropped)],
        )  # fmt: skip
        bus = server.events
        yield _family(g, "mediaserver_event_stream_subscribers",
                      "Clients connected to the live event stream.",
                      [], [((), bus.subscriber_count)])  # fmt: skip
        yield _family(c, "mediaserver_event_stream_dropped",
                      "Event-stream clients cut off because they read too slowly.",
                      [], [((), bus.dropped_subscribers)])  # fmt: skip
        yield _family(
            c, "mediaserver_http_requests", "HTTP API requests answered, by route and status.",
            ["method", "route", "status"], sorted(self.http.counts.items()),
        )  # fmt: skip
        yield _family(g, "mediaserver_start_time_seconds",
                      "When the server started, in seconds since the Unix epoch.",
                      [], [((), calls.started_at)])  # fmt: skip
        yield _family(
            g, "mediaserver_build_info", "The running build: mediaserver and Python versions.",
            ["version", "python"], [((__version__, platform.python_version()), 1)],
        )  # fmt: skip


class Telemetry:
    """One server's registry and what feeds it (built by the API app)."""

    def __init__(self, server: Server) -> None:
        self.registry = CollectorRegistry()
        self.calls = CallMetrics(self.registry)
        self.http = HttpMetrics(self.registry)
        self.loop_lag = LoopLag(self.registry)
        self.webhook_attempts = Histogram(
            "mediaserver_webhook_attempt_seconds",
            "Time one webhook post attempt took, by how it ended.",
            ["outcome"],
            buckets=WEBHOOK_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(ServerCollector(server, self.calls, self.http))
        ProcessCollector(registry=self.registry)  # process_*: reads /proc, empty elsewhere
        server.journal.on_call_started.append(self.calls.call_started)
        server.journal.on_call_ended.append(self.calls.call_ended)
        server.webhooks.metrics.on_attempt.append(self._webhook_attempt)

    def _webhook_attempt(self, record: DeliveryRecord) -> None:
        self.webhook_attempts.labels(record.outcome).observe(record.duration_ms / 1000)

    def render(self) -> bytes:
        """The whole scrape."""
        return generate_latest(self.registry)
