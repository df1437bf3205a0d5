"""A headless linphonec (Linphone's console client, 5.1) for tests, driven over stdin.

    with Linphone(user="alice", registrar=server.target, password="wonderland",
                  input_wav=tone_wav) as phone:
        phone.wait_registered()
        call = phone.dial(server.uri("echo"))
        phone.wait_established(call)
        time.sleep(3)                                 # the call runs
        heard, rate = phone.recorded_audio()          # what it heard so far
        phone.hangup(call)
        assert phone.wait_ended(call) == "No error"

Each instance runs ``linphonec -c <workdir>/linphonerc`` with ``HOME`` set to
its own folder, and:

- SIP over UDP only, bound to 127.0.0.1 on a port picked at run time (TCP and
  TLS off); RTP on a picked port pair, also bound to 127.0.0.1; the network
  is assumed up (no reachability probe towards the internet);
- codecs PCMU and PCMA only (opus, speex, G729... written as disabled),
  telephone-event as linphone always offers it; no video, no echo canceller;
- no sound card: ``soundcard use files`` at start, then the "microphone" is
  ``play <input.wav>`` (``input_wav`` as 8 kHz mono 16-bit, silence when none
  is given) and what the phone hears goes to ``record <file>``, a WAV (8 kHz
  mono 16-bit for G.711) written as the call runs;
- commands are written to its stdin (``register``, ``call``, ``answer``,
  ``terminate``, DTMF digits...) and states are read from its stdout, which
  prints one line per call state change ("Call 1 with sip:... connected.").

Every wait is bounded and fails with the console output in the message;
:meth:`close` quits linphonec and kills it (its process group) if it lingers.
linphonec has no event for registration: :meth:`wait_registered` polls
``states proxies``. See tests/support/README.md for the quirks of 5.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from tests.support import audio
from tests.support.net import HOST, free_port, free_port_pair
from tests.support.peer import PeerProcess

PROMPT = "linphonec> "
# What linphonec prints when a digest challenge failed (its auth_info_requested
# callback): it then reads the next stdin line as the password.
PASSWORD_PROMPT = re.compile(r"Password for (?P<user>\S+) on (?P<realm>\S+): ")
DTMF_KEYS = frozenset("0123456789*#")
# linphonec never quits on stdin EOF (readline then spins at full CPU), so it
# runs under this shell: it is killed when the test process is gone or after
# its lifetime, like baresip's -t. Arguments: parent pid, lifetime, command.
_WATCHDOG = """\
parent=$1 lifetime=$2
shift 2
exec 3<&0
"$@" 0<&3 3<&- &
child=$!
exec 3<&-
(
  ticks=$((lifetime * 5))
  while [ "$ticks" -gt 0 ] && kill -0 "$parent" 2>/dev/null; do
    sleep 0.2
    ticks=$((ticks - 1))
  done
  kill -KILL "$child" 2>/dev/null
) </dev/null >/dev/null 2>&1 &
watcher=$!
wait "$child"
code=$?
kill "$watcher" 2>/dev/null
exit "$code"
"""
# A SIP message in liblinphone's debug log: a "message sent to [UDP://...]" or
# "received [N] new bytes from [UDP://...]:" line, the message, a blank line.
_SIP_IN_LOG = re.compile(
    r"(message sent to|new bytes from) \[[^\]]*\][^\n]*\n(.*?)\n\n(?=\d{4}-\d\d-\d\d |\Z)", re.S
)
# The recording's rate: that of the codec, and only G.711 (8 kHz) is enabled.
RECORD_RATE = 8000

# Every codec linphone 5.1 knows and enables by default, written as disabled:
# codecs left out of the config come back with their default enablement.
_OTHER_CODECS: tuple[tuple[str, int, int], ...] = (
    ("opus", 48000, 2),
    ("speex", 32000, 1),
    ("speex", 16000, 1),
    ("speex", 8000, 1),
    ("G729", 8000, 1),
    ("GSM", 8000, 1),
    ("G722", 8000, 1),
    ("iLBC", 8000, 1),
    ("L16", 44100, 1),
    ("L16", 44100, 2),
)


class LinphoneError(RuntimeError):
    """linphonec refused a command, died, or an awaited line did not come."""


def _compile(pattern: str | re.Pattern[str]) -> re.Pattern[str]:
    return pattern if isinstance(pattern, re.Pattern) else re.compile(pattern)


class Linphone(PeerProcess):
    """One linphonec process with its own HOME, config, ports and recording.

    Parameters:
        user: user part of the identity (``sip:user@...``).
        registrar: ``host:port`` to REGISTER with (``register`` command at
            start); None: no account, calls go straight to the URI dialled.
        password: digest password for the registrar (and the calls' 407s).
        input_wav: what the phone "says" (any format sox reads); None: silence.
        auto_answer: answer incoming calls at once (``autoanswer enable``).
        codecs: audio codecs offered/accepted, in order (``PCMU``, ``PCMA``).
        workdir: folder for HOME, config, logs and recordings (kept); None: a
            temporary folder removed when the phone is closed.
        extra_config: more config entries, section -> key -> value; they
            override ours.
        start_timeout: how long linphonec may take to show its first prompt
            and reach ``LinphoneGlobalOn``.
        lifetime_s: linphonec is killed after this long, or as soon as the
            test process is gone (a safety net should it die without cleanup).
    """

    def __init__(
        self,
        *,
        user: str = "tester",
        registrar: str | None = None,
        password: str | None = None,
        input_wav: str | Path | None = None,
        auto_answer: bool = False,
        codecs: Sequence[str] = ("PCMU", "PCMA"),
        workdir: str | Path | None = None,
        extra_config: Mapping[str, Mapping[str, str]] | None = None,
        start_timeout: float = 10.0,
        lifetime_s: int = 300,
    ) -> None:
        self.user = user
        self.registrar = registrar
        self.password = password
        self.input_wav = Path(input_wav) if input_wav is not None else None
        self.auto_answer = auto_answer
        self.codecs = tuple(codecs)
        self.extra_config = {k: dict(v) for k, v in (extra_config or {}).items()}
        self.start_timeout = start_timeout
        self.lifetime_s = lifetime_s

        self._given_workdir = Path(workdir) if workdir is not None else None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.workdir = Path()
        self.sip_port = 0
        self.rtp_port = 0
        self._record_path = Path()

        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._cond = threading.Condition()
        self._lines: list[str] = []  # stdout, one entry per line, prompts removed
        self._partial = ""  # text after the last newline (a prompt waiting for input)
        self._prompts = 0  # how many "linphonec> " prompts were printed
        self._registered = False
        self._eof = False
        self._mark = 0  # index of the first line after the latest command

    # ---------------------------------------------------------------- paths

    @property
    def config_path(self) -> Path:
        return self.workdir / "linphonerc"

    @property
    def console_path(self) -> Path:
        """linphonec's stdout (commands echoed, call states)."""
        return self.workdir / "console.log"

    @property
    def log_path(self) -> Path:
        """liblinphone's debug log (``-d 6 -l``): every SIP message sent and received."""
        return self.workdir / "linphone.log"

    @property
    def source_wav(self) -> Path:
        """The file played as the microphone (``play``)."""
        return self.workdir / "input.wav"

    @property
    def recorded_wav(self) -> Path:
        """Where what the phone hears is recorded (``record``); see :meth:`record_to`."""
        return self._record_path

    @property
    def aor(self) -> str:
        """The identity: ``sip:user@registrar`` (or ``@127.0.0.1:<sip_port>``)."""
        return f"sip:{self.user}@{self.registrar or f'{HOST}:{self.sip_port}'}"

    @property
    def sip_uri(self) -> str:
        """Where to reach this phone directly (no registration needed)."""
        return f"sip:{self.user}@{HOST}:{self.sip_port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # ---------------------------------------------------------------- set-up

    def _config_text(self) -> str:
        sections: dict[str, dict[str, str]] = {
            "sip": {
                "sip_port": str(self.sip_port),
                "sip_tcp_port": "0",
                "sip_tls_port": "0",
                "bind_address": HOST,
                "use_ipv6": "0",
                "contact": f"sip:{self.user}@{HOST}",
                # Do not probe the internet to decide whether the network is up.
                "auto_net_state_mon": "0",
                "register_only_when_network_is_up": "0",
                "media_encryption": "none",
                "ping_with_options": "0",
                "inc_timeout": "60",
            },
            "rtp": {
                "audio_rtp_port": str(self.rtp_port),
                "bind_address": HOST,
                "nortp_timeout": "30",
                "rtcp_xr_enabled": "0",
            },
            "sound": {"echocancellation": "0", "echolimiter": "0"},
            "video": {
                "capture": "0",
                "display": "0",
                "automatically_initiate": "0",
                "automatically_accept": "0",
            },
        }
        codecs = [(name, 8000, 1, True) for name in self.codecs]
        codecs += [
            (name, rate, channels, False)
            for name, rate, channels in _OTHER_CODECS
            if name not in self.codecs
        ]
        codecs += [(name, 8000, 1, False) for name in ("PCMU", "PCMA") if name not in self.codecs]
        for i, (name, rate, channels, enabled) in enumerate(codecs):
            sections[f"audio_codec_{i}"] = {
                "mime": name,
                "rate": str(rate),
                "channels": str(channels),
                "enabled": "1" if enabled else "0",
            }
        for section, values in self.extra_config.items():
            sections.setdefault(section, {}).update(values)
        text = ["# written by tests/support/linphone.py"]
        for section, values in sections.items():
            text.append(f"[{section}]")
            text += [f"{k}={v}" for k, v in values.items()]
            text.append("")
        return "\n".join(text)

    def _prepare(self) -> None:
        if self._given_workdir is not None:
            self.workdir = self._given_workdir
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="linphone-")
            self.workdir = Path(self._tmp.name)
        self.workdir.mkdir(parents=True, exist_ok=True)
        # liblinphone 5.1 opens $HOME/.local/share/linphone/linphone.db and, when
        # the folder is missing, stays in LinphoneGlobalStartup: no SIP at all.
        (self.workdir / ".local" / "share" / "linphone").mkdir(parents=True, exist_ok=True)
        self.sip_port = free_port("udp")
        self.rtp_port = free_port_pair()
        self._record_path = self.workdir / "heard-1.wav"
        # linphone appends to an existing recording: start from none.
        self._record_path.unlink(missing_ok=True)
        if self.input_wav is None:
            audio.make_silence_wav(self.source_wav, 1.0)
        else:
            audio.convert_wav(self.input_wav, self.source_wav, 8000)
        self.config_path.write_text(self._config_text())

    def start(self) -> Linphone:
        """Write the config, start linphonec, switch it to files, register if asked."""
        if shutil.which("linphonec") is None:
            raise LinphoneError("linphonec is not installed (Debian package linphone-cli)")
        try:
            self._prepare()
            env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
            env.update(HOME=str(self.workdir), TERM="dumb", LC_ALL="C")
            with (self.workdir / "stderr.log").open("wb") as stderr:
                self._proc = subprocess.Popen(
                    ["sh", "-c", _WATCHDOG, "watchdog", str(os.getpid()), str(self.lifetime_s),
                     "linphonec", "-c", str(self.config_path), "-d", "6",
                     "-l", str(self.log_path)],
                    cwd=self.workdir,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    env=env,
                    start_new_session=True,
                )  # fmt: skip
            self._reader = threading.Thread(target=self._read_loop, name="linphonec", daemon=True)
            self._reader.start()
            self._wait_prompt(self.start_timeout)
            # Without a working core (e.g. its database folder missing) every
            # command is taken but nothing goes out: check before going on.
            self.command("states global")
            state = self.expect(r"^LinphoneGlobal(\w+)$", self.start_timeout)
            if state.group(1) != "On":
                raise LinphoneError(f"linphonec core is LinphoneGlobal{state.group(1)}, not On")
            self.command("soundcard use files")
            self.expect(r"^Using wav files instead of soundcard\.$", 5.0)
            self.command(f"play {self.source_wav}")
            self.command(f"record {self._record_path}")
            if self.auto_answer:
                self.command("autoanswer enable")
                self.expect(r"^Auto answer enabled\.$", 5.0)
            if self.registrar is not None:
                self.command(
                    f"register {self.aor} sip:{self.registrar} {self.password or ''}".rstrip()
                )
        except BaseException:
            self.close()
            raise
        return self

    def _read_loop(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        fd = proc.stdout.fileno()
        try:
            with self.console_path.open("wb") as console:
                while True:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        break
                    console.write(chunk)
                    console.flush()
                    self._feed(chunk.decode(errors="replace"))
        except OSError:
            pass
        finally:
            with self._cond:
                self._eof = True
                self._cond.notify_all()

    def _feed(self, text: str) -> None:
        with self._cond:
            data = (self._partial + text).replace("\r", "")
            self._prompts += data.count(PROMPT) - self._partial.count(PROMPT)
            *complete, self._partial = data.split("\n")
            for line in complete:
                # Asynchronous lines often follow the prompt on the same line.
                while line.startswith(PROMPT):
                    line = line[len(PROMPT) :]
                if line.strip():
                    self._lines.append(line.rstrip())
            self._cond.notify_all()

    def _wait_prompt(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._prompts:
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    raise LinphoneError(self._error(f"no prompt after {timeout} s"))
                self._cond.wait(min(left, 0.2))

    # ---------------------------------------------------------------- tear-down

    def close(self) -> None:
        """Un-REGISTER (when registered), quit linphonec (kill it if it does not),
        and remove the temporary folder."""
        proc = self._proc
        try:
            if self._registered and self.running:
                # linphonec 5.1 quits without un-REGISTERing: its binding would
                # stay at the registrar, pointing at a closed port.
                with contextlib.suppress(LinphoneError):
                    self.unregister(timeout=1.0)
            with self._cond:
                # At the password prompt "quit" would be taken as the password.
                asking = PASSWORD_PROMPT.search(self._partial) is not None
            if proc is not None and proc.poll() is None and proc.stdin is not None and not asking:
                with contextlib.suppress(OSError, ValueError):
                    proc.stdin.write(b"quit\n")
                    proc.stdin.flush()
                # quit hangs up the calls and destroys the core: quick, but bounded.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=2.0)
        finally:
            if proc is not None:
                if proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGTERM)
                    try:
                        proc.wait(timeout=1.0)
                    except subprocess.TimeoutExpired:
                        with contextlib.suppress(ProcessLookupError):
                            os.killpg(proc.pid, signal.SIGKILL)
                        proc.wait()
                if proc.stdin is not None:
                    with contextlib.suppress(OSError):
                        proc.stdin.close()
            if self._reader is not None:
                self._reader.join(timeout=2.0)
                self._reader = None
            if proc is not None and proc.stdout is not None:
                proc.stdout.close()
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None

    # ---------------------------------------------------------------- commands

    def command(self, line: str) -> int:
        """Write one command line to linphonec; the index of the first line after it.

        linphonec answers nothing for most commands; use :meth:`expect` with
        ``since=`` the returned index to read what a command printed.
        """
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise LinphoneError("linphonec is not started")
        if proc.poll() is not None:
            raise LinphoneError(self._error(f"exited (code {proc.returncode}) before {line!r}"))
        with self._cond:
            mark = len(self._lines)
            self._mark = mark
        try:
            proc.stdin.write(line.encode() + b"\n")
            proc.stdin.flush()
        except OSError as exc:
            raise LinphoneError(self._error(f"cannot write {line!r}: {exc}")) from exc
        return mark

    def dial(self, uri: str, timeout: float = 5.0) -> int:
        """Place a call (``call <uri>``); its linphonec call id. Follow with
        :meth:`wait_established`."""
        since = self.command(f"call {uri}")
        found = self.expect(
            r"^Establishing call id to .+, assigned id (\d+)$",
            timeout,
            since=since,
            fail=r"^(Error from linphone_core_invite\.|Terminate or hold on the current call)",
        )
        return int(found.group(1))

    def answer(self, call_id: int | None = None) -> None:
        """Answer a ringing incoming call (when not ``auto_answer``)."""
        self.command("answer" if call_id is None else f"answer {call_id}")

    def hangup(self, call_id: int | None = None) -> None:
        """Hang up (``terminate``) the current call, or the call with this id."""
        self.command("terminate" if call_id is None else f"terminate {call_id}")

    def send_dtmf(self, digits: str) -> None:
        """Send ``digits`` (0-9 * #) in the current call, RFC 4733 events.

        linphonec takes a command line made of digits as DTMF and sends them
        one after the other (telephone-event, as negotiated)."""
        if not digits or set(digits) - DTMF_KEYS:
            raise ValueError(f"not DTMF keys linphonec can send: {digits!r}")
        self.command(digits)

    def record_to(self, path: str | Path) -> None:
        """Record the next calls to ``path`` instead (linphone appends every call
        recorded to one file to it: give each call its own file)."""
        self._record_path = Path(path)
        self.command(f"record {self._record_path}")

    # ---------------------------------------------------------------- output

    @property
    def lines(self) -> list[str]:
        """Every stdout line so far, prompts removed."""
        with self._cond:
            return list(self._lines)

    def expect(
        self,
        pattern: str | re.Pattern[str],
        timeout: float = 10.0,
        *,
        since: int | None = None,
        fail: str | re.Pattern[str] | None = None,
    ) -> re.Match[str]:
        """The first stdout line from index ``since`` (default: the latest
        command's output) matching ``pattern``; waits for it.

        Raises LinphoneError on timeout, when linphonec exits, when it asks
        for a password (a digest challenge it could not answer), or as soon
        as a line matching ``fail`` comes first.
        """
        wanted = _compile(pattern)
        failing = _compile(fail) if fail is not None else None
        deadline = time.monotonic() + timeout
        with self._cond:
            start = self._mark if since is None else since
            while True:
                for line in self._lines[start:]:
                    found = wanted.search(line)
                    if found is not None:
                        return found
                    if failing is not None and failing.search(line):
                        raise LinphoneError(
                            self._error(f"got {line!r} waiting for {wanted.pattern!r}")
                        )
                if PASSWORD_PROMPT.search(self._partial) or any(
                    PASSWORD_PROMPT.search(x) for x in self._lines[start:]
                ):
                    raise LinphoneError(self._error("linphonec asks for a password: auth failed"))
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    why = "linphonec exited" if self._eof else f"timeout after {timeout} s"
                    raise LinphoneError(self._error(f"waiting for {wanted.pattern!r}: {why}"))
                self._cond.wait(min(left, 0.2))

    async def expect_async(
        self,
        pattern: str | re.Pattern[str],
        timeout: float = 10.0,
        *,
        since: int | None = None,
        fail: str | re.Pattern[str] | None = None,
    ) -> re.Match[str]:
        """:meth:`expect` without blocking the event loop."""
        return await asyncio.to_thread(self.expect, pattern, timeout, since=since, fail=fail)

    def registration_state(self, timeout: float = 5.0) -> str:
        """The account's state from ``states proxies``: ``None``, ``Progress``,
        ``Ok``, ``Cleared`` or ``Failed`` (``LinphoneRegistration<state>``)."""
        since = self.command("states proxies")
        found = self.expect(r"^\S+\s+\|\s+LinphoneRegistration(\w+)$", timeout, since=since)
        return found.group(1)

    def wait_registered(self, timeout: float = 10.0) -> None:
        """Wait until the account is registered (polls ``states proxies``).

        Fails at once when the registration failed or linphonec asks for a
        password (the registrar refused the credentials).
        """
        if self.registrar is None:
            raise LinphoneError("this phone has no registrar")
        deadline = time.monotonic() + timeout
        while True:
            state = self.registration_state(max(0.5, deadline - time.monotonic()))
            if state == "Ok":
                self._registered = True
                return
            if state == "Failed":
                raise LinphoneError(self._error("registration failed (LinphoneRegistrationFailed)"))
            if time.monotonic() > deadline:
                raise LinphoneError(self._error(f"not registered after {timeout} s: {state}"))
            time.sleep(0.1)

    def unregister(self, timeout: float = 5.0) -> None:
        """Remove the registration (``unregister``: REGISTER with ``Expires: 0``)
        and wait until the account says ``Cleared``."""
        self.command("unregister")
        self._registered = False
        deadline = time.monotonic() + timeout
        while (state := self.registration_state(max(0.5, deadline - time.monotonic()))) not in (
            "Cleared",
            "None",
        ):
            if time.monotonic() > deadline:
                raise LinphoneError(self._error(f"still {state} {timeout} s after unregister"))
            time.sleep(0.05)

    def wait_incoming(self, timeout: float = 10.0, *, since: int = 0) -> int:
        """Wait for an incoming call (from line ``since`` on); its call id."""
        found = self.expect(
            r"^Receiving new incoming call from .+, assigned id (\d+)$", timeout, since=since
        )
        return int(found.group(1))

    def wait_established(self, call_id: int, timeout: float = 10.0) -> None:
        """Wait until the call's media streams run (answered); fail at once when
        the call ends or fails first."""
        self.expect(
            rf"^Media streams established with .+ for call {call_id} \(audio\)\.$",
            timeout,
            since=0,
            fail=rf"^Call {call_id} with .+ (error\.|ended \()",
        )

    def wait_ended(self, call_id: int, timeout: float = 10.0) -> str:
        """Wait for the end of the call; return linphone's reason for it.

        Reasons seen with 5.1: "No error" (a BYE either way: the peer hung up
        or we did), "Declined", "Not Found", "Unauthorized"...
        """
        found = self.expect(rf"^Call {call_id} with .+ ended \(([^()]*)\)\.$", timeout, since=0)
        return found.group(1)

    def call_lines(self, call_id: int) -> list[str]:
        """The state lines linphonec printed about one call, in order."""
        pattern = re.compile(rf"(\b[Cc]all {call_id}\b|assigned id {call_id}$)")
        return [line for line in self.lines if pattern.search(line)]

    def _error(self, what: str) -> str:
        tail = "\n".join(self.lines[-30:])
        return f"linphonec: {what}\n--- console (last lines) ---\n{tail}\n{self._partial}"

    # ---------------------------------------------------------------- audio

    def recorded_audio(self) -> tuple[audio.Samples, int]:
        """Samples and rate of :attr:`recorded_wav`; fine while the call still runs."""
        try:
            raw = self._record_path.read_bytes()
        except FileNotFoundError:
            raise LinphoneError(
                f"no recording at {self._record_path} (no call had audio?)"
            ) from None
        if raw[:4] == b"RIFF":
            return audio.read_mono(self._record_path)
        # While the call runs the file holds bare samples: linphone writes the
        # WAV header only when the call ends (over the first 44 bytes).
        usable = len(raw) - len(raw) % 2
        samples = np.frombuffer(raw[:usable], dtype="<i2").astype(np.float64) / 32768.0
        return samples, RECORD_RATE

    def sip_messages(self) -> list[tuple[str, str]]:
        """The SIP messages linphonec sent and received so far, in order, as
        ``("sent" | "received", text)``, read back from its debug log."""
        return [
            ("sent" if way == "message sent to" else "received", text.strip())
            for way, text in _SIP_IN_LOG.findall(self.log())
        ]

    def log(self) -> str:
        """liblinphone's debug log so far (SIP messages included)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""
