"""The running server: configuration in, SIP endpoint, media and runs wired up.

:class:`Server` builds each part from the validated config, starts the SIP
listeners, and serves every routed call by running the ``inbound-call``
branch of its scenario. Shutdown is graceful (SPEC section 1): new calls are
refused with 503, live calls may finish for up to the drain time, then the
rest are hung up with BYE before the sockets close.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

from mediaserver.actions.runner import Run, RunOutcome
from mediaserver.actions.scenario import load_scenarios
from mediaserver.calls import Call
from mediaserver.config import Config, ListenAddress
from mediaserver.log import get_logger
from mediaserver.media.clock import MediaClock
from mediaserver.media.ports import PortAllocator
from mediaserver.media.prompts import Prompts
from mediaserver.media.tts import SpeechSynthesizer
from mediaserver.sip.transport import SipEndpoint
from mediaserver.sip.ua import MediaSettings, UserAgent
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
        scenarios, problems = load_scenarios(config.scenarios_dir)
        for target in set(config.routes.values()):
            scenario = scenarios.get(target)
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
        self.scenarios = scenarios
        self.clock = MediaClock()
        self.ports = PortAllocator(config.rtp.port_min, config.rtp.port_max)
        cache = config.storage_path(config.storage.cache)
        self.prompts = Prompts(SpeechSynthesizer(cache / "tts"), config.scenarios_dir)
        self.endpoint = SipEndpoint(config.sip.listen)
        rtp_host = config.sip.listen[0].host
        self.ua = UserAgent(
            self.endpoint,
            router=self.route,
            serve_call=self.serve_call,
            media=MediaSettings(
                config.rtp.codecs,
                rtp_host,
                config.sip.public_address,
                config.sip.trusted_networks,
            ),
            ports=self.ports,
            clock=self.clock,
            user_agent=config.sip.user_agent,
        )

    def route(self, called: str) -> str | None:
        """The scenario for a called user or number: exact match, else ``*``."""
        routes = self.config.routes
        return routes.get(called) or routes.get("*")

    async def serve_call(self, call: Call) -> None:
        scenario = self.scenarios[call.scenario or ""]

        async def run(call: Call) -> RunOutcome:
            return await Run(
                scenario,
                INBOUND_BRANCH,
                call=call,
                prompts=self.prompts,
                run_id=f"{INBOUND_BRANCH}:{call.id}",
            ).execute()

        await call.serve(run)

    async def start(self) -> Listening:
        bound = await self.endpoint.start()
        return Listening(bound, (self.config.rtp.port_min, self.config.rtp.port_max))

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
        log.info("stopped")
