"""The running server: configuration in, SIP endpoint, media, storage and runs wired up.

:class:`Server` builds each part from the validated config. :meth:`start`
opens the store, repairs what a crash left behind (call records and runs
still marked live become ``interrupted``; partial recordings are repaired),
synchronises the scenarios, loads the routing table, and starts the SIP
listeners. Every routed call runs the ``inbound-call`` branch of its
scenario; the :class:`~mediaserver.journal.CallJournal` records calls and
runs and sends the webhooks, off the call path.

Shutdown is graceful (SPEC section 1): new calls are refused with 503, live
calls may finish for up to the drain time, then the rest are hung up with
BYE; the journal and webhook queues are drained before the store closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass

from mediaserver.actions.runner import Run, RunOutcome
from mediaserver.api.webhooks import (
    DeliveryRecord,
    WebhookDispatcher,
    WebhookSubscription,
    targets_from_config,
)
from mediaserver.calls import Call
from mediaserver.config import Config, ListenAddress
from mediaserver.journal import CallJournal
from mediaserver.library import Router, ScenarioLibrary
from mediaserver.log import get_logger
from mediaserver.media.clock import MediaClock
from mediaserver.media.ports import PortAllocator
from mediaserver.media.prompts import Prompts
from mediaserver.media.recorder import repair_recordings
from mediaserver.media.tts import SpeechSynthesizer
from mediaserver.sip.transport import SipEndpoint
from mediaserver.sip.ua import MediaSettings, UserAgent
from mediaserver.store import Store
from mediaserver.yamlsource import Mark, Problem, ProblemsError

log = get_logger("server")

INBOUND_BRANCH = "inbound-call"


@dataclass(frozen=True)
class Listening:
    sip: list[ListenAddress]
    rtp: tuple[int, int]

    def __str__(self) -> str:
        sip = ",".join(str(address) for address in self.sip)
        return f"listening sip={sip} rtp={self.rtp[0]}-{self.rtp[1]}"


class Server:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.library = ScenarioLibrary(config.scenarios_dir)
        problems = self.library.load_files()
        for target in sorted(set(config.routes.values())):
            scenario = self.library.get(target)
            if scenario is not None and INBOUND_BRANCH not in scenario.branches:
                problems.append(
                    Problem(
                        str(scenario.file),
                        Mark(1, 1),
                        f"scenario {target!r} is routed to but has no {INBOUND_BRANCH} branch",
                    )
                )
        if problems:
            raise ProblemsError(problems)
        self.router = Router(config.routes)
        self.store: Store | None = None
        self.webhook_targets: list[WebhookSubscription] = list(targets_from_config(config.webhooks))
        self.webhooks = WebhookDispatcher(self._subscriptions, on_delivery=self._delivered)
        self.journal = CallJournal(None, self.webhooks)
        self.clock = MediaClock()
        self.ports = PortAllocator(config.rtp.port_min, config.rtp.port_max)
        cache = config.storage_path(config.storage.cache)
        self.prompts = Prompts(SpeechSynthesizer(cache / "tts"), config.scenarios_dir)
        self.endpoint = SipEndpoint(config.sip.listen)
        self.ua = UserAgent(
            self.endpoint,
            router=self.router,
            serve_call=self.serve_call,
            media=MediaSettings(
                config.rtp.codecs,
                config.sip.listen[0].host,
                config.sip.public_address,
                config.sip.trusted_networks,
            ),
            ports=self.ports,
            clock=self.clock,
            user_agent=config.sip.user_agent,
            journal=self.journal,
        )

    # -- start and stop --------------------------------------------------------------

    async def start(self) -> Listening:
        config = self.config
        database = config.storage_path(config.storage.database)
        database.parent.mkdir(parents=True, exist_ok=True)
        self.store = store = await Store.open(database)
        recovery = await store.mark_interrupted_calls()
        if recovery.calls or recovery.runs or recovery.recordings:
            log.warning(
                "recovered from an unclean stop",
                interrupted_calls=recovery.calls,
                interrupted_runs=recovery.runs,
                interrupted_recordings=recovery.recordings,
            )
        recordings = config.storage_path(config.storage.recordings)
        recordings.mkdir(parents=True, exist_ok=True)
        for report in await asyncio.get_running_loop().run_in_executor(
            None, repair_recordings, recordings
        ):
            log.warning("recording repaired at start-up", report=str(report))
        await self.library.sync(store)
        await self.router.load(store)
        self.webhook_targets = [
            *targets_from_config(config.webhooks),
            *await store.webhooks.enabled(),
        ]
        self.journal.store = store
        self.journal.start()
        self.webhooks.start()
        bound = await self.endpoint.start()
        return Listening(bound, (config.rtp.port_min, config.rtp.port_max))

    async def shutdown(self, drain: float, force: asyncio.Event | None = None) -> None:
        """Refuse new calls, let live ones finish for up to ``drain`` seconds
        (or until ``force`` is set), then hang up the rest and close."""
        self.ua.draining = True
        deadline = time.monotonic() + drain
        live = len(self.ua.active_calls)
        if live:
            log.info("draining", live_calls=live, drain_seconds=drain)
        while self.ua.active_calls and time.monotonic() < deadline:
            if force is not None and force.is_set():
                break
            await asyncio.sleep(0.2)
        if self.ua.active_calls:
            log.info("hanging up remaining calls", count=len(self.ua.active_calls))
            await self.ua.hangup_all("normal_clearing")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.ua.wait_idle(), 10.0)
        self.clock.stop()
        await self.endpoint.close()
        await self.journal.stop()
        await self.webhooks.stop(drain_timeout=5.0)
        if self.store is not None:
            await self.store.close()
        log.info("stopped")

    # -- calls -------------------------------------------------------------------------

    async def serve_call(self, call: Call) -> None:
        """Run the ``inbound-call`` branch of the call's scenario."""
        name = call.scenario or ""
        scenario = self.library.get(name)
        if scenario is None:  # removed through the API since routing picked it
            call.end("not_found", "server")
            call.finish()
            return
        scenario_id = self.library.store_id(name)
        run_id = f"{INBOUND_BRANCH}:{call.id}"
        self.journal.run_started(run_id, scenario_id, INBOUND_BRANCH, {})
        self.journal.call_started(call, number=call.to_user, scenario_id=scenario_id, run_id=run_id)

        async def run(call: Call) -> RunOutcome:
            return await Run(
                scenario, INBOUND_BRANCH, call=call, prompts=self.prompts, run_id=run_id
            ).execute()

        try:
            await call.serve(run)
        finally:
            self.journal.run_ended(run_id, call.outcome)

    # -- webhooks ------------------------------------------------------------------------

    def _subscriptions(self) -> Iterable[WebhookSubscription]:
        return self.webhook_targets

    async def _delivered(self, record: DeliveryRecord) -> None:
        if self.store is not None:
            await self.store.deliveries.append(record)
