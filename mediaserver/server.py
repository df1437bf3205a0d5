"""The running server: the composition root, and its start, reload and stop.

:class:`Server` builds each part from the validated config and wires them
together; what the parts do lives in them. The scenario catalog
(:mod:`mediaserver.catalog`) keeps the library, the router and the store in
step; the runs service (:mod:`mediaserver.runs`) starts, cancels and injects
runs, and serves the calls the user agent routes; the API reaches both
through the protocols of :mod:`mediaserver.api.deps`.

:meth:`start` opens the store, repairs what a crash left behind (call records
and runs still marked live become ``interrupted``; partial recordings are
repaired), opens the catalog, and starts the SIP listeners, the trunks and
the HTTP API. The :class:`~mediaserver.journal.CallJournal` records calls and
runs and sends the webhooks, off the call path. Call Control applications
(:mod:`mediaserver.callcontrol.applications`) are loaded into memory once the
store is open, and Call Control webhooks are signed with the key pair of
:mod:`mediaserver.callcontrol.keys`, made on the first start; each of their
attempts is logged for ``GET /telnyx/v2/call_events``.

SIGHUP reloads the scenario files, routes, users and webhooks
(:meth:`reload`, :mod:`mediaserver.reload`): all or nothing, and live calls
keep the scenario they started with.

Shutdown is graceful (SPEC section 1): new calls are refused with 503, live
calls may finish for up to the drain time, then the rest are hung up with
BYE; the journal and webhook queues are drained before the store closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from mediaserver.api.http import HttpListener
from mediaserver.audio_files import AudioFiles
from mediaserver.audio_phone import RecordingLine
from mediaserver.callcontrol.applications import CallControlApplications, application_of
from mediaserver.callcontrol.conferences import ConferenceService
from mediaserver.callcontrol.controlled import Webhook
from mediaserver.callcontrol.keys import KeyFileError, signing_key
from mediaserver.callcontrol.queueing import QueueService
from mediaserver.callcontrol.service import Application, CallControl
from mediaserver.calls import Call
from mediaserver.calls.conferences import Conferences
from mediaserver.calls.dialer import Dialer
from mediaserver.calls.live import LiveCalls, MediaSettings, RtpLegs
from mediaserver.calls.media import flush_recordings
from mediaserver.calls.queues import CallQueues
from mediaserver.calls.services import CallServices
from mediaserver.calls.srtp_policy import SrtpPolicy
from mediaserver.calls.switch import CallSwitch
from mediaserver.catalog import Catalog
from mediaserver.config import Config, ListenAddress
from mediaserver.journal import CallJournal
from mediaserver.library import Router, ScenarioLibrary
from mediaserver.log import get_logger
from mediaserver.mail import Mailer
from mediaserver.media.clock import MediaClock
from mediaserver.media.codecs import CODECS
from mediaserver.media.mp3 import Mp3Renditions
from mediaserver.media.ports import PortAllocator
from mediaserver.media.prompts import Prompts
from mediaserver.media.relay_workers import RelayWorkers
from mediaserver.media.tts import SpeechSynthesizer
from mediaserver.media.wide_audio import COMPANIONS
from mediaserver.numbers import NumberDirectory
from mediaserver.recovery import recover
from mediaserver.reload import ReloadChanges, compare
from mediaserver.runs import Runs
from mediaserver.server_api import ServerActions
from mediaserver.shared_bindings import SharedBindings
from mediaserver.shared_state import Rereader, follow
from mediaserver.sip.access import AccessPolicy
from mediaserver.sip.timers import TimerConfig
from mediaserver.sip.tls import TlsConfigError, file_fingerprint, listener_context
from mediaserver.sip.transport import ListenError, SipEndpoint
from mediaserver.sip.trunks import Trunks
from mediaserver.sip.ua import UserAgent
from mediaserver.sms.service import SmsService
from mediaserver.store import Store, StoreError
from mediaserver.tasks import Tasks
from mediaserver.webhooks.delivery import WebhookDispatcher
from mediaserver.webhooks.outbox import DeliveryClaims
from mediaserver.webhooks.targets import WebhookTargets
from mediaserver.webrtc.gateway import WebRtcGateway

log = get_logger("server")


class StartError(OSError):
    """The server cannot start; the message says why and what to change."""


def listen_problem(what: str, address: str, flag: str, setting: str, exc: OSError) -> str:
    """Why ``address`` could not be bound, and the fix; a port taken is the common case."""
    if exc.errno == errno.EADDRINUSE:
        return (
            f"{what} port {address} is in use (another server running?);"
            f" choose another with {flag} N"
        )
    if exc.errno == errno.EACCES:
        return (
            f"{what} port {address} needs privileges (a port below 1024);"
            f" choose another with {flag} N"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{what} address {address} is not one of this machine's; change {setting}"
    return f"cannot listen for {what} on {address}: {exc.strerror or exc}; check {setting}"


@dataclass(frozen=True)
class Listening:
    sip: list[ListenAddress]
    rtp: tuple[int, int]
    http: str | None = None  # HOST:PORT of the HTTP API as bound

    def __str__(self) -> str:
        sip = ",".join(str(address) for address in self.sip)
        http = f" http={self.http}" if self.http else ""
        return f"listening sip={sip}{http} rtp={self.rtp[0]}-{self.rtp[1]}"


class Server:
    def __init__(self, config: Config, *, timers: TimerConfig | None = None) -> None:
        """``timers``: the SIP timers (RFC 3261 defaults when None; tests shorten them)."""
        self.config = config
        self.library = ScenarioLibrary(config.scenarios_dir)
        self.router = Router(config.routes)
        # Scenarios and numbers, kept in step in the library, the router and the store.
        self.catalog = Catalog(self.library, self.router, lambda: self.store)
        self.catalog.load_files()
        # Call Control applications, read by calls from memory, changed through the API.
        self.call_control_apps = CallControlApplications(lambda: self.store)
        self._reloading = asyncio.Lock()
        self.store: Store | None = None
        self._followers: list[Rereader] = []  # re-read what other nodes change
        self.http: HttpListener | None = None
        # Where webhooks go (config and store), read by the dispatcher at each publish.
        self.webhook_targets = WebhookTargets(
            config.webhooks, lambda: self.store, self.call_control_apps.name_of
        )
        self.webhooks = WebhookDispatcher(
            self.webhook_targets.subscriptions, on_delivery=self.webhook_targets.record_delivery
        )
        self.delivery_claims: DeliveryClaims | None = None  # once the store is open
        self.journal = CallJournal(None, self.webhooks)
        # API work done in the background (exports, bulk changes), v2.task.updated on each step.
        self.tasks = Tasks(self.webhooks.publish)
        self.mp3 = Mp3Renditions()  # recordings' MP3, encoded on first request
        # The numbers answered (routes and attachments) and their v2.number.* webhooks.
        self.numbers = NumberDirectory(self.router, self.library, lambda: self.store, self.webhooks)
        self.catalog.number_listeners.append(self.numbers.changed)
        self.events = self.journal.events  # the live event stream (GET /api/events)
        self.clock = MediaClock()
        self.ports = PortAllocator(config.rtp.port_min, config.rtp.port_max)
        self.relay_workers = RelayWorkers(config.rtp.relay_workers)  # pure bridges' processes
        cache = config.storage_path(config.storage.cache)
        self.prompts = Prompts(SpeechSynthesizer(cache / "tts"), config.scenarios_dir)
        # G.722 or Opus offered: prompts get 16 kHz versions for those legs (wide_audio.py).
        COMPANIONS.enabled = any(CODECS[name].wideband for name in config.rtp.codecs)
        # Uploaded audio files (/api/audio-files), played as audio-file:SID.
        self.audio_files = AudioFiles(
            lambda: self.store, config.storage_path(config.storage.audio_files), self.webhooks
        )
        self.prompts.audio_files = self.audio_files
        # Codes to record an audio file by calling an audio-recorder route (audio_phone.py).
        self.recording_line = RecordingLine(self.audio_files, lambda: self.router.routes)
        self.runs = Runs(self.library, self.journal, self.prompts)
        self.endpoint = SipEndpoint(config.sip.listen, timers=timers)
        self.access = AccessPolicy(
            trusted_networks=config.sip.trusted_networks,
            users={user.username: user.password for user in config.users},
            realm=config.sip.realm,
            algorithms=config.sip.digest_algorithms,
        )
        self.trunks = Trunks(
            config.trunks,
            endpoint=self.endpoint,
            access=self.access,
            public_address=config.sip.public_address,
            user_agent=config.sip.user_agent,
        )
        self.conferences = Conferences()  # the live rooms and queues calls join by name
        self.queues = CallQueues()
        # Whether media is SRTP, per trunk and user (their modes change on reload).
        self.srtp = SrtpPolicy(config.rtp.srtp, config.trunks, config.users)
        media = MediaSettings(
            config.rtp.codecs,
            config.sip.listen[0].host,
            config.sip.public_address,
            config.sip.trusted_networks,
            self.srtp,
        )
        services = CallServices(
            recordings_dir=config.storage_path(config.storage.recordings),
            journal=self.journal,
            jitter_buffer_ms=config.rtp.jitter_buffer_ms,
            learn_source=config.rtp.learn_source,
            conferences=self.conferences,
            queues=self.queues,
        )
        # sip/ is the bottom layer: the call switch attaches itself to the user agent,
        # and the dialer is handed to whoever places calls.
        self.ua: UserAgent[Call] = UserAgent(
            self.endpoint, access=self.access, user_agent=config.sip.user_agent,
            limits=config.limits,
        )  # fmt: skip
        live = LiveCalls(RtpLegs(media, self.ports, self.clock, services, self.relay_workers))
        self.dialer = Dialer(
            self.endpoint,
            live=live,
            media=media,
            access=self.access,
            registrar=self.ua.registrar,
            trunks=self.trunks.by_name,
            user_agent=config.sip.user_agent,
            journal=self.journal,
            services=services,
        )
        self.switch = CallSwitch(
            self.ua,
            live=live,
            dialer=self.dialer,
            router=self.router,
            serve_call=self.runs.serve_call,
            media=media,
            user_agent=config.sip.user_agent,
            journal=self.journal,
            services=services,
            serve_message=self._message_in,
        )
        # Browser calls (WebRTC) come in beside SIP's, through the same switch.
        self.webrtc = WebRtcGateway(self.switch)
        # SMS as SIP MESSAGE: sent through the dialer, stored, told to the webhooks.
        self.sms = SmsService(lambda: self.store, self.dialer, self.webhooks)
        self.actions = ServerActions(
            self.dialer, self.webhooks, config.sip.user_agent,
            start_call=self.runs.start_scenario_call,
            mailer=Mailer(config.smtp) if config.smtp is not None else None,
            router=self.router,
            recording_line=self.recording_line,
        )  # fmt: skip
        self.runs.connect(self.switch, self.dialer, self.actions)
        # Users registered on another node sharing the database are dialed from here too.
        self.bindings = SharedBindings(lambda: self.store)
        self.ua.on_bindings = self.bindings.changed
        self.dialer.bindings_elsewhere = self.bindings.elsewhere
        # Call Control (SPEC section 5): calls driven by REST commands, events posted.
        self.call_control = CallControl(
            self._post_call_control,
            self.runs,
            applications=self._application,
            dialer=self.dialer,
            events=self.events.publish,
        )
        self.runs.park_with(self.call_control)
        self.call_control_queues = QueueService(self.call_control, self.queues)
        self.call_control_conferences = ConferenceService(
            self.call_control,
            self.conferences,
            self.prompts,
            queued=lambda cc: self.call_control_queues.queued(cc.call_control_id) is not None,
        )

    def _message_in(self, scenario: str, message: dict[str, str]) -> None:
        """A MESSAGE the switch accepted: stored as an inbound SMS, then its scenario's
        inbound-sms branch runs with the SMS's sid in ``$message.sid``."""
        self.runs.serve_message(scenario, {**message, "sid": self.sms.received(message)})

    def _application(self, app_id: str) -> Application | None:
        """What a call takes from the Call Control application ``app_id`` (an inactive
        one takes no calls)."""
        app = self.call_control_apps.get(app_id)
        if app is None or not app.active:
            return None
        return application_of(app)

    def _post_call_control(
        self, webhook: Webhook, event_type: str, payload: Mapping[str, Any], subject: str
    ) -> None:
        if webhook.url is not None:
            self.webhooks.publish_to(
                webhook.url,
                event_type,
                payload,
                webhook_id=webhook.application_id,
                subject_sid=subject,
                failover_url=webhook.failover_url,
                timeout=webhook.timeout,
            )

    # -- start and stop --------------------------------------------------------------

    async def start(self) -> Listening:
        """Open the store and the listeners; on failure close what was opened (the
        database's thread alone would keep the process alive) and raise."""
        try:
            return await self._start()
        except BaseException:
            with contextlib.suppress(Exception):
                await self.shutdown(0.0)
            raise

    def _prepare_tls(self) -> None:
        """The certificate ``tls:`` listeners present (made once when none is
        configured: its fingerprint is logged for softphones to pin)."""
        sip = self.config.sip
        self.endpoint.tls_ca_file = sip.tls.ca_file
        hosts = [address.host for address in sip.listen if address.transport == "tls"]
        if not hosts:
            return
        named = [
            h
            for h in [*hosts, sip.public_address or "", "127.0.0.1"]
            if h not in ("", "0.0.0.0", "::")
        ]
        try:
            context, certificate, created = listener_context(
                sip.tls.certificate, sip.tls.key, self.config.data_dir, named
            )
        except (TlsConfigError, OSError) as exc:
            raise StartError(f"sip.tls: {exc}") from exc
        self.endpoint.tls_server = context
        shown = {"path": str(certificate), "sha256": file_fingerprint(certificate)}
        if created:
            log.warning("made a self-signed SIP TLS certificate", **shown)
        else:
            log.info("SIP TLS certificate", **shown)

    async def _start(self) -> Listening:
        config = self.config
        try:
            # Call Control webhooks are signed with it (printed on the first start).
            self.webhooks.signing_key = signing_key(config)
        except KeyFileError as exc:
            raise StartError(str(exc)) from exc
        try:
            self.store = store = await Store.open(config.database_target(), node=config.node.name)
        except StoreError as exc:  # unreachable server, refused login, newer schema...
            raise StartError(f"storage.database: {exc}") from exc
        await recover(store, config.storage_path(config.storage.recordings))
        await self.catalog.open()
        await self.bindings.start()
        await self.call_control_apps.load()
        await self.webhook_targets.refresh()
        self._followers = await follow(
            store, self.catalog.refresh, self.webhook_targets.refresh, self.call_control_apps.load
        )
        self.journal.store = store
        self.journal.start()
        # Posts kept in the database, claimed by this node; a dead node's taken over.
        self.delivery_claims = DeliveryClaims(store, self.webhooks, config.node.lease)
        self.webhooks.outbox = self.delivery_claims
        self.webhooks.start()
        self.delivery_claims.start()
        self._prepare_tls()
        await self.audio_files.resume()
        await self.sms.start()
        try:
            bound = await self.endpoint.start()
        except ListenError as exc:
            address = str(exc.address)
            raise StartError(
                listen_problem("SIP", address, "--sip-port", "sip.listen", exc)
            ) from exc
        await self.trunks.start()
        from mediaserver.api.app import create_app  # the API's routes import this module

        self.http = HttpListener(create_app(self), config.http.host, config.http.port)
        try:
            http = await self.http.start()
        except OSError as exc:
            address = self.http.address
            raise StartError(
                listen_problem("HTTP", address, "--http-port", "http.listen", exc)
            ) from exc
        return Listening(bound, (config.rtp.port_min, config.rtp.port_max), http)

    async def shutdown(self, drain: float, force: asyncio.Event | None = None) -> None:
        """Refuse new calls, let live ones finish for up to ``drain`` seconds
        (or until ``force`` is set), then hang up the rest and close."""
        self.switch.draining = True
        deadline = time.monotonic() + drain
        live = len(self.switch.active_calls)
        if live:
            log.info("draining", live_calls=live, drain_seconds=drain)
        while self.switch.active_calls and time.monotonic() < deadline:
            if force is not None and force.is_set():
                break
            await asyncio.sleep(0.2)
        if self.switch.active_calls:
            log.info("hanging up remaining calls", count=len(self.switch.active_calls))
            await self.switch.hangup_all("normal_clearing")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.switch.wait_idle(), 10.0)
        await self.sms.close()  # SMS on their way: while their answers can still arrive
        await self.trunks.stop()
        self.clock.stop()
        await self.relay_workers.close()
        await self.endpoint.close()
        self.events.close()  # event-stream clients are told, so HTTP can stop at once
        if self.http is not None:
            await self.http.stop()  # after the calls: the API served them while they drained
        await flush_recordings()  # recordings stopped by the hang-ups are finished and indexed
        await self.tasks.stop()
        await self.audio_files.stop()  # conversions cut short are resumed at the next start
        await self.journal.stop()
        await self.actions.close()
        await self.webhooks.stop(drain_timeout=5.0)
        if self.delivery_claims is not None:
            await self.delivery_claims.stop()
        await self.bindings.stop()
        for follower in self._followers:
            await follower.stop()
        if self.store is not None:
            await self.store.close()
        log.info("stopped")

    async def reload(self, new: Config) -> ReloadChanges:
        """Apply ``new``'s routes, users and webhooks and the scenario files as they are
        now: all of them, or none (ProblemsError listing every mistake). Calls already
        running keep their scenario. See :mod:`mediaserver.reload`."""
        async with self._reloading:
            assert self.store is not None, "reload before start"
            old = self.config
            # The folder the prompts resolve against is fixed at start (restart_needed).
            files = await self.catalog.prepare_reload(dict(new.routes), new.path)
            stored_webhooks = await self.store.webhooks.enabled()
            changes = compare(old, new, self.catalog.file_sources(), files.files.sources)
            # From here on no await: a call routed now sees all of the old or all of the new.
            self.catalog.apply_reload(files)
            self.numbers.routes_loaded(new.routes)
            self.access.users = {user.username: user.password for user in new.users}
            self.srtp.set_users(new.users)
            self.ua.users_changed()
            self.config = replace(old, routes=new.routes, users=new.users, webhooks=new.webhooks)
            self.webhook_targets.replace(new.webhooks, stored_webhooks)
            return changes
