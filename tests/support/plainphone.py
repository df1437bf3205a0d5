"""A plain SIP phone without telephone-event, for in-band DTMF tests.

baresip always offers telephone-event, so it cannot play a peer that only
knows audio. :class:`PlainPhone` is one: it places a call from a
:class:`~tests.support.rawsip.SipProbe` with an SDP offering one G.711 codec
and nothing else, sends ``send`` (float samples at 8 kHz, e.g. from
``audio.dtmf_samples``) as RTP paced every 20 ms (then silence), and keeps
what it hears, decoded, in arrival order. A BYE from the server is answered
with 200; :meth:`hangup` sends one.

    with PlainPhone(server.sip_port, send=samples) as phone:
        phone.call("ivr")
        time.sleep(3)
        heard, rate = phone.heard()
        phone.hangup()

Early media: :meth:`invite`, then :meth:`early_media` (waits for a 183 with
SDP and starts listening; returns the server's RTP address), then
:meth:`answered` (the 200: ACK, then it starts sending; ``heard_before_answer``
keeps what was heard until the 200 arrived). ``sdp_host`` is the
c= address of the offer; its RTP still comes from 127.0.0.1 (a phone behind
NAT writes its private address).
"""

from __future__ import annotations

import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType

import numpy as np
import numpy.typing as npt

from mediaserver.media.g711 import CODECS
from mediaserver.media.rtp import RtpError, build_rtp, parse_rtp
from tests.support.rawsip import SipProbe, parse_reply, sdp_offer

FRAME = 160
PAYLOAD_TYPES = {"PCMU": 0, "PCMA": 8}


class PlainPhone:
    def __init__(
        self,
        server_port: int,
        *,
        send: npt.ArrayLike | None = None,
        codec: str = "PCMU",
        sdp_host: str = "127.0.0.1",
    ) -> None:
        self.sdp_host = sdp_host
        self.codec = CODECS[codec]
        self.pt = PAYLOAD_TYPES[codec]
        self.probe = SipProbe(server_port)
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind(("127.0.0.1", 0))
        self.rtp.settimeout(0.05)
        self.rtp_port = self.rtp.getsockname()[1]
        samples = np.asarray(send if send is not None else [], dtype=np.float64)
        self._send = np.clip(np.round(samples * 32767), -32768, 32767).astype(np.int16)
        self._heard: list[npt.NDArray[np.int16]] = []
        self.heard_before_answer: tuple[npt.NDArray[np.float64], int] = (np.zeros(0), 8000)
        self.received_types: set[int] = set()
        self.bye_received = threading.Event()
        self._remote: tuple[str, int] | None = None
        self._call_id = ""
        self._to_tag: str | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # ---------------------------------------------------------------- call

    def call(self, user: str, timeout: float = 10.0) -> None:
        """INVITE ``user`` (no telephone-event offered), ACK the 200, start media."""
        self.invite(user)
        self.answered(timeout)

    def invite(self, user: str) -> None:
        """Send the INVITE (no telephone-event offered)."""
        self._call_id = f"plain-{secrets.token_hex(6)}"
        self._user = user
        offer = sdp_offer(self.rtp_port, str(self.pt), host=self.sdp_host)
        self.probe.send(self.probe.build("INVITE", user=user, body=offer, call_id=self._call_id))

    def early_media(self, timeout: float = 10.0) -> tuple[str, int]:
        """Wait for a 183 with SDP, start listening; the server's RTP address."""
        deadline = time.monotonic() + timeout
        while True:
            reply = self.probe.recv(max(0.0, deadline - time.monotonic()))
            assert reply is not None, "no 183 Session Progress from the server"
            assert reply.status < 200, f"{reply.status} {reply.reason} before early media"
            if reply.status == 183 and reply.body:
                self._remote = self._media_address(reply.body)
                self._start(self._receive_loop)
                return self._remote

    def answered(self, timeout: float = 10.0) -> None:
        """Wait for the 200, ACK it, start sending (and listening, if not yet)."""
        ok = self.probe.expect_final(timeout)
        self.heard_before_answer = self.heard()  # early media: what came before the 200
        assert ok.status == 200, f"{ok.status} {ok.reason}"
        self._to_tag = ok.to_tag
        self._remote = self._media_address(ok.body)
        self.probe.send(
            self.probe.build("ACK", user=self._user, call_id=self._call_id, to_tag=self._to_tag)
        )
        if not any(thread.name == "_receive_loop" for thread in self._threads):
            self._start(self._receive_loop)  # no early media: listening starts now
        self._start(self._send_loop)
        self._start(self._sip_loop)

    def _media_address(self, sdp: bytes) -> tuple[str, int]:
        body = sdp.decode()
        host = re.search(r"^c=IN IP4 (\S+)", body, re.M)
        port = re.search(r"^m=audio (\d+)", body, re.M)
        assert host and port, body
        assert "telephone-event" not in body, "the answer must not add telephone-event"
        return host.group(1), int(port.group(1))

    def _start(self, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=target.__name__, daemon=True)
        thread.start()
        self._threads.append(thread)

    def heard(self) -> tuple[npt.NDArray[np.float64], int]:
        """What it heard so far, float samples in [-1, 1] at 8 kHz."""
        frames = list(self._heard)
        if not frames:
            return np.zeros(0), 8000
        return np.concatenate(frames).astype(np.float64) / 32768.0, 8000

    def hangup(self) -> None:
        if self._to_tag is None or self.bye_received.is_set():
            return
        self.probe.send(
            self.probe.build(
                "BYE", user=self._user, call_id=self._call_id, to_tag=self._to_tag, cseq=2
            )
        )
        self._stop.set()

    def wait_bye(self, timeout: float = 10.0) -> bool:
        return self.bye_received.wait(timeout)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(2)
        self.rtp.close()
        self.probe.close()

    def __enter__(self) -> PlainPhone:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.hangup()
        finally:
            self.close()

    # ---------------------------------------------------------------- threads

    def _send_loop(self) -> None:
        assert self._remote is not None
        seq, ts, ssrc = secrets.randbits(16), secrets.randbits(32), secrets.randbits(32)
        start = time.monotonic()
        index = 0
        silence = np.zeros(FRAME, np.int16)
        while not self._stop.is_set() and not self.bye_received.is_set():
            frame = self._send[index * FRAME : (index + 1) * FRAME]
            if len(frame) < FRAME:
                frame = np.concatenate([frame, silence[: FRAME - len(frame)]])
            packet = build_rtp(self.pt, seq, ts, ssrc, self.codec.encode(frame), index == 0)
            self.rtp.sendto(packet, self._remote)
            seq, ts, index = (seq + 1) & 0xFFFF, (ts + FRAME) & 0xFFFFFFFF, index + 1
            # Absolute pacing: 20 ms per frame from the start, no drift.
            delay = start + index * 0.02 - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def _receive_loop(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.rtp.recv(2048)
            except (TimeoutError, OSError):
                continue
            try:
                packet = parse_rtp(data)
            except RtpError:
                continue  # RTCP multiplexed, or noise
            self.received_types.add(packet.payload_type)
            if packet.payload_type == self.pt:
                self._heard.append(self.codec.decode(packet.payload))

    def _sip_loop(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.probe.recv_request(timeout=0.1)
            except OSError:
                return
            if data is None or parse_reply(data) is not None:
                continue
            head = data.decode(errors="replace").split("\r\n\r\n")[0].split("\r\n")
            if not head[0].startswith("BYE"):
                continue
            wanted = ("via", "from", "to", "call-id", "cseq")
            lines = ["SIP/2.0 200 OK"]
            lines += [line for line in head[1:] if line.split(":")[0].strip().lower() in wanted]
            self.probe.send("\r\n".join([*lines, "Content-Length: 0"]) + "\r\n\r\n")
            self.bye_received.set()
            return
