"""Bridged calls through ``mediaserver run``, measured from outside, in the
variants the shared instruments cannot make: SRTP legs, a transcoding bridge,
a recorded bridge.

    .venv/bin/python -m tests.load.e2e_calls --calls 100,250 --seconds 10 --mode plain,srtp
    .venv/bin/python -m tests.load.e2e_calls --calls 10 --seconds 5 --mode g722,opus

For each step a fresh server runs a scenario whose ``dial@v1`` bridges every
call to a trunk (this process's UAS). This process is also the UAC: it
places the calls over real SIP (UDP), then sends 50 packets a second on
every leg (A towards the server's caller leg, B towards its callee leg) from
one socket with ``sendmmsg`` (tests/load/udp_batch.py) and counts, on the
same socket, what the server relays back. The server's CPU over that window
is read from /proc. Modes:

- ``plain``: PCMU both legs, RTP;
- ``srtp``: PCMU both legs, SRTP by SDES (AES_CM_128_HMAC_SHA1_80) on both,
  so the server decrypts and re-encrypts every packet. Our packets are
  protected ahead of time (pylibsrtp), so the generator's cost per packet is
  that of the plain mode; a sample of what comes back is decrypted with the
  server's keys to prove the relay was really SRTP;
- ``pcma``: the callee answers PCMA, the server translates every payload;
- ``record``: plain, with ``record: true`` on the dial (both directions
  decoded and mixed to a WAV on the media clock);
- ``conference``: no bridge; every call joins one ``conference@v1`` room, so
  each caller's audio is decoded and each gets its own mix (``--calls 100``
  is the 100-party conference of issue 13);
- ``g722``, ``opus``: the caller speaks G.722 (or Opus) and the callee PCMU,
  so the server decodes the wideband codec and encodes PCMU one way, and the
  reverse the other, on every packet (``RtpLeg.relay_pcm``). The callers'
  packets are a tone with a part above 4 kHz, encoded ahead of time by
  libavcodec through PyAV (Opus at 48 kHz, 64 kbit/s constant bit rate:
  160-byte packets, the width every leg's row shares) and cycled once a
  second.

Not part of the pass/fail suite: figures go to docs/PERFORMANCE.md, and only
runs made together on an otherwise idle machine compare.
"""

from __future__ import annotations

import argparse
import base64
import re
import secrets
import select
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pylibsrtp

from mediaserver.media.g711 import ulaw_decode
from tests.integration.conftest import ServerProcess, start_server
from tests.load.call_rate import cpu_seconds, rss_mb, workers_cpu_seconds
from tests.load.server_profile import Profiler
from tests.load.udp_batch import BatchReceiver, BatchSender, udp_socket

HOST = "127.0.0.1"
SUITE = "AES_CM_128_HMAC_SHA1_80"
TAG = 10  # bytes of authentication tag the suite adds to every SRTP packet
PAYLOAD = 160  # 20 ms of G.711
WARM_UP = 3.0  # seconds of media before the measured window: bridges settle on workers
MODES = ("plain", "srtp", "pcma", "record", "conference", "g722", "opus")
WIDEBAND = {"g722": 9, "opus": 111}  # the caller's payload type in these modes
RTPMAP = {0: "PCMU/8000", 8: "PCMA/8000", 9: "G722/8000", 111: "opus/48000/2"}
TICKS = {111: 960}  # RTP timestamp units per 20 ms packet (RFC 7587 4.1); 160 otherwise
SCENARIO = """\
branches:
  inbound-call:
    actions:
      - action: dial@v1
        params: {{targets: ["+15550100"], timeout: 10, ringback: none{record}}}
      - action: hangup@v1
"""
CONFERENCE = """\
branches:
  inbound-call:
    actions:
      - action: conference@v1
        params: {name: bench, beep: none}
"""
TRUNK = """
trunks:
  - {{name: bench, uri: "sip:127.0.0.1:{port}", keepalive: 0, srtp: "{srtp}"}}
"""


@dataclass
class Leg:
    """One side of a bridged call as the generator sees it: where the server's
    leg listens, the payload type, and the SRTP keys both ways."""

    payload_type: int = 0
    remote_port: int = 0
    our_key: bytes = b""
    their_key: bytes = b""
    crypto_tag: int = 1  # the tag of the offer's a=crypto line for our suite


@dataclass
class Call:
    number: int
    a: Leg = field(default_factory=Leg)
    b: Leg = field(default_factory=Leg)
    to_tag: str = ""
    answered: bool = False


def sdp(port: int, payload_type: int, key: bytes | None, session: int, tag: int = 1) -> str:
    profile = "RTP/SAVP" if key else "RTP/AVP"
    lines = [
        "v=0", f"o=gen {session} 1 IN IP4 {HOST}", "s=-", f"c=IN IP4 {HOST}", "t=0 0",
        f"m=audio {port} {profile} {payload_type}",
        f"a=rtpmap:{payload_type} {RTPMAP[payload_type]}",
        "a=ptime:20", "a=sendrecv",
    ]  # fmt: skip
    if key:
        lines.append(f"a=crypto:{tag} {SUITE} inline:{base64.b64encode(key).decode()}")
    return "\r\n".join(lines) + "\r\n"


def parse_sdp(body: str, leg: Leg) -> None:
    """The server leg's audio port and SDES key (none for plain RTP) from its SDP."""
    port = re.search(r"^m=audio (\d+)", body, re.M)
    key = re.search(rf"^a=crypto:(\d+) {SUITE} inline:([A-Za-z0-9+/=]+)", body, re.M)
    if port is None:
        raise ValueError(f"no m=audio line in {body!r}")
    leg.remote_port = int(port.group(1))
    if key:
        leg.crypto_tag, leg.their_key = int(key.group(1)), base64.b64decode(key.group(2))


def split(message: str) -> tuple[str, dict[str, str], str]:
    head, _, body = message.partition("\r\n\r\n")
    first, *lines = head.split("\r\n")
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    return first, headers, body


def response(status: str, headers: dict[str, str], to_tag: str, extra: str = "") -> bytes:
    """A response to a request whose headers are ``headers`` (Via, From, To,
    Call-ID and CSeq copied; RFC 3261 8.2.6)."""
    to = headers["to"] if ";tag=" in headers["to"] else f"{headers['to']};tag={to_tag}"
    text = (
        f"SIP/2.0 {status}\r\nVia: {headers['via']}\r\nFrom: {headers['from']}\r\n"
        f"To: {to}\r\nCall-ID: {headers['call-id']}\r\nCSeq: {headers['cseq']}\r\n{extra}"
    )
    return text.encode()


class Signalling:
    """The UAC placing the calls and the trunk's UAS answering the server's dials."""

    def __init__(
        self, server: ServerProcess, media_port: int, mode: str, uas: socket.socket
    ) -> None:
        self.server = server
        self.media_port = media_port
        self.mode = mode
        self.uac = udp_socket()
        self.uas = uas
        for sock in (self.uac, self.uas):
            sock.setblocking(False)
        self.calls: dict[str, Call] = {}
        self.by_callee: dict[str, Call] = {}
        self.pending: list[Call] = []  # dialled by the server, not yet tied to a caller

    @property
    def uas_port(self) -> int:
        return int(self.uas.getsockname()[1])

    def _key(self) -> bytes | None:
        return secrets.token_bytes(30) if self.mode == "srtp" else None

    def invite(self, call: Call) -> None:
        port = self.uac.getsockname()[1]
        key = self._key()
        call.a.our_key = key or b""
        call.a.payload_type = WIDEBAND.get(self.mode, 0)
        body = sdp(self.media_port, call.a.payload_type, key, call.number)
        text = (
            f"INVITE sip:bench@{HOST}:{self.server.sip_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:{port};branch=z9hG4bK-i{call.number}\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:gen@{HOST}:{port}>;tag=f{call.number}\r\n"
            f"To: <sip:bench@{HOST}>\r\nCall-ID: c{call.number}@gen\r\nCSeq: 1 INVITE\r\n"
            f"Contact: <sip:gen@{HOST}:{port}>\r\nContent-Type: application/sdp\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}"
        )
        self.calls[f"c{call.number}@gen"] = call
        self.uac.sendto(text.encode(), (HOST, self.server.sip_port))

    def _in_dialog(self, call: Call, method: str, cseq: int) -> bytes:
        port = self.uac.getsockname()[1]
        return (
            f"{method} sip:bench@{HOST}:{self.server.sip_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:{port};branch=z9hG4bK-{method.lower()}{call.number}\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:gen@{HOST}:{port}>;tag=f{call.number}\r\n"
            f"To: <sip:bench@{HOST}>;tag={call.to_tag}\r\nCall-ID: c{call.number}@gen\r\n"
            f"CSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
        ).encode()

    def bye_all(self) -> None:
        for call in self.calls.values():
            if call.answered:
                self.uac.sendto(self._in_dialog(call, "BYE", 2), (HOST, self.server.sip_port))

    def pump(self, timeout: float) -> None:
        """Handle whatever SIP arrives within ``timeout`` seconds."""
        ready, _, _ = select.select([self.uac, self.uas], [], [], timeout)
        for sock in ready:
            while True:
                try:
                    data, addr = sock.recvfrom(65535)
                except BlockingIOError:
                    break
                if sock is self.uac:
                    self._at_uac(data.decode(errors="replace"))
                else:
                    self._at_uas(data.decode(errors="replace"), addr)

    def _at_uac(self, message: str) -> None:
        first, headers, body = split(message)
        call = self.calls.get(headers.get("call-id", ""))
        if call is None or not first.startswith("SIP/2.0 200") or "INVITE" not in headers["cseq"]:
            return
        call.to_tag = headers["to"].split(";tag=", 1)[1]
        if not call.answered:
            call.answered = True
            parse_sdp(body, call.a)
        self.uac.sendto(self._in_dialog(call, "ACK", 1), (HOST, self.server.sip_port))

    def _at_uas(self, message: str, addr: tuple[str, int]) -> None:
        first, headers, body = split(message)
        method = first.split(" ", 1)[0]
        if method in ("ACK", "SIP/2.0"):
            return
        if method != "INVITE":  # BYE, OPTIONS: accepted
            self.uas.sendto(response("200 OK", headers, "u") + b"Content-Length: 0\r\n\r\n", addr)
            return
        callee = self.by_callee.get(headers["call-id"])
        if callee is None:
            callee = Call(-1)
            parse_sdp(body, callee.b)
            callee.b.payload_type = 8 if self.mode == "pcma" else 0
            callee.b.our_key = self._key() or b""
            self.by_callee[headers["call-id"]] = callee
            self.pending.append(callee)
        leg = callee.b
        answer = sdp(self.media_port, leg.payload_type, leg.our_key or None, 7, leg.crypto_tag)
        extra = (
            f"Contact: <sip:b@{HOST}:{self.uas_port}>\r\nContent-Type: application/sdp\r\n"
            f"Content-Length: {len(answer)}\r\n\r\n{answer}"
        )
        self.uas.sendto(response("200 OK", headers, f"u{len(self.by_callee)}", extra), addr)


def srtp_session(key: bytes, outbound: bool) -> pylibsrtp.Session:
    kind = pylibsrtp.Policy.SSRC_ANY_OUTBOUND if outbound else pylibsrtp.Policy.SSRC_ANY_INBOUND
    profile = pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80
    return pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=kind, srtp_profile=profile))


def wideband_payloads(payload_type: int) -> list[bytes]:
    """One second of a wideband caller's payloads (50 packets of 160 bytes): a
    1 kHz tone plus 6 kHz, in G.722 (9) or Opus at 64 kbit/s CBR (111)."""
    import av

    rate = 16000 if payload_type == 9 else 48000
    t = np.arange(rate) / rate
    tone = (np.sin(2 * np.pi * 1000 * t) * 6000 + np.sin(2 * np.pi * 6000 * t) * 3000).astype(
        np.int16
    )
    context = av.CodecContext.create("g722" if payload_type == 9 else "libopus", "w")
    context.sample_rate, context.layout, context.format = rate, "mono", "s16"
    if payload_type == 111:
        context.bit_rate = 64000  # 64 kbit/s of 20 ms: 160 bytes a packet
        context.options = {"vbr": "off"}
    payloads: list[bytes] = []
    step = rate // 50
    for start in range(0, rate, step):
        frame = av.AudioFrame.from_ndarray(
            tone[start : start + step].reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate, frame.pts = rate, start
        payloads += [bytes(packet) for packet in context.encode(frame)]
    if len(payloads) != 50 or {len(p) for p in payloads} != {PAYLOAD}:
        raise RuntimeError(f"expected 50 payloads of {PAYLOAD} bytes from {context.name}")
    return payloads


def packets(legs: list[Leg], ticks: int, srtp: bool) -> np.ndarray:
    """Every packet of the run: [tick, leg, byte], each leg its own SSRC, 20 ms of
    G.711 silence per packet (a wideband caller: its tone); SRTP-protected with
    the leg's key when ``srtp``."""
    width = 12 + PAYLOAD + (TAG if srtp else 0)
    rows = np.zeros((ticks, len(legs), width), np.uint8)
    silence = {0: b"\xff" * PAYLOAD, 8: b"\xd5" * PAYLOAD}
    wide = {pt: wideband_payloads(pt) for pt in {leg.payload_type for leg in legs} - {0, 8}}
    sessions = [srtp_session(leg.our_key, True) for leg in legs] if srtp else []
    for tick in range(ticks):
        for index, leg in enumerate(legs):
            pt = leg.payload_type
            stamp = (tick * TICKS.get(pt, PAYLOAD)) & 0xFFFFFFFF
            header = bytes([0x80, pt]) + (tick & 0xFFFF).to_bytes(2, "big")
            header += stamp.to_bytes(4, "big") + (0x1000 + index).to_bytes(4, "big")
            payload = silence[pt] if pt in silence else wide[pt][tick % len(wide[pt])]
            packet = header + payload
            if srtp:
                packet = sessions[index].protect(packet)
            rows[tick, index] = np.frombuffer(packet, np.uint8)
    return rows


def rtp_count(receiver: BatchReceiver, count: int) -> int:
    """How many of the last ``count`` datagrams read are RTP, not RTCP (RFC 5761 4)."""
    second = receiver.rows[:count, 1]
    return int(count - np.count_nonzero((second >= 200) & (second <= 204)))


@dataclass
class Step:
    mode: str
    calls: int
    set_up_s: float
    cpu_percent: float  # the main process
    workers_percent: float  # its relay worker processes (rtp.relay_workers)
    sent: int
    received: int
    rss_mb: float
    checked: str

    @property
    def loss(self) -> float:
        return 1 - self.received / self.sent if self.sent else 0.0


class Blast:
    """The media side: every leg's packets out of one socket, 50 a second per leg,
    and what comes back counted (RTP only) with a sample kept for :func:`check`."""

    def __init__(self, media: socket.socket, legs: list[Leg], ticks: int, srtp: bool) -> None:
        self.media = media
        self.rows = packets(legs, ticks, srtp)
        self.frame = np.ascontiguousarray(self.rows[0])
        self.sender = BatchSender(media, self.frame, [(HOST, leg.remote_port) for leg in legs])
        self.receiver = BatchReceiver(media, capacity=512)
        self.sent = self.received = 0
        self.samples: list[bytes] = []
        while self.receiver.receive():
            pass  # what the server sent before our media: not counted

    def run(self, ticks: range) -> None:
        began = time.monotonic() - ticks.start * 0.02
        for tick in ticks:
            np.copyto(self.frame, self.rows[tick])
            self.sent += self.sender.send()
            self.collect(began + (tick + 1) * 0.02)

    def collect(self, until: float) -> None:
        receiver = self.receiver
        while (left := until - time.monotonic()) > 0:
            select.select([self.media], [], [], left)
            while n := receiver.receive():
                self.received += rtp_count(receiver, n)
                if len(self.samples) < 50:
                    lengths = receiver.lengths
                    self.samples += [bytes(receiver.rows[i, : lengths[i]]) for i in range(n)]


def set_up_calls(sip: Signalling, count: int) -> tuple[list[Leg], float]:
    """Place ``count`` calls at about 200 a second; every leg of the answered ones
    (callers' then callees') and how long the set-up took."""
    calls = [Call(i) for i in range(count)]
    started = time.monotonic()
    for index, call in enumerate(calls):
        sip.invite(call)
        sip.pump(0.005 if index % 2 else 0)
    deadline = time.monotonic() + 30
    while sum(c.answered for c in calls) < count and time.monotonic() < deadline:
        sip.pump(0.05)
    answered = [c.a for c in calls if c.answered]
    # Callees arrive in the order the server dialled them; A and B legs need not
    # be paired for counting: every packet sent on any leg comes back on its peer.
    callees = [c.b for c in sip.pending[: len(answered)]]
    return answered + callees, time.monotonic() - started


def run_step(
    mode: str, count: int, seconds: float, folder: Path, profiler: Profiler, workers: str
) -> Step:
    media = udp_socket(buffer=32 << 20)
    media.setblocking(False)
    scenarios = folder / "scenarios"
    scenarios.mkdir(parents=True)
    record = ", record: true" if mode == "record" else ""
    text = CONFERENCE if mode == "conference" else SCENARIO.format(record=record)
    (scenarios / "bridge.yaml").write_text(text)
    uas = udp_socket()  # the trunk's UAS, bound before the config names its port
    server = start_server(
        folder / "server", routes={"bench": "bridge"}, scenarios=scenarios, log_level="warning",
        rtp_range=(20000, 29999),
        codecs="[PCMU, PCMA, G722, opus]" if mode in WIDEBAND else "[PCMU, PCMA]",
        rtp_extra=f"  relay_workers: {workers}\n",
        extra_config=TRUNK.format(
            port=uas.getsockname()[1], srtp="required" if mode == "srtp" else "off"
        ),
    )  # fmt: skip
    pid = server.process.pid
    try:
        sip = Signalling(server, media.getsockname()[1], mode, uas)
        legs, set_up = set_up_calls(sip, count)
        warm_up = int(WARM_UP * 50)
        blast = Blast(media, legs, warm_up + int(seconds * 50), mode == "srtp")
        blast.run(range(warm_up))  # bridges settle (and go to the relay workers)
        sent_before, received_before = blast.sent, blast.received
        cpu_before, began = cpu_seconds(pid), time.monotonic()
        workers_before = workers_cpu_seconds(pid)
        with profiler.during(pid, f"{mode} {count}", seconds - 2, delay=1):
            blast.run(range(warm_up, len(blast.rows)))
        elapsed = time.monotonic() - began
        cpu = (cpu_seconds(pid) - cpu_before) / elapsed * 100
        workers = (workers_cpu_seconds(pid) - workers_before) / elapsed * 100
        if mode != "conference":  # a room sends its mixes on: the window's count is it
            blast.collect(time.monotonic() + 0.5)  # the last packets on their way
        rss = rss_mb(pid)
        sip.bye_all()
        for _ in range(20):
            sip.pump(0.05)
    finally:
        server.stop()
    rtp = [s for s in blast.samples if len(s) > 12 and not 200 <= s[1] <= 204]
    checked = check(mode, rtp, legs)
    sent, received = blast.sent - sent_before, blast.received - received_before
    calls = len(legs) if mode == "conference" else len(legs) // 2
    return Step(mode, calls, set_up, cpu, workers, sent, received, rss, checked)


def check(mode: str, samples: list[bytes], legs: list[Leg]) -> str:
    """Proof that what came back is what the mode says: SRTP that decrypts with the
    server's keys (silence inside), or plain RTP of the right types (a wideband
    mode: the caller's codec one way, PCMU the other)."""
    if not samples:
        return "nothing came back"
    if mode in WIDEBAND:
        types = sorted({s[1] & 0x7F for s in samples})
        pcmu = [s[12:] for s in samples if s[1] & 0x7F == 0]
        heard = sum(float(np.abs(ulaw_decode(p).astype(np.float64)).mean()) > 500 for p in pcmu)
        return f"payload types {types}, {heard}/{len(pcmu)} PCMU packets carry the tone"
    if mode != "srtp":
        types = sorted({s[1] & 0x7F for s in samples})
        return f"plain RTP, payload types {types}"
    keys = {leg.their_key for leg in legs}
    opened = 0
    for sample in samples:
        for key in keys:
            try:
                plain = srtp_session(key, False).unprotect(sample)
            except pylibsrtp.Error:
                continue
            opened += plain[12:] in (b"\xff" * PAYLOAD, b"\xd5" * PAYLOAD)
            break
    return f"SRTP: {opened}/{len(samples)} sampled packets decrypted to silence"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", default="100,250", help="bridged calls per step")
    parser.add_argument("--seconds", type=float, default=10, help="media time per step")
    parser.add_argument("--mode", default="plain,srtp", help=f"any of {', '.join(MODES)}")
    parser.add_argument(
        "--relay-workers", default="auto", help="rtp.relay_workers of the server (0: none)"
    )
    parser.add_argument("--profile", metavar="DIR", help="py-spy the server into DIR")
    parser.add_argument("--native", action="store_true", help="with --profile: native frames")
    args = parser.parse_args()
    modes = args.mode.split(",")
    if unknown := set(modes) - set(MODES):
        parser.error(f"unknown mode {', '.join(sorted(unknown))} (modes: {', '.join(MODES)})")
    profiler = Profiler(args.profile, args.native)
    print(
        "| mode | bridged calls | set-up s | main process CPU | relay workers CPU "
        "| CPU per call | loss | RSS MB | check |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for count in (int(n) for n in args.calls.split(",")):
        for mode in modes:
            with tempfile.TemporaryDirectory() as tmp:
                step = run_step(mode, count, args.seconds, Path(tmp), profiler, args.relay_workers)
            total = step.cpu_percent + step.workers_percent
            per_call = total / step.calls if step.calls else 0.0
            print(
                f"| {step.mode} | {step.calls} | {step.set_up_s:.1f} | {step.cpu_percent:.0f}% "
                f"| {step.workers_percent:.0f}% | {per_call:.3f}% | {step.loss:.2%} "
                f"| {step.rss_mb:.0f} | {step.checked} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
