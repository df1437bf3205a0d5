"""A headless baresip (1.0.0) softphone for tests, driven over ``ctrl_tcp``.

    with Baresip(input_wav=tone_wav) as phone:             # or: async with
        phone.dial("sip:echo@127.0.0.1:5060")
        phone.wait_established(timeout=5)
        phone.send_dtmf("123#")
        time.sleep(2)                                       # the call runs
        phone.hangup()
        phone.wait_closed()
        heard, rate = phone.recorded_audio()                # what it heard

Each instance writes its own config folder (``config``, ``accounts``,
``contacts``) and runs ``baresip -f <folder>`` with:

- SIP on 127.0.0.1 (UDP and TCP) on a port picked at run time, RTP on a
  picked range; ``net_interface 127.0.0.1`` so the SDP says 127.0.0.1;
- codecs PCMU/PCMA (module ``g711``), and G.722 or Opus when ``codecs``
  names them (modules ``g722``, ``opus``), telephone-event always offered;
- the microphone is the ``aufile`` source playing ``input_wav`` converted to
  ``input_rate`` (8 kHz unless told: 16 or 48 kHz carry a wideband tone)
  16-bit, mono (stereo for Opus, which baresip runs at 48000 Hz 2 channels:
  its ``aufile`` wants the codec's own rate and channels) and padded with
  silence to ``max_call_s`` (silence only when no input is given). When the
  file ends baresip hangs up the call ("end of file"), so ``max_call_s`` bounds every call;
- what it hears and what it sends are written by the ``sndfile`` filter to
  ``<workdir>/recordings/dump-<time>-dec.wav`` (heard) and ``-enc.wav``
  (sent), 8 kHz mono 16-bit, one pair per call, written as the call runs;
- the speaker is an ``aubridge`` device nothing reads (baresip 1.0.0 has no
  file player: ``aufile`` is a source only);
- no ``stdio`` UI (there is no tty): commands and events go through
  ``ctrl_tcp`` on 127.0.0.1 (netstring-framed JSON).

The command methods (:meth:`dial`, :meth:`hangup`, :meth:`send_dtmf`, ...)
return as soon as baresip has taken the command (a few ms) and are safe to
call from async tests. Waiting for events has a blocking form
(:meth:`wait_event`) and an async one (:meth:`wait_event_async`), so a test
can run the server on the same event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from tests.support import audio
from tests.support.net import HOST, free_port, free_port_block
from tests.support.peer import PeerProcess

MODULE_PATH = Path("/usr/lib/baresip/modules")
# baresip names a codec by its audio rate and channels ("G722" alone means G722/8000/1)
_BARESIP_CODECS = {"G722": "G722/16000/1", "opus": "opus/48000/2"}

Event = dict[str, Any]
EventTypes = str | Iterable[str]


class BaresipError(RuntimeError):
    """baresip refused a command, died, or an awaited event did not come."""


def _types(types: EventTypes) -> frozenset[str]:
    return frozenset([types] if isinstance(types, str) else types)


def _netstring(payload: bytes) -> bytes:
    return str(len(payload)).encode() + b":" + payload + b","


class Baresip(PeerProcess):
    """One baresip process with its own config, ports and recordings.

    Parameters:
        user: user part of the account (``sip:user@...``).
        input_wav: what the phone "says" (any format sox reads); None: silence.
        max_call_s: the input is padded with silence to this length; baresip
            hangs up when it runs out ("end of file").
        auto_answer: answer incoming calls at once (``answermode=auto``);
            otherwise incoming calls ring until :meth:`accept`.
        codecs: audio codecs offered/accepted, in order (``PCMU``, ``PCMA``).
        media_encryption: the account's ``mediaenc``: ``srtp`` (SDES when the
            other end takes it), ``srtp-mand`` (RTP/SAVP, SDES or no call),
            ``dtls_srtp``.
        registrar: ``host:port`` to REGISTER with (the account's domain);
            None: a local account that does not register.
        password / auth_user: digest credentials for the registrar/proxy.
        regint: registration interval (s) when ``registrar`` is given.
        transport: SIP transport of the account (``udp``, ``tcp`` or ``tls``; for
            ``tls`` give ``sip_cafile`` in ``extra_config``).
        workdir: folder for config, log and recordings (kept); None: a
            temporary folder removed when the phone is closed.
        extra_config: more ``config`` lines (key -> value), override ours.
        start_timeout: how long to wait for ctrl_tcp to accept connections.
        lifetime_s: baresip quits by itself after this long (``-t``), a safety
            net should the test process die without cleaning up.
    """

    def __init__(
        self,
        *,
        user: str = "tester",
        input_wav: str | Path | None = None,
        max_call_s: float = 60.0,
        auto_answer: bool = False,
        codecs: Sequence[str] = ("PCMU", "PCMA"),
        registrar: str | None = None,
        password: str | None = None,
        auth_user: str | None = None,
        regint: int = 60,
        transport: Literal["udp", "tcp", "tls"] = "udp",
        display_name: str | None = None,
        workdir: str | Path | None = None,
        extra_config: Mapping[str, str] | None = None,
        start_timeout: float = 5.0,
        lifetime_s: int = 900,
        media_encryption: Literal["srtp", "srtp-mand", "dtls_srtp"] | None = None,
        input_rate: int = 8000,
    ) -> None:
        self.user = user
        self.input_wav = Path(input_wav) if input_wav is not None else None
        self.max_call_s = max_call_s
        self.auto_answer = auto_answer
        self.codecs = tuple(codecs)
        self.registrar = registrar
        self.password = password
        self.auth_user = auth_user
        self.regint = regint
        self.transport = transport
        self.display_name = display_name
        self.extra_config = dict(extra_config or {})
        self.start_timeout = start_timeout
        self.lifetime_s = lifetime_s
        self.media_encryption = media_encryption
        self.input_rate = input_rate

        self._given_workdir = Path(workdir) if workdir is not None else None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.workdir = Path()
        self.sip_port = 0
        self.ctrl_port = 0
        self.rtp_ports = (0, 0)

        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._cond = threading.Condition()
        self._events: list[Event] = []
        self._taken: set[int] = set()
        self._responses: dict[str, Event] = {}
        self._next_token = 0
        self._eof = False
        # Index of the first event after the latest dial/accept: the call
        # helpers (wait_established, wait_closed) look no further back.
        self._mark = 0

    # ---------------------------------------------------------------- paths

    @property
    def config_dir(self) -> Path:
        return self.workdir / "config"

    @property
    def recordings_dir(self) -> Path:
        return self.workdir / "recordings"

    @property
    def log_path(self) -> Path:
        return self.workdir / "baresip.log"

    @property
    def source_wav(self) -> Path:
        """The file the ``aufile`` microphone plays (converted and padded input)."""
        return self.workdir / "input.wav"

    @property
    def aor(self) -> str:
        """The account's address of record."""
        domain = self.registrar or f"{HOST}:{self.sip_port}"
        return f"sip:{self.user}@{domain}"

    @property
    def sip_uri(self) -> str:
        """Where to reach this phone directly (no registration needed)."""
        suffix = "" if self.transport == "udp" else f";transport={self.transport}"
        return f"sip:{self.user}@{HOST}:{self.sip_port}{suffix}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # ---------------------------------------------------------------- set-up

    def _config_text(self) -> str:
        player = f"aubridge,speaker-{self.sip_port}"
        lines: dict[str, str] = {
            "poll_method": "epoll",
            "sip_listen": f"{HOST}:{self.sip_port}",
            # Without it the SDP carries the address of eth0, not 127.0.0.1.
            "net_interface": HOST,
            "call_local_timeout": "120",
            "call_max_calls": "4",
            "audio_player": player,
            "audio_source": f"aufile,{self.source_wav}",
            "audio_alert": player,
            "audio_level": "no",
            "ausrc_format": "s16",
            "auplay_format": "s16",
            "auenc_format": "s16",
            "audec_format": "s16",
            "audio_buffer": "20-160",
            "rtp_ports": f"{self.rtp_ports[0]}-{self.rtp_ports[1]}",
            "rtcp_mux": "no",
            # 1 frame minimum: with the default 5 the last 100 ms of a call
            # stay in the jitter buffer and never reach the recording.
            "jitter_buffer_delay": "1-10",
            "rtp_stats": "no",
            "module_path": str(MODULE_PATH),
            "ctrl_tcp_listen": f"{HOST}:{self.ctrl_port}",
            "snd_path": str(self.recordings_dir),
            "ringback_disabled": "yes",
        }
        lines.update(self.extra_config)
        modules = [
            ("module", "g711.so"),
            *[
                ("module", f"{name.lower()}.so")
                for name in self.codecs
                if name.lower() in ("g722", "opus")
            ],
            ("module", "sndfile.so"),
            ("module", "aufile.so"),
            ("module", "aubridge.so"),
            *([("module", "srtp.so")] if self.media_encryption in ("srtp", "srtp-mand") else []),
            *([("module", "dtls_srtp.so")] if self.media_encryption == "dtls_srtp" else []),
            ("module_tmp", "account.so"),
            ("module_app", "menu.so"),
            ("module_app", "ctrl_tcp.so"),
        ]
        text = [f"{k}\t{v}" for k, v in lines.items()]
        text += [f"{k}\t{v}" for k, v in modules]
        return "# written by tests/support/baresip.py\n" + "\n".join(text) + "\n"

    def _account_line(self) -> str:
        uri_params = "" if self.transport == "udp" else f";transport={self.transport}"
        params = [
            f"answermode={'auto' if self.auto_answer else 'manual'}",
            f"audio_codecs={','.join(_BARESIP_CODECS.get(c, c) for c in self.codecs)}",
            "ptime=20",
        ]
        if self.media_encryption is not None:
            params.append(f"mediaenc={self.media_encryption}")
        if self.registrar:
            params.append(f"regint={self.regint}")
        else:
            params.append("regint=0")
        if self.password is not None:
            params.append(f"auth_pass={self.password}")
        if self.auth_user is not None:
            params.append(f"auth_user={self.auth_user}")
        name = f'"{self.display_name}" ' if self.display_name else ""
        return f"{name}<{self.aor}{uri_params}>;" + ";".join(params) + "\n"

    def _prepare(self) -> None:
        if self._given_workdir is not None:
            self.workdir = self._given_workdir
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="baresip-")
            self.workdir = Path(self._tmp.name)
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.recordings_dir.mkdir(parents=True, exist_ok=True)
        self.sip_port = free_port("both")
        self.ctrl_port = free_port("tcp")
        base = free_port_block(20, "udp", even=True)
        self.rtp_ports = (base, base + 19)
        if self.input_wav is None:
            audio.make_silence_wav(self.source_wav, self.max_call_s, self.input_rate)
        else:
            audio.pad_wav(self.input_wav, self.source_wav, self.max_call_s, self.input_rate)
        if "opus" in self.codecs:
            mono, rate = audio.read_mono(self.source_wav)
            audio.write_wav(self.source_wav, np.stack([mono, mono], axis=1), rate)
        (self.config_dir / "config").write_text(self._config_text())
        # A registering account is created through ctrl_tcp once we listen
        # to events (see _connect): REGISTER_OK would otherwise come too early.
        accounts = "" if self.registrar else self._account_line()
        (self.config_dir / "accounts").write_text(accounts)
        (self.config_dir / "contacts").write_text("")

    def start(self) -> Baresip:
        """Write the config, start baresip and connect to ctrl_tcp."""
        if shutil.which("baresip") is None:
            raise BaresipError("baresip is not installed (Debian package baresip; ./scripts/setup)")
        try:
            self._prepare()
            with self.log_path.open("wb") as log:
                self._proc = subprocess.Popen(
                    # -t: quit by itself even if this process dies without cleanup.
                    ["baresip", "-f", str(self.config_dir), "-t", str(self.lifetime_s)],
                    cwd=self.workdir,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self._connect()
        except BaseException:
            self.close()
            raise
        return self

    def _connect(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                raise BaresipError(
                    f"baresip exited at start (code {self._proc.returncode}):\n{self.log()[-3000:]}"
                )
            try:
                sock = socket.create_connection((HOST, self.ctrl_port), timeout=0.5)
                break
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise BaresipError(
                        f"ctrl_tcp not listening on {HOST}:{self.ctrl_port} after"
                        f" {self.start_timeout} s: {exc}\n{self.log()[-3000:]}"
                    ) from exc
                time.sleep(0.05)
        sock.settimeout(None)
        self._sock = sock
        self._reader = threading.Thread(target=self._read_loop, name="baresip-ctrl", daemon=True)
        self._reader.start()
        if self.registrar:
            self.command("uanew", self._account_line().strip())

    def _read_loop(self) -> None:
        sock = self._sock
        assert sock is not None
        buf = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
                while True:
                    head, sep, rest = buf.partition(b":")
                    if not sep:
                        break
                    size = int(head)
                    if len(rest) < size + 1:
                        break
                    self._dispatch(json.loads(rest[:size]))
                    buf = rest[size + 1 :]
        except (OSError, ValueError):
            pass
        finally:
            with self._cond:
                self._eof = True
                self._cond.notify_all()

    def _dispatch(self, message: Event) -> None:
        with self._cond:
            if message.get("event"):
                message["received_at"] = time.monotonic()
                self._events.append(message)
            elif message.get("response"):
                self._responses[str(message.get("token", ""))] = message
            self._cond.notify_all()

    # ---------------------------------------------------------------- tear-down

    def close(self) -> None:
        """Quit baresip (kill it if it does not), and remove the temporary folder."""
        proc = self._proc
        try:
            if proc is not None and proc.poll() is None and self._sock is not None:
                with contextlib.suppress(BaresipError, OSError):
                    self.command("quit", timeout=2.0)
                # A quit waits for un-REGISTER answers; a gone registrar would
                # keep it for 32 s (RFC 3261 Timer F), so do not wait long.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=1.5)
        finally:
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=0.5)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            if self._sock is not None:
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_RDWR)
                self._sock.close()
                self._sock = None
            if self._reader is not None:
                self._reader.join(timeout=2.0)
                self._reader = None
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None

    # ---------------------------------------------------------------- commands

    def command(self, name: str, params: str | None = None, *, timeout: float = 5.0) -> str:
        """Run a baresip command (``dial``, ``hangup``, ``sndcode``, ...); return its text.

        Raises BaresipError when baresip answers ``ok: false`` or not at all.
        """
        if self._sock is None:
            raise BaresipError("baresip is not started")
        with self._cond:
            self._next_token += 1
            token = str(self._next_token)
        message: dict[str, str] = {"command": name, "token": token}
        if params is not None:
            message["params"] = params
        self._sock.sendall(_netstring(json.dumps(message).encode()))
        deadline = time.monotonic() + timeout
        with self._cond:
            while token not in self._responses:
                left = deadline - time.monotonic()
                if self._eof or left <= 0:
                    raise BaresipError(
                        f"no answer to {name!r} ({'connection closed' if self._eof else 'timeout'})"
                        f"\n{self.log()[-2000:]}"
                    )
                self._cond.wait(left)
            response = self._responses.pop(token)
        if not response.get("ok"):
            raise BaresipError(f"baresip refused {name} {params or ''}: {response.get('data')}")
        return str(response.get("data", ""))

    def _set_mark(self) -> None:
        with self._cond:
            self._mark = len(self._events)

    def dial(self, uri: str) -> None:
        """Place a call. Follow it with :meth:`wait_established`."""
        self._set_mark()
        self.command("dial", uri)

    def accept(self) -> None:
        """Answer the ringing incoming call (when not ``auto_answer``)."""
        self._set_mark()
        self.command("accept")

    def hangup(self) -> None:
        """Hang up the current call (no error when there is none)."""
        self.command("hangup")

    def send_dtmf(self, digits: str) -> None:
        """Send RFC 4733 telephone-events for ``digits`` (0-9 * # A-D) in the current call.

        baresip queues them: each lasts about 180 ms then 3 end packets, the
        next follows at once, so "123#" takes about 1 s to go out.
        """
        bad = [d for d in digits if d.upper() not in audio.DTMF_FREQS]
        if bad:
            raise ValueError(f"not DTMF keys: {bad}")
        self.command("sndcode", digits)

    def list_calls(self) -> str:
        return self.command("listcalls")

    # ---------------------------------------------------------------- events

    @property
    def events(self) -> list[Event]:
        """Every event received so far, oldest first."""
        with self._cond:
            return list(self._events)

    def event_types(self) -> list[str]:
        return [str(e.get("type")) for e in self.events]

    def _take(
        self, wanted: frozenset[str], predicate: Callable[[Event], bool] | None, since: int
    ) -> Event | None:
        for i, event in enumerate(self._events):
            if i < since or i in self._taken or event.get("type") not in wanted:
                continue
            if predicate is not None and not predicate(event):
                continue
            self._taken.add(i)
            return event
        return None

    def _failed(self, fail_on: frozenset[str], since: int) -> Event | None:
        for i, event in enumerate(self._events):
            if i >= since and i not in self._taken and event.get("type") in fail_on:
                return event
        return None

    def wait_event(
        self,
        types: EventTypes,
        timeout: float = 10.0,
        *,
        fail_on: EventTypes = (),
        predicate: Callable[[Event], bool] | None = None,
        since: int = 0,
    ) -> Event:
        """The oldest event of one of ``types`` not returned before; waits for it.

        Each event is returned once, so two calls to ``wait_event("CALL_CLOSED")``
        wait for two calls to close. Raises BaresipError on timeout, or as soon
        as an untaken event of a ``fail_on`` type arrives (e.g. CALL_CLOSED while
        waiting for CALL_ESTABLISHED). Only events from index ``since`` of
        :attr:`events` on are considered.
        """
        wanted, failing = _types(types), _types(fail_on)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = self._take(wanted, predicate, since)
                if found is not None:
                    return found
                bad = self._failed(failing, since)
                left = deadline - time.monotonic()
                if bad is not None or left <= 0 or self._eof:
                    raise BaresipError(self._wait_error(wanted, timeout, bad))
                self._cond.wait(min(left, 0.5))

    async def wait_event_async(
        self,
        types: EventTypes,
        timeout: float = 10.0,
        *,
        fail_on: EventTypes = (),
        predicate: Callable[[Event], bool] | None = None,
        since: int = 0,
    ) -> Event:
        """:meth:`wait_event` without blocking the event loop."""
        wanted, failing = _types(types), _types(fail_on)
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                found = self._take(wanted, predicate, since)
                if found is not None:
                    return found
                bad = self._failed(failing, since)
                if bad is not None or time.monotonic() > deadline or self._eof:
                    raise BaresipError(self._wait_error(wanted, timeout, bad))
            await asyncio.sleep(0.01)

    def _wait_error(self, wanted: frozenset[str], timeout: float, bad: Event | None) -> str:
        seen = ", ".join(f"{e.get('type')}({e.get('param', '')})" for e in self._events)
        if bad is not None:
            why = f"got {bad.get('type')} ({bad.get('param', '')})"
        elif self._eof:
            why = "baresip closed the control connection"
        else:
            why = f"timeout after {timeout} s"
        return f"waiting for {sorted(wanted)}: {why}\nevents so far: {seen}\n{self.log()[-2000:]}"

    def wait_established(self, timeout: float = 10.0) -> Event:
        """Wait for CALL_ESTABLISHED; fail at once on CALL_CLOSED.

        Looks only at events since the latest :meth:`dial`/:meth:`accept`, so
        an unclaimed event of an earlier call is never mistaken for this one.
        """
        return self.wait_event("CALL_ESTABLISHED", timeout, fail_on="CALL_CLOSED", since=self._mark)

    async def wait_established_async(self, timeout: float = 10.0) -> Event:
        return await self.wait_event_async(
            "CALL_ESTABLISHED", timeout, fail_on="CALL_CLOSED", since=self._mark
        )

    def wait_incoming(self, timeout: float = 10.0) -> Event:
        """Wait for CALL_INCOMING (someone calls this phone)."""
        return self.wait_event("CALL_INCOMING", timeout)

    async def wait_incoming_async(self, timeout: float = 10.0) -> Event:
        return await self.wait_event_async("CALL_INCOMING", timeout)

    def wait_closed(self, timeout: float = 10.0) -> str:
        """Wait for CALL_CLOSED (since the latest dial/accept); return its reason.

        Reasons seen with 1.0.0: "Connection reset by peer" (the other side
        sent BYE), "Connection reset by user" (we hung up), "end of file"
        (the input file ran out), "404 Not Found" and other final responses.
        """
        return str(self.wait_event("CALL_CLOSED", timeout, since=self._mark).get("param", ""))

    async def wait_closed_async(self, timeout: float = 10.0) -> str:
        event = await self.wait_event_async("CALL_CLOSED", timeout, since=self._mark)
        return str(event.get("param", ""))

    def wait_registered(self, timeout: float = 10.0) -> Event:
        """Wait for REGISTER_OK; fail at once on REGISTER_FAIL."""
        return self.wait_event("REGISTER_OK", timeout, fail_on="REGISTER_FAIL")

    async def wait_registered_async(self, timeout: float = 10.0) -> Event:
        return await self.wait_event_async("REGISTER_OK", timeout, fail_on="REGISTER_FAIL")

    def received_dtmf(self) -> str:
        """RFC 4733 digits received so far (from CALL_DTMF_START events), in order."""
        return "".join(
            str(e.get("param", "")) for e in self.events if e.get("type") == "CALL_DTMF_START"
        )

    def wait_dtmf(self, digits: str, timeout: float = 10.0) -> str:
        """Wait until the digits received so far end with ``digits``; return them all."""
        deadline = time.monotonic() + timeout
        while not self.received_dtmf().endswith(digits):
            if time.monotonic() > deadline:
                raise BaresipError(f"wanted DTMF {digits!r}, got {self.received_dtmf()!r}")
            time.sleep(0.02)
        return self.received_dtmf()

    async def wait_dtmf_async(self, digits: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while not self.received_dtmf().endswith(digits):
            if time.monotonic() > deadline:
                raise BaresipError(f"wanted DTMF {digits!r}, got {self.received_dtmf()!r}")
            await asyncio.sleep(0.02)
        return self.received_dtmf()

    # ---------------------------------------------------------------- audio

    def _dumps(self, suffix: str) -> list[Path]:
        return sorted(
            self.recordings_dir.glob(f"dump-*-{suffix}.wav"), key=lambda p: p.stat().st_mtime_ns
        )

    def recordings(self) -> list[Path]:
        """What the phone heard, one WAV per call, oldest first."""
        return self._dumps("dec")

    @property
    def recorded_wav(self) -> Path:
        """What the phone heard in the latest call (8 kHz mono 16-bit WAV)."""
        found = self._dumps("dec")
        if not found:
            raise BaresipError(f"no recording in {self.recordings_dir} (no call had audio?)")
        return found[-1]

    @property
    def sent_wav(self) -> Path:
        """What the phone sent in the latest call."""
        found = self._dumps("enc")
        if not found:
            raise BaresipError(f"no recording in {self.recordings_dir} (no call had audio?)")
        return found[-1]

    def recorded_audio(self) -> tuple[audio.Samples, int]:
        """Samples and rate of :attr:`recorded_wav`; fine while the call still runs."""
        return audio.read_mono(self.recorded_wav)

    def log(self) -> str:
        """baresip's console output so far, without its once-a-second status lines."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        # The status line ("[0:00:03] audio=0/0 (bit/s)") is redrawn with CR.
        lines = text.replace("\r", "\n").splitlines()
        return "\n".join(line for line in lines if line.strip() and "(bit/s)" not in line)
